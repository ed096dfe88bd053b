"""The sources file: YAML and TOML, defaults and inheritance, and every problem named at once."""

from __future__ import annotations

from pathlib import Path

import pytest

from connectors.fetch import FetchPolicy
from connectors.publish import PublishPolicy
from connectors.rss import RssConfig, RssSource
from connectors.runner import RunOptions
from connectors.sources import KINDS, SourcesFileError, load_sources
from connectors.state import STATE_FILE
from tests.conftest import REPO

EXAMPLE = REPO / "deploy" / "sources.example.yaml"


def write(tmp_path: Path, text: str, name: str = "sources.yaml") -> Path:
    path = tmp_path / name
    path.write_text(text, encoding="utf-8")
    return path


def problems(path: Path) -> list[str]:
    with pytest.raises(SourcesFileError) as caught:
        load_sources(path)
    lines = str(caught.value).splitlines()
    assert all(line.startswith(f"{path}: ") for line in lines)
    return [line.removeprefix(f"{path}: ") for line in lines]


def test_the_example_file_is_valid_and_covers_every_kind() -> None:
    loaded = load_sources(EXAMPLE)
    assert {config.type for config in loaded.sources} == set(KINDS)
    enabled = [config for config in loaded.sources if config.enabled]
    assert len(loaded.build()) == len(enabled)


def test_registry_keys_are_the_config_models_types() -> None:
    assert KINDS["rss"] == (RssConfig, RssSource)
    assert sorted(KINDS) == ["files", "json_api", "pages", "rss", "sitemap", "warc"]


def test_yaml_defaults_feed_the_policies_and_unset_keys_keep_theirs(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
defaults:
  user_agent: "newsflow-test (+mailto:ops@example.org)"
  read_timeout: 3
  concurrency: 2
  oversize: dead_letter
  interval_seconds: 300
  allow_networks: ["127.0.0.1/32"]
sources:
  - {name: a, type: rss, url: "https://example.org/a.xml"}
  - {name: b, type: rss, url: "https://example.org/b.xml", interval_seconds: 1200,
     allow_networks: []}
""",
    )
    loaded = load_sources(path)
    assert loaded.fetch_policy() == FetchPolicy(
        user_agent="newsflow-test (+mailto:ops@example.org)",
        read_timeout=3,
        allow_networks=("127.0.0.1/32",),
    )
    assert loaded.run_options() == RunOptions(concurrency=2)
    assert loaded.publish_policy() == PublishPolicy(oversize="dead_letter")
    a, b = loaded.sources
    assert (a.interval_seconds, a.allow_networks) == (300, ("127.0.0.1/32",))
    assert (b.interval_seconds, b.allow_networks) == (1200, ())  # its own settings win


def test_toml_is_read_the_same_way(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
[defaults]
concurrency = 3

[[sources]]
name = "desk"
type = "files"
paths = ["/srv/outbox"]

[[sources]]
name = "feed"
type = "rss"
url = "https://example.org/feed.xml"
enabled = false
""",
        name="sources.toml",
    )
    loaded = load_sources(path)
    assert [c.name for c in loaded.sources] == ["desk", "feed"]
    assert [s.config.name for s in loaded.build()] == ["desk"]  # disabled sources are not built


def test_state_path_is_relative_to_the_file_or_under_the_state_dir(tmp_path: Path) -> None:
    source = '  - {name: a, type: rss, url: "https://example.org/a.xml"}\n'
    default = load_sources(write(tmp_path, f"sources:\n{source}"))
    assert default.state_path(Path(".newsflow")) == Path(".newsflow") / STATE_FILE
    explicit = load_sources(
        write(tmp_path, f"defaults:\n  state_path: run/state.sqlite\nsources:\n{source}")
    )
    assert explicit.state_path(Path(".newsflow")) == tmp_path / "run" / "state.sqlite"


def test_every_problem_is_reported_with_its_field(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        """
defaults:
  concurency: 4
  read_timeout: -1
surces: []
sources:
  - {name: a, type: rss, url: "https://example.org/a.xml", intervall: 60}
  - {name: b, type: podcast, url: "https://example.org/b.xml"}
  - {name: c, type: rss}
  - {name: a, type: rss, url: "https://example.org/other.xml"}
  - {name: d, type: rss, url: "ftp://example.org/d.xml"}
  - {name: "bad name", type: files, paths: [x]}
  - {name: e, type: rss, url: "https://example.org/e.xml", min_interval_seconds: 600,
     interval_seconds: 60}
  - just a string
""",
    )
    found = problems(path)
    expected = [
        "surces: unknown key; expected defaults and sources",
        "defaults.concurency: Extra inputs are not permitted",
        "defaults.read_timeout: Input should be greater than 0",
        "sources[0].intervall: Extra inputs are not permitted",
        "sources[1].type: 'podcast' is not one of files, json_api, pages, rss, sitemap, warc",
        "sources[2].url: Field required",
        "sources[3].name: duplicate name 'a' (also sources[0])",
        "sources[4].url: Value error",
        "sources[5].name: String should match pattern",
        "sources[6]: intervals must satisfy min_interval_seconds <= interval_seconds",
        "sources[7]: expected a mapping, got str",
    ]
    assert len(found) == len(expected), found
    for start in expected:
        assert any(line.startswith(start) for line in found), (start, found)


def test_the_policies_own_checks_are_reported_at_load(tmp_path: Path) -> None:
    path = write(
        tmp_path,
        'defaults:\n  user_agent: "two\\nlines"\n'
        'sources:\n  - {name: a, type: rss, url: "https://example.org/a.xml"}\n',
    )
    assert problems(path) == ["defaults: user_agent must be a non-empty single line"]


@pytest.mark.parametrize(
    ("name", "text", "message"),
    [
        ("sources.yaml", "sources: [", "not valid YAML"),
        ("sources.toml", "sources = [", "not valid TOML"),
        ("sources.json", "{}", "unknown format; name it .yaml, .yml or .toml"),
        ("sources.yaml", "- a\n- b\n", "expected a mapping with defaults and sources"),
        ("sources.yaml", "defaults: {}\n", "sources: must be a non-empty list of sources"),
        ("sources.yaml", "sources: []\n", "sources: must be a non-empty list of sources"),
    ],
)
def test_unusable_files(tmp_path: Path, name: str, text: str, message: str) -> None:
    path = write(tmp_path, text, name=name)
    with pytest.raises(SourcesFileError, match=message) as caught:
        load_sources(path)
    assert str(caught.value).startswith(str(path))


def test_a_missing_file(tmp_path: Path) -> None:
    with pytest.raises(SourcesFileError, match="cannot read"):
        load_sources(tmp_path / "nope.yaml")
