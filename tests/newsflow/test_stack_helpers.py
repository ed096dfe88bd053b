"""The local stack's pure helpers (no Kafka or Elasticsearch is started here)."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path

import pytest

from newsflow.stack import (
    Service,
    StackError,
    install_hunspell_dictionaries,
    kafka_cluster_id,
    parse_java_major,
    port_in_use,
    process_cmdline,
    tail,
)

#: Above the kernel's pid_max on any Linux default (32768 or 4194304), so never a live process.
DEAD_PID = 2**22 + 12345


@pytest.mark.parametrize(
    ("output", "major"),
    [
        ('openjdk version "17.0.15" 2025-04-15\nOpenJDK Runtime Environment', 17),
        ('java version "1.8.0_392"\nJava(TM) SE Runtime Environment', 8),
        ('openjdk version "21" 2023-09-19', 21),
        ('openjdk version "11.0.2" 2019-01-15', 11),
        ('openjdk version "25-ea" 2025-09-16', 25),
        ("garbage", None),
        ("", None),
        ("17.0.15", None),  # not `java -version` output
    ],
)
def test_parse_java_major(output: str, major: int | None) -> None:
    assert parse_java_major(output) == major


def test_kafka_cluster_id_shape_and_uniqueness() -> None:
    ids = [kafka_cluster_id() for _ in range(200)]
    urlsafe = set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")
    for cluster_id in ids:
        assert len(cluster_id) == 22
        assert set(cluster_id) <= urlsafe
    assert len(set(ids)) == len(ids)


def test_tail_returns_the_last_lines(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text("".join(f"line {n}\n" for n in range(1, 101)), encoding="utf-8")
    assert tail(log, lines=3) == "line 98\nline 99\nline 100"
    assert tail(log).splitlines()[0] == "line 76"  # default: 25 lines
    assert len(tail(log).splitlines()) == 25


def test_tail_of_a_short_file_is_the_whole_file(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_text("only\n", encoding="utf-8")
    assert tail(log, lines=10) == "only"


def test_tail_survives_invalid_utf8(tmp_path: Path) -> None:
    log = tmp_path / "console.log"
    log.write_bytes(b"ok\n\xff\xfe broken\n")
    assert tail(log).splitlines() == ["ok", "\ufffd\ufffd broken"]


def test_tail_of_a_missing_file_says_so(tmp_path: Path) -> None:
    missing = tmp_path / "logs" / "console.log"
    assert tail(missing) == f"(no log at {missing})"


def test_port_in_use() -> None:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as server:
        server.bind(("127.0.0.1", 0))
        server.listen(1)
        port = server.getsockname()[1]
        assert port_in_use(port) is True
    assert port_in_use(port) is False


def test_process_cmdline_of_this_process() -> None:
    cmdline = process_cmdline(os.getpid())
    assert cmdline is not None
    assert "python" in cmdline
    assert "\x00" not in cmdline


def test_process_cmdline_of_a_dead_pid() -> None:
    assert process_cmdline(DEAD_PID) is None


def make_service(home: Path) -> Service:
    return Service(name="kafka", port=9092, home=home, health=lambda: None, version=lambda: "4.0")


def test_service_paths(tmp_path: Path) -> None:
    service = make_service(tmp_path)
    assert service.pid_file == tmp_path / "kafka.pid"
    assert service.log_file == tmp_path / "logs" / "console.log"


def test_running_pid_without_a_pid_file(tmp_path: Path) -> None:
    assert make_service(tmp_path).running_pid() is None


@pytest.mark.parametrize("content", [str(DEAD_PID), "not a pid", "", "-5"])
def test_running_pid_clears_a_stale_pid_file(
    tmp_path: Path, capsys: pytest.CaptureFixture[str], content: str
) -> None:
    service = make_service(tmp_path)
    service.pid_file.write_text(content)
    assert service.running_pid() is None
    assert not service.pid_file.exists()
    assert "removing stale pid file" in capsys.readouterr().err


def test_running_pid_ignores_a_live_process_that_is_not_ours(tmp_path: Path) -> None:
    """A reused pid: alive, but its command line does not name the service's home."""
    service = make_service(tmp_path)
    service.pid_file.write_text(str(os.getpid()))
    assert service.running_pid() is None
    assert not service.pid_file.exists()


@pytest.fixture
def process_naming(tmp_path: Path) -> Iterator[subprocess.Popen[bytes]]:
    """A live process whose command line names tmp_path, as our services' JVMs do."""
    process = subprocess.Popen(
        [sys.executable, "-c", "import time; time.sleep(60)", str(tmp_path)],
        stdin=subprocess.DEVNULL,
    )
    yield process
    process.kill()
    process.wait(timeout=10)


def test_running_pid_finds_our_live_process(
    tmp_path: Path, process_naming: subprocess.Popen[bytes]
) -> None:
    service = make_service(tmp_path)
    service.pid_file.write_text(f"{process_naming.pid}\n")
    assert service.running_pid() == process_naming.pid
    assert service.pid_file.exists()


def test_hunspell_dictionaries_are_copied_per_locale(tmp_path: Path) -> None:
    source = tmp_path / "hunspell"
    source.mkdir()
    for name in ("pt_PT.aff", "pt_PT.dic", "es_ES.aff", "es_ES.dic"):
        (source / name).write_text(name)
    target = tmp_path / "config" / "hunspell"
    install_hunspell_dictionaries(source, target, ["pt_PT", "es_ES"])
    assert (target / "pt_PT" / "pt_PT.dic").read_text() == "pt_PT.dic"
    assert sorted(p.name for p in (target / "es_ES").iterdir()) == ["es_ES.aff", "es_ES.dic"]


def test_missing_hunspell_dictionaries_say_how_to_install_them(tmp_path: Path) -> None:
    (tmp_path / "pt_PT.dic").write_text("")  # no .aff
    with pytest.raises(StackError, match=r"de_DE, pt_PT not found.*install-system-packages"):
        install_hunspell_dictionaries(tmp_path, tmp_path / "out", ["pt_PT", "de_DE"])
    assert not (tmp_path / "out").exists()
