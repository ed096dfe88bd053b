"""Bulk-index enriched articles into the news alias, and release only what Elasticsearch acked.

``streaming_bulk`` runs with ``raise_on_error=False`` so per-document failures are data: 429s are
retried inside the call with backoff (elasticsearch-py only honours ``max_retries`` this way),
documents it rejects for good (mapping conflicts, bad values) go to the dead-letter output with
the reason, and transient failures (connection errors, 5xx, 429s that outlived the retries) are
retried with capped backoff within ``elasticsearch.retry_budget_seconds``; past that the stage
raises, the bundle fails and no offset is committed. ``_id`` = article id makes every retry and
every replay an overwrite, never a duplicate.

The news index is one index per month, so "overwrite" needs to know where the article already
lives: each batch asks with one search (``stored_copies``), and writes every article where it is
stored (``newsflow.index.place``), whatever month its new version's dates point to. A search sees
only refreshed writes, so each bundle starts with a refresh (any worker may have written the
article in the bundle before), and the sink remembers where it wrote during the bundle.
"""

from __future__ import annotations

import json
import logging
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

import apache_beam as beam
from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.helpers import streaming_bulk

from newsflow.index import (
    ElasticsearchUnavailable,
    client,
    concrete_index_name,
    ensure_index,
    ensure_period,
    refresh,
    stored_copies,
    with_derived_fields,
    write_actions,
)
from newsflow.settings import ElasticsearchSettings
from pipeline import metrics
from pipeline.dead_letter import DeadLetter
from pipeline.enriched import Duplication, EnrichedArticle, Translation, facets
from pipeline.kafka_source import Origin
from pipeline.stage import Batch

STAGE = "index"
_MAX_BACKOFF_SECONDS = 30.0
_LOG = logging.getLogger("newsflow.pipeline")
T = TypeVar("T")


def to_document(item: EnrichedArticle, indexed_at: datetime) -> dict[str, Any]:
    """The Elasticsearch document for an enriched article (fields of news-index.json)."""
    article = item.article
    document: dict[str, Any] = json.loads(article.model_dump_json(exclude_none=True))
    translation = item.translation
    document.update(
        title_en=item.english_title,
        body_en=item.english_body,
        language=item.language.code if item.language else None,
        language_confidence=item.language.confidence if item.language else None,
        language_mixed=list(item.language.mixed) if item.language and item.language.mixed else None,
        translation=_provenance(translation) if translation else None,
        entities=facets(item.entities),
        original_entities=facets(item.original_entities) or None,
        entity_details=[
            {**asdict(entity), "surface_forms": list(entity.surface_forms)}
            for entity in item.entities
        ],
        dedupe=_duplication(item.duplication) if item.duplication else None,
        indexed_at=indexed_at.isoformat(),
        kafka={
            "topic": item.origin.topic,
            "partition": item.origin.partition,
            "offset": item.origin.offset,
        },
    )
    return with_derived_fields({k: v for k, v in document.items() if v is not None})


def _duplication(duplication: Duplication) -> dict[str, Any]:
    fields = asdict(duplication)
    del fields["suppressed"]  # suppressed documents are never indexed
    return {k: v for k, v in fields.items() if v is not None}


def _provenance(translation: Translation) -> dict[str, Any]:
    """What the index keeps about a translation: everything but the translated text itself."""
    fields = asdict(translation)
    del fields["title"], fields["body"]
    fields["path"] = list(translation.path)
    return {k: v for k, v in fields.items() if v not in ("", [])}


def retry_delays(budget_seconds: float, cap: float = _MAX_BACKOFF_SECONDS) -> Iterator[float]:
    """Capped exponential backoff (1, 2, 4, ... s) ending before ``budget_seconds`` are spent.

    Both the waits and the wall clock count, so slow attempts also use up the budget.
    """
    deadline = time.monotonic() + budget_seconds
    waited, delay = 0.0, 1.0
    while waited + delay <= budget_seconds and time.monotonic() + delay <= deadline:
        yield delay
        waited += delay
        delay = min(delay * 2, cap)


def retry_within_budget(call: Callable[[], T], settings: ElasticsearchSettings, what: str) -> T:
    """``call()``, retrying connection failures and overload within the budget; then fail the
    bundle (``ElasticsearchUnavailable``: offsets stay uncommitted, nothing is dead-lettered).

    For a stage's own requests, which no single article caused. ``what`` names the caller in the
    messages ("the dedupe store news-dedupe").
    """
    delays = retry_delays(settings.retry_budget_seconds)
    while True:
        try:
            return call()
        except (TransportError, ApiError) as exc:
            status = getattr(getattr(exc, "meta", None), "status", None)
            if isinstance(exc, ApiError) and status not in (429, 502, 503, 504):
                raise ElasticsearchUnavailable(f"{what} refused a request: {exc}") from exc
            delay = next(delays, None)
            if delay is None:
                raise ElasticsearchUnavailable(
                    f"{what} at {settings.url} unavailable after "
                    f"{settings.retry_budget_seconds:.0f}s: {exc}; offsets were not "
                    "committed, restart the pipeline once Elasticsearch is healthy"
                ) from exc
            _LOG.warning("%s unavailable (%s); retrying in %.0fs", what, exc, delay)
            time.sleep(delay)


def is_transient(status: int | str) -> bool:
    """Worth retrying later: overload (429) or a server-side failure (5xx, or no status at all)."""
    return not isinstance(status, int) or status == 429 or status >= 500


@dataclass
class BulkOutcome:
    acknowledged: list[Origin] = field(default_factory=list)
    rejected: list[DeadLetter] = field(default_factory=list)
    retry: list[EnrichedArticle] = field(default_factory=list)


def classify_results(
    batch: list[EnrichedArticle], results: Iterable[tuple[bool, dict[str, Any]]]
) -> BulkOutcome:
    """Match bulk results to the articles sent (by ``_id``, in order) and sort them three ways.

    Articles without a result (the call broke off) are left for retry, and so are articles whose
    stray copy in another month could not be deleted (already gone, 404, is fine): the retry
    writes them again where they are and deletes the copy again.
    """
    waiting: dict[str, list[EnrichedArticle]] = {}
    for item in batch:
        waiting.setdefault(item.article.id, []).append(item)
    outcome = BulkOutcome()
    written: list[EnrichedArticle] = []
    unsettled: set[str] = set()
    for ok, info in results:
        ((operation, result),) = info.items()
        status = result.get("status", "N/A")
        if operation == "delete":
            if not ok and status != 404:
                unsettled.add(result["_id"])
            continue
        item = waiting[result["_id"]].pop(0)
        if ok:
            written.append(item)
        elif is_transient(status):
            outcome.retry.append(item)
        else:
            outcome.rejected.append(
                DeadLetter(
                    origin=item.origin,
                    stage=STAGE,
                    error_class=f"elasticsearch:{status}",
                    error=json.dumps(result.get("error"), ensure_ascii=False),
                    payload=item.article.to_json(),
                    article_id=item.article.id,
                )
            )
    outcome.retry.extend(item for items in waiting.values() for item in items)
    for item in written:
        if item.article.id in unsettled:
            outcome.retry.append(item)
        else:
            outcome.acknowledged.append(item.origin)
    return outcome


class IndexDocuments(beam.DoFn):
    """Bulk-index each batch; acknowledged origins and rejected documents travel on in it."""

    def __init__(self, settings: ElasticsearchSettings) -> None:
        self._settings = settings
        self._es: Elasticsearch | None = None
        self._periods: set[str] = set()  # periods whose index and write alias exist
        self._written: dict[str, str] = {}  # article id -> index, written in this bundle
        self._refreshed = False  # in this bundle

    def setup(self) -> None:
        """Connect and create the index, waiting within the budget for Elasticsearch to be up."""
        self._es = client(self._settings)
        delays = retry_delays(self._settings.retry_budget_seconds)
        while True:
            try:
                ensure_index(self._es, self._settings)
                return
            except (ElasticsearchUnavailable, TransportError) as exc:
                delay = next(delays, None)
                if delay is None:
                    raise ElasticsearchUnavailable(
                        f"Elasticsearch at {self._settings.url} still unavailable after "
                        f"{self._settings.retry_budget_seconds:.0f}s: {exc}"
                    ) from exc
                time.sleep(delay)

    def start_bundle(self) -> None:
        self._written, self._refreshed = {}, False

    def _bulk(self, batch: list[EnrichedArticle]) -> BulkOutcome:
        assert self._es is not None
        started = time.perf_counter()
        indexed_at = datetime.now(UTC)
        results: list[tuple[bool, dict[str, Any]]] = []
        documents = [(item.article.id, to_document(item, indexed_at)) for item in batch]
        periods: dict[str, str] = {}
        try:
            stored = self._stored_in([doc_id for doc_id, _ in documents])
            actions, periods = write_actions(self._settings, documents, stored)
            self._ensure_periods(periods.values())
            for result in streaming_bulk(
                self._es,
                actions,
                chunk_size=self._settings.bulk_chunk_size,
                max_retries=self._settings.bulk_max_retries,
                initial_backoff=1,
                max_backoff=int(_MAX_BACKOFF_SECONDS),
                raise_on_error=False,
                raise_on_exception=True,
                require_alias=True,  # a missing alias is an error, never a new stray index
            ):
                results.append(result)
        except (TransportError, ApiError) as exc:
            # Whatever has no result yet is retried by the caller; a failed lookup writes nothing.
            _LOG.warning("indexing interrupted: %s", exc, extra={"stage": STAGE})
            if not periods:
                metrics.lookup_failed(STAGE, type(exc).__name__)
        outcome = classify_results(batch, results)
        alias = self._settings.index_alias
        acknowledged = set(outcome.acknowledged)
        for item in batch:
            if item.origin in acknowledged:
                self._written[item.article.id] = concrete_index_name(
                    alias, periods[item.article.id]
                )
        metrics.bulk_request(time.perf_counter() - started, retry=bool(outcome.retry))
        return outcome

    def _stored_in(self, ids: list[str]) -> dict[str, list[str]]:
        """The indices holding each article: this bundle's writes, then one search for the rest."""
        assert self._es is not None
        alias = self._settings.index_alias
        unknown = [doc_id for doc_id in ids if doc_id not in self._written]
        if unknown and not self._refreshed:
            refresh(self._es, alias)  # writes of earlier bundles, by any worker, become visible
            self._refreshed = True
        found = stored_copies(self._es, alias, unknown)
        stored = {doc_id: [hit["_index"] for hit in hits] for doc_id, hits in found.items()}
        stored.update(
            {doc_id: [self._written[doc_id]] for doc_id in ids if doc_id in self._written}
        )
        return stored

    def _ensure_periods(self, periods: Iterable[str]) -> None:
        """Create the index of a period seen for the first time (a new month, an old article)."""
        assert self._es is not None
        for period in periods:
            if period not in self._periods:
                ensure_period(self._es, self._settings, period)
                self._periods.add(period)

    def process(self, batch: Batch) -> Iterator[Batch]:
        """Index the batch's articles; their origins become acknowledged or dead letters."""
        acknowledged = list(batch.acknowledged)
        letters = list(batch.dead_letters)
        delays = retry_delays(self._settings.retry_budget_seconds)
        pending = []
        metrics.reached_sink(STAGE, batch.articles)
        for item in batch.articles:
            if item.duplication is not None and item.duplication.suppressed:
                acknowledged.append(item.origin)  # a duplicate, not indexed by choice
            else:
                pending.append(item)
        while pending:
            outcome = self._bulk(pending)
            sent = {item.origin: item for item in pending}
            metrics.acknowledged(STAGE, (sent[origin] for origin in outcome.acknowledged))
            acknowledged.extend(outcome.acknowledged)
            letters.extend(outcome.rejected)
            pending = outcome.retry
            if pending:
                delay = next(delays, None)
                if delay is None:
                    raise ElasticsearchUnavailable(
                        f"{len(pending)} document(s) not accepted by Elasticsearch at "
                        f"{self._settings.url} within {self._settings.retry_budget_seconds:.0f}s; "
                        "offsets were not committed, restart the pipeline once it is healthy"
                    )
                metrics.retried(STAGE, "elasticsearch:transient", len(pending))
                _LOG.warning(
                    "Elasticsearch at %s did not accept %d document(s); retrying in %.0fs",
                    self._settings.url,
                    len(pending),
                    delay,
                    extra={"stage": STAGE},
                )
                time.sleep(delay)
        yield Batch(articles=(), dead_letters=tuple(letters), acknowledged=tuple(acknowledged))

    def teardown(self) -> None:
        if self._es is not None:
            self._es.close()
