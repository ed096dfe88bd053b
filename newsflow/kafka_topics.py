"""Create the topics newsflow needs, idempotently, before anything produces or consumes.

Relying on broker auto-creation would give the topics the broker's default partition count and
hide a misconfigured bootstrap address until the first send times out.
"""

from __future__ import annotations

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, NoBrokersAvailable, TopicAlreadyExistsError

from newsflow.errors import NewsflowError
from newsflow.settings import KafkaSettings


class KafkaUnavailable(NewsflowError):
    """The broker cannot be reached; the message says where we looked and what to do."""


def admin_client(settings: KafkaSettings) -> KafkaAdminClient:
    try:
        return KafkaAdminClient(
            bootstrap_servers=settings.bootstrap_servers, client_id="newsflow-admin"
        )
    except NoBrokersAvailable:
        raise KafkaUnavailable(
            f"no Kafka broker at {settings.bootstrap_servers}; start one with `newsflow stack up` "
            "or set NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS"
        ) from None


def ensure_topics(settings: KafkaSettings) -> None:
    """Create the raw and dead-letter topics if they do not exist yet."""
    admin = admin_client(settings)
    try:
        existing = set(admin.list_topics())
        wanted = [
            NewTopic(name, num_partitions=settings.topic_partitions, replication_factor=1)
            for name in (settings.raw_topic, settings.dlq_topic)
            if name not in existing
        ]
        if wanted:
            try:
                admin.create_topics(wanted)
            except TopicAlreadyExistsError:
                pass  # another process created it between list and create
    except KafkaError as exc:
        raise KafkaUnavailable(f"could not create topics on {settings.bootstrap_servers}: {exc}")
    finally:
        admin.close()
