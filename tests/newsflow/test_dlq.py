"""Reading dead-letter records back: summaries and what can be replayed (no services)."""

from __future__ import annotations

import base64
from datetime import UTC, datetime

from newsflow.article import Article
from newsflow.dlq import DeadLetterRecord, original_payload, replayable, summary

ARTICLE = Article.create(
    source="DN",
    title="NATO summit",
    body="Leaders met.",
    fetched_at=datetime(2026, 1, 1, tzinfo=UTC),
)


def message(**fields: object) -> dict[str, object]:
    return {
        "stage": "index",
        "error_class": "elasticsearch:400",
        "error": "mapper_parsing_exception",
        "article_id": ARTICLE.id,
        "source": {"topic": "articles.raw", "partition": 2, "offset": 41},
        "payload": ARTICLE.to_json().decode(),
        "payload_encoding": "utf-8",
        "payload_truncated": False,
        "dead_lettered_at": "2026-11-26T10:00:00+00:00",
        **fields,
    }


def test_summary_names_the_record_the_stage_the_error_and_the_source() -> None:
    row = summary(DeadLetterRecord(1, 7, message()))
    assert row["ref"] == "1:7" and row["stage"] == "index"
    assert row["error"] == "elasticsearch:400: mapper_parsing_exception"
    assert row["from"] == "articles.raw/2@41" and row["article"] == ARTICLE.id


def test_a_valid_article_payload_is_replayable_in_either_encoding() -> None:
    assert replayable(message()) == ARTICLE
    encoded = base64.b64encode(ARTICLE.to_json()).decode()
    assert original_payload(message(payload=encoded, payload_encoding="base64")) == (
        ARTICLE.to_json()
    )


def test_invalid_or_truncated_payloads_are_not_replayed_and_say_why() -> None:
    assert "still not a valid article" in str(replayable(message(payload="{not json")))
    assert "truncated" in str(replayable(message(payload_truncated=True)))
