"""The news index: its definition (``deploy/elasticsearch/news-index.json``), a client, and setup.

Writes and reads go through the alias (``elasticsearch.index_alias``, default ``news``), never a
concrete index, so a later mapping version can be rolled out behind it without touching clients.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from newsflow.errors import NewsflowError
from newsflow.settings import ElasticsearchSettings

INDEX_DEFINITION = (
    Path(__file__).resolve().parent.parent / "deploy" / "elasticsearch" / ("news-index.json")
)


class ElasticsearchUnavailable(NewsflowError):
    pass


class IndexOutdated(NewsflowError):
    """The alias points to an index with an older mapping than this code writes."""


@cache
def index_definition() -> dict[str, Any]:
    definition: dict[str, Any] = json.loads(INDEX_DEFINITION.read_text())
    definition.pop("_comment", None)
    return definition


def concrete_index_name(alias: str) -> str:
    return f"{alias}-v{index_definition()['version']}"


def client(settings: ElasticsearchSettings) -> Elasticsearch:
    return Elasticsearch(
        settings.url,
        request_timeout=settings.request_timeout_seconds,
        retry_on_timeout=True,
        max_retries=3,
    )


def ensure_index(es: Elasticsearch, settings: ElasticsearchSettings) -> str:
    """Create the versioned index behind the alias if the alias does not exist yet."""
    alias = settings.index_alias
    name = concrete_index_name(alias)
    try:
        if es.indices.exists_alias(name=alias):
            behind = sorted(es.indices.get_alias(name=alias))
            if name not in behind:
                raise IndexOutdated(
                    f"alias {alias!r} points to {', '.join(behind)}, but this version of newsflow "
                    f"writes {name} (mapping version {index_definition()['version']}); reindex "
                    f"into {name} and move the alias, or for a disposable local index delete "
                    f"the old one (curl -XDELETE {settings.url}/{behind[0]})"
                )
            return alias
        definition = index_definition()
        es.indices.create(
            index=name,
            settings=definition["settings"],
            mappings=definition["mappings"],
            aliases={alias: {"is_write_index": True}},
        )
    except ApiError as exc:
        if exc.meta.status == 400 and "resource_already_exists" in str(exc):
            return alias  # created concurrently by another worker
        raise
    except TransportError as exc:
        raise ElasticsearchUnavailable(
            f"Elasticsearch at {settings.url} is unreachable ({exc}); start it with "
            "`newsflow stack up` or set NEWSFLOW_ELASTICSEARCH__URL"
        ) from exc
    return alias
