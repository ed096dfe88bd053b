"""The SQLite state: buffered values, transactional commits, pruning, threads and a reader."""

from __future__ import annotations

import sqlite3
import threading
from pathlib import Path

import pytest

from connectors.state import StateError, StateStore

DAY = 24 * 3600.0


class Clock:
    def __init__(self, now: float = 1_000_000.0) -> None:
        self.now = now

    def __call__(self) -> float:
        return self.now


@pytest.fixture
def store(tmp_path: Path) -> StateStore:
    return StateStore(tmp_path / "state" / "state.sqlite")


def test_a_poll_sees_its_own_values_but_they_are_durable_only_after_commit(
    store: StateStore,
) -> None:
    poll = store.source("feed")
    poll.put("etag", '"v2"')
    assert poll.get("etag") == '"v2"'
    assert store.source("feed").get("etag") is None  # a crash now loses the ETag: fine
    poll.commit(["a"], None)
    assert store.source("feed").get("etag") == '"v2"'
    assert store.source("feed").get("missing", "default") == "default"


def test_an_incomplete_poll_commits_seen_keys_and_checkpoint_but_not_values(
    store: StateStore,
) -> None:
    poll = store.source("warc")
    poll.put("etag", "x")
    poll.commit(["r1", "r2"], {"offset": 2048}, poll_complete=False)
    fresh = store.source("warc")
    assert fresh.get("etag") is None
    assert fresh.unseen(["r1", "r2", "r3"]) == {"r3"}
    assert fresh.checkpoint() == {"offset": 2048}


def test_state_survives_reopening_and_sources_are_separate(tmp_path: Path) -> None:
    path = tmp_path / "state.sqlite"
    with StateStore(path) as first:
        view = first.source("a")
        view.put("cursor", {"page": 3, "ids": [1, 2]})
        view.commit(["k1"], {"n": 1})
    with StateStore(path) as second:
        a, b = second.source("a"), second.source("b")
        assert a.get("cursor") == {"page": 3, "ids": [1, 2]}
        assert a.checkpoint() == {"n": 1}
        assert a.unseen(["k1", "k2"]) == {"k2"}
        assert b.unseen(["k1"]) == {"k1"}
        assert b.checkpoint() is None and b.get("cursor") is None


def test_unseen_handles_many_keys_and_duplicates(store: StateStore) -> None:
    keys = [f"https://example.org/{i}" for i in range(1_200)]  # more than one IN (...) chunk
    store.source("sitemap").commit(keys[::2], None)
    assert store.source("sitemap").unseen(keys + keys) == set(keys[1::2])
    assert store.seen_count("sitemap") == 600


def test_a_value_that_is_not_json_is_refused_with_its_name(store: StateStore) -> None:
    with pytest.raises(ValueError, match="'when' of feed is not JSON"):
        store.source("feed").put("when", object())


def test_seen_keys_are_pruned_when_no_longer_listed(tmp_path: Path) -> None:
    clock = Clock()
    store = StateStore(tmp_path / "s.sqlite", seen_retention_days=90, clock=clock)
    store.source("feed").commit(["still-in-feed", "gone"], None)
    clock.now += 60 * DAY
    assert store.source("feed").unseen(["still-in-feed"]) == set()  # listed again: refreshed
    clock.now += 40 * DAY  # 100 days after first seen, 40 after last listed
    assert store.prune() == 1
    assert store.source("feed").unseen(["still-in-feed", "gone"]) == {"gone"}
    assert store.prune() == 0


def test_concurrent_commits_from_threads_all_land(store: StateStore) -> None:
    def worker(n: int) -> None:
        for batch in range(10):
            store.source(f"s{n}").commit([f"{batch}-{i}" for i in range(20)], {"batch": batch})

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert [store.seen_count(f"s{n}") for n in range(8)] == [200] * 8
    assert {store.checkpoint(f"s{n}")["batch"] for n in range(8)} == {9}  # type: ignore[index]


def test_health_is_readable_from_another_connection_while_the_writer_is_open(
    tmp_path: Path,
) -> None:
    path = tmp_path / "state.sqlite"
    with StateStore(path) as runner:
        runner.write_health({"feed": {"type": "rss", "fetches": 3}})
        with StateStore(path, create=False) as status:
            assert status.read_health() == {"feed": {"type": "rss", "fetches": 3}}
        journal = sqlite3.connect(path).execute("PRAGMA journal_mode").fetchone()[0]
        assert journal == "wal"


def test_status_of_a_missing_state_file_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "nowhere" / "state.sqlite"
    with pytest.raises(StateError, match=r"no connector state at .*has `connectors run` run"):
        StateStore(missing, create=False)
    assert not missing.parent.exists()


def test_in_memory_store_for_probes() -> None:
    with StateStore.in_memory() as store:
        view = store.source("probe")
        view.commit(["x"], {"p": 1})
        assert view.unseen(["x", "y"]) == {"y"}
