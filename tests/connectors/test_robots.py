"""robots.txt: the cache's rules (RFC 9309 outcomes, TTLs) and the fetcher obeying them."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator

import pytest

from connectors.fetch import Fetcher, FetchError, FetchPolicy
from connectors.robots import (
    Outcome,
    RobotsCache,
    RobotsFile,
    agent_token,
    parse_robots,
    robots_url,
)
from tests.connectors.conftest import LocalSite, Reply

UA = "newsflow-test/1.0 (+https://example.org/newsflow)"
RULES = b"""
User-agent: newsflow-test
Disallow: /private
Allow: /private/press

User-agent: *
Disallow: /
"""


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Server:
    """A robots.txt download that answers what the test says and counts its calls."""

    def __init__(self, robots: RobotsFile) -> None:
        self.robots = robots
        self.calls: list[str] = []

    def __call__(self, url: str) -> RobotsFile:
        self.calls.append(url)
        return self.robots


def test_rules_for_our_agent_token() -> None:
    cache = RobotsCache()
    download = Server(RobotsFile(Outcome.FOUND, RULES))
    assert cache.check("https://news.example/articles/1", UA, download) is None
    refusal = cache.check("https://news.example/private/x", UA, download)
    assert refusal == "https://news.example/robots.txt disallows it for newsflow-test"
    assert cache.check("https://news.example/private/press/x", UA, download) is None
    assert cache.check("https://news.example/articles/1", "otherbot/2.0", download) is not None
    assert download.calls == ["https://news.example/robots.txt"]  # one download per origin


@pytest.mark.parametrize(
    ("rules", "path", "allowed"),
    [
        ("Disallow: /private\nAllow: /private/press", "/private/press/1", True),  # longest wins
        ("Allow: /private/press\nDisallow: /private", "/private/x", False),
        ("Allow: /page\nDisallow: /page", "/page", True),  # Allow wins a tie
        ("Disallow: /*.pdf$", "/files/report.pdf", False),
        ("Disallow: /*.pdf$", "/files/report.pdf?x=1", True),
        ("Disallow: /*?sessionid=", "/a/b?sessionid=7", False),
        ("Disallow: /*?sessionid=", "/a/b", True),
        ("Disallow: /caf%C3%A9", "/café/menu", False),  # one percent-encoding for both
        ("Disallow:", "/anything", True),  # empty Disallow allows all
        ("Disallow: /", "/robots.txt", True),  # robots.txt itself is always allowed
        ("Disallow: /a # comment\nsitemap: http://x/s.xml", "/a/b", False),
    ],
)
def test_rfc_9309_matching(rules: str, path: str, allowed: bool) -> None:
    parsed = parse_robots(f"User-agent: newsflow-test\n{rules}\n")
    assert parsed.allows("newsflow-test", f"https://news.example{path}") is allowed


def test_groups_are_chosen_by_product_token_and_merged() -> None:
    parsed = parse_robots(
        "\ufeffUser-agent: *\nDisallow: /\n\n"
        "User-agent: NewsFlow-Test/2.0\nUser-agent: otherbot\nDisallow: /a\n\n"
        "User-agent: newsflow-test\nDisallow: /b\n\n"
        "User-agent: quietbot\n"
    )
    assert not parsed.allows("newsflow-test", "http://x/a")
    assert not parsed.allows("newsflow-test", "http://x/b")
    assert parsed.allows("newsflow-test", "http://x/c")
    assert parsed.allows("otherbot", "http://x/b")  # only its own group applies
    assert not parsed.allows("otherbot", "http://x/a")
    assert not parsed.allows("somebot", "http://x/c")  # falls back to *
    assert parsed.allows("quietbot", "http://x/c")  # its own group, with no rules


def test_missing_robots_allows_everything_and_unreachable_disallows() -> None:
    cache = RobotsCache()
    assert cache.check("http://a.example/x", UA, Server(RobotsFile(Outcome.UNAVAILABLE))) is None
    refusal = cache.check("http://b.example/x", UA, Server(RobotsFile(Outcome.UNREACHABLE)))
    assert refusal is not None
    assert "could not be fetched" in refusal


def test_entries_expire() -> None:
    clock = Clock()
    cache = RobotsCache(ttl=100, unreachable_ttl=10, clock=clock)
    down = Server(RobotsFile(Outcome.UNREACHABLE))
    assert cache.check("http://a.example/x", UA, down) is not None
    clock.now += 11
    up = Server(RobotsFile(Outcome.FOUND, b"User-agent: *\nDisallow: /x\n"))
    assert cache.check("http://a.example/y", UA, up) is None
    clock.now += 99
    assert cache.check("http://a.example/x", UA, up) is not None
    assert len(up.calls) == 1
    clock.now += 2
    cache.check("http://a.example/x", UA, up)
    assert len(up.calls) == 2


def test_known_rules_survive_an_outage() -> None:
    clock = Clock()
    cache = RobotsCache(ttl=100, unreachable_ttl=10, clock=clock)
    cache.check("http://a.example/", UA, Server(RobotsFile(Outcome.FOUND, b"User-agent: *\n")))
    clock.now += 101
    down = Server(RobotsFile(Outcome.UNREACHABLE))
    assert cache.check("http://a.example/page", UA, down) is None
    clock.now += 11
    assert cache.check("http://a.example/page", UA, down) is None
    assert len(down.calls) == 2


def test_concurrent_checks_download_once() -> None:
    cache = RobotsCache()
    started = threading.Event()

    def slow(url: str) -> RobotsFile:
        started.set()
        time.sleep(0.2)
        calls.append(url)
        return RobotsFile(Outcome.UNAVAILABLE)

    calls: list[str] = []
    threads = [
        threading.Thread(target=cache.check, args=(f"http://a.example/{n}", UA, slow))
        for n in range(5)
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert calls == ["http://a.example/robots.txt"]


def test_oldest_origins_are_forgotten() -> None:
    cache = RobotsCache(max_origins=2)
    download = Server(RobotsFile(Outcome.UNAVAILABLE))
    for host in ("a", "b", "c", "a"):
        cache.check(f"http://{host}.example/", UA, download)
    assert [url.split("/")[2] for url in download.calls] == [
        "a.example",
        "b.example",
        "c.example",
        "a.example",
    ]


def test_helpers() -> None:
    assert robots_url("https://user@News.example:8443/a/b?c=d") == (
        "https://News.example:8443/robots.txt"
    )
    assert agent_token("newsflow/0.1.0 (news ingestion)") == "newsflow"
    assert agent_token("Mozilla compatible") == "Mozilla"


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    policy = FetchPolicy(user_agent=UA, allow_networks=("127.0.0.1/32",), per_host_interval=0)
    with Fetcher(policy) as fetcher:
        yield fetcher


def test_fetcher_obeys_robots_txt(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/robots.txt"] = Reply(body=RULES, content_type="text/plain")
    local_site.routes["/articles/1"] = Reply(body=b"article")
    local_site.routes["/private/x"] = Reply(body=b"secret")
    assert fetcher.get(local_site.url("/articles/1")).body == b"article"
    with pytest.raises(FetchError) as caught:
        fetcher.get(local_site.url("/private/x"))
    assert caught.value.kind == "robots"
    assert "respect_robots" in str(caught.value)
    assert local_site.hits("/private/x") == []
    assert len(local_site.hits("/robots.txt")) == 1
    assert local_site.hits("/robots.txt")[0].headers["user-agent"] == UA


def test_fetcher_checks_robots_on_every_redirect_hop(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    local_site.routes["/robots.txt"] = Reply(body=RULES, content_type="text/plain")
    local_site.routes["/go"] = Reply(302, headers={"Location": "/private/x"})
    with pytest.raises(FetchError) as caught:
        fetcher.get(local_site.url("/go"))
    assert caught.value.kind == "robots"
    assert local_site.hits("/private/x") == []


@pytest.mark.parametrize(("status", "allowed"), [(404, True), (403, True), (500, False)])
def test_robots_status_outcomes(
    local_site: LocalSite, fetcher: Fetcher, status: int, allowed: bool
) -> None:
    local_site.routes["/robots.txt"] = Reply(status, body=b"User-agent: *\nDisallow: /\n")
    local_site.routes["/page"] = Reply(body=b"page")
    if allowed:
        assert fetcher.get(local_site.url("/page")).body == b"page"
    else:
        with pytest.raises(FetchError) as caught:
            fetcher.get(local_site.url("/page"))
        assert caught.value.kind == "robots"
        assert "could not be fetched" in str(caught.value)


def test_robots_txt_behind_a_redirect_and_gzip(local_site: LocalSite, fetcher: Fetcher) -> None:
    import gzip

    local_site.routes["/robots.txt"] = Reply(301, headers={"Location": "/real-robots.txt"})
    local_site.routes["/real-robots.txt"] = Reply(
        body=gzip.compress(RULES), headers={"Content-Encoding": "gzip"}, content_type="text/plain"
    )
    local_site.routes["/private/x"] = Reply(body=b"secret")
    with pytest.raises(FetchError) as caught:
        fetcher.get(local_site.url("/private/x"))
    assert caught.value.kind == "robots"


def test_robots_can_be_ignored_per_source(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/robots.txt"] = Reply(body=b"User-agent: *\nDisallow: /\n")
    local_site.routes["/page"] = Reply(body=b"page")
    relaxed = FetchPolicy(
        user_agent=UA, allow_networks=("127.0.0.1/32",), respect_robots=False, per_host_interval=0
    )
    assert fetcher.get(local_site.url("/page"), policy=relaxed).body == b"page"
    assert local_site.hits("/robots.txt") == []
