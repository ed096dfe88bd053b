"""The local stack runs the real servers: a kafka.Kafka JVM and Elasticsearch 8.14.1."""

from __future__ import annotations

import json
import subprocess
from pathlib import Path

import pytest

from newsflow.settings import Settings
from newsflow.stack import LocalStack, process_cmdline
from tests.conftest import newsflow_cli

pytestmark = pytest.mark.integration


def test_status_reports_real_servers_and_their_versions(stack: Settings) -> None:
    result = subprocess.run(
        ["newsflow", "stack", "status", "--json"], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    rows = {row["service"]: row for row in json.loads(result.stdout)}
    assert rows["elasticsearch"]["version"] == "8.14.1"
    assert rows["kafka"]["version"].startswith("4.")
    assert all(row["health"] == "healthy" for row in rows.values())
    kafka_cmdline = process_cmdline(int(rows["kafka"]["pid"]))
    assert kafka_cmdline is not None and " kafka.Kafka " in f"{kafka_cmdline} "


def test_up_is_idempotent(stack: Settings) -> None:
    local = LocalStack(stack.stack, progress=lambda _: None)
    before = [service.running_pid() for service in local.services]
    local.up()
    assert [service.running_pid() for service in local.services] == before


def test_the_readme_path_through_the_cli(isolated: Settings, tmp_path: Path) -> None:
    """ingest files -> pipeline run --stop-when-idle -> search, as a user types it."""
    samples = Path(__file__).resolve().parents[2] / "deploy" / "samples"

    def newsflow(*args: str) -> subprocess.CompletedProcess[str]:
        return newsflow_cli(isolated, *args)

    ingest = newsflow("ingest", "files", str(samples))
    assert ingest.returncode == 0, ingest.stderr
    assert "8 article(s) published" in ingest.stderr
    pipeline = newsflow("pipeline", "run", "--stop-when-idle", "2")
    assert pipeline.returncode == 0, pipeline.stderr
    found = newsflow("search", "Copa del Rey", "--json")
    assert found.returncode == 0, found.stderr
    [hit] = json.loads(found.stdout)
    assert hit["language"] == "es"
    assert "Copa del Rey" in hit["title"]
