"""The name completion bench: leave-one-out bookkeeping and scoring on made-up names, then a
smoke run of the whole benchmark on 20 real articles."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.names import (
    CROWDS,
    Doc,
    Trial,
    article_rewrites,
    article_trials,
    build_book,
    contributions,
    copy_groups,
    grid,
    main,
    most_common,
    outcome,
    read_bbc,
    rewrite_rows,
    score,
    shorter_forms,
    variant,
    without,
)
from newsflow.settings import NameSettings
from pipeline.enriched import Entity
from tests.conftest import shared_path

BLAIR = "Tony Blair"


def person(name: str, *surfaces: str, label: str = "PERSON") -> Entity:
    return Entity(label, name, surfaces or (name,), len(surfaces) or 1, 0)


def test_contributions_count_each_article_once_per_name() -> None:
    assert contributions([{BLAIR, "Cherie Blair"}, {BLAIR}]) == {BLAIR: 2, "Cherie Blair": 1}


def test_without_takes_out_what_the_article_added_and_drops_zero_counts() -> None:
    known = {BLAIR: 3, "Cherie Blair": 1, "Euan Blair": 2}
    own = contributions([{BLAIR, "Cherie Blair", "Gordon Brown"}])
    assert without(known, own) == {BLAIR: 2, "Euan Blair": 2}
    assert without(known, {}) == known


def test_leaving_an_article_out_of_the_book_is_building_the_book_without_it() -> None:
    articles = [{BLAIR, "Cherie Blair"}, {BLAIR}, {"Euan Blair"}]
    book = build_book(articles, max_names=100)
    rest = build_book(articles[1:], max_names=100)
    assert without(book.known("Blair"), contributions(articles[:1])) == rest.known("Blair")


def test_shorter_forms_are_the_article_s_own_short_spellings_normalized() -> None:
    entity = person(BLAIR, "Tony Blair", "Mr Blair's", "Blair", "Tony", "PM Blair")
    assert shorter_forms(entity) == ["Blair"]  # "Tony" alone is not a short form
    assert shorter_forms(person("Blair", "Blair")) == []  # not a full name
    assert shorter_forms(person("New York City", "New York", label="GPE")) == []
    erdogan = person("Recep Tayyip Erdogan", "Recep Tayyip", "Erdogan", "Recep Tayyip Erdogan")
    assert shorter_forms(erdogan) == ["Recep Tayyip", "Erdogan"]


def test_article_trials_ask_the_book_without_the_article() -> None:
    book = build_book([{BLAIR}, {BLAIR}, {BLAIR, "Cherie Blair"}], max_names=100)
    entities = (person(BLAIR, "Tony Blair", "Blair"), person("Cherie Blair"))
    trials = article_trials("politics/1", entities, book.known, {BLAIR: 1, "Cherie Blair": 1})
    assert trials == [Trial("politics/1", "Blair", BLAIR, {BLAIR: 2})]


def test_outcome_and_variant() -> None:
    assert outcome(BLAIR, BLAIR) == "correct"
    assert outcome(BLAIR, "Cherie Blair") == "wrong"
    assert outcome(BLAIR, None) == "abstained"
    assert variant("George Bush", "George W. Bush")
    assert variant("Briton Tim Henman", "Tim Henman")
    assert variant("Theo Van Gogh", "Theo van Gogh")
    assert not variant(BLAIR, "Cherie Blair")


def trial(short: str, expected: str, known: dict[str, int]) -> Trial:
    return Trial("a", short, expected, known)


TRIALS = [
    trial("Blair", BLAIR, {BLAIR: 9, "Cherie Blair": 1}),  # 0.9: completed at 0.9, not 0.95
    trial("Blair", "Cherie Blair", {BLAIR: 9}),  # another Blair: wrong whenever answered
    # one person in two spellings: the most cited one is the answer
    trial("Henman", "Tim Henman", {"Briton Tim Henman": 1, "Tim Henman": 4}),
    trial("Brown", "Gordon Brown", {"Gordon Brown": 1}),  # one article: only min_documents=1
    trial("Kennedy", "Charles Kennedy", {}),  # nothing known
]


def test_score_counts_outcomes_and_explains_the_wrong_answers() -> None:
    result, wrong = score(TRIALS, min_documents=2, dominance=0.9)
    assert (result.trials, result.correct, result.wrong, result.abstained) == (5, 2, 1, 2)
    assert result.precision == pytest.approx(2 / 3)
    assert result.coverage == pytest.approx(2 / 5)
    assert [(w.short, w.got, w.variant, w.unseen) for w in wrong] == [
        ("Blair", BLAIR, False, True),
    ]
    assert (result.variants, result.unseen) == (0, 1)


def test_score_without_answers_has_no_precision() -> None:
    result, wrong = score(TRIALS[-1:], min_documents=2, dominance=0.9)
    assert result.precision is None and result.coverage == 0.0 and wrong == []
    empty, _ = score([], min_documents=2, dominance=0.9)
    assert empty.precision is None and empty.coverage is None


def test_grid_scores_the_same_trials_under_each_setting() -> None:
    scores = grid(TRIALS, (1, 2), (0.9, 0.95))
    assert [(s.dominance, s.min_documents) for s in scores] == [
        (0.9, 1),
        (0.9, 2),
        (0.95, 1),
        (0.95, 2),
    ]
    assert [s.correct for s in scores] == [3, 2, 2, 1]
    assert all(s.trials == len(TRIALS) for s in scores)
    assert scores[1] == score(TRIALS, 2, 0.9)[0]


def test_rewrites_say_what_the_stage_would_do_to_each_person_name() -> None:
    book = {"Andy Roddick": 20, "Gilbert Andy Roddick": 1, BLAIR: 5}
    entities = (
        person("Roddick"),
        person("Andy Roddick"),
        person("Blair"),
        person("Brown"),
        person("Blair", label="ORG"),  # not a person: not asked
    )
    rewrites = article_rewrites("sport/1", entities, lambda _name: book, NameSettings())
    assert [(r.name, r.got, r.cited_as_written, r.cited_as_completed) for r in rewrites] == [
        ("Roddick", "Andy Roddick", 0, 20),
        ("Andy Roddick", None, 20, 0),  # the most cited spelling of its person: kept
        ("Blair", BLAIR, 0, 5),
        ("Brown", None, 0, 0),
    ]
    assert rewrite_rows(rewrites) == [
        ["one word", 3, 2, 0, 1],
        ["two words or more", 1, 0, 0, 1],
    ]


def test_copy_groups_join_articles_with_the_same_body() -> None:
    docs = [
        Doc("a", "One", "Body  text.\n"),
        Doc("b", "Two", "Other."),
        Doc("c", "Three", "Body text."),
    ]
    assert copy_groups(docs) == [[0, 2], [1], [0, 2]]


def test_most_common_counts_distinct_rows() -> None:
    rows = [("Blair", BLAIR), ("Fox", "Liam Fox"), ("Blair", BLAIR)]
    assert most_common(rows) == [[2, "Blair", BLAIR], [1, "Fox", "Liam Fox"]]
    assert most_common(rows, limit=1) == [[2, "Blair", BLAIR]]


def test_read_bbc_splits_title_and_body_and_spreads_a_limit(tmp_path: Path) -> None:
    for category in ("business", "sport"):
        folder = tmp_path / "articles" / "bbc-news-2005" / "bbc" / category
        folder.mkdir(parents=True)
        for n in range(1, 4):
            (folder / f"00{n}.txt").write_bytes(f"{category} {n}\n\nBody \xa3{n}\n".encode())
    (folder / "004.txt").write_bytes(b"Title\n\nCost \xa310m\n")  # Latin-1, as sport/199.txt
    docs = read_bbc(tmp_path)
    assert docs[0] == Doc("business/001", "business 1", "Body £1")
    assert docs[-1] == Doc("sport/004", "Title", "Cost \ufffd10m")
    assert [d.key for d in read_bbc(tmp_path, limit=2)] == ["business/001", "sport/001"]


def test_smoke_run_on_twenty_articles(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "names.json"
    corpus = shared_path("corpus")
    assert main(["--corpus", str(corpus), "--limit", "20", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "### Leave one out" in captured.out and "### Cost" in captured.out
    assert "entities: 20/20 articles" in captured.err
    result = json.loads(out.read_text(encoding="utf-8"))
    assert result["articles"] == 20
    alone = result["leave_one_out"]
    assert alone["trials"] == alone["correct"] + alone["wrong"] + alone["abstained"] > 0
    assert len(result["grid"]) == 9
    assert result["cost"]["book_names"] > 0
    assert "### Cost in a crowded neighbourhood" in captured.out
    assert result["crowded"][0]["neighbourhood"] == CROWDS[0]
