"""Elasticsearch sink, pure half: documents, actions and the three-way sort of bulk results."""

from __future__ import annotations

import json
from dataclasses import replace
from datetime import UTC, datetime
from typing import Any

import pytest

from newsflow.article import Article
from newsflow.index import index_definition
from pipeline.dead_letter import DeadLetter
from pipeline.elasticsearch_sink import (
    classify_results,
    is_transient,
    retry_delays,
    to_document,
)
from pipeline.enriched import EnrichedArticle, Entity, LanguageGuess, Translation
from pipeline.kafka_source import Origin

FETCHED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
INDEXED = datetime(2026, 11, 26, 10, 5, 30, tzinfo=UTC)


def enriched(offset: int, *, title: str = "NATO summit", **fields: Any) -> EnrichedArticle:
    article = Article.create(source="DN", title=title, body="Leaders met.", fetched_at=FETCHED)
    return EnrichedArticle(article, Origin("articles.raw", 2, offset), **fields)


def full_item() -> EnrichedArticle:
    article = Article.create(
        source="DN",
        title="NATO summit",
        body="Leaders met in Vilnius.",
        url="https://example.com/nato?utm_source=rss",
        published_at=datetime(2026, 7, 9, 8, 0, tzinfo=UTC),
        fetched_at=FETCHED,
        language_hint="en",
        metadata={"section": "world"},
    )
    return EnrichedArticle(
        article,
        Origin("articles.raw", 3, 1234),
        language=LanguageGuess("en", 0.9987),
        translation=Translation(status="not_needed", engine="none", path=("en",)),
        entities=(
            Entity("GPE", "Vilnius", ("Vilnius",), 2, 18),
            Entity("ORG", "NATO", ("NATO",), 1, 0),
        ),
    )


def test_to_document_fields() -> None:
    item = full_item()
    assert to_document(item, INDEXED) == {
        "schema_version": 1,
        "id": item.article.id,
        "url": "https://example.com/nato?utm_source=rss",
        "source": "DN",
        "title": "NATO summit",
        "body": "Leaders met in Vilnius.",
        "published_at": "2026-07-09T08:00:00Z",
        "fetched_at": "2026-11-26T10:00:00Z",
        "metadata": {"section": "world"},
        "language_hint": "en",
        "title_en": "NATO summit",
        "body_en": "Leaders met in Vilnius.",
        "language": "en",
        "language_confidence": 0.9987,
        "translation": {
            "status": "not_needed",
            "engine": "none",
            "path": ["en"],
            "seconds": 0.0,
            "cached": False,
        },
        "entities": {"GPE": ["Vilnius"], "ORG": ["NATO"]},
        "entity_details": [
            {
                "label": "GPE",
                "name": "Vilnius",
                "surface_forms": ["Vilnius"],
                "mentions": 2,
                "first_offset": 18,
            },
            {
                "label": "ORG",
                "name": "NATO",
                "surface_forms": ["NATO"],
                "mentions": 1,
                "first_offset": 0,
            },
        ],
        "indexed_at": "2026-11-26T10:05:30+00:00",
        "kafka": {"topic": "articles.raw", "partition": 3, "offset": 1234},
    }


def test_to_document_drops_none() -> None:
    document = to_document(enriched(7), INDEXED)
    for absent in ("url", "canonical_url", "published_at", "language", "language_confidence"):
        assert absent not in document
    assert "language_hint" not in document
    assert document["entities"] == {}
    assert "original_entities" not in document  # no source-language model ran
    assert document["kafka"] == {"topic": "articles.raw", "partition": 2, "offset": 7}


def test_entities_of_the_original_text_are_kept_apart() -> None:
    poutine = Entity("PERSON", "Poutine", ("Poutine",), 1, 40)
    item = replace(enriched(3, language=LanguageGuess("fr", 0.99)), original_entities=(poutine,))
    document = to_document(item, INDEXED)
    assert document["original_entities"] == {"PERSON": ["Poutine"]}
    assert document["entities"] == {}


@pytest.mark.parametrize(
    "item",
    [
        full_item(),
        enriched(0),
        enriched(1, language=LanguageGuess("es", 0.9)),
        replace(full_item(), original_entities=full_item().entities),
    ],
    ids=["full", "minimal", "spanish", "original-entities"],
)
def test_to_document_fits_the_strict_index_mapping(item: EnrichedArticle) -> None:
    """The mapping is ``dynamic: strict``; a field it lacks would reject every document."""
    properties = index_definition()["mappings"]["properties"]
    document = to_document(item, INDEXED)
    assert set(document) <= set(properties)
    assert set(document["kafka"]) <= set(properties["kafka"]["properties"])
    for entities in ("entities", "original_entities"):
        assert set(document.get(entities, {})) <= set(properties[entities]["properties"])
    for language, texts in document.get("original", {}).items():
        assert set(texts) <= set(properties["original"]["properties"][language]["properties"])


def test_original_text_gets_its_language_field_only_for_analyzed_languages() -> None:
    portuguese = enriched(1, title="Cimeira da NATO", language=LanguageGuess("pt", 0.99))
    document = to_document(portuguese, INDEXED)
    assert document["original"] == {"pt": {"title": "Cimeira da NATO", "body": "Leaders met."}}
    assert "original" not in to_document(full_item(), INDEXED)  # English: title_en/body_en
    undetermined = enriched(2, language=LanguageGuess("und", 0.0))
    assert "original" not in to_document(undetermined, INDEXED)


@pytest.mark.parametrize(
    ("status", "transient"),
    [
        (429, True),
        (500, True),
        (503, True),
        ("N/A", True),
        (400, False),
        (404, False),
        (409, False),
    ],
)
def test_is_transient(status: int | str, transient: bool) -> None:
    assert is_transient(status) is transient


def result(item: EnrichedArticle, status: int, **extra: Any) -> tuple[bool, dict[str, Any]]:
    ok = 200 <= status < 300
    return ok, {"index": {"_index": "news-v1", "_id": item.article.id, "status": status, **extra}}


def test_all_acknowledged() -> None:
    batch = [enriched(n, title=f"story {n}") for n in range(3)]
    # Results arrive in the order Elasticsearch answered, not the order sent.
    results = [result(batch[0], 201), result(batch[2], 200), result(batch[1], 201)]
    outcome = classify_results(batch, results)
    assert outcome.acknowledged == [batch[0].origin, batch[2].origin, batch[1].origin]
    assert outcome.rejected == []
    assert outcome.retry == []


def test_mapping_error_is_rejected_with_the_reason() -> None:
    good, bad = enriched(1, title="good"), enriched(2, title="bad")
    error = {
        "type": "mapper_parsing_exception",
        "reason": "failed to parse field [published_at] of type [date]",
    }
    outcome = classify_results([good, bad], [result(good, 201), result(bad, 400, error=error)])
    assert outcome.acknowledged == [good.origin]
    assert outcome.retry == []
    assert outcome.rejected == [
        DeadLetter(
            origin=bad.origin,
            stage="index",
            error_class="elasticsearch:400",
            error=json.dumps(error),
            payload=bad.article.to_json(),
            article_id=bad.article.id,
        )
    ]
    assert "mapper_parsing_exception" in outcome.rejected[0].error


@pytest.mark.parametrize("status", [429, 503])
def test_transient_errors_are_retried(status: int) -> None:
    good, busy = enriched(1, title="good"), enriched(2, title="busy")
    outcome = classify_results(
        [good, busy], [result(good, 201), result(busy, status, error={"type": "x"})]
    )
    assert outcome.acknowledged == [good.origin]
    assert outcome.rejected == []
    assert outcome.retry == [busy]


def test_result_without_a_status_is_retried() -> None:
    item = enriched(1)
    outcome = classify_results([item], [(False, {"index": {"_id": item.article.id}})])
    assert outcome.retry == [item]


def test_articles_without_a_result_are_retried() -> None:
    batch = [enriched(n, title=f"story {n}") for n in range(4)]
    outcome = classify_results(batch, [result(batch[1], 201)])
    assert outcome.acknowledged == [batch[1].origin]
    assert outcome.retry == [batch[0], batch[2], batch[3]]
    assert classify_results(batch, []).retry == batch


def test_same_id_twice_is_matched_in_order() -> None:
    """A replayed record in one batch: two articles, one id, told apart by their origin."""
    first, second = enriched(10), enriched(11)
    assert first.article.id == second.article.id
    outcome = classify_results(
        [first, second], [result(first, 201), result(second, 400, error={"type": "y"})]
    )
    assert outcome.acknowledged == [first.origin]
    assert [letter.origin for letter in outcome.rejected] == [second.origin]

    outcome = classify_results([first, second], [result(first, 429)])
    assert outcome.retry == [first, second]


def test_retry_delays_double_up_to_the_cap_and_stop_within_the_budget() -> None:
    assert list(retry_delays(100, cap=8)) == [1, 2, 4] + [8] * 11
    assert list(retry_delays(0.5)) == []


def deleted(item: EnrichedArticle, status: int) -> tuple[bool, dict[str, Any]]:
    ok = 200 <= status < 300
    return ok, {"delete": {"_index": "news-v5-2026.12", "_id": item.article.id, "status": status}}


def test_an_article_whose_stray_copy_was_not_deleted_is_written_again() -> None:
    """Two copies left by an older release: the write and the delete of the other both count."""
    moved, gone, stuck = (enriched(n, title=f"story {n}") for n in range(3))
    outcome = classify_results(
        [moved, gone, stuck],
        [
            result(moved, 200),
            result(gone, 200),
            result(stuck, 200),
            deleted(moved, 200),
            deleted(gone, 404),  # already gone: settled
            deleted(stuck, 503),
        ],
    )
    assert outcome.acknowledged == [moved.origin, gone.origin]
    assert outcome.retry == [stuck]
    assert outcome.rejected == []
