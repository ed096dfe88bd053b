"""The analysts' HTTP API (``newsflow serve``): the CLI's search over HTTP, documented at /docs,
and a search page for browsers at / (``newsflow/web/``).

Thin on purpose: every endpoint builds a ``SearchRequest`` or calls one function of
``newsflow.search``, so the terminal and the API answer the same question the same way.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Annotated, Any

from fastapi import FastAPI, HTTPException, Query, Request, Response
from fastapi.responses import FileResponse, JSONResponse
from fastapi.staticfiles import StaticFiles
from pydantic import BaseModel

from newsflow import search as news
from newsflow.index import ElasticsearchUnavailable, client
from newsflow.settings import Settings

#: The search page (plain HTML/CSS/JS, shipped as package data): GET / and /static/*.
WEB = Path(__file__).parent / "web"
# The page loads only its own files and talks only to this API; no inline script or style, so a
# stored article that slipped past the page's escaping still could not run anything.
PAGE_POLICY = (
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; base-uri 'none'; form-action 'self'; frame-ancestors 'none'"
)


class StoryLink(BaseModel):
    """Why an article is in its story (in /clusters/{id} and searches with cluster=...)."""

    #: The story's first article (its cluster id).
    first: bool
    #: Shared content words (Jaccard) with the version it was matched with when it joined.
    similarity: float | None = None
    #: People, organisations and places it shares with the story's first article.
    shared_entities: dict[str, list[str]] = {}


class Hit(BaseModel):
    id: str
    score: float | None
    title: str
    title_en: str | None
    translation: str | None
    source: str | None
    url: str | None
    date: str | None
    language: str | None
    entities: dict[str, list[str]]
    #: Matching fragments per field (title_en, body_en, title, body), words in <em> (HTML-escaped).
    highlights: dict[str, list[str]]
    #: The story cluster (its first-seen article's id) and, for a copy, the article it copies.
    cluster_id: str | None = None
    duplicate_of: str | None = None
    #: With collapse=true: other matching articles of the same story.
    similar: int | None = None
    #: With cluster=...: why it is in that story.
    story: StoryLink | None = None


class SearchResponse(BaseModel):
    total: int
    #: With collapse=true: how many distinct stories the matching articles tell.
    stories: int | None = None
    hits: list[Hit]
    #: Facet name (PERSON, ORG, GPE, source, language, and "original PERSON|ORG|GPE": entities
    #: found in the original text) -> [(value, count), ...] over all matches; may be empty.
    facets: dict[str, list[tuple[str, int]]]


class Health(BaseModel):
    ok: bool
    elasticsearch: str
    reachable: bool
    cluster_status: str | None
    index: str
    index_exists: bool
    error: str | None


def create_app(settings: Settings) -> FastAPI:
    """The app, holding one Elasticsearch client (a connection pool) for its lifetime."""
    es_settings = settings.elasticsearch
    es = client(es_settings)

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        yield
        es.close()

    app = FastAPI(
        title="newsflow search",
        description="Full-text search of the news index in English and in the original "
        "language, with entity, source, language and date filters and facets.",
        lifespan=lifespan,
    )

    @app.exception_handler(ElasticsearchUnavailable)
    async def unavailable(request: Request, exc: ElasticsearchUnavailable) -> JSONResponse:
        return JSONResponse(status_code=503, content={"detail": str(exc)})

    @app.get("/search", response_model=SearchResponse, summary="Search articles")
    def search(
        q: Annotated[str | None, Query(description="words that must all match")] = None,
        entity: Annotated[
            list[str] | None,
            Query(description="LABEL:NAME, e.g. PERSON:Jens Stoltenberg; repeat: all must match"),
        ] = None,
        source: Annotated[list[str] | None, Query(description="repeat: any of them")] = None,
        lang: Annotated[
            list[str] | None, Query(description="ISO 639-1 code; repeat: any of them")
        ] = None,
        since: Annotated[str | None, Query(description="ISO 8601 date or date-time")] = None,
        until: Annotated[
            str | None, Query(description="ISO 8601; a bare date includes that day")
        ] = None,
        cluster: Annotated[
            str | None, Query(description="only the articles of this story cluster")
        ] = None,
        collapse: Annotated[
            bool, Query(description="one hit per story, with how many similar ones matched")
        ] = False,
        sort: Annotated[news.Sort, Query(description="relevance or date")] = "relevance",
        size: Annotated[int, Query(ge=0, le=news.MAX_SIZE)] = 10,
        from_: Annotated[int, Query(alias="from", ge=0)] = 0,
        facet_size: Annotated[int, Query(ge=1, le=news.MAX_FACET_SIZE)] = 10,
    ) -> dict[str, Any]:
        """Articles matching all words and filters, with highlights and facets."""
        try:
            request = news.SearchRequest(
                text=q,
                entities=tuple(entity or ()),
                sources=tuple(source or ()),
                languages=tuple(lang or ()),
                since=news.parse_when(since) if since else None,
                until=news.parse_when(until, end_of_day=True) if until else None,
                cluster=cluster,
                collapse=collapse,
                sort=sort,
                size=size,
                from_=from_,
                facet_size=facet_size,
            )
        except ValueError as exc:
            raise HTTPException(status_code=422, detail=str(exc)) from None
        return news.search(es_settings, request, es)

    @app.get("/documents/{doc_id}", summary="One whole article")
    def document(doc_id: str) -> dict[str, Any]:
        """The stored document: original and English text, entities with details, provenance."""
        found = news.get_document(es_settings, doc_id, es)
        if found is None:
            raise HTTPException(status_code=404, detail=f"no document {doc_id!r}")
        return found

    @app.get("/clusters/{cluster_id}", response_model=SearchResponse, summary="One story")
    def cluster(
        cluster_id: str, size: Annotated[int, Query(ge=0, le=news.MAX_SIZE)] = 100
    ) -> dict[str, Any]:
        """Every version of one story (copies, other outlets, other languages), newest first,
        with its facets; ``total`` is the cluster's size."""
        request = news.SearchRequest(cluster=cluster_id, sort="date", size=size)
        result = news.search(es_settings, request, es)
        if result["total"] == 0:
            raise HTTPException(status_code=404, detail=f"no story cluster {cluster_id!r}")
        return result

    @app.get("/health", response_model=Health, summary="Can searches succeed?")
    def health(response: Response) -> dict[str, Any]:
        """Elasticsearch reachable and the index present; 503 otherwise."""
        report = news.health(es_settings, es)
        if not report["ok"]:
            response.status_code = 503
        return report

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        """The search page; everything it shows comes from /search and /documents."""
        return FileResponse(WEB / "index.html", headers={"Content-Security-Policy": PAGE_POLICY})

    app.mount("/static", StaticFiles(directory=WEB), name="static")

    return app
