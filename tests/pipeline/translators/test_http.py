"""The HTTP backends against a real local server that speaks both APIs and fails on request."""

from __future__ import annotations

import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import UTC, datetime
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from itertools import pairwise
from typing import Any

import pytest

from newsflow.settings import TranslationSettings
from pipeline.translation import TranslationError
from pipeline.translators.http import (
    DeepL,
    LibreTranslate,
    Tuning,
    batches,
    http_translator,
    retry_after_seconds,
)

KEY_ENV = "NEWSFLOW_TEST_TRANSLATION_KEY"
KEY = "sk-test-5e0f2c9a71"
FAST = Tuning(backoff_seconds=0.001, max_backoff_seconds=0.01)

#: LibreTranslate's GET /languages: es<->en, pt->es only, fr nowhere.
LIBRE_LANGUAGES = [
    {"code": "en", "name": "English", "targets": ["en", "es", "pt"]},
    {"code": "es", "name": "Spanish", "targets": ["es", "en", "pt"]},
    {"code": "pt", "name": "Portuguese", "targets": ["pt", "es"]},
    {"code": "fr", "name": "French", "targets": []},
]
DEEPL_LANGUAGES = {
    "source": [{"language": code, "name": code} for code in ("EN", "ES", "PT")],
    "target": [{"language": code, "name": code} for code in ("EN-GB", "EN-US", "ES", "PT-BR")],
}


@dataclass
class Request:
    at: float  # time.monotonic() when the server got it
    method: str
    path: str
    headers: dict[str, str]
    body: Any


@dataclass
class FakeService:
    """What the server does: canned responses for the next translate calls, a hang, a key."""

    requests: list[Request] = field(default_factory=list)
    #: (status, headers, json) for the next translate requests, in order; then success.
    script: list[tuple[int, dict[str, str], Any]] = field(default_factory=list)
    #: Returned by every translate request once the script is used up, instead of success.
    always: tuple[int, dict[str, str], Any] | None = None
    hang_seconds: float = 0.0
    #: LibreTranslate demands this api_key in the body when set.
    libre_key: str = ""
    #: DeepL's expected key (header ``Authorization: DeepL-Auth-Key <key>``).
    deepl_key: str = KEY
    release: threading.Event = field(default_factory=threading.Event)
    url: str = ""

    def translations(self) -> list[Request]:
        return [r for r in self.requests if r.path in ("/translate", "/v2/translate")]

    def respond(
        self, method: str, path: str, headers: dict[str, str], body: Any
    ) -> tuple[int, dict[str, str], Any]:
        if (
            path.startswith("/v2/")
            and headers.get("Authorization") != f"DeepL-Auth-Key {self.deepl_key}"
        ):
            given = headers.get("Authorization", "").removeprefix("DeepL-Auth-Key ")
            return 403, {}, {"message": f"Wrong authentication key {given!r}"}
        if path == "/languages":
            return 200, {}, LIBRE_LANGUAGES
        if path.startswith("/v2/languages?type="):
            return 200, {}, DEEPL_LANGUAGES[path.rsplit("=", 1)[1]]
        if self.hang_seconds:
            self.release.wait(self.hang_seconds)
        if self.script:
            return self.script.pop(0)
        if self.always:
            return self.always
        if path == "/translate":
            if self.libre_key and body.get("api_key") != self.libre_key:
                return 403, {}, {"error": f"Invalid API key {body.get('api_key')!r}"}
            tag = f"[{body['source']}>{body['target']}]"
            return 200, {}, {"translatedText": [f"{text} {tag}" for text in body["q"]]}
        if path == "/v2/translate":
            tag = f"[{body['source_lang']}>{body['target_lang']}]"
            return 200, {}, {"translations": [{"text": f"{t} {tag}"} for t in body["text"]]}
        return 404, {}, {"error": "Not Found"}


class _Handler(BaseHTTPRequestHandler):
    server: _Server

    def do_GET(self) -> None:
        self._handle()

    def do_POST(self) -> None:
        self._handle()

    def _handle(self) -> None:
        service = self.server.service
        length = int(self.headers.get("Content-Length") or 0)
        body = json.loads(self.rfile.read(length)) if length else None
        headers = dict(self.headers.items())
        service.requests.append(Request(time.monotonic(), self.command, self.path, headers, body))
        status, extra, payload = service.respond(self.command, self.path, headers, body)
        data = json.dumps(payload).encode()
        try:
            self.send_response(status)
            for name, value in {"Content-Type": "application/json", **extra}.items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(data)))
            self.end_headers()
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass

    def log_message(self, format: str, *args: Any) -> None:
        pass


class _Server(ThreadingHTTPServer):
    service: FakeService


@pytest.fixture
def service() -> Iterator[FakeService]:
    server = _Server(("127.0.0.1", 0), _Handler)
    server.service = FakeService(url=f"http://127.0.0.1:{server.server_address[1]}")
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.01})
    thread.start()
    yield server.service
    server.service.release.set()
    server.shutdown()
    server.server_close()
    thread.join()


@pytest.fixture(autouse=True)
def api_key(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv(KEY_ENV, KEY)


def settings(url: str, backend: str = "libretranslate", **overrides: Any) -> TranslationSettings:
    values: dict[str, Any] = {
        "backend": backend,
        "http_url": url,
        "http_api_key_env": KEY_ENV,
        "http_timeout_seconds": 2.0,
        "http_max_retries": 2,
        "http_requests_per_second": 1000.0,
    }
    return TranslationSettings(**{**values, **overrides})


def libre(service: FakeService, tuning: Tuning = FAST, **overrides: Any) -> LibreTranslate:
    translator = LibreTranslate(settings(service.url, **overrides), tuning)
    translator.load()
    return translator


def assert_no_key(exc: BaseException) -> None:
    """Neither the error nor anything it was raised from mentions the key."""
    seen: BaseException | None = exc
    while seen is not None:
        assert KEY not in str(seen) and KEY not in repr(seen)
        seen = seen.__cause__ or seen.__context__


def test_translates_in_batches_keeping_order(service: FakeService) -> None:
    translator = libre(service, Tuning(max_texts_per_request=50))
    texts = [f"hola {i}" for i in range(120)]

    assert translator.translate(texts, ("es", "en")) == [f"{t} [es>en]" for t in texts]
    assert [len(r.body["q"]) for r in service.translations()] == [50, 50, 20]
    assert translator.name == "libretranslate"
    assert translator.version() == f"libretranslate@{service.url.removeprefix('http://')}"


def test_path_is_direct_else_pivot_else_unsupported(service: FakeService) -> None:
    translator = libre(service)

    assert translator.path("es", "en") == ("es", "en")
    assert translator.path("pt", "en") == ("pt", "es", "en")
    assert translator.path("fr", "en") is None
    assert translator.path("de", "en") is None


def test_pivot_translates_each_leg_in_turn(service: FakeService) -> None:
    translator = libre(service)

    assert translator.translate(["olá", "tchau"], ("pt", "es", "en")) == [
        "olá [pt>es] [es>en]",
        "tchau [pt>es] [es>en]",
    ]


def test_429_waits_as_told_then_succeeds(
    service: FakeService, caplog: pytest.LogCaptureFixture
) -> None:
    translator = libre(service, Tuning(backoff_seconds=0.001, max_backoff_seconds=5.0))
    busy = (429, {"Retry-After": "0.3"}, {"error": "Slowdown: 1 per 1 second"})
    service.script = [busy, busy]

    assert translator.translate(["hola"], ("es", "en")) == ["hola [es>en]"]
    attempts = [r.at for r in service.translations()]
    assert len(attempts) == 3
    assert all(later - earlier >= 0.3 for earlier, later in pairwise(attempts))
    assert "429" in caplog.text and KEY not in caplog.text


def test_5xx_forever_gives_up_after_max_retries(service: FakeService) -> None:
    translator = libre(service, http_max_retries=3)
    service.always = (503, {}, {"error": "Service Unavailable"})

    with pytest.raises(TranslationError, match="503") as raised:
        translator.translate(["hola"], ("es", "en"))
    assert len(service.translations()) == 3 + 1
    assert_no_key(raised.value)


def test_other_4xx_fails_at_once_with_the_servers_message(service: FakeService) -> None:
    translator = libre(service)
    service.always = (400, {}, {"error": "Invalid request: missing q parameter"})

    with pytest.raises(TranslationError, match=r"400.*missing q parameter") as raised:
        translator.translate(["hola"], ("es", "en"))
    assert len(service.translations()) == 1
    assert_no_key(raised.value)


def test_a_hung_server_times_out_quickly(service: FakeService) -> None:
    translator = libre(service, http_timeout_seconds=0.2, http_max_retries=1)
    service.hang_seconds = 10.0
    started = time.monotonic()

    with pytest.raises(TranslationError, match=r"no response within 0\.2 s") as raised:
        translator.translate(["hola"], ("es", "en"))
    assert time.monotonic() - started < 1.5
    assert len(service.translations()) == 2
    assert_no_key(raised.value)


def test_connection_refused_is_retried_then_reported() -> None:
    with socket.socket() as closed:  # a port nobody listens on
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    translator = LibreTranslate(settings(f"http://127.0.0.1:{port}", http_max_retries=1), FAST)

    with pytest.raises(TranslationError, match="gave up after 2 attempts"):
        translator.load()


def test_libretranslate_sends_the_key_in_the_body(service: FakeService) -> None:
    service.libre_key = KEY
    translator = libre(service)

    assert translator.translate(["hola"], ("es", "en")) == ["hola [es>en]"]
    assert service.translations()[0].body["api_key"] == KEY


def test_libretranslate_key_is_optional_and_never_echoed(
    service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)
    translator = libre(service)
    assert translator.translate(["hola"], ("es", "en")) == ["hola [es>en]"]
    assert "api_key" not in service.translations()[0].body

    monkeypatch.setenv(KEY_ENV, KEY)
    service.libre_key = "the-right-key"
    translator = libre(service)  # the server quotes our (wrong) key back in its error
    with pytest.raises(TranslationError, match="403") as raised:
        translator.translate(["hola"], ("es", "en"))
    assert "[redacted]" in str(raised.value)
    assert_no_key(raised.value)


def test_deepl_authenticates_and_uses_its_language_codes(service: FakeService) -> None:
    translator = http_translator(settings(service.url, backend="deepl"))
    assert isinstance(translator, DeepL)
    translator.load()

    assert translator.path("pt", "en") == ("pt", "en")
    assert translator.path("fr", "en") is None
    assert translator.translate(["hola", "adiós"], ("es", "en")) == [
        "hola [ES>EN-US]",
        "adiós [ES>EN-US]",
    ]
    assert {r.headers["Authorization"] for r in service.requests} == {f"DeepL-Auth-Key {KEY}"}
    assert service.translations()[0].body == {
        "text": ["hola", "adiós"],
        "source_lang": "ES",
        "target_lang": "EN-US",
    }
    assert (translator.name, translator.version()) == ("deepl", "deepl-api-v2")


def test_deepl_without_a_key_says_which_variable(
    service: FakeService, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv(KEY_ENV)

    with pytest.raises(RuntimeError, match=KEY_ENV):
        DeepL(settings(service.url, backend="deepl")).load()
    assert service.requests == []


def test_deepl_wrong_key_fails_without_showing_it(service: FakeService) -> None:
    service.deepl_key = "the-right-key"

    with pytest.raises(TranslationError, match="403") as raised:
        DeepL(settings(service.url, backend="deepl"), FAST).load()
    assert len(service.requests) == 1
    assert_no_key(raised.value)


def test_rate_limit_spaces_requests_across_threads(service: FakeService) -> None:
    per_second = 20.0
    translator = libre(service, Tuning(max_texts_per_request=1), http_requests_per_second=20.0)
    service.requests.clear()

    workers = [
        threading.Thread(target=translator.translate, args=([f"a{i}", f"b{i}"], ("es", "en")))
        for i in range(4)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()

    arrivals = sorted(r.at for r in service.translations())
    assert len(arrivals) == 8
    gaps = [later - earlier for earlier, later in pairwise(arrivals)]
    assert min(gaps) >= 0.8 / per_second  # some slack for when each request reaches the server


def test_retry_after_takes_seconds_or_a_date() -> None:
    now = datetime(2025, 1, 1, 12, 0, 0, tzinfo=UTC)

    assert retry_after_seconds("2", now) == 2.0
    assert retry_after_seconds("Wed, 01 Jan 2025 12:00:30 GMT", now) == 30.0
    assert retry_after_seconds("Wed, 01 Jan 2025 11:00:00 GMT", now) == 0.0
    assert retry_after_seconds("soon", now) is None
    assert retry_after_seconds(None, now) is None


def test_batches_respect_count_and_size() -> None:
    texts = ["a" * 50, "ñ" * 30, "b"]  # 50 + 60 bytes: over 100 in bytes, not in characters

    assert [len(b) for b in batches(texts, max_texts=10, max_bytes=100)] == [1, 2]
    assert [len(b) for b in batches(texts, max_texts=2, max_bytes=1000)] == [2, 1]
    assert list(batches(["x" * 500], max_texts=10, max_bytes=100)) == [["x" * 500]]
