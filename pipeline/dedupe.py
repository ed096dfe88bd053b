"""De-duplication and story clustering: exact copies, near-duplicates, translations of one story.

Runs after translation, on the English text, so a Spanish wire story and its English version
can meet. For each article:

1. **Replay**: an article whose fingerprint is already stored with the same content keeps its
   stored decision, so replaying the topic changes no cluster ids and no counts.
2. **Candidates**: stored articles within the time window that share its content hash or at
   least one LSH band key (best-matching first, at most ``max_candidates``), plus earlier
   articles of the same batch.
3. **Verification**, on the exact shingle sets. A candidate with the same content, or in the
   same language passing the copy test (``is_copy``: Jaccard at least ``duplicate_threshold``
   and either containment or order agreement high), is a copy: the article is a
   ``duplicate_of`` the first-seen article of that copy and joins its cluster. Otherwise, at a
   Jaccard at or above ``cluster_threshold`` (another language) or
   ``same_language_cluster_threshold`` (its own) it joins the best candidate's story cluster (a
   translation of a story is one of its versions, not a copy to hide), else it starts its own.

The fingerprints live in a ``FingerprintStore`` (``pipeline.dedupe_store``): Elasticsearch in the
pipeline, so the state is shared by every worker and survives restarts, runner changes and index
rollovers; memory in the benchmark and unit tests. The stage itself holds nothing between
batches, so its memory does not grow with the stream.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from typing import Protocol

import apache_beam as beam

from newsflow.settings import DedupeSettings
from pipeline.enriched import UNDETERMINED, Duplication, EnrichedArticle
from pipeline.fingerprint import Fingerprint, Hashes, Overlap, Positions, overlap

#: Outcome -> the stage's Beam counter (new articles are not counted).
_BEAM_COUNTERS = {"duplicate": "duplicates", "clustered": "clustered"}


@dataclass(frozen=True)
class StoredFingerprint:
    """An article's fingerprint and the decision taken for it, as the store keeps them."""

    article_id: str
    time: datetime
    language: str  # of the original: only same-language articles can be copies
    content_hash: str
    shingles: Hashes
    positions: Positions  # empty in fingerprints stored before positions were
    band_keys: tuple[str, ...]
    cluster_id: str
    duplicate_of: str | None = None
    similarity: float = 0.0


@dataclass(frozen=True)
class Probe:
    """What a candidate lookup needs to know about one new article."""

    article_id: str
    time: datetime
    language: str
    fingerprint: Fingerprint


class FingerprintStore(Protocol):
    def load(self) -> None: ...

    def known(self, article_ids: list[str]) -> dict[str, StoredFingerprint]:
        """The stored fingerprints of these articles (seen before: a replay or an update)."""
        ...

    def candidates(self, probes: list[Probe]) -> list[list[StoredFingerprint]]:
        """Per probe: stored articles within the window sharing its content hash or a band."""
        ...

    def save(
        self, fingerprints: list[StoredFingerprint], firsts: list[StoredFingerprint]
    ) -> dict[str, StoredFingerprint]:
        """Store the fingerprints, and record each of ``firsts`` as the first article of its
        content where no other article within the window already is; returns those others,
        by content hash. In one write, so the claim costs no extra round trip.

        The claim is atomic per content, so two workers deciding two copies at the same
        instant, each before the other's fingerprint is visible, still agree on which came
        first. An article may claim again (re-read after a crash, or re-decided): its claim is
        updated.
        """
        ...

    def evict(self, before: datetime) -> int:
        """Forget fingerprints older than ``before``; returns how many were removed."""
        ...


def fingerprint(text: str, settings: DedupeSettings) -> Fingerprint:
    return Fingerprint.of(
        text,
        shingle_size=settings.shingle_size,
        num_perm=settings.num_perm,
        bands=settings.bands,
        rows=settings.rows,
        seed=settings.seed,
    )


def fingerprint_of(item: EnrichedArticle, settings: DedupeSettings) -> Fingerprint:
    """The fingerprint of the English text (the original when there is no English version)."""
    return fingerprint(item.english_text or item.text, settings)


def article_time(item: EnrichedArticle) -> datetime:
    """The time the window is measured in: publication, else fetch time."""
    return item.article.published_at or item.article.fetched_at


def within_window(a: datetime, b: datetime, settings: DedupeSettings) -> bool:
    return abs(a - b) <= timedelta(days=settings.window_days)


def is_copy(found: Overlap, settings: DedupeSettings) -> bool:
    """The copy test for two same-language texts sharing enough words.

    Jaccard alone cannot tell a copy from a follow-up on the same event (both share most names
    and topic words) nor catch an independent translation (which words differently). So: a copy
    keeps (nearly) all its words inside the other text (truncated, a paragraph dropped), or it
    keeps their order (re-edited copies, independent translations).
    """
    return found.jaccard >= settings.duplicate_threshold and (
        found.containment >= settings.duplicate_containment
        or found.order >= settings.duplicate_order
    )


def story_threshold(same_language: bool, settings: DedupeSettings) -> float:
    """The Jaccard at which two articles are one story.

    Two reports of different events on one subject in one language share their names and topic
    words; a story and its translation share fewer words than that, through a translation engine.
    So articles of one language must share more to be one story than a story and its translation.
    """
    return settings.same_language_cluster_threshold if same_language else settings.cluster_threshold


def decide(
    probe: Probe, candidates: Iterable[StoredFingerprint], settings: DedupeSettings
) -> StoredFingerprint:
    """The pure decision: which story the article belongs to, and what it duplicates.

    A copy outranks a merely similar article; among equals the most similar, then the earliest.
    Only candidates similar enough for their language count (``story_threshold``).
    """
    fingerprint = probe.fingerprint
    best: tuple[bool, float] = (False, 0.0)
    chosen: StoredFingerprint | None = None
    for candidate in candidates:
        if candidate.article_id == probe.article_id or not within_window(
            candidate.time, probe.time, settings
        ):
            continue
        if candidate.content_hash == fingerprint.content_hash:
            rank = (True, 1.0)
        else:
            found = overlap(
                fingerprint.shingles,
                fingerprint.positions,
                candidate.shingles,
                candidate.positions,
                settings.order_tolerance,
            )
            same_language = candidate.language == probe.language
            copy = same_language and is_copy(found, settings)
            if not copy and found.jaccard < story_threshold(same_language, settings):
                continue
            rank = (copy, found.jaccard)
        if rank > best or (rank == best and chosen is not None and candidate.time < chosen.time):
            best, chosen = rank, candidate
    own = StoredFingerprint(
        article_id=probe.article_id,
        time=probe.time,
        language=probe.language,
        content_hash=fingerprint.content_hash,
        shingles=fingerprint.shingles,
        positions=fingerprint.positions,
        band_keys=fingerprint.band_keys,
        cluster_id=probe.article_id,
    )
    copy, similarity = best
    if chosen is None:
        return own
    return replace(
        own,
        cluster_id=chosen.cluster_id,
        duplicate_of=(chosen.duplicate_of or chosen.article_id) if copy else None,
        similarity=round(similarity, 4),
    )


def shares_a_key(a: StoredFingerprint, probe: Probe) -> bool:
    return a.content_hash == probe.fingerprint.content_hash or not set(a.band_keys).isdisjoint(
        probe.fingerprint.band_keys
    )


def first_of_content(
    probe: Probe, candidates: Iterable[StoredFingerprint], settings: DedupeSettings
) -> bool:
    """Whether no candidate within the window has the article's exact content."""
    return not any(
        c.content_hash == probe.fingerprint.content_hash
        and c.article_id != probe.article_id
        and within_window(c.time, probe.time, settings)
        for c in candidates
    )


def rival_claim(
    claim: StoredFingerprint, first: StoredFingerprint, settings: DedupeSettings
) -> bool:
    """Whether a stored claim on ``first``'s content stands against it: another article's, and
    within the window (an older claim is taken over)."""
    return claim.article_id != first.article_id and within_window(claim.time, first.time, settings)


def decide_and_save(
    probes: list[Probe], store: FingerprintStore, settings: DedupeSettings
) -> list[StoredFingerprint]:
    """Decide a batch, in order, and save its new fingerprints; returns the decisions.

    Earlier articles of the batch are candidates for later ones, so two copies arriving together
    are linked too. An article first of its content claims it (``FingerprintStore.save``); if
    another worker's copy claimed it first, that copy becomes a candidate and the batch is
    decided and saved again, so the articles decided after it follow it into its story.
    """
    known = store.known([p.article_id for p in probes])
    fresh = [
        p
        for p in probes
        if p.article_id not in known
        or known[p.article_id].content_hash != p.fingerprint.content_hash
    ]
    found = dict(zip((p.article_id for p in fresh), store.candidates(fresh), strict=True))
    claimed_elsewhere: dict[str, StoredFingerprint] = {}
    while True:
        decisions: list[StoredFingerprint] = []
        new: list[StoredFingerprint] = []
        firsts: list[StoredFingerprint] = []
        for probe in probes:
            if probe.article_id not in found:
                decisions.append(known[probe.article_id])
                continue
            elsewhere = claimed_elsewhere.get(probe.fingerprint.content_hash)
            candidates = [
                *found[probe.article_id],
                *(d for d in new if shares_a_key(d, probe)),
                *([elsewhere] if elsewhere else []),
            ]
            decision = decide(probe, candidates, settings)
            decisions.append(decision)
            new.append(decision)
            if first_of_content(probe, candidates, settings):
                firsts.append(decision)
        lost = store.save(new, firsts)
        lost = {
            content: first for content, first in lost.items() if content not in claimed_elsewhere
        }
        if not lost:  # each round adds a content to claimed_elsewhere, so this ends
            return decisions
        claimed_elsewhere |= lost


class Deduplication:
    """The pipeline stage (run by ``pipeline.stage.RunStage``)."""

    name = "dedupe"

    def __init__(
        self, settings: DedupeSettings, store_factory: Callable[[], FingerprintStore]
    ) -> None:
        self._settings = settings
        self._store_factory = store_factory
        self._store: FingerprintStore | None = None
        self._evicted_until: datetime | None = None

    def load(self) -> None:
        self._store = self._store_factory()
        self._store.load()

    def run(self, batch: list[EnrichedArticle]) -> list[EnrichedArticle]:
        assert self._store is not None, "load() first"
        if not batch:
            return batch
        probes = [
            Probe(
                item.article.id,
                article_time(item),
                item.language.code if item.language else UNDETERMINED,
                fingerprint_of(item, self._settings),
            )
            for item in batch
        ]
        decisions = decide_and_save(probes, self._store, self._settings)
        self._evict_expired(max(p.time for p in probes))
        suppress = self._settings.duplicates == "suppress"
        result = []
        for item, decision in zip(batch, decisions, strict=True):
            duplication = Duplication(
                content_hash=decision.content_hash,
                cluster_id=decision.cluster_id,
                duplicate_of=decision.duplicate_of,
                similarity=decision.similarity,
                suppressed=suppress and decision.duplicate_of is not None,
            )
            decided = replace(item, duplication=duplication)
            if counter := _BEAM_COUNTERS.get(decided.dedupe_outcome or ""):  # for any runner
                beam.metrics.Metrics.counter(self.name, counter).inc()
            result.append(decided)
        return result

    def _evict_expired(self, newest: datetime) -> None:
        """Like a timer per window: drop fingerprints a full window older than the newest seen.

        Runs at most once per tenth of a window, so its cost is spread thin over the stream.
        """
        assert self._store is not None
        window = timedelta(days=self._settings.window_days)
        horizon = newest - window
        if self._evicted_until is not None and horizon - self._evicted_until < window / 10:
            return
        removed = self._store.evict(horizon)
        beam.metrics.Metrics.counter(self.name, "evicted").inc(removed)
        self._evicted_until = horizon
