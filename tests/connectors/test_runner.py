"""The runner: adaptive intervals and backoff (pure), and polls against the real Kafka.

The Kafka tests use sources written for the test (they yield given articles, errors or raise)
and the real producer; a publish failure is produced for real by a topic whose broker-side
``max.message.bytes`` is too small for one of the articles.
"""

from __future__ import annotations

import io
import random
import threading
from collections.abc import Iterator, Sequence
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, TopicPartition
from kafka.admin import NewTopic

from connectors.fetch import Fetcher, FetchError, FetchPolicy
from connectors.health import HealthBook
from connectors.publish import ArticlePublisher
from connectors.runner import RunOptions, failure_delay, next_interval, run
from connectors.source import Item, ItemError, PollContext, SourceConfig
from connectors.state import StateStore
from newsflow.article import Article
from newsflow.kafka_topics import ensure_topics
from newsflow.settings import Settings

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
CONFIG = SourceConfig(
    name="feed", type="test", interval_seconds=600, min_interval_seconds=60,
    max_interval_seconds=3600,
)  # fmt: skip
OPTIONS = RunOptions()


# -- scheduling ----------------------------------------------------------------------------------


def test_busy_polls_shrink_the_interval_down_to_the_minimum() -> None:
    intervals = [600.0]
    for _ in range(5):
        intervals.append(next_interval(intervals[-1], CONFIG, new_items=3, options=OPTIONS))
    assert intervals == [600, 300, 150, 75, 60, 60]


def test_idle_polls_grow_the_interval_up_to_the_maximum() -> None:
    intervals = [600.0]
    for _ in range(6):
        intervals.append(next_interval(intervals[-1], CONFIG, new_items=0, options=OPTIONS))
    assert intervals == [600, 900, 1350, 2025, 3037.5, 3600, 3600]


def test_failures_back_off_exponentially_with_jitter_up_to_the_maximum() -> None:
    rng = random.Random(7)
    for failures, ceiling in [(1, 60), (2, 120), (3, 240), (6, 1920), (7, 3600), (500, 3600)]:
        delays = [failure_delay(failures, CONFIG, None, rng) for _ in range(200)]
        assert ceiling / 2 <= min(delays) < max(delays) <= ceiling
        assert max(delays) - min(delays) > ceiling / 10  # spread: sources do not retry together


def test_retry_after_is_honoured_but_capped() -> None:
    rng = random.Random(1)
    assert failure_delay(1, CONFIG, retry_after=900, rng=rng) == 900
    assert failure_delay(1, CONFIG, retry_after=10**9, rng=rng) == 3600  # hostile header
    assert 30 <= failure_delay(1, CONFIG, retry_after=1, rng=rng) <= 60  # backoff is longer


def test_run_options_are_checked() -> None:
    with pytest.raises(ValueError, match="busy_factor"):
        RunOptions(busy_factor=2)
    with pytest.raises(ValueError, match="concurrency"):
        RunOptions(concurrency=0)


# -- polls against Kafka -------------------------------------------------------------------------


def article(n: int, body_bytes: int = 200) -> Article:
    return Article.create(
        source="test-source",
        title=f"Story {n}",
        body=("Harbour workers voted on a contract. " * (body_bytes // 37 + 1))[:body_bytes],
        url=f"https://example.org/story/{n}",
        published_at=NOW,
        fetched_at=NOW,
    )


class ScriptedSource:
    """Yields what it is given, in order; an exception in the script is raised there."""

    def __init__(self, name: str, script: Sequence[Item | ItemError | Exception]) -> None:
        self.config = CONFIG.model_copy(update={"name": name})
        self.script = script
        self.polls = 0

    def poll(self, context: PollContext) -> Iterator[Item | ItemError]:
        self.polls += 1
        context.state.put("polled", self.polls)
        unseen = context.state.unseen(i.seen_key for i in self.script if isinstance(i, Item))
        for thing in self.script:
            if isinstance(thing, Exception):
                raise thing
            if isinstance(thing, ItemError) or thing.seen_key in unseen:
                yield thing


def items(*numbers: int, body_bytes: int = 200) -> list[Item]:
    return [Item(article(n, body_bytes), f"key-{n}", {"n": n}) for n in numbers]


def end_offset(settings: Settings) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.kafka.bootstrap_servers)
    try:
        partitions = consumer.partitions_for_topic(settings.kafka.raw_topic) or set()
        ends = consumer.end_offsets(
            [TopicPartition(settings.kafka.raw_topic, p) for p in partitions]
        )
        return sum(ends.values())
    finally:
        consumer.close()


def run_once(
    settings: Settings, store: StateStore, *sources: ScriptedSource, options: RunOptions = OPTIONS
) -> tuple[str, HealthBook]:
    out, health = io.StringIO(), HealthBook()
    with (
        Fetcher(FetchPolicy()) as fetcher,
        ArticlePublisher(settings.kafka) as publisher,
    ):
        run(
            list(sources),
            store=store,
            fetcher=fetcher,
            publisher=publisher,
            options=options,
            once=True,
            health=health,
            out=out,
        )
    return out.getvalue(), health


@pytest.mark.integration
def test_items_are_marked_seen_after_the_ack_and_never_sent_twice(
    isolated: Settings, tmp_path: Path
) -> None:
    ensure_topics(isolated.kafka)
    store = StateStore(tmp_path / "state.sqlite")
    rejected = ItemError("parse", "no title and no body", "https://example.org/feed#7")
    source = ScriptedSource("feed", [*items(1, 2), rejected, *items(3)])
    out, health = run_once(isolated, store, source, options=RunOptions(batch_size=2))
    assert end_offset(isolated) == 3
    assert "feed: rejected https://example.org/feed#7: parse: no title and no body" in out
    assert "feed: 3 new, 1 rejected" in out
    assert store.source("feed").unseen(["key-1", "key-2", "key-3"]) == set()
    assert store.checkpoint("feed") == {"n": 3}
    assert store.source("feed").get("polled") == 1  # the poll completed: its values are kept
    state = health.get("feed")
    assert (state.fetches, state.new_items, dict(state.errors)) == (1, 3, {"parse": 1})
    assert state.newest_item == NOW.timestamp()

    out, _ = run_once(isolated, store, source)  # a restart: same feed, nothing new
    assert end_offset(isolated) == 3
    assert "feed: 0 new, 1 rejected" in out  # the broken entry is still in the feed


@pytest.mark.integration
def test_a_publish_failure_leaves_the_items_unseen_and_the_checkpoint_at_the_acked_prefix(
    isolated: Settings, tmp_path: Path
) -> None:
    admin = KafkaAdminClient(bootstrap_servers=isolated.kafka.bootstrap_servers)
    try:  # the broker refuses records over 2 kB on this topic: a real, permanent failure
        admin.create_topics(
            [NewTopic(isolated.kafka.raw_topic, 1, 1, topic_configs={"max.message.bytes": "2000"})]
        )
    finally:
        admin.close()
    store = StateStore(tmp_path / "state.sqlite")
    big = items(3, body_bytes=5_000)
    out, health = run_once(isolated, store, ScriptedSource("feed", [*items(1, 2), *big, *items(4)]))
    assert "feed: poll failed (publish: " in out and "MessageSizeTooLargeError" in out
    # kafka-python's idempotent producer aborts what was in flight with the refused record
    # (here item 4, sent with it): whatever was not acknowledged stays unseen.
    unseen = store.source("feed").unseen(["key-1", "key-2", "key-3", "key-4"])
    assert "key-3" in unseen
    assert store.seen_count("feed") == end_offset(isolated) == 4 - len(unseen)
    assert store.checkpoint("feed") == {"n": 2}  # never past an item that is not in Kafka
    assert store.source("feed").get("polled") is None  # an incomplete poll keeps no values
    assert health.get("feed").errors["publish"] == 1
    assert health.get("feed").last_success is None

    fixed = ScriptedSource("feed", items(1, 2, 3, 4))  # the story, fixed at the source
    out, _ = run_once(isolated, store, fixed)
    assert f"feed: {len(unseen)} new, 0 rejected" in out  # exactly what was missing
    assert end_offset(isolated) == 4
    assert store.checkpoint("feed") == {"n": 4}


@pytest.mark.integration
def test_a_source_that_raises_is_reported_and_the_others_go_on(
    isolated: Settings, tmp_path: Path
) -> None:
    ensure_topics(isolated.kafka)
    store = StateStore(tmp_path / "state.sqlite")
    broken = ScriptedSource("broken", [*items(1), RuntimeError("bug in the parser")])
    refused = ScriptedSource(
        "refused",
        [
            FetchError(
                "rate_limited", "429 from example.org", url="https://example.org", retry_after=5
            )
        ],
    )
    fine = ScriptedSource("fine", items(10, 11))
    out, health = run_once(
        isolated, store, broken, refused, fine, options=RunOptions(concurrency=2)
    )
    assert end_offset(isolated) == 3  # the broken source's first item was still published
    assert "broken: poll failed (unexpected: RuntimeError: bug in the parser), 1 new" in out
    assert "refused: poll failed (rate_limited: 429 from example.org)" in out
    assert "fine: 2 new" in out
    assert "done after 3 poll(s): 3 new item(s), 0 rejected, 2 failed poll(s)" in out
    assert store.source("broken").unseen(["key-1"]) == set()
    assert health.get("refused").errors == {"rate_limited": 1}
    assert health.get("broken").last_error == "unexpected: RuntimeError: bug in the parser"


@pytest.mark.integration
def test_stop_ends_a_continuous_run_without_marking_unsent_items(
    isolated: Settings, tmp_path: Path
) -> None:
    ensure_topics(isolated.kafka)
    store = StateStore(tmp_path / "state.sqlite")
    stop = threading.Event()

    class Endless(ScriptedSource):
        def poll(self, context: PollContext) -> Iterator[Item | ItemError]:
            for n in range(1_000_000):
                if n == 5:
                    stop.set()  # as SIGTERM would, in the middle of a poll
                yield items(n)[0]

    out = io.StringIO()
    with Fetcher(FetchPolicy()) as fetcher, ArticlePublisher(isolated.kafka) as publisher:
        report = run(
            [Endless("endless", [])],
            store=store,
            fetcher=fetcher,
            publisher=publisher,
            stop=stop,
            out=out,
        )
    assert report.polls == 1
    sent = end_offset(isolated)
    assert 5 <= sent <= 6  # what was yielded before the stop was seen, and nothing more
    assert store.seen_count("endless") == sent
    assert "connectors: stopped after 1 poll(s)" in out.getvalue()
