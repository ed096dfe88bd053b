"""Shared fixtures. Integration tests run against the real local stack (Kafka + Elasticsearch).

The session fixture starts the stack if it is not running (and stops it afterwards in that case).
A stack that cannot start is a test error, never a skip: CI must not go green without services.
Each integration test gets its own topics, consumer group and index alias, removed afterwards.

Tests that read the project's shared data (``../shared``: a real-world corpus others wrote, never
copied into the repository) find it with ``shared_path`` or ``shared_files``. Without it, as in a
plain clone, they are skipped with the reason; in CI a missing corpus fails them instead.
"""

from __future__ import annotations

import os
import socket
import subprocess
import uuid
from collections.abc import Callable, Iterable, Iterator
from pathlib import Path
from typing import Any

import pytest

from newsflow.settings import Settings, load_settings

REPO = Path(__file__).resolve().parent.parent
#: The project's shared test data (read-only), beside the checkout unless NEWSFLOW_SHARED_DIR says.
SHARED = Path(os.environ.get("NEWSFLOW_SHARED_DIR") or REPO.parent / "shared")
SEED_ARTICLE = "seed/article.txt"
SAMPLES = REPO / "deploy" / "samples"
#: Set by CI (.ci/run sets the first): there a missing corpus is a failure, never a skip.
REQUIRE_CORPUS_ENV = ("NEWSFLOW_REQUIRE_CORPUS", "CI")


def pytest_configure(config: pytest.Config) -> None:
    config.addinivalue_line(
        "markers",
        "wheel: builds newsflow's wheel and installs it into a fresh virtual environment "
        "(a minute or two; deselect with -m 'not wheel')",
    )


def corpus_required() -> bool:
    """Whether this run must have the shared data: CI must never test less in silence."""
    return any(os.environ.get(name, "").lower() in ("1", "true") for name in REQUIRE_CORPUS_ENV)


def shared_path(relative: str) -> Path:
    """``SHARED / relative``, or skip the test (fail it in CI) when the shared data is absent.

    A file missing from shared data that is there fails even outside CI: that copy is stale.
    """
    path = SHARED / relative
    if path.exists():
        return path
    if SHARED.is_dir():
        pytest.fail(
            f"{path} is missing from the shared data at {SHARED}: update that copy", pytrace=False
        )
    reason = (
        f"needs the shared corpus at {SHARED} (the project's real-world test data, kept beside "
        "the checkout and never in it; its corpus/SOURCES.md says where each file comes from; "
        "NEWSFLOW_SHARED_DIR points elsewhere)"
    )
    if corpus_required():
        required = " or ".join(REQUIRE_CORPUS_ENV)
        pytest.fail(f"{reason}; required here ({required} is set)", pytrace=False)
    pytest.skip(reason)


def shared_files(relative: str, select: Callable[[Path], Iterable[Path]]) -> list[str]:
    """Parameters for a test over files of a shared directory: their paths relative to it.

    Chosen at collection, when a test cannot be skipped yet: without the directory the one
    parameter is "" (the directory itself), which the test's ``shared_path`` skips or fails.
    """
    root = SHARED / relative
    if not root.is_dir():
        return [""]
    return sorted(path.relative_to(root).as_posix() for path in select(root))


def free_ports(count: int) -> list[int]:
    """``count`` distinct local ports nothing listened on a moment ago."""
    sockets = [socket.socket() for _ in range(count)]
    for sock in sockets:
        sock.bind(("127.0.0.1", 0))
    ports = [int(sock.getsockname()[1]) for sock in sockets]
    for sock in sockets:
        sock.close()
    return ports


def unstarted_stack_env(state_dir: Path) -> dict[str, str]:
    """Settings of a local stack that was never started: free ports, nothing at its addresses."""
    kafka, controller, sasl, es, transport = free_ports(5)
    return {
        "NEWSFLOW_STACK__STATE_DIR": str(state_dir),
        "NEWSFLOW_STACK__KAFKA_PORT": str(kafka),
        "NEWSFLOW_STACK__KAFKA_CONTROLLER_PORT": str(controller),
        "NEWSFLOW_STACK__KAFKA_SASL_PORT": str(sasl),
        "NEWSFLOW_STACK__ELASTICSEARCH_PORT": str(es),
        "NEWSFLOW_STACK__ELASTICSEARCH_TRANSPORT_PORT": str(transport),
        "NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS": f"localhost:{kafka}",
        "NEWSFLOW_ELASTICSEARCH__URL": f"http://localhost:{es}",
        "NEWSFLOW_OBSERVABILITY__PROBE_TIMEOUT_SECONDS": "1",
    }


def newsflow_cli(settings: Settings, *args: str) -> subprocess.CompletedProcess[str]:
    """Run the ``newsflow`` command as a user would, pointed at ``settings``' topics and index."""
    env = {
        **os.environ,
        "NEWSFLOW_KAFKA__RAW_TOPIC": settings.kafka.raw_topic,
        "NEWSFLOW_KAFKA__DLQ_TOPIC": settings.kafka.dlq_topic,
        "NEWSFLOW_KAFKA__CONSUMER_GROUP": settings.kafka.consumer_group,
        "NEWSFLOW_ELASTICSEARCH__INDEX_ALIAS": settings.elasticsearch.index_alias,
    }
    return subprocess.run(
        ["newsflow", *args], capture_output=True, text=True, env=env, check=False, timeout=300
    )


def indexed_documents(settings: Settings, key: str = "url") -> dict[str, dict[str, Any]]:
    """Everything searchable under ``settings``' alias (after a refresh), by a source field."""
    from newsflow.index import client

    es = client(settings.elasticsearch)
    try:
        es.indices.refresh(index=settings.elasticsearch.index_alias)
        hits = es.search(index=settings.elasticsearch.index_alias, size=1000)["hits"]["hits"]
        return {hit["_source"][key]: hit["_source"] for hit in hits}
    finally:
        es.close()


@pytest.fixture(scope="session")
def stack() -> Iterator[Settings]:
    from newsflow.stack import LocalStack

    settings = load_settings()
    local = LocalStack(settings.stack)
    already_running = all(service.running_pid() for service in local.services)
    local.up()
    yield settings
    if not already_running:
        local.down()


@pytest.fixture
def isolated(stack: Settings) -> Iterator[Settings]:
    """Settings pointing at fresh, uniquely named topics, consumer group and index alias."""
    from kafka import KafkaAdminClient

    from newsflow.index import client, remove
    from newsflow.kafka_topics import client_config
    from pipeline.dedupe_store import dedupe_index

    name = f"test-{uuid.uuid4().hex[:10]}"
    settings = stack.namespaced(name)
    settings.kafka.poll_timeout_seconds = 0.5
    yield settings
    admin = KafkaAdminClient(**client_config(settings.kafka, "newsflow-tests"))
    try:
        existing = set(admin.list_topics())
        admin.delete_topics(
            [t for t in (settings.kafka.raw_topic, settings.kafka.dlq_topic) if t in existing]
        )
    finally:
        admin.close()
    es = client(settings.elasticsearch)
    remove(es, name)
    es.indices.delete(index=dedupe_index(name), ignore_unavailable=True)
    es.close()
