"""Which Beam runner executes the pipeline, and what each one needs from this machine.

The topology (``pipeline/run.py``) is the same on every runner; only this choice differs:

- ``DirectRunner`` (default): Beam's in-process FnApiRunner. Beam's DirectRunner would first try
  Prism, a Go binary it downloads from GitHub at run time; that is both a run-time download and,
  on a closed network, a slow failure, and the FnApiRunner is what it falls back to anyway. It
  gets one fix for long streaming runs (``keep_bounded_metrics``).
- ``FlinkRunner``: Beam's portable Flink runner with the job server that Maven builds from
  ``deploy/flink/pom.xml`` (Maven Central jars), never the jar Beam would download itself. With
  the default ``--flink_master`` Flink runs embedded in the job server and the Python SDK harness
  in this process (LOOPBACK); ``--flink_master=host:8081`` submits to a cluster (docs/FLINK.md).
- Anything else (``PortableRunner``, ``DataflowRunner``, ...) is passed to Beam as it is.
"""

from __future__ import annotations

import logging
import shutil
import subprocess
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from apache_beam.metrics import monitoring_infos
from apache_beam.options.pipeline_options import (
    FlinkRunnerOptions,
    PipelineOptions,
    StandardOptions,
)
from apache_beam.runners.runner import PipelineRunner

from newsflow.errors import NewsflowError

DEFAULT_RUNNER = "DirectRunner"
FLINK_POM = Path(__file__).resolve().parent.parent / "deploy" / "flink" / "pom.xml"
#: The Flink line of the job server in FLINK_POM (its ``flink.minor``); Beam names jars by it.
FLINK_VERSION = "1.19"
_LOG = logging.getLogger("newsflow.pipeline")


class RunnerNotReady(NewsflowError):
    """A runner cannot start on this machine; the message says what to install or run."""


def runner_for(options: PipelineOptions, state_dir: Path) -> PipelineRunner | str:
    """The runner named by ``--runner``, prepared to run here without run-time downloads.

    ``state_dir`` (the local stack's) holds what Maven builds for a local Flink job server.
    """
    name = options.view_as(StandardOptions).runner or DEFAULT_RUNNER
    if name in (DEFAULT_RUNNER, "FnApiRunner"):
        from apache_beam.runners.portability.fn_api_runner import FnApiRunner

        keep_bounded_metrics()
        return FnApiRunner()
    if name == "FlinkRunner":
        flink = options.view_as(FlinkRunnerOptions)
        if not flink.flink_job_server_jar:
            flink.flink_job_server_jar = str(flink_job_server_jar(state_dir / "flink"))
            flink.flink_version = FLINK_VERSION
    return name


def keep_bounded_metrics() -> None:
    """Make the FnApiRunner hold one consolidated set of metrics per stage, not one per bundle.

    After every bundle its run loop (Beam 2.77.0, ``fn_runner.run_stages``) folds the bundle's
    monitoring infos into the stage's with ``monitoring_infos.consolidate``, which is a
    generator: each bundle wraps the previous generator in a new one and nothing is merged until
    the pipeline ends. A streaming run therefore keeps every bundle's metrics, protobuf messages
    in native memory: the soak's RSS grew 378 MiB/hour (docs/PERFORMANCE.md). Consolidating
    into a list at each step gives the same metrics in constant memory.
    """
    from apache_beam.runners.portability.fn_api_runner import fn_runner

    fn_runner.consolidate_monitoring_infos = _consolidated_list


def _consolidated_list(
    infos: Iterable[monitoring_infos.metrics_pb2.MonitoringInfo],
    key: Callable[[Any], Any] = monitoring_infos.to_key,
) -> list[monitoring_infos.metrics_pb2.MonitoringInfo]:
    return list(monitoring_infos.consolidate(infos, key))


def flink_job_server_jar(directory: Path) -> Path:
    """The job server launcher jar, built by Maven into ``directory`` when missing or outdated.

    Outdated means older than the pom, so a version bump there rebuilds it on the next run.
    """
    directory = directory.resolve()  # Maven resolves a relative path against the pom's folder
    jar = directory / "flink-job-server.jar"
    if jar.exists() and jar.stat().st_mtime >= FLINK_POM.stat().st_mtime:
        return jar
    mvn = shutil.which("mvn")
    if not mvn:
        raise RunnerNotReady(
            "FlinkRunner needs Maven (mvn) to resolve the Flink job server from Maven Central: "
            "install it (Debian: `apt-get install maven`) or pass --flink_job_server_jar=PATH"
        )
    _LOG.info("resolving the Flink job server with Maven into %s (first run only) ...", directory)
    result = subprocess.run(
        [mvn, "-B", "-q", "-f", str(FLINK_POM), "package", f"-Djobserver.dir={directory}"],
        capture_output=True,
        text=True,
        check=False,
    )
    if result.returncode != 0 or not jar.exists():
        output = "\n".join((result.stdout + result.stderr).splitlines()[-15:])
        raise RunnerNotReady(
            f"Maven could not build the Flink job server from {FLINK_POM} (offline, or blocked "
            f"by a proxy?). Check access to Maven Central, or pass --flink_job_server_jar=PATH. "
            f"Maven said:\n{output}"
        )
    return jar
