"""End to end, as an operator runs it: a feed served locally -> `newsflow connectors run` ->
Kafka -> `newsflow pipeline run` -> searchable in Elasticsearch; a restart re-publishes nothing
and a new item is exactly one more message. Also the CLI's check/status, the metrics endpoint
and a graceful SIGTERM of a continuous run."""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
import urllib.request
from pathlib import Path

import pytest
from kafka import KafkaConsumer, TopicPartition

from newsflow.settings import Settings
from tests.conftest import indexed_documents, newsflow_cli
from tests.connectors.conftest import LocalSite, Reply

BODY = (
    "Dock workers in Lisbon voted on Tuesday to accept a new collective agreement after "
    "three weeks of strikes that left container ships waiting off the coast. "
)


def feed(site: LocalSite, count: int) -> bytes:
    items = "".join(
        f"<item><title>Harbour story {n}</title><link>{site.url(f'/news/{n}')}</link>"
        f"<guid isPermaLink='false'>story-{n}</guid>"
        f"<pubDate>Tue, 10 Jun 2025 0{n}:00:00 GMT</pubDate>"
        f"<description>{f'Story {n}. ' + BODY * 12}</description></item>"
        for n in range(1, count + 1)
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel>"
        f"<title>Harbour News</title><link>{site.url('/')}</link>{items}</channel></rss>"
    ).encode()


def serve_feed(site: LocalSite, count: int) -> None:
    site.routes["/feed.xml"] = Reply(body=feed(site, count), content_type="application/rss+xml")


def sources_file(tmp_path: Path, site: LocalSite, *, extra: str = "") -> Path:
    path = tmp_path / "sources.yaml"
    path.write_text(
        f"""
defaults:
  state_path: state/connectors.sqlite
  allow_networks: ["127.0.0.1/32"]
  per_host_interval: 0
  heartbeat_seconds: 1
sources:
  - name: harbour
    type: rss
    url: {site.url("/feed.xml")}
    label: Harbour News
    language_hint: en
{extra}""",
        encoding="utf-8",
    )
    return path


def end_offset(settings: Settings) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        topic = settings.kafka.raw_topic
        partitions = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(partitions).values())
    finally:
        consumer.close()


@pytest.mark.integration
def test_feed_to_search_and_a_restart_republishes_nothing(
    isolated: Settings, local_site: LocalSite, tmp_path: Path
) -> None:
    serve_feed(local_site, 2)
    config = sources_file(tmp_path, local_site)

    first = newsflow_cli(isolated, "connectors", "run", "--once", "--config", str(config))
    assert first.returncode == 0, first.stderr
    assert "harbour: 2 new, 0 rejected" in first.stderr
    assert end_offset(isolated) == 2

    pipeline = newsflow_cli(isolated, "pipeline", "run", "--stop-when-idle", "2")
    assert pipeline.returncode == 0, pipeline.stderr
    documents = indexed_documents(isolated, key="title")
    assert set(documents) == {"Harbour story 1", "Harbour story 2"}
    story = documents["Harbour story 1"]
    assert story["source"] == "Harbour News"
    assert story["url"] == local_site.url("/news/1")
    hits = newsflow_cli(isolated, "search", "collective agreement", "--json")
    assert hits.returncode == 0, hits.stderr
    assert len(json.loads(hits.stdout)) == 2

    again = newsflow_cli(isolated, "connectors", "run", "--once", "--config", str(config))
    assert again.returncode == 0, again.stderr
    assert "harbour: 0 new, 0 rejected" in again.stderr
    assert end_offset(isolated) == 2  # restarted: nothing re-published

    serve_feed(local_site, 3)
    third = newsflow_cli(isolated, "connectors", "run", "--once", "--config", str(config))
    assert third.returncode == 0, third.stderr
    assert "harbour: 1 new, 0 rejected" in third.stderr
    assert end_offset(isolated) == 3  # exactly one more message

    status = newsflow_cli(isolated, "connectors", "status", "--config", str(config), "--json")
    assert status.returncode == 0, status.stderr
    [row] = json.loads(status.stdout)
    assert (row["source"], row["fetches"], row["new"], row["errors"]) == ("harbour", 3, 3, "0")
    assert row["last success"].endswith("s ago")


@pytest.mark.integration
def test_check_probes_without_publishing_and_fails_on_a_broken_source(
    isolated: Settings, local_site: LocalSite, tmp_path: Path
) -> None:
    serve_feed(local_site, 3)
    broken = f"""  - name: missing
    type: rss
    url: {local_site.url("/gone.xml")}
"""
    config = sources_file(tmp_path, local_site, extra=broken)
    result = newsflow_cli(isolated, "connectors", "check", "--config", str(config), "--json")
    assert result.returncode == 1, result.stderr
    rows = {row["source"]: row for row in json.loads(result.stdout)}
    assert (rows["harbour"]["status"], rows["harbour"]["items"]) == ("ok", 3)
    assert rows["harbour"]["detail"] == "Harbour story 1"
    assert rows["missing"]["status"] == "FAILED"
    assert rows["missing"]["detail"].startswith("http_status: ")
    assert not (tmp_path / "state").exists()  # nothing marked seen, no state written

    invalid = tmp_path / "invalid.yaml"
    invalid.write_text("sources:\n  - {name: x, type: podcast}\n", encoding="utf-8")
    refused = newsflow_cli(isolated, "connectors", "check", "--config", str(invalid))
    assert refused.returncode == 1
    assert f"{invalid}: sources[0].type: 'podcast' is not one of" in refused.stderr


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.mark.integration
def test_a_continuous_run_serves_metrics_and_stops_cleanly_on_sigterm(
    isolated: Settings, local_site: LocalSite, tmp_path: Path
) -> None:
    serve_feed(local_site, 2)
    config = sources_file(tmp_path, local_site)
    port = free_port()
    env = {
        **os.environ,
        "NEWSFLOW_KAFKA__RAW_TOPIC": isolated.kafka.raw_topic,
        "NEWSFLOW_KAFKA__DLQ_TOPIC": isolated.kafka.dlq_topic,
    }
    runner = subprocess.Popen(
        ["newsflow", "connectors", "run", "--config", str(config), "--metrics-port", str(port)],
        env=env,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        sent = 'newsflow_connector_items_total{outcome="sent",source="harbour",type="rss"} 2.0'
        text = ""
        deadline = time.monotonic() + 60
        while sent not in text and time.monotonic() < deadline:
            time.sleep(0.5)
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
                    text = r.read().decode()
            except OSError:
                continue
        assert sent in text
        assert 'newsflow_connector_fetches_total{source="harbour",type="rss"} 1.0' in text
        runner.send_signal(signal.SIGTERM)
        _, stderr = runner.communicate(timeout=60)
    finally:
        if runner.poll() is None:
            runner.kill()
    assert runner.returncode == 0, stderr
    assert "connectors: stopped after 1 poll(s): 2 new item(s)" in stderr
    assert end_offset(isolated) == 2


def test_every_connectors_command_has_help() -> None:
    for command in (["connectors"], *(["connectors", a] for a in ("run", "check", "status"))):
        result = subprocess.run(
            ["newsflow", *command, "--help"], capture_output=True, text=True, check=False
        )
        assert result.returncode == 0 and "usage: newsflow connectors" in result.stdout
