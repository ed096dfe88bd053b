"""Soak: the pipeline at a steady share of its maximum throughput for a long run, memory sampled.

Issues 7 and 8 ask whether a worker's memory stays flat over a long run (the dedupe stage keeps
nothing between batches; its window lives in Elasticsearch) and whether the consumer keeps up.
One ``newsflow pipeline run`` (the harness of ``bench/pipeline_throughput.py``: own namespace,
warmed with one article, stopped with SIGTERM) consumes while real corpus articles are offered
at ``--load`` x the maximum rate for ``--minutes``. The maximum is ``--max-rate`` or, without
it, measured first by a short run of the same harness.

The corpus is cycled: every copy gets its own URL (so its own id), but from the second round on
its text repeats the first round's, so de-duplication flags it ``duplicate_of`` the first copy
(indexed all the same in the default ``flag`` mode). That is realistic for a soak (wire copies
are common) and keeps the dedupe store growing inside its window.

Every ``--sample-seconds`` one progress line: RSS and CPU of the pipeline's process tree, lag
(raw-topic end offsets minus the group's commits), documents searchable, dead letters, and the
produce -> searchable time of the articles found since the last line. At the end the load
stops, the pipeline drains, and the oracle-lite must hold: produced = indexed + dead-lettered.

    python -m bench.soak [--minutes 30 | --articles N] [--load 0.8] [--max-rate R] [--json PATH]

With ``--articles`` the load ends after that many articles instead of after ``--minutes``: the
issue's "steady RSS over a 100k-article run" is ``--articles 100000``.

Exits 1 when a verdict fails; a memory verdict the noise cannot decide is INCONCLUSIVE.
"""

from __future__ import annotations

import argparse
import contextlib
import itertools
import json
import math
import statistics
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

from bench.pipeline_throughput import (
    TICK_SECONDS,
    Result,
    Running,
    Sample,
    SteadyLoad,
    bbc_file,
    bbc_files,
    end_to_end,
    fmt,
    histogram_quantile,
    interleave,
    mixed_sample,
    process_usage,
    quantile,
    running_pipeline,
    to_article,
    tree_usage,
    wait_for,
)
from bench.quality import CORPUS, NTREX, log, machine, markdown, spread
from newsflow.article import Article
from newsflow.settings import Settings, load_settings

DEFAULT_MINUTES = 30.0
DEFAULT_LOAD = 0.8
DEFAULT_SAMPLE_SECONDS = 10.0
DEFAULT_CALIBRATION_ARTICLES = 300
#: RSS growth (MiB per hour, least squares after the first window) still called steady: 1.2 GiB
#: a day. Samples scatter by ~50 MiB, so 30 minutes resolve a slope to about ±30 MiB/hour.
DEFAULT_MAX_GROWTH = 50.0
#: Lag at the end of the load still called bounded, in seconds of offered load.
DEFAULT_LAG_SECONDS = 10.0
#: RSS is compared over the first and the last this-many seconds (or a third of a short run).
WINDOW_SECONDS = 300.0
#: Mixed-language cycle: 4 x NTREX's 123 Spanish documents, so Spanish is a full quarter of it.
MIXED_CYCLE = 492
#: After the drain, how long the articles still pending may take to become searchable.
SEARCHABLE_TIMEOUT_SECONDS = 30.0
MIB = 2**20


# --- articles ---------------------------------------------------------------------------------


def english_cycle(files: Sequence[Path]) -> list[Sample]:
    """Every BBC file, the five sections interleaved so that each stretch of the run sees all."""
    sections = itertools.groupby(files, key=lambda path: path.parent)
    return interleave([[bbc_file(path) for path in group] for _, group in sections])


def soak_article(samples: Sequence[Sample], n: int, run: str) -> Article:
    """The n-th article offered (from 0): the corpus cycled, every copy with its own URL."""
    return to_article(samples[n % len(samples)], n + 1, run)


# --- samples and their summary: pure ----------------------------------------------------------


@dataclass(frozen=True)
class Point:
    """One sample, ``seconds`` after the load started; counts exclude the warm-up article."""

    seconds: float
    offered: int
    committed: int
    lag: int  # raw-topic end offsets minus the group's commits
    documents: int  # searchable now
    dead_letters: int
    rss_mib: float  # of the process tree (the worker and its NER process)
    worker_rss_mib: float  # of the worker process alone: where Beam's runner lives
    cpu_seconds: float  # of the process tree since it started
    found: int  # articles found searchable since the previous sample...
    fresh_p95: float | None  # ...and their produce -> searchable p95


def busy_cores(point: Point, previous: Point | None) -> float | None:
    """CPU seconds per wall second between two samples."""
    if previous is None or point.seconds <= previous.seconds:
        return None
    return (point.cpu_seconds - previous.cpu_seconds) / (point.seconds - previous.seconds)


def progress_line(point: Point, previous: Point | None) -> str:
    return (
        f"{point.seconds:6.0f}s  offered {point.offered}  committed {point.committed}  "
        f"lag {point.lag}  searchable {point.documents}  dead letters {point.dead_letters}  "
        f"RSS {point.rss_mib:,.0f} MiB  CPU {fmt(busy_cores(point, previous), 2)} cores  "
        f"fresh p95 {fmt(point.fresh_p95, 2)} s ({point.found} found)"
    )


@dataclass(frozen=True)
class Trend:
    """A least-squares slope, per hour, with its standard error: RSS moves by tens of MiB
    from one sample to the next (batches come and go), so a short run's slope is mostly noise."""

    per_hour: float
    stderr_per_hour: float | None  # None with two points: nothing to estimate the noise from


def trend(points: Sequence[tuple[float, float]]) -> Trend | None:
    """The trend of (seconds, value) pairs, in value units per hour; None if the points do not
    span any time."""
    if len(points) < 2:
        return None
    mean_t = statistics.fmean(t for t, _ in points)
    mean_v = statistics.fmean(v for _, v in points)
    spread_t = sum((t - mean_t) ** 2 for t, _ in points)
    if spread_t == 0:
        return None
    slope = sum((t - mean_t) * (v - mean_v) for t, v in points) / spread_t
    if len(points) == 2:
        return Trend(slope * 3600, None)
    residuals = sum((v - mean_v - slope * (t - mean_t)) ** 2 for t, v in points)
    stderr = math.sqrt(residuals / (len(points) - 2) / spread_t)
    return Trend(slope * 3600, stderr * 3600)


def window_seconds(duration: float) -> float:
    """The first/last comparison window: five minutes, or a third of a shorter run."""
    return min(WINDOW_SECONDS, duration / 3)


@dataclass(frozen=True)
class Totals:
    """What the end of the run measured, beside the samples."""

    load_seconds: float
    drain_seconds: float
    produced: int  # warm-up included, as the oracle counts it
    indexed: int
    dead_letters: int
    suppressed: int  # duplicates not indexed by choice (dedupe.duplicates = suppress)
    committed_after_drain: int
    end_offset_after_drain: int
    freshness: list[float]  # seconds to searchable of every article found
    not_searchable: int
    metrics_latency_buckets: list[tuple[float, float]]
    dedupe_outcomes: dict[str, float]
    peak_rss_mib: float


@dataclass(frozen=True)
class Summary:
    offered_rate: float  # the target
    produced_rate: float  # achieved by the producer over the load
    processed_rate: float  # committed over the load and the drain
    lag_max: int
    lag_end_of_load: int
    lag_after_drain: int
    window_minutes: float
    rss_first_median_mib: float
    rss_last_median_mib: float
    rss_trend: Trend | None  # MiB/hour after the first window: the verdict's
    rss_trend_whole_run: Trend | None
    worker_rss_trend: Trend | None  # the worker process alone, after the first window
    rss_peak_mib: float
    cpu_cores_mean: float | None
    freshness_p50: float | None
    freshness_p95: float | None
    metrics_latency_p50: float | None
    metrics_latency_p95: float | None
    oracle_holds: bool


def summarize(points: Sequence[Point], totals: Totals, rate: float) -> Summary:
    """The soak's numbers from its samples (at least one) and end-of-run totals."""
    if not points:
        raise ValueError("no samples")
    end = points[-1].seconds
    window = window_seconds(end)
    rss = [(p.seconds, p.rss_mib) for p in points]
    first = [v for t, v in rss if t <= window] or [rss[0][1]]
    last = [v for t, v in rss if t >= end - window] or [rss[-1][1]]
    fresh = totals.freshness
    produced = totals.produced - 1  # the warm-up was not part of the load
    return Summary(
        offered_rate=rate,
        produced_rate=produced / totals.load_seconds,
        processed_rate=(totals.committed_after_drain - 1)
        / (totals.load_seconds + totals.drain_seconds),
        lag_max=max(p.lag for p in points),
        lag_end_of_load=points[-1].lag,
        lag_after_drain=totals.end_offset_after_drain - totals.committed_after_drain,
        window_minutes=window / 60,
        rss_first_median_mib=statistics.median(first),
        rss_last_median_mib=statistics.median(last),
        rss_trend=trend([(t, v) for t, v in rss if t > window]),
        rss_trend_whole_run=trend(rss),
        worker_rss_trend=trend(
            [(p.seconds, p.worker_rss_mib) for p in points if p.seconds > window]
        ),
        rss_peak_mib=totals.peak_rss_mib,
        cpu_cores_mean=busy_cores(points[-1], points[0]),
        freshness_p50=quantile(fresh, 0.5) if fresh else None,
        freshness_p95=quantile(fresh, 0.95) if fresh else None,
        metrics_latency_p50=histogram_quantile(totals.metrics_latency_buckets, 0.5),
        metrics_latency_p95=histogram_quantile(totals.metrics_latency_buckets, 0.95),
        oracle_holds=totals.produced == totals.indexed + totals.dead_letters + totals.suppressed,
    )


Outcome = Literal["PASS", "FAIL", "INCONCLUSIVE"]


@dataclass(frozen=True)
class Verdict:
    name: str
    outcome: Outcome
    detail: str


def memory_outcome(rss: Trend | None, max_growth: float) -> Outcome:
    """Steady below the threshold; a fail only if the growth stands out of the noise (two
    standard errors), else the run was too short or too noisy to tell."""
    if rss is not None and rss.per_hour < max_growth:
        return "PASS"
    if rss is None or rss.stderr_per_hour is None:
        return "INCONCLUSIVE"
    if rss.per_hour - 2 * rss.stderr_per_hour >= max_growth:
        return "FAIL"
    return "INCONCLUSIVE"


def show_trend(rss: Trend | None) -> str:
    if rss is None:
        return "—"
    return f"{rss.per_hour:,.1f} ± {fmt(rss.stderr_per_hour)} MiB/hour"


def verdicts(summary: Summary, max_growth: float, lag_seconds: float) -> list[Verdict]:
    """Memory steady, lag bounded, and the oracle-lite; each with the numbers behind it."""
    lag_bound = summary.offered_rate * lag_seconds
    return [
        Verdict(
            "memory steady",
            memory_outcome(summary.rss_trend, max_growth),
            f"RSS slope after the first {summary.window_minutes:.1f} min "
            f"{show_trend(summary.rss_trend)} (± one standard error; threshold {max_growth:g})",
        ),
        Verdict(
            "lag bounded",
            pass_fail(summary.lag_end_of_load <= lag_bound and summary.lag_after_drain == 0),
            f"lag at the end of the load {summary.lag_end_of_load} records (bound {lag_bound:.0f}"
            f" = {lag_seconds:g} s of load), after the drain {summary.lag_after_drain}",
        ),
        Verdict(
            "oracle-lite",
            pass_fail(summary.oracle_holds),
            "produced = indexed + dead-lettered (+ suppressed duplicates)",
        ),
    ]


def pass_fail(passed: bool) -> Outcome:
    return "PASS" if passed else "FAIL"


def report(
    summary: Summary, totals: Totals, checks: Sequence[Verdict], calibration: Result | None
) -> str:
    s = summary
    rows: list[tuple[str, str]] = []
    if calibration:
        rows.append(
            (
                "maximum rate (calibration)",
                f"{calibration.rate:.1f} articles/s over {calibration.articles}",
            )
        )
    rows += [
        ("offered rate (target)", f"{s.offered_rate:.2f} articles/s"),
        ("produced rate (achieved)", f"{s.produced_rate:.2f} articles/s"),
        ("processed rate (committed over load + drain)", f"{s.processed_rate:.2f} articles/s"),
        ("load / drain", f"{totals.load_seconds:.0f} s / {totals.drain_seconds:.1f} s"),
        (
            "produced = indexed + dead letters (+ suppressed)",
            f"{totals.produced} = {totals.indexed} + {totals.dead_letters}"
            + (f" + {totals.suppressed}" if totals.suppressed else ""),
        ),
        (
            "dedupe outcomes",
            ", ".join(f"{k} {v:.0f}" for k, v in sorted(totals.dedupe_outcomes.items())) or "—",
        ),
        (
            "lag max / end of load / after drain",
            f"{s.lag_max} / {s.lag_end_of_load} / {s.lag_after_drain} records",
        ),
        (
            f"RSS median, first / last {s.window_minutes:.1f} min",
            f"{s.rss_first_median_mib:,.0f} / {s.rss_last_median_mib:,.0f} MiB",
        ),
        ("RSS slope after the first window", show_trend(s.rss_trend)),
        ("RSS slope, whole run", show_trend(s.rss_trend_whole_run)),
        ("RSS slope of the worker process alone", show_trend(s.worker_rss_trend)),
        ("peak RSS (start-up included)", f"{s.rss_peak_mib:,.0f} MiB"),
        ("CPU, mean", f"{fmt(s.cpu_cores_mean, 2)} cores"),
        (
            "freshness p50 / p95 (search polling)",
            f"{fmt(s.freshness_p50, 2)} / {fmt(s.freshness_p95, 2)} s "
            f"({totals.not_searchable} never found)",
        ),
        (
            "latency p50 / p95 (pipeline's histogram)",
            f"{fmt(s.metrics_latency_p50, 2)} / {fmt(s.metrics_latency_p95, 2)} s",
        ),
    ]
    lines = [f"{v.outcome} {v.name}: {v.detail}" for v in checks]
    return "\n\n".join([markdown(["soak", "value"], rows), "\n".join(lines)])


# --- the run ----------------------------------------------------------------------------------


@contextlib.contextmanager
def topic_ends(settings: Settings) -> Iterator[Callable[[str], int]]:
    """A function summing a topic's end offsets over its partitions (records ever written)."""
    from kafka import KafkaConsumer, TopicPartition

    from newsflow.kafka_topics import client_config

    consumer = KafkaConsumer(**client_config(settings.kafka, "newsflow-bench-soak"))

    def end(topic: str) -> int:
        partitions = consumer.partitions_for_topic(topic) or set()
        tps = [TopicPartition(topic, p) for p in partitions]
        return sum(consumer.end_offsets(tps).values()) if tps else 0

    try:
        yield end
    finally:
        consumer.close()


def soak(
    base: Settings,
    samples: Sequence[Sample],
    warm_up: Sample,
    rate: float,
    seconds: float,
    sample_seconds: float,
    articles: int | None = None,
) -> tuple[list[Point], Totals]:
    """Offer ``rate`` articles/s for ``seconds`` (or until ``articles`` are offered), sampling;
    then drain and count."""
    from newsflow.index import client

    name = f"soak at {rate:.2f}/s"
    with (
        running_pipeline(base, name, warm_up) as run,
        topic_ends(run.settings) as end,
        contextlib.closing(client(run.settings.elasticsearch)) as es,
    ):
        alias = run.settings.elasticsearch.index_alias
        raw, dlq = run.settings.kafka.raw_topic, run.settings.kafka.dlq_topic
        load = SteadyLoad(run, es, rate, lambda n: soak_article(samples, n, name), articles)
        points: list[Point] = []
        found: list[float] = []

        def sample() -> Point:
            pid = run.pipeline.process.pid
            cpu, rss = tree_usage(pid)
            committed = run.committed()
            point = Point(
                seconds=load.elapsed(),
                offered=load.sent,
                committed=committed - 1,
                lag=end(raw) - committed,
                documents=max(0, es.count(index=alias)["count"] - 1),  # the warm-up's
                dead_letters=end(dlq),
                rss_mib=rss / MIB,
                worker_rss_mib=process_usage(pid)[1] / MIB,
                cpu_seconds=cpu,
                found=len(found),
                fresh_p95=quantile(found, 0.95) if found else None,
            )
            log(progress_line(point, points[-1] if points else None))
            found.clear()
            return point

        points.append(sample())
        next_sample = sample_seconds
        while load.sent < articles if articles is not None else load.elapsed() < seconds:
            require_alive(run)
            load.offer()
            found += load.search()
            if load.elapsed() >= next_sample:
                points.append(sample())
                next_sample += sample_seconds
            time.sleep(TICK_SECONDS)
        load_seconds = load.elapsed()
        points.append(sample())
        log(f"load stopped after {load_seconds:.0f} s; draining")
        wait_for(f"{name} drain", run.committed, load.sent + 1, run.pipeline.alive)
        drain_seconds = load.elapsed() - load_seconds
        searching_until = load.elapsed() + SEARCHABLE_TIMEOUT_SECONDS
        while load.pending and load.elapsed() < searching_until:
            load.search()
            time.sleep(TICK_SECONDS)
        es.indices.refresh(index=alias)
        scrape = run.pipeline.scrape()
        suppressed = (
            round(scrape.dedupe_outcomes.get("duplicate", 0))
            if run.settings.dedupe.duplicates == "suppress"
            else 0
        )
        totals = Totals(
            load_seconds=load_seconds,
            drain_seconds=drain_seconds,
            produced=load.sent + 1,
            indexed=es.count(index=alias)["count"],
            dead_letters=end(dlq),
            suppressed=suppressed,
            committed_after_drain=run.committed(),
            end_offset_after_drain=end(raw),
            freshness=load.latencies,
            not_searchable=len(load.pending),
            metrics_latency_buckets=scrape.latency_buckets,
            dedupe_outcomes=scrape.dedupe_outcomes,
            peak_rss_mib=run.pipeline.usage.peak_rss / MIB,
        )
    return points, totals


def require_alive(run: Running) -> None:
    if not run.pipeline.alive():
        raise RuntimeError(
            f"the pipeline exited with {run.pipeline.process.returncode} during the soak; "
            f"see {run.pipeline.log_path}"
        )


def fraction(value: str) -> float:
    load = float(value)
    if not 0 < load <= 1:
        raise argparse.ArgumentTypeError("a fraction in (0, 1], e.g. 0.8")
    return load


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(
        description=__doc__.split("\n\n")[0],
        epilog="Needs the local stack (newsflow stack up) and the shared corpus. "
        "Exits 1 when a verdict fails (INCONCLUSIVE: RSS noise hides the slope; run longer).",
    )
    parser.add_argument(
        "--minutes", type=float, default=DEFAULT_MINUTES, help="length of the load (default 30)"
    )
    parser.add_argument(
        "--articles",
        type=int,
        metavar="N",
        help="offer N articles, however long that takes, instead of --minutes",
    )
    parser.add_argument(
        "--load",
        type=fraction,
        default=DEFAULT_LOAD,
        help=f"share of the maximum rate offered (default {DEFAULT_LOAD:g})",
    )
    parser.add_argument(
        "--max-rate",
        type=float,
        metavar="ARTICLES_PER_S",
        help="the maximum end-to-end rate; without it, measured first with "
        f"--calibration-articles articles (default {DEFAULT_CALIBRATION_ARTICLES})",
    )
    parser.add_argument(
        "--calibration-articles", type=int, default=DEFAULT_CALIBRATION_ARTICLES, metavar="N"
    )
    parser.add_argument("--languages", choices=("english", "mixed"), default="english")
    parser.add_argument(
        "--sample-seconds",
        type=float,
        default=DEFAULT_SAMPLE_SECONDS,
        help=f"seconds between samples and progress lines (default {DEFAULT_SAMPLE_SECONDS:g})",
    )
    parser.add_argument(
        "--max-growth",
        type=float,
        default=DEFAULT_MAX_GROWTH,
        metavar="MIB_PER_HOUR",
        help=f"RSS slope still called steady (default {DEFAULT_MAX_GROWTH:g} MiB/hour)",
    )
    parser.add_argument(
        "--lag-seconds",
        type=float,
        default=DEFAULT_LAG_SECONDS,
        help="lag at the end of the load still called bounded, in seconds of offered load "
        f"(default {DEFAULT_LAG_SECONDS:g})",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write the results here")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help=f"default {CORPUS}")
    args = parser.parse_args(argv)
    if (
        args.minutes <= 0
        or args.sample_seconds <= 0
        or (args.articles is not None and args.articles <= 0)
    ):
        parser.error("--minutes, --articles and --sample-seconds must be positive")
    if args.max_rate is not None and args.max_rate <= 0:
        parser.error("--max-rate must be positive")
    files = bbc_files(args.corpus)
    if not files or not (args.corpus / NTREX).is_dir():
        parser.error(f"no BBC News 2005 or NTREX under {args.corpus}; this needs the shared corpus")

    languages: Literal["english", "mixed"] = args.languages
    warm_up, english = bbc_file(files[-1]), english_cycle(files[:-1])
    samples = english if languages == "english" else mixed_sample(args.corpus, english, MIXED_CYCLE)
    settings = load_settings()
    calibration = None
    max_rate = args.max_rate
    if max_rate is None:
        chosen = spread(samples, args.calibration_articles)
        log(f"calibration: maximum rate over {len(chosen)} {languages} articles")
        calibration = end_to_end(settings, f"calibration {languages}", chosen, warm_up)
        max_rate = calibration.rate
        log(f"  maximum {max_rate:.1f} articles/s")
    rate = args.load * max_rate
    length = f"{args.articles} articles" if args.articles else f"{args.minutes:g} min"
    log(
        f"soak: {rate:.2f} articles/s ({args.load:g} x {max_rate:.1f}) for {length}, "
        f"{languages}, cycling {len(samples)} articles; from the second round on every copy is "
        "a near-duplicate of the first (new URL, same text): dedupe flags it, as it would a "
        "wire copy"
    )
    points, totals = soak(
        settings, samples, warm_up, rate, args.minutes * 60, args.sample_seconds, args.articles
    )
    summary = summarize(points, totals, rate)
    checks = verdicts(summary, args.max_growth, args.lag_seconds)
    print(report(summary, totals, checks, calibration))
    if args.json:
        payload = {
            "machine": machine(),
            "arguments": {k: str(v) if isinstance(v, Path) else v for k, v in vars(args).items()},
            "max_rate": max_rate,
            "calibration": asdict(calibration) if calibration else None,
            "summary": asdict(summary),
            "verdicts": [asdict(v) for v in checks],
            "totals": asdict(totals) | {"freshness": None},  # thousands of values: as quantiles
            "samples": [asdict(p) for p in points],
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 1 if any(v.outcome == "FAIL" for v in checks) else 0


if __name__ == "__main__":
    sys.exit(main())
