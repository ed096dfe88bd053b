"""Checks shared by the compose and Kubernetes tests: a container's command is a real newsflow
command, and a NEWSFLOW_* variable is a real setting."""

from __future__ import annotations

from collections.abc import Sequence

from newsflow.cli import build_parser
from newsflow.settings import Settings


def assert_newsflow_command(args: Sequence[str]) -> None:
    """``args`` (after the image's ``newsflow`` entrypoint) parse with no unknown option.

    ``pipeline run`` passes unknown options on to Beam, so a misspelled newsflow option there
    would be silently ignored; here any leftover is an error.
    """
    parsed, unknown = build_parser().parse_known_args(list(args))
    assert not unknown, f"`newsflow {' '.join(args)}`: unknown options {unknown}"
    assert parsed.handler is not None


def assert_setting_name(name: str) -> None:
    """``NEWSFLOW_<SECTION>__<KEY>`` names a field of the settings object (a typo would be ignored
    by pydantic-settings when the section itself is misspelled)."""
    assert name.startswith("NEWSFLOW_") and "__" in name, f"{name} is not NEWSFLOW_<SECTION>__<KEY>"
    section, key = name.removeprefix("NEWSFLOW_").lower().split("__", 1)
    assert section in Settings.model_fields, f"{name}: no settings section {section!r}"
    model = Settings.model_fields[section].annotation
    assert model is not None and key in model.model_fields, f"{name}: no {section}.{key} setting"
