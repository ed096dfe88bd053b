"""The pipeline's HTTP endpoint for operators: ``/metrics``, ``/healthz`` and ``/readyz``.

- ``/metrics``: Prometheus text format, every ``newsflow_pipeline_*`` metric (``pipeline.metrics``).
- ``/healthz`` (liveness: restart me if this fails): the pipeline loop polled Kafka or called
  Elasticsearch within ``observability.liveness_timeout_seconds`` (counted from the start until
  it first did). A stuck process fails it; a slow batch or a sink waiting out an Elasticsearch
  outage does not.
- ``/readyz`` (readiness: is it doing its job): Kafka and Elasticsearch answer now, and a bundle
  went through the whole chain within ``observability.readiness_max_bundle_age_seconds``.

Probes answer 200 or 503 with ``{"ok": ..., "checks": {name: {"ok": ..., "detail": ...}}}``.
One small threaded WSGI server serves all three, on ``observability.metrics_port``.
"""

from __future__ import annotations

import json
import logging
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from socketserver import ThreadingMixIn
from typing import Any
from wsgiref.simple_server import WSGIRequestHandler, WSGIServer, make_server

from prometheus_client import make_wsgi_app

from newsflow.settings import ElasticsearchSettings, KafkaSettings, Settings
from pipeline import metrics

_LOG = logging.getLogger("newsflow.pipeline")

StartResponse = Callable[[str, list[tuple[str, str]]], Any]


@dataclass(frozen=True)
class Check:
    ok: bool
    detail: str


def liveness(progress: metrics.Progress, timeout: float, now: float) -> dict[str, Check]:
    since = progress.last_activity or progress.started
    quiet = now - since
    what = "last Kafka poll or bulk call" if progress.last_activity else "start, no poll yet"
    return {"loop": Check(quiet <= timeout, f"{quiet:.0f}s since {what} (limit {timeout:g}s)")}


def bundle_check(progress: metrics.Progress, max_age: float, now: float) -> Check:
    if progress.last_bundle is None:
        return Check(False, "no bundle finished yet (starting: models load, partitions assigned)")
    age = now - progress.last_bundle
    return Check(age <= max_age, f"last bundle finished {age:.0f}s ago (limit {max_age:g}s)")


def kafka_check(settings: KafkaSettings, timeout: float) -> Check:
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    from newsflow.kafka_topics import client_config

    try:
        admin = KafkaAdminClient(
            **{
                **client_config(settings, "newsflow-pipeline-probe"),
                "request_timeout_ms": int(timeout * 1000),
                "bootstrap_timeout_ms": int(timeout * 1000),
            }
        )
        try:
            brokers = len(admin.describe_cluster()["brokers"])
        finally:
            admin.close()
    except (KafkaError, OSError) as exc:
        return Check(False, f"{settings.bootstrap_servers}: {type(exc).__name__}: {exc}")
    return Check(True, f"{settings.bootstrap_servers}: {brokers} broker(s)")


def elasticsearch_check(settings: ElasticsearchSettings, timeout: float) -> Check:
    from elasticsearch import ApiError, TransportError

    from newsflow.index import client

    es = client(settings)
    try:
        status = es.options(request_timeout=timeout, max_retries=0).cluster.health()["status"]
    except (TransportError, ApiError) as exc:
        return Check(False, f"{settings.url}: {type(exc).__name__}: {exc}")
    finally:
        es.close()
    return Check(status != "red", f"{settings.url}: cluster {status}")


def readiness(settings: Settings, progress: metrics.Progress, now: float) -> dict[str, Check]:
    timeout = settings.observability.probe_timeout_seconds
    return {
        "bundles": bundle_check(
            progress, settings.observability.readiness_max_bundle_age_seconds, now
        ),
        "kafka": kafka_check(settings.kafka, timeout),
        "elasticsearch": elasticsearch_check(settings.elasticsearch, timeout),
    }


def application(settings: Settings) -> Callable[[dict[str, Any], StartResponse], Iterable[bytes]]:
    """The WSGI app: /metrics from the registry, /healthz and /readyz as JSON, else 404."""
    prometheus = make_wsgi_app(metrics.REGISTRY)
    probes: dict[str, Callable[[], dict[str, Check]]] = {
        "/healthz": lambda: liveness(
            metrics.progress(), settings.observability.liveness_timeout_seconds, time.time()
        ),
        "/readyz": lambda: readiness(settings, metrics.progress(), time.time()),
    }

    def app(environ: dict[str, Any], start_response: StartResponse) -> Iterable[bytes]:
        path = environ.get("PATH_INFO", "")
        if path == "/metrics":
            return prometheus(environ, start_response)
        probe = probes.get(path)
        if probe is None:
            start_response("404 Not Found", [("Content-Type", "text/plain")])
            return [b"not found: try /metrics, /healthz or /readyz\n"]
        checks = probe()
        ok = all(check.ok for check in checks.values())
        body = json.dumps(
            {"ok": ok, "checks": {name: asdict(check) for name, check in checks.items()}}
        ).encode()
        start_response(
            "200 OK" if ok else "503 Service Unavailable", [("Content-Type", "application/json")]
        )
        return [body]

    return app


class _ThreadingServer(ThreadingMixIn, WSGIServer):
    """One thread per request, so a slow readiness probe never delays a scrape."""

    daemon_threads = True


class _QuietHandler(WSGIRequestHandler):
    def log_message(self, format: str, *args: Any) -> None:
        """Scrapes and probes every few seconds are not news."""


@contextmanager
def serve(settings: Settings) -> Iterator[int | None]:
    """Serve the endpoint while inside (if ``observability.metrics_port`` is set); yields the
    bound port. The probes measure from entering."""
    metrics.start()
    observability = settings.observability
    if observability.metrics_port is None:
        yield None
        return
    server = make_server(
        observability.metrics_host,
        observability.metrics_port,
        application(settings),
        server_class=_ThreadingServer,
        handler_class=_QuietHandler,
    )
    port = int(server.server_address[1])
    thread = threading.Thread(target=server.serve_forever, name="newsflow-metrics", daemon=True)
    thread.start()
    _LOG.info(
        "metrics and probes on http://%s:%d (/metrics, /healthz, /readyz)",
        observability.metrics_host,
        port,
        extra={"port": port},
    )
    try:
        yield port
    finally:
        server.shutdown()
        server.server_close()
        thread.join()
