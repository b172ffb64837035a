"""Fixtures that start the LLM simulator as a real child process."""

from __future__ import annotations

import time
from collections.abc import Callable, Iterator
from typing import Any

import httpx
import pytest

from tests.fakes.process import RunningServer, start_server

API_KEY = "sk-lme-llama-proxy"
MODEL = "lfm2.5-1.2b-instruct"
AUTH = {"Authorization": f"Bearer {API_KEY}"}
# Fast rates keep the suite quick; ratios, not absolutes, are what the latency tests check.
FAST = ["--pp-rate", "20000", "--tg-rate", "4000", "--overhead-ms", "0"]

StartSim = Callable[..., RunningServer]

# One pooled client: creating an httpx.Client per call costs ~30 ms (it loads the CA bundle).
_CLIENT = httpx.Client(timeout=30.0)


@pytest.fixture
def start_sim() -> Iterator[StartSim]:
    """Start a simulator with extra CLI args; every one started is stopped after the test."""
    started: list[RunningServer] = []

    def start(*args: str) -> RunningServer:
        server = start_server("tests.fakes.llm", list(args))
        started.append(server)
        return server

    yield start
    for server in started:
        assert server.stop() == 0


@pytest.fixture(scope="module")
def shared_sim() -> Iterator[RunningServer]:
    """One fast simulator for tests that leave no state behind (faults are cleared after each)."""
    server = start_server("tests.fakes.llm", FAST)
    yield server
    assert server.stop() == 0


@pytest.fixture
def sim_url(shared_sim: RunningServer) -> Iterator[str]:
    yield shared_sim.url
    httpx.delete(f"{shared_sim.url}/_sim/faults")


def chat_body(content: str = "Suspicious powershell on host WIN-01 by user bob", **extra: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "model": MODEL,
        "messages": [
            {"role": "system", "content": "You are a SOC analyst. Assess the alert."},
            {"role": "user", "content": content},
        ],
    }
    body.update(extra)
    return body


def post_chat(url: str, body: dict[str, Any], *, timeout: float = 30.0,
              headers: dict[str, str] | None = None) -> httpx.Response:
    return _CLIENT.post(f"{url}/v1/chat/completions", json=body, headers=headers or AUTH, timeout=timeout)


def requests_log(url: str) -> list[dict[str, Any]]:
    return list(_CLIENT.get(f"{url}/_sim/requests").json()["requests"])


def stats(url: str) -> dict[str, Any]:
    return dict(_CLIENT.get(f"{url}/_sim/stats").json())


def wait_until(predicate: Callable[[], bool], timeout: float = 10.0, what: str = "condition") -> None:
    """Poll ``predicate`` until true, failing after ``timeout`` seconds."""
    deadline = time.monotonic() + timeout
    while not predicate():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.01)  # sync-ok: polling interval of a deadline-bounded wait
