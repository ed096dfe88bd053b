"""Files connector: plain text, JSONL and JSON parsed into articles or located errors."""

from __future__ import annotations

import gzip
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest

from connectors.fetch import Fetcher, FetchPolicy
from connectors.files import (
    FilesConfig,
    FilesSource,
    RecordError,
    UnreadableInput,
    article_from_mapping,
    discover,
    parse_plain_text,
    read_articles,
)
from connectors.source import Item, ItemError, PollContext
from newsflow.article import Article, InvalidArticle, article_id
from tests.conftest import SAMPLES, SEED_ARTICLE, shared_path
from tests.connectors.memory_state import MemoryState

NOW = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)


def test_parse_plain_text_on_the_seed_article() -> None:
    title, body, source = parse_plain_text(shared_path(SEED_ARTICLE).read_text(encoding="utf-8"))
    assert title.startswith("Ukrainian President Volodymyr Zelensky")
    assert source == "DN"
    assert "Source:" not in body
    assert title not in body
    assert body.startswith("This summit comes just over a month after")
    assert body.endswith("since World War II (1939-1945).")
    assert len(body.split("\n\n")) == 13  # 15 lines: title, 13 paragraphs, source


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("Title\nFirst.\nSecond.\n", ("Title", "First.\n\nSecond.", None)),
        ("\n  Title  \n\n\n  First.  \n", ("Title", "First.", None)),
        ("Title\nBody\nsource :  Jornal do Tejo  ", ("Title", "Body", "Jornal do Tejo")),
        ("Title only\nSource: X", ("Title only", "", "X")),
        ("Source: X", ("", "", "X")),
        ("", ("", "", None)),
        ("Source: X\nTitle\nBody", ("Source: X", "Title\n\nBody", None)),  # only a last line
    ],
)
def test_parse_plain_text(text: str, expected: tuple[str, str, str | None]) -> None:
    assert parse_plain_text(text) == expected


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_read_articles_from_text(tmp_path: Path) -> None:
    path = write(tmp_path / "clip.txt", shared_path(SEED_ARTICLE).read_text(encoding="utf-8"))
    [article] = read_articles(path, now=NOW)
    assert isinstance(article, Article)
    assert article.source == "DN"
    assert article.title.startswith("Ukrainian President Volodymyr Zelensky")
    assert article.fetched_at == NOW
    assert article.url is None
    assert article.metadata == {"file": "clip.txt"}
    assert article.id == article_id(
        canonical_url=None, source="DN", title=article.title, body=article.body
    )


def test_text_without_source_line_uses_the_file_name(tmp_path: Path) -> None:
    [article] = read_articles(write(tmp_path / "desk-notes.txt", "Title\nBody\n"), now=NOW)
    assert isinstance(article, Article)
    assert article.source == "desk-notes"


def test_empty_text_file_is_a_record_error(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.txt", "\n\nSource: DN\n")
    [error] = read_articles(path, now=NOW)
    assert isinstance(error, RecordError)
    assert error.location == str(path)
    assert "needs a title or a body" in error.reason


def test_read_articles_from_jsonl_reports_bad_lines_and_keeps_the_rest(tmp_path: Path) -> None:
    path = write(
        tmp_path / "feed.jsonl",
        "\n".join(
            [
                json.dumps({"title": "First", "body": "One.", "source": "Wire"}),
                '{"title": "broken", ',
                "",
                json.dumps({"url": "https://example.com/x", "source": "Wire"}),
                json.dumps({"title": "Fourth", "url": "https://example.com/4"}),
                "   ",
                '["not", "an", "object"]',
            ]
        ),
    )
    records = list(read_articles(path, now=NOW))
    articles = [r for r in records if isinstance(r, Article)]
    errors = [r for r in records if isinstance(r, RecordError)]
    assert [a.title for a in articles] == ["First", "Fourth"]
    assert articles[0].source == "Wire"
    assert articles[1].source == "feed"  # default source: the file's stem
    assert articles[1].url == "https://example.com/4"
    assert [e.location for e in errors] == [f"{path}:2", f"{path}:4", f"{path}:7"]
    assert errors[0].reason.startswith("not valid JSON")
    assert "needs a title or a body" in errors[1].reason
    assert errors[2].reason == "expected a JSON object, got list"


def test_read_articles_from_a_json_object(tmp_path: Path) -> None:
    path = write(tmp_path / "one.json", json.dumps({"title": "Alone", "body": "Text."}))
    [article] = read_articles(path, now=NOW)
    assert isinstance(article, Article)
    assert (article.title, article.source) == ("Alone", "one")


def test_read_articles_from_a_json_list(tmp_path: Path) -> None:
    path = write(
        tmp_path / "many.json",
        json.dumps([{"title": "A"}, {"title": 5}, {"title": "C", "source": "S"}, 7]),
    )
    records = list(read_articles(path, now=NOW))
    assert [type(r).__name__ for r in records] == [
        "Article",
        "RecordError",
        "Article",
        "RecordError",
    ]
    assert records[1] == RecordError(f"{path}[1]", "title: must be a string, got int")
    assert records[3] == RecordError(f"{path}[3]", "expected a JSON object, got int")


def test_invalid_json_document_is_one_record_error(tmp_path: Path) -> None:
    path = write(tmp_path / "bad.json", "{oops")
    [error] = read_articles(path, now=NOW)
    assert isinstance(error, RecordError)
    assert error.location == str(path)
    assert error.reason.startswith("not valid JSON")


def test_undecodable_file_is_unreadable(tmp_path: Path) -> None:
    path = tmp_path / "latin1.txt"
    path.write_bytes("Título\nCorpo\n".encode("latin-1"))
    with pytest.raises(UnreadableInput, match=str(path)):
        list(read_articles(path, now=NOW))


@pytest.mark.parametrize(
    "record",
    [
        {"title": "T", "source": 123},
        {"title": "T", "url": 123},
        {"title": "T", "url": "https://example.com:99999/a"},
    ],
)
def test_one_bad_field_type_is_a_record_error(tmp_path: Path, record: dict[str, object]) -> None:
    path = write(
        tmp_path / "feed.jsonl",
        json.dumps(record) + "\n" + json.dumps({"title": "Good", "body": "B"}) + "\n",
    )
    records = list(read_articles(path, now=NOW))
    assert isinstance(records[0], RecordError)
    assert records[0].location == f"{path}:1"
    assert isinstance(records[1], Article)


def test_discover_recurses_into_directories(tmp_path: Path) -> None:
    top = write(tmp_path / "in" / "b.jsonl", "")
    nested = write(tmp_path / "in" / "deeper" / "a.TXT", "")
    also = write(tmp_path / "in" / "deeper" / "c.json", "")
    page = write(tmp_path / "in" / "deeper" / "page.htm", "")
    write(tmp_path / "in" / "notes.md", "")
    write(tmp_path / "in" / "deeper" / "image.png", "")
    single = write(tmp_path / "single.txt", "")
    assert discover([tmp_path / "in", single]) == [top, nested, also, page, single]


def test_discover_of_an_empty_directory(tmp_path: Path) -> None:
    assert discover([tmp_path]) == []


def test_discover_missing_path(tmp_path: Path) -> None:
    missing = tmp_path / "missing.jsonl"
    with pytest.raises(UnreadableInput, match="no such file or directory") as raised:
        discover([missing])
    assert str(missing) in str(raised.value)


def test_discover_unsupported_suffix(tmp_path: Path) -> None:
    path = write(tmp_path / "feed.xml", "<rss/>")
    with pytest.raises(UnreadableInput, match=r"unsupported file type; expected one of \.jsonl"):
        discover([path])


def test_article_from_mapping_maps_the_contract_and_keeps_extras() -> None:
    article = article_from_mapping(
        {
            "url": "https://example.com/a",
            "source": "Wire",
            "title": "T",
            "body": "B",
            "published_at": "2026-11-25T18:00:00+01:00",
            "language": "PT",
            "authors": ["A. Writer"],
            "section": "world",
        },
        default_source="file-stem",
        fetched_at=NOW,
    )
    assert article.language_hint == "pt"
    assert article.metadata == {"authors": ["A. Writer"], "section": "world"}
    assert article.source == "Wire"
    assert article.published_at is not None
    assert article.published_at.isoformat() == "2026-11-25T18:00:00+01:00"
    assert article.fetched_at == NOW


@pytest.mark.parametrize(
    ("record", "hint"),
    [
        ({"language_hint": "en", "language": "es", "lang": "pt"}, "en"),
        ({"language": "ES", "lang": "pt"}, "es"),
        ({"lang": "Pt"}, "pt"),
        ({"language": "", "lang": "de"}, "de"),
        ({}, None),
    ],
)
def test_article_from_mapping_language_hint(record: dict[str, str], hint: str | None) -> None:
    article = article_from_mapping({"title": "T", **record}, default_source="feed", fetched_at=NOW)
    assert article.language_hint == hint
    assert article.metadata == {}


@pytest.mark.parametrize(
    ("record", "reason"),
    [
        ({"title": ["T"]}, "title: must be a string, got list"),
        ({"title": "T", "body": 42}, "body: must be a string, got int"),
        ({"title": "T", "language": "english"}, "language_hint"),
        ({"title": "T", "published_at": "yesterday"}, "published_at"),
        ({"title": "T", "published_at": "2026-11-25T18:00:00"}, "timezone"),
    ],
)
def test_article_from_mapping_rejects(record: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidArticle, match=reason):
        article_from_mapping(record, default_source="feed", fetched_at=NOW)


@pytest.mark.parametrize("name", ["articles.jsonl", "lisbon-tram.txt", "madrid-metro.txt"])
def test_bundled_samples_parse(name: str) -> None:
    records = list(read_articles(SAMPLES / name, now=NOW))
    assert records
    assert [r for r in records if isinstance(r, RecordError)] == []


def test_bundled_samples_content() -> None:
    paths = discover([SAMPLES])
    assert [p.name for p in paths] == ["articles.jsonl", "lisbon-tram.txt", "madrid-metro.txt"]
    articles = [r for p in paths for r in read_articles(p, now=NOW)]
    assert all(isinstance(a, Article) for a in articles)
    assert len(articles) == 8
    assert len({a.id for a in articles if isinstance(a, Article)}) == 8
    hints = sorted(a.language_hint or "-" for a in articles if isinstance(a, Article))
    assert hints == ["-", "-", "en", "en", "es", "es", "pt", "pt"]
    sources = {a.source for a in articles if isinstance(a, Article)}
    assert {"Jornal do Tejo", "Crónica de Madrid", "The Continental Post"} <= sources


def test_html_page_uses_its_canonical_url(tmp_path: Path) -> None:
    path = tmp_path / "saved" / "standard.html"
    path.parent.mkdir()
    path.write_bytes(
        gzip.decompress(
            shared_path(
                "corpus/html/fundus/test_data/at/DerStandard_2024_05_03.html.gz"
            ).read_bytes()
        )
    )
    [article] = read_articles(path, now=NOW)
    assert isinstance(article, Article)
    assert article.canonical_url is not None
    assert article.canonical_url.startswith("https://www.derstandard.at/story/3000000218734/")
    assert article.source == "derstandard.at"
    assert article.title.startswith("Nach Kalifat-Rufen in Hamburg")
    assert article.metadata["file"] == "standard.html"


def test_html_page_without_canonical_has_no_url(tmp_path: Path) -> None:
    body = " ".join(f"Paragraph sentence {n} of the saved article." for n in range(30))
    path = write(
        tmp_path / "desk" / "a.htm",
        f"<html><head><title>T</title></head><body><p>{body}</p></body></html>",
    )
    [article] = read_articles(path, now=NOW)
    assert isinstance(article, Article)
    assert (article.url, article.canonical_url, article.source) == (None, None, "desk")


def test_html_without_text_is_a_record_error(tmp_path: Path) -> None:
    path = write(tmp_path / "empty.html", "<html><body><script>x()</script></body></html>")
    [error] = read_articles(path, now=NOW)
    assert error == RecordError(str(path), "no main text found")


def poll(source: FilesSource, state: MemoryState) -> list[Item | ItemError]:
    results = list(source.poll(PollContext(fetcher=Fetcher(FetchPolicy()), state=state)))
    state.commit([r.seen_key for r in results if isinstance(r, Item)], None)
    return results


def test_files_source_picks_up_new_and_appended_files_once(tmp_path: Path) -> None:
    inbox = tmp_path / "inbox"
    feed = write(inbox / "feed.jsonl", json.dumps({"title": "One", "body": "B"}) + "\n")
    config = FilesConfig(name="drop", type="files", paths=[str(inbox)], label="Desk")
    state = MemoryState()
    first = poll(FilesSource(config), state)
    assert [r.article.title for r in first if isinstance(r, Item)] == ["One"]
    assert first[0].article.source == "Desk"  # type: ignore[union-attr]

    with feed.open("a", encoding="utf-8") as stream:
        stream.write(json.dumps({"title": "Two", "body": "B"}) + "\n{broken\n")
    write(inbox / "clip.txt", "Three\nBody\n")
    source = FilesSource(config)  # a restart
    second = poll(source, state)
    assert sorted(r.article.title for r in second if isinstance(r, Item)) == ["Three", "Two"]
    assert [(e.kind, e.location) for e in second if isinstance(e, ItemError)] == [
        ("parse", f"{feed}:3")
    ]
    assert [r for r in poll(source, state) if isinstance(r, Item)] == []
    assert [r for r in poll(FilesSource(config), state) if isinstance(r, Item)] == []


def test_files_source_reports_missing_paths(tmp_path: Path) -> None:
    config = FilesConfig(name="drop", type="files", paths=[str(tmp_path / "nope")])
    [error] = poll(FilesSource(config), MemoryState())
    assert isinstance(error, ItemError)
    assert (error.kind, error.location) == ("unreadable", str(tmp_path / "nope"))
