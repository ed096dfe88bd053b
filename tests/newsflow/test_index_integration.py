"""The news index against the real Elasticsearch node: setup, status and zero-downtime migration."""

from __future__ import annotations

import subprocess
import threading

import pytest
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from newsflow.index import (
    IndexOutdated,
    client,
    concrete_index_name,
    ensure_index,
    migrate,
    status,
    write_alias,
)
from newsflow.settings import Settings
from tests.conftest import newsflow_cli

pytestmark = pytest.mark.integration


def doc(number: int) -> dict[str, object]:
    return {
        "id": f"{number:032x}",
        "source": "Test",
        "title": f"Article {number}",
        "fetched_at": "2026-11-26T10:00:00Z",
    }


@pytest.fixture
def es(isolated: Settings):  # type: ignore[no-untyped-def]
    connection = client(isolated.elasticsearch)
    yield connection
    alias = isolated.elasticsearch.index_alias
    connection.indices.delete(index=f"{alias}-v0", ignore_unavailable=True)
    connection.close()


def test_setup_creates_the_current_index_behind_read_and_write_aliases_once(
    isolated: Settings, es: Elasticsearch
) -> None:
    alias = isolated.elasticsearch.index_alias
    assert ensure_index(es, isolated.elasticsearch) == alias
    assert ensure_index(es, isolated.elasticsearch) == alias  # idempotent
    current = concrete_index_name(alias)
    state = status(es, isolated.elasticsearch)
    assert (state.read_indices, state.write_indices, state.up_to_date) == (
        [current],
        [current],
        True,
    )
    mapping = es.indices.get_mapping(index=alias)[current]["mappings"]
    assert mapping["dynamic"] == "strict" and "title_en" in mapping["properties"]


def old_index(es: Elasticsearch, alias: str, documents: int) -> str:
    """An index of an earlier mapping version holding both aliases, as an old release made."""
    old = f"{alias}-v0"
    es.indices.create(
        index=old,
        mappings={"dynamic": "false"},
        aliases={alias: {}, write_alias(alias): {"is_write_index": True}},
    )
    bulk(
        es,
        ({"_index": old, "_id": doc(n)["id"], "_source": doc(n)} for n in range(documents)),
        refresh=True,
    )
    return old


def test_an_outdated_index_is_refused_with_what_to_do(
    isolated: Settings, es: Elasticsearch
) -> None:
    old = old_index(es, isolated.elasticsearch.index_alias, 1)
    with pytest.raises(IndexOutdated, match=rf"points to {old}.*newsflow index migrate"):
        ensure_index(es, isolated.elasticsearch)


def test_migration_under_a_running_writer_loses_nothing(
    isolated: Settings, es: Elasticsearch
) -> None:
    alias = isolated.elasticsearch.index_alias
    old = old_index(es, alias, 3000)
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:  # the pipeline keeps writing through the write alias
        number = 3000
        writer_es = client(isolated.elasticsearch)
        while not stop.is_set():
            writer_es.index(index=write_alias(alias), id=doc(number)["id"], document=doc(number))
            written.append(number)
            number += 1
        writer_es.close()

    thread = threading.Thread(target=writer)
    thread.start()
    try:
        state = migrate(es, isolated.elasticsearch)
    finally:
        stop.set()
        thread.join()
    es.indices.refresh(index=alias)
    current = concrete_index_name(alias)
    assert state.up_to_date and state.read_indices == [current]
    assert written, "the writer should have run during the migration"
    assert es.count(index=alias)["count"] == 3000 + len(written)
    assert not es.indices.exists_alias(name=alias, index=old)
    assert migrate(es, isolated.elasticsearch) == status(es, isolated.elasticsearch)  # no-op


def test_setup_adds_a_missing_write_alias_to_the_current_index(
    isolated: Settings, es: Elasticsearch
) -> None:
    alias = isolated.elasticsearch.index_alias
    current = concrete_index_name(alias)
    es.indices.create(index=current, aliases={alias: {"is_write_index": True}})
    ensure_index(es, isolated.elasticsearch)
    assert status(es, isolated.elasticsearch).write_indices == [current]


def test_the_cli_reports_status_and_migrates(isolated: Settings, es: Elasticsearch) -> None:
    alias = isolated.elasticsearch.index_alias
    old_index(es, alias, 5)

    def newsflow(*args: str) -> subprocess.CompletedProcess[str]:
        return newsflow_cli(isolated, "index", *args)

    before = newsflow("status")
    assert before.returncode == 1 and "OUTDATED" in before.stdout
    assert "newsflow index migrate" in before.stderr
    after = newsflow("migrate")
    assert after.returncode == 0, after.stderr
    assert "up to date" in after.stdout and "documents    5" in after.stdout
