"""The index definition against the real Elasticsearch node."""

from __future__ import annotations

import pytest

from newsflow.index import IndexOutdated, client, concrete_index_name, ensure_index
from newsflow.settings import Settings

pytestmark = pytest.mark.integration


def test_ensure_index_creates_the_versioned_index_behind_the_alias_once(
    isolated: Settings,
) -> None:
    es = client(isolated.elasticsearch)
    alias = isolated.elasticsearch.index_alias
    assert ensure_index(es, isolated.elasticsearch) == alias
    assert ensure_index(es, isolated.elasticsearch) == alias  # idempotent
    assert list(es.indices.get_alias(name=alias)) == [concrete_index_name(alias)]
    mapping = es.indices.get_mapping(index=alias)[concrete_index_name(alias)]["mappings"]
    assert mapping["dynamic"] == "strict" and "title_en" in mapping["properties"]
    es.close()


def test_an_alias_on_an_older_index_is_refused_with_what_to_do(isolated: Settings) -> None:
    es = client(isolated.elasticsearch)
    alias = isolated.elasticsearch.index_alias
    old = f"{alias}-v0"
    es.indices.create(index=old, aliases={alias: {"is_write_index": True}})
    try:
        with pytest.raises(IndexOutdated, match=rf"points to {old}.*reindex"):
            ensure_index(es, isolated.elasticsearch)
    finally:
        es.indices.delete(index=old)
        es.close()
