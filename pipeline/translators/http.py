"""LibreTranslate and DeepL backends: translation by a remote service, with its manners.

Both speak JSON over HTTP, so they share one small standard-library client: a timeout on every
request, a client-side rate limit, retries with capped exponential backoff (honouring
``Retry-After``) on what may pass by itself (connection errors, timeouts, 429, 5xx) and an
immediate ``TranslationError`` on what will not (any other 4xx). The API key is read from the
environment variable named in settings at ``load()``, and never logged nor put in an error:
error text that comes from the server has the key blanked out, in case the server echoes it.
The rate limit is per translator, that is per worker process, not across workers.
"""

from __future__ import annotations

import http.client
import json
import logging
import os
import random
import threading
import time
import urllib.error
import urllib.request
from abc import ABC, abstractmethod
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from itertools import pairwise
from typing import Any
from urllib.parse import urlsplit

from newsflow.settings import TranslationSettings
from pipeline.translation import TranslationError, Translator, pair_path

_LOG = logging.getLogger("newsflow.pipeline")

#: DeepL's limit of texts per request (LibreTranslate has none unless its operator sets one).
MAX_TEXTS_PER_REQUEST = 50
#: Texts per request, in UTF-8 bytes: under DeepL's 128 KiB, with room for the JSON around them.
MAX_REQUEST_BYTES = 100_000
#: DeepL wants a regional variant for some targets; the rest are used as they are.
_DEEPL_TARGET_VARIANT = {"EN": "EN-US", "PT": "PT-BR"}
_REDACTED = "[redacted]"


class RateLimiter:
    """At most ``per_second`` requests: each caller reserves the next free slot, then sleeps.

    The lock is held only to reserve a slot, never while sleeping, so threads queue fairly.
    """

    def __init__(self, per_second: float) -> None:
        self._interval = 1.0 / per_second
        self._next = 0.0
        self._lock = threading.Lock()

    def wait(self) -> None:
        with self._lock:
            now = time.monotonic()
            slot = max(now, self._next)
            self._next = slot + self._interval
        if slot > now:
            time.sleep(slot - now)


def retry_after_seconds(value: str | None, now: datetime | None = None) -> float | None:
    """``Retry-After`` in seconds (delta-seconds or an HTTP date); None if absent or garbled."""
    if not value:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:  # "-0000": UTC by RFC 5322
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - (now or datetime.now(UTC))).total_seconds())


def batches(texts: list[str], max_texts: int, max_bytes: int) -> Iterator[list[str]]:
    """Consecutive groups within both limits; a text over ``max_bytes`` on its own goes alone."""
    batch: list[str] = []
    size = 0
    for text in texts:
        length = len(text.encode("utf-8"))
        if batch and (len(batch) == max_texts or size + length > max_bytes):
            yield batch
            batch, size = [], 0
        batch.append(text)
        size += length
    if batch:
        yield batch


class _Retryable(Exception):
    """One attempt failed in a way that may pass: worth another try after ``retry_after``."""

    def __init__(self, reason: str, retry_after: float | None = None) -> None:
        super().__init__(reason)
        self.reason = reason
        self.retry_after = retry_after


@dataclass(frozen=True)
class Tuning:
    """Waits between retries and batch size: fixed in production, shortened by tests.

    The n-th retry waits about ``backoff_seconds * 2**n`` (with jitter), or what ``Retry-After``
    asks, and never more than ``max_backoff_seconds``.
    """

    backoff_seconds: float = 0.5
    max_backoff_seconds: float = 30.0
    max_texts_per_request: int = MAX_TEXTS_PER_REQUEST


class HttpTranslator(ABC):
    """What both services share: the request loop, batching along a path and the API key."""

    name: str

    def __init__(self, settings: TranslationSettings, tuning: Tuning | None = None) -> None:
        tuning = tuning or Tuning()
        self._url = settings.http_url.rstrip("/")
        self._key_env = settings.http_api_key_env
        self._timeout = settings.http_timeout_seconds
        self._max_retries = settings.http_max_retries
        self._limiter = RateLimiter(settings.http_requests_per_second)
        self._backoff = tuning.backoff_seconds
        self._max_backoff = tuning.max_backoff_seconds
        self._max_texts = tuning.max_texts_per_request
        self._key = ""
        self._headers: dict[str, str] = {}

    @abstractmethod
    def load(self) -> None: ...

    @abstractmethod
    def path(self, source: str, target: str) -> tuple[str, ...] | None: ...

    @abstractmethod
    def version(self) -> str: ...

    @abstractmethod
    def _translate_batch(self, texts: list[str], source: str, target: str) -> list[str]: ...

    def translate(self, texts: list[str], path: tuple[str, ...]) -> list[str]:
        for source, target in pairwise(path):
            translated: list[str] = []
            for batch in batches(texts, self._max_texts, MAX_REQUEST_BYTES):
                result = self._translate_batch(batch, source, target)
                if len(result) != len(batch):
                    raise TranslationError(
                        f"{self.name} returned {len(result)} texts for {len(batch)}"
                    )
                translated.extend(result)
            texts = translated
        return texts

    def request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
        """JSON in, JSON out; retried while it may pass, then ``TranslationError``."""
        attempt = 0
        while True:
            self._limiter.wait()
            try:
                return self._send(method, path, body)
            except _Retryable as failure:
                if attempt >= self._max_retries:
                    raise TranslationError(
                        f"{self.name} {method} {path}: {failure.reason} "
                        f"(gave up after {attempt + 1} attempts)"
                    ) from failure
                backoff = min(self._max_backoff, self._backoff * 2**attempt)
                delay = (
                    min(self._max_backoff, failure.retry_after)
                    if failure.retry_after is not None
                    else backoff * random.uniform(0.5, 1.0)  # jitter: workers do not stampede
                )
                attempt += 1
                _LOG.warning(
                    "%s %s %s: %s; retry %d of %d in %.2f s",
                    self.name,
                    method,
                    path,
                    failure.reason,
                    attempt,
                    self._max_retries,
                    delay,
                )
                time.sleep(delay)

    def _send(self, method: str, path: str, body: dict[str, Any] | None) -> Any:
        """One attempt: the decoded JSON, ``_Retryable``, or ``TranslationError`` for good."""
        data = None if body is None else json.dumps(body).encode("utf-8")
        headers = {"Accept": "application/json", **self._headers}
        if data is not None:
            headers["Content-Type"] = "application/json"
        request = urllib.request.Request(self._url + path, data, headers, method=method)
        try:
            with urllib.request.urlopen(request, timeout=self._timeout) as response:
                payload = response.read()
        except urllib.error.HTTPError as exc:
            reason = f"HTTP {exc.code}: {self._server_message(exc)}"
            if exc.code == 429 or exc.code >= 500:
                retry_after = retry_after_seconds(exc.headers.get("Retry-After"))
                raise _Retryable(reason, retry_after) from exc
            raise TranslationError(f"{self.name} {method} {path}: {reason}") from exc
        except (OSError, http.client.HTTPException) as exc:  # refused, reset, cut short
            detail = exc.reason if isinstance(exc, urllib.error.URLError) else exc
            if isinstance(detail, TimeoutError):
                raise _Retryable(f"no response within {self._timeout} s") from exc
            raise _Retryable(f"request failed: {detail}") from exc
        try:
            return json.loads(payload)
        except ValueError as exc:
            raise TranslationError(f"{self.name} {method} {path}: response is not JSON") from exc

    def _server_message(self, error: urllib.error.HTTPError) -> str:
        """The server's own explanation ({"error": ...} or {"message": ...}), key blanked."""
        try:
            raw = error.read().decode("utf-8", errors="replace")
        except (OSError, http.client.HTTPException):
            raw = ""
        try:
            decoded = json.loads(raw)
            message = str(decoded.get("error") or decoded.get("message") or raw)
        except (ValueError, AttributeError):
            message = raw
        if self._key:  # before cutting it short, so no part of the key survives either
            message = message.replace(self._key, _REDACTED)
        return message.strip()[:300] or str(error.reason)

    def _shape_error(self, what: str) -> TranslationError:
        return TranslationError(f"{self.name}: unexpected {what} response from {self._url}")


class LibreTranslate(HttpTranslator):
    """A LibreTranslate server (Argos models behind an API): key optional, pairs it lists."""

    name = "libretranslate"

    def __init__(self, settings: TranslationSettings, tuning: Tuning | None = None) -> None:
        super().__init__(settings, tuning)
        self._pivot = settings.pivot_language
        self._pairs: set[tuple[str, str]] = set()

    def load(self) -> None:
        self._key = os.environ.get(self._key_env, "").strip()
        languages = self.request("GET", "/languages")
        try:
            self._pairs = {
                (language["code"], target)
                for language in languages
                for target in language["targets"]
                if target != language["code"]
            }
        except (KeyError, TypeError) as exc:
            raise self._shape_error("/languages") from exc

    def path(self, source: str, target: str) -> tuple[str, ...] | None:
        return pair_path(self._pairs, source, target, self._pivot)

    def version(self) -> str:
        return f"libretranslate@{urlsplit(self._url).netloc}"

    def _translate_batch(self, texts: list[str], source: str, target: str) -> list[str]:
        body: dict[str, Any] = {"q": texts, "source": source, "target": target, "format": "text"}
        if self._key:
            body["api_key"] = self._key
        result = self.request("POST", "/translate", body)
        translated = result.get("translatedText") if isinstance(result, dict) else None
        if not isinstance(translated, list):
            raise self._shape_error("/translate")
        return [str(text) for text in translated]


class DeepL(HttpTranslator):
    """DeepL's API v2: a key is required; any source it lists goes to any target directly."""

    name = "deepl"

    def __init__(self, settings: TranslationSettings, tuning: Tuning | None = None) -> None:
        super().__init__(settings, tuning)
        self._sources: set[str] = set()
        self._targets: set[str] = set()

    def load(self) -> None:
        self._key = os.environ.get(self._key_env, "").strip()
        if not self._key:
            raise RuntimeError(
                f"DeepL needs an API key: set the environment variable {self._key_env} "
                "(its name is translation.http_api_key_env), or choose another "
                "NEWSFLOW_TRANSLATION__BACKEND"
            )
        self._headers = {"Authorization": f"DeepL-Auth-Key {self._key}"}
        self._sources = self._languages("source")
        self._targets = self._languages("target")

    def _languages(self, kind: str) -> set[str]:
        listed = self.request("GET", f"/v2/languages?type={kind}")
        try:
            return {str(entry["language"]).upper() for entry in listed}
        except (KeyError, TypeError) as exc:
            raise self._shape_error("/v2/languages") from exc

    def _target_code(self, language: str) -> str | None:
        code = language.upper()
        for candidate in (_DEEPL_TARGET_VARIANT.get(code), code):
            if candidate in self._targets:
                return candidate
        return None

    def path(self, source: str, target: str) -> tuple[str, ...] | None:
        if source.upper() in self._sources and self._target_code(target) is not None:
            return (source, target)
        return None

    def version(self) -> str:
        return "deepl-api-v2"

    def _translate_batch(self, texts: list[str], source: str, target: str) -> list[str]:
        body = {
            "text": texts,
            "source_lang": source.upper(),
            "target_lang": self._target_code(target),
        }
        result = self.request("POST", "/v2/translate", body)
        try:
            return [str(item["text"]) for item in result["translations"]]
        except (KeyError, TypeError) as exc:
            raise self._shape_error("/v2/translate") from exc


_BACKENDS: dict[str, type[HttpTranslator]] = {"libretranslate": LibreTranslate, "deepl": DeepL}


def http_translator(settings: TranslationSettings) -> Translator:
    """The HTTP backend named by ``settings.backend`` (libretranslate or deepl)."""
    return _BACKENDS[settings.backend](settings)
