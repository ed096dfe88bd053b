"""``newsflow doctor --services`` after ``newsflow stack up``, as CI runs it: all ok, exit 0."""

from __future__ import annotations

import json

import pytest

from newsflow.settings import Settings
from tests.conftest import newsflow_cli

pytestmark = pytest.mark.integration


def test_the_running_stack_passes_the_doctor_with_services_required(stack: Settings) -> None:
    result = newsflow_cli(stack, "doctor", "--services", "--json")
    assert result.returncode == 0, result.stdout + result.stderr
    found = {f["check"]: f for f in json.loads(result.stdout)}
    assert [name for name, f in found.items() if f["status"] == "fail"] == []
    assert found["kafka"]["status"] == found["elasticsearch"]["status"] == "ok"
    assert found["kafka"]["detail"].endswith("1 broker(s)")
    for service in ("kafka", "elasticsearch"):
        ports = found[f"{service} ports"]
        assert ports["status"] == "ok" and f"the local stack's {service} (pid" in ports["detail"]
