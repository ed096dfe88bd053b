"""Where de-duplication fingerprints live: Elasticsearch for the pipeline, memory for benchmarks.

The Elasticsearch store keeps one small document per article in ``<alias>-dedupe``, keyed by
article id: content hash and band keys as keyword fields (so candidates are found with one
search per article, batched in one ``msearch``), the shingle set and each shingle's first
position as unindexed binary fields (so candidates are verified exactly), and the decision taken.
Documents stored before positions were have none: they read back with empty positions, so their
copies are found by containment only until they leave the window. It is shared by every worker and
survives restarts and runner changes; it is separate from the news index, so an index rollover
or a reindex does not touch it, and its eviction never deletes news.

Our own writes use ``refresh=True`` so the next batch sees them; another worker's writes are
visible once it has refreshed too, so two copies processed at the same instant by two workers
would miss each other. For exact copies the index also holds one claim per content, ``_id``
``content:<hash>``, created atomically by the first article of that content in the same bulk
request as the fingerprints (its decision and a ``first_article`` field, about 200 bytes, never
returned as a candidate): the second worker's create fails, and it links its copy to the first.
Near-duplicates (different content hashes) processed at the same instant by two workers can
still miss each other, for one batch.
"""

from __future__ import annotations

import base64
import logging
from collections.abc import Callable, Iterator
from datetime import datetime
from typing import Any, TypeVar

import numpy as np
from elasticsearch import ApiError, Elasticsearch
from elasticsearch.helpers import bulk, scan

from newsflow.index import ElasticsearchUnavailable, client
from newsflow.settings import DedupeSettings, ElasticsearchSettings
from pipeline.dedupe import Probe, StoredFingerprint, rival_claim, shares_a_key, within_window
from pipeline.elasticsearch_sink import retry_within_budget

_LOG = logging.getLogger("newsflow.pipeline")
T = TypeVar("T")

MAPPINGS: dict[str, Any] = {
    "dynamic": "strict",
    "properties": {
        "time": {"type": "date"},
        "language": {"type": "keyword"},
        "content_hash": {"type": "keyword"},
        "bands": {"type": "keyword"},
        "shingles": {"type": "binary"},
        "positions": {"type": "binary"},
        "cluster_id": {"type": "keyword"},
        "duplicate_of": {"type": "keyword"},
        "similarity": {"type": "float", "index": False},
        "first_article": {"type": "keyword"},  # only in claims: the content's first article
    },
}
#: The ``_id`` prefix of claims (``content:<content hash>``).
CLAIM_PREFIX = "content:"


def dedupe_index(alias: str) -> str:
    return f"{alias}-dedupe"


def to_source(fingerprint: StoredFingerprint) -> dict[str, Any]:
    return {
        "time": fingerprint.time.isoformat(),
        "language": fingerprint.language,
        "content_hash": fingerprint.content_hash,
        "bands": list(fingerprint.band_keys),
        "shingles": base64.b64encode(fingerprint.shingles.astype("<u4").tobytes()).decode(),
        "positions": base64.b64encode(fingerprint.positions.tobytes()).decode(),
        "cluster_id": fingerprint.cluster_id,
        "duplicate_of": fingerprint.duplicate_of,
        "similarity": fingerprint.similarity,
    }


def claim_source(first: StoredFingerprint) -> dict[str, Any]:
    """A claim keeps what deciding an exact copy reads: no shingles, positions or bands."""
    return {
        "time": first.time.isoformat(),
        "language": first.language,
        "content_hash": first.content_hash,
        "cluster_id": first.cluster_id,
        "duplicate_of": first.duplicate_of,
        "first_article": first.article_id,
    }


def from_source(article_id: str, source: dict[str, Any]) -> StoredFingerprint:
    return StoredFingerprint(
        article_id=article_id,
        time=datetime.fromisoformat(source["time"]),
        language=source.get("language", "und"),
        content_hash=source["content_hash"],
        shingles=np.frombuffer(base64.b64decode(source.get("shingles", "")), dtype="<u4").astype(
            np.uint32
        ),
        positions=np.frombuffer(base64.b64decode(source.get("positions", "")), dtype=np.uint8),
        band_keys=tuple(source.get("bands", ())),
        cluster_id=source["cluster_id"],
        duplicate_of=source.get("duplicate_of"),
        similarity=source.get("similarity", 0.0),
    )


def candidate_query(probe: Probe, window_days: float, size: int) -> dict[str, Any]:
    """Stored articles in the window sharing the content hash or a band; most bands first."""
    seconds = int(window_days * 86_400)
    at = probe.time.isoformat()
    return {
        "size": size,
        "query": {
            "bool": {
                # Scores count shared bands (an exact copy outranks them all).
                "should": [
                    {
                        "constant_score": {
                            "filter": {"term": {"content_hash": probe.fingerprint.content_hash}},
                            "boost": 1_000,
                        }
                    },
                    *(
                        {"constant_score": {"filter": {"term": {"bands": key}}}}
                        for key in probe.fingerprint.band_keys
                    ),
                ],
                "minimum_should_match": 1,
                "filter": {
                    "range": {"time": {"gte": f"{at}||-{seconds}s", "lte": f"{at}||+{seconds}s"}}
                },
                "must_not": [
                    {"ids": {"values": [probe.article_id]}},
                    {"exists": {"field": "first_article"}},  # claims
                ],
            }
        },
    }


class ElasticsearchFingerprints:
    """The pipeline's ``FingerprintStore``; Elasticsearch outages are retried within the budget."""

    def __init__(self, elasticsearch: ElasticsearchSettings, dedupe: DedupeSettings) -> None:
        self._settings = elasticsearch
        self._dedupe = dedupe
        self._index = dedupe_index(elasticsearch.index_alias)
        self._es: Elasticsearch | None = None

    def load(self) -> None:
        self._es = client(self._settings)
        self._retry(self._ensure_index)

    def _ensure_index(self) -> None:
        assert self._es is not None
        if self._es.indices.exists(index=self._index):
            # An index made by an older version lacks newer fields (its mapping is strict):
            # adding fields is compatible, and a no-op when they are there.
            self._es.indices.put_mapping(index=self._index, properties=MAPPINGS["properties"])
        else:
            try:
                self._es.indices.create(
                    index=self._index,
                    settings={"number_of_shards": 1, "number_of_replicas": 0},
                    mappings=MAPPINGS,
                )
            except ApiError as exc:
                if exc.meta.status != 400 or "already_exists" not in str(exc):
                    raise

    def known(self, article_ids: list[str]) -> dict[str, StoredFingerprint]:
        es = self._client()
        response = self._retry(lambda: es.mget(index=self._index, ids=article_ids))
        return {
            doc["_id"]: from_source(doc["_id"], doc["_source"])
            for doc in response["docs"]
            if doc.get("found")
        }

    def candidates(self, probes: list[Probe]) -> list[list[StoredFingerprint]]:
        if not probes:
            return []
        es = self._client()
        searches: list[dict[str, Any]] = []
        for probe in probes:
            searches += [
                {"index": self._index},
                candidate_query(probe, self._dedupe.window_days, self._dedupe.max_candidates),
            ]
        response = self._retry(lambda: es.msearch(searches=searches))
        found = []
        for result in response["responses"]:
            if "error" in result:
                raise ElasticsearchUnavailable(f"dedupe lookup failed: {result['error']}")
            found.append(
                [from_source(hit["_id"], hit["_source"]) for hit in result["hits"]["hits"]]
            )
        return found

    def save(
        self, fingerprints: list[StoredFingerprint], firsts: list[StoredFingerprint]
    ) -> dict[str, StoredFingerprint]:
        if not fingerprints:
            return {}
        es = self._client()
        mine = {f.content_hash: f for f in firsts}
        actions = [
            *(
                {"_index": self._index, "_id": f.article_id, "_source": to_source(f)}
                for f in fingerprints
            ),
            *(self._claim_action("create", f) for f in mine.values()),
        ]
        _, errors = self._retry(
            lambda: bulk(es, actions, refresh=True, raise_on_error=False, max_retries=3)
        )
        assert isinstance(errors, list)  # not stats_only
        taken = []
        for error in errors:
            item = next(iter(error.values()))
            if item.get("status") != 409:
                raise ElasticsearchUnavailable(f"dedupe store write failed: {item.get('error')}")
            taken.append(item["_id"].removeprefix(CLAIM_PREFIX))
        return self._settle(taken, mine) if taken else {}

    def _settle(
        self, taken: list[str], mine: dict[str, StoredFingerprint]
    ) -> dict[str, StoredFingerprint]:
        """After creates that found a claim: which are another article's within the window."""
        es = self._client()
        claims = [f"{CLAIM_PREFIX}{content}" for content in taken]
        response = self._retry(lambda: es.mget(index=self._index, ids=claims))
        current = {
            doc["_id"].removeprefix(CLAIM_PREFIX): from_source(
                doc["_source"]["first_article"], doc["_source"]
            )
            for doc in response["docs"]
            if doc.get("found")
        }
        lost = {
            content: claim
            for content, claim in current.items()
            if rival_claim(claim, mine[content], self._dedupe)
        }
        # Ours already, out of the window, or evicted meanwhile: (re)write it as ours.
        ours = [self._claim_action("index", mine[c]) for c in taken if c not in lost]
        if ours:
            self._retry(lambda: bulk(es, ours, max_retries=3))
        return lost

    def _claim_action(self, op_type: str, first: StoredFingerprint) -> dict[str, Any]:
        return {
            "_op_type": op_type,
            "_index": self._index,
            "_id": f"{CLAIM_PREFIX}{first.content_hash}",
            "_source": claim_source(first),
        }

    def evict(self, before: datetime) -> int:
        """Scan + bulk delete: ``_delete_by_query`` needs the reindex module, not always there.

        Claims carry their article's time, so they leave the window with it."""
        es = self._client()

        def delete_expired() -> int:
            expired = scan(
                es,
                index=self._index,
                query={"query": {"range": {"time": {"lt": before.isoformat()}}}},
                _source=False,
            )
            fingerprints = 0  # claims are not counted, as in memory

            def deletions() -> Iterator[dict[str, Any]]:
                nonlocal fingerprints
                for hit in expired:
                    fingerprints += not hit["_id"].startswith(CLAIM_PREFIX)
                    yield {"_op_type": "delete", "_index": self._index, "_id": hit["_id"]}

            bulk(es, deletions(), refresh=True, raise_on_error=False)
            return fingerprints

        return self._retry(delete_expired)

    def _client(self) -> Elasticsearch:
        assert self._es is not None, "load() first"
        return self._es

    def _retry(self, call: Callable[[], T]) -> T:
        """Retry connection failures and overload within the budget, then fail the bundle."""
        return retry_within_budget(call, self._settings, f"the dedupe store {self._index}")


class MemoryFingerprints:
    """A ``FingerprintStore`` in one process's memory, with the same window semantics."""

    def __init__(self, dedupe: DedupeSettings) -> None:
        self._dedupe = dedupe
        self._by_id: dict[str, StoredFingerprint] = {}
        self._by_key: dict[str, set[str]] = {}
        self._claims: dict[str, StoredFingerprint] = {}

    def load(self) -> None:
        pass

    def __len__(self) -> int:
        return len(self._by_id)

    def known(self, article_ids: list[str]) -> dict[str, StoredFingerprint]:
        return {i: self._by_id[i] for i in article_ids if i in self._by_id}

    def candidates(self, probes: list[Probe]) -> list[list[StoredFingerprint]]:
        found = []
        for probe in probes:
            keys = (probe.fingerprint.content_hash, *probe.fingerprint.band_keys)
            counts: dict[str, int] = {}
            for key in keys:
                for article_id in self._by_key.get(key, ()):
                    counts[article_id] = counts.get(article_id, 0) + 1
            ranked = sorted(counts, key=lambda i: -counts[i])
            matches = [
                self._by_id[i]
                for i in ranked
                if i != probe.article_id
                and within_window(self._by_id[i].time, probe.time, self._dedupe)
                and shares_a_key(self._by_id[i], probe)
            ]
            found.append(matches[: self._dedupe.max_candidates])
        return found

    def save(
        self, fingerprints: list[StoredFingerprint], firsts: list[StoredFingerprint]
    ) -> dict[str, StoredFingerprint]:
        for fingerprint in fingerprints:
            self._forget(fingerprint.article_id)
            self._by_id[fingerprint.article_id] = fingerprint
            for key in (fingerprint.content_hash, *fingerprint.band_keys):
                self._by_key.setdefault(key, set()).add(fingerprint.article_id)
        lost = {}
        for first in firsts:
            claim = self._claims.get(first.content_hash)
            if claim is not None and rival_claim(claim, first, self._dedupe):
                lost[first.content_hash] = claim
            else:
                self._claims[first.content_hash] = first
        return lost

    def evict(self, before: datetime) -> int:
        expired = [i for i, f in self._by_id.items() if f.time < before]
        for article_id in expired:
            self._forget(article_id)
        self._claims = {h: c for h, c in self._claims.items() if c.time >= before}
        return len(expired)

    def _forget(self, article_id: str) -> None:
        old = self._by_id.pop(article_id, None)
        if old is None:
            return
        for key in (old.content_hash, *old.band_keys):
            ids = self._by_key.get(key)
            if ids is not None:
                ids.discard(article_id)
                if not ids:
                    del self._by_key[key]
