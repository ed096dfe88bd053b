"""The end-to-end benchmark's helpers, and a tiny untimed run of it against the real stack."""

from __future__ import annotations

import os
from collections import Counter
from pathlib import Path

import pytest

from bench.pipeline_throughput import (
    Sample,
    bbc_file,
    end_to_end,
    histogram_quantile,
    interleave,
    mixed_sample,
    offered,
    parse_metrics,
    quantile,
    top_up,
    tree_usage,
    variant_settings,
)
from newsflow.settings import Settings
from tests.conftest import shared_path

METRICS = """\
# TYPE newsflow_pipeline_stage_seconds_per_article histogram
newsflow_pipeline_stage_seconds_per_article_bucket{stage="entities",le="0.05"} 3.0
newsflow_pipeline_stage_seconds_per_article_bucket{stage="entities",le="+Inf"} 4.0
newsflow_pipeline_stage_seconds_per_article_count{stage="entities"} 4.0
newsflow_pipeline_stage_seconds_per_article_sum{stage="entities"} 0.2
newsflow_pipeline_stage_seconds_per_article_count{stage="idle"} 0.0
newsflow_pipeline_stage_seconds_per_article_sum{stage="idle"} 0.0
# TYPE newsflow_pipeline_bulk_request_seconds histogram
newsflow_pipeline_bulk_request_seconds_count{outcome="ok"} 2.0
newsflow_pipeline_bulk_request_seconds_sum{outcome="ok"} 0.3
newsflow_pipeline_bulk_request_seconds_count{outcome="retry"} 1.0
newsflow_pipeline_bulk_request_seconds_sum{outcome="retry"} 0.1
# TYPE newsflow_pipeline_articles_out counter
newsflow_pipeline_articles_out_total{stage="index"} 8.0
newsflow_pipeline_articles_out_total{stage="entities"} 9.0
# TYPE newsflow_pipeline_end_to_end_latency_seconds histogram
newsflow_pipeline_end_to_end_latency_seconds_bucket{le="1.0"} 5.0
newsflow_pipeline_end_to_end_latency_seconds_bucket{le="0.5"} 0.0
newsflow_pipeline_end_to_end_latency_seconds_bucket{le="2.0"} 10.0
newsflow_pipeline_end_to_end_latency_seconds_bucket{le="+Inf"} 10.0
newsflow_pipeline_end_to_end_latency_seconds_count 10.0
newsflow_pipeline_end_to_end_latency_seconds_sum 12.0
# TYPE newsflow_pipeline_dedupe_outcomes counter
newsflow_pipeline_dedupe_outcomes_total{outcome="new"} 7.0
newsflow_pipeline_dedupe_outcomes_total{outcome="duplicate"} 3.0
# TYPE newsflow_pipeline_records_committed counter
newsflow_pipeline_records_committed_total 10.0
# TYPE newsflow_pipeline_commits counter
newsflow_pipeline_commits_total 4.0
"""


def test_quantile_is_nearest_rank() -> None:
    values = [float(v) for v in range(1, 101)]
    assert quantile(values, 0.5) == 50
    assert quantile(values, 0.95) == 95
    assert quantile(values, 0.99) == 99
    assert quantile([3.0], 0.99) == 3.0
    with pytest.raises(ValueError):
        quantile([], 0.5)


def test_histogram_quantile_interpolates_within_the_bucket() -> None:
    buckets = [(0.5, 0.0), (1.0, 5.0), (2.0, 10.0), (float("inf"), 10.0)]
    assert histogram_quantile(buckets, 0.5) == pytest.approx(1.0)
    assert histogram_quantile(buckets, 0.75) == pytest.approx(1.5)
    assert histogram_quantile([(1.0, 0.0), (float("inf"), 0.0)], 0.5) is None
    # everything beyond the last finite bound: the bound is all we know
    assert histogram_quantile([(1.0, 0.0), (float("inf"), 4.0)], 0.9) == 1.0


def test_parse_metrics_gives_mean_cost_per_stage_and_sorted_latency_buckets() -> None:
    scrape = parse_metrics(METRICS)
    assert scrape.stage_seconds == {  # idle: no articles; index: both bulk outcomes
        "entities": pytest.approx(0.05),
        "index": pytest.approx(0.05),
    }
    assert [bound for bound, _ in scrape.latency_buckets] == [0.5, 1.0, 2.0, float("inf")]
    assert histogram_quantile(scrape.latency_buckets, 0.5) == pytest.approx(1.0)
    assert scrape.dedupe_outcomes == {"new": 7.0, "duplicate": 3.0}
    assert (scrape.records_committed, scrape.commits) == (10.0, 4.0)


def test_a_steady_rate_offers_the_first_article_at_once_then_one_per_period() -> None:
    assert offered(0.0, 4.0) == 1
    assert offered(0.24, 4.0) == 1
    assert offered(0.25, 4.0) == 2
    assert offered(10.0, 4.0) == 41
    assert offered(1.0, 0.5) == 1


def test_interleave_round_robins_until_every_group_is_used() -> None:
    en, es, pt = (
        [Sample(f"{lang}{i}", "", lang) for i in range(n)]
        for lang, n in (("en", 3), ("es", 1), ("pt", 2))
    )
    assert [s.title for s in interleave([en, es, pt])] == ["en0", "es0", "pt0", "en1", "pt1", "en2"]


def test_bbc_file_splits_headline_and_body_like_the_pipeline_joins_them(tmp_path: Path) -> None:
    path = tmp_path / "001.txt"
    path.write_text("Ad sales boost Time Warner profit\n\nQuarterly profits jumped.\n\nMore.\n")
    sample = bbc_file(path)
    assert (sample.title, sample.body) == (
        "Ad sales boost Time Warner profit",
        "Quarterly profits jumped.\n\nMore.",
    )
    assert sample.text == "Ad sales boost Time Warner profit\n\nQuarterly profits jumped.\n\nMore."


def test_tree_usage_reads_this_process_from_proc() -> None:
    sum(i * i for i in range(200_000))  # some CPU to see
    cpu, rss = tree_usage(os.getpid())
    assert cpu > 0
    assert rss > 10 * 2**20


SMOKE = [
    Sample(
        f"Minister visits factory {i}",
        f"The minister for industry, Jane Smith, visited the Acme factory in Leeds on day {i}. "
        "Workers asked about pay and the company said orders from Germany were rising.",
        "en",
    )
    for i in range(5)
]


@pytest.mark.integration
def test_a_tiny_end_to_end_run_commits_every_article_and_reports_each_stage(
    stack: Settings,
) -> None:
    result = end_to_end(stack, "smoke", SMOKE[1:], SMOKE[0])
    assert result.articles == 4
    assert result.startup_seconds is not None and result.cpu_seconds is not None
    assert result.peak_rss_mib and result.peak_rss_mib > 50
    assert result.stack_cpu_seconds is not None and result.stack_cpu_seconds > 0  # it indexed
    assert {"entities", "index"} <= set(result.stage_seconds)
    assert result.records_per_bundle is not None and 1 <= result.records_per_bundle <= 4


def test_each_variant_changes_only_its_nlp_setting() -> None:
    base = Settings()
    inline = variant_settings(base, "inline-ner")
    full = variant_settings(base, "full-batches")
    assert not inline.nlp.ner_in_child_process
    assert full.nlp.edge_batch_size == full.nlp.batch_size != base.nlp.edge_batch_size
    for changed in (inline, full):
        assert changed.model_copy(update={"nlp": base.nlp}) == base
    assert base.nlp.ner_in_child_process  # the base is untouched


def test_top_up_spreads_over_the_first_source_and_adds_from_the_second_only_when_short() -> None:
    first, second = [f"a{i}" for i in range(10)], [f"b{i}" for i in range(10)]
    assert top_up(first, lambda: pytest.fail("not needed"), 5) == ["a0", "a2", "a4", "a6", "a8"]
    assert top_up(first, lambda: second, 14) == [*first, "b0", "b2", "b5", "b7"]


def test_a_large_mixed_sample_is_still_half_english_and_a_quarter_at_most_portuguese() -> None:
    english = [Sample(f"t{i}", f"English text {i}", "en") for i in range(1600)]
    mixed = mixed_sample(shared_path("corpus"), english, 1600)
    languages = Counter(sample.language for sample in mixed)
    assert languages == {"en": 800, "es": 500, "pt": 300}  # Fake.br here: 150 true + 150 fake
    assert [s.language for s in mixed[:3]] == ["en", "es", "pt"]  # interleaved
