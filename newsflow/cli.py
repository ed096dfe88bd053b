"""``newsflow``: one command line for ops (stack, pipeline) and analysts (search).

Each subcommand parses its arguments, loads the validated settings and calls one function of the
package; heavy imports (Beam, spaCy) happen inside the subcommand that needs them so that
``newsflow --help`` and ``newsflow stack status`` stay fast.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from newsflow.errors import NewsflowError
from newsflow.logs import configure as configure_logging
from newsflow.settings import Settings, SettingsError, load_settings

EXIT_OK, EXIT_FAILURE, EXIT_USAGE = 0, 1, 2


def _print_rows(rows: Sequence[dict[str, Any]], as_json: bool, when_empty: str = "") -> None:
    """Rows as JSON for scripts, else as an aligned table (or ``when_empty`` if there are none)."""
    if as_json:
        print(json.dumps(rows, indent=2, ensure_ascii=False))
    elif rows:
        _print_table(rows)
    elif when_empty:
        print(when_empty)


def _print_table(rows: Sequence[dict[str, object]]) -> None:
    if not rows:
        return
    columns = list(rows[0])
    widths = {c: max(len(c), *(len(str(r[c])) for r in rows)) for c in columns}
    print("  ".join(c.upper().ljust(widths[c]) for c in columns))
    for row in rows:
        print("  ".join(str(row[c]).ljust(widths[c]) for c in columns))


# -- stack --------------------------------------------------------------------------------------


def _stack(args: argparse.Namespace, settings: Settings) -> int:
    from newsflow.stack import LocalStack

    stack = LocalStack(settings.stack)
    if args.action == "up":
        stack.up()
        _print_table(stack.status())
    elif args.action == "down":
        stack.down()
    else:
        rows = stack.status()
        _print_rows(rows, args.json)
        return EXIT_OK if all(r["health"] == "healthy" for r in rows) else EXIT_FAILURE
    return EXIT_OK


# -- doctor -------------------------------------------------------------------------------------


def _doctor(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from newsflow.doctor import findings, summary

    results = []
    for finding in findings(settings, require_services=args.services):
        results.append(finding)
        if not args.json:
            print(finding.line(), flush=True)
    if args.json:
        _print_rows([asdict(f) for f in results], as_json=True)
    else:
        print(summary(results))
    return EXIT_FAILURE if any(f.status == "fail" for f in results) else EXIT_OK


# -- ingest -------------------------------------------------------------------------------------


def _ingest_files(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.ingest import ingest_files

    report = ingest_files([Path(p) for p in args.paths], settings.kafka)
    return EXIT_OK if report.ok else EXIT_FAILURE


# -- connectors ---------------------------------------------------------------------------------


def _connectors_run(args: argparse.Namespace, settings: Settings) -> int:
    import threading

    from connectors.runner import run_configured, stop_on_signals
    from connectors.sources import load_sources

    sources_file = load_sources(Path(args.config))
    metrics = None if args.metrics_port is None else (args.metrics_host, args.metrics_port)
    stop = threading.Event()
    with stop_on_signals(stop):
        report = run_configured(sources_file, settings, once=args.once, metrics=metrics, stop=stop)
    return EXIT_FAILURE if args.once and report.failed_polls else EXIT_OK


def _connectors_check(args: argparse.Namespace, settings: Settings) -> int:
    from connectors.runner import check_configured
    from connectors.sources import load_sources

    sources_file = load_sources(Path(args.config))
    limit = {} if args.items is None else {"max_items": args.items}
    results = check_configured(sources_file, **limit)
    rows: list[dict[str, object]] = [
        {
            "source": r.name,
            "type": r.type,
            "status": "ok" if r.ok else "FAILED",
            "items": r.items,
            "rejected": r.rejected,
            "seconds": f"{r.seconds:.1f}",
            "detail": (r.error or r.sample)[:80],
        }
        for r in results
    ]
    _print_rows(rows, args.json)
    return EXIT_OK if all(r.ok for r in results) else EXIT_FAILURE


def _connectors_status(args: argparse.Namespace, settings: Settings) -> int:
    import time

    from connectors.health import status_table
    from connectors.sources import load_sources
    from connectors.state import STATE_FILE, StateStore

    configured = None
    path = settings.stack.state_dir / STATE_FILE
    if args.config:
        sources_file = load_sources(Path(args.config))
        configured = {c.name: c.type for c in sources_file.sources}
        path = sources_file.state_path(settings.stack.state_dir)
    with StateStore(path, create=False) as store:
        rows = status_table(store.read_health(), configured, time.time())
    _print_rows(rows, args.json, f"no source has run yet (state: {path})")
    return EXIT_OK


# -- pipeline -----------------------------------------------------------------------------------


def _pipeline_reset_offsets(args: argparse.Namespace, settings: Settings) -> int:
    from dataclasses import asdict

    from newsflow import offsets
    from newsflow.search import parse_when

    try:
        target: offsets.Target = (
            "earliest" if args.earliest else "latest" if args.latest else parse_when(args.to_time)
        )
    except ValueError as exc:
        print(f"newsflow: {exc}", file=sys.stderr)
        return EXIT_USAGE
    moves = (offsets.plan if args.dry_run else offsets.reset)(settings.kafka, target)
    _print_rows([asdict(m) for m in moves], args.json)
    if not args.json:
        verb = "would move" if args.dry_run else "moved"
        print(
            f"{settings.kafka.consumer_group} {verb} to {offsets.describe(target)} on "
            f"{settings.kafka.raw_topic}",
            file=sys.stderr,
        )
    return EXIT_OK


def _given(args: argparse.Namespace, flags: Sequence[str]) -> dict[str, object]:
    """The flags given on the command line, by name (named like the settings they override)."""
    return {flag: getattr(args, flag) for flag in flags if getattr(args, flag) is not None}


def _pipeline_run(args: argparse.Namespace, settings: Settings) -> int:
    from newsflow.logs import use_format
    from pipeline.run import run

    flags = ("metrics_port", "metrics_host", "log_format")
    try:  # checked like the settings they override
        observability = settings.observability.model_validate(
            {**settings.observability.model_dump(), **_given(args, flags)}
        )
        kafka = settings.kafka.model_validate(
            {**settings.kafka.model_dump(), **_given(args, ("worker_index", "worker_count"))}
        )
    except ValueError as exc:  # pydantic's ValidationError
        raise SettingsError(f"pipeline run: {exc}") from None
    settings = settings.model_copy(update={"observability": observability, "kafka": kafka})
    use_format(observability.log_format)
    beam_args = list(args.beam_args)
    if args.runner:
        beam_args.append(f"--runner={args.runner}")
    run(settings, beam_args=beam_args, stop_when_idle=args.stop_when_idle)
    return EXIT_OK


# -- search -------------------------------------------------------------------------------------


def _search(args: argparse.Namespace, settings: Settings) -> int:
    from newsflow.search import SearchRequest, format_results, parse_when, search

    try:
        request = SearchRequest(
            text=args.query,
            entities=tuple(args.entity),
            sources=tuple(args.source),
            languages=tuple(args.lang),
            since=parse_when(args.since) if args.since else None,
            until=parse_when(args.until, end_of_day=True) if args.until else None,
            cluster=args.cluster,
            collapse=args.collapse,
            sort=args.sort,
            size=args.size,
        )
    except ValueError as exc:
        print(f"newsflow: {exc}", file=sys.stderr)
        return EXIT_USAGE
    if request.text is None and not request.has_filters:
        print(
            "newsflow: give QUERY or at least one filter (--entity, --source, --lang, --since, "
            "--until, --cluster)",
            file=sys.stderr,
        )
        return EXIT_USAGE
    result = search(settings.elasticsearch, request)
    if args.json:  # the hits, as before: scripts (and tests) read a list
        print(json.dumps(result["hits"], indent=2, ensure_ascii=False))
    else:
        print(format_results(result))
    return EXIT_OK


# -- serve --------------------------------------------------------------------------------------


def _serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from newsflow.api import create_app

    url = f"http://{args.host}:{args.port}"
    print(f"newsflow API on {url} (OpenAPI docs: {url}/docs); Ctrl-C stops it", flush=True)
    uvicorn.run(create_app(settings), host=args.host, port=args.port, log_level="info")
    return EXIT_OK


# -- dead letters -------------------------------------------------------------------------------


def _dlq(args: argparse.Namespace, settings: Settings) -> int:
    from newsflow import dlq

    if args.action == "replay":
        report = dlq.replay(settings.kafka, stage=args.stage, dry_run=args.dry_run)
        print(
            f"{report.resent} resent to {settings.kafka.raw_topic}, {report.skipped} skipped"
            + (" (dry run)" if args.dry_run else "")
        )
        return EXIT_OK
    if args.action == "show" and not args.ref:
        print("newsflow: dlq show needs REF (partition:offset or article id)", file=sys.stderr)
        return EXIT_USAGE
    found = [r for r in dlq.records(settings.kafka) if args.stage in (None, r.message.get("stage"))]
    if args.action == "show":
        matches = [r for r in found if args.ref in (r.reference, r.message.get("article_id"))]
        if not matches:
            print(
                f"newsflow: no dead letter {args.ref!r} in {settings.kafka.dlq_topic}",
                file=sys.stderr,
            )
            return EXIT_FAILURE
        print(json.dumps([m.message for m in matches], indent=2, ensure_ascii=False))
        return EXIT_OK
    rows = [dlq.summary(r) for r in found][-args.limit :]
    _print_rows(rows, args.json, f"no dead letters in {settings.kafka.dlq_topic}")
    return EXIT_OK


# -- index --------------------------------------------------------------------------------------


def _index(args: argparse.Namespace, settings: Settings) -> int:
    from newsflow import index

    es = index.client(settings.elasticsearch)
    try:
        if args.action == "setup":
            index.ensure_index(es, settings.elasticsearch)
        elif args.action == "migrate":
            index.migrate(
                es, settings.elasticsearch, progress=lambda line: print(line, file=sys.stderr)
            )
        state = index.status(es, settings.elasticsearch)
    finally:
        es.close()
    print(f"read alias   {state.alias}: {', '.join(state.read_indices) or '-'}")
    writers = [f"{alias} -> {name}" for alias, name in sorted(state.write_aliases.items())]
    print(f"write aliases {', '.join(writers) or '-'}")
    print(f"documents    {state.documents}")
    print(
        f"this version writes {index.template_name(state.alias)}-* (mapping version "
        f"{state.version}): {'up to date' if state.up_to_date else 'OUTDATED'}"
    )
    if not state.up_to_date and state.read_indices:
        print("run `newsflow index migrate` to move to it without downtime", file=sys.stderr)
    return EXIT_OK if state.up_to_date else EXIT_FAILURE


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="newsflow",
        description="Streaming news ingestion: connectors -> Kafka -> Beam enrichment -> "
        "Elasticsearch. Settings come from newsflow.toml (or $NEWSFLOW_CONFIG) and NEWSFLOW_* "
        "environment variables.",
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    stack = commands.add_parser(
        "stack",
        help="start, stop or inspect the local Kafka + Elasticsearch stack",
        description="Run a real Kafka broker (KRaft) and Elasticsearch node from Maven Central "
        "jars with the machine's JDK; data and logs live under the state directory "
        "(NEWSFLOW_STACK__STATE_DIR, default .newsflow).",
    )
    stack.add_argument(
        "action",
        choices=["up", "down", "status"],
        help="up: start and wait until healthy (idempotent); down: stop what `up` "
        "started; status: versions, ports, pids and health",
    )
    stack.add_argument("--json", action="store_true", help="status as JSON")
    stack.set_defaults(handler=_stack)

    doctor = commands.add_parser(
        "doctor",
        help="check that this machine can run newsflow, with a fix for each problem",
        description="One line per check: Python, the installed packages against the lock, the "
        "spaCy models and lingua, the Apertium pairs of the detected languages, Java and Maven "
        "for the local stack, its ports (free or its own), Kafka and Elasticsearch. Exit 1 if "
        "anything required fails. Kafka and Elasticsearch not running is no failure unless "
        "--services is given (run it before `newsflow stack up` and after).",
    )
    doctor.add_argument(
        "--services",
        action="store_true",
        help="also require Kafka and Elasticsearch to be healthy (CI, after `newsflow stack up`)",
    )
    doctor.add_argument("--json", action="store_true", help="the findings as JSON")
    doctor.set_defaults(handler=_doctor)

    ingest = commands.add_parser("ingest", help="publish articles from a source to Kafka")
    sources = ingest.add_subparsers(dest="source", required=True, metavar="SOURCE")
    files = sources.add_parser(
        "files",
        help="JSONL, .json and .txt articles (files or directories)",
        description="Read articles from files and publish them to the raw topic. .txt: first "
        "line is the title, a trailing 'Source: X' line names the outlet. .jsonl/.json: objects "
        "with url, source, title, body, published_at, language. Bad records are reported and "
        "skipped; the exit status is 1 if any record was rejected.",
    )
    files.add_argument("paths", nargs="+", metavar="PATH", help="files or directories")
    files.set_defaults(handler=_ingest_files)

    connectors = commands.add_parser(
        "connectors",
        help="run, check or inspect the sources of a sources file",
        description="Poll the feeds, sitemaps, pages, APIs and archives listed in a sources file "
        "(YAML or TOML; see docs/CONNECTORS.md) and publish new articles to the raw topic.",
    )
    connector_actions = connectors.add_subparsers(dest="action", required=True, metavar="ACTION")
    config_help = "the sources file (.yaml, .yml or .toml)"
    connectors_run = connector_actions.add_parser(
        "run",
        help="poll every source continuously (or once) and publish what is new",
        description="Poll all enabled sources with bounded concurrency and adaptive intervals; "
        "items are marked seen only after Kafka acknowledged them, so a restart re-sends "
        "nothing. SIGTERM/SIGINT: polls in flight stop between items, exit 0. Progress lines "
        "go to stderr.",
    )
    connectors_run.add_argument("--config", required=True, metavar="FILE", help=config_help)
    connectors_run.add_argument(
        "--once",
        action="store_true",
        help="poll each source once, then exit (cron, backfills, tests); exit 1 if a poll failed",
    )
    connectors_run.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve Prometheus metrics (newsflow_connector_*) at http://HOST:PORT/metrics",
    )
    connectors_run.add_argument(
        "--metrics-host",
        default="127.0.0.1",
        metavar="HOST",
        help="address for --metrics-port (default 127.0.0.1; 0.0.0.0 for remote scrapers)",
    )
    connectors_run.set_defaults(handler=_connectors_run)
    connectors_check = connector_actions.add_parser(
        "check",
        help="validate the sources file and probe each source once",
        description="Validate the file, then fetch and parse each enabled source once without "
        "publishing or marking anything seen, and print a health table; exit 1 if any source "
        "failed.",
    )
    connectors_check.add_argument("--config", required=True, metavar="FILE", help=config_help)
    connectors_check.add_argument(
        "--items",
        type=int,
        metavar="N",
        help="items to read per source before stopping (default 5)",
    )
    connectors_check.add_argument("--json", action="store_true", help="the table as JSON")
    connectors_check.set_defaults(handler=_connectors_check)
    connectors_status = connector_actions.add_parser(
        "status",
        help="per-source health from the state database",
        description="Print fetches, new items, errors by kind, last success, newest item age, "
        "current interval and next poll of each source, as last written by `connectors run` "
        "(every heartbeat). Without --config: the default state "
        "(<stack.state_dir>/connectors/state.sqlite), every source in it.",
    )
    connectors_status.add_argument(
        "--config", metavar="FILE", help=f"{config_help}: its state file and only its sources"
    )
    connectors_status.add_argument("--json", action="store_true", help="the table as JSON")
    connectors_status.set_defaults(handler=_connectors_status)

    pipeline = commands.add_parser("pipeline", help="run the Beam enrichment pipeline")
    pipeline_actions = pipeline.add_subparsers(dest="action", required=True, metavar="ACTION")
    run = pipeline_actions.add_parser(
        "run",
        help="consume the raw topic, enrich and index into Elasticsearch",
        description="Run the streaming Beam pipeline (DirectRunner by default). Unknown options "
        "are passed to Beam, e.g. --flink_master=HOST:8081. To scale out, run N processes "
        "with --worker-count N and --worker-index 0 to N-1.",
    )
    run.add_argument(
        "--runner",
        help="Beam runner: DirectRunner (default, in this process); FlinkRunner (Flink embedded "
        "in a job server that Maven builds from deploy/flink/pom.xml on first use, SDK harness "
        "in this process; --flink_master=HOST:8081 for a cluster, --parallelism=N, "
        "--checkpointing_interval=MS); PortableRunner with --job_endpoint=HOST:PORT; "
        "DataflowRunner with --project, --region, --temp_location (docs/FLINK.md)",
    )
    run.add_argument(
        "--stop-when-idle",
        type=float,
        metavar="SECONDS",
        default=None,
        help="exit once every partition is caught up and no record arrived for "
        "SECONDS (for demos, backfills and tests); default: run forever",
    )
    run.add_argument(
        "--metrics-port",
        type=int,
        metavar="PORT",
        help="serve /metrics (Prometheus, newsflow_pipeline_*), /healthz and /readyz on PORT "
        "(0: any free port, logged); default: observability.metrics_port, unset = off",
    )
    run.add_argument(
        "--metrics-host",
        metavar="HOST",
        help="address for --metrics-port (default observability.metrics_host, 127.0.0.1; "
        "0.0.0.0 for remote scrapers and probes)",
    )
    run.add_argument(
        "--log-format",
        choices=["text", "json"],
        help="text for people (default: observability.log_format) or json: one object per "
        "line with time, level, logger, message, stage and article id when known",
    )
    run.add_argument(
        "--worker-index",
        type=int,
        metavar="I",
        help="scale-out: this process reads the partitions p with p %% N == I "
        "(default kafka.worker_index, 0; e.g. a StatefulSet pod's ordinal)",
    )
    run.add_argument(
        "--worker-count",
        type=int,
        metavar="N",
        help="scale-out: N processes, numbered 0 to N-1, share the consumer group's partitions "
        "(default kafka.worker_count, 1: this one reads them all; at most the partition count)",
    )
    run.set_defaults(handler=_pipeline_run, beam_args=[])
    reset = pipeline_actions.add_parser(
        "reset-offsets",
        help="move the pipeline's consumer group to replay or skip records",
        description="Set the consumer group's committed offsets on the raw topic, for "
        "reprocessing after a fix, a backfill from a date, or skipping a stretch. Replays are "
        "safe: documents are overwritten by id, never duplicated. Stop the pipeline first; "
        "Kafka refuses a reset while the group has members.",
    )
    where = reset.add_mutually_exclusive_group(required=True)
    where.add_argument("--earliest", action="store_true", help="replay everything retained")
    where.add_argument("--latest", action="store_true", help="skip everything not yet read")
    where.add_argument(
        "--to-time",
        metavar="WHEN",
        help="the first record at or after WHEN (ISO 8601, e.g. 2026-11-20T00:00Z)",
    )
    reset.add_argument(
        "--dry-run",
        action="store_true",
        help="show where each partition would move; change nothing",
    )
    reset.add_argument("--json", action="store_true", help="the moves as JSON")
    reset.set_defaults(handler=_pipeline_reset_offsets)

    search = commands.add_parser(
        "search",
        help="full-text search of the news index, with filters and facets",
        description="Search English and original-language titles and bodies; prints title, "
        "source, date, language, top entities and a matching fragment of each hit, then the top "
        "people, organisations, places (also as found in the original language: 'original "
        "PERSON'), sources and languages of all matches. QUERY may be left out when a filter is "
        "given.",
    )
    search.add_argument(
        "query", metavar="QUERY", nargs="?", help="words to search for, e.g. 'NATO summit'"
    )
    search.add_argument(
        "--entity",
        action="append",
        default=[],
        metavar="LABEL:NAME",
        help="only articles mentioning this entity, e.g. 'PERSON:Jens Stoltenberg' (labels: "
        "PERSON, ORG, GPE, LOC, NORP, ...; repeat: all must match)",
    )
    search.add_argument(
        "--source", action="append", default=[], help="only this outlet (repeat: any of them)"
    )
    search.add_argument(
        "--lang",
        action="append",
        default=[],
        metavar="CODE",
        help="only this language, ISO 639-1, e.g. es (repeat: any of them)",
    )
    search.add_argument(
        "--since",
        metavar="DATE",
        help="dated (published, else fetched) on or after; ISO 8601, 2026-07-09 or ...T08:00Z",
    )
    search.add_argument(
        "--until", metavar="DATE", help="dated on or before; a bare date includes that day"
    )
    search.add_argument(
        "--sort",
        choices=["relevance", "date"],
        default="relevance",
        help="relevance (default; newest first among equals) or date (newest first)",
    )
    search.add_argument(
        "--cluster", metavar="ID", help="only the articles of this story cluster (see --collapse)"
    )
    search.add_argument(
        "--collapse",
        action="store_true",
        help="one hit per story: the best article, with how many similar ones also matched "
        "(copies and other-language versions, found by de-duplication)",
    )
    search.add_argument("--size", type=int, default=10, help="number of hits (default 10)")
    search.add_argument(
        "--json", action="store_true", help="print the hits as JSON (facets: use the HTTP API)"
    )
    search.set_defaults(handler=_search)

    dead = commands.add_parser(
        "dlq",
        help="inspect dead-letter records and replay them after a fix",
        description="list: the newest dead letters (stage, error, source offset); show REF: one "
        "record in full (REF = partition:offset or article id); replay: resend the original "
        "payloads to the raw topic, each once, committing after the broker acknowledged.",
    )
    dead.add_argument("action", choices=["list", "show", "replay"])
    dead.add_argument("ref", nargs="?", help="for show: partition:offset or article id")
    dead.add_argument(
        "--stage",
        help="only records of this stage (decode, language, translation, entities, index)",
    )
    dead.add_argument("--limit", type=int, default=50, help="list: newest N (default 50)")
    dead.add_argument("--json", action="store_true", help="list as JSON")
    dead.add_argument("--dry-run", action="store_true", help="replay: say what would be resent")
    dead.set_defaults(handler=_dlq)

    index = commands.add_parser(
        "index",
        help="create, inspect or migrate the news index",
        description="Documents live in one index per month (elasticsearch.index_period) of "
        "their publication date, news-v<mapping version>-<period>, made from the index "
        "template news-v<mapping version>; all are behind the read alias "
        "(elasticsearch.index_alias, default news), and each has a write alias "
        "news-write-<period>. setup: install the template and create the read alias "
        "(idempotent); status: aliases, documents, whether the mapping is current (exit 1 if "
        "not); migrate: move to the current mapping version without downtime — the write "
        "aliases move first, documents are copied, the read alias moves last.",
    )
    index.add_argument("action", choices=["setup", "status", "migrate"])
    index.set_defaults(handler=_index)

    serve = commands.add_parser(
        "serve",
        help="serve search over HTTP (OpenAPI docs at /docs)",
        description="Run the HTTP API: GET /search (the same filters as `newsflow search`), "
        "GET /documents/{id}, GET /health; interactive docs at /docs.",
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to bind (default 127.0.0.1)")
    serve.add_argument("--port", type=int, default=8080, help="port (default 8080)")
    serve.set_defaults(handler=_serve)
    return parser


def _credentials_refused(exc: Exception) -> str | None:
    """Elasticsearch's 401 or 403 as advice, instead of a traceback."""
    if "elasticsearch" not in sys.modules:
        return None
    from elasticsearch import AuthenticationException, AuthorizationException

    if not isinstance(exc, AuthenticationException | AuthorizationException):
        return None
    node = exc.meta.node
    return (
        f"Elasticsearch at {node.scheme}://{node.host}:{node.port} refused the request "
        f"({exc.meta.status}: {exc.message}); check NEWSFLOW_ELASTICSEARCH__API_KEY (or "
        "NEWSFLOW_ELASTICSEARCH__USERNAME and NEWSFLOW_ELASTICSEARCH__PASSWORD) and the "
        "privileges of that key or user"
    )


def main(argv: Sequence[str] | None = None) -> int:
    configure_logging()
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:
        if args.handler is not _pipeline_run:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        args.beam_args = unknown
    try:
        settings = load_settings()
        return int(args.handler(args, settings))
    except SettingsError as exc:
        print(f"newsflow: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except NewsflowError as exc:
        print(f"newsflow: {exc}", file=sys.stderr)
        return EXIT_FAILURE
    except Exception as exc:
        refused = _credentials_refused(exc)
        if refused is None:
            raise
        print(f"newsflow: {refused}", file=sys.stderr)
        return EXIT_FAILURE
    except KeyboardInterrupt:
        return 130


if __name__ == "__main__":
    sys.exit(main())
