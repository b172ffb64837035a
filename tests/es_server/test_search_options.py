"""End-to-end: sort, paging, totals, `_source` filtering and hit metadata."""

from __future__ import annotations

from typing import Any

import pytest
from elasticsearch import BadRequestError, Elasticsearch

MAPPING = {"properties": {"n": {"type": "long"}, "k": {"type": "keyword"}, "ts": {"type": "date"},
                          "d": {"type": "double"}}}


@pytest.fixture
def idx(es: Elasticsearch, index_name: str) -> str:
    es.indices.create(index=index_name, mappings=MAPPING)
    docs: list[dict[str, Any]] = [
        {"n": 5, "k": "b", "ts": "2026-01-01T00:00:00Z", "obj": {"a": 1, "b": 2}, "flat.x": 1},
        {"n": 1, "k": "a", "ts": "2026-01-03T00:00:00Z", "obj": {"a": 3}},
        {"n": [2, 9], "k": "c", "ts": "2026-01-02T00:00:00Z"},
        {"k": "d"},
    ]
    ops: list[dict[str, Any]] = []
    for i, doc in enumerate(docs):
        ops += [{"index": {"_index": index_name, "_id": str(i)}}, doc]
    assert not es.bulk(operations=ops, refresh=True)["errors"]
    return index_name


def hit_ids(resp: Any) -> list[str]:
    return [h["_id"] for h in resp["hits"]["hits"]]


def test_sort_orders_and_missing(es: Elasticsearch, idx: str) -> None:
    assert hit_ids(es.search(index=idx, sort=[{"n": "asc"}])) == ["1", "2", "0", "3"]
    resp = es.search(index=idx, sort=[{"n": "desc"}])
    assert hit_ids(resp) == ["2", "0", "1", "3"]  # desc uses the max of a multi-valued field
    assert resp["hits"]["hits"][0]["sort"] == [9]
    assert hit_ids(es.search(index=idx, sort=[{"n": {"order": "asc", "missing": "_first"}}]))[0] == "3"
    assert hit_ids(es.search(index=idx, sort=[{"n": {"order": "asc", "mode": "max"}}])) == ["1", "0", "2", "3"]
    assert hit_ids(es.search(index=idx, sort=["k"])) == ["1", "0", "2", "3"]
    resp = es.search(index=idx, sort=[{"ts": "desc"}], size=1)
    assert resp["hits"]["hits"][0]["sort"] == [1767398400000]
    resp = es.search(index=idx, sort=[{"k": "desc"}], size=1)
    assert resp["hits"]["hits"][0]["sort"] == ["d"]


def test_from_size_and_result_window(es: Elasticsearch, idx: str) -> None:
    assert hit_ids(es.search(index=idx, sort=["k"], from_=1, size=2)) == ["0", "2"]
    resp = es.search(index=idx, size=0)
    assert resp["hits"]["hits"] == [] and resp["hits"]["total"]["value"] == 4
    with pytest.raises(BadRequestError) as info:
        es.search(index=idx, from_=9999, size=2)
    assert "Result window is too large" in str(info.value.body)


def test_search_after_arity_and_from(es: Elasticsearch, idx: str) -> None:
    with pytest.raises(BadRequestError) as info:
        es.search(index=idx, sort=["k"], search_after=["a", 1])
    assert "search_after has 2 value(s) but sort has 1." in str(info.value.body)
    resp = es.search(index=idx, sort=["k"], search_after=["b"])
    assert hit_ids(resp) == ["2", "3"]


def test_track_total_hits(es: Elasticsearch, idx: str) -> None:
    assert es.search(index=idx, track_total_hits=2)["hits"]["total"] == {"value": 2, "relation": "gte"}
    assert es.search(index=idx, track_total_hits=4)["hits"]["total"] == {"value": 4, "relation": "eq"}
    assert "total" not in es.search(index=idx, track_total_hits=False)["hits"]


def test_source_filtering_and_metadata(es: Elasticsearch, idx: str) -> None:
    resp = es.search(index=idx, query={"ids": {"values": ["0"]}}, source_includes=["obj.a", "flat.*"])
    assert resp["hits"]["hits"][0]["_source"] == {"obj": {"a": 1}, "flat.x": 1}
    resp = es.search(index=idx, query={"ids": {"values": ["0"]}}, source={"excludes": ["obj"]})
    assert resp["hits"]["hits"][0]["_source"] == {"n": 5, "k": "b", "ts": "2026-01-01T00:00:00Z", "flat.x": 1}
    resp = es.search(index=idx, query={"ids": {"values": ["0"]}}, source=False, seq_no_primary_term=True,
                     version=True)
    hit = resp["hits"]["hits"][0]
    assert "_source" not in hit
    assert hit["_version"] == 1 and isinstance(hit["_seq_no"], int) and hit["_primary_term"] == 1


def test_count_with_query(es: Elasticsearch, idx: str) -> None:
    assert es.count(index=idx, query={"range": {"n": {"gte": 2}}})["count"] == 2
