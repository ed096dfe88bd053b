"""What finding an article's month costs the sink, on the real Elasticsearch node.

Since the index is one index per month, the sink asks where each batch's articles already live
(one refresh per bundle, one search per batch) before its bulk request. This bench runs the real
``IndexDocuments`` over bundles of real articles, a quarter of them sent again in another month
(re-fetches), into an index pre-filled with ``--stored`` documents, and splits the sink's time
into the lookup and the rest (documents, bulk request). Compare the lookup's cost per article with
the pipeline's (docs/PERFORMANCE.md: about 50 ms of CPU per English article end to end).

    python bench/sink_placement.py --bundles 20 --stored 20000
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from elasticsearch.helpers import bulk  # noqa: E402

from bench.quality import CORPUS  # noqa: E402
from connectors.files import read_articles  # noqa: E402
from newsflow.article import Article  # noqa: E402
from newsflow.index import client, ensure_index, ensure_period, index_action, remove  # noqa: E402
from newsflow.settings import load_settings  # noqa: E402
from pipeline.elasticsearch_sink import IndexDocuments, to_document  # noqa: E402
from pipeline.enriched import EnrichedArticle  # noqa: E402
from pipeline.kafka_source import Origin  # noqa: E402
from pipeline.stage import Batch  # noqa: E402

BBC = CORPUS / "articles" / "bbc-news-2005" / "bbc"
MONTHS = (datetime(2026, 11, 20, tzinfo=UTC), datetime(2026, 12, 7, tzinfo=UTC))


def articles(count: int) -> Iterator[Article]:
    """``count`` BBC articles, each under its own URL, fetched in November."""
    files = sorted(BBC.glob("*/*.txt"))
    if not files:
        raise SystemExit(f"this bench reads the shared BBC corpus under {BBC}")
    for number in range(count):
        (record,) = read_articles(files[number % len(files)], now=MONTHS[0])
        assert isinstance(record, Article), record
        yield record.model_copy(update={"url": f"https://bench.example/{number}"})


def with_url(article: Article, number: int, month: int) -> EnrichedArticle:
    """The article under URL ``number`` (so its id), as fetched in ``MONTHS[month]``."""
    made = Article.create(
        source=article.source,
        title=article.title,
        body=article.body,
        url=f"https://bench.example/{number}",
        fetched_at=MONTHS[month],
    )
    return EnrichedArticle(made, Origin("articles.raw", 0, number))


class TimedSink(IndexDocuments):
    """The real sink, with the time of each lookup recorded."""

    lookups: list[float]

    def _stored_in(self, ids: list[str]) -> dict[str, list[str]]:
        started = time.perf_counter()
        try:
            return super()._stored_in(ids)
        finally:
            self.lookups.append(time.perf_counter() - started)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--bundles", type=int, default=20, help="bundles to index (default 20)")
    parser.add_argument("--batches", type=int, default=10, help="batches per bundle (default 10)")
    parser.add_argument("--batch-size", type=int, default=32, help="articles per batch (32)")
    parser.add_argument("--stored", type=int, default=20_000, help="documents stored beforehand")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args()

    settings = load_settings().namespaced(f"bench-{uuid.uuid4().hex[:8]}").elasticsearch
    es = client(settings)
    texts = list(articles(500))
    try:
        ensure_index(es, settings)
        ensure_period(es, settings, "2026.11")
        print(f"storing {args.stored} documents ...", file=sys.stderr)
        prefill = (
            index_action(settings, f"stored-{n}", to_document(with_url(a, -n - 1, 0), MONTHS[0]))
            for n, a in ((n, texts[n % len(texts)]) for n in range(args.stored))
        )
        bulk(es, prefill, chunk_size=1000, refresh=True)

        sink = TimedSink(settings)
        sink.setup()
        sink.lookups = []
        per_bundle: list[float] = []
        sent = 0
        urls: set[int] = set()
        for number in range(args.bundles):
            batches = []
            for _ in range(args.batches):
                batch = []
                for _ in range(args.batch_size):
                    # every fourth article is one sent before, fetched again the other month
                    again = sent % 4 == 3
                    url = sent - 2 if again else sent
                    batch.append(with_url(texts[url % len(texts)], url, int(again)))
                    urls.add(url)
                    sent += 1
                batches.append(batch)
            started = time.perf_counter()
            sink.start_bundle()
            for batch in batches:
                list(sink.process(Batch(articles=tuple(batch))))
            per_bundle.append(time.perf_counter() - started)
            print(f"... bundle {number + 1}/{args.bundles}", file=sys.stderr)
        sink.teardown()
        es.indices.refresh(index=settings.index_alias)
        documents = int(es.count(index=settings.index_alias)["count"])
    finally:
        remove(es, settings.index_alias)
        es.close()

    batches = args.bundles * args.batches
    total = sum(per_bundle)
    lookup = sum(sink.lookups)
    results: dict[str, Any] = {
        "bundles": args.bundles,
        "batches": batches,
        "articles": sent,
        "stored_before": args.stored,
        "documents_after": documents,
        "distinct_ids": args.stored + len(urls),
        "sink_ms_per_batch": 1000 * total / batches,
        "lookup_ms_per_batch": 1000 * lookup / batches,
        "lookup_ms_median": 1000 * statistics.median(sink.lookups),
        "lookup_ms_per_article": 1000 * lookup / sent,
        "lookup_share_of_sink": lookup / total,
    }
    if documents != results["distinct_ids"]:
        print(f"FAIL: {documents} documents for {results['distinct_ids']} ids", file=sys.stderr)
        return 1
    if args.json:
        print(json.dumps(results, indent=2))
        return 0
    print("| measure | value |\n|---|---|")
    for key, value in results.items():
        print(f"| {key} | {value:.3f} |" if isinstance(value, float) else f"| {key} | {value} |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
