"""Safe XML: entity tricks are refused fast and in bounded memory; real feeds are not."""

from __future__ import annotations

import tracemalloc

import pytest

from connectors.safe_xml import UnsafeXml, check_xml, parse_xml
from tests.conftest import shared_files, shared_path
from tests.connectors.conftest import LocalSite

FEEDS = "corpus/feeds"


def billion_laughs(levels: int = 10) -> bytes:
    """The classic: each entity expands to ten of the previous one, 10**levels "lol"s."""
    entities = ['<!ENTITY lol0 "lol">'] + [
        f'<!ENTITY lol{i} "{f"&lol{i - 1};" * 10}">' for i in range(1, levels)
    ]
    return (
        f'<?xml version="1.0"?><!DOCTYPE lolz [{"".join(entities)}]><lolz>&lol{levels - 1};</lolz>'
    ).encode()


UNSAFE = {
    "billion laughs": billion_laughs(),
    "quadratic blowup": (
        b'<!DOCTYPE r [<!ENTITY a "' + b"x" * 50_000 + b'">]><r>' + b"&a;" * 50_000 + b"</r>"
    ),
    "external entity": b'<!DOCTYPE r [<!ENTITY xxe SYSTEM "file:///etc/passwd">]><r>&xxe;</r>',
    "parameter entity": (
        b'<!DOCTYPE r [<!ENTITY % ext SYSTEM "http://127.0.0.1:9/evil.dtd"> %ext;]><r/>'
    ),
    "unparsed entity": (
        b'<!DOCTYPE r [<!NOTATION gif SYSTEM "image/gif">'
        b'<!ENTITY pic SYSTEM "file:///etc/passwd" NDATA gif>]><r/>'
    ),
    "utf-16 billion laughs": billion_laughs().decode().encode("utf-16"),
    # expat cannot read UTF-32 or Big5: the fallback byte search must still catch these.
    "utf-32 entity": '<!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>'.encode("utf-32"),
    "big5 entity": (
        b'<?xml version="1.0" encoding="big5"?><!DOCTYPE r [<!ENTITY a "b">]><r>&a;</r>'
    ),
}


@pytest.mark.timeout(10)
@pytest.mark.parametrize("document", UNSAFE.values(), ids=UNSAFE.keys())
def test_entity_tricks_are_refused_in_bounded_memory(document: bytes) -> None:
    tracemalloc.start()
    try:
        with pytest.raises(UnsafeXml, match="entity"):
            check_xml(document)
        with pytest.raises(UnsafeXml):
            parse_xml(document)
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    assert peak < 4 * len(document) + 1_000_000


def test_the_refusal_names_the_entity_and_never_its_content() -> None:
    with pytest.raises(UnsafeXml) as refused:
        check_xml(UNSAFE["external entity"])
    assert "xxe" in str(refused.value)
    assert "file:///etc/passwd" in str(refused.value)
    assert "root:" not in str(refused.value)


def test_a_doctype_naming_an_external_dtd_is_accepted_and_never_fetched(
    local_site: LocalSite,
) -> None:
    dtd_url = local_site.url("/evil.dtd")
    document = f'<!DOCTYPE rss SYSTEM "{dtd_url}"><rss version="0.91"><channel/></rss>'.encode()
    check_xml(document)
    assert parse_xml(document).tag == "rss"
    assert local_site.requests == []


def test_rss_091_netscape_doctype_is_accepted() -> None:
    netscape = "feedparser-tests/tests/wellformed/rss/rss_version_091_netscape.xml"
    document = shared_path(f"{FEEDS}/{netscape}").read_bytes()
    check_xml(document)
    assert parse_xml(document).get("version") == "0.91"


def _xml_corpus() -> list[str]:
    return shared_files(
        FEEDS,
        lambda root: (
            p
            for p in root.rglob("*")
            if p.is_file() and p.suffix in (".xml", ".rss", ".atom") and p.stat().st_size
        ),
    )


@pytest.mark.parametrize("relative", _xml_corpus())
def test_corpus_feeds_are_refused_only_when_they_declare_entities(relative: str) -> None:
    """Legacy encodings, UTF-16/32, BOMs, ill-formed and gzipped bodies all pass the check."""
    document = shared_path(f"{FEEDS}/{relative}").read_bytes()
    if b"<!ENTITY" in document:
        with pytest.raises(UnsafeXml):
            check_xml(document)
    else:
        check_xml(document)


def test_the_corpus_has_legacy_and_wide_encodings_and_two_entity_declarations() -> None:
    """Guards the test above against a corpus that no longer exercises what it should."""
    documents = [shared_path(f"{FEEDS}/{relative}").read_bytes() for relative in _xml_corpus()]
    assert sum(b"<!ENTITY" in d for d in documents) == 2
    assert sum(d.startswith(b"\xff\xfe\x00\x00") for d in documents) >= 1  # UTF-32 LE BOM
    assert sum(b'encoding="big5"' in d.lower() for d in documents) >= 1


@pytest.mark.parametrize(
    "document",
    [b"", b"not xml at all", b'{"version": "https://jsonfeed.org/version/1"}', b"<rss><item>"],
    ids=["empty", "text", "json", "truncated"],
)
def test_the_check_is_about_entities_not_well_formedness(document: bytes) -> None:
    check_xml(document)
    with pytest.raises(ValueError, match="not well-formed") as malformed:
        parse_xml(document)
    assert not isinstance(malformed.value, UnsafeXml)


def test_parse_xml_reads_declared_encodings() -> None:
    document = '<?xml version="1.0" encoding="iso-8859-1"?><t>Einsätze</t>'.encode("latin-1")
    assert parse_xml(document).text == "Einsätze"
    assert parse_xml("<t>Новости</t>".encode("utf-16")).text == "Новости"


@pytest.mark.parametrize("encoding", ["big5", "bogus", "rot13"])
def test_parse_xml_explains_encodings_it_cannot_read(encoding: str) -> None:
    with pytest.raises(ValueError, match="unreadable XML") as unreadable:
        parse_xml(f'<?xml version="1.0" encoding="{encoding}"?><r/>'.encode())
    assert not isinstance(unreadable.value, UnsafeXml)
