"""Partial updates re-index only what changed, and cached search helpers change nothing that shows.

The test server keeps what each top-level entry of a document indexed to and reuses it for the entries a
partial update leaves alone, also across a PUT _mapping that touched other top-level objects. These tests
pin what must stay as Elasticsearch does it: a partial update indexes the whole document under the
current mapping, so a field mapped since the document was written becomes searchable (or makes the
update fail) with the update.
"""

from __future__ import annotations

import pstats
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import BadRequestError, Elasticsearch

from tests.fakes.elasticsearch.errors import ESError
from tests.fakes.elasticsearch.mapping import IndexedParts, IndexMapping
from tests.fakes.elasticsearch.model import StoredDoc
from tests.fakes.elasticsearch.query import Doc
from tests.fakes.elasticsearch.sorting import SortSpec, _Missing, sort_docs
from tests.fakes.elasticsearch.source_filter import filter_source
from tests.fakes.process import start_server


def _hits(es: Elasticsearch, index: str, query: dict[str, object]) -> list[str]:
    return sorted(h["_id"] for h in es.search(index=index, query=query)["hits"]["hits"])


# -- end to end ---------------------------------------------------------------------------------------------

def test_update_indexes_a_field_mapped_since_the_document_was_written(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, mappings={"dynamic": False, "properties": {"k": {"type": "keyword"}}})
    es.index(index=index_name, id="1", document={"k": "a", "later": "x", "other": {"n": 1}}, refresh=True)
    assert _hits(es, index_name, {"term": {"later": "x"}}) == []
    es.indices.put_mapping(index=index_name, properties={"later": {"type": "keyword"}})
    assert _hits(es, index_name, {"term": {"later": "x"}}) == []    # mapped, but not re-indexed yet
    es.update(index=index_name, id="1", doc={"k": "b"}, refresh=True)
    assert _hits(es, index_name, {"term": {"later": "x"}}) == ["1"]
    assert _hits(es, index_name, {"term": {"k": "b"}}) == ["1"]
    assert _hits(es, index_name, {"term": {"k": "a"}}) == []


def test_update_fails_when_an_untouched_value_does_not_fit_a_new_mapping(es: Elasticsearch,
                                                                          index_name: str) -> None:
    es.indices.create(index=index_name, mappings={"dynamic": False, "properties": {"k": {"type": "keyword"}}})
    es.index(index=index_name, id="1", document={"k": "a", "n": "not a number"}, refresh=True)
    es.indices.put_mapping(index=index_name, properties={"n": {"type": "long"}})
    with pytest.raises(BadRequestError) as info:
        es.update(index=index_name, id="1", doc={"k": "b"})
    assert info.value.body["error"]["type"] == "document_parsing_exception"
    got = es.get(index=index_name, id="1")
    assert got["_source"] == {"k": "a", "n": "not a number"}
    assert got["_version"] == 1


def test_repeated_partial_updates_keep_every_field_searchable(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, mappings={"properties": {
        "@timestamp": {"type": "date"}, "host": {"properties": {"name": {"type": "keyword"}}},
        "state": {"properties": {"status": {"type": "keyword"}, "at": {"type": "date"}}}}})
    es.index(index=index_name, id="1", document={"@timestamp": "2026-01-01T00:00:00Z", "host": {"name": "h1"},
                                                 "state": {"status": "new"}})
    for status, at in (("queued", "2026-01-02T00:00:00Z"), ("done", "2026-01-03T00:00:00Z")):
        es.update(index=index_name, id="1", doc={"state": {"status": status, "at": at}})
    es.indices.refresh(index=index_name)
    assert _hits(es, index_name, {"term": {"host.name": "h1"}}) == ["1"]
    assert _hits(es, index_name, {"term": {"state.status": "done"}}) == ["1"]
    assert _hits(es, index_name, {"term": {"state.status": "queued"}}) == []
    assert _hits(es, index_name, {"range": {"state.at": {"gte": "2026-01-03"}}}) == ["1"]
    assert _hits(es, index_name, {"range": {"@timestamp": {"lt": "2026-01-02"}}}) == ["1"]


def test_search_source_includes_with_many_patterns(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="1", refresh=True, document={
        "kibana.alert.rule.name": "r", "kibana.alert.severity": "high", "lme": {"ai": {"status": "done", "x": 1}},
        "host": {"name": "h", "os": {"type": "linux"}}, "noise": {"a": 1}})
    includes = ["host.name", "kibana.alert.rule.*", "lme.ai.*", "missing.*", "host.os"]
    for _ in range(2):      # the second search answers from what the first worked out
        hit = es.search(index=index_name, source_includes=includes, source_excludes=["lme.ai.x"])
        assert hit["hits"]["hits"][0]["_source"] == {
            "kibana.alert.rule.name": "r", "lme": {"ai": {"status": "done"}},
            "host": {"name": "h", "os": {"type": "linux"}}}


def test_profile_flag_writes_request_statistics(tmp_path: Path) -> None:
    out = tmp_path / "es.pstats"
    server = start_server("tests.fakes.elasticsearch", ["--profile", str(out)])
    try:
        httpx.put(f"{server.url}/p-idx/_doc/1", json={"a": 1}, timeout=10).raise_for_status()
        httpx.get(f"{server.url}/p-idx/_doc/1", timeout=10).raise_for_status()
    finally:
        assert server.stop() == 0
    functions = {name for (_file, _line, name) in pstats.Stats(str(out)).stats}  # type: ignore[attr-defined]
    assert {"index_doc", "get_doc"} <= functions


# -- units ----------------------------------------------------------------------------------------------------

def _alert_mapping() -> IndexMapping:
    return IndexMapping.from_body({"dynamic": False, "properties": {
        "a": {"type": "keyword", "copy_to": "b.all"},
        "b": {"properties": {"x": {"type": "long"}}},
        "c": {"properties": {"d": {"type": "date"}, "t": {"type": "text", "fields": {"raw": {"type": "keyword"}}},
                             "kw": {"type": "keyword", "ignore_above": 3}}},
        "k": {"type": "keyword", "ignore_above": 3}}})


def _index_reusing(mapping: IndexMapping, source: dict[str, Any], previous: IndexedParts) -> dict[str, list[Any]]:
    changed = mapping.prepare_document(source, reuse=previous)
    indexed, _ = mapping.index_parts(source, validated=not changed, reuse=previous)
    return indexed


def test_index_parts_reused_after_a_partial_change_equal_a_full_index() -> None:
    mapping = _alert_mapping()
    first: dict[str, Any] = {"a": "v", "b": {"x": 1}, "c": {"d": "2026-01-01T00:00:00Z", "t": "Hello World"},
             "k": "long-value", "c.extra": "y"}
    mapping.prepare_document(first)
    _, parts = mapping.index_parts(first, validated=True)
    second = {**first, "b": {"x": 2}}     # untouched entries are the very same objects, as a merge leaves them
    assert _index_reusing(mapping, second, parts) == mapping.index_document(second)


def test_index_parts_reused_across_a_mapping_change_equal_a_full_index() -> None:
    old = _alert_mapping()
    source: dict[str, Any] = {"a": "v", "b": {"x": 1, "all": "kept?"}, "c": {"d": "2026-01-01T00:00:00Z"},
                              "z": "unmapped"}
    old.prepare_document(source)
    _, parts = old.index_parts(source, validated=True)
    new = old.copy()        # as PUT _mapping does: a new mapping object
    new.merge({"properties": {"b": {"properties": {"all": {"type": "keyword"}}}, "z": {"type": "keyword"}}})
    indexed = _index_reusing(new, source, parts)
    assert indexed == new.index_document(source)
    assert indexed["b.all"] == ["v", "kept?"]      # the copy_to from untouched "a" reaches the new field
    assert indexed["z"] == ["unmapped"]


def test_entries_sharing_a_path_merge_in_document_order() -> None:
    mapping = _alert_mapping()
    # "c.d" and c.d, and two values over ignore_above: several entries add to the same indexed paths.
    source: dict[str, Any] = {"k": "long-one", "c.d": "2026-01-02T00:00:00Z", "c.kw": "long-two", "a": "v",
                              "c": {"d": "2026-01-01T00:00:00Z", "kw": "long-three"}, "b": {"x": [3, 4]}}
    mapping.prepare_document(source)
    indexed, parts = mapping.index_parts(source, validated=True)
    assert indexed == mapping.index_document(source)
    assert indexed["c.d"] == [1767312000000, 1767225600000]
    assert indexed["_ignored"] == ["k", "c.kw"]
    assert [value for _, value in indexed["_ignored_values"]] == ["long-one", "long-two", "long-three"]
    second = {**source, "a": "w"}
    again = _index_reusing(mapping, second, parts)
    assert again == mapping.index_document(second)
    assert list(again) == list(mapping.index_document(second))      # the same paths in the same order


def test_parts_are_not_reused_when_root_parameters_change() -> None:
    old = IndexMapping.from_body({"dynamic": False, "properties": {"a": {"type": "keyword"}}})
    source: dict[str, Any] = {"a": "v", "n": "oops"}
    old.prepare_document(source)
    _, parts = old.index_parts(source, validated=True)
    new = old.copy()
    new.merge({"dynamic": "strict"})
    with pytest.raises(ESError, match="strict"):
        new.prepare_document(source, reuse=parts)


def _entries(values: list[list[Any]]) -> list[tuple[list[Any], Doc]]:
    return [(v, Doc(StoredDoc("i", str(n), {}, n, 1, 1, doc_order=n), {}, 0)) for n, v in enumerate(values)]


def test_sort_by_keys_orders_missing_values_and_ties_as_comparing_does() -> None:
    entries = _entries([[2, "b"], [None, "a"], [1, "z"], [2, "a"], [_Missing(True), "c"], [1, "z"]])
    specs = [SortSpec("n", "desc", "_last"), SortSpec("s", "asc", "_first")]
    ordered = [d.stored.id for _, d in sort_docs(entries, specs)]
    assert ordered == ["3", "0", "2", "5", "1", "4"]
    first = [d.stored.id for _, d in sort_docs(entries, [SortSpec("n", "asc", "_first")])]
    assert first == ["1", "4", "2", "5", "0", "3"]


def test_sort_of_unlike_types_falls_back_to_string_comparison() -> None:
    entries = _entries([[10], ["9"], [2]])
    ordered = [d.stored.id for _, d in sort_docs(entries, [SortSpec("n", "asc")])]
    assert ordered == ["2", "0", "1"]       # 2 < 10 as numbers, "10" < "9" as strings where they meet


def test_filter_source_memo_gives_the_same_answer_for_each_document() -> None:
    includes = ["a.*", "b"]
    docs: list[dict[str, Any]] = [{"a": {"x": 1}, "b": [{"c": 1}], "d": 2}, {"a": 5, "b": 1, "d": {"e": 1}}]
    assert [filter_source(d, includes, ["a.x"]) for d in docs] == [{"b": [{"c": 1}]}, {"b": 1}]
    assert [filter_source(d, includes, None) for d in docs] == [{"a": {"x": 1}, "b": [{"c": 1}]}, {"b": 1}]
