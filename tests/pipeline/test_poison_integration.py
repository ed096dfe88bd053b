"""Poison messages on the real stack (issue #7, items 12 and 16): whatever anyone produces to the
raw topic, the pipeline indexes a sanitized article or dead-letters the record with a reason, and
carries on: no crash loop, every offset committed, exit code 0.

Good articles are interleaved with every kind of poison, produced as raw bytes (the connectors
would refuse most of them), and the pipeline runs once as a real ``newsflow pipeline run``
process. The oracle and the process helpers are those of the fault suite.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from datetime import UTC, datetime

import pytest
from kafka import KafkaProducer

from newsflow.article import Article
from newsflow.kafka_topics import ensure_topics
from newsflow.settings import Settings
from tests.pipeline import test_faults_integration as faults

pytestmark = pytest.mark.integration

start_pipeline = faults.start_pipeline
#: The local broker's default message.max.bytes is 1,048,588: this is about the largest record it
#: takes, and over the pipeline's kafka.max_message_bytes (1,000,000 by default).
LARGEST_RECORD_BYTES = 1_040_000
LONG_WORD = "w" * 50_000  # a word lingua, NER, shingles and Elasticsearch all get in one piece
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def article(name: str, title: str, body: str, **fields: object) -> Article:
    return Article.create(
        source="Poison Times",
        title=title,
        body=body,
        url=f"https://poison.example.com/{name}",
        fetched_at=NOW,
        **fields,  # type: ignore[arg-type]
    )


GOOD = [
    article(
        f"good-{i}",
        f"Storm {i} reaches the coast",
        f"Storm number {i} reached the northern coast on Tuesday. Ferries stayed in port "
        "and schools closed early, the weather service said.",
    )
    for i in range(6)
]
XSS = article(
    "xss",
    "<script>alert('title')</script>Flood <img src=x onerror=alert('img')>warning",
    '<p onclick="steal()">Rivers rose overnight.</p><script>document.cookie</script>'
    "<a href=\"javascript:alert('link')\">Read more</a> about the flood; a < b still holds.",
    metadata={"author": "<b onmouseover=alert(1)>Ann</b>"},
)
INVISIBLE = article(
    "invisible",
    "Bridge\u200b closed \u202eafter\u202c the storm",
    "The old\u00a0bridge\u2066 was closed\u2069\x00 on Monday\x1b[2J after the storm.\ufeff",
)
LONG = article(
    "long-word",
    "An article with a very long word",
    f"The storm report ended with one very long word. {LONG_WORD}",
)

ONLY_MARKUP = article("only-markup", "<script>x()</script>", "<style>p{}</style>\u200b")


def raw_poison() -> list[tuple[str, bytes, str]]:
    """(key, value, the reason the dead letter must give) for every undecodable record."""
    valid = json.loads(GOOD[0].to_json())
    word = json.dumps({**valid, "body": "w" * 1_000_000})
    return [
        ("poison-invalid-json", b'{"title": "unterminated', "Invalid JSON"),
        ("poison-invalid-utf8", b'{"title": "caf\xe9"}', "message is not UTF-8"),
        ("poison-missing-fields", b'{"title": "only a title"}', "Field required"),
        (
            "poison-wrong-type",
            json.dumps({**valid, "title": ["a", "list"]}).encode(),
            "title: Input should be a valid string",
        ),
        (
            "poison-schema-v2",
            json.dumps({**valid, "schema_version": 2, "summary": "new field"}).encode(),
            "schema_version: version 2 is not supported by this newsflow (it supports 1); "
            "upgrade newsflow or re-publish as version 1",
        ),
        (
            "poison-largest-record",
            b'{"body": "' + b"x" * (LARGEST_RECORD_BYTES - 12) + b'"}',
            f"message is {LARGEST_RECORD_BYTES:,} bytes, over the 1,000,000-byte limit",
        ),
        ("poison-million-char-word", word.encode(), "over the 1,000,000-byte limit"),
        (ONLY_MARKUP.id, ONLY_MARKUP.to_json(), "nothing is left of title and body"),
    ]


def test_poison_is_dead_lettered_or_sanitized_and_the_pipeline_carries_on(
    isolated: Settings, start_pipeline: Callable[..., faults.PipelineProcess]
) -> None:
    ensure_topics(isolated.kafka)
    poison = raw_poison()
    good = [*GOOD, XSS, INVISIBLE, LONG]
    messages = [(a.id, a.to_json()) for a in good]
    for i, (key, value, _) in enumerate(poison):  # interleaved: poison between good articles
        messages.insert(2 * i + 1, (key, value))
    producer = KafkaProducer(
        bootstrap_servers=isolated.kafka.bootstrap_servers,
        max_request_size=LARGEST_RECORD_BYTES + 1_000,
        acks="all",
    )
    try:
        for key, value in messages:
            producer.send(isolated.kafka.raw_topic, key=key.encode(), value=value).get(timeout=30)
    finally:
        producer.close()
    produced = faults.read_raw(isolated)
    assert len(produced) == len(messages)

    seconds = faults.drain(start_pipeline, isolated)

    outcome = faults.assert_oracle(isolated, produced)
    assert set(outcome.documents) == {a.id for a in good}
    assert set(outcome.dead_letters) == {key for key, _, _ in poison}
    for key, _, reason in poison:
        letter = outcome.dead_letters[key]
        assert letter["stage"] == "decode" and reason in letter["error"], (key, letter["error"])
        assert letter["source"]["topic"] == isolated.kafka.raw_topic
    assert outcome.dead_letters["poison-largest-record"]["payload_truncated"] is True

    xss = outcome.documents[XSS.id]
    assert xss["title"] == "Flood warning"
    assert xss["body"] == "Rivers rose overnight.\nRead more about the flood; a < b still holds."
    assert xss["metadata"] == {"author": "Ann"}
    for field in ("title", "body", "title_en", "body_en"):
        for trace in ("<", "script", "onerror", "onclick", "javascript:", "alert"):
            assert trace not in xss[field].replace("a < b", ""), (field, trace)
    invisible = outcome.documents[INVISIBLE.id]
    assert invisible["title"] == "Bridge closed after the storm"
    assert invisible["body"] == "The old\u00a0bridge was closed on Monday[2J after the storm."
    assert LONG_WORD in outcome.documents[LONG.id]["body"]
    assert outcome.documents[LONG.id]["language"] == "en"
    faults.assert_fully_committed(isolated, produced)
    faults.report(
        "12/16 poison",
        produced=len(produced),
        documents=len(outcome.documents),
        dead_letters=len(outcome.dead_letters),
        run_seconds=f"{seconds:.1f}",
    )
