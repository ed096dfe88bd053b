"""Metrics scraped over HTTP from a running ``newsflow pipeline run`` on the real stack.

The pipeline runs as ops run it (a subprocess, JSON logs, ``--metrics-port``) until the metrics
show every record handled; the test then reads /metrics, /healthz and /readyz, stops it with
SIGTERM, and checks the numbers against what was ingested.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
import urllib.error
import urllib.request
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from kafka import KafkaProducer
from prometheus_client.parser import text_string_to_metric_families

from connectors.ingest import ingest_files
from newsflow.settings import Settings
from tests.conftest import SAMPLES

pytestmark = pytest.mark.integration

ARTICLES = [SAMPLES / "lisbon-tram.txt", SAMPLES / "madrid-metro.txt", SAMPLES / "articles.jsonl"]
ARTICLE_COUNT = 8  # 1 + 1 + 6 lines
PARTITIONS = 4  # kafka.topic_partitions
NAME = "newsflow_pipeline_"
#: A safety net for a hung pipeline, not a performance bound.
DEADLINE_SECONDS = 240.0

Samples = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def write_config(settings: Settings, path: Path) -> Path:
    """The isolated topics and index as a newsflow.toml, with JSON logs chosen by setting."""
    path.write_text(
        f"""
[kafka]
raw_topic = "{settings.kafka.raw_topic}"
dlq_topic = "{settings.kafka.dlq_topic}"
consumer_group = "{settings.kafka.consumer_group}"
poll_timeout_seconds = {settings.kafka.poll_timeout_seconds}

[elasticsearch]
index_alias = "{settings.elasticsearch.index_alias}"

[observability]
log_format = "json"
"""
    )
    return path


def log_lines(path: Path) -> list[dict[str, Any]]:
    return [json.loads(line) for line in path.read_text().splitlines() if line.strip()]


def wait_for(what: str, probe: Callable[[], Any], process: subprocess.Popen[bytes]) -> Any:
    """Poll ``probe`` until it returns something truthy; fail if the pipeline exits first."""
    deadline = time.monotonic() + DEADLINE_SECONDS
    while time.monotonic() < deadline:
        if process.poll() is not None:
            pytest.fail(f"the pipeline exited ({process.returncode}) before {what}")
        if result := probe():
            return result
        time.sleep(0.5)
    pytest.fail(f"no {what} within {DEADLINE_SECONDS:.0f}s")


def endpoint_port(logs: Path) -> int | None:
    for entry in log_lines(logs) if logs.exists() else []:
        if "port" in entry and entry["message"].startswith("metrics and probes on"):
            return int(entry["port"])
    return None


def get(url: str) -> tuple[int, str]:
    try:
        with urllib.request.urlopen(url, timeout=30) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def scrape(port: int) -> Samples:
    _, text = get(f"http://127.0.0.1:{port}/metrics")
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


def total(samples: Samples, name: str, **labels: str) -> float:
    """Sum of the samples of ``name`` whose labels include ``labels``."""
    return sum(
        value
        for (sample, sample_labels), value in samples.items()
        if sample == name and set(labels.items()) <= set(sample_labels)
    )


def test_a_running_pipeline_reports_what_it_did_over_http(
    isolated: Settings, tmp_path: Path
) -> None:
    report = ingest_files(ARTICLES, isolated.kafka)
    assert report.published == ARTICLE_COUNT
    producer = KafkaProducer(bootstrap_servers=isolated.kafka.bootstrap_servers, acks="all")
    producer.send(isolated.kafka.raw_topic, key=b"junk", value=b"not an article").get(30)
    producer.close()
    records = ARTICLE_COUNT + 1

    logs = tmp_path / "pipeline.log"
    env = {**os.environ, "NEWSFLOW_CONFIG": str(write_config(isolated, tmp_path / "nf.toml"))}
    with logs.open("wb") as stderr:
        process = subprocess.Popen(
            ["newsflow", "pipeline", "run", "--metrics-port", "0"], env=env, stderr=stderr
        )
    try:
        port = wait_for("metrics endpoint", lambda: endpoint_port(logs), process)

        def caught_up() -> Samples | None:
            """Every record committed, and every partition polled since: all lags are 0."""
            samples = scrape(port)
            lags = [v for k, v in samples.items() if k[0] == f"{NAME}consumer_lag_records"]
            committed = total(samples, f"{NAME}records_committed_total")
            return samples if committed == records and lags == [0] * PARTITIONS else None

        samples = wait_for("every record committed and no lag", caught_up, process)
        live, live_body = get(f"http://127.0.0.1:{port}/healthz")
        ready, ready_body = get(f"http://127.0.0.1:{port}/readyz")
        missing, _ = get(f"http://127.0.0.1:{port}/nothing-here")
    finally:
        process.send_signal(signal.SIGTERM)
        exit_code = process.wait(timeout=120)

    assert exit_code == 0, logs.read_text()[-3000:]
    assert total(samples, f"{NAME}records_read_total") == records
    assert total(samples, f"{NAME}articles_in_total", stage="decode") == records
    assert total(samples, f"{NAME}articles_out_total", stage="decode") == ARTICLE_COUNT
    for stage in ("language", "translation", "dedupe", "entities"):
        assert total(samples, f"{NAME}articles_in_total", stage=stage) == ARTICLE_COUNT, stage
        assert total(samples, f"{NAME}articles_out_total", stage=stage) == ARTICLE_COUNT, stage
        per_article = f"{NAME}stage_seconds_per_article_count"
        assert total(samples, per_article, stage=stage) == ARTICLE_COUNT, stage
    assert total(samples, f"{NAME}articles_out_total", stage="index") == ARTICLE_COUNT
    assert total(samples, f"{NAME}end_to_end_latency_seconds_count") == ARTICLE_COUNT
    assert total(samples, f"{NAME}end_to_end_latency_seconds_sum") > 0
    assert total(samples, f"{NAME}bulk_request_seconds_count", outcome="ok") >= 1
    assert total(samples, f"{NAME}bulk_request_seconds_count", outcome="retry") == 0
    assert total(samples, f"{NAME}dedupe_outcomes_total") == ARTICLE_COUNT
    assert total(samples, f"{NAME}dead_letters_total", stage="decode") == 1
    assert total(samples, f"{NAME}errors_total", stage="decode") == 1
    assert total(samples, f"{NAME}last_commit_timestamp_seconds") > 0
    assert total(samples, "process_resident_memory_bytes") > 0

    assert (live, json.loads(live_body)["ok"]) == (200, True)
    readiness = json.loads(ready_body)
    assert ready == 200, readiness
    assert set(readiness["checks"]) == {"bundles", "kafka", "elasticsearch"}
    assert missing == 404

    lines = log_lines(logs)  # every line parses: the whole log is JSON
    assert {"time", "level", "logger", "message"} <= set(lines[0])
    [letter] = [line for line in lines if line["message"].startswith("dead letter from")]
    assert (letter["level"], letter["stage"], letter["logger"]) == (
        "WARNING",
        "decode",
        "newsflow.pipeline",
    )
    assert letter["error_class"] == "InvalidArticle"
