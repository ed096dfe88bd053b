"""The Elasticsearch fingerprint store against the real node: lookups, restarts, eviction."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from newsflow.settings import DedupeSettings, Settings
from pipeline.dedupe import Probe, decide, fingerprint
from pipeline.dedupe_store import ElasticsearchFingerprints, MemoryFingerprints
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
    es_store.add(stored)
    memory.add(stored)

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
