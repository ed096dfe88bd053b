"""Runner selection: the in-process default, Flink's locally built job server, Beam's others."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.io.restriction_trackers import OffsetRange, OffsetRestrictionTracker
from apache_beam.metrics.metric import MetricsFilter
from apache_beam.options.pipeline_options import FlinkRunnerOptions, PipelineOptions
from apache_beam.runners.portability.fn_api_runner import FnApiRunner
from apache_beam.runners.sdf_utils import RestrictionTrackerView
from apache_beam.transforms.core import RestrictionProvider

from pipeline.runners import (
    FLINK_POM,
    FLINK_VERSION,
    RunnerNotReady,
    flink_job_server_jar,
    runner_for,
)


def built_jar(directory: Path) -> Path:
    """A job server jar as a previous build left it: newer than the pom."""
    directory.mkdir(parents=True)
    jar = directory / "flink-job-server.jar"
    jar.write_bytes(b"")
    newer = FLINK_POM.stat().st_mtime + 1
    os.utime(jar, (newer, newer))
    return jar


@pytest.mark.parametrize("args", [[], ["--runner=DirectRunner"], ["--runner=FnApiRunner"]])
def test_the_default_runs_in_process_without_fetching_prism(
    args: list[str], tmp_path: Path
) -> None:
    assert isinstance(runner_for(PipelineOptions(args), tmp_path), FnApiRunner)


@pytest.mark.parametrize("name", ["PortableRunner", "DataflowRunner", "SparkRunner"])
def test_other_runners_are_beams_own(name: str, tmp_path: Path) -> None:
    assert runner_for(PipelineOptions([f"--runner={name}"]), tmp_path) == name
    assert not (tmp_path / "flink").exists()


def test_flink_uses_the_job_server_built_in_the_state_directory(tmp_path: Path) -> None:
    jar = built_jar(tmp_path / "flink")
    options = PipelineOptions(["--runner=FlinkRunner"])

    assert runner_for(options, tmp_path) == "FlinkRunner"

    flink = options.view_as(FlinkRunnerOptions)
    assert (flink.flink_job_server_jar, flink.flink_version) == (str(jar), FLINK_VERSION)


def test_flink_keeps_a_job_server_jar_given_on_the_command_line(tmp_path: Path) -> None:
    options = PipelineOptions(["--runner=FlinkRunner", "--flink_job_server_jar=/opt/js.jar"])

    runner_for(options, tmp_path)

    assert options.view_as(FlinkRunnerOptions).flink_job_server_jar == "/opt/js.jar"
    assert not (tmp_path / "flink").exists()  # nothing built


def test_flink_version_pinned_here_is_the_pom_s() -> None:
    assert f"<flink.minor>{FLINK_VERSION}</flink.minor>" in FLINK_POM.read_text()
    assert FLINK_VERSION in FlinkRunnerOptions.PUBLISHED_FLINK_VERSIONS  # Beam accepts it


def test_a_missing_maven_says_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("PATH", str(tmp_path))  # no mvn on it

    with pytest.raises(RunnerNotReady, match="apt-get install maven"):
        flink_job_server_jar(tmp_path / "flink")


def test_a_jar_older_than_the_pom_is_rebuilt(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    jar = built_jar(tmp_path / "flink")
    os.utime(jar, (0, 0))
    monkeypatch.setenv("PATH", str(tmp_path))  # a rebuild is attempted: it needs mvn

    with pytest.raises(RunnerNotReady, match="mvn"):
        flink_job_server_jar(tmp_path / "flink")


class OneBundlePerOffset(beam.DoFn, RestrictionProvider):
    """A streaming-style source: each call claims one offset and defers the rest (a bundle)."""

    def __init__(self, offsets: int) -> None:
        self._offsets = offsets

    def initial_restriction(self, element: str) -> OffsetRange:
        return OffsetRange(0, self._offsets)

    def create_tracker(self, restriction: OffsetRange) -> OffsetRestrictionTracker:
        return OffsetRestrictionTracker(restriction)

    def restriction_size(self, element: str, restriction: OffsetRange) -> int:
        return restriction.size()

    def process(
        self,
        element: str,
        tracker: RestrictionTrackerView = beam.DoFn.RestrictionParam(),  # type: ignore[assignment]  # noqa: B008
    ) -> Iterator[int]:
        offset = tracker.current_restriction().start
        if tracker.try_claim(offset):
            beam.metrics.Metrics.counter("test", "bundles").inc()
            yield offset
            tracker.defer_remainder()


def test_the_in_process_runner_holds_the_same_metrics_after_20_or_200_bundles(
    tmp_path: Path,
) -> None:
    held = []
    for bundles in (20, 200):
        options = PipelineOptions(["--streaming"])
        pipeline = beam.Pipeline(runner=runner_for(options, tmp_path), options=options)
        _ = pipeline | beam.Create(["x"]) | beam.ParDo(OneBundlePerOffset(bundles))
        result = pipeline.run()
        result.wait_until_finish()
        counted = result.metrics().query(MetricsFilter().with_name("bundles"))["counters"]
        assert [c.committed for c in counted] == [bundles]
        # What the runner kept between bundles: collections (a lazy generator chain, one link
        # per bundle, has no len), as many entries for 200 bundles as for 20.
        by_stage = result._monitoring_infos_by_stage  # type: ignore[attr-defined]
        held.append(sum(len(infos) for infos in by_stage.values()))
    assert held[0] == held[1]
