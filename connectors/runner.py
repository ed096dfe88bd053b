"""The runner: polls every source, forever or once, and publishes what is new.

A pool of ``concurrency`` threads polls the sources, picked by a scheduler keyed on next-due
time, so one slow source never holds up the others. Each source keeps its own adaptive interval:
a poll that found new items brings the next one closer (down to ``min_interval_seconds``), an
idle poll pushes it away (up to ``max_interval_seconds``); a failed poll backs off exponentially
with jitter, never sooner than the server's ``Retry-After``.

A poll's items are published in batches and only after Kafka acknowledged a batch are its items
marked seen and its checkpoint stored (``connectors.state``): a publish failure or a crash means
the items are sent again next time, never lost. A source that raises anything is reported and
backed off; it never stops the runner. SIGTERM/SIGINT let the polls in flight stop between items
and commit what was acknowledged, then the runner returns.

Pure scheduling (``next_interval``, ``failure_delay``) is separate from the thread glue.
"""

from __future__ import annotations

import copy
import heapq
import itertools
import logging
import random
import signal
import sys
import threading
import time
from collections.abc import Iterator, Sequence
from concurrent.futures import FIRST_COMPLETED, Future, ThreadPoolExecutor, wait
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Protocol, TextIO

from connectors.fetch import Fetcher, FetchError
from connectors.health import HealthBook, serve_metrics
from connectors.publish import ArticlePublisher, PublishResult
from connectors.source import Item, ItemError, PollContext, Source, SourceConfig
from connectors.state import SourceStateView, StateStore
from newsflow.article import Article
from newsflow.kafka_topics import ensure_topics
from newsflow.settings import Settings

if TYPE_CHECKING:  # sources.py imports RunOptions from here
    from connectors.sources import SourcesFile

_LOG = logging.getLogger("newsflow.connectors")
#: Items a probe (``connectors check``) reads from each source before it stops.
DEFAULT_PROBE_ITEMS = 5


@dataclass(frozen=True)
class RunOptions:
    """How the runner paces itself; the sources file's ``defaults`` may override each one."""

    #: Sources polled at the same time (threads); politeness per host is the fetcher's job.
    concurrency: int = 4
    #: Items published, then committed to the state, at a time within one poll.
    batch_size: int = 500
    #: Seconds between progress lines on stderr and health snapshots in the state database.
    heartbeat_seconds: float = 30.0
    #: A poll with new items multiplies the interval by this (down to min_interval_seconds).
    busy_factor: float = 0.5
    #: A poll without new items multiplies it by this (up to max_interval_seconds).
    idle_factor: float = 1.5

    def __post_init__(self) -> None:
        if self.concurrency < 1 or self.batch_size < 1 or self.heartbeat_seconds <= 0:
            raise ValueError("concurrency and batch_size must be >= 1, heartbeat_seconds > 0")
        if not 0 < self.busy_factor <= 1 <= self.idle_factor:
            raise ValueError("need 0 < busy_factor <= 1 <= idle_factor")


# -- scheduling (pure) ---------------------------------------------------------------------------


def next_interval(
    current: float, config: SourceConfig, new_items: int, options: RunOptions
) -> float:
    """The interval after a successful poll: shorter when it found something, else longer."""
    factor = options.busy_factor if new_items else options.idle_factor
    return min(max(current * factor, config.min_interval_seconds), config.max_interval_seconds)


def failure_delay(
    failures: int, config: SourceConfig, retry_after: float | None, rng: random.Random
) -> float:
    """Seconds before retrying after ``failures`` consecutive failed polls.

    Exponential from ``min_interval_seconds``, capped at ``max_interval_seconds``, with "equal
    jitter" (a random point in the upper half) so sources that failed together (a network
    outage) do not retry together; never before the server's Retry-After, which is itself
    capped so a hostile header cannot park a source for a year.
    """
    ceiling = min(
        config.min_interval_seconds * 2 ** min(failures - 1, 64), config.max_interval_seconds
    )
    delay = rng.uniform(ceiling / 2, ceiling)
    if retry_after is not None:
        delay = max(delay, min(retry_after, config.max_interval_seconds))
    return delay


# -- one poll ------------------------------------------------------------------------------------


class Publisher(Protocol):
    """What the runner needs from ``connectors.publish.ArticlePublisher``."""

    def publish_batch(self, articles: Sequence[Article]) -> list[PublishResult]: ...


@dataclass
class PollOutcome:
    new_items: int = 0  # acknowledged by Kafka (sent, truncated or dead-lettered)
    rejected: int = 0  # ItemErrors
    error_kind: str | None = None  # set when the poll failed: FetchError kind, "publish", ...
    error: str | None = None
    retry_after: float | None = None
    stopped: bool = False  # cut short by shutdown

    @property
    def failed(self) -> bool:
        return self.error_kind is not None

    def fail(self, kind: str, message: str, retry_after: float | None = None) -> None:
        if not self.failed:  # the first failure is the cause; later ones follow from it
            self.error_kind, self.error, self.retry_after = kind, message, retry_after


def poll_source(
    source: Source,
    *,
    store: StateStore,
    fetcher: Fetcher,
    publisher: Publisher,
    health: HealthBook,
    stop: threading.Event,
    batch_size: int,
    out: TextIO = sys.stderr,
) -> PollOutcome:
    """Poll once, publish in batches, commit each acknowledged batch; never raises."""
    name = source.config.name
    state = store.source(name)
    outcome = PollOutcome()
    batch: list[Item] = []

    def publish(poll_complete: bool) -> bool:
        ok = _publish(batch, name, state, publisher, health, outcome, poll_complete)
        batch.clear()
        return ok

    health.poll_started(name)
    produced: Iterator[Item | ItemError] = iter(())
    try:
        produced = iter(source.poll(PollContext(fetcher=fetcher, state=state, stop=stop)))
        for thing in produced:
            if isinstance(thing, ItemError):
                outcome.rejected += 1
                health.item_error(name, thing.kind)
                print(f"{name}: rejected {thing.location}: {thing.kind}: {thing.reason}", file=out)
            else:
                batch.append(thing)
                if len(batch) >= batch_size and not publish(poll_complete=False):
                    break
            if stop.is_set():
                outcome.stopped = True
                break
    except FetchError as exc:
        outcome.fail(exc.kind, str(exc), exc.retry_after)
    except Exception as exc:  # a bug or a surprise in one source must not stop the others
        _LOG.exception("source %s raised", name)
        outcome.fail("unexpected", f"{type(exc).__name__}: {exc}")
    finally:
        close = getattr(produced, "close", None)
        if close is not None:
            close()
    if batch or not outcome.failed:  # a complete poll also commits its values (ETag, ...)
        publish(poll_complete=not (outcome.failed or outcome.stopped))
    if outcome.error_kind is None:
        health.poll_succeeded(name)
    else:
        health.poll_failed(name, outcome.error_kind, outcome.error or "")
    return outcome


def _publish(
    batch: list[Item],
    name: str,
    state: SourceStateView,
    publisher: Publisher,
    health: HealthBook,
    outcome: PollOutcome,
    poll_complete: bool,
) -> bool:
    """Publish a batch and commit what was acknowledged; False if anything was not.

    Every acknowledged item is marked seen, but the checkpoint only advances through the
    acknowledged prefix: a resume point past an item that is not in Kafka would skip it.
    """
    try:
        results = publisher.publish_batch([item.article for item in batch]) if batch else []
    except Exception as exc:  # the broker went away in a way kafka-python raises for
        outcome.fail("publish", f"{type(exc).__name__}: {exc}")
        return False
    acknowledged: list[str] = []
    checkpoint = None
    first_error: str | None = None
    for item, result in zip(batch, results, strict=True):
        if result.error is not None:
            first_error = first_error or f"article {result.article_id}: {result.error}"
            continue
        acknowledged.append(item.seen_key)
        if first_error is None and item.checkpoint is not None:
            checkpoint = item.checkpoint
        when = item.article.published_at or item.article.fetched_at
        health.published(name, result.outcome, when.timestamp())
    outcome.new_items += len(acknowledged)
    failed = len(batch) - len(acknowledged)
    if failed:
        outcome.fail("publish", f"{failed} of {len(batch)} not acknowledged; {first_error}")
    state.commit(acknowledged, checkpoint, poll_complete=poll_complete and not failed)
    return not failed


# -- the loop ------------------------------------------------------------------------------------


@dataclass
class RunReport:
    polls: int = 0
    new_items: int = 0
    rejected: int = 0
    failed_polls: int = 0


@dataclass
class _Slot:
    source: Source
    fetcher: Fetcher
    interval: float
    failures: int = 0


@dataclass(order=True)
class _Due:
    at: float
    seq: int
    name: str = field(compare=False)


def source_fetcher(shared: Fetcher, config: SourceConfig) -> Fetcher:
    """The shared fetcher with this source's policy (robots setting, allowlist) as default.

    A shallow copy shares the connection pools, host throttles and robots cache, so politeness
    stays global across sources; only the default policy differs.
    """
    fetcher = copy.copy(shared)
    fetcher.policy = shared.policy.for_source(config)
    return fetcher


def run(
    sources: Sequence[Source],
    *,
    store: StateStore,
    fetcher: Fetcher,
    publisher: Publisher,
    options: RunOptions | None = None,
    once: bool = False,
    stop: threading.Event | None = None,
    health: HealthBook | None = None,
    out: TextIO = sys.stderr,
    rng: random.Random | None = None,
) -> RunReport:
    """Poll ``sources`` until ``stop`` is set (or each once, with ``once``)."""
    options = options or RunOptions()
    stop = stop or threading.Event()
    health = health or HealthBook()
    rng = rng or random.Random()
    report = RunReport()
    slots = {
        s.config.name: _Slot(s, source_fetcher(fetcher, s.config), s.config.interval_seconds)
        for s in sources
    }
    previous = store.read_health()
    for name, slot in slots.items():
        health.register(name, slot.source.config.type, slot.interval, previous.get(name))
    order = itertools.count()
    start = time.monotonic()
    queue = [_Due(start, next(order), name) for name in slots]
    running: dict[Future[PollOutcome], str] = {}
    store.prune()
    store.write_health(health.snapshots())
    next_beat = start + options.heartbeat_seconds

    def finished(name: str, future: Future[PollOutcome]) -> None:
        slot = slots[name]
        outcome = future.result()  # poll_source never raises
        report.polls += 1
        report.new_items += outcome.new_items
        report.rejected += outcome.rejected
        if not outcome.failed:
            slot.failures = 0
            slot.interval = next_interval(
                slot.interval, slot.source.config, outcome.new_items, options
            )
            delay = slot.interval
        else:
            report.failed_polls += 1
            slot.failures += 1
            delay = failure_delay(slot.failures, slot.source.config, outcome.retry_after, rng)
        health.scheduled(name, slot.interval, None if once else time.time() + delay)
        if not (once or stop.is_set()):
            heapq.heappush(queue, _Due(time.monotonic() + delay, next(order), name))
        if once or outcome.new_items or outcome.failed:
            print(_poll_line(name, outcome, delay, once), file=out)

    with ThreadPoolExecutor(options.concurrency, thread_name_prefix="connector") as pool:
        while not stop.is_set():
            now = time.monotonic()
            while queue and queue[0].at <= now and len(running) < options.concurrency:
                name = heapq.heappop(queue).name
                slot = slots[name]
                running[
                    pool.submit(
                        poll_source,
                        slot.source,
                        store=store,
                        fetcher=slot.fetcher,
                        publisher=publisher,
                        health=health,
                        stop=stop,
                        batch_size=options.batch_size,
                        out=out,
                    )
                ] = name
            if once and not queue and not running:
                break
            if now >= next_beat:
                next_beat = now + options.heartbeat_seconds
                _housekeeping(store, health, report, len(running), out)
            wake = next_beat
            if queue and len(running) < options.concurrency:
                wake = min(wake, queue[0].at)
            timeout = max(wake - now, 0.0)
            if running:
                done, _ = wait(running, timeout=timeout, return_when=FIRST_COMPLETED)
            else:
                stop.wait(timeout)
                done = set()
            for future in done:
                finished(running.pop(future), future)
        for future, name in list(running.items()):  # shutting down: polls stop between items
            finished(name, future)
    store.write_health(health.snapshots())
    print(
        f"connectors: {'done' if once else 'stopped'} after {report.polls} poll(s): "
        f"{report.new_items} new item(s), {report.rejected} rejected, "
        f"{report.failed_polls} failed poll(s)",
        file=out,
    )
    return report


def _poll_line(name: str, outcome: PollOutcome, delay: float, once: bool) -> str:
    then = "" if once else f"; next poll in {delay:.0f}s"
    if outcome.failed:
        return (
            f"{name}: poll failed ({outcome.error_kind}: {outcome.error}), "
            f"{outcome.new_items} new, {outcome.rejected} rejected{then}"
        )
    return f"{name}: {outcome.new_items} new, {outcome.rejected} rejected{then}"


def _housekeeping(
    store: StateStore, health: HealthBook, report: RunReport, polling: int, out: TextIO
) -> None:
    """The heartbeat: a progress line, health for ``connectors status``, and pruning."""
    store.write_health(health.snapshots())
    pruned = store.prune()
    print(
        f"connectors: {polling} polling; {report.polls} poll(s), {report.new_items} new, "
        f"{report.rejected} rejected, {report.failed_polls} failed since start"
        + (f"; forgot {pruned} old seen key(s)" if pruned else ""),
        file=out,
    )


@contextmanager
def stop_on_signals(stop: threading.Event) -> Iterator[None]:
    """SIGTERM and SIGINT set ``stop`` while inside; the previous handlers come back after."""

    def handler(signum: int, frame: object) -> None:
        stop.set()

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGINT)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


# -- the commands: a sources file wired to the fetcher, the state, Kafka and metrics -------------


def run_configured(
    sources_file: SourcesFile,
    settings: Settings,
    *,
    once: bool = False,
    metrics: tuple[str, int] | None = None,
    stop: threading.Event | None = None,
    out: TextIO = sys.stderr,
) -> RunReport:
    """``newsflow connectors run``: poll every enabled source of the file into the raw topic."""
    ensure_topics(settings.kafka)
    sources = sources_file.build()
    health = HealthBook()
    state_path = sources_file.state_path(settings.stack.state_dir)
    print(
        f"connectors: {len(sources)} source(s) from {sources_file.path} -> "
        f"{settings.kafka.raw_topic}; state in {state_path}",
        file=out,
    )
    with (
        StateStore(
            state_path, seen_retention_days=sources_file.defaults.seen_retention_days
        ) as store,
        Fetcher(sources_file.fetch_policy()) as fetcher,
        ArticlePublisher(settings.kafka, sources_file.publish_policy()) as publisher,
        serve_metrics(health, metrics, out),
    ):
        return run(
            sources,
            store=store,
            fetcher=fetcher,
            publisher=publisher,
            options=sources_file.run_options(),
            once=once,
            stop=stop,
            health=health,
            out=out,
        )


@dataclass
class ProbeResult:
    name: str
    type: str
    items: int = 0
    rejected: int = 0
    error: str | None = None
    sample: str = ""  # the first item's title, or the first rejection
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        """Failed: the poll raised, or everything it yielded was rejected."""
        return self.error is None and not (self.rejected and not self.items)


def probe(source: Source, fetcher: Fetcher, *, max_items: int = DEFAULT_PROBE_ITEMS) -> ProbeResult:
    """Poll once with a throwaway state and publish nothing: does the source work?

    The state is empty, so a conditional GET fetches the whole feed and nothing already sent
    hides a parse error; reading stops after ``max_items`` items so a backfill is not read whole.
    """
    config = source.config
    result = ProbeResult(config.name, config.type)
    started = time.monotonic()
    with StateStore.in_memory() as store:
        context = PollContext(
            fetcher=source_fetcher(fetcher, config), state=store.source(config.name)
        )
        produced: Iterator[Item | ItemError] = iter(())
        try:
            produced = iter(source.poll(context))
            for thing in produced:
                if isinstance(thing, ItemError):
                    result.rejected += 1
                    result.sample = result.sample or f"{thing.kind}: {thing.reason}"
                    continue
                result.items += 1
                if result.items == 1:
                    result.sample = thing.article.title or thing.article.body[:80]
                if result.items >= max_items:
                    break
        except FetchError as exc:
            result.error = f"{exc.kind}: {exc}"
        except Exception as exc:  # reported in the table like any other failure
            result.error = f"unexpected: {type(exc).__name__}: {exc}"
        finally:
            close = getattr(produced, "close", None)
            if close is not None:
                close()
    result.seconds = time.monotonic() - started
    return result


def check_configured(
    sources_file: SourcesFile, *, max_items: int = DEFAULT_PROBE_ITEMS
) -> list[ProbeResult]:
    """``newsflow connectors check``: probe every enabled source, concurrently."""
    sources = sources_file.build()
    concurrency = sources_file.run_options().concurrency
    with (
        Fetcher(sources_file.fetch_policy()) as fetcher,
        ThreadPoolExecutor(concurrency, thread_name_prefix="probe") as pool,
    ):
        return list(pool.map(lambda s: probe(s, fetcher, max_items=max_items), sources))
