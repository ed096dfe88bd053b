"""deploy/kubernetes, validated offline: rendered with kustomize (built into kubectl), every
object checked in strict mode against the Kubernetes OpenAPI schemas bundled by
kubernetes-validate, then the promises the schema cannot check (probes on the ports the
processes serve, limits, non-root, settings that load, selectors that match)."""

from __future__ import annotations

import shutil
import subprocess
import tomllib
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import kubernetes_validate
import pytest
import yaml

from newsflow.settings import load_settings
from tests.conftest import REPO
from tests.deploy.commands import assert_newsflow_command

KUSTOMIZATION = REPO / "deploy" / "kubernetes"
#: The oldest Kubernetes these manifests support (policy/v1, autoscaling/v2) and the newest
#: schemas kubernetes-validate bundles.
KUBERNETES_VERSIONS = ["1.29.0", kubernetes_validate.utils.latest_version()]
NEWSFLOW_IMAGE = "newsflow"
WORKLOADS = ("Deployment", "StatefulSet")


def render() -> list[dict[str, Any]]:
    kubectl = shutil.which("kubectl")
    assert kubectl, "kubectl (for its built-in kustomize) is missing: apt-get install kubectl"
    result = subprocess.run(
        [kubectl, "kustomize", str(KUSTOMIZATION)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stderr
    return [doc for doc in yaml.safe_load_all(result.stdout) if doc]


OBJECTS = render()


def objects(kind: str) -> list[dict[str, Any]]:
    return [o for o in OBJECTS if o["kind"] == kind]


def named(kind: str, name: str) -> dict[str, Any]:
    return next(o for o in objects(kind) if o["metadata"]["name"] == name)


def containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    """(workload, container) for every container of every Deployment and StatefulSet."""
    for workload in OBJECTS:
        if workload["kind"] in WORKLOADS:
            for container in workload["spec"]["template"]["spec"]["containers"]:
                yield workload, container


def newsflow_containers() -> Iterator[tuple[dict[str, Any], dict[str, Any]]]:
    for workload, container in containers():
        if container["image"].split(":")[0] == NEWSFLOW_IMAGE:
            yield workload, container


def config_file(name: str, tmp_path: Path) -> Path:
    configmap = next(o for o in objects("ConfigMap") if name in o["data"])
    path = tmp_path / name
    path.write_text(configmap["data"][name])
    return path


def port_number(container: dict[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    return next(p["containerPort"] for p in container["ports"] if p["name"] == port)


@pytest.mark.parametrize("version", KUBERNETES_VERSIONS)
def test_every_object_matches_the_kubernetes_schema_strictly(version: str) -> None:
    for obj in OBJECTS:
        kubernetes_validate.validate(obj, version, strict=True)


def test_strict_validation_rejects_a_misspelled_field() -> None:
    """The control: a typo the API server would drop silently fails here."""
    broken = yaml.safe_load(yaml.safe_dump(named("Deployment", "pipeline")))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSIONS[0], strict=True)


def test_every_manifest_file_is_in_the_kustomization() -> None:
    listed = set(yaml.safe_load((KUSTOMIZATION / "kustomization.yaml").read_text())["resources"])
    on_disk = {p.name for p in KUSTOMIZATION.glob("*.yaml")} - {"kustomization.yaml"}
    assert listed == on_disk


def test_the_system_is_all_there() -> None:
    kinds = {(o["kind"], o["metadata"]["name"]) for o in OBJECTS}
    for expected in [
        ("StatefulSet", "kafka"),
        ("StatefulSet", "elasticsearch"),
        ("Deployment", "connectors"),
        ("Deployment", "pipeline"),
        ("Deployment", "search-api"),
        ("Secret", "newsflow-credentials"),
        ("PodDisruptionBudget", "search-api"),
        ("HorizontalPodAutoscaler", "search-api"),
    ]:
        assert expected in kinds
    assert all(
        o["metadata"].get("namespace") == "newsflow" for o in OBJECTS if o["kind"] != "Namespace"
    )


def test_every_container_has_probes_resources_and_a_locked_down_security_context() -> None:
    for workload, container in containers():
        where = f"{workload['metadata']['name']}/{container['name']}"
        assert "livenessProbe" in container and "readinessProbe" in container, where
        assert {"cpu", "memory"} <= container["resources"]["requests"].keys(), where
        assert "memory" in container["resources"]["limits"], where
        pod = workload["spec"]["template"]["spec"]["securityContext"]
        assert pod["runAsNonRoot"] is True and pod["runAsUser"] > 0, where
        security = container["securityContext"]
        assert security["allowPrivilegeEscalation"] is False, where
        assert security["capabilities"]["drop"] == ["ALL"], where
        assert ":" in container["image"] and not container["image"].endswith(":latest"), where


def test_newsflow_pods_have_a_read_only_root_and_writable_scratch() -> None:
    for workload, container in newsflow_containers():
        assert container["securityContext"]["readOnlyRootFilesystem"] is True
        mounts = {m["mountPath"] for m in container["volumeMounts"]}
        where = workload["metadata"]["name"]
        assert {"/tmp", "/var/lib/newsflow", "/etc/newsflow"} <= mounts, where
        assert workload["spec"]["template"]["spec"]["securityContext"]["runAsUser"] == 10001


def test_newsflow_commands_parse_and_each_role_runs_once() -> None:
    roles = []
    for _, container in newsflow_containers():
        assert_newsflow_command(container["args"])
        roles.append(container["args"][0])
    assert sorted(roles) == ["connectors", "pipeline", "serve"]


def probe(container: dict[str, Any], kind: str) -> tuple[str, int]:
    action = container[kind]
    check = action.get("httpGet") or action["tcpSocket"]
    return check.get("path", "tcp"), port_number(container, check["port"])


def test_probes_hit_the_endpoints_each_role_serves(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("NEWSFLOW_CONFIG", str(config_file("newsflow.toml", tmp_path)))
    observability = load_settings().observability
    by_role = {c["args"][0]: c for _, c in newsflow_containers()}

    pipeline = by_role["pipeline"]
    assert probe(pipeline, "livenessProbe") == ("/healthz", observability.metrics_port)
    assert probe(pipeline, "readinessProbe") == ("/readyz", observability.metrics_port)
    assert observability.metrics_host == "0.0.0.0"

    connectors = by_role["connectors"]
    assert f"--metrics-port={probe(connectors, 'readinessProbe')[1]}" in connectors["args"]
    assert "--metrics-host=0.0.0.0" in connectors["args"]

    api = by_role["serve"]
    assert probe(api, "readinessProbe") == ("/health", 8000)
    assert "--port=8000" in api["args"] and "--host=0.0.0.0" in api["args"]


def test_the_config_map_loads_and_points_at_the_services(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    from connectors.sources import load_sources

    monkeypatch.setenv("NEWSFLOW_CONFIG", str(config_file("newsflow.toml", tmp_path)))
    settings = load_settings()
    services = {
        (s["metadata"]["name"], p["port"]) for s in objects("Service") for p in s["spec"]["ports"]
    }
    host, port = settings.kafka.bootstrap_servers.split(":")
    assert (host, int(port)) in services
    es_host, es_port = settings.elasticsearch.url.removeprefix("http://").split(":")
    assert (es_host, int(es_port)) in services
    assert load_sources(config_file("sources.yaml", tmp_path)).sources
    mounted = {"name": "NEWSFLOW_CONFIG", "value": "/etc/newsflow/newsflow.toml"}
    for _, container in newsflow_containers():
        assert mounted in container["env"]


def test_the_secret_holds_only_placeholders() -> None:
    secret = named("Secret", "newsflow-credentials")
    assert "data" not in secret
    assert all(value == "" for value in secret["stringData"].values())


def test_selectors_match_pods() -> None:
    pods = [w["spec"]["template"]["metadata"]["labels"] for w in OBJECTS if w["kind"] in WORKLOADS]
    for selecting in objects("Service") + objects("PodDisruptionBudget"):
        selector = selecting["spec"]["selector"]
        selector = selector.get("matchLabels", selector)
        assert any(selector.items() <= labels.items() for labels in pods), selecting["metadata"]
    for workload in OBJECTS:
        if workload["kind"] in WORKLOADS:
            selector = workload["spec"]["selector"]["matchLabels"]
            assert selector.items() <= workload["spec"]["template"]["metadata"]["labels"].items()
    for hpa in objects("HorizontalPodAutoscaler"):
        target = hpa["spec"]["scaleTargetRef"]
        assert named(target["kind"], target["name"])


def test_single_writer_workloads_never_run_twice() -> None:
    """Connectors (one SQLite state file) and the pipeline (reads every partition) stay at one
    pod, replaced with Recreate so old and new never overlap."""
    for name in ("connectors", "pipeline"):
        deployment = named("Deployment", name)
        assert deployment["spec"]["replicas"] == 1
        assert deployment["spec"]["strategy"]["type"] == "Recreate"
    assert not any(
        h["spec"]["scaleTargetRef"]["name"] in ("connectors", "pipeline")
        for h in objects("HorizontalPodAutoscaler")
    )


def test_servers_match_the_compose_file() -> None:
    compose = yaml.safe_load((REPO / "deploy" / "docker-compose.yml").read_text())["services"]
    for name in ("kafka", "elasticsearch"):
        (container,) = named("StatefulSet", name)["spec"]["template"]["spec"]["containers"]
        assert container["image"] == compose[name]["image"]
    (kafka,) = named("StatefulSet", "kafka")["spec"]["template"]["spec"]["containers"]
    heap = next(e["value"] for e in kafka["env"] if e["name"] == "KAFKA_HEAP_OPTS")
    assert heap == compose["kafka"]["environment"]["KAFKA_HEAP_OPTS"]
    toml = tomllib.loads((KUSTOMIZATION / "config" / "newsflow.toml").read_text())
    partitions = compose["kafka"]["environment"]["KAFKA_NUM_PARTITIONS"]
    assert toml["kafka"]["topic_partitions"] == partitions
