"""The HTTP API through FastAPI's TestClient, on the real Elasticsearch node and test documents."""

from __future__ import annotations

from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from newsflow.api import create_app
from newsflow.settings import Settings
from tests.newsflow.test_search_integration import BY_DATE, index_documents

pytestmark = pytest.mark.integration


@pytest.fixture
def api(isolated: Settings) -> Iterator[TestClient]:
    index_documents(isolated.elasticsearch)
    with TestClient(create_app(isolated)) as test_client:
        yield test_client


def ids(api: TestClient, query: str) -> list[str]:
    response = api.get(f"/search?{query}")
    assert response.status_code == 200, response.text
    return [hit["id"] for hit in response.json()["hits"]]


def test_search_text_in_english_and_in_the_original(api: TestClient) -> None:
    assert set(ids(api, "q=interest rates")) == {"en-ecb", "es-bce"}
    assert ids(api, "q=tipos de interés") == ["es-bce"]


def test_search_filters_as_repeated_query_parameters(api: TestClient) -> None:
    assert ids(api, "entity=PERSON:Jens Stoltenberg&entity=GPE:Spain") == ["es-otan"]
    assert ids(api, "source=DN&source=Reuters&sort=date") == ["en-nato", "en-ecb", "en-interview"]
    assert ids(api, "lang=es&lang=pt&sort=date") == ["es-otan", "pt-lisboa", "es-bce"]
    assert ids(api, "since=2026-06-05&until=2026-07-09&sort=date") == [
        "en-nato",
        "pt-lisboa",
        "es-bce",
    ]
    assert ids(api, "q=Vilnius&lang=es") == ["es-otan"]


def test_search_returns_total_facets_highlights_and_pages(api: TestClient) -> None:
    body = api.get("/search", params={"sort": "date", "size": 2, "from": 2}).json()
    assert body["total"] == 8
    assert [hit["id"] for hit in body["hits"]] == BY_DATE[2:4]
    assert body["facets"]["PERSON"][0] == ["Jens Stoltenberg", 3]
    assert body["facets"]["original PERSON"] == []  # none of these has original_entities
    assert dict(map(tuple, body["facets"]["language"])) == {"en": 4, "es": 2, "pt": 1, "de": 1}

    [hit] = api.get("/search", params={"q": "prudencia"}).json()["hits"]
    assert hit["highlights"]["body"] == ["Christine Lagarde pidió <em>prudencia</em> en Frankfurt."]
    assert (hit["title_en"], hit["translation"]) == ("The ECB keeps interest rates", "translated")


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("entity=Jens Stoltenberg", "must look like LABEL:NAME"),
        ("entity=PEOPLE:Jens", "unknown entity label 'PEOPLE'"),
        ("since=yesterday", "'yesterday' is not an ISO 8601"),
        ("since=2026-07-10&until=2026-07-01", "is after until"),
        ("from=9999&size=10", "from + size <= 10000"),
    ],
)
def test_bad_searches_are_422_with_the_reason(api: TestClient, query: str, message: str) -> None:
    response = api.get(f"/search?{query}")
    assert response.status_code == 422
    assert message in response.json()["detail"]


def test_out_of_range_parameters_are_422(api: TestClient) -> None:
    assert api.get("/search?sort=popularity").status_code == 422
    assert api.get("/search?size=5000").status_code == 422


def test_documents_are_returned_whole_or_404(api: TestClient) -> None:
    response = api.get("/documents/es-bce")
    assert response.status_code == 200
    document = response.json()
    assert document["id"] == "es-bce"
    assert document["body"] == "Christine Lagarde pidió prudencia en Frankfurt."
    assert document["body_en"] == "Christine Lagarde asked for prudence in Frankfurt."
    assert document["entities"]["GPE"] == ["Frankfurt", "Madrid"]

    missing = api.get("/documents/no-such-id")
    assert missing.status_code == 404
    assert "no-such-id" in missing.json()["detail"]


def test_health(api: TestClient, isolated: Settings) -> None:
    response = api.get("/health")
    assert response.status_code == 200
    report = response.json()
    assert report["ok"] and report["index_exists"]
    assert report["index"] == isolated.elasticsearch.index_alias


def test_without_an_index_health_is_503_and_searches_say_why(stack: Settings) -> None:
    settings = stack.namespaced("test-api-never-created")
    with TestClient(create_app(settings)) as test_client:
        health = test_client.get("/health")
        assert health.status_code == 503
        assert health.json()["reachable"] and not health.json()["index_exists"]
        search = test_client.get("/search?q=nato")
        assert search.status_code == 503
        assert "no index 'test-api-never-created'" in search.json()["detail"]


def test_openapi_lists_the_endpoints_and_parameters(api: TestClient) -> None:
    schema = api.get("/openapi.json").json()
    assert {"/search", "/documents/{doc_id}", "/health"} <= set(schema["paths"])
    parameters = {p["name"] for p in schema["paths"]["/search"]["get"]["parameters"]}
    expected = {"q", "entity", "source", "lang", "since", "until", "sort", "size", "from"}
    assert expected <= parameters
    assert api.get("/docs").status_code == 200
