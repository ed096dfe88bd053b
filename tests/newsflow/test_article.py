"""The article contract: URL canonicalization, deterministic ids, validation on both sides."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from newsflow.article import (
    SCHEMA_VERSION,
    Article,
    InvalidArticle,
    article_id,
    normalize_url,
)

FETCHED = datetime(2026, 11, 26, 10, 0, tzinfo=UTC)
STORY = "https://example.com/world/2026/nato-summit"


@pytest.mark.parametrize(
    ("url", "canonical"),
    [
        pytest.param(
            "https://example.com/a?utm_source=rss&utm_medium=feed&id=7&fbclid=x&gclid=y",
            "https://example.com/a?id=7",
            id="tracking-params-dropped",
        ),
        pytest.param(
            "https://example.com/a?UTM_Campaign=x&ref=home&ref_src=twsrc&_ga=1",
            "https://example.com/a",
            id="tracking-params-any-case-all-dropped",
        ),
        pytest.param("https://EXAMPLE.Com/Path", "https://example.com/Path", id="host-case-only"),
        pytest.param("https://www.example.com/a", "https://example.com/a", id="www-prefix"),
        pytest.param("https://example.com:443/a", "https://example.com/a", id="default-https-port"),
        pytest.param("http://example.com:80/a", "https://example.com/a", id="default-http-port"),
        pytest.param(
            "https://example.com:8443/a", "https://example.com:8443/a", id="other-port-kept"
        ),
        pytest.param("https://example.com/a#comments", "https://example.com/a", id="fragment"),
        pytest.param("https://example.com/a/", "https://example.com/a", id="trailing-slash"),
        pytest.param("https://example.com", "https://example.com/", id="empty-path-is-root"),
        pytest.param("http://example.com/a", "https://example.com/a", id="http-to-https"),
        pytest.param("https://example.com/a?b=2&a=1", "https://example.com/a?a=1&b=2", id="order"),
        pytest.param("https://example.com/a?b=&a=1", "https://example.com/a?a=1&b=", id="blank"),
        pytest.param("  https://example.com/a  ", "https://example.com/a", id="whitespace"),
    ],
)
def test_normalize_url(url: str, canonical: str) -> None:
    assert normalize_url(url) == canonical


@pytest.mark.parametrize(
    "url", ["ftp://example.com/a", "mailto:desk@example.com", "/relative/path", "https://"]
)
def test_normalize_url_rejects_non_http_urls(url: str) -> None:
    with pytest.raises(InvalidArticle, match="not an absolute http"):
        normalize_url(url)


def test_normalize_url_bad_port_is_invalid_article() -> None:
    with pytest.raises(InvalidArticle):
        normalize_url("https://example.com:99999/a")


def _id(url: str | None = None, *, source: str = "DN", title: str = "T", body: str = "B") -> str:
    return article_id(canonical_url=url, source=source, title=title, body=body)


def test_article_id_is_32_hex_chars_and_stable() -> None:
    first = _id(STORY)
    assert len(first) == 32
    assert set(first) <= set("0123456789abcdef")
    assert _id(STORY) == first


def test_url_variants_share_one_id() -> None:
    variants = [
        STORY,
        "http://www.EXAMPLE.com:80/world/2026/nato-summit/?utm_source=newsletter#top",
        "https://example.com:443/world/2026/nato-summit?fbclid=abc",
    ]
    assert len({_id(v, title=f"title {n}") for n, v in enumerate(variants)}) == 1


def test_url_id_ignores_content_but_not_the_path() -> None:
    assert _id(STORY, title="A", body="x") == _id(STORY, title="B", body="y")
    assert _id(STORY) != _id(STORY + "-live")
    assert _id("https://example.com/a?id=1") != _id("https://example.com/a?id=2")


def test_without_url_the_id_hashes_content() -> None:
    base = _id(None, source="DN", title="Summit in Vilnius", body="Leaders met.")
    # Normalized content (case, Unicode form, runs of whitespace) gives the same id ...
    assert _id(None, source="dn", title="  SUMMIT   in\nVilnius ", body="Leaders met.") == base
    assert _id("", source="DN", title="Summit in Vilnius", body="Leaders met.") == base
    # ... a different body, title or source does not.
    assert _id(None, source="DN", title="Summit in Vilnius", body="Leaders left.") != base
    assert _id(None, source="DN", title="Summit in Riga", body="Leaders met.") != base
    assert _id(None, source="AFP", title="Summit in Vilnius", body="Leaders met.") != base


def test_content_id_keeps_field_boundaries() -> None:
    assert _id(None, title="ab", body="c") != _id(None, title="a", body="bc")


def test_create_derives_the_id_and_strips_whitespace() -> None:
    article = Article.create(
        source=" DN ", title=" NATO summit ", body=" Leaders met. ", fetched_at=FETCHED
    )
    assert article.schema_version == SCHEMA_VERSION == 1
    assert (article.source, article.title, article.body) == ("DN", "NATO summit", "Leaders met.")
    assert article.id == _id(None, source="DN", title="NATO summit", body="Leaders met.")
    assert article.url is None
    assert article.metadata == {}


def test_create_prefers_canonical_url_for_the_id() -> None:
    article = Article.create(
        source="DN",
        title="T",
        body="",
        fetched_at=FETCHED,
        url="https://m.example.com/amp/story?utm_source=x",
        canonical_url=STORY,
    )
    assert article.id == _id(STORY)
    assert article.url == "https://m.example.com/amp/story?utm_source=x"  # kept as given


def test_json_round_trip() -> None:
    article = Article.create(
        source="DN",
        title="Zelensky expects “the best possible outcome”",
        body="Body with ü and 😀.",
        url=STORY,
        fetched_at=FETCHED,
        published_at=datetime(2026, 11, 25, 18, 30, tzinfo=timezone(timedelta(hours=1))),
        language_hint="en",
        metadata={"authors": ["A. Writer"], "section": "world"},
    )
    payload = article.to_json()
    assert isinstance(payload, bytes)
    wire = json.loads(payload)
    assert wire["id"] == article.id
    assert wire["published_at"] == "2026-11-25T18:30:00+01:00"
    assert "canonical_url" not in wire  # None fields are left out
    assert Article.from_json(payload) == article
    assert Article.from_json(payload.decode("utf-8")) == article


def _wire(**changes: object) -> str:
    good = json.loads(
        Article.create(source="DN", title="T", body="B", fetched_at=FETCHED).to_json()
    )
    good.update(changes)
    return json.dumps({k: v for k, v in good.items() if v is not None})


def test_from_json_accepts_the_unchanged_wire_form() -> None:
    assert Article.from_json(_wire()).title == "T"


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        pytest.param({"fetched_at": "2026-11-26T10:00:00"}, "fetched_at: .*timezone", id="naive"),
        pytest.param(
            {"published_at": "2026-11-26T10:00:00"}, "published_at: .*timezone", id="naive-pub"
        ),
        pytest.param({"id": "0" * 32}, "does not match", id="id-mismatch"),
        pytest.param({"id": "not-an-id"}, "^id: ", id="id-shape"),
        pytest.param({"url": "ftp://example.com/a"}, "url: .*not an absolute http", id="ftp-url"),
        pytest.param({"priority": "high"}, "priority: Extra inputs", id="unknown-field"),
        pytest.param({"schema_version": 2}, "schema_version: ", id="schema-v2"),
        pytest.param({"source": ""}, "source: ", id="empty-source"),
        pytest.param({"language_hint": "English"}, "language_hint: ", id="hint-not-a-code"),
    ],
)
def test_from_json_rejects(changes: dict[str, object], reason: str) -> None:
    with pytest.raises(InvalidArticle, match=reason):
        Article.from_json(_wire(**changes))


def test_from_json_rejects_a_missing_title_and_body() -> None:
    payload = json.dumps(
        {"id": _id(None, title="", body=""), "source": "DN", "fetched_at": "2026-11-26T10:00:00Z"}
    )
    with pytest.raises(InvalidArticle, match="needs a title or a body"):
        Article.from_json(payload)


@pytest.mark.parametrize("payload", [b"{not json", b"", b"[]", "null"])
def test_from_json_rejects_non_objects(payload: bytes | str) -> None:
    with pytest.raises(InvalidArticle):
        Article.from_json(payload)


@pytest.mark.parametrize(
    ("fields", "reason"),
    [
        pytest.param({"fetched_at": datetime(2026, 11, 26, 10, 0)}, "timezone", id="naive"),
        pytest.param({"title": " ", "body": "\n"}, "needs a title or a body", id="no-text"),
        pytest.param({"url": "ftp://example.com/a"}, "not an absolute http", id="ftp-url"),
        pytest.param({"url": "example.com/a"}, "not an absolute http", id="no-scheme"),
        pytest.param({"priority": "high"}, "priority: Extra inputs", id="unknown-field"),
        pytest.param({"title": "x" * 1001}, "title: ", id="title-too-long"),
    ],
)
def test_create_rejects(fields: dict[str, object], reason: str) -> None:
    arguments: dict[str, object] = {
        "source": "DN",
        "title": "T",
        "body": "B",
        "fetched_at": FETCHED,
        **fields,
    }
    with pytest.raises(InvalidArticle, match=reason):
        Article.create(**arguments)  # type: ignore[arg-type]


def test_articles_are_immutable() -> None:
    article = Article.create(source="DN", title="T", body="B", fetched_at=FETCHED)
    with pytest.raises(ValueError, match="frozen"):
        article.title = "changed"  # type: ignore[misc]


def test_normalize_url_keeps_ipv6_brackets() -> None:
    assert normalize_url("http://[::1]:8080/x") == "https://[::1]:8080/x"
