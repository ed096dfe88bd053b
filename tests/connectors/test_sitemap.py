"""Sitemap source: parsing (urlsets, indexes, gzip, Google News, hostile XML) and polling."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta

import pytest

from connectors.fetch import Fetcher, FetchError, FetchPolicy
from connectors.runner import source_fetcher
from connectors.safe_xml import UnsafeXml
from connectors.sitemap import (
    ChildSitemap,
    InvalidSitemap,
    SitemapConfig,
    SitemapEntry,
    SitemapSource,
    language_hint,
    parse_sitemap,
    parse_w3c_datetime,
    select_new,
)
from connectors.source import Item, ItemError, PollContext
from tests.conftest import shared_path
from tests.connectors.conftest import LocalSite, Reply, Request
from tests.connectors.memory_state import MemoryState

FUNDUS = "corpus/html/fundus/test_data"
#: Real article pages: (corpus file, the title fundus expects).
PAGES = {
    "/news/orf": (
        f"{FUNDUS}/at/ORF_2024_11_22.html.gz",
        "Nach Gaetz-Rückzug: Trump-Anwältin soll Justizministerin werden",
    ),
    "/news/standard": (
        f"{FUNDUS}/at/DerStandard_2024_05_03.html.gz",
        "Nach Kalifat-Rufen in Hamburg: Sind wir zu sanft zu Islamisten?",
    ),
    "/news/cbc": (f"{FUNDUS}/ca/CBCNews_2024_08_08.html.gz", None),
}
SITEMAP_NS = 'xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"'
NEWS_NS = 'xmlns:news="http://www.google.com/schemas/sitemap-news/0.9"'
BASE = "https://example.com/sitemap.xml"
XML = "application/xml"


def urlset(*urls: str, extra_ns: str = "") -> bytes:
    return f'<?xml version="1.0"?><urlset {SITEMAP_NS} {extra_ns}>{"".join(urls)}</urlset>'.encode()


def url(loc: str, lastmod: str | None = None, news: str = "") -> str:
    date = f"<lastmod>{lastmod}</lastmod>" if lastmod else ""
    return f"<url><loc>{loc}</loc>{date}{news}</url>"


def index(*locs: tuple[str, str | None]) -> bytes:
    children = "".join(
        f"<sitemap><loc>{loc}</loc>{f'<lastmod>{mod}</lastmod>' if mod else ''}</sitemap>"
        for loc, mod in locs
    )
    return f'<?xml version="1.0"?><sitemapindex {SITEMAP_NS}>{children}</sitemapindex>'.encode()


def news(title: str, date: str, language: str, name: str = "The Daily") -> str:
    return (
        f"<news:news><news:publication><news:name>{name}</news:name>"
        f"<news:language>{language}</news:language></news:publication>"
        f"<news:publication_date>{date}</news:publication_date>"
        f"<news:title>{title}</news:title></news:news>"
    )


def days_ago(days: float) -> str:
    return (datetime.now(UTC) - timedelta(days=days)).isoformat(timespec="seconds")


BILLION_LAUGHS = b"""<?xml version="1.0"?>
<!DOCTYPE lolz [
 <!ENTITY lol "lol">
 <!ENTITY lol2 "&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;">
 <!ENTITY lol3 "&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;">
 <!ENTITY lol4 "&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;">
 <!ENTITY lol5 "&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;">
 <!ENTITY lol6 "&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;">
 <!ENTITY lol7 "&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;">
 <!ENTITY lol8 "&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;">
 <!ENTITY lol9 "&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;">
]>
<urlset xmlns="http://www.sitemaps.org/schemas/sitemap/0.9"><url><loc>&lol9;</loc></url></urlset>
"""


# -- parsing ---------------------------------------------------------------------------------


def test_urlset_entries_are_resolved_and_canonicalized() -> None:
    parsed = parse_sitemap(
        urlset(
            url(
                "https://www.Example.com/a/?utm_source=x&amp;id=1#top", "2024-05-01T10:00:00+02:00"
            ),
            url("/relative/story", "2024-05"),
            url("  http://example.com/plain  "),
        ),
        url=BASE,
    )
    assert not parsed.is_index and not parsed.errors
    first, second, third = parsed.entries
    assert first.loc == "https://www.Example.com/a/?utm_source=x&id=1#top"
    assert first.canonical_url == "https://example.com/a?id=1"
    assert first.lastmod == datetime(2024, 5, 1, 8, 0, tzinfo=UTC)
    assert first.sitemap == BASE
    assert second.loc == "https://example.com/relative/story"
    assert second.lastmod == datetime(2024, 5, 1, tzinfo=UTC)
    assert third.loc == "http://example.com/plain"
    assert third.lastmod is None and third.news_title is None


def test_invalid_entries_are_reported_and_the_rest_kept() -> None:
    parsed = parse_sitemap(
        urlset(
            url("javascript:alert(1)"),
            "<url><lastmod>2024-01-01</lastmod></url>",
            url("https://example.com/ok", "yesterday-ish"),
            url("https://example.com/fine", "2024-01-01"),
        ),
        url=BASE,
    )
    assert [e.loc for e in parsed.entries] == ["https://example.com/ok", "https://example.com/fine"]
    assert parsed.entries[0].lastmod is None  # unreadable date lost, the entry kept
    reasons = {error.location: error.reason for error in parsed.errors}
    assert "not an absolute http(s) URL" in reasons[f"{BASE} (url #1)"]
    assert reasons[f"{BASE} (url #2)"] == "no <loc>"
    assert "not a W3C datetime: 'yesterday-ish'" in reasons[f"{BASE} (https://example.com/ok)"]
    assert all(error.kind == "parse" for error in parsed.errors)


def test_sitemap_index_lists_children() -> None:
    parsed = parse_sitemap(
        index(("https://example.com/a.xml", "2024-05-02"), ("/b.xml.gz", None)), url=BASE
    )
    assert parsed.is_index and not parsed.entries
    assert parsed.children == (
        ChildSitemap("https://example.com/a.xml", datetime(2024, 5, 2, tzinfo=UTC)),
        ChildSitemap("https://example.com/b.xml.gz", None),
    )


def test_sitemaps_without_namespace_or_with_the_old_google_one_are_read() -> None:
    bare = b"<urlset><url><loc>https://example.com/1</loc></url></urlset>"
    old = (
        b'<urlset xmlns="http://www.google.com/schemas/sitemap/0.84">'
        b"<url><loc>https://example.com/2</loc></url></urlset>"
    )
    assert parse_sitemap(bare, url=BASE).entries[0].loc == "https://example.com/1"
    assert parse_sitemap(old, url=BASE).entries[0].loc == "https://example.com/2"


def test_google_news_fields() -> None:
    data = urlset(
        url(
            "https://example.com/story",
            "2024-05-02T00:00:00Z",
            news("Budget passes &amp; markets rally", "2024-05-01T09:30:00+01:00", "zh-cn"),
        ),
        extra_ns=NEWS_NS,
    )
    (entry,) = parse_sitemap(data, url=BASE).entries
    assert entry.news_title == "Budget passes & markets rally"
    assert entry.news_published_at == datetime(2024, 5, 1, 8, 30, tzinfo=UTC)
    assert entry.news_language == "zh"
    assert entry.news_publication == "The Daily"
    assert entry.date == entry.news_published_at  # the publication date, not lastmod


def test_gzipped_sitemap_is_detected_by_its_bytes() -> None:
    plain = urlset(url("https://example.com/1"), url("https://example.com/2"))
    assert parse_sitemap(gzip.compress(plain), url=BASE) == parse_sitemap(plain, url=BASE)


def test_gzip_bomb_stops_at_the_cap() -> None:
    bomb = gzip.compress(urlset() + b" " * 5_000_000)
    assert len(bomb) < 10_000
    with pytest.raises(InvalidSitemap, match="expands beyond 1000000 bytes"):
        parse_sitemap(bomb, url=BASE, max_bytes=1_000_000)


def test_corrupt_gzip_is_a_clear_error() -> None:
    with pytest.raises(InvalidSitemap, match="corrupt gzip data"):
        parse_sitemap(gzip.compress(urlset())[:-12], url=BASE)


@pytest.mark.parametrize(
    ("data", "message"),
    [
        (b"<urlset><url><loc>https://example.com/</loc></url>", "not well-formed XML"),
        (b"", "not well-formed XML"),
        (b"<rss><channel/></rss>", r"not a sitemap: root element <rss>"),
    ],
)
def test_unreadable_sitemaps(data: bytes, message: str) -> None:
    with pytest.raises(InvalidSitemap, match=message):
        parse_sitemap(data, url=BASE)


@pytest.mark.timeout(30)
def test_billion_laughs_is_refused() -> None:
    with pytest.raises(UnsafeXml):
        parse_sitemap(BILLION_LAUGHS, url=BASE)
    with pytest.raises(UnsafeXml):
        parse_sitemap(gzip.compress(BILLION_LAUGHS), url=BASE)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("2024", datetime(2024, 1, 1, tzinfo=UTC)),
        ("2024-05", datetime(2024, 5, 1, tzinfo=UTC)),
        ("2024-05-03", datetime(2024, 5, 3, tzinfo=UTC)),
        ("2024-05-03T10:20Z", datetime(2024, 5, 3, 10, 20, tzinfo=UTC)),
        ("2024-05-03T10:20:30.45-05:00", datetime(2024, 5, 3, 15, 20, 30, 450000, tzinfo=UTC)),
        ("2024-05-03T10:20:30", datetime(2024, 5, 3, 10, 20, 30, tzinfo=UTC)),
        ("Fri, 03 May 2024 10:20:30 GMT", datetime(2024, 5, 3, 10, 20, 30, tzinfo=UTC)),
    ],
)
def test_parse_w3c_datetime(text: str, expected: datetime) -> None:
    assert parse_w3c_datetime(text) == expected


@pytest.mark.parametrize("text", ["", "soon", "2024-13-01", "24-05-03"])
def test_parse_w3c_datetime_rejects(text: str) -> None:
    with pytest.raises(ValueError, match="not a W3C datetime"):
        parse_w3c_datetime(text)


@pytest.mark.parametrize(
    ("code", "expected"),
    [
        ("en", "en"),
        ("EN-us", "en"),
        ("pt_BR", "pt"),
        ("zh-tw", "zh"),
        ("english", None),
        ("", None),
    ],
)
def test_language_hint(code: str, expected: str | None) -> None:
    assert language_hint(code) == expected


def _entry(path: str, date: datetime | None) -> SitemapEntry:
    return SitemapEntry(f"https://example.com/{path}", f"https://example.com/{path}", BASE, date)


def test_select_new_takes_the_newest_unseen_fresh_entries() -> None:
    now = datetime(2024, 5, 10, tzinfo=UTC)
    entries = [
        _entry("undated", None),
        _entry("old", now - timedelta(days=30)),
        _entry("new", now - timedelta(days=1)),
        _entry("newest", now),
        _entry("seen", now),
        _entry("new", None),  # listed twice: the first listing wins
        _entry("middle", now - timedelta(days=2)),
    ]
    unseen = {e.canonical_url for e in entries} - {"https://example.com/seen"}
    chosen = select_new(entries, unseen, cutoff=now - timedelta(days=7), limit=10)
    assert [e.loc.rsplit("/", 1)[1] for e in chosen] == ["newest", "new", "middle", "undated"]
    assert chosen[1].date == now - timedelta(days=1)
    assert len(select_new(entries, unseen, cutoff=None, limit=2)) == 2


def test_config_rejects_a_non_http_url() -> None:
    with pytest.raises(ValueError, match="not an absolute http"):
        SitemapConfig(name="s", url="file:///etc/passwd")


# -- polling a local site --------------------------------------------------------------------


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(FetchPolicy(per_host_interval=0, respect_robots=False)) as fetcher:
        yield fetcher


def config(site: LocalSite, path: str, **settings: object) -> SitemapConfig:
    return SitemapConfig(
        name="test-sitemap",
        url=site.url(path),
        respect_robots=False,
        allow_networks=("127.0.0.1",),
        **settings,
    )


def poll(
    source: SitemapSource, fetcher: Fetcher, state: MemoryState, stop: threading.Event | None = None
) -> tuple[list[Item], list[ItemError]]:
    """One poll, then what the runner does once Kafka acknowledged its items."""
    context = PollContext(
        fetcher=source_fetcher(fetcher, source.config), state=state, stop=stop or threading.Event()
    )
    results = list(source.poll(context))
    items = [r for r in results if isinstance(r, Item)]
    state.commit([item.seen_key for item in items], None)
    return items, [r for r in results if isinstance(r, ItemError)]


def conditional(body: bytes, etag: str, content_type: str = XML) -> object:
    """A route answering 304 to a request that carries ``etag``."""

    def reply(request: Request) -> Reply:
        if request.headers.get("if-none-match") == etag:
            return Reply(304, b"", headers={"ETag": etag}, content_type=content_type)
        return Reply(200, body, headers={"ETag": etag}, content_type=content_type)

    return reply


def serve_pages(site: LocalSite) -> None:
    for path, (file, _) in PAGES.items():
        site.routes[path] = Reply(body=gzip.decompress(shared_path(file).read_bytes()))


def test_index_with_plain_and_gzipped_children_yields_each_page_once(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    serve_pages(local_site)
    local_site.routes["/sitemap_index.xml"] = conditional(
        index(
            ("/sitemaps/a.xml", days_ago(1)),
            ("/sitemaps/b.xml.gz", days_ago(2)),
            (f"http://localhost:{local_site.port}/elsewhere.xml", None),  # another host
        ),
        '"index-1"',
    )
    local_site.routes["/sitemaps/a.xml"] = conditional(
        urlset(url("/news/orf", days_ago(1)), url("/news/standard?utm_source=sitemap")), '"a-1"'
    )
    local_site.routes["/sitemaps/b.xml.gz"] = conditional(
        gzip.compress(urlset(url("/news/cbc", days_ago(2)), url("/news/orf#again"))),
        '"b-1"',
        content_type="application/x-gzip",
    )
    source = SitemapSource(config(local_site, "/sitemap_index.xml"))
    state = MemoryState()

    items, errors = poll(source, fetcher, state)

    assert [(e.kind, e.location) for e in errors] == [
        ("skipped", f"http://localhost:{local_site.port}/elsewhere.xml")
    ]
    assert "another site" in errors[0].reason
    by_path = {item.article.url.split(str(local_site.port))[1]: item for item in items}
    assert sorted(by_path) == ["/news/cbc", "/news/orf", "/news/standard?utm_source=sitemap"]
    for path, item in by_path.items():
        expected_title = PAGES[path.split("?")[0]][1]
        if expected_title:
            assert item.article.title == expected_title
        assert len(item.article.body) > 1000
        assert item.seen_key == f"https://127.0.0.1:{local_site.port}{path.split('?')[0]}"
        assert item.article.metadata["sitemap"].endswith(
            "/sitemaps/b.xml.gz" if path == "/news/cbc" else "/sitemaps/a.xml"
        )
    assert by_path["/news/orf"].article.language_hint == "de"
    assert len(local_site.hits("/news/orf")) == 1  # listed twice, fetched once

    # The runner published them: the next poll sends nothing and now remembers the children.
    assert poll(source, fetcher, state) == ([], [errors[0]])
    index_requests = local_site.hits("/sitemap_index.xml")
    assert index_requests[-1].headers.get("if-none-match") == '"index-1"'
    # ... so the one after that asks for every sitemap conditionally and fetches no page.
    assert poll(source, fetcher, state) == ([], [errors[0]])
    assert local_site.hits("/sitemaps/a.xml")[-1].headers.get("if-none-match") == '"a-1"'
    assert local_site.hits("/sitemaps/b.xml.gz")[-1].headers.get("if-none-match") == '"b-1"'
    assert len(local_site.hits("/news/orf")) == 1
    assert len(local_site.hits("/news/cbc")) == 1


def test_google_news_sitemap_fills_what_the_page_lacks(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    local_site.routes["/story"] = Reply(
        body=b"<html><body><article><p>"
        + b"The council approved the new budget after a long debate. " * 20
        + b"</p></article></body></html>"
    )
    published = datetime.now(UTC).replace(microsecond=0) - timedelta(hours=3)
    local_site.routes["/news-sitemap.xml"] = Reply(
        body=urlset(
            url("/story", None, news("Council approves budget", published.isoformat(), "en-GB")),
            extra_ns=NEWS_NS,
        ),
        content_type=XML,
    )
    source = SitemapSource(config(local_site, "/news-sitemap.xml", language_hint="fr"))

    (item,), errors = poll(source, fetcher, MemoryState())

    assert errors == []
    assert item.article.title == "Council approves budget"
    assert item.article.published_at == published
    assert item.article.language_hint == "en"  # the sitemap's, over the source's default
    assert item.article.metadata["publication"] == "The Daily"
    assert item.article.body.startswith("The council approved the new budget")


@pytest.mark.timeout(60)
def test_gzip_bomb_sitemap_is_a_clear_error(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/bomb.xml.gz"] = Reply(
        body=gzip.compress(urlset() + b" " * 20_000_000), content_type="application/gzip"
    )
    source = SitemapSource(config(local_site, "/bomb.xml.gz", max_sitemap_bytes=1_000_000))
    items, errors = poll(source, fetcher, MemoryState())
    assert items == []
    assert [(e.kind, e.location) for e in errors] == [("parse", local_site.url("/bomb.xml.gz"))]
    assert "expands beyond 1000000 bytes" in errors[0].reason


def test_malformed_sitemap_is_a_clear_error(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/broken.xml"] = Reply(body=b"<urlset><url><loc>x</url>", content_type=XML)
    items, errors = poll(SitemapSource(config(local_site, "/broken.xml")), fetcher, MemoryState())
    assert items == []
    assert [(e.kind, e.location) for e in errors] == [("parse", local_site.url("/broken.xml"))]
    assert errors[0].reason.startswith("not well-formed XML: mismatched tag: line 1")


@pytest.mark.timeout(30)
def test_billion_laughs_sitemap_is_refused(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/lol.xml"] = Reply(body=BILLION_LAUGHS, content_type=XML)
    items, errors = poll(SitemapSource(config(local_site, "/lol.xml")), fetcher, MemoryState())
    assert items == []
    assert [(e.kind, e.location) for e in errors] == [("unsafe_xml", local_site.url("/lol.xml"))]
    assert "entit" in errors[0].reason


def _article_page(text: str) -> Reply:
    return Reply(body=f"<html><body><article><p>{text * 30}</p></article></body></html>".encode())


def test_url_cap_leaves_the_rest_for_the_next_poll(local_site: LocalSite, fetcher: Fetcher) -> None:
    for n in range(3):
        local_site.routes[f"/p{n}"] = _article_page(f"Story number {n} is told here. ")
    local_site.routes["/sitemap.xml"] = conditional(
        urlset(*(url(f"/p{n}", days_ago(n)) for n in range(3))), '"v1"'
    )
    source = SitemapSource(config(local_site, "/sitemap.xml", max_urls_per_poll=2))
    state = MemoryState()

    first, _ = poll(source, fetcher, state)
    second, _ = poll(source, fetcher, state)  # not a 304: the sitemap was not drained
    third, _ = poll(source, fetcher, state)

    assert [i.article.url for i in first] == [local_site.url("/p0"), local_site.url("/p1")]
    assert [i.article.url for i in second] == [local_site.url("/p2")]
    assert third == []
    assert [r.headers.get("if-none-match") for r in local_site.hits("/sitemap.xml")] == [
        None,
        None,
        None,
    ]
    assert poll(source, fetcher, state) == ([], [])
    assert local_site.hits("/sitemap.xml")[-1].headers.get("if-none-match") == '"v1"'


def test_old_entries_and_old_child_sitemaps_are_skipped(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    local_site.routes["/fresh"] = _article_page("Fresh news. ")
    local_site.routes["/stale"] = _article_page("Stale news. ")
    local_site.routes["/index.xml"] = Reply(
        body=index(("/recent.xml", days_ago(1)), ("/archive.xml", days_ago(400))), content_type=XML
    )
    local_site.routes["/recent.xml"] = Reply(
        body=urlset(url("/fresh", days_ago(0.5)), url("/stale", days_ago(30))), content_type=XML
    )
    source = SitemapSource(config(local_site, "/index.xml", only_newer_than_days=7))
    items, errors = poll(source, fetcher, MemoryState())
    assert [i.article.url for i in items] == [local_site.url("/fresh")]
    assert errors == []
    assert local_site.hits("/archive.xml") == [] and local_site.hits("/stale") == []


def test_failed_pages_are_reported_and_retried(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/ok"] = _article_page("This one works. ")
    local_site.routes["/empty"] = Reply(body=b"<html><body></body></html>")
    local_site.routes["/sitemap.xml"] = Reply(
        body=urlset(url("/ok"), url("/gone"), url("/empty")), content_type=XML
    )
    source = SitemapSource(config(local_site, "/sitemap.xml"))
    state = MemoryState()
    items, errors = poll(source, fetcher, state)
    assert [i.article.url for i in items] == [local_site.url("/ok")]
    assert {(e.kind, e.location) for e in errors} == {
        ("fetch", local_site.url("/gone")),
        ("extract", local_site.url("/empty")),
    }
    assert "404" in next(e.reason for e in errors if e.kind == "fetch")
    items, errors = poll(source, fetcher, state)
    assert items == [] and len(errors) == 2  # not seen: tried again
    assert len(local_site.hits("/gone")) == 2


def test_nesting_deeper_than_max_depth_is_reported(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/top.xml"] = Reply(body=index(("/mid.xml", None)), content_type=XML)
    local_site.routes["/mid.xml"] = Reply(body=index(("/leaf.xml", None)), content_type=XML)
    source = SitemapSource(config(local_site, "/top.xml", max_depth=1))
    items, errors = poll(source, fetcher, MemoryState())
    assert items == []
    assert [(e.kind, e.location) for e in errors] == [("skipped", local_site.url("/leaf.xml"))]
    assert "max_depth=1" in errors[0].reason
    assert local_site.hits("/leaf.xml") == []


def test_an_index_listing_itself_is_read_once(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/loop.xml"] = Reply(body=index(("/loop.xml", None)), content_type=XML)
    assert poll(SitemapSource(config(local_site, "/loop.xml")), fetcher, MemoryState()) == ([], [])
    assert len(local_site.hits("/loop.xml")) == 1


def test_broken_child_sitemap_does_not_stop_the_others(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    local_site.routes["/ok"] = _article_page("Still here. ")
    local_site.routes["/index.xml"] = Reply(
        body=index(("/missing.xml", None), ("/good.xml", None)), content_type=XML
    )
    local_site.routes["/good.xml"] = Reply(body=urlset(url("/ok")), content_type=XML)
    items, errors = poll(SitemapSource(config(local_site, "/index.xml")), fetcher, MemoryState())
    assert [i.article.url for i in items] == [local_site.url("/ok")]
    assert [(e.kind, e.location) for e in errors] == [("fetch", local_site.url("/missing.xml"))]


def test_a_failing_top_sitemap_fails_the_poll(local_site: LocalSite, fetcher: Fetcher) -> None:
    source = SitemapSource(config(local_site, "/nowhere.xml"))
    with pytest.raises(FetchError) as raised:
        poll(source, fetcher, MemoryState())
    assert raised.value.kind == "http_status" and raised.value.status == 404


def test_stop_is_checked_between_pages(local_site: LocalSite, fetcher: Fetcher) -> None:
    for n in range(3):
        local_site.routes[f"/p{n}"] = _article_page(f"Story {n}. ")
    local_site.routes["/sitemap.xml"] = Reply(
        body=urlset(*(url(f"/p{n}") for n in range(3))), content_type=XML
    )
    stop = threading.Event()
    source = SitemapSource(config(local_site, "/sitemap.xml"))
    context = PollContext(
        fetcher=source_fetcher(fetcher, source.config), state=MemoryState(), stop=stop
    )
    results = source.poll(context)
    first = next(results)
    stop.set()
    assert isinstance(first, Item)
    assert list(results) == []
    assert local_site.hits("/p1") == [] and local_site.hits("/p2") == []
