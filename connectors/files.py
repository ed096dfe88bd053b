"""Files connector: JSONL, JSON, plain-text and HTML articles from disk.

Parsing is pure (paths in, articles and per-record errors out) so that one bad line is reported
with its location and the rest of the batch goes on; publishing is ``connectors.publish``'s job
(``newsflow ingest files``) or the runner's (``FilesSource``, for directories watched
continuously).

Plain text follows the layout of clipped newspaper articles: the first line is the title, the
following lines are paragraphs, and a trailing ``Source: X`` line names the outlet. HTML pages
(``.html`` / ``.htm``, saved article pages) go through ``connectors.pages.extract_page``; their
URL is the page's ``<link rel=canonical>`` (or ``og:url``) when it is absolute http(s), and none
otherwise, because a path on disk is not a URL anyone can visit.
"""

from __future__ import annotations

import glob
import hashlib
import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal
from urllib.parse import urlsplit

from pydantic import Field

from connectors.pages import ExtractionFailed, article_from_page, extract_page
from connectors.source import Item, ItemError, PollContext, SourceConfig
from newsflow.article import Article, InvalidArticle
from newsflow.errors import NewsflowError

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".txt", ".html", ".htm")
_HTML_SUFFIXES = (".html", ".htm")
_SOURCE_LINE = re.compile(r"^\s*source\s*:\s*(?P<source>.+?)\s*$", re.IGNORECASE)
#: JSON fields that map onto the contract; anything else is kept as metadata.
_CONTRACT_FIELDS = {"url", "canonical_url", "source", "title", "body", "published_at"}
_HINT_FIELDS = ("language_hint", "language", "lang")


@dataclass(frozen=True)
class RecordError:
    """A record that could not become an article: where it is and why."""

    location: str
    reason: str


ParsedRecord = Article | RecordError


class UnreadableInput(NewsflowError):
    """A path that cannot be read at all (missing, unsupported, permission denied)."""


def discover(paths: Iterable[Path]) -> list[Path]:
    """Expand directories into their supported files; reject anything we cannot read."""
    found: list[Path] = []
    for path in paths:
        if path.is_dir():
            found.extend(
                sorted(p for p in path.rglob("*") if p.suffix.lower() in SUPPORTED_SUFFIXES)
            )
        elif not path.exists():
            raise UnreadableInput(f"{path}: no such file or directory")
        elif path.suffix.lower() not in SUPPORTED_SUFFIXES:
            raise UnreadableInput(
                f"{path}: unsupported file type; expected one of {', '.join(SUPPORTED_SUFFIXES)}"
            )
        else:
            found.append(path)
    return found


def read_articles(
    path: Path, *, now: datetime | None = None, source: str | None = None
) -> Iterator[ParsedRecord]:
    """Yield every article (or the reason it is not one) in one file.

    ``source`` names the outlet when the file does not (default: the file's stem, or for an
    HTML page the host of its canonical URL, else its directory's name).
    """
    fetched_at = now or datetime.now(UTC)
    if path.suffix.lower() in _HTML_SUFFIXES:
        yield _from_html(path, fetched_at, source)
        return
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UnreadableInput(f"{path}: {exc}") from exc
    suffix = path.suffix.lower()
    default_source = source or path.stem
    if suffix == ".txt":
        yield _from_text(text, path, fetched_at, default_source)
    elif suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield _from_json_text(line, f"{path}:{number}", default_source, fetched_at)
    else:
        yield from _from_json_document(text, path, default_source, fetched_at)


def parse_plain_text(text: str) -> tuple[str, str, str | None]:
    """Split a plain-text article into (title, body, source or None)."""
    lines = [line.strip() for line in text.splitlines() if line.strip()]
    source = None
    if lines and (match := _SOURCE_LINE.match(lines[-1])):
        source = match["source"]
        lines.pop()
    if not lines:
        return "", "", source
    return lines[0], "\n\n".join(lines[1:]), source


def article_from_mapping(
    record: dict[str, Any], *, default_source: str, fetched_at: datetime
) -> Article:
    """Map a JSON news record onto the contract; unknown fields are kept as metadata."""
    hint = next((record[k] for k in _HINT_FIELDS if record.get(k)), None)
    metadata = {
        k: v for k, v in record.items() if k not in _CONTRACT_FIELDS and k not in _HINT_FIELDS
    }
    return Article.create(
        url=_as_text(record.get("url"), "url") or None,
        canonical_url=_as_text(record.get("canonical_url"), "canonical_url") or None,
        source=_as_text(record.get("source"), "source") or default_source,
        title=_as_text(record.get("title"), "title"),
        body=_as_text(record.get("body"), "body"),
        published_at=record.get("published_at"),
        fetched_at=fetched_at,
        language_hint=hint.lower() if isinstance(hint, str) else hint,
        metadata=metadata,
    )


def _as_text(value: Any, field: str) -> str:
    if value is None:
        return ""
    if not isinstance(value, str):
        raise InvalidArticle(f"{field}: must be a string, got {type(value).__name__}")
    return value


def _from_html(path: Path, fetched_at: datetime, source: str | None) -> ParsedRecord:
    try:
        page = extract_page(path.read_bytes(), url=path.resolve().as_uri())
    except OSError as exc:
        raise UnreadableInput(f"{path}: {exc}") from exc
    except ExtractionFailed as exc:
        return RecordError(str(path), str(exc))
    host = urlsplit(page.canonical_url).hostname if page.canonical_url else None
    try:
        return article_from_page(
            page,
            source=source or (host or "").removeprefix("www.") or path.parent.name or path.stem,
            language_hint=None,
            fetched_at=fetched_at,
            metadata={"file": path.name},
        )
    except ExtractionFailed as exc:
        return RecordError(str(path), str(exc))


def _from_text(text: str, path: Path, fetched_at: datetime, default_source: str) -> ParsedRecord:
    title, body, source = parse_plain_text(text)
    try:
        return Article.create(
            source=source or default_source,
            title=title,
            body=body,
            fetched_at=fetched_at,
            metadata={"file": path.name},
        )
    except InvalidArticle as exc:
        return RecordError(str(path), str(exc))


def _from_json_text(
    text: str, location: str, default_source: str, fetched_at: datetime
) -> ParsedRecord:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return RecordError(location, f"not valid JSON: {exc}")
    return _from_record(record, location, default_source, fetched_at)


def _from_json_document(
    text: str, path: Path, default_source: str, fetched_at: datetime
) -> Iterator[ParsedRecord]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        yield RecordError(str(path), f"not valid JSON: {exc}")
        return
    records = document if isinstance(document, list) else [document]
    for index, record in enumerate(records):
        yield _from_record(record, f"{path}[{index}]", default_source, fetched_at)


def _from_record(
    record: Any, location: str, default_source: str, fetched_at: datetime
) -> ParsedRecord:
    if not isinstance(record, dict):
        return RecordError(location, f"expected a JSON object, got {type(record).__name__}")
    try:
        return article_from_mapping(record, default_source=default_source, fetched_at=fetched_at)
    except InvalidArticle as exc:
        return RecordError(location, str(exc))


class FilesConfig(SourceConfig):
    """Files, directories or globs of articles, watched: new and changed files are picked up."""

    type: Literal["files"]
    paths: list[str] = Field(min_length=1)


def record_key(path: Path, article: Article) -> str:
    """Seen key of one record: its file and its content (not its position or read time).

    Appending to a JSONL file sends only the new lines; a record edited in place is sent again,
    as a correction; an untouched file is never sent twice, even after a restart.
    """
    content = article.model_dump_json(exclude={"fetched_at"}).encode("utf-8")
    return f"file:{path.resolve()}#{hashlib.sha256(content).hexdigest()[:32]}"


class FilesSource:
    """Polls its paths; a file is re-read only when its size or modification time changed."""

    def __init__(self, config: FilesConfig) -> None:
        self.config = config
        #: path -> (mtime_ns, size) of files whose every record was already seen.
        self._settled: dict[Path, tuple[int, int]] = {}

    def poll(self, context: PollContext) -> Iterator[Item | ItemError]:
        for pattern in self.config.paths:
            matches = sorted(Path(p) for p in glob.glob(pattern, recursive=True)) or [Path(pattern)]
            try:
                files = discover(matches)
            except UnreadableInput as exc:
                yield ItemError("unreadable", str(exc), pattern)
                continue
            for path in files:
                if context.stop.is_set():
                    return
                yield from self._poll_file(path, context)

    def _poll_file(self, path: Path, context: PollContext) -> Iterator[Item | ItemError]:
        try:
            stat = path.stat()
        except OSError as exc:
            yield ItemError("unreadable", str(exc), str(path))
            return
        version = (stat.st_mtime_ns, stat.st_size)
        if self._settled.get(path) == version:
            return
        try:
            records = list(read_articles(path, source=self.config.source_label))
        except UnreadableInput as exc:
            yield ItemError("unreadable", str(exc), str(path))
            return
        items = {record_key(path, r): r for r in records if isinstance(r, Article)}
        unseen = context.state.unseen(items)
        for record in records:
            if isinstance(record, RecordError):
                yield ItemError("parse", record.reason, record.location)
        for key, article in items.items():
            if key in unseen:
                yield Item(article, seen_key=key)
        if not unseen:
            self._settled[path] = version
