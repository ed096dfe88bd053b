"""Name completion benchmark: how often a partial person name gets the right full name.

Leave one out on the BBC News 2005 set (2,225 English articles in the shared corpus, never copied
into the repo). The real entity stage tags every article; the book of full person names is built
from all of them, each article counting once per name, as ``pipeline.names.NameCompletion``
learns. Then every shorter form an article uses for a full name it also spells out ("Blair" for
"Tony Blair") is completed against the book less that article's own names, as if the article had
never written the full name. The answer is correct (the name the article spells), wrong (another
name) or none (the name stays as written).

Also: precision and coverage over a grid of the two settings; what the stage would do to every
person name of every article, the book again without that article (one-word names the article
never spells out in full are the real orphans); and the cost of one lookup and of the book.
Markdown tables on stdout, progress on stderr, everything with --json.

    python -m bench.names [--limit N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import tracemalloc
from collections import Counter
from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import asdict, dataclass, replace
from itertools import chain, islice
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.dedupe import same_text  # noqa: E402
from bench.pipeline_throughput import BBC, bbc_file, bbc_files  # noqa: E402
from bench.quality import CORPUS, enriched, log, machine, markdown, spread  # noqa: E402
from newsflow.settings import NameSettings, NlpSettings, load_settings  # noqa: E402
from pipeline.enriched import Entity, LanguageGuess  # noqa: E402
from pipeline.entities import EntityExtraction, normalize_name, short_for  # noqa: E402
from pipeline.names import NameBook, completion, full_person_names  # noqa: E402

DOMINANCE = (0.8, 0.9, 0.95)
MIN_DOCUMENTS = (1, 2, 3)
#: Articles per call of the entity stage, as the pipeline batches them.
BATCH = 32
EXAMPLES = 10
GRID_COLUMNS = [
    "dominance",
    "min_documents",
    "correct",
    "wrong",
    "abstained",
    "precision",
    "coverage",
]


@dataclass(frozen=True)
class Doc:
    key: str  # "politics/161"
    title: str
    body: str


def read_bbc(corpus: Path, limit: int | None = None) -> list[Doc]:
    """The BBC set: first line the title, the rest the body; ``limit`` spreads over categories."""
    files = bbc_files(corpus)
    docs = []
    for path in spread(files, limit) if limit is not None else files:
        sample = bbc_file(path)
        docs.append(Doc(f"{path.parent.name}/{path.stem}", sample.title, sample.body))
    return docs


def extract(docs: Sequence[Doc], nlp: NlpSettings) -> list[tuple[Entity, ...]]:
    """Each article's entities from the real stage, on the text the pipeline gives it."""
    stage = EntityExtraction(
        nlp.spacy_model, nlp.spacy_components, nlp.batch_size, nlp.max_ner_chars
    )
    stage.load()
    english = LanguageGuess("en", 1.0)
    items = [replace(item, language=english) for item in enriched((d.title, d.body) for d in docs)]
    found: list[tuple[Entity, ...]] = []
    for start in range(0, len(items), BATCH):
        found += [item.entities for item in stage.run(items[start : start + BATCH])]
        if len(found) % (8 * BATCH) == 0 or len(found) == len(items):
            log(f"entities: {len(found)}/{len(items)} articles")
    return found


# --- the book and what an article adds to it ---------------------------------------------------


def contributions(names: Iterable[set[str]]) -> Counter[str]:
    """What articles add to the book: each of an article's full names counts 1."""
    return Counter(name for article in names for name in article)


def build_book(names: Iterable[set[str]], max_names: int) -> NameBook:
    book = NameBook(max_names)
    for article in names:
        book.add(contributions([article]))
    return book


def without(known: Mapping[str, int], own: Mapping[str, int]) -> dict[str, int]:
    """The book's neighbourhood less what some articles added to it: counts lowered, 0s gone."""
    left = {name: count - own.get(name, 0) for name, count in known.items()}
    return {name: count for name, count in left.items() if count > 0}


def copy_groups(docs: Sequence[Doc]) -> list[list[int]]:
    """Per article, the indices of the articles with the same body (itself included)."""
    by_body: dict[str, list[int]] = {}
    for index, doc in enumerate(docs):
        by_body.setdefault(same_text(doc.body), []).append(index)
    return [by_body[same_text(doc.body)] for doc in docs]


# --- trials ------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Trial:
    article: str
    short: str  # how the article also wrote the name, normalized ("Blair")
    expected: str  # the full name the article spells out ("Tony Blair")
    known: dict[str, int]  # the book's neighbourhood of ``short``, less the article's own names


def shorter_forms(entity: Entity) -> list[str]:
    """The shorter ways an article wrote one of its full person names ("Mr Blair's" -> "Blair")."""
    if entity.label != "PERSON" or " " not in entity.name:
        return []
    forms = (normalize_name("PERSON", surface) for surface in entity.surface_forms)
    return list(dict.fromkeys(form for form in forms if short_for(entity.name, form)))


def article_trials(
    key: str,
    entities: Iterable[Entity],
    known: Callable[[str], Mapping[str, int]],
    own: Mapping[str, int],
) -> list[Trial]:
    """One trial per shorter form of each full person name of the article."""
    return [
        Trial(key, short, entity.name, without(known(short), own))
        for entity in entities
        for short in shorter_forms(entity)
    ]


def outcome(expected: str, got: str | None) -> str:
    if got is None:
        return "abstained"
    return "correct" if got == expected else "wrong"


def variant(expected: str, got: str) -> bool:
    """Two spellings of one name: one is short for the other ("George Bush", "George W. Bush")."""
    return (
        expected.casefold() == got.casefold()
        or short_for(expected, got)
        or short_for(got, expected)
    )


@dataclass(frozen=True)
class Score:
    min_documents: int
    dominance: float
    trials: int
    correct: int
    wrong: int
    variants: int  # of the wrong answers, a longer or shorter spelling of the expected name
    unseen: int  # of the wrong answers, those whose expected name no other article cites
    abstained: int

    @property
    def precision(self) -> float | None:
        answered = self.correct + self.wrong
        return self.correct / answered if answered else None

    @property
    def coverage(self) -> float | None:
        return self.correct / self.trials if self.trials else None

    def as_dict(self) -> dict[str, Any]:
        return asdict(self) | {"precision": self.precision, "coverage": self.coverage}


@dataclass(frozen=True)
class Wrong:
    article: str
    short: str
    expected: str
    got: str
    variant: bool
    unseen: bool  # no other article cites the expected name: the book could not know it


def score(
    trials: Iterable[Trial], min_documents: int, dominance: float
) -> tuple[Score, list[Wrong]]:
    counts: Counter[str] = Counter()
    wrong = []
    for trial in trials:
        got = completion(trial.short, trial.known, min_documents, dominance)
        counts[kind := outcome(trial.expected, got)] += 1
        if kind == "wrong" and got is not None:
            wrong.append(
                Wrong(
                    trial.article,
                    trial.short,
                    trial.expected,
                    got,
                    variant(trial.expected, got),
                    trial.expected not in trial.known,
                )
            )
    result = Score(
        min_documents=min_documents,
        dominance=dominance,
        trials=counts.total(),
        correct=counts["correct"],
        wrong=counts["wrong"],
        variants=sum(w.variant for w in wrong),
        unseen=sum(w.unseen for w in wrong),
        abstained=counts["abstained"],
    )
    return result, wrong


def grid(
    trials: Sequence[Trial], min_documents: Iterable[int], dominance: Iterable[float]
) -> list[Score]:
    """The same trials scored under each pair of settings."""
    return [score(trials, m, d)[0] for d in dominance for m in min_documents]


# --- real orphans ------------------------------------------------------------------------------


@dataclass(frozen=True)
class Rewrite:
    article: str
    name: str
    got: str | None  # None: stays as written
    cited_as_written: int  # articles in the book (without this one) citing ``name``
    cited_as_completed: int  # ... citing ``got``


def article_rewrites(
    key: str,
    entities: Iterable[Entity],
    known: Callable[[str], Mapping[str, int]],
    settings: NameSettings,
) -> list[Rewrite]:
    """What completion does to each person name of the article, as the stage asks it."""
    rewrites = []
    for entity in entities:
        if entity.label == "PERSON":
            near = known(entity.name)
            got = completion(entity.name, near, settings.min_documents, settings.dominance)
            cited = near.get(got, 0) if got is not None else 0
            rewrites.append(Rewrite(key, entity.name, got, near.get(entity.name, 0), cited))
    return rewrites


def rewrite_rows(rewrites: Sequence[Rewrite]) -> list[list[Any]]:
    """Per kind of name: how many, completed, completed to a name cited less than the name as
    written (the book itself says the written form is the usual one), and left as written."""
    rows = []
    for words, single in (("one word", True), ("two words or more", False)):
        group = [r for r in rewrites if (" " not in r.name) is single]
        changed = [r for r in group if r.got is not None]
        rarer = sum(r.cited_as_completed < r.cited_as_written for r in changed)
        rows.append([words, len(group), len(changed), rarer, len(group) - len(changed)])
    return rows


# --- cost --------------------------------------------------------------------------------------


def book_memory(names: Sequence[set[str]], max_names: int) -> tuple[NameBook, int]:
    """The book, and the bytes allocated while building it that it still holds."""
    tracemalloc.start()
    try:
        before = tracemalloc.get_traced_memory()[0]
        book = build_book(names, max_names)
        held = tracemalloc.get_traced_memory()[0] - before
    finally:
        tracemalloc.stop()
    return book, held


def microseconds(values: Sequence[float]) -> dict[str, float]:
    ordered = sorted(values)
    return {
        "median": round(statistics.median(ordered), 2),
        "p99": round(ordered[min(len(ordered) - 1, len(ordered) * 99 // 100)], 2),
        "max": round(ordered[-1], 2),
    }


def call_cost(book: NameBook, names: Sequence[str], settings: NameSettings) -> dict[str, Any]:
    """Microseconds per name: the book's lookup and ``completion``, as the stage calls them."""
    lookup: list[float] = []
    complete: list[float] = []
    for _ in range(2):  # the first pass warms up; the second is measured
        lookup, complete = [], []
        for name in names:
            start = time.perf_counter_ns()
            known = book.known(name)
            looked = time.perf_counter_ns()
            completion(name, known, settings.min_documents, settings.dominance)
            done = time.perf_counter_ns()
            lookup.append((looked - start) / 1000)
            complete.append((done - looked) / 1000)
    both = [a + b for a, b in zip(lookup, complete, strict=True)]
    return {
        "calls": len(names),
        "lookup_and_completion_us": microseconds(both) if names else None,
        "completion_us": microseconds(complete) if names else None,
        "largest_neighbourhood": max((len(book.known(name)) for name in names), default=0),
    }


#: How many full names share one surname in the crowded-neighbourhood timing.
CROWDS = (100, 500, 2_000)


def crowded_cost(full_names: Iterable[str], settings: NameSettings) -> list[dict[str, Any]]:
    """Milliseconds to complete a surname that ``size`` known full names end with.

    The BBC book's largest neighbourhood is about a hundred names; a full book (``max_names``)
    of world news holds common surnames ("Smith", "Kim", "Wang") many times over. The crowd is
    made of the corpus's own first names: each with the surname, then each pair of them.
    """
    first = sorted({name.split()[0] for name in full_names})
    everyone = (f"{a} Smith" for a in first), (f"{a} {b} Smith" for a in first for b in first)
    crowd_names = list(islice(chain(*everyone), max(CROWDS)))
    rows = []
    for size in CROWDS:
        crowd = NameBook(settings.max_names)
        crowd.add({name: 1 + i % 7 for i, name in enumerate(crowd_names[:size])})
        known = crowd.known("Smith")
        start, calls = time.perf_counter(), 0
        while calls < 3 or time.perf_counter() - start < 0.5:
            completion("Smith", known, settings.min_documents, settings.dominance)
            calls += 1
        seconds = (time.perf_counter() - start) / calls
        rows.append(
            {
                "neighbourhood": len(known),
                "ms_per_completion": round(seconds * 1000, 3),
                "us_per_neighbour": round(seconds * 1e6 / len(known), 2),
            }
        )
    return rows


# --- report ------------------------------------------------------------------------------------


def rate(value: float | None) -> str:
    return "-" if value is None else f"{value:.3f}"


def most_common(rows: Iterable[Sequence[Any]], limit: int = EXAMPLES) -> list[list[Any]]:
    """Distinct rows, most frequent first (then first seen), each with its count in front."""
    counts = Counter(tuple(row) for row in rows)
    return [[n, *row] for row, n in counts.most_common(limit)]


def score_row(label: str, s: Mapping[str, Any]) -> list[Any]:
    counts = [s[k] for k in ("trials", "correct", "wrong", "variants", "unseen", "abstained")]
    return [label, *counts, rate(s["precision"]), rate(s["coverage"])]


def report(results: Mapping[str, Any], settings: NameSettings) -> str:
    """The Markdown tables, as printed and as pasted into docs/QUALITY.md."""
    defaults = f"min_documents={settings.min_documents}, dominance={settings.dominance}"
    wrong = results["wrong"]
    rewrites = results["rewrites"]["completed"]
    sections = [
        f"### Leave one out ({defaults})",
        markdown(
            [
                "left out of the book",
                "trials",
                "correct",
                "wrong",
                "wrong: variant spelling",
                "wrong: name unseen",
                "abstained",
                "precision",
                "coverage",
            ],
            [
                score_row("the article", results["leave_one_out"]),
                score_row("the article and its same-body copies", results["leave_copies_out"]),
            ],
        ),
    ]
    for title, is_variant in (("variant spellings", True), ("other names", False)):
        rows: list[tuple[str, ...]] = [
            (w["short"], w["expected"], w["got"], "yes" if w["unseen"] else "")
            for w in wrong
            if w["variant"] is is_variant
        ]
        sections += [
            f"### Wrong answers, {title} ({len(rows)} trials; most frequent {EXAMPLES})",
            markdown(
                ["trials", "written", "the article's full name", "completed to", "name unseen"],
                most_common(rows),
            ),
        ]
    sections += [
        "### Settings grid (same trials, leave one article out)",
        markdown(
            GRID_COLUMNS,
            (
                [
                    s["dominance"],
                    s["min_documents"],
                    s["correct"],
                    s["wrong"],
                    s["abstained"],
                    rate(s["precision"]),
                    rate(s["coverage"]),
                ]
                for s in results["grid"]
            ),
        ),
        f"### Every person name of every article, against the book without it ({defaults})",
        markdown(
            ["person names", "in articles", "completed", "to a name cited less", "as written"],
            results["rewrites"]["rows"],
        ),
    ]
    for title, single in (("one-word names", True), ("names of two words or more", False)):
        completed = [
            (r["name"], r["got"], f"{r['cited_as_written']} → {r['cited_as_completed']}")
            for r in rewrites
            if (" " not in r["name"]) is single
        ]
        sections += [
            f"### Completed {title} ({len(completed)}; most frequent {EXAMPLES})",
            markdown(
                ["articles", "written", "completed to", "cited by articles (written → completed)"],
                most_common(completed),
            ),
        ]
    sections += ["### Cost", markdown(["measure", "value"], cost_rows(results["cost"]))]
    sections += [
        "### Cost in a crowded neighbourhood (one surname shared by many known names)",
        markdown(
            ["known names", "ms per completion", "µs per known name"],
            [list(row.values()) for row in results["crowded"]],
        ),
    ]
    return "\n\n".join(sections)


def cost_rows(cost: Mapping[str, Any]) -> list[list[Any]]:
    rows: list[list[Any]] = [
        ["full names in the book", cost["book_names"]],
        ["book memory (tracemalloc while building)", f"{cost['book_bytes'] / 2**20:.2f} MiB"],
        ["bytes per name", round(cost["book_bytes"] / max(cost["book_names"], 1))],
        ["calls timed (one per trial)", cost["calls"]],
    ]
    for key, label in (
        ("lookup_and_completion_us", "book.known + completion"),
        ("completion_us", "completion alone"),
    ):
        if cost[key] is not None:
            timing = cost[key]
            rows.append(
                [
                    f"µs per call, {label} (median / p99 / max)",
                    f"{timing['median']} / {timing['p99']} / {timing['max']}",
                ]
            )
    rows.append(
        ["largest neighbourhood (known names for one lookup)", cost["largest_neighbourhood"]]
    )
    return rows


# --- main --------------------------------------------------------------------------------------


def run(
    docs: Sequence[Doc], entities: Sequence[tuple[Entity, ...]], settings: NameSettings
) -> dict[str, Any]:
    names = [full_person_names(found) for found in entities]
    log("building the book")
    book, book_bytes = book_memory(names, settings.max_names)
    groups = copy_groups(docs)
    trials: list[Trial] = []
    story_trials: list[Trial] = []
    rewrites: list[Rewrite] = []
    for index, (doc, found) in enumerate(zip(docs, entities, strict=True)):
        own = contributions([names[index]])
        trials += article_trials(doc.key, found, book.known, own)
        story = contributions(names[i] for i in groups[index])
        story_trials += article_trials(doc.key, found, book.known, story)

        def known(name: str, own: Mapping[str, int] = own) -> dict[str, int]:
            return without(book.known(name), own)

        rewrites += article_rewrites(doc.key, found, known, settings)
    log(f"{len(trials)} trials from {len(docs)} articles; scoring")
    alone, wrong = score(trials, settings.min_documents, settings.dominance)
    copies, _ = score(story_trials, settings.min_documents, settings.dominance)
    log("timing lookups")
    cost = call_cost(book, [t.short for t in trials], settings)
    crowded = crowded_cost(set().union(*names), settings)
    return {
        "articles": len(docs),
        "articles_with_copies": sum(len(group) > 1 for group in groups),
        "leave_one_out": alone.as_dict(),
        "leave_copies_out": copies.as_dict(),
        "grid": [s.as_dict() for s in grid(trials, MIN_DOCUMENTS, DOMINANCE)],
        "wrong": [asdict(w) for w in wrong],
        "rewrites": {
            "rows": rewrite_rows(rewrites),
            "completed": [asdict(r) for r in rewrites if r.got is not None],
        },
        "cost": cost | {"book_names": len(book), "book_bytes": book_bytes},
        "crowded": crowded,
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--limit", type=int, help="only N articles, evenly spread over the set (default: all)"
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help=f"default {CORPUS}")
    args = parser.parse_args(argv)
    if not (args.corpus / BBC).is_dir():
        parser.error(f"no {BBC} under {args.corpus}; this benchmark needs the shared corpus")
    if args.limit is not None and args.limit < 1:
        parser.error("--limit must be at least 1")

    settings = load_settings()
    docs = read_bbc(args.corpus, args.limit)
    log(f"{len(docs)} BBC articles; entities with {settings.nlp.spacy_model}")
    entities = extract(docs, settings.nlp)
    results = run(docs, entities, settings.names)
    meta = machine() | {"limit": args.limit, "settings": settings.names.model_dump()}
    print(f"# Name completion benchmark\n\n```\n{json.dumps(meta, indent=2)}\n```\n")
    print(report(results, settings.names))
    if args.json:
        args.json.write_text(
            json.dumps({"meta": meta} | results, indent=2, ensure_ascii=False) + "\n",
            encoding="utf-8",
        )
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
