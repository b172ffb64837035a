"""The real Elasticsearch node (``python -m tests.realstack.elasticsearch``) does what the worker relies on.

The first run builds the node with Maven (about a minute with downloads; cached afterwards).
"""

from __future__ import annotations

import urllib.error
import urllib.request
from collections.abc import Iterator

import pytest
from elasticsearch import ApiError, BadRequestError, ConflictError, Elasticsearch

from tests.fakes.process import RunningServer, start_server
from tests.realstack import elasticsearch as es_node

pytestmark = pytest.mark.real_es


@pytest.fixture(scope="module")
def node() -> Iterator[RunningServer]:
    es_node.verify_pins(es_node.ensure_dist())  # build outside start_server's deadline
    server = start_server("tests.realstack.elasticsearch", timeout=120)
    yield server
    assert server.stop(timeout=40) == 0


@pytest.fixture(scope="module")
def client(node: RunningServer) -> Iterator[Elasticsearch]:
    es = Elasticsearch(node.url, request_timeout=30)
    yield es
    es.close()


@pytest.fixture
def index(request: pytest.FixtureRequest, client: Elasticsearch) -> Iterator[str]:
    name = "t-" + request.node.name.lower().replace("_", "-")[:60]
    yield name
    client.options(ignore_status=404).indices.delete(index=name)


def test_root_is_a_documented_gap_and_the_header_is_still_sent(node: RunningServer) -> None:
    """rest-root (``GET /``) is not on Maven Central and is not replaced: 404/405, product header kept."""
    for method in ("GET", "HEAD"):
        request = urllib.request.Request(node.url + "/", method=method)
        with pytest.raises(urllib.error.HTTPError) as caught:
            urllib.request.urlopen(request, timeout=10)
        assert caught.value.code in (404, 405)
        assert caught.value.headers["X-Elastic-Product"] == "Elasticsearch"
        caught.value.close()


def test_client_health_version_and_ping_gap(client: Elasticsearch) -> None:
    assert client.cluster.health(wait_for_status="yellow", timeout="10s")["status"] in ("yellow", "green")
    versions = {n["version"] for n in client.nodes.info(filter_path="nodes.*.version")["nodes"].values()}
    assert versions == {"8.18.8"}
    assert client.ping() is False  # HEAD / is rest-root's: the documented gap
    with pytest.raises(ApiError):
        client.info()


def test_conditional_update_conflicts(client: Elasticsearch, index: str) -> None:
    created = client.index(index=index, id="a", document={"status": "new", "n": 1}, refresh=True)
    updated = client.update(index=index, id="a", doc={"status": "queued"},
                            if_seq_no=created["_seq_no"], if_primary_term=created["_primary_term"])
    assert updated["result"] == "updated"
    with pytest.raises(ConflictError):
        client.update(index=index, id="a", doc={"status": "stale"},
                      if_seq_no=created["_seq_no"], if_primary_term=created["_primary_term"])
    client.indices.refresh(index=index)
    hits = client.search(index=index, query={"term": {"status.keyword": "queued"}},
                         seq_no_primary_term=True)["hits"]["hits"]
    assert [h["_id"] for h in hits] == ["a"]
    assert hits[0]["_seq_no"] == updated["_seq_no"]


def test_bulk_reports_per_item_conflicts(client: Elasticsearch, index: str) -> None:
    first = client.index(index=index, id="a", document={"n": 1})
    response = client.bulk(operations=[
        {"update": {"_index": index, "_id": "a", "if_seq_no": first["_seq_no"],
                    "if_primary_term": first["_primary_term"]}},
        {"doc": {"n": 2}},
        {"update": {"_index": index, "_id": "a", "if_seq_no": first["_seq_no"],
                    "if_primary_term": first["_primary_term"]}},
        {"doc": {"n": 3}},
        {"index": {"_index": index, "_id": "b"}},
        {"n": 4},
    ])
    assert response["errors"] is True
    assert [item[next(iter(item))]["status"] for item in response["items"]] == [200, 409, 201]
    assert client.get(index=index, id="a")["_source"] == {"n": 2}


def test_point_in_time_and_search_after(client: Elasticsearch, index: str) -> None:
    client.bulk(operations=[x for i in range(25) for x in ({"index": {"_index": index, "_id": str(i)}}, {"n": i})],
                refresh=True)
    pit = client.open_point_in_time(index=index, keep_alive="1m", expand_wildcards="open,hidden")["id"]
    seen: list[int] = []
    after: list[object] | None = None
    try:
        while True:
            extra = {"search_after": after} if after is not None else {}
            page = client.search(pit={"id": pit, "keep_alive": "1m"}, sort=[{"n": "asc"}], size=10,
                                 track_total_hits=False, **extra)  # type: ignore[arg-type]
            pit = page["pit_id"]
            hits = page["hits"]["hits"]
            if not hits:
                break
            seen += [h["_source"]["n"] for h in hits]
            after = hits[-1]["sort"]
    finally:
        assert client.close_point_in_time(id=pit)["succeeded"] is True
    assert seen == list(range(25))


def test_the_worker_aggregations(client: Elasticsearch, index: str) -> None:
    client.indices.create(index=index, mappings={"properties": {
        "status": {"type": "keyword"}, "duration_ms": {"type": "long"}, "@timestamp": {"type": "date"}}})
    docs = [{"status": "failed" if i % 4 == 0 else "done", "duration_ms": i * 10,
             "@timestamp": f"2026-01-0{1 + i % 3}T00:00:00Z"} for i in range(1, 21)]
    client.bulk(operations=[x for d in docs for x in ({"index": {"_index": index}}, d)], refresh=True)
    response = client.search(index=index, size=0, track_total_hits=True, aggs={
        "status": {"terms": {"field": "status", "size": 10}},
        "oldest": {"min": {"field": "@timestamp"}},
        "failed": {"filter": {"term": {"status": "failed"}}},
        "mean": {"avg": {"field": "duration_ms"}},
        "p95": {"percentiles": {"field": "duration_ms", "percents": [95]}},
        "per_day": {"date_histogram": {"field": "@timestamp", "calendar_interval": "day"}},
    })
    aggs = response["aggregations"]
    assert {b["key"]: b["doc_count"] for b in aggs["status"]["buckets"]} == {"done": 15, "failed": 5}
    assert aggs["oldest"]["value_as_string"] == "2026-01-01T00:00:00.000Z"
    assert aggs["failed"]["doc_count"] == 5
    assert aggs["mean"]["value"] == pytest.approx(105.0)
    assert 180 <= aggs["p95"]["values"]["95.0"] <= 200
    assert [b["doc_count"] for b in aggs["per_day"]["buckets"]] == [6, 7, 7]


def test_template_write_alias_and_hidden_backing_index(client: Elasticsearch) -> None:
    client.indices.put_index_template(name="t-hist", index_patterns=["t-hist-*"], priority=200,
                                      template={"mappings": {"dynamic": "strict",
                                                             "properties": {"n": {"type": "long"}}}})
    backing = ".internal.t-alerts-default-000001"
    try:
        client.indices.create(index="t-hist-000001", aliases={"t-hist": {"is_write_index": True}})
        client.index(index="t-hist", document={"n": 1}, refresh=True)
        assert client.count(index="t-hist")["count"] == 1
        client.indices.create(index=backing, settings={"index.hidden": True},
                              aliases={".t-alerts-default": {"is_write_index": True, "is_hidden": True}})
        client.index(index=".t-alerts-default", id="x", document={"a": 1}, refresh=True)
        assert client.count(index="*t-alerts-*")["count"] == 0  # hidden: not matched by default
        assert client.count(index="*t-alerts-*", expand_wildcards="open,hidden")["count"] == 1
        assert client.count(index=".t-alerts-*")["count"] == 1  # a pattern starting with "." does match it
    finally:
        client.options(ignore_status=404).indices.delete(index="t-hist-000001")
        client.options(ignore_status=404).indices.delete(index=backing)
        client.options(ignore_status=404).indices.delete_index_template(name="t-hist")


def test_update_by_query_is_not_available(client: Elasticsearch, index: str) -> None:
    """The reindex module is not published to Maven Central; the worker does not use it."""
    client.index(index=index, id="a", document={"n": 1}, refresh=True)
    with pytest.raises(BadRequestError, match="no handler found"):
        client.update_by_query(index=index, query={"match_all": {}})
