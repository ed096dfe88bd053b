"""What the names stage reads from the real index: the most cited names, each article's people."""

from __future__ import annotations

import pytest

from newsflow.index import client, write_documents
from newsflow.settings import Settings
from pipeline.names import IndexedPeople

pytestmark = pytest.mark.integration

ERDOGAN = "Recep Tayyip Erdogan"


def document(
    doc_id: str, *people: str, fetched_at: str = "2026-11-27T06:00:00Z"
) -> dict[str, object]:
    return {
        "id": doc_id,
        "schema_version": 1,
        "source": "test",
        "language": "en",
        "title": doc_id,
        "body": "text",
        "fetched_at": fetched_at,
        "indexed_at": fetched_at,
        "entities": {"PERSON": list(people)},
    }


def test_the_index_reports_cited_full_names_and_each_articles_people(isolated: Settings) -> None:
    es = client(isolated.elasticsearch)
    try:
        write_documents(
            es,
            isolated.elasticsearch,
            [
                document("a", ERDOGAN, "Erdogan"),
                document("b", ERDOGAN, "Hakan Fidan"),
                # another month: the alias spans two indices, which a GET by id cannot read
                document("c", "Hakan Fidan", "Lavrov", fetched_at="2026-12-01T06:00:00Z"),
                document("d", ERDOGAN),
            ],
        )
    finally:
        es.close()
    index = IndexedPeople(isolated.elasticsearch)

    # single words are not full names: "Erdogan" and "Lavrov" are not reported
    assert index.most_cited(10) == {ERDOGAN: 3, "Hakan Fidan": 2}
    assert index.most_cited(1) == {ERDOGAN: 3}
    assert index.people_of(["a", "c", "not-indexed"]) == {
        "a": {ERDOGAN, "Erdogan"},
        "c": {"Hakan Fidan", "Lavrov"},
    }
    assert index.people_of([]) == {}


def test_without_an_index_the_stage_starts_from_nothing(isolated: Settings) -> None:
    index = IndexedPeople(isolated.elasticsearch)  # the alias does not exist yet
    assert index.most_cited(10) == {}
    assert index.people_of(["a"]) == {}
