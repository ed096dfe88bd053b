"""``newsflow stack up`` refuses clearly, before starting anything, when it cannot succeed."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from newsflow.settings import StackSettings
from newsflow.stack import LocalStack, StackError


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def test_a_taken_port_is_reported_with_the_setting_to_change(tmp_path: Path) -> None:
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        settings = StackSettings(
            state_dir=tmp_path, kafka_port=port, elasticsearch_port=free_port()
        )
        with pytest.raises(StackError, match=rf"port {port} is already in use.*KAFKA_PORT"):
            LocalStack(settings, progress=lambda _: None).up()
    assert not (tmp_path / "kafka" / "kafka.pid").exists()


def test_a_too_old_java_is_reported_with_what_to_install(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    java_home = tmp_path / "jdk8"
    (java_home / "bin").mkdir(parents=True)
    java = java_home / "bin" / "java"
    java.write_text("#!/bin/sh\necho 'openjdk version \"1.8.0_392\"' >&2\n")
    java.chmod(0o755)
    monkeypatch.setenv("JAVA_HOME", str(java_home))
    stack = LocalStack(StackSettings(state_dir=tmp_path / "state"), progress=lambda _: None)
    with pytest.raises(StackError, match=r"Java 8.*need Java 17\+"):
        stack.up()


def test_missing_java_is_reported(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("JAVA_HOME", str(tmp_path / "no-jdk"))
    stack = LocalStack(StackSettings(state_dir=tmp_path / "state"), progress=lambda _: None)
    with pytest.raises(StackError, match="Java not found"):
        stack.up()
