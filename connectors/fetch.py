"""The one HTTP client every network connector uses: safe against hostile URLs, polite to hosts.

Every hop of a fetch (the URL and each redirect) is checked the same way before anything is
sent: http(s) only, the host resolved once and every address checked by ``connectors.netguard``
(then the connection goes to that checked address, with Host header, SNI and certificate check
for the name), and robots.txt when the policy asks for it. Redirects are followed here, not by
urllib3, so no hop skips those checks.

A fetch never hangs and never fills memory: one deadline covers the whole call (politeness
waits, robots.txt, redirects and a body that drips or never ends), and both the bytes received
and the decoded body are capped, so a gzip bomb stops at the cap. Politeness is per host and
shared by all threads: a limited number of requests in flight and a minimum interval between
request starts.
"""

from __future__ import annotations

import codecs
import email.message
import email.utils
import threading
import time
import zlib
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from importlib import metadata
from typing import TYPE_CHECKING, Literal
from urllib.parse import urljoin

from urllib3 import BaseHTTPResponse, PoolManager, Timeout
from urllib3.exceptions import (
    HTTPError,
    LocationParseError,
    NewConnectionError,
    SSLError,
)
from urllib3.exceptions import TimeoutError as Urllib3Timeout
from urllib3.util import Url, parse_url

from connectors import netguard
from connectors.robots import Outcome, RobotsCache, RobotsFile
from newsflow.errors import NewsflowError

if TYPE_CHECKING:
    from connectors.source import SourceConfig

FetchErrorKind = Literal[
    "forbidden_address",
    "bad_scheme",
    "bad_url",
    "robots",
    "timeout",
    "too_large",
    "too_many_redirects",
    "http_status",
    "rate_limited",
    "connection",
]

try:
    _VERSION = metadata.version("newsflow")
except metadata.PackageNotFoundError:  # running from a checkout that was never installed
    _VERSION = "dev"
DEFAULT_USER_AGENT = f"newsflow/{_VERSION} (news ingestion; honours robots.txt)"
_REDIRECTS = frozenset({301, 302, 303, 307, 308})
_RATE_LIMITED = frozenset({429, 503})
_DEFAULT_PORTS = {"http": 80, "https": 443}
#: Bytes asked for per socket read; a read returns as soon as anything arrives.
_READ_CHUNK = 64 * 1024
#: Connection pools kept open (least recently used ones are closed), one per host and address.
_MAX_POOLS = 100


class FetchError(NewsflowError):
    """A fetch that failed, with a stable ``kind`` for metrics and backoff, and what to do."""

    def __init__(
        self,
        kind: FetchErrorKind,
        message: str,
        *,
        url: str,
        status: int | None = None,
        retry_after: float | None = None,
    ) -> None:
        super().__init__(message)
        self.kind = kind
        self.url = url
        self.status = status
        self.retry_after = retry_after


@dataclass(frozen=True)
class FetchPolicy:
    """How carefully and politely to fetch; validated when built."""

    #: Sent on every request; put a contact URL or address in it for site owners.
    user_agent: str = DEFAULT_USER_AGENT
    connect_timeout: float = 5.0
    #: Longest silence between two reads of the response.
    read_timeout: float = 15.0
    #: The whole ``get`` call, redirects and robots.txt included.
    total_timeout: float = 30.0
    #: Cap on the body, compressed and decoded alike.
    max_bytes: int = 10_000_000
    max_redirects: int = 5
    respect_robots: bool = True
    #: Hosts or CIDR networks reachable despite the SSRF guard (intranet sources, tests).
    allow_networks: tuple[str, ...] = ()
    #: Requests in flight to one host at once, across all threads (the first policy seen for a
    #: host sets it).
    per_host_concurrency: int = 2
    #: Seconds between the starts of two requests to one host.
    per_host_interval: float = 1.0

    def __post_init__(self) -> None:
        if not self.user_agent.strip() or any(c in self.user_agent for c in "\r\n"):
            raise ValueError("user_agent must be a non-empty single line")
        for name in ("connect_timeout", "read_timeout", "total_timeout"):
            if not getattr(self, name) > 0:
                raise ValueError(f"{name} must be > 0 seconds, got {getattr(self, name)}")
        if self.max_bytes <= 0:
            raise ValueError(f"max_bytes must be > 0, got {self.max_bytes}")
        if self.max_redirects < 0:
            raise ValueError(f"max_redirects must be >= 0, got {self.max_redirects}")
        if self.per_host_concurrency < 1:
            raise ValueError(f"per_host_concurrency must be >= 1, got {self.per_host_concurrency}")
        if self.per_host_interval < 0:
            raise ValueError(f"per_host_interval must be >= 0, got {self.per_host_interval}")
        netguard.parse_allowlist(self.allow_networks)

    def for_source(self, config: SourceConfig) -> FetchPolicy:
        """This policy for one source: its robots setting, and its allowlist added to ours."""
        allowed = tuple(dict.fromkeys((*self.allow_networks, *config.allow_networks)))
        return replace(self, respect_robots=config.respect_robots, allow_networks=allowed)


@dataclass(frozen=True)
class Response:
    """A successful fetch: 2xx with the decoded body, or 304 Not Modified with none."""

    #: Final URL after redirects; resolve relative links against it.
    url: str
    status: int
    #: As received, names in lower case (the body is already decoded though).
    headers: Mapping[str, str]
    body: bytes
    etag: str | None = None
    last_modified: str | None = None

    @property
    def not_modified(self) -> bool:
        return self.status == 304

    @property
    def charset(self) -> str | None:
        """The charset the Content-Type names, if Python knows it (else None: sniff it)."""
        message = email.message.Message()
        message["content-type"] = self.headers.get("content-type", "")
        charset = message.get_content_charset()
        try:
            return codecs.lookup(charset).name if charset else None
        except LookupError:
            return None


def parse_retry_after(value: str | None, now: datetime | None = None) -> float | None:
    """Seconds to wait from a Retry-After header: delta-seconds or an HTTP-date."""
    text = (value or "").strip()
    if text.isdigit():
        return float(text)
    try:
        when = email.utils.parsedate_to_datetime(text)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


@dataclass(frozen=True)
class _Deadline:
    """One clock for a whole ``get``: every wait and read takes only what is left of it."""

    timeout: float
    at: float

    @classmethod
    def after(cls, timeout: float) -> _Deadline:
        return cls(timeout, time.monotonic() + timeout)

    def remaining(self) -> float:
        return self.at - time.monotonic()

    def check(self, url: str, doing: str) -> float:
        """Seconds left; raises a timeout when there are none."""
        left = self.remaining()
        if left <= 0:
            raise FetchError(
                "timeout",
                f"gave up on {url} after {self.timeout:g} s (total_timeout) while {doing}; the"
                " server is too slow or its response never ends",
                url=url,
            )
        return left


class _HostThrottle:
    """Per-host politeness shared by all threads: requests in flight and spacing of starts."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._slots: dict[str, threading.BoundedSemaphore] = {}
        self._next_start: dict[str, float] = {}

    @contextmanager
    def turn(self, host: str, policy: FetchPolicy, deadline: _Deadline, url: str) -> Iterator[None]:
        with self._lock:
            slots = self._slots.setdefault(
                host, threading.BoundedSemaphore(policy.per_host_concurrency)
            )
        if not slots.acquire(timeout=deadline.check(url, "waiting for a free slot on the host")):
            raise FetchError(
                "timeout",
                f"not fetching {url}: {policy.per_host_concurrency} other fetches from {host} kept"
                " every slot busy until total_timeout (per_host_concurrency)",
                url=url,
            )
        try:
            with self._lock:
                now = time.monotonic()
                start = max(now, self._next_start.get(host, now))
                self._next_start[host] = start + policy.per_host_interval
            if start - now >= deadline.remaining():
                raise FetchError(
                    "timeout",
                    f"not fetching {url}: the next polite slot on {host} is {start - now:.1f} s"
                    " away, past total_timeout; too many fetches queue for this host (lower"
                    " per_host_interval or poll its sources less often)",
                    url=url,
                )
            time.sleep(start - now)
            yield
        finally:
            slots.release()


class _BodyTooLarge(Exception):
    pass


class _CorruptBody(Exception):
    pass


class _Decoder:
    """Undoes a gzip or deflate Content-Encoding incrementally, never past ``limit`` bytes."""

    def __init__(self, encoding: str, limit: int) -> None:
        self._encoding = encoding
        self._limit = limit
        self._produced = 0
        self._zlib: zlib._Decompress | None = None

    def feed(self, data: bytes) -> bytes:
        if self._encoding == "identity":
            return self._count(data)
        parts = []
        try:
            while data:
                if self._zlib is None:
                    self._zlib = zlib.decompressobj(self._wbits(data))
                parts.append(self._count(self._zlib.decompress(data, self._room() + 1)))
                if self._zlib.eof:  # gzip may hold several members; anything else is corrupt
                    data, self._zlib = self._zlib.unused_data, None
                else:
                    data = self._zlib.unconsumed_tail
        except zlib.error as exc:
            raise _CorruptBody(f"the {self._encoding} body is corrupt ({exc})") from exc
        return b"".join(parts)

    def finish(self) -> None:
        if self._zlib is not None and not self._zlib.eof:
            raise _CorruptBody(f"the {self._encoding} body ended before its end marker")

    def _wbits(self, head: bytes) -> int:
        if self._encoding == "gzip":
            return 16 + zlib.MAX_WBITS
        # "deflate" should be zlib-wrapped (RFC 9110) but some servers send raw deflate.
        wrapped = len(head) >= 2 and head[0] & 0x0F == 8 and (head[0] << 8 | head[1]) % 31 == 0
        return zlib.MAX_WBITS if wrapped else -zlib.MAX_WBITS

    def _room(self) -> int:
        return self._limit - self._produced

    def _count(self, data: bytes) -> bytes:
        self._produced += len(data)
        if self._produced > self._limit:
            raise _BodyTooLarge
        return data


def _content_coding(headers: Mapping[str, str], url: str) -> str:
    coding = headers.get("content-encoding", "identity").strip().lower() or "identity"
    coding = {"x-gzip": "gzip"}.get(coding, coding)
    if coding not in ("identity", "gzip", "deflate"):
        raise FetchError(
            "connection",
            f"{url} came with Content-Encoding {coding!r} although we only accept gzip and"
            " deflate; the server ignores Accept-Encoding",
            url=url,
        )
    return coding


@dataclass(frozen=True)
class _Target:
    """One hop, checked: where to connect and what to call the host."""

    url: Url
    address: netguard.IPAddress
    port: int

    @property
    def host(self) -> str:
        return (self.url.host or "").strip("[]")

    @property
    def host_header(self) -> str:
        default = self.port == _DEFAULT_PORTS[self.url.scheme or "http"]
        return self.url.host or "" if default else f"{self.url.host}:{self.port}"

    @property
    def origin(self) -> tuple[str | None, str, int]:
        return self.url.scheme, self.host, self.port


def _header_safe(value: str | None) -> bool:
    """Validators come from servers; one with a line break must not reach the request."""
    return value is not None and value != "" and not any(c in value for c in "\r\n\0")


def _transport_error(exc: Exception, url: str) -> FetchError:
    if isinstance(exc, NewConnectionError):
        return FetchError("connection", f"cannot connect for {url}: {exc}", url=url)
    if isinstance(exc, Urllib3Timeout | TimeoutError):
        return FetchError(
            "timeout",
            f"{url} timed out ({exc}); the server is slow or unreachable, raise connect_timeout"
            " or read_timeout if it is always this slow",
            url=url,
        )
    if isinstance(exc, SSLError):
        return FetchError(
            "connection", f"TLS failed for {url}: {exc}; the certificate must match", url=url
        )
    return FetchError("connection", f"connection failed for {url}: {exc}", url=url)


class Fetcher:
    """Thread-safe, long-lived; share one between all sources so politeness is global.

    A shallow copy with another ``policy`` (``copy.copy`` then set ``policy``) shares the
    connection pools, the per-host throttles and the robots.txt cache with the original.
    """

    def __init__(
        self,
        policy: FetchPolicy,
        *,
        robots: RobotsCache | None = None,
        resolver: netguard.Resolver = netguard.resolve,
    ) -> None:
        self.policy = policy
        self._robots = robots or RobotsCache()
        self._resolver = resolver
        self._throttle = _HostThrottle()
        self._pools = PoolManager(
            num_pools=_MAX_POOLS,
            maxsize=policy.per_host_concurrency,
            cert_reqs="CERT_REQUIRED",
            retries=False,
        )

    def __enter__(self) -> Fetcher:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def close(self) -> None:
        self._pools.clear()

    def get(
        self,
        url: str,
        *,
        etag: str | None = None,
        last_modified: str | None = None,
        accept: str | None = None,
        headers: Mapping[str, str] | None = None,
        policy: FetchPolicy | None = None,
    ) -> Response:
        """GET ``url`` following redirects; raises ``FetchError``.

        With ``etag``/``last_modified`` the request is conditional and an unchanged resource
        comes back as ``Response(status=304, not_modified=True)``. ``headers`` (e.g. an API
        key) are sent to the origin of ``url`` only, never to a host a redirect points to.
        """
        policy = policy or self.policy
        request_headers = {
            "User-Agent": policy.user_agent,
            "Accept": accept or "*/*",
            "Accept-Encoding": "gzip, deflate",
        }
        if _header_safe(etag):
            request_headers["If-None-Match"] = etag or ""
        if _header_safe(last_modified):
            request_headers["If-Modified-Since"] = last_modified or ""
        return self._get(
            url,
            request_headers,
            dict(headers or {}),
            policy,
            _Deadline.after(policy.total_timeout),
            (etag, last_modified),
        )

    def _get(
        self,
        url: str,
        request_headers: dict[str, str],
        origin_headers: dict[str, str],
        policy: FetchPolicy,
        deadline: _Deadline,
        validators: tuple[str | None, str | None] = (None, None),
    ) -> Response:
        origin = None
        current = url
        for _ in range(policy.max_redirects + 1):
            try:
                target = self._target(current, policy)
                origin = origin or target.origin
                # Headers the caller added (API keys) stay with the origin they were meant for.
                extra = origin_headers if target.origin == origin else {}
                outcome = self._hop(
                    target, current, {**request_headers, **extra}, policy, deadline, validators
                )
            except FetchError as exc:
                if current == url:
                    raise
                raise FetchError(
                    exc.kind,
                    f"{exc} (redirected from {url})",
                    url=url,
                    status=exc.status,
                    retry_after=exc.retry_after,
                ) from None
            if isinstance(outcome, Response):
                return outcome
            current = outcome
        raise FetchError(
            "too_many_redirects",
            f"{url} redirected more than {policy.max_redirects} times (max_redirects; last"
            f" hop {current}); use the final URL in the source config",
            url=url,
        )

    def _hop(
        self,
        target: _Target,
        url: str,
        request_headers: dict[str, str],
        policy: FetchPolicy,
        deadline: _Deadline,
        validators: tuple[str | None, str | None],
    ) -> Response | str:
        """One request to a checked target: the response, or where it redirects to."""
        if policy.respect_robots:
            self._check_robots(url, policy, deadline)
        headers = {**request_headers, "Host": target.host_header}
        with self._throttle.turn(target.host, policy, deadline, url):
            raw = self._send(target, url, headers, policy, deadline)
            complete = False
            try:
                if raw.status in _REDIRECTS:
                    return self._location(raw, url)
                response = self._response(raw, url, policy, deadline, validators)
                complete = True
                return response
            finally:
                if not complete:
                    raw.close()  # unread bytes would poison the pooled connection
                raw.release_conn()

    def _target(self, url: str, policy: FetchPolicy) -> _Target:
        try:
            parsed = parse_url(url)
            netguard.check_scheme(parsed.scheme, url)
        except LocationParseError as exc:
            raise FetchError("bad_url", f"not a valid URL: {url!r} ({exc})", url=url) from None
        except netguard.BadScheme as exc:
            raise FetchError("bad_scheme", str(exc), url=url) from None
        if not parsed.host:
            raise FetchError("bad_url", f"not a valid URL: {url!r} has no host", url=url)
        if parsed.auth:
            raise FetchError(
                "bad_url",
                f"{parsed.host}: credentials in URLs are not supported; pass them as headers",
                url=url,
            )
        port = parsed.port or _DEFAULT_PORTS[parsed.scheme or "http"]
        try:
            address = netguard.pin(
                parsed.host, port, netguard.parse_allowlist(policy.allow_networks), self._resolver
            )
        except netguard.ForbiddenAddress as exc:
            raise FetchError(
                "forbidden_address",
                f"refusing {exc.address} ({exc.reason}) for {url}; add it to allow_networks if"
                " this source is really on your intranet",
                url=url,
            ) from None
        except netguard.UnresolvableHost as exc:
            raise FetchError("connection", f"{exc}; check the URL of {url}", url=url) from None
        return _Target(parsed, address, port)

    def _check_robots(self, url: str, policy: FetchPolicy, deadline: _Deadline) -> None:
        robots_policy = replace(policy, respect_robots=False)

        def download(robots_url: str) -> RobotsFile:
            headers = {"User-Agent": policy.user_agent, "Accept-Encoding": "gzip, deflate"}
            try:
                response = self._get(robots_url, headers, {}, robots_policy, deadline)
            except FetchError as exc:
                missing = exc.kind == "too_many_redirects" or (
                    exc.kind == "http_status" and 400 <= (exc.status or 0) < 500
                )
                return RobotsFile(Outcome.UNAVAILABLE if missing else Outcome.UNREACHABLE)
            return RobotsFile(Outcome.FOUND, response.body)

        refusal = self._robots.check(url, policy.user_agent, download)
        if refusal:
            raise FetchError(
                "robots",
                f"not fetching {url}: {refusal}; set respect_robots to false for this source only"
                " if the site owner agrees",
                url=url,
            )

    def _send(
        self,
        target: _Target,
        url: str,
        headers: dict[str, str],
        policy: FetchPolicy,
        deadline: _Deadline,
    ) -> BaseHTTPResponse:
        left = deadline.check(url, "connecting")
        timeout = Timeout(
            connect=min(policy.connect_timeout, left), read=min(policy.read_timeout, left)
        )
        scheme = target.url.scheme or "http"
        tls = {"server_hostname": target.host, "assert_hostname": target.host}
        pool = self._pools.connection_from_host(
            str(target.address), target.port, scheme, pool_kwargs=tls
        )
        try:
            return pool.urlopen(
                "GET",
                target.url.request_uri,
                headers=headers,
                retries=False,
                redirect=False,
                assert_same_host=False,
                timeout=timeout,
                preload_content=False,
                decode_content=False,
                release_conn=False,
            )
        except (HTTPError, OSError) as exc:
            deadline.check(url, "waiting for the response")
            raise _transport_error(exc, url) from None

    @staticmethod
    def _location(raw: BaseHTTPResponse, url: str) -> str:
        location = raw.headers.get("location")
        if not location:
            raise FetchError(
                "http_status",
                f"{url} answered {raw.status} without a Location header",
                url=url,
                status=raw.status,
            )
        return urljoin(url, location.strip())

    def _response(
        self,
        raw: BaseHTTPResponse,
        url: str,
        policy: FetchPolicy,
        deadline: _Deadline,
        validators: tuple[str | None, str | None],
    ) -> Response:
        # Repeated headers (Link, Warning, ...) are joined with ", " as RFC 9110 allows.
        headers = {name.lower(): value for name, value in raw.headers.itermerged()}
        if raw.status == 304:
            etag, last_modified = validators
            return Response(
                url,
                304,
                headers,
                b"",
                headers.get("etag", etag),
                headers.get("last-modified", last_modified),
            )
        if raw.status in _RATE_LIMITED:
            retry_after = parse_retry_after(headers.get("retry-after"))
            hint = f"retry in {retry_after:g} s" if retry_after is not None else "back off"
            raise FetchError(
                "rate_limited",
                f"{url} answered {raw.status} ({raw.reason}); {hint}",
                url=url,
                status=raw.status,
                retry_after=retry_after,
            )
        if not 200 <= raw.status < 300:
            raise FetchError(
                "http_status",
                f"{url} answered {raw.status} ({raw.reason})",
                url=url,
                status=raw.status,
            )
        body = self._read_body(raw, headers, url, policy, deadline)
        return Response(
            url, raw.status, headers, body, headers.get("etag"), headers.get("last-modified")
        )

    @staticmethod
    def _read_body(
        raw: BaseHTTPResponse,
        headers: Mapping[str, str],
        url: str,
        policy: FetchPolicy,
        deadline: _Deadline,
    ) -> bytes:
        too_large = FetchError(
            "too_large",
            f"{url} is larger than {policy.max_bytes} bytes (max_bytes); raise max_bytes for"
            " this source if the document is really that big",
            url=url,
        )
        declared = headers.get("content-length", "").strip()
        if declared.isdigit() and int(declared) > policy.max_bytes:
            raise too_large
        decoder = _Decoder(_content_coding(headers, url), policy.max_bytes)
        body = bytearray()
        received = 0
        try:
            while True:
                # The read timeout alone would let a server that drips a byte at a time keep
                # us forever; each read may only wait for what is left of the deadline.
                left = deadline.check(url, "reading the body")
                sock = getattr(raw.connection, "sock", None)
                if sock is not None:
                    sock.settimeout(min(policy.read_timeout, left))
                chunk = raw.read1(_READ_CHUNK, decode_content=False)
                if not chunk:
                    break
                received += len(chunk)
                if received > policy.max_bytes:
                    raise too_large
                body += decoder.feed(chunk)
            decoder.finish()
        except _BodyTooLarge:
            raise too_large from None
        except _CorruptBody as exc:
            raise FetchError("connection", f"{url}: {exc}", url=url) from None
        except (HTTPError, OSError) as exc:
            deadline.check(url, "reading the body")
            raise _transport_error(exc, url) from None
        return bytes(body)
