"""Named entities of the English text, normalized for the people/organisation/place facets.

Raw spaCy spans make poor facets: one person shows up as "President Joe Biden", "Biden" and
"Biden's", and a city the model tags as a person in one sentence would list "Kiev" among the
people. So mentions are normalized, short names are merged into the full name seen in the same
document, and each name gets one label per document. NER runs on the English text (original or
translation) because the model is English.
"""

from __future__ import annotations

import re
from collections import Counter
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any

from pipeline.enriched import EnrichedArticle, Entity

#: Labels worth a facet, in the order that breaks ties between conflicting labels of one name.
LABEL_PREFERENCE = (
    "GPE",
    "LOC",
    "ORG",
    "NORP",
    "PERSON",
    "FAC",
    "EVENT",
    "PRODUCT",
    "WORK_OF_ART",
    "LAW",
)
#: spaCy OntoNotes labels kept; the rest (DATE, CARDINAL, MONEY, ...) are not facets.
FACET_LABELS = frozenset(LABEL_PREFERENCE)
#: Longest mention kept; longer spans are tokenizer accidents, not names.
MAX_ENTITY_CHARS = 100
#: Labels whose names lose a leading "the" ("the United Nations" -> "United Nations").
DETERMINER_LABELS = frozenset({"ORG", "GPE", "LOC"})
#: Titles and roles stripped from the front of a person's name, compared case-insensitively.
PERSON_TITLES = frozenset(
    {
        "President",
        "Vice President",
        "Prime Minister",
        "Deputy Prime Minister",
        "Foreign Minister",
        "Defence Minister",
        "Defense Minister",
        "Minister",
        "Secretary General",
        "Secretary-General",
        "Secretary of State",
        "Secretary",
        "Chancellor",
        "Premier",
        "Governor",
        "Mayor",
        "Senator",
        "Sen",
        "Rep",
        "Ambassador",
        "Commissioner",
        "Speaker",
        "General",
        "Gen",
        "Colonel",
        "Col",
        "Mr",
        "Mrs",
        "Ms",
        "Dr",
        "Prof",
        "Professor",
        "Sir",
        "Dame",
        "Lord",
        "Lady",
        "Pope",
        "King",
        "Queen",
        "Prince",
        "Princess",
        "Crown Prince",
        "Sheikh",
        "Emir",
        "Ayatollah",
    }
)
_TITLES = frozenset(title.casefold() for title in PERSON_TITLES)
_LONGEST_TITLE = max(len(title.split()) for title in PERSON_TITLES)
_SPACES = re.compile(r"\s+")
_POSSESSIVE = ("'s", "\u2019s")
_INITIALS = re.compile(r"(?:\b\w\.){2,}$")
#: Punctuation around a name that is not part of it; a final "." is kept after initials (U.S.).
_OUTER_PUNCTUATION = "\"'\u2018\u2019\u201c\u201d\u00ab\u00bb()[]{},;:!?-\u2013\u2014"
#: Source-language models trained on WikiNER say PER where OntoNotes says PERSON.
_FACET_LABEL_OF = {"PER": "PERSON"}
#: A name also tagged with one of these is not a person.
_NOT_PERSON = frozenset({"GPE", "LOC", "ORG"})


@dataclass(frozen=True)
class _Mention:
    label: str
    name: str
    surface: str
    offset: int


def clean_surface(text: str) -> str:
    """Collapse whitespace; strip quotes, possessive "'s" and trailing punctuation."""
    name = _SPACES.sub(" ", text).strip()
    previous = None
    while name != previous:
        previous = name
        name = name.rstrip(_OUTER_PUNCTUATION).rstrip()
        if name.endswith(_POSSESSIVE):
            name = name[:-2].rstrip()
        if name.endswith(".") and not _INITIALS.search(name):
            name = name[:-1].rstrip()
    return name.lstrip(_OUTER_PUNCTUATION).lstrip()


def strip_determiner(name: str) -> str:
    """Drop a leading "the" before a capitalized name: "the United Nations" -> "United Nations"."""
    first, _, rest = name.partition(" ")
    if first.casefold() == "the" and rest[:1].isupper():
        return rest
    return name


def strip_titles(name: str) -> str:
    """Drop leading titles ("Prime Minister Rishi Sunak" -> "Rishi Sunak"); "King" alone stays."""
    words = name.split(" ")
    stripped = True
    while stripped:
        stripped = False
        for size in range(min(_LONGEST_TITLE, len(words) - 1), 0, -1):
            if " ".join(words[:size]).rstrip(".").casefold() in _TITLES:
                words = words[size:]
                stripped = True
                break
    return " ".join(words)


def fix_person_case(name: str) -> str:
    """Title-case an all-caps name ("JOE BIDEN"); three letters or fewer ("JFK") are initials."""
    if name.isupper() and (" " in name or len(name) > 3):
        return name.title()
    return name


def normalize_name(label: str, text: str) -> str:
    """The facet name of one mention; "" when nothing name-like is left."""
    name = clean_surface(text)
    if label in DETERMINER_LABELS:
        name = strip_determiner(name)
    if label == "PERSON":
        name = fix_person_case(strip_titles(name))
    return name


def resolve_label(votes: Counter[str]) -> str:
    """One label for a name tagged differently across a document.

    A name also tagged as a place or organisation is not a person, and a name also tagged GPE is
    not an ORG: OntoNotes' GPE covers a city or country standing for its government ("Kiev has
    stated", "the Vilnius summit"), the use spaCy mislabels ORG. Of what is left, the majority
    wins, ties going to the earlier label of ``LABEL_PREFERENCE``.
    """
    candidates = Counter(votes)
    if "PERSON" in candidates and _NOT_PERSON & set(candidates):
        del candidates["PERSON"]
    if "GPE" in candidates:
        candidates.pop("ORG", None)
    return max(candidates, key=lambda label: (candidates[label], -LABEL_PREFERENCE.index(label)))


def short_for(longer: str, shorter: str) -> bool:
    """Whether ``shorter`` is a way to write ``longer`` with fewer of its words.

    A surname alone ("Erdogan") is how news refers back to a person; a single given name is not,
    so "Joe" never stands for "Joe Biden". Two words or more may also be the first words
    ("Recep Tayyip") or skip middle ones ("Recep Erdogan", "George Bush" for "George W. Bush").
    """
    long_words, short_words = longer.casefold().split(), shorter.casefold().split()
    size = len(short_words)
    if size >= len(long_words):
        return False
    if long_words[-size:] == short_words:
        return True
    return size >= 2 and short_words[0] == long_words[0] and _in_order(short_words, long_words)


def _in_order(words: list[str], within: list[str]) -> bool:
    remaining = iter(within)
    return all(word in remaining for word in words)


class LongerNames:
    """Names added so far, found by a shorter way to write them: ``short_for``'s inverse.

    Comparing a name with every known one is quadratic, and a common surname in a full name
    book has hundreds of neighbours ("... Smith"): 130 ms per lookup at 560 of them. A shorter
    form is either a suffix of the longer name's words, looked up directly, or keeps its first
    word and skips some, so only names starting with that word and longer than the form (three
    words or more) are compared.
    """

    def __init__(self, names: Iterable[str] = ()) -> None:
        self._by_suffix: dict[tuple[str, ...], set[str]] = {}
        self._by_first_and_size: dict[tuple[str, int], set[str]] = {}
        self._longest = 0
        for name in names:
            self.add(name)

    def add(self, name: str) -> None:
        words = name.casefold().split()
        for size in range(1, len(words)):
            self._by_suffix.setdefault(tuple(words[-size:]), set()).add(name)
        if len(words) >= 3:
            self._by_first_and_size.setdefault((words[0], len(words)), set()).add(name)
            self._longest = max(self._longest, len(words))

    def of(self, shorter: str) -> set[str]:
        """The added names ``shorter`` is short for (``short_for(name, shorter)``)."""
        words = shorter.casefold().split()
        if not words:
            return set()
        found = set(self._by_suffix.get(tuple(words), ()))
        if len(words) >= 2:  # or it keeps the first word and skips some of a longer name
            for size in range(len(words) + 1, self._longest + 1):
                found.update(
                    longer
                    for longer in self._by_first_and_size.get((words[0], size), ())
                    if short_for(longer, shorter)
                )
        return found


def person_roots(names: Iterable[str]) -> dict[str, str]:
    """Each person name -> the full name it is short for, or itself.

    "Zelensky" joins "Volodymyr Zelensky" when that is the only longer name it could be short
    for; "Biden" next to both "Joe Biden" and "Hunter Biden" stays on its own.
    """
    roots: dict[str, str] = {}
    longer_names = LongerNames()
    for name in sorted(set(names), key=lambda n: -len(n.split())):
        fulls = {roots[longer] for longer in longer_names.of(name)}
        roots[name] = fulls.pop() if len(fulls) == 1 else name
        longer_names.add(name)
    return roots


def _mentions(spans: Iterable[tuple[str, str, int]]) -> list[_Mention]:
    """The facet-worthy mentions, in document order."""
    found: list[_Mention] = []
    for model_label, text, offset in spans:
        label = _FACET_LABEL_OF.get(model_label, model_label)
        surface = _SPACES.sub(" ", text).strip()
        if label not in FACET_LABELS or len(surface) > MAX_ENTITY_CHARS:
            continue
        if name := normalize_name(label, surface):
            found.append(_Mention(label, name, surface, offset))
    return sorted(found, key=lambda m: m.offset)


def normalize_entities(spans: Iterable[tuple[str, str, int]]) -> tuple[Entity, ...]:
    """(label, text, start_char) of every mention -> the document's entities, most cited first."""
    mentions = _mentions(spans)
    votes: dict[str, Counter[str]] = {}
    for mention in mentions:
        votes.setdefault(mention.name, Counter())[mention.label] += 1
    labels = {name: resolve_label(counts) for name, counts in votes.items()}
    roots = person_roots(name for name, label in labels.items() if label == "PERSON")
    grouped: dict[tuple[str, str], list[_Mention]] = {}
    for mention in mentions:
        label = labels[mention.name]
        grouped.setdefault((label, roots.get(mention.name, mention.name)), []).append(mention)
    entities = [
        Entity(
            label=label,
            name=name,
            surface_forms=tuple(dict.fromkeys(m.surface for m in found)),
            mentions=len(found),
            first_offset=found[0].offset,
        )
        for (label, name), found in grouped.items()
    ]
    return tuple(sorted(entities, key=citation_order))


def citation_order(entity: Entity) -> tuple[int, int, str, str]:
    """Most cited first, then first mentioned: the order of a document's entities."""
    return (-entity.mentions, entity.first_offset, entity.label, entity.name)


@dataclass
class EntityExtraction:
    """Stage: set ``EnrichedArticle.entities`` from the English text; () when there is none.

    With ``source_models`` ({"fr": "fr_core_news_sm"}), articles in those languages also get
    ``original_entities`` from their original text, for names the translation loses.
    """

    model: str
    components: list[str]
    batch_size: int
    max_chars: int
    source_models: dict[str, str] = field(default_factory=dict)
    name: str = "entities"
    _nlp: Any = field(default=None, repr=False)
    _source_nlp: dict[str, Any] = field(default_factory=dict, repr=False)

    def load(self) -> None:
        nlp = load_model(self.model, "NEWSFLOW_NLP__SPACY_MODEL", enable=self.components)
        missing = set(self.components) - set(nlp.pipe_names)
        if missing:
            raise RuntimeError(f"spaCy model {self.model!r} has no component(s) {sorted(missing)}")
        self._nlp = nlp
        self._source_nlp = {
            language: ner_only(load_model(model, "NEWSFLOW_NLP__SOURCE_MODELS"))
            for language, model in self.source_models.items()
        }

    def run(self, batch: list[EnrichedArticle]) -> list[EnrichedArticle]:
        english = self._entities(self._nlp, {id(i): i.english_text for i in batch})
        original: dict[int, tuple[Entity, ...]] = {}
        for language, nlp in self._source_nlp.items():
            texts = {id(i): i.text for i in batch if i.language and i.language.code == language}
            original.update(self._entities(nlp, texts))
        return [
            replace(
                item,
                entities=english.get(id(item), ()),
                original_entities=original.get(id(item), ()),
            )
            for item in batch
        ]

    def _entities(self, nlp: Any, texts: Mapping[int, str | None]) -> dict[int, tuple[Entity, ...]]:
        present = {key: text for key, text in texts.items() if text is not None}
        docs = nlp.pipe(
            (text[: self.max_chars] for text in present.values()), batch_size=self.batch_size
        )
        return {
            key: normalize_entities((e.label_, e.text, e.start_char) for e in doc.ents)
            for key, doc in zip(present, docs, strict=True)
        }


def load_model(model: str, setting: str, **options: Any) -> Any:
    """spaCy's ``load``, with the setting that names the model when it is not installed."""
    import spacy

    try:
        return spacy.load(model, **options)
    except OSError as exc:
        raise RuntimeError(
            f"spaCy model {model!r} is not installed; pip install it or change {setting}"
        ) from exc


def ner_only(nlp: Any) -> Any:
    """``nlp`` running only its NER and the tok2vec that feeds it (when it has its own, none)."""
    feeding = [
        name
        for name, component in nlp.pipeline
        if "ner" in getattr(component, "listening_components", ())
    ]
    if "ner" not in nlp.pipe_names:
        raise RuntimeError(f"spaCy model {nlp.meta.get('name')!r} has no ner component")
    nlp.select_pipes(enable=["ner", *feeding])
    return nlp
