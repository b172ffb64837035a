"""Kibana test double fixtures: one shared server with security on, reset before each test."""

from __future__ import annotations

import base64
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.process import RunningServer, start_server

USER, PASSWORD = "elastic", "changeme-kibana"
READ_ONLY = ("viewer", "viewer-pass")
API_KEY = base64.b64encode(b"key-id:key-secret").decode()


@pytest.fixture(scope="session")
def kibana_server() -> Iterator[RunningServer]:
    server = start_server("tests.fakes.kibana", ["--user", USER, "--password", PASSWORD, "--api-key", API_KEY,
                                                 "--read-only-user", ":".join(READ_ONLY)])
    yield server
    assert server.stop() == 0


@pytest.fixture
def kibana_url(kibana_server: RunningServer) -> str:
    httpx.post(f"{kibana_server.url}/_fake/reset", timeout=10).raise_for_status()
    return kibana_server.url


def fake_state(url: str) -> dict[str, Any]:
    response = httpx.get(f"{url}/_fake/state", timeout=10, verify=False)
    response.raise_for_status()
    return response.json()  # type: ignore[no-any-return]
