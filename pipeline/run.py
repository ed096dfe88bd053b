"""The pipeline topology, in one place.

Kafka -> decode -> language -> translation -> dedupe -> entities -> Elasticsearch.

Each bundle's records are cut into batches (``pipeline.batching``), and each travels as a
``Batch`` through a linear chain of DoFns (no Flatten, so the runner fuses it into one stage and
runs it per bundle): every stage passes on what it
enriched and adds what it could not handle as dead letters; ``WriteDeadLetters`` then releases
the origins of everything indexed or dead-lettered, and ``CommitOffsets``, last in the same
bundle, commits them. An offset is committed only once its record is in Elasticsearch or in
the dead-letter topic.
"""

from __future__ import annotations

import logging
import signal
import threading
from collections.abc import Sequence
from functools import partial

import apache_beam as beam
from apache_beam.options.pipeline_options import PipelineOptions

from newsflow.errors import NewsflowError
from newsflow.index import ElasticsearchUnavailable, client, ensure_index
from newsflow.kafka_topics import ensure_topics
from newsflow.settings import Settings
from pipeline import endpoint
from pipeline.batching import BatchBundle
from pipeline.dead_letter import WriteDeadLetters
from pipeline.decode import DecodeArticles
from pipeline.dedupe import Deduplication
from pipeline.dedupe_store import ElasticsearchFingerprints
from pipeline.elasticsearch_sink import IndexDocuments
from pipeline.entities import EntityExtraction
from pipeline.kafka_source import (
    CommitOffsets,
    ReadFromKafkaPartitions,
    assigned_partitions,
    request_drain,
)
from pipeline.language import LanguageDetection
from pipeline.names import IndexedPeople, NameCompletion
from pipeline.runners import runner_for
from pipeline.stage import RunStage, RunStageAhead
from pipeline.translation import TranslationStage, build_translator
from pipeline.translation_memory import IndexedTranslations

_LOG = logging.getLogger("newsflow.pipeline")


def build(pipeline: beam.Pipeline, settings: Settings, stop_when_idle: float | None) -> None:
    """Add the newsflow transforms to ``pipeline``: one linear chain, fused into one stage."""
    nlp = settings.nlp
    enriched = (
        pipeline
        | "ReadKafka" >> ReadFromKafkaPartitions(settings.kafka, stop_when_idle)
        | "Batch"
        >> beam.ParDo(
            BatchBundle(
                nlp.batch_size,
                nlp.edge_batch_size if nlp.ner_in_child_process else nlp.batch_size,
            )
        )
        | "Decode" >> beam.ParDo(DecodeArticles(settings.kafka.max_message_bytes))
        | "DetectLanguage"
        >> beam.ParDo(
            RunStage(
                LanguageDetection(
                    nlp.languages, nlp.min_language_confidence, nlp.max_language_chars
                )
            )
        )
        | "Translate"
        >> beam.ParDo(
            RunStage(
                TranslationStage(
                    settings.translation,
                    memory_factory=partial(IndexedTranslations, settings.elasticsearch),
                )
            )
        )
    )
    if settings.dedupe.enabled:
        enriched |= "Deduplicate" >> beam.ParDo(
            RunStage(
                Deduplication(
                    settings.dedupe,
                    partial(ElasticsearchFingerprints, settings.elasticsearch, settings.dedupe),
                )
            )
        )
    entities = EntityExtraction(
        nlp.spacy_model, nlp.spacy_components, nlp.batch_size, nlp.max_ner_chars, nlp.source_models
    )
    enriched |= "ExtractEntities" >> beam.ParDo(
        RunStageAhead(entities) if nlp.ner_in_child_process else RunStage(entities)
    )
    if settings.names.enabled:
        enriched |= "CompleteNames" >> beam.ParDo(
            RunStage(NameCompletion(settings.names, IndexedPeople(settings.elasticsearch)))
        )
    (
        enriched
        | "Index" >> beam.ParDo(IndexDocuments(settings.elasticsearch))
        | "WriteDeadLetters" >> beam.ParDo(WriteDeadLetters(settings.kafka))
        | "CommitOffsets" >> beam.ParDo(CommitOffsets(settings.kafka))
    )


class PipelineNotReady(NewsflowError):
    pass


def preflight(settings: Settings) -> None:
    """Fail at start-up, with what to install, rather than in a worker mid-stream."""
    try:
        build_translator(settings.translation).load()
        nlp = settings.nlp
        EntityExtraction(nlp.spacy_model, nlp.spacy_components, 1, 1_000, nlp.source_models).load()
    except RuntimeError as exc:
        raise PipelineNotReady(str(exc)) from None
    es = client(settings.elasticsearch)
    try:
        ensure_index(es, settings.elasticsearch)  # an outdated index is reported here, clearly
    except ElasticsearchUnavailable as exc:
        _LOG.warning("%s; the sink will keep trying within the retry budget", exc)
    finally:
        es.close()


def run(
    settings: Settings, beam_args: Sequence[str] = (), stop_when_idle: float | None = None
) -> None:
    """Run the pipeline until stopped (or, with ``stop_when_idle``, until the topic is drained)."""
    logging.getLogger("kafka").setLevel(logging.WARNING)
    # The client logs a traceback per failed connection attempt; the sink says it once per retry.
    logging.getLogger("elastic_transport").setLevel(logging.ERROR)
    preflight(settings)
    ensure_topics(settings.kafka)
    partitions = assigned_partitions(settings.kafka)  # a worker with none fails here, clearly
    options = PipelineOptions([*beam_args, "--streaming"], save_main_session=False)
    _LOG.info(
        "reading %s partitions %s (worker %d of %d) from %s, indexing into %s at %s%s",
        settings.kafka.raw_topic,
        ", ".join(map(str, partitions)),
        settings.kafka.worker_index,
        settings.kafka.worker_count,
        settings.kafka.bootstrap_servers,
        settings.elasticsearch.index_alias,
        settings.elasticsearch.url,
        f"; stopping after {stop_when_idle:g}s idle" if stop_when_idle is not None else "",
    )
    previous = signal.signal(signal.SIGTERM, _drain_on_signal)
    recycle = _recycle_timer(settings.pipeline.restart_after_hours)
    try:
        with (
            endpoint.serve(settings),
            beam.Pipeline(
                runner=runner_for(options, settings.stack.state_dir), options=options
            ) as pipeline,
        ):
            build(pipeline, settings, stop_when_idle)
    finally:
        signal.signal(signal.SIGTERM, previous)
        if recycle is not None:
            recycle.cancel()
    _LOG.info("pipeline finished: every partition drained and committed; exiting")


def _recycle_timer(hours: float | None) -> threading.Timer | None:
    """Drain after ``pipeline.restart_after_hours``, so the supervisor starts a fresh process."""
    if hours is None:
        return None

    def recycle() -> None:
        _LOG.info(
            "running for %gh (pipeline.restart_after_hours): finishing the bundles in flight, "
            "then exiting 0 for the supervisor to start a fresh process",
            hours,
        )
        request_drain()

    timer = threading.Timer(hours * 3600, recycle)
    timer.daemon = True
    timer.start()
    return timer


def _drain_on_signal(signum: int, _frame: object) -> None:
    _LOG.info("received signal %d: finishing the bundles in flight, then exiting", signum)
    request_drain()
