"""Fixtures that start Elasticsearch, the LLM simulator and friends as real processes.

Elasticsearch, by default: the real Elasticsearch 8.18.8 node built from Maven Central
(``tests/realstack/elasticsearch.py``; Java 17+ and Maven, built once and cached). Other choices:

* ``LME_ENRICH_TEST_ES=server``: our Elasticsearch test server (``tests.fakes.elasticsearch``) instead.
* ``ES_URL`` (with ``ES_USERNAME``/``ES_PASSWORD`` or ``ES_API_KEY`` and ``ES_CA_CERT``): an external
  cluster; nothing is started.

A test marked ``fake_only`` needs a control only the test server has (its module says which in one line);
it asks for ``fake_es_url`` (directly, or through ``tests.es_backends.on_test_server()``), which starts the
test server lazily beside the real node, or starts a test server of its own (TLS, authentication: the
x-pack security the Maven-built node lacks), and is skipped when ``ES_URL`` names an external cluster.
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
ES_MODE = os.environ.get("LME_ENRICH_TEST_ES", "real").strip().lower() or "real"
if ES_MODE not in ("real", "server"):
    raise pytest.UsageError(f"LME_ENRICH_TEST_ES must be 'real' or 'server', not {ES_MODE!r}")
#: Seconds the real node may take to start (JVM start and cluster formation; the build is done before).
REAL_NODE_START_TIMEOUT = 180.0


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    skip = pytest.mark.skip(reason="needs the test server's controls; ES_URL points at a real cluster")
    for item in items:
        if "fake_only" not in item.keywords:
            continue
        if _es_url_is_the_default(item):  # it would run on the real node
            raise pytest.UsageError(f"{item.nodeid} is marked fake_only but its es_url is not the test server: "
                                    "use fake_es_url or tests.es_backends.on_test_server()")
        if REAL_ES_URL:
            item.add_marker(skip)


def _es_url_is_the_default(item: pytest.Item) -> bool:
    info = getattr(item, "_fixtureinfo", None)
    defs = info.name2fixturedefs.get("es_url") if info is not None else None
    return bool(defs) and defs[-1].func.__module__ == __name__ and "fake_es_url" not in item.fixturenames  # type: ignore[attr-defined,index]


@pytest.fixture(scope="session")
def test_ca(tmp_path_factory: pytest.TempPathFactory) -> TestCA:
    return TestCA.create(tmp_path_factory.mktemp("ca"))


@pytest.fixture(scope="session")
def server_cert(test_ca: TestCA, tmp_path_factory: pytest.TempPathFactory) -> ServerCert:
    return test_ca.issue(tmp_path_factory.mktemp("certs"), "localhost")


def start_real_node() -> RunningServer:
    """The real Elasticsearch 8.18.8 node (built first, outside the start deadline)."""
    from tests.realstack import elasticsearch as es_node

    es_node.verify_pins(es_node.ensure_dist())
    return start_server("tests.realstack.elasticsearch", ["--start-timeout", str(REAL_NODE_START_TIMEOUT)],
                        timeout=REAL_NODE_START_TIMEOUT + 10)


@pytest.fixture(scope="session")
def real_es_node() -> Iterator[RunningServer]:
    """The real node, started the first time a test needs it."""
    server = start_real_node()
    yield server
    server.stop(timeout=40)


@pytest.fixture(scope="session")
def test_es_server() -> Iterator[RunningServer]:
    """Our Elasticsearch test server, started the first time a test needs it."""
    server = start_server("tests.fakes.elasticsearch")
    yield server
    server.stop()


@pytest.fixture(scope="session")
def es_server(request: pytest.FixtureRequest) -> RunningServer | None:
    """The Elasticsearch the tests use (real node or test server), or None when ES_URL names a cluster."""
    if REAL_ES_URL:
        return None
    server: RunningServer = request.getfixturevalue("test_es_server" if ES_MODE == "server" else "real_es_node")
    return server


@pytest.fixture(scope="session")
def es_url(es_server: RunningServer | None) -> str:
    return REAL_ES_URL if es_server is None else es_server.url  # type: ignore[return-value]


def client_options() -> dict[str, object]:
    opts: dict[str, object] = {}
    if os.environ.get("ES_API_KEY"):
        opts["api_key"] = os.environ["ES_API_KEY"]
    elif os.environ.get("ES_USERNAME"):
        opts["basic_auth"] = (os.environ["ES_USERNAME"], os.environ.get("ES_PASSWORD", ""))
    if os.environ.get("ES_CA_CERT"):
        opts["ca_certs"] = os.environ["ES_CA_CERT"]
    return opts


_client_options = client_options  # the name tests/es_server/test_http.py imports


@pytest.fixture(scope="session")
def es(es_url: str) -> Iterator[Elasticsearch]:
    """The official 8.x client against the test server (or the real cluster of ES_URL)."""
    client = Elasticsearch(es_url, request_timeout=30, **client_options())  # type: ignore[arg-type]
    yield client
    client.close()


@pytest.fixture(scope="session")
def fake_es_url(request: pytest.FixtureRequest) -> str:
    """URL of our test server for tests that use its controls, even when the others run on the real node;
    skipped against an external cluster (ES_URL)."""
    if REAL_ES_URL:
        pytest.skip("needs the Elasticsearch test server's controls")
    server: RunningServer = request.getfixturevalue("test_es_server")
    return server.url


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
