"""Dedupe benchmark: precision and recall of story clustering and copy detection, stage cost.

All documents are real news from the shared corpus, translated to English with Apertium where
they are not English (as the pipeline does), and streamed in one shuffled order through the
pipeline's own decision code (``pipeline.dedupe.decide_and_save``) with the in-memory store:

- positives, same language: the BBC set's byte-identical groups and articles republished under
  the same headline (the dataset's own two kinds of repeats), plus, by a criterion fixed before
  any tuning, documents of one set whose text is identical after whitespace normalization (BBC:
  the body under the headline, so a republication under a new headline; the fake-news sets: the
  whole original text; ``--dataset-labels`` leaves them out); NTREX-128's independent
  versions of one document (src.eng vs eng-GB, two Spanish and two Portuguese translations);
  realistic edits of real BBC articles (a dropped paragraph, reordered paragraphs, added
  boilerplate, truncation to 60%);
- positives, cross-language: NTREX's English original against its es/pt/fr versions;
- negatives: every other pair, among them hard ones: BBC articles of one category, Fake.br's
  true/fake pairs about one event (pt) and the Spanish Fake News Corpus's pairs (es).

Pairwise precision/recall over the resulting clusters, split by same/cross language, and the
``duplicate_of`` flag on copies vs. independent versions. The copy test's thresholds are swept
on the stories of one half of the corpus (split by a hash of the story key) and reported on the
other half as well, so a setting picked on the first is checked on data it was not picked on.
Cost: articles/s of the stage and bytes per article held in the window (memory store, and
with ``--elasticsearch`` the real store on the local stack). Markdown on stdout, progress on
stderr, ``--json`` for a file.

    python bench/dedupe.py [--limit N] [--elasticsearch] [--dataset-labels] [--json PATH]
"""

from __future__ import annotations

import argparse
import hashlib
import itertools
import json
import math
import random
import sys
import time
import tracemalloc
import uuid
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from bench.quality import (  # noqa: E402
    CORPUS,
    log,
    machine,
    markdown,
    read_fakebr_true,
    read_ntrex,
    read_xlsx_column,
)
from newsflow.settings import DedupeSettings, load_settings  # noqa: E402
from pipeline.dedupe import (  # noqa: E402
    FingerprintStore,
    Probe,
    StoredFingerprint,
    decide_and_save,
    fingerprint,
    is_copy,
)
from pipeline.dedupe_store import ElasticsearchFingerprints, MemoryFingerprints  # noqa: E402
from pipeline.fingerprint import Overlap, overlap  # noqa: E402

#: NTREX versions streamed, with their language; the English text is Apertium's where needed.
NTREX_VERSIONS = {
    "src.eng": "en",
    "ref.eng-GB": "en",
    "ref.spa": "es",
    "ref-2.spa": "es",
    "ref.por": "pt",
    "ref.por-BR": "pt",
    "ref.fra": "fr",
}
BOILERPLATE = (
    "Sign up for our daily newsletter to get the top stories in your inbox. "
    "Follow us on social media and share this article with your friends."
)
EDITS = ("drop a paragraph", "reorder paragraphs", "add boilerplate", "truncate to 60%")
BATCH = 32


@dataclass(frozen=True)
class Doc:
    key: str
    story: str  # ground truth: documents with the same story are one cluster
    language: str  # of the original
    kind: str  # where it comes from (for the tables)
    text: str  # English (original or Apertium's)
    copy: bool = False  # made from another document by editing: should be a duplicate_of
    dataset_story: str = ""  # the story by the dataset's own labels only, when it differs
    original: str = ""  # the text before translation, where there was one (for judging by hand)


def same_text(text: str) -> str:
    """The republication criterion, fixed before tuning: equal after whitespace normalization."""
    return " ".join(text.split())


def relabel(docs: list[Doc], texts: list[str]) -> list[Doc]:
    """Stories with documents whose ``texts`` are the same text are one story; the dataset's own
    story is kept in ``dataset_story``."""
    merged: dict[str, str] = {}

    def root(story: str) -> str:
        while story in merged:
            story = merged[story]
        return story

    first: dict[str, str] = {}
    for doc, text in zip(docs, texts, strict=True):
        a, b = root(first.setdefault(same_text(text), doc.story)), root(doc.story)
        if a != b:
            merged[b] = a
    return [replace(doc, story=root(doc.story), dataset_story=doc.story) for doc in docs]


def dataset_labels(docs: list[Doc]) -> list[Doc]:
    """The documents as the datasets label them, without the same-text criterion."""
    return [replace(doc, story=doc.dataset_story or doc.story) for doc in docs]


def edit(text: str, how: str, rng: random.Random) -> str:
    paragraphs = [p for p in text.split("\n") if p.strip()]
    if how == "drop a paragraph" and len(paragraphs) > 3:
        del paragraphs[rng.randrange(1, len(paragraphs))]
    elif how == "reorder paragraphs" and len(paragraphs) > 3:
        body = paragraphs[1:]
        rng.shuffle(body)
        paragraphs = paragraphs[:1] + body
    elif how == "add boilerplate":
        paragraphs.append(BOILERPLATE)
    elif how == "truncate to 60%":
        words = " ".join(paragraphs).split()
        return " ".join(words[: int(len(words) * 0.6)])
    return "\n".join(paragraphs)


def translate(texts: list[str], language: str) -> list[str]:
    from pipeline.translators.apertium import ApertiumTranslator

    translator = ApertiumTranslator(load_settings().translation)
    translator.load()
    path = translator.path(language, "en")
    if path is None:
        raise SystemExit(f"Apertium has no {language}->en path; install its language pairs")
    try:
        return [out for chunk in _chunks(texts, 50) for out in translator.translate(chunk, path)]
    finally:
        translator.close()


def _chunks(items: list[str], size: int) -> Iterable[list[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def corpus_documents(limit: int, rng: random.Random) -> list[Doc]:
    articles = CORPUS / "articles"
    docs: list[Doc] = []
    bbc_files = sorted((articles / "bbc-news-2005" / "bbc").glob("*/*.txt"))[:limit]
    by_content: dict[bytes, str] = {}
    by_headline: dict[str, str] = {}
    bbc = []
    for path in bbc_files:
        raw = path.read_bytes()
        key = f"bbc:{path.parent.name}/{path.stem}"
        headline = raw.split(b"\n", 1)[0].decode("utf-8", errors="replace").strip()
        story = by_content.setdefault(raw, by_headline.setdefault(headline, key))
        bbc.append(Doc(key, story, "en", "BBC", raw.decode("utf-8", errors="replace")))
    labelled = sum(doc.story != doc.key for doc in bbc)
    bbc = relabel(bbc, [doc.text.split("\n", 1)[-1] for doc in bbc])
    originals = [doc for doc in bbc if doc.story == doc.key]
    docs += bbc
    log(
        f"BBC: {len(docs)} articles, {labelled} repeats by the dataset (same bytes or headline), "
        f"{len(docs) - len(originals) - labelled} more with the same body under a new headline"
    )
    for n, original in enumerate(rng.sample(originals, min(200, len(originals)))):
        how = EDITS[n % len(EDITS)]
        docs.append(
            Doc(
                f"{original.key}#edit",
                original.story,
                "en",
                f"edit: {how}",
                edit(original.text, how, rng),
                copy=True,
                dataset_story=original.dataset_story,
            )
        )
    ntrex = read_ntrex(CORPUS, limit)
    for stem, language in NTREX_VERSIONS.items():
        texts = ["\n".join(lines) for lines in ntrex[stem]]
        if language != "en":
            log(f"translating NTREX {stem} ({len(texts)} documents)")
            texts = translate(texts, language)
        untranslated = ["\n".join(lines) for lines in ntrex[stem]]
        docs += [
            Doc(f"ntrex:{stem}:{n}", f"ntrex:{n}", language, f"NTREX {stem}", text, original=raw)
            for n, (text, raw) in enumerate(zip(texts, untranslated, strict=True))
        ]
    fake_br = articles / "fake-br-corpus" / "full_texts"
    fakebr: list[Doc] = []
    fakebr_originals: list[str] = []
    for folder in ("true", "fake"):
        portuguese = read_fakebr_true(fake_br / folder)[:limit]
        log(f"translating Fake.br {folder} ({len(portuguese)} documents)")
        fakebr += [
            Doc(
                f"fakebr:{folder}:{n}",
                f"fakebr:{folder}:{n}",
                "pt",
                "Fake.br true/fake",
                t,
                original=o,
            )
            for n, (t, o) in enumerate(zip(translate(portuguese, "pt"), portuguese, strict=True))
        ]
        fakebr_originals += portuguese
    docs += relabel(fakebr, fakebr_originals)
    spanish = [
        text
        for split in ("train", "development", "test")
        for text in read_xlsx_column(
            articles / "spanish-fake-news-corpus" / f"{split}.xlsx", "Text"
        )
    ][:limit]
    log(f"translating the Spanish Fake News Corpus ({len(spanish)} documents)")
    docs += relabel(
        [
            Doc(f"esfake:{n}", f"esfake:{n}", "es", "Spanish Fake News", t, original=o)
            for n, (t, o) in enumerate(zip(translate(spanish, "es"), spanish, strict=True))
        ],
        spanish,
    )
    merged = sum(bool(doc.dataset_story) and doc.story != doc.dataset_story for doc in docs)
    log(f"{merged} documents joined to another story by the same-text criterion")
    return docs


def stream(
    docs: list[Doc], store: FingerprintStore, settings: DedupeSettings, rng: random.Random
) -> tuple[dict[str, StoredFingerprint], float]:
    """Decisions for every document, in a shuffled order over three days, and seconds spent."""
    order = docs[:]
    rng.shuffle(order)
    start = datetime(2026, 11, 20, tzinfo=UTC)
    decisions: dict[str, StoredFingerprint] = {}
    began = time.perf_counter()
    for offset in range(0, len(order), BATCH):
        batch = order[offset : offset + BATCH]
        probes = [
            Probe(
                doc.key,
                start + timedelta(minutes=offset + n),
                doc.language,
                fingerprint(doc.text, settings),
            )
            for n, doc in enumerate(batch)
        ]
        made = decide_and_save(probes, store, settings)
        decisions.update((d.article_id, d) for d in made)
        if offset // BATCH % 50 == 0:
            log(f"... {offset + len(batch)}/{len(order)} documents")
    return decisions, time.perf_counter() - began


@dataclass
class PairScore:
    pairs: str
    true_pairs: int
    found: int
    predicted_pairs: int
    correct: int

    @property
    def recall(self) -> float:
        return self.found / self.true_pairs if self.true_pairs else float("nan")

    @property
    def precision(self) -> float:
        return self.correct / self.predicted_pairs if self.predicted_pairs else float("nan")


def pair_scores(docs: list[Doc], decisions: dict[str, StoredFingerprint]) -> list[PairScore]:
    """Pairwise precision/recall of the clusters, same-language and cross-language pairs apart."""
    by_key = {d.key: d for d in docs}

    def pairs(groups: Iterable[list[str]]) -> set[tuple[str, str]]:
        return {
            tuple(sorted(p))  # type: ignore[misc]
            for group in groups
            for p in itertools.combinations(group, 2)
        }

    truth_groups: dict[str, list[str]] = defaultdict(list)
    predicted_groups: dict[str, list[str]] = defaultdict(list)
    for doc in docs:
        truth_groups[doc.story].append(doc.key)
        predicted_groups[decisions[doc.key].cluster_id].append(doc.key)
    truth, predicted = pairs(truth_groups.values()), pairs(predicted_groups.values())

    def same_language(pair: tuple[str, str]) -> bool:
        return by_key[pair[0]].language == by_key[pair[1]].language

    rows = []
    for name, keep in (
        ("same language", same_language),
        ("cross-language", lambda p: not same_language(p)),
    ):
        t = {p for p in truth if keep(p)}
        q = {p for p in predicted if keep(p)}
        rows.append(PairScore(name, len(t), len(t & q), len(q), len(t & q)))
    return rows


def cluster_pairs(
    docs: list[Doc], decisions: dict[str, StoredFingerprint], same_language: bool = True
) -> list[tuple[Doc, Doc]]:
    """Every pair of documents the clusters put in one story, same-language (or cross) only."""
    by_cluster: dict[str, list[Doc]] = defaultdict(list)
    for doc in docs:
        by_cluster[decisions[doc.key].cluster_id].append(doc)
    return [
        (a, b)
        for group in by_cluster.values()
        for a, b in itertools.combinations(sorted(group, key=lambda d: d.key), 2)
        if (a.language == b.language) == same_language
    ]


def pairs_to_judge(
    docs: list[Doc], decisions: dict[str, StoredFingerprint], count: int, rng: random.Random
) -> list[dict[str, Any]]:
    """A uniform random sample of the same-language cluster pairs, with what a judge reads.

    The texts come from the shared corpus and are not committed; the sample is deterministic, so
    ``--judged`` finds the same pairs again by their keys.
    """
    pairs = sorted(cluster_pairs(docs, decisions), key=lambda p: (p[0].key, p[1].key))
    chosen = rng.sample(pairs, min(count, len(pairs)))
    return [
        {
            "pair": number,
            "a": a.key,
            "b": b.key,
            "language": a.language,
            "labelled_same_story": a.story == b.story,
            "text_a": a.original or a.text,
            "text_b": b.original or b.text,
        }
        for number, (a, b) in enumerate(chosen, start=1)
    ]


def wilson(successes: int, trials: int, z: float = 1.96) -> tuple[float, float]:
    """The Wilson score interval of a proportion (95% by default)."""
    if not trials:
        return float("nan"), float("nan")
    share = successes / trials
    centre = share + z * z / (2 * trials)
    spread = z * math.sqrt(share * (1 - share) / trials + z * z / (4 * trials * trials))
    scale = 1 + z * z / trials
    return (centre - spread) / scale, (centre + spread) / scale


def judged_precision(
    docs: list[Doc], decisions: dict[str, StoredFingerprint], judged: Path
) -> dict[str, Any]:
    """Same-language cluster precision from the pairs judged by hand (``bench/judged/``).

    Judgements of pairs the current clusters no longer make are left out: a stricter rule is
    scored on the judged pairs it keeps, a uniform sample of its own pairs when it keeps a
    subset of the judged rule's.
    """
    made = {(a.key, b.key) for a, b in cluster_pairs(docs, decisions)}
    rows = [json.loads(line) for line in judged.read_text(encoding="utf-8").splitlines() if line]
    kept = [row for row in rows if (row["a"], row["b"]) in made]
    same = sum(row["same_story"] for row in kept)
    low, high = wilson(same, len(kept))
    return {
        "judged": len(rows),
        "still_clustered": len(kept),
        "same_story": same,
        "precision": same / len(kept) if kept else float("nan"),
        "ci95": [low, high],
        "labels_agree": sum(row["same_story"] == row["labelled_same_story"] for row in kept),
    }


def recall_by_kind(docs: list[Doc], decisions: dict[str, StoredFingerprint]) -> list[list[Any]]:
    """Per source of positives: share of true pairs in one cluster, and in one copy group
    (one is a ``duplicate_of`` the other, or both of the same first-seen article)."""
    groups: dict[str, list[Doc]] = defaultdict(list)
    for doc in docs:
        groups[doc.story].append(doc)
    together: Counter[str] = Counter()
    total: Counter[str] = Counter()
    flagged: Counter[str] = Counter()
    for members in groups.values():
        for a, b in itertools.combinations(members, 2):
            kind = (
                b.kind
                if b.copy or b.kind.startswith("edit")
                else "BBC repeats"
                if a.kind == b.kind == "BBC"
                else " vs ".join(sorted({a.kind, b.kind}))
            )
            total[kind] += 1
            da, db = decisions[a.key], decisions[b.key]
            together[kind] += da.cluster_id == db.cluster_id
            flagged[kind] += (da.duplicate_of or da.article_id) == (
                db.duplicate_of or db.article_id
            )
    return [
        [
            kind,
            total[kind],
            f"{together[kind] / total[kind]:.3f}",
            f"{flagged[kind] / total[kind]:.3f}",
        ]
        for kind in sorted(total)
    ]


Candidate = tuple[Doc, Doc, Overlap]


def candidate_pairs(docs: list[Doc], settings: DedupeSettings) -> list[Candidate]:
    """Every pair LSH makes a candidate, with its exact overlap (what verification sees)."""
    fingerprints = {d.key: fingerprint(d.text, settings) for d in docs}
    buckets: dict[str, list[Doc]] = defaultdict(list)
    for doc in docs:
        for key in (fingerprints[doc.key].content_hash, *fingerprints[doc.key].band_keys):
            buckets[key].append(doc)
    seen: set[tuple[str, str]] = set()
    result = []
    for members in buckets.values():
        for a, b in itertools.combinations(members, 2):
            if (a.key, b.key) in seen:
                continue
            seen.add((a.key, b.key))
            fa, fb = fingerprints[a.key], fingerprints[b.key]
            found = (
                Overlap(1.0, 1.0, 1.0)
                if fa.content_hash == fb.content_hash
                else overlap(
                    fa.shingles, fa.positions, fb.shingles, fb.positions, settings.order_tolerance
                )
            )
            result.append((a, b, found))
    return result


def half(story: str) -> int:
    """Which half of the corpus a story is in (0: tuning, 1: held out), by a hash of its key."""
    return hashlib.blake2b(story.encode(), digest_size=1).digest()[0] % 2


@dataclass
class Verification:
    """Pair-level recall/precision of one acceptance rule, against all true pairs (including
    those LSH never proposed)."""

    recall: float
    precision: float
    false_pairs: int

    def row(self) -> list[Any]:
        return [*(_rate(value) for value in (self.recall, self.precision)), self.false_pairs]


def _rate(value: float) -> str:
    return "-" if math.isnan(value) else f"{value:.3f}"


def verify(
    docs: list[Doc],
    pairs: list[Candidate],
    accept: Callable[[Doc, Doc, Overlap], bool],
    part: int | None = None,
    same_language: bool = True,
) -> Verification:
    """Score ``accept`` on the same- (or cross-) language pairs of one half of the stories (a
    false pair belongs to the half of its smaller story key), or of all of them."""
    groups: dict[str, list[Doc]] = defaultdict(list)
    for doc in docs:
        groups[doc.story].append(doc)
    true_pairs = sum(
        1
        for story, members in groups.items()
        if part is None or half(story) == part
        for a, b in itertools.combinations(members, 2)
        if (a.language == b.language) == same_language
    )
    kept = [
        (a, b)
        for a, b, found in pairs
        if (a.language == b.language) == same_language
        and (part is None or half(min(a.story, b.story)) == part)
        and accept(a, b, found)
    ]
    correct = sum(a.story == b.story for a, b in kept)
    return Verification(
        correct / true_pairs if true_pairs else float("nan"),
        correct / len(kept) if kept else float("nan"),
        len(kept) - correct,
    )


def jaccard_at(threshold: float) -> Callable[[Doc, Doc, Overlap], bool]:
    """Jaccard alone: the cluster decision, and the copy decision before the copy test."""
    return lambda a, b, found: found.jaccard >= threshold


def copy_test(settings: DedupeSettings) -> Callable[[Doc, Doc, Overlap], bool]:
    """The pipeline's copy decision on a same-language pair."""
    return lambda a, b, found: is_copy(found, settings)


def threshold_sweep(
    docs: list[Doc], pairs: list[Candidate], thresholds: Iterable[float]
) -> list[list[Any]]:
    """Jaccard alone at each threshold, same/cross language."""
    return [
        [
            f"{threshold:.2f}",
            "same language" if same else "cross-language",
            *verify(docs, pairs, jaccard_at(threshold), same_language=same).row(),
        ]
        for threshold in thresholds
        for same in (True, False)
    ]


def copy_sweep(
    docs: list[Doc],
    pairs: list[Candidate],
    settings: DedupeSettings,
    jaccards: Iterable[float],
    orders: Iterable[float],
) -> list[list[Any]]:
    """The copy test at each Jaccard floor and order threshold (containment as set), on the
    tuning half and the held-out half."""
    return [
        [
            f"{jaccard:.2f}",
            f"{order:.2f}",
            *verify(docs, pairs, test, 0).row(),
            *verify(docs, pairs, test, 1).row(),
        ]
        for jaccard in jaccards
        for order in orders
        for test in [
            copy_test(
                settings.model_copy(
                    update={"duplicate_threshold": jaccard, "duplicate_order": order}
                )
            )
        ]
    ]


def copy_decision(
    labelled: list[Doc], pairs: list[Candidate], settings: DedupeSettings
) -> list[list[Any]]:
    """The copy decision before (Jaccard >= 0.4 alone) and now, against both label sets, on
    each half and on all pairs."""
    rows = []
    for labels, docs in (
        ("datasets' own", dataset_labels(labelled)),
        ("+ same text", labelled),
    ):
        by_key = {d.key: d for d in docs}
        relabelled = [(by_key[a.key], by_key[b.key], found) for a, b, found in pairs]
        for rule, accept in (
            ("Jaccard >= 0.4 alone", jaccard_at(0.4)),
            ("copy test (settings)", copy_test(settings)),
        ):
            for part_name, part in (("tuning half", 0), ("held-out half", 1), ("all", None)):
                scored = verify(docs, relabelled, accept, part)
                rows.append([rule, labels, part_name, *scored.row()])
    return rows


def lead(doc: Doc, words: int = 12) -> str:
    """The first words after the headline: equal leads mean one story re-edited."""
    body = doc.text.split("\n", 1)[-1]
    return " ".join(body.split()[:words]).casefold()


def audit_false_pairs(
    pairs: list[Candidate], accept: Callable[[Doc, Doc, Overlap], bool]
) -> tuple[int, int]:
    """Same-language pairs accepted as copies but labelled as different stories, and how many
    of them open with the same words (re-edited repeats no label marks)."""
    false = [
        (a, b)
        for a, b, found in pairs
        if a.language == b.language and a.story != b.story and accept(a, b, found)
    ]
    return len(false), sum(lead(a) == lead(b) for a, b in false)


def false_copies(docs: list[Doc], decisions: dict[str, StoredFingerprint]) -> tuple[int, int]:
    """Documents flagged duplicate_of something that is not the same story, of all flagged."""
    story = {d.key: d.story for d in docs}
    flagged = [(k, d.duplicate_of) for k, d in decisions.items() if d.duplicate_of]
    wrong = sum(story[k] != story[target] for k, target in flagged)
    return wrong, len(flagged)


def memory_bytes_per_article(
    docs: list[Doc], settings: DedupeSettings, rng: random.Random
) -> float:
    tracemalloc.start()
    store = MemoryFingerprints(settings)
    before = tracemalloc.get_traced_memory()[0]
    decisions, _ = stream(docs, store, settings, rng)
    held = tracemalloc.get_traced_memory()[0] - before
    tracemalloc.stop()
    del decisions
    return held / max(len(store), 1)


def elasticsearch_run(
    docs: list[Doc], settings: DedupeSettings, rng: random.Random
) -> dict[str, Any]:
    """The same stream through the real store on the local stack, in a throwaway index."""
    elasticsearch = load_settings().namespaced(f"bench-dedupe-{uuid.uuid4().hex[:8]}")
    store = ElasticsearchFingerprints(elasticsearch.elasticsearch, settings)
    store.load()
    es = store._client()
    index = f"{elasticsearch.elasticsearch.index_alias}-dedupe"
    try:
        decisions, seconds = stream(docs, store, settings, rng)
        es.indices.refresh(index=index)
        stats = es.indices.stats(index=index, metric="store,docs")["_all"]["primaries"]
        claims = es.count(index=index, query={"exists": {"field": "first_article"}})["count"]
        articles = stats["docs"]["count"] - claims
        return {
            "decisions": decisions,
            "seconds": seconds,
            "bytes_per_article": stats["store"]["size_in_bytes"] / max(articles, 1),
            "claims": claims,
        }
    finally:
        es.indices.delete(index=index, ignore_unavailable=True)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--limit", type=int, default=100_000, help="max documents per corpus set")
    parser.add_argument(
        "--elasticsearch",
        action="store_true",
        help="also run the stream through the real store on the local stack (newsflow stack up)",
    )
    parser.add_argument(
        "--dataset-labels",
        action="store_true",
        help="score against the datasets' own repeat labels only (no same-text criterion)",
    )
    parser.add_argument("--json", type=Path, help="write the results to this file as well")
    parser.add_argument(
        "--pairs-to-judge",
        type=Path,
        help="write a random sample of same-language cluster pairs with their texts (JSONL)",
    )
    parser.add_argument("--sample", type=int, default=300, help="pairs in that sample (300)")
    parser.add_argument(
        "--judged",
        type=Path,
        default=REPO / "bench" / "judged" / "same_language_pairs.jsonl",
        help="pairs judged by hand, to score same-language precision (default: %(default)s)",
    )
    args = parser.parse_args(argv)
    settings = load_settings().dedupe
    labelled = corpus_documents(args.limit, random.Random(1))
    docs = dataset_labels(labelled) if args.dataset_labels else labelled
    log(f"{len(docs)} documents; streaming through the dedupe decision")
    decisions, seconds = stream(docs, MemoryFingerprints(settings), settings, random.Random(2))
    scores = pair_scores(docs, decisions)
    if args.pairs_to_judge:
        sample = pairs_to_judge(docs, decisions, args.sample, random.Random(3))
        args.pairs_to_judge.write_text(
            "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in sample), "utf-8"
        )
        log(f"{len(sample)} pairs to judge written to {args.pairs_to_judge}")
    by_hand = judged_precision(docs, decisions, args.judged) if args.judged.exists() else None
    kinds = recall_by_kind(docs, decisions)
    wrong, flagged = false_copies(docs, decisions)
    log("scoring every LSH candidate pair")
    pairs = candidate_pairs(docs, settings)
    sweep = threshold_sweep(docs, pairs, (0.2, 0.3, 0.4, 0.5, 0.6, 0.7))
    copies = copy_sweep(docs, pairs, settings, (0.2, 0.25, 0.3, 0.4), (0.75, 0.8, 0.85, 0.9))
    decision = copy_decision(labelled, pairs, settings)
    false_pairs, same_lead = audit_false_pairs(pairs, copy_test(settings))
    results: dict[str, Any] = {
        "machine": machine(),
        "settings": settings.model_dump(),
        "documents": len(docs),
        "pairs": [{**asdict(s), "precision": s.precision, "recall": s.recall} for s in scores],
        "by_kind": kinds,
        "duplicate_of": {"flagged": flagged, "wrong_story": wrong},
        "same_language_precision_by_hand": by_hand,
        "threshold_sweep": sweep,
        "copy_sweep": copies,
        "copy_decision": decision,
        "false_copy_pairs": {"pairs": false_pairs, "same_lead": same_lead},
        "memory_store": {
            "articles_per_second": len(docs) / seconds,
            "bytes_per_article": memory_bytes_per_article(docs, settings, random.Random(2)),
        },
    }
    if args.elasticsearch:
        log("streaming through the Elasticsearch store")
        es = elasticsearch_run(docs, settings, random.Random(2))
        same = sum(es["decisions"][k].cluster_id == decisions[k].cluster_id for k in decisions)
        results["elasticsearch_store"] = {
            "articles_per_second": len(docs) / es["seconds"],
            "bytes_per_article": es["bytes_per_article"],
            "claims": es["claims"],
            "same_cluster_as_memory_store": same / len(decisions),
        }
    print(
        markdown(
            ["pairs", "true pairs", "found", "recall", "predicted pairs", "precision"],
            (
                [
                    s.pairs,
                    s.true_pairs,
                    s.found,
                    f"{s.recall:.3f}",
                    s.predicted_pairs,
                    f"{s.precision:.3f}",
                ]
                for s in scores
            ),
        )
    )
    if by_hand and by_hand["still_clustered"]:
        low, high = by_hand["ci95"]
        print(
            f"\nSame-language precision by hand: {by_hand['same_story']} of "
            f"{by_hand['still_clustered']} judged pairs still clustered are one story: "
            f"{by_hand['precision']:.3f} (95% CI {low:.3f}-{high:.3f}); the corpus labels agree "
            f"on {by_hand['labels_agree']}"
        )
    print()
    print(markdown(["positive pairs", "pairs", "same cluster", "same copy group"], kinds))
    print(f"\nduplicate_of set on {flagged} documents, {wrong} pointing at another story")
    print()
    print(
        markdown(
            ["threshold", "pairs", "recall", "precision", "false pairs"],
            sweep,
        )
    )
    print()
    print(
        markdown(
            ["copy decision", "labels", "pairs", "recall", "precision", "false pairs"], decision
        )
    )
    print()
    print(
        markdown(
            [
                "Jaccard floor",
                "order",
                "recall (tuning)",
                "precision (tuning)",
                "false (tuning)",
                "recall (held out)",
                "precision (held out)",
                "false (held out)",
            ],
            copies,
        )
    )
    print(
        f"\nCopy test with the settings: {false_pairs} same-language pairs labelled as "
        f"different stories, {same_lead} of them with the same first 12 words"
    )
    cost = [["memory", results["memory_store"]]]
    if "elasticsearch_store" in results:
        cost.append(["elasticsearch", results["elasticsearch_store"]])
    print()
    print(
        markdown(
            ["store", "articles/s (one worker)", "bytes per article in the window"],
            (
                [name, f"{c['articles_per_second']:.0f}", f"{c['bytes_per_article']:.0f}"]
                for name, c in cost
            ),
        )
    )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str), encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
