"""Create the topics newsflow needs, idempotently, before anything produces or consumes.

Relying on broker auto-creation would give the topics the broker's default partition count and
hide a misconfigured bootstrap address until the first send times out.
"""

from __future__ import annotations

import contextlib

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from newsflow.errors import NewsflowError
from newsflow.settings import KafkaSettings


class KafkaUnavailable(NewsflowError):
    """The broker cannot be reached; the message says where we looked and what to do."""


def kafka_unavailable(settings: KafkaSettings) -> KafkaUnavailable:
    return KafkaUnavailable(
        f"no Kafka broker answered at {settings.bootstrap_servers} within "
        f"{settings.connect_timeout_seconds:.0f}s; start one with `newsflow stack up` or set "
        "NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS"
    )


def client_config(settings: KafkaSettings, client_id: str) -> dict[str, object]:
    """Connection settings every newsflow Kafka client shares."""
    return {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": client_id,
        "bootstrap_timeout_ms": int(settings.connect_timeout_seconds * 1000),
    }


def ensure_topics(settings: KafkaSettings) -> None:
    """Create the raw and dead-letter topics if they do not exist yet."""
    try:
        admin = KafkaAdminClient(**client_config(settings, "newsflow-admin"))
    except KafkaTimeoutError:
        raise kafka_unavailable(settings) from None
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=settings.topic_partitions, replication_factor=1)
            for name in (settings.raw_topic, settings.dlq_topic)
            if name not in existing
        ]
        if wanted:
            # Another process may create a topic between our list and create.
            with contextlib.suppress(TopicAlreadyExistsError):
                admin.create_topics(wanted)
    except KafkaTimeoutError:
        raise kafka_unavailable(settings) from None
    except KafkaError as exc:
        raise KafkaUnavailable(
            f"could not create topics on {settings.bootstrap_servers}: {exc}"
        ) from exc
    finally:
        admin.close()
