"""The quality benchmark's pure helpers: data grouping, readers, entity overlap and scoring."""

from __future__ import annotations

import subprocess
import sys
import time
import zipfile
from pathlib import Path

import pytest

from bench.quality import (
    ThroughputRow,
    cost_verdict,
    entity_score,
    entity_set,
    group_documents,
    markdown,
    normalize_name,
    paired,
    preserved,
    read_gnad,
    read_xlsx_column,
    score_languages,
    spread,
    timed,
)


def test_group_documents_keeps_document_and_line_order() -> None:
    ids = ["bbc.1", "bbc.1", "dw.7", "dw.7", "dw.7", "ap.2"]
    lines = ["Headline one", "Body one", "Headline two", "a", "b", "Only line"]
    assert group_documents(ids, lines) == {
        "bbc.1": ["Headline one", "Body one"],
        "dw.7": ["Headline two", "a", "b"],
        "ap.2": ["Only line"],
    }
    assert list(group_documents(ids, lines)) == ["bbc.1", "dw.7", "ap.2"]


def test_group_documents_refuses_misaligned_files() -> None:
    with pytest.raises(ValueError, match="3 document ids for 2 lines"):
        group_documents(["a", "a", "b"], ["x", "y"])


def test_group_documents_refuses_a_document_split_in_two() -> None:
    with pytest.raises(ValueError, match="'a' is not contiguous"):
        group_documents(["a", "b", "a"], ["x", "y", "z"])


def test_spread_samples_evenly_and_never_pads() -> None:
    assert spread(list(range(10)), 5) == [0, 2, 4, 6, 8]
    assert spread(list(range(10)), 3) == [0, 3, 6]
    assert spread([1, 2], 5) == [1, 2]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("The  United Nations", "united nations"),
        ("Theresa May's", "theresa may"),
        ("“Boris Johnson”,", "boris johnson"),
        ("the EU’s", "eu"),
        ("Thessaloniki", "thessaloniki"),  # "the" only as a word of its own
        ("—", ""),
    ],
)
def test_normalize_name(text: str, expected: str) -> None:
    assert normalize_name(text) == expected


def test_entity_set_keeps_people_places_organisations_once() -> None:
    spans = [
        ("PERSON", "Theresa May"),
        ("PERSON", "Theresa May's"),
        ("GPE", "the UK"),
        ("DATE", "Tuesday"),
        ("ORG", "“"),
    ]
    assert entity_set(spans) == {("PERSON", "theresa may"), ("GPE", "uk")}


def test_preserved_matches_by_name_unless_labels_are_required() -> None:
    reference = {("PERSON", "lula"), ("GPE", "brazil"), ("ORG", "petrobras")}
    hypothesis = {("ORG", "lula"), ("GPE", "brazil"), ("GPE", "lisbon")}
    assert preserved(reference, hypothesis) == {("PERSON", "lula"), ("GPE", "brazil")}
    assert preserved(reference, hypothesis, same_label=True) == {("GPE", "brazil")}
    assert preserved(reference, set()) == set()


def test_entity_score_is_micro_averaged_over_documents() -> None:
    references = [
        {("PERSON", "lula"), ("GPE", "brazil"), ("GPE", "chile")},
        {("GPE", "peru")},
    ]
    hypotheses = [{("ORG", "lula"), ("GPE", "brazil"), ("GPE", "lisbon")}, set()]
    score = entity_score(references, hypotheses)
    assert score.entities == 4
    assert score.preserved == pytest.approx(2 / 4)  # not the mean of 2/3 and 0/1
    assert score.supported == pytest.approx(2 / 3)  # "lisbon" is not in the reference
    assert score.same_label == pytest.approx(1 / 4)
    assert score.by_label == {"PERSON": 1.0, "GPE": pytest.approx(1 / 3), "ORG": None}
    assert score.per_document == [2, 0]


def test_score_languages_counts_und_as_wrong_and_lists_confusions() -> None:
    row = score_languages("set", "pt", "pt", ["pt", "pt", "es", "und", "es", "pt"])
    assert row.documents == 6
    assert row.accuracy == pytest.approx(0.5)
    assert row.undetermined == pytest.approx(1 / 6)
    assert row.confusions == "es 2, und 1"


def test_paired_counts_wins_losses_ties() -> None:
    assert paired([3, 1, 2, 2], [1, 1, 5, 0]) == "2/1/1"


def test_read_gnad_keeps_semicolons_inside_quoted_text(tmp_path: Path) -> None:
    path = tmp_path / "test.csv"
    path.write_text("Sport;'Ein Satz; noch einer.'\nWeb;'Zweiter Artikel'\n", encoding="utf-8")
    assert read_gnad(path) == ["Ein Satz; noch einer.", "Zweiter Artikel"]


def _xlsx(path: Path, header: str) -> None:
    """A minimal workbook as Excel writes it: shared strings, one sheet, a numeric cell."""
    main = "http://schemas.openxmlformats.org/spreadsheetml/2006/main"
    strings = ["Id", header, "Hola, ¿qué tal?", "Texto con <b>", "Otro"]
    shared = "".join(f"<si><t>{s.replace('<', '&lt;')}</t></si>" for s in strings)
    rows = (
        '<row r="1"><c r="A1" t="s"><v>0</v></c><c r="B1" t="s"><v>1</v></c></row>'
        '<row r="2"><c r="A2"><v>1</v></c><c r="B2" t="s"><v>2</v></c></row>'
        '<row r="3"><c r="A3"><v>2</v></c></row>'  # no text: skipped
        '<row r="4"><c r="A4"><v>3</v></c><c r="B4" t="s"><v>3</v></c></row>'
    )
    with zipfile.ZipFile(path, "w") as book:
        book.writestr("xl/sharedStrings.xml", f'<sst xmlns="{main}">{shared}</sst>')
        book.writestr(
            "xl/worksheets/sheet1.xml",
            f'<worksheet xmlns="{main}"><sheetData>{rows}</sheetData></worksheet>',
        )


@pytest.mark.parametrize("header", ["Text", "TEXT"])
def test_read_xlsx_column_by_header_in_any_case(tmp_path: Path, header: str) -> None:
    path = tmp_path / "book.xlsx"
    _xlsx(path, header)
    assert read_xlsx_column(path, "Text") == ["Hola, ¿qué tal?", "Texto con <b>"]
    assert read_xlsx_column(path, "Id") == ["1", "2", "3"]


def test_markdown_table() -> None:
    assert markdown(["a", "b"], [(1, "x"), (2, None)]) == (
        "| a | b |\n|---|---|\n| 1 | x |\n| 2 | None |"
    )


def _cost(stage: str, cpu_ms: float) -> ThroughputRow:
    return ThroughputRow(stage, 10, 1000, 1.0, cpu_ms / 100, 10.0, 1000, 100.0, cpu_ms)


def test_cost_verdict_compares_cpu_per_article_with_ner() -> None:
    verdict = cost_verdict(
        [_cost("Apertium es→en", 40.0), _cost("Apertium pt→es→en", 70.0), _cost("NER", 55.0)]
    )
    lines = verdict.splitlines()[2:]
    assert lines[0].startswith("- Apertium es→en: 40.0 CPU ms") and "cheaper than NER" in lines[0]
    assert "NOT cheaper than NER" in lines[1]


_BUSY = "import time\nend = time.process_time() + 0.2\nwhile time.process_time() < end: pass\n"


def test_timed_counts_cpu_of_child_processes_alive_or_exited() -> None:
    # A long-lived engine (Apertium) burns CPU in a child that is still running afterwards.
    engine = subprocess.Popen([sys.executable, "-c", _BUSY + "time.sleep(30)"])
    try:
        _, alive = timed(lambda: time.sleep(1.0))
    finally:
        engine.kill()
        engine.wait()
    assert alive.cpu_seconds >= 0.15
    _, exited = timed(lambda: subprocess.run([sys.executable, "-c", _BUSY], check=True))
    assert exited.cpu_seconds >= 0.15
    _, idle = timed(lambda: time.sleep(0.1))
    assert idle.cpu_seconds < 0.05
