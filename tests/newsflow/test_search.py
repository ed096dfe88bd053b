"""Analyst search: the query body, hit flattening and the terminal format (no Elasticsearch)."""

from __future__ import annotations

from typing import Any

import pytest

from newsflow.search import SHOWN_ENTITY_TYPES, TOP_ENTITIES, build_query, format_hits, to_hit


def test_build_query_shape() -> None:
    assert build_query("nato summit vilnius") == {
        "multi_match": {
            "query": "nato summit vilnius",
            "fields": ["title_en^3", "body_en", "title^2", "body"],
            "type": "best_fields",
            "operator": "and",
        }
    }


def raw_hit(**source: Any) -> dict[str, Any]:
    return {"_index": "news-v1", "_id": "a" * 32, "_score": 7.25, "_source": source}


def test_to_hit_flattens_a_full_hit() -> None:
    hit = to_hit(
        raw_hit(
            title="NATO summit in Vilnius",
            source="DN",
            url="https://example.com/nato",
            published_at="2026-07-09T08:00:00Z",
            fetched_at="2026-07-10T09:00:00Z",
            language="en",
            title_en="NATO summit in Vilnius",
            translation={"status": "not_needed"},
            entities={"PERSON": ["Jens Stoltenberg"], "GPE": ["Vilnius", "Lithuania"]},
        )
    )
    assert hit == {
        "id": "a" * 32,
        "score": 7.25,
        "title": "NATO summit in Vilnius",
        "title_en": "NATO summit in Vilnius",
        "translation": "not_needed",
        "source": "DN",
        "url": "https://example.com/nato",
        "date": "2026-07-09T08:00:00Z",
        "language": "en",
        "entities": {"PERSON": ["Jens Stoltenberg"], "ORG": [], "GPE": ["Vilnius", "Lithuania"]},
    }


def test_to_hit_limits_entities_and_types() -> None:
    people = [f"Person {n}" for n in range(TOP_ENTITIES + 3)]
    hit = to_hit(
        raw_hit(
            title="T",
            fetched_at="2026-07-10T09:00:00Z",
            entities={"PERSON": people, "NORP": ["Polish"], "LOC": ["Europe"]},
        )
    )
    assert hit["entities"]["PERSON"] == people[:TOP_ENTITIES]
    assert list(hit["entities"]) == list(SHOWN_ENTITY_TYPES) == ["PERSON", "ORG", "GPE"]


def test_to_hit_falls_back_to_fetched_at_and_tolerates_missing_fields() -> None:
    hit = to_hit(raw_hit(fetched_at="2026-07-10T09:00:00Z"))
    assert hit["date"] == "2026-07-10T09:00:00Z"
    assert hit["title"] == ""
    assert (hit["source"], hit["url"], hit["language"]) == (None, None, None)
    assert hit["entities"] == {"PERSON": [], "ORG": [], "GPE": []}


def test_format_hits_without_hits() -> None:
    assert format_hits([]) == "no matching articles"


def hit(**changes: Any) -> dict[str, Any]:
    base: dict[str, Any] = {
        "id": "a" * 32,
        "score": 1.0,
        "title": "NATO summit in Vilnius",
        "source": "DN",
        "url": "https://example.com/nato",
        "date": "2026-07-09T08:00:00Z",
        "language": "en",
        "entities": {"PERSON": ["Jens Stoltenberg", "Andrzej Duda"], "ORG": [], "GPE": ["Vilnius"]},
    }
    return {**base, **changes}


def test_format_hits_shows_title_source_date_and_entities() -> None:
    assert format_hits([hit()]) == (
        " 1. NATO summit in Vilnius\n"
        "    DN | 2026-07-09 | en | https://example.com/nato\n"
        "    PERSON: Jens Stoltenberg, Andrzej Duda\n"
        "    GPE: Vilnius"
    )


def test_format_hits_numbers_blocks_and_marks_unknowns() -> None:
    text = format_hits([hit(), hit(title="", date=None, language=None, url=None)])
    first, second = text.split("\n\n")
    assert first.startswith(" 1. NATO summit")
    assert second.splitlines()[:2] == [" 2. (untitled)", "    DN | ? | ?"]


@pytest.mark.parametrize("width", [200, 1000])
def test_format_hits_shortens_long_titles(width: int) -> None:
    title_line = format_hits([hit(title="word " * width)]).splitlines()[0]
    assert title_line.endswith(" ...")
    assert len(title_line) <= len(" 1. ") + 110
