"""End to end on the real stack: files -> Kafka -> Beam pipeline -> Elasticsearch."""

from __future__ import annotations

import json
import subprocess
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from connectors.ingest import ingest_files
from connectors.rss import parse_feed
from newsflow.article import Article
from newsflow.index import client
from newsflow.search import search
from newsflow.settings import Settings
from pipeline.run import run
from tests.conftest import SAMPLES, SEED_ARTICLE, newsflow_cli, shared_path

pytestmark = pytest.mark.integration

IDLE_SECONDS = 2.0


def produce_raw(settings: Settings, *messages: tuple[bytes, bytes]) -> None:
    """One sample article through the connector (it creates the topics), then raw messages."""
    ingest_files([SAMPLES / "lisbon-tram.txt"], settings.kafka)
    producer = KafkaProducer(bootstrap_servers=settings.kafka.bootstrap_servers, acks="all")
    for key, value in messages:
        producer.send(settings.kafka.raw_topic, key=key, value=value).get(30)
    producer.close()


def documents(settings: Settings) -> list[dict]:
    es = client(settings.elasticsearch)
    try:
        es.indices.refresh(index=settings.elasticsearch.index_alias)
        response = es.search(index=settings.elasticsearch.index_alias, size=100)
        return [hit["_source"] for hit in response["hits"]["hits"]]
    finally:
        es.close()


def dead_letters(settings: Settings) -> list[dict]:
    consumer = KafkaConsumer(
        settings.kafka.dlq_topic,
        bootstrap_servers=settings.kafka.bootstrap_servers,
        auto_offset_reset="earliest",
        consumer_timeout_ms=3000,
    )
    try:
        return [json.loads(message.value) for message in consumer]
    finally:
        consumer.close()


def committed_and_end(settings: Settings) -> Iterator[tuple[int | None, int]]:
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=settings.kafka.consumer_group,
        enable_auto_commit=False,
    )
    try:
        partitions = [
            TopicPartition(settings.kafka.raw_topic, p)
            for p in consumer.partitions_for_topic(settings.kafka.raw_topic)
        ]
        ends = consumer.end_offsets(partitions)
        for partition in partitions:
            yield consumer.committed(partition), ends[partition]
    finally:
        consumer.close()


def test_seed_article_is_searchable_with_its_entities(isolated: Settings) -> None:
    report = ingest_files([shared_path(SEED_ARTICLE)], isolated.kafka)
    assert (report.published, report.rejected) == (1, [])

    run(isolated, stop_when_idle=IDLE_SECONDS)

    hits = search(isolated.elasticsearch, "Zelensky")
    assert len(hits) == 1
    assert hits[0]["source"] == "DN"
    [document] = documents(isolated)
    assert document["language"] == "en"
    assert {"Volodymyr Zelensky", "Andrzej Duda", "Jens Stoltenberg"} <= set(
        document["entities"]["PERSON"]
    )
    assert {"Vilnius", "Lithuania"} <= set(document["entities"]["GPE"])
    assert "Source: DN" not in document["body"]


def test_a_restarted_pipeline_completes_names_from_what_the_index_holds(
    isolated: Settings,
) -> None:
    """The seed writes "Recep Tayyip" and "Erdogan"; earlier, already indexed stories (a Folha
    story in Portuguese and two BBC ones) spelled the full name. The second run is a new worker: it
    knows the name only from the index."""
    corpus = shared_path("corpus/articles")
    earlier = [
        corpus / "fake-br-corpus" / "full_texts" / "true" / "127.txt",
        corpus / "bbc-news-2005" / "bbc" / "politics" / "161.txt",
        corpus / "bbc-news-2005" / "bbc" / "politics" / "064.txt",
    ]
    assert ingest_files(earlier, isolated.kafka).published == 3
    run(isolated, stop_when_idle=IDLE_SECONDS)
    assert ingest_files([shared_path(SEED_ARTICLE)], isolated.kafka).published == 1
    run(isolated, stop_when_idle=IDLE_SECONDS)

    seed = next(d for d in documents(isolated) if d["source"] == "DN")
    people = seed["entities"]["PERSON"]
    assert "Recep Tayyip Erdogan" in people
    assert not {"Recep Tayyip", "Erdogan"} & set(people)
    assert {"Volodymyr Zelensky", "Sergei Lavrov", "Hakan Fidan"} <= set(people)


def test_a_french_model_indexes_the_entities_of_the_original_apart(
    isolated: Settings, tmp_path: Path
) -> None:
    feed = shared_path(
        "corpus/feeds/arminreiter-FeedReader/FeedReader.Tests/Feeds/Rss20LeMonde.xml"
    )
    item = parse_feed(feed.read_bytes(), url="https://www.lemonde.fr/rss/une.xml").items[0]
    article = tmp_path / "le-monde.txt"
    article.write_text(f"{item.title}\n\n{item.body}\n", encoding="utf-8")
    isolated.nlp.source_models = {"fr": "fr_core_news_sm"}
    assert ingest_files([article, shared_path(SEED_ARTICLE)], isolated.kafka).published == 2

    run(isolated, stop_when_idle=IDLE_SECONDS)

    by_language = {d["language"]: d for d in documents(isolated)}
    french = by_language["fr"]
    assert french["translation"]["status"] == "translated"
    assert {"Poutine", "Trump"} <= set(french["original_entities"]["PERSON"])
    # The English text reads "Poutine put in entredicho, Trump minimises": spaCy's English
    # model misses Poutine and takes Trump for an organisation. Only the original has both.
    assert "PERSON" not in french["entities"]
    assert "original_entities" not in by_language["en"]


def test_ingesting_the_same_file_twice_leaves_one_document(isolated: Settings) -> None:
    for _ in range(2):
        assert ingest_files([shared_path(SEED_ARTICLE)], isolated.kafka).published == 1

    run(isolated, stop_when_idle=IDLE_SECONDS)

    assert len(documents(isolated)) == 1
    assert all((committed or 0) == end for committed, end in committed_and_end(isolated))


def test_bad_records_are_dead_lettered_and_the_rest_indexed(isolated: Settings) -> None:
    good = Article.create(
        url="https://news.example.com/good",
        source="Example",
        title="A perfectly good article about the Lisbon tram",
        body="The new trams entered service on Monday.",
        fetched_at=datetime.now(UTC),
    )
    produce_raw(
        isolated,
        (b"junk", b"\xff\xfe not json {"),
        (b"wrong-key", good.to_json()),
        (good.id.encode(), good.to_json()),
    )

    run(isolated, stop_when_idle=IDLE_SECONDS)

    titles = sorted(d["title"] for d in documents(isolated))
    assert len(titles) == 2 and good.title in titles
    letters = dead_letters(isolated)
    assert sorted(letter["stage"] for letter in letters) == ["decode", "decode"]
    reasons = " | ".join(letter["error"] for letter in letters)
    assert "Invalid JSON" in reasons or "json" in reasons.lower()
    assert "is not the article id" in reasons
    assert all(letter["source"]["topic"] == isolated.kafka.raw_topic for letter in letters)
    assert {letter["payload_encoding"] for letter in letters} == {"base64", "utf-8"}
    assert all((committed or 0) == end for committed, end in committed_and_end(isolated))


def test_a_restart_resumes_after_the_committed_offsets(isolated: Settings) -> None:
    ingest_files([SAMPLES / "lisbon-tram.txt"], isolated.kafka)
    run(isolated, stop_when_idle=IDLE_SECONDS)
    [first] = documents(isolated)

    ingest_files([SAMPLES / "madrid-metro.txt"], isolated.kafka)
    run(isolated, stop_when_idle=IDLE_SECONDS)

    by_title = {d["title"]: d for d in documents(isolated)}
    assert len(by_title) == 2
    # The first article was not read (and re-indexed) again by the second run.
    assert by_title[first["title"]]["indexed_at"] == first["indexed_at"]
    languages = sorted(d["language"] for d in by_title.values())
    assert languages == ["es", "pt"]


def test_english_spanish_and_portuguese_come_out_in_english_with_entities(
    isolated: Settings,
) -> None:
    report = ingest_files([SAMPLES / "articles.jsonl"], isolated.kafka)
    assert report.published == 6

    run(isolated, stop_when_idle=IDLE_SECONDS)

    docs = documents(isolated)
    assert sorted(d["language"] for d in docs) == ["en", "en", "es", "es", "pt", "pt"]
    for doc in docs:
        translation = doc["translation"]
        if doc["language"] == "en":
            assert translation["status"] == "not_needed"
            assert doc["title_en"] == doc["title"]
        else:
            assert translation["status"] == "translated", translation
            assert translation["engine"] == "apertium"
            assert translation["path"][0] == doc["language"] and translation["path"][-1] == "en"
            assert "apertium-eng-spa" in translation["engine_version"]
            assert doc["title_en"] and doc["title_en"] != doc["title"]
            assert doc["body_en"] and doc["body_en"] != doc["body"]
        english = f"{doc['title_en']} {doc['body_en']}"
        found = [name for names in doc["entities"].values() for name in names]
        assert found, f"no entities in {doc['title_en']!r}"
        assert all(name in english for name in found)
    portuguese_path = {tuple(d["translation"]["path"]) for d in docs if d["language"] == "pt"}
    assert portuguese_path == {("pt", "es", "en")}


def test_a_replay_after_a_restart_reuses_indexed_translations(isolated: Settings) -> None:
    spanish = SAMPLES / "madrid-metro.txt"
    ingest_files([spanish], isolated.kafka)
    run(isolated, stop_when_idle=IDLE_SECONDS)
    [first] = documents(isolated)
    assert first["translation"]["status"] == "translated"
    assert not first["translation"]["cached"]

    ingest_files([spanish], isolated.kafka)  # the same article again, read by a new pipeline
    run(isolated, stop_when_idle=IDLE_SECONDS)

    [again] = documents(isolated)
    assert again["translation"]["cached"] is True
    assert again["body_en"] == first["body_en"]
    assert again["translation"]["content_key"] == first["translation"]["content_key"]


def test_dead_letters_are_replayed_once_after_a_fix(isolated: Settings) -> None:
    good = Article.create(
        url="https://news.example.com/replayed",
        source="Example",
        title="An article that was keyed wrongly by its producer",
        body="The pipeline dead-lettered it; the payload itself is fine.",
        fetched_at=datetime.now(UTC),
    )
    produce_raw(isolated, (b"wrong-key", good.to_json()), (b"junk", b"{ not json"))
    run(isolated, stop_when_idle=IDLE_SECONDS)
    assert len(documents(isolated)) == 1

    def dlq(*args: str) -> subprocess.CompletedProcess[str]:
        return newsflow_cli(isolated, "dlq", *args)

    listed = dlq("list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert sorted(row["stage"] for row in json.loads(listed.stdout)) == ["decode", "decode"]
    first = dlq("replay")
    assert first.returncode == 0 and "1 resent" in first.stdout and "1 skipped" in first.stdout
    assert "still not a valid article" in first.stderr
    assert "0 resent" in dlq("replay").stdout  # each record is replayed once

    run(isolated, stop_when_idle=IDLE_SECONDS)
    assert good.title in {d["title"] for d in documents(isolated)}


def test_restart_after_hours_drains_commits_and_exits_0(
    isolated: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A streaming run (no --stop-when-idle) recycles itself: the supervisor restarts it."""
    ingest_files([SAMPLES / "lisbon-tram.txt"], isolated.kafka)
    monkeypatch.setenv("NEWSFLOW_PIPELINE__RESTART_AFTER_HOURS", str(20 / 3600))  # 20 s
    result = newsflow_cli(isolated, "pipeline", "run")
    assert result.returncode == 0, result.stderr
    assert "pipeline.restart_after_hours" in result.stderr
    assert len(documents(isolated)) == 1
    assert all((committed or 0) == end for committed, end in committed_and_end(isolated))
