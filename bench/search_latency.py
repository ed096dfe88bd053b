"""Search latency and bulk indexing throughput on a large index, in one run.

Builds N documents (default 100,000) from real articles in the shared corpus (BBC News in
English, 10kGNAD in German, Fake.br in Portuguese), each copy with its own id, date and source,
bulk-indexes them into a fresh index through the same definition the pipeline uses, then times
analyst queries (full text, filters, facets, date sort) through ``newsflow.search``.

Entity facets come from a cheap stand-in (capitalized word pairs), not from spaCy: running NER
on 100k documents would measure NER, not search. Numbers are for this machine, at this size.

    python bench/search_latency.py --documents 100000
"""

from __future__ import annotations

import argparse
import csv
import json
import re
import statistics
import sys
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from elasticsearch.helpers import streaming_bulk  # noqa: E402

from newsflow.index import (  # noqa: E402
    client,
    ensure_index,
    ensure_period,
    index_action,
    original_language_fields,
    period_of,
    remove,
)
from newsflow.search import SearchRequest, search  # noqa: E402
from newsflow.settings import load_settings  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "articles"
SOURCES = ["BBC", "DN", "El País", "Folha", "Le Monde", "Der Standard", "Reuters", "AP"]
_PAIR = re.compile(r"\b([A-Z][a-z]+ [A-Z][a-z]+)\b")
QUERIES: dict[str, SearchRequest] = {
    "text: two words": SearchRequest(text="economic growth"),
    "text: name": SearchRequest(text="Tony Blair"),
    "text + language + date sort": SearchRequest(text="government", languages=("en",), sort="date"),
    "entity filter only": SearchRequest(entities=("PERSON:Tony Blair",)),
    "source + date window": SearchRequest(
        sources=("Reuters",),
        since=datetime(2026, 3, 1, tzinfo=UTC),
        until=datetime(2026, 3, 31, tzinfo=UTC),
    ),
    "facets only (match all)": SearchRequest(languages=("de",)),
}


def corpus_articles() -> list[tuple[str, str, str]]:
    """(language, title, body) for every usable article in the shared corpus."""
    articles = []
    for path in sorted((CORPUS / "bbc-news-2005" / "bbc").glob("*/*.txt")):
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
        articles.append(("en", lines[0], "\n\n".join(lines[1:])))
    with (CORPUS / "10kGNAD" / "test.csv").open(encoding="utf-8") as handle:
        for row in csv.reader(handle, delimiter=";", quotechar="'"):
            if len(row) == 2:
                articles.append(("de", row[1][:80], row[1]))
    for path in sorted((CORPUS / "fake-br-corpus" / "full_texts").glob("true/*.txt")):
        text = path.read_text(errors="replace").strip()
        articles.append(("pt", text.split("\n", 1)[0][:120], text))
    return articles


def documents(count: int) -> Iterator[dict[str, Any]]:
    """Corpus articles, one every 7 minutes from 2026-01-01: 100k span about 16 monthly indices."""
    articles = corpus_articles()
    start = datetime(2026, 1, 1, tzinfo=UTC)
    for number in range(count):
        language, title, body = articles[number % len(articles)]
        when = start + timedelta(minutes=7 * number)
        people = sorted(set(_PAIR.findall(f"{title} {body}")))[:8]
        yield {
            "id": f"{number:032x}",
            "schema_version": 1,
            "source": SOURCES[number % len(SOURCES)],
            "title": title,
            "body": body,
            "title_en": title if language == "en" else None,
            "body_en": body if language == "en" else None,
            "published_at": when.isoformat(),
            "fetched_at": when.isoformat(),
            "language": language,
            "entities": {"PERSON": people},
            **original_language_fields(language, title, body),
        }


def percentile(values: list[float], share: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(share * len(ordered)))]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--documents", type=int, default=100_000)
    parser.add_argument("--repeats", type=int, default=50, help="timed runs per query")
    parser.add_argument("--keep", action="store_true", help="keep the index afterwards")
    args = parser.parse_args()

    alias = f"bench-search-{uuid.uuid4().hex[:8]}"
    settings = load_settings().namespaced(alias).elasticsearch
    es = client(settings)
    ensure_index(es, settings)
    for period in sorted({period_of(d, settings.index_period) for d in documents(args.documents)}):
        ensure_period(es, settings, period)
    es.indices.put_settings(index=alias, settings={"refresh_interval": "-1"})
    print(f"bulk-indexing {args.documents} documents into {alias} ...", file=sys.stderr)
    started = time.perf_counter()
    indexed = 0
    actions = (index_action(settings, d["id"], d) for d in documents(args.documents))
    for ok, info in streaming_bulk(
        es, actions, chunk_size=1000, max_retries=5, raise_on_error=False
    ):
        if not ok:
            sys.exit(f"bulk failure: {info}")
        indexed += 1
        if indexed % 20_000 == 0:
            print(f"  {indexed} indexed", file=sys.stderr)
    es.indices.put_settings(index=alias, settings={"refresh_interval": "1s"})
    es.indices.refresh(index=alias)
    bulk_seconds = time.perf_counter() - started

    results: dict[str, object] = {
        "documents": indexed,
        "indices": len(es.indices.get_alias(name=alias)),
        "bulk_docs_per_second": round(indexed / bulk_seconds),
        "index_size_mb": round(
            es.indices.stats(index=alias)["_all"]["primaries"]["store"]["size_in_bytes"] / 2**20
        ),
        "queries": {},
    }
    for name, request in QUERIES.items():
        for _ in range(5):  # warm caches the way a running service would have them
            search(settings, request, es=es)
        timings = []
        for _ in range(args.repeats):
            began = time.perf_counter()
            result = search(settings, request, es=es)
            timings.append((time.perf_counter() - began) * 1000)
        results["queries"][name] = {  # type: ignore[index]
            "hits": result["total"],
            "p50_ms": round(statistics.median(timings), 1),
            "p95_ms": round(percentile(timings, 0.95), 1),
        }
    if not args.keep:
        remove(es, alias)
    es.close()
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
