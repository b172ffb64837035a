"""End-to-end: metric and bucket aggregations as ES renders them."""

from __future__ import annotations

from typing import Any

import pytest
from elasticsearch import BadRequestError, Elasticsearch

MAPPING = {"properties": {"status": {"type": "keyword"}, "ms": {"type": "long"}, "ts": {"type": "date"},
                          "text": {"type": "text"}}}
DOCS = [
    {"status": "done", "ms": 100, "ts": "2026-03-01T10:00:00Z", "text": "a b"},
    {"status": "done", "ms": 300, "ts": "2026-03-01T12:00:00Z"},
    {"status": "error", "ms": 200, "ts": "2026-03-02T10:00:00Z"},
    {"status": "pending"},
]


@pytest.fixture
def idx(es: Elasticsearch, index_name: str) -> str:
    es.indices.create(index=index_name, mappings=MAPPING)
    ops: list[dict[str, Any]] = []
    for i, doc in enumerate(DOCS):
        ops += [{"index": {"_index": index_name, "_id": str(i)}}, doc]
    assert not es.bulk(operations=ops, refresh=True)["errors"]
    return index_name


def aggs(es: Elasticsearch, index: str, spec: dict[str, Any], **kw: Any) -> dict[str, Any]:
    result: dict[str, Any] = es.search(index=index, size=0, aggs=spec, **kw)["aggregations"]
    return result


def test_metrics(es: Elasticsearch, idx: str) -> None:
    got = aggs(es, idx, {
        "avg": {"avg": {"field": "ms"}}, "sum": {"sum": {"field": "ms"}}, "min": {"min": {"field": "ms"}},
        "max": {"max": {"field": "ms"}}, "count": {"value_count": {"field": "ms"}},
        "card": {"cardinality": {"field": "status"}}, "stats": {"stats": {"field": "ms"}},
        "latest": {"max": {"field": "ts"}}, "none": {"avg": {"field": "not_there"}},
    })
    assert got["avg"] == {"value": 200.0}
    assert got["sum"] == {"value": 600.0}
    assert got["min"] == {"value": 100.0}
    assert got["max"] == {"value": 300.0}
    assert got["count"] == {"value": 3}
    assert got["card"] == {"value": 3}
    assert got["stats"] == {"count": 3, "min": 100.0, "max": 300.0, "avg": 200.0, "sum": 600.0}
    assert got["latest"] == {"value": 1772445600000.0,
                             "value_as_string": "2026-03-02T10:00:00.000Z"}
    assert got["none"] == {"value": None}


def test_terms_options_and_sub_aggregations(es: Elasticsearch, idx: str) -> None:
    got = aggs(es, idx, {
        "by_status": {"terms": {"field": "status", "size": 2}, "aggs": {"avg_ms": {"avg": {"field": "ms"}}}},
        "by_key": {"terms": {"field": "status", "order": {"_key": "desc"}}},
        "with_missing": {"terms": {"field": "ms", "missing": 0}},
    })
    assert got["by_status"]["buckets"] == [
        {"key": "done", "doc_count": 2, "avg_ms": {"value": 200.0}},
        {"key": "error", "doc_count": 1, "avg_ms": {"value": 200.0}},
    ]
    assert got["by_status"]["sum_other_doc_count"] == 1
    assert [b["key"] for b in got["by_key"]["buckets"]] == ["pending", "error", "done"]
    assert [(b["key"], b["doc_count"]) for b in got["with_missing"]["buckets"]] == [
        (0, 1), (100, 1), (200, 1), (300, 1)]


def test_filter_filters_and_query_scope(es: Elasticsearch, idx: str) -> None:
    got = aggs(es, idx, {
        "slow": {"filter": {"range": {"ms": {"gte": 200}}}, "aggs": {"n": {"value_count": {"field": "ms"}}}},
        "split": {"filters": {"filters": {"ok": {"term": {"status": "done"}}, "bad": {"term": {"status": "error"}}}}},
    }, query={"exists": {"field": "ms"}})
    assert got["slow"] == {"doc_count": 2, "n": {"value": 2}}
    assert got["split"] == {"buckets": {"ok": {"doc_count": 2}, "bad": {"doc_count": 1}}}


def test_daily_histogram_with_empty_bucket_and_format(es: Elasticsearch, idx: str) -> None:
    got = aggs(es, idx, {"per_day": {"date_histogram": {
        "field": "ts", "calendar_interval": "day", "format": "yyyy-MM-dd",
        "extended_bounds": {"min": "2026-02-28", "max": "2026-03-02"}}}})
    assert [(b["key_as_string"], b["doc_count"]) for b in got["per_day"]["buckets"]] == [
        ("2026-02-28", 0), ("2026-03-01", 2), ("2026-03-02", 1)]


def test_aggregation_errors(es: Elasticsearch, idx: str) -> None:
    with pytest.raises(BadRequestError) as info:
        aggs(es, idx, {"t": {"terms": {"field": "text"}}})
    assert "Text fields are not optimised" in str(info.value.body)
    with pytest.raises(BadRequestError) as info:
        aggs(es, idx, {"t": {"nope": {"field": "status"}}})
    err = info.value.body["error"]
    assert err["type"] == "parsing_exception"
    assert err["reason"].startswith("Unknown aggregation type [nope]")
