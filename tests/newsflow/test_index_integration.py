"""The news index against the real Elasticsearch node: template, monthly indices, language
analyzers, status and zero-downtime migration."""

from __future__ import annotations

import subprocess
import threading
from datetime import UTC, datetime
from typing import Any

import pytest
from elasticsearch import Elasticsearch
from elasticsearch.helpers import bulk

from newsflow.index import (
    IndexOutdated,
    client,
    concrete_index_name,
    ensure_index,
    mapping_version,
    migrate,
    status,
    template_name,
    write_alias,
    write_documents,
)
from newsflow.settings import Settings
from tests.conftest import newsflow_cli

pytestmark = pytest.mark.integration

NOVEMBER = "2026-11-26T10:00:00Z"
IN_NOVEMBER = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)  # the clock, where the test sets "now"


def doc(number: int, fetched_at: str = NOVEMBER, **fields: Any) -> dict[str, Any]:
    return {
        "id": f"{number:032x}",
        "source": "Test",
        "title": f"Article {number}",
        "fetched_at": fetched_at,
        **fields,
    }


@pytest.fixture
def es(isolated: Settings):  # type: ignore[no-untyped-def]
    connection = client(isolated.elasticsearch)
    yield connection
    connection.close()


def test_setup_installs_the_template_and_one_index_behind_both_aliases_once(
    isolated: Settings, es: Elasticsearch
) -> None:
    alias = isolated.elasticsearch.index_alias
    assert ensure_index(es, isolated.elasticsearch, now=lambda: IN_NOVEMBER) == alias
    assert ensure_index(es, isolated.elasticsearch) == alias  # idempotent, in any month
    (template,) = es.indices.get_index_template(name=template_name(alias))["index_templates"]
    assert template["index_template"]["version"] == mapping_version()
    state = status(es, isolated.elasticsearch)
    (index,) = state.read_indices
    period = index.removeprefix(f"{template_name(alias)}-")
    assert period == "2026.11"  # the month of its clock
    assert state.write_aliases == {write_alias(alias, period): index}
    assert state.up_to_date
    mapping = es.indices.get_mapping(index=alias)[index]["mappings"]
    assert mapping["dynamic"] == "strict" and "title_en" in mapping["properties"]


def test_documents_go_to_the_index_of_their_month_behind_one_read_alias(
    isolated: Settings, es: Elasticsearch
) -> None:
    alias = isolated.elasticsearch.index_alias
    documents = [
        doc(1, published_at="2025-03-02T10:00:00Z"),
        doc(2, published_at="2025-03-30T10:00:00Z"),
        doc(3),  # no publication date: November, when it was fetched
    ]
    write_documents(es, isolated.elasticsearch, documents, now=lambda: IN_NOVEMBER)
    write_documents(es, isolated.elasticsearch, documents[:1])  # again: overwritten in place
    # Fetched again in December, or its publication date corrected: it stays where it is.
    write_documents(es, isolated.elasticsearch, [doc(3, fetched_at="2026-12-07T10:00:00Z")])
    write_documents(es, isolated.elasticsearch, [{**documents[0], "published_at": NOVEMBER}])
    by_index = {
        name: es.count(index=name)["count"]
        for name in status(es, isolated.elasticsearch).read_indices
    }
    assert by_index == {
        concrete_index_name(alias, "2025.03"): 2,
        concrete_index_name(alias, "2026.11"): 1,
    }
    assert es.count(index=alias)["count"] == 3


def test_the_original_text_is_searchable_with_its_language_analyzer(
    isolated: Settings, es: Elasticsearch
) -> None:
    alias = isolated.elasticsearch.index_alias
    write_documents(
        es,
        isolated.elasticsearch,
        [
            doc(
                1,
                title="As eleições foram adiadas",
                language="pt",
                original={"pt": {"title": "As eleições foram adiadas"}},
            ),
            doc(
                2,
                title="Las elecciones fueron aplazadas",
                language="es",
                original={"es": {"title": "Las elecciones fueron aplazadas"}},
            ),
        ],
    )

    def found(field: str, text: str) -> list[str]:
        hits = es.search(index=alias, query={"match": {field: {"query": text, "operator": "and"}}})
        return [hit["_source"]["title"] for hit in hits["hits"]["hits"]]

    # Hunspell reduces inflections to one stem: "eleição adiar" finds "eleições ... adiadas".
    assert found("original.pt.title", "eleição adiar") == ["As eleições foram adiadas"]
    assert found("original.es.title", "elección aplazar") == ["Las elecciones fueron aplazadas"]
    assert found("title", "eleição adiar") == []  # the language-neutral field cannot
    assert found("original.pt.title", "foram") == []  # a Portuguese stop word
    source = es.search(index=alias, query={"ids": {"values": [doc(1)["id"]]}})["hits"]["hits"][0]
    assert "original" not in source["_source"]  # derived from title/body, not stored twice


def old_index(
    es: Elasticsearch, alias: str, documents: list[dict[str, Any]], period: str | None
) -> str:
    """An index of an earlier mapping version, with its aliases, as an old release made it.

    ``period`` None: the single index and single write alias of versions before 4.
    """
    name = f"{alias}-v1" if period is None else f"{alias}-v1-{period}"
    writer = f"{alias}-write" if period is None else write_alias(alias, period)
    es.indices.create(
        index=name,
        mappings={"dynamic": "false"},
        aliases={alias: {}, writer: {"is_write_index": True}},
    )
    bulk(es, ({"_index": name, "_id": d["id"], "_source": d} for d in documents), refresh=True)
    return name


def test_an_outdated_index_is_refused_with_what_to_do(
    isolated: Settings, es: Elasticsearch
) -> None:
    old = old_index(es, isolated.elasticsearch.index_alias, [doc(1)], None)
    with pytest.raises(IndexOutdated, match=rf"points to {old}.*newsflow index migrate"):
        ensure_index(es, isolated.elasticsearch)


def test_migration_under_a_running_writer_loses_nothing(
    isolated: Settings, es: Elasticsearch
) -> None:
    alias = isolated.elasticsearch.index_alias
    old = old_index(es, alias, [doc(n) for n in range(3000)], "2026.11")
    stop = threading.Event()
    written: list[int] = []

    def writer() -> None:  # the pipeline keeps writing through the month's write alias
        number = 3000
        writer_es = client(isolated.elasticsearch)
        while not stop.is_set():
            writer_es.index(
                index=write_alias(alias, "2026.11"), id=doc(number)["id"], document=doc(number)
            )
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
    current = concrete_index_name(alias, "2026.11")
    assert state.up_to_date and state.read_indices == [current]
    assert state.write_aliases == {write_alias(alias, "2026.11"): current}
    assert written, "the writer should have run during the migration"
    assert es.count(index=alias)["count"] == 3000 + len(written)
    assert not es.indices.exists_alias(name=alias, index=old)
    assert migrate(es, isolated.elasticsearch) == status(es, isolated.elasticsearch)  # no-op


def test_migration_keeps_each_article_in_the_month_it_lives_in(
    isolated: Settings, es: Elasticsearch
) -> None:
    """A page first stored in November and re-fetched in December lives in November; the copy
    must not move it, or the pipeline's writes during the copy would make a second document."""
    alias = isolated.elasticsearch.index_alias
    old_index(es, alias, [doc(1, fetched_at="2026-12-07T10:00:00Z")], "2026.11")
    state = migrate(es, isolated.elasticsearch)
    assert state.read_indices == [concrete_index_name(alias, "2026.11")]
    assert es.count(index=alias)["count"] == 1


def test_migration_from_the_single_index_spreads_documents_by_month(
    isolated: Settings, es: Elasticsearch
) -> None:
    """Versions before 4 had one index; migrate routes each document to its month's index and
    derives the fields the old documents lack (the original text's language analysis)."""
    alias = isolated.elasticsearch.index_alias
    documents = [
        doc(1, published_at="2025-03-02T10:00:00Z"),
        doc(2, title="As eleições foram adiadas", language="pt"),
    ]
    old_index(es, alias, documents, None)
    state = migrate(es, isolated.elasticsearch)
    assert state.up_to_date
    assert state.read_indices == [
        concrete_index_name(alias, "2025.03"),
        concrete_index_name(alias, "2026.11"),
    ]
    assert set(state.write_aliases) == {
        write_alias(alias, "2025.03"),
        write_alias(alias, "2026.11"),
    }
    hits = es.search(index=alias, query={"match": {"original.pt.title": "eleição"}})["hits"]
    assert [hit["_id"] for hit in hits["hits"]] == [doc(2)["id"]]


def test_the_cli_reports_status_and_migrates(isolated: Settings, es: Elasticsearch) -> None:
    alias = isolated.elasticsearch.index_alias
    old_index(es, alias, [doc(n) for n in range(5)], None)

    def newsflow(*args: str) -> subprocess.CompletedProcess[str]:
        return newsflow_cli(isolated, "index", *args)

    before = newsflow("status")
    assert before.returncode == 1 and "OUTDATED" in before.stdout
    assert "newsflow index migrate" in before.stderr
    after = newsflow("migrate")
    assert after.returncode == 0, after.stderr
    assert "up to date" in after.stdout and "documents    5" in after.stdout
    assert (
        f"{write_alias(alias, '2026.11')} -> {concrete_index_name(alias, '2026.11')}"
        in after.stdout
    )
