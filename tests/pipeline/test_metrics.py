"""The pipeline's metric helpers, and the dashboard and alerts that read their metrics.

The second half catches drift: every metric and label the Grafana dashboard and the Prometheus
alert rules in deploy/monitoring use must exist in the code (the pipeline's registry and the
connectors' collector), and every expression must be valid PromQL.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path

import promql_parser
import pytest
import yaml
from prometheus_client.registry import CollectorRegistry

from connectors.health import HealthBook, HealthCollector
from newsflow.article import Article
from pipeline import metrics
from pipeline.enriched import Duplication, EnrichedArticle
from pipeline.kafka_source import Origin
from tests.conftest import REPO

MONITORING = REPO / "deploy" / "monitoring"
FETCHED = datetime(2026, 11, 26, 12, 0, tzinfo=UTC)
#: Labels Prometheus adds to every scraped series, and the histogram bucket label.
SCRAPE_LABELS = {"job", "instance", "le"}
#: Series Prometheus itself provides.
PROMETHEUS_SERIES = {"up": set[str]()}


def value(name: str, **labels: str) -> float:
    return metrics.REGISTRY.get_sample_value(name, labels) or 0.0


def article(title: str, offset: int, duplication: Duplication | None = None) -> EnrichedArticle:
    item = Article.create(source="DN", title=title, body="Body.", fetched_at=FETCHED)
    return EnrichedArticle(item, Origin("t.raw", 0, offset), duplication=duplication)


def test_a_poll_counts_records_and_sets_the_partition_lag() -> None:
    before = value("newsflow_pipeline_records_read_total", topic="t.raw", partition="3")

    metrics.polled("t.raw", 3, records=5, lag=12)
    metrics.polled("t.raw", 3, records=0, lag=-1)  # a stale end offset is no negative lag

    after = value("newsflow_pipeline_records_read_total", topic="t.raw", partition="3")
    assert after - before == 5
    assert value("newsflow_pipeline_consumer_lag_records", topic="t.raw", partition="3") == 0
    assert metrics.progress().last_activity is not None


def test_a_stage_batch_counts_in_and_out_and_its_cost_per_article() -> None:
    count = "newsflow_pipeline_stage_seconds_per_article_count"
    before = (
        value("newsflow_pipeline_articles_in_total", stage="tagger"),
        value("newsflow_pipeline_articles_out_total", stage="tagger"),
        value(count, stage="tagger"),
        value("newsflow_pipeline_stage_seconds_per_article_sum", stage="tagger"),
    )

    metrics.stage_batch("tagger", received=4, passed=3, seconds=2.0)

    after = (
        value("newsflow_pipeline_articles_in_total", stage="tagger"),
        value("newsflow_pipeline_articles_out_total", stage="tagger"),
        value(count, stage="tagger"),
        value("newsflow_pipeline_stage_seconds_per_article_sum", stage="tagger"),
    )
    assert [a - b for a, b in zip(after, before, strict=True)] == [4, 3, 4, 2.0]


def test_the_sink_reports_dedupe_outcomes_and_end_to_end_latency() -> None:
    first = article("first", 1)
    new = replace(first, duplication=Duplication("h1", cluster_id=first.article.id))
    clustered = article("second", 2, Duplication("h2", cluster_id=new.article.id))
    copy = article("third", 3, Duplication("h3", new.article.id, duplicate_of=new.article.id))
    outcomes = ("new", "clustered", "duplicate")
    before = [value("newsflow_pipeline_dedupe_outcomes_total", outcome=o) for o in outcomes]
    latency_before = value("newsflow_pipeline_end_to_end_latency_seconds_sum")
    under_ten = "newsflow_pipeline_end_to_end_latency_seconds_bucket"
    fast_before = value(under_ten, le="10.0")

    metrics.reached_sink("index", [new, clustered, copy, article("no dedupe", 4)])
    metrics.acknowledged("index", [new, clustered], at=FETCHED + timedelta(seconds=7))

    after = [value("newsflow_pipeline_dedupe_outcomes_total", outcome=o) for o in outcomes]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1, 1]
    assert value("newsflow_pipeline_end_to_end_latency_seconds_sum") - latency_before == 14
    assert value(under_ten, le="10.0") - fast_before == 2


def test_dead_letters_are_errors_too_and_commits_move_the_progress() -> None:
    letters = ("newsflow_pipeline_dead_letters_total", "newsflow_pipeline_errors_total")
    before = [value(name, stage="decode", error_class="InvalidArticle") for name in letters]
    committed_before = value("newsflow_pipeline_records_committed_total")
    metrics.start()

    metrics.dead_lettered("decode", "InvalidArticle")
    metrics.bundle_finished(0)
    idle = metrics.progress()
    metrics.bundle_finished(3)

    after = [value(name, stage="decode", error_class="InvalidArticle") for name in letters]
    assert [a - b for a, b in zip(after, before, strict=True)] == [1, 1]
    assert (idle.last_bundle is not None, idle.last_commit) == (True, None)
    assert value("newsflow_pipeline_records_committed_total") - committed_before == 3
    assert metrics.progress().last_commit == value(
        "newsflow_pipeline_last_commit_timestamp_seconds"
    )


# -- deploy/monitoring against the code ---------------------------------------------------------


def known_series() -> dict[str, set[str]]:
    """Every series name the code can expose (with its suffixes), mapped to its label names."""
    exposed: dict[str, set[str]] = dict(PROMETHEUS_SERIES)
    book = HealthBook()
    book.register("probe", "rss", 60)
    book.published("probe", "sent", 0.0)
    book.poll_failed("probe", "timeout", "")
    book.poll_succeeded("probe")
    book.scheduled("probe", 60, 0.0)
    connectors = CollectorRegistry()
    connectors.register(HealthCollector(book))
    for registry in (metrics.REGISTRY, connectors):
        for family in registry.collect():
            for sample in family.samples:
                exposed.setdefault(sample.name, set()).update(sample.labels)
    # Labelled pipeline metrics not touched yet have no samples: take their names from the code.
    for metric in vars(metrics).values():
        if hasattr(metric, "_labelnames") and hasattr(metric, "_type"):
            for name in series_names(metric._name, metric._type):
                exposed.setdefault(name, set()).update(metric._labelnames)
    return exposed


def series_names(name: str, kind: str) -> list[str]:
    suffixes = {
        "counter": ["_total", "_created"],
        "histogram": ["_bucket", "_count", "_sum", "_created"],
        "gauge": [""],
    }
    return [f"{name}{suffix}" for suffix in suffixes[kind]]


def selectors(expr: str) -> Iterator[promql_parser.VectorSelector]:
    """The vector selectors of a PromQL expression (parsing it raises if it is invalid)."""
    found: list[promql_parser.VectorSelector] = []

    def visit(node: object) -> None:
        if isinstance(node, promql_parser.VectorSelector):
            found.append(node)

    promql_parser.walk(promql_parser.parse(expr), visit)
    return iter(found)


def dashboard_exprs() -> list[tuple[str, str]]:
    dashboard = json.loads((MONITORING / "grafana-dashboard.json").read_text())
    return [
        (panel["title"], target["expr"].replace("$__rate_interval", "5m"))
        for panel in dashboard["panels"]
        for target in panel["targets"]
    ]


def alert_rules() -> list[dict]:
    rules = yaml.safe_load((MONITORING / "prometheus-alerts.yml").read_text())
    return [rule for group in rules["groups"] for rule in group["rules"]]


def all_exprs() -> list[tuple[str, str]]:
    return dashboard_exprs() + [(rule["alert"], rule["expr"]) for rule in alert_rules()]


@pytest.mark.parametrize(("where", "expr"), all_exprs(), ids=[w for w, _ in all_exprs()])
def test_monitoring_queries_use_only_metrics_and_labels_the_code_exposes(
    where: str, expr: str
) -> None:
    exposed = known_series()
    used = list(selectors(expr))
    assert used, f"{where}: no metric in {expr}"
    for selector in used:
        assert selector.name in exposed, f"{where}: {selector.name} is not exposed by the code"
        labels = {matcher.name for matcher in selector.matchers.matchers}
        unknown = labels - exposed[selector.name] - SCRAPE_LABELS
        assert not unknown, f"{where}: {selector.name} has no label {sorted(unknown)}"


def test_the_dashboard_shows_what_operators_need() -> None:
    used = {s.name for _, expr in dashboard_exprs() for s in selectors(expr)}
    assert {
        "newsflow_pipeline_articles_out_total",
        "newsflow_pipeline_consumer_lag_records",
        "newsflow_pipeline_end_to_end_latency_seconds_bucket",
        "newsflow_pipeline_dead_letters_total",
        "newsflow_pipeline_errors_total",
        "newsflow_pipeline_bulk_request_seconds_bucket",
        "newsflow_pipeline_stage_seconds_per_article_bucket",
        "newsflow_connector_errors_total",
        "newsflow_connector_newest_item_age_seconds",
    } <= used


def test_every_alert_says_what_happened_and_what_to_do() -> None:
    rules = alert_rules()
    assert {
        "NewsflowPipelineLagGrowing",
        "NewsflowPipelineNoCommits",
        "NewsflowDeadLetterRate",
        "NewsflowElasticsearchBulkRetries",
        "NewsflowConnectorSourceFailing",
        "NewsflowConnectorSourceStale",
    } <= {rule["alert"] for rule in rules}
    for rule in rules:
        assert rule["labels"]["severity"] in {"critical", "warning", "info"}, rule["alert"]
        for key in ("summary", "description", "runbook"):
            assert rule["annotations"].get(key, "").strip(), f"{rule['alert']}: no {key}"


def test_the_scrape_config_loads_the_alert_rules_beside_it() -> None:
    config = yaml.safe_load((MONITORING / "prometheus.yml").read_text())
    assert all((MONITORING / path).is_file() for path in config["rule_files"])
    jobs = {job["job_name"] for job in config["scrape_configs"]}
    assert jobs == {"newsflow-pipeline", "newsflow-connectors"}
    assert jobs >= {
        matcher.value
        for _, expr in all_exprs()
        for selector in selectors(expr)
        for matcher in selector.matchers.matchers
        if matcher.name == "job"
    }


def test_metric_definitions_live_in_one_module() -> None:
    """Stages call pipeline.metrics; none builds Prometheus metrics of its own."""
    serving = {"metrics.py", "endpoint.py"}  # endpoint.py serves the registry, defines nothing
    offenders = [
        path.name
        for path in Path(metrics.__file__).parent.rglob("*.py")
        if path.name not in serving and "prometheus_client" in path.read_text()
    ]
    assert offenders == []
