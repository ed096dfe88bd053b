"""An HTTP proxy in front of the real Elasticsearch node that plays a busy or slow cluster.

Elasticsearch answers 429 per item when its write queue is full, and slowly when it is
overloaded; provoking either for real needs a loaded cluster. The proxy forwards every request
to the real node and can (1) rewrite chosen items of bulk responses to a chosen index into the
429 a busy node sends (each chosen document once), recording the document ids of every such
bulk request so a test can see exactly what the client sent again, (2) hold every request
for ``delay_seconds`` before forwarding it, and (3) play a secured cluster: serve HTTPS with a
given certificate and refuse (401, as Elasticsearch does) any request without the API key.
"""

from __future__ import annotations

import http.client
import json
import ssl
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import urlsplit

REJECTION = {
    "type": "es_rejected_execution_exception",
    "reason": "rejected execution (queue capacity 200) [injected by the test proxy]",
}
UNAUTHENTICATED = {
    "error": {
        "type": "security_exception",
        "reason": "unable to authenticate with provided credentials [test proxy]",
    },
    "status": 401,
}


class ElasticsearchProxy:
    def __init__(
        self,
        upstream: str,
        index: str = "",
        tls: tuple[Path, Path] | None = None,
        api_key: str | None = None,
    ) -> None:
        """``tls``: (certificate, key) to serve HTTPS with; ``api_key``: the one key accepted."""
        self.index = index
        #: Seconds every request waits before it is forwarded (a slow cluster).
        self.delay_seconds = 0.0
        #: Documents to answer 429 for, the first time each is written.
        self.reject_once: set[str] = set()
        #: Document ids of every bulk request to ``index``, in order.
        self.bulk_ids: list[list[str]] = []
        target = urlsplit(upstream)
        proxy = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def _forward(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length") or 0))
                if api_key is not None and self.headers.get("Authorization") != f"ApiKey {api_key}":
                    self._refuse()
                    return
                time.sleep(proxy.delay_seconds)
                upstream = http.client.HTTPConnection(target.hostname, target.port, timeout=60)
                dropped = ("host", "authorization")
                headers = {k: v for k, v in self.headers.items() if k.lower() not in dropped}
                upstream.request(self.command, self.path, body=body, headers=headers)
                response = upstream.getresponse()
                payload = response.read()
                if self.command in ("POST", "PUT") and self.path.split("?")[0].endswith("/_bulk"):
                    payload = proxy._on_bulk(body, payload)
                self.send_response(response.status)
                for name, value in response.getheaders():
                    if name.lower() not in ("content-length", "transfer-encoding", "connection"):
                        self.send_header(name, value)
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)
                upstream.close()

            def _refuse(self) -> None:
                payload = json.dumps(UNAUTHENTICATED).encode()
                self.send_response(401)
                self.send_header("WWW-Authenticate", 'ApiKey realm="test proxy"')
                self.send_header("X-Elastic-Product", "Elasticsearch")
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

            do_GET = do_POST = do_PUT = do_DELETE = do_HEAD = _forward

            def log_message(self, format: str, *args: object) -> None:
                pass

        self._server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self._server.daemon_threads = True
        self.url = f"http://127.0.0.1:{self._server.server_address[1]}"
        if tls is not None:
            context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            context.load_cert_chain(*tls)
            self._server.socket = context.wrap_socket(self._server.socket, server_side=True)
            self.url = f"https://localhost:{self._server.server_address[1]}"
        self._lock = threading.Lock()
        threading.Thread(target=self._server.serve_forever, daemon=True).start()

    def _on_bulk(self, request: bytes, payload: bytes) -> bytes:
        lines = [json.loads(line) for line in request.splitlines() if line.strip()]
        actions = [line for line in lines if set(line) & {"index", "create", "update", "delete"}]
        targets = [next(iter(a.values())) for a in actions]
        if not targets or not all(t.get("_index", "").startswith(self.index) for t in targets):
            return payload
        ids = [t["_id"] for t in targets]
        with self._lock:
            self.bulk_ids.append(ids)
            reject = self.reject_once & set(ids)
            self.reject_once -= reject
        if not reject:
            return payload
        response = json.loads(payload)
        for item in response["items"]:
            result = next(iter(item.values()))
            if result["_id"] in reject:
                result.update(status=429, error=REJECTION)
                result.pop("result", None)
        response["errors"] = True
        return json.dumps(response).encode()

    def close(self) -> None:
        self._server.shutdown()
        self._server.server_close()


@contextmanager
def elasticsearch_proxy(
    upstream: str,
    index: str = "",
    tls: tuple[Path, Path] | None = None,
    api_key: str | None = None,
) -> Iterator[ElasticsearchProxy]:
    proxy = ElasticsearchProxy(upstream, index, tls, api_key)
    try:
        yield proxy
    finally:
        proxy.close()
