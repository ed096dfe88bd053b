"""A stage in a child process: answers by ticket, failures come back, a dead child is replaced.

Real child processes (spawned like the pipeline's), no services.
"""

from __future__ import annotations

import json
import logging
import os
from collections.abc import Iterator
from dataclasses import dataclass, replace
from datetime import UTC, datetime

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to

from newsflow.article import Article
from newsflow.logs import JsonFormatter
from pipeline.enriched import EnrichedArticle, LanguageGuess
from pipeline.kafka_source import Origin
from pipeline.stage import Batch, RunStageAhead
from pipeline.stage_process import StageProcess, StageProcessDied

TAGGED = LanguageGuess("en", 1.0)
POISON = "poison pill"  # the stage raises on it
DEADLY = "deadly"  # the stage's process exits on it, as a crash in native code would


@dataclass
class Tagger:
    """Sets the language; raises on the poisoned article, exits the process on the deadly one."""

    name: str = "tagger"
    fail_to_load: bool = False
    pid: int | None = None

    def load(self) -> None:
        if self.fail_to_load:
            raise RuntimeError("model 'xx' is not installed; pip install it")
        self.pid = os.getpid()
        logging.getLogger("newsflow.test").info("tagger loaded in %d", self.pid)

    def run(self, batch: list[EnrichedArticle]) -> list[EnrichedArticle]:
        if self.pid != os.getpid():
            raise RuntimeError("run() in a process that did not load()")
        for item in batch:
            if item.article.title == POISON:
                raise ValueError(f"cannot tag article {item.article.id}")
            if item.article.title == DEADLY:
                os._exit(3)
        return [replace(item, language=TAGGED) for item in batch]


def enriched(title: str, offset: int = 0) -> EnrichedArticle:
    article = Article.create(
        source="DN", title=title, body="Body.", fetched_at=datetime(2026, 11, 26, tzinfo=UTC)
    )
    return EnrichedArticle(article, Origin("articles.raw", 0, offset))


def tagged(*items: EnrichedArticle) -> list[EnrichedArticle]:
    return [replace(item, language=TAGGED) for item in items]


@pytest.fixture
def child() -> Iterator[StageProcess]:
    process = StageProcess(Tagger())
    process.load()
    yield process
    process.close()


def test_the_stage_runs_in_another_process_and_answers_by_ticket(child: StageProcess) -> None:
    batches = [[enriched("a")], [enriched("b"), enriched("c")], [enriched("d")]]
    tickets = [child.submit(batch) for batch in batches]
    for ticket in (tickets[2], tickets[0], tickets[1]):
        articles, seconds = child.result(ticket)
        assert articles == tagged(*batches[tickets.index(ticket)])
        assert 0 <= seconds < 60
    assert child.run([enriched("e")]) == tagged(enriched("e"))


def test_a_failing_batch_raises_its_own_error_and_the_others_still_answer(
    child: StageProcess,
) -> None:
    ok, poison = enriched("fine"), enriched(POISON)
    first, second, third = child.submit([ok]), child.submit([poison]), child.submit([ok])
    with pytest.raises(ValueError, match=f"cannot tag article {poison.article.id}"):
        child.result(second)
    assert child.result(first)[0] == child.result(third)[0] == tagged(ok)


def test_a_dead_child_fails_the_batches_it_held_and_a_new_one_takes_over(
    child: StageProcess,
) -> None:
    ok = enriched("fine")
    before, deadly, after = child.submit([ok]), child.submit([enriched(DEADLY)]), child.submit([ok])
    assert child.result(before)[0] == tagged(ok)
    with pytest.raises(StageProcessDied, match="exit code 3"):
        child.result(deadly)
    with pytest.raises(StageProcessDied):  # it was queued in the dead child
        child.result(after)
    assert child.run([ok]) == tagged(ok)  # a new child


def test_abandoned_answers_are_dropped_whether_they_came_back_or_not(
    child: StageProcess,
) -> None:
    """A bundle that fails midway leaves tickets nobody collects: they must not pile up."""
    arrived, in_flight = child.submit([enriched("a")]), child.submit([enriched("b")])
    child.result(child.submit([enriched("c")]))  # the answers before it arrive first
    assert child.held == 2
    child.abandon([arrived, in_flight])
    later, deadly = child.submit([enriched("d")]), child.submit([enriched(DEADLY)])
    child.abandon([later, deadly])  # still in the child, then lost with it
    with pytest.raises(StageProcessDied):
        child.run([enriched("e")])  # queued behind the deadly batch
    assert child.run([enriched("e")]) == tagged(enriched("e"))
    assert child.held == 0


def test_a_stage_that_cannot_load_says_why_at_load() -> None:
    process = StageProcess(Tagger(fail_to_load=True))
    with pytest.raises(RuntimeError, match="model 'xx' is not installed; pip install it"):
        process.load()


def test_close_ends_the_child(child: StageProcess) -> None:
    assert child.run([enriched("a")])
    process = child._process
    assert process is not None and process.is_alive()
    child.close()
    assert not process.is_alive() and process.exitcode == 0


def assert_ahead_tags_or_dead_letters_each(batches: list[list[EnrichedArticle]]) -> None:
    """RunStageAhead over ``batches``: each article tagged, or dead-lettered alone."""
    with BeamTestPipeline(runner=FnApiRunner()) as pipeline:
        out = (
            pipeline
            | beam.Create([Batch(tuple(batch)) for batch in batches])
            | beam.ParDo(RunStageAhead(Tagger()))
        )
        titles = out | "Titles" >> beam.FlatMap(
            lambda batch: [i.article.title for i in batch.articles if i.language == TAGGED]
        )
        letters = out | "Letters" >> beam.FlatMap(
            lambda batch: [(d.article_id, d.error_class) for d in batch.dead_letters]
        )
        expected_titles = [
            i.article.title
            for batch in batches
            for i in batch
            if i.article.title not in (POISON, DEADLY)
        ]
        expected_letters = [
            (i.article.id, "ValueError" if i.article.title == POISON else "StageProcessDied")
            for batch in batches
            for i in batch
            if i.article.title in (POISON, DEADLY)
        ]
        assert_that(titles, equal_to(expected_titles), label="tagged")
        assert_that(letters, equal_to(expected_letters), label="dead letters")


def test_ahead_every_article_is_tagged_or_dead_lettered_alone() -> None:
    batches = [
        [enriched(f"article {n}", n) for n in range(start, start + 3)] for start in range(0, 30, 3)
    ]
    batches[2][1] = enriched(POISON, 7)
    batches[5][0] = enriched(DEADLY, 15)
    assert_ahead_tags_or_dead_letters_each(batches)


def test_the_child_logs_like_its_parent_and_without_beams_import_warning(
    capfd: pytest.CaptureFixture[str],
) -> None:
    json_lines = logging.StreamHandler()
    json_lines.setFormatter(JsonFormatter())
    logging.getLogger().addHandler(json_lines)
    try:
        process = StageProcess(Tagger())  # unpickling it imports Beam in the child
        process.load()
        process.close()
    finally:
        logging.getLogger().removeHandler(json_lines)
    lines = [line for line in capfd.readouterr().err.splitlines() if line.strip()]
    loaded = [json.loads(line) for line in lines if "tagger loaded" in line]
    assert [(entry["logger"], entry["level"]) for entry in loaded] == [("newsflow.test", "INFO")]
    assert not [line for line in lines if "apitools" in line]


def test_ahead_abandons_what_a_failed_bundle_left_in_the_child() -> None:
    """The runner retries a failed bundle's batches; their first answers must not pile up."""
    ahead = RunStageAhead(Tagger())
    ahead.setup()
    try:
        ahead.start_bundle()
        emitted = [
            out
            for n in range(3)
            for out in ahead.process(Batch((enriched(f"a{n}", n),)), timestamp=0, window=None)
        ]
        assert len(emitted) == 2  # the third is still in the child when the bundle fails
        ahead.start_bundle()  # the runner moves on: no finish_bundle for the failed one
        retried = Batch((enriched("a2", 2),))
        assert not list(ahead.process(retried, timestamp=0, window=None))
        (out,) = ahead.finish_bundle()
        assert out.value.articles == tuple(tagged(*retried.articles))
        assert ahead._process.held == 0
    finally:
        ahead.teardown()
