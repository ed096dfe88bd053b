"""Quality benchmark: language ID, translation chrF, entity preservation and stage cost, one run.

Everything is measured on real, human-written news from the shared corpus (never copied into the
repo): NTREX-128 gives the same 123 WMT19 news documents in English and in human translation, so
one document set answers "is the language right?", "how good is the English?", "do the names
survive translation?" and "what does each stage cost per article?". German (10kGNAD), Portuguese
(Fake.br) and Spanish (Spanish Fake News Corpus) article sets add language ID on native news.
Results go to stdout as Markdown tables (progress on stderr) and, with --json, to a file;
docs/QUALITY.md is written from one such run.

    python bench/quality.py [--limit N] [--json PATH]
"""

from __future__ import annotations

import argparse
import csv
import datetime as dt
import json
import os
import platform
import re
import subprocess
import sys
import time
import zipfile
from collections import Counter
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from functools import partial
from pathlib import Path
from typing import Any, TypeVar
from xml.etree import ElementTree

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))
CORPUS = Path(os.environ.get("NEWSFLOW_SHARED_DIR") or REPO.parent / "shared") / "corpus"
NTREX = Path("parallel/ntrex-128")
#: NTREX file stem -> language (ISO 639-1); each file is 1,997 line-aligned segments.
NTREX_FILES = {
    "src.eng": "en",
    "ref.eng-GB": "en",
    "ref.deu": "de",
    "ref.fra": "fr",
    "ref.spa": "es",
    "ref-2.spa": "es",
    "ref.por": "pt",
    "ref.por-BR": "pt",
    "ref.ita": "it",
    "ref.zho-CN": "zh",
}
#: The English the translations are scored against: the WMT19 original the refs come from.
REFERENCE = "src.eng"
#: Translation pairs: (label, NTREX file, source language).
PAIRS = (
    ("es→en", "ref.spa", "es"),
    ("pt→en (pt-PT)", "ref.por", "pt"),
    ("pt→en (pt-BR)", "ref.por-BR", "pt"),
    ("fr→en", "ref.fra", "fr"),
    ("de→en", "ref.deu", "de"),
)
#: Entity types whose survival we check: the people/organisation/place facets analysts use.
ENTITY_LABELS = ("PERSON", "GPE", "ORG")
_OUTER_PUNCTUATION = "\"'‘’“”«»()[]{},.;:!?-–—"  # noqa: RUF001 - typographic quotes are data
DEFAULT_LIMIT = 500

T = TypeVar("T")
Entities = set[tuple[str, str]]  # (label, normalized name)
_STARTED = time.perf_counter()


def log_elapsed() -> float:
    return time.perf_counter() - _STARTED


def log(message: str) -> None:
    print(f"[{log_elapsed():6.1f}s] {message}", file=sys.stderr, flush=True)


# --- data -------------------------------------------------------------------------------------


def group_documents(doc_ids: Sequence[str], lines: Sequence[str]) -> dict[str, list[str]]:
    """NTREX lines -> document id -> its lines in order (DOCUMENT_IDS.tsv names each line's doc)."""
    if len(doc_ids) != len(lines):
        raise ValueError(f"{len(doc_ids)} document ids for {len(lines)} lines")
    documents: dict[str, list[str]] = {}
    previous = None
    for doc_id, line in zip(doc_ids, lines, strict=True):
        if doc_id in documents and doc_id != previous:
            raise ValueError(f"document {doc_id!r} is not contiguous")
        documents.setdefault(doc_id, []).append(line)
        previous = doc_id
    return documents


def spread(items: Sequence[T], limit: int) -> list[T]:
    """At most ``limit`` items evenly spaced over the set, so a cap still samples every part."""
    if limit >= len(items):
        return list(items)
    return [items[i * len(items) // limit] for i in range(limit)]


def read_ntrex(corpus: Path, limit: int) -> dict[str, list[list[str]]]:
    """NTREX file stem -> documents (lists of lines), the same documents in the same order."""
    root = corpus / NTREX
    doc_ids = (root / "DOCUMENT_IDS.tsv").read_text(encoding="utf-8").splitlines()
    chosen = spread(list(dict.fromkeys(doc_ids)), limit)
    result = {}
    for stem in NTREX_FILES:
        lines = (root / "NTREX-128" / f"newstest2019-{stem}.txt").read_text(encoding="utf-8")
        documents = group_documents(doc_ids, lines.splitlines())
        result[stem] = [documents[doc_id] for doc_id in chosen]
    return result


def read_gnad(path: Path) -> list[str]:
    """10kGNAD: ``label;'text'`` rows, one article per row."""
    with path.open(encoding="utf-8", newline="") as handle:
        return [row[1] for row in csv.reader(handle, delimiter=";", quotechar="'") if len(row) > 1]


def read_fakebr_true(folder: Path) -> list[str]:
    """Fake.br's real (true) articles, by numeric id; they start with a BOM."""
    files = sorted(folder.glob("*.txt"), key=lambda p: int(p.stem))
    return [p.read_text(encoding="utf-8-sig").strip() for p in files]


_XLSX = "{http://schemas.openxmlformats.org/spreadsheetml/2006/main}"


def read_xlsx_column(path: Path, column: str) -> list[str]:
    """One column of the first sheet, by header name; stdlib only (openpyxl is not a dependency)."""
    with zipfile.ZipFile(path) as book:
        strings = [
            "".join(t.text or "" for t in item.iter(f"{_XLSX}t"))
            for item in ElementTree.fromstring(book.read("xl/sharedStrings.xml"))
        ]
        sheet = ElementTree.fromstring(book.read("xl/worksheets/sheet1.xml"))
    rows = []
    for row in sheet.iter(f"{_XLSX}row"):
        cells = {}
        for cell in row.iter(f"{_XLSX}c"):
            value = cell.findtext(f"{_XLSX}v") or "".join(cell.itertext())
            letters = re.sub(r"\d", "", cell.get("r", ""))
            cells[letters] = strings[int(value)] if cell.get("t") == "s" else value
        rows.append(cells)
    header = {name.casefold(): letters for letters, name in rows[0].items()}  # Text or TEXT
    key = header[column.casefold()]
    return [row[key] for row in rows[1:] if row.get(key, "").strip()]


def read_spanish_fake_news(corpus: Path) -> list[str]:
    """The Spanish Fake News Corpus's texts, all three splits."""
    folder = corpus / "articles" / "spanish-fake-news-corpus"
    return [
        text
        for split in ("train", "development", "test")
        for text in read_xlsx_column(folder / f"{split}.xlsx", "Text")
    ]


def article_sets(corpus: Path, limit: int) -> dict[str, tuple[str, list[str]]]:
    """Native-news sets for language ID: name -> (language, texts)."""
    articles = corpus / "articles"
    spanish = read_spanish_fake_news(corpus)
    return {
        "10kGNAD test.csv": ("de", spread(read_gnad(articles / "10kGNAD" / "test.csv"), limit)),
        "Fake.br true": (
            "pt",
            spread(read_fakebr_true(articles / "fake-br-corpus" / "full_texts" / "true"), limit),
        ),
        "Spanish Fake News (train+dev+test)": ("es", spread(spanish, limit)),
    }


def words(texts: Iterable[str]) -> int:
    return sum(len(text.split()) for text in texts)


# --- language ID ------------------------------------------------------------------------------


@dataclass
class LanguageRow:
    data: str
    language: str
    expected: str
    documents: int
    accuracy: float
    undetermined: float
    confusions: str


def score_languages(data: str, language: str, expected: str, found: list[str]) -> LanguageRow:
    """Accuracy and ``und`` share of detected codes against the one expected code."""
    wrong = Counter(code for code in found if code != expected)
    return LanguageRow(
        data=data,
        language=language,
        expected=expected,
        documents=len(found),
        accuracy=sum(code == expected for code in found) / len(found),
        undetermined=found.count("und") / len(found),
        confusions=", ".join(f"{code} {n}" for code, n in wrong.most_common()),
    )


def enriched(title_body: Iterable[tuple[str, str]]) -> list[Any]:
    """Texts as the stage sees them (EnrichedArticle), so we time and score the real stage."""
    from newsflow.article import Article
    from pipeline.enriched import EnrichedArticle
    from pipeline.kafka_source import Origin

    fetched = dt.datetime(2026, 1, 1, tzinfo=dt.UTC)
    return [
        EnrichedArticle(
            Article.create(source="bench", title=title, body=body, fetched_at=fetched),
            Origin("bench", 0, offset),
        )
        for offset, (title, body) in enumerate(title_body)
    ]


def as_article(lines: list[str]) -> tuple[str, str]:
    """An NTREX document as an article: first segment is the headline, one line per sentence."""
    return lines[0], "\n".join(lines[1:])


def detect_all(stage: Any, items: list[Any]) -> list[str]:
    return [item.language.code for item in stage.run(items)]


def language_id(
    stage: Any, ntrex: dict[str, list[list[str]]], sets: dict[str, tuple[str, list[str]]]
) -> list[LanguageRow]:
    """Per data set: does the detector (no source hint) name the right language?

    A language the detector is not configured for (zh) can only be right as ``und``.
    """
    rows = []
    for stem, language in NTREX_FILES.items():
        expected = language if language in stage.languages else "und"
        found = detect_all(stage, enriched(as_article(doc) for doc in ntrex[stem]))
        rows.append(score_languages(f"NTREX {stem}", language, expected, found))
    for name, (language, texts) in sets.items():
        found = detect_all(stage, enriched(("", text) for text in texts))
        rows.append(score_languages(name, language, language, found))
    return rows


# --- translation and entities -----------------------------------------------------------------


def normalize_name(text: str) -> str:
    """Case, spacing, outer punctuation, "'s" and a leading "the" do not make another entity."""
    name = " ".join(text.split()).casefold()
    previous = None
    while name != previous:
        previous = name
        name = name.strip(_OUTER_PUNCTUATION).strip()
        name = name.removesuffix("'s").removesuffix("’s").removeprefix("the ").strip()
    return name


def entity_set(spans: Iterable[tuple[str, str]]) -> Entities:
    """(label, text) spans -> the document's PERSON/GPE/ORG entities, normalized."""
    return {
        (label, name)
        for label, text in spans
        if label in ENTITY_LABELS and (name := normalize_name(text))
    }


def preserved(reference: Entities, hypothesis: Entities, same_label: bool = False) -> Entities:
    """Reference entities also found in the hypothesis (by name; by label too if asked)."""
    if same_label:
        return reference & hypothesis
    names = {name for _, name in hypothesis}
    return {entity for entity in reference if entity[1] in names}


@dataclass
class EntityScore:
    entities: int
    preserved: float | None  # None: the reference has no such entities
    #: Share of the translation's entities the reference also has (by name): its precision
    #: against the reference's NER, as ``preserved`` is its recall.
    supported: float | None
    same_label: float | None
    by_label: dict[str, float | None]
    per_document: list[int]  # preserved count per document, for paired comparisons


def entity_score(references: list[Entities], hypotheses: list[Entities]) -> EntityScore:
    """Micro-averaged share of reference entities that survive, overall and per label."""
    kept = [preserved(r, h) for r, h in zip(references, hypotheses, strict=True)]
    typed = [preserved(r, h, True) for r, h in zip(references, hypotheses, strict=True)]
    total = sum(len(r) for r in references)
    supported = sum(len(preserved(h, r)) for r, h in zip(references, hypotheses, strict=True))

    def share(found: int, of: int) -> float | None:
        return found / of if of else None

    by_label = {
        label: share(
            sum(1 for k in kept for entity in k if entity[0] == label),
            sum(1 for r in references for entity in r if entity[0] == label),
        )
        for label in ENTITY_LABELS
    }
    return EntityScore(
        entities=total,
        preserved=share(sum(len(k) for k in kept), total),
        supported=share(supported, sum(len(h) for h in hypotheses)),
        same_label=share(sum(len(t) for t in typed), total),
        by_label=by_label,
        per_document=[len(k) for k in kept],
    )


def paired(a: Sequence[float], b: Sequence[float]) -> str:
    """Documents on which ``a`` beats, loses to and ties ``b``: "W/L/T"."""
    wins = sum(x > y for x, y in zip(a, b, strict=True))
    losses = sum(x < y for x, y in zip(a, b, strict=True))
    return f"{wins}/{losses}/{len(a) - wins - losses}"


# --- cost -------------------------------------------------------------------------------------


@dataclass
class Timing:
    seconds: float  # wall clock
    cpu_seconds: float  # this process plus its child processes (Apertium is a process pipeline)


def descendant_cpu() -> dict[int, float]:
    """pid -> CPU seconds so far, for our live child processes and theirs, read from /proc."""
    tick = os.sysconf("SC_CLK_TCK")
    parents: dict[int, int] = {}
    cpu: dict[int, float] = {}
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue  # exited while we looked
        parents[int(stat.parent.name)] = int(fields[1])
        cpu[int(stat.parent.name)] = (int(fields[11]) + int(fields[12])) / tick
    ours: set[int] = set()
    frontier = {os.getpid()}
    while frontier:
        frontier = {pid for pid, parent in parents.items() if parent in frontier} - ours
        ours |= frontier
    return {pid: cpu[pid] for pid in ours}


def timed(work: Callable[[], T]) -> tuple[T, Timing]:
    """Wall and CPU time of ``work``: on 2 cores a process pipeline's wall time hides its CPU.

    Child CPU is summed per pid over the children alive at the end, so a process that exits
    meanwhile (a closed engine) cannot make the total go down.
    """

    def own_cpu() -> float:  # this process, plus children that exited and were waited for
        times = os.times()
        return time.process_time() + times.children_user + times.children_system

    wall, cpu, children = time.perf_counter(), own_cpu(), descendant_cpu()
    result = work()
    after = descendant_cpu()
    return result, Timing(
        seconds=time.perf_counter() - wall,
        cpu_seconds=own_cpu()
        - cpu
        + sum(seconds - children.get(pid, 0.0) for pid, seconds in after.items()),
    )


@dataclass
class ThroughputRow:
    stage: str
    articles: int
    words: int
    seconds: float
    cpu_seconds: float
    articles_per_second: float
    words_per_second: float
    ms_per_article: float
    cpu_ms_per_article: float


def throughput(stage: str, texts: Sequence[str], timing: Timing) -> ThroughputRow:
    count, seconds = len(texts), timing.seconds
    return ThroughputRow(
        stage=stage,
        articles=count,
        words=words(texts),
        seconds=round(seconds, 3),
        cpu_seconds=round(timing.cpu_seconds, 3),
        articles_per_second=round(count / seconds, 1),
        words_per_second=round(words(texts) / seconds),
        ms_per_article=round(1000 * seconds / count, 2),
        cpu_ms_per_article=round(1000 * timing.cpu_seconds / count, 2),
    )


# --- translation ------------------------------------------------------------------------------

UNTRANSLATED = "none (source as-is)"
#: Backend label -> protect_names; the two settings whose default this benchmark decides.
BACKENDS = {"apertium, protect_names=True": True, "apertium, protect_names=False": False}


@dataclass
class Output:
    path: str  # "es→en", "pt→es→en"; "unsupported" when the backend has no path
    texts: list[str] | None
    timing: Timing | None = None


def translate_segments(
    translator: Any, path: tuple[str, ...], documents: list[list[str]], per_request: int
) -> list[str]:
    """Documents translated segment by segment (segments are sentences), then joined; as the
    translation stage does, ``per_request`` documents share one engine call."""
    english: list[str] = []
    for start in range(0, len(documents), per_request):
        group = documents[start : start + per_request]
        translated = translator.translate([line for lines in group for line in lines], path)
        for lines in group:
            english.append(" ".join(translated[: len(lines)]))
            del translated[: len(lines)]
    return english


def translations(ntrex: dict[str, list[list[str]]]) -> dict[tuple[str, str], Output]:
    """(pair, backend) -> the English documents and what producing them cost."""
    from newsflow.settings import NlpSettings, TranslationSettings
    from pipeline.translation import build_translator

    result = {
        (pair, UNTRANSLATED): Output(source, [" ".join(doc) for doc in ntrex[stem]])
        for pair, stem, source in PAIRS
    }
    for backend, protect in BACKENDS.items():
        translator = build_translator(
            TranslationSettings(backend="apertium", protect_names=protect)
        )
        translator.load()
        try:
            for pair, stem, source in PAIRS:
                path = translator.path(source, "en")
                if path is None:
                    result[pair, backend] = Output("unsupported", None)
                    continue
                log(f"translating {pair} with {backend}")
                translator.translate(ntrex[stem][0][:1], path)  # start the engines untimed
                per_request = NlpSettings().batch_size  # a pipeline batch is one request
                work = partial(translate_segments, translator, path, ntrex[stem], per_request)
                texts, timing = timed(work)
                result[pair, backend] = Output("→".join(path), texts, timing)
        finally:
            close = getattr(translator, "close", None)
            if close is not None:
                close()
    return result


@dataclass
class TranslationRow:
    pair: str
    backend: str
    path: str
    chrf: float | None  # None: unsupported
    entities: int
    preserved: float | None
    supported: float | None
    same_label: float | None
    person: float | None
    gpe: float | None
    org: float | None
    #: Per document, this protection setting against the other one: wins/losses/ties.
    chrf_vs_other: str = ""
    entities_vs_other: str = ""


def translation_rows(
    outputs: dict[tuple[str, str], Output],
    references: list[str],
    reference_entities: list[Entities],
    find_entities: Callable[[list[str]], list[Entities]],
) -> list[TranslationRow]:
    """chrF against the English original and entity preservation, per pair and backend."""
    import sacrebleu

    rows = []
    for pair, _, _ in PAIRS:
        chrfs: dict[str, list[float]] = {}
        scores: dict[str, EntityScore] = {}
        for backend in (UNTRANSLATED, *BACKENDS):
            texts = outputs[pair, backend].texts
            if texts is not None:
                log(f"scoring {pair}, {backend}")
                chrfs[backend] = [
                    sacrebleu.sentence_chrf(hyp, [ref]).score
                    for hyp, ref in zip(texts, references, strict=True)
                ]
                scores[backend] = entity_score(reference_entities, find_entities(texts))
        for backend in (UNTRANSLATED, *BACKENDS):
            output, score = outputs[pair, backend], scores.get(backend)
            other = next((b for b in BACKENDS if b != backend), "") if backend in BACKENDS else ""
            compare = score is not None and other in scores
            rows.append(
                TranslationRow(
                    pair=pair,
                    backend=backend,
                    path=output.path,
                    chrf=None
                    if output.texts is None
                    else round(sacrebleu.corpus_chrf(output.texts, [references]).score, 2),
                    entities=score.entities if score else 0,
                    preserved=score.preserved if score else None,
                    supported=score.supported if score else None,
                    same_label=score.same_label if score else None,
                    person=score.by_label["PERSON"] if score else None,
                    gpe=score.by_label["GPE"] if score else None,
                    org=score.by_label["ORG"] if score else None,
                    chrf_vs_other=paired(chrfs[backend], chrfs[other]) if compare else "",
                    entities_vs_other=paired(score.per_document, scores[other].per_document)
                    if compare and score
                    else "",
                )
            )
    return rows


# --- report -----------------------------------------------------------------------------------


#: Fields shown as percentages; None shows as "-" (or "unsupported" for chrF).
_PERCENT = {"accuracy", "undetermined", "preserved", "supported", "same_label"} | {
    "person",
    "gpe",
    "org",
}
#: Section title, which rows, and field -> column header.
_TABLES: list[tuple[str, str, dict[str, str]]] = [
    (
        "## Language ID (document level, no source hint)",
        "languages",
        {"data": "data", "language": "language", "expected": "expected", "documents": "docs"}
        | {"accuracy": "accuracy", "undetermined": "und", "confusions": "wrong answers"},
    ),
    (
        "## Translation: chrF against the English original (document level)",
        "quality",
        {"pair": "pair", "backend": "backend", "path": "path", "chrf": "chrF"}
        | {"chrf_vs_other": "docs W/L/T vs other setting"},
    ),
    (
        "## Entity preservation: reference PERSON/GPE/ORG also found in the translation",
        "supported",
        {"pair": "pair", "backend": "backend", "entities": "ref entities"}
        | {"preserved": "preserved (recall)", "supported": "in reference (precision)"}
        | {"same_label": "same label", "person": "PERSON"}
        | {"gpe": "GPE", "org": "ORG", "entities_vs_other": "docs W/L/T vs other setting"},
    ),
    (
        "## Stage throughput (one worker, same NTREX documents)",
        "cost",
        {"stage": "stage", "articles": "articles", "words": "words", "seconds": "s"}
        | {"articles_per_second": "articles/s", "words_per_second": "words/s"}
        | {"ms_per_article": "ms/article", "cpu_ms_per_article": "CPU ms/article"},
    ),
]


def cell(field: str, value: object) -> str:
    if value is None or value == "":
        return "unsupported" if field == "chrf" else "-"
    if field in _PERCENT and isinstance(value, float):
        return f"{100 * value:.1f}%"
    return str(value)


def markdown(headers: list[str], rows: Iterable[Sequence[object]]) -> str:
    lines = ["| " + " | ".join(headers) + " |", "|" + "---|" * len(headers)]
    lines += ["| " + " | ".join(str(value) for value in row) + " |" for row in rows]
    return "\n".join(lines)


def report(
    languages: list[LanguageRow], quality: list[TranslationRow], cost: list[ThroughputRow]
) -> str:
    """The four Markdown tables and the cost verdict, as printed and as pasted into QUALITY.md."""
    rows: dict[str, Sequence[Any]] = {
        "languages": languages,
        "quality": quality,
        "supported": [r for r in quality if r.chrf is not None],
        "cost": cost,
    }
    sections = []
    for title, which, columns in _TABLES:
        body = ([cell(f, getattr(r, f)) for f in columns] for r in rows[which])
        sections += [title, markdown(list(columns.values()), body)]
    return "\n\n".join([*sections, cost_verdict(cost)])


def cost_verdict(cost: list[ThroughputRow]) -> str:
    """The issue's requirement, stated: translation must cost less per article than NER."""
    ner = next(r for r in cost if r.stage.startswith("NER"))
    lines = []
    for row in cost:
        if row.stage.startswith("Apertium"):
            cheaper = row.cpu_ms_per_article < ner.cpu_ms_per_article
            lines.append(
                f"- {row.stage}: {row.cpu_ms_per_article} CPU ms/article "
                f"({row.ms_per_article} wall) vs NER {ner.cpu_ms_per_article} "
                f"({ner.ms_per_article} wall): "
                f"{'cheaper' if cheaper else 'NOT cheaper'} than NER"
            )
    return "Apertium against NER, per article:\n\n" + "\n".join(lines)


def machine() -> dict[str, Any]:
    meminfo = Path("/proc/meminfo").read_text() if Path("/proc/meminfo").exists() else ""
    ram = re.search(r"MemTotal:\s+(\d+) kB", meminfo)
    cpuinfo = Path("/proc/cpuinfo").read_text() if Path("/proc/cpuinfo").exists() else ""
    model = re.search(r"model name\s*:\s*(.+)", cpuinfo)
    commit = subprocess.run(
        ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True
    ).stdout.strip()
    return {
        "date": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "nproc": os.cpu_count(),
        "ram_gib": round(int(ram[1]) / 2**20, 1) if ram else None,
        "cpu": model[1].strip() if model else platform.processor(),
        "python": platform.python_version(),
        "commit": commit or "unknown",
        "command": " ".join(["python", *sys.argv]),
    }


# --- main -------------------------------------------------------------------------------------


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--limit",
        type=int,
        default=DEFAULT_LIMIT,
        help=f"at most N documents per data set, evenly spread (default {DEFAULT_LIMIT}; "
        "NTREX has 123)",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help=f"default {CORPUS}")
    args = parser.parse_args(argv)
    if not (args.corpus / NTREX).is_dir():
        parser.error(f"no NTREX-128 under {args.corpus}; this benchmark needs the shared corpus")

    import spacy

    from newsflow.settings import load_settings
    from pipeline.language import LanguageDetection

    settings = load_settings().nlp
    log(f"reading data (limit {args.limit} documents per set)")
    ntrex = read_ntrex(args.corpus, args.limit)
    sets = article_sets(args.corpus, args.limit)

    log("language ID")
    detector = LanguageDetection(
        settings.languages, settings.min_language_confidence, settings.max_language_chars
    )
    detector.load()
    languages = language_id(detector, ntrex, sets)  # also loads lingua's models, untimed
    spanish = enriched(as_article(doc) for doc in ntrex["ref.spa"])
    _, detect_time = timed(lambda: detector.run(spanish))

    log(f"loading spaCy {settings.spacy_model}")
    nlp = spacy.load(settings.spacy_model, enable=settings.spacy_components)

    def find_entities(texts: list[str]) -> list[Entities]:
        return [
            entity_set((e.label_, e.text) for e in doc.ents)
            for doc in nlp.pipe(texts, batch_size=settings.batch_size)
        ]

    references = [" ".join(doc) for doc in ntrex[REFERENCE]]
    find_entities(references[:2])  # warm up
    log(f"NER on {len(references)} English reference documents")
    reference_entities, ner_time = timed(lambda: find_entities(references))

    outputs = translations(ntrex)
    quality = translation_rows(outputs, references, reference_entities, find_entities)

    cost = [throughput("language ID (stage run, es)", [i.text for i in spanish], detect_time)]
    for pair, stem, source in PAIRS:
        for backend in BACKENDS:
            output = outputs[pair, backend]
            if output.timing is not None:
                sources = [" ".join(doc) for doc in ntrex[stem]]
                stage = pair.replace(f"{source}→en", f"Apertium {output.path}")
                label = f"{stage}, {backend.split(', ')[1]}"
                cost.append(throughput(label, sources, output.timing))
    cost.append(throughput("NER (nlp.pipe tok2vec+ner, en)", references, ner_time))

    meta = machine() | {"limit": args.limit, "runtime_seconds": round(log_elapsed(), 1)}
    print(f"# Quality benchmark\n\n```\n{json.dumps(meta, indent=2)}\n```\n")
    print(report(languages, quality, cost))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "meta": meta,
                    "language_id": [asdict(r) for r in languages],
                    "translation": [asdict(r) for r in quality],
                    "throughput": [asdict(r) for r in cost],
                },
                indent=2,
                ensure_ascii=False,
            )
            + "\n",
            encoding="utf-8",
        )
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
