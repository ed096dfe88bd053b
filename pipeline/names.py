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
from typing import Protocol

from elasticsearch import ApiError, Elasticsearch, TransportError

from newsflow.index import ElasticsearchUnavailable, client, stored_sources
from newsflow.settings import ElasticsearchSettings, NameSettings
from pipeline import metrics
from pipeline.elasticsearch_sink import retry_within_budget
from pipeline.enriched import EnrichedArticle, Entity
from pipeline.entities import LongerNames, citation_order, person_roots, short_for

_LOG = logging.getLogger(__name__)


def person_of(
    name: str, known: Mapping[str, int], min_documents: int, dominance: float
) -> str | None:
    """The person ``name`` stands for, as their longest known spelling; None if unsure.

    The known names ``name`` could stand for, and ``name`` itself when it is known, are grouped
    by person (``person_roots``). A person's support is every article citing a spelling of them
    ("Recep Erdogan" and "Tayyip Erdogan" count for "Recep Tayyip Erdogan"). The person needs
    ``min_documents`` citations and ``dominance`` of all those of the group.
    """
    spellings = [full for full in known if short_for(full, name)]
    if not spellings:
        return None
    if name in known:
        spellings.append(name)
    people = set(person_roots(spellings).values())
    support = {person: known.get(person, 0) for person in people}
    by_shorter_form = LongerNames(people)
    for other, count in known.items():
        for person in by_shorter_form.of(other):
            support[person] += count
    best = max(support, key=lambda person: (support[person], person))
    if support[best] < min_documents or support[best] < dominance * sum(support.values()):
        return None
    return best


def spelling(person: str, written: Iterable[str], known: Mapping[str, int]) -> str:
    """How to name ``person`` in a document that wrote ``written`` for them.

    The most cited known spelling of the person that keeps every word the document used: one
    article's "Gilbert Andy Roddick" does not replace the twenty that wrote "Andy Roddick", and
    "Recep Tayyip" with "Erdogan" needs "Recep Tayyip Erdogan", however often "Recep Erdogan"
    was written. On a tie, a spelling the document used, then the longer.
    """
    used = set(written)
    fits = [
        full
        for full in known
        if (full == person or short_for(person, full))
        and all(word == full or short_for(full, word) for word in used)
    ]
    return max(
        fits or [person],
        key=lambda full: (known.get(full, 0), full in used, len(full), full),
    )


def completion(
    name: str, known: Mapping[str, int], min_documents: int, dominance: float
) -> str | None:
    """The full name ``name`` alone stands for; None when unsure or when it is ``name``."""
    person = person_of(name, known, min_documents, dominance)
    answer = None if person is None else spelling(person, [name], known)
    return None if answer == name else answer


def complete_people(
    entities: tuple[Entity, ...],
    known: Callable[[str], Mapping[str, int]],
    min_documents: int,
    dominance: float,
) -> tuple[Entity, ...]:
    """Rename the people ``known`` has a full name for, merging those that meet.

    Names of one person in the document get one spelling, which keeps all of their words.
    """
    written: dict[str, set[str]] = {}
    for entity in entities:
        if entity.label == "PERSON":
            person = person_of(entity.name, known(entity.name), min_documents, dominance)
            if person is not None:
                written.setdefault(person, set()).add(entity.name)
    renamed = {
        name: spelling(person, names, known(person))
        for person, names in written.items()
        for name in names
    }
    merged: dict[tuple[str, str], Entity] = {}
    for entity in entities:
        name = renamed.get(entity.name, entity.name) if entity.label == "PERSON" else entity.name
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


def as_indexed(entities: tuple[Entity, ...], indexed_people: set[str]) -> tuple[Entity, ...]:
    """Complete only to full names the article was indexed with, where unambiguous: the
    completions it got the first time, whatever the book has learned since."""
    known = dict.fromkeys(indexed_people, 1)
    return complete_people(entities, lambda _name: known, min_documents=1, dominance=1.0)


def full_person_names(entities: Iterable[Entity]) -> set[str]:
    """The names of a document worth learning: people named with two words or more that look
    like a name, so "Roger Federer - nice" or "Greg Rusedski 4" never become one."""
    return {e.name for e in entities if e.label == "PERSON" and looks_like_a_full_name(e.name)}


def looks_like_a_full_name(name: str) -> bool:
    """Two words or more, each capitalized or a lowercase particle ("Luiz Inácio Lula da Silva")."""
    words = name.split()
    return len(words) >= 2 and all(
        (word[:1].isupper() and not any(c.isdigit() for c in word)) or word in NAME_PARTICLES
        for word in words
    )


#: Lowercase words inside names: "Lula da Silva", "Ursula von der Leyen", "Bashar al-Assad".
NAME_PARTICLES = frozenset(
    {"da", "das", "de", "del", "della", "der", "di", "do", "dos", "du", "la", "le"}
    | {"van", "von", "ter", "ten", "den", "y", "e", "bin", "ibn", "al", "el"}
)


class NameBook:
    """Full person names -> articles that cited them, bounded, found by first or last word.

    A one-word name is a surname, so it is looked up by last word only; a longer one may also
    share the first word ("Recep Tayyip", "Recep Erdogan").
    """

    def __init__(self, max_names: int) -> None:
        self._max_names = max_names
        self._counts: Counter[str] = Counter()
        self._by_first: dict[str, set[str]] = {}
        self._by_last: dict[str, set[str]] = {}

    def __len__(self) -> int:
        return len(self._counts)

    def add(self, counts: Mapping[str, int]) -> None:
        for name, count in counts.items():
            if name not in self._counts:
                first, last = _edge_words(name)
                self._by_first.setdefault(first, set()).add(name)
                self._by_last.setdefault(last, set()).add(name)
            self._counts[name] += count
        if len(self._counts) > self._max_names:
            self._forget_least_cited()

    def known(self, name: str) -> dict[str, int]:
        """The known names ``name`` may be short for (and more), with their counts."""
        first, last = _edge_words(name)
        near = set(self._by_last.get(last, ()))
        if " " in name.strip():
            near |= self._by_first.get(first, set())
        return {full: self._counts[full] for full in near}

    def _forget_least_cited(self) -> None:
        """Keep nine tenths of the limit, most cited first, so pruning is rare."""
        kept = dict(self._counts.most_common(self._max_names * 9 // 10))
        for name in set(self._counts) - set(kept):
            first, last = _edge_words(name)
            for index, word in ((self._by_first, first), (self._by_last, last)):
                names = index[word]
                names.discard(name)
                if not names:
                    del index[word]
        self._counts = Counter(kept)


def _edge_words(name: str) -> tuple[str, str]:
    words = name.casefold().split()
    return words[0], words[-1]


class IndexedNames(Protocol):
    """What the stage asks the index (``IndexedPeople``), so tests can answer without one."""

    def most_cited(self, limit: int) -> dict[str, int]:
        """The most cited multi-word PERSON names with their article counts."""
        ...

    def people_of(self, article_ids: list[str]) -> dict[str, set[str]]:
        """The PERSON names of the articles already indexed, by article id."""
        ...


@dataclass
class NameCompletion:
    """Stage: complete partial person names from the book, then learn the batch's full names.

    A batch is completed against the book as it was before it, so an article never vouches for
    its own completion and the batch's order does not matter. Names are learned as completed,
    the form the index holds and primes the next worker with.

    An article already in the index keeps the completions it got then: its partial names join
    only the full names indexed with it. The book grows, so without this a replay of the topic
    would rewrite names; with it, a replay changes nothing, as for de-duplication decisions.
    """

    settings: NameSettings
    index: IndexedNames
    name: str = "names"
    _book: NameBook = field(init=False, repr=False)

    def load(self) -> None:
        self._book = NameBook(self.settings.max_names)
        self._book.add(self.index.most_cited(self.settings.max_names))

    def run(self, batch: list[EnrichedArticle]) -> list[EnrichedArticle]:
        settings = self.settings
        indexed = self.index.people_of([item.article.id for item in batch])
        completed = []
        for item in batch:
            if (before := indexed.get(item.article.id)) is not None:
                people = as_indexed(item.entities, before)
            else:
                people = complete_people(
                    item.entities, self._book.known, settings.min_documents, settings.dominance
                )
            completed.append(replace(item, entities=people))
        self._book.add(Counter(n for item in completed for n in full_person_names(item.entities)))
        return completed


class IndexedPeople:
    """The index as the names stage sees it: most cited full names, and each article's people.

    Both are optimisations of quality, not correctness: when Elasticsearch cannot answer, the
    book starts empty and fills from the stream, and articles are completed from the book.
    """

    def __init__(self, settings: ElasticsearchSettings) -> None:
        self._settings = settings
        self._es: Elasticsearch | None = None

    def most_cited(self, limit: int) -> dict[str, int]:
        try:
            response = self._client().search(
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
        buckets = response["aggregations"]["people"]["buckets"]
        return {bucket["key"]: bucket["doc_count"] for bucket in buckets}

    def people_of(self, article_ids: list[str]) -> dict[str, set[str]]:
        """The people each article was indexed with, read from the copy the sink keeps.

        Unlike the book, this is what keeps a replay from renaming anyone, so an index that does
        not answer is retried within the budget and then fails the bundle (nothing committed).
        """
        if not article_ids:
            return {}
        alias = self._settings.index_alias
        try:
            stored = retry_within_budget(
                lambda: stored_sources(self._client(), alias, article_ids, ["entities.PERSON"]),
                self._settings,
                f"the index {alias!r} (the people of indexed articles)",
            )
        except ElasticsearchUnavailable as exc:
            metrics.lookup_failed(NameCompletion.name, type(exc.__cause__ or exc).__name__)
            raise
        return {
            doc_id: set(source.get("entities", {}).get("PERSON", []))
            for doc_id, source in stored.items()
        }

    def _client(self) -> Elasticsearch:
        if self._es is None:
            self._es = client(self._settings)
        return self._es
