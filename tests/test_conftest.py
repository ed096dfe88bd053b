"""Tests that read the shared corpus, run as a plain clone and as CI run them.

Each case runs real test modules of this repository in a child pytest, with the shared data
pointed somewhere else: absent (a plain clone), absent in CI, or present but stale.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from tests.conftest import REPO, REQUIRE_CORPUS_ENV

#: One test reading a corpus file at run time, and one parametrized over a corpus directory at
#: collection, beside tests of the same modules that need no corpus.
TESTS = [
    "tests/bench/test_extraction.py",
    "tests/connectors/test_safe_xml.py::test_corpus_feeds_are_refused_only_when_they_declare_entities",
]


def run_tests(shared: Path, **env: str) -> str:
    """The child pytest's summary, with the shared data at ``shared``."""
    clean = {k: v for k, v in os.environ.items() if k not in REQUIRE_CORPUS_ENV}
    result = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-rsf", "-p", "no:cacheprovider", *TESTS],
        cwd=REPO,
        env={**clean, "NEWSFLOW_SHARED_DIR": str(shared), **env},
        capture_output=True,
        text=True,
        timeout=300,
        check=False,
    )
    return result.stdout


def test_without_the_corpus_its_tests_are_skipped_with_where_it_comes_from(
    tmp_path: Path,
) -> None:
    summary = run_tests(tmp_path / "shared")
    assert summary.splitlines()[-1].startswith("2 passed, 2 skipped")
    reason = f"needs the shared corpus at {tmp_path / 'shared'} (the project's real-world"
    assert summary.count(reason) == 1  # one line for both tests
    assert "corpus/SOURCES.md" in summary


@pytest.mark.parametrize("variable", ["CI", "NEWSFLOW_REQUIRE_CORPUS"])
def test_in_ci_a_missing_corpus_fails_its_tests(tmp_path: Path, variable: str) -> None:
    summary = run_tests(tmp_path / "shared", **{variable: "true" if variable == "CI" else "1"})
    assert summary.splitlines()[-1].startswith("2 failed, 2 passed")
    assert "required here (NEWSFLOW_REQUIRE_CORPUS or CI is set)" in summary


def test_a_shared_directory_without_the_file_fails_even_outside_ci(tmp_path: Path) -> None:
    summary = run_tests(tmp_path)
    assert summary.splitlines()[-1].startswith("2 failed, 2 passed")
    assert f"{tmp_path / 'corpus'} is missing from the shared data at {tmp_path}" in summary
