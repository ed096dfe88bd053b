"""deploy/kibana: the saved objects (data view, Lens visualizations, dashboard) and their import,
validated offline (Kibana does not run here: no Docker, and it is on no registry we reach).

What Kibana would only find out when a panel renders empty is checked against the index
mapping: every field a visualization aggregates on exists there with an aggregatable type. The
import script runs for real, with `sh`, against a small HTTP server answering like Kibana's
documented `/api/status` and `/api/saved_objects/_import`.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import threading
from collections.abc import Iterator
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest

from newsflow.index import index_definition
from newsflow.settings import ElasticsearchSettings
from tests.conftest import REPO
from tests.deploy.test_compose import COMPOSE_FILE, SERVICES

KIBANA_DIR = REPO / "deploy" / "kibana"
SAVED_OBJECTS = KIBANA_DIR / "saved-objects.ndjson"
IMPORT_SCRIPT = KIBANA_DIR / "import-saved-objects.sh"
DATA_VIEW_ID = "newsflow-news"
DASHBOARD_ID = "newsflow-overview"
#: Lens's name for "count of documents"; not a field of the index.
LENS_RECORDS = "___records___"
#: Keys under which Kibana objects name an index field.
FIELD_KEYS = {"sourceField", "timeFieldName", "sortField"}
AGGREGATABLE = {
    "keyword",
    "date",
    "date_nanos",
    "long",
    "integer",
    "short",
    "byte",
    "double",
    "float",
    "half_float",
    "scaled_float",
    "unsigned_long",
}
#: Kibana's dashboard grid is 48 columns wide.
GRID_COLUMNS = 48


def load_objects(path: Path = SAVED_OBJECTS) -> list[dict[str, Any]]:
    """One saved object per line, as Kibana's import reads the file."""
    return [json.loads(line) for line in path.read_text().splitlines()]


OBJECTS = load_objects()
BY_ID = {o["id"]: o for o in OBJECTS}


def flatten_mapping(properties: dict[str, Any], prefix: str = "") -> dict[str, str]:
    """Dotted field name -> mapping type, as Kibana lists fields: objects' ``properties``
    flattened, multi-fields (``title.raw``) included; objects appear only with a declared type."""
    fields: dict[str, str] = {}
    for name, spec in properties.items():
        path = prefix + name
        if "type" in spec:
            fields[path] = spec["type"]
        fields.update(flatten_mapping(spec.get("properties", {}), path + "."))
        fields.update(flatten_mapping(spec.get("fields", {}), path + "."))
    return fields


def field_references(node: Any) -> set[str]:
    """Every index field named anywhere in a saved object, including inside the JSON-encoded
    attributes (``panelsJSON``, ``searchSourceJSON``) Kibana stores as strings."""
    if isinstance(node, dict):
        found = {v for k, v in node.items() if k in FIELD_KEYS and isinstance(v, str)}
        for key, value in node.items():
            if key.endswith("JSON") and isinstance(value, str):
                value = json.loads(value)
            found |= field_references(value)
        return found - {LENS_RECORDS}
    if isinstance(node, list):
        return set().union(*map(field_references, node)) if node else set()
    return set()


def unaggregatable_fields(objects: list[dict[str, Any]], mapping: dict[str, Any]) -> list[str]:
    """What a visualization would fail on: fields missing from the mapping or not aggregatable."""
    fields = flatten_mapping(mapping["mappings"]["properties"])
    problems = []
    for obj in objects:
        for name in sorted(field_references(obj)):
            if name not in fields:
                problems.append(f"{obj['id']}: {name} is not in the index mapping")
            elif fields[name] not in AGGREGATABLE:
                problems.append(f"{obj['id']}: {name} is {fields[name]}, not aggregatable")
    return problems


def lens_layers(lens: dict[str, Any]) -> set[str]:
    return set(lens["attributes"]["state"]["datasourceStates"]["formBased"]["layers"])


def dashboard_panels() -> list[dict[str, Any]]:
    panels: list[dict[str, Any]] = json.loads(BY_ID[DASHBOARD_ID]["attributes"]["panelsJSON"])
    return panels


def test_every_line_is_one_saved_object_with_a_unique_id() -> None:
    text = SAVED_OBJECTS.read_text()
    assert text.endswith("\n") and "\n\n" not in text, "blank lines break the import"
    for obj in OBJECTS:
        assert {"type", "id", "attributes", "references"} <= obj.keys(), obj.get("id")
        assert obj["attributes"]["title"], obj["id"]
    assert len(BY_ID) == len(OBJECTS), "duplicate ids"
    types = [o["type"] for o in OBJECTS]
    assert types.count("index-pattern") == 1 and types.count("dashboard") == 1
    assert types.count("lens") == len(OBJECTS) - 2


def test_the_data_view_reads_the_news_alias_by_publication_time() -> None:
    """The alias, not an index name: the indices behind it change (migrations, monthly indices)."""
    view = BY_ID[DATA_VIEW_ID]
    assert view["type"] == "index-pattern"
    assert view["attributes"]["title"] == ElasticsearchSettings().index_alias
    assert view["attributes"]["timeFieldName"] == "published_at"


def test_flatten_mapping_sees_nested_objects_and_multi_fields() -> None:
    fields = flatten_mapping(index_definition()["mappings"]["properties"])
    assert fields["title"] == "text" and fields["title.raw"] == "keyword"
    assert fields["translation.status"] == "keyword"
    assert fields["entities.PERSON"] == "keyword"
    assert fields["published_at"] == "date"
    assert fields["entity_details"] == "object"  # declared, disabled: not aggregatable
    assert "entities" not in fields and "entity_details.label" not in fields


def test_the_dashboard_covers_time_entities_sources_and_languages() -> None:
    used = set().union(
        *(field_references(BY_ID[r["id"]]) for r in BY_ID[DASHBOARD_ID]["references"])
    )
    assert {
        "published_at",
        "entities.PERSON",
        "entities.ORG",
        "entities.GPE",
        "source",
        "language",
        "translation.status",
    } <= used


def test_every_field_used_exists_in_the_mapping_and_is_aggregatable() -> None:
    assert field_references(OBJECTS), "no fields found: the walk is broken"
    assert unaggregatable_fields(OBJECTS, index_definition()) == []


def test_a_renamed_or_text_field_is_caught() -> None:
    """The control: the same check fails once the mapping drifts from the visualizations."""
    renamed = copy.deepcopy(index_definition())
    entities = renamed["mappings"]["properties"]["entities"]["properties"]
    entities["ORGANISATION"] = entities.pop("ORG")
    renamed["mappings"]["properties"]["source"] = {"type": "text"}
    problems = unaggregatable_fields(OBJECTS, renamed)
    assert "newsflow-top-organisations: entities.ORG is not in the index mapping" in problems
    assert "newsflow-sources: source is text, not aggregatable" in problems


def test_every_reference_resolves_to_an_object_of_its_type() -> None:
    for obj in OBJECTS:
        for ref in obj["references"]:
            assert ref["id"] in BY_ID, f"{obj['id']} references missing {ref['id']}"
            assert BY_ID[ref["id"]]["type"] == ref["type"], f"{obj['id']} -> {ref['id']}"


def test_each_lens_layer_is_bound_to_the_data_view() -> None:
    """Lens finds a layer's data view through the reference named after the layer."""
    for lens in (o for o in OBJECTS if o["type"] == "lens"):
        bound = {
            r["name"].removeprefix("indexpattern-datasource-layer-")
            for r in lens["references"]
            if r["type"] == "index-pattern" and r["id"] == DATA_VIEW_ID
        }
        assert lens_layers(lens) and lens_layers(lens) <= bound, lens["id"]


def test_each_dashboard_panel_has_its_reference_and_every_lens_is_shown() -> None:
    names = {r["name"]: r["id"] for r in BY_ID[DASHBOARD_ID]["references"]}
    shown = set()
    for panel in dashboard_panels():
        # by reference only: a by-value panel would hide its fields from the checks above
        assert "panelRefName" in panel and "attributes" not in panel["embeddableConfig"]
        shown.add(names[f"{panel['panelIndex']}:{panel['panelRefName']}"])
    assert shown == {o["id"] for o in OBJECTS if o["type"] == "lens"}


def test_dashboard_panels_fit_the_grid_without_overlapping() -> None:
    taken: set[tuple[int, int]] = set()
    for panel in dashboard_panels():
        grid = panel["gridData"]
        assert grid["i"] == panel["panelIndex"]
        assert grid["x"] >= 0 and grid["x"] + grid["w"] <= GRID_COLUMNS, panel["panelIndex"]
        cells = {
            (x, y)
            for x in range(grid["x"], grid["x"] + grid["w"])
            for y in range(grid["y"], grid["y"] + grid["h"])
        }
        assert not cells & taken, f"panel {panel['panelIndex']} overlaps another"
        taken |= cells


def version(text: str) -> tuple[int, ...]:
    return tuple(int(part) for part in text.split("."))


def test_no_object_claims_a_newer_format_than_the_compose_kibana() -> None:
    """Kibana refuses objects migrated past its own version; older ones it migrates up."""
    kibana = version(SERVICES["kibana"]["image"].rsplit(":", 1)[1])
    for obj in OBJECTS:
        assert version(obj["coreMigrationVersion"]) <= kibana, obj["id"]
        assert version(obj["typeMigrationVersion"]) <= kibana, obj["id"]
    for panel in dashboard_panels():
        assert version(panel["version"]) <= kibana


def test_compose_imports_the_objects_once_kibana_is_healthy() -> None:
    setup = SERVICES["kibana-setup"]
    assert setup["depends_on"] == {"kibana": {"condition": "service_healthy"}}
    assert "healthcheck" in SERVICES["kibana"]
    source, target = setup["volumes"][0].split(":")[:2]
    assert (COMPOSE_FILE.parent / source).resolve() == KIBANA_DIR
    assert setup["entrypoint"] == ["sh", f"{target}/{IMPORT_SCRIPT.name}"]
    assert (KIBANA_DIR / SAVED_OBJECTS.name).exists()  # found beside the script by default
    assert setup["restart"] == "no"
    kibana_port = SERVICES["kibana"]["ports"][0].split(":")[-1]
    assert setup["environment"]["KIBANA_URL"] == f"http://kibana:{kibana_port}"


# -- the import script, run with sh against a stand-in answering like Kibana's HTTP API


@dataclass
class KibanaStandIn:
    """What the stand-in answers to an import, and the import requests it received."""

    url: str = ""
    import_reply: bytes = b""
    imports: list[dict[str, Any]] = field(default_factory=list)


def stand_in_handler(state: KibanaStandIn) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        def do_GET(self) -> None:  # /api/status
            self.reply(b'{"status":{"overall":{"level":"available"}}}')

        def do_POST(self) -> None:  # /api/saved_objects/_import
            body = self.rfile.read(int(self.headers["Content-Length"]))
            state.imports.append({"path": self.path, "headers": dict(self.headers), "body": body})
            self.reply(state.import_reply)

        def reply(self, body: bytes) -> None:
            self.send_response(200)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def log_message(self, *args: Any) -> None:  # keep pytest's output clean
            pass

    return Handler


@pytest.fixture
def kibana() -> Iterator[KibanaStandIn]:
    state = KibanaStandIn()
    server = ThreadingHTTPServer(("127.0.0.1", 0), stand_in_handler(state))
    state.url = f"http://127.0.0.1:{server.server_address[1]}/"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield state
    server.shutdown()
    server.server_close()


def run_import(url: str, *args: str, wait: int = 0) -> subprocess.CompletedProcess[str]:
    env = {**os.environ, "KIBANA_URL": url, "KIBANA_WAIT_SECONDS": str(wait)}
    env.pop("SAVED_OBJECTS_FILE", None)
    return subprocess.run(
        ["sh", str(IMPORT_SCRIPT), *args], env=env, capture_output=True, text=True, timeout=30
    )


def test_import_help_names_its_settings() -> None:
    result = run_import("http://unused", "--help")
    assert result.returncode == 0
    for name in ("KIBANA_URL", "SAVED_OBJECTS_FILE", "KIBANA_WAIT_SECONDS", "overwrite=true"):
        assert name in result.stdout
    assert run_import("http://unused", "--bogus").returncode == 2


def test_import_posts_the_file_with_overwrite_and_xsrf(kibana: KibanaStandIn) -> None:
    kibana.import_reply = json.dumps({"success": True, "successCount": len(OBJECTS)}).encode()
    result = run_import(kibana.url)
    assert result.returncode == 0, result.stderr
    assert f"imported {len(OBJECTS)} saved objects" in result.stdout
    [request] = kibana.imports
    assert request["path"] == "/api/saved_objects/_import?overwrite=true"
    assert request["headers"]["kbn-xsrf"] == "true"
    assert request["headers"]["Content-Type"].startswith("multipart/form-data")
    assert SAVED_OBJECTS.read_bytes() in request["body"]


def test_a_rejected_import_fails_loudly_with_kibanas_errors(
    kibana: KibanaStandIn,
) -> None:
    kibana.import_reply = json.dumps(
        {
            "success": False,
            "successCount": 0,
            "errors": [
                {
                    "id": "newsflow-top-persons",
                    "type": "lens",
                    "error": {"type": "missing_references", "references": []},
                }
            ],
        }
    ).encode()
    result = run_import(kibana.url)
    assert result.returncode == 1
    assert "rejected the import" in result.stderr and "missing_references" in result.stderr


def test_a_partial_import_fails(kibana: KibanaStandIn) -> None:
    kibana.import_reply = json.dumps({"success": True, "successCount": 1}).encode()
    result = run_import(kibana.url)
    assert result.returncode == 1
    assert f"imported 1 of {len(OBJECTS)} objects" in result.stderr


def test_an_unreachable_kibana_fails_with_what_to_check() -> None:
    result = run_import("http://127.0.0.1:9", wait=0)  # discard port: nothing listens
    assert result.returncode == 1
    assert "did not answer /api/status" in result.stderr and "KIBANA_URL" in result.stderr
