"""Fault injection on the real stack: the pipeline runs as a real ``newsflow pipeline run`` process.

THE ORACLE, checked after every scenario: for every article id produced to the raw topic there
is exactly one document in Elasticsearch, or exactly one dead-letter record explaining it (stage
and error) -- never both, never neither, never a stray. Around it, each scenario checks what the
design promises at the moment of the fault: an offset is committed only for records that are in
Elasticsearch or in the dead-letter topic, so a crash, a drain or an outage loses nothing, and
``_id`` = article id turns every replay into an overwrite.

Scenario numbers are those of issue #7 (see docs/RELIABILITY.md). Each test prints a ``FAULTS``
line with what it measured (``pytest -rP`` shows them).
"""

from __future__ import annotations

import contextlib
import copy
import io
import json
import os
import signal
import subprocess
import time
import urllib.request
from collections import Counter
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import ApiError, TransportError
from elasticsearch.helpers import scan
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata
from prometheus_client.parser import text_string_to_metric_families

from bench.pipeline_throughput import process_tree
from connectors.files import read_articles
from connectors.ingest import ingest_files
from connectors.publish import ArticlePublisher
from newsflow.article import Article
from newsflow.index import (
    client,
    concrete_index_name,
    index_definition,
    period_of,
    write_alias,
)
from newsflow.kafka_topics import ensure_topics
from newsflow.settings import Settings
from newsflow.stack import LocalStack
from tests.conftest import free_ports, shared_path
from tests.es_proxy import elasticsearch_proxy

pytestmark = pytest.mark.integration

CORPUS = "corpus/articles/bbc-news-2005/bbc"
ARTICLES = 200
#: Small bundles (one poll = one bundle, meant to be one commit) so that a fault lands between
#: bundles rather than after the last one.
RECORDS_PER_BUNDLE = 20
IDLE_SECONDS = "3"
#: Fields a replay may legitimately change; everything else must come back identical.
REPLAY_VOLATILE = ("indexed_at", "kafka")


# -- producing and reading back ------------------------------------------------------------------


@dataclass(frozen=True)
class Produced:
    partition: int
    offset: int
    article_id: str


def corpus_files(count: int) -> list[Path]:
    """``count`` BBC News 2005 articles spread over the five sections (deterministic)."""
    files = sorted(shared_path(CORPUS).glob("*/*.txt"))
    assert len(files) >= count, f"{CORPUS} of the shared corpus has {len(files)} articles"
    return files[:: len(files) // count][:count]


def ingest(settings: Settings, count: int = ARTICLES) -> list[Produced]:
    """Publish ``count`` real articles; returns the records as they sit in the raw topic."""
    report = ingest_files(corpus_files(count), settings.kafka, out=io.StringIO())
    assert (report.published, report.rejected) == (count, [])
    produced = read_raw(settings)
    assert len(produced) == count
    # The oracle is about distinct ids; this selection of the corpus has no duplicate story.
    assert len({p.article_id for p in produced}) == count
    return produced


def _read_all(settings: Settings, topic: str) -> list[Any]:
    """Every record of ``topic``, read until each partition's end offset (no idle timeout)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers, enable_auto_commit=False
    )
    try:
        partitions = [
            TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic) or ())
        ]
        consumer.assign(partitions)
        consumer.seek_to_beginning(*partitions)
        ends = consumer.end_offsets(partitions)
        records: list[Any] = []
        deadline = time.monotonic() + 60
        while any(consumer.position(tp) < ends[tp] for tp in partitions):
            assert time.monotonic() < deadline, f"could not read {topic} to its end"
            for batch in consumer.poll(timeout_ms=500).values():
                records.extend(batch)
        return records
    finally:
        consumer.close()


def read_raw(settings: Settings) -> list[Produced]:
    return [
        Produced(r.partition, r.offset, r.key.decode())
        for r in _read_all(settings, settings.kafka.raw_topic)
    ]


def dead_letters(settings: Settings) -> list[dict[str, Any]]:
    return [json.loads(r.value) for r in _read_all(settings, settings.kafka.dlq_topic)]


def documents(settings: Settings) -> list[tuple[str, dict[str, Any]]]:
    """(``_id``, ``_source``) of every document behind the read alias."""
    es = client(settings.elasticsearch)
    try:
        alias = settings.elasticsearch.index_alias
        es.indices.refresh(index=alias)
        return [
            (hit["_id"], hit["_source"])
            for hit in scan(es, index=alias, query={"query": {"match_all": {}}})
        ]
    finally:
        es.close()


def indexed_count(settings: Settings) -> int:
    """Documents behind the alias now (0 while the index does not exist yet)."""
    es = client(settings.elasticsearch)
    try:
        alias = settings.elasticsearch.index_alias
        es.indices.refresh(index=alias)
        return int(es.count(index=alias)["count"])
    except (ApiError, TransportError):
        return 0
    finally:
        es.close()


def committed_offsets(settings: Settings) -> dict[int, int]:
    """The consumer group's committed offset per partition (0 where nothing is committed)."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=settings.kafka.consumer_group,
        enable_auto_commit=False,
    )
    try:
        topic = settings.kafka.raw_topic
        return {
            p: consumer.committed(TopicPartition(topic, p)) or 0
            for p in sorted(consumer.partitions_for_topic(topic) or ())
        }
    finally:
        consumer.close()


def end_offsets(produced: list[Produced]) -> dict[int, int]:
    ends: dict[int, int] = {}
    for p in produced:
        ends[p.partition] = max(ends.get(p.partition, 0), p.offset + 1)
    return ends


def assert_fully_committed(settings: Settings, produced: list[Produced]) -> None:
    """The group's offset is at the end of every partition (0 for an empty one)."""
    committed = committed_offsets(settings)
    ends = end_offsets(produced)
    assert committed == {p: ends.get(p, 0) for p in committed}, (committed, ends)


def reset_to_earliest(settings: Settings) -> None:
    """Commit offset 0 for every partition: the next run replays the whole topic."""
    consumer = KafkaConsumer(
        bootstrap_servers=settings.kafka.bootstrap_servers,
        group_id=settings.kafka.consumer_group,
        enable_auto_commit=False,
    )
    try:
        consumer.commit(
            {
                TopicPartition(settings.kafka.raw_topic, p): OffsetAndMetadata(0, "", -1)
                for p in committed_offsets(settings)
            }
        )
    finally:
        consumer.close()
    assert set(committed_offsets(settings).values()) == {0}


# -- the oracle ----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    documents: dict[str, dict[str, Any]]
    dead_letters: dict[str, dict[str, Any]]


def assert_oracle(settings: Settings, produced: list[Produced]) -> Outcome:
    """Every produced id: exactly one document, or exactly one dead letter saying why."""
    ids = {p.article_id for p in produced}
    key_at = {(p.partition, p.offset): p.article_id for p in produced}
    hits = documents(settings)
    letters = dead_letters(settings)

    def explained_id(letter: dict[str, Any]) -> str:
        """The article a dead letter is about (by its source record when undecodable)."""
        source = letter["source"]
        return str(letter["article_id"] or key_at.get((source["partition"], source["offset"])))

    doc_counts = Counter(doc_id for doc_id, _ in hits)
    letter_counts = Counter(explained_id(letter) for letter in letters)
    duplicated = {i: n for i, n in doc_counts.items() if n > 1}
    duplicated_letters = {i: n for i, n in letter_counts.items() if n > 1}
    both = set(doc_counts) & set(letter_counts)
    missing = ids - set(doc_counts) - set(letter_counts)
    strays = (set(doc_counts) | set(letter_counts)) - ids
    assert not missing, (
        f"{len(missing)} of {len(ids)} produced ids neither indexed nor dead-lettered"
    )
    assert not duplicated, f"ids indexed more than once: {duplicated}"
    assert not duplicated_letters, f"ids dead-lettered more than once: {duplicated_letters}"
    assert not both, f"ids both indexed and dead-lettered: {sorted(both)[:5]}"
    assert not strays, f"documents or dead letters for ids never produced: {sorted(strays)[:5]}"
    for letter in letters:
        assert letter["stage"] and letter["error"], letter
    es = client(settings.elasticsearch)
    try:  # the count analysts see agrees with the scan
        assert es.count(index=settings.elasticsearch.index_alias)["count"] == len(hits)
    finally:
        es.close()
    return Outcome(
        documents=dict(hits),
        dead_letters={explained_id(letter): letter for letter in letters},
    )


def stable(document: dict[str, Any]) -> dict[str, Any]:
    """A document without what a replay may legitimately change."""
    document = {k: v for k, v in copy.deepcopy(document).items() if k not in REPLAY_VOLATILE}
    document.get("translation", {}).pop("cached", None)
    return document


def assert_replay_changed_nothing(
    settings: Settings, produced: list[Produced], before: dict[str, dict[str, Any]]
) -> dict[str, dict[str, Any]]:
    """After a replay: the oracle, the same documents as ``before`` but for what a replay may
    change, every offset committed. Returns the documents."""
    after = assert_oracle(settings, produced).documents
    assert after.keys() == before.keys()
    changed = [i for i in after if stable(after[i]) != stable(before[i])]
    assert not changed, f"{len(changed)} documents changed on replay, e.g. {changed[0]}"
    assert_fully_committed(settings, produced)
    return after


def assert_all_indexed_and_committed(settings: Settings, produced: list[Produced]) -> Outcome:
    """The oracle, with every article indexed (none dead-lettered) and every offset committed."""
    outcome = assert_oracle(settings, produced)
    assert len(outcome.documents) == ARTICLES and not outcome.dead_letters
    assert_fully_committed(settings, produced)
    return outcome


def assert_commits_cover_only_handled(
    committed: dict[int, int], produced: list[Produced], handled: set[str]
) -> None:
    """An offset committed for a partition means every record before it is handled."""
    unhandled = [
        p
        for p in produced
        if p.offset < committed.get(p.partition, 0) and p.article_id not in handled
    ]
    assert not unhandled, f"committed past {len(unhandled)} unhandled record(s): {unhandled[:5]}"


# -- the pipeline as a process -------------------------------------------------------------------


@dataclass
class PipelineProcess:
    process: subprocess.Popen[bytes]
    log: Path
    started: float

    def alive(self) -> bool:
        return self.process.poll() is None

    def output(self, lines: int = 40) -> str:
        text = self.log.read_text(errors="replace").splitlines()
        return "\n".join(text[-lines:])

    def wait(self, timeout: float) -> int:
        try:
            return self.process.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.kill()
            pytest.fail(f"pipeline still running after {timeout:.0f}s:\n{self.output()}")

    def kill(self) -> None:
        """SIGKILL the pipeline and anything it started (its own process group)."""
        if self.process.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.process.pid, signal.SIGKILL)
        self.process.wait(timeout=30)


@pytest.fixture
def start_pipeline(tmp_path: Path) -> Iterator[Callable[..., PipelineProcess]]:
    """Start ``newsflow pipeline run`` on a test's topics and index; killed if still running."""
    started: list[PipelineProcess] = []

    def start(settings: Settings, *args: str, **env_overrides: str) -> PipelineProcess:
        env = {
            **os.environ,
            "NEWSFLOW_KAFKA__RAW_TOPIC": settings.kafka.raw_topic,
            "NEWSFLOW_KAFKA__DLQ_TOPIC": settings.kafka.dlq_topic,
            "NEWSFLOW_KAFKA__CONSUMER_GROUP": settings.kafka.consumer_group,
            "NEWSFLOW_ELASTICSEARCH__INDEX_ALIAS": settings.elasticsearch.index_alias,
            "NEWSFLOW_KAFKA__POLL_TIMEOUT_SECONDS": "0.5",
            "NEWSFLOW_KAFKA__MAX_RECORDS_PER_BUNDLE": str(RECORDS_PER_BUNDLE),
            **env_overrides,
        }
        log = tmp_path / f"pipeline-{len(started)}.log"
        with log.open("wb") as out:
            process = subprocess.Popen(
                ["newsflow", "pipeline", "run", *args],
                env=env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # its own group: kill -9 reaches its children too
            )
        started.append(PipelineProcess(process, log, time.monotonic()))
        return started[-1]

    yield start
    for pipeline in started:
        pipeline.kill()


def drain(start: Callable[..., PipelineProcess], settings: Settings, timeout: float = 120) -> float:
    """Run the pipeline until caught up and idle; returns its wall time (idle wait included)."""
    pipeline = start(settings, "--stop-when-idle", IDLE_SECONDS)
    rc = pipeline.wait(timeout)
    assert rc == 0, pipeline.output()
    return time.monotonic() - pipeline.started


def wait_until(
    condition: Callable[[], bool],
    timeout: float,
    what: str,
    pipeline: PipelineProcess | None = None,
    interval: float = 0.25,
) -> float:
    """Poll ``condition``; returns the seconds it took. Fails early if the pipeline died."""
    started = time.monotonic()
    while not condition():
        if pipeline is not None and not pipeline.alive():
            pytest.fail(
                f"pipeline exited ({pipeline.process.returncode}) before {what}:\n"
                f"{pipeline.output()}"
            )
        if time.monotonic() - started > timeout:
            pytest.fail(f"not {what} after {timeout:.0f}s")
        time.sleep(interval)
    return time.monotonic() - started


@contextlib.contextmanager
def elasticsearch_stopped(stack: Settings) -> Iterator[Callable[[], float]]:
    """Stop the local Elasticsearch node; yields ``restore()`` (returns seconds to healthy).

    Whatever happens in the block, Elasticsearch is up again afterwards: other tests need it.
    """
    local = LocalStack(stack.stack)
    local.stop(local.elasticsearch)

    def restore() -> float:
        began = time.monotonic()
        local.up()
        return time.monotonic() - began

    try:
        yield restore
    finally:
        local.up()


def report(scenario: str, **numbers: object) -> None:
    print(f"FAULTS {scenario}: " + ", ".join(f"{k}={v}" for k, v in numbers.items()))


# -- the scenarios ------------------------------------------------------------------------------


def test_5_kill_9_mid_stream_then_restart_loses_and_duplicates_nothing(
    isolated: Settings, start_pipeline: Callable[..., PipelineProcess]
) -> None:
    produced = ingest(isolated)
    first = start_pipeline(isolated)  # no --stop-when-idle: it would run forever
    wait_until(lambda: indexed_count(isolated) >= ARTICLES // 4, 120, "indexing", first)
    first.kill()  # kill -9, no chance to finish anything
    at_kill = {doc_id: doc["indexed_at"] for doc_id, doc in documents(isolated)}
    committed = committed_offsets(isolated)
    assert len(at_kill) < ARTICLES, "the kill came too late: everything was already indexed"
    assert_commits_cover_only_handled(committed, produced, set(at_kill))

    seconds = drain(start_pipeline, isolated)

    outcome = assert_all_indexed_and_committed(isolated, produced)
    reindexed = sum(
        1 for doc_id, at in at_kill.items() if outcome.documents[doc_id]["indexed_at"] != at
    )
    report(
        "5 kill -9",
        produced=len(produced),
        indexed_at_kill=len(at_kill),
        committed_at_kill=sum(committed.values()),
        replayed_records=ARTICLES - sum(committed.values()),
        reindexed_overwrites=reindexed,
        final_documents=len(outcome.documents),
        restart_seconds=f"{seconds:.1f}",
    )


def test_6_group_reset_to_earliest_replays_without_changing_the_index(
    isolated: Settings, start_pipeline: Callable[..., PipelineProcess]
) -> None:
    produced = ingest(isolated)
    first_seconds = drain(start_pipeline, isolated)
    before = assert_oracle(isolated, produced).documents
    assert len(before) == ARTICLES

    reset_to_earliest(isolated)

    replay_seconds = drain(start_pipeline, isolated)

    after = assert_replay_changed_nothing(isolated, produced, before)
    assert all(after[i]["indexed_at"] != before[i]["indexed_at"] for i in after), "not replayed"
    report(
        "6 group reset",
        documents=len(after),
        replayed=len(produced),
        first_run_seconds=f"{first_seconds:.1f}",
        replay_seconds=f"{replay_seconds:.1f}",
    )


def test_10_sigterm_drains_commits_only_indexed_offsets_and_exits_0(
    isolated: Settings, start_pipeline: Callable[..., PipelineProcess]
) -> None:
    produced = ingest(isolated)
    first = start_pipeline(isolated)
    wait_until(lambda: indexed_count(isolated) >= ARTICLES // 4, 120, "indexing", first)
    signalled = time.monotonic()
    first.process.send_signal(signal.SIGTERM)
    rc = first.wait(60)
    exit_seconds = time.monotonic() - signalled
    assert rc == 0, first.output()
    assert exit_seconds < 10, f"SIGTERM took {exit_seconds:.1f}s to exit"
    committed = committed_offsets(isolated)
    indexed = {doc_id for doc_id, _ in documents(isolated)}
    assert_commits_cover_only_handled(committed, produced, indexed)
    assert sum(committed.values()) < ARTICLES, "the signal came too late: nothing left to drain"
    # The drain finished what it had read: nothing indexed is left uncommitted beyond one bundle
    # per partition (what was polled when the signal arrived is committed, not dropped).
    uncommitted_indexed = [
        p for p in produced if p.offset >= committed[p.partition] and p.article_id in indexed
    ]

    seconds = drain(start_pipeline, isolated)

    outcome = assert_all_indexed_and_committed(isolated, produced)
    report(
        "10 SIGTERM",
        exit_code=rc,
        exit_seconds=f"{exit_seconds:.1f}",
        indexed_at_exit=len(indexed),
        committed_at_exit=sum(committed.values()),
        indexed_but_uncommitted=len(uncommitted_indexed),
        restart_seconds=f"{seconds:.1f}",
        final_documents=len(outcome.documents),
    )


def test_3_elasticsearch_down_past_the_retry_budget_fails_without_committing(
    stack: Settings, isolated: Settings, start_pipeline: Callable[..., PipelineProcess]
) -> None:
    produced = ingest(isolated)
    first = start_pipeline(isolated, NEWSFLOW_ELASTICSEARCH__RETRY_BUDGET_SECONDS="8")
    wait_until(lambda: indexed_count(isolated) >= ARTICLES // 4, 120, "indexing", first)
    with elasticsearch_stopped(stack) as restore:
        stopped = time.monotonic()
        rc = first.wait(120)
        failed_after = time.monotonic() - stopped
        committed = committed_offsets(isolated)
        up_seconds = restore()
    assert rc != 0, first.output()
    # The sink or the dedupe store, whichever meets the outage first, says so and what to do.
    assert "offsets were not committed, restart the pipeline" in first.output(5), first.output()
    indexed = {doc_id for doc_id, _ in documents(isolated)}
    assert len(indexed) < ARTICLES
    assert_commits_cover_only_handled(committed, produced, indexed)

    seconds = drain(start_pipeline, isolated)

    outcome = assert_oracle(isolated, produced)
    assert len(outcome.documents) == ARTICLES and not outcome.dead_letters
    report(
        "3 ES down past budget",
        exit_code=rc,
        failed_seconds_after_stop=f"{failed_after:.1f}",
        indexed_before_failure=len(indexed),
        committed_before_failure=sum(committed.values()),
        es_restart_seconds=f"{up_seconds:.1f}",
        restart_seconds=f"{seconds:.1f}",
        final_documents=len(outcome.documents),
    )


def test_2_elasticsearch_down_at_start_and_up_20s_later_indexes_everything(
    stack: Settings, isolated: Settings, start_pipeline: Callable[..., PipelineProcess]
) -> None:
    produced = ingest(isolated)
    with elasticsearch_stopped(stack) as restore:
        pipeline = start_pipeline(isolated, "--stop-when-idle", IDLE_SECONDS)
        down_until = time.monotonic() + 20
        while time.monotonic() < down_until:  # the outage itself: the pipeline must wait it out
            assert pipeline.alive(), pipeline.output()
            time.sleep(0.5)
        assert set(committed_offsets(isolated).values()) == {0}
        up_seconds = restore()
        back = time.monotonic()
    rc = pipeline.wait(180)
    assert rc == 0, pipeline.output()
    after_up = time.monotonic() - back

    outcome = assert_all_indexed_and_committed(isolated, produced)
    report(
        "2 ES down at start",
        es_down_seconds=f"{20 + up_seconds:.1f}",
        drained_seconds_after_es_up=f"{after_up:.1f}",
        total_seconds=f"{time.monotonic() - pipeline.started:.1f}",
        final_documents=len(outcome.documents),
    )


def test_8_a_document_elasticsearch_rejects_is_dead_lettered_with_the_field(
    isolated: Settings, start_pipeline: Callable[..., PipelineProcess]
) -> None:
    alias = isolated.elasticsearch.index_alias
    definition = copy.deepcopy(index_definition())
    definition["mappings"]["properties"]["language"] = {"type": "integer"}
    # The articles carry no publication date: they belong to the month they are fetched in.
    period = period_of({"fetched_at": datetime.now(UTC).isoformat()}, "month")
    es = client(isolated.elasticsearch)
    try:
        es.indices.create(
            index=concrete_index_name(alias, period),  # the name newsflow expects: accepted
            settings=definition["settings"],
            mappings=definition["mappings"],
            aliases={alias: {}, write_alias(alias, period): {"is_write_index": True}},
        )
    finally:
        es.close()
    produced = ingest(isolated)

    seconds = drain(start_pipeline, isolated)

    outcome = assert_oracle(isolated, produced)
    assert not outcome.documents and len(outcome.dead_letters) == ARTICLES
    letters = list(outcome.dead_letters.values())
    assert {letter["stage"] for letter in letters} == {"index"}
    assert {letter["error_class"] for letter in letters} == {"elasticsearch:400"}
    assert all("[language]" in letter["error"] for letter in letters), letters[0]["error"]
    assert all(letter["source"]["topic"] == isolated.kafka.raw_topic for letter in letters)
    assert_fully_committed(isolated, produced)
    report(
        "8 mapping-rejected",
        produced=len(produced),
        dead_letters=len(letters),
        documents=len(outcome.documents),
        error=letters[0]["error"][:120],
        run_seconds=f"{seconds:.1f}",
    )


def test_1_elasticsearch_stopped_30s_mid_stream_loses_and_duplicates_nothing(
    stack: Settings, isolated: Settings, start_pipeline: Callable[..., PipelineProcess]
) -> None:
    produced = ingest(isolated)
    pipeline = start_pipeline(isolated, "--stop-when-idle", IDLE_SECONDS)
    wait_until(lambda: indexed_count(isolated) >= ARTICLES // 4, 120, "indexing", pipeline)
    before_outage = indexed_count(isolated)
    with elasticsearch_stopped(stack) as restore:
        down_until = time.monotonic() + 30
        while time.monotonic() < down_until:
            assert pipeline.alive(), pipeline.output()
            time.sleep(0.5)
        committed = committed_offsets(isolated)
        up_seconds = restore()
        back = time.monotonic()
    # Documents only accumulate, so what is indexed now includes what was when committed.
    indexed_now = {doc_id for doc_id, _ in documents(isolated)}
    assert_commits_cover_only_handled(committed, produced, indexed_now)
    rc = pipeline.wait(180)
    assert rc == 0, pipeline.output()
    after_up = time.monotonic() - back

    outcome = assert_all_indexed_and_committed(isolated, produced)
    report(
        "1 ES stopped mid-stream",
        indexed_before_outage=before_outage,
        committed_during_outage=sum(committed.values()),
        es_down_seconds=f"{30 + up_seconds:.1f}",
        drained_seconds_after_es_up=f"{after_up:.1f}",
        final_documents=len(outcome.documents),
    )


def test_4_kafka_broker_restarted_mid_stream_loses_nothing(
    stack: Settings, isolated: Settings, start_pipeline: Callable[..., PipelineProcess]
) -> None:
    files = corpus_files(ARTICLES)
    first_half = ARTICLES // 2
    assert (
        ingest_files(files[:first_half], isolated.kafka, out=io.StringIO()).published == first_half
    )
    pipeline = start_pipeline(isolated)  # streaming: it has to ride out the restart by itself
    wait_until(lambda: indexed_count(isolated) >= first_half // 4, 120, "indexing", pipeline)
    local = LocalStack(stack.stack)
    stopped = time.monotonic()
    local.stop(local.kafka)
    try:
        time.sleep(5)  # the pipeline polls and commits against a dead broker for a while
        assert pipeline.alive(), pipeline.output()
    finally:
        local.up()
    broker_down_seconds = time.monotonic() - stopped
    # A connector after the restart: producing works again (new records, same topic).
    more = ingest_files(files[first_half:], isolated.kafka, out=io.StringIO())
    assert more.published == ARTICLES - first_half
    produced = read_raw(isolated)
    assert len({p.article_id for p in produced}) == len(produced) == ARTICLES
    caught_up = wait_until(
        lambda: indexed_count(isolated) == ARTICLES, 180, "indexing after the restart", pipeline
    )
    wait_until(
        lambda: committed_offsets(isolated) == end_offsets(produced), 30, "committed", pipeline
    )
    pipeline.process.send_signal(signal.SIGTERM)
    assert pipeline.wait(60) == 0, pipeline.output()

    outcome = assert_all_indexed_and_committed(isolated, produced)
    report(
        "4 Kafka restarted",
        broker_down_seconds=f"{broker_down_seconds:.1f}",
        caught_up_seconds_after_restart=f"{caught_up:.1f}",
        final_documents=len(outcome.documents),
    )


def rss_mib(pid: int) -> float:
    """Resident memory of a process, from /proc (Linux)."""
    status = Path(f"/proc/{pid}/status").read_text()
    kib = next(line for line in status.splitlines() if line.startswith("VmRSS:")).split()[1]
    return int(kib) / 1024


def in_flight(port: int) -> float | None:
    """Records read from Kafka but not yet handled and committed, from the pipeline's metrics."""
    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as response:
            text = response.read().decode()
    except OSError:
        return None
    totals: Counter[str] = Counter()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            totals[sample.name] += sample.value
    return (
        totals["newsflow_pipeline_records_read_total"]
        - totals["newsflow_pipeline_records_committed_total"]
    )


def test_11_slow_elasticsearch_backpressure_bounds_memory_and_lag_recovers(
    isolated: Settings, start_pipeline: Callable[..., PipelineProcess]
) -> None:
    produced = ingest(isolated)
    partitions = len(committed_offsets(isolated))
    [port] = free_ports(1)
    with elasticsearch_proxy(isolated.elasticsearch.url) as proxy:
        pipeline = start_pipeline(
            isolated,
            "--stop-when-idle",
            IDLE_SECONDS,
            "--metrics-port",
            str(port),
            NEWSFLOW_ELASTICSEARCH__URL=proxy.url,
        )
        wait_until(lambda: indexed_count(isolated) >= 20, 120, "indexing", pipeline)
        rss_before = rss_mib(pipeline.process.pid)
        proxy.delay_seconds = 1.0  # every request to Elasticsearch now takes a second longer
        slow_started, backlog, rss = time.monotonic(), [], []
        indexed_when_slowed = indexed_count(isolated)
        while time.monotonic() - slow_started < 20:
            assert pipeline.alive(), pipeline.output()
            if (records := in_flight(port)) is not None:
                backlog.append(records)
            rss.append(rss_mib(pipeline.process.pid))
            time.sleep(0.5)
        indexed_while_slow = indexed_count(isolated) - indexed_when_slowed
        proxy.delay_seconds = 0.0
        recovered = time.monotonic()
        rc = pipeline.wait(180)
        recovery_seconds = time.monotonic() - recovered
    assert rc == 0, pipeline.output()
    assert indexed_when_slowed + indexed_while_slow < ARTICLES, "nothing was left to slow down"
    # Backpressure: a partition is read again only once its last bundle went through the whole
    # chain, so a slow sink slows the reading; records never pile up beyond one bundle each.
    assert backlog, "the metrics endpoint never answered"
    assert max(backlog) <= RECORDS_PER_BUNDLE * partitions, backlog
    outcome = assert_all_indexed_and_committed(isolated, produced)
    report(
        "11 slow Elasticsearch",
        delay_per_request_seconds=1.0,
        max_records_in_flight=int(max(backlog)),
        bound=RECORDS_PER_BUNDLE * partitions,
        rss_mib_before=f"{rss_before:.0f}",
        rss_mib_max_while_slow=f"{max(rss):.0f}",
        indexed_in_20s_slow=indexed_while_slow,
        drained_seconds_after_recovery=f"{recovery_seconds:.1f}",
        final_documents=len(outcome.documents),
    )


def test_offsets_and_dead_letters_are_committed_while_the_pipeline_runs(
    isolated: Settings, start_pipeline: Callable[..., PipelineProcess]
) -> None:
    count = 30
    produced = ingest(isolated, count)
    producer = KafkaProducer(bootstrap_servers=isolated.kafka.bootstrap_servers, acks="all")
    producer.send(isolated.kafka.raw_topic, key=b"junk", value=b"{ not json").get(30)
    producer.close()
    raw_ends = end_offsets(read_raw(isolated))  # with the junk record
    ends = {p: raw_ends.get(p, 0) for p in committed_offsets(isolated)}
    pipeline = start_pipeline(isolated)  # streaming, as in production: it never stops by itself
    wait_until(lambda: indexed_count(isolated) == count, 120, "indexing", pipeline)
    # One poll = one bundle = one commit (README): both must follow within a few polls.
    wait_until(lambda: committed_offsets(isolated) == ends, 15, "committed", pipeline, 1.0)
    wait_until(lambda: len(dead_letters(isolated)) == 1, 5, "dead-lettered", pipeline, 1.0)
    assert len(produced) == count


def ner_process(pipeline: PipelineProcess) -> int | None:
    """The pid of the pipeline's NER child (a multiprocessing spawn, not its resource tracker)."""
    for pid in process_tree(pipeline.process.pid)[1:]:
        with contextlib.suppress(OSError):
            if b"spawn_main" in Path(f"/proc/{pid}/cmdline").read_bytes():
                return pid
    return None


def test_the_ner_process_killed_mid_stream_is_replaced_and_nothing_is_lost(
    isolated: Settings, start_pipeline: Callable[..., PipelineProcess]
) -> None:
    produced = ingest(isolated)
    pipeline = start_pipeline(isolated, "--stop-when-idle", IDLE_SECONDS)
    wait_until(lambda: indexed_count(isolated) >= ARTICLES // 4, 120, "indexing", pipeline)
    first = ner_process(pipeline)
    assert first is not None, "no NER child process (nlp.ner_in_child_process is the default)"
    os.kill(first, signal.SIGKILL)
    indexed_at_kill = indexed_count(isolated)

    assert pipeline.wait(180) == 0, pipeline.output()

    assert indexed_at_kill < ARTICLES, "the kill came too late: everything was already indexed"
    assert_all_indexed_and_committed(isolated, produced)  # the batches it held were redone
    log = pipeline.log.read_text()
    assert "the entities process died" in log and "(exit code -9)" in log
    report("NER process kill -9", produced=len(produced), indexed_at_kill=indexed_at_kill)


def publish_fetched_at(settings: Settings, files: list[Path], fetched_at: datetime) -> None:
    """Publish undated articles as a connector fetching them at ``fetched_at`` would."""
    articles = []
    for path in files:
        (article,) = read_articles(path, now=fetched_at)
        assert isinstance(article, Article), article
        articles.append(article)
    ensure_topics(settings.kafka)
    with ArticlePublisher(settings.kafka) as publisher:
        results = list(publisher.publish(articles))
    assert [result.error for result in results] == [None] * len(files)


def test_12_a_stream_across_a_month_boundary_keeps_one_document_per_article_on_replay(
    isolated: Settings, start_pipeline: Callable[..., PipelineProcess]
) -> None:
    """Undated pages fetched before and after midnight of 30 November: the month of an article is
    the one it was first stored in, however often it is fetched again, and a replay of the whole
    stream changes nothing."""
    files = corpus_files(ARTICLES // 2)
    refetched, december_only = files[: ARTICLES // 4], files[ARTICLES // 4 :]
    publish_fetched_at(isolated, refetched, datetime(2026, 11, 30, 23, 50, tzinfo=UTC))
    drain(start_pipeline, isolated)
    # A new process, a new bundle: the November documents are found by the search, not memory.
    publish_fetched_at(isolated, refetched, datetime(2026, 12, 1, 0, 10, tzinfo=UTC))
    publish_fetched_at(isolated, december_only, datetime(2026, 12, 1, 0, 10, tzinfo=UTC))
    drain(start_pipeline, isolated)
    produced = read_raw(isolated)
    assert len(produced) == len(refetched) * 2 + len(december_only)
    before = assert_oracle(isolated, produced).documents
    assert len(before) == len(files)

    es = client(isolated.elasticsearch)
    try:
        alias = isolated.elasticsearch.index_alias
        by_month = {
            month: int(es.count(index=concrete_index_name(alias, month))["count"])
            for month in ("2026.11", "2026.12")
        }
    finally:
        es.close()
    # Every re-fetched page stayed in November, with the December fetch as its newest version.
    assert by_month == {"2026.11": len(refetched), "2026.12": len(december_only)}
    assert {doc["fetched_at"][:10] for doc in before.values()} == {"2026-12-01"}

    reset_to_earliest(isolated)
    drain(start_pipeline, isolated)  # both versions of each page, now in one run

    after = assert_replay_changed_nothing(isolated, produced, before)
    report(
        "12 month boundary",
        produced=len(produced),
        documents=len(after),
        in_november=by_month["2026.11"],
        in_december=by_month["2026.12"],
    )
