"""Per-item 429s in a bulk response: only the rejected documents are sent again (fault 7)."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest

from connectors.ingest import ingest_files
from newsflow.article import article_id
from newsflow.settings import Settings
from pipeline.run import run
from tests.conftest import indexed_documents
from tests.es_proxy import elasticsearch_proxy
from tests.pipeline.test_run_integration import committed_and_end, dead_letters

pytestmark = pytest.mark.integration


def test_only_the_rejected_items_are_retried(isolated: Settings, tmp_path: Path) -> None:
    urls = [f"https://wire.example/{n}" for n in range(10)]
    articles = tmp_path / "ten.jsonl"
    articles.write_text(
        "".join(
            json.dumps(
                {
                    "url": urls[n],
                    "source": "Wire",
                    "title": f"Harbour strike day {n}",
                    "body": f"Dockers in port number {n} stopped work over pay on day {n}.",
                    "language_hint": "en",
                }
            )
            + "\n"
            for n in range(10)
        ),
        encoding="utf-8",
    )
    ingest_files([articles], isolated.kafka)
    alias = isolated.elasticsearch.index_alias
    # Bulks into any period's write alias of this test's index (see newsflow.index).
    with elasticsearch_proxy(isolated.elasticsearch.url, f"{alias}-write-") as proxy:
        rejected = {
            article_id(canonical_url=urls[n], source="", title="", body="") for n in (1, 4, 7)
        }
        proxy.reject_once = set(rejected)
        proxied = isolated.model_copy(
            update={"elasticsearch": isolated.elasticsearch.model_copy(update={"url": proxy.url})}
        )
        run(proxied, stop_when_idle=2.0)

    sent = Counter(doc_id for ids in proxy.bulk_ids for doc_id in ids)
    assert len(sent) == 10
    # The rejected documents were sent twice, every other one once: no blind resend.
    assert {doc_id for doc_id, times in sent.items() if times == 2} == rejected
    assert sum(sent.values()) == 13
    retries = [ids for ids in proxy.bulk_ids if set(ids) <= rejected]
    assert retries  # a retry request carrying only rejected documents
    assert len(indexed_documents(isolated)) == 10
    assert dead_letters(isolated) == []
    assert all((committed or 0) == end for committed, end in committed_and_end(isolated))
