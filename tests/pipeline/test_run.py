"""The pipeline refuses to start, with what to install, when a configured engine is missing."""

from __future__ import annotations

from pathlib import Path

import pytest

from newsflow.settings import Settings
from pipeline.run import PipelineNotReady, preflight


def settings_with(**sections: dict[str, object]) -> Settings:
    base = Settings()
    return base.model_copy(
        update={
            name: getattr(base, name).model_copy(update=values) for name, values in sections.items()
        }
    )


def test_a_missing_translation_backend_is_reported_before_anything_runs() -> None:
    with pytest.raises(PipelineNotReady, match="pip install argostranslate"):
        preflight(settings_with(translation={"backend": "argos"}))


def test_missing_apertium_data_is_reported_with_the_packages_to_install(tmp_path: Path) -> None:
    with pytest.raises(PipelineNotReady, match="apt-get install apertium"):
        preflight(settings_with(translation={"apertium_modes_dir": tmp_path / "none"}))


def test_a_missing_spacy_model_is_reported_by_name() -> None:
    with pytest.raises(PipelineNotReady, match="en_core_web_xx"):
        preflight(settings_with(nlp={"spacy_model": "en_core_web_xx"}))
