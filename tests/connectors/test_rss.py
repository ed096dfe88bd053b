"""The feed source: every corpus feed parses or fails clearly; polling is conditional and once.

Ground truths come from the feedparser test files' ``Expect:`` headers (for what we output:
links, text, languages, dates) and from the bytes themselves (legacy encodings).
"""

from __future__ import annotations

import json
import re
import threading
from collections.abc import Iterator
from datetime import UTC, datetime

import pytest

from connectors.fetch import Fetcher, FetchPolicy
from connectors.rss import FeedItem, ParsedFeed, RssConfig, RssSource, parse_feed
from connectors.source import Item, ItemError, PollContext
from tests.conftest import SHARED, shared_files, shared_path
from tests.connectors.conftest import LocalSite, Reply, Request
from tests.connectors.memory_state import MemoryState
from tests.connectors.test_safe_xml import billion_laughs

FEEDS = "corpus/feeds"
FP = "feedparser-tests/tests/"
#: feedparser's tests were served from here; their expected links are relative to it.
FEEDPARSER_ORIGIN = "http://127.0.0.1:8097/"
ARTICLE_PAGE = "corpus/html/trafilatura/tests/eval/politico.com.retirement.html"
_HEADER = re.compile(rb"^\s*Header:\s*Content-type:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


def corpus_feeds() -> list[str]:
    """Every feed document in the corpus (not the expected-output JSON beside some of them)."""
    return shared_files(
        FEEDS,
        lambda root: (
            p
            for p in root.rglob("*")
            if p.is_file()
            and not p.name.endswith(".serde.json")
            and "rss-parser/test/output" not in p.as_posix()
        ),
    )


def parse_corpus_feed(relative: str) -> ParsedFeed:
    """Parse as if fetched: from feedparser's test URL, with the Content-Type a test declares."""
    path = shared_path(f"{FEEDS}/{relative}")
    data = path.read_bytes()
    declared = _HEADER.search(data[:1000])
    return parse_feed(
        data,
        url=FEEDPARSER_ORIGIN + relative.removeprefix("feedparser-tests/")
        if relative.startswith(FP)
        else f"https://feeds.example.org/{path.name}",
        content_type=declared[1].decode() if declared else None,
    )


@pytest.mark.timeout(20)
@pytest.mark.parametrize("relative", corpus_feeds())
def test_every_corpus_feed_yields_items_or_a_clear_error(relative: str) -> None:
    feed = parse_corpus_feed(relative)
    if feed.error:
        assert not feed.items
        assert feed.error.kind in ("parse", "unsafe_xml")
        assert len(feed.error.reason) > 10
        assert feed.error.location == feed.url
        return
    for item in feed.items:
        assert item.link is None or item.link.startswith(("http://", "https://"))
        assert item.published_at is None or item.published_at.tzinfo is not None
        assert item.seen_key.split(":", 1)[0] in ("guid", "link", "hash")
        for text in (item.title, item.summary, item.content):
            assert "<script" not in text.lower()


#: The corpus feeds that yield no usable items, and why. A change here is a behaviour change.
EXPECTED_ERRORS = {
    # Declare entities in the DOCTYPE: refused on principle (connectors.safe_xml).
    "feedparser-tests/tests/wellformed/rdf/doctype_contains_entity_decl.xml": "unsafe_xml",
    "feedparser-tests/tests/wellformed/rss/entity_in_doctype.xml": "unsafe_xml",
    # Gzip files: over HTTP, Content-Encoding tells the fetcher to decode them first.
    "node-feedparser/test/feeds/compressed.xml": "parse",
    "node-feedparser/test/feeds/invalid-characters-gzipped.xml": "parse",
    # Not feeds at all.
    "node-feedparser/test/feeds/notafeed.html": "parse",
    "feed-rs/feed-rs/fixture/xml/xml_sample_1.xml": "parse",
    "feed-rs/feed-rs/fixture/xml/xml_sample_2.xml": "parse",
    "feedparser-tests/tests/wellformed/cdf/channel_title.xml": "parse",
    # Ill-formed with no item to recover (most test a feed-level field only).
    "feed-rs/feed-rs/fixture/rss2/rss_2.0_invalid_1.xml": "parse",
    "rss-parser/test/input/unrecognized.rss": "parse",
    "feedparser-tests/tests/illformed/aaa_illformed.xml": "parse",
    "feedparser-tests/tests/illformed/chardet/big5.xml": "parse",
    "feedparser-tests/tests/illformed/rss_empty_document.xml": "parse",
    "feedparser-tests/tests/illformed/undeclared_namespace.xml": "parse",
    "feedparser-tests/tests/encoding/bozo_bogus_encoding.xml": "parse",
    "feedparser-tests/tests/encoding/bozo_http_i18n.xml": "parse",
    "feedparser-tests/tests/encoding/bozo_http_text_plain.xml": "parse",
    "feedparser-tests/tests/illformed/http_high_bit_date.xml": "parse",
    "feedparser-tests/tests/encoding/bozo_invalid-bytes-with-bom.xml": "parse",
    # feedparser's entity tests: an undeclared HTML entity in a feed-level field, no items.
    **{
        f"{FP}entities/{path.name}": "parse"
        for path in (SHARED / FEEDS / FP / "entities").glob("*.xml")
    },
}


def test_corpus_totals(capsys: pytest.CaptureFixture[str]) -> None:
    parsed = {relative: parse_corpus_feed(relative) for relative in corpus_feeds()}
    errors = {name: feed.error.kind for name, feed in parsed.items() if feed.error}
    assert errors == EXPECTED_ERRORS
    with_items = sum(bool(feed.items) for feed in parsed.values())
    with capsys.disabled():
        print(
            f"\n{len(parsed) - len(errors)} feeds parsed OK ({with_items} with items,"
            f" {len(parsed) - len(errors) - with_items} empty), {len(errors)} reported errors,"
            f" {sum(len(feed.items) for feed in parsed.values())} items"
        )
    assert len(parsed) == 336


def _first_item(relative: str) -> FeedItem:
    feed = parse_corpus_feed(relative)
    assert feed.error is None
    return feed.items[0]


@pytest.mark.parametrize(
    ("relative", "link"),
    [
        # Expect: entries[0]['link'] == 'http://127.0.0.1:8097/relative/uri'
        (FP + "wellformed/base/http_item_link_base_docuri.xml", FEEDPARSER_ORIGIN + "relative/uri"),
        # xml:base on the channel of a CDF feed
        (FP + "wellformed/base/cdf_item_abstract_xml_base.xml", "http://base.example.org/item/1"),
        # Expect: entries[0].link == 'http://link/get?a=1&b=2' (broken ampersands, loose parser)
        (FP + "illformed/rss_item_link_corrupted_ampersands.xml", "http://link/get?a=1&b=2"),
        # relative links in a real feed resolved against the feed URL
        ("node-feedparser/test/feeds/rss-with-relative-urls.xml", None),
    ],
)
def test_links_resolve_against_xml_base_and_the_feed_url(relative: str, link: str | None) -> None:
    item = _first_item(relative)
    if link is None:
        assert item.link and item.link.startswith("https://feeds.example.org/")
    else:
        assert item.link == link


SANITIZE = shared_files(f"{FEEDS}/{FP}wellformed/sanitize", lambda d: d.glob("entry_*.xml"))


@pytest.mark.parametrize("name", SANITIZE)
def test_no_script_survives_feedparsers_sanitizer_cases(name: str) -> None:
    item = parse_corpus_feed(f"{FP}wellformed/sanitize/{name}").items[0]
    text = item.content or item.summary
    for trace in ("location.href", "executeMe", "javascript", "onclick", "onabort", "<", "{"):
        assert trace not in text
    if "onabort" not in name and "onclick" not in name:
        assert text.startswith(("safe", "Crazy HTML"))


@pytest.mark.parametrize(
    "name", ["script", "script_base64", "script_cdata", "script_inline", "applet"]
)
def test_sanitized_content_keeps_the_text(name: str) -> None:
    # Expect: entries[0]['content'][0]['value'] == 'safe description' (markup aside)
    assert _first_item(f"{FP}wellformed/sanitize/entry_content_{name}.xml").content == (
        "safe description"
    )


@pytest.mark.parametrize(
    ("relative", "field", "expected"),
    [
        # Expect: feed['title'] == '\ub144' (EUC-KR)
        (FP + "encoding/euc-kr.xml", "feed_title", "\ub144"),
        # Expect: feed['title'] (UTF-8 declared by the HTTP Content-Type)
        (FP + "encoding/http_i18n.xml", "feed_title", "Iñtërnâtiônàlizætiøn"),
        # Expect: entries[0]['description'] == 'don\u2019t' (cp1252 "smart quote")
        (FP + "encoding/demoronize-1.xml", "summary", "don\u2019t"),
        # Expect: ord(entries[0]['description']) == 8230 (HTML entity inside escaped HTML)
        (FP + "encoding/double-encoded-html.xml", "summary", "\u2026"),
        # Expect: entries[0]['content'][0]['language'] == 'en' / 'en-US'
        (FP + "wellformed/lang/entry_content_xml_lang.xml", "language", "en"),
        (FP + "wellformed/lang/entry_content_xml_lang_underscore.xml", "language", "en"),
        # Expect: entries[0]['tags'][0]['term'] == 'Freir\xe4ume'
        (FP + "wellformed/atom10/entry_category_term_non_ascii.xml", "category", "Freir\xe4ume"),
        # Expect: ... == 'History of the <blink> tag' (text/plain). We differ on purpose: text
        # that holds a tag is reduced as HTML, so no markup goes on the wire.
        (
            FP + "wellformed/atom10/entry_content_text_plain_brackets.xml",
            "content",
            "History of the tag",
        ),
        # Expect: entries[0]['published'] == 'Thu, 01 Jan 2004 19:48:21 GMT'
        (
            FP + "wellformed/rss/item_pubDate.xml",
            "published_at",
            datetime(2004, 1, 1, 19, 48, 21, tzinfo=UTC),
        ),
        # ISO-8859-1 without any declaration (UOL Notícias)
        (
            "rss-parser/test/input/uolNoticias.rss",
            "title",
            "Ibope: Bolsonaro perde de Haddad, Ciro e Alckmin em simulações de 2º turno",
        ),
        # windows-1251, declared
        (
            "node-feedparser/test/feeds/iconv.xml",
            "title",
            "В Бузулуке главные стройплощадки – детсад и Ледовый дворец",  # noqa: RUF001
        ),
        # RSS 0.91, ISO-8859-1 declared, channel language
        (
            "arminreiter-FeedReader/FeedReader.Tests/Feeds/Rss091Stadtfeuerwehr.xml",
            "feed_title",
            "Stadtfeuerwehr Weiz - Einsätze",
        ),
        (
            "arminreiter-FeedReader/FeedReader.Tests/Feeds/Rss091Stadtfeuerwehr.xml",
            "language",
            "de",
        ),
    ],
)
def test_feedparser_and_encoding_ground_truths(relative: str, field: str, expected: object) -> None:
    feed = parse_corpus_feed(relative)
    assert feed.error is None
    if field == "feed_title":
        assert feed.title == expected
        return
    item = feed.items[0]
    actual = item.categories[0] if field == "category" else getattr(item, field)
    assert actual == expected


def test_json_feed() -> None:
    # Expect: feed.title == 'My Example Feed' and len(entries) == 2
    feed = parse_corpus_feed(f"{FP}json/example.json")
    assert feed.error is None
    assert feed.title == "My Example Feed"
    assert [i.link for i in feed.items] == [
        "https://example.org/second-item",
        "https://example.org/initial-post",
    ]
    assert feed.items[0].content == "This is a second item."
    assert feed.items[0].categories == ("test", "JSON")
    spec = parse_corpus_feed("feed-rs/feed-rs/fixture/jsonfeed/jsonfeed_spec_1.json")
    assert spec.items[0].title == "Announcing JSON Feed"
    assert spec.items[0].published_at == datetime(2017, 5, 17, 15, 2, 12, tzinfo=UTC)


@pytest.mark.parametrize(
    ("document", "reason"),
    [
        (b"\x1f\x8b\x08\x00rest", "gzip"),
        (b'{"title": "not a feed"}', "not a JSON Feed"),
        (b"{broken", "not valid JSON"),
        (b'{"a":' * 100_000, "not valid JSON"),
        (b"<html><body><p>hello</p></body></html>", "not an RSS"),
        (b'<!DOCTYPE r [<!ENTITY a "b">]><rss version="2.0"/>', "declares entity 'a'"),
    ],
    ids=["gzip", "json-not-feed", "bad-json", "deep-json", "html", "entity"],
)
def test_feed_level_errors_say_why(document: bytes, reason: str) -> None:
    feed = parse_feed(document, url="https://example.org/feed")
    assert feed.error is not None
    assert reason in feed.error.reason
    assert feed.items == ()


@pytest.mark.parametrize(
    "title",
    [
        "Hi &lt;script&gt;alert(1)&lt;/script&gt;there",  # escaped once: RSS titles are "text"
        "Hi &amp;lt;script&amp;gt;alert(1)&amp;lt;/script&amp;gt;there",  # escaped twice
    ],
)
def test_markup_in_plain_text_fields_is_reduced_too(title: str) -> None:
    document = f'<rss version="2.0"><channel><item><title>{title}</title></item></channel></rss>'
    (only,) = parse_feed(document.encode(), url="https://example.org/feed").items
    assert only.title == "Hi there"


def test_json_feed_fields_of_the_wrong_type_are_ignored() -> None:
    document = {
        "version": "https://jsonfeed.org/version/1.1",
        "items": [
            {"id": 7, "url": ["x"], "title": "T", "tags": "news", "date_published": "2026-09-01"},
            "not an item",
        ],
    }
    feed = parse_feed(json.dumps(document).encode(), url="https://example.org/feed.json")
    (only,) = feed.items
    assert (only.guid, only.link, only.title, only.categories) == ("7", None, "T", ())
    assert only.published_at is None  # no offset: ambiguous
    assert feed.warning == "1 items are not JSON objects"


def test_an_ill_formed_feed_keeps_its_items_with_a_warning() -> None:
    feed = parse_corpus_feed("rss-parser/test/input/uolNoticias.rss")
    assert feed.error is None
    assert feed.warning and "windows-1252" in feed.warning
    assert len(feed.items) == 15


def test_seen_key_prefers_guid_then_canonical_link_then_content() -> None:
    item = FeedItem(
        guid=None,
        link="http://www.Example.org/a/?utm_source=x",
        title="T",
        summary="S",
        content="",
        published_at=None,
    )
    assert item.seen_key == "link:https://example.org/a"
    assert FeedItem("g-1", item.link, "T", "S", "", None).seen_key == "guid:g-1"
    hashed = FeedItem(None, None, "T", "S", "", None).seen_key
    assert hashed.startswith("hash:")
    assert FeedItem(None, None, " t ", "s", "", None).seen_key == hashed
    assert FeedItem(None, None, "T", "other", "", None).seen_key != hashed


# --- polling against a real HTTP server -----------------------------------------------------


def rss(*items: str, base: str = "") -> bytes:
    return (
        '<?xml version="1.0" encoding="utf-8"?><rss version="2.0"><channel><title>Local</title>'
        f"<language>en-GB</language>{''.join(items)}</channel></rss>"
    ).encode()


def item(guid: str, link: str, summary: str, *, content: str = "", date: str = "") -> str:
    encoded = f"<content:encoded><![CDATA[{content}]]></content:encoded>" if content else ""
    published = f"<pubDate>{date}</pubDate>" if date else ""
    return (
        f'<item xmlns:content="http://purl.org/rss/1.0/modules/content/">'
        f'<guid isPermaLink="false">{guid}</guid>'
        f"<title>Story {guid}</title><link>{link}</link>"
        f"<description><![CDATA[{summary}]]></description>{encoded}{published}</item>"
    )


class FeedServer:
    """Serves a feed with an ETag and answers 304 to a matching If-None-Match."""

    def __init__(self, site: LocalSite, body: bytes) -> None:
        self.body = body
        site.routes["/feed.xml"] = self._reply

    def _reply(self, request: Request) -> Reply:
        etag = f'"{hash(self.body) & 0xFFFFFFFF:x}"'
        if request.headers.get("if-none-match") == etag:
            return Reply(304, b"", headers={"ETag": etag})
        return Reply(200, self.body, headers={"ETag": etag}, content_type="application/rss+xml")


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    policy = FetchPolicy(allow_networks=("127.0.0.1",), respect_robots=False, per_host_interval=0)
    with Fetcher(policy) as client:
        yield client


def source(site: LocalSite, **settings: object) -> RssSource:
    config = RssConfig(
        name="local", url=site.url("/feed.xml"), allow_networks=("127.0.0.1",), **settings
    )
    return RssSource(config)


def poll(rss_source: RssSource, fetcher: Fetcher, state: MemoryState) -> list[Item | ItemError]:
    results = list(rss_source.poll(PollContext(fetcher=fetcher, state=state)))
    state.commit([r.seen_key for r in results if isinstance(r, Item)], None)
    return results


LONG = " ".join(["word"] * 150)


def test_second_poll_is_conditional_and_a_restart_sends_nothing_seen(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    feed = FeedServer(local_site, rss(item("a", "https://example.org/a", LONG)))
    state = MemoryState()
    first = poll(source(local_site), fetcher, state)
    assert [r.seen_key for r in first if isinstance(r, Item)] == ["guid:a"]
    assert poll(source(local_site), fetcher, state) == []
    assert local_site.hits("/feed.xml")[1].headers["if-none-match"] == state.get("etag")

    # The feed changes: a new source object (a restart) with the same state sends the new item.
    feed.body = rss(
        item("b", "https://example.org/b", LONG), item("a", "https://example.org/a", LONG)
    )
    restarted = poll(source(local_site), fetcher, state)
    assert [r.seen_key for r in restarted if isinstance(r, Item)] == ["guid:b"]


def test_a_restart_without_validators_resends_nothing(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    FeedServer(local_site, rss(item("a", "https://example.org/a", LONG)))
    state = MemoryState(seen={"guid:a"})
    assert poll(source(local_site), fetcher, state) == []
    assert len(local_site.hits("/feed.xml")) == 1


def test_summary_only_item_gets_its_page_and_the_feed_facts(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    local_site.routes["/story"] = Reply(200, shared_path(ARTICLE_PAGE).read_bytes())
    page_url = local_site.url("/story")
    FeedServer(
        local_site,
        rss(
            item("p", page_url, "A short teaser.", date="Mon, 30 Dec 2019 12:00:00 GMT"),
            item("full", local_site.url("/not-fetched"), "Teaser", content=f"<p>{LONG}</p>"),
        ),
    )
    results = poll(source(local_site), fetcher, MemoryState())
    fetched, complete = (r for r in results if isinstance(r, Item))
    assert "shock retirement — revealed just 30 hours before the" in fetched.article.body
    assert fetched.article.published_at == datetime(2019, 12, 30, 12, tzinfo=UTC)
    assert fetched.article.language_hint == "en"
    assert fetched.article.metadata["guid"] == "p"
    assert complete.article.body == LONG
    assert local_site.hits("/not-fetched") == []
    assert len(local_site.hits("/story")) == 1


def test_a_failed_page_fetch_publishes_the_summary_and_reports_why(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    FeedServer(local_site, rss(item("gone", local_site.url("/gone"), "<b>Only</b> a teaser.")))
    error, published = poll(source(local_site), fetcher, MemoryState())
    assert isinstance(error, ItemError) and error.kind == "fetch"
    assert "404" in error.reason
    assert isinstance(published, Item)
    assert published.article.body == "Only a teaser."
    assert "404" in published.article.metadata["full_text_error"]


def test_full_text_never_fetches_no_page(local_site: LocalSite, fetcher: Fetcher) -> None:
    FeedServer(local_site, rss(item("x", local_site.url("/page"), "Teaser.")))
    (published,) = poll(source(local_site, full_text="never"), fetcher, MemoryState())
    assert isinstance(published, Item) and published.article.body == "Teaser."
    assert local_site.hits("/page") == []


def test_a_capped_poll_leaves_the_rest_for_the_next_one(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    FeedServer(
        local_site,
        rss(*(item(str(n), f"https://example.org/{n}", LONG) for n in range(5))),
    )
    state = MemoryState()
    capped = source(local_site, max_items_per_poll=3)
    assert [r.seen_key for r in poll(capped, fetcher, state)] == ["guid:0", "guid:1", "guid:2"]
    assert state.get("etag") is None  # so the next poll reads the feed again, not a 304
    assert [r.seen_key for r in poll(capped, fetcher, state)] == ["guid:3", "guid:4"]
    assert state.get("etag")
    assert poll(capped, fetcher, state) == []


def test_duplicate_guids_are_one_item_and_the_newest_date_is_exposed(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    FeedServer(
        local_site,
        rss(
            item("d", "https://example.org/1", LONG, date="Tue, 01 Sep 2026 10:00:00 +0200"),
            item("d", "https://example.org/2", LONG, date="Wed, 02 Sep 2026 10:00:00 GMT"),
        ),
    )
    rss_source = source(local_site)
    results = poll(rss_source, fetcher, MemoryState())
    assert [r.seen_key for r in results] == ["guid:d"]
    assert rss_source.newest_item_at == datetime(2026, 9, 2, 10, tzinfo=UTC)


def test_an_unsafe_feed_is_one_clear_error(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/feed.xml"] = Reply(200, billion_laughs(), content_type="application/xml")
    state = MemoryState()
    (error,) = poll(source(local_site), fetcher, state)
    assert isinstance(error, ItemError) and error.kind == "unsafe_xml"
    assert state.values == {}


def test_stop_ends_the_poll_between_items_without_storing_validators(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    FeedServer(local_site, rss(*(item(str(n), f"https://example.org/{n}", LONG) for n in range(3))))
    state = MemoryState()
    context = PollContext(fetcher=fetcher, state=state, stop=threading.Event())
    polling = source(local_site).poll(context)
    assert isinstance(next(polling), Item)
    context.stop.set()
    assert list(polling) == []
    assert state.get("etag") is None
