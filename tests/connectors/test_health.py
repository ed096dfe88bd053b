"""Per-source health: the book, its Prometheus view over HTTP, and the status table."""

from __future__ import annotations

import io
import urllib.request

from prometheus_client.parser import text_string_to_metric_families

from connectors.health import HealthBook, SourceHealth, serve_metrics, status_rows, status_table

T0 = 1_800_000_000.0


class Clock:
    def __init__(self) -> None:
        self.now = T0

    def __call__(self) -> float:
        return self.now


def busy_book(clock: Clock) -> HealthBook:
    book = HealthBook(clock)
    book.register("bbc", "rss", 900)
    book.register("desk", "files", 300)
    for _ in range(3):
        book.poll_started("bbc")
    book.published("bbc", "sent", T0 - 3600)
    book.published("bbc", "truncated", T0 - 7200)
    book.published("bbc", "sent", T0 + 86400)  # a date in the future counts as now
    book.item_error("bbc", "parse")
    book.poll_failed("bbc", "timeout", "no answer in 30s")
    clock.now += 60
    book.poll_succeeded("bbc")
    book.scheduled("bbc", 450, clock.now + 450)
    return book


def test_the_book_counts_and_survives_a_restart_through_its_snapshot() -> None:
    clock = Clock()
    book = busy_book(clock)
    bbc = book.get("bbc")
    assert (bbc.fetches, bbc.new_items, dict(bbc.items)) == (3, 3, {"sent": 2, "truncated": 1})
    assert dict(bbc.errors) == {"parse": 1, "timeout": 1}
    assert bbc.newest_item == T0 and bbc.last_success == T0 + 60
    assert bbc.last_error == "timeout: no answer in 30s"

    restarted = HealthBook(clock)
    restarted.register("bbc", "rss", 900, previous=book.snapshots()["bbc"])
    again = restarted.get("bbc")
    assert (again.fetches, again.errors, again.newest_item) == (3, bbc.errors, T0)
    assert (again.interval, again.next_poll) == (900, None)  # the schedule starts afresh


def test_metrics_are_served_over_http_with_the_documented_names() -> None:
    clock = Clock()
    book = busy_book(clock)
    with serve_metrics(book, ("127.0.0.1", 0), out=io.StringIO()) as port:
        scrape = urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=10)
        text = scrape.read().decode()
        scrape.close()
    samples = {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }
    bbc = (("source", "bbc"), ("type", "rss"))
    assert samples[("newsflow_connector_fetches_total", bbc)] == 3
    assert samples[("newsflow_connector_items_total", (("outcome", "sent"), *bbc))] == 2
    assert samples[("newsflow_connector_items_total", (("outcome", "truncated"), *bbc))] == 1
    assert samples[("newsflow_connector_errors_total", (("kind", "timeout"), *bbc))] == 1
    assert samples[("newsflow_connector_errors_total", (("kind", "parse"), *bbc))] == 1
    assert samples[("newsflow_connector_last_success_timestamp_seconds", bbc)] == T0 + 60
    assert samples[("newsflow_connector_interval_seconds", bbc)] == 450
    assert samples[("newsflow_connector_next_poll_timestamp_seconds", bbc)] == T0 + 510
    age = samples[("newsflow_connector_newest_item_age_seconds", bbc)]
    assert age == 60  # computed at scrape time: newest item at T0, scraped at T0 + 60
    desk = (("source", "desk"), ("type", "files"))
    assert samples[("newsflow_connector_fetches_total", desk)] == 0
    assert ("newsflow_connector_last_success_timestamp_seconds", desk) not in samples


def test_status_rows() -> None:
    clock = Clock()
    book = busy_book(clock)
    rows = status_rows(book.snapshots(), clock.now + 30)
    assert rows[0] == {
        "source": "bbc",
        "type": "rss",
        "fetches": 3,
        "new": 3,
        "errors": "2 (parse 1, timeout 1)",
        "last success": "30s ago",
        "newest item": "2m ago",
        "interval": "450s",
        "next poll": "in 7m",
        "last error": "timeout: no answer in 30s",
    }
    assert rows[1]["last success"] == "-" and rows[1]["errors"] == "0"


def test_status_table_lists_configured_sources_even_if_they_never_ran() -> None:
    snapshots = {"old": SourceHealth("rss").snapshot(), "bbc": SourceHealth("rss").snapshot()}
    rows = status_table(snapshots, {"bbc": "rss", "new-feed": "sitemap"}, T0)
    assert [(r["source"], r["type"], r["fetches"]) for r in rows] == [
        ("bbc", "rss", 0),
        ("new-feed", "sitemap", 0),
    ]
    assert [r["source"] for r in status_table(snapshots, None, T0)] == ["old", "bbc"]
