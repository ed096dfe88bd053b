"""The soak's arithmetic (slope, windows, summary, verdicts), and a tiny soak on the real stack."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.pipeline_throughput import Sample
from bench.soak import (
    Point,
    Summary,
    Totals,
    Trend,
    busy_cores,
    english_cycle,
    main,
    memory_outcome,
    soak_article,
    summarize,
    trend,
    verdicts,
    window_seconds,
)
from newsflow.settings import Settings
from tests.conftest import shared_path


def point(seconds: float, rss: float, lag: int = 0, cpu: float = 0.0) -> Point:
    return Point(
        seconds=seconds,
        offered=0,
        committed=0,
        lag=lag,
        documents=0,
        dead_letters=0,
        rss_mib=rss,
        worker_rss_mib=rss / 2,
        cpu_seconds=cpu,
        found=0,
        fresh_p95=None,
    )


def totals(**changes: object) -> Totals:
    fields: dict[str, object] = {
        "load_seconds": 100.0,
        "drain_seconds": 10.0,
        "produced": 1001,
        "indexed": 995,
        "dead_letters": 6,
        "suppressed": 0,
        "committed_after_drain": 1001,
        "end_offset_after_drain": 1001,
        "freshness": [float(v) for v in range(1, 101)],
        "not_searchable": 0,
        "metrics_latency_buckets": [(1.0, 50.0), (2.0, 100.0), (float("inf"), 100.0)],
        "dedupe_outcomes": {"new": 995.0},
        "peak_rss_mib": 900.0,
    }
    return Totals(**(fields | changes))  # type: ignore[arg-type]


def test_trend_is_the_least_squares_slope_per_hour_with_its_standard_error() -> None:
    # 10 MiB per minute = 600 MiB per hour, exactly on a line: no error
    line = trend([(t * 60.0, 500 + 10.0 * t) for t in range(6)])
    assert line == Trend(pytest.approx(600), pytest.approx(0))  # type: ignore[arg-type]
    noisy = trend([(0.0, 500.0), (60.0, 515.0), (120.0, 515.0), (180.0, 530.0)])
    assert noisy is not None
    assert noisy.per_hour == pytest.approx(540)
    # fitted 501.5, 510.5, 519.5, 528.5: residuals -1.5, 4.5, -4.5, 1.5; s^2 = 45 / 2
    assert noisy.stderr_per_hour == pytest.approx((22.5 / 18_000) ** 0.5 * 3600)
    assert trend([(0.0, 500.0), (3600.0, 400.0)]) == Trend(pytest.approx(-100), None)  # type: ignore[arg-type]


def test_trend_needs_points_spanning_time() -> None:
    assert trend([]) is None
    assert trend([(10.0, 500.0)]) is None
    assert trend([(10.0, 500.0), (10.0, 600.0)]) is None


def test_memory_fails_only_on_growth_that_stands_out_of_the_noise() -> None:
    assert memory_outcome(Trend(10.0, 100.0), max_growth=50) == "PASS"
    assert memory_outcome(Trend(-300.0, 1000.0), max_growth=50) == "PASS"
    assert memory_outcome(Trend(120.0, 30.0), max_growth=50) == "FAIL"  # 120 - 60 >= 50
    assert memory_outcome(Trend(120.0, 40.0), max_growth=50) == "INCONCLUSIVE"
    assert memory_outcome(Trend(120.0, None), max_growth=50) == "INCONCLUSIVE"
    assert memory_outcome(None, max_growth=50) == "INCONCLUSIVE"


def test_window_is_five_minutes_or_a_third_of_a_short_run() -> None:
    assert window_seconds(1800) == 300
    assert window_seconds(180) == 60


def test_busy_cores_between_two_samples() -> None:
    assert busy_cores(point(20, 0, cpu=15.0), point(10, 0, cpu=7.0)) == pytest.approx(0.8)
    assert busy_cores(point(20, 0, cpu=15.0), None) is None


def test_summary_compares_first_and_last_windows_and_ignores_the_settling_ramp() -> None:
    # 30 minutes: RSS climbs 100 MiB in the first 5 minutes, then stays flat
    points = [point(t, 600 + min(t, 300) / 3, lag=t % 7) for t in range(0, 1801, 10)]
    summary = summarize(points, totals(load_seconds=1800.0), rate=0.55)
    assert summary.window_minutes == 5
    assert summary.rss_first_median_mib == pytest.approx(650)
    assert summary.rss_last_median_mib == pytest.approx(700)
    assert summary.rss_trend is not None and summary.rss_trend.per_hour == pytest.approx(0)
    assert summary.rss_trend_whole_run is not None
    assert summary.rss_trend_whole_run.per_hour > 50  # what the ramp would have claimed
    assert summary.worker_rss_trend is not None
    assert summary.worker_rss_trend.per_hour == pytest.approx(0)
    assert (summary.lag_max, summary.lag_end_of_load) == (6, 1800 % 7)
    assert summary.produced_rate == pytest.approx(1000 / 1800)


def test_summary_rates_freshness_and_oracle() -> None:
    summary = summarize([point(0, 500), point(100, 500)], totals(), rate=10.0)
    assert summary.produced_rate == pytest.approx(10.0)  # the warm-up is not part of the load
    assert summary.processed_rate == pytest.approx(1000 / 110)
    assert summary.lag_after_drain == 0
    assert (summary.freshness_p50, summary.freshness_p95) == (50, 95)
    assert summary.metrics_latency_p50 == pytest.approx(1.0)
    assert summary.oracle_holds
    assert not summarize([point(0, 500)], totals(indexed=990), rate=10.0).oracle_holds
    with_suppressed = totals(indexed=900, suppressed=95)
    assert summarize([point(0, 500)], with_suppressed, rate=10.0).oracle_holds
    with pytest.raises(ValueError):
        summarize([], totals(), rate=10.0)


def summary(**changes: object) -> Summary:
    base = summarize([point(t, 500) for t in range(0, 1801, 10)], totals(), rate=10.0)
    return Summary(**(base.__dict__ | changes))


def not_passed(run: Summary) -> list[tuple[str, str]]:
    return [(v.name, v.outcome) for v in verdicts(run, 50, 10) if v.outcome != "PASS"]


def test_verdicts_pass_a_flat_bounded_run_and_name_each_failure() -> None:
    assert not_passed(summary()) == []
    assert not_passed(summary(rss_trend=Trend(80.0, 10.0))) == [("memory steady", "FAIL")]
    assert not_passed(summary(lag_end_of_load=101)) == [("lag bounded", "FAIL")]  # > 10 s x 10/s
    assert not_passed(summary(lag_end_of_load=100)) == []
    assert not_passed(summary(lag_after_drain=3)) == [("lag bounded", "FAIL")]
    assert not_passed(summary(oracle_holds=False)) == [("oracle-lite", "FAIL")]
    assert not_passed(summary(rss_trend=None)) == [("memory steady", "INCONCLUSIVE")]


def test_every_copy_of_the_cycled_corpus_is_a_distinct_article() -> None:
    samples = [Sample(f"Title {i}", f"Body {i}.", "en") for i in range(3)]
    articles = [soak_article(samples, n, "soak") for n in range(7)]
    assert len({a.id for a in articles}) == 7
    assert [a.title for a in articles] == ["Title 0", "Title 1", "Title 2"] * 2 + ["Title 0"]
    assert articles[3].body == articles[0].body and articles[3].url != articles[0].url


def test_english_cycle_interleaves_the_sections(tmp_path: Path) -> None:
    files = []
    for section, count in (("business", 3), ("sport", 1)):
        (tmp_path / section).mkdir()
        for i in range(count):
            path = tmp_path / section / f"{i:03}.txt"
            path.write_text(f"{section} {i}\n\nBody.\n")
            files.append(path)
    assert [s.title for s in english_cycle(files)] == [
        "business 0",
        "sport 0",
        "business 1",
        "business 2",
    ]


@pytest.mark.integration
def test_a_short_soak_drains_and_holds_the_oracle(stack: Settings, tmp_path: Path) -> None:
    out = tmp_path / "soak.json"
    # 15 s says nothing about memory: the mechanics are under test, not the slope
    argv = ["--minutes", "0.25", "--max-rate", "5", "--sample-seconds", "5", "--json", str(out)]
    argv += ["--corpus", str(shared_path("corpus"))]
    assert main([*argv, "--max-growth", "1e9"]) == 0
    result = json.loads(out.read_text())
    assert result["summary"]["oracle_holds"]
    assert result["summary"]["lag_after_drain"] == 0
    assert len(result["samples"]) >= 4  # at the start, every 5 s, at the end of the load
    assert all(s["rss_mib"] > 50 for s in result["samples"])
    assert result["summary"]["produced_rate"] == pytest.approx(4.0, rel=0.2)
