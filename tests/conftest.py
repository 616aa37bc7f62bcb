"""Shared fixtures: fresh telemetry per test, free ports, real binaries."""

from __future__ import annotations

import logging
import shutil
import socket
from collections.abc import Iterator

import pytest

import tradetel
from tradetel.testing import Capture, capture


@pytest.fixture(autouse=True)
def _no_default_telemetry() -> Iterator[None]:
    """Every test starts without a process-wide default and leaves none behind."""
    tradetel.set_default(None)
    yield
    tradetel.set_default(None)


@pytest.fixture
def cap() -> Iterator[Capture]:
    """A fresh Telemetry with no backends, read through tradetel.testing."""
    with capture() as captured:
        yield captured


@pytest.fixture
def strict_cap() -> Iterator[Capture]:
    with capture(strict=True) as captured:
        yield captured


@pytest.fixture
def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@pytest.fixture(scope="session")
def promtool() -> str:
    path = shutil.which("promtool")
    if path is None:
        pytest.fail("promtool not found: scripts/test installs the Debian prometheus package")
    return path


@pytest.fixture
def quiet_tradetel_logs(caplog: pytest.LogCaptureFixture) -> pytest.LogCaptureFixture:
    caplog.set_level(logging.WARNING, logger="tradetel")
    return caplog
