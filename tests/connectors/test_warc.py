"""WARC source: real WARC files written with warcio, resumed from checkpoints without loss."""

from __future__ import annotations

import gzip
from datetime import UTC, datetime
from io import BytesIO
from pathlib import Path

import pytest
from warcio.statusandheaders import StatusAndHeaders
from warcio.warcwriter import WARCWriter

from connectors.fetch import Fetcher, FetchPolicy
from connectors.source import Item, ItemError, PollContext
from connectors.warc import WarcConfig, WarcSource, expand
from tests.conftest import shared_path
from tests.connectors.memory_state import MemoryState

FUNDUS = "corpus/html/fundus/test_data"
PAGES = [
    ("at/DerStandard_2024_05_03.html.gz", "https://www.derstandard.at/story/3000000218734/x"),
    ("es/ElPais_2024_10_15.html.gz", "https://elpais.com/internacional/2024-10-15/x.html"),
    ("fr/LeFigaro_2024_11_22.html.gz", "https://www.lefigaro.fr/x"),
    ("jp/AsahiShimbun_2025_01_13.html.gz", "https://www.asahi.com/articles/x.html"),
]


def response(
    writer: WARCWriter,
    url: str,
    body: bytes,
    *,
    status: str = "200 OK",
    content_type: str = "text/html; charset=utf-8",
    date: str = "2024-11-22T10:00:00Z",
) -> None:
    http = StatusAndHeaders(status, [("Content-Type", content_type)], protocol="HTTP/1.1")
    record = writer.create_warc_record(
        url,
        "response",
        payload=BytesIO(body),
        http_headers=http,
        warc_headers_dict={"WARC-Date": date},
    )
    writer.write_record(record)


def write_warc(path: Path, pages: list[tuple[str, str]], *, gzipped: bool) -> None:
    """Real pages, interleaved with what a crawl also holds: requests, a 404, an image, junk."""
    with path.open("wb") as stream:
        writer = WARCWriter(stream, gzip=gzipped)
        writer.write_record(writer.create_warcinfo_record(path.name, {"software": "test"}))
        for number, (name, url) in enumerate(pages):
            writer.write_record(
                writer.create_warc_record(
                    url, "request", payload=BytesIO(b"GET / HTTP/1.1\r\n\r\n")
                )
            )
            response(writer, url, gzip.decompress(shared_path(f"{FUNDUS}/{name}").read_bytes()))
            if number == 1:
                response(writer, url + "/missing", b"not found", status="404 Not Found")
                response(writer, url + "/logo.png", b"\x89PNG\r\n", content_type="image/png")
                response(writer, url + "/broken", b"\x00\x01\x02 binary junk \xff")


def context(state: MemoryState) -> PollContext:
    return PollContext(fetcher=Fetcher(FetchPolicy()), state=state)


def config(*paths: Path) -> WarcConfig:
    return WarcConfig(
        name="cc-news", type="warc", paths=[str(p) for p in paths], language_hint=None
    )


@pytest.mark.parametrize("gzipped", [True, False])
def test_records_become_articles_and_junk_is_counted(tmp_path: Path, gzipped: bool) -> None:
    path = tmp_path / ("a.warc.gz" if gzipped else "a.warc")
    write_warc(path, PAGES, gzipped=gzipped)
    source = WarcSource(config(path))
    results = list(source.poll(context(MemoryState())))
    items = [r for r in results if isinstance(r, Item)]
    errors = [r for r in results if isinstance(r, ItemError)]
    assert [i.article.url for i in items] == [url for _, url in PAGES]
    assert (
        items[0].article.title == "Nach Kalifat-Rufen in Hamburg: Sind wir zu sanft zu Islamisten?"
    )
    assert items[0].article.fetched_at == datetime(2024, 11, 22, 10, 0, tzinfo=UTC)
    assert items[0].article.source == "cc-news"
    assert items[0].article.metadata["warc_file"] == path.name
    assert all(i.seen_key.startswith("<urn:uuid:") for i in items)
    assert [(e.kind, e.location.startswith("<urn:uuid:")) for e in errors] == [("extract", True)]
    assert source.skipped == {"type warcinfo": 1, "type request": 4, "status 404": 1, "not HTML": 1}
    offsets = [i.checkpoint["offset"] for i in items if i.checkpoint]
    assert offsets == sorted(offsets) and offsets[-1] == path.stat().st_size


@pytest.mark.parametrize("gzipped", [True, False])
@pytest.mark.parametrize("consumed", [1, 2, 3])
def test_restart_from_a_checkpoint_loses_and_repeats_nothing(
    tmp_path: Path, gzipped: bool, consumed: int
) -> None:
    suffix = ".warc.gz" if gzipped else ".warc"
    first, second = tmp_path / f"2024-01{suffix}", tmp_path / f"2024-02{suffix}"
    write_warc(first, PAGES[:2], gzipped=gzipped)
    write_warc(second, PAGES[2:], gzipped=gzipped)
    pattern = tmp_path / f"*{suffix}"
    state = MemoryState()
    before = []
    for result in WarcSource(config(pattern)).poll(context(state)):
        if isinstance(result, Item):
            before.append(result)
            if len(before) == consumed:
                break  # the process dies here, after Kafka acknowledged these items
    state.commit([i.seen_key for i in before], before[-1].checkpoint)

    after = [r for r in WarcSource(config(pattern)).poll(context(state)) if isinstance(r, Item)]
    urls = [i.article.url for i in before + after]
    assert urls == [url for _, url in PAGES]
    state.commit([i.seen_key for i in after], after[-1].checkpoint)
    assert [
        r for r in WarcSource(config(pattern)).poll(context(state)) if isinstance(r, Item)
    ] == []


def test_an_unreadable_file_is_one_error_and_the_next_file_is_read(tmp_path: Path) -> None:
    bad, good = tmp_path / "a.warc", tmp_path / "b.warc.gz"
    bad.write_bytes(b"garbage\r\n\r\n")
    write_warc(good, PAGES[:1], gzipped=True)
    results = list(WarcSource(config(tmp_path / "*.warc*")).poll(context(MemoryState())))
    assert isinstance(results[0], ItemError) and results[0].kind == "parse"
    assert results[0].location == f"{bad}:0"
    assert [r.article.url for r in results if isinstance(r, Item)] == [PAGES[0][1]]


def test_oversized_record_is_reported(tmp_path: Path) -> None:
    path = tmp_path / "a.warc.gz"
    write_warc(path, PAGES[:1], gzipped=True)
    small = WarcConfig(name="cc", type="warc", paths=[str(path)], max_record_bytes=1000)
    [error] = [
        r for r in WarcSource(small).poll(context(MemoryState())) if isinstance(r, ItemError)
    ]
    assert error.kind == "too_large"


def test_expand_keeps_warc_files_in_sorted_order(tmp_path: Path) -> None:
    for name in ("b.warc.gz", "a.warc", "c.txt", "d.warc.gz.tmp"):
        (tmp_path / name).write_bytes(b"")
    assert [p.name for p in expand([str(tmp_path / "*"), str(tmp_path / "a.warc")])] == [
        "a.warc",
        "b.warc.gz",
    ]
