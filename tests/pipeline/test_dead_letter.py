"""Dead-letter records: what ops read on the DLQ topic."""

from __future__ import annotations

import base64
import json
from datetime import UTC, datetime

import pytest

from pipeline.dead_letter import MAX_PAYLOAD_BYTES, DeadLetter, encode_dead_letter
from pipeline.kafka_source import Origin

ORIGIN = Origin("articles.raw", 3, 1234)
NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def decoded(payload: bytes, **fields: str | None) -> dict[str, object]:
    letter = DeadLetter(
        origin=ORIGIN,
        stage=fields.get("stage") or "decode",
        error_class="InvalidArticle",
        error="fetched_at: must carry a timezone",
        payload=payload,
        article_id=fields.get("article_id"),
    )
    return json.loads(encode_dead_letter(letter, now=NOW).decode("utf-8"))


def test_utf8_payload_is_kept_as_text() -> None:
    payload = '{"title": "Zelensky “in Vilnius”", "source": "DN"}'.encode()
    assert decoded(payload, article_id="a" * 32) == {
        "stage": "decode",
        "error_class": "InvalidArticle",
        "error": "fetched_at: must carry a timezone",
        "article_id": "a" * 32,
        "source": {"topic": "articles.raw", "partition": 3, "offset": 1234},
        "payload_truncated": False,
        "payload": '{"title": "Zelensky “in Vilnius”", "source": "DN"}',
        "payload_encoding": "utf-8",
        "dead_lettered_at": "2026-11-26T10:00:00+00:00",
    }


def test_message_is_utf8_json_without_escapes() -> None:
    letter = DeadLetter(ORIGIN, "index", "elasticsearch:400", "champ «date»", b"ol\xc3\xa9")
    raw = encode_dead_letter(letter, now=NOW)
    assert "champ «date»".encode() in raw
    assert json.loads(raw)["article_id"] is None


def test_binary_payload_is_base64() -> None:
    payload = b"\x00\xff\xfe\x80 not text"
    message = decoded(payload)
    assert message["payload_encoding"] == "base64"
    assert base64.b64decode(str(message["payload"])) == payload
    assert message["payload_truncated"] is False


@pytest.mark.parametrize(
    ("size", "truncated"),
    [(MAX_PAYLOAD_BYTES - 1, False), (MAX_PAYLOAD_BYTES, False), (MAX_PAYLOAD_BYTES + 1, True)],
)
def test_truncation_beyond_max_payload_bytes(size: int, truncated: bool) -> None:
    message = decoded(b"x" * size)
    assert message["payload_truncated"] is truncated
    assert message["payload"] == "x" * min(size, MAX_PAYLOAD_BYTES)


def test_large_binary_payload_is_truncated_before_base64() -> None:
    payload = b"\xff" * (MAX_PAYLOAD_BYTES * 2)
    message = decoded(payload)
    assert message["payload_truncated"] is True
    assert base64.b64decode(str(message["payload"])) == payload[:MAX_PAYLOAD_BYTES]


def test_truncated_text_stays_text() -> None:
    text = "a" + "é" * MAX_PAYLOAD_BYTES  # the cut falls inside an "é"
    message = decoded(text.encode("utf-8"))
    assert message["payload_encoding"] == "utf-8"
    assert text.startswith(str(message["payload"]))


def test_from_exception() -> None:
    letter = DeadLetter.from_exception(ORIGIN, "entities", KeyError("PERSON"), b"{}", "b" * 32)
    assert letter == DeadLetter(ORIGIN, "entities", "KeyError", "'PERSON'", b"{}", "b" * 32)
