"""Pure unit tests of less common search features: fields API, collapse, named queries, precision rules."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.elasticsearch.errors import ESError
from tests.fakes.elasticsearch.mapping import IndexMapping
from tests.fakes.elasticsearch.model import StoredDoc
from tests.fakes.elasticsearch.search import execute_search


def index(mapping: dict[str, Any], sources: list[dict[str, Any]], name: str = "i") -> tuple[
        list[StoredDoc], dict[str, IndexMapping]]:
    m = IndexMapping.from_body(mapping)
    docs = []
    for i, src in enumerate(sources):
        m.prepare_document(src)
        docs.append(StoredDoc(name, str(i + 1), src, i, 1, i + 1, i, extra={"indexed": m.index_document(src)}))
    return docs, {name: m}


def hits(docs: list[StoredDoc], mappings: dict[str, IndexMapping], body: dict[str, Any]) -> list[dict[str, Any]]:
    result: list[dict[str, Any]] = execute_search(docs, body, mappings)["hits"]["hits"]
    return result


def test_fields_group_nested_objects_and_format_dates() -> None:
    docs, m = index(
        {"properties": {"p": {"type": "nested", "properties": {"k": {"type": "keyword"}, "n": {"type": "float"}}},
                        "d": {"type": "date"}}},
        [{"p": [{"k": "a", "n": 1.55}, {"k": "b"}], "d": "1990-12-29T22:30:00Z", "free": {"x": 1}}],
    )
    got = hits(docs, m, {"_source": False, "fields": ["*", {"field": "d", "format": "yyyy/MM/dd"}]})[0]["fields"]
    assert got["p"] == [{"k": ["a"], "n": [1.55]}, {"k": ["b"]}]
    assert got["d"] == ["1990/12/29"]
    assert "free.x" in got  # dynamically mapped as long
    with pytest.raises(ESError):
        hits(docs, m, {"fields": [{"field": "p.k", "format": "yyyy"}]})


def test_fields_include_unmapped_and_ignored_values() -> None:
    docs, m = index({"dynamic": False, "properties": {"n": {"type": "long", "ignore_malformed": True}}},
                    [{"n": [1, "x", 3], "other": {"y": "z"}}])
    hit = hits(docs, m, {"fields": [{"field": "*", "include_unmapped": True}]})[0]
    assert hit["fields"] == {"n": [1, 3], "other.y": ["z"]}
    assert hit["_ignored"] == ["n"]
    assert hit["ignored_field_values"] == {"n": ["x"]}


def test_collapse_keeps_best_hit_per_group_with_inner_hits() -> None:
    docs, m = index({"properties": {"g": {"type": "integer"}, "s": {"type": "long"}}},
                    [{"g": 1, "s": 10}, {"g": 1, "s": 24}, {"g": 2, "s": 5}])
    out = hits(docs, m, {"collapse": {"field": "g", "inner_hits": {"name": "all", "sort": ["s"]}},
                         "sort": [{"s": "desc"}]})
    assert [(h["_id"], h["fields"]["g"]) for h in out] == [("2", [1]), ("3", [2])]
    assert [x["_id"] for x in out[0]["inner_hits"]["all"]["hits"]["hits"]] == ["1", "2"]


def test_named_queries_are_reported() -> None:
    docs, m = index({"properties": {"f": {"type": "long"}}}, [{"f": 1}, {"f": [1, 2]}])
    query = {"bool": {"should": [{"match": {"f": {"query": 1, "_name": "one"}}},
                                 {"match": {"f": {"query": 2, "_name": "two", "boost": 10}}}]}}
    out = hits(docs, m, {"query": query})
    assert [(h["_id"], h["_score"], h["matched_queries"]) for h in out] == [
        ("2", 11.0, ["one", "two"]), ("1", 1.0, ["one"])]


def test_float_fields_use_float_precision_for_values_and_bounds() -> None:
    docs, m = index({"properties": {"f": {"type": "float"}}}, [{"f": 3.4028235e38}, {"f": 1}])
    assert [h["_id"] for h in hits(docs, m, {"query": {"range": {"f": {"lt": 3.4028235e38, "gt": 0}}}})] == ["2"]
    assert [h["_id"] for h in hits(docs, m, {"query": {"range": {"f": {"lte": 1e300, "gt": 0}}}})] == ["1", "2"]


def test_date_nanos_sorts_in_nanoseconds() -> None:
    docs, m = index({"properties": {"d": {"type": "date_nanos"}}},
                    [{"d": "2018-10-29T12:12:12.123456789Z"}, {"d": "2018-10-29T12:12:12.987654321Z"}])
    out = hits(docs, m, {"sort": [{"d": "desc"}], "docvalue_fields": [{"field": "d", "format": "epoch_millis"}]})
    assert [h["sort"] for h in out] == [[1540815132987654321], [1540815132123456789]]
    assert out[1]["fields"]["d"] == ["1540815132123.456789"]


def test_terms_partitions_follow_es_hashing() -> None:
    docs, m = index({"properties": {"s": {"type": "keyword"}, "n": {"type": "long"}}},
                    [{"s": "abc", "n": 1234}, {"s": "bcd", "n": 5678}])

    def keys(field: str, partition: int) -> list[Any]:
        aggs = execute_search(docs, {"size": 0, "aggs": {"t": {"terms": {
            "field": field, "include": {"partition": partition, "num_partitions": 2}}}}}, m)["aggregations"]
        return [b["key"] for b in aggs["t"]["buckets"]]

    assert (keys("s", 0), keys("s", 1)) == (["bcd"], ["abc"])
    assert (keys("n", 0), keys("n", 1)) == ([5678], [1234])
