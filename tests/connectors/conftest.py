"""A real HTTP server on 127.0.0.1 for connector tests: feeds, pages, redirects, slow bodies.

Routes map a path to a ``Reply`` or to a function of the request that returns one. A reply's body
may be an iterable of byte chunks, with ``chunk_delay`` seconds between them, to model slow and
never-ending responses. Every request is recorded so tests can assert conditional GETs, the
User-Agent and how many times a URL was fetched.
"""

from __future__ import annotations

import contextlib
import ssl
import threading
import time
from collections.abc import Callable, Iterable, Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@dataclass
class Reply:
    status: int = 200
    body: bytes | Iterable[bytes] = b""
    headers: dict[str, str] = field(default_factory=dict)
    content_type: str = "text/html; charset=utf-8"
    chunk_delay: float = 0.0


@dataclass(frozen=True)
class Request:
    path: str
    headers: dict[str, str]  # lower-case names


Route = Reply | Callable[[Request], Reply]


class LocalSite:
    """The server behind the ``local_site`` fixture."""

    def __init__(self, tls: ssl.SSLContext | None = None) -> None:
        self.routes: dict[str, Route] = {}
        self.requests: list[Request] = []
        site = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_GET(self) -> None:
                request = Request(self.path, {k.lower(): v for k, v in self.headers.items()})
                site.requests.append(request)
                route = site.routes.get(self.path) or site.routes.get(self.path.split("?")[0])
                if route is None:
                    reply = Reply(404, b"not found")
                else:
                    reply = route(request) if callable(route) else route
                self._send(reply)

            def _send(self, reply: Reply) -> None:
                self.send_response(reply.status)
                self.send_header("Content-Type", reply.content_type)
                for name, value in reply.headers.items():
                    self.send_header(name, value)
                if isinstance(reply.body, bytes):
                    self.send_header("Content-Length", str(len(reply.body)))
                    self.end_headers()
                    self.wfile.write(reply.body)
                    return
                self.send_header("Connection", "close")
                self.end_headers()
                try:
                    for chunk in reply.body:
                        self.wfile.write(chunk)
                        self.wfile.flush()
                        time.sleep(reply.chunk_delay)
                except (BrokenPipeError, ConnectionResetError):
                    pass  # the client gave up, as it should on a never-ending body
                self.close_connection = True

            def handle(self) -> None:
                # The client dropped a kept-alive connection, or refused our certificate.
                with contextlib.suppress(ConnectionResetError, ssl.SSLError):
                    super().handle()

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        if tls is not None:  # serve HTTPS (the handshake happens in the handler's thread)
            self._server.socket = tls.wrap_socket(
                self._server.socket, server_side=True, do_handshake_on_connect=False
            )
        self.scheme = "https" if tls is not None else "http"
        self.port = self._server.server_address[1]
        self._thread = threading.Thread(
            target=self._server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True
        )
        self._thread.start()

    def url(self, path: str) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}{path}"

    def hits(self, path: str) -> list[Request]:
        return [r for r in self.requests if r.path == path]

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


def endless(chunk: bytes = b"x" * 1024) -> Iterator[bytes]:
    """A body that never ends."""
    while True:
        yield chunk


@pytest.fixture
def local_site() -> Iterator[LocalSite]:
    site = LocalSite()
    yield site
    site.close()
