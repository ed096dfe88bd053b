"""The command line without services: help everywhere, usage errors, settings errors."""

from __future__ import annotations

import pytest

from newsflow.cli import main

COMMANDS = [
    [],
    ["stack"],
    ["doctor"],
    ["ingest"],
    ["ingest", "files"],
    ["pipeline"],
    ["pipeline", "run"],
    ["search"],
    ["serve"],
    ["index"],
    ["dlq"],
]


@pytest.mark.parametrize("command", COMMANDS, ids=lambda c: " ".join(c) or "newsflow")
def test_every_command_has_help(command: list[str], capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main([*command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: newsflow" in capsys.readouterr().out


def test_unknown_options_are_refused_outside_the_pipeline(
    capsys: pytest.CaptureFixture[str],
) -> None:
    with pytest.raises(SystemExit) as exit_info:
        main(["search", "nato", "--bogus"])
    assert exit_info.value.code == 2
    assert "--bogus" in capsys.readouterr().err


def test_invalid_settings_exit_2_with_the_field_named(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    monkeypatch.setenv("NEWSFLOW_ELASTICSEARCH__URL", "localhost:9200")
    assert main(["search", "nato"]) == 2
    error = capsys.readouterr().err
    assert "elasticsearch.url" in error and "http://" in error


def test_unreadable_input_exits_1_with_the_path(
    tmp_path, capsys: pytest.CaptureFixture[str]
) -> None:
    missing = tmp_path / "nope.jsonl"
    assert main(["ingest", "files", str(missing)]) == 1
    assert f"{missing}: no such file or directory" in capsys.readouterr().err
