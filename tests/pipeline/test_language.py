"""Language identification: the hint-as-prior rule, and the real lingua model on short texts."""

from __future__ import annotations

from dataclasses import replace
from datetime import UTC, datetime

import pytest

from newsflow.article import Article
from newsflow.settings import NlpSettings
from pipeline.enriched import UNDETERMINED, EnrichedArticle, LanguageGuess
from pipeline.kafka_source import Origin
from pipeline.language import MIN_LETTERS, LanguageDetection, choose_language, letter_count


def test_hint_tips_a_close_call() -> None:
    scores = {"es": 0.52, "pt": 0.48}
    assert choose_language(scores, None, 0.5) == LanguageGuess("es", 0.52)
    # pt: 0.48 * 2 = 0.96 against 0.52 -> 0.96 / 1.48
    assert choose_language(scores, "pt", 0.5) == LanguageGuess("pt", 0.6486)


def test_hint_does_not_override_a_clear_winner() -> None:
    # en: 0.1 * 2 = 0.2 against pt 0.9 -> pt with 0.9 / 1.1
    assert choose_language({"en": 0.1, "pt": 0.9}, "en", 0.5) == LanguageGuess("pt", 0.8182)


def test_hint_for_a_language_without_a_score_changes_nothing() -> None:
    scores = {"en": 0.7, "de": 0.3}
    assert choose_language(scores, "fr", 0.5) == choose_language(scores, None, 0.5)


@pytest.mark.parametrize(
    ("scores", "hint", "expected"),
    [
        pytest.param(
            {"en": 0.4, "es": 0.35, "pt": 0.25}, None, LanguageGuess(UNDETERMINED, 0.4), id="low"
        ),
        pytest.param({"en": 0.5, "es": 0.5}, None, LanguageGuess("en", 0.5), id="at-threshold"),
        pytest.param({}, "en", LanguageGuess(UNDETERMINED, 0.0), id="no-scores"),
        pytest.param({"en": 0.0, "es": 0.0}, "en", LanguageGuess("und", 0.0), id="all-zero"),
    ],
)
def test_undetermined(scores: dict[str, float], hint: str | None, expected: LanguageGuess) -> None:
    assert choose_language(scores, hint, 0.5) == expected


def test_min_confidence_is_configurable() -> None:
    scores = {"en": 0.4, "es": 0.35, "pt": 0.25}
    assert choose_language(scores, None, 0.3) == LanguageGuess("en", 0.4)


def test_letter_count_ignores_digits_spaces_and_punctuation() -> None:
    assert letter_count("Año 2026: ¡olé!") == 6


@pytest.fixture(scope="module")
def detector() -> LanguageDetection:
    stage = LanguageDetection(
        languages=["en", "es", "pt", "fr", "de", "it", "nl", "pl", "ru", "uk"],
        min_confidence=0.5,
        max_chars=NlpSettings().max_language_chars,
    )
    stage.load()
    return stage


ENGLISH = (
    "The city council approved a new budget on Tuesday that will pay for more buses, "
    "wider bike lanes and longer library opening hours next year."
)
SPANISH = (
    "El ayuntamiento aprobó el martes un nuevo presupuesto que pagará más autobuses, "
    "carriles bici más anchos y horarios de biblioteca más largos el año que viene."
)
PORTUGUESE = (
    "A câmara municipal aprovou na terça-feira um novo orçamento que vai pagar mais "
    "autocarros, ciclovias mais largas e bibliotecas abertas até mais tarde no próximo ano."
)


@pytest.mark.parametrize(
    ("text", "hint", "code"),
    [
        (ENGLISH, None, "en"),
        (SPANISH, None, "es"),
        (PORTUGUESE, None, "pt"),
        (PORTUGUESE, "en", "pt"),  # a wrong hint does not win against clear text
        (SPANISH, "pt", "es"),
    ],
)
def test_detect_with_the_real_model(
    detector: LanguageDetection, text: str, hint: str | None, code: str
) -> None:
    guess = detector.detect(text, hint)
    assert guess.code == code
    assert guess.confidence > 0.9


@pytest.mark.parametrize("text", ["Hello there", "NATO summit", "", "2026-07-11 12:00 !!"])
def test_too_short_text_is_undetermined(detector: LanguageDetection, text: str) -> None:
    assert letter_count(text) < MIN_LETTERS
    assert detector.detect(text, "en") == LanguageGuess(UNDETERMINED, 0.0)


def test_run_sets_the_language_of_each_item_and_keeps_the_rest(
    detector: LanguageDetection,
) -> None:
    fetched = datetime(2026, 11, 26, tzinfo=UTC)
    english = Article.create(source="DN", title="Budget", body=ENGLISH, fetched_at=fetched)
    spanish = Article.create(
        source="ES", title="Presupuesto", body=SPANISH, fetched_at=fetched, language_hint="en"
    )
    batch = [
        EnrichedArticle(english, Origin("articles.raw", 0, 1), entities={"ORG": ["x"]}),
        EnrichedArticle(spanish, Origin("articles.raw", 1, 2)),
    ]
    out = detector.run(batch)
    assert [item.language.code if item.language else None for item in out] == ["en", "es"]
    assert [replace(item, language=None) for item in out] == batch
    assert all(item.language is None for item in batch)  # inputs are not mutated


def test_the_detector_reads_only_the_first_max_chars(detector: LanguageDetection) -> None:
    """A long article is judged by its beginning; the rest (maybe a 500k-char word) is not read."""
    text = SPANISH + "\n" + ENGLISH * 20
    assert detector.detect(text, None).code == "en"
    capped = replace(detector, max_chars=len(SPANISH))
    assert capped.detect(text, None).code == "es"


def test_a_paragraph_in_another_language_is_listed_as_mixed(detector: LanguageDetection) -> None:
    fetched = datetime(2026, 11, 26, tzinfo=UTC)

    def language_of(*paragraphs: str) -> LanguageGuess | None:
        body = "\n".join(paragraphs)
        article = Article.create(source="DN", title="Budget", body=body, fetched_at=fetched)
        (out,) = detector.run([EnrichedArticle(article, Origin("articles.raw", 0, 1))])
        return out.language

    quoted = language_of(ENGLISH, ENGLISH, SPANISH, ENGLISH)
    assert quoted is not None and (quoted.code, quoted.mixed) == ("en", ("es",))
    pure = language_of(ENGLISH, ENGLISH)
    assert pure is not None and (pure.code, pure.mixed) == ("en", ())
    # too short to call: a Spanish place name in a line of its own is not a Spanish paragraph
    named = language_of(ENGLISH, "Ciudad de México", ENGLISH)
    assert named is not None and named.mixed == ()
