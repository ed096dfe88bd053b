"""Analyst search without Elasticsearch: requests, search body, results and terminal text."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta, timezone
from typing import Any

import pytest

from newsflow.cli import main
from newsflow.index import index_definition
from newsflow.search import (
    ENTITY_LABELS,
    FACET_FIELDS,
    SHOWN_ENTITY_TYPES,
    TOP_ENTITIES,
    SearchRequest,
    build_search_body,
    describe_link,
    entity_filter,
    format_results,
    parse_entity_filter,
    parse_when,
    story_link,
    to_hit,
    to_result,
)

# -- parsing ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        ("PERSON:Jens Stoltenberg", ("PERSON", "Jens Stoltenberg")),
        ("person: Jens Stoltenberg ", ("PERSON", "Jens Stoltenberg")),
        ("ORG:Foo: The Sequel", ("ORG", "Foo: The Sequel")),
        ("WORK_OF_ART:Guernica", ("WORK_OF_ART", "Guernica")),
    ],
)
def test_parse_entity_filter(value: str, expected: tuple[str, str]) -> None:
    assert parse_entity_filter(value) == expected


@pytest.mark.parametrize("value", ["Jens Stoltenberg", "PERSON:", ":Jens", "PERSON:   ", ""])
def test_parse_entity_filter_refuses_a_bad_format_with_an_example(value: str) -> None:
    with pytest.raises(ValueError, match=r"must look like LABEL:NAME, e\.g\. 'PERSON:Jens"):
        parse_entity_filter(value)


def test_parse_entity_filter_refuses_an_unknown_label_and_lists_the_known_ones() -> None:
    with pytest.raises(ValueError, match=r"unknown entity label 'PEOPLE'.*PERSON, ORG, GPE"):
        parse_entity_filter("PEOPLE:Jens Stoltenberg")


def test_entity_labels_are_the_mapped_entity_fields() -> None:
    assert {"PERSON", "ORG", "GPE", "LOC", "NORP"} <= set(ENTITY_LABELS)
    assert "entity_details" not in ENTITY_LABELS


@pytest.mark.parametrize(
    ("value", "end_of_day", "expected"),
    [
        ("2026-07-09", False, datetime(2026, 7, 9, tzinfo=UTC)),
        ("2026-07-09", True, datetime(2026, 7, 9, 23, 59, 59, 999999, tzinfo=UTC)),
        ("2026-07-09T08:30:00Z", True, datetime(2026, 7, 9, 8, 30, tzinfo=UTC)),
        ("2026-07-09T08:30", False, datetime(2026, 7, 9, 8, 30, tzinfo=UTC)),
        (
            "2026-07-09T08:30:00+02:00",
            False,
            datetime(2026, 7, 9, 8, 30, tzinfo=timezone(timedelta(hours=2))),
        ),
    ],
)
def test_parse_when(value: str, end_of_day: bool, expected: datetime) -> None:
    parsed = parse_when(value, end_of_day=end_of_day)
    assert parsed == expected and parsed.utcoffset() == expected.utcoffset()


@pytest.mark.parametrize("value", ["2026-13-01", "yesterday", "09/07/2026", ""])
def test_parse_when_refuses_what_is_not_iso_8601(value: str) -> None:
    with pytest.raises(ValueError, match=r"is not an ISO 8601 date or date-time, e\.g\."):
        parse_when(value)


# -- the request --------------------------------------------------------------------------------


def test_request_normalizes_text_filters_and_naive_dates() -> None:
    request = SearchRequest(
        text="  ",
        sources=[" DN "],  # type: ignore[arg-type]  # lists are accepted and frozen
        languages=("ES",),
        since=datetime(2026, 7, 1),
    )
    assert request.text is None
    assert request.sources == ("DN",) and request.languages == ("es",)
    assert request.since == datetime(2026, 7, 1, tzinfo=UTC)
    assert request.has_filters
    assert not SearchRequest(text="nato").has_filters


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"entities": ("PERSON",)}, "must look like LABEL:NAME"),
        ({"entities": ("BOGUS:x",)}, "unknown entity label"),
        ({"sources": ("",)}, "must not be empty"),
        ({"sort": "popularity"}, "sort must be one of relevance, date"),
        ({"size": -1}, "size must be between 0 and 1000"),
        ({"size": 1001}, "size must be between 0 and 1000"),
        ({"from_": -1}, "from must be >= 0"),
        ({"from_": 9995, "size": 10}, "from \\+ size <= 10000"),
        ({"facet_size": 0}, "facet size must be between 1 and 100"),
        (
            {"since": datetime(2026, 7, 2, tzinfo=UTC), "until": datetime(2026, 7, 1, tzinfo=UTC)},
            "since .* is after until",
        ),
    ],
)
def test_request_refuses_bad_values_clearly(changes: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SearchRequest(text="nato", **changes)


# -- the search body ----------------------------------------------------------------------------


def test_text_is_a_multi_match_over_english_then_original_fields_with_highlights() -> None:
    body = build_search_body(SearchRequest(text="nato summit"))
    assert body["query"] == {
        "bool": {
            "must": [
                {
                    "multi_match": {
                        "query": "nato summit",
                        "fields": [
                            "title_en^3",
                            "body_en",
                            "title^2",
                            "body",
                            "original.*.title^2",
                            "original.*.body",
                        ],
                        "type": "cross_fields",
                        "operator": "and",
                    }
                }
            ],
            "filter": [],
        }
    }
    highlight = body["highlight"]
    assert set(highlight["fields"]) == {"title_en", "body_en", "title", "body"}
    assert highlight["fragment_size"] <= 200 and highlight["encoder"] == "html"
    assert highlight["max_analyzed_offset"] == 1_000_000  # longer fields cannot fail a search


def test_without_text_everything_matches_and_nothing_is_highlighted() -> None:
    body = build_search_body(SearchRequest(languages=("es",)))
    assert body["query"]["bool"]["must"] == [{"match_all": {}}]
    assert "highlight" not in body


def test_filters_are_in_filter_context_one_per_criterion() -> None:
    body = build_search_body(
        SearchRequest(
            text="nato",
            entities=("PERSON:Jens Stoltenberg", "gpe:Vilnius"),
            sources=("DN", "El País"),
            languages=("en", "es"),
        )
    )
    assert body["query"]["bool"]["filter"] == [
        entity_filter("PERSON", "Jens Stoltenberg"),
        entity_filter("GPE", "Vilnius"),
        {"terms": {"source": ["DN", "El País"]}},
        {"terms": {"language": ["en", "es"]}},
    ]


def test_a_cluster_filter_and_collapsing_by_story() -> None:
    plain = build_search_body(SearchRequest(text="nato"))
    assert "collapse" not in plain and "stories" not in plain["aggs"]
    body = build_search_body(SearchRequest(text="nato", cluster=" c1 ", collapse=True))
    assert body["query"]["bool"]["filter"] == [{"term": {"dedupe.cluster_id": "c1"}}]
    assert body["collapse"]["field"] == "dedupe.cluster_id"
    assert body["collapse"]["inner_hits"]["size"] == 0  # counted, not fetched
    assert body["aggs"]["stories"] == {"cardinality": {"field": "dedupe.cluster_id"}}
    assert SearchRequest(cluster="c1").has_filters


def date_filter(request: SearchRequest) -> dict[str, Any]:
    [only] = build_search_body(request)["query"]["bool"]["filter"]
    return only


def test_a_date_range_applies_to_published_at_or_else_fetched_at() -> None:
    since = datetime(2026, 7, 1, tzinfo=UTC)
    until = datetime(2026, 7, 9, 23, 59, 59, tzinfo=UTC)
    bounds = {"gte": "2026-07-01T00:00:00+00:00", "lte": "2026-07-09T23:59:59+00:00"}
    assert date_filter(SearchRequest(since=since, until=until)) == {
        "bool": {
            "should": [
                {"range": {"published_at": bounds}},
                {
                    "bool": {
                        "must_not": [{"exists": {"field": "published_at"}}],
                        "filter": [{"range": {"fetched_at": bounds}}],
                    }
                },
            ],
            "minimum_should_match": 1,
        }
    }


@pytest.mark.parametrize(
    ("request_", "bounds"),
    [
        (
            SearchRequest(since=datetime(2026, 7, 1, tzinfo=UTC)),
            {"gte": "2026-07-01T00:00:00+00:00"},
        ),
        (
            SearchRequest(until=datetime(2026, 7, 1, tzinfo=UTC)),
            {"lte": "2026-07-01T00:00:00+00:00"},
        ),
    ],
)
def test_an_open_date_range_has_one_bound(request_: SearchRequest, bounds: dict[str, str]) -> None:
    assert date_filter(request_)["bool"]["should"][0] == {"range": {"published_at": bounds}}


def test_facets_are_terms_aggregations_of_the_configured_size() -> None:
    aggs = build_search_body(SearchRequest(text="nato", facet_size=7))["aggs"]
    assert aggs == {
        "PERSON": {"terms": {"field": "entities.PERSON", "size": 7}},
        "original PERSON": {"terms": {"field": "original_entities.PERSON", "size": 7}},
        "ORG": {"terms": {"field": "entities.ORG", "size": 7}},
        "original ORG": {"terms": {"field": "original_entities.ORG", "size": 7}},
        "GPE": {"terms": {"field": "entities.GPE", "size": 7}},
        "original GPE": {"terms": {"field": "original_entities.GPE", "size": 7}},
        "source": {"terms": {"field": "source", "size": 7}},
        "language": {"terms": {"field": "language", "size": 7}},
    }


def test_each_entity_facet_is_followed_by_its_original_language_twin() -> None:
    assert list(FACET_FIELDS) == [
        "PERSON",
        "original PERSON",
        "ORG",
        "original ORG",
        "GPE",
        "original GPE",
        "source",
        "language",
    ]


def test_every_facet_field_is_a_keyword_in_the_index_template() -> None:
    """A terms aggregation on a missing or text field would fail or count nothing."""
    properties = index_definition()["mappings"]["properties"]
    for field in FACET_FIELDS.values():
        mapping: dict[str, Any] = {"properties": properties}
        for part in field.split("."):
            mapping = mapping["properties"][part]
        assert mapping["type"] == "keyword", field


BY_DATE = [
    {"published_at": {"order": "desc", "missing": "_last"}},
    {"fetched_at": {"order": "desc"}},
    {"id": "asc"},
]


def test_date_sort_is_newest_first_with_fetched_at_as_fallback() -> None:
    assert build_search_body(SearchRequest(text="x", sort="date"))["sort"] == BY_DATE


def test_relevance_sort_breaks_ties_by_date() -> None:
    assert build_search_body(SearchRequest(text="x"))["sort"] == ["_score", *BY_DATE]


def test_paging_total_and_returned_fields() -> None:
    body = build_search_body(SearchRequest(text="x", size=25, from_=50))
    assert (body["size"], body["from"], body["track_total_hits"]) == (25, 50, True)
    assert "body" not in body["_source"] and "body_en" not in body["_source"]
    assert {"title", "title_en", "translation.status", "entities"} <= set(body["_source"])


# -- results ------------------------------------------------------------------------------------


def raw_hit(highlight: dict[str, list[str]] | None = None, **source: Any) -> dict[str, Any]:
    raw = {"_index": "news-v2", "_id": "a" * 32, "_score": 7.25, "_source": source}
    if highlight is not None:
        raw["highlight"] = highlight
    return raw


def test_to_hit_flattens_a_full_hit() -> None:
    hit = to_hit(
        raw_hit(
            highlight={"title": ["<em>Cumbre</em> de la OTAN"]},
            title="Cumbre de la OTAN en Vilnius",
            source="El País",
            url="https://example.com/otan",
            published_at="2026-07-09T08:00:00Z",
            fetched_at="2026-07-10T09:00:00Z",
            language="es",
            title_en="NATO summit in Vilnius",
            translation={"status": "translated"},
            entities={"PERSON": ["Jens Stoltenberg"], "GPE": ["Vilnius", "Lithuania"]},
            dedupe={"cluster_id": "b" * 32, "duplicate_of": "b" * 32},
        )
        | {"inner_hits": {"story": {"hits": {"total": {"value": 3}, "hits": []}}}}
    )
    assert hit == {
        "id": "a" * 32,
        "score": 7.25,
        "title": "Cumbre de la OTAN en Vilnius",
        "title_en": "NATO summit in Vilnius",
        "translation": "translated",
        "source": "El País",
        "url": "https://example.com/otan",
        "date": "2026-07-09T08:00:00Z",
        "language": "es",
        "entities": {"PERSON": ["Jens Stoltenberg"], "ORG": [], "GPE": ["Vilnius", "Lithuania"]},
        "highlights": {"title": ["<em>Cumbre</em> de la OTAN"]},
        "cluster_id": "b" * 32,
        "duplicate_of": "b" * 32,
        "similar": 2,  # the story's other matching articles
    }


def test_to_hit_limits_entities_and_types() -> None:
    people = [f"Person {n}" for n in range(TOP_ENTITIES + 3)]
    hit = to_hit(raw_hit(title="T", entities={"PERSON": people, "NORP": ["Polish"]}))
    assert hit["entities"]["PERSON"] == people[:TOP_ENTITIES]
    assert list(hit["entities"]) == list(SHOWN_ENTITY_TYPES) == ["PERSON", "ORG", "GPE"]


def test_to_hit_falls_back_to_fetched_at_and_tolerates_missing_fields() -> None:
    hit = to_hit(raw_hit(fetched_at="2026-07-10T09:00:00Z"))
    assert hit["date"] == "2026-07-10T09:00:00Z"
    assert hit["title"] == ""
    assert (hit["source"], hit["url"], hit["language"], hit["title_en"]) == (None,) * 4
    assert hit["translation"] is None and hit["highlights"] == {}
    assert hit["entities"] == {"PERSON": [], "ORG": [], "GPE": []}


def response(hits: list[dict[str, Any]], total: int, **buckets: list[tuple[str, int]]) -> dict:
    return {
        "hits": {"total": {"value": total, "relation": "eq"}, "hits": hits},
        "aggregations": {
            name: {"buckets": [{"key": k, "doc_count": c} for k, c in pairs]}
            for name, pairs in buckets.items()
        },
    }


def test_to_result_has_total_hits_and_every_facet_as_value_count_pairs() -> None:
    result = to_result(
        response(
            [raw_hit(title="A")],
            total=12,
            PERSON=[("Jens Stoltenberg", 3), ("Andrzej Duda", 1)],
            source=[("DN", 12)],
        )
    )
    assert result["total"] == 12
    assert [hit["title"] for hit in result["hits"]] == ["A"]
    assert result["facets"] == {
        "PERSON": [("Jens Stoltenberg", 3), ("Andrzej Duda", 1)],
        "original PERSON": [],
        "ORG": [],
        "original ORG": [],
        "GPE": [],
        "original GPE": [],
        "source": [("DN", 12)],
        "language": [],
    }
    assert list(result["facets"]) == list(FACET_FIELDS)


# -- the terminal -------------------------------------------------------------------------------


def hit(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "a" * 32,
        "score": 1.0,
        "title": "NATO summit in Vilnius",
        "title_en": "NATO summit in Vilnius",
        "translation": "not_needed",
        "source": "DN",
        "url": "https://example.com/nato",
        "date": "2026-07-09T08:00:00Z",
        "language": "en",
        "entities": {"PERSON": ["Jens Stoltenberg", "Andrzej Duda"], "ORG": [], "GPE": ["Vilnius"]},
        "highlights": {},
    }
    return {**base, **changes}


def result(hits: list[dict[str, Any]], total: int | None = None, **facets: Any) -> dict[str, Any]:
    empty: dict[str, list[tuple[str, int]]] = {name: [] for name in FACET_FIELDS}
    return {"total": len(hits) if total is None else total, "hits": hits, "facets": empty | facets}


def test_format_results_without_hits() -> None:
    assert format_results(result([])) == "no matching articles"


def test_format_results_shows_hits_then_non_empty_facets() -> None:
    text = format_results(
        result(
            [hit()],
            PERSON=[("Jens Stoltenberg", 3), ("Andrzej Duda", 1)],
            language=[("en", 1)],
        )
    )
    assert text == (
        "1 matching article\n"
        "\n"
        " 1. NATO summit in Vilnius\n"
        "    DN | 2026-07-09 | en | https://example.com/nato\n"
        "    PERSON: Jens Stoltenberg, Andrzej Duda\n"
        "    GPE: Vilnius\n"
        "\n"
        "facets:\n"
        "  PERSON: Jens Stoltenberg (3), Andrzej Duda (1)\n"
        "  language: en (1)"
    )


def test_format_results_lists_original_language_facets_like_the_others() -> None:
    text = format_results(
        result(
            [hit()],
            PERSON=[("Trump", 1)],
            **{"original PERSON": [("Poutine", 1), ("Trump", 1)], "original GPE": []},
        )
    )
    assert text.split("\n\n")[-1] == (
        "facets:\n  PERSON: Trump (1)\n  original PERSON: Poutine (1), Trump (1)"
    )


def test_format_results_shows_the_english_title_and_a_plain_text_fragment() -> None:
    translated = hit(
        title="Cumbre de la OTAN",
        title_en="NATO summit",
        highlights={
            "title": ["<em>Cumbre</em> de la OTAN"],
            "body": ["La <em>cumbre</em> de &quot;Vilnius&quot;\n empieza"],
        },
    )
    lines = format_results(result([translated], total=40)).splitlines()
    assert lines[0] == "40 matching articles, showing 1"
    assert lines[2:4] == [" 1. Cumbre de la OTAN", "    en: NATO summit"]
    assert lines[-1] == '    > La *cumbre* de "Vilnius" empieza'


def test_format_results_prefers_the_english_fragment() -> None:
    both = hit(highlights={"body": ["<em>cumbre</em>"], "body_en": ["<em>summit</em>"]})
    assert format_results(result([both])).endswith("    > *summit*")


def test_format_results_numbers_blocks_and_marks_unknowns() -> None:
    text = format_results(
        result([hit(), hit(title="", title_en=None, date=None, language=None, url=None)])
    )
    _, first, second = text.split("\n\n")
    assert first.startswith(" 1. NATO summit")
    assert second.splitlines()[:2] == [" 2. (untitled)", "    DN | ? | ?"]


@pytest.mark.parametrize("width", [200, 1000])
def test_format_results_shortens_long_titles(width: int) -> None:
    title_line = format_results(result([hit(title="word " * width)])).splitlines()[2]
    assert title_line.endswith(" ...")
    assert len(title_line) <= len(" 1. ") + 110


# -- the command line (refusals happen before Elasticsearch is called) ----------------------------


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["search"], "give QUERY or at least one filter"),
        (["search", "nato", "--entity", "Jens Stoltenberg"], "must look like LABEL:NAME"),
        (["search", "--entity", "PEOPLE:Jens"], "unknown entity label 'PEOPLE'"),
        (["search", "nato", "--since", "2026-13-01"], "'2026-13-01' is not an ISO 8601"),
        (["search", "nato", "--until", "soon"], "'soon' is not an ISO 8601"),
        (["search", "x", "--since", "2026-07-10", "--until", "2026-07-01"], "is after until"),
        (["search", "nato", "--size", "5000"], "size must be between"),
    ],
)
def test_cli_refuses_bad_searches_with_exit_2(
    argv: list[str], message: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(argv) == 2
    assert message in capsys.readouterr().err


def test_cli_refuses_an_unknown_sort(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "nato", "--sort", "popularity"])
    assert exit_info.value.code == 2
    assert "invalid choice: 'popularity'" in capsys.readouterr().err


def test_cli_serve_has_help(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["serve", "--help"])
    assert exit_info.value.code == 0
    assert "--port" in capsys.readouterr().out


def test_a_story_link_says_how_an_article_joined_and_what_it_shares_with_the_first() -> None:
    first = {"PERSON": ["Ursula von der Leyen"], "GPE": ["Brussels", "Kyiv"]}
    joined = story_link(
        "b",
        "a",
        {"PERSON": ["Ursula von der Leyen"], "GPE": ["Kyiv"], "ORG": ["NATO"]},
        first,
        0.47,
    )
    assert joined == {
        "first": False,
        "similarity": 0.47,
        "shared_entities": {"PERSON": ["Ursula von der Leyen"], "GPE": ["Kyiv"]},
    }
    assert describe_link(joined) == (
        "joined at 47% shared words with a version of it; shares with the first article: "
        "PERSON Ursula von der Leyen; GPE Kyiv"
    )
    assert story_link("a", "a", first, first, None)["first"] is True
    alone = story_link("c", "a", {"ORG": ["FIFA"]}, first, 0.22)
    assert describe_link(alone).endswith("no person, organisation or place")
