"""Analyst search over the news alias: a query builder, a thin call, and a terminal formatter."""

from __future__ import annotations

import textwrap
from typing import Any

from elasticsearch import NotFoundError, TransportError

from newsflow.index import ElasticsearchUnavailable, client
from newsflow.settings import ElasticsearchSettings

#: Entity types shown per hit, and how many of each.
SHOWN_ENTITY_TYPES = ("PERSON", "ORG", "GPE")
TOP_ENTITIES = 5
_SOURCE_FIELDS = [
    "title_en",
    "translation.status",
    "id",
    "title",
    "source",
    "url",
    "published_at",
    "fetched_at",
    "language",
    "entities",
]


def build_query(text: str) -> dict[str, Any]:
    """Full-text query over title (boosted) and body; all words should match, ranked by BM25."""
    return {
        "multi_match": {
            "query": text,
            # English (original or translated) first, then the original-language text.
            "fields": ["title_en^3", "body_en", "title^2", "body"],
            "type": "best_fields",
            "operator": "and",
        }
    }


def to_hit(raw: dict[str, Any]) -> dict[str, Any]:
    source = raw["_source"]
    entities = source.get("entities", {})
    return {
        "id": raw["_id"],
        "score": raw.get("_score"),
        "title": source.get("title", ""),
        "title_en": source.get("title_en"),
        "translation": source.get("translation", {}).get("status"),
        "source": source.get("source"),
        "url": source.get("url"),
        "date": source.get("published_at") or source.get("fetched_at"),
        "language": source.get("language"),
        "entities": {t: entities.get(t, [])[:TOP_ENTITIES] for t in SHOWN_ENTITY_TYPES},
    }


def search(settings: ElasticsearchSettings, text: str, size: int = 10) -> list[dict[str, Any]]:
    es = client(settings)
    try:
        response = es.search(
            index=settings.index_alias,
            query=build_query(text),
            size=size,
            source_includes=_SOURCE_FIELDS,
        )
    except NotFoundError:
        raise ElasticsearchUnavailable(
            f"no index {settings.index_alias!r} yet; ingest articles and run "
            "`newsflow pipeline run` first"
        ) from None
    except TransportError as exc:
        raise ElasticsearchUnavailable(
            f"Elasticsearch at {settings.url} is unreachable ({exc}); start it with "
            "`newsflow stack up` or set NEWSFLOW_ELASTICSEARCH__URL"
        ) from exc
    finally:
        es.close()
    return [to_hit(raw) for raw in response["hits"]["hits"]]


def format_hits(hits: list[dict[str, Any]]) -> str:
    if not hits:
        return "no matching articles"
    blocks = []
    for number, hit in enumerate(hits, start=1):
        title = textwrap.shorten(hit["title"] or "(untitled)", width=110, placeholder=" ...")
        lines = [
            f"{number:>2}. {title}",
        ]
        if hit.get("title_en") and hit["title_en"] != hit["title"]:
            english = textwrap.shorten(hit["title_en"], width=106, placeholder=" ...")
            lines.append(f"    en: {english}")
        lines += [
            f"    {hit['source']} | {(hit['date'] or '?')[:10]} | {hit['language'] or '?'}"
            + (f" | {hit['url']}" if hit["url"] else ""),
        ]
        for kind, names in hit["entities"].items():
            if names:
                lines.append(f"    {kind}: {', '.join(names)}")
        blocks.append("\n".join(lines))
    return "\n\n".join(blocks)
