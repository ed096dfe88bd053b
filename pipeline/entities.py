"""Named-entity extraction with spaCy, for the people/organisation/place facets analysts use.

The model is a setting (any installed spaCy pipeline package) and only the components NER needs
run, in batches through ``nlp.pipe``. Numeric entity types (dates, amounts) are dropped: they are
not facets anyone filters on.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.enriched import EnrichedArticle, Entities

#: spaCy OntoNotes labels worth a facet; the rest (DATE, CARDINAL, MONEY, ...) are dropped.
FACET_LABELS = frozenset(
    {"PERSON", "ORG", "GPE", "LOC", "NORP", "FAC", "EVENT", "PRODUCT", "WORK_OF_ART", "LAW"}
)
#: Longest entity text kept; longer spans are tokenizer accidents, not names.
MAX_ENTITY_CHARS = 100
_SPACES = re.compile(r"\s+")


def group_entities(spans: Iterable[tuple[str, str]]) -> Entities:
    """(label, text) spans -> label -> distinct texts, most mentioned first, ties by first seen."""
    counts: dict[str, Counter[str]] = {}
    for label, text in spans:
        clean = _SPACES.sub(" ", text).strip()
        if label in FACET_LABELS and clean and len(clean) <= MAX_ENTITY_CHARS:
            counts.setdefault(label, Counter())[clean] += 1
    # Counter.most_common keeps insertion order among equal counts.
    return {label: [t for t, _ in c.most_common()] for label, c in sorted(counts.items())}


@dataclass
class EntityExtraction:
    """Stage: set ``EnrichedArticle.entities``."""

    model: str
    components: list[str]
    languages: list[str]
    batch_size: int
    max_chars: int
    name: str = "entities"
    _nlp: Any = field(default=None, repr=False)

    def load(self) -> None:
        import spacy

        try:
            nlp = spacy.load(self.model, enable=self.components)
        except OSError as exc:
            raise RuntimeError(
                f"spaCy model {self.model!r} is not installed; pip install it or set "
                "NEWSFLOW_NLP__SPACY_MODEL"
            ) from exc
        missing = set(self.components) - set(nlp.pipe_names)
        if missing:
            raise RuntimeError(f"spaCy model {self.model!r} has no component(s) {sorted(missing)}")
        self._nlp = nlp

    def readable(self, item: EnrichedArticle) -> bool:
        return item.language is not None and item.language.code in self.languages

    def run(self, batch: list[EnrichedArticle]) -> list[EnrichedArticle]:
        readable = [item for item in batch if self.readable(item)]
        docs = self._nlp.pipe(
            (item.text[: self.max_chars] for item in readable), batch_size=self.batch_size
        )
        found = {
            id(item): group_entities((e.label_, e.text) for e in doc.ents)
            for item, doc in zip(readable, docs, strict=True)
        }
        return [replace(item, entities=found.get(id(item), {})) for item in batch]
