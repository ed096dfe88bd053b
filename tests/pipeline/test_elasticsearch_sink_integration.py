"""The sink against the real node: one document per article across the monthly indices."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime

import pytest
from elasticsearch import Elasticsearch

from newsflow.article import Article
from newsflow.index import client, concrete_index_name, ensure_period, stored_copies
from newsflow.settings import Settings
from pipeline.elasticsearch_sink import IndexDocuments, to_document
from pipeline.enriched import EnrichedArticle
from pipeline.kafka_source import Origin
from pipeline.stage import Batch

pytestmark = pytest.mark.integration

NOVEMBER = datetime(2026, 11, 20, 9, 0, tzinfo=UTC)
DECEMBER = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def version(
    fetched_at: datetime, offset: int, body: str = "The port is closed."
) -> EnrichedArticle:
    """An undated page of one URL, as fetched at ``fetched_at``: its month is the fetch's."""
    article = Article.create(
        source="Wire",
        title="Harbour strike",
        body=body,
        url="https://wire.example/strike",
        fetched_at=fetched_at,
    )
    return EnrichedArticle(article, Origin("articles.raw", 0, offset))


@pytest.fixture
def es(isolated: Settings) -> Iterator[Elasticsearch]:
    connection = client(isolated.elasticsearch)
    yield connection
    connection.close()


@pytest.fixture
def sink(isolated: Settings) -> Iterator[IndexDocuments]:
    stage = IndexDocuments(isolated.elasticsearch)
    stage.setup()
    yield stage
    stage.teardown()


def bundle(sink: IndexDocuments, *batches: list[EnrichedArticle]) -> list[Origin]:
    """Run one bundle of batches through the sink; the origins it acknowledged."""
    sink.start_bundle()
    acknowledged: list[Origin] = []
    for articles in batches:
        (out,) = sink.process(Batch(articles=tuple(articles)))
        assert out.dead_letters == ()
        acknowledged.extend(out.acknowledged)
    return acknowledged


def copies(es: Elasticsearch, isolated: Settings, article_id: str) -> dict[str, str]:
    """Index -> stored body of every copy of the article behind the alias."""
    alias = isolated.elasticsearch.index_alias
    es.indices.refresh(index=alias)
    found = stored_copies(es, alias, [article_id], ["body"])
    return {hit["_index"]: hit["_source"]["body"] for hit in found.get(article_id, [])}


def test_a_page_fetched_again_next_month_stays_one_document_where_it_was_first_stored(
    isolated: Settings, es: Elasticsearch, sink: IndexDocuments
) -> None:
    first, again = version(NOVEMBER, 1), version(DECEMBER, 2, body="The port reopened.")
    assert first.article.id == again.article.id
    assert bundle(sink, [first]) == [first.origin]
    # The next bundle, right after: the sink refreshes before it looks, so it finds November.
    assert bundle(sink, [again]) == [again.origin]
    alias = isolated.elasticsearch.index_alias
    assert copies(es, isolated, first.article.id) == {
        concrete_index_name(alias, "2026.11"): "The port reopened."
    }
    assert es.count(index=alias)["count"] == 1


def test_versions_in_two_months_within_one_bundle_are_one_document(
    isolated: Settings, es: Elasticsearch, sink: IndexDocuments
) -> None:
    first, again, third = (
        version(NOVEMBER, 1),
        version(DECEMBER, 2, "Reopened."),
        version(DECEMBER, 3, "Closed again."),
    )
    # One batch holding two months, then a later batch of the same bundle (not refreshed yet).
    bundle(sink, [first, again], [third])
    alias = isolated.elasticsearch.index_alias
    assert copies(es, isolated, first.article.id) == {
        concrete_index_name(alias, "2026.11"): "Closed again."
    }


def test_copies_left_in_two_months_by_an_older_release_become_one(
    isolated: Settings, es: Elasticsearch, sink: IndexDocuments
) -> None:
    stale, fresh = version(NOVEMBER, 1), version(DECEMBER, 2, body="The port reopened.")
    alias = isolated.elasticsearch.index_alias
    for month in ("2026.11", "2026.12"):  # what the month-by-dates writer did
        ensure_period(es, isolated.elasticsearch, month)
        es.index(
            index=concrete_index_name(alias, month),
            id=stale.article.id,
            document=to_document(stale, NOVEMBER),
        )
    assert len(copies(es, isolated, stale.article.id)) == 2
    assert bundle(sink, [fresh]) == [fresh.origin]
    assert copies(es, isolated, stale.article.id) == {
        concrete_index_name(alias, "2026.11"): "The port reopened."
    }
