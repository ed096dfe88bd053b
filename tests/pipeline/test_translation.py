"""The translation stage's decisions and plumbing, with a hand-written engine (no services)."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

import pytest

from newsflow.article import Article
from newsflow.settings import TranslationSettings
from pipeline.enriched import EnrichedArticle, LanguageGuess
from pipeline.kafka_source import Origin
from pipeline.translation import (
    NoTranslator,
    TranslationError,
    TranslationStage,
    chunk,
    split_content,
    translate_documents,
)


@dataclass
class ShoutingTranslator:
    """A real Translator: 'translates' by upper-casing; knows es->en and pt->es."""

    name: str = "shout"
    fail: bool = False
    calls: list[list[str]] = field(default_factory=list)

    def load(self) -> None:
        pass

    def path(self, source: str, target: str) -> tuple[str, ...] | None:
        return {"es": ("es", "en"), "pt": ("pt", "es", "en")}.get(source)

    def translate(self, texts: list[str], path: tuple[str, ...]) -> list[str]:
        self.calls.append(list(texts))
        if self.fail:
            raise TranslationError("engine down")
        return [text.upper() for text in texts]

    def version(self) -> str:
        return "shout 1.0"


def item(language: str, title: str = "Título", body: str = "Cuerpo.") -> EnrichedArticle:
    article = Article.create(
        source="El Diario", title=title, body=body, fetched_at=datetime(2026, 1, 1, tzinfo=UTC)
    )
    return EnrichedArticle(article, Origin("t", 0, 1), language=LanguageGuess(language, 0.99))


def stage(translator: ShoutingTranslator, **settings: object) -> TranslationStage:
    loaded = TranslationStage(
        TranslationSettings(**settings), translator_factory=lambda _settings: translator
    )
    loaded.load()
    return loaded


def test_split_content_keeps_trailing_metadata_lines_out_of_translation() -> None:
    paragraphs, trailer = split_content("Uno.\n\nDos.\nSource: probe-es\nFoto: EFE")
    assert paragraphs == ["Uno.", "Dos."]
    assert trailer == ["Source: probe-es", "Foto: EFE"]


def test_a_source_line_in_the_middle_is_content() -> None:
    assert split_content("Source: x\n\nReal text.") == (["Source: x", "Real text."], [])


def test_chunk_splits_at_sentence_ends_within_the_limit() -> None:
    text = "Una frase corta. Otra frase algo más larga. Y una tercera."
    pieces = chunk(text, 30)
    assert all(len(piece) <= 30 for piece in pieces)
    assert " ".join(pieces) == text
    assert chunk("sin puntuación " * 10, 40)[0] == ("sin puntuación " * 10)[:40]


def test_translate_documents_maps_pieces_back_to_titles_and_paragraphs() -> None:
    engine = ShoutingTranslator()
    documents = [("Hola", "Uno. Dos.\n\nTres.\nSource: DN"), ("", "Cuatro.")]
    english = translate_documents(engine, ("es", "en"), documents, 7)
    assert english == [("HOLA", "UNO. DOS.\n\nTRES.\n\nSource: DN"), ("", "CUATRO.")]
    assert engine.calls == [["Hola", "Uno.", "Dos.", "Tres.", "Cuatro."]]  # one call


def test_a_batch_shares_one_engine_call_per_path() -> None:
    engine = ShoutingTranslator()
    batch = [item("es", "Uno"), item("pt", "Dois"), item("en", "Three"), item("es", "Cuatro")]
    out = stage(engine).run(batch)
    assert [o.english_title for o in out] == ["UNO", "DOIS", "Three", "CUATRO"]
    assert sorted(engine.calls) == [["Dois", "Cuerpo."], ["Uno", "Cuerpo.", "Cuatro", "Cuerpo."]]
    seconds = [o.translation.seconds for o in out if o.translation is not None]
    assert all(s >= 0 for s in seconds)


def test_the_same_text_twice_in_a_batch_is_translated_once() -> None:
    engine = ShoutingTranslator()
    first, second = stage(engine).run([item("es", "Uno"), item("es", "Uno")])
    assert engine.calls == [["Uno", "Cuerpo."]]
    assert first.translation is not None and second.translation is not None
    assert second.translation.cached and second.english_title == first.english_title == "UNO"


@dataclass
class PickyTranslator(ShoutingTranslator):
    """Fails any request that holds the word "Roto"."""

    def translate(self, texts: list[str], path: tuple[str, ...]) -> list[str]:
        self.fail = any("Roto" in text for text in texts)
        return super().translate(texts, path)


def test_a_failing_article_fails_alone_and_the_rest_of_its_batch_is_translated() -> None:
    engine = PickyTranslator()
    good, bad, other = stage(engine).run([item("es", "Uno"), item("es", "Roto"), item("es", "Dos")])
    assert bad.translation is not None and bad.translation.status == "failed"
    assert (good.english_title, other.english_title) == ("UNO", "DOS")
    assert len(engine.calls) == 4  # the batch, then each article alone


@pytest.mark.parametrize(
    ("language", "status", "path"),
    [
        ("en", "not_needed", ("en",)),
        ("und", "skipped", ()),
        ("de", "unsupported", ("de",)),
        ("es", "translated", ("es", "en")),
        ("pt", "translated", ("pt", "es", "en")),
    ],
)
def test_status_and_path_by_language(language: str, status: str, path: tuple[str, ...]) -> None:
    engine = ShoutingTranslator()
    result = stage(engine).translate(item(language))
    assert (result.status, result.path) == (status, path)
    assert bool(engine.calls) == (status == "translated")


def test_translated_article_carries_english_text_and_provenance() -> None:
    [out] = stage(ShoutingTranslator()).run([item("es", "Hola", "Adiós.")])
    assert out.translation is not None
    assert (out.english_title, out.english_body) == ("HOLA", "ADIÓS.")
    assert out.translation.engine == "shout" and out.translation.engine_version == "shout 1.0"
    assert out.translation.seconds >= 0 and not out.translation.cached


def test_english_is_its_own_english_text_and_unsupported_has_none() -> None:
    [english, german] = stage(ShoutingTranslator()).run(
        [item("en", "Hello", "World."), item("de", "Hallo", "Welt.")]
    )
    assert (english.english_title, english.english_body) == ("Hello", "World.")
    assert german.english_text is None


def test_a_backend_failure_is_flagged_with_the_reason() -> None:
    result = stage(ShoutingTranslator(fail=True)).translate(item("es"))
    assert (result.status, result.error) == ("failed", "engine down")


def test_strict_mode_raises_so_the_article_is_dead_lettered() -> None:
    with pytest.raises(TranslationError, match="engine down"):
        stage(ShoutingTranslator(fail=True), strict=True).translate(item("es"))


def test_a_replay_is_served_from_the_cache() -> None:
    engine = ShoutingTranslator()
    translation = stage(engine)
    first = translation.translate(item("es"))
    second = translation.translate(item("es"))
    assert len(engine.calls) == 1
    assert second.cached and second.title == first.title


def test_the_cache_is_bounded() -> None:
    engine = ShoutingTranslator()
    translation = stage(engine, cache_entries=1)
    for title in ("Uno", "Dos", "Uno"):
        translation.translate(item("es", title))
    assert len(engine.calls) == 3  # "Uno" was evicted by "Dos"


def test_the_none_backend_leaves_every_foreign_article_unsupported() -> None:
    translation = TranslationStage(TranslationSettings(backend="none"))
    translation.load()
    assert translation.translate(item("es")).status == "unsupported"
    assert NoTranslator().path("es", "en") is None


def test_a_remembered_translation_with_the_same_content_key_is_reused() -> None:
    first_engine = ShoutingTranslator()
    original = stage(first_engine).translate(item("es"))
    engine = ShoutingTranslator()
    memory = {item("es").article.id: original}
    translation = TranslationStage(
        TranslationSettings(),
        translator_factory=lambda _settings: engine,
        memory_factory=lambda: lambda ids: {i: memory[i] for i in ids if i in memory},
    )
    translation.load()
    [out] = translation.run([item("es")])
    assert engine.calls == []
    assert out.translation is not None and out.translation.cached
    assert out.translation.title == original.title


def test_a_remembered_translation_of_other_text_is_not_reused() -> None:
    stale = stage(ShoutingTranslator()).translate(item("es", body="Texto anterior."))
    engine = ShoutingTranslator()
    translation = TranslationStage(
        TranslationSettings(),
        translator_factory=lambda _settings: engine,
        memory_factory=lambda: lambda ids: dict.fromkeys(ids, stale),
    )
    translation.load()
    [out] = translation.run([item("es", body="Texto nuevo.")])
    assert len(engine.calls) == 1 and out.translation is not None
    assert out.translation.body == "TEXTO NUEVO." and not out.translation.cached
