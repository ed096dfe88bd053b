"""The guarded fetcher against a real HTTP server on 127.0.0.1."""

from __future__ import annotations

import gzip
import ipaddress
import ssl
import subprocess
import threading
import time
import zlib
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.fetch import Fetcher, FetchError, FetchPolicy, Response, parse_retry_after
from connectors.netguard import IPAddress
from connectors.source import SourceConfig
from tests.connectors.conftest import LocalSite, Reply, Request, endless

UA = "newsflow-test/1.0 (+https://example.org/newsflow)"
LOCAL = ("127.0.0.1/32",)


def policy(**changes: object) -> FetchPolicy:
    settings: dict[str, object] = {
        "user_agent": UA,
        "allow_networks": LOCAL,
        "respect_robots": False,
        "per_host_interval": 0.0,
        "total_timeout": 5.0,
    }
    return FetchPolicy(**{**settings, **changes})  # type: ignore[arg-type]


@pytest.fixture
def fetcher() -> Iterator[Fetcher]:
    with Fetcher(policy()) as fetcher:
        yield fetcher


def fetch_error(fetcher: Fetcher, url: str, **kwargs: object) -> FetchError:
    with pytest.raises(FetchError) as caught:
        fetcher.get(url, **kwargs)  # type: ignore[arg-type]
    return caught.value


def test_get_returns_body_headers_and_sends_an_honest_user_agent(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    local_site.routes["/page"] = Reply(
        body="café".encode(), content_type="text/html; charset=UTF-8"
    )
    response = fetcher.get(local_site.url("/page"), accept="text/html")
    assert (response.status, response.body, response.charset) == (200, "café".encode(), "utf-8")
    assert response.headers["content-type"] == "text/html; charset=UTF-8"
    sent = local_site.hits("/page")[0].headers
    assert sent["user-agent"] == UA
    assert sent["accept"] == "text/html"
    assert sent["accept-encoding"] == "gzip, deflate"


def test_conditional_get_round_trip(local_site: LocalSite, fetcher: Fetcher) -> None:
    etag, modified = '"v1"', "Wed, 21 Oct 2015 07:28:00 GMT"

    def feed(request: Request) -> Reply:
        if request.headers.get("if-none-match") == etag:
            return Reply(304, headers={"ETag": etag})
        if request.headers.get("if-modified-since") == modified:
            return Reply(304)
        return Reply(body=b"<rss/>", headers={"ETag": etag, "Last-Modified": modified})

    local_site.routes["/feed"] = feed
    first = fetcher.get(local_site.url("/feed"))
    assert (first.status, first.not_modified, first.body) == (200, False, b"<rss/>")
    assert (first.etag, first.last_modified) == (etag, modified)

    again = fetcher.get(local_site.url("/feed"), etag=first.etag, last_modified=first.last_modified)
    assert (again.status, again.not_modified, again.body) == (304, True, b"")
    assert (again.etag, again.last_modified) == (etag, modified)  # kept for the next poll

    by_date = fetcher.get(local_site.url("/feed"), last_modified=modified)
    assert by_date.not_modified
    sent = [r.headers for r in local_site.hits("/feed")]
    assert "if-none-match" not in sent[0]
    assert sent[1]["if-none-match"] == etag
    assert sent[1]["if-modified-since"] == modified


def test_repeated_headers_are_joined(local_site: LocalSite, fetcher: Fetcher) -> None:
    class TwoLinks(dict[str, str]):
        def items(self):  # type: ignore[no-untyped-def,override]
            return [("Link", "<a>; rel=next"), ("Link", "<b>; rel=prev")]

    local_site.routes["/page"] = Reply(body=b"x", headers=TwoLinks())
    assert fetcher.get(local_site.url("/page")).headers["link"] == "<a>; rel=next, <b>; rel=prev"


def test_validators_with_line_breaks_are_not_sent(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/feed"] = Reply(body=b"ok")
    fetcher.get(local_site.url("/feed"), etag='"a"\r\nX-Injected: 1')
    assert "x-injected" not in local_site.hits("/feed")[0].headers
    assert "if-none-match" not in local_site.hits("/feed")[0].headers


def test_redirect_chain_is_followed_with_relative_locations(
    local_site: LocalSite, fetcher: Fetcher
) -> None:
    local_site.routes["/old"] = Reply(301, headers={"Location": "/moved/here"})
    local_site.routes["/moved/here"] = Reply(302, headers={"Location": "final?x=1"})
    local_site.routes["/moved/final"] = Reply(body=b"done")
    response = fetcher.get(local_site.url("/old"))
    assert response.url == local_site.url("/moved/final?x=1")
    assert response.body == b"done"


def test_too_many_redirects(local_site: LocalSite) -> None:
    for n in range(4):
        local_site.routes[f"/r{n}"] = Reply(302, headers={"Location": f"/r{n + 1}"})
    local_site.routes["/r4"] = Reply(body=b"too far")
    with Fetcher(policy(max_redirects=3)) as fetcher:
        error = fetch_error(fetcher, local_site.url("/r0"))
        assert error.kind == "too_many_redirects"
        assert "max_redirects" in str(error)
        assert fetcher.get(local_site.url("/r1")).body == b"too far"


@pytest.mark.parametrize(
    ("location", "address"),
    [
        ("http://169.254.169.254/latest/meta-data/", "169.254.169.254"),
        ("http://10.0.0.1/admin", "10.0.0.1"),
        ("http://[::ffff:192.168.0.1]/", "192.168.0.1"),
        ("http://0x7f.2:9200/_cat/indices", "127.0.0.2"),  # only 127.0.0.1/32 is allowed
    ],
)
def test_redirect_to_a_forbidden_address_is_refused(
    local_site: LocalSite, location: str, address: str
) -> None:
    local_site.routes["/go"] = Reply(302, headers={"Location": location})
    with Fetcher(policy()) as fetcher:
        error = fetch_error(fetcher, local_site.url("/go"))
    assert error.kind == "forbidden_address"
    assert address in str(error)
    assert "allow_networks" in str(error)
    assert error.url == local_site.url("/go")


def test_loopback_is_refused_without_an_allowlist(local_site: LocalSite) -> None:
    local_site.routes["/page"] = Reply(body=b"secret")
    with Fetcher(policy(allow_networks=())) as fetcher:
        for url in (
            local_site.url("/page"),
            f"http://2130706433:{local_site.port}/page",
            f"http://0177.0.0.1:{local_site.port}/page",
            f"http://127.1:{local_site.port}/page",
            f"http://[::ffff:127.0.0.1]:{local_site.port}/page",
            f"http://localhost:{local_site.port}/page",
        ):
            error = fetch_error(fetcher, url)
            assert error.kind == "forbidden_address", url
            assert "loopback" in str(error)
    assert local_site.requests == []  # refused before connecting


def test_numeric_host_forms_reach_an_allowlisted_server(local_site: LocalSite) -> None:
    local_site.routes["/page"] = Reply(body=b"hi")
    with Fetcher(policy()) as fetcher:
        assert fetcher.get(f"http://0x7f.1:{local_site.port}/page").body == b"hi"
    assert local_site.hits("/page")[0].headers["host"] == f"0x7f.1:{local_site.port}"


def test_connects_to_the_checked_address_with_the_name_in_host(local_site: LocalSite) -> None:
    """One resolution per hop, and the connection goes to its answer (no DNS rebinding)."""
    lookups: list[str] = []

    def resolver(host: str, port: int) -> list[IPAddress]:
        lookups.append(host)
        return [ipaddress.ip_address("127.0.0.1")]

    local_site.routes["/feed"] = Reply(body=b"<rss/>")
    with Fetcher(policy(), resolver=resolver) as fetcher:
        response = fetcher.get(f"http://news.example:{local_site.port}/feed")
    assert response.body == b"<rss/>"
    assert lookups == ["news.example"]
    assert local_site.hits("/feed")[0].headers["host"] == f"news.example:{local_site.port}"


def test_a_name_with_any_private_answer_is_refused(local_site: LocalSite) -> None:
    def resolver(host: str, port: int) -> list[IPAddress]:
        return [ipaddress.ip_address("127.0.0.1"), ipaddress.ip_address("10.0.0.9")]

    with Fetcher(policy(), resolver=resolver) as fetcher:
        error = fetch_error(fetcher, f"http://news.example:{local_site.port}/")
    assert error.kind == "forbidden_address"
    assert "10.0.0.9" in str(error)
    assert local_site.requests == []


@pytest.mark.parametrize(
    "url", ["file:///etc/passwd", "ftp://example.org/feed.xml", "gopher://example.org/1"]
)
def test_non_http_schemes_are_refused(fetcher: Fetcher, url: str) -> None:
    assert fetch_error(fetcher, url).kind == "bad_scheme"


def test_redirect_to_a_non_http_scheme_is_refused(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/go"] = Reply(302, headers={"Location": "file:///etc/passwd"})
    assert fetch_error(fetcher, local_site.url("/go")).kind == "bad_scheme"


@pytest.mark.parametrize("url", ["http://", "http://exa mple.org/", "http://user:pw@example.org/"])
def test_bad_urls(fetcher: Fetcher, url: str) -> None:
    assert fetch_error(fetcher, url).kind == "bad_url"


def test_declared_length_over_the_cap(local_site: LocalSite) -> None:
    local_site.routes["/big"] = Reply(body=b"x" * 5000)
    with Fetcher(policy(max_bytes=4000)) as fetcher:
        error = fetch_error(fetcher, local_site.url("/big"))
        assert error.kind == "too_large"
        assert "max_bytes" in str(error)
        local_site.routes["/fits"] = Reply(body=b"x" * 4000)
        assert len(fetcher.get(local_site.url("/fits")).body) == 4000


def test_body_without_length_over_the_cap(local_site: LocalSite) -> None:
    local_site.routes["/stream"] = Reply(body=iter([b"x" * 3000] * 3))
    local_site.routes["/endless"] = Reply(body=endless())
    with Fetcher(policy(max_bytes=8000)) as fetcher:
        assert fetch_error(fetcher, local_site.url("/stream")).kind == "too_large"
        assert fetch_error(fetcher, local_site.url("/endless")).kind == "too_large"
        local_site.routes["/short"] = Reply(body=iter([b"x" * 3000] * 2))
        assert len(fetcher.get(local_site.url("/short")).body) == 6000


@pytest.mark.timeout(30)
def test_dripping_body_hits_the_total_timeout(local_site: LocalSite) -> None:
    local_site.routes["/drip"] = Reply(body=endless(b"x"), chunk_delay=0.05)
    with Fetcher(policy(total_timeout=1.0)) as fetcher:
        error = fetch_error(fetcher, local_site.url("/drip"))
    assert error.kind == "timeout"
    assert "total_timeout" in str(error)


@pytest.mark.timeout(30)
def test_silence_after_the_headers_hits_the_total_timeout_before_the_read_timeout(
    local_site: LocalSite,
) -> None:
    local_site.routes["/stall"] = Reply(body=endless(b"x"), chunk_delay=20)
    with Fetcher(policy(total_timeout=1.0, read_timeout=15.0)) as fetcher:
        started = time.monotonic()
        error = fetch_error(fetcher, local_site.url("/stall"))
        waited = time.monotonic() - started
    assert error.kind == "timeout"
    assert waited < 10  # hang guard: well under the 15 s read timeout


def test_rate_limited_with_retry_after_seconds(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/busy"] = Reply(429, body=b"slow down", headers={"Retry-After": "120"})
    error = fetch_error(fetcher, local_site.url("/busy"))
    assert (error.kind, error.status, error.retry_after) == ("rate_limited", 429, 120.0)


def test_unavailable_with_retry_after_date(local_site: LocalSite, fetcher: Fetcher) -> None:
    later = datetime.now(UTC).timestamp() + 3600
    header = time.strftime("%a, %d %b %Y %H:%M:%S GMT", time.gmtime(later))
    local_site.routes["/down"] = Reply(503, headers={"Retry-After": header})
    error = fetch_error(fetcher, local_site.url("/down"))
    assert (error.kind, error.status) == ("rate_limited", 503)
    assert error.retry_after is not None
    assert 3000 < error.retry_after <= 3600


def test_other_errors_are_http_status(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/gone"] = Reply(410, body=b"gone")
    error = fetch_error(fetcher, local_site.url("/gone"))
    assert (error.kind, error.status, error.retry_after) == ("http_status", 410, None)
    assert fetch_error(fetcher, local_site.url("/nowhere")).status == 404


def test_parse_retry_after() -> None:
    now = datetime(2025, 1, 1, 12, 0, tzinfo=UTC)
    assert parse_retry_after("30", now) == 30.0
    assert parse_retry_after("Wed, 01 Jan 2025 12:02:00 GMT", now) == 120.0
    assert parse_retry_after("Wed, 01 Jan 2025 11:00:00 GMT", now) == 0.0  # already past
    assert parse_retry_after("soon", now) is None
    assert parse_retry_after(None, now) is None


@pytest.mark.parametrize(
    ("encoding", "compress"),
    [
        ("gzip", gzip.compress),
        ("x-gzip", gzip.compress),
        ("deflate", zlib.compress),
        ("deflate", lambda data: zlib.compress(data)[2:-4]),  # raw deflate, as some servers send
    ],
)
def test_compressed_bodies_are_decoded(
    local_site: LocalSite, fetcher: Fetcher, encoding: str, compress: object
) -> None:
    text = "<rss>ünïcode</rss>".encode() * 200
    body = compress(text)  # type: ignore[operator]
    local_site.routes["/feed"] = Reply(body=body, headers={"Content-Encoding": encoding})
    assert fetcher.get(local_site.url("/feed")).body == text


def test_gzip_bomb_stops_at_the_cap(local_site: LocalSite) -> None:
    packer = zlib.compressobj(9, zlib.DEFLATED, 16 + zlib.MAX_WBITS)
    bomb = b"".join(packer.compress(b"\0" * 1_000_000) for _ in range(50)) + packer.flush()
    assert len(bomb) < 100_000  # 50 MB of zeros in a small body
    local_site.routes["/bomb"] = Reply(body=bomb, headers={"Content-Encoding": "gzip"})
    with Fetcher(policy(max_bytes=1_000_000)) as fetcher:
        error = fetch_error(fetcher, local_site.url("/bomb"))
    assert error.kind == "too_large"


def test_truncated_or_corrupt_gzip_is_an_error(local_site: LocalSite, fetcher: Fetcher) -> None:
    whole = gzip.compress(b"<rss/>" * 1000)
    local_site.routes["/cut"] = Reply(
        body=whole[: len(whole) // 2], headers={"Content-Encoding": "gzip"}
    )
    local_site.routes["/junk"] = Reply(body=b"not gzip", headers={"Content-Encoding": "gzip"})
    for path in ("/cut", "/junk"):
        error = fetch_error(fetcher, local_site.url(path))
        assert error.kind == "connection"
        assert "gzip" in str(error)


def test_unrequested_content_encoding_is_an_error(local_site: LocalSite, fetcher: Fetcher) -> None:
    local_site.routes["/br"] = Reply(body=b"\x0b\x02\x80hi\x03", headers={"Content-Encoding": "br"})
    error = fetch_error(fetcher, local_site.url("/br"))
    assert error.kind == "connection"
    assert "'br'" in str(error)


def test_extra_headers_stay_with_their_origin(local_site: LocalSite) -> None:
    other = LocalSite()
    try:
        other.routes["/landing"] = Reply(body=b"other site")
        local_site.routes["/api"] = Reply(302, headers={"Location": other.url("/landing")})
        with Fetcher(policy()) as fetcher:
            response = fetcher.get(local_site.url("/api"), headers={"X-Api-Key": "s3cret"})
        assert response.body == b"other site"
        assert local_site.hits("/api")[0].headers["x-api-key"] == "s3cret"
        assert "x-api-key" not in other.hits("/landing")[0].headers
    finally:
        other.close()


def test_connection_refused(fetcher: Fetcher) -> None:
    site = LocalSite()
    url = site.url("/")
    site.close()
    assert fetch_error(fetcher, url).kind == "connection"


@pytest.mark.timeout(60)
def test_requests_to_one_host_are_spaced(local_site: LocalSite) -> None:
    interval = 0.4
    starts: list[float] = []

    def stamp(request: Request) -> Reply:
        starts.append(time.monotonic())
        return Reply(body=b"ok")

    local_site.routes["/feed"] = stamp
    with Fetcher(policy(per_host_interval=interval, total_timeout=20)) as fetcher:
        threads = [
            threading.Thread(target=fetcher.get, args=(local_site.url("/feed"),)) for _ in range(4)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(starts) == 4
    gaps = [b - a for a, b in zip(sorted(starts), sorted(starts)[1:], strict=False)]
    assert min(gaps) >= interval * 0.75


@pytest.mark.timeout(60)
def test_requests_in_flight_per_host_are_limited(local_site: LocalSite) -> None:
    lock = threading.Lock()
    in_flight = [0]
    most = [0]

    def slow_body() -> Iterator[bytes]:
        with lock:
            in_flight[0] += 1
            most[0] = max(most[0], in_flight[0])
        try:
            for _ in range(3):
                yield b"chunk"
                time.sleep(0.1)
        finally:
            with lock:
                in_flight[0] -= 1

    local_site.routes["/slow"] = lambda request: Reply(body=slow_body())
    results: list[Response] = []
    with Fetcher(policy(per_host_concurrency=2, total_timeout=20)) as fetcher:
        threads = [
            threading.Thread(target=lambda: results.append(fetcher.get(local_site.url("/slow"))))
            for _ in range(6)
        ]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join()
    assert len(results) == 6
    assert most[0] == 2


def test_policy_is_validated() -> None:
    for bad in (
        {"total_timeout": 0},
        {"max_bytes": -1},
        {"max_redirects": -1},
        {"per_host_concurrency": 0},
        {"user_agent": "bot\r\nX-Evil: 1"},
        {"allow_networks": ("not a network",)},
    ):
        with pytest.raises(ValueError):
            FetchPolicy(**bad)  # type: ignore[arg-type]


def test_for_source_takes_robots_and_allowlist_from_the_source() -> None:
    base = FetchPolicy(user_agent=UA, allow_networks=("10.0.0.0/8",))
    config = SourceConfig(
        name="intranet", type="rss", respect_robots=False, allow_networks=("192.168.5.0/24",)
    )
    derived = base.for_source(config)
    assert derived.user_agent == UA
    assert derived.respect_robots is False
    assert derived.allow_networks == ("10.0.0.0/8", "192.168.5.0/24")


def test_charset() -> None:
    def charset(content_type: str) -> str | None:
        return Response("http://x/", 200, {"content-type": content_type}, b"").charset

    assert charset('text/xml; charset="ISO-8859-1"') == "iso8859-1"
    assert charset("text/html") is None
    assert charset("text/html; charset=no-such-thing") is None


def _openssl(*args: str) -> None:
    subprocess.run(["openssl", *args], check=True, capture_output=True)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A private CA and a certificate it signed for news.example."""
    directory = tmp_path_factory.mktemp("tls")
    ca, leaf = directory / "ca", directory / "news"
    _openssl(
        "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-days", "2", "-subj", "/CN=newsflow test CA", "-keyout", f"{ca}.key", "-out", f"{ca}.pem",
    )  # fmt: skip
    _openssl(
        "req", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
        "-subj", "/CN=news.example", "-keyout", f"{leaf}.key", "-out", f"{leaf}.csr",
    )  # fmt: skip
    (directory / "san.ext").write_text("subjectAltName=DNS:news.example\n")
    _openssl(
        "x509", "-req", "-in", f"{leaf}.csr", "-CA", f"{ca}.pem", "-CAkey", f"{ca}.key",
        "-CAcreateserial", "-days", "2", "-extfile", str(directory / "san.ext"),
        "-out", f"{leaf}.pem",
    )  # fmt: skip
    return directory


@pytest.fixture
def tls_site(certificates: Path) -> Iterator[tuple[LocalSite, list[str | None]]]:
    """An HTTPS server for news.example, and the SNI names its clients sent."""
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(certificates / "news.pem", certificates / "news.key")
    names: list[str | None] = []
    context.sni_callback = lambda sock, name, ctx: names.append(name)  # type: ignore[assignment,func-returns-value]
    site = LocalSite(tls=context)
    yield site, names
    site.close()


def _to_local(host: str, port: int) -> list[IPAddress]:
    return [ipaddress.ip_address("127.0.0.1")]


def test_https_to_the_pinned_address_verifies_the_name(
    tls_site: tuple[LocalSite, list[str | None]],
    certificates: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    site, sni = tls_site
    site.routes["/feed"] = Reply(body=b"<rss/>")
    monkeypatch.setenv("SSL_CERT_FILE", str(certificates / "ca.pem"))
    with Fetcher(policy(), resolver=_to_local) as fetcher:
        response = fetcher.get(f"https://news.example:{site.port}/feed")
        assert response.body == b"<rss/>"
        assert sni == ["news.example"]
        assert site.hits("/feed")[0].headers["host"] == f"news.example:{site.port}"

        wrong_name = fetch_error(fetcher, f"https://other.example:{site.port}/feed")
        assert wrong_name.kind == "connection"
        assert "TLS" in str(wrong_name)
        assert "other.example" in str(wrong_name)
    assert len(site.hits("/feed")) == 1


def test_https_with_an_untrusted_certificate_fails(
    tls_site: tuple[LocalSite, list[str | None]],
) -> None:
    site, _ = tls_site
    site.routes["/feed"] = Reply(body=b"<rss/>")
    with Fetcher(policy(), resolver=_to_local) as fetcher:
        error = fetch_error(fetcher, f"https://news.example:{site.port}/feed")
    assert error.kind == "connection"
    assert "certificate" in str(error).lower()
    assert site.hits("/feed") == []
