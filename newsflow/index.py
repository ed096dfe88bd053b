"""The news index: its template (``newsflow/news-index.json``), time-based indices,
setup and migration.

Clients never name a concrete index. Readers use the read alias (``news``). Documents live in
one index per period of their publication date, monthly by default (``news-v5-2026.11``), made
from the versioned index template ``news-v5``; each has its own write alias
(``news-write-2026.11``), which is what the pipeline writes through.

Why route by the document's own date and not through one rolling write alias: the document id is
the article id, and a re-ingested or replayed article must overwrite its earlier copy. Behind a
rollover alias, a replay after the month changed would put a second copy into the new index.
An article's period is chosen once, when it is first stored (publication date, else fetch time),
and every later version is written where the article already lives (``place``), even when its
dates now point elsewhere (a page re-fetched next month, a corrected publication date): one
document per article id behind the read alias, whatever month its versions fall in. Readers by
id search the alias (``stored_copies``, ``stored_sources``): a GET or ``mget`` on an alias that
spans several indices is refused.

A mapping change is a new template version. ``migrate`` creates the new version's indices, moves
each write alias to them (new writes land there from that moment), copies the old documents that
are not there yet, and only then moves the read alias: no downtime for readers, no lost writes.
"""

from __future__ import annotations

import json
import re
from collections.abc import Callable, Iterable, Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from functools import cache
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError
from elasticsearch.helpers import bulk, scan, streaming_bulk

from newsflow.errors import NewsflowError
from newsflow.settings import ElasticsearchSettings

#: Package data, so an installed newsflow finds the template its writer matches.
INDEX_DEFINITION = Path(__file__).with_name("news-index.json")
_MIGRATION_CHUNK = 500
#: Elasticsearch's default ``index.max_result_window``: one id lookup returns at most this many.
_MAX_COPIES_RETURNED = 10_000
#: A publication date this far after the fetch is the source's mistake; the fetch time is used.
_FUTURE_TOLERANCE = timedelta(days=1)
#: Above Elastic's built-in templates (priority 100, e.g. ``logs-*-*``), so any alias works.
_TEMPLATE_PRIORITY_BASE = 200
_INDEX_NAME = re.compile(r"^(?P<alias>.+)-v(?P<version>\d+)(?:-(?P<period>\d{4}(?:\.\d{2})?))?$")

Progress = Callable[[str], None]
Clock = Callable[[], datetime]


def _utc_now() -> datetime:
    return datetime.now(UTC)


class ElasticsearchUnavailable(NewsflowError):
    pass


class IndexOutdated(NewsflowError):
    """The aliases point to indices with an older mapping than this code writes."""


@cache
def index_definition() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(INDEX_DEFINITION.read_text())
    definition.pop("_comment", None)
    return definition


def mapping_version() -> int:
    return int(index_definition()["version"])


@cache
def analyzed_languages() -> frozenset[str]:
    """Languages whose original text gets its own analyzer (``original.<language>``)."""
    return frozenset(index_definition()["mappings"]["properties"]["original"]["properties"])


def hunspell_locales(definition: Mapping[str, Any] | None = None) -> set[str]:
    """Hunspell dictionaries the template needs under ``config/hunspell/<locale>/``."""
    filters = (definition or index_definition())["settings"]["analysis"]["filter"]
    return {f["locale"] for f in filters.values() if f["type"] == "hunspell"}


# -- names ----------------------------------------------------------------------------------------


def template_name(alias: str, version: int | None = None) -> str:
    return f"{alias}-v{mapping_version() if version is None else version}"


def concrete_index_name(alias: str, period: str, version: int | None = None) -> str:
    return f"{template_name(alias, version)}-{period}"


def write_alias(alias: str, period: str) -> str:
    return f"{alias}-write-{period}"


def parse_index_name(alias: str, name: str) -> tuple[int, str | None] | None:
    """(mapping version, period) of an index newsflow made for ``alias``; None if it is not one.

    The period is None for the single unpartitioned index of mapping versions before 4.
    """
    match = _INDEX_NAME.match(name)
    if not match or match["alias"] != alias:
        return None
    return int(match["version"]), match["period"]


# -- documents ------------------------------------------------------------------------------------


def period_of(document: Mapping[str, Any], period: str) -> str:
    """The index period of a document: when it was published, else when it was fetched.

    ``period`` is ``month`` (``2026.11``) or ``year`` (``2026``).
    """
    fetched = _timestamp(document.get("fetched_at") or document["indexed_at"])
    published = document.get("published_at")
    when = fetched
    if published:
        claimed = _timestamp(published)
        if claimed <= fetched + _FUTURE_TOLERANCE:
            when = claimed
    return f"{when.year:04d}" if period == "year" else f"{when.year:04d}.{when.month:02d}"


def _timestamp(value: str | datetime) -> datetime:
    when = value if isinstance(value, datetime) else datetime.fromisoformat(value)
    return when.astimezone(UTC) if when.tzinfo else when.replace(tzinfo=UTC)


def original_language_fields(language: str | None, title: str, body: str) -> dict[str, Any]:
    """``original.<language>.title/body`` for the languages the template analyzes, else nothing.

    Derived from the document itself and kept out of ``_source``, so the sink and ``migrate``
    compute it the same way.
    """
    if language not in analyzed_languages():
        return {}
    texts = {name: text for name, text in (("title", title), ("body", body)) if text}
    return {"original": {language: texts}} if texts else {}


def with_derived_fields(document: Mapping[str, Any]) -> dict[str, Any]:
    """The document plus what the index derives from it (kept out of ``_source``)."""
    return {
        **document,
        **original_language_fields(
            document.get("language"), document.get("title", ""), document.get("body", "")
        ),
    }


def index_action(
    settings: ElasticsearchSettings,
    doc_id: str,
    document: Mapping[str, Any],
    period: str | None = None,
) -> dict[str, Any]:
    """A bulk action writing ``document`` through the write alias of ``period`` (else its own)."""
    return {
        "_op_type": "index",
        "_index": write_alias(
            settings.index_alias, period or period_of(document, settings.index_period)
        ),
        "_id": doc_id,
        "_source": document,
    }


# -- where an article lives -----------------------------------------------------------------------


@dataclass(frozen=True)
class Placement:
    """Where to write an article: the period whose write alias takes it, and copies to delete."""

    period: str
    strays: tuple[str, ...] = ()  # concrete indices holding a second copy of it


def place(alias: str, period: str, stored_in: Iterable[str]) -> Placement:
    """Where an article whose document falls in ``period`` goes, given the indices holding it.

    New: its own period. Stored: where it is, so a later version never becomes a second document
    in another month. Stored twice (by versions before this rule): the earliest period stays and
    the other copies go, so the choice is the same on every retry. Stored only in an older mapping
    version (during ``migrate``): that period, whose write alias already leads to this version.
    """
    current: list[str] = []
    older: list[str] = []
    for index in stored_in:
        parsed = parse_index_name(alias, index)
        if parsed is None or parsed[1] is None:
            continue  # not ours, or the unpartitioned index of versions before 4
        (current if parsed[0] == mapping_version() else older).append(parsed[1])
    if current:
        keep = min(current)
        strays = sorted({concrete_index_name(alias, p) for p in current if p != keep})
        return Placement(keep, tuple(strays))
    return Placement(min(older) if older else period)


def write_actions(
    settings: ElasticsearchSettings,
    documents: Iterable[tuple[str, Mapping[str, Any]]],
    stored: Mapping[str, Iterable[str]],
) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Bulk actions for ``(id, document)`` pairs, and the period each id is written to.

    ``stored`` maps ids to the indices holding them. Every version of one id in the batch goes to
    the same period (the first version's, when the article is new). Deletes of stray copies come
    after the writes, so a failure between them leaves two copies for the retry to settle, never
    none.
    """
    alias = settings.index_alias
    periods: dict[str, str] = {}
    writes: list[dict[str, Any]] = []
    deletes: list[dict[str, Any]] = []
    for doc_id, document in documents:
        if doc_id not in periods:
            placement = place(
                alias, period_of(document, settings.index_period), stored.get(doc_id, ())
            )
            periods[doc_id] = placement.period
            deletes.extend(
                {"_op_type": "delete", "_index": index, "_id": doc_id} for index in placement.strays
            )
        writes.append(index_action(settings, doc_id, document, periods[doc_id]))
    return writes + deletes, periods


def lookup_targets(alias: str) -> str:
    """The read alias and this version's indices, which ``migrate`` fills before the alias moves."""
    return f"{alias},{template_name(alias)}-*"


def stored_copies(
    es: Elasticsearch, alias: str, ids: Iterable[str], fields: list[str] | None = None
) -> dict[str, list[dict[str, Any]]]:
    """Every stored copy of each id (hits with ``_index``, and ``_source`` with ``fields``), in one
    search.

    Searches see what the last refresh made visible (``refresh``); errors are the caller's to
    handle, since an unanswered lookup must never pass for "not stored".
    """
    wanted = sorted(set(ids))
    if not wanted:
        return {}
    response = es.search(
        index=lookup_targets(alias),
        query={"ids": {"values": wanted}},
        size=_MAX_COPIES_RETURNED,
        track_total_hits=True,
        **({"source_includes": fields} if fields else {"source": False}),
        ignore_unavailable=True,
        allow_no_indices=True,
    )
    hits = response["hits"]["hits"]
    if response["hits"]["total"]["value"] > len(hits):
        raise NewsflowError(
            f"{response['hits']['total']['value']} copies of {len(wanted)} ids in {alias!r}, more "
            f"than one search returns ({len(hits)}); look them up in smaller batches"
        )
    found: dict[str, list[dict[str, Any]]] = {}
    for hit in hits:
        found.setdefault(hit["_id"], []).append(hit)
    return found


def stored_sources(
    es: Elasticsearch, alias: str, ids: Iterable[str], fields: list[str]
) -> dict[str, dict[str, Any]]:
    """The stored ``fields`` of each id, read from the copy the writer keeps (``place``)."""
    return {
        doc_id: _kept_copy(alias, hits).get("_source", {})
        for doc_id, hits in stored_copies(es, alias, ids, fields).items()
    }


def _kept_copy(alias: str, hits: list[dict[str, Any]]) -> dict[str, Any]:
    kept = place(alias, "", (hit["_index"] for hit in hits)).period
    return next(
        (hit for hit in hits if (parse_index_name(alias, hit["_index"]) or (0, None))[1] == kept),
        hits[0],
    )


def refresh(es: Elasticsearch, alias: str) -> None:
    """Make every acknowledged write visible to ``stored_copies``, which searches."""
    es.indices.refresh(index=lookup_targets(alias), ignore_unavailable=True, allow_no_indices=True)


# -- connection -----------------------------------------------------------------------------------


def client(settings: ElasticsearchSettings) -> Elasticsearch:
    """The one way newsflow connects to Elasticsearch, with its credentials and TLS checks."""
    security: dict[str, Any] = {}
    if settings.api_key is not None:
        security["api_key"] = settings.api_key.get_secret_value()
    elif settings.username is not None and settings.password is not None:
        security["basic_auth"] = (settings.username, settings.password.get_secret_value())
    if settings.url.startswith("https://"):
        security["verify_certs"] = settings.verify_certs
        if settings.ca_certs is not None:
            security["ca_certs"] = str(settings.ca_certs)
    return Elasticsearch(
        settings.url,
        request_timeout=settings.request_timeout_seconds,
        retry_on_timeout=True,
        max_retries=3,
        **security,
    )


def _unreachable(settings: ElasticsearchSettings, exc: Exception) -> ElasticsearchUnavailable:
    if "CERTIFICATE_VERIFY_FAILED" in str(exc):
        advice = (
            "its TLS certificate is not trusted; set NEWSFLOW_ELASTICSEARCH__CA_CERTS to the CA "
            "file that signed it"
        )
    else:
        advice = "start it with `newsflow stack up` or set NEWSFLOW_ELASTICSEARCH__URL"
    return ElasticsearchUnavailable(
        f"Elasticsearch at {settings.url} is unreachable ({exc}); {advice}"
    )


# -- setup ----------------------------------------------------------------------------------------


def _indices_behind(es: Elasticsearch, alias: str) -> list[str]:
    try:
        return sorted(es.indices.get_alias(name=alias))
    except NotFoundError:
        return []


def _write_aliases(es: Elasticsearch, alias: str) -> dict[str, str]:
    """Every write alias of ``alias`` (per period, and a pre-version-4 ``<alias>-write``)."""
    try:
        found = es.indices.get_alias(name=f"{alias}-write*")
    except NotFoundError:
        return {}
    return {
        name: index
        for index, entry in found.items()
        for name in entry["aliases"]
        if name == f"{alias}-write" or name.startswith(f"{alias}-write-")
    }


def _is_current(alias: str, index: str) -> bool:
    parsed = parse_index_name(alias, index)
    return parsed is not None and parsed[0] == mapping_version() and parsed[1] is not None


def ensure_template(es: Elasticsearch, alias: str) -> None:
    """Create or update this version's index template (idempotent)."""
    definition = index_definition()
    es.indices.put_index_template(
        name=template_name(alias),
        index_patterns=[f"{template_name(alias)}-*"],
        priority=_TEMPLATE_PRIORITY_BASE + mapping_version(),
        version=mapping_version(),
        template={"settings": definition["settings"], "mappings": definition["mappings"]},
        meta={"managed_by": "newsflow", "read_alias": alias},
    )


def _create(es: Elasticsearch, name: str, aliases: dict[str, Any]) -> None:
    """Create an index from the template; "already exists" means another worker was first."""
    try:
        es.indices.create(index=name, aliases=aliases)
    except ApiError as exc:
        if exc.meta.status != 400 or "resource_already_exists" not in str(exc):
            raise


def ensure_period(es: Elasticsearch, settings: ElasticsearchSettings, period: str) -> str:
    """The write alias for documents of ``period``, creating that period's index when new."""
    alias = settings.index_alias
    writer = write_alias(alias, period)
    try:
        behind = list(es.indices.get_alias(name=writer))
    except NotFoundError:
        _create(
            es,
            concrete_index_name(alias, period),
            {alias: {}, writer: {"is_write_index": True}},
        )
        return writer
    if not all(_is_current(alias, index) for index in behind):
        raise _outdated(alias, behind)
    return writer


def _outdated(alias: str, indices: Iterable[str]) -> IndexOutdated:
    return IndexOutdated(
        f"alias {alias!r} points to {', '.join(sorted(indices))}, but this version of newsflow "
        f"writes {template_name(alias)}-* (mapping version {mapping_version()}); run "
        "`newsflow index migrate` to move to it without downtime"
    )


def ensure_index(es: Elasticsearch, settings: ElasticsearchSettings, now: Clock = _utc_now) -> str:
    """Install the template, make sure the read alias exists; refuse outdated indices."""
    alias = settings.index_alias
    try:
        ensure_template(es, alias)
        behind = _indices_behind(es, alias)
        outdated = [index for index in behind if not _is_current(alias, index)]
        if outdated:
            raise _outdated(alias, outdated)
        if not behind:  # an empty index for now, so searches and health checks find the alias
            today = {"fetched_at": now().isoformat()}
            ensure_period(es, settings, period_of(today, settings.index_period))
    except TransportError as exc:
        raise _unreachable(settings, exc) from exc
    return alias


@dataclass(frozen=True)
class IndexStatus:
    alias: str
    version: int  # the mapping version this code writes
    read_indices: list[str]
    write_aliases: dict[str, str]  # write alias -> the index it writes to
    documents: int
    up_to_date: bool


def status(es: Elasticsearch, settings: ElasticsearchSettings) -> IndexStatus:
    alias = settings.index_alias
    try:
        readers = _indices_behind(es, alias)
        writers = _write_aliases(es, alias)
        documents = int(es.count(index=alias)["count"]) if readers else 0
    except TransportError as exc:
        raise _unreachable(settings, exc) from exc
    current = all(_is_current(alias, index) for index in [*readers, *writers.values()])
    return IndexStatus(
        alias, mapping_version(), readers, writers, documents, bool(readers) and current
    )


def remove(es: Elasticsearch, alias: str) -> None:
    """Delete every index and template newsflow made for ``alias`` (tests, benchmarks)."""
    names = [
        name
        for name in es.indices.get(index=f"{alias}-v*", expand_wildcards="all")
        if parse_index_name(alias, name)
    ]
    if names:
        es.indices.delete(index=names, ignore_unavailable=True)
    try:
        templates = es.indices.get_index_template(name=f"{alias}-v*")["index_templates"]
    except NotFoundError:
        templates = []
    for template in templates:
        if parse_index_name(alias, template["name"]):
            es.indices.delete_index_template(name=template["name"])


def write_documents(
    es: Elasticsearch,
    settings: ElasticsearchSettings,
    documents: Iterable[Mapping[str, Any]],
    now: Clock = _utc_now,
) -> None:
    """Index documents (each with its ``id``) where the pipeline would, and make them searchable.

    For tools, benchmarks and tests that fill an index without running the pipeline.
    """
    ensure_index(es, settings, now)
    pairs = [(str(document["id"]), with_derived_fields(document)) for document in documents]
    refresh(es, settings.index_alias)
    stored = stored_copies(es, settings.index_alias, (doc_id for doc_id, _ in pairs))
    actions, periods = write_actions(
        settings,
        pairs,
        {doc_id: [hit["_index"] for hit in hits] for doc_id, hits in stored.items()},
    )
    for period in set(periods.values()):
        ensure_period(es, settings, period)
    bulk(es, actions, refresh=True)


# -- migration ------------------------------------------------------------------------------------


def migrate(
    es: Elasticsearch, settings: ElasticsearchSettings, progress: Progress | None = None
) -> IndexStatus:
    """Move every alias to the current mapping version, copying documents, without downtime.

    Order matters: each write alias moves first, so every document the pipeline writes from then
    on lands in the new indices; the copy uses ``op_type=create`` so it never overwrites those
    fresher documents; the read alias moves last, once the new indices hold everything.
    """
    alias = settings.index_alias
    before = status(es, settings)
    ensure_template(es, alias)
    if not before.read_indices:
        ensure_index(es, settings)
        return status(es, settings)
    if before.up_to_date:
        return before
    for writer, index in before.write_aliases.items():
        period = writer.removeprefix(f"{alias}-write-")
        if writer != f"{alias}-write" and not _is_current(alias, index):
            target = concrete_index_name(alias, period)
            _create(es, target, {})
            es.indices.update_aliases(
                actions=[
                    {"remove": {"index": index, "alias": writer}},
                    {"add": {"index": target, "alias": writer, "is_write_index": True}},
                ]
            )
    sources = [index for index in before.read_indices if not _is_current(alias, index)]
    copier = _Copier(es, settings, progress)
    copier.copy(sources)
    if f"{alias}-write" in before.write_aliases:  # the single write alias of versions before 4
        es.indices.delete_alias(index=before.write_aliases[f"{alias}-write"], name=f"{alias}-write")
    # Writes routed to the old indices just before their alias moved may become searchable only
    # after the first scan started; a second pass picks them up (the rest answers 409).
    copier.copy(sources)
    targets = [
        name
        for name in es.indices.get(index=f"{template_name(alias)}-*", expand_wildcards="all")
        if _is_current(alias, name)
    ]
    es.indices.refresh(index=targets)
    es.indices.update_aliases(
        actions=[
            *({"remove": {"index": old, "alias": alias}} for old in sources),
            *({"add": {"index": new, "alias": alias}} for new in targets),
        ]
    )
    if progress:
        progress(f"copied {copier.copied} documents; {alias!r} now reads {', '.join(targets)}")
    return status(es, settings)


class _Copier:
    """Copies documents into the current version's index of their period, never overwriting."""

    def __init__(
        self, es: Elasticsearch, settings: ElasticsearchSettings, progress: Progress | None
    ) -> None:
        self._es = es
        self._settings = settings
        self._progress = progress
        self._ready: set[str] = set()
        self.copied = 0

    def copy(self, sources: list[str]) -> None:
        self._es.indices.refresh(index=sources)
        for ok, info in streaming_bulk(
            self._es,
            self._actions(scan(self._es, index=sources, query={"query": {"match_all": {}}})),
            chunk_size=_MIGRATION_CHUNK,
            raise_on_error=False,
            max_retries=5,
        ):
            result = info["create"]
            if ok:
                self.copied += 1
            elif result.get("status") != 409:  # 409: already there (written anew, or copied)
                raise NewsflowError(f"migration stopped: could not copy {result['_id']}: {result}")
            if self._progress and ok and self.copied % 1000 == 0:
                self._progress(f"copied {self.copied} documents")

    def _actions(self, hits: Iterable[dict[str, Any]]) -> Iterator[dict[str, Any]]:
        alias = self._settings.index_alias
        for hit in hits:
            source = hit["_source"]
            # Where the article lives, not where its dates point (``place``): the pipeline writes
            # its new versions there during the copy, and the copy must meet them, not pass them.
            parsed = parse_index_name(alias, hit["_index"])
            period = (
                parsed[1]
                if parsed and parsed[1]
                else period_of(source, self._settings.index_period)
            )
            if period not in self._ready:
                self._ensure_target(period)
            yield {
                "_op_type": "create",
                "_index": concrete_index_name(alias, period),
                "_id": hit["_id"],
                "_source": with_derived_fields(source),
            }

    def _ensure_target(self, period: str) -> None:
        """A period only the old indices had: its new index gets the write alias too."""
        alias = self._settings.index_alias
        writer = write_alias(alias, period)
        if self._es.indices.exists_alias(name=writer):
            _create(self._es, concrete_index_name(alias, period), {})
        else:
            _create(
                self._es, concrete_index_name(alias, period), {writer: {"is_write_index": True}}
            )
        self._ready.add(period)
