"""End-to-end benchmark: newsflow against the spaCy NER ceiling and a naive baseline, one run.

On the same real articles (BBC News 2005 for English; Spanish NTREX documents and Portuguese
Fake.br articles added for the mixed-language set) it measures, on the running local stack:

- the ceiling: ``nlp.pipe`` with the model and components of ``settings.nlp``, 1 and 2 processes;
- the baseline: a plain kafka-python loop calling ``nlp()`` and ``es.index()`` per article;
- newsflow: ``newsflow pipeline run`` as a subprocess, English and mixed (Apertium), 1 worker,
  and English with 2 worker processes sharing the consumer group's partitions
  (``--worker-count 2``), articles/s from the first produce until every record is committed
  (committed only after Elasticsearch acknowledged it), with per-stage seconds per article from
  its /metrics (the mean over workers) and CPU and peak RSS of its process trees from /proc
  (summed over workers);
- freshness: produce -> searchable p50/p95/p99 at a steady half of the English end-to-end rate.

Each run gets its own topics and indices (``Settings.namespaced``), deleted afterwards. The
pipeline is warmed with one article before the clock starts, so start-up (Beam, models) is
reported apart, and stopped with SIGTERM (a drain): ``--stop-when-idle`` ends a partition that
is empty at start at once, so it can only time a prefilled topic, start-up included. Ratios are
the claims; absolute rates on a noisy 2-core machine are context.

    python bench/pipeline_throughput.py [--articles 400] [--freshness-seconds 60] [--json PATH]
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import itertools
import json
import math
import os
import signal
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from kafka.errors import KafkaError  # noqa: E402

from bench.quality import (  # noqa: E402
    CORPUS,
    NTREX,
    log,
    machine,
    markdown,
    read_fakebr_true,
    read_ntrex,
    read_spanish_fake_news,
    spread,
)
from newsflow.article import Article  # noqa: E402
from newsflow.kafka_topics import client_config  # noqa: E402
from newsflow.settings import NlpSettings, Settings, load_settings  # noqa: E402

if TYPE_CHECKING:
    from elasticsearch import Elasticsearch

    from connectors.publish import ArticlePublisher

BBC = Path("articles/bbc-news-2005/bbc")
FAKEBR_TRUE = Path("articles/fake-br-corpus/full_texts/true")
DEFAULT_ARTICLES = 400
DEFAULT_FRESHNESS_SECONDS = 60.0
#: Share of the measured English end-to-end rate offered in the freshness run (the issue's).
FRESHNESS_LOAD = 0.5
POLL_SECONDS = 0.2
#: Pace of a steady-load loop: how often it publishes what is due and searches what is pending.
TICK_SECONDS = 0.1
#: Pending ids searched per tick at most, the oldest first (a search returns 10,000 at most).
SEARCH_BATCH = 1000
#: How long the pipeline may take to start and index the warm-up article.
STARTUP_TIMEOUT_SECONDS = 300.0
#: How long one measured phase may go without progress before the run is declared stuck.
STALL_TIMEOUT_SECONDS = 120.0
DRAIN_TIMEOUT_SECONDS = 60.0
#: Worker processes of the scale-out run, against the ceiling with as many processes.
SCALE_OUT_WORKERS = 2


# --- articles ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Sample:
    title: str
    body: str
    language: str

    @property
    def text(self) -> str:
        """What NER sees: the pipeline's ``english_text`` shape (title, blank line, body)."""
        return f"{self.title}\n\n{self.body}".strip()


def bbc_file(path: Path) -> Sample:
    """A BBC News 2005 file: the headline on the first line, the body after it."""
    title, _, body = path.read_text(encoding="utf-8", errors="replace").partition("\n")
    return Sample(title.strip(), body.strip(), "en")


def bbc_files(corpus: Path) -> list[Path]:
    return sorted((corpus / BBC).glob("*/*.txt"))


def english_sample(files: Sequence[Path], n: int) -> list[Sample]:
    """N articles spread over all five BBC sections."""
    return [bbc_file(path) for path in spread(files, n)]


def mixed_sample(corpus: Path, english: Sequence[Sample], n: int) -> list[Sample]:
    """Half English, half to translate, interleaved so every part of the run sees every language.

    A quarter Portuguese (Fake.br's true articles, then its fake ones: 300 at most), the rest
    Spanish (NTREX ref.spa, then the Spanish Fake News Corpus). Up to 492 articles that is
    NTREX and Fake.br's true articles only, as in every run before larger ones.
    """
    fakebr = corpus / FAKEBR_TRUE
    portuguese_texts = top_up(
        read_fakebr_true(fakebr), lambda: read_fakebr_true(fakebr.with_name("fake")), n // 4
    )
    spanish_needed = n - n // 2 - len(portuguese_texts)
    spanish = [
        Sample(lines[0], "\n".join(lines[1:]), "es")
        for lines in read_ntrex_spanish(corpus, spanish_needed)
    ]
    if len(spanish) < spanish_needed:
        more = spread(read_spanish_fake_news(corpus), spanish_needed - len(spanish))
        spanish += [Sample("", text, "es") for text in more]
    portuguese = [Sample("", text, "pt") for text in portuguese_texts]
    return interleave([list(english[: n // 2]), spanish, portuguese])


def top_up(first: list[str], more: Callable[[], list[str]], n: int) -> list[str]:
    """``n`` texts spread over ``first``; from ``more`` only what ``first`` cannot give."""
    if n <= len(first):
        return spread(first, n)
    return first + spread(more(), n - len(first))


def read_ntrex_spanish(corpus: Path, limit: int) -> list[list[str]]:
    return read_ntrex(corpus, limit)["ref.spa"] if limit else []


def interleave(groups: Sequence[Sequence[Sample]]) -> list[Sample]:
    """Round-robin over the groups until each is used up."""
    result: list[Sample] = []
    for i in range(max((len(g) for g in groups), default=0)):
        result += [group[i] for group in groups if i < len(group)]
    return result


def to_article(sample: Sample, number: int, run: str) -> Article:
    """A connector-like article, ``fetched_at`` now: the pipeline's latency is produce -> ack."""
    return Article.create(
        source="bench",
        title=sample.title,
        body=sample.body,
        fetched_at=dt.datetime.now(dt.UTC),
        url=f"https://bench.invalid/{run}/{number}",
    )


# --- measurements: pure helpers ---------------------------------------------------------------


def quantile(values: Sequence[float], q: float) -> float:
    """Nearest-rank quantile (q in [0, 1]) of the values."""
    ordered = sorted(values)
    if not ordered:
        raise ValueError("no values")
    rank = max(1, min(len(ordered), math.ceil(q * len(ordered))))
    return ordered[rank - 1]


def histogram_quantile(buckets: Sequence[tuple[float, float]], q: float) -> float | None:
    """Prometheus-style quantile from cumulative (upper bound, count) buckets, interpolated."""
    total = buckets[-1][1] if buckets else 0
    if not total:
        return None
    target = q * total
    lower, below = 0.0, 0.0
    for upper, count in buckets:
        if count >= target:
            if upper == float("inf"):
                return lower
            return lower + (upper - lower) * (target - below) / max(count - below, 1e-9)
        lower, below = upper, count
    return lower


@dataclass
class Scrape:
    """What the pipeline's /metrics said at the end of a run."""

    stage_seconds: dict[str, float] = field(default_factory=dict)  # per article, mean
    latency_buckets: list[tuple[float, float]] = field(default_factory=list)
    dedupe_outcomes: dict[str, float] = field(default_factory=dict)  # new, clustered, duplicate
    #: Records committed and bundles that committed any: the child overlaps NER with the rest
    #: only inside a bundle, so short bundles cost it its overlap at both ends.
    records_committed: float = 0.0
    commits: float = 0.0


def parse_metrics(text: str) -> Scrape:
    """Per-stage mean seconds per article, the end-to-end latency buckets, dedupe outcomes.

    The sink times bulk calls, not articles: its cost is bulk seconds over documents indexed.
    """
    from prometheus_client.parser import text_string_to_metric_families

    sums: dict[str, float] = {}
    counts: dict[str, float] = {}
    scrape = Scrape()
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "newsflow_pipeline_stage_seconds_per_article_sum":
                sums[sample.labels["stage"]] = sample.value
            elif sample.name == "newsflow_pipeline_stage_seconds_per_article_count":
                counts[sample.labels["stage"]] = sample.value
            elif sample.name == "newsflow_pipeline_bulk_request_seconds_sum":
                sums["index"] = sums.get("index", 0.0) + sample.value
            elif sample.name == "newsflow_pipeline_articles_out_total" and (
                sample.labels["stage"] == "index"
            ):
                counts["index"] = sample.value
            elif sample.name == "newsflow_pipeline_end_to_end_latency_seconds_bucket":
                scrape.latency_buckets.append((float(sample.labels["le"]), sample.value))
            elif sample.name == "newsflow_pipeline_dedupe_outcomes_total":
                scrape.dedupe_outcomes[sample.labels["outcome"]] = sample.value
            elif sample.name == "newsflow_pipeline_records_committed_total":
                scrape.records_committed = sample.value
            elif sample.name == "newsflow_pipeline_commits_total":
                scrape.commits = sample.value
    scrape.stage_seconds = {s: sums[s] / counts[s] for s in sums if counts.get(s)}
    scrape.latency_buckets.sort()
    return scrape


_CLOCK_TICKS = os.sysconf("SC_CLK_TCK")
_PAGE_BYTES = os.sysconf("SC_PAGE_SIZE")


def process_tree(root: int) -> list[int]:
    """``root`` and every live descendant, from /proc."""
    children: dict[int, list[int]] = {}
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            with contextlib.suppress(OSError, IndexError):
                ppid = int((entry / "stat").read_text().rsplit(")", 1)[1].split()[1])
                children.setdefault(ppid, []).append(int(entry.name))
    tree, todo = [], [root]
    while todo:
        pid = todo.pop()
        tree.append(pid)
        todo += children.get(pid, [])
    return tree


def process_usage(pid: int) -> tuple[float, int]:
    """(CPU seconds, resident bytes) of one process; (0, 0) once it is gone."""
    with contextlib.suppress(OSError, IndexError, ValueError):
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
        cpu = sum(int(v) for v in fields[11:15]) / _CLOCK_TICKS  # utime stime cutime cstime
        return cpu, int(fields[21]) * _PAGE_BYTES
    return 0.0, 0


def tree_usage(root: int) -> tuple[float, int]:
    """(CPU seconds, resident bytes) of the process tree; vanished processes count as 0."""
    usages = [process_usage(pid) for pid in process_tree(root)]
    return sum(cpu for cpu, _ in usages), sum(rss for _, rss in usages)


def stack_cpu(settings: Settings) -> float | None:
    """CPU seconds the local stack's Kafka and Elasticsearch have used (None: not started here)."""
    from newsflow.stack import LocalStack

    pids = [service.running_pid() for service in LocalStack(settings.stack).services]
    if any(pid is None for pid in pids):
        return None
    return sum(tree_usage(pid)[0] for pid in pids if pid is not None)


class UsageSampler:
    """Samples a process tree in the background: CPU now, and the peak RSS seen."""

    def __init__(self, root: int) -> None:
        self.root = root
        self.peak_rss = 0
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._loop, daemon=True)
        self._thread.start()

    def cpu(self) -> float:
        return tree_usage(self.root)[0]

    def _loop(self) -> None:
        while not self._stop.wait(0.5):
            self.peak_rss = max(self.peak_rss, tree_usage(self.root)[1])

    def stop(self) -> None:
        self._stop.set()
        self._thread.join()


# --- runs -------------------------------------------------------------------------------------


@dataclass
class Result:
    name: str
    articles: int
    seconds: float
    cpu_seconds: float | None = None
    peak_rss_mib: float | None = None
    startup_seconds: float | None = None
    stack_cpu_seconds: float | None = None  # Kafka + Elasticsearch, during the run
    stage_seconds: dict[str, float] = field(default_factory=dict)
    latency: dict[str, float | None] = field(default_factory=dict)
    records_per_bundle: float | None = None  # mean over the bundles that committed records

    @property
    def rate(self) -> float:
        return self.articles / self.seconds


def ceiling(settings: Settings, samples: Sequence[Sample], processes: int) -> Result:
    """spaCy NER alone: ``nlp.pipe`` over the texts (cut like the stage cuts them)."""
    import spacy

    nlp = spacy.load(settings.nlp.spacy_model, enable=settings.nlp.spacy_components)
    nlp("warm up")
    texts = [s.text[: settings.nlp.max_ner_chars] for s in samples]
    started = time.perf_counter()
    for _ in nlp.pipe(texts, batch_size=settings.nlp.batch_size, n_process=processes):
        pass
    return Result(f"NER ceiling, n_process={processes}", len(texts), time.perf_counter() - started)


@contextlib.contextmanager
def namespace(settings: Settings, tag: str) -> Iterator[Settings]:
    """Fresh topics, consumer group and indices for one run; all deleted afterwards."""
    from kafka import KafkaAdminClient

    from newsflow.index import client, remove
    from newsflow.kafka_topics import ensure_topics

    name = f"bench-{tag}-{uuid.uuid4().hex[:8]}"
    isolated = settings.namespaced(name)
    ensure_topics(isolated.kafka)
    try:
        yield isolated
    finally:
        admin = KafkaAdminClient(**client_config(isolated.kafka, "newsflow-bench"))
        try:
            existing = set(admin.list_topics())
            topics = [isolated.kafka.raw_topic, isolated.kafka.dlq_topic]
            admin.delete_topics([t for t in topics if t in existing])
            # Best effort: a group the coordinator cannot list yet is left for Kafka to expire.
            with contextlib.suppress(KafkaError):
                groups = {g["group_id"] for g in admin.list_groups()}
                if isolated.kafka.consumer_group in groups:
                    admin.delete_groups([isolated.kafka.consumer_group])
        finally:
            admin.close()
        es = client(isolated.elasticsearch)
        try:  # the indices and their template, the dedupe store, the translation memory
            remove(es, name)
            for index in es.indices.get(index=f"{name}*", expand_wildcards="all"):
                es.indices.delete(index=index)
        finally:
            es.close()


def send(publisher: ArticlePublisher, articles: Sequence[Article]) -> None:
    """Publish and wait for every acknowledgement; a benchmark cannot lose articles quietly."""
    failed = [r for r in publisher.publish_batch(articles) if r.error is not None]
    if failed:
        raise RuntimeError(f"{len(failed)} articles not published: {failed[0].error}")


def publish(settings: Settings, articles: Sequence[Article]) -> None:
    """``send`` through a publisher of its own, for callers without one (threads)."""
    from connectors.publish import ArticlePublisher

    with ArticlePublisher(settings.kafka) as publisher:
        send(publisher, articles)


@contextlib.contextmanager
def committed_counter(settings: Settings) -> Iterator[Callable[[], int]]:
    """A function counting the records the group committed, over every raw-topic partition."""
    from kafka import KafkaAdminClient

    admin = KafkaAdminClient(**client_config(settings.kafka, "newsflow-bench"))

    def committed() -> int:
        group = settings.kafka.consumer_group
        try:
            offsets = admin.list_group_offsets(group).get(group, {})
        except KafkaError as exc:
            if not exc.retriable:  # a fresh broker is still loading its group coordinator
                raise
            return 0
        return sum(o.offset for tp, o in offsets.items() if tp.topic == settings.kafka.raw_topic)

    try:
        yield committed
    finally:
        admin.close()


def wait_for(what: str, done: Callable[[], int], target: int, alive: Callable[[], bool]) -> None:
    """Poll ``done()`` until it reaches ``target``, with progress; fail if stuck or dead."""
    last, last_change, last_log = -1, time.monotonic(), 0.0
    while (value := done()) < target:
        now = time.monotonic()
        if value != last:
            last, last_change = value, now
        if not alive():
            raise RuntimeError(f"{what}: the consumer exited at {value}/{target}")
        if now - last_change > STALL_TIMEOUT_SECONDS:
            raise RuntimeError(f"{what}: stuck at {value}/{target}; see the pipeline's log")
        if now - last_log >= 5:
            log(f"  {what}: {value}/{target}")
            last_log = now
        time.sleep(POLL_SECONDS)


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


class Pipeline:
    """``newsflow pipeline run`` as a subprocess on a namespace, with its /metrics and usage."""

    def __init__(self, settings: Settings, beam_args: Sequence[str], log_path: Path) -> None:
        self.port = free_port()
        env = {
            **os.environ,
            "NEWSFLOW_KAFKA__RAW_TOPIC": settings.kafka.raw_topic,
            "NEWSFLOW_KAFKA__DLQ_TOPIC": settings.kafka.dlq_topic,
            "NEWSFLOW_KAFKA__CONSUMER_GROUP": settings.kafka.consumer_group,
            "NEWSFLOW_ELASTICSEARCH__INDEX_ALIAS": settings.elasticsearch.index_alias,
            "NEWSFLOW_NLP__NER_IN_CHILD_PROCESS": str(settings.nlp.ner_in_child_process).lower(),
            "NEWSFLOW_NLP__EDGE_BATCH_SIZE": str(settings.nlp.edge_batch_size),
        }
        command = ["newsflow", "pipeline", "run", "--metrics-port", str(self.port), *beam_args]
        self.log_path = log_path
        self._log = log_path.open("w")
        self.process = subprocess.Popen(
            command, env=env, stdout=self._log, stderr=subprocess.STDOUT, start_new_session=True
        )
        self.usage = UsageSampler(self.process.pid)

    def alive(self) -> bool:
        return self.process.poll() is None

    def scrape(self) -> Scrape:
        url = f"http://127.0.0.1:{self.port}/metrics"
        with urllib.request.urlopen(url, timeout=10) as response:
            return parse_metrics(response.read().decode())

    def stop(self) -> None:
        """SIGTERM drains the bundles in flight; a tree that does not exit in time is killed."""
        self.usage.stop()
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(DRAIN_TIMEOUT_SECONDS)
            except subprocess.TimeoutExpired:
                log(f"  pipeline {self.process.pid} did not drain in time: killing its group")
                os.killpg(self.process.pid, signal.SIGKILL)
                self.process.wait()
        self._log.close()


@dataclass
class Running:
    """A warm pipeline on its own namespace, and what a measured phase needs to drive it."""

    settings: Settings
    pipeline: Pipeline
    committed: Callable[[], int]  # records the group committed, warm-up articles included
    publisher: ArticlePublisher
    startup_seconds: float
    #: Workers 1.. of a scale-out run (``pipeline`` is worker 0); each got a warm-up article.
    others: Sequence[Pipeline] = ()

    @property
    def workers(self) -> list[Pipeline]:
        return [self.pipeline, *self.others]

    def alive(self) -> bool:
        return all(worker.alive() for worker in self.workers)


def warm_up_articles(warm_up: Sample, name: str, partitions: int, workers: int) -> list[Article]:
    """One warm-up article per worker, its id chosen so that the producer's default
    partitioner (murmur2 of the key) puts it on a partition of that worker (p % workers)."""
    from kafka.partitioner.default import murmur2

    chosen: dict[int, Article] = {}
    number = 0
    while len(chosen) < workers:
        article = to_article(warm_up, -number, name)
        partition = (murmur2(article.id.encode()) & 0x7FFFFFFF) % partitions
        chosen.setdefault(partition % workers, article)
        number += 1
    return [chosen[worker] for worker in range(workers)]


@contextlib.contextmanager
def running_pipeline(
    base: Settings, name: str, warm_up: Sample, workers: int = 1
) -> Iterator[Running]:
    """A pipeline on a fresh namespace (``workers`` processes sharing its consumer group),
    warmed with one article per worker so start-up is timed apart; stopped with SIGTERM (a
    drain) and its namespace deleted afterwards."""
    from connectors.publish import ArticlePublisher

    with (
        namespace(base, name.split()[0].lower()) as settings,
        committed_counter(settings) as committed,
        ArticlePublisher(settings.kafka) as publisher,
    ):
        group = settings.kafka.consumer_group
        pipelines = [
            Pipeline(
                settings,
                ["--worker-index", str(index), "--worker-count", str(workers)],
                Path(f"/tmp/{group}-{index}.log"),
            )
            for index in range(workers)
        ]
        run = Running(settings, pipelines[0], committed, publisher, 0.0, pipelines[1:])
        try:
            started = time.perf_counter()
            partitions = settings.kafka.topic_partitions
            send(publisher, warm_up_articles(warm_up, name, partitions, workers))
            wait_for(f"{name} start-up", committed, workers, run.alive)
            run.startup_seconds = time.perf_counter() - started
            yield run
        except Exception:
            log(f"  pipeline logs: {', '.join(str(p.log_path) for p in pipelines)}")
            raise
        finally:
            for pipeline in pipelines:
                pipeline.stop()


def end_to_end(
    base: Settings,
    name: str,
    samples: Sequence[Sample],
    warm_up: Sample,
    workers: int = 1,
) -> Result:
    """Warm the pipeline's workers, then time N from first produce to last commit."""
    with running_pipeline(base, name, warm_up, workers) as run:
        cpu_before = sum(worker.usage.cpu() for worker in run.workers)
        stack_before = stack_cpu(base)
        started = time.perf_counter()
        send(run.publisher, [to_article(s, i, name) for i, s in enumerate(samples, 1)])
        wait_for(name, run.committed, len(samples) + workers, run.alive)
        seconds = time.perf_counter() - started
        cpu = sum(worker.usage.cpu() for worker in run.workers) - cpu_before
        stack_after = stack_cpu(base)
        scrapes = [worker.scrape() for worker in run.workers]
    stages = dict.fromkeys(stage for scrape in scrapes for stage in scrape.stage_seconds)
    commits = sum(scrape.commits for scrape in scrapes)
    return Result(
        name,
        len(samples),
        seconds,
        cpu_seconds=cpu,
        peak_rss_mib=sum(worker.usage.peak_rss for worker in run.workers) / 2**20,
        startup_seconds=run.startup_seconds,
        stack_cpu_seconds=None
        if stack_before is None or stack_after is None
        else stack_after - stack_before,
        stage_seconds={
            s: sum(x.stage_seconds.get(s, 0.0) for x in scrapes) / len(scrapes) for s in stages
        },
        records_per_bundle=sum(x.records_committed for x in scrapes) / commits if commits else None,
    )


def offered(elapsed: float, rate: float) -> int:
    """Articles a steady ``rate`` has offered ``elapsed`` seconds in, the first one at 0."""
    return int(elapsed * rate) + 1


class SteadyLoad:
    """Offers articles at a steady rate and times each one from produce until a search finds it.

    ``article(n)`` builds the n-th article (from 0) when it is due, so its ``fetched_at`` is its
    send time; ``limit`` caps how many are offered. Call ``offer`` and ``search`` every tick.
    """

    def __init__(
        self,
        run: Running,
        es: Elasticsearch,
        rate: float,
        article: Callable[[int], Article],
        limit: int | None = None,
    ) -> None:
        self._run = run
        self._es = es
        self._article = article
        self.rate = rate
        self.limit = limit
        self.sent = 0
        self.pending: dict[str, float] = {}  # id -> when it was sent
        self.latencies: list[float] = []  # seconds to searchable, in the order found
        self.started = time.perf_counter()

    def elapsed(self) -> float:
        return time.perf_counter() - self.started

    def offer(self) -> None:
        """Publish every article due by now."""
        due = offered(self.elapsed(), self.rate)
        if self.limit is not None:
            due = min(due, self.limit)
        articles = [self._article(n) for n in range(self.sent, due)]
        if articles:
            now = time.perf_counter()
            self.pending.update((a.id, now) for a in articles)
            send(self._run.publisher, articles)
            self.sent = due

    def search(self) -> list[float]:
        """Search for the oldest pending ids; the latencies of those found now."""
        ids = list(itertools.islice(self.pending, SEARCH_BATCH))
        if not ids:
            return []
        hits = self._es.search(
            index=self._run.settings.elasticsearch.index_alias,
            query={"ids": {"values": ids}},
            source=False,
            size=len(ids),
        )["hits"]["hits"]
        found = time.perf_counter()
        latencies = [found - self.pending.pop(hit["_id"]) for hit in hits]
        self.latencies += latencies
        return latencies


def baseline(base: Settings, samples: Sequence[Sample], warm_up: Sample) -> Result:
    """The naive loop: poll, then per record ``nlp()`` and ``es.index()``; commit per poll."""
    import spacy
    from kafka import KafkaConsumer

    from newsflow.index import client

    nlp = spacy.load(base.nlp.spacy_model, enable=base.nlp.spacy_components)
    with namespace(base, "baseline") as settings:
        es = client(settings.elasticsearch)
        consumer = KafkaConsumer(
            settings.kafka.raw_topic,
            **client_config(settings.kafka, "newsflow-bench-baseline"),
            group_id=settings.kafka.consumer_group,
            auto_offset_reset="earliest",
            enable_auto_commit=False,
        )
        handled = 0

        def consume(target: int) -> None:
            nonlocal handled
            while handled < target:
                for records in consumer.poll(timeout_ms=500).values():
                    for record in records:
                        article = json.loads(record.value)
                        text = f"{article['title']}\n\n{article['body']}".strip()
                        doc = nlp(text[: settings.nlp.max_ner_chars])
                        entities = [{"label": e.label_, "text": e.text} for e in doc.ents]
                        es.index(
                            index=settings.elasticsearch.index_alias,
                            id=article["id"],
                            document={**article, "entities": entities},
                        )
                        handled += 1
                consumer.commit()

        try:
            publish(settings, [to_article(warm_up, 0, "baseline")])
            consume(1)
            started = time.perf_counter()
            producer = threading.Thread(
                target=publish,
                args=(settings, [to_article(s, i, "baseline") for i, s in enumerate(samples, 1)]),
            )
            producer.start()
            consume(len(samples) + 1)
            producer.join()
            seconds = time.perf_counter() - started
        finally:
            consumer.close()
            es.close()
    return Result("naive baseline (kafka-python + nlp() + es.index())", len(samples), seconds)


def freshness(
    base: Settings,
    samples: Sequence[Sample],
    warm_up: Sample,
    rate: float,
    duration: float,
    label: str = "",
) -> Result:
    """Offer ``rate`` articles/s for ``duration`` s; time each until a search finds it."""
    from newsflow.index import client

    count = min(len(samples), max(1, round(rate * duration)))
    name = f"freshness at {rate:.1f}/s{f', {label}' if label else ''}"
    with (
        running_pipeline(base, name, warm_up) as run,
        contextlib.closing(client(run.settings.elasticsearch)) as es,
    ):
        load = SteadyLoad(
            run, es, rate, lambda n: to_article(samples[n], n + 1, "freshness"), limit=count
        )
        next_log = load.started
        while len(load.latencies) < count and load.elapsed() < duration + 60:
            load.offer()
            load.search()
            if time.perf_counter() >= next_log:
                log(f"  {name}: {load.sent} sent, {len(load.latencies)} searchable")
                next_log += 5
            time.sleep(TICK_SECONDS)
        scrape = run.pipeline.scrape()
    latencies = load.latencies
    latency: dict[str, float | None] = {
        f"p{round(q * 100)}": quantile(latencies, q) if latencies else None
        for q in (0.5, 0.95, 0.99)
    }
    latency |= {
        f"metrics p{round(q * 100)}": histogram_quantile(scrape.latency_buckets, q)
        for q in (0.5, 0.95, 0.99)
    }
    latency["not searchable"] = count - len(latencies)
    return Result(
        name,
        count,
        load.elapsed(),
        peak_rss_mib=run.pipeline.usage.peak_rss / 2**20,
        latency=latency,
    )


# --- report -----------------------------------------------------------------------------------


def fmt(value: float | None, digits: int = 1) -> str:
    return "—" if value is None else f"{value:,.{digits}f}"


def table(results: Sequence[Result], ceiling_rate: float, baseline_rate: float | None) -> str:
    rows = [
        [
            r.name,
            r.articles,
            fmt(r.seconds),
            fmt(r.rate),
            fmt(r.rate / ceiling_rate, 2),
            fmt(r.rate / baseline_rate, 2) if baseline_rate else "—",
            fmt(r.cpu_seconds / r.articles * 1000, 0) if r.cpu_seconds is not None else "—",
            fmt(r.cpu_seconds / r.seconds, 2) if r.cpu_seconds is not None else "—",
            fmt(r.stack_cpu_seconds / r.articles * 1000, 0)
            if r.stack_cpu_seconds is not None
            else "—",
            fmt(r.records_per_bundle, 0),
            fmt(r.peak_rss_mib, 0),
            fmt(r.startup_seconds),
        ]
        for r in results
        if not r.latency
    ]
    headers = [
        "run",
        "articles",
        "seconds",
        "articles/s",
        "÷ ceiling (1 proc)",
        "÷ baseline",
        "CPU ms/article",
        "cores busy",
        "Kafka + ES CPU ms/article",
        "records/bundle",
        "peak RSS MiB",
        "start-up s",
    ]
    return markdown(headers, rows)


def stage_table(results: Sequence[Result]) -> str:
    runs = [r for r in results if r.stage_seconds]
    stages = list(dict.fromkeys(s for r in runs for s in r.stage_seconds))
    rows = [
        [stage, *(fmt(r.stage_seconds.get(stage, 0) * 1000, 2) for r in runs)] for stage in stages
    ]
    rows.append(["sum", *(fmt(sum(r.stage_seconds.values()) * 1000, 1) for r in runs)])
    rows.append(
        ["measured wall ms/article", *(fmt(r.seconds / r.articles * 1000, 1) for r in runs)]
    )
    return markdown(["stage (ms/article)", *(r.name for r in runs)], rows)


def freshness_table(results: Sequence[Result]) -> str:
    keys = list(results[0].latency)
    rows = [[r.name, *(fmt(r.latency[k], 2) for k in keys)] for r in results]
    return markdown(["run", *keys], rows)


#: Same-run comparisons (``--variant``): a label, and what the variant changes in nlp settings.
VARIANTS: dict[str, tuple[str, Callable[[NlpSettings], dict[str, object]]]] = {
    "inline-ner": ("NER inline", lambda nlp: {"ner_in_child_process": False}),
    "full-batches": ("full batches", lambda nlp: {"edge_batch_size": nlp.batch_size}),
}


def variant_settings(settings: Settings, variant: str) -> Settings:
    nlp = settings.nlp
    update = VARIANTS[variant][1](nlp)
    return settings.model_copy(update={"nlp": nlp.model_copy(update=update)})


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--articles",
        type=int,
        default=DEFAULT_ARTICLES,
        help=f"articles per measured run (default {DEFAULT_ARTICLES}; BBC has 2,225)",
    )
    parser.add_argument(
        "--freshness-seconds",
        type=float,
        default=DEFAULT_FRESHNESS_SECONDS,
        help=f"length of the steady-load run (default {DEFAULT_FRESHNESS_SECONDS:g}; 0: skip)",
    )
    parser.add_argument(
        "--freshness-load",
        type=float,
        default=FRESHNESS_LOAD,
        help=f"its rate, as a share of the measured English rate (default {FRESHNESS_LOAD:g})",
    )
    parser.add_argument("--skip-mixed", action="store_true", help="no mixed-language run")
    parser.add_argument("--skip-two-workers", action="store_true", help="no 2-worker run")
    parser.add_argument(
        "--variant",
        action="append",
        choices=sorted(VARIANTS),
        default=[],
        help="also run English, mixed and freshness, 1 worker, with: inline-ner = NER in the "
        "worker's process (nlp.ner_in_child_process = false); full-batches = no small first and "
        "last batch per bundle (nlp.edge_batch_size = nlp.batch_size). Repeatable",
    )
    parser.add_argument("--json", type=Path, metavar="PATH", help="also write results here")
    parser.add_argument("--corpus", type=Path, default=CORPUS, help=f"default {CORPUS}")
    args = parser.parse_args(argv)
    files = bbc_files(args.corpus)
    if not files or not (args.corpus / NTREX).is_dir():
        parser.error(f"no BBC News 2005 or NTREX under {args.corpus}; this needs the shared corpus")
    if not 1 <= args.articles < len(files):
        parser.error(f"--articles must be between 1 and {len(files) - 1}")

    settings = load_settings()
    english = english_sample(files, args.articles)
    chosen = set(spread(files, args.articles))
    spare = [bbc_file(path) for path in files if path not in chosen]  # warm-up and freshness
    warm_up = spare.pop()
    results: list[Result] = []
    log(f"NER ceiling on {len(english)} English articles, 1 then 2 processes")
    ceilings = [ceiling(settings, english, 1), ceiling(settings, english, 2)]
    results += ceilings
    mixed = [] if args.skip_mixed else mixed_sample(args.corpus, english, args.articles)
    if mixed:
        log(f"NER ceiling on the {len(mixed)} mixed-language texts as produced (untranslated)")
        results.append(ceiling(settings, mixed, 1))
        results[-1].name += " (mixed texts)"
    log("naive baseline")
    results.append(baseline(settings, english, warm_up))
    log("newsflow end to end, English, 1 worker")
    results.append(end_to_end(settings, "newsflow English, 1 worker", english, warm_up))
    english_rate = results[-1].rate
    variants = [(VARIANTS[name][0], variant_settings(settings, name)) for name in args.variant]
    for label, changed in variants:
        log(f"newsflow end to end, English, 1 worker, {label}")
        results.append(
            end_to_end(changed, f"newsflow English, 1 worker, {label}", english, warm_up)
        )
    if mixed:
        log("newsflow end to end, mixed languages, 1 worker")
        results.append(end_to_end(settings, "newsflow mixed, 1 worker", mixed, warm_up))
        for label, changed in variants:
            log(f"newsflow end to end, mixed languages, 1 worker, {label}")
            results.append(
                end_to_end(changed, f"newsflow mixed, 1 worker, {label}", mixed, warm_up)
            )
    notes = []
    if not args.skip_two_workers:
        name = f"newsflow English, {SCALE_OUT_WORKERS} workers"
        log(f"{name} (processes sharing the consumer group, --worker-count)")
        try:
            results.append(end_to_end(settings, name, english, warm_up, SCALE_OUT_WORKERS))
        except RuntimeError as exc:  # a finding to report, not a reason to lose the run
            log(f"  {SCALE_OUT_WORKERS} workers failed: {exc}")
            notes.append(f"{name}: {exc}")
    if args.freshness_seconds > 0:
        rate = args.freshness_load * english_rate
        log(f"freshness: {rate:.1f} articles/s for {args.freshness_seconds:g} s")
        results.append(freshness(settings, spare, warm_up, rate, args.freshness_seconds))
        for label, changed in variants:
            log(f"freshness, {label}")
            results.append(freshness(changed, spare, warm_up, rate, args.freshness_seconds, label))

    baseline_rate = next(r.rate for r in results if r.name.startswith("naive"))
    out = [
        table(results, ceilings[0].rate, baseline_rate),
        f"Ceiling speed-up 1 -> 2 processes: {ceilings[1].rate / ceilings[0].rate:.2f}x",
    ]
    two = next((r for r in results if "2 workers" in r.name), None)
    if two:
        out.append(
            f"newsflow speed-up 1 -> 2 workers: {two.rate / english_rate:.2f}x (the ceiling's: "
            f"{ceilings[1].rate / ceilings[0].rate:.2f}x); "
            f"2 workers ÷ 2-process ceiling: {two.rate / ceilings[1].rate:.2f}"
        )
    out += notes
    out.append(stage_table(results))
    fresh = [r for r in results if r.latency]
    if fresh:
        out.append(freshness_table(fresh))
    print("\n\n".join(out))
    if args.json:
        payload = {
            "machine": machine(),
            "results": [asdict(r) | {"articles_per_second": r.rate} for r in results],
            "notes": notes,
        }
        args.json.write_text(json.dumps(payload, indent=2) + "\n")
        log(f"wrote {args.json}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
