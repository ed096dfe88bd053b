"""Dedupe through the real pipeline: Kafka -> Beam -> Elasticsearch, with restarts and replays."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from fastapi.testclient import TestClient

from connectors.ingest import ingest_files
from newsflow.api import create_app
from newsflow.index import client
from newsflow.search import SearchRequest, search
from newsflow.settings import Settings
from pipeline.dedupe_store import dedupe_index
from pipeline.run import run
from tests.conftest import indexed_documents
from tests.pipeline.test_dedupe import bbc, ntrex_documents

pytestmark = pytest.mark.integration

IDLE_SECONDS = 2.0
NTREX_DOC = 2  # a document whose Spanish version Apertium turns into usable English


def jsonl(path: Path, *articles: dict[str, str]) -> Path:
    path.write_text("".join(json.dumps(a) + "\n" for a in articles), encoding="utf-8")
    return path


def article(url: str, source: str, text: str, language: str = "en") -> dict[str, str]:
    title, _, body = text.strip().partition("\n")
    return {
        "url": url,
        "source": source,
        "title": title,
        "body": body,
        "language_hint": language,
        "published_at": "2026-11-20T08:00:00Z",
    }


def test_copies_translations_restarts_and_replays(isolated: Settings, tmp_path: Path) -> None:
    english = ntrex_documents("src.eng")[NTREX_DOC]
    spanish = ntrex_documents("ref.spa")[NTREX_DOC]
    business, other_business = bbc("business/001.txt"), bbc("business/002.txt")
    ingest_files(
        [
            jsonl(
                tmp_path / "first.jsonl",
                article("https://wire.example/story", "Wire", english),
                article("https://daily.example/business/1", "Daily", business),
                article(
                    "https://copycat.example/b?utm_source=x",
                    "Copycat",
                    business + "\nShare this article with your friends.",
                ),
                article("https://daily.example/business/2", "Daily", other_business),
            )
        ],
        isolated.kafka,
    )
    run(isolated, stop_when_idle=IDLE_SECONDS)
    # A restart between two versions of the story: the Spanish one arrives after it.
    ingest_files(
        [
            jsonl(
                tmp_path / "later.jsonl",
                article("https://diario.example/n", "Diario", spanish, "es"),
            )
        ],
        isolated.kafka,
    )
    run(isolated, stop_when_idle=IDLE_SECONDS)

    docs = indexed_documents(isolated)
    assert len(docs) == 5
    wire, diario = docs["https://wire.example/story"], docs["https://diario.example/n"]
    assert diario["translation"]["status"] == "translated"
    assert diario["dedupe"]["cluster_id"] == wire["id"]  # one story across languages
    assert "duplicate_of" not in diario["dedupe"]  # a translation is not a copy
    daily, copycat = (
        docs["https://daily.example/business/1"],
        docs["https://copycat.example/b?utm_source=x"],
    )
    assert copycat["dedupe"]["cluster_id"] == daily["id"]
    assert copycat["dedupe"]["duplicate_of"] == daily["id"]
    unrelated = docs["https://daily.example/business/2"]
    assert unrelated["dedupe"]["cluster_id"] == unrelated["id"]  # same topic, its own story

    # A full replay from the start of the topic changes no count and no decision.
    replay = isolated.model_copy(
        update={
            "kafka": isolated.kafka.model_copy(
                update={"consumer_group": isolated.kafka.consumer_group + "-replay"}
            )
        }
    )
    run(replay, stop_when_idle=IDLE_SECONDS)
    again = indexed_documents(isolated)
    assert {u: d["dedupe"] for u, d in again.items()} == {u: d["dedupe"] for u, d in docs.items()}
    es = client(isolated.elasticsearch)
    try:
        index = dedupe_index(isolated.elasticsearch.index_alias)
        es.indices.refresh(index=index)
        claims = {"exists": {"field": "first_article"}}
        assert es.count(index=index, query={"bool": {"must_not": claims}})["count"] == 5
        assert es.count(index=index, query=claims)["count"] == 5  # five different contents
        clusters = es.search(
            index=isolated.elasticsearch.index_alias,
            size=0,
            aggs={"clusters": {"terms": {"field": "dedupe.cluster_id"}}},
        )["aggregations"]["clusters"]["buckets"]
        assert sorted(b["doc_count"] for b in clusters) == [1, 2, 2]  # cluster sizes, queryable
    finally:
        es.close()

    # Analysts see one hit per story with "N similar", and every version of one story.
    stories = search(isolated.elasticsearch, SearchRequest(collapse=True, sort="date"))
    assert (stories["total"], stories["stories"]) == (5, 3)
    similar = {hit["cluster_id"]: hit["similar"] for hit in stories["hits"]}
    assert similar == {wire["id"]: 1, daily["id"]: 1, unrelated["id"]: 0}
    with TestClient(create_app(isolated)) as api:
        story = api.get(f"/clusters/{wire['id']}").json()
        assert {hit["url"] for hit in story["hits"]} == {
            "https://wire.example/story",
            "https://diario.example/n",
        }
        assert api.get("/clusters/no-such-story").status_code == 404
