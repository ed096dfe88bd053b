"""JSON API source: field mapping, pagination styles, secrets kept secret, polling a local API."""

from __future__ import annotations

import json
import logging
import threading
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest

from connectors.fetch import Fetcher, FetchError, FetchPolicy
from connectors.json_api import (
    FieldMap,
    InvalidItem,
    InvalidResponse,
    JsonApiConfig,
    JsonApiSource,
    MissingEnvironmentVariable,
    PageRequest,
    first_request,
    items_at,
    lookup,
    map_item,
    next_request,
    redact,
    resolve_references,
)
from connectors.runner import source_fetcher
from connectors.source import Item, ItemError, PollContext
from newsflow.article import article_id
from tests.connectors.conftest import LocalSite, Reply, Request
from tests.connectors.memory_state import MemoryState

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
SECRET = "s3cr3t+key/with=chars"
#: NewsAPI's field names.
NEWSAPI_FIELDS = FieldMap(
    title="title",
    body="content",
    summary="description",
    url="url",
    published_at="publishedAt",
    authors="author",
    outlet="source.name",
)
NEWSAPI_ITEM = {
    "source": {"id": "bbc-news", "name": "BBC News"},
    "author": "Jane Roe",
    "title": "Council approves budget",
    "description": "The council approved the budget.",
    "url": "https://www.bbc.co.uk/news/budget-1?utm_source=newsapi",
    "publishedAt": "2026-11-25T08:30:00Z",
    "content": "The council approved the new budget after a long debate… [+2345 chars]",
}


def mapped(raw: Any, fields: FieldMap = NEWSAPI_FIELDS, language: str | None = None) -> Any:
    return map_item(raw, fields, source="newsapi", default_language=language, fetched_at=NOW)


# -- mapping ---------------------------------------------------------------------------------


def test_lookup_follows_dotted_paths() -> None:
    document = {"a": {"b": [{"c": 1}, {"c": 2}]}, "n": None}
    assert lookup(document, "a.b.1.c") == 2
    assert lookup(document, "") is document
    assert lookup(document, "a.b.5.c") is None
    assert lookup(document, "a.x") is None
    assert lookup(document, "a.b.c") is None  # a list needs an index
    assert lookup(document, "n.x") is None


def test_a_newsapi_item_becomes_an_article() -> None:
    item = mapped(NEWSAPI_ITEM, language="en")
    article = item.article
    assert item.seen_key == "https://bbc.co.uk/news/budget-1"
    assert article.title == "Council approves budget"
    assert article.body.startswith("The council approved the new budget")
    assert article.url == NEWSAPI_ITEM["url"]
    assert article.source == "newsapi"
    assert article.published_at == datetime(2026, 11, 25, 8, 30, tzinfo=UTC)
    assert article.language_hint == "en"
    assert article.metadata == {"authors": ["Jane Roe"], "outlet": "BBC News"}


def test_nested_paths_lists_of_authors_ids_and_epoch_dates() -> None:
    fields = FieldMap(
        title="headline.main",
        body="blocks.0.text",
        id="meta.id",
        published_at="meta.ts",
        authors="byline",
        language="meta.lang",
        metadata={"section": "meta.section"},
    )
    raw = {
        "headline": {"main": "Storm hits coast"},
        "blocks": [{"text": "Winds reached 150 km/h."}],
        "meta": {"id": 4711, "ts": 1764147600000, "lang": "pt-BR", "section": "weather"},
        "byline": [{"name": "Ana Lima"}, "Rui Costa", "  "],
    }
    item = mapped(raw, fields, language="es")
    assert item.seen_key == "id:4711"
    assert item.article.title == "Storm hits coast"
    assert item.article.body == "Winds reached 150 km/h."
    assert item.article.published_at == datetime(2025, 11, 26, 9, 0, tzinfo=UTC)  # milliseconds
    assert item.article.language_hint == "pt"
    assert item.article.metadata == {
        "section": "weather",
        "authors": ["Ana Lima", "Rui Costa"],
        "api_id": "4711",
    }
    raw["meta"]["ts"] = 1764147600  # seconds
    assert mapped(raw, fields).article.published_at == datetime(2025, 11, 26, 9, 0, tzinfo=UTC)


def test_missing_fields_are_left_empty_and_the_summary_stands_in_for_the_body() -> None:
    item = mapped({"title": "Only a title and a summary", "description": "Short summary."})
    assert item.article.body == "Short summary."
    assert item.article.url is None and item.article.published_at is None
    assert item.article.language_hint is None and item.article.metadata == {}
    # Neither URL nor id: the key hashes the content, like the article id.
    assert item.seen_key == "content:" + article_id(
        canonical_url=None, source="newsapi", title=item.article.title, body="Short summary."
    )


def test_an_unusable_language_is_kept_as_metadata() -> None:
    item = mapped({"title": "t", "lang": "English"}, FieldMap(title="title", language="lang"))
    assert item.article.language_hint is None
    assert item.article.metadata == {"language": "English"}


def test_markup_is_reduced_to_sanitized_text() -> None:
    fields = FieldMap(title="title.rendered", body="content.rendered")  # WordPress REST API
    raw = {
        "title": {"rendered": "Fish &amp; chips"},
        "content": {"rendered": "<p>First <b>bold</b> line.</p><script>steal()</script><p>Two</p>"},
    }
    article = mapped(raw, fields).article
    assert article.title == "Fish &amp; chips"  # no markup: left exactly as sent
    assert article.body == "First bold line.\nTwo"


@pytest.mark.parametrize(
    ("raw", "message"),
    [
        (["not", "an", "object"], "expected a JSON object, got a list"),
        ({**NEWSAPI_ITEM, "title": ["a"]}, "title ('title'): expected a string, got a list"),
        ({**NEWSAPI_ITEM, "source": {"name": 7}}, "outlet ('source.name'): expected a string"),
        (
            {**NEWSAPI_ITEM, "url": "ftp://example.com/x"},
            "url 'ftp://example.com/x' is not an absolute",
        ),
        ({**NEWSAPI_ITEM, "publishedAt": "next week"}, "published_at ('publishedAt'): not a W3C"),
        ({**NEWSAPI_ITEM, "publishedAt": True}, "published_at ('publishedAt'): expected a date"),
        ({**NEWSAPI_ITEM, "author": [{"id": 1}]}, "authors ('author'): expected names"),
        ({"url": "https://example.com/x"}, "an article needs a title or a body"),
    ],
)
def test_wrong_items_are_rejected_with_the_reason(raw: Any, message: str) -> None:
    with pytest.raises(InvalidItem, match=message.replace("(", r"\(").replace(")", r"\)")):
        mapped(raw)


def test_a_field_map_must_map_some_text() -> None:
    with pytest.raises(ValueError, match="map at least one of title, body, summary"):
        FieldMap(url="url")


# -- pagination ------------------------------------------------------------------------------


def api_config(**settings: Any) -> JsonApiConfig:
    return JsonApiConfig(
        **{"name": "api", "url": "https://api.example.com/v2/everything", "fields": NEWSAPI_FIELDS}
        | settings
    )


def test_page_pagination() -> None:
    config = api_config(pagination="page", page_size_param="pageSize", page_size=2)
    first = first_request(config, {"q": "budget"})
    assert first == PageRequest(config.url, {"q": "budget", "pageSize": "2", "page": "1"})
    second = next_request(config, first, {}, 2)
    assert second is not None and second.params["page"] == "2"
    assert next_request(config, second, {}, 1) is None  # a short page is the last
    assert next_request(config, second, {}, 0) is None


def test_offset_pagination() -> None:
    config = api_config(pagination="offset", offset_param="start")
    first = first_request(config, {})
    assert first.params == {"start": "0"}
    second = next_request(config, first, {}, 25)
    assert second is not None and second.params == {"start": "25"}


def test_cursor_pagination() -> None:
    config = api_config(pagination="cursor", cursor_path="meta.next", cursor_param="after")
    first = first_request(config, {"q": "x"})
    assert first.params == {"q": "x"}
    second = next_request(config, first, {"meta": {"next": "abc"}}, 10)
    assert second is not None and second.params == {"q": "x", "after": "abc"}
    assert next_request(config, second, {"meta": {"next": None}}, 10) is None
    assert next_request(config, second, {"meta": {}}, 10) is None
    with pytest.raises(InvalidResponse, match=r"'meta\.next' should be a string, got an object"):
        next_request(config, second, {"meta": {"next": {"id": 1}}}, 10)


def test_next_url_pagination_keeps_parameters_the_next_url_leaves_out() -> None:
    config = api_config(pagination="next_url", next_url_path="links.next")
    first = first_request(config, {"q": "budget", "apiKey": SECRET})
    second = next_request(config, first, {"links": {"next": "/v2/everything?q=budget&p=2"}}, 5)
    assert second == PageRequest(
        "https://api.example.com/v2/everything?q=budget&p=2", {"apiKey": SECRET}
    )
    assert second.full_url.startswith("https://api.example.com/v2/everything?q=budget&p=2&apiKey=")
    assert next_request(config, second, {"links": {"next": ""}}, 5) is None


@pytest.mark.parametrize(
    ("settings", "message"),
    [
        ({"pagination": "cursor"}, "needs cursor_path"),
        ({"pagination": "next_url"}, "needs next_url_path"),
        ({"page_size": 10}, "set page_size_param and page_size together"),
        ({"url": "file:///etc/passwd"}, "not an absolute http"),
        ({"pagination": "scroll"}, "pagination"),
    ],
)
def test_config_is_checked_when_built(settings: dict[str, Any], message: str) -> None:
    with pytest.raises(ValueError, match=message):
        api_config(**settings)


def test_items_at_says_what_is_wrong() -> None:
    assert items_at({"data": {"items": [1]}}, "data.items") == [1]
    assert items_at([1, 2], "") == [1, 2]
    with pytest.raises(
        InvalidResponse, match=r"no list of items at 'articles'; .* \['code', 'status'\]"
    ):
        items_at({"status": "error", "code": "rateLimited"}, "articles")
    with pytest.raises(
        InvalidResponse, match="expected a list of items at 'articles', got a string"
    ):
        items_at({"articles": "none"}, "articles")


# -- secrets ---------------------------------------------------------------------------------


def test_references_are_resolved_from_the_environment() -> None:
    values, secrets = resolve_references(
        {"Authorization": "Bearer ${TOKEN}", "X-Plain": "hello", "N": 5, "B": True},
        {"TOKEN": SECRET},
        what="header",
    )
    assert values == {
        "Authorization": f"Bearer {SECRET}",
        "X-Plain": "hello",
        "N": "5",
        "B": "true",
    }
    assert secrets == {SECRET}


@pytest.mark.parametrize("environ", [{}, {"TOKEN": ""}])
def test_a_missing_variable_is_named_and_nothing_else(environ: dict[str, str]) -> None:
    with pytest.raises(MissingEnvironmentVariable) as raised:
        resolve_references({"X-Api-Key": "${TOKEN}"}, environ, what="header")
    assert str(raised.value) == (
        "header 'X-Api-Key' references the environment variable TOKEN, which is not set (or empty)"
    )


def test_redact_covers_url_encoded_forms() -> None:
    text = "https://x/?apiKey=s3cr3t%2Bkey%2Fwith%3Dchars and s3cr3t+key/with=chars"
    assert redact(text, {SECRET}) == "https://x/?apiKey=[redacted] and [redacted]"


def test_the_config_never_holds_or_shows_a_secret(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSAPI_KEY", SECRET)
    config = api_config(
        headers={"X-Api-Key": "${NEWSAPI_KEY}"}, params={"apiKey": "${NEWSAPI_KEY}"}
    )
    for shown in (repr(config), str(config), config.model_dump_json()):
        assert SECRET not in shown
    assert "X-Api-Key" not in repr(config)  # headers are left out of the repr altogether


# -- polling a local API ---------------------------------------------------------------------


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(FetchPolicy(per_host_interval=0, respect_robots=False)) as fetcher:
        yield fetcher


def local_config(site: LocalSite, **settings: Any) -> JsonApiConfig:
    return api_config(
        url=site.url("/v2/everything"),
        respect_robots=False,
        allow_networks=("127.0.0.1",),
        **{"items_path": "articles"} | settings,
    )


def poll(
    source: JsonApiSource, fetcher: Fetcher, state: MemoryState
) -> tuple[list[Item], list[ItemError]]:
    """One poll, then what the runner does once Kafka acknowledged its items."""
    context = PollContext(source_fetcher(fetcher, source.config), state, threading.Event())
    results = list(source.poll(context))
    items = [r for r in results if isinstance(r, Item)]
    state.commit([item.seen_key for item in items], None)
    return items, [r for r in results if isinstance(r, ItemError)]


def story(n: int, **changes: Any) -> dict[str, Any]:
    return {
        "title": f"Story {n}",
        "content": f"Body of story {n}.",
        "url": f"https://news.example.com/story/{n}",
        "publishedAt": f"2026-11-2{n % 10}T08:00:00Z",
    } | changes


def query(request: Request) -> dict[str, str]:
    return {k: v[0] for k, v in parse_qs(urlsplit(request.path).query).items()}


def json_reply(document: Any) -> Reply:
    return Reply(body=json.dumps(document).encode(), content_type="application/json")


def paged_api(stories: list[dict[str, Any]], size: int) -> Callable[[Request], Reply]:
    def route(request: Request) -> Reply:
        page = int(query(request)["page"])
        return json_reply({"articles": stories[(page - 1) * size : page * size]})

    return route


def test_page_pagination_with_an_api_key_header_then_a_restart(
    local_site: LocalSite, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSAPI_KEY", SECRET)
    local_site.routes["/v2/everything"] = paged_api([story(n) for n in range(5)], size=2)
    source = JsonApiSource(
        local_config(
            local_site,
            params={"q": "budget"},
            headers={"X-Api-Key": "${NEWSAPI_KEY}"},
            pagination="page",
            page_size_param="pageSize",
            page_size=2,
        )
    )
    state = MemoryState()

    items, errors = poll(source, fetcher, state)

    assert errors == []
    assert [i.article.title for i in items] == [f"Story {n}" for n in range(5)]
    assert [i.seen_key for i in items] == [f"https://news.example.com/story/{n}" for n in range(5)]
    requests = local_site.hits  # by path: the query differs per page
    sent = [r for r in local_site.requests if r.path.startswith("/v2/everything")]
    assert [query(r) for r in sent] == [
        {"q": "budget", "pageSize": "2", "page": str(page)} for page in (1, 2, 3)
    ]
    assert {r.headers["x-api-key"] for r in sent} == {SECRET}
    del requests

    # A restart with the same state: page 1 is all seen, so nothing is sent and no page 2 asked.
    assert poll(JsonApiSource(source.config), fetcher, state) == ([], [])
    assert len([r for r in local_site.requests if r.path.startswith("/v2/")]) == 4


def test_cursor_pagination_with_an_api_key_parameter(
    local_site: LocalSite, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSAPI_KEY", SECRET)
    pages = {"": ("c1", [story(1), story(2)]), "c1": ("c2", [story(3)]), "c2": (None, [story(4)])}

    def route(request: Request) -> Reply:
        assert query(request)["apiKey"] == SECRET
        cursor, stories = pages[query(request).get("after", "")]
        return json_reply({"data": {"articles": stories}, "paging": {"next": cursor}})

    local_site.routes["/v2/everything"] = route
    config = local_config(
        local_site,
        params={"apiKey": "${NEWSAPI_KEY}"},
        items_path="data.articles",
        pagination="cursor",
        cursor_path="paging.next",
        cursor_param="after",
    )
    items, errors = poll(JsonApiSource(config), fetcher, MemoryState())
    assert errors == []
    assert [i.article.title for i in items] == ["Story 1", "Story 2", "Story 3", "Story 4"]
    assert [query(r).get("after") for r in local_site.requests] == [None, "c1", "c2"]


def test_next_url_pagination_and_max_pages(
    local_site: LocalSite, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSAPI_KEY", SECRET)

    def route(request: Request) -> Reply:
        page = int(query(request).get("p", "1"))
        assert query(request)["apiKey"] == SECRET  # added although the next URL lacks it
        return json_reply({"articles": [story(page)], "next": f"/v2/everything?p={page + 1}"})

    local_site.routes["/v2/everything"] = route
    config = local_config(
        local_site,
        params={"apiKey": "${NEWSAPI_KEY}"},
        pagination="next_url",
        next_url_path="next",
        max_pages=3,
    )
    items, errors = poll(JsonApiSource(config), fetcher, MemoryState())
    assert errors == []
    assert [i.article.title for i in items] == ["Story 1", "Story 2", "Story 3"]
    assert [query(r).get("p") for r in local_site.requests] == [None, "2", "3"]


def test_a_cursor_that_does_not_advance_is_reported(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    local_site.routes["/v2/everything"] = lambda request: json_reply(
        {"articles": [story(int(query(request).get("cursor", "0")))], "next": "7"}
    )
    config = local_config(local_site, pagination="cursor", cursor_path="next", max_pages=10)
    items, errors = poll(JsonApiSource(config), fetcher, MemoryState())
    assert [i.article.title for i in items] == ["Story 0", "Story 7"]
    assert [(e.kind, e.reason) for e in errors] == [
        ("pagination", "the API returned the same next page again")
    ]
    assert len(local_site.requests) == 2


def test_bad_items_are_reported_and_good_ones_published(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    local_site.routes["/v2/everything"] = json_reply(
        {"articles": [story(1), story(2, title=42), "oops", story(3, publishedAt="soon"), story(1)]}
    )
    items, errors = poll(JsonApiSource(local_config(local_site)), fetcher, MemoryState())
    assert [i.article.title for i in items] == ["Story 1"]  # listed twice, sent once
    where = local_site.url("/v2/everything")
    assert [(e.kind, e.location) for e in errors] == [
        ("parse", f"{where} item #2"),
        ("parse", f"{where} item #3"),
        ("parse", f"{where} item #4"),
    ]
    assert errors[0].reason == "title ('title'): expected a string, got a number"
    assert errors[1].reason == "expected a JSON object, got a string"
    assert "not a W3C datetime: 'soon'" in errors[2].reason


@pytest.mark.parametrize(
    ("reply", "reason"),
    [
        (Reply(body=b"<html>Service down</html>"), "response is not JSON"),
        (
            json_reply({"status": "error", "code": "apiKeyMissing"}),
            "no list of items at 'articles'",
        ),
        (
            json_reply({"articles": {"a": 1}}),
            "expected a list of items at 'articles', got an object",
        ),
    ],
)
def test_responses_of_the_wrong_shape_are_reported(
    local_site: LocalSite, fetcher: Fetcher, reply: Reply, reason: str
) -> None:
    local_site.routes["/v2/everything"] = reply
    items, errors = poll(JsonApiSource(local_config(local_site)), fetcher, MemoryState())
    assert items == []
    assert [(e.kind, e.location) for e in errors] == [("parse", local_site.url("/v2/everything"))]
    assert errors[0].reason.startswith(reason)


def test_the_key_never_appears_in_errors_or_logs(
    local_site: LocalSite,
    fetcher: Fetcher,
    monkeypatch: pytest.MonkeyPatch,
    caplog: pytest.LogCaptureFixture,
) -> None:
    monkeypatch.setenv("NEWSAPI_KEY", SECRET)
    caplog.set_level(logging.DEBUG)
    encoded = "s3cr3t%2Bkey%2Fwith%3Dchars"
    local_site.routes["/v2/everything"] = json_reply({"articles": [{"title": SECRET, "url": 5}]})
    config = local_config(
        local_site, params={"apiKey": "${NEWSAPI_KEY}"}, headers={"X-Api-Key": "${NEWSAPI_KEY}"}
    )
    _, errors = poll(JsonApiSource(config), fetcher, MemoryState())
    assert [e.kind for e in errors] == ["parse"]
    assert "apiKey=[redacted]" in errors[0].location

    local_site.routes["/v2/everything"] = Reply(500, f"bad key {SECRET}".encode())
    with pytest.raises(FetchError) as raised:
        poll(JsonApiSource(config), fetcher, MemoryState())
    assert raised.value.kind == "http_status" and raised.value.status == 500
    assert "apiKey=[redacted]" in raised.value.url
    assert raised.value.__cause__ is None and raised.value.__suppress_context__

    shown = [repr(config), str(raised.value), raised.value.url, *map(str, errors), caplog.text]
    for text in shown:
        assert SECRET not in text and encoded not in text


def test_a_missing_variable_fails_the_poll_before_any_request(
    local_site: LocalSite, fetcher: Fetcher, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("NEWSAPI_KEY", raising=False)
    config = local_config(local_site, headers={"X-Api-Key": "${NEWSAPI_KEY}"})
    with pytest.raises(MissingEnvironmentVariable, match="NEWSAPI_KEY, which is not set"):
        poll(JsonApiSource(config), fetcher, MemoryState())
    assert local_site.requests == []


def _page(text: str) -> Reply:
    return Reply(body=f"<html><body><article><p>{text * 40}</p></article></body></html>".encode())


def test_full_text_is_fetched_when_the_body_is_short(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    local_site.routes["/story/1"] = _page("The whole story, told at length. ")
    teaser = {"title": "Teaser", "content": "The whole… [+2000 chars]", "author": "Jane Roe"}
    local_site.routes["/v2/everything"] = json_reply(
        {
            "articles": [
                {**teaser, "url": local_site.url("/story/1")},
                {**teaser, "url": local_site.url("/story/missing")},
                {**teaser, "url": local_site.url("/story/long"), "content": "Long. " * 200},
            ]
        }
    )
    config = local_config(local_site, full_text=True, min_body_chars=500)
    (full, short, long), errors = poll(JsonApiSource(config), fetcher, MemoryState())

    assert full.article.title == "Teaser"  # the API's
    assert full.article.body.startswith("The whole story, told at length.")
    assert full.article.metadata["authors"] == ["Jane Roe"] and full.article.metadata["full_text"]
    assert short.article.body == "The whole… [+2000 chars]"  # published anyway, flagged
    assert short.article.metadata["full_text_error"].startswith("fetch: http_status")
    assert [(e.kind, e.location) for e in errors] == [("fetch", local_site.url("/story/missing"))]
    assert local_site.hits("/story/long") == []  # long enough: not fetched
    assert long.article.body.startswith("Long.")
