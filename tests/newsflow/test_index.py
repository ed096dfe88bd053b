"""The news index's pure half: names, the period a document belongs to, derived fields."""

from __future__ import annotations

import pytest

from newsflow.index import (
    analyzed_languages,
    concrete_index_name,
    hunspell_locales,
    index_action,
    index_definition,
    mapping_version,
    original_language_fields,
    parse_index_name,
    period_of,
    place,
    write_actions,
    write_alias,
)
from newsflow.settings import ElasticsearchSettings

FETCHED = "2026-11-26T10:00:00+00:00"


@pytest.mark.parametrize(
    ("document", "month", "year"),
    [
        ({"published_at": "2026-07-09T08:00:00Z", "fetched_at": FETCHED}, "2026.07", "2026"),
        ({"fetched_at": FETCHED}, "2026.11", "2026"),  # no date: when we fetched it
        ({"published_at": "2005-03-01T00:00:00Z", "fetched_at": FETCHED}, "2005.03", "2005"),
        # a date in the future is the source's mistake: the fetch time decides
        ({"published_at": "2031-01-01T00:00:00Z", "fetched_at": FETCHED}, "2026.11", "2026"),
        # late on the 31st in New York is already the 1st in UTC: periods are UTC
        ({"published_at": "2026-10-31T22:00:00-04:00", "fetched_at": FETCHED}, "2026.11", "2026"),
        ({"indexed_at": FETCHED}, "2026.11", "2026"),  # a foreign document without fetched_at
    ],
)
def test_period_of(document: dict[str, str], month: str, year: str) -> None:
    assert period_of(document, "month") == month
    assert period_of(document, "year") == year


def test_names_round_trip() -> None:
    version = mapping_version()
    assert concrete_index_name("news", "2026.11") == f"news-v{version}-2026.11"
    assert parse_index_name("news", f"news-v{version}-2026.11") == (version, "2026.11")
    assert parse_index_name("news", "news-v3") == (3, None)  # the single index before version 4
    assert parse_index_name("news", "news-v4-2026") == (4, "2026")
    assert parse_index_name("news", "other-v4-2026.11") is None
    assert parse_index_name("news", "news-dedupe") is None
    assert parse_index_name("news-v4", "news-v4-2026.11") is None  # another alias's index
    assert write_alias("news", "2026.11") == "news-write-2026.11"


def test_index_action_targets_the_write_alias_of_the_documents_period() -> None:
    document = {"id": "a" * 32, "published_at": "2025-02-03T04:05:06Z", "fetched_at": FETCHED}
    action = index_action(ElasticsearchSettings(index_alias="tenant"), "a" * 32, document)
    assert action == {
        "_op_type": "index",
        "_index": "tenant-write-2025.02",
        "_id": "a" * 32,
        "_source": document,
    }


def test_original_language_fields() -> None:
    assert original_language_fields("pt", "Cimeira", "Os líderes") == {
        "original": {"pt": {"title": "Cimeira", "body": "Os líderes"}}
    }
    assert original_language_fields("es", "", "Cuerpo") == {"original": {"es": {"body": "Cuerpo"}}}
    assert original_language_fields("en", "Summit", "Leaders") == {}  # title_en / body_en
    assert original_language_fields("und", "x", "y") == {}
    assert original_language_fields(None, "x", "y") == {}


def test_every_analyzed_language_has_an_analyzer_with_a_hunspell_dictionary() -> None:
    definition = index_definition()
    analysis = definition["settings"]["analysis"]
    original = definition["mappings"]["properties"]["original"]["properties"]
    assert {"es", "pt", "fr", "de"} <= analyzed_languages()
    for language in analyzed_languages():
        analyzer = original[language]["properties"]["body"]["analyzer"]
        chain = analysis["analyzer"][analyzer]["filter"]
        custom = [analysis["filter"][name] for name in chain if name in analysis["filter"]]
        assert any(f["type"] == "hunspell" for f in custom), language
        assert chain[-1] == "lowercase", "Hunspell sees the original case (German nouns)"
    assert {"es_ES", "pt_PT", "fr_FR", "de_DE"} <= hunspell_locales()
    assert definition["mappings"]["_source"]["excludes"] == ["original"]


def current(period: str) -> str:
    return concrete_index_name("news", period)


def older(period: str) -> str:
    return concrete_index_name("news", period, mapping_version() - 1)


@pytest.mark.parametrize(
    ("stored_in", "period", "strays"),
    [
        ([], "2026.12", []),  # new: the period of its own dates
        ([current("2026.11")], "2026.11", []),  # stored: stays where it is
        # stored twice (before this rule): the earliest stays, the others are deleted
        ([current("2026.12"), current("2026.11")], "2026.11", [current("2026.12")]),
        ([older("2026.10")], "2026.10", []),  # during a migration: the period it lives in
        ([older("2026.10"), current("2026.11")], "2026.11", []),
        (["news-v3", "other-v5-2026.01"], "2026.12", []),  # not a period of ours: ignored
    ],
)
def test_place_keeps_an_article_where_it_is_stored(
    stored_in: list[str], period: str, strays: list[str]
) -> None:
    placement = place("news", "2026.12", stored_in)
    assert placement.period == period
    assert list(placement.strays) == strays


def test_write_actions_write_every_version_of_an_article_to_one_index() -> None:
    settings = ElasticsearchSettings(index_alias="news")
    undated = {"fetched_at": "2026-12-07T10:00:00+00:00"}
    refetched = {"fetched_at": "2026-12-08T10:00:00+00:00"}
    documents = [
        ("a", undated),  # first fetched in November: stays there
        ("b", undated),  # new, twice in one batch across a month's end: one period
        ("b", {"fetched_at": "2027-01-01T00:00:01+00:00"}),
        ("c", refetched),  # stored twice by an older release: one copy is deleted
    ]
    stored = {"a": [current("2026.11")], "c": [current("2026.12"), current("2026.11")]}
    actions, periods = write_actions(settings, documents, stored)
    assert periods == {"a": "2026.11", "b": "2026.12", "c": "2026.11"}
    assert [(a["_op_type"], a["_index"], a["_id"]) for a in actions] == [
        ("index", "news-write-2026.11", "a"),
        ("index", "news-write-2026.12", "b"),
        ("index", "news-write-2026.12", "b"),
        ("index", "news-write-2026.11", "c"),
        ("delete", current("2026.12"), "c"),  # after the writes: never zero copies
    ]
    assert actions[0]["_source"] is undated
