"""Partial person names completed from the full names other articles spell out.

A story may never write a person's whole name: the seed article has "Turkey's President Recep
Tayyip's encouragement" and, a sentence later, "Erdogan, who ...". Inside the document the two
parts share no word, so the entity stage keeps them apart. Other articles do spell "Recep Tayyip
Erdogan". Each worker keeps a book of the full person names it has seen, primed from the index
at start so that a restarted or added worker knows what the fleet has indexed. A person name
with no longer form in its own document then joins the one full name that dominates the book
for it: "Erdogan" becomes "Recep Tayyip Erdogan" when nearly every known "... Erdogan" is him,
while "Biden", shared by "Joe Biden" and "Hunter Biden", stays as written.
"""

from __future__ import annotations

import logging
from collections import Counter
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field, replace

from elasticsearch import ApiError, TransportError

from newsflow.index import client
from newsflow.settings import ElasticsearchSettings, NameSettings
from pipeline.enriched import EnrichedArticle, Entity
from pipeline.entities import citation_order, person_roots, short_for

_LOG = logging.getLogger(__name__)


def completion(
    name: str, known: Mapping[str, int], min_documents: int, dominance: float
) -> str | None:
    """The full name ``name`` stands for, given how many articles cited each known name.

    Articles citing a shorter form of a full name count for it ("Recep Erdogan" and "Tayyip
    Erdogan" for "Recep Tayyip Erdogan"). The winner needs ``min_documents`` such articles and
    ``dominance`` of all those citing any full name ``name`` could stand for; otherwise None.
    """
    fulls = set(person_roots(full for full in known if short_for(full, name)).values())
    support = {
        full: sum(n for other, n in known.items() if other == full or short_for(full, other))
        for full in fulls
    }
    if not support:
        return None
    best = max(support, key=lambda full: (support[full], full))
    if support[best] >= min_documents and support[best] >= dominance * sum(support.values()):
        return best
    return None


def complete_people(
    entities: tuple[Entity, ...], complete: Callable[[str], str | None]
) -> tuple[Entity, ...]:
    """Rename each person ``complete`` knows a full name for, merging those that meet."""
    merged: dict[tuple[str, str], Entity] = {}
    for entity in entities:
        name = (complete(entity.name) if entity.label == "PERSON" else None) or entity.name
        key = (entity.label, name)
        if (seen := merged.get(key)) is None:
            merged[key] = replace(entity, name=name)
            continue
        first, second = sorted((seen, entity), key=lambda e: e.first_offset)
        merged[key] = replace(
            first,
            name=name,
            surface_forms=tuple(dict.fromkeys(first.surface_forms + second.surface_forms)),
            mentions=first.mentions + second.mentions,
        )
    return tuple(sorted(merged.values(), key=citation_order))


def full_person_names(entities: Iterable[Entity]) -> set[str]:
    """The names of a document worth learning: people named with two words or more."""
    return {e.name for e in entities if e.label == "PERSON" and " " in e.name}


class NameBook:
    """Full person names -> articles that cited them, bounded, looked up by first and last word."""

    def __init__(self, max_names: int) -> None:
        self._max_names = max_names
        self._counts: Counter[str] = Counter()
        self._by_word: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._counts)

    def add(self, counts: Mapping[str, int]) -> None:
        for name, count in counts.items():
            if name not in self._counts:
                for word in _edge_words(name):
                    self._by_word.setdefault(word, set()).add(name)
            self._counts[name] += count
        if len(self._counts) > self._max_names:
            self._forget_least_cited()

    def known(self, name: str) -> dict[str, int]:
        """The known names sharing ``name``'s first or last word, with their counts."""
        near = set().union(*(self._by_word.get(word, ()) for word in _edge_words(name)))
        return {full: self._counts[full] for full in near}

    def _forget_least_cited(self) -> None:
        """Keep nine tenths of the limit, most cited first, so pruning is rare."""
        kept = dict(self._counts.most_common(self._max_names * 9 // 10))
        for name in set(self._counts) - set(kept):
            for word in _edge_words(name):
                if (names := self._by_word.get(word)) is not None:
                    names.discard(name)
                    if not names:
                        del self._by_word[word]
        self._counts = Counter(kept)


def _edge_words(name: str) -> set[str]:
    words = name.casefold().split()
    return {words[0], words[-1]}


@dataclass
class NameCompletion:
    """Stage: complete partial person names from the book, then learn the batch's full names.

    A batch is completed against the book as it was before it, so an article never vouches for
    its own completion and the batch's order does not matter. Names are learned as completed,
    the form the index holds and primes the next worker with.
    """

    settings: NameSettings
    #: Called once at load: the most cited full person names already indexed, with counts.
    indexed_names: Callable[[int], dict[str, int]]
    name: str = "names"
    _book: NameBook = field(init=False, repr=False)

    def load(self) -> None:
        self._book = NameBook(self.settings.max_names)
        self._book.add(self.indexed_names(self.settings.max_names))

    def run(self, batch: list[EnrichedArticle]) -> list[EnrichedArticle]:
        completed = [
            replace(item, entities=complete_people(item.entities, self._complete)) for item in batch
        ]
        self._book.add(Counter(n for item in completed for n in full_person_names(item.entities)))
        return completed

    def _complete(self, name: str) -> str | None:
        return completion(
            name, self._book.known(name), self.settings.min_documents, self.settings.dominance
        )


class IndexedPeople:
    """Callable: the most cited multi-word PERSON facet values in the index, with doc counts.

    Priming is an optimisation: when Elasticsearch cannot answer, the book starts empty and
    fills from the stream.
    """

    def __init__(self, settings: ElasticsearchSettings) -> None:
        self._settings = settings

    def __call__(self, limit: int) -> dict[str, int]:
        es = client(self._settings)
        try:
            response = es.search(
                index=self._settings.index_alias,
                size=0,
                aggs={
                    "people": {
                        "terms": {"field": "entities.PERSON", "size": limit, "include": ".+ .+"}
                    }
                },
            )
        except (ApiError, TransportError) as exc:
            _LOG.warning("name book starts empty, the index did not answer: %s", exc)
            return {}
        finally:
            es.close()
        buckets = response["aggregations"]["people"]["buckets"]
        return {bucket["key"]: bucket["doc_count"] for bucket in buckets}
