"""Pure unit tests of search.py / query.py / sorting.py / aggs.py over in-memory documents."""

from __future__ import annotations

from typing import Any

import pytest

from tests.fakes.elasticsearch.errors import ESError
from tests.fakes.elasticsearch.mapping import IndexMapping
from tests.fakes.elasticsearch.model import StoredDoc
from tests.fakes.elasticsearch.search import execute_count, execute_search, filter_source

MAPPING = {
    "dynamic": False,
    "properties": {
        "title": {"type": "text", "fields": {"keyword": {"type": "keyword"}}},
        "tag": {"type": "keyword"},
        "n": {"type": "long"},
        "ts": {"type": "date"},
        "host": {"properties": {"name": {"type": "keyword"}}},
    },
}
SOURCES: list[dict[str, Any]] = [
    {"title": "Quick brown fox", "tag": ["a", "b"], "n": 3, "ts": "2026-01-01T00:00:00Z", "host": {"name": "h1"}},
    {"title": "Lazy dog", "tag": "b", "n": 1, "ts": "2026-01-01T01:30:00Z", "host.name": "h2", "extra": 5},
    {"title": "quick dog", "n": 2, "ts": "2026-01-02T00:00:00Z"},
    {"tag": "c"},
]


def corpus(mapping_body: dict[str, Any] = MAPPING) -> tuple[list[StoredDoc], dict[str, IndexMapping]]:
    m = IndexMapping.from_body(mapping_body)
    docs = []
    for i, src in enumerate(SOURCES):
        m.prepare_document(src)
        docs.append(StoredDoc("i", str(i + 1), src, i, 1, 1, i, extra={"indexed": m.index_document(src)}))
    return docs, {"i": m}


def ids(body: dict[str, Any], **kw: Any) -> list[str]:
    docs, mappings = corpus()
    return [h["_id"] for h in execute_search(docs, body, mappings, **kw)["hits"]["hits"]]


def error(body: dict[str, Any]) -> ESError:
    docs, mappings = corpus()
    with pytest.raises(ESError) as info:
        execute_search(docs, body, mappings)
    return info.value


def test_term_on_text_matches_tokens_and_keyword_exactly() -> None:
    assert sorted(ids({"query": {"term": {"title": "quick"}}})) == ["1", "3"]
    assert ids({"query": {"term": {"title": "Quick"}}}) == []
    assert ids({"query": {"term": {"title.keyword": "Lazy dog"}}}) == ["2"]
    assert ids({"query": {"term": {"title.keyword": {"value": "lazy DOG", "case_insensitive": True}}}}) == ["2"]


def test_match_operator_and_unmapped_field() -> None:
    assert sorted(ids({"query": {"match": {"title": "quick dog"}}})) == ["1", "2", "3"]
    assert ids({"query": {"match": {"title": {"query": "quick dog", "operator": "and"}}}}) == ["3"]
    assert ids({"query": {"term": {"extra": 5}}}) == []
    assert ids({"query": {"exists": {"field": "extra"}}}) == []


def test_bool_minimum_should_match_defaults() -> None:
    should = [{"term": {"tag": "a"}}, {"term": {"tag": "b"}}]
    assert sorted(ids({"query": {"bool": {"should": should}}})) == ["1", "2"]
    assert sorted(ids({"query": {"bool": {"filter": [{"exists": {"field": "n"}}], "should": should}}})) == \
        ["1", "2", "3"]
    assert ids({"query": {"bool": {"should": should, "minimum_should_match": 2}}}) == ["1"]
    assert ids({"query": {"bool": {"should": should, "minimum_should_match": "100%"}}}) == ["1"]


def test_exists_on_object_and_must_not() -> None:
    assert sorted(ids({"query": {"exists": {"field": "host"}}})) == ["1", "2"]
    assert sorted(ids({"query": {"bool": {"must_not": {"exists": {"field": "host.name"}}}}})) == ["3", "4"]


def test_range_with_date_math_rounding() -> None:
    assert sorted(ids({"query": {"range": {"ts": {"lte": "2026-01-01"}}}})) == ["1", "2"]
    assert ids({"query": {"range": {"ts": {"gt": "2026-01-01"}}}}) == ["3"]
    assert ids({"query": {"range": {"ts": {"gte": "2026-01-01T00:00:00Z||+1h", "lt": "2026-01-02"}}}}) == ["2"]
    assert ids({"query": {"range": {"n": {"gt": 1, "lte": 2}}}}) == ["3"]


def test_filter_context_scores_zero_and_match_all_one() -> None:
    docs, mappings = corpus()
    hits = execute_search(docs, {"query": {"bool": {"filter": {"term": {"tag": "b"}}}}}, mappings)["hits"]
    assert {h["_score"] for h in hits["hits"]} == {0.0}
    hits = execute_search(docs, {}, mappings)["hits"]
    assert {h["_score"] for h in hits["hits"]} == {1.0}
    assert hits["max_score"] == 1.0


def test_sort_missing_last_and_date_values_in_millis() -> None:
    docs, mappings = corpus()
    hits = execute_search(docs, {"sort": [{"n": "desc"}]}, mappings)["hits"]
    assert [h["_id"] for h in hits["hits"]] == ["1", "3", "2", "4"]
    assert hits["max_score"] is None and hits["hits"][0]["_score"] is None
    assert hits["hits"][3]["sort"] == [-(2**63)]
    hits = execute_search(docs, {"sort": ["ts"], "size": 1}, mappings)["hits"]
    assert hits["hits"][0]["sort"] == [1767225600000]


def test_search_after_pages_with_pit_tiebreaker() -> None:
    docs, mappings = corpus()
    seen: list[str] = []
    after: list[Any] | None = None
    while True:
        body: dict[str, Any] = {"size": 1, "sort": [{"tag": "asc"}]}
        if after is not None:
            body["search_after"] = after
        hits = execute_search(docs, body, mappings, pit=True)["hits"]["hits"]
        if not hits:
            break
        assert len(hits[0]["sort"]) == 2
        after = hits[0]["sort"]
        seen.append(hits[0]["_id"])
    assert seen == ["1", "2", "4", "3"]


def test_errors_have_es_shapes() -> None:
    e = error({"query": {"nope": {}}})
    assert (e.type, e.reason) == ("parsing_exception", "unknown query [nope]")
    e = error({"query": {"range": {"ts": {"gte": "yesterday-ish"}}}})
    assert e.type == "search_phase_execution_exception" and e.reason == "all shards failed"
    assert e.extra["failed_shards"][0]["reason"]["type"] == "parse_exception"
    e = error({"from": 9995, "size": 10})
    assert e.body()["error"]["root_cause"][0]["reason"].startswith("Result window is too large")
    e = error({"sort": ["extra"]})
    assert e.body()["error"]["root_cause"][0]["reason"] == "No mapping found for [extra] in order to sort on"
    e = error({"sort": ["n"], "search_after": [1, 2]})
    assert e.extra["failed_shards"][0]["reason"]["reason"] == "search_after has 2 value(s) but sort has 1."
    e = error({"sort": ["title"]})
    assert "Text fields are not optimised" in e.extra["failed_shards"][0]["reason"]["reason"]


def test_track_total_hits_variants() -> None:
    docs, mappings = corpus()
    assert execute_search(docs, {"track_total_hits": 2}, mappings)["hits"]["total"] == {"value": 2,
                                                                                       "relation": "gte"}
    assert "total" not in execute_search(docs, {"track_total_hits": False}, mappings)["hits"]
    assert execute_count(docs, {"query": {"term": {"tag": "b"}}}, mappings) == 2


def test_aggregations() -> None:
    docs, mappings = corpus()
    body = {"size": 0, "aggs": {
        "tags": {"terms": {"field": "tag"}, "aggs": {"total": {"sum": {"field": "n"}}}},
        "per_day": {"date_histogram": {"field": "ts", "calendar_interval": "day"}},
        "pct": {"percentiles": {"field": "n", "percents": [50]}},
        "avg": {"avg": {"field": "n"}},
        "unmapped": {"terms": {"field": "extra"}},
    }}
    aggs = execute_search(docs, body, mappings)["aggregations"]
    assert aggs["tags"]["buckets"] == [
        {"key": "b", "doc_count": 2, "total": {"value": 4.0}},
        {"key": "a", "doc_count": 1, "total": {"value": 3.0}},
        {"key": "c", "doc_count": 1, "total": {"value": 0.0}},
    ]
    assert [(b["key_as_string"], b["doc_count"]) for b in aggs["per_day"]["buckets"]] == [
        ("2026-01-01T00:00:00.000Z", 2), ("2026-01-02T00:00:00.000Z", 1)]
    assert aggs["pct"] == {"values": {"50.0": 2.0}}
    assert aggs["avg"] == {"value": 2.0}
    assert aggs["unmapped"]["buckets"] == []


def test_filter_source_flat_and_nested() -> None:
    src = {"kibana.alert.rule.name": "r", "kibana": {"alert": {"uuid": "u", "x": 1}}, "host": {"name": "h"}}
    assert filter_source(src, ["kibana.alert.*"], ["kibana.alert.x"]) == {
        "kibana.alert.rule.name": "r", "kibana": {"alert": {"uuid": "u"}}}
    assert filter_source(src, ["host"], None) == {"host": {"name": "h"}}
    assert filter_source(src, None, ["kibana*"]) == {"host": {"name": "h"}}


def test_term_on_date_covers_the_whole_unit_given() -> None:
    assert sorted(ids({"query": {"term": {"ts": "2026-01-01"}}})) == ["1", "2"]
    assert ids({"query": {"term": {"ts": "2026-01-01T01:30:00Z"}}}) == ["2"]
    assert ids({"query": {"terms": {"ts": ["2026-01-02"]}}}) == ["3"]
