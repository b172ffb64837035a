"""End-to-end: query DSL semantics and errors through the official client."""

from __future__ import annotations

from typing import Any

import pytest
from elasticsearch import BadRequestError, Elasticsearch

MAPPING = {
    "properties": {
        "title": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
        "tag": {"type": "keyword"},
        "n": {"type": "long"},
        "ts": {"type": "date"},
        "ok": {"type": "boolean"},
        "host": {"properties": {"name": {"type": "keyword"}}},
    }
}
DOCS = {
    "1": {"title": "Quick brown fox", "tag": ["alpha", "beta"], "n": 3, "ts": "2026-01-01T00:00:00Z", "ok": True,
          "host": {"name": "web-1"}},
    "2": {"title": "Lazy dog", "tag": "beta", "n": 1, "ts": "2026-01-01T01:30:00Z", "host.name": "web-2"},
    "3": {"title": "quick dog", "n": 2, "ts": "2026-01-02T00:00:00Z", "ok": False},
    "4": {"tag": "gamma"},
}


@pytest.fixture
def idx(es: Elasticsearch, index_name: str) -> str:
    es.indices.create(index=index_name, mappings=MAPPING)
    ops: list[dict[str, Any]] = []
    for doc_id, doc in DOCS.items():
        ops += [{"index": {"_index": index_name, "_id": doc_id}}, doc]
    assert not es.bulk(operations=ops, refresh=True)["errors"]
    return index_name


def ids(es: Elasticsearch, index: str, query: dict[str, Any]) -> list[str]:
    resp = es.search(index=index, query=query, size=20)
    return sorted(h["_id"] for h in resp["hits"]["hits"])


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"term": {"title": "quick"}}, ["1", "3"]),
        ({"term": {"title": "Quick"}}, []),
        ({"term": {"title.keyword": "Lazy dog"}}, ["2"]),
        ({"term": {"tag": {"value": "BETA", "case_insensitive": True}}}, ["1", "2"]),
        ({"term": {"n": "2"}}, ["3"]),
        ({"term": {"ok": True}}, ["1"]),
        ({"terms": {"tag": ["alpha", "gamma"]}}, ["1", "4"]),
        ({"match": {"title": "QUICK dog"}}, ["1", "2", "3"]),
        ({"match": {"title": {"query": "quick dog", "operator": "and"}}}, ["3"]),
        ({"match": {"tag": "beta"}}, ["1", "2"]),
        ({"match_phrase": {"title": "brown fox"}}, ["1"]),
        ({"match_phrase": {"title": "fox brown"}}, []),
        ({"prefix": {"tag": "gam"}}, ["4"]),
        ({"wildcard": {"host.name": {"value": "web-*"}}}, ["1", "2"]),
        ({"ids": {"values": ["2", "4", "99"]}}, ["2", "4"]),
        ({"exists": {"field": "host"}}, ["1", "2"]),
        ({"exists": {"field": "ok"}}, ["1", "3"]),
        ({"range": {"n": {"gte": 2}}}, ["1", "3"]),
        ({"range": {"ts": {"lte": "2026-01-01"}}}, ["1", "2"]),
        ({"range": {"ts": {"gt": "2026-01-01"}}}, ["3"]),
        ({"range": {"ts": {"gte": "2026-01-01||+1h", "lt": "2026-01-02"}}}, ["2"]),
        ({"range": {"ts": {"gte": "01/01/2026", "format": "dd/MM/yyyy", "time_zone": "+01:00"}}}, ["1", "2", "3"]),
        ({"bool": {"should": [{"term": {"tag": "alpha"}}, {"term": {"tag": "beta"}}],
                   "minimum_should_match": 2}}, ["1"]),
        ({"bool": {"must_not": [{"exists": {"field": "tag"}}]}}, ["3"]),
        ({"bool": {"filter": [{"term": {"tag": "beta"}}], "should": [{"term": {"n": 99}}]}}, ["1", "2"]),
        ({"term": {"not_mapped": "x"}}, []),
        ({"match_none": {}}, []),
    ],
)
def test_query_matches(es: Elasticsearch, idx: str, query: dict[str, Any], expected: list[str]) -> None:
    assert ids(es, idx, query) == expected


def test_scores_match_all_filter_and_sorted(es: Elasticsearch, idx: str) -> None:
    resp = es.search(index=idx, query={"match_all": {}})
    assert {h["_score"] for h in resp["hits"]["hits"]} == {1.0}
    assert resp["hits"]["max_score"] == 1.0
    resp = es.search(index=idx, query={"constant_score": {"filter": {"term": {"tag": "beta"}}, "boost": 2.5}})
    assert {h["_score"] for h in resp["hits"]["hits"]} == {2.5}
    resp = es.search(index=idx, query={"match": {"title": "quick"}})
    assert all(h["_score"] > 0 for h in resp["hits"]["hits"])
    resp = es.search(index=idx, sort=[{"n": "asc"}])
    assert resp["hits"]["max_score"] is None
    assert all(h["_score"] is None for h in resp["hits"]["hits"])


def test_unknown_query_is_parsing_exception(es: Elasticsearch, idx: str) -> None:
    with pytest.raises(BadRequestError) as info:
        es.search(index=idx, query={"no_such_query": {}})
    err = info.value.body["error"]
    assert err["type"] == "parsing_exception"
    assert err["reason"] == "unknown query [no_such_query]"


def test_bad_date_in_range_fails_all_shards(es: Elasticsearch, idx: str) -> None:
    with pytest.raises(BadRequestError) as info:
        es.search(index=idx, query={"range": {"ts": {"gte": "not-a-date"}}})
    err = info.value.body["error"]
    assert err["type"] == "search_phase_execution_exception"
    assert err["reason"] == "all shards failed"
    assert err["failed_shards"][0]["reason"]["type"] == "parse_exception"
    assert "failed to parse date field [not-a-date]" in err["failed_shards"][0]["reason"]["reason"]


def test_bad_number_in_term_is_query_shard_exception(es: Elasticsearch, idx: str) -> None:
    with pytest.raises(BadRequestError) as info:
        es.search(index=idx, query={"term": {"n": "abc"}})
    err = info.value.body["error"]
    assert err["type"] == "search_phase_execution_exception"
    assert err["root_cause"][0]["type"] == "query_shard_exception"
    assert err["root_cause"][0]["reason"] == 'failed to create query: For input string: "abc"'


def test_count(es: Elasticsearch, idx: str) -> None:
    assert es.count(index=idx)["count"] == 4
    assert es.count(index=idx, query={"term": {"tag": "beta"}})["count"] == 2
