"""Argos Translate backend: offline neural translation from ``.argosmodel`` packages.

Argos is optional (it pulls in CTranslate2 and SentencePiece), so it is imported in ``load()``
and a missing install says exactly what to run. Argos would silently pivot through English on its
own; we choose the path ourselves (direct, else through ``pivot_language``) so the provenance
records the languages the text really went through.
"""

from __future__ import annotations

from importlib import metadata
from itertools import pairwise
from typing import Any

from newsflow.settings import TranslationSettings
from pipeline.translation import TranslationError, pair_path

MODELS_HELP = (
    "Argos language models are .argosmodel files, one per pair: where the package index is "
    "reachable, `argospm update && argospm install translate-es_en` (and translate-pt_es, ...); "
    'offline, copy the .argosmodel file onto the machine and run `python -c "import '
    "argostranslate.package as p; p.install_from_path('translate-es_en-1_0.argosmodel')\"`. "
    "They go to $ARGOS_PACKAGES_DIR (default ~/.local/share/argos-translate/packages)."
)
INSTALL_HELP = (
    "Argos Translate is not installed: `pip install argostranslate`, or choose another "
    f"NEWSFLOW_TRANSLATION__BACKEND. {MODELS_HELP}"
)


class ArgosTranslator:
    name = "argos"

    def __init__(self, settings: TranslationSettings) -> None:
        self._pivot = settings.pivot_language
        self._pairs: set[tuple[str, str]] = set()
        self._languages: dict[str, Any] = {}  # code -> argostranslate.translate.Language
        self._version = ""

    def load(self) -> None:
        try:
            import argostranslate.package
            import argostranslate.translate
        except ImportError as exc:
            raise RuntimeError(INSTALL_HELP) from exc
        packages = [
            p for p in argostranslate.package.get_installed_packages() if p.type == "translate"
        ]
        if not packages:
            raise RuntimeError(f"Argos Translate has no language models installed. {MODELS_HELP}")
        self._pairs = {(p.from_code, p.to_code) for p in packages}
        self._languages = {
            language.code: language
            for language in argostranslate.translate.get_installed_languages()
        }
        installed = sorted(f"{p.from_code}_{p.to_code}-{p.package_version}" for p in packages)
        self._version = " ".join(
            [f"argostranslate-{metadata.version('argostranslate')}", *installed]
        )

    def path(self, source: str, target: str) -> tuple[str, ...] | None:
        return pair_path(self._pairs, source, target, self._pivot)

    def translate(self, texts: list[str], path: tuple[str, ...]) -> list[str]:
        for source, target in pairwise(path):
            try:
                engine = self._languages[source].get_translation(self._languages[target])
                texts = [engine.translate(text) for text in texts]
            except Exception as exc:  # any engine failure is a failed translation, not a crash
                raise TranslationError(f"argos {source}->{target}: {exc}") from exc
        return texts

    def version(self) -> str:
        """argostranslate and every installed model: a model update invalidates the cache."""
        return self._version
