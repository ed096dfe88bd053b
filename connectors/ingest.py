"""``newsflow ingest files``: discover files, parse them, publish, and report as we go.

Glue only: parsing lives in ``connectors.files``, sending in ``connectors.publish``. A bad record
is reported with its location and skipped; it never stops the batch.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from connectors.files import RecordError, discover, read_articles
from connectors.publish import ArticlePublisher
from newsflow.article import Article
from newsflow.kafka_topics import ensure_topics
from newsflow.settings import KafkaSettings

_PROGRESS_EVERY_SECONDS = 2.0


@dataclass
class IngestReport:
    files: int = 0
    published: int = 0
    rejected: list[RecordError] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.rejected


def ingest_files(
    paths: Iterable[Path], settings: KafkaSettings, out: TextIO = sys.stderr
) -> IngestReport:
    """Publish every article found under ``paths``; returns what was sent and what was not."""
    files = discover(paths)
    ensure_topics(settings)
    report = IngestReport(files=len(files))
    last_progress = time.monotonic()

    def articles() -> Iterator[Article]:
        nonlocal last_progress
        for number, path in enumerate(files, start=1):
            for record in read_articles(path):
                if isinstance(record, RecordError):
                    report.rejected.append(record)
                    print(f"rejected {record.location}: {record.reason}", file=out)
                else:
                    yield record
            if time.monotonic() - last_progress >= _PROGRESS_EVERY_SECONDS:
                last_progress = time.monotonic()
                print(f"... {number}/{len(files)} files, {report.published} published", file=out)

    with ArticlePublisher(settings) as publisher:
        for result in publisher.publish(articles()):
            if result.error is None:
                report.published += 1
                if result.outcome != "sent":  # too large: truncated or sent to the DLQ topic
                    print(f"article {result.article_id}: {result.outcome}", file=out)
            else:
                report.rejected.append(RecordError(f"article {result.article_id}", result.error))
                print(f"rejected article {result.article_id}: {result.error}", file=out)
    print(
        f"ingested {report.files} file(s): {report.published} article(s) published to "
        f"{settings.raw_topic}, {len(report.rejected)} rejected",
        file=out,
    )
    return report
