"""Dedupe decisions on real articles, with the in-memory fingerprint store."""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import replace
from datetime import UTC, datetime, timedelta

import pytest

from newsflow.article import Article
from newsflow.settings import DedupeSettings
from pipeline.dedupe import (
    Deduplication,
    Probe,
    StoredFingerprint,
    decide_and_save,
    fingerprint_of,
    is_copy,
)
from pipeline.dedupe_store import MemoryFingerprints, from_source, to_source
from pipeline.enriched import EnrichedArticle, LanguageGuess
from pipeline.fingerprint import Overlap
from pipeline.kafka_source import Origin
from tests.conftest import shared_path

NTREX = "corpus/parallel/ntrex-128"
BBC = "corpus/articles/bbc-news-2005/bbc"
T0 = datetime(2026, 11, 20, 8, 0, tzinfo=UTC)


def ntrex_documents(stem: str) -> list[str]:
    ntrex = shared_path(NTREX)
    ids = (ntrex / "DOCUMENT_IDS.tsv").read_text(encoding="utf-8").splitlines()
    lines = (ntrex / "NTREX-128" / f"newstest2019-{stem}.txt").read_text(encoding="utf-8")
    documents: OrderedDict[str, list[str]] = OrderedDict()
    for doc_id, line in zip(ids, lines.splitlines(), strict=True):
        documents.setdefault(doc_id, []).append(line)
    return ["\n".join(lines) for lines in documents.values()]


def bbc(name: str) -> str:
    return shared_path(f"{BBC}/{name}").read_text(encoding="utf-8")


def item(text: str, url: str, at: datetime = T0, offset: int = 0) -> EnrichedArticle:
    title, _, body = text.partition("\n")
    article = Article.create(
        source="test", url=url, title=title, body=body, fetched_at=at, published_at=at
    )
    return EnrichedArticle(article, Origin("raw", 0, offset), language=LanguageGuess("en", 1.0))


def stage_with_store(settings: DedupeSettings) -> tuple[Deduplication, MemoryFingerprints]:
    store = MemoryFingerprints(settings)
    stage = Deduplication(settings, lambda: store)
    stage.load()
    return stage, store


@pytest.fixture
def dedupe() -> Deduplication:
    return stage_with_store(DedupeSettings())[0]


def test_an_edited_copy_from_another_outlet_is_a_duplicate_in_the_same_cluster(
    dedupe: Deduplication,
) -> None:
    story = ntrex_documents("src.eng")[0]
    copy = story + "\nRead more: subscribe to our newsletter for the latest headlines."
    [first] = dedupe.run([item(story, "https://a.example/story")])
    [second] = dedupe.run([item(copy, "https://b.example/copied", T0 + timedelta(hours=2))])
    assert first.duplication and second.duplication
    assert (
        first.duplication.cluster_id == first.article.id and first.duplication.duplicate_of is None
    )
    assert second.duplication.cluster_id == first.article.id
    assert second.duplication.duplicate_of == first.article.id
    assert 0.7 <= second.duplication.similarity < 1.0


def test_the_same_content_at_another_url_is_an_exact_duplicate(dedupe: Deduplication) -> None:
    story = ntrex_documents("src.eng")[3]
    first, second = dedupe.run(
        [item(story, "https://a.example/1"), item(story.upper(), "https://c.example/2", offset=1)]
    )
    assert second.duplication and second.duplication.duplicate_of == first.article.id
    assert second.duplication.similarity == 1.0


def test_independent_versions_of_one_document_meet_and_other_articles_do_not(
    dedupe: Deduplication,
) -> None:
    us, gb = ntrex_documents("src.eng"), ntrex_documents("ref.eng-GB")
    batch = [item(text, f"https://us.example/{n}", offset=n) for n, text in enumerate(us[:20])]
    firsts = dedupe.run(batch)
    assert len({f.duplication.cluster_id for f in firsts if f.duplication}) == 20
    seconds = dedupe.run(
        [item(text, f"https://gb.example/{n}", offset=n) for n, text in enumerate(gb[:20])]
    )
    assert [s.duplication.cluster_id for s in seconds if s.duplication] == [
        f.article.id for f in firsts
    ]


def test_an_unrelated_article_on_the_same_topic_starts_its_own_cluster(
    dedupe: Deduplication,
) -> None:
    first = dedupe.run([item(bbc("business/001.txt"), "https://a.example/1")])[0]
    other = dedupe.run([item(bbc("business/002.txt"), "https://a.example/2")])[0]
    assert other.duplication and other.duplication.cluster_id == other.article.id
    assert first.duplication and first.duplication.cluster_id == first.article.id


def probe(article_id: str, text: str, settings: DedupeSettings) -> Probe:
    return Probe(
        article_id, T0, "en", fingerprint_of(item(text, f"https://{article_id}"), settings)
    )


class NotYetVisible(MemoryFingerprints):
    """The shared store as a worker sees it before another worker's writes are searchable: its
    lookups find nothing, its writes (and the atomic claim) go through."""

    def candidates(self, probes: list[Probe]) -> list[list[StoredFingerprint]]:
        return [[] for _ in probes]


def test_copies_decided_at_once_by_two_workers_agree_on_the_first() -> None:
    """Worker B decides before worker A's fingerprints are visible: the claim on the content
    still makes B's copy a duplicate of A's, and B's edited copy decided after it follows."""
    settings = DedupeSettings()
    shared = NotYetVisible(settings)
    story = ntrex_documents("src.eng")[4]
    edited = story + "\nRead more: subscribe to our newsletter for the latest headlines."
    [a] = decide_and_save([probe("a", story, settings)], shared, settings)
    [b, b_edited] = decide_and_save(
        [probe("b", story, settings), probe("b2", edited, settings)], shared, settings
    )
    assert (a.cluster_id, a.duplicate_of) == ("a", None)
    assert (b.cluster_id, b.duplicate_of, b.similarity) == ("a", "a", 1.0)
    assert (b_edited.cluster_id, b_edited.duplicate_of) == ("a", "a")
    saved = shared.known(["b", "b2"])  # as decided at last
    assert {i: (f.cluster_id, f.duplicate_of) for i, f in saved.items()} == {
        "b": ("a", "a"),
        "b2": ("a", "a"),
    }


def test_an_article_decided_again_before_it_was_visible_stays_first() -> None:
    """Re-read after a crash, before its fingerprint was searchable: its own claim is no rival."""
    settings = DedupeSettings()
    store = NotYetVisible(settings)
    story = ntrex_documents("src.eng")[4]
    for _ in range(2):
        [decision] = decide_and_save([probe("a", story, settings)], store, settings)
        assert (decision.cluster_id, decision.duplicate_of) == ("a", None)


def test_a_replay_keeps_every_decision(dedupe: Deduplication) -> None:
    stories = ntrex_documents("src.eng")[:5] + ntrex_documents("ref.eng-GB")[:5]
    batch = [item(text, f"https://x.example/{n}", offset=n) for n, text in enumerate(stories)]
    first = [i.duplication for i in dedupe.run(batch)]
    assert [i.duplication for i in dedupe.run(batch)] == first
    assert len({d.cluster_id for d in first if d}) == 5


def test_articles_further_apart_than_the_window_are_not_linked(dedupe: Deduplication) -> None:
    story = ntrex_documents("src.eng")[1]
    dedupe.run([item(story, "https://a.example/old")])
    late = dedupe.run([item(story, "https://b.example/new", T0 + timedelta(days=8))])[0]
    assert late.duplication and late.duplication.cluster_id == late.article.id


def test_fingerprints_a_window_old_are_evicted() -> None:
    stage, store = stage_with_store(DedupeSettings(window_days=1))
    docs = ntrex_documents("src.eng")
    for day in range(10):
        stage.run([item(docs[day], f"https://a.example/{day}", T0 + timedelta(days=day))])
    assert len(store) <= 3  # the last window and a bit, not the whole stream


def test_suppress_marks_duplicates_and_only_them() -> None:
    stage, _ = stage_with_store(DedupeSettings(duplicates="suppress"))
    story = ntrex_documents("src.eng")[2]
    first, copy = stage.run([item(story, "https://a/1"), item(story, "https://b/2", offset=1)])
    assert first.duplication and not first.duplication.suppressed
    assert copy.duplication and copy.duplication.suppressed


def test_an_article_without_english_text_is_fingerprinted_on_its_original(
    dedupe: Deduplication,
) -> None:
    spanish = ntrex_documents("ref.spa")[0]
    a, b = (
        replace(item(spanish, f"https://{host}/s"), language=LanguageGuess("es", 1.0))
        for host in ("a.example", "b.example")
    )
    first, second = dedupe.run([a, replace(b, origin=Origin("raw", 0, 1))])
    assert second.duplication and second.duplication.duplicate_of == first.article.id


def test_settings_reject_inconsistent_lsh_parameters() -> None:
    with pytest.raises(ValueError, match="exceeds num_perm"):
        DedupeSettings(bands=65, rows=2, num_perm=128)
    with pytest.raises(ValueError, match="at least cluster_threshold"):
        DedupeSettings(cluster_threshold=0.8, duplicate_threshold=0.5)


def test_the_copy_test_needs_shared_words_and_either_containment_or_order() -> None:
    settings = DedupeSettings(duplicate_threshold=0.25, duplicate_containment=0.95)
    assert is_copy(Overlap(jaccard=0.4, containment=1.0, order=0.2), settings)  # truncated
    assert is_copy(Overlap(jaccard=0.4, containment=0.6, order=0.9), settings)  # translated
    assert not is_copy(Overlap(jaccard=0.6, containment=0.8, order=0.7), settings)  # follow-up
    assert not is_copy(Overlap(jaccard=0.2, containment=1.0, order=1.0), settings)  # excerpt


def test_a_follow_up_on_the_same_event_joins_the_story_but_is_no_copy(
    dedupe: Deduplication,
) -> None:
    # Two BBC pieces on one Labour row: most of their words shared (Jaccard 0.45), told apart.
    first = dedupe.run([item(bbc("politics/218.txt"), "https://a.example/1")])[0]
    follow_up = dedupe.run(
        [item(bbc("politics/255.txt"), "https://b.example/2", T0 + timedelta(hours=5))]
    )[0]
    assert follow_up.duplication and first.duplication
    assert follow_up.duplication.cluster_id == first.article.id
    assert follow_up.duplication.duplicate_of is None


def test_a_truncated_copy_is_a_duplicate(dedupe: Deduplication) -> None:
    story = bbc("business/360.txt")
    cut = " ".join(story.split()[: len(story.split()) * 6 // 10])
    first, second = dedupe.run([item(story, "https://a/1"), item(cut, "https://b/2", offset=1)])
    assert second.duplication and second.duplication.duplicate_of == first.article.id


def test_a_fingerprint_stored_before_positions_reads_back_and_still_verifies() -> None:
    stage, store = stage_with_store(DedupeSettings())
    [first] = stage.run([item(bbc("business/360.txt"), "https://a.example/1")])
    source = to_source(store.known([first.article.id])[first.article.id])
    del source["positions"]  # as an older version stored it
    old = from_source(first.article.id, source)
    assert old.positions.size == 0 and old.shingles.size > 0
    store.save([old], [])
    story = bbc("business/360.txt")
    cut = " ".join(story.split()[: len(story.split()) * 6 // 10])
    [second] = stage.run([item(cut, "https://b.example/2", offset=1)])
    assert second.duplication and second.duplication.duplicate_of == first.article.id


def words(first: int, last: int) -> str:
    """A text of distinct content words ``w<first>`` … ``w<last - 1>``."""
    return " ".join(f"w{n}x" for n in range(first, last))


@pytest.mark.parametrize(
    ("language", "one_story"),
    [
        ("en", False),
        ("pt", True),
    ],  # Jaccard 0.3: below the same-language threshold, above the other
)
def test_articles_of_one_language_must_share_more_than_a_story_and_its_translation(
    language: str, one_story: bool
) -> None:
    settings = DedupeSettings()
    assert settings.cluster_threshold < 0.3 < settings.same_language_cluster_threshold
    store = MemoryFingerprints(settings)
    first = Probe("first", T0, "en", fingerprint_of(item(words(0, 100), "https://a/1"), settings))
    # 46 of 100 words shared: Jaccard 46 / 154 = 0.30
    second_text = words(54, 154)
    second = Probe(
        "second", T0, language, fingerprint_of(item(second_text, "https://b/2"), settings)
    )
    decide_and_save([first], store, settings)
    (decision,) = decide_and_save([second], store, settings)
    assert (decision.cluster_id == "first") is one_story
    assert decision.duplicate_of is None
