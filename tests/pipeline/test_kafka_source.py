"""Static scale-out: which partitions a worker reads, and the settings that number workers."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from newsflow.settings import KafkaSettings
from pipeline.kafka_source import worker_partitions


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5])
def test_workers_together_read_every_partition_exactly_once(count: int) -> None:
    partitions = range(4)
    shares = [worker_partitions(partitions, index, count) for index in range(count)]
    everything = sorted(p for share in shares for p in share)
    assert everything == list(partitions)


def test_two_workers_on_four_partitions_take_alternate_ones() -> None:
    assert worker_partitions({3, 1, 0, 2}, 0, 2) == [0, 2]
    assert worker_partitions({3, 1, 0, 2}, 1, 2) == [1, 3]


def test_a_worker_beyond_the_partition_count_gets_nothing() -> None:
    assert worker_partitions(range(4), 4, 5) == []


def test_one_worker_reads_everything_by_default() -> None:
    settings = KafkaSettings()
    assert (settings.worker_index, settings.worker_count) == (0, 1)
    assert worker_partitions(range(4), settings.worker_index, settings.worker_count) == [0, 1, 2, 3]


@pytest.mark.parametrize(("index", "count"), [(2, 2), (5, 1)])
def test_a_worker_index_outside_the_count_is_refused(index: int, count: int) -> None:
    with pytest.raises(ValidationError, match=f"worker_index {index} is not below worker_count"):
        KafkaSettings(worker_index=index, worker_count=count)


def test_a_worker_index_inside_the_count_is_accepted() -> None:
    assert KafkaSettings(worker_index=1, worker_count=2).worker_index == 1


@pytest.mark.parametrize("field", ["worker_index", "worker_count"])
def test_negative_or_zero_worker_numbers_are_refused(field: str) -> None:
    with pytest.raises(ValidationError, match=field):
        KafkaSettings(**{field: -1})
