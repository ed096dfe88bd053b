"""Feed parsing throughput: ``connectors.rss.parse_feed`` over every feed in the shared corpus.

Each feed document under ``corpus/feeds/`` (the five collections in its SOURCES.md; not the
expected-output JSON beside some of them) is parsed ``--repeat`` times after one warm-up pass,
the way the source parses a fetched body: safety check, feedparser (or the JSON Feed mapping),
HTML reduced to text. A feedparser test file that declares an HTTP ``Content-type`` in its
header comment gets it, as in ``tests/connectors/test_rss.py``, so both count the same errors.
No network, no Kafka: this is the parsing ceiling of the feed connector, per collection and
overall, in items/s, feeds/s and MB/s.

Markdown table on stdout; everything as JSON with --json.

    python bench/feeds.py [--repeat N] [--json PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import re
import sys
import time
from dataclasses import asdict, dataclass, fields
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connectors.rss import parse_feed  # noqa: E402

SHARED = Path(os.environ.get("NEWSFLOW_SHARED_DIR") or REPO.parent / "shared")
FEEDS = SHARED / "corpus" / "feeds"
FEED_URL = "https://feeds.example.org/feed.xml"
_HEADER = re.compile(rb"^\s*Header:\s*Content-type:\s*(.+?)\s*$", re.IGNORECASE | re.MULTILINE)


@dataclass
class Row:
    """One collection's outcome per pass; ``seconds`` is the mean time of one pass."""

    collection: str
    feeds: int = 0
    ok: int = 0
    errors: int = 0
    items: int = 0
    megabytes: float = 0.0
    seconds: float = 0.0

    def rates(self) -> dict[str, float]:
        return {
            f"{name}_per_second": getattr(self, name) / self.seconds if self.seconds else 0.0
            for name in ("items", "feeds", "megabytes")
        }


@dataclass(frozen=True)
class Feed:
    collection: str
    data: bytes
    content_type: str | None


def load() -> list[Feed]:
    feeds = []
    for path in sorted(FEEDS.rglob("*")):
        if not path.is_file() or path.name.endswith(".serde.json"):
            continue
        if "rss-parser/test/output" in path.as_posix():
            continue
        data = path.read_bytes()
        declared = _HEADER.search(data[:1000])
        collection = path.relative_to(FEEDS).parts[0]
        feeds.append(Feed(collection, data, declared[1].decode() if declared else None))
    return feeds


def measure(feeds: list[Feed], repeat: int) -> list[Row]:
    """Rows per collection, then the total."""
    rows: dict[str, Row] = {}
    for feed in feeds:
        row = rows.setdefault(feed.collection, Row(feed.collection))
        # The untimed first parse warms up and gives the outcome (parsing is deterministic).
        parsed = parse_feed(feed.data, url=FEED_URL, content_type=feed.content_type)
        row.feeds += 1
        row.ok += parsed.error is None
        row.errors += parsed.error is not None
        row.items += len(parsed.items)
        row.megabytes += len(feed.data) / 1e6
        started = time.perf_counter()
        for _ in range(repeat):
            parse_feed(feed.data, url=FEED_URL, content_type=feed.content_type)
        row.seconds += (time.perf_counter() - started) / repeat
    counted = [f.name for f in fields(Row) if f.name != "collection"]
    total = Row("all", **{name: sum(getattr(r, name) for r in rows.values()) for name in counted})
    return [*rows.values(), total]


def table(rows: list[Row]) -> str:
    lines = [
        "| collection | feeds | ok | errors | items | items/s | feeds/s | MB/s |",
        "|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    for row in rows:
        rates = row.rates()
        lines.append(
            f"| {row.collection} | {row.feeds} | {row.ok} | {row.errors} | {row.items}"
            f" | {rates['items_per_second']:,.0f} | {rates['feeds_per_second']:,.0f}"
            f" | {rates['megabytes_per_second']:.2f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--repeat", type=int, default=5, help="timed passes over the corpus")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the rows as JSON")
    args = parser.parse_args()
    if args.repeat < 1:
        parser.error("--repeat must be at least 1")
    feeds = load()
    if not feeds:
        sys.exit(f"no feeds under {FEEDS}; this benchmark needs the shared corpus")
    rows = measure(feeds, args.repeat)
    total = rows[-1]
    print(table(rows))
    print(
        f"\n{total.ok} feeds parsed OK, {total.errors} reported errors; {total.items} items;"
        f" mean of {args.repeat} timed passes"
    )
    if args.json:
        report = [{**asdict(row), **row.rates()} for row in rows]
        args.json.write_text(json.dumps({"repeat": args.repeat, "rows": report}, indent=2))


if __name__ == "__main__":
    main()
