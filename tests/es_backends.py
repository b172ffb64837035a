"""Fixture overrides for a module or folder whose Elasticsearch is not the session's default one.

    es_url, es = on_test_server()   # at module level (or in a conftest.py), beside pytestmark fake_only
    es_url, es = behind_fault_proxy()   # the session's Elasticsearch behind tests.realstack.es_fault_proxy

On the test server:
``es_url`` becomes ``fake_es_url`` (the test server, started lazily beside the real node; skipped under
ES_URL) and ``es`` a client of it; ``space``, ``worker_env``, ``index_name`` and the rest follow.
With ``external=True`` an ``ES_URL`` cluster is used instead of skipping (the test server's own tests,
which are written to pass on real Elasticsearch too).
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from typing import Any

import pytest
from elasticsearch import Elasticsearch


def _client_fixture() -> Callable[..., Any]:
    @pytest.fixture(scope="module")
    def es(es_url: str) -> Iterator[Elasticsearch]:
        from tests.conftest import client_options

        client = Elasticsearch(es_url, request_timeout=30, **client_options())  # type: ignore[arg-type]
        yield client
        client.close()

    return es


def behind_fault_proxy() -> tuple[Callable[..., Any], Callable[..., Any]]:
    """``es_url`` and ``es`` through the fault proxy (fixture ``es_fault_proxy``), whose ``/_fake/faults`` is the
    test server's control API, so a fault test runs unchanged on the real node or the test server."""
    @pytest.fixture(scope="module")
    def es_url(es_fault_proxy: str) -> str:
        return es_fault_proxy

    return es_url, _client_fixture()


@pytest.fixture(scope="session")
def es_fault_proxy(es_server: Any) -> Iterator[str]:
    """The fault proxy in front of the session's Elasticsearch (imported by the conftests that use it)."""
    from tests.fakes.process import start_server

    upstream = os.environ.get("ES_URL") if es_server is None else es_server.url
    if not upstream or not upstream.startswith("http://"):
        pytest.skip("the fault proxy forwards plain HTTP only")
    proxy = start_server("tests.realstack.es_fault_proxy", ["--upstream", upstream])
    yield proxy.url
    proxy.stop()


def on_test_server(*, external: bool = False) -> tuple[Callable[..., Any], Callable[..., Any]]:
    if external:
        @pytest.fixture(scope="module")
        def es_url(request: pytest.FixtureRequest) -> str:
            return os.environ.get("ES_URL") or str(request.getfixturevalue("fake_es_url"))
    else:
        @pytest.fixture(scope="module")
        def es_url(fake_es_url: str) -> str:  # static, so a fake_only test's closure names fake_es_url
            return fake_es_url

    return es_url, _client_fixture()
