"""Reading translations back from indexed documents."""

from __future__ import annotations

import logging

import pytest

from newsflow.settings import ElasticsearchSettings
from pipeline import metrics
from pipeline.translation_memory import IndexedTranslations, stored_translation


def test_a_translated_document_gives_back_its_translation() -> None:
    stored = stored_translation(
        {
            "title_en": "Hello",
            "body_en": "World.",
            "translation": {
                "status": "translated",
                "engine": "apertium",
                "path": ["pt", "es", "en"],
                "engine_version": "apertium 3.8.3",
                "seconds": 0.01,
                "content_key": "k1",
            },
        }
    )
    assert stored is not None
    assert (stored.title, stored.body, stored.path) == ("Hello", "World.", ("pt", "es", "en"))
    assert stored.content_key == "k1"


def test_untranslated_or_keyless_documents_give_nothing() -> None:
    assert stored_translation({"translation": {"status": "not_needed"}}) is None
    assert stored_translation({"translation": {"status": "translated"}}) is None
    assert stored_translation({}) is None


def test_an_index_that_does_not_answer_is_a_warning_and_a_count_not_an_empty_memory(
    closed_port: int, caplog: pytest.LogCaptureFixture
) -> None:
    settings = ElasticsearchSettings(url=f"http://127.0.0.1:{closed_port}")
    labels = {"stage": "translation", "error_class": "lookup:ConnectionError"}
    before = metrics.REGISTRY.get_sample_value("newsflow_pipeline_errors_total", labels) or 0
    with caplog.at_level(logging.WARNING):
        assert IndexedTranslations(settings)(["a"]) == {}  # the stage translates
    assert metrics.REGISTRY.get_sample_value("newsflow_pipeline_errors_total", labels) == before + 1
    assert "translation memory did not answer" in caplog.text
