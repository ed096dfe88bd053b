"""Apertium backend: offline rule-based translation from Debian's packages.

Each language pair runs as one long-lived pipeline of Apertium programs in null-flush mode
(``-z``): a text goes in terminated by NUL and its translation comes out terminated by NUL, so a
worker pays the process start-up once, not per sentence. Pairs without a direct mode pivot through
Spanish (pt -> es -> en, fr -> es -> en).

Rule-based engines mangle proper nouns ("Lula da Silva" -> "Lula gives Silva", "Belém" ->
"Belén"), which then breaks NER; with ``protect_names`` each detected name is swapped for an
inert placeholder word the engine passes through untouched, and restored afterwards.
"""

from __future__ import annotations

import ctypes.util
import io
import itertools
import os
import re
import shutil
import subprocess
import threading
from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from pathlib import Path

from newsflow.settings import TranslationSettings
from pipeline.translation import TranslationError, pair_path

#: Apertium's three-letter codes -> ISO 639-1, for the pairs Debian ships.
_ISO = {
    "eng": "en",
    "spa": "es",
    "por": "pt",
    "fra": "fr",
    "cat": "ca",
    "glg": "gl",
    "ita": "it",
    "deu": "de",
    "nld": "nl",
    "ron": "ro",
    "oci": "oc",
    "eus": "eu",
}
#: Characters with a meaning in Apertium's stream format; escaped in input, unescaped in output.
_STREAM_SPECIALS = re.compile(r"([\\\[\]^$/<>@{}*#~|+])")
_ESCAPED = re.compile(r"\\(.)")
#: Marks the engine puts on unknown (*), unbilingual (@) and ungeneratable (#) words.
_UNKNOWN_MARK = re.compile(r"(?<![\w\\])[*@#](?=\w)")
#: Words that join the parts of a name: "Lula da Silva", "Ursula von der Leyen".
_NAME_PARTICLES = frozenset(
    {"da", "das", "de", "del", "di", "do", "dos", "du", "van", "von", "der", "den", "la", "le"}
)
_WORD = re.compile(r"[^\W\d_](?:[\w'\u2019-]*\w)?")
FIRST_NAME, PERSON_WORD, OTHER = "first_name", "person_word", "other"
#: A superblank between texts sent in one request; the engine passes superblanks untouched.
_SEPARATOR = "[<newsflow/>]"
_LEXICAL_UNIT = re.compile(r"\^((?:[^/$\\]|\\.)*)/((?:[^$\\]|\\.)*)\$")
_DATA_PACKAGE = re.compile(r"/apertium/(apertium-[a-z_-]+)/")
#: The Debian package of each pair newsflow translates with: es->en, and pt, fr through Spanish.
DEBIAN_PAIRS = {
    ("es", "en"): "apertium-eng-spa",
    ("pt", "es"): "apertium-es-pt",
    ("fr", "es"): "apertium-fr-es",
}


def mode_languages(mode_name: str) -> tuple[str, str] | None:
    """``spa-eng`` -> ("es", "en"); variant and dialect modes (``es-pt_BR``, ``eco-*``) -> None."""
    parts = mode_name.split("-")
    if len(parts) != 2 or "_" in mode_name:
        return None
    source, target = (_ISO.get(p, p) for p in parts)
    if len(source) != 2 or len(target) != 2:
        return None
    return source, target


def installed_modes(modes_dir: Path) -> dict[tuple[str, str], Path]:
    """The mode file of each language pair in a modes directory, by (from, to) ISO code."""
    modes: dict[tuple[str, str], Path] = {}
    for mode_file in sorted(modes_dir.glob("*.mode")):
        languages = mode_languages(mode_file.stem)
        if languages is not None:
            modes.setdefault(languages, mode_file)
    return modes


def escape_stream(text: str) -> str:
    return _STREAM_SPECIALS.sub(r"\\\1", text)


def unescape_stream(text: str) -> str:
    """Drop the engine's unknown-word marks, then the stream escapes."""
    return _ESCAPED.sub(r"\1", _UNKNOWN_MARK.sub("", text))


def placeholder(index: int) -> str:
    """An inert capitalized word no dictionary knows: Zxqa, Zxqb, ..., Zxqba, ..."""
    letters = ""
    index += 1
    while index:
        index, rest = divmod(index - 1, 26)
        letters = chr(ord("a") + rest) + letters
    return f"Zxq{letters}"


def find_names(text: str, word_class: Callable[[str], str]) -> list[tuple[int, int]]:
    """Spans of person names: runs of capitalized words, joined by particles ("da", "von der").

    ``word_class`` says what the source-language analyser makes of a word: FIRST_NAME,
    PERSON_WORD (a family name, or a word it does not know) or OTHER. A sentence's first word is
    dropped when it is OTHER ("Según", "El"); a run is a name when it starts with a first name
    (then every
    capitalized word after it is taken: surnames are often common words, "Carlos Moedas",
    "Miguel Pinto Luz") or when all its capitalized words are person-like. Places and
    institutions are left to the engine, which knows their English names ("España" -> "Spain",
    "Unión Europea" -> "European Union").
    """
    words = list(_WORD.finditer(text))
    spans: list[tuple[int, int]] = []
    i = 0
    while i < len(words):
        if not _is_capitalized(words[i].group()):
            i += 1
            continue
        j = i
        while True:  # extend the run over "da Silva", "von der Leyen"
            k = j + 1
            while k < len(words) and words[k].group().lower() in _NAME_PARTICLES:
                k += 1
            if (
                k < len(words)
                and _is_capitalized(words[k].group())
                and _adjacent(text, words[j : k + 1])
            ):
                j = k
            else:
                break
        run = words[i : j + 1]
        if word_class(run[0].group()) == OTHER and _sentence_initial(text, run[0].start()):
            run = run[1:]  # "Según Macron", "El Gobierno": the capital is the sentence's
        capitalized = [w.group() for w in run if _is_capitalized(w.group())]
        if capitalized and (
            word_class(capitalized[0]) == FIRST_NAME
            or all(word_class(w) != OTHER for w in capitalized)
        ):
            spans.append((run[0].start(), run[-1].end()))
        i = j + 1
    return spans


def capitalized_runs(texts: list[str]) -> list[str]:
    """The distinct runs of capitalized words ("Pedro Sánchez", "Unión Europea", "Según").

    They are all ``find_names`` asks the analyser about: analysing them instead of the whole
    text costs a fraction, and keeping a run together keeps multiword units ("Nueva York")
    whole.
    """
    runs: dict[str, None] = {}
    for text in texts:
        run: list[re.Match[str]] = []
        for word in [*_WORD.finditer(text), None]:
            if word is not None and _is_capitalized(word.group()):
                if run and not _adjacent(text, [run[-1], word]):
                    runs[text[run[0].start() : run[-1].end()]] = None
                    run = []
                run.append(word)
            elif run:
                runs[text[run[0].start() : run[-1].end()]] = None
                run = []
    return list(runs)


def _sentence_initial(text: str, start: int) -> bool:
    before = text[:start].rstrip()
    return not before or before[-1] in '.!?:;«»"“”(\n'


def _is_capitalized(word: str) -> bool:
    return word[0].isupper() and not word.isupper()


def _adjacent(text: str, words: list[re.Match[str]]) -> bool:
    """Only spaces between the words (no comma or line break splitting two names)."""
    return all(
        text[a.end() : b.start()].strip() == "" and "\n" not in text[a.end() : b.start()]
        for a, b in itertools.pairwise(words)
    )


@dataclass(frozen=True)
class ProtectedText:
    text: str  # with placeholders
    names: tuple[str, ...]  # placeholder i stands for names[i]
    lowercase_after: tuple[bool, ...]  # was the source word after name i lowercase?


def protect(text: str, word_class: Callable[[str], str]) -> ProtectedText:
    names: list[str] = []
    lowercase_after: list[bool] = []
    pieces: list[str] = []
    cursor = 0
    for start, end in find_names(text, word_class):
        pieces.append(escape_stream(text[cursor:start]))
        pieces.append(placeholder(len(names)))
        names.append(text[start:end])
        following = _WORD.search(text, end)
        lowercase_after.append(following is not None and following.group()[0].islower())
        cursor = end
    pieces.append(escape_stream(text[cursor:]))
    return ProtectedText("".join(pieces), tuple(names), tuple(lowercase_after))


def restore(translated: str, protected: ProtectedText) -> str:
    """Put the names back; undo the capital the engine may give the word after a name."""
    for index in reversed(range(len(protected.names))):  # Zxqba before Zxqb
        token = placeholder(index)
        name = protected.names[index]
        if protected.lowercase_after[index]:
            translated = re.sub(
                rf"\b{token}(\s+)([A-Z])(?=[a-z])",
                lambda m: f"{token}{m.group(1)}{m.group(2).lower()}",  # noqa: B023 - used now
                translated,
            )
        translated = translated.replace(token, name)
    return translated


def word_classes(analysis: str) -> dict[str, str]:
    """Surface word -> class, from ``lt-proc`` analyses (``^Silva/Silva<np><cog>$``).

    FIRST_NAME: analysed as a first name (``<ant>``); PERSON_WORD: a family name (``<cog>``) or
    unknown to the dictionary (``*Ayuso``); OTHER: anything else, including any word that can
    be a place (``<loc>``), which the engine knows how to translate. Multiword units share the
    class of the unit.
    """
    result: dict[str, str] = {}
    for surface, readings in _LEXICAL_UNIT.findall(analysis):
        if "<loc>" in readings:  # "Grecia", "París" also read as first names: places win
            kind = OTHER
        elif "<ant>" in readings:
            kind = FIRST_NAME
        elif readings.startswith("*") or "<cog>" in readings:
            kind = PERSON_WORD
        else:
            kind = OTHER
        for word in surface.split():
            result.setdefault(word, kind)
    return result


def engine_environment() -> dict[str, str]:
    """The environment of the Apertium programs: tcmalloc preloaded when it is installed.

    The programs allocate per word; with glibc's malloc a third of the bilingual lookup's time
    goes to malloc/free. tcmalloc (Debian's libtcmalloc-minimal4) cuts their CPU by 15-20% with
    byte-identical output (docs/QUALITY.md). Without it they run as before.
    """
    env = dict(os.environ)
    allocator = ctypes.util.find_library("tcmalloc_minimal")
    if allocator:
        env["LD_PRELOAD"] = " ".join(filter(None, (env.get("LD_PRELOAD"), allocator)))
    return env


class _ModePipeline:
    """One running Apertium pipeline (a mode, or its first stages), NUL-terminated texts."""

    def __init__(self, mode_file: Path, stages: int | None = None) -> None:
        programs = [p.strip() for p in mode_file.read_text().strip().split("|")][:stages]
        # $1: generation without unknown-word marks; $2: tagger options. Every program -z.
        command = " | ".join(
            re.sub(r"^(\S+)", r"\1 -z", p.replace("$1", "-n").replace("$2", "")) for p in programs
        )
        self._process = subprocess.Popen(
            ["bash", "-c", command],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            stderr=subprocess.DEVNULL,
            env=engine_environment(),
        )
        self._lock = threading.Lock()

    def translate(self, stream_text: str) -> str:
        assert self._process.stdin is not None
        assert isinstance(self._process.stdout, io.BufferedReader)
        payload = stream_text.replace("\x00", " ").encode("utf-8") + b"\n\x00"
        with self._lock:
            # Write from another thread while we read: a text larger than the pipe buffers
            # would otherwise block both sides (we on stdin, the engine on a full stdout).
            writer = threading.Thread(target=self._write, args=(payload,), daemon=True)
            writer.start()
            try:
                output = bytearray()
                while not output.endswith(b"\x00"):
                    chunk = self._process.stdout.read1(65536)
                    if not chunk:
                        raise TranslationError("the Apertium process exited")
                    output += chunk
            except OSError as exc:
                raise TranslationError(f"the Apertium process failed: {exc}") from exc
            finally:
                writer.join()
        return output.rstrip(b"\x00").decode("utf-8", errors="replace").strip()

    def _write(self, payload: bytes) -> None:
        assert self._process.stdin is not None
        try:
            self._process.stdin.write(payload)
            self._process.stdin.flush()
        except OSError:
            pass  # the process died; the reader sees end of file and says so

    def close(self) -> None:
        if self._process.stdin:
            self._process.stdin.close()
        self._process.terminate()


class ApertiumTranslator:
    name = "apertium"

    def __init__(self, settings: TranslationSettings) -> None:
        self._modes_dir = settings.apertium_modes_dir
        self._pivot = settings.pivot_language
        self._protect_names = settings.protect_names
        self._modes: dict[tuple[str, str], Path] = {}
        self._pipelines: dict[tuple[str, ...], _ModePipeline] = {}
        self._version = ""

    def load(self) -> None:
        if shutil.which("lt-proc") is None or not self._modes_dir.is_dir():
            raise RuntimeError(
                "Apertium is not installed: `apt-get install apertium "
                f"{' '.join(DEBIAN_PAIRS.values())}`, or choose another "
                "NEWSFLOW_TRANSLATION__BACKEND"
            )
        self._modes = installed_modes(self._modes_dir)
        if not self._modes:
            raise RuntimeError(f"no Apertium language pairs in {self._modes_dir}")
        packages = {
            match[1]
            for mode_file in self._modes.values()
            for match in _DATA_PACKAGE.finditer(mode_file.read_text())
        }
        self._version = _package_versions(sorted(packages))

    def path(self, source: str, target: str) -> tuple[str, ...] | None:
        return pair_path(self._modes, source, target, self._pivot)

    def version(self) -> str:
        return self._version

    def translate(self, texts: list[str], path: tuple[str, ...]) -> list[str]:
        """All texts in one request per engine: the per-request flush is the expensive part."""
        if not texts:
            return []
        if self._protect_names:
            runs = "\n".join(capitalized_runs(texts))
            analysis = self._pipeline(path[:2], stages=1).translate(escape_stream(runs))
            classify = partial(_class_of, word_classes(analysis))
            protected = [protect(text, classify) for text in texts]
        else:
            protected = [ProtectedText(escape_stream(text), (), ()) for text in texts]
        pieces = self._run(f" {_SEPARATOR} ".join(p.text for p in protected), path).split(
            _SEPARATOR
        )
        if len(pieces) != len(texts):  # the engine moved a separator: go one text at a time
            pieces = [self._run(p.text, path) for p in protected]
        return [
            restore(unescape_stream(piece.strip()), p)
            for piece, p in zip(pieces, protected, strict=True)
        ]

    def _run(self, stream: str, path: tuple[str, ...]) -> str:
        for leg in itertools.pairwise(path):
            stream = self._pipeline(leg).translate(stream)
        return stream

    def _pipeline(self, leg: tuple[str, ...], stages: int | None = None) -> _ModePipeline:
        """The running pipeline for a leg (``stages=1``: just its morphological analyser)."""
        key = (*leg, str(stages))
        if key not in self._pipelines:
            self._pipelines[key] = _ModePipeline(self._modes[(leg[0], leg[1])], stages)
        return self._pipelines[key]

    def close(self) -> None:
        for pipeline in self._pipelines.values():
            pipeline.close()


def _class_of(classes: dict[str, str], word: str) -> str:
    return classes.get(word, PERSON_WORD)


def _package_versions(packages: list[str]) -> str:
    """'apertium 3.8.3; apertium-eng-spa 0.8.1-2; ...' from dpkg, for provenance."""
    result = subprocess.run(
        ["dpkg-query", "-W", "-f", "${Package} ${Version}\\n", "apertium", *packages],
        capture_output=True,
        text=True,
        check=False,
    )
    return "; ".join(line for line in result.stdout.splitlines() if line.strip())
