"""Create the topics newsflow needs, idempotently, before anything produces or consumes.

Relying on broker auto-creation would give the topics the broker's default partition count and
hide a misconfigured bootstrap address until the first send times out.
"""

from __future__ import annotations

import contextlib
import socket
import ssl

from kafka import KafkaAdminClient
from kafka.admin import NewTopic
from kafka.errors import KafkaError, KafkaTimeoutError, TopicAlreadyExistsError

from newsflow.errors import NewsflowError
from newsflow.settings import SASL_PROTOCOLS, TLS_PROTOCOLS, KafkaSettings


class KafkaUnavailable(NewsflowError):
    """The broker cannot be reached; the message says where we looked and what to do."""


def kafka_unavailable(settings: KafkaSettings) -> KafkaUnavailable:
    """The error for a client that could not bootstrap, naming the security problem if any."""
    problem = security_problem(settings) if settings.security_protocol != "PLAINTEXT" else None
    return KafkaUnavailable(
        problem
        or f"no Kafka broker answered at {settings.bootstrap_servers} within "
        f"{settings.connect_timeout_seconds:.0f}s; start one with `newsflow stack up` or set "
        "NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS"
    )


def _tls_context(settings: KafkaSettings) -> ssl.SSLContext:
    """The checks kafka-python makes: the configured CA (else the system's) and the hostname."""
    context = ssl.create_default_context(
        cafile=str(settings.ssl_cafile) if settings.ssl_cafile else None
    )
    context.check_hostname = settings.ssl_check_hostname
    if settings.ssl_certfile and settings.ssl_keyfile:
        context.load_cert_chain(settings.ssl_certfile, settings.ssl_keyfile)
    return context


def security_problem(settings: KafkaSettings) -> str | None:
    """Why a secured client could not bootstrap, in terms of the settings to fix.

    kafka-python reports only "Unable to bootstrap" (a refused login often reaches it as a bare
    disconnect), so connect again ourselves: a TLS failure shows in the handshake, and a broker
    that completes the handshake but let no client in refused the SASL login.
    """
    host, _, port = settings.bootstrap_servers.split(",")[0].strip().rpartition(":")
    where = f"Kafka at {host}:{port}"
    try:
        with socket.create_connection((host, int(port)), settings.connect_timeout_seconds) as raw:
            if settings.security_protocol in TLS_PROTOCOLS:
                _tls_context(settings).wrap_socket(raw, server_hostname=host).close()
    except ssl.SSLCertVerificationError as exc:
        trusted = settings.ssl_cafile or "the system's CA certificates"
        return (
            f"the TLS certificate of {where} is not trusted by {trusted} "
            f"({exc.verify_message}); set NEWSFLOW_KAFKA__SSL_CAFILE to the CA that signed it "
            "(the local stack's is <state_dir>/security/ca.pem)"
        )
    except ssl.SSLError as exc:
        return (
            f"the TLS handshake with {where} failed ({exc.reason}); is that a TLS listener? "
            "check NEWSFLOW_KAFKA__SECURITY_PROTOCOL and the port in "
            "NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS"
        )
    except (OSError, ValueError):
        return None  # not reachable at all: the caller's generic message says so
    if settings.security_protocol in SASL_PROTOCOLS:
        return (
            f"{where} accepted the connection but refused the SASL "
            f"{settings.sasl_mechanism} login of user {settings.sasl_username!r}; check "
            "NEWSFLOW_KAFKA__SASL_USERNAME, NEWSFLOW_KAFKA__SASL_PASSWORD and "
            "NEWSFLOW_KAFKA__SASL_MECHANISM"
        )
    return None


class _Redacted(str):
    """A secret the client can use as a string but that never shows in a repr.

    kafka-python logs its whole configuration dict at DEBUG (the admin client does), and a
    dict's repr is its values' reprs.
    """

    def __repr__(self) -> str:
        return "'**********'"


def client_config(settings: KafkaSettings, client_id: str) -> dict[str, object]:
    """Connection and security settings every newsflow Kafka client shares."""
    config: dict[str, object] = {
        "bootstrap_servers": settings.bootstrap_servers,
        "client_id": client_id,
        "bootstrap_timeout_ms": int(settings.connect_timeout_seconds * 1000),
        "security_protocol": settings.security_protocol,
    }
    if settings.security_protocol in TLS_PROTOCOLS:
        config["ssl_check_hostname"] = settings.ssl_check_hostname
        files = {
            "ssl_cafile": settings.ssl_cafile,
            "ssl_certfile": settings.ssl_certfile,
            "ssl_keyfile": settings.ssl_keyfile,
        }
        config.update({key: str(path) for key, path in files.items() if path is not None})
    if settings.security_protocol in SASL_PROTOCOLS and settings.sasl_password is not None:
        config["sasl_mechanism"] = settings.sasl_mechanism
        config["sasl_plain_username"] = settings.sasl_username
        config["sasl_plain_password"] = _Redacted(settings.sasl_password.get_secret_value())
    return config


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
