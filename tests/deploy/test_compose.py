"""deploy/docker-compose.yml, validated offline (`docker compose` is not installed here).

The file is checked against the Compose Specification's JSON schema — the copy vendored by
check-jsonschema, taken from the compose-spec repository — and then for what the schema cannot
know: start-up order waits on health, newsflow's settings and commands are real, and the servers
match the local stack (`newsflow stack up`).
"""

from __future__ import annotations

import json
import re
from importlib.resources import files
from pathlib import Path
from typing import Any

import jsonschema
import pytest
import yaml

from newsflow.settings import StackSettings, load_settings
from tests.conftest import REPO
from tests.deploy.commands import assert_newsflow_command, assert_setting_name

COMPOSE_FILE = REPO / "deploy" / "docker-compose.yml"
NEWSFLOW_IMAGE = "newsflow"
#: Environment variables the newsflow containers read that are not settings.
NOT_SETTINGS = {"HEALTHCHECK_URL", "NEWSFLOW_CONFIG"}


def compose_schema() -> dict[str, Any]:
    vendored = files("check_jsonschema.builtin_schemas.vendor") / "compose-spec.json"
    return json.loads(vendored.read_text())


def load(path: Path = COMPOSE_FILE) -> dict[str, Any]:
    return yaml.safe_load(path.read_text())  # resolves the x-newsflow anchors and merge keys


COMPOSE = load()
SERVICES: dict[str, dict[str, Any]] = COMPOSE["services"]
#: The roles of the newsflow image (its entrypoint is the newsflow command).
APP_SERVICES = {
    n: s
    for n, s in SERVICES.items()
    if s["image"].split(":")[0] == NEWSFLOW_IMAGE and "entrypoint" not in s
}


def schema_errors(document: dict[str, Any]) -> list[str]:
    schema = compose_schema()
    validator = jsonschema.validators.validator_for(schema)(schema)
    return [
        f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
        for e in validator.iter_errors(document)
    ]


def test_matches_the_compose_specification() -> None:
    assert schema_errors(COMPOSE) == []


def test_the_schema_rejects_a_broken_file() -> None:
    """The control: the same validation fails a misspelled key and a bad depends_on condition."""
    broken = load()
    broken["services"]["kafka"]["helthcheck"] = broken["services"]["kafka"].pop("healthcheck")
    broken["services"]["kibana"]["depends_on"]["elasticsearch"]["condition"] = "healthy"
    errors = schema_errors(broken)
    assert any("helthcheck" in e for e in errors) and any("healthy" in e for e in errors)


def test_every_service_is_health_checked_or_waits_on_conditions() -> None:
    for name, service in SERVICES.items():
        depends = service.get("depends_on", {})
        assert "healthcheck" in service or depends, f"{name}: no healthcheck and no depends_on"
        assert isinstance(depends, dict), f"{name}: depends_on without conditions"
        for target, rule in depends.items():
            assert target in SERVICES, f"{name} depends on unknown {target}"
            if rule["condition"] == "service_healthy":
                assert "healthcheck" in SERVICES[target], f"{target} has no healthcheck"


def test_the_app_services_run_the_connectors_the_pipeline_and_the_api() -> None:
    roles = {tuple(service["command"][:2]) for service in APP_SERVICES.values()}
    assert {("connectors", "run"), ("pipeline", "run"), ("serve", "--host")} <= roles
    for service in APP_SERVICES.values():
        assert_newsflow_command(service["command"])
        assert service["build"]["dockerfile"] == "Dockerfile"
        assert (COMPOSE_FILE.parent / service["build"]["context"] / "Dockerfile").exists()


def test_newsflow_environment_variables_are_real_settings_that_load(
    monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.chdir(tmp_path)  # no newsflow.toml from the working directory
    monkeypatch.delenv("NEWSFLOW_CONFIG", raising=False)
    for name, service in APP_SERVICES.items():
        with monkeypatch.context() as env:
            for key, value in service["environment"].items():
                if key not in NOT_SETTINGS:
                    assert_setting_name(key)
                env.setenv(key, str(value))
            settings = load_settings()
        assert settings.kafka.bootstrap_servers == "kafka:29092", name
        assert settings.elasticsearch.url == "http://elasticsearch:9200", name


def test_each_app_healthcheck_url_is_a_port_the_service_serves() -> None:
    """The image's HEALTHCHECK reads HEALTHCHECK_URL; each role points it at its own endpoint."""
    for name, service in APP_SERVICES.items():
        url = service["environment"]["HEALTHCHECK_URL"]
        port = re.fullmatch(r"http://127\.0\.0\.1:(\d+)/\w+", url)
        assert port, f"{name}: {url}"
        published = {p.split(":")[-1] for p in service.get("ports", [])}
        assert port[1] in published, f"{name} checks port {port[1]}, publishes {published}"


def test_bind_mounts_exist_in_the_repository() -> None:
    for name, service in SERVICES.items():
        for volume in service.get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("."):
                assert (COMPOSE_FILE.parent / source).exists(), f"{name} mounts missing {source}"


def test_the_mounted_sources_file_is_valid() -> None:
    from connectors.sources import load_sources

    mounts = [v for v in SERVICES["connectors"]["volumes"] if v.startswith("./")]
    source, target = mounts[0].split(":")[:2]
    assert f"--config={target}" in SERVICES["connectors"]["command"]
    assert load_sources(COMPOSE_FILE.parent / source).sources


def local_version(server: str) -> str:
    """The version the local stack's pom resolves (``<kafka.version>4.1.1</kafka.version>``)."""
    pom = (REPO / "deploy" / "local" / server / "pom.xml").read_text()
    match = re.search(rf"<{server}\.version>([^<]+)</{server}\.version>", pom)
    assert match, f"no {server}.version in deploy/local/{server}/pom.xml"
    return match[1]


def test_servers_match_the_local_stack() -> None:
    """Same versions, ports and heaps as `newsflow stack up`, so either path behaves the same."""
    stack = StackSettings()
    kafka, elasticsearch = SERVICES["kafka"], SERVICES["elasticsearch"]
    assert f"{stack.kafka_port}:{stack.kafka_port}" in kafka["ports"]
    assert f"{stack.elasticsearch_port}:9200" in elasticsearch["ports"]
    assert f"-Xmx{stack.kafka_heap}" in kafka["environment"]["KAFKA_HEAP_OPTS"]
    assert f"-Xmx{stack.elasticsearch_heap}" in elasticsearch["environment"]["ES_JAVA_OPTS"]
    kafka_version = kafka["image"].rsplit(":", 1)[1]
    es_version = elasticsearch["image"].rsplit(":", 1)[1]
    assert local_version("kafka") == kafka_version
    assert local_version("elasticsearch") == es_version
    assert SERVICES["kibana"]["image"].endswith(f":{es_version}")


def test_images_are_pinned_and_monitoring_is_a_profile() -> None:
    for name, service in SERVICES.items():
        tag = service["image"].rsplit(":", 1)[-1]
        assert ":" in service["image"] and tag != "latest", f"{name}: {service['image']}"
    assert SERVICES["prometheus"]["profiles"] == ["monitoring"]
    assert SERVICES["grafana"]["profiles"] == ["monitoring"]
    for name in ("kafka", "elasticsearch", *APP_SERVICES):
        assert "profiles" not in SERVICES[name], f"{name} must start by default"


def test_prometheus_scrapes_the_app_services_and_loads_the_shipped_rules() -> None:
    config = yaml.safe_load(COMPOSE["configs"]["prometheus"]["content"])
    targets = {
        target
        for job in config["scrape_configs"]
        for static in job["static_configs"]
        for target in static["targets"]
    }
    assert targets == {"pipeline:9465", "connectors:9464"}
    for target in targets:
        name, port = target.split(":")
        assert f"{port}:{port}" in SERVICES[name]["ports"]
    mount = next(v for v in SERVICES["prometheus"]["volumes"] if v.startswith("./monitoring"))
    inside = mount.split(":")[1]
    for rules in config["rule_files"]:
        assert rules.startswith(inside + "/")
        assert (COMPOSE_FILE.parent / "monitoring" / Path(rules).name).exists()


def test_elasticsearch_gets_the_hunspell_dictionaries_before_it_starts() -> None:
    """The template's analyzers need them; an init container of the newsflow image copies them."""
    from newsflow.index import hunspell_locales

    node = SERVICES["elasticsearch"]
    mount = next(v for v in node["volumes"] if v.endswith("/config/hunspell:ro"))
    volume = mount.split(":")[0]
    (init,) = [n for n, s in node["depends_on"].items() if n != "kafka"]
    assert node["depends_on"][init]["condition"] == "service_completed_successfully"
    copier = SERVICES[init]
    assert copier["image"].split(":")[0] == NEWSFLOW_IMAGE
    assert copier["entrypoint"][-1].endswith("/elasticsearch/hunspell.sh")
    (target,) = copier["command"]
    assert f"{volume}:{target}" in copier["volumes"]
    script_list = REPO / "deploy" / "elasticsearch" / "hunspell-dictionaries.txt"
    listed = {
        line.split()[0]
        for line in script_list.read_text().splitlines()
        if line and not line.startswith("#")
    }
    assert listed == hunspell_locales()
