"""The value that flows between pipeline stages: an article, where it came from, what we learned.

Stages never mutate it; each returns a copy with its own fields filled in (``dataclasses.replace``),
so a retried bundle cannot see half-enriched state.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from newsflow.article import Article
from pipeline.kafka_source import Origin

#: Entity label -> distinct entity texts, most mentioned first.
Entities = dict[str, list[str]]

UNDETERMINED = "und"


@dataclass(frozen=True)
class LanguageGuess:
    code: str  # ISO 639-1, or "und" when undecidable
    confidence: float


@dataclass(frozen=True)
class EnrichedArticle:
    article: Article
    origin: Origin
    language: LanguageGuess | None = None
    entities: Entities = field(default_factory=dict)

    @property
    def text(self) -> str:
        """Title and body as one text, the input of language detection and NER."""
        return f"{self.article.title}\n\n{self.article.body}".strip()
