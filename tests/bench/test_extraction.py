"""The extraction benchmark end to end on the first pages of each corpus set, and its scoring."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from bench.extraction import date_matches, main, primary_language, token_scores
from tests.conftest import shared_path


def test_token_scores() -> None:
    assert token_scores("the cat sat", "the cat sat") == (1.0, 1.0, 1.0)
    assert token_scores("", "the cat") == (0.0, 0.0, 0.0)
    precision, recall, f1 = token_scores("the cat sat on a mat", "The cat sat")
    assert (precision, recall) == (0.5, 1.0)
    assert f1 == pytest.approx(2 / 3)
    assert token_scores("東京都", "東京") == (pytest.approx(2 / 3), 1.0, 0.8)


def test_date_and_language_helpers() -> None:
    from datetime import UTC, datetime

    assert date_matches(None, None) is None
    assert date_matches(None, "2024-01-01 10:00:00") is False
    assert date_matches(datetime(2024, 1, 1, 20, tzinfo=UTC), "2024-01-01 10:00:00+00:00")
    assert primary_language("nb-NO", "no") == "nb"
    assert primary_language("", "de") == "de"


def test_smoke_run_on_three_pages(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    out = tmp_path / "result.json"
    corpus = shared_path("corpus")
    assert main(["--corpus", str(corpus), "--limit", "3", "--json", str(out)]) == 0
    captured = capsys.readouterr()
    assert "Overall F1" in captured.out
    assert "fundus 3/3" in captured.err
    result = json.loads(out.read_text(encoding="utf-8"))
    assert len(result["fundus"]["pages"]) == 3
    assert len(result["trafilatura"]["pages"]) == 3
    overall = result["fundus"]["summary"][-1]
    assert overall["language"] == "all" and overall["pages"] == 3
    assert 0.5 < overall["f1"] <= 1.0
