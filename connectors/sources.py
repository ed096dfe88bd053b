"""The sources file: which sources to poll and how, as data (YAML or TOML, by extension).

```yaml
defaults:            # optional; every key is optional
  user_agent: "newsflow (+https://example.org/contact)"
  concurrency: 8     # sources polled at once
  interval_seconds: 600
sources:
  - {name: bbc-world, type: rss, url: "https://feeds.bbci.co.uk/news/world/rss.xml"}
```

``defaults`` holds the fetch policy (``connectors.fetch.FetchPolicy``), the publish policy
(``connectors.publish.PublishPolicy``), the runner's options (``connectors.runner.RunOptions``),
where the state lives, and per-source settings (intervals, robots, allowlist) that every source
inherits unless it sets its own. A key left out keeps the default of the policy it belongs to, so
each default is written in one place. ``sources`` entries are discriminated by ``type`` over the
config models in ``KINDS``.

The whole file is validated at load: unknown keys, unknown types, duplicate names and bad values
are all reported at once, each as ``file: field: message``.
"""

from __future__ import annotations

import tomllib
from collections.abc import Callable, Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any, Literal, TypeVar, get_args

import yaml
from pydantic import BaseModel, ConfigDict, Field, ValidationError

from connectors.fetch import FetchPolicy
from connectors.files import FilesConfig, FilesSource
from connectors.json_api import JsonApiConfig, JsonApiSource
from connectors.pages import PagesConfig, PagesSource
from connectors.publish import PublishPolicy
from connectors.rss import RssConfig, RssSource
from connectors.runner import RunOptions
from connectors.sitemap import SitemapConfig, SitemapSource
from connectors.source import Source, SourceConfig
from connectors.state import DEFAULT_SEEN_RETENTION_DAYS, STATE_FILE
from connectors.warc import WarcConfig, WarcSource
from newsflow.errors import NewsflowError

#: Builds a source from its config. Typed loosely: each class narrows ``config`` to its own
#: model, which a Protocol's (mutable) attribute ``Source.config`` does not accept.
SourceFactory = Callable[[Any], Any]


def _kind(config: type[SourceConfig]) -> str:
    """The ``type`` a config model accepts (its ``Literal``), so the registry cannot disagree."""
    (kind,) = get_args(config.model_fields["type"].annotation)
    return str(kind)


_REGISTERED: list[tuple[type[SourceConfig], SourceFactory]] = [
    (RssConfig, RssSource),
    (SitemapConfig, SitemapSource),
    (PagesConfig, PagesSource),
    (JsonApiConfig, JsonApiSource),
    (WarcConfig, WarcSource),
    (FilesConfig, FilesSource),
]
#: Every kind of source: ``type`` in the sources file -> (config model, source class).
KINDS: dict[str, tuple[type[SourceConfig], SourceFactory]] = {
    _kind(config): (config, source) for config, source in _REGISTERED
}


class SourcesFileError(NewsflowError):
    """A sources file that cannot be used; one line per problem, each naming file and field."""


class Defaults(BaseModel):
    """The ``defaults`` section. ``None`` means "the default of the policy this key feeds"."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    # Fetching: connectors.fetch.FetchPolicy.
    user_agent: str | None = Field(None, min_length=1)
    connect_timeout: float | None = Field(None, gt=0)
    read_timeout: float | None = Field(None, gt=0)
    total_timeout: float | None = Field(None, gt=0)
    max_bytes: int | None = Field(None, gt=0)
    max_redirects: int | None = Field(None, ge=0)
    per_host_concurrency: int | None = Field(None, ge=1)
    per_host_interval: float | None = Field(None, ge=0)

    # Publishing: connectors.publish.PublishPolicy.
    max_article_bytes: int | None = Field(None, ge=1_000)
    oversize: Literal["truncate", "dead_letter"] | None = None

    # Running: connectors.runner.RunOptions.
    concurrency: int | None = Field(None, ge=1)
    batch_size: int | None = Field(None, ge=1)
    heartbeat_seconds: float | None = Field(None, gt=0)

    # State: a relative path is relative to the sources file; default
    # <stack.state_dir>/connectors/state.sqlite.
    state_path: Path | None = None
    seen_retention_days: float = Field(DEFAULT_SEEN_RETENTION_DAYS, gt=0)

    # Inherited by every source that does not set them (connectors.source.SourceConfig).
    interval_seconds: float | None = Field(None, gt=0)
    min_interval_seconds: float | None = Field(None, gt=0)
    max_interval_seconds: float | None = Field(None, gt=0)
    respect_robots: bool | None = None
    allow_networks: tuple[str, ...] | None = None


#: Keys of ``defaults`` that each source inherits.
INHERITED = (
    "interval_seconds",
    "min_interval_seconds",
    "max_interval_seconds",
    "respect_robots",
    "allow_networks",
)

_Policy = TypeVar("_Policy")


def _policy(cls: type[_Policy], defaults: Defaults) -> _Policy:
    """The policy dataclass with the keys the file sets; the others keep their defaults."""
    given = {f.name: getattr(defaults, f.name, None) for f in fields(cls)}  # type: ignore[arg-type]
    return cls(**{name: value for name, value in given.items() if value is not None})


@dataclass(frozen=True)
class SourcesFile:
    path: Path
    defaults: Defaults
    sources: tuple[SourceConfig, ...]

    def fetch_policy(self) -> FetchPolicy:
        return _policy(FetchPolicy, self.defaults)

    def publish_policy(self) -> PublishPolicy:
        return _policy(PublishPolicy, self.defaults)

    def run_options(self) -> RunOptions:
        return _policy(RunOptions, self.defaults)

    def state_path(self, state_dir: Path) -> Path:
        """Where the state database lives; ``state_dir`` is ``settings.stack.state_dir``."""
        if self.defaults.state_path is None:
            return state_dir / STATE_FILE
        return self.path.parent / self.defaults.state_path

    def build(self) -> list[Source]:
        """One source object per enabled entry."""
        built: list[Source] = [
            KINDS[config.type][1](config) for config in self.sources if config.enabled
        ]
        return built


def load_sources(path: Path) -> SourcesFile:
    """Read and validate a sources file; raises ``SourcesFileError`` listing every problem."""
    document = _read(path)
    problems: list[str] = []
    unknown = sorted(set(document) - {"defaults", "sources"})
    if unknown:
        problems.append(f"{', '.join(unknown)}: unknown key; expected defaults and sources")
    defaults = Defaults()
    try:
        defaults = Defaults.model_validate(document.get("defaults") or {})
    except ValidationError as exc:
        problems.extend(_explain(exc, "defaults"))
    entries = document.get("sources")
    if not isinstance(entries, list) or not entries:
        problems.append("sources: must be a non-empty list of sources")
        entries = []
    inherited = {k: getattr(defaults, k) for k in INHERITED if getattr(defaults, k) is not None}
    configs: list[SourceConfig] = []
    first_index: dict[str, int] = {}
    for index, entry in enumerate(entries):
        where = f"sources[{index}]"
        name = entry.get("name") if isinstance(entry, dict) else None
        if isinstance(name, str) and name in first_index:
            problems.append(
                f"{where}.name: duplicate name {name!r} (also sources[{first_index[name]}]); "
                "names identify state and metrics"
            )
            continue
        if isinstance(name, str):
            first_index[name] = index
        config = _source(entry, where, inherited, problems)
        if config is not None:
            configs.append(config)
    loaded = SourcesFile(path, defaults, tuple(configs))
    for build in (loaded.fetch_policy, loaded.publish_policy, loaded.run_options):
        try:
            build()
        except ValueError as exc:  # the policies' own checks, e.g. a user agent on two lines
            problems.append(f"defaults: {exc}")
    if problems:
        raise SourcesFileError("\n".join(f"{path}: {problem}" for problem in problems))
    return loaded


def _read(path: Path) -> dict[str, Any]:
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise SourcesFileError(f"{path}: cannot read: {exc}") from None
    suffix = path.suffix.lower()
    try:
        if suffix in (".yaml", ".yml"):
            document = yaml.safe_load(text)
        elif suffix == ".toml":
            document = tomllib.loads(text)
        else:
            raise SourcesFileError(f"{path}: unknown format; name it .yaml, .yml or .toml")
    except (yaml.YAMLError, tomllib.TOMLDecodeError) as exc:
        raise SourcesFileError(f"{path}: not valid {suffix[1:].upper()}: {exc}") from None
    if not isinstance(document, dict):
        raise SourcesFileError(f"{path}: expected a mapping with defaults and sources")
    return document


def _source(
    entry: Any, where: str, inherited: Mapping[str, Any], problems: list[str]
) -> SourceConfig | None:
    if not isinstance(entry, dict):
        problems.append(f"{where}: expected a mapping, got {type(entry).__name__}")
        return None
    kind = entry.get("type")
    if kind not in KINDS:
        problems.append(f"{where}.type: {kind!r} is not one of {', '.join(sorted(KINDS))}")
        return None
    try:
        config = KINDS[kind][0].model_validate({**inherited, **entry})
    except ValidationError as exc:
        problems.extend(_explain(exc, where))
        return None
    if not (config.min_interval_seconds <= config.interval_seconds <= config.max_interval_seconds):
        problems.append(
            f"{where}: intervals must satisfy min_interval_seconds <= interval_seconds <= "
            f"max_interval_seconds, got {config.min_interval_seconds}, "
            f"{config.interval_seconds}, {config.max_interval_seconds}"
        )
        return None
    return config


def _explain(exc: ValidationError, where: str) -> list[str]:
    return [
        f"{'.'.join([where, *(str(p) for p in err['loc'])])}: {err['msg']}" for err in exc.errors()
    ]
