"""Cut each bundle's records into the batches the stages run on.

With NER in its own process (``RunStageAhead``), that process overlaps the rest of the chain only
inside a bundle: while the bundle's first batch is decoded, identified, translated and
de-duplicated it has nothing to tag, and while it tags the last one the chain has nothing left
to do. Both waits last as long as those two batches take, so they are small (``edge_size``) and
the batches between them full (``batch_size``), which keeps the per-batch costs (Elasticsearch
lookups, one bulk request) as low as before.

Beam's ``BatchElements`` cannot do this: it sizes batches by timing what runs downstream of it,
which with NER in another process no longer measures a batch's cost, and it varies the size on
purpose to explore. Like ``BatchElements`` in the global window, batches are emitted at the end
of the window; the newsflow pipeline does not window.
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

import apache_beam as beam
from apache_beam.transforms.window import GlobalWindows
from apache_beam.utils.windowed_value import WindowedValue

Record = beam.typehints.TypeVariable("Record")


def batch_ready(buffered: int, emitted: bool, batch_size: int, edge_size: int) -> int:
    """How many of the ``buffered`` records to emit now as one batch; 0: wait for more.

    The bundle's first batch goes at ``edge_size`` records; later ones at ``batch_size``, and only
    while ``edge_size`` records stay behind for the bundle's last batch.
    """
    if not emitted:
        return edge_size if buffered >= edge_size else 0
    return batch_size if buffered >= batch_size + edge_size else 0


def last_batches(buffered: int, edge_size: int) -> list[int]:
    """The sizes to emit when the bundle ends: the rest, its last ``edge_size`` records apart."""
    if buffered <= edge_size:
        return [buffered] if buffered else []
    return [buffered - edge_size, edge_size]


# The methods emit windowed values (``finish_bundle`` has no window of its own), so their
# annotations cannot tell Beam the element type: Beam 2.77 ignored them (strings, with
# ``from __future__ import annotations``), 2.78 resolves them and would take ``WindowedValue``.
@beam.typehints.with_input_types(Record)
@beam.typehints.with_output_types(beam.typehints.List[Record])
class BatchBundle(beam.DoFn):
    """Lists of records: small first and last batch of each bundle, full ones between."""

    def __init__(self, batch_size: int, edge_size: int) -> None:
        if not 1 <= edge_size <= batch_size:
            raise ValueError(f"edge_size {edge_size} must be between 1 and {batch_size}")
        self._batch_size = batch_size
        self._edge_size = edge_size
        self._buffer: list[Any] = []
        self._emitted = False

    def start_bundle(self) -> None:
        self._buffer, self._emitted = [], False

    def process(self, record: Any) -> Iterator[WindowedValue]:
        self._buffer.append(record)
        size = batch_ready(len(self._buffer), self._emitted, self._batch_size, self._edge_size)
        if size:
            yield self._take(size)

    def finish_bundle(self) -> Iterator[WindowedValue]:
        for size in last_batches(len(self._buffer), self._edge_size):
            yield self._take(size)

    def _take(self, size: int) -> WindowedValue:
        batch, self._buffer = self._buffer[:size], self._buffer[size:]
        self._emitted = True
        return GlobalWindows.windowed_value_at_end_of_window(batch)
