"""Translation to English, with provenance, so analysts can search and facet one language.

A ``Translator`` backend (chosen by ``translation.backend``) turns lists of paragraphs from one
language into another and says which language path it would take (direct, or a pivot through
Spanish). The stage around it decides *whether* to translate: English is never translated,
undetermined text is skipped, an unsupported pair is indexed as-is with ``status=unsupported``,
a backend failure is flagged ``status=failed`` (or raised, in strict mode, so the article goes
to the dead-letter topic). Trailing metadata lines such as ``Source: DN`` are not content and
are never sent to the engine. Results are cached by content hash, so replays do not pay twice.
"""

from __future__ import annotations

import hashlib
import re
import time
from collections import OrderedDict
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field, replace
from typing import Protocol

from apache_beam.metrics import Metrics

from newsflow.settings import TranslationSettings
from pipeline.enriched import UNDETERMINED, EnrichedArticle, Translation

TARGET = "en"
#: Lines that label rather than say something: attribution, photo credits, bylines.
_METADATA_LINE = re.compile(
    r"^\s*(source|fonte|fuente|quelle|crédito|credito|credit|foto|photo|photos|autor|author)"
    r"\s*:\s*\S.{0,120}$",
    re.IGNORECASE,
)
_SENTENCE_END = re.compile(r"(?<=[.!?…])\s+")


class TranslationError(Exception):
    """The backend could not translate (down, timed out, refused); the message says why."""


class Translator(Protocol):
    name: str

    def load(self) -> None:
        """Start engines / check installation; raise with what to install if unavailable."""

    def path(self, source: str, target: str) -> tuple[str, ...] | None:
        """Languages the text passes through (("pt", "es", "en")), or None if unsupported."""

    def translate(self, texts: list[str], path: tuple[str, ...]) -> list[str]:
        """Translate each text along ``path``; same length and order as ``texts``."""

    def version(self) -> str:
        """Engine and data version, recorded in every document's provenance."""


@dataclass
class NoTranslator:
    """Backend ``none``: nothing is translated; non-English articles are indexed as they are."""

    name: str = "none"

    def load(self) -> None:
        pass

    def path(self, source: str, target: str) -> tuple[str, ...] | None:
        return None

    def translate(self, texts: list[str], path: tuple[str, ...]) -> list[str]:
        raise TranslationError("the 'none' backend translates nothing")

    def version(self) -> str:
        return ""


def pair_path(
    pairs: Iterable[tuple[str, str]], source: str, target: str, pivot: str
) -> tuple[str, ...] | None:
    """The language path over installed (from, to) pairs: direct, else one pivot, else None.

    Every backend with a fixed set of installed pairs (Apertium, Argos, LibreTranslate) uses it.
    """
    available = set(pairs)
    if (source, target) in available:
        return (source, target)
    if pivot not in (source, target) and {(source, pivot), (pivot, target)} <= available:
        return (source, pivot, target)
    return None


def build_translator(settings: TranslationSettings) -> Translator:
    """The backend named in settings (imported lazily: optional backends need extra packages)."""
    if settings.backend == "apertium":
        from pipeline.translators.apertium import ApertiumTranslator

        return ApertiumTranslator(settings)
    if settings.backend == "argos":
        from pipeline.translators.argos import ArgosTranslator

        return ArgosTranslator(settings)
    if settings.backend in ("libretranslate", "deepl"):
        from pipeline.translators.http import http_translator

        return http_translator(settings)
    return NoTranslator()


def split_content(body: str) -> tuple[list[str], list[str]]:
    """Body -> (paragraphs to translate, trailing metadata lines kept verbatim)."""
    lines = [line.strip() for line in re.split(r"\n\s*\n|\n", body) if line.strip()]
    trailer: list[str] = []
    while lines and _METADATA_LINE.match(lines[-1]):
        trailer.insert(0, lines.pop())
    return lines, trailer


def chunk(paragraph: str, max_chars: int) -> list[str]:
    """Split a paragraph at sentence ends so no piece exceeds the engine's limit."""
    if len(paragraph) <= max_chars:
        return [paragraph]
    pieces: list[str] = []
    current = ""
    for sentence in _SENTENCE_END.split(paragraph):
        while len(sentence) > max_chars:  # a "sentence" without punctuation: hard cut
            pieces.append(sentence[:max_chars])
            sentence = sentence[max_chars:]
        if current and len(current) + 1 + len(sentence) > max_chars:
            pieces.append(current)
            current = sentence
        else:
            current = f"{current} {sentence}".strip()
    if current:
        pieces.append(current)
    return pieces


def content_key(language: str, title: str, body: str, engine: str, version: str) -> str:
    text = "\x00".join((language, title, body, engine, version))
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def translate_documents(
    translator: Translator,
    path: tuple[str, ...],
    documents: list[tuple[str, str]],
    max_chars: int,
) -> list[tuple[str, str]]:
    """Translate the titles and bodies of documents in one engine call, paragraph by paragraph.

    One call for many articles: a request's fixed cost (Apertium flushes a dozen processes,
    HTTP engines pay a round trip and a rate-limit slot) is paid once per batch.
    """
    pieces: list[str] = []
    layouts: list[tuple[bool, list[int], list[str]]] = []
    for title, body in documents:
        paragraphs, trailer = split_content(body)
        parts = [chunk(paragraph, max_chars) for paragraph in paragraphs]
        pieces += ([title] if title else []) + [part for split in parts for part in split]
        layouts.append((bool(title), [len(split) for split in parts], trailer))
    translated = translator.translate(pieces, path)
    if len(translated) != len(pieces):
        raise TranslationError(f"engine returned {len(translated)} texts for {len(pieces)}")
    english: list[tuple[str, str]] = []
    position = 0
    for has_title, counts, trailer in layouts:
        title = translated[position] if has_title else ""
        position += has_title
        paragraphs = []
        for count in counts:
            paragraphs.append(" ".join(translated[position : position + count]))
            position += count
        english.append((title, "\n\n".join(paragraphs + trailer)))
    return english


class _LruCache:
    def __init__(self, size: int) -> None:
        self._size = size
        self._entries: OrderedDict[str, Translation] = OrderedDict()

    def get(self, key: str) -> Translation | None:
        found = self._entries.get(key)
        if found is not None:
            self._entries.move_to_end(key)
        return found

    def put(self, key: str, value: Translation) -> None:
        if self._size == 0:
            return
        self._entries[key] = value
        self._entries.move_to_end(key)
        while len(self._entries) > self._size:
            self._entries.popitem(last=False)


@dataclass
class TranslationStage:
    """Stage: set ``EnrichedArticle.translation``."""

    settings: TranslationSettings
    name: str = "translation"
    translator_factory: Callable[[TranslationSettings], Translator] = build_translator
    #: Where earlier translations of the same article ids can be found (e.g. the index).
    memory_factory: Callable[[], Callable[[list[str]], dict[str, Translation]]] | None = None
    _translator: Translator | None = field(default=None, repr=False)
    _memory: Callable[[list[str]], dict[str, Translation]] | None = field(default=None, repr=False)
    _cache: _LruCache = field(default_factory=lambda: _LruCache(0), repr=False)

    def load(self) -> None:
        self._translator = self.translator_factory(self.settings)
        self._translator.load()
        self._cache = _LruCache(self.settings.cache_entries)
        self._memory = self.memory_factory() if self.memory_factory else None

    def run(self, batch: list[EnrichedArticle]) -> list[EnrichedArticle]:
        """Each article's translation; those that need the engine share one call per path."""
        remembered = self._memory([item.article.id for item in batch]) if self._memory else {}
        decided: dict[int, Translation] = {}
        waiting: dict[tuple[str, ...], list[tuple[int, EnrichedArticle, str]]] = {}
        copies: dict[int, int] = {}  # the same text twice in a batch is translated once
        first_with: dict[str, int] = {}
        for index, item in enumerate(batch):
            outcome = self._without_engine(item, remembered.get(item.article.id))
            if isinstance(outcome, Translation):
                decided[index] = outcome
                continue
            path, key = outcome
            if key in first_with:
                copies[index] = first_with[key]
            else:
                first_with[key] = index
                waiting.setdefault(path, []).append((index, item, key))
        for path, group in waiting.items():
            decided.update(self._translate(path, group))
        for index, original in copies.items():
            decided[index] = replace(decided[original], cached=True)
        results = []
        for index, item in enumerate(batch):
            Metrics.counter(self.name, decided[index].status).inc()  # a no-op outside Beam
            results.append(replace(item, translation=decided[index]))
        return results

    def translate(
        self, item: EnrichedArticle, remembered: Translation | None = None
    ) -> Translation:
        """One article's translation (``run`` does the same for a batch)."""
        outcome = self._without_engine(item, remembered)
        if isinstance(outcome, Translation):
            return outcome
        path, key = outcome
        return self._translate(path, [(0, item, key)])[0]

    def _without_engine(
        self, item: EnrichedArticle, remembered: Translation | None
    ) -> Translation | tuple[tuple[str, ...], str]:
        """The translation when no engine call is needed, else the path and content key."""
        assert self._translator is not None, "load() first"
        translator = self._translator
        language = item.language.code if item.language else UNDETERMINED
        if language == TARGET:
            return Translation(status="not_needed", engine="none", path=(TARGET,))
        if language == UNDETERMINED:
            return Translation(status="skipped", engine="none")
        path = translator.path(language, TARGET)
        if path is None:
            return Translation(status="unsupported", engine=translator.name, path=(language,))
        article = item.article
        key = content_key(
            language, article.title, article.body, translator.name, translator.version()
        )
        if remembered is not None and remembered.content_key == key:
            self._cache.put(key, remembered)
        if (cached := self._cache.get(key)) is not None:
            return replace(cached, cached=True)
        return path, key

    def _translate(
        self, path: tuple[str, ...], group: list[tuple[int, EnrichedArticle, str]]
    ) -> dict[int, Translation]:
        """One engine call for the group; when it fails, one per article, so a bad article
        fails alone. Each article's ``seconds`` is its share of the call, by length."""
        assert self._translator is not None, "load() first"
        translator = self._translator
        documents = [(item.article.title, item.article.body) for _, item, _ in group]
        started = time.perf_counter()
        try:
            english = translate_documents(
                translator, path, documents, self.settings.max_chunk_chars
            )
        except TranslationError as exc:
            if len(group) > 1:
                return {k: v for one in group for k, v in self._translate(path, [one]).items()}
            if self.settings.strict:
                raise
            return {
                group[0][0]: Translation(
                    status="failed",
                    engine=translator.name,
                    path=path,
                    engine_version=translator.version(),
                    error=str(exc),
                    seconds=round(time.perf_counter() - started, 4),
                )
            }
        seconds = time.perf_counter() - started
        total = sum(len(title) + len(body) for title, body in documents) or 1
        results = {}
        for (index, _, key), (title, body), original in zip(group, english, documents, strict=True):
            share = (len(original[0]) + len(original[1])) / total
            result = Translation(
                status="translated",
                engine=translator.name,
                title=title,
                body=body,
                path=path,
                engine_version=translator.version(),
                seconds=round(seconds * share, 4),
                content_key=key,
            )
            self._cache.put(key, result)
            results[index] = result
        return results
