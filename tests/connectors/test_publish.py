"""Publishing: headers, size measured like the producer does, truncation and dead letters."""

from __future__ import annotations

import json
from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer

from connectors.publish import (
    ArticlePublisher,
    PublishPolicy,
    cut_text,
    dead_letter_record,
    record_size,
    truncate_to_fit,
)
from newsflow import dlq
from newsflow.article import Article
from newsflow.kafka_topics import ensure_topics
from newsflow.settings import Settings
from tests.conftest import newsflow_cli

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
PARAGRAPH = "Os trabalhadores do porto votaram hoje um novo contrato coletivo. " * 8


def article(body: str, title: str = "Greve no porto", **fields: object) -> Article:
    return Article.create(
        source="Jornal do Tejo",
        title=title,
        body=body,
        url="https://example.org/porto?utm_source=x",
        fetched_at=NOW,
        language_hint="pt",
        **fields,
    )


@pytest.mark.parametrize(
    ("text", "max_bytes", "expected"),
    [
        ("first para.\n\nsecond para.", 100, "first para.\n\nsecond para."),
        ("first paragraph here.\n\nsecond one", 30, "first paragraph here."),
        ("one two three four five", 12, "one two"),
        ("abcdefghij", 4, "abcd"),
        ("ação é só", 4, "aç"),  # never half a character
        ("", 10, ""),
    ],
)
def test_cut_text(text: str, max_bytes: int, expected: str) -> None:
    cut = cut_text(text, max_bytes)
    assert cut == expected
    assert len(cut.encode()) <= max_bytes


def test_an_article_that_fits_is_untouched() -> None:
    small = article(PARAGRAPH)
    assert truncate_to_fit(small, record_size(small)) is small


def test_truncation_cuts_at_a_paragraph_and_flags_it() -> None:
    body = "\n\n".join(f"{i}. {PARAGRAPH}" for i in range(200))  # ~110 kB, non-ASCII
    big = article(body, metadata={"section": "economia"})
    limit = 20_000
    cut = truncate_to_fit(big, limit)
    assert cut is not None
    assert record_size(cut) <= limit
    assert record_size(cut) > limit - 1_000  # as much text as fits, not a stub
    assert body.startswith(cut.body) and cut.body.endswith(PARAGRAPH.strip())
    assert cut.metadata == {
        "section": "economia",
        "truncated": True,
        "original_body_length": len(big.body),
    }
    assert (cut.url, cut.title, cut.id) == (big.url, big.title, big.id)  # same story, same id


def test_an_article_whose_metadata_alone_is_too_large_cannot_be_truncated() -> None:
    huge = article("short body", metadata={"raw_html": "<p>x</p>" * 5_000})
    assert truncate_to_fit(huge, 20_000) is None


def test_dead_letter_record_reads_like_the_pipelines() -> None:
    big = article(PARAGRAPH * 900)
    message = json.loads(dead_letter_record(big, "too big", "ArticleTooLarge", now=NOW))
    assert message["stage"] == "connector"
    assert (message["error_class"], message["error"]) == ("ArticleTooLarge", "too big")
    assert message["article_id"] == big.id
    assert message["source"] == {"connector": "Jornal do Tejo", "url": big.url}
    assert message["payload_truncated"] is True
    assert len(message["payload"].encode()) <= 64 * 1024
    summary = dlq.summary(dlq.DeadLetterRecord(0, 7, message))
    assert summary["stage"] == "connector" and summary["article"] == big.id
    assert summary["error"] == "ArticleTooLarge: too big"
    assert dlq.replayable(message) == "the payload was truncated when it was dead-lettered"


def read_topic(settings: Settings, topic: str) -> list:
    consumer = KafkaConsumer(
        topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3_000,
    )
    try:
        return list(consumer)
    finally:
        consumer.close()


@pytest.mark.integration
def test_every_message_carries_headers_and_an_oversized_one_is_truncated(
    isolated: Settings,
) -> None:
    body = "\n\n".join(f"{i}. {PARAGRAPH}" for i in range(200))
    small, big = article(PARAGRAPH, title="Pequena"), article(body)
    policy = PublishPolicy(max_article_bytes=20_000)
    ensure_topics(isolated.kafka)
    with ArticlePublisher(isolated.kafka, policy) as publisher:
        results = publisher.publish_batch([small, big])
    assert [(r.article_id, r.error, r.outcome) for r in results] == [
        (small.id, None, "sent"),
        (big.id, None, "truncated"),
    ]
    messages = {m.key.decode(): m for m in read_topic(isolated, isolated.kafka.raw_topic)}
    assert set(messages) == {small.id, big.id}
    for message in messages.values():
        assert dict(message.headers) == {
            "source": b"Jornal do Tejo",
            "schema_version": b"1",
            "content-type": b"application/json",
        }
    sent = Article.from_json(messages[big.id].value)
    assert sent.metadata["truncated"] is True and sent.metadata["original_body_length"] == len(
        big.body
    )
    assert len(messages[big.id].value) < 20_000


@pytest.mark.integration
def test_the_dead_letter_policy_sends_the_article_to_the_dlq_listed_by_newsflow_dlq(
    isolated: Settings,
) -> None:
    big = article("\n\n".join(PARAGRAPH for _ in range(200)))
    ensure_topics(isolated.kafka)
    with ArticlePublisher(isolated.kafka, PublishPolicy(oversize="dead_letter")) as publisher:
        [result] = publisher.publish_batch(
            [big.model_copy(update={"metadata": {"raw_html": "x" * 1_100_000}})]
        )
    assert (result.error, result.outcome) == (None, "dead_letter")
    assert read_topic(isolated, isolated.kafka.raw_topic) == []
    listed = newsflow_cli(isolated, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    [row] = json.loads(listed.stdout)
    assert row["stage"] == "connector" and row["article"] == big.id
    assert (
        row["error"].startswith("ArticleTooLarge: ") and "over the 1000000-byte cap" in row["error"]
    )
