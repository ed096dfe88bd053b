"""The real wheel, installed with the lock into a fresh virtual environment, runs and is healthy.

This is what a user of a built wheel (and the container image) gets: no checkout beside it, so
every file newsflow reads at run time must be in the wheel. The install reuses pip's cache.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.conftest import REPO, unstarted_stack_env

pytestmark = pytest.mark.wheel

LOCK = REPO / "deploy" / "requirements.lock"
#: Package data newsflow reads at run time: the web page, the index definition, the typing
#: marker, and the lock the doctor compares with.
PACKAGE_DATA = (
    "newsflow/web/index.html",
    "newsflow/web/app.js",
    "newsflow/web/style.css",
    "newsflow/news-index.json",
    "newsflow/py.typed",
    "newsflow/requirements.lock",
)


def run(
    *command: str | Path, cwd: Path, env: dict[str, str] | None = None
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [str(part) for part in command],
        cwd=cwd,
        env=env,
        capture_output=True,
        text=True,
        timeout=900,
        check=False,
    )


@pytest.fixture(scope="module")
def installed(tmp_path_factory: pytest.TempPathFactory) -> tuple[Path, Path]:
    """(the wheel, the bin directory of a fresh venv it is installed in with the lock)."""
    root = tmp_path_factory.mktemp("wheel")
    built = run(
        sys.executable, "-m", "pip", "wheel", "--no-deps", "-w", root / "dist", ".", cwd=REPO
    )
    assert built.returncode == 0, built.stdout + built.stderr
    [wheel] = (root / "dist").glob("newsflow-*.whl")
    venv = root / "venv"
    created = run(sys.executable, "-m", "venv", venv, cwd=root)
    assert created.returncode == 0, created.stderr
    install = (venv / "bin" / "python", "-m", "pip", "install", "-q", "-c", LOCK)
    for what in ("pip", wheel):  # pip first: the lock pins the installer too
        pip = run(*install, what, cwd=root)
        assert pip.returncode == 0, pip.stdout + pip.stderr
    return wheel, venv / "bin"


def test_the_wheel_holds_the_package_data_and_the_lock(installed: tuple[Path, Path]) -> None:
    wheel, _ = installed
    with zipfile.ZipFile(wheel) as archive:
        names = set(archive.namelist())
        assert set(PACKAGE_DATA) <= names
        assert archive.read("newsflow/requirements.lock") == LOCK.read_bytes()
    assert not {name for name in names if name.startswith(("tests/", "bench/", "deploy/"))}


def test_newsflow_help_runs_from_the_installed_wheel(
    installed: tuple[Path, Path], tmp_path: Path
) -> None:
    _, bin_dir = installed
    result = run(bin_dir / "newsflow", "--help", cwd=tmp_path)
    assert result.returncode == 0, result.stderr
    for command in ("stack", "doctor", "ingest", "pipeline", "search", "serve"):
        assert command in result.stdout


def test_doctor_passes_before_the_stack_is_up(installed: tuple[Path, Path], tmp_path: Path) -> None:
    """Run away from any checkout, on ports nothing holds, as before ``newsflow stack up``."""
    _, bin_dir = installed
    env = {
        **{k: v for k, v in os.environ.items() if not k.startswith(("NEWSFLOW_", "PYTHON"))},
        **unstarted_stack_env(tmp_path / "state"),
    }
    result = run(bin_dir / "newsflow", "doctor", "--json", cwd=tmp_path, env=env)
    assert result.returncode == 0, result.stdout + result.stderr
    found = {f["check"]: f for f in json.loads(result.stdout)}
    site_packages = bin_dir.parent / "lib"
    packages = found["packages"]
    assert packages["status"] == "ok", packages
    assert str(site_packages) in packages["detail"]  # the lock inside the wheel, not the checkout's
    assert all(found[name]["status"] == "ok" for name in ("python", "spacy", "lingua"))
    assert found["local stack"]["status"] == "warn"  # its poms are not in the wheel
    assert found["kafka"]["status"] == found["elasticsearch"]["status"] == "warn"
