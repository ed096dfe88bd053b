"""Files connector: JSONL, JSON and plain-text articles from disk.

Parsing is pure (paths in, articles and per-record errors out) so that one bad line is reported
with its location and the rest of the batch goes on; publishing is ``connectors.publish``'s job.

Plain text follows the layout of clipped newspaper articles: the first line is the title, the
following lines are paragraphs, and a trailing ``Source: X`` line names the outlet.
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from newsflow.article import Article, InvalidArticle
from newsflow.errors import NewsflowError

SUPPORTED_SUFFIXES = (".jsonl", ".json", ".txt")
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


def read_articles(path: Path, *, now: datetime | None = None) -> Iterator[ParsedRecord]:
    """Yield every article (or the reason it is not one) in one file."""
    fetched_at = now or datetime.now(UTC)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise UnreadableInput(f"{path}: {exc}") from exc
    suffix = path.suffix.lower()
    if suffix == ".txt":
        yield _from_text(text, path, fetched_at)
    elif suffix == ".jsonl":
        for number, line in enumerate(text.splitlines(), start=1):
            if line.strip():
                yield _from_json_text(line, f"{path}:{number}", path, fetched_at)
    else:
        yield from _from_json_document(text, path, fetched_at)


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


def _from_text(text: str, path: Path, fetched_at: datetime) -> ParsedRecord:
    title, body, source = parse_plain_text(text)
    try:
        return Article.create(
            source=source or path.stem,
            title=title,
            body=body,
            fetched_at=fetched_at,
            metadata={"file": path.name},
        )
    except InvalidArticle as exc:
        return RecordError(str(path), str(exc))


def _from_json_text(text: str, location: str, path: Path, fetched_at: datetime) -> ParsedRecord:
    try:
        record = json.loads(text)
    except json.JSONDecodeError as exc:
        return RecordError(location, f"not valid JSON: {exc}")
    return _from_record(record, location, path, fetched_at)


def _from_json_document(text: str, path: Path, fetched_at: datetime) -> Iterator[ParsedRecord]:
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        yield RecordError(str(path), f"not valid JSON: {exc}")
        return
    records = document if isinstance(document, list) else [document]
    for index, record in enumerate(records):
        yield _from_record(record, f"{path}[{index}]", path, fetched_at)


def _from_record(record: Any, location: str, path: Path, fetched_at: datetime) -> ParsedRecord:
    if not isinstance(record, dict):
        return RecordError(location, f"expected a JSON object, got {type(record).__name__}")
    try:
        return article_from_mapping(record, default_source=path.stem, fetched_at=fetched_at)
    except InvalidArticle as exc:
        return RecordError(location, str(exc))
