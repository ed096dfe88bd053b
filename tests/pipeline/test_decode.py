"""Decode: a Kafka record becomes an article, or an InvalidArticle saying why not."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime
from typing import Any

import pytest

from newsflow.article import MAX_BODY_CHARS, Article, InvalidArticle
from newsflow.settings import KafkaSettings
from pipeline.decode import Cleaned, decode
from pipeline.kafka_source import KafkaRecord

ARTICLE = Article.create(
    source="DN",
    title="NATO summit in Vilnius",
    body="Leaders met.",
    url="https://example.com/nato",
    fetched_at=datetime(2026, 11, 26, 10, 0, tzinfo=UTC),
)


MAX_BYTES = KafkaSettings().max_message_bytes


def record(value: bytes, key: bytes | None) -> KafkaRecord:
    return KafkaRecord("articles.raw", 1, 42, key, value, 1_790_000_000_000)


def hostile(*, title: str = "T", body: str = "", source: str = "DN", **fields: Any) -> Article:
    """A valid article whose text nobody cleaned (what a rogue producer can publish)."""
    fetched_at = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
    return Article.create(source=source, title=title, body=body, fetched_at=fetched_at, **fields)


@pytest.mark.parametrize("key", [ARTICLE.id.encode(), None], ids=["keyed", "unkeyed"])
def test_decode_valid_record(key: bytes | None) -> None:
    assert decode(record(ARTICLE.to_json(), key), MAX_BYTES) == Cleaned(ARTICLE)


@pytest.mark.parametrize(
    ("value", "reason"),
    [
        pytest.param(b"{not json", "Invalid JSON", id="not-json"),
        pytest.param(b"\xff\xfe", r"message is not UTF-8 \(byte 0xff at offset 0\)", id="not-utf8"),
        pytest.param(
            ARTICLE.to_json().replace(b"Leaders", b"Lead\xc3\x28ers"),
            "byte 0xc3 at offset",
            id="utf8-broken-mid-text",
        ),
        pytest.param(b'["an", "array"]', "Input should be an object", id="not-an-object"),
        pytest.param(json.dumps({"title": "T"}).encode(), "Field required", id="missing-fields"),
        pytest.param(
            ARTICLE.to_json().replace(b'"title":"NATO summit in Vilnius"', b'"title":42'),
            "title: Input should be a valid string",
            id="wrongly-typed-field",
        ),
        pytest.param(
            ARTICLE.to_json().replace(b'"Leaders met."', b'"Leaders \\ud800 met."'),
            "Invalid JSON",
            id="lone-surrogate",
        ),
        pytest.param(b"[" * 100_000, "recursion limit", id="nesting-bomb"),
        pytest.param(
            ARTICLE.to_json().replace(b'"schema_version":1', b'"schema_version":2,"lang":"x"'),
            "schema_version: version 2 is not supported by this newsflow \\(it supports 1\\); "
            "upgrade newsflow or re-publish as version 1",
            id="schema-v2",
        ),
        pytest.param(
            ARTICLE.to_json().replace(b"Leaders met.", b"x" * (MAX_BODY_CHARS + 1)),
            f"body: String should have at most {MAX_BODY_CHARS} characters",
            id="body-over-contract",
        ),
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
        decode(record(value, None), MAX_BYTES)


def test_wrong_key() -> None:
    other = "f" * 32
    with pytest.raises(InvalidArticle, match=f"message key b'{other}' is not the article id"):
        decode(record(ARTICLE.to_json(), other.encode()), MAX_BYTES)


def test_a_50_mb_message_is_refused_before_it_is_parsed() -> None:
    fifty_mb = b'{"body": "' + b"x" * 50_000_000 + b'"}'
    started = time.monotonic()
    with pytest.raises(
        InvalidArticle, match=f"message is 50,000,012 bytes, over the {MAX_BYTES:,}"
    ):
        decode(record(fifty_mb, None), MAX_BYTES)
    assert time.monotonic() - started < 1  # a length check, not a parse of 50 MB


def test_the_size_limit_is_the_setting() -> None:
    value = ARTICLE.to_json()
    assert decode(record(value, None), len(value)).article == ARTICLE
    with pytest.raises(InvalidArticle, match=r"kafka\.max_message_bytes"):
        decode(record(value, None), len(value) - 1)


def test_hostile_text_is_sanitized_and_the_fields_named() -> None:
    article = hostile(
        url="https://example.com/xss",
        title="<img src=x onerror=alert(1)>Hurri\u200bcane \u202ewarning",
        body="<script>steal()</script><p onclick=x()>Stay <a href='javascript:go()'>in</a>side"
        "</p>\n\na < b",
        source="DN\x00",
        metadata={"author\u200b": ["<b>Ann</b>", 3], "nested": {"k": "\u2066v\u2069"}},
    )
    cleaned = decode(record(article.to_json(), article.id.encode()), MAX_BYTES)
    assert cleaned.article.id == article.id  # the message keeps its name
    assert cleaned.article.title == "Hurricane warning"
    assert cleaned.article.body == "Stay inside\na < b"
    assert cleaned.article.source == "DN"
    assert cleaned.article.metadata == {"author": ["Ann", 3], "nested": {"k": "v"}}
    assert cleaned.markup == ("title", "body", "metadata")
    assert cleaned.invisible == ("title", "source", "metadata")


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        (
            {"title": "<script>only()</script>", "body": "\u200b"},
            "nothing is left of title and body",
        ),
        ({"source": "\u202e\u202c"}, "nothing is left of source"),
        (
            {"body": "<i>&lt;i&gt;&amp;lt;i&amp;gt;&amp;amp;lt;i&amp;amp;gt;x"},
            "body: markup is left after 3 reductions",
        ),
    ],
)
def test_text_that_cannot_be_made_safe_is_invalid(fields: dict[str, str], reason: str) -> None:
    article = hostile(**fields)
    with pytest.raises(InvalidArticle, match=reason):
        decode(record(article.to_json(), None), MAX_BYTES)


def test_a_word_as_long_as_the_contract_allows_decodes() -> None:
    article = hostile(title="", body="w" * MAX_BODY_CHARS)
    value = article.to_json()
    assert len(value) < MAX_BYTES
    assert decode(record(value, None), MAX_BYTES).article.body == "w" * MAX_BODY_CHARS
