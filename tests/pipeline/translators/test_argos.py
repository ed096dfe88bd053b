"""Argos: a missing install says how to fix it; paths are chosen over the installed pairs.

Argos Translate and its models cannot be installed here (models are downloads), so translation
itself is not exercised; the import is made to fail even where Argos happens to be installed.
"""

from __future__ import annotations

import sys

import pytest

from newsflow.settings import TranslationSettings
from pipeline.translation import pair_path
from pipeline.translators.argos import ArgosTranslator

INSTALLED = [("es", "en"), ("en", "es"), ("pt", "es"), ("fr", "en"), ("it", "en")]


def test_missing_argostranslate_says_how_to_install_it_and_its_models(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    for module in ("argostranslate", "argostranslate.package", "argostranslate.translate"):
        monkeypatch.setitem(sys.modules, module, None)  # None in sys.modules: ImportError
    translator = ArgosTranslator(TranslationSettings(backend="argos"))

    with pytest.raises(RuntimeError) as raised:
        translator.load()
    message = str(raised.value)
    assert "pip install argostranslate" in message
    assert "argospm install translate-es_en" in message
    assert "install_from_path" in message and ".argosmodel" in message


@pytest.mark.parametrize(
    ("source", "pivot", "expected"),
    [
        ("es", "es", ("es", "en")),  # direct
        ("fr", "es", ("fr", "en")),  # direct wins over a pivot
        ("pt", "es", ("pt", "es", "en")),  # both legs installed
        ("pt", "fr", None),  # no pt -> fr leg
        ("de", "es", None),  # nothing from German
        ("en", "en", None),  # the pivot is the source: no (en, en, en) detour
    ],
)
def test_pair_path(source: str, pivot: str, expected: tuple[str, ...] | None) -> None:
    assert pair_path(INSTALLED, source, "en", pivot) == expected
