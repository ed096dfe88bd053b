"""Security on the real stack: Kafka over SASL_SSL, Elasticsearch over TLS with an API key.

Kafka: the local broker's SASL_SSL listener (PLAIN over TLS, certificate from the state dir's
own CA, see newsflow/stack_security.py) with newsflow's own clients. Elasticsearch: the local
node runs without security, so a TLS-terminating proxy with the same certificate stands in
for a secured cluster and refuses every request without the right API key. Last, a sentinel
secret goes through every path that prints, logs or dead-letters and must never come out.
"""

from __future__ import annotations

import json
import socket
import subprocess
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime
from pathlib import Path

import pytest
from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer

from connectors.publish import ArticlePublisher
from newsflow.article import Article
from newsflow.kafka_topics import KafkaUnavailable, client_config, ensure_topics
from newsflow.settings import KafkaSettings, Settings, load_settings
from newsflow.stack import LocalStack, port_in_use
from newsflow.stack_security import StackSecurity
from pipeline.kafka_source import consumer_config
from tests.conftest import newsflow_cli
from tests.es_proxy import ElasticsearchProxy, elasticsearch_proxy

pytestmark = pytest.mark.integration

#: Short enough that a refused login or certificate fails the test in seconds.
CONNECT_TIMEOUT = 3.0


def security_of(settings: Settings) -> StackSecurity:
    return LocalStack(settings.stack).security


@pytest.fixture
def secured(isolated: Settings) -> Settings:
    """``isolated``, talking to the broker's SASL_SSL listener with the stack's user and CA."""
    port = isolated.stack.kafka_sasl_port
    security = security_of(isolated)
    if not (port_in_use(port) and security.credentials_file.exists()):
        pytest.fail(
            f"the running stack has no SASL_SSL listener on port {port} (it was started before "
            "the listener existed): restart it with `newsflow stack down && newsflow stack up`"
        )
    username, password = security.credentials()
    return with_kafka(
        isolated,
        bootstrap_servers=f"localhost:{port}",
        security_protocol="SASL_SSL",
        sasl_username=username,
        sasl_password=password,
        ssl_cafile=security.ca_file,
        connect_timeout_seconds=CONNECT_TIMEOUT,
    )


def with_kafka(settings: Settings, **changes: object) -> Settings:
    """A copy with validated Kafka changes (so the test goes through the settings' checks)."""
    kafka = KafkaSettings.model_validate({**settings.kafka.model_dump(), **changes})
    return settings.model_copy(update={"kafka": kafka})


def kafka_env(settings: Settings) -> dict[str, str]:
    """``settings``' Kafka connection as the environment variables a deployment would set."""
    kafka = settings.kafka
    assert kafka.sasl_password is not None and kafka.sasl_username is not None
    return {
        "NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS": kafka.bootstrap_servers,
        "NEWSFLOW_KAFKA__SECURITY_PROTOCOL": kafka.security_protocol,
        "NEWSFLOW_KAFKA__SASL_USERNAME": kafka.sasl_username,
        "NEWSFLOW_KAFKA__SASL_PASSWORD": kafka.sasl_password.get_secret_value(),
        "NEWSFLOW_KAFKA__SSL_CAFILE": str(kafka.ssl_cafile),
        "NEWSFLOW_KAFKA__CONNECT_TIMEOUT_SECONDS": str(CONNECT_TIMEOUT),
    }


def article(n: int) -> Article:
    return Article.create(
        url=f"https://news.example.com/secured-{n}",
        source="Example",
        title=f"Secured article {n} about the Lisbon tram",
        body="The new trams entered service on Monday.",
        fetched_at=datetime.now(UTC),
    )


# -- Kafka ----------------------------------------------------------------------------------------


def test_articles_go_through_the_sasl_ssl_listener_with_the_ca_verified(
    secured: Settings,
) -> None:
    ensure_topics(secured.kafka)
    sent = [article(n) for n in range(3)]
    with ArticlePublisher(secured.kafka) as publisher:
        results = publisher.publish_batch(sent)
    assert [r.error for r in results] == [None, None, None]

    # The pipeline source's consumer configuration, unchanged, reads them back.
    consumer = KafkaConsumer(
        secured.kafka.raw_topic,
        **{**consumer_config(secured.kafka), "consumer_timeout_ms": 5000},
    )
    try:
        received = {message.key.decode() for message in consumer}
    finally:
        consumer.close()
    assert received == {a.id for a in sent}
    # The broker advertises its SASL_SSL listener to SASL_SSL clients: no fetch went elsewhere.
    admin = KafkaAdminClient(**client_config(secured.kafka, "newsflow-tests"))
    try:
        ports = {broker["port"] for broker in admin.describe_cluster()["brokers"]}
    finally:
        admin.close()
    assert ports == {secured.stack.kafka_sasl_port}


def test_a_wrong_password_is_named_as_a_refused_login(secured: Settings) -> None:
    wrong = with_kafka(secured, sasl_password=f"wrong-{uuid.uuid4().hex}")
    with pytest.raises(KafkaUnavailable) as raised:
        ensure_topics(wrong.kafka)
    message = str(raised.value)
    assert f"refused the SASL PLAIN login of user {secured.kafka.sasl_username!r}" in message
    assert "NEWSFLOW_KAFKA__SASL_PASSWORD" in message
    assert wrong.kafka.sasl_password is not None
    assert wrong.kafka.sasl_password.get_secret_value() not in message


def test_a_certificate_from_an_untrusted_ca_is_refused_before_any_login(
    secured: Settings,
) -> None:
    # No ssl_cafile: only the system's CAs are trusted, and none of them signed the broker's.
    untrusted = with_kafka(secured, ssl_cafile=None)
    with pytest.raises(KafkaUnavailable) as raised:
        ArticlePublisher(untrusted.kafka)
    message = str(raised.value)
    assert "is not trusted by the system's CA certificates" in message
    assert "NEWSFLOW_KAFKA__SSL_CAFILE" in message


def test_tls_to_the_plaintext_listener_says_to_check_the_protocol_and_port(
    secured: Settings,
) -> None:
    plaintext = with_kafka(secured, bootstrap_servers=f"localhost:{secured.stack.kafka_port}")
    with pytest.raises(KafkaUnavailable, match=r"TLS handshake .* failed .* a TLS listener"):
        ensure_topics(plaintext.kafka)


# -- Elasticsearch --------------------------------------------------------------------------------


@pytest.fixture
def secured_es(isolated: Settings) -> Iterator[tuple[ElasticsearchProxy, str]]:
    """A TLS proxy with the stack's certificate in front of the node, and the one key it takes."""
    security = security_of(isolated)
    security.ensure()  # the stack made them at `up`; a stack from before the listener did not
    key = f"key-{uuid.uuid4().hex}"
    tls = (security.cert_file, security.key_file)
    with elasticsearch_proxy(isolated.elasticsearch.url, tls=tls, api_key=key) as proxy:
        yield proxy, key


def es_env(url: str, api_key: str, ca_certs: Path | None) -> dict[str, str]:
    env = {"NEWSFLOW_ELASTICSEARCH__URL": url, "NEWSFLOW_ELASTICSEARCH__API_KEY": api_key}
    if ca_certs is not None:
        env["NEWSFLOW_ELASTICSEARCH__CA_CERTS"] = str(ca_certs)
    return env


def index_status(
    settings: Settings, monkeypatch: pytest.MonkeyPatch, env: dict[str, str]
) -> subprocess.CompletedProcess[str]:
    """``newsflow index status`` with ``env`` added to the environment."""
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    return newsflow_cli(settings, "index", "status")


def test_index_setup_and_status_over_tls_with_the_api_key(
    isolated: Settings,
    secured_es: tuple[ElasticsearchProxy, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, key = secured_es
    ca = security_of(isolated).ca_file
    for name, value in es_env(proxy.url, key, ca).items():
        monkeypatch.setenv(name, value)
    setup = newsflow_cli(isolated, "index", "setup")
    assert setup.returncode == 0, setup.stderr
    status = index_status(isolated, monkeypatch, {})
    assert status.returncode == 0, status.stderr
    assert f"read alias   {isolated.elasticsearch.index_alias}:" in status.stdout
    assert "up to date" in status.stdout


def test_a_wrong_api_key_is_refused_with_advice(
    isolated: Settings,
    secured_es: tuple[ElasticsearchProxy, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, _ = secured_es
    wrong = f"wrong-{uuid.uuid4().hex}"
    status = index_status(
        isolated, monkeypatch, es_env(proxy.url, wrong, security_of(isolated).ca_file)
    )
    assert status.returncode == 1
    assert "refused the request (401" in status.stderr
    assert "NEWSFLOW_ELASTICSEARCH__API_KEY" in status.stderr
    assert "Traceback" not in status.stderr and wrong not in status.stderr


def test_without_the_ca_the_proxy_certificate_is_not_trusted(
    isolated: Settings,
    secured_es: tuple[ElasticsearchProxy, str],
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    proxy, key = secured_es
    status = index_status(isolated, monkeypatch, es_env(proxy.url, key, None))
    assert status.returncode == 1
    # Above it, elastic_transport logs each retry with its traceback; newsflow's word is last.
    verdict = status.stderr.strip().splitlines()[-1]
    assert verdict.startswith(f"newsflow: Elasticsearch at {proxy.url} is unreachable")
    assert "CERTIFICATE_VERIFY_FAILED" in verdict
    assert verdict.endswith("set NEWSFLOW_ELASTICSEARCH__CA_CERTS to the CA file that signed it")
    assert key not in status.stderr


# -- secrets never come out -----------------------------------------------------------------------


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_sentinel_secret_never_reaches_output_logs_or_dead_letters(
    secured: Settings, monkeypatch: pytest.MonkeyPatch
) -> None:
    sentinel = f"SENTINEL-{uuid.uuid4().hex}"
    real_password = kafka_env(secured)["NEWSFLOW_KAFKA__SASL_PASSWORD"]
    outputs: dict[str, str] = {}
    started = datetime.now().timestamp()

    def cli(name: str, env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
        with monkeypatch.context() as scoped:
            for variable, value in env.items():
                scoped.setenv(variable, value)
            result = newsflow_cli(secured, *args)
        outputs[f"{name} stdout"], outputs[f"{name} stderr"] = result.stdout, result.stderr
        return result

    # 1. Settings themselves.
    monkeypatch.setenv("NEWSFLOW_KAFKA__SECURITY_PROTOCOL", "SASL_SSL")
    monkeypatch.setenv("NEWSFLOW_KAFKA__SASL_USERNAME", "newsflow")
    monkeypatch.setenv("NEWSFLOW_KAFKA__SASL_PASSWORD", sentinel)
    monkeypatch.setenv("NEWSFLOW_ELASTICSEARCH__API_KEY", sentinel)
    loaded = load_settings()
    outputs["repr"], outputs["str"] = repr(loaded), str(loaded)
    outputs["model_dump_json"] = loaded.model_dump_json()
    outputs["client_config repr"] = repr(client_config(loaded.kafka, "sentinel"))
    for variable in ("SECURITY_PROTOCOL", "SASL_USERNAME", "SASL_PASSWORD"):
        monkeypatch.delenv(f"NEWSFLOW_KAFKA__{variable}")
    monkeypatch.delenv("NEWSFLOW_ELASTICSEARCH__API_KEY")

    # 2. Settings errors: the production profile, and credentials without a SASL protocol.
    es_with_key = {"NEWSFLOW_ELASTICSEARCH__API_KEY": sentinel}
    production = cli("production", {**es_with_key, "NEWSFLOW_PROFILE": "production"}, "dlq", "list")
    assert production.returncode == 2 and "production profile refuses" in production.stderr
    stray = cli("stray password", {"NEWSFLOW_KAFKA__SASL_PASSWORD": sentinel}, "dlq", "list")
    assert stray.returncode == 2 and "SASL credentials are set" in stray.stderr

    # 3. Refused and unreachable services, with the sentinel as the credential in use.
    wrong_kafka = {**kafka_env(secured), "NEWSFLOW_KAFKA__SASL_PASSWORD": sentinel}
    refused = cli("dlq list, refused", wrong_kafka, "dlq", "list")
    assert refused.returncode == 1 and "refused the SASL PLAIN login" in refused.stderr
    dead_es = {
        "NEWSFLOW_ELASTICSEARCH__URL": f"https://localhost:{free_port()}",
        "NEWSFLOW_ELASTICSEARCH__API_KEY": sentinel,
        "NEWSFLOW_ELASTICSEARCH__REQUEST_TIMEOUT_SECONDS": "2",
    }
    unreachable = cli("index status, dead port", dead_es, "index", "status")
    assert unreachable.returncode == 1 and "unreachable" in unreachable.stderr
    security = security_of(secured)
    tls = (security.cert_file, security.key_file)
    with elasticsearch_proxy(secured.elasticsearch.url, tls=tls, api_key="another-key") as proxy:
        wrong_key = es_env(proxy.url, sentinel, security.ca_file)
        rejected = cli("index status, wrong key", wrong_key, "index", "status")
    assert rejected.returncode == 1 and "refused the request (401" in rejected.stderr
    stopped = cli(
        "pipeline run, refused",
        {**wrong_kafka, **dead_es},
        "pipeline", "run", "--stop-when-idle", "1", "--log-format", "json",
    )  # fmt: skip
    assert stopped.returncode == 1 and "refused the SASL PLAIN login" in stopped.stderr

    # 4. A pipeline that works (SASL_SSL Kafka, TLS Elasticsearch whose API key is the sentinel)
    # and dead-letters a record.
    ensure_topics(secured.kafka)
    producer = KafkaProducer(**client_config(secured.kafka, "newsflow-tests"), acks="all")
    good = article(0)
    producer.send(secured.kafka.raw_topic, key=good.id.encode(), value=good.to_json()).get(30)
    producer.send(secured.kafka.raw_topic, key=b"junk", value=b"{ not json").get(30)
    producer.close()
    with elasticsearch_proxy(secured.elasticsearch.url, tls=tls, api_key=sentinel) as proxy:
        working = {**kafka_env(secured), **es_env(proxy.url, sentinel, security.ca_file)}
        ran = cli(
            "pipeline run",
            working,
            "pipeline", "run", "--stop-when-idle", "2", "--log-format", "json",
        )  # fmt: skip
        assert ran.returncode == 0, ran.stderr[-3000:]
        listed = cli("dlq list", working, "dlq", "list", "--json")
    assert listed.returncode == 0, listed.stderr
    assert [row["stage"] for row in json.loads(listed.stdout)] == ["decode"]
    consumer = KafkaConsumer(
        secured.kafka.dlq_topic,
        **client_config(secured.kafka, "newsflow-tests"),
        auto_offset_reset="earliest",
        consumer_timeout_ms=5000,
    )
    letters = [message.value.decode() for message in consumer]
    consumer.close()
    assert len(letters) == 1
    outputs["dead letter"] = letters[0]

    # 5. The stack's own logs, as far as they were written during this test.
    for log in Path(secured.stack.state_dir).glob("*/logs/*"):
        if log.is_file() and log.stat().st_mtime >= started:
            outputs[str(log)] = log.read_text(errors="replace")

    for secret in (sentinel, real_password):
        leaks = [name for name, text in outputs.items() if secret in text]
        assert leaks == [], f"a secret appeared in {leaks}"
