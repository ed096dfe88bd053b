"""WARC archives (e.g. CC-NEWS) as a source: each HTML response record becomes an article.

Resumable: every item's checkpoint is ``{"file": path, "offset": byte offset of the NEXT
record}``; the runner stores it once Kafka acknowledged the item, and the next poll starts
there. Files are read in sorted path order, so a file sorting before the checkpoint's file is
finished; new files matching the globs (CC-NEWS names carry a timestamp) are picked up by later
polls. Seeking to a record offset works for plain ``.warc`` and for ``.warc.gz`` with one gzip
member per record (the WARC convention, and what CC-NEWS ships).

Records that are not articles (requests, metadata, redirects, images, ...) are expected in any
crawl: they are counted in ``WarcSource.skipped`` by reason, not reported one by one. An HTML
response that cannot be extracted is an ``ItemError`` located by its WARC-Record-ID; a file that
cannot be read further is one ``ItemError`` located at ``file:offset``, and reading goes on with
the next file.
"""

from __future__ import annotations

import glob
from collections import Counter
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Literal

from pydantic import Field
from warcio.archiveiterator import ArchiveIterator
from warcio.exceptions import ArchiveLoadFailed
from warcio.recordloader import ArcWarcRecord
from warcio.statusandheaders import StatusAndHeadersParserException

from connectors.pages import ExtractionFailed, article_from_page, extract_page
from connectors.source import Item, ItemError, PollContext, SourceConfig

_HTML_TYPES = ("text/html", "application/xhtml+xml")


class WarcConfig(SourceConfig):
    """WARC files to backfill from: paths or globs of ``.warc`` / ``.warc.gz`` files."""

    type: Literal["warc"]
    paths: list[str] = Field(min_length=1)
    #: A record body larger than this is reported, not extracted (same cap as page fetches).
    max_record_bytes: int = Field(10_000_000, gt=0)


def expand(patterns: list[str]) -> list[Path]:
    """The WARC files the globs and paths name, in the order they are processed."""
    found = {Path(p) for pattern in patterns for p in glob.glob(pattern, recursive=True)}
    return sorted(
        (p for p in found if p.is_file() and p.name.endswith((".warc", ".warc.gz"))), key=str
    )


def _header(record: ArcWarcRecord, name: str) -> str:
    value = record.http_headers.get_header(name) if record.http_headers else None
    return value or ""


def _charset(content_type: str) -> str | None:
    for parameter in content_type.split(";")[1:]:
        key, _, value = parameter.partition("=")
        if key.strip().lower() == "charset" and value.strip():
            return value.strip().strip("\"'")
    return None


def skip_reason(record: ArcWarcRecord) -> str | None:
    """Why a record is not an article page, or None when it should be extracted."""
    if record.rec_type != "response":
        return f"type {record.rec_type}"
    if record.http_headers is None:
        return None  # malformed: reported as an error, not skipped
    status = record.http_headers.get_statuscode()
    if status != "200":
        return f"status {status}"
    content_type = _header(record, "Content-Type").split(";")[0].strip().lower()
    if content_type not in _HTML_TYPES:
        return "not HTML"
    return None


class WarcSource:
    def __init__(self, config: WarcConfig) -> None:
        self.config = config
        #: Records passed over as not being articles, by reason (e.g. "type request").
        self.skipped: Counter[str] = Counter()

    def poll(self, context: PollContext) -> Iterator[Item | ItemError]:
        checkpoint = context.state.checkpoint() or {}
        done_before, offset = str(checkpoint.get("file", "")), int(checkpoint.get("offset", 0))
        for path in expand(self.config.paths):
            if str(path) < done_before:
                continue
            start = offset if str(path) == done_before else 0
            yield from self._read(path, start, context)
            if context.stop.is_set():
                return

    def _read(self, path: Path, start: int, context: PollContext) -> Iterator[Item | ItemError]:
        position = start
        try:
            with path.open("rb") as stream:
                stream.seek(start)
                records = ArchiveIterator(stream)
                for record in records:
                    result = self._convert(record, path)
                    records.read_to_end()
                    position = records.offset
                    if isinstance(result, Item):
                        yield Item(
                            result.article,
                            result.seen_key,
                            {"file": str(path), "offset": position},
                        )
                    elif result is not None:
                        yield result
                    if context.stop.is_set():
                        return
        except (OSError, ArchiveLoadFailed, StatusAndHeadersParserException, EOFError) as exc:
            yield ItemError("parse", f"unreadable from here on: {exc}", f"{path}:{position}")

    def _convert(self, record: ArcWarcRecord, path: Path) -> Item | ItemError | None:
        record_id = record.rec_headers.get_header("WARC-Record-ID") or f"{path}:?"
        if reason := skip_reason(record):
            self.skipped[reason] += 1
            return None
        if record.http_headers is None:
            return ItemError("parse", "response record without HTTP headers", record_id)
        url = record.rec_headers.get_header("WARC-Target-URI") or ""
        body = record.content_stream().read(self.config.max_record_bytes + 1)
        if len(body) > self.config.max_record_bytes:
            return ItemError("too_large", f"over {self.config.max_record_bytes} bytes", record_id)
        try:
            fetched_at = datetime.fromisoformat(record.rec_headers.get_header("WARC-Date") or "")
            page = extract_page(body, url=url, charset=_charset(_header(record, "Content-Type")))
            article = article_from_page(
                page,
                source=self.config.source_label,
                language_hint=self.config.language_hint,
                fetched_at=fetched_at if fetched_at.tzinfo else fetched_at.replace(tzinfo=UTC),
                metadata={"warc_record_id": record_id, "warc_file": path.name},
            )
        except ExtractionFailed as exc:
            return ItemError("extract", str(exc), record_id)
        except ValueError as exc:  # WARC-Date missing or malformed
            return ItemError("parse", f"bad WARC-Date: {exc}", record_id)
        return Item(article, seen_key=record_id)
