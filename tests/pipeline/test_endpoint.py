"""The pipeline's endpoint: probe logic on hand-built progress, and the real HTTP server.

Readiness is checked against addresses where nothing listens, so the failing path runs for
real without the stack; the passing path is in test_metrics_integration.py.
"""

from __future__ import annotations

import json
import socket
import urllib.error
import urllib.request

import pytest

from newsflow.settings import Settings
from pipeline import endpoint, metrics

T0 = 1_800_000_000.0


def closed_port() -> int:
    """A port nothing listens on (bound, then released)."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_liveness_counts_from_the_start_until_the_loop_first_shows_life() -> None:
    starting = metrics.Progress(started=T0)
    assert endpoint.liveness(starting, timeout=300, now=T0 + 299)["loop"].ok
    assert not endpoint.liveness(starting, timeout=300, now=T0 + 301)["loop"].ok

    polled = metrics.Progress(started=T0, last_activity=T0 + 1000)
    assert endpoint.liveness(polled, timeout=300, now=T0 + 1200)["loop"].ok
    stuck = endpoint.liveness(polled, timeout=300, now=T0 + 1400)["loop"]
    assert not stuck.ok and "400s since last Kafka poll" in stuck.detail


def test_readiness_needs_a_recent_bundle() -> None:
    assert not endpoint.bundle_check(metrics.Progress(started=T0), 120, now=T0).ok
    done = metrics.Progress(started=T0, last_bundle=T0 + 10)
    assert endpoint.bundle_check(done, 120, now=T0 + 130).ok
    assert not endpoint.bundle_check(done, 120, now=T0 + 131).ok


def test_the_endpoint_serves_metrics_and_probes_and_says_why_it_is_not_ready() -> None:
    settings = Settings.model_validate(
        {
            "kafka": {"bootstrap_servers": f"127.0.0.1:{closed_port()}"},
            "elasticsearch": {"url": f"http://127.0.0.1:{closed_port()}"},
            "observability": {"metrics_port": 0, "probe_timeout_seconds": 1},
        }
    )
    with endpoint.serve(settings) as port:
        assert port
        base = f"http://127.0.0.1:{port}"
        metrics.bundle_finished(0)
        with urllib.request.urlopen(f"{base}/metrics", timeout=10) as response:
            assert "newsflow_pipeline_bundles_total" in response.read().decode()
        with urllib.request.urlopen(f"{base}/healthz", timeout=10) as response:
            assert json.loads(response.read())["ok"] is True
        with pytest.raises(urllib.error.HTTPError) as not_ready:
            urllib.request.urlopen(f"{base}/readyz", timeout=30)
        assert not_ready.value.code == 503
        report = json.loads(not_ready.value.read())
    assert report["ok"] is False
    checks = report["checks"]
    assert checks["bundles"]["ok"] is True
    assert checks["kafka"]["ok"] is False and "127.0.0.1:" in checks["kafka"]["detail"]
    assert checks["elasticsearch"]["ok"] is False


def test_no_port_no_server() -> None:
    with endpoint.serve(Settings()) as port:
        assert port is None
