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


def test_query_string_syntax() -> None:
    docs, m = index({"properties": {"k": {"type": "keyword"}, "n": {"type": "long"}, "t": {"type": "text"}}},
                    [{"k": "a", "n": 1, "t": "Snow Crash"}, {"k": ["b", "c"], "n": 2}, {}])

    def qs(text: str, **extra: Any) -> list[str]:
        return sorted(h["_id"] for h in hits(docs, m, {"query": {"query_string": {"query": text, **extra}}}))

    assert qs("snow") == ["1"]
    assert qs('t:"snow crash"') == ["1"]
    assert qs("(k:a OR k:b) AND n:1") == ["1"]
    assert qs("k:(a OR c)") == ["1", "2"]
    assert qs("NOT k:a") == ["2", "3"]
    assert qs("n:[2 TO *]") == ["2"]
    assert qs("n:>=1 -k:b") == ["1"]
    assert qs("k:*") == ["1", "2"]
    assert qs("k:b k:c", default_operator="AND") == ["2"]
    with pytest.raises(ESError):
        qs("n:abc")
    assert qs("n:abc", lenient=True) == []


def test_composite_pages_with_after_key() -> None:
    docs, m = index({"properties": {"k": {"type": "keyword"}}}, [{"k": "a"}, {"k": ["a", "b"]}, {"k": "c"}, {}])
    seen: list[tuple[Any, int]] = []
    after: dict[str, Any] | None = None
    while True:
        spec: dict[str, Any] = {"size": 2, "sources": [{"k": {"terms": {"field": "k", "missing_bucket": True}}}]}
        if after is not None:
            spec["after"] = after
        agg = execute_search(docs, {"size": 0, "aggs": {"c": {"composite": spec}}}, m)["aggregations"]["c"]
        if not agg["buckets"]:
            assert "after_key" not in agg
            break
        seen += [(b["key"]["k"], b["doc_count"]) for b in agg["buckets"]]
        after = agg["after_key"]
    assert seen == [(None, 1), ("a", 2), ("b", 1), ("c", 1)]


def test_highlight_marks_query_terms_in_text_and_multi_fields() -> None:
    docs, m = index({"properties": {"text": {"type": "text", "fields": {"raw": {"type": "keyword"}}}}},
                    [{"text": "The quick brown fox is brown."}])
    body = {"query": {"match": {"text": "brown FOX"}}, "highlight": {"fields": {"*": {}}}}
    assert hits(docs, m, body)[0]["highlight"] == {"text": ["The quick <em>brown</em> <em>fox</em> is <em>brown</em>."]}
    body = {"query": {"term": {"text.raw": "The quick brown fox is brown."}},
            "highlight": {"pre_tags": ["["], "post_tags": ["]"], "fields": {"text.raw": {}}}}
    assert hits(docs, m, body)[0]["highlight"] == {"text.raw": ["[The quick brown fox is brown.]"]}


def test_dynamic_date_detection_needs_date_like_strings() -> None:
    m = IndexMapping.from_body(None)
    m.prepare_document({"zip": "1111", "when": "2026-01-02", "slash": "2026/01/02 10:00:00 +0000"})
    props = m.to_body()["properties"]
    assert props["zip"]["type"] == "text"
    assert props["when"] == {"type": "date"}
    assert props["slash"] == {"type": "date", "format": "yyyy/MM/dd HH:mm:ss Z||yyyy/MM/dd Z"}


def test_nested_objects_are_separate_documents() -> None:
    docs, m = index({"properties": {"user": {"type": "nested", "properties": {
        "first": {"type": "keyword"}, "age": {"type": "long"}}}}},
        [{"user": [{"first": "John", "age": 30}, {"first": "Alice", "age": 20}]}, {"user": {"first": "Bob", "age": 5}}])
    both = {"bool": {"must": [{"term": {"user.first": "Alice"}}, {"term": {"user.age": 30}}]}}
    assert hits(docs, m, {"query": both}) == []  # nested fields are not in the root document
    assert hits(docs, m, {"query": {"nested": {"path": "user", "query": both}}}) == []
    same = {"bool": {"must": [{"term": {"user.first": "Alice"}}, {"term": {"user.age": 20}}]}}
    assert [h["_id"] for h in hits(docs, m, {"query": {"nested": {"path": "user", "query": same}}})] == ["1"]
    aggs = execute_search(docs, {"size": 0, "aggs": {"u": {"nested": {"path": "user"}, "aggs": {
        "avg_age": {"avg": {"field": "user.age"}}, "back": {"reverse_nested": {}}}}}}, m)["aggregations"]
    assert aggs["u"] == {"doc_count": 3, "avg_age": {"value": 55 / 3}, "back": {"doc_count": 2}}
    with pytest.raises(ESError):
        hits(docs, m, {"sort": ["user.age"]})
    ordered = hits(docs, m, {"sort": [{"user.age": {"order": "asc", "nested": {"path": "user"}}}]})
    assert [h["sort"] for h in ordered] == [[5], [20]]


def test_pipeline_aggregations() -> None:
    docs, m = index({"properties": {"k": {"type": "keyword"}, "n": {"type": "long"}}},
                    [{"k": "a", "n": 1}, {"k": "b", "n": 5}, {"k": "c", "n": 3}, {"k": "c", "n": 4}])
    aggs = execute_search(docs, {"size": 0, "aggs": {
        "per": {"terms": {"field": "k", "order": {"_key": "asc"}}, "aggs": {
            "s": {"sum": {"field": "n"}}, "running": {"cumulative_sum": {"buckets_path": "s"}}}},
        "best": {"max_bucket": {"buckets_path": "per>s"}},
        "mean": {"avg_bucket": {"buckets_path": "per>s"}},
    }}, m)["aggregations"]
    assert [b["running"]["value"] for b in aggs["per"]["buckets"]] == [1.0, 6.0, 13.0]
    assert aggs["best"] == {"value": 7.0, "keys": ["c"]}
    assert aggs["mean"] == {"value": 13.0 / 3}


def test_more_aggregations() -> None:
    docs, m = index({"properties": {"k": {"type": "keyword"}, "n": {"type": "long"}}},
                    [{"k": "a", "n": 1}, {"k": "b", "n": 5}, {"k": "b", "n": 3}])
    aggs = execute_search(docs, {"size": 0, "aggs": {
        "pairs": {"multi_terms": {"terms": [{"field": "k"}, {"field": "n"}], "size": 1}},
        "rare": {"rare_terms": {"field": "k"}},
        "ranks": {"percentile_ranks": {"field": "n", "values": [3]}},
        "top": {"top_metrics": {"metrics": {"field": "k"}, "sort": {"n": "desc"}}},
    }}, m)["aggregations"]
    assert aggs["pairs"]["buckets"] == [{"key": ["a", 1], "key_as_string": "a|1", "doc_count": 1}]
    assert aggs["pairs"]["sum_other_doc_count"] == 2
    assert aggs["rare"]["buckets"] == [{"key": "a", "doc_count": 1}]
    assert aggs["ranks"]["values"]["3.0"] == pytest.approx(200 / 3)
    assert aggs["top"] == {"top": [{"sort": [5], "metrics": {"k": "b"}}]}


def test_runtime_fields_read_source_at_search_time() -> None:
    docs, m = index({"dynamic": False, "properties": {"k": {"type": "keyword"}}},
                    [{"k": "a", "lme": {"ai": {"status": "done"}}}, {"k": "b"}])
    body: dict[str, Any] = {"query": {"term": {"lme.ai.status": "done"}}}
    assert hits(docs, m, body) == []  # unmapped (dynamic: false)
    body["runtime_mappings"] = {"lme.ai.status": {"type": "keyword"}}
    assert [h["_id"] for h in hits(docs, m, body)] == ["1"]
    body["runtime_mappings"] = {"st": {"type": "keyword", "script": {"source": "emit(params._source['k'])"}}}
    body["query"] = {"term": {"st": "b"}}
    assert [h["_id"] for h in hits(docs, m, body)] == ["2"]
    rt = IndexMapping.from_body({"dynamic": "runtime"})
    assert rt.prepare_document({"n": 1, "s": "x", "o": {"d": "2026-01-01T00:00:00Z"}})
    assert rt.to_body() == {"dynamic": "runtime", "runtime": {
        "n": {"type": "long"}, "s": {"type": "keyword"}, "o.d": {"type": "date"}}}


def test_typed_keys_prefix_aggregation_names() -> None:
    docs, m = index({"properties": {"k": {"type": "keyword"}, "n": {"type": "long"}}}, [{"k": "a", "n": 1}])
    aggs = execute_search(docs, {"size": 0, "typed_keys": True, "aggs": {
        "by_k": {"terms": {"field": "k"}, "aggs": {"total": {"sum": {"field": "n"}}}},
        "by_n": {"terms": {"field": "n"}}, "p": {"percentiles": {"field": "n", "percents": [50]}},
    }}, m)["aggregations"]
    assert set(aggs) == {"sterms#by_k", "lterms#by_n", "tdigest_percentiles#p"}
    assert aggs["sterms#by_k"]["buckets"][0]["sum#total"] == {"value": 1.0}
