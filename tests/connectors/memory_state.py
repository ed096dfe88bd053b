"""An in-memory ``SourceState`` for source tests: what a source reads and writes, without SQLite.

Behaves like the runner's SQLite state (``connectors.state``) as a source sees it: ``put`` values
are visible to ``get`` at once, ``unseen`` filters out keys marked seen. Tests call ``commit`` to
play the runner's part (what happens after Kafka acknowledged a poll's items), e.g. to check that
a second poll yields nothing new.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any


class MemoryState:
    def __init__(
        self,
        seen: Iterable[str] = (),
        values: Mapping[str, Any] | None = None,
        checkpoint: Mapping[str, Any] | None = None,
    ) -> None:
        self.seen: set[str] = set(seen)
        self.values: dict[str, Any] = dict(values or {})
        self._checkpoint = dict(checkpoint) if checkpoint is not None else None

    def get(self, key: str, default: Any = None) -> Any:
        return self.values.get(key, default)

    def put(self, key: str, value: Any) -> None:
        self.values[key] = value

    def unseen(self, keys: Iterable[str]) -> set[str]:
        return set(keys) - self.seen

    def checkpoint(self) -> Mapping[str, Any] | None:
        return self._checkpoint

    def commit(self, seen_keys: Iterable[str], checkpoint: Mapping[str, Any] | None) -> None:
        """What the runner does once the items of a poll are acknowledged."""
        self.seen.update(seen_keys)
        if checkpoint is not None:
            self._checkpoint = dict(checkpoint)
