"""Translations already in the index, so a replay or a restarted worker does not pay twice.

The per-worker cache in ``pipeline.translation`` dies with the process; the index does not. For
each batch the translation stage asks for the stored translation of the same article ids and
reuses it when its content key (language, text, engine and version) still matches. This is an
optimisation: when Elasticsearch cannot answer, the stage translates, and says so (a warning and
``newsflow_pipeline_errors_total{error_class="lookup:..."}``). The read alias spans one index per
month, so the lookup is a search by id (``stored_sources``): it sees what the index has refreshed,
about a second behind the writes.
"""

from __future__ import annotations

import logging
from typing import Any

from elasticsearch import ApiError, Elasticsearch, TransportError

from newsflow.errors import NewsflowError
from newsflow.index import client, stored_sources
from newsflow.settings import ElasticsearchSettings
from pipeline import metrics
from pipeline.enriched import Translation

_LOG = logging.getLogger(__name__)
_FIELDS = ["title_en", "body_en", "translation"]
_STAGE = "translation"


def stored_translation(source: dict[str, Any]) -> Translation | None:
    """A reusable translation from an indexed document, or None."""
    stored = source.get("translation") or {}
    if stored.get("status") != "translated" or not stored.get("content_key"):
        return None
    return Translation(
        status="translated",
        engine=stored.get("engine", ""),
        title=source.get("title_en", ""),
        body=source.get("body_en", ""),
        path=tuple(stored.get("path", ())),
        engine_version=stored.get("engine_version", ""),
        seconds=stored.get("seconds", 0.0),
        content_key=stored["content_key"],
    )


class IndexedTranslations:
    """Callable: article ids -> their translations as currently indexed."""

    def __init__(self, settings: ElasticsearchSettings) -> None:
        self._settings = settings
        self._es: Elasticsearch | None = None

    def __call__(self, ids: list[str]) -> dict[str, Translation]:
        if not ids:
            return {}
        if self._es is None:
            self._es = client(self._settings)
        try:
            stored = stored_sources(self._es, self._settings.index_alias, ids, _FIELDS)
        except (ApiError, TransportError, NewsflowError) as exc:
            _LOG.warning("translation memory did not answer, translating again: %s", exc)
            metrics.lookup_failed(_STAGE, type(exc).__name__)
            return {}
        return {
            doc_id: translation
            for doc_id, source in stored.items()
            if (translation := stored_translation(source)) is not None
        }
