"""The value that flows between pipeline stages: an article, where it came from, what we learned.

Stages never mutate it; each returns a copy with its own fields filled in (``dataclasses.replace``),
so a retried bundle cannot see half-enriched state.
"""

from __future__ import annotations

from dataclasses import dataclass

from newsflow.article import Article
from pipeline.kafka_source import Origin

UNDETERMINED = "und"


@dataclass(frozen=True)
class LanguageGuess:
    code: str  # ISO 639-1, or "und" when undecidable
    confidence: float
    #: Other languages with at least one paragraph of their own, when the text is mixed.
    mixed: tuple[str, ...] = ()


@dataclass(frozen=True)
class Entity:
    """One distinct entity of a document, after normalization and merging of mentions."""

    label: str  # spaCy label: PERSON, ORG, GPE, LOC, NORP, EVENT, ...
    name: str  # normalized name ("Volodymyr Zelensky")
    surface_forms: tuple[str, ...]  # as written ("Zelensky", "Volodymyr Zelensky")
    mentions: int
    first_offset: int  # character offset of the first mention in the English text


@dataclass(frozen=True)
class Translation:
    """The English version of an article and how it was obtained (provenance)."""

    #: translated | not_needed (already English) | unsupported | failed | skipped (undetermined)
    status: str
    engine: str
    title: str = ""
    body: str = ""
    path: tuple[str, ...] = ()  # language path, e.g. ("pt", "es", "en") for a pivot
    engine_version: str = ""
    seconds: float = 0.0
    cached: bool = False
    error: str = ""
    #: Hash of language, original text, engine and version: equal keys, equal translation.
    content_key: str = ""


@dataclass(frozen=True)
class Duplication:
    """Where an article stands among the stories already seen (pipeline.dedupe)."""

    content_hash: str
    #: The story cluster: the id of its first-seen article (its own id when it starts one).
    cluster_id: str
    #: The first-seen article this one copies (same content, or above the duplicate threshold).
    duplicate_of: str | None = None
    #: Exact Jaccard similarity to the article it was matched with (0 when it matched none).
    similarity: float = 0.0
    #: Not indexed (dedupe.duplicates = suppress); its offset is committed all the same.
    suppressed: bool = False


@dataclass(frozen=True)
class EnrichedArticle:
    article: Article
    origin: Origin
    language: LanguageGuess | None = None
    translation: Translation | None = None
    entities: tuple[Entity, ...] = ()
    duplication: Duplication | None = None
    #: Entities a model of the article's own language found in the original text, kept apart
    #: from ``entities`` (which come from the English text); () when no such model is set.
    original_entities: tuple[Entity, ...] = ()

    @property
    def dedupe_outcome(self) -> str | None:
        """new (started a story) | clustered (joined one) | duplicate (a copy); None: not run."""
        if self.duplication is None:
            return None
        if self.duplication.duplicate_of:
            return "duplicate"
        return "new" if self.duplication.cluster_id == self.article.id else "clustered"

    @property
    def text(self) -> str:
        """Original title and body as one text, the input of language detection."""
        return f"{self.article.title}\n\n{self.article.body}".strip()

    @property
    def english_title(self) -> str | None:
        return self._english("title")

    @property
    def english_body(self) -> str | None:
        return self._english("body")

    def _english(self, field: str) -> str | None:
        """The translation's ``field``, the original's if it is English, else None."""
        if self.translation is not None and self.translation.status == "translated":
            return str(getattr(self.translation, field))
        if self.language is not None and self.language.code == "en":
            return str(getattr(self.article, field))
        return None

    @property
    def english_text(self) -> str | None:
        """English title and body (original or translation), the input of NER; None if none."""
        title, body = self.english_title, self.english_body
        if title is None and body is None:
            return None
        return f"{title or ''}\n\n{body or ''}".strip()


def facets(entities: tuple[Entity, ...]) -> dict[str, list[str]]:
    """Entity label -> normalized names, most mentioned first: the keyword facet fields."""
    by_label: dict[str, list[Entity]] = {}
    for entity in entities:
        by_label.setdefault(entity.label, []).append(entity)
    return {
        label: [e.name for e in sorted(found, key=lambda e: (-e.mentions, e.first_offset))]
        for label, found in sorted(by_label.items())
    }
