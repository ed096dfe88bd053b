"""The same pipeline on Apache Flink: Kafka -> Beam's portable FlinkRunner -> Elasticsearch.

Runs ``newsflow pipeline run --runner FlinkRunner`` as a user would: Maven builds the job server
(first run only), Flink runs embedded in it and the SDK harness in the command's own process
(LOOPBACK). Small bundles make each partition take several polls, so the Kafka source defers
and resumes its restriction many times on Flink before the idle stop ends the job.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from connectors.ingest import ingest_files
from newsflow.index import client
from newsflow.settings import Settings
from tests.conftest import SAMPLES, indexed_documents, newsflow_cli
from tests.pipeline.test_dedupe import bbc
from tests.pipeline.test_run_integration import committed_and_end

pytestmark = pytest.mark.integration

RECORDS_PER_POLL = 2  # several polls per partition: the source checkpoints and resumes on Flink
STORY, COPY = "https://daily.example/business/1", "https://copycat.example/business/1"


def story_file(path: Path, url: str, source: str, extra: str = "") -> Path:
    """One BBC business story as a JSON line; ``extra`` makes a near-copy of it."""
    title, _, body = bbc("business/001.txt").strip().partition("\n")
    article = {"url": url, "source": source, "title": title, "body": body + extra}
    path.write_text(json.dumps(article) + "\n", encoding="utf-8")
    return path


def publish(settings: Settings, *paths: Path) -> int:
    report = ingest_files(list(paths), settings.kafka)
    assert report.rejected == []
    return report.published


def run_on_flink(settings: Settings) -> None:
    result = newsflow_cli(
        settings,
        "pipeline",
        "run",
        "--runner",
        "FlinkRunner",
        "--flink_master=[local]",
        "--environment_type=LOOPBACK",
        "--stop-when-idle",
        "2",
    )
    assert result.returncode == 0, result.stderr[-3000:]
    assert "pipeline finished" in result.stderr
    assert all((committed or 0) == end for committed, end in committed_and_end(settings))


def index_versions(settings: Settings) -> list[int]:
    """Elasticsearch's version of every document: 1 means it was written exactly once."""
    es = client(settings.elasticsearch)
    try:
        hits = es.search(index=settings.elasticsearch.index_alias, size=1000, version=True)
        return [hit["_version"] for hit in hits["hits"]["hits"]]
    finally:
        es.close()


def test_the_pipeline_runs_on_flink_end_to_end(
    isolated: Settings, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSFLOW_KAFKA__MAX_RECORDS_PER_BUNDLE", str(RECORDS_PER_POLL))
    first = publish(isolated, SAMPLES, story_file(tmp_path / "story.jsonl", STORY, "Daily"))
    run_on_flink(isolated)
    # The copy comes after a restart: the second job resumes from the committed offsets, and
    # the first job's dedupe state, kept in Elasticsearch, is what finds the story again.
    copy_file = story_file(tmp_path / "copy.jsonl", COPY, "Copycat", "\nShare this article.")
    published = first + publish(isolated, copy_file)
    run_on_flink(isolated)

    docs = indexed_documents(isolated, key="id")
    assert len(docs) == published == 10
    assert index_versions(isolated) == [1] * published  # each indexed once, no replayed bundle
    # Enrichment: language, translation of the Spanish and Portuguese samples, entities.
    assert {d["language"] for d in docs.values()} == {"en", "es", "pt"}
    translated = [d for d in docs.values() if d["language"] != "en"]
    assert translated and all(d["translation"]["status"] == "translated" for d in translated)
    assert all(d["entities"] for d in docs.values())
    # Dedupe: two copies of one story are one cluster; everything else is its own story.
    by_url = {d.get("url"): d for d in docs.values()}
    story, copy = by_url[STORY], by_url[COPY]
    assert copy["dedupe"]["cluster_id"] == story["dedupe"]["cluster_id"] == story["id"]
    assert copy["dedupe"]["duplicate_of"] == story["id"]
    others = [d for d in docs.values() if d["id"] not in (story["id"], copy["id"])]
    assert all(d["dedupe"]["cluster_id"] == d["id"] for d in others)
