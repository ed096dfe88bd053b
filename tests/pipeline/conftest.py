"""Fixtures of the pipeline's tests."""

from __future__ import annotations

import pytest

from tests.conftest import free_ports


@pytest.fixture
def closed_port() -> int:
    """A local port nothing listens on: connections to it are refused at once."""
    return free_ports(1)[0]
