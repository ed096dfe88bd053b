"""Decode: a Kafka record becomes an article, or an InvalidArticle saying why not."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest

from newsflow.article import Article, InvalidArticle
from pipeline.decode import decode
from pipeline.enriched import EnrichedArticle
from pipeline.kafka_source import KafkaRecord, Origin

ARTICLE = Article.create(
    source="DN",
    title="NATO summit in Vilnius",
    body="Leaders met.",
    url="https://example.com/nato",
    fetched_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
)


def record(value: bytes, key: bytes | None) -> KafkaRecord:
    return KafkaRecord("articles.raw", 1, 42, key, value, 1_790_000_000_000)


@pytest.mark.parametrize("key", [ARTICLE.id.encode(), None], ids=["keyed", "unkeyed"])
def test_decode_valid_record(key: bytes | None) -> None:
    decoded = decode(record(ARTICLE.to_json(), key))
    assert decoded == EnrichedArticle(article=ARTICLE, origin=Origin("articles.raw", 1, 42))
    assert decoded.language is None
    assert decoded.entities == () and decoded.translation is None


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(b"{not json", "Invalid JSON", id="not-json"),
        pytest.param(b"\xff\xfe", "Invalid JSON", id="not-utf8"),
        pytest.param(json.dumps({"title": "T"}).encode(), "Field required", id="missing-fields"),
        pytest.param(
            ARTICLE.to_json().replace(b"example.com/nato", b"example.com/other"),
            "does not match its canonical URL",
            id="id-mismatch",
        ),
        pytest.param(
            ARTICLE.to_json().replace(b'"source":"DN"', b'"source":"DN","priority":1'),
            "priority: Extra inputs",
            id="unknown-field",
        ),
    ],
)
def test_invalid_value(value: bytes, reason: str) -> None:
    with pytest.raises(InvalidArticle, match=reason):
        decode(record(value, None))


def test_wrong_key() -> None:
    other = "f" * 32
    with pytest.raises(InvalidArticle, match=f"message key b'{other}' is not the article id"):
        decode(record(ARTICLE.to_json(), other.encode()))
