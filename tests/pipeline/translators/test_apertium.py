"""The Apertium backend against the real engine (Debian packages installed by .ci/run)."""

from __future__ import annotations

import ctypes.util
import subprocess
from pathlib import Path

import pytest

from newsflow.settings import TranslationSettings
from pipeline.translators.apertium import (
    FIRST_NAME,
    OTHER,
    PERSON_WORD,
    ApertiumTranslator,
    capitalized_runs,
    engine_environment,
    escape_stream,
    find_names,
    mode_languages,
    placeholder,
    protect,
    restore,
    unescape_stream,
    word_classes,
)

CLASSES = {
    "Lula": FIRST_NAME,
    "da": OTHER,
    "Silva": PERSON_WORD,
    "Macron": PERSON_WORD,
    "Según": OTHER,
    "El": OTHER,
    "Gobierno": OTHER,
    "España": OTHER,
    "Isabel": FIRST_NAME,
    "Díaz": PERSON_WORD,
    "Ayuso": PERSON_WORD,
    "Unión": OTHER,
    "Europea": OTHER,
    "Dijo": OTHER,
    "Carlos": FIRST_NAME,
    "Moedas": OTHER,
}


def word_class(word: str) -> str:
    return CLASSES.get(word, PERSON_WORD)


@pytest.fixture(scope="module")
def apertium() -> ApertiumTranslator:
    translator = ApertiumTranslator(TranslationSettings())
    translator.load()
    return translator


@pytest.fixture(scope="module")
def unprotected() -> ApertiumTranslator:
    translator = ApertiumTranslator(TranslationSettings(protect_names=False))
    translator.load()
    return translator


@pytest.mark.parametrize(
    ("mode", "languages"),
    [
        ("spa-eng", ("es", "en")),
        ("pt-es", ("pt", "es")),
        ("fr-es", ("fr", "es")),
        ("es-pt_BR", None),
        ("spa-eng_US", None),
        ("eco-es-fr", None),
    ],
)
def test_mode_names_map_to_iso_pairs(mode: str, languages: tuple[str, str] | None) -> None:
    assert mode_languages(mode) == languages


def test_stream_escaping_round_trips_special_characters() -> None:
    text = r"5$ [nota] <b> a/b ^x {y} @z *w #1 \ fin"
    assert unescape_stream(escape_stream(text)) == text


def test_unknown_word_marks_are_stripped_but_escaped_ones_kept() -> None:
    assert unescape_stream(r"the *Zxqa said \*really\*") == "the Zxqa said *really*"


def test_placeholders_are_distinct_letter_words() -> None:
    tokens = [placeholder(i) for i in range(60)]
    assert len(set(tokens)) == 60 and all(t.isalpha() and t[0].isupper() for t in tokens)


def test_word_classes_from_analyser_output() -> None:
    analysis = (
        "^Según/Según<pr>$ ^Lula/Lula<np><ant><f><sg>$ ^da/dar<vblex>$ "
        "^Silva/Silva<np><cog><mf><sg>$ ^Belém/*Belém$ ^España/España<np><loc>$"
    )
    assert word_classes(analysis) == {
        "Según": OTHER,
        "Lula": FIRST_NAME,
        "da": OTHER,
        "Silva": PERSON_WORD,
        "Belém": PERSON_WORD,
        "España": OTHER,
    }


def test_find_names_takes_person_runs_with_particles_and_leaves_institutions() -> None:
    text = (
        "Según Macron, Lula da Silva y Isabel Díaz Ayuso hablaron. "
        "El Gobierno de España y la Unión Europea firmaron con Carlos Moedas."
    )
    names = [text[a:b] for a, b in find_names(text, word_class)]
    assert names == ["Macron", "Lula da Silva", "Isabel Díaz Ayuso", "Carlos Moedas"]


def test_restore_puts_names_back_and_undoes_a_spurious_capital() -> None:
    protected = protect("Dijo que Macron dijo sí.", word_class)
    assert protected.names == ("Macron",) and "Macron" not in protected.text
    assert restore(f"It said that {placeholder(0)} Said yes.", protected) == (
        "It said that Macron said yes."
    )


def test_spanish_to_english(apertium: ApertiumTranslator) -> None:
    assert apertium.path("es", "en") == ("es", "en")
    [out] = apertium.translate(["El gobierno anunció nuevas medidas."], ("es", "en"))
    assert out.lower().startswith("the government announced")


def test_portuguese_and_french_pivot_through_spanish(apertium: ApertiumTranslator) -> None:
    assert apertium.path("pt", "en") == ("pt", "es", "en")
    assert apertium.path("fr", "en") == ("fr", "es", "en")
    assert apertium.path("de", "en") is None
    [pt, fr] = [
        apertium.translate([text], apertium.path(lang, "en") or ())[0]
        for lang, text in (("pt", "O presidente chegou ontem."), ("fr", "Le président est arrivé."))
    ]
    assert "president" in pt.lower() and "president" in fr.lower()


def test_names_survive_only_with_protection(
    apertium: ApertiumTranslator, unprotected: ApertiumTranslator
) -> None:
    text = ["O presidente Lula da Silva disse que Macron chegou ontem."]
    path = ("pt", "es", "en")
    assert "Lula da Silva" in apertium.translate(text, path)[0]
    assert "Lula da Silva" not in unprotected.translate(text, path)[0]


def test_special_characters_survive_the_engine(apertium: ApertiumTranslator) -> None:
    [out] = apertium.translate(["Precio: 5$ [nota] <b> y 3%."], ("es", "en"))
    assert "[note]" in out and "<b>" in out and "$" in out and "3%" in out


def test_one_engine_process_per_leg_however_many_texts(apertium: ApertiumTranslator) -> None:
    apertium.translate(["Hola."] * 20, ("es", "en"))
    pids = {key: p._process.pid for key, p in apertium._pipelines.items()}
    apertium.translate(["Adiós."] * 20, ("es", "en"))
    assert {key: p._process.pid for key, p in apertium._pipelines.items()} == pids


def test_institutions_and_places_are_left_to_the_engine(apertium: ApertiumTranslator) -> None:
    [out] = apertium.translate(
        ["El presidente de Grecia visitó París. La Casa Blanca respondió."], ("es", "en")
    )
    assert "Greece" in out and "Paris" in out and "White House" in out


def test_a_request_larger_than_the_pipe_buffers_does_not_deadlock(
    apertium: ApertiumTranslator,
) -> None:
    paragraph = "El gobierno anunció nuevas medidas económicas para el próximo año. " * 20
    texts = [paragraph] * 200  # ~270 kB in one request, several times a pipe's 64 kB
    out = apertium.translate(texts, ("pt", "es", "en")[1:])
    assert len(out) == 200 and all("government" in t.lower() for t in out)


def test_capitalized_runs_are_what_the_name_finder_asks_about() -> None:
    texts = [
        "Según Pedro Sánchez, la Unión Europea y Nueva York. El presidente Lula da Silva.",
        "Nueva York, OTAN, élan, Émile Zola",
    ]
    assert capitalized_runs(texts) == [
        "Según Pedro Sánchez",
        "Unión Europea",
        "Nueva York",
        "El",
        "Lula",
        "Silva",
        "Émile Zola",  # all-caps "OTAN" and lowercase "élan" are never names
    ]


def test_the_engine_runs_with_tcmalloc_when_it_is_installed(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("LD_PRELOAD", "libother.so")
    env = engine_environment()
    if ctypes.util.find_library("tcmalloc_minimal") is None:
        assert env["LD_PRELOAD"] == "libother.so"
    else:
        assert env["LD_PRELOAD"] == "libother.so libtcmalloc_minimal.so.4"


def test_the_running_engine_has_tcmalloc_loaded(apertium: ApertiumTranslator) -> None:
    """Installed by deploy/local/install-system-packages.sh; the programs must really load it."""
    apertium.translate(["Hola."], ("es", "en"))
    pipeline = apertium._pipelines[("es", "en", "None")]  # the whole mode, not the analyser
    engine_pids = subprocess.run(
        ["pgrep", "-P", str(pipeline._process.pid)], capture_output=True, text=True, check=True
    ).stdout.split()
    assert len(engine_pids) >= 5  # lt-proc, apertium-tagger, ... under the pipeline's bash
    for pid in engine_pids:
        assert "libtcmalloc_minimal" in Path(f"/proc/{pid}/maps").read_text()
