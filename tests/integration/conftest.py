"""Fixtures for pipeline tests: LLM simulator over HTTPS, a fresh Kibana space, the worker's environment."""

from __future__ import annotations

import os
import ssl
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
import redis
from elasticsearch import Elasticsearch

from tests import kibana
from tests.fakes.process import RunningServer, start_server
from tests.fakes.tls import ServerCert, TestCA
from worker.settings import Settings, load_settings

LLM_KEY = "sk-test-pipeline-key"
# Fast enough for a test suite, same shape as LME's CPU (prompt processing much faster than generation).
FAST_LLM = ["--pp-rate", "40000", "--tg-rate", "4000", "--slots", "2", "--overhead-ms", "1"]


class LLMSim:
    """The simulator's URL and its /_sim controls."""

    def __init__(self, server: RunningServer, ca: Path) -> None:
        self.url = server.url
        self.server = server
        self.http = httpx.Client(base_url=server.url, verify=ssl.create_default_context(cafile=str(ca)), timeout=30)

    def requests(self) -> list[dict[str, Any]]:
        data = self.http.get("/_sim/requests").json()
        return data["requests"] if isinstance(data, dict) else data

    def chat_requests(self) -> list[dict[str, Any]]:
        return [r for r in self.requests() if "chat/completions" in str(r.get("path", ""))]

    def clear(self) -> None:
        self.http.delete("/_sim/requests").raise_for_status()
        self.http.delete("/_sim/faults").raise_for_status()

    def fault(self, **spec: Any) -> None:
        self.http.post("/_sim/faults", json=spec).raise_for_status()

    def set_models(self, models: list[str]) -> None:
        self.http.post("/_sim/models", json={"models": models}).raise_for_status()


@pytest.fixture(scope="session")
def llm_cert(test_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> ServerCert:
    return test_ca.issue(tmp_path_factory.mktemp("llm-cert"), "lme-litellm", ("localhost", "127.0.0.1"))


def start_llm(cert: ServerCert, flags: list[str]) -> RunningServer:
    """The simulator over HTTPS with LME's kind of certificate, with our key and these rate flags."""
    return start_server("tests.fakes.llm", ["--api-key", LLM_KEY, "--tls-cert", str(cert.cert),
                                            "--tls-key", str(cert.key), *flags])


@pytest.fixture(scope="module")
def llm(llm_cert: ServerCert, test_ca: TestCA) -> Iterator[LLMSim]:
    server = start_llm(llm_cert, FAST_LLM)
    sim = LLMSim(server, test_ca.cert_path)
    yield sim
    sim.http.close()
    server.stop()


@pytest.fixture
def slow_llm(llm_cert: ServerCert) -> Iterator[RunningServer]:
    """A model slow enough (seconds per answer, one slot) to act while an alert is being assessed."""
    server = start_llm(llm_cert, ["--pp-rate", "2000", "--tg-rate", "40", "--slots", "1"])
    yield server
    server.stop()


@pytest.fixture
def paced_llm(llm_cert: ServerCert, test_ca: TestCA) -> Iterator[LLMSim]:
    """A model slow enough (a second or so an answer) that a kill or an analyst lands while alerts are assessed."""
    server = start_llm(llm_cert, ["--pp-rate", "4000", "--tg-rate", "100", "--slots", "2"])
    sim = LLMSim(server, test_ca.cert_path)
    yield sim
    sim.http.close()
    server.stop()


@pytest.fixture
def space(es: Elasticsearch) -> Iterator[kibana.Space]:
    """A fresh Kibana space with its alert template, hidden index and write alias."""
    ks = kibana.Space("t" + uuid.uuid4().hex[:10])
    kibana.install(es, ks)
    yield ks
    kibana.uninstall(es, ks)


@pytest.fixture
def clean_redis(redis_url: str) -> str:
    """Redis emptied of queued tasks and state from earlier tests."""
    client = redis.Redis.from_url(redis_url)
    client.flushdb()
    client.close()
    return redis_url


@pytest.fixture
def client(clean_redis: str) -> Iterator[redis.Redis]:
    """A client of this test's emptied Redis, for tests that call the worker's functions in-process."""
    conn = redis.Redis.from_url(clean_redis)
    yield conn
    conn.close()


@pytest.fixture
def settings_with(clean_redis: str, es_url: str, space: kibana.Space,
                  monkeypatch: pytest.MonkeyPatch) -> Callable[..., Settings]:
    """``settings_with(**env)``: in-process settings on this test's Elasticsearch, Redis and space, plus ``env``."""

    def make(**env: str) -> Settings:
        for name, value in {"LME_ENRICH_ES_URL": es_url, "LME_ENRICH_ES_USERNAME": "u", "LME_ENRICH_ES_PASSWORD": "p",
                            "LME_ENRICH_LLM_API_KEY": "k", "LME_ENRICH_REDIS_URL": clean_redis,
                            "LME_ENRICH_ALERT_INDEX": space.pattern, "LME_ENRICH_DISPATCH_AHEAD": "4", **env}.items():
            monkeypatch.setenv(name, value)
        return load_settings()

    return make


@pytest.fixture
def worker_env(es_url: str, llm: LLMSim, clean_redis: str, space: kibana.Space, test_ca: TestCA) -> dict[str, str]:
    """The LME_ENRICH_* environment a worker, beat or preflight needs for this test."""
    llm.clear()
    env = {
        "LME_ENRICH_ES_URL": es_url,
        "LME_ENRICH_LLM_URL": llm.url,
        "LME_ENRICH_LLM_API_KEY": LLM_KEY,
        "LME_ENRICH_LLM_CA_CERT": str(test_ca.cert_path),
        "LME_ENRICH_REDIS_URL": clean_redis,
        "LME_ENRICH_ALERT_INDEX": space.pattern,
        "LME_ENRICH_POLL_INTERVAL": "1s",
        "LME_ENRICH_BATCH_SIZE": "50",
        "LME_ENRICH_CONCURRENCY": "2",
        "LME_ENRICH_LLM_READ_TIMEOUT": "30s",
        "LME_ENRICH_LLM_RETRY_WAIT_MAX": "2s",
        "LME_ENRICH_RETRY_BACKOFF_MAX": "3s",
        "LME_ENRICH_CLAIM_LEASE": "5m",
    }
    return {**env, **es_credentials_env()}


def es_credentials_env() -> dict[str, str]:
    """The worker's Elasticsearch credentials: ES_API_KEY, ES_USERNAME/ES_PASSWORD, ES_CA_CERT for an ES_URL of
    yours; a placeholder password for the test node and server, which do not check it."""
    env = {"LME_ENRICH_ES_API_KEY": os.environ["ES_API_KEY"]} if os.environ.get("ES_API_KEY") else {
        "LME_ENRICH_ES_USERNAME": os.environ.get("ES_USERNAME", "elastic"),
        "LME_ENRICH_ES_PASSWORD": os.environ.get("ES_PASSWORD", "unused-by-the-test-server")}
    if os.environ.get("ES_CA_CERT"):
        env["LME_ENRICH_ES_CA_CERT"] = os.environ["ES_CA_CERT"]
    return env
