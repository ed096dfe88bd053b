"""The Elasticsearch fingerprint store against the real node: lookups, restarts, eviction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsflow.index import client
from newsflow.settings import DedupeSettings, Settings
from pipeline.dedupe import Probe, StoredFingerprint, decide, decide_and_save, fingerprint
from pipeline.dedupe_store import ElasticsearchFingerprints, MemoryFingerprints, dedupe_index
from tests.pipeline.test_dedupe import ntrex_documents

pytestmark = pytest.mark.integration

T0 = datetime(2026, 11, 20, tzinfo=UTC)
SETTINGS = DedupeSettings()


def probe(article_id: str, text: str, at: datetime) -> Probe:
    return Probe(article_id, at, "en", fingerprint(text, SETTINGS))


def test_elasticsearch_and_memory_stores_find_the_same_candidates(isolated: Settings) -> None:
    us, gb = ntrex_documents("src.eng")[:30], ntrex_documents("ref.eng-GB")[:30]
    stored = [
        decide(probe(f"us{n}", text, T0 + timedelta(hours=n)), [], SETTINGS)
        for n, text in enumerate(us)
    ]
    es_store = ElasticsearchFingerprints(isolated.elasticsearch, SETTINGS)
    es_store.load()
    memory = MemoryFingerprints(SETTINGS)
    es_store.save(stored, [])
    memory.save(stored, [])

    restarted = ElasticsearchFingerprints(isolated.elasticsearch, SETTINGS)  # a new worker
    restarted.load()
    probes = [probe(f"gb{n}", text, T0 + timedelta(hours=n)) for n, text in enumerate(gb)]
    from_es = restarted.candidates(probes)
    assert [c[0].article_id for c in from_es] == [f"us{n}" for n in range(30)]
    assert [{c.article_id for c in found} for found in from_es] == [
        {c.article_id for c in found} for found in memory.candidates(probes)
    ]
    assert restarted.known(["us3", "nope"]).keys() == {"us3"}
    assert restarted.known(["us3"])["us3"].shingles.tolist() == stored[3].shingles.tolist()

    assert restarted.evict(T0 + timedelta(hours=10)) == 10
    assert restarted.known([f"us{n}" for n in range(30)]).keys() == {
        f"us{n}" for n in range(10, 30)
    }


class NotYetVisible(ElasticsearchFingerprints):
    """A worker before another worker's writes are searchable (the refresh gap): its lookups
    find nothing, its writes and claims reach the real node."""

    def candidates(self, probes: list[Probe]) -> list[list[StoredFingerprint]]:
        return [[] for _ in probes]


def test_two_workers_deciding_copies_at_once_agree_through_the_claim(isolated: Settings) -> None:
    """B decides its copy before A's fingerprint is visible; A's claim on the content tells it."""
    worker_a = ElasticsearchFingerprints(isolated.elasticsearch, SETTINGS)
    worker_b = NotYetVisible(isolated.elasticsearch, SETTINGS)
    worker_a.load()
    worker_b.load()
    story = ntrex_documents("src.eng")[4]
    [a] = decide_and_save([probe("a", story, T0)], worker_a, SETTINGS)
    [b] = decide_and_save([probe("b", story, T0 + timedelta(minutes=1))], worker_b, SETTINGS)
    assert (a.cluster_id, a.duplicate_of) == ("a", None)
    assert (b.cluster_id, b.duplicate_of, b.similarity) == ("a", "a", 1.0)
    assert worker_a.known(["b"])["b"].duplicate_of == "a"  # stored as decided at last

    [found] = worker_a.candidates([probe("c", story, T0 + timedelta(minutes=2))])
    assert sorted(c.article_id for c in found) == ["a", "b"]  # the claim is never a candidate

    assert worker_a.evict(T0 + timedelta(days=1)) == 2  # fingerprints; the claim goes with them
    es = client(isolated.elasticsearch)
    assert es.count(index=dedupe_index(isolated.elasticsearch.index_alias))["count"] == 0
    [c] = decide_and_save([probe("c", story, T0 + timedelta(days=10))], worker_b, SETTINGS)
    assert (c.cluster_id, c.duplicate_of) == ("c", None)
