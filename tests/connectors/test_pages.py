"""Article pages: extraction of real corpus pages, metadata, charsets, sanitizing, the source."""

from __future__ import annotations

import gzip
import json
import socket
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta, timezone

import pytest

from connectors.fetch import Fetcher, FetchPolicy
from connectors.pages import (
    KEPT_HTML_MAX_CHARS,
    ExtractionFailed,
    PagesConfig,
    PagesSource,
    decode_html,
    extract_page,
    fetch_article,
    html_to_text,
)
from connectors.source import Item, ItemError, PollContext
from newsflow.article import article_id
from tests.conftest import shared_path
from tests.connectors.conftest import LocalSite, Reply
from tests.connectors.memory_state import MemoryState

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
FUNDUS = "corpus/html/fundus/test_data"
TRAFILATURA = "corpus/html/trafilatura/tests/eval"
DER_STANDARD = f"{FUNDUS}/at/DerStandard_2024_05_03.html.gz"
DER_STANDARD_URL = (
    "https://www.derstandard.at/story/3000000218734/"
    "nach-kalifat-rufen-in-hamburg-sind-wir-zu-sanft-zu-islamisten?ref=rss"
)
LONG_TEXT = " ".join(f"Sentence number {n} of a long enough article body." for n in range(40))


def page(
    head: str = "", body: str = f"<article><p>{LONG_TEXT}</p></article>", lang: str = "en"
) -> str:
    return (
        f'<!DOCTYPE html><html lang="{lang}"><head>{head}<title>A headline</title></head>'
        f"<body>{body}</body></html>"
    )


def test_real_page_text_and_metadata() -> None:
    html = gzip.decompress(shared_path(DER_STANDARD).read_bytes())
    result = extract_page(html, url=DER_STANDARD_URL)
    truth = json.loads(shared_path(f"{FUNDUS}/at/DerStandard.json").read_text(encoding="utf-8"))
    truth = truth["V1"]
    assert result.title == truth["title"]
    assert result.authors == truth["authors"]
    assert result.language == "de"
    assert result.canonical_url == DER_STANDARD_URL.split("?")[0]
    assert result.published_at == datetime.fromisoformat(truth["publishing_date"])
    first_paragraph = truth["body"]["sections"][0]["paragraphs"][0]
    assert first_paragraph[:80] in result.text
    assert "<" not in result.text


@pytest.mark.parametrize(
    ("name", "language"),
    [
        ("jp/AsahiShimbun_2025_01_13.html.gz", "ja"),
        ("es/ElPais_2024_10_15.html.gz", "es"),
        ("tr/NTVTR_2024_04_30.html.gz", "tr"),
    ],
)
def test_real_pages_in_other_languages(name: str, language: str) -> None:
    html = gzip.decompress(shared_path(f"{FUNDUS}/{name}").read_bytes())
    result = extract_page(html, url="https://news.example/a")
    assert result.language == language
    assert len(result.text) > 300
    assert result.published_at is not None and result.published_at.tzinfo is not None


def test_trafilatura_eval_page_keeps_wanted_and_drops_unwanted_snippets() -> None:
    url = "https://www.zeit.de/2019/43/klimaschutz-banken-unternehmen-fracking-oelfoerderung-fossile-brennstoffe"
    result = extract_page(
        shared_path(f"{TRAFILATURA}/0a12df42d1764095989ab078ee0f940b.html").read_bytes(), url=url
    )
    assert "JPMorgan Chase" in result.text
    assert "Cookies & Tracking" not in result.text
    assert result.title.endswith("Bohren, bis es heiß wird")  # "Klimaschutz: " kicker kept


def test_extraction_opens_no_connection(monkeypatch: pytest.MonkeyPatch) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError("extract_page tried to reach the network")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    html = page('<link rel="canonical" href="https://example.com/a">')
    assert (
        extract_page(html.encode(), url="https://example.com/a?x=1").canonical_url
        == "https://example.com/a"
    )


def test_threads_get_the_same_results_as_one_thread() -> None:
    pages = sorted(shared_path(FUNDUS).glob("*/*.html.gz"))[:12]
    inputs = [(gzip.decompress(p.read_bytes()), "https://news.example/" + p.name) for p in pages]
    sequential = [extract_page(html, url=url) for html, url in inputs]
    with ThreadPoolExecutor(max_workers=6) as pool:
        parallel = list(pool.map(lambda args: extract_page(args[0], url=args[1]), inputs * 2))
    assert parallel == sequential * 2


@pytest.mark.parametrize(
    ("head", "page_url", "expected"),
    [
        (
            '<link rel="canonical" href="/story/1">',
            "https://www.example.com/story/1?utm_source=x",
            "https://www.example.com/story/1",
        ),
        (
            '<link rel="Canonical" href="https://example.com/s">',
            "https://m.example.com/s",
            "https://example.com/s",
        ),
        (
            '<meta property="og:url" content="https://news.example.com/s">',
            "https://example.com/s",
            "https://news.example.com/s",
        ),
        ('<link rel="canonical" href="https://evil.example/s">', "https://example.com/s", None),
        ('<link rel="canonical" href="javascript:alert(1)">', "https://example.com/s", None),
        (
            '<link rel="canonical" href="https://example.com:99999/s">',
            "https://example.com/s",
            None,
        ),
        ("", "https://example.com/s", None),
        (
            '<link rel="canonical" href="https://any.example/s">',
            "file:///tmp/saved.html",
            "https://any.example/s",
        ),
        ('<link rel="canonical" href="relative/s">', "file:///tmp/saved.html", None),
    ],
)
def test_canonical_url(head: str, page_url: str, expected: str | None) -> None:
    assert extract_page(page(head).encode(), url=page_url).canonical_url == expected


@pytest.mark.parametrize(
    ("head", "expected"),
    [
        (
            '<meta property="article:published_time" content="2024-05-03T17:47:42+02:00">',
            datetime(2024, 5, 3, 15, 47, 42, tzinfo=UTC),
        ),
        (
            '<meta property="article:published_time" content="2024-05-03T17:47:42">',
            datetime(2024, 5, 3, 17, 47, 42, tzinfo=UTC),
        ),
        (
            '<script type="application/ld+json">{"@graph": [{"@type": "NewsArticle",'
            ' "datePublished": "2023-01-02T03:04:05-05:00"}]}</script>',
            datetime(2023, 1, 2, 8, 4, 5, tzinfo=UTC),
        ),
        ('<script type="application/ld+json">{broken json</script>', None),
    ],
)
def test_published_date(head: str, expected: datetime | None) -> None:
    found = extract_page(page(head).encode(), url="https://example.com/a").published_at
    assert found == expected
    assert found is None or found.utcoffset() is not None


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        (page(lang="pt-BR"), "pt"),
        (page(lang="nb_NO"), "nb"),
        (page(lang="not a language"), None),
        (
            page(lang="")
            .replace(' lang=""', "")
            .replace("<head>", '<head><meta property="og:locale" content="fr_FR">'),
            "fr",
        ),
    ],
)
def test_language(html: str, expected: str | None) -> None:
    assert extract_page(html.encode(), url="https://example.com/a").language == expected


def test_charsets() -> None:
    text = page(body=f"<article><p>Ação e coração na redação. {LONG_TEXT}</p></article>")
    latin1 = text.encode("latin-1")
    meta_latin1 = text.replace("<head>", '<head><meta charset="iso-8859-1">').encode("latin-1")
    for html, charset in [
        (latin1, "iso-8859-1"),  # honest HTTP header
        (meta_latin1, None),  # <meta charset>
        (meta_latin1, "utf-8"),  # HTTP says UTF-8, the bytes are not: the meta tag is right
        (text.encode("utf-8"), "iso-8859-1"),  # mislabelled UTF-8
        (latin1, "no-such-charset"),
        (text.encode("utf-8"), None),
    ]:
        assert (
            "Ação e coração"
            in extract_page(html, url="https://example.com/a", charset=charset).text
        )
    assert decode_html(b"caf\xe9 \x81", "utf-8") == "café \ufffd"  # windows-1252 with replacement
    assert decode_html(b"\xef\xbb\xbfok") == "ok"


@pytest.mark.parametrize(
    ("html", "reason"),
    [
        (b"", "empty page"),
        (b"   \n", "empty page"),
        (b"<html><body><script>render()</script></body></html>", "no main text"),
        (b"\x00\x01\x02\xff\xfe binary", "not an HTML document"),
    ],
)
def test_extraction_failures_have_reasons(html: bytes, reason: str) -> None:
    with pytest.raises(ExtractionFailed, match=reason):
        extract_page(html, url="https://example.com/a")


@pytest.mark.parametrize(
    ("html", "expected"),
    [
        ("<p>Hello &amp; <b>welcome</b></p><p>Second&nbsp;one</p>", "Hello & welcome\nSecond one"),
        ("Plain text, 3 < 4 &lt; 5", "Plain text, 3 < 4 < 5"),
        ("<script>alert('x')</script>Safe<style>p{color:red}</style>", "Safe"),
        (
            "<noscript>tracking</noscript><iframe src=x>frame</iframe><object>obj</object>Kept",
            "Kept",
        ),
        ('<!-- secret --><p onclick="steal()">  lots   of\n\n spaces </p>', "lots of spaces"),
        ("Line one<br>Line two<br/>", "Line one\nLine two"),
        ("<ul><li>a</li><li>b</li></ul>", "a\nb"),
        ("", ""),
        ("\x00\x0b", ""),
        ("<scr<script>ipt>alert(1)</script>", "ipt>alert(1)"),
    ],
)
def test_html_to_text(html: str, expected: str) -> None:
    assert html_to_text(html) == expected


def policy() -> FetchPolicy:
    return FetchPolicy(allow_networks=("127.0.0.1",), respect_robots=False, per_host_interval=0.0)


@pytest.fixture
def fetcher() -> Fetcher:
    return Fetcher(policy())


def test_fetch_article_follows_redirects_and_keeps_html_out(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    html = page('<meta property="article:published_time" content="2026-11-25T08:00:00Z">')
    local_site.routes["/story"] = Reply(200, html.encode())
    local_site.routes["/go"] = Reply(301, b"", headers={"Location": local_site.url("/story")})
    article = fetch_article(
        fetcher, local_site.url("/go"), source="Local", language_hint=None, fetched_at=NOW
    )
    assert article.url == local_site.url("/story")
    assert article.canonical_url == local_site.url("/story")  # no canonical: the final URL
    assert article.id == article_id(
        canonical_url=local_site.url("/story"), source="", title="", body=""
    )
    assert article.title == "A headline"
    assert article.language_hint == "en"
    assert article.published_at == datetime(2026, 11, 25, 8, 0, tzinfo=UTC)
    assert article.metadata["final_url"] == local_site.url("/story")
    assert "html" not in article.metadata


def test_fetch_article_keep_html_and_caller_fields_win(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    html = page(
        '<meta property="article:published_time" content="2026-11-25T08:00:00Z">', lang="de"
    )
    big = html.replace("</body>", "<!--" + "x" * KEPT_HTML_MAX_CHARS + "--></body>")
    local_site.routes["/big"] = Reply(200, big.encode())
    feed_date = datetime(2026, 11, 24, 9, 0, tzinfo=timezone(timedelta(hours=1)))
    article = fetch_article(
        fetcher,
        local_site.url("/big"),
        source="Local",
        language_hint="pt",
        fetched_at=NOW,
        published_at=feed_date,
        keep_html=True,
    )
    assert article.language_hint == "pt"
    assert article.metadata["page_language"] == "de"
    assert article.published_at == feed_date
    assert len(article.metadata["html"]) == KEPT_HTML_MAX_CHARS
    assert article.metadata["html_truncated"] is True


def test_fetch_article_refuses_non_html(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/doc.pdf"] = Reply(200, b"%PDF-1.4", content_type="application/pdf")
    with pytest.raises(ExtractionFailed, match="not an HTML page: content-type application/pdf"):
        fetch_article(
            fetcher, local_site.url("/doc.pdf"), source="L", language_hint=None, fetched_at=NOW
        )


def test_pages_config_validates_urls() -> None:
    with pytest.raises(ValueError, match="absolute http"):
        PagesConfig(name="p", type="pages", urls=["ftp://example.com/a"])
    with pytest.raises(ValueError, match="at least one URL"):
        PagesConfig(name="p", type="pages", urls=[])


def test_pages_source_fetches_each_url_until_published(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    local_site.routes["/a"] = Reply(200, page().encode())
    local_site.routes["/b"] = Reply(200, page(body="<script>render()</script>").encode())
    local_site.routes["/c"] = Reply(404, b"gone")
    config = PagesConfig(
        name="hand-picked",
        type="pages",
        urls=[local_site.url(p) for p in ("/a", "/b", "/c")],
        allow_networks=("127.0.0.1",),
        respect_robots=False,
    )
    state = MemoryState()
    source = PagesSource(config)
    first = list(source.poll(PollContext(fetcher=fetcher, state=state)))
    items = [r for r in first if isinstance(r, Item)]
    errors = {r.location: r for r in first if isinstance(r, ItemError)}
    assert [i.article.url for i in items] == [local_site.url("/a")]
    assert items[0].article.source == "hand-picked"
    assert errors[local_site.url("/b")].kind == "extract"
    assert errors[local_site.url("/c")].kind == "fetch"
    assert "http_status" in errors[local_site.url("/c")].reason
    state.commit([i.seen_key for i in items], None)
    second = list(source.poll(PollContext(fetcher=fetcher, state=state)))
    assert not [r for r in second if isinstance(r, Item)]
    assert len(local_site.hits("/a")) == 1
    assert len(local_site.hits("/b")) == 2  # failures are retried on the next poll


@pytest.mark.parametrize(
    ("encoding", "content_type"),
    [
        ("latin-1", "text/html; charset=utf-8"),  # the server lies: the bytes are Latin-1
        ("utf-8", "text/html; charset=iso-8859-1"),  # the server lies the other way
        ("cp1252", "text/html; charset=x-no-such-charset"),  # a charset nobody knows
    ],
)
def test_a_served_page_with_a_wrong_charset_still_reads_right(
    local_site: LocalSite, fetcher: Fetcher, encoding: str, content_type: str
) -> None:
    body = f"<article><p>Ação e coração na redação. {LONG_TEXT}</p></article>"
    local_site.routes["/mislabelled"] = Reply(
        200, page(body=body).encode(encoding), content_type=content_type
    )
    article = fetch_article(
        fetcher, local_site.url("/mislabelled"), source="Local", language_hint=None, fetched_at=NOW
    )
    assert "Ação e coração" in article.body
