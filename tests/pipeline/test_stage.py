"""RunStage on Beam's portable in-process runner: one poisoned article, one dead letter."""

from __future__ import annotations

from dataclasses import dataclass, replace
from datetime import UTC, datetime

import apache_beam as beam
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from newsflow.article import Article
from pipeline.dead_letter import DeadLetter
from pipeline.enriched import EnrichedArticle, LanguageGuess
from pipeline.kafka_source import Origin
from pipeline.stage import Batch, RunStage

POISON = "poison pill"
TAGGED = LanguageGuess("en", 1.0)


@dataclass
class TagUnlessPoisoned:
    """A stage that sets the language, and fails any batch holding the poisoned article."""

    name: str = "tagger"
    loaded: bool = False

    def load(self) -> None:
        self.loaded = True

    def run(self, batch: list[EnrichedArticle]) -> list[EnrichedArticle]:
        if not self.loaded:
            raise RuntimeError("run() before load()")
        for item in batch:
            if item.article.title == POISON:
                raise ValueError(f"cannot tag article {item.article.id}")
        return [replace(item, language=TAGGED) for item in batch]


def enriched(title: str, offset: int) -> EnrichedArticle:
    article = Article.create(
        source="DN", title=title, body="Body.", fetched_at=datetime(2026, 11, 26, tzinfo=UTC)
    )
    return EnrichedArticle(article, Origin("articles.raw", 0, offset))


def expected_letter(item: EnrichedArticle) -> DeadLetter:
    return DeadLetter(
        origin=item.origin,
        stage="tagger",
        error_class="ValueError",
        error=f"cannot tag article {item.article.id}",
        payload=item.article.to_json(),
        article_id=item.article.id,
    )


def run_stage(
    batches: list[list[EnrichedArticle]],
    expected_main: list[list[EnrichedArticle]],
    expected_dead: list[DeadLetter],
) -> None:
    """Run the stage on batches; compare the enriched articles and the dead letters out."""
    with BeamTestPipeline(runner=FnApiRunner()) as pipeline:
        out = (
            pipeline
            | beam.Create([Batch(tuple(batch)) for batch in batches])
            | beam.ParDo(RunStage(TagUnlessPoisoned()))
        )
        articles = out | "Articles" >> beam.FlatMap(
            lambda batch: [list(batch.articles)] if batch.articles else []
        )
        letters = out | "Letters" >> beam.FlatMap(lambda batch: batch.dead_letters)
        assert_that(articles, equal_to(expected_main), label="main")
        assert_that(letters, equal_to(expected_dead), label="dead letters")


def test_dead_letters_already_in_the_batch_travel_on() -> None:
    earlier = expected_letter(enriched("rejected upstream", 7))
    with BeamTestPipeline(runner=FnApiRunner()) as pipeline:
        out = (
            pipeline
            | beam.Create([Batch((enriched("a", 1),), (earlier,))])
            | beam.ParDo(RunStage(TagUnlessPoisoned()))
        )
        assert_that(out | beam.Map(lambda batch: batch.dead_letters), equal_to([(earlier,)]))


def test_one_failing_article_goes_to_the_dead_letter_output() -> None:
    first, poison, last = enriched("first", 1), enriched(POISON, 2), enriched("last", 3)
    run_stage(
        [[first, poison, last]],
        expected_main=[[replace(first, language=TAGGED), replace(last, language=TAGGED)]],
        expected_dead=[expected_letter(poison)],
    )


def test_healthy_batches_pass_whole() -> None:
    one = [enriched("a", 1), enriched("b", 2)]
    two = [enriched("c", 3)]
    run_stage(
        [one, two],
        expected_main=[[replace(i, language=TAGGED) for i in batch] for batch in (one, two)],
        expected_dead=[],
    )


def test_a_batch_of_only_poison_emits_no_main_output() -> None:
    poison = enriched(POISON, 9)
    run_stage([[poison]], expected_main=[], expected_dead=[expected_letter(poison)])
