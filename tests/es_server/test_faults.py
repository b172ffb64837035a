"""Fault injection through the test server's ``/_fake/`` controls."""

from __future__ import annotations

import time
from collections.abc import Iterator

import httpx
import pytest
from elasticsearch import ApiError, Elasticsearch

from tests.fakes.process import start_server

# fake_only: the test server's own /_fake/faults controls.
pytestmark = pytest.mark.fake_only


@pytest.fixture
def ctl(fake_es_url: str) -> Iterator[httpx.Client]:
    with httpx.Client(base_url=fake_es_url, timeout=30) as client:
        yield client
        client.delete("/_fake/faults")


def _fault(ctl: httpx.Client, **spec: object) -> None:
    resp = ctl.post("/_fake/faults", json=spec)
    assert resp.status_code == 200, resp.text


def test_429_then_exhausted(ctl: httpx.Client, index_name: str) -> None:
    _fault(ctl, path=r"/_bulk$", method="POST", count=2, kind="429")
    body = f'{{"index": {{"_index": "{index_name}"}}}}\n{{"a": 1}}\n'
    headers = {"Content-Type": "application/x-ndjson"}
    for _ in range(2):
        resp = ctl.post("/_bulk", content=body, headers=headers)
        assert resp.status_code == 429
        assert resp.json()["error"]["type"] == "es_rejected_execution_exception"
        assert resp.headers["X-Elastic-Product"] == "Elasticsearch"
    assert ctl.post("/_bulk", content=body, headers=headers).status_code == 200
    assert ctl.get("/_fake/faults").json() == {"faults": []}


def test_method_filter(ctl: httpx.Client, index_name: str) -> None:
    _fault(ctl, path=index_name, method="PUT", count=1, kind="503")
    assert ctl.get(f"/{index_name}").status_code == 404          # GET does not match
    resp = ctl.put(f"/{index_name}")
    assert resp.status_code == 503
    assert resp.json()["error"]["type"] == "cluster_block_exception"
    assert ctl.put(f"/{index_name}").status_code == 200


def test_client_sees_503_after_its_retries(ctl: httpx.Client, es: Elasticsearch) -> None:
    _fault(ctl, path=r"^/_cluster/health$", count=10, kind="503")
    with pytest.raises(ApiError) as err:
        es.options(max_retries=1).cluster.health()
    assert err.value.meta.status == 503
    remaining = ctl.get("/_fake/faults").json()["faults"][0]["remaining"]
    assert remaining == 8        # one try plus one retry
    ctl.delete("/_fake/faults")
    assert es.cluster.health()["status"] in ("green", "yellow")


def test_delay(ctl: httpx.Client) -> None:
    _fault(ctl, path=r"^/$", method="GET", count=1, kind="delay", delay=0.3)
    start = time.monotonic()
    assert ctl.get("/").status_code == 200
    assert time.monotonic() - start >= 0.3
    start = time.monotonic()
    ctl.get("/")
    assert time.monotonic() - start < 0.3


def test_drop_closes_without_response(ctl: httpx.Client, fake_es_url: str) -> None:
    _fault(ctl, path=r"^/_count$", count=1, kind="drop")
    with httpx.Client(base_url=fake_es_url, timeout=10) as other, pytest.raises(httpx.RemoteProtocolError):
        other.get("/_count")
    assert ctl.get("/_count").status_code == 200


def test_list_clear_and_bad_spec(ctl: httpx.Client) -> None:
    _fault(ctl, path="x", count=3, kind="429")
    listed = ctl.get("/_fake/faults").json()["faults"]
    assert [(f["path"], f["remaining"], f["kind"]) for f in listed] == [("x", 3, "429")]
    assert ctl.delete("/_fake/faults").status_code == 200
    assert ctl.get("/_fake/faults").json() == {"faults": []}
    assert ctl.post("/_fake/faults", json={"kind": "explode"}).status_code == 400


def test_reset_wipes_state(index_name: str) -> None:
    # Its own server: a reset must not wipe what other tests keep on the shared one.
    server = start_server("tests.fakes.elasticsearch")
    try:
        with httpx.Client(base_url=server.url, timeout=30) as own, Elasticsearch(server.url) as es:
            es.index(index=index_name, id="1", document={"a": 1})
            es.indices.put_index_template(name=f"{index_name}-tpl", index_patterns=[f"{index_name}-zz-*"],
                                          priority=99)
            _fault(own, path="nothing-matches-this", count=1, kind="429")
            assert own.post("/_fake/reset").status_code == 200
            assert not es.indices.exists(index=index_name)
            assert own.get("/_fake/faults").json() == {"faults": []}
            assert own.get(f"/_index_template/{index_name}-tpl").status_code == 404
    finally:
        assert server.stop() == 0
