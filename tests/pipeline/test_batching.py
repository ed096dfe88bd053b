"""Batches per bundle: small first and last, full between, nothing lost or reordered."""

from __future__ import annotations

import apache_beam as beam
import pytest
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.testing.test_pipeline import TestPipeline as BeamTestPipeline
from apache_beam.testing.util import assert_that, equal_to
from apache_beam.transforms.window import GlobalWindow
from apache_beam.typehints import List
from apache_beam.typehints.decorators import TypeCheckError

from newsflow.settings import NlpSettings
from pipeline.batching import BatchBundle, batch_ready, last_batches


def sizes(records: int, batch_size: int = 32, edge_size: int = 8) -> list[int]:
    """The batch sizes of one bundle of ``records``, as the DoFn emits them."""
    emitted: list[int] = []
    buffered = 0
    for _ in range(records):
        buffered += 1
        if size := batch_ready(buffered, bool(emitted), batch_size, edge_size):
            emitted.append(size)
            buffered -= size
    return emitted + last_batches(buffered, edge_size)


@pytest.mark.parametrize(
    ("records", "expected"),
    [
        (0, []),
        (5, [5]),
        (8, [8]),
        (10, [8, 2]),
        (16, [8, 8]),
        (30, [8, 14, 8]),
        (100, [8, 32, 32, 20, 8]),
    ],
)
def test_the_first_and_last_batch_of_a_bundle_are_small(records: int, expected: list[int]) -> None:
    assert sizes(records) == expected


def test_edges_as_large_as_batches_give_full_batches() -> None:
    """NER in the worker's process: no reason for small batches."""
    assert sizes(100, edge_size=32) == [32, 32, 4, 32]
    assert all(size <= 32 for size in sizes(1000, edge_size=32))


@pytest.mark.parametrize("records", range(0, 200, 7))
def test_no_batch_is_empty_or_too_large_and_every_record_is_in_one(records: int) -> None:
    planned = sizes(records)
    assert sum(planned) == records
    assert all(1 <= size <= 32 for size in planned)


def test_the_dofn_cuts_one_bundle_as_planned_in_order() -> None:
    batcher = BatchBundle(32, 8)
    batcher.start_bundle()
    out = [value for record in range(100) for value in batcher.process(record)]
    out += list(batcher.finish_bundle())
    assert [len(value.value) for value in out] == sizes(100)
    assert [record for value in out for record in value.value] == list(range(100))
    assert all(value.windows == (GlobalWindow(),) for value in out)
    batcher.start_bundle()  # the next bundle starts small again
    assert [len(v.value) for r in range(8) for v in batcher.process(r)] == [8]


def test_every_record_reaches_the_stages_once_through_a_runner() -> None:
    with BeamTestPipeline(runner=FnApiRunner()) as pipeline:
        batches = pipeline | beam.Create(list(range(100))) | beam.ParDo(BatchBundle(32, 8))
        assert_that(batches | beam.FlatMap(lambda batch: batch), equal_to(list(range(100))))


def test_beam_knows_the_batches_are_lists_of_the_input_records() -> None:
    """Not ``WindowedValue``, which the methods' annotations say and Beam 2.78 believed."""
    pipeline = beam.Pipeline()
    batches = pipeline | beam.Create([1, 2, 3]) | beam.ParDo(BatchBundle(32, 8))
    assert batches.element_type == List[int]
    batches | "Sum" >> beam.Map(sum).with_input_types(list[int])
    with pytest.raises(TypeCheckError, match=r"applied to a PCollection of type 'List\[.*int.*\]'"):
        batches | "Upper" >> beam.Map(str.upper).with_input_types(str)


def test_edge_batches_larger_than_batches_are_refused() -> None:
    with pytest.raises(ValueError, match="edge_size 40 must be between 1 and 32"):
        BatchBundle(32, 40)
    with pytest.raises(ValueError, match="edge_batch_size 40 is above batch_size 32"):
        NlpSettings(batch_size=32, edge_batch_size=40)
