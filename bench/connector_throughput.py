"""Connector throughput: items/s of the feed and files connectors through the real runner.

Each connector is run once (``run(..., once=True)``) over N BBC News 2005 articles from the
shared corpus into fresh topics on the running local stack, and timed end to end: fetch or read,
parse, publish with ``acks=all`` and commit the seen keys to SQLite. The feed is one RSS
document served by the test server on 127.0.0.1 with every article's full text in the item (no
page fetches: those are bounded by per-host politeness, not by the connector). A second run of
each shows the cost of a poll that finds nothing new.

    python bench/connector_throughput.py --articles 1000
"""

from __future__ import annotations

import argparse
import io
import json
import sys
import tempfile
import time
import uuid
from collections.abc import Sequence
from html import escape
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kafka import KafkaAdminClient  # noqa: E402

from connectors.fetch import Fetcher, FetchPolicy  # noqa: E402
from connectors.files import FilesConfig, FilesSource  # noqa: E402
from connectors.publish import ArticlePublisher  # noqa: E402
from connectors.rss import RssConfig, RssSource  # noqa: E402
from connectors.runner import RunOptions, run  # noqa: E402
from connectors.source import Source  # noqa: E402
from connectors.state import StateStore  # noqa: E402
from newsflow.kafka_topics import client_config, ensure_topics  # noqa: E402
from newsflow.settings import Settings, load_settings  # noqa: E402
from tests.connectors.conftest import LocalSite, Reply  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "articles" / "bbc-news-2005" / "bbc"


def corpus(count: int) -> list[tuple[str, str]]:
    """(title, body) of the first ``count`` articles."""
    articles = []
    for path in sorted(CORPUS.glob("*/*.txt"))[:count]:
        title, _, body = path.read_text(encoding="latin-1").strip().partition("\n")
        articles.append((title.strip(), body.strip()))
    return articles


def rss(site: LocalSite, articles: Sequence[tuple[str, str]]) -> bytes:
    items = "".join(
        f"<item><title>{escape(title)}</title><link>{site.url(f'/news/{n}')}</link>"
        f"<guid isPermaLink='false'>bbc-{n}</guid><description>{escape(body)}</description></item>"
        for n, (title, body) in enumerate(articles)
    )
    return (
        "<?xml version='1.0' encoding='utf-8'?><rss version='2.0'><channel><title>BBC</title>"
        f"<link>{site.url('/')}</link>{items}</channel></rss>"
    ).encode()


def timed_run(source: Source, settings: Settings, store: StateStore) -> tuple[int, float]:
    policy = FetchPolicy(allow_networks=("127.0.0.1/32",), per_host_interval=0)
    with Fetcher(policy) as fetcher, ArticlePublisher(settings.kafka) as publisher:
        started = time.perf_counter()
        report = run(
            [source],
            store=store,
            fetcher=fetcher,
            publisher=publisher,
            options=RunOptions(),
            once=True,
            out=io.StringIO(),
        )
        elapsed = time.perf_counter() - started
    if report.failed_polls or report.rejected:
        raise SystemExit(f"{source.config.name}: {report}")
    return report.new_items, elapsed


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=1000, help="how many (max 2225)")
    args = parser.parse_args()
    articles = corpus(args.articles)
    settings = load_settings().namespaced(f"bench-connectors-{uuid.uuid4().hex[:8]}")
    ensure_topics(settings.kafka)
    site = LocalSite()
    site.routes["/feed.xml"] = Reply(body=rss(site, articles), content_type="application/rss+xml")
    results = {}
    try:
        with tempfile.TemporaryDirectory() as tmp:
            jsonl = Path(tmp) / "articles.jsonl"
            jsonl.write_text(
                "".join(
                    json.dumps({"source": "BBC", "title": t, "body": b, "language": "en"}) + "\n"
                    for t, b in articles
                ),
                encoding="utf-8",
            )
            sources: list[Source] = [
                RssSource(
                    RssConfig(
                        name="feed",
                        url=site.url("/feed.xml"),
                        full_text="never",
                        max_items_per_poll=len(articles),
                        allow_networks=("127.0.0.1/32",),
                    )
                ),
                FilesSource(FilesConfig(name="files", type="files", paths=[str(jsonl)])),
            ]
            with StateStore(Path(tmp) / "state.sqlite") as store:
                for source in sources:
                    first = timed_run(source, settings, store)
                    second = timed_run(source, settings, store)
                    results[source.config.name] = (first, second)
    finally:
        site.close()
        admin = KafkaAdminClient(**client_config(settings.kafka, "newsflow-bench"))
        admin.delete_topics([settings.kafka.raw_topic, settings.kafka.dlq_topic])
        admin.close()
    print(f"{'connector':10} {'items':>6} {'seconds':>8} {'items/s':>8}   second run (nothing new)")
    for name, ((items, seconds), (again, idle)) in results.items():
        print(
            f"{name:10} {items:6d} {seconds:8.2f} {items / seconds:8.0f}   "
            f"{again} new in {idle:.2f} s"
        )


if __name__ == "__main__":
    main()
