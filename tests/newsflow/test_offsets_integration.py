"""Resetting the pipeline's consumer group on the real broker: earliest, latest, by time."""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime

import pytest
from kafka import KafkaConsumer, KafkaProducer

from newsflow import offsets
from newsflow.kafka_topics import ensure_topics
from newsflow.settings import Settings
from tests.conftest import newsflow_cli

pytestmark = pytest.mark.integration


def produce(settings: Settings, count: int, partition: int = 0) -> None:
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    for n in range(count):
        producer.send(settings.kafka.raw_topic, value=b"{}", key=b"%d" % n, partition=partition)
    producer.flush()
    producer.close()


def committed(settings: Settings) -> dict[int, int | None]:
    return {m.partition: m.committed for m in offsets.plan(settings.kafka, "latest")}


def test_reset_to_earliest_latest_and_a_time(isolated: Settings) -> None:
    ensure_topics(isolated.kafka)
    produce(isolated, 3)
    time.sleep(0.05)
    middle = datetime.now(UTC)
    time.sleep(0.05)
    produce(isolated, 2)

    moved = offsets.reset(isolated.kafka, "latest")
    assert {m.partition: m.target for m in moved}[0] == 5
    assert committed(isolated)[0] == 5

    offsets.reset(isolated.kafka, middle)
    assert committed(isolated)[0] == 3  # the first record produced after ``middle``

    plan = offsets.plan(isolated.kafka, "earliest")  # a dry run changes nothing
    assert {m.partition: (m.committed, m.target) for m in plan}[0] == (3, 0)
    assert committed(isolated)[0] == 3

    result = newsflow_cli(isolated, "pipeline", "reset-offsets", "--earliest", "--json")
    assert result.returncode == 0, result.stderr
    assert {row["partition"]: row["target"] for row in json.loads(result.stdout)}[0] == 0
    assert committed(isolated)[0] == 0


def test_a_running_group_is_refused_with_what_to_do(isolated: Settings) -> None:
    ensure_topics(isolated.kafka)
    member = KafkaConsumer(
        bootstrap_servers=isolated.kafka.bootstrap_servers,
        group_id=isolated.kafka.consumer_group,
        enable_auto_commit=False,
    )
    member.subscribe([isolated.kafka.raw_topic])
    try:
        deadline = time.monotonic() + 30
        while not member.assignment() and time.monotonic() < deadline:
            member.poll(timeout_ms=200)
        with pytest.raises(offsets.GroupActive, match="stop every `newsflow pipeline run`"):
            offsets.reset(isolated.kafka, "earliest")
    finally:
        member.close()


def test_bad_times_are_usage_errors(isolated: Settings) -> None:
    result = newsflow_cli(isolated, "pipeline", "reset-offsets", "--to-time", "yesterday")
    assert result.returncode == 2 and "ISO 8601" in result.stderr
