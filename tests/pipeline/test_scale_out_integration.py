"""Scale-out on the real stack: two ``newsflow pipeline run`` processes share one consumer group.

With ``--worker-count 2`` on a 4-partition topic, each process reads only its partitions
(p % 2 == its index, seen in its own /metrics), the fault suite's oracle holds (every article
indexed exactly once) and the group's offsets reach the end of every partition.
"""

from __future__ import annotations

import signal
import time
import urllib.request
from collections import Counter
from collections.abc import Callable

import pytest
from prometheus_client.parser import text_string_to_metric_families

from newsflow.settings import Settings
from tests.conftest import free_ports
from tests.pipeline.test_faults_integration import (  # noqa: F401 (start_pipeline: a fixture)
    PipelineProcess,
    assert_fully_committed,
    assert_oracle,
    committed_offsets,
    end_offsets,
    ingest,
    start_pipeline,
)

pytestmark = pytest.mark.integration

ARTICLES = 60
WORKERS = 2


def records_read(port: int, topic: str) -> dict[int, int]:
    """Records this process read, per partition of ``topic``, from its /metrics."""
    with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10) as response:
        text = response.read().decode()
    read: Counter[int] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "newsflow_pipeline_records_read_total"
                and sample.labels["topic"] == topic
            ):
                read[int(sample.labels["partition"])] += int(sample.value)
    return dict(read)


def wait_all(condition: Callable[[], bool], workers: list[PipelineProcess], what: str) -> None:
    deadline = time.monotonic() + 120
    while not condition():
        for worker in workers:
            if not worker.alive():
                pytest.fail(f"a worker exited before {what}:\n{worker.output()}")
        if time.monotonic() > deadline:
            pytest.fail(f"not {what} after 120 s")
        time.sleep(0.5)


def test_two_workers_split_the_partitions_and_index_every_article_once(
    isolated: Settings,
    start_pipeline: Callable[..., PipelineProcess],  # noqa: F811
) -> None:
    produced = ingest(isolated, ARTICLES)
    partitions = sorted(committed_offsets(isolated))
    assert partitions == [0, 1, 2, 3]
    ends = end_offsets(produced)
    ports = free_ports(WORKERS)
    workers = [
        start_pipeline(
            isolated,
            "--worker-index",
            str(index),
            "--worker-count",
            str(WORKERS),
            "--metrics-port",
            str(port),
        )
        for index, port in enumerate(ports)
    ]
    wanted = {p: ends.get(p, 0) for p in partitions}
    wait_all(lambda: committed_offsets(isolated) == wanted, workers, "every offset committed")

    topic = isolated.kafka.raw_topic
    for index, (worker, port) in enumerate(zip(workers, ports, strict=True)):
        mine = [p for p in partitions if p % WORKERS == index]
        # Only its own partitions, each read once from start to end.
        assert records_read(port, topic) == {p: ends.get(p, 0) for p in mine}
        assert f"partitions {', '.join(map(str, mine))} (worker {index} of 2)" in worker.output(400)
    for worker in workers:
        worker.process.send_signal(signal.SIGTERM)  # a drain: nothing in flight is lost
    for worker in workers:
        assert worker.wait(60) == 0, worker.output()

    outcome = assert_oracle(isolated, produced)
    assert len(outcome.documents) == ARTICLES and not outcome.dead_letters
    assert_fully_committed(isolated, produced)


def test_a_worker_left_without_partitions_refuses_to_start(
    isolated: Settings,
    start_pipeline: Callable[..., PipelineProcess],  # noqa: F811
) -> None:
    worker = start_pipeline(isolated, "--worker-index", "5", "--worker-count", "6")
    assert worker.wait(120) == 1
    output = worker.output()
    assert "worker 5 of 6 has no partition to read" in output
    assert "run at most 4 workers" in output
