"""The news index: its definition (``deploy/elasticsearch/news-index.json``), setup and migration.

Clients never name a concrete index. Readers use the read alias (``news``), the pipeline writes
through the write alias (``news-write``); the index behind them is ``news-v<mapping version>``.
A mapping change is a new version: ``migrate`` creates the new index, moves the write alias to it
(new documents land there from that moment), copies the old documents that are not there yet,
and only then moves the read alias — no downtime for readers, no lost writes.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from functools import cache
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError
from elasticsearch.helpers import scan, streaming_bulk

from newsflow.errors import NewsflowError
from newsflow.settings import ElasticsearchSettings

INDEX_DEFINITION = (
    Path(__file__).resolve().parent.parent / "deploy" / "elasticsearch" / "news-index.json"
)
_MIGRATION_CHUNK = 500


class ElasticsearchUnavailable(NewsflowError):
    pass


class IndexOutdated(NewsflowError):
    """The aliases point to an index with an older mapping than this code writes."""


@cache
def index_definition() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(INDEX_DEFINITION.read_text())
    definition.pop("_comment", None)
    return definition


def mapping_version() -> int:
    return int(index_definition()["version"])


def concrete_index_name(alias: str, version: int | None = None) -> str:
    return f"{alias}-v{mapping_version() if version is None else version}"


def write_alias(alias: str) -> str:
    return f"{alias}-write"


def client(settings: ElasticsearchSettings) -> Elasticsearch:
    return Elasticsearch(
        settings.url,
        request_timeout=settings.request_timeout_seconds,
        retry_on_timeout=True,
        max_retries=3,
    )


def _unreachable(settings: ElasticsearchSettings, exc: Exception) -> ElasticsearchUnavailable:
    return ElasticsearchUnavailable(
        f"Elasticsearch at {settings.url} is unreachable ({exc}); start it with "
        "`newsflow stack up` or set NEWSFLOW_ELASTICSEARCH__URL"
    )


def _indices_behind(es: Elasticsearch, alias: str) -> list[str]:
    if not es.indices.exists_alias(name=alias):
        return []
    return sorted(es.indices.get_alias(name=alias))


def _create(es: Elasticsearch, name: str, aliases: dict[str, Any]) -> None:
    definition = index_definition()
    try:
        es.indices.create(
            index=name,
            settings=definition["settings"],
            mappings=definition["mappings"],
            aliases=aliases,
        )
    except ApiError as exc:
        if exc.meta.status != 400 or "resource_already_exists" not in str(exc):
            raise  # "already exists" means another worker got there first: fine


def ensure_index(es: Elasticsearch, settings: ElasticsearchSettings) -> str:
    """Create the current index with both aliases if there is none; refuse an outdated one."""
    alias = settings.index_alias
    name = concrete_index_name(alias)
    try:
        behind = _indices_behind(es, alias)
        if not behind:
            _create(es, name, {alias: {}, write_alias(alias): {"is_write_index": True}})
        elif name in behind and not _indices_behind(es, write_alias(alias)):
            # made by a release that had no write alias yet: add it
            es.indices.put_alias(index=name, name=write_alias(alias), is_write_index=True)
        elif name not in behind:
            raise IndexOutdated(
                f"alias {alias!r} points to {', '.join(behind)}, but this version of newsflow "
                f"writes {name} (mapping version {mapping_version()}); run `newsflow index "
                "migrate` to move to it without downtime"
            )
    except TransportError as exc:
        raise _unreachable(settings, exc) from exc
    return alias


@dataclass(frozen=True)
class IndexStatus:
    alias: str
    read_indices: list[str]
    write_indices: list[str]
    documents: int
    current: str  # the index this code writes
    up_to_date: bool


def status(es: Elasticsearch, settings: ElasticsearchSettings) -> IndexStatus:
    alias = settings.index_alias
    try:
        readers = _indices_behind(es, alias)
        writers = _indices_behind(es, write_alias(alias))
        documents = int(es.count(index=alias)["count"]) if readers else 0
    except TransportError as exc:
        raise _unreachable(settings, exc) from exc
    current = concrete_index_name(alias)
    return IndexStatus(alias, readers, writers, documents, current, readers == writers == [current])


def migrate(
    es: Elasticsearch, settings: ElasticsearchSettings, progress: Any = None
) -> IndexStatus:
    """Move both aliases to the current mapping version, copying documents, without downtime.

    Order matters: the write alias moves first, so every document the pipeline writes from then
    on lands in the new index; the copy uses ``op_type=create`` so it never overwrites those
    fresher documents; the read alias moves last, once the new index holds everything.
    """
    alias = settings.index_alias
    target = concrete_index_name(alias)
    before = status(es, settings)
    if not before.read_indices:
        ensure_index(es, settings)
        return status(es, settings)
    if before.up_to_date:
        return before
    _create(es, target, {})
    moves: list[dict[str, Any]] = [
        {"remove": {"index": old, "alias": write_alias(alias)}} for old in before.write_indices
    ]
    moves.append({"add": {"index": target, "alias": write_alias(alias), "is_write_index": True}})
    es.indices.update_aliases(actions=moves)
    sources = [old for old in before.read_indices if old != target]
    # Two passes: writes routed to the old index just before the alias moved may become
    # searchable only after the first scan started; the second pass picks them up (everything
    # else answers 409, already there).
    copied = sum(_copy(es, sources, target, progress) for _ in range(2))
    es.indices.refresh(index=target)
    es.indices.update_aliases(
        actions=[
            *({"remove": {"index": old, "alias": alias}} for old in sources),
            {"add": {"index": target, "alias": alias}},
        ]
    )
    if progress:
        progress(f"copied {copied} documents; {alias!r} now reads {target}")
    return status(es, settings)


def _copy(es: Elasticsearch, sources: list[str], target: str, progress: Any) -> int:
    """Copy documents missing from ``target``; never overwrite one (``op_type=create``)."""
    es.indices.refresh(index=sources)
    copied = 0
    for ok, info in streaming_bulk(
        es,
        (
            {"_op_type": "create", "_index": target, "_id": hit["_id"], "_source": hit["_source"]}
            for hit in scan(es, index=sources, query={"query": {"match_all": {}}})
        ),
        chunk_size=_MIGRATION_CHUNK,
        raise_on_error=False,
        max_retries=5,
    ):
        result = info["create"]
        if ok:
            copied += 1
        elif result.get("status") != 409:  # 409: already there (written anew, or copied)
            raise NewsflowError(f"migration stopped: could not copy {result['_id']}: {result}")
        if progress and copied and copied % 1000 == 0:
            progress(f"copied {copied} documents")
    return copied
