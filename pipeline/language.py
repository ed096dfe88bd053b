"""Language identification: which language is this article in, and how sure are we?

Uses lingua, which ships its models in the wheel (nothing downloads at run time). The source's
language hint is a prior that tips close calls, never an override: a feed that claims English for
a Portuguese story still gets ``pt``. Text too short or too ambiguous to call is ``und``.
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.enriched import UNDETERMINED, EnrichedArticle, LanguageGuess

#: Letters needed before we trust any guess; a headline fragment is not enough.
MIN_LETTERS = 20
#: Letters a paragraph needs before it gets a language of its own (mixed-language articles).
MIN_PARAGRAPH_LETTERS = 60
#: How much the source's hint multiplies the hinted language's score before renormalizing.
HINT_WEIGHT = 2.0


def choose_language(
    scores: dict[str, float], hint: str | None, min_confidence: float
) -> LanguageGuess:
    """Pick a language from detector scores (code -> probability), using the hint as a prior."""
    if not scores:
        return LanguageGuess(UNDETERMINED, 0.0)
    weighted = {code: p * (HINT_WEIGHT if code == hint else 1.0) for code, p in scores.items()}
    total = sum(weighted.values())
    if total <= 0:
        return LanguageGuess(UNDETERMINED, 0.0)
    code, score = max(weighted.items(), key=lambda item: item[1])
    confidence = score / total
    if confidence < min_confidence:
        return LanguageGuess(UNDETERMINED, round(confidence, 4))
    return LanguageGuess(code, round(confidence, 4))


def letter_count(text: str) -> int:
    return sum(ch.isalpha() for ch in text)


@dataclass
class LanguageDetection:
    """Stage: set ``EnrichedArticle.language``."""

    languages: list[str]
    min_confidence: float
    max_chars: int
    name: str = "language"
    _detector: Any = field(default=None, repr=False)

    def load(self) -> None:
        from lingua import IsoCode639_1, LanguageDetectorBuilder

        codes = [IsoCode639_1.from_str(code) for code in self.languages]
        self._detector = LanguageDetectorBuilder.from_iso_codes_639_1(*codes).build()

    def scores(self, text: str) -> dict[str, float]:
        values = self._detector.compute_language_confidence_values(text[: self.max_chars])
        return {v.language.iso_code_639_1.name.lower(): v.value for v in values}

    def detect(self, text: str, hint: str | None) -> LanguageGuess:
        if letter_count(text) < MIN_LETTERS:
            return LanguageGuess(UNDETERMINED, 0.0)
        return choose_language(self.scores(text), hint, self.min_confidence)

    def detect_mixed(self, paragraphs: list[str], main: str) -> tuple[str, ...]:
        """Languages other than ``main`` that whole paragraphs are written in."""
        others = {
            guess.code
            for paragraph in paragraphs
            if letter_count(paragraph) >= MIN_PARAGRAPH_LETTERS
            and (guess := choose_language(self.scores(paragraph), None, self.min_confidence))
            and guess.code not in (main, UNDETERMINED)
        }
        return tuple(sorted(others))

    def run(self, batch: list[EnrichedArticle]) -> list[EnrichedArticle]:
        results = []
        for item in batch:
            guess = self.detect(item.text, item.article.language_hint)
            paragraphs = [p for p in item.article.body.split("\n") if p.strip()]
            if guess.code != UNDETERMINED and len(paragraphs) > 1:
                guess = replace(guess, mixed=self.detect_mixed(paragraphs, guess.code))
            results.append(replace(item, language=guess))
        return results
