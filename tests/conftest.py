"""Fixtures that start our Elasticsearch test server and LLM simulator as real processes.

Set ``ES_URL`` (with ``ES_USERNAME``/``ES_PASSWORD`` or ``ES_API_KEY`` and ``ES_CA_CERT``) to run
every Elasticsearch test against a real cluster instead; tests that need the test server's own
controls (fault injection) are marked ``fake_only`` and skipped there.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests.fakes.process import RunningServer, start_server
from tests.fakes.tls import ServerCert, TestCA

REAL_ES_URL = os.environ.get("ES_URL")


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    if not REAL_ES_URL:
        return
    skip = pytest.mark.skip(reason="needs the test server's controls; ES_URL points at a real cluster")
    for item in items:
        if "fake_only" in item.keywords:
            item.add_marker(skip)


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def server_cert(test_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> ServerCert:
    return test_ca.issue(tmp_path_factory.mktemp("certs"), "localhost")


@pytest.fixture(scope="session")
def es_server() -> Iterator[RunningServer | None]:
    """The Elasticsearch test server over plain HTTP, or None when ES_URL names a real cluster."""
    if REAL_ES_URL:
        yield None
        return
    server = start_server("tests.fakes.elasticsearch")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def es_url(es_server: RunningServer | None) -> str:
    return REAL_ES_URL if es_server is None else es_server.url  # type: ignore[return-value]


def _client_options() -> dict[str, object]:
    opts: dict[str, object] = {}
    if os.environ.get("ES_API_KEY"):
        opts["api_key"] = os.environ["ES_API_KEY"]
    elif os.environ.get("ES_USERNAME"):
        opts["basic_auth"] = (os.environ["ES_USERNAME"], os.environ.get("ES_PASSWORD", ""))
    if os.environ.get("ES_CA_CERT"):
        opts["ca_certs"] = os.environ["ES_CA_CERT"]
    return opts


@pytest.fixture(scope="session")
def es(es_url: str) -> Iterator[Elasticsearch]:
    """The official 8.x client against the test server (or the real cluster of ES_URL)."""
    client = Elasticsearch(es_url, request_timeout=30, **_client_options())  # type: ignore[arg-type]
    yield client
    client.close()


@pytest.fixture
def fake_es_url(es_server: RunningServer | None) -> str:
    """URL of our test server for tests that use its controls; skipped against a real cluster."""
    if es_server is None:
        pytest.skip("needs the Elasticsearch test server's controls")
    return es_server.url


@pytest.fixture
def index_name(request: pytest.FixtureRequest, es: Elasticsearch) -> Iterator[str]:
    """A fresh lower-case index name unique to the test; every index it prefixes is deleted afterwards."""
    name = "t-" + request.node.name.lower().replace("[", "-").replace("]", "").replace("_", "-")[:60]
    yield name
    # ES 8 refuses wildcard deletes (action.destructive_requires_name): delete by concrete name.
    found = es.indices.get(index=f"{name}*", expand_wildcards="all", allow_no_indices=True)
    for concrete in found:
        es.options(ignore_status=404).indices.delete(index=concrete)


@pytest.fixture(scope="session")
def repo_root() -> Path:
    return Path(__file__).resolve().parents[1]


@pytest.fixture(scope="session")
def redis_url() -> str:
    """The Redis the tests use (scripts/test makes sure one answers); a DB of its own, emptied first."""
    url = os.environ.get("LME_ENRICH_REDIS_URL", "redis://127.0.0.1:6379/15")
    import redis

    client = redis.Redis.from_url(url)
    try:
        client.ping()
    except redis.ConnectionError as exc:
        pytest.fail(f"no Redis answers at {url} ({exc}); run the tests with scripts/test, which starts one")
    client.flushdb()
    client.close()
    return url


@pytest.fixture
def redis_client(redis_url: str) -> Iterator[object]:
    import redis

    client = redis.Redis.from_url(redis_url)
    yield client
    client.close()
