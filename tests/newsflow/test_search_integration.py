"""Analyst search against the real Elasticsearch node, on eight hand-built documents.

The documents follow the strict mapping (``newsflow/news-index.json``) and are chosen
so that every filter selects a known, different set of ids.
"""

from __future__ import annotations

import json
from datetime import UTC, datetime
from typing import Any

import pytest

from newsflow.cli import main
from newsflow.index import ElasticsearchUnavailable, client, write_documents
from newsflow.search import SearchRequest, get_document, health, parse_when, search
from newsflow.settings import ElasticsearchSettings, Settings

pytestmark = pytest.mark.integration


def article(
    doc_id: str,
    *,
    source: str,
    language: str,
    title: str,
    body: str,
    fetched_at: str,
    published_at: str | None = None,
    title_en: str | None = None,
    body_en: str | None = None,
    status: str = "not_needed",
    **entities: list[str],
) -> dict[str, Any]:
    english = language == "en"
    document: dict[str, Any] = {
        "id": doc_id,
        "schema_version": 1,
        "url": f"https://news.example.com/{doc_id}",
        "source": source,
        "language": language,
        "title": title,
        "body": body,
        "title_en": title if english else title_en,
        "body_en": body if english else body_en,
        "fetched_at": fetched_at,
        "indexed_at": "2026-07-12T00:00:00Z",
        "translation": {"status": status},
        "entities": entities,
        "entity_details": [
            {"label": label, "name": name} for label, names in entities.items() for name in names
        ],
    }
    if published_at:
        document["published_at"] = published_at
    return {k: v for k, v in document.items() if v is not None}


DOCUMENTS = [
    article(
        "en-nato",
        source="DN",
        language="en",
        title="NATO summit opens in Vilnius",
        body="Jens Stoltenberg welcomed the leaders. Volodymyr Zelensky asked for membership.",
        published_at="2026-07-09T08:00:00Z",
        fetched_at="2026-07-09T09:00:00Z",
        PERSON=["Jens Stoltenberg", "Volodymyr Zelensky"],
        ORG=["NATO"],
        GPE=["Vilnius", "Lithuania"],
    ),
    article(
        "es-otan",
        source="El País",
        language="es",
        title="La cumbre de la OTAN arranca en Vilnius",
        body="Jens Stoltenberg recibió a Pedro Sánchez en la cumbre.",
        title_en="The NATO summit starts in Vilnius",
        body_en="Jens Stoltenberg received Pedro Sánchez at the summit.",
        status="translated",
        published_at="2026-07-10T12:00:00+02:00",
        fetched_at="2026-07-10T12:30:00Z",
        PERSON=["Jens Stoltenberg", "Pedro Sánchez"],
        ORG=["NATO"],
        GPE=["Vilnius", "Spain"],
    ),
    article(
        "en-ecb",
        source="Reuters",
        language="en",
        title="ECB holds interest rates steady",
        body="Christine Lagarde said inflation is close to target in Frankfurt.",
        published_at="2026-06-04T14:00:00Z",
        fetched_at="2026-06-04T14:05:00Z",
        PERSON=["Christine Lagarde"],
        ORG=["European Central Bank"],
        GPE=["Frankfurt"],
    ),
    article(
        "es-bce",
        source="Gaceta Económica",
        language="es",
        title="El BCE mantiene los tipos de interés",
        body="Christine Lagarde pidió prudencia en Frankfurt.",
        title_en="The ECB keeps interest rates",
        body_en="Christine Lagarde asked for prudence in Frankfurt.",
        status="translated",
        published_at="2026-06-05T10:00:00+02:00",
        fetched_at="2026-06-05T09:00:00Z",
        PERSON=["Christine Lagarde"],
        ORG=["European Central Bank"],
        GPE=["Frankfurt", "Madrid"],
    ),
    article(
        "pt-lisboa",
        source="Público",
        language="pt",
        title="Novo elétrico chega a Lisboa",
        body="A Carris apresentou o novo elétrico.",
        title_en="New tram arrives in Lisbon",
        body_en="Carris presented the new tram.",
        status="translated",
        published_at="2026-07-01T07:00:00Z",
        fetched_at="2026-07-12T07:10:00Z",  # a late backfill: its date is still July 1st
        ORG=["Carris"],
        GPE=["Lisbon"],
    ),
    article(
        "de-bahn",
        source="Tagesblatt",
        language="de",
        title="Streik bei der Bahn",
        body="Die Züge stehen still.",
        status="unsupported",
        published_at="2026-05-20T06:00:00Z",
        fetched_at="2026-05-20T06:30:00Z",
        ORG=["Deutsche Bahn"],
        GPE=["Germany"],
    ),
    # No published_at: dated by fetched_at, sorted after every dated article.
    article(
        "en-interview",
        source="DN",
        language="en",
        title="An interview with the NATO chief",
        body="Jens Stoltenberg spoke about the alliance and the summit.",
        fetched_at="2026-07-11T10:00:00Z",
        PERSON=["Jens Stoltenberg"],
        ORG=["NATO"],
    ),
    article(
        "en-storm",
        source="BBC",
        language="en",
        title="Winter storms hit Norway",
        body="Ferries were cancelled along the coast.",
        fetched_at="2026-01-02T10:00:00Z",
        GPE=["Norway"],
    ),
]
#: Every document, newest first (published_at, then the undated ones by fetched_at).
BY_DATE = [
    "es-otan",
    "en-nato",
    "pt-lisboa",
    "es-bce",
    "en-ecb",
    "de-bahn",
    "en-interview",
    "en-storm",
]


def index_documents(settings: ElasticsearchSettings) -> None:
    """Create the index behind the settings' alias and make the documents searchable."""
    es = client(settings)
    try:
        write_documents(es, settings, DOCUMENTS)
    finally:
        es.close()


@pytest.fixture
def indexed(isolated: Settings) -> ElasticsearchSettings:
    index_documents(isolated.elasticsearch)
    return isolated.elasticsearch


def ids(settings: ElasticsearchSettings, **request: Any) -> list[str]:
    result = search(settings, SearchRequest(sort="date", size=20, **request))
    assert result["total"] == len(result["hits"])
    return [hit["id"] for hit in result["hits"]]


# -- full text ----------------------------------------------------------------------------------


def test_english_words_find_english_and_translated_articles(indexed: ElasticsearchSettings) -> None:
    assert set(ids(indexed, text="interest rates")) == {"en-ecb", "es-bce"}
    assert set(ids(indexed, text="NATO summit")) == {"en-nato", "es-otan", "en-interview"}
    # English is stemmed too (Hunspell en_US): the plural finds the singular.
    assert set(ids(indexed, text="NATO summits")) == {"en-nato", "es-otan", "en-interview"}


def test_original_language_words_find_the_original(indexed: ElasticsearchSettings) -> None:
    assert ids(indexed, text="tipos de interés") == ["es-bce"]
    assert ids(indexed, text="elétrico") == ["pt-lisboa"]
    assert ids(indexed, text="Streik Bahn") == ["de-bahn"]  # untranslated: original only


def test_original_words_match_other_inflections_through_the_language_analyzer(
    indexed: ElasticsearchSettings,
) -> None:
    """The body says "Züge" and "cumbre"; Hunspell stems both forms of each to one term."""
    assert ids(indexed, text="Zug") == ["de-bahn"]
    assert ids(indexed, text="cumbres") == ["es-otan"]


def test_a_field_longer_than_the_highlighter_reads_does_not_break_searches(
    isolated: Settings,
) -> None:
    settings = isolated.elasticsearch
    long_body = "Harbour workers walked out. " + "Cargo waited on the quay. " * 45_000
    assert len(long_body) > 1_000_000
    document = article(
        "en-long",
        source="DN",
        language="en",
        title="Strike",
        body=long_body,
        fetched_at="2026-07-11T10:00:00Z",
    )
    es = client(settings)
    try:
        write_documents(es, settings, [document])
    finally:
        es.close()
    assert ids(settings, text="harbour workers") == ["en-long"]


def test_every_word_must_match_in_one_language_version(indexed: ElasticsearchSettings) -> None:
    assert ids(indexed, text="NATO Lagarde") == []
    # Words may be spread over title and body ...
    assert ids(indexed, text="Stoltenberg NATO") == ["es-otan", "en-nato", "en-interview"]
    # ... but not over the English and the original text.
    assert ids(indexed, text="cumbre summit") == []


def test_title_matches_rank_above_body_matches(indexed: ElasticsearchSettings) -> None:
    ranked = [hit["id"] for hit in search(indexed, SearchRequest(text="summit"))["hits"]]
    assert sorted(ranked) == ["en-interview", "en-nato", "es-otan"]
    assert ranked[-1] == "en-interview"  # "summit" only in its body


def test_hits_carry_highlights_english_title_and_translation_status(
    indexed: ElasticsearchSettings,
) -> None:
    [hit] = search(indexed, SearchRequest(text="prudencia"))["hits"]
    assert hit["id"] == "es-bce"
    assert hit["highlights"]["body"] == ["Christine Lagarde pidió <em>prudencia</em> en Frankfurt."]
    assert hit["title_en"] == "The ECB keeps interest rates"
    assert hit["translation"] == "translated"

    [english] = search(indexed, SearchRequest(text="prudence"))["hits"]
    assert english["highlights"]["body_en"] == [
        "Christine Lagarde asked for <em>prudence</em> in Frankfurt."
    ]
    assert "body" not in english["highlights"]


def test_the_bare_string_shorthand_returns_hits(indexed: ElasticsearchSettings) -> None:
    hits = search(indexed, "Lagarde")
    assert {hit["id"] for hit in hits} == {"en-ecb", "es-bce"}


# -- filters ------------------------------------------------------------------------------------


def test_entity_filters_match_exactly_ignoring_case_and_all_must_hold(
    indexed: ElasticsearchSettings,
) -> None:
    stoltenberg = ["es-otan", "en-nato", "en-interview"]
    assert ids(indexed, entities=("PERSON:Jens Stoltenberg",)) == stoltenberg
    assert ids(indexed, entities=("person:jens stoltenberg",)) == stoltenberg
    assert ids(indexed, entities=("PERSON:Stoltenberg",)) == []  # a keyword, not a phrase
    assert ids(indexed, entities=("PERSON:Jens Stoltenberg", "GPE:Spain")) == ["es-otan"]
    assert ids(indexed, entities=("ORG:European Central Bank",)) == ["es-bce", "en-ecb"]


#: The English pass over "Poutine put in entredicho, Trump minimises" finds no person; a French
#: model on the original finds both (nlp.source_models). Indexed only by the tests that need it.
LE_MONDE = {
    **article(
        "fr-piratage",
        source="Le Monde",
        language="fr",
        title="Piratage imputé à la Russie : Poutine mis en cause, Trump minimise",
        body="Le rapport des agences de renseignement affirme que le président russe a influencé.",
        title_en="Piratage imputed to Russia : Poutine put in entredicho, Trump minimises",
        body_en="The report of the agencies of information affirms that the Russian president...",
        status="translated",
        fetched_at="2017-01-07T10:00:00Z",
        ORG=["Trump"],
    ),
    "original_entities": {"PERSON": ["Poutine", "Trump"], "LOC": ["Russie"]},
}


def test_an_entity_filter_and_facets_also_show_names_only_the_original_language_model_saw(
    indexed: ElasticsearchSettings,
) -> None:
    es = client(indexed)
    try:
        write_documents(es, indexed, [LE_MONDE])
    finally:
        es.close()
    assert ids(indexed, entities=("PERSON:Poutine",)) == ["fr-piratage"]
    assert ids(indexed, entities=("ORG:Trump",)) == ["fr-piratage"]  # the English reading
    assert ids(indexed, entities=("PERSON:Jens Stoltenberg",)) == [
        "es-otan",
        "en-nato",
        "en-interview",
    ]
    # The facets show the name the English pass missed, apart from the English entities.
    facets = search(indexed, SearchRequest(size=0))["facets"]
    assert facets["original PERSON"] == [("Poutine", 1), ("Trump", 1)]
    assert "Poutine" not in dict(facets["PERSON"])
    assert facets["original GPE"] == [] and facets["original ORG"] == []
    # Within the filtered matches only, like every facet.
    english = search(indexed, SearchRequest(languages=("en",), size=0))["facets"]
    assert english["original PERSON"] == []


def test_source_filter_any_of(indexed: ElasticsearchSettings) -> None:
    assert ids(indexed, sources=("DN",)) == ["en-nato", "en-interview"]
    assert ids(indexed, sources=("DN", "Reuters")) == ["en-nato", "en-ecb", "en-interview"]
    assert ids(indexed, sources=("El País",)) == ["es-otan"]


def test_language_filter_any_of(indexed: ElasticsearchSettings) -> None:
    assert ids(indexed, languages=("es",)) == ["es-otan", "es-bce"]
    assert ids(indexed, languages=("PT", "de")) == ["pt-lisboa", "de-bahn"]


def test_date_filters_use_published_at_or_else_fetched_at(indexed: ElasticsearchSettings) -> None:
    since = parse_when("2026-07-01")
    assert ids(indexed, since=since) == ["es-otan", "en-nato", "pt-lisboa", "en-interview"]
    assert ids(indexed, since=parse_when("2026-07-11")) == ["en-interview"]
    until = parse_when("2026-06-05", end_of_day=True)  # the whole 5th
    assert ids(indexed, until=until) == ["es-bce", "en-ecb", "de-bahn", "en-storm"]
    window = {"since": parse_when("2026-06-05"), "until": parse_when("2026-07-09", end_of_day=True)}
    assert ids(indexed, **window) == ["en-nato", "pt-lisboa", "es-bce"]
    # es-otan was published 2026-07-10T12:00+02:00, i.e. 10:00 UTC.
    exact = datetime(2026, 7, 10, 10, 0, tzinfo=UTC)
    assert ids(indexed, since=exact, until=exact) == ["es-otan"]


def test_filters_combine_with_text(indexed: ElasticsearchSettings) -> None:
    assert ids(indexed, text="Vilnius", languages=("es",)) == ["es-otan"]
    assert ids(indexed, text="Lagarde", sources=("Reuters",)) == ["en-ecb"]


# -- facets, sort, paging -------------------------------------------------------------------------


def test_facets_count_what_was_indexed(indexed: ElasticsearchSettings) -> None:
    facets = search(indexed, SearchRequest(size=0))["facets"]
    assert facets["PERSON"] == [
        ("Jens Stoltenberg", 3),
        ("Christine Lagarde", 2),
        ("Pedro Sánchez", 1),
        ("Volodymyr Zelensky", 1),
    ]
    assert facets["ORG"][:2] == [("NATO", 3), ("European Central Bank", 2)]
    assert dict(facets["GPE"]) == {
        "Frankfurt": 2,
        "Vilnius": 2,
        "Germany": 1,
        "Lisbon": 1,
        "Lithuania": 1,
        "Madrid": 1,
        "Norway": 1,
        "Spain": 1,
    }
    assert dict(facets["language"]) == {"en": 4, "es": 2, "pt": 1, "de": 1}
    assert facets["source"][0] == ("DN", 2) and sum(n for _, n in facets["source"]) == 8
    # No document here has original-language entities: those facets are empty.
    assert [facets[f"original {label}"] for label in ("PERSON", "ORG", "GPE")] == [[], [], []]


def test_facets_cover_the_filtered_matches_only(indexed: ElasticsearchSettings) -> None:
    result = search(indexed, SearchRequest(languages=("es",), size=1, facet_size=1))
    assert result["total"] == 2 and len(result["hits"]) == 1
    assert result["facets"]["language"] == [("es", 2)]
    assert result["facets"]["PERSON"] == [("Christine Lagarde", 1)]  # size 1; ties by name
    assert result["facets"]["source"] == [("El País", 1)]


def test_date_sort_is_newest_first_with_undated_articles_last(
    indexed: ElasticsearchSettings,
) -> None:
    assert ids(indexed) == BY_DATE
    # Without words every score is equal, so relevance order is date order too.
    relevance = search(indexed, SearchRequest(size=20))["hits"]
    assert [hit["id"] for hit in relevance] == BY_DATE


def test_paging(indexed: ElasticsearchSettings) -> None:
    page = search(indexed, SearchRequest(sort="date", size=3, from_=3))
    assert page["total"] == 8
    assert [hit["id"] for hit in page["hits"]] == BY_DATE[3:6]


# -- documents, health, errors --------------------------------------------------------------------


def test_get_document_returns_everything_stored(indexed: ElasticsearchSettings) -> None:
    document = get_document(indexed, "es-bce")
    assert document is not None
    assert document["body"] == "Christine Lagarde pidió prudencia en Frankfurt."
    assert document["body_en"] == "Christine Lagarde asked for prudence in Frankfurt."
    assert document["entity_details"][0] == {"label": "PERSON", "name": "Christine Lagarde"}
    assert get_document(indexed, "no-such-id") is None


def test_health(indexed: ElasticsearchSettings) -> None:
    report = health(indexed)
    assert report["ok"] and report["reachable"] and report["index_exists"]
    assert report["cluster_status"] in {"green", "yellow"}
    assert report["error"] is None


def test_without_an_index_searches_say_what_to_do(isolated: Settings) -> None:
    with pytest.raises(ElasticsearchUnavailable, match=r"no index 'test-.*pipeline run"):
        search(isolated.elasticsearch, SearchRequest(text="nato"))
    with pytest.raises(ElasticsearchUnavailable, match="no index"):
        get_document(isolated.elasticsearch, "en-nato")
    report = health(isolated.elasticsearch)
    assert report["reachable"] and not report["ok"] and not report["index_exists"]
    assert "no index yet" in report["error"]


def test_an_unreachable_cluster_says_how_to_start_it() -> None:
    settings = ElasticsearchSettings(url="http://127.0.0.1:9", request_timeout_seconds=2)
    with pytest.raises(ElasticsearchUnavailable, match=r"127\.0\.0\.1:9 is unreachable.*stack up"):
        search(settings, SearchRequest(text="nato"))
    report = health(settings)
    assert not report["ok"] and not report["reachable"] and report["error"]


# -- the command line ---------------------------------------------------------------------------


def test_cli_search_with_filters_as_json_and_text(
    indexed: ElasticsearchSettings,
    monkeypatch: pytest.MonkeyPatch,
    capsys: pytest.CaptureFixture[str],
) -> None:
    monkeypatch.setenv("NEWSFLOW_ELASTICSEARCH__INDEX_ALIAS", indexed.index_alias)
    argv = ["search", "--entity", "PERSON:Jens Stoltenberg", "--lang", "en", "--sort", "date"]
    assert main([*argv, "--json"]) == 0
    hits = json.loads(capsys.readouterr().out)
    assert [hit["id"] for hit in hits] == ["en-nato", "en-interview"]
    assert hits[0]["entities"]["PERSON"] == ["Jens Stoltenberg", "Volodymyr Zelensky"]

    assert main(["search", "summit", "--since", "2026-07-10", "--lang", "es"]) == 0
    text = capsys.readouterr().out
    assert text.startswith("1 matching article\n\n 1. La cumbre de la OTAN arranca en Vilnius\n")
    assert "    en: The NATO summit starts in Vilnius\n" in text
    assert "    > Jens Stoltenberg received Pedro Sánchez at the *summit*." in text
    assert text.rstrip().endswith("  language: es (1)")
