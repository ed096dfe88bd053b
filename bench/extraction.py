"""Extraction benchmark: how much of each article's body ``connectors.pages.extract_page`` gets.

Two real page sets from the shared corpus (read its SOURCES.md):

- ``html/fundus``: 116 publisher pages with fundus's hand-written parsers' output as ground truth.
  The reference body is the summary, then every section's headline and paragraphs. Score:
  bag-of-tokens precision, recall and F1 against it, per page, averaged per language (the page's
  ``<html lang>``, else the publisher's language) and overall. Tokens are lower-cased word runs;
  Chinese and Japanese characters count one each, since those scripts have no spaces. A page we
  fail to extract scores 0. Published dates are also checked (same instant within a day).
- ``html/trafilatura``: 39 pages with snippets the main text must contain ("with") and must not
  contain ("without", e.g. boilerplate). There is no full reference text, so no F1: we report
  the share of "with" snippets found and of "without" snippets kept out.

Markdown tables on stdout, progress on stderr, everything (per page too) as JSON with --json.

    python bench/extraction.py [--limit N] [--json PATH]
"""

from __future__ import annotations

import argparse
import csv
import gzip
import json
import os
import re
import sys
import time
import unicodedata
from collections import Counter, defaultdict
from collections.abc import Callable, Iterable, Sequence
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from connectors.pages import ExtractedPage, ExtractionFailed, extract_page  # noqa: E402

CORPUS = Path(os.environ.get("NEWSFLOW_SHARED_DIR") or REPO.parent / "shared") / "corpus"
FUNDUS = Path("html/fundus")
TRAFILATURA = Path("html/trafilatura")
GOAL_F1 = 0.90
_TOKENS = re.compile(r"[\u3040-\u30ff\u3400-\u4dbf\u4e00-\u9fff\uf900-\ufaff]|\w+")
_SPACES = re.compile(r"\s+")


@dataclass(frozen=True)
class PageScore:
    name: str
    language: str
    precision: float
    recall: float
    f1: float
    date_ok: bool | None  # None: no reference date
    error: str | None = None


@dataclass(frozen=True)
class SnippetScore:
    name: str
    language: str
    found: int
    expected: int
    kept_out: int
    unwanted: int
    error: str | None = None


def tokens(text: str) -> Counter[str]:
    return Counter(token.lower() for token in _TOKENS.findall(text))


def token_scores(predicted: str, reference: str) -> tuple[float, float, float]:
    """Bag-of-tokens (precision, recall, F1); an empty side scores 0."""
    got, want = tokens(predicted), tokens(reference)
    overlap = sum((got & want).values())
    precision = overlap / sum(got.values()) if got else 0.0
    recall = overlap / sum(want.values()) if want else 0.0
    f1 = 2 * precision * recall / (precision + recall) if precision + recall else 0.0
    return precision, recall, f1


def comparable(text: str) -> str:
    """Snippets and text in one Unicode form (NFC) and with single spaces."""
    return _SPACES.sub(" ", unicodedata.normalize("NFC", text))


def fundus_body(body: dict[str, Any]) -> str:
    parts = list(body.get("summary", []))
    for section in body.get("sections", []):
        parts += section.get("headline", []) + section.get("paragraphs", [])
    return "\n".join(parts)


def date_matches(found: datetime | None, reference: str | None) -> bool | None:
    if not reference:
        return None
    expected = datetime.fromisoformat(reference)
    if found is None:
        return False
    if expected.tzinfo is None:
        expected = expected.replace(tzinfo=UTC)
    return abs((found - expected).total_seconds()) < 86_400


def primary_language(tag: str, fallback: str) -> str:
    return (tag or fallback or "und").replace("_", "-").split("-")[0].lower()


def _extract(html: bytes, url: str) -> tuple[ExtractedPage | None, str | None]:
    try:
        return extract_page(html, url=url), None
    except ExtractionFailed as exc:
        return None, str(exc)


def score_fundus(
    corpus: Path, limit: int | None, progress: Callable[[str], None]
) -> list[PageScore]:
    root = corpus / FUNDUS
    with (root / "PAIRS.tsv").open(encoding="utf-8") as manifest:
        rows = list(csv.DictReader(manifest, delimiter="\t"))[:limit]
    scores = []
    for number, row in enumerate(rows, start=1):
        folder = root / "test_data" / row["country"]
        html = gzip.decompress((folder / row["html"]).read_bytes())
        truth = json.loads((folder / row["json"]).read_text(encoding="utf-8"))[row["json_key"]]
        page, error = _extract(html, row["url"])
        p, r, f = token_scores(page.text if page else "", fundus_body(truth["body"]))
        scores.append(
            PageScore(
                name=row["html"],
                language=primary_language(row["html_lang"], row["languages"].split(",")[0]),
                precision=p,
                recall=r,
                f1=f,
                date_ok=date_matches(
                    page.published_at if page else None, truth.get("publishing_date")
                ),
                error=error,
            )
        )
        progress(f"fundus {number}/{len(rows)} {row['html']}: F1 {f:.3f}")
    return scores


def score_trafilatura(
    corpus: Path, limit: int | None, progress: Callable[[str], None]
) -> list[SnippetScore]:
    root = corpus / TRAFILATURA
    evaldata = json.loads((root / "tests" / "evaldata.json").read_text(encoding="utf-8"))
    with (root / "SELECTED.tsv").open(encoding="utf-8") as manifest:
        rows = list(csv.DictReader(manifest, delimiter="\t"))[:limit]
    scores = []
    for number, row in enumerate(rows, start=1):
        url = row["url_key_in_evaldata.json"]
        entry = evaldata[url]
        page, error = _extract((root / "tests" / "eval" / row["file"]).read_bytes(), url)
        text = comparable(page.text) if page else ""
        found = sum(comparable(s) in text for s in entry.get("with", []))
        kept_out = sum(comparable(s) not in text for s in entry.get("without", []))
        scores.append(
            SnippetScore(
                name=row["file"],
                language=row["lang"],
                found=found,
                expected=len(entry.get("with", [])),
                kept_out=kept_out,
                unwanted=len(entry.get("without", [])),
                error=error,
            )
        )
        progress(f"trafilatura {number}/{len(rows)} {row['file']}: {found} found, {kept_out} out")
    return scores


def _mean(values: Iterable[float]) -> float:
    values = list(values)
    return sum(values) / len(values) if values else 0.0


def summarize_f1(scores: Sequence[PageScore]) -> list[dict[str, Any]]:
    """One row per language (most pages first), then ``all``."""
    groups: dict[str, list[PageScore]] = defaultdict(list)
    for score in scores:
        groups[score.language].append(score)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return [_f1_row(language, group) for language, group in [*ordered, ("all", list(scores))]]


def _f1_row(language: str, group: Sequence[PageScore]) -> dict[str, Any]:
    dated = [s.date_ok for s in group if s.date_ok is not None]
    return {
        "language": language,
        "pages": len(group),
        "precision": _mean(s.precision for s in group),
        "recall": _mean(s.recall for s in group),
        "f1": _mean(s.f1 for s in group),
        "failed": sum(s.error is not None for s in group),
        "date_ok": f"{sum(dated)}/{len(dated)}",
    }


def summarize_snippets(scores: Sequence[SnippetScore]) -> list[dict[str, Any]]:
    groups: dict[str, list[SnippetScore]] = defaultdict(list)
    for score in scores:
        groups[score.language].append(score)
    ordered = sorted(groups.items(), key=lambda item: (-len(item[1]), item[0]))
    return [
        {
            "language": language,
            "pages": len(group),
            "with_found": sum(s.found for s in group) / max(1, sum(s.expected for s in group)),
            "without_kept_out": sum(s.kept_out for s in group)
            / max(1, sum(s.unwanted for s in group)),
            "failed": sum(s.error is not None for s in group),
        }
        for language, group in [*ordered, ("all", list(scores))]
    ]


def markdown(rows: Sequence[dict[str, Any]]) -> str:
    if not rows:
        return "(no pages)"
    columns = list(rows[0])
    lines = ["| " + " | ".join(columns) + " |", "|" + "---|" * len(columns)]
    for row in rows:
        cells = (f"{v:.3f}" if isinstance(v, float) else str(v) for v in row.values())
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--corpus", type=Path, default=CORPUS, help="shared corpus directory")
    parser.add_argument("--limit", type=int, help="only the first N pages of each set")
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results as JSON")
    args = parser.parse_args(argv)

    started = time.monotonic()

    def progress(message: str) -> None:
        print(f"[{time.monotonic() - started:6.1f}s] {message}", file=sys.stderr, flush=True)

    fundus = score_fundus(args.corpus, args.limit, progress)
    snippets = score_trafilatura(args.corpus, args.limit, progress)
    f1_rows, snippet_rows = summarize_f1(fundus), summarize_snippets(snippets)
    overall = f1_rows[-1]["f1"]
    print(f"## Body token F1 against fundus ground truth ({len(fundus)} pages)\n")
    print(markdown(f1_rows))
    verdict = "met" if overall >= GOAL_F1 else "NOT met"
    print(f"\nOverall F1 {overall:.3f} (goal {GOAL_F1:.2f}): {verdict}")
    print(f"\n## trafilatura evaluation snippets ({len(snippets)} pages)\n")
    print(markdown(snippet_rows))
    if args.json:
        args.json.write_text(
            json.dumps(
                {
                    "generated_at": datetime.now(UTC).isoformat(),
                    "seconds": time.monotonic() - started,
                    "goal_f1": GOAL_F1,
                    "fundus": {"summary": f1_rows, "pages": [asdict(s) for s in fundus]},
                    "trafilatura": {
                        "summary": snippet_rows,
                        "pages": [asdict(s) for s in snippets],
                    },
                },
                indent=2,
                ensure_ascii=False,
            ),
            encoding="utf-8",
        )
    return 0


if __name__ == "__main__":
    sys.exit(main())
