"""The dedupe bench's labels and scoring: pure functions on made-up documents."""

from __future__ import annotations

import math

import pytest

from bench.dedupe import Doc, dataset_labels, half, jaccard_at, relabel, verify
from pipeline.fingerprint import Overlap


def doc(key: str, story: str, text: str = "", language: str = "en") -> Doc:
    return Doc(key, story, language, "test", text)


def test_relabel_joins_the_stories_of_the_same_text_and_keeps_the_dataset_s() -> None:
    docs = [
        doc("a", "a"),
        doc("a2", "a"),  # the dataset's repeat of a (say, same headline)
        doc("b", "b"),
        doc("c", "c"),
    ]
    texts = ["one  text\n", "another text", "one text", "a third text"]
    labelled = relabel(docs, texts)
    assert [d.story for d in labelled] == ["a", "a", "a", "c"]
    assert [d.dataset_story for d in labelled] == ["a", "a", "b", "c"]
    assert [d.story for d in dataset_labels(labelled)] == ["a", "a", "b", "c"]


def test_relabel_merges_whole_stories_not_single_documents() -> None:
    # b2 is b's repeat by the dataset; b's text equals a's: all three are one story.
    labelled = relabel([doc("a", "a"), doc("b", "b"), doc("b2", "b")], ["x y", "x  y", "z"])
    assert {d.story for d in labelled} == {"a"}


def test_verify_counts_every_true_pair_and_only_accepted_candidates() -> None:
    a, a2, a3, b = doc("a", "s1"), doc("a2", "s1"), doc("a3", "s1"), doc("b", "s2")
    pairs = [
        (a, a2, Overlap(0.9, 1.0, 1.0)),
        (a, b, Overlap(0.5, 0.6, 0.3)),
        (a2, a3, Overlap(0.1, 0.2, 0.1)),
    ]  # a-a3 was never a candidate: a miss all the same
    scored = verify([a, a2, a3, b], pairs, jaccard_at(0.4))
    assert scored.recall == pytest.approx(1 / 3)
    assert scored.precision == pytest.approx(1 / 2) and scored.false_pairs == 1
    both = [verify([a, a2, a3, b], pairs, jaccard_at(0.4), part) for part in (0, 1)]
    assert sum(v.false_pairs for v in both) == 1
    assert [v.recall for v in both if not math.isnan(v.recall)] == [pytest.approx(1 / 3)]


def test_cross_language_pairs_are_scored_apart() -> None:
    en, es = doc("en", "s", language="en"), doc("es", "s", language="es")
    pairs = [(en, es, Overlap(0.3, 0.5, 0.9))]
    assert verify([en, es], pairs, jaccard_at(0.2), same_language=False).recall == 1.0
    assert math.isnan(verify([en, es], pairs, jaccard_at(0.2)).recall)  # no same-language pair


def test_halves_are_stable_and_both_used() -> None:
    assert {half(f"story{n}") for n in range(20)} == {0, 1}
    assert half("story1") == half("story1")
