"""The search page end to end: real Elasticsearch, the real app under uvicorn, Debian's Chromium.

The hand-built documents of the search tests, plus one whose title, body, source, entity and URL
carry markup and script. The page must show that markup as text: the DOM is checked directly
(no injected script, img or on* attribute, no javascript: link), so the test does not lean on the
Content-Security-Policy header, which would also stop a dialog on its own.

With NEWSFLOW_UPDATE_SCREENSHOT=1 it also regenerates ``docs/search-page.png``.
"""

from __future__ import annotations

import os
import re
import socket
import threading
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any
from urllib.parse import parse_qs, urlsplit

import pytest
import uvicorn
from fastapi import FastAPI
from playwright.sync_api import Browser, Page, expect, sync_playwright

from newsflow.api import create_app
from newsflow.index import client, write_documents
from newsflow.settings import ElasticsearchSettings, Settings
from tests.newsflow.test_search_integration import DOCUMENTS, LE_MONDE, article

pytestmark = pytest.mark.integration

#: The picture in docs/ is refreshed on request only, so running the tests leaves the tree clean.
SCREENSHOT = Path(__file__).resolve().parents[2] / "docs" / "search-page.png"
UPDATE_SCREENSHOT = os.environ.get("NEWSFLOW_UPDATE_SCREENSHOT") == "1"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--no-first-run",
    "--disable-sync",
    "--disable-quic",
]

#: Markup the sanitizer would never leave (an old or foreign document), a fake highlight marker
#: and an entity: only Elasticsearch's own <em> may become an element, the rest shows as typed.
XSS_TITLE = (
    "<script>alert('title')</script><img src=x onerror=alert('img')> Hurricane warning"
    " <em>fake</em> &lt;b&gt;"
)
XSS_BODY = "Hurricane <b onmouseover=alert('b')>season</b> & <script>alert('body')</script>"
XSS_SOURCE = "<i>Mallory</i> Times"
XSS_PERSON = "<img src=x onerror=alert('person')>"
XSS = {
    **article(
        "xss",
        source=XSS_SOURCE,
        language="en",
        title=XSS_TITLE,
        body=XSS_BODY,
        published_at="2026-01-15T08:00:00Z",
        fetched_at="2026-01-15T08:05:00Z",
        PERSON=[XSS_PERSON],
    ),
    "url": "javascript:alert('url')",
}
ALL_IDS = {d["id"] for d in DOCUMENTS} | {"xss"}
#: What a search for "summit" finds (in English or in the translation), with the titles shown.
SUMMIT = {
    "en-nato": "NATO summit opens in Vilnius",
    "en-interview": "An interview with the NATO chief",
    "es-otan": "The NATO summit starts in Vilnius",
}


def index_documents(settings: ElasticsearchSettings, documents: list[dict[str, Any]]) -> None:
    es = client(settings)
    try:
        write_documents(es, settings, documents)
    finally:
        es.close()


@contextmanager
def serving(app: FastAPI) -> Iterator[str]:
    """The app under uvicorn in a thread, on a socket bound here (a free port, no race)."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    url = f"http://127.0.0.1:{sock.getsockname()[1]}"
    server = uvicorn.Server(uvicorn.Config(app, log_level="warning"))
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + 15
        while not server.started:
            assert thread.is_alive(), "uvicorn stopped while starting"
            assert time.monotonic() < deadline, "uvicorn did not start within 15 s"
            time.sleep(0.02)
        with urllib.request.urlopen(f"{url}/health", timeout=5) as response:
            assert response.status == 200
        yield url
    finally:
        server.should_exit = True
        thread.join(timeout=10)
        sock.close()


@pytest.fixture
def site(isolated: Settings) -> Iterator[str]:
    index_documents(isolated.elasticsearch, [*DOCUMENTS, XSS])
    with serving(create_app(isolated)) as url:
        yield url


@pytest.fixture
def browser() -> Iterator[Browser]:
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        try:
            yield browser
        finally:
            browser.close()


class Watched:
    """Pages that record every dialog, uncaught error and console error (CSP violations too)."""

    def __init__(self, browser: Browser) -> None:
        self.browser = browser
        self.dialogs: list[str] = []
        self.errors: list[str] = []
        #: Chromium logs every 4xx fetch; a test that provokes one on purpose allows it here.
        self.allowed: list[str] = []

    def page(self) -> Page:
        page = self.browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(5_000)

        def on_dialog(dialog: Any) -> None:
            self.dialogs.append(dialog.message)
            dialog.dismiss()

        page.on("dialog", on_dialog)
        page.on("pageerror", lambda error: self.errors.append(str(error)))
        page.on("console", self._console)
        return page

    def _console(self, message: Any) -> None:
        if message.type == "error" and not any(a in message.text for a in self.allowed):
            self.errors.append(message.text)

    def assert_quiet(self) -> None:
        assert self.dialogs == [], f"a dialog fired: {self.dialogs}"
        assert self.errors == [], f"errors in the page: {self.errors}"


@pytest.fixture
def watched(browser: Browser) -> Iterator[Watched]:
    watched = Watched(browser)
    yield watched
    watched.assert_quiet()


def shown(page: Page) -> list[str]:
    """Ids of the results on screen, once the latest search has been rendered."""
    expect(page.locator("#results")).to_have_attribute("aria-busy", "false")
    return page.locator("#results .hit").evaluate_all("hits => hits.map(h => h.dataset.id)")


def query_of(page: Page) -> dict[str, list[str]]:
    return parse_qs(urlsplit(page.url).query)


def test_search_filter_share_go_back_and_expand(
    site: str, watched: Watched, tmp_path: Path
) -> None:
    page = watched.page()
    page.goto(f"{site}/")
    assert set(shown(page)) == ALL_IDS
    expect(page.locator("#status")).to_have_text(f"{len(ALL_IDS)} articles")

    page.locator("#q").fill("summit")
    page.locator("#q").press("Enter")
    assert set(shown(page)) == set(SUMMIT)  # ranked by relevance: the order is Elasticsearch's
    for doc_id, title in SUMMIT.items():
        expect(page.locator(f'.hit[data-id="{doc_id}"] h2')).to_contain_text(title)
    assert query_of(page) == {"q": ["summit"]}
    expect(page.locator('.hit[data-id="en-nato"] h2 em')).to_have_text("summit")
    expect(page.locator('.hit[data-id="en-interview"] .snippets em')).to_have_text("summit")
    # A translated title: the original and the English side by side, the match highlighted.
    expect(page.locator('.hit[data-id="es-otan"] h2 .side')).to_contain_text(
        ["La cumbre de la OTAN arranca en Vilnius", "The NATO summit starts in Vilnius"]
    )
    expect(page.locator('.hit[data-id="es-otan"] .meta')).to_contain_text(
        "El País · 2026-07-10 · Spanish · translated"
    )

    page.locator('#facets [data-facet="PERSON"][data-value="Pedro Sánchez"]').click()
    assert shown(page) == ["es-otan"]
    assert query_of(page) == {"q": ["summit"], "entity": ["PERSON:Pedro Sánchez"]}
    expect(page.locator("#chips .chip span")).to_have_text(["Person: Pedro Sánchez"])

    # The URL is the search: a new page opened on it shows the same filtered list.
    shared = watched.page()
    shared.goto(page.url)
    assert shown(shared) == ["es-otan"]
    expect(shared.locator("#q")).to_have_value("summit")
    expect(shared.locator('[data-value="Pedro Sánchez"]')).to_have_attribute("aria-pressed", "true")
    shared.close()

    page.get_by_role("button", name="Remove Person: Pedro Sánchez").click()
    assert set(shown(page)) == set(SUMMIT)
    assert query_of(page) == {"q": ["summit"]}
    page.go_back()
    assert shown(page) == ["es-otan"]
    expect(page.locator("#chips .chip")).to_have_count(1)
    page.go_forward()
    assert set(shown(page)) == set(SUMMIT)

    # Filters from the form: sort and a facet that keeps all three (for the screenshot's chip).
    page.locator("#sort").select_option("date")
    assert shown(page) == ["es-otan", "en-nato", "en-interview"]
    page.locator('#facets [data-facet="PERSON"][data-value="Jens Stoltenberg"]').click()
    assert shown(page) == ["es-otan", "en-nato", "en-interview"]
    assert query_of(page) == {
        "q": ["summit"],
        "entity": ["PERSON:Jens Stoltenberg"],
        "sort": ["date"],
    }

    # The whole article inline: original and English side by side.
    hit = page.locator('.hit[data-id="es-otan"]')
    hit.get_by_role("link", name="Full article").click()
    columns = hit.locator(".document .columns .side")
    expect(columns).to_have_count(2)
    expect(columns.nth(0)).to_contain_text("Jens Stoltenberg recibió a Pedro Sánchez en la cumbre.")
    expect(columns.nth(1)).to_contain_text("Jens Stoltenberg received Pedro Sánchez at the summit.")
    expect(hit.get_by_role("link", name="Read at the source ↗")).to_have_attribute(
        "href", "https://news.example.com/es-otan"
    )
    page.mouse.move(0, 0)  # no hover effect in the picture
    shot = SCREENSHOT if UPDATE_SCREENSHOT else tmp_path / "search-page.png"
    page.screenshot(path=shot)
    assert shot.stat().st_size > 10_000


def test_stored_markup_is_shown_as_text(site: str, watched: Watched) -> None:
    page = watched.page()
    response = page.goto(f"{site}/?q=Hurricane")
    assert response is not None
    assert "script-src 'self'" in response.headers["content-security-policy"]
    assert shown(page) == ["xss"]

    hit = page.locator('.hit[data-id="xss"]')
    expect(hit.locator("h2")).to_have_text(XSS_TITLE)
    expect(hit.locator("h2 em")).to_have_text("Hurricane")  # highlights still work
    expect(hit.locator("h2 em")).to_have_count(1)  # and the stored "<em>" is not one
    expect(hit.locator(".snippets")).to_contain_text("<b onmouseover=alert('b')>season</b>")
    expect(hit.locator(".meta .source")).to_have_text(XSS_SOURCE)
    expect(page.locator('#facets [data-facet="PERSON"] .name')).to_have_text(XSS_PERSON)
    expect(page.locator('#facets [data-facet="source"] .name')).to_have_text(XSS_SOURCE)
    hit.get_by_role("link", name="Full article").click()
    expect(hit.locator(".document h4")).to_have_text(XSS_TITLE)
    expect(hit.locator(".document .side")).to_contain_text(XSS_BODY)
    # A javascript: URL is not offered as a link at all.
    expect(hit.locator(".document .provenance")).to_be_visible()
    assert hit.locator(".document a").count() == 0

    page.wait_for_timeout(200)  # time for any injected handler to have fired
    markup = page.evaluate(
        """() => ({
            scripts: [...document.scripts].map(s => s.getAttribute('src')),
            injected: document.querySelectorAll('main :is(img, i, b), aside :is(img, i)').length,
            handlers: [...document.querySelectorAll('*')].flatMap(
                el => [...el.attributes].filter(a => a.name.startsWith('on')).map(a => a.name)),
            scriptLinks: [...document.links].filter(a => /^\\s*javascript:/i.test(a.href)).length,
        })"""
    )
    assert markup == {"scripts": ["static/app.js"], "injected": 0, "handlers": [], "scriptLinks": 0}
    watched.assert_quiet()


def test_form_filters_empty_and_error_states(site: str, watched: Watched) -> None:
    page = watched.page()
    page.goto(f"{site}/?sort=date")
    assert len(shown(page)) == len(ALL_IDS)
    page.locator("#since").fill("2026-06-05")
    page.locator("#until").fill("2026-07-09")
    assert shown(page) == ["en-nato", "pt-lisboa", "es-bce"]
    page.locator("#lang").fill("pt")
    page.locator("#lang").press("Enter")
    assert shown(page) == ["pt-lisboa"]
    assert query_of(page) == {
        "lang": ["pt"],
        "since": ["2026-06-05"],
        "until": ["2026-07-09"],
        "sort": ["date"],
    }
    expect(page.locator("#lang")).to_have_value("")  # added as a chip, field ready for another
    expect(page.locator("#chips .chip span")).to_have_text(
        ["Language: Portuguese", "From: 2026-06-05", "To: 2026-07-09"]
    )
    page.get_by_role("button", name="Clear filters").click()
    assert len(shown(page)) == len(ALL_IDS)

    page.goto(f"{site}/?q=zebra&lang=es")
    assert shown(page) == []
    empty = "No articles match “zebra”. Try removing a filter."
    expect(page.locator("#status.empty")).to_have_text(empty)

    # The API's reason, and a chip to undo the bad value.
    watched.allowed.append("status of 422")
    page.goto(f"{site}/?q=summit&since=yesterday")
    assert shown(page) == []
    expect(page.locator("#status.error")).to_contain_text("'yesterday' is not an ISO 8601 date")
    page.get_by_role("button", name="Remove From: yesterday").click()
    assert set(shown(page)) == set(SUMMIT)
    expect(page).to_have_url(re.compile(r"/\?q=summit$"))


def test_one_hit_per_story_and_every_version_of_it(isolated: Settings, watched: Watched) -> None:
    def version(doc_id: str, cluster: str, language: str, title: str) -> dict[str, Any]:
        document = article(
            doc_id,
            source="Wire",
            language=language,
            title=title,
            body=title,
            title_en=title,
            body_en=title,
            status="translated" if language != "en" else "not_needed",
            fetched_at="2026-07-09T09:00:00Z",
        )
        similarity = {"flood-es": 0.31, "flood-copy": 1.0}.get(doc_id)
        dedupe = {"content_hash": doc_id, "cluster_id": cluster, "similarity": similarity}
        entities = {"GPE": ["Danube", *(["Vienna"] if doc_id == "flood-copy" else [])]}
        return {
            **document,
            "entities": entities,
            "dedupe": {k: v for k, v in dedupe.items() if v is not None},
        }

    index_documents(
        isolated.elasticsearch,
        [
            version("flood-en", "flood-en", "en", "Floods close the Danube ports"),
            version("flood-es", "flood-en", "es", "Las inundaciones cierran los puertos"),
            version("flood-copy", "flood-en", "en", "Floods close the Danube ports (copy)"),
            version("budget", "budget", "en", "Parliament passes the budget"),
        ],
    )
    with serving(create_app(isolated)) as url:
        page = watched.page()
        page.goto(f"{url}/")
        assert len(shown(page)) == 4
        page.locator("#collapse").check()
        hits = shown(page)
        assert len(hits) == 2 and "budget" in hits
        assert query_of(page) == {"collapse": ["true"]}
        page.get_by_role("button", name="+2 similar").click()
        assert set(shown(page)) == {"flood-en", "flood-es", "flood-copy"}
        # Why each version is in the story: its shared words and the first article's places.
        links = {
            hit: page.locator(f'.hit[data-id="{hit}"] .story-link').inner_text()
            for hit in ("flood-en", "flood-es", "flood-copy")
        }
        assert links == {
            "flood-en": "First article of this story",
            "flood-es": "Joined at 31% shared words with a version of it; "
            "shares Danube with the first article",
            "flood-copy": "Joined at 100% shared words with a version of it; "
            "shares Danube with the first article",
        }
        expect(page.locator("#chips .chip span")).to_have_text(["One story"])
        page.get_by_role("button", name="Remove One story").click()
        assert len(shown(page)) == 4


def test_original_language_facets_show_what_the_translation_lost(
    isolated: Settings, watched: Watched
) -> None:
    """Le Monde's "Poutine" is only in original_entities: it gets a facet group of its own, shown
    only when it has values, and its values toggle the same PERSON filter as the English facet."""
    nato = next(d for d in DOCUMENTS if d["id"] == "en-nato")
    index_documents(isolated.elasticsearch, [nato, LE_MONDE])
    with serving(create_app(isolated)) as url:
        page = watched.page()
        page.goto(f"{url}/")
        assert set(shown(page)) == {"en-nato", "fr-piratage"}
        expect(page.locator("#facets .facet h2")).to_have_text(
            [
                "People",
                "People · original language",
                "Organisations",
                "Places",
                "Sources",
                "Languages",
            ]
        )  # no original ORG or GPE values (Le Monde's "Russie" is a LOC): no such group
        original = page.locator('#facets [data-facet="original PERSON"]')
        expect(original.locator(".name")).to_have_text(["Poutine", "Trump"])
        expect(page.locator('#facets [data-facet="PERSON"][data-value="Poutine"]')).to_have_count(0)

        poutine = original.and_(page.locator('[data-value="Poutine"]'))
        poutine.click()
        assert shown(page) == ["fr-piratage"]
        assert query_of(page) == {"entity": ["PERSON:Poutine"]}
        expect(page.locator("#chips .chip span")).to_have_text(["Person: Poutine"])
        expect(poutine).to_have_attribute("aria-pressed", "true")
        poutine.click()  # clicking again removes the filter, as for any facet value
        assert set(shown(page)) == {"en-nato", "fr-piratage"}
        assert query_of(page) == {}

        # English articles only: nothing found in an original text, so the group disappears.
        page.goto(f"{url}/?lang=en")
        assert shown(page) == ["en-nato"]
        expect(page.locator('#facets [data-facet="PERSON"]').first).to_be_visible()
        expect(original).to_have_count(0)
