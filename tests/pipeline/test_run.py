"""The pipeline's graph builds, type-checked, in every shape; it refuses to start, with what to
install, when a configured engine is missing."""

from __future__ import annotations

import itertools
from pathlib import Path

import apache_beam as beam
import pytest
from apache_beam.options.pipeline_options import PipelineOptions

from newsflow.settings import Settings
from pipeline.run import PipelineNotReady, build, preflight


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


@pytest.mark.parametrize(
    ("ner_in_child_process", "dedupe", "names"), list(itertools.product([True, False], repeat=3))
)
def test_the_graph_builds_with_type_checking_on(
    ner_in_child_process: bool, dedupe: bool, names: bool
) -> None:
    """Beam checks each transform's input against the type its producer declares while the graph
    is built (from 2.78 on, with the DoFns' annotations too), before any service is reached."""
    settings = settings_with(
        nlp={"ner_in_child_process": ner_in_child_process},
        dedupe={"enabled": dedupe},
        names={"enabled": names},
    )
    pipeline = beam.Pipeline(options=PipelineOptions(["--streaming", "--pipeline_type_check"]))
    build(pipeline, settings, stop_when_idle=5.0)
    labels = {t.unique_name for t in pipeline.to_runner_api().components.transforms.values()}
    assert {"Batch", "Decode", "ExtractEntities", "Index", "CommitOffsets"} <= labels
    assert ("Deduplicate" in labels, "CompleteNames" in labels) == (dedupe, names)
