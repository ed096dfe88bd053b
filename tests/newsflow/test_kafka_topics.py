"""The shared Kafka client configuration: security options, and secrets kept out of reprs."""

from __future__ import annotations

from pathlib import Path

from newsflow.kafka_topics import client_config
from newsflow.settings import KafkaSettings


def test_plaintext_adds_no_security_options() -> None:
    config = client_config(KafkaSettings(), "test")
    assert config["security_protocol"] == "PLAINTEXT"
    assert not {key for key in config if key.startswith(("ssl_", "sasl_"))}


def test_sasl_ssl_passes_the_ca_the_hostname_check_and_the_login(tmp_path: Path) -> None:
    ca = tmp_path / "ca.pem"
    ca.write_text("a CA bundle")
    settings = KafkaSettings(
        security_protocol="SASL_SSL",
        sasl_mechanism="SCRAM-SHA-256",
        sasl_username="newsflow",
        sasl_password="s3cret-value",  # type: ignore[arg-type]  # pydantic makes it a SecretStr
        ssl_cafile=ca,
    )
    config = client_config(settings, "test")
    assert config["ssl_cafile"] == str(ca) and config["ssl_check_hostname"] is True
    assert (config["sasl_mechanism"], config["sasl_plain_username"]) == (
        "SCRAM-SHA-256",
        "newsflow",
    )
    assert config["sasl_plain_password"] == "s3cret-value"  # what the client sends
    assert "s3cret-value" not in repr(config)  # what kafka-python's DEBUG log would show
