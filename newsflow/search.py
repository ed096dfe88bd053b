"""Analyst search over the news alias, shared by ``newsflow search`` and the HTTP API.

What is searched is decided by pure functions (request -> body, response -> result -> text) so the
CLI and the API cannot drift apart and the query logic is testable without Elasticsearch; the calls
at the bottom only send the body and turn transport failures into messages that say what to do.
"""

from __future__ import annotations

import html
import re
import textwrap
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, date, datetime, time
from typing import Any, Literal, overload

from elasticsearch import ApiError, Elasticsearch, NotFoundError, TransportError

from newsflow.index import ElasticsearchUnavailable, client, index_definition
from newsflow.settings import ElasticsearchSettings

Sort = Literal["relevance", "date"]
SORTS: tuple[Sort, ...] = ("relevance", "date")

#: Entity labels the mapping indexes as keyword fields ``entities.<LABEL>`` (filterable).
ENTITY_LABELS: tuple[str, ...] = tuple(
    index_definition()["mappings"]["properties"]["entities"]["properties"]
)
#: Entity labels with facets. Each has two: ``entities.<LABEL>`` (the English text) and, named
#: "original <LABEL>", ``original_entities.<LABEL>`` (a model of the article's own language), so
#: a name the translation lost ("Poutine") is still seen. A value of either filters with
#: ``LABEL:NAME``, which matches both fields (``entity_filter``).
FACET_ENTITY_LABELS: tuple[str, ...] = ("PERSON", "ORG", "GPE")
#: Facets computed over the filtered result set: facet name -> keyword field.
FACET_FIELDS: dict[str, str] = {
    **{
        f"{prefix}{label}": f"{field}.{label}"
        for label in FACET_ENTITY_LABELS
        for prefix, field in (("", "entities"), ("original ", "original_entities"))
    },
    "source": "source",
    "language": "language",
}
#: Entity types shown per hit, and how many of each.
SHOWN_ENTITY_TYPES = ("PERSON", "ORG", "GPE")
TOP_ENTITIES = 5
MAX_SIZE = 1000
MAX_FACET_SIZE = 100
#: Elasticsearch's default ``index.max_result_window``: from + size may not exceed it.
MAX_WINDOW = 10_000

# English (original or translated) first, then the original-language text.
#: English, original text, and the original again through its language's analyzer (stemmed).
TEXT_FIELDS = ["title_en^3", "body_en", "title^2", "body", "original.*.title^2", "original.*.body"]
# Hits carry no bodies (they can be long); GET /documents/{id} returns the whole document.
_SOURCE_FIELDS = [
    "id",
    "title",
    "title_en",
    "translation.status",
    "source",
    "url",
    "published_at",
    "fetched_at",
    "language",
    "entities",
    "dedupe.cluster_id",
    "dedupe.duplicate_of",
    "dedupe.similarity",
]
#: The story cluster of an article (pipeline.dedupe): collapsing on it shows one hit per story.
CLUSTER_FIELD = "dedupe.cluster_id"
# Newest first. A document without published_at sorts after those with one, by fetched_at; a true
# coalesce would need a script, and the local node ships without painless. ``id`` makes paging
# deterministic among equal dates.
_BY_DATE: list[dict[str, Any]] = [
    {"published_at": {"order": "desc", "missing": "_last"}},
    {"fetched_at": {"order": "desc"}},
    {"id": "asc"},
]
# Whole titles, short body fragments; "html" escapes the text so the <em> tags are the only markup.
HIGHLIGHT: dict[str, Any] = {
    "encoder": "html",
    "fragment_size": 160,
    "number_of_fragments": 2,
    # Highlight the first million characters of a longer field instead of failing the search
    # (Elasticsearch's index.highlight.max_analyzed_offset, whose default is this).
    "max_analyzed_offset": 1_000_000,
    "fields": {
        "title_en": {"number_of_fragments": 0},
        "body_en": {},
        "title": {"number_of_fragments": 0},
        "body": {},
    },
}


def parse_entity_filter(value: str) -> tuple[str, str]:
    """``"PERSON:Jens Stoltenberg"`` -> ``("PERSON", "Jens Stoltenberg")``; any case of label."""
    label, colon, name = value.partition(":")
    label, name = label.strip().upper(), name.strip()
    if not colon or not label or not name:
        raise ValueError(
            f"entity filter {value!r} must look like LABEL:NAME, e.g. 'PERSON:Jens Stoltenberg'"
        )
    if label not in ENTITY_LABELS:
        raise ValueError(
            f"unknown entity label {label!r} in {value!r}; use one of {', '.join(ENTITY_LABELS)}"
        )
    return label, name


def parse_when(value: str, *, end_of_day: bool = False) -> datetime:
    """An ISO 8601 date or date-time, UTC unless it names a zone.

    A bare date means the start of that day, or its end with ``end_of_day`` (so ``--until
    2026-07-09`` includes the 9th).
    """
    text = value.strip()
    try:
        moment = datetime.combine(date.fromisoformat(text), time.max if end_of_day else time.min)
    except ValueError:
        try:
            moment = datetime.fromisoformat(text)
        except ValueError:
            raise ValueError(
                f"{value!r} is not an ISO 8601 date or date-time, e.g. 2026-07-09 or "
                "2026-07-09T08:00:00Z"
            ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


@dataclass(frozen=True)
class SearchRequest:
    """One analyst question; validated on construction so the CLI and the API refuse alike.

    Entity filters all have to match (an article about both people); several sources or
    languages mean any of them. ``since``/``until`` are inclusive and apply to the article's date
    (``published_at``, or ``fetched_at`` when the publisher gave none).
    """

    text: str | None = None
    entities: tuple[str, ...] = ()
    sources: tuple[str, ...] = ()
    languages: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    cluster: str | None = None
    collapse: bool = False
    sort: Sort = "relevance"
    size: int = 10
    from_: int = 0
    facet_size: int = 10

    def __post_init__(self) -> None:
        normalize = {
            "text": (self.text or "").strip() or None,
            "entities": tuple(self.entities),
            "sources": tuple(s.strip() for s in self.sources),
            "languages": tuple(code.strip().lower() for code in self.languages),
            "cluster": (self.cluster or "").strip() or None,
            "since": _as_utc(self.since),
            "until": _as_utc(self.until),
        }
        for name, value in normalize.items():
            object.__setattr__(self, name, value)
        for entry in self.entities:
            parse_entity_filter(entry)
        if "" in self.sources or "" in self.languages:
            raise ValueError("sources and languages must not be empty")
        if self.sort not in SORTS:
            raise ValueError(f"sort must be one of {', '.join(SORTS)}, not {self.sort!r}")
        if not 0 <= self.size <= MAX_SIZE:
            raise ValueError(f"size must be between 0 and {MAX_SIZE}, not {self.size}")
        if self.from_ < 0 or self.from_ + self.size > MAX_WINDOW:
            raise ValueError(f"from must be >= 0 and from + size <= {MAX_WINDOW}")
        if not 1 <= self.facet_size <= MAX_FACET_SIZE:
            raise ValueError(f"facet size must be between 1 and {MAX_FACET_SIZE}")
        if self.since and self.until and self.since > self.until:
            raise ValueError(
                f"since ({self.since.isoformat()}) is after until ({self.until.isoformat()})"
            )

    @property
    def has_filters(self) -> bool:
        return bool(
            self.entities
            or self.sources
            or self.languages
            or self.since
            or self.until
            or self.cluster
        )


def _as_utc(moment: datetime | None) -> datetime | None:
    if moment is None or moment.tzinfo:
        return moment
    return moment.replace(tzinfo=UTC)


def build_search_body(request: SearchRequest) -> dict[str, Any]:
    """The search body: scored text query, unscored (cacheable) filters, facets, sort, highlight."""
    text_query: dict[str, Any] = (
        {
            "multi_match": {
                "query": request.text,
                "fields": TEXT_FIELDS,
                # Every word must appear, in any of the English fields or in any of the
                # original-language ones (fields are grouped by analyzer); ranked by BM25.
                "type": "cross_fields",
                "operator": "and",
            }
        }
        if request.text
        else {"match_all": {}}
    )
    body: dict[str, Any] = {
        "query": {"bool": {"must": [text_query], "filter": _filters(request)}},
        "aggs": {
            name: {"terms": {"field": field, "size": request.facet_size}}
            for name, field in FACET_FIELDS.items()
        },
        # Ties in score (always, without text) fall back to newest first.
        "sort": _BY_DATE if request.sort == "date" else ["_score", *_BY_DATE],
        "size": request.size,
        "from": request.from_,
        "track_total_hits": True,
        "_source": _SOURCE_FIELDS,
    }
    if request.text:
        body["highlight"] = HIGHLIGHT
    if request.collapse:
        # inner_hits with size 0 only counts the story's matching articles: "N similar".
        body["collapse"] = {"field": CLUSTER_FIELD, "inner_hits": {"name": "story", "size": 0}}
        body["aggs"]["stories"] = {"cardinality": {"field": CLUSTER_FIELD}}
    return body


def entity_filter(label: str, name: str) -> dict[str, Any]:
    """Articles naming ``name`` in their English text or, by a model of their own language, in
    the original: a name the translation lost is still found (``original_entities``)."""
    return {
        "bool": {
            "should": [
                {"term": {f"{field}.{label}": {"value": name, "case_insensitive": True}}}
                for field in ("entities", "original_entities")
            ],
            "minimum_should_match": 1,
        }
    }


def _filters(request: SearchRequest) -> list[dict[str, Any]]:
    filters: list[dict[str, Any]] = []
    for entry in request.entities:
        label, name = parse_entity_filter(entry)
        filters.append(entity_filter(label, name))
    if request.sources:
        filters.append({"terms": {"source": list(request.sources)}})
    if request.languages:
        filters.append({"terms": {"language": list(request.languages)}})
    if request.cluster:
        filters.append({"term": {CLUSTER_FIELD: request.cluster}})
    if request.since or request.until:
        bounds = {}
        if request.since:
            bounds["gte"] = request.since.isoformat()
        if request.until:
            bounds["lte"] = request.until.isoformat()
        filters.append(
            {
                "bool": {
                    "should": [
                        {"range": {"published_at": bounds}},
                        {
                            "bool": {
                                "must_not": [{"exists": {"field": "published_at"}}],
                                "filter": [{"range": {"fetched_at": bounds}}],
                            }
                        },
                    ],
                    "minimum_should_match": 1,
                }
            }
        )
    return filters


def to_hit(raw: Mapping[str, Any]) -> dict[str, Any]:
    """One hit, flattened for people and JSON: what it is, where from, when, who is in it."""
    source = raw["_source"]
    entities = source.get("entities", {})
    dedupe = source.get("dedupe", {})
    story = raw.get("inner_hits", {}).get("story")
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
        "highlights": dict(raw.get("highlight", {})),
        "cluster_id": dedupe.get("cluster_id"),
        "duplicate_of": dedupe.get("duplicate_of"),
        # Other matching articles of the same story (collapsed searches only).
        "similar": story["hits"]["total"]["value"] - 1 if story else None,
    }


def story_link(
    article_id: str,
    cluster_id: str,
    entities: Mapping[str, list[str]],
    first_entities: Mapping[str, list[str]],
    similarity: float | None,
) -> dict[str, Any]:
    """Why an article is in its story, for an analyst judging a surprising "+N similar".

    ``similarity`` is the share of content words it had in common (Jaccard) with the article it
    was matched with when it joined (a version of the story, not always the first), and the
    people, organisations and places it shares with the story's first article.
    """
    if article_id == cluster_id:
        return {"first": True, "similarity": None, "shared_entities": {}}
    shared = {
        label: sorted(set(entities.get(label, [])) & set(first_entities.get(label, [])))
        for label in SHOWN_ENTITY_TYPES
    }
    return {
        "first": False,
        "similarity": similarity,
        "shared_entities": {label: names for label, names in shared.items() if names},
    }


def with_story_links(
    result: dict[str, Any], raw_hits: list[Mapping[str, Any]], first: Mapping[str, list[str]]
) -> dict[str, Any]:
    """A story's search result with each hit's ``story`` link (``story_link``)."""
    for hit, raw in zip(result["hits"], raw_hits, strict=True):
        source = raw["_source"]
        dedupe = source.get("dedupe", {})
        hit["story"] = story_link(
            hit["id"],
            dedupe.get("cluster_id", hit["id"]),
            source.get("entities", {}),
            first,
            dedupe.get("similarity"),
        )
    return result


def to_result(response: Mapping[str, Any]) -> dict[str, Any]:
    """Total, hits and facets (``{name: [(value, count), ...]}``) of a search response."""
    aggregations = response.get("aggregations", {})
    return {
        "total": response["hits"]["total"]["value"],
        # Distinct stories among the matches (collapsed searches only; an estimate past 3,000).
        "stories": aggregations.get("stories", {}).get("value"),
        "hits": [to_hit(raw) for raw in response["hits"]["hits"]],
        "facets": {
            name: [
                (bucket["key"], bucket["doc_count"])
                for bucket in aggregations.get(name, {}).get("buckets", [])
            ]
            for name in FACET_FIELDS
        },
    }


_EM = re.compile(r"</?em>")


def _snippet(highlights: Mapping[str, list[str]]) -> str | None:
    """The best body fragment for a terminal: matched words in *stars*, one line."""
    for field in ("body_en", "body"):
        if highlights.get(field):
            text = html.unescape(_EM.sub("*", highlights[field][0]))
            return textwrap.shorten(text, width=106, placeholder=" ...")
    return None


def describe_link(link: Mapping[str, Any]) -> str:
    """A ``story_link`` in words."""
    if link["first"]:
        return "its first article"
    words = (
        f"joined at {link['similarity']:.0%} shared words with a version of it"
        if link["similarity"]
        else "joined it"
    )
    shared = "; ".join(
        f"{label} {', '.join(names)}" for label, names in link["shared_entities"].items()
    )
    return f"{words}; shares with the first article: {shared or 'no person, organisation or place'}"


def format_results(result: Mapping[str, Any]) -> str:
    """Numbered hits, then the facets, for a terminal."""
    hits, total = result["hits"], result["total"]
    if not hits:
        return "no matching articles"
    header = f"{total} matching article{'' if total == 1 else 's'}"
    if result.get("stories") is not None:
        header += f" in {result['stories']} stor{'y' if result['stories'] == 1 else 'ies'}"
    if len(hits) < total:
        header += f", showing {len(hits)}"
    blocks = [header]
    for number, hit in enumerate(hits, start=1):
        title = textwrap.shorten(hit["title"] or "(untitled)", width=110, placeholder=" ...")
        lines = [f"{number:>2}. {title}"]
        if hit.get("title_en") and hit["title_en"] != hit["title"]:
            english = textwrap.shorten(hit["title_en"], width=106, placeholder=" ...")
            lines.append(f"    en: {english}")
        lines.append(
            f"    {hit['source']} | {(hit['date'] or '?')[:10]} | {hit['language'] or '?'}"
            + (f" | {hit['url']}" if hit["url"] else "")
        )
        if hit.get("similar"):
            lines.append(f"    + {hit['similar']} similar (--cluster {hit['cluster_id']})")
        if hit.get("story"):
            lines.append(f"    story: {describe_link(hit['story'])}")
        lines += [
            f"    {kind}: {', '.join(names)}" for kind, names in hit["entities"].items() if names
        ]
        snippet = _snippet(hit.get("highlights", {}))
        if snippet:
            lines.append(f"    > {snippet}")
        blocks.append("\n".join(lines))
    facets = [
        f"  {name}: " + ", ".join(f"{value} ({count})" for value, count in buckets)
        for name, buckets in result["facets"].items()
        if buckets
    ]
    if facets:
        blocks.append("\n".join(["facets:", *facets]))
    return "\n\n".join(blocks)


# -- calls ----------------------------------------------------------------------------------------


@contextmanager
def _connection(
    settings: ElasticsearchSettings, es: Elasticsearch | None
) -> Iterator[Elasticsearch]:
    """The caller's client (the API keeps one) or a short-lived one; failures get a fix."""
    connection = es if es is not None else client(settings)
    try:
        yield connection
    except NotFoundError as exc:
        if exc.error != "index_not_found_exception":
            raise
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
        if es is None:
            connection.close()


@overload
def search(
    settings: ElasticsearchSettings, request: SearchRequest, es: Elasticsearch | None = None
) -> dict[str, Any]: ...
@overload
def search(
    settings: ElasticsearchSettings, request: str, es: Elasticsearch | None = None
) -> list[dict[str, Any]]: ...
def search(
    settings: ElasticsearchSettings, request: SearchRequest | str, es: Elasticsearch | None = None
) -> dict[str, Any] | list[dict[str, Any]]:
    """Run a search: total, hits and facets. A bare string is shorthand for its first hits."""
    if isinstance(request, str):
        return search(settings, SearchRequest(text=request), es)["hits"]
    with _connection(settings, es) as connection:
        response = connection.search(index=settings.index_alias, body=build_search_body(request))
        result = to_result(response.body)
        if not request.cluster or not result["hits"]:
            return result
        # One story: say why each version is in it, against the story's first article.
        raw_hits = response.body["hits"]["hits"]
        first = next((h["_source"] for h in raw_hits if h["_id"] == request.cluster), None)
        if first is None:
            found = connection.search(
                index=settings.index_alias,
                query={"ids": {"values": [request.cluster]}},
                source_includes=["entities"],
                size=1,
            )["hits"]["hits"]
            first = found[0]["_source"] if found else {}
    return with_story_links(result, raw_hits, first.get("entities", {}))


def get_document(
    settings: ElasticsearchSettings, doc_id: str, es: Elasticsearch | None = None
) -> dict[str, Any] | None:
    """The whole stored document (original and English text, entity details), or None."""
    with _connection(settings, es) as connection:
        # The alias spans one index per period, so this is a search by id rather than a GET.
        hits = connection.search(
            index=settings.index_alias, query={"ids": {"values": [doc_id]}}, size=1
        )["hits"]["hits"]
    return {"id": hits[0]["_id"], **hits[0]["_source"]} if hits else None


def health(settings: ElasticsearchSettings, es: Elasticsearch | None = None) -> dict[str, Any]:
    """Whether a search can succeed now: the cluster answers and the alias exists."""
    report: dict[str, Any] = {
        "ok": False,
        "elasticsearch": settings.url,
        "reachable": False,
        "cluster_status": None,
        "index": settings.index_alias,
        "index_exists": False,
        "error": None,
    }
    connection = es if es is not None else client(settings)
    quick = connection.options(request_timeout=5, max_retries=0)
    try:
        report["cluster_status"] = quick.cluster.health()["status"]
        report["reachable"] = True
        report["index_exists"] = bool(quick.indices.exists(index=settings.index_alias))
    except (TransportError, ApiError) as exc:
        report["error"] = str(exc)
    finally:
        if es is None:
            connection.close()
    report["ok"] = report["index_exists"]
    if report["reachable"] and not report["index_exists"]:
        report["error"] = "no index yet; ingest articles and run `newsflow pipeline run`"
    return report
