"""A stage loaded in a child process, so that its CPU work runs beside the rest of the chain.

Beam runs a fused chain in one Python thread: while spaCy tags a batch nothing else happens, and
while the chain waits for Elasticsearch, Kafka or Apertium, spaCy is idle. On a 2-core machine
that left a core unused (the worker was on CPU 0.81 of the time, end to end 0.68 of NER alone).
Like RunInference's ``large_model`` (the model in a separate process), but asynchronous:
``submit`` hands a batch over and returns at once, ``result`` collects the answer later, so
``RunStageAhead`` (``pipeline.stage``) prepares and indexes other batches meanwhile.

The child runs batches one at a time, in the order submitted, and answers in that order. A
failure in the stage comes back as the exception; a child that dies (a crash in native code, the
kernel's OOM killer) fails every batch it held with ``StageProcessDied`` and a new one starts on
the next submit, so one deadly article costs a restart, not the pipeline.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import pickle
import signal
import time
from collections import deque
from collections.abc import Iterable
from multiprocessing.connection import Connection
from multiprocessing.process import BaseProcess
from typing import TYPE_CHECKING, Any

from newsflow.logs import LogFormat, configure, current_format

if TYPE_CHECKING:  # not at run time: the child configures its logging before Beam's import
    from pipeline.enriched import EnrichedArticle
    from pipeline.stage import Stage

_LOG = logging.getLogger("newsflow.pipeline")
#: "spawn", not fork: the parent runs threads (Kafka clients, the runner), which fork would copy
#: mid-state; a spawned child imports only what the stage needs.
_CONTEXT = multiprocessing.get_context("spawn")


class StageProcessDied(RuntimeError):
    """The child process ended while it held batches; their results are lost."""


class StageProcess:
    """A stage running in a child process: the ``Stage`` protocol plus asynchronous submits.

    ``submit`` returns a ticket and ``result(ticket)`` its answer, in any order: the article-by-
    article retry of a failed batch runs while later batches are still in the child.
    """

    def __init__(self, stage: Stage) -> None:
        self._stage = stage
        self.name = stage.name
        self._process: BaseProcess | None = None
        self._connection: Connection | None = None
        self._next_ticket = 0
        self._outstanding: deque[int] = deque()  # sent to the current child, in order
        self._answers: dict[int, tuple[str, Any]] = {}
        self._abandoned: set[int] = set()  # outstanding, but nobody will collect them

    def load(self) -> None:
        """Start the child and wait until it has loaded the stage (its error, if it could not)."""
        parent, child = _CONTEXT.Pipe()
        process = _CONTEXT.Process(
            target=_serve,
            args=(child, pickle.dumps(self._stage), current_format()),
            name=f"newsflow-{self.name}",
            daemon=True,
        )
        process.start()
        child.close()
        self._process, self._connection = process, parent
        try:
            status, payload = parent.recv()
        except EOFError:
            reason = self._death_reason("while loading")
            self._forget_child()
            raise StageProcessDied(reason) from None
        if status != "ready":
            self.close()
            raise payload

    def submit(self, batch: list[EnrichedArticle]) -> int:
        if self._connection is None:
            self.load()
        assert self._connection is not None
        ticket, self._next_ticket = self._next_ticket, self._next_ticket + 1
        self._outstanding.append(ticket)
        try:
            self._connection.send(batch)
        except OSError:  # a broken pipe: it is gone
            self._lose_child(self._death_reason("before taking a batch"))
        return ticket

    def result(self, ticket: int) -> tuple[list[EnrichedArticle], float]:
        """The batch of ``ticket``, enriched, and the seconds the stage spent on it."""
        while ticket not in self._answers:
            assert self._connection is not None and self._outstanding, f"unknown ticket {ticket}"
            try:
                answer = self._connection.recv()
            except (EOFError, OSError):  # OSError: it died in the middle of an answer
                self._lose_child(self._death_reason("while running a batch"))
                continue
            self._keep(self._outstanding.popleft(), answer)
        status, payload = self._answers.pop(ticket)
        if status == "died":
            raise StageProcessDied(payload)
        if status == "error":
            raise payload
        articles, seconds = payload
        return articles, seconds

    def abandon(self, tickets: Iterable[int]) -> None:
        """Nobody will collect these (their bundle failed): drop their answers, now or later."""
        for ticket in tickets:
            if self._answers.pop(ticket, None) is None and ticket in self._outstanding:
                self._abandoned.add(ticket)

    @property
    def held(self) -> int:
        """Answers received and waiting to be collected."""
        return len(self._answers)

    def run(self, batch: list[EnrichedArticle]) -> list[EnrichedArticle]:
        """Synchronously, for the article-by-article retry of a failed batch."""
        return self.result(self.submit(batch))[0]

    def close(self) -> None:
        if self._connection is not None:
            with contextlib.suppress(OSError):  # already gone
                self._connection.send(None)  # the child's signal to exit
        if self._process is not None:
            self._process.join(timeout=5)
            if self._process.is_alive():
                self._process.kill()
        self._forget_child()

    def _lose_child(self, reason: str) -> None:
        """Every batch the child held fails with ``reason``; the next submit starts a new one."""
        _LOG.warning(
            "%s; its %d batch(es) are retried article by article", reason, len(self._outstanding)
        )
        for ticket in self._outstanding:
            self._keep(ticket, ("died", reason))
        self._outstanding.clear()
        self._forget_child()

    def _keep(self, ticket: int, answer: tuple[str, Any]) -> None:
        if ticket in self._abandoned:
            self._abandoned.remove(ticket)
        else:
            self._answers[ticket] = answer

    def _forget_child(self) -> None:
        if self._connection is not None:
            self._connection.close()
        self._process, self._connection = None, None

    def _death_reason(self, when: str) -> str:
        assert self._process is not None
        self._process.join(timeout=5)
        return (
            f"the {self.name} process died {when} (exit code {self._process.exitcode}); "
            "a new one is started for the next batch"
        )


def _serve(connection: Connection, pickled_stage: bytes, log_format: LogFormat) -> None:
    """The child: load the stage, then answer each batch until told to stop or orphaned.

    The stage comes pickled, so that unpickling it (which imports its modules, Beam among
    them) happens after the child's logging is set up like the parent's: one log format.
    """
    # The parent decides when to stop: a Ctrl-C or SIGTERM to the process group must not kill
    # the child in the middle of the parent's drain.
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    signal.signal(signal.SIGTERM, signal.SIG_IGN)
    configure(log_format)
    try:
        stage: Stage = pickle.loads(pickled_stage)
        stage.load()
    except Exception as exc:
        connection.send(("error", _portable(exc)))
        return
    connection.send(("ready", None))
    while True:
        try:
            batch = connection.recv()
        except EOFError:  # the parent is gone
            return
        if batch is None:
            return
        started = time.perf_counter()
        try:
            answer: tuple[str, Any] = ("ok", (stage.run(batch), time.perf_counter() - started))
        except Exception as exc:
            answer = ("error", _portable(exc))
        connection.send(answer)


def _portable(exc: Exception) -> Exception:
    """The exception itself when it survives pickling (its class names the dead letter)."""
    try:
        pickle.loads(pickle.dumps(exc))
    except Exception:
        return RuntimeError(f"{type(exc).__name__}: {exc}")
    return exc
