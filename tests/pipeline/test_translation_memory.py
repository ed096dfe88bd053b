"""Reading translations back from indexed documents."""

from __future__ import annotations

from pipeline.translation_memory import stored_translation


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
