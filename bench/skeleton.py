"""Walking-skeleton benchmark: end-to-end articles/s next to the spaCy NER ceiling, in one run.

Ingests N English news articles (BBC News 2005 from the shared corpus) into fresh topics and a
fresh index on the running local stack, runs the pipeline in drain mode, and times it; then runs
the same texts through ``nlp.pipe`` alone (the ceiling). The ratio is the claim; absolute numbers
on a noisy 2-core machine are context. The full harness (freshness, per-stage, scale-out) is
issue #8.

    python bench/skeleton.py --articles 500
"""

from __future__ import annotations

import argparse
import json
import sys
import time
import uuid
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

import spacy  # noqa: E402
from kafka import KafkaAdminClient  # noqa: E402

from connectors.ingest import ingest_files  # noqa: E402
from newsflow.index import client, concrete_index_name  # noqa: E402
from newsflow.settings import load_settings  # noqa: E402
from pipeline.run import run  # noqa: E402

CORPUS = REPO.parent / "shared" / "corpus" / "articles" / "bbc-news-2005" / "bbc"
IDLE_SECONDS = 2.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--articles", type=int, default=500, help="how many articles (max 2225)")
    args = parser.parse_args()

    files = sorted(CORPUS.glob("*/*.txt"))[: args.articles]
    if not files:
        sys.exit(f"no articles under {CORPUS}; this benchmark needs the shared corpus")
    name = f"bench-{uuid.uuid4().hex[:8]}"
    settings = load_settings().namespaced(name)
    print(f"ingesting {len(files)} articles ...", file=sys.stderr)
    report = ingest_files(files, settings.kafka)

    print("running the pipeline until drained ...", file=sys.stderr)
    started = time.perf_counter()
    run(settings, stop_when_idle=IDLE_SECONDS)
    pipeline_seconds = time.perf_counter() - started - IDLE_SECONDS
    es = client(settings.elasticsearch)
    es.indices.refresh(index=name)
    indexed = es.count(index=name)["count"]

    print("NER ceiling: nlp.pipe over the same texts ...", file=sys.stderr)
    model = spacy.load(settings.nlp.spacy_model, enable=settings.nlp.spacy_components)
    texts = [path.read_text(encoding="utf-8", errors="replace") for path in files]
    started = time.perf_counter()
    for _ in model.pipe(texts, batch_size=settings.nlp.batch_size):
        pass
    ner_seconds = time.perf_counter() - started

    es.indices.delete(index=concrete_index_name(name))
    es.close()
    admin = KafkaAdminClient(bootstrap_servers=settings.kafka.bootstrap_servers)
    admin.delete_topics([settings.kafka.raw_topic, settings.kafka.dlq_topic])
    admin.close()
    result = {
        "articles_published": report.published,
        "documents_indexed": indexed,
        "end_to_end_articles_per_second": round(indexed / pipeline_seconds, 1),
        "ner_ceiling_articles_per_second": round(len(texts) / ner_seconds, 1),
        "end_to_end_over_ceiling": round(
            (indexed / pipeline_seconds) / (len(texts) / ner_seconds), 2
        ),
        "note": "pipeline time includes Beam start-up and model loading; drain idle excluded",
    }
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
