"""Pure unit tests of mapping.py: parsing, rendering, merging, dynamic mapping and indexing."""

from __future__ import annotations

import pytest

from tests.fakes.elasticsearch.errors import ESError
from tests.fakes.elasticsearch.mapping import IndexMapping


def test_dynamic_false_renders_as_string_and_dotted_properties_expand() -> None:
    m = IndexMapping.from_body({"dynamic": False, "properties": {"a.b": {"type": "keyword"}}})
    assert m.to_body() == {"dynamic": "false", "properties": {"a": {"properties": {"b": {"type": "keyword"}}}}}


def test_unknown_type_is_mapper_parsing_exception() -> None:
    with pytest.raises(ESError) as info:
        IndexMapping.from_body({"properties": {"f": {"type": "nope"}}})
    assert info.value.status == 400
    assert info.value.type == "mapper_parsing_exception"
    assert info.value.caused_by == {"type": "mapper_parsing_exception",
                                    "reason": "No handler for type [nope] declared on field [f]"}


def test_unknown_parameter_and_root_parameter_are_refused() -> None:
    with pytest.raises(ESError, match=r"unknown parameter \[foo\] on mapper \[f\] of type \[keyword\]"):
        IndexMapping.from_body({"properties": {"f": {"type": "keyword", "foo": 1}}})
    with pytest.raises(ESError, match="Root mapping definition has unsupported parameters"):
        IndexMapping.from_body({"bogus": True})


def test_merge_adds_fields_and_refuses_type_change() -> None:
    m = IndexMapping.from_body({"properties": {"f": {"type": "keyword"}}})
    m.merge({"dynamic": "strict", "properties": {"g": {"type": "long"}}})
    assert m.to_body() == {"dynamic": "strict", "properties": {"f": {"type": "keyword"}, "g": {"type": "long"}}}
    with pytest.raises(ESError) as info:
        m.merge({"properties": {"f": {"type": "long"}}})
    assert info.value.type == "illegal_argument_exception"
    assert info.value.reason == "mapper [f] cannot be changed from type [keyword] to [long]"


def test_dynamic_true_infers_types() -> None:
    m = IndexMapping.from_body(None)
    assert m.prepare_document({"n": 1, "x": 1.5, "b": True, "d": "2026-01-02T03:04:05Z", "s": "hello",
                               "o": {"k": "v"}})
    props = m.to_body()["properties"]
    assert props["n"] == {"type": "long"}
    assert props["x"] == {"type": "float"}
    assert props["b"] == {"type": "boolean"}
    assert props["d"] == {"type": "date"}
    assert props["s"] == {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    assert props["o"] == {"properties": {"k": {"type": "text", "fields": {"keyword": {"type": "keyword",
                                                                                       "ignore_above": 256}}}}}
    assert not m.prepare_document({"n": 2})


def test_strict_refuses_new_field_and_object_override_allows() -> None:
    m = IndexMapping.from_body({"dynamic": "strict", "properties": {"free": {"type": "object", "dynamic": True}}})
    with pytest.raises(ESError) as info:
        m.prepare_document({"f": 1})
    assert info.value.type == "strict_dynamic_mapping_exception"
    assert info.value.reason.endswith("mapping set to strict, dynamic introduction of [f] within [_doc] is not allowed")
    assert m.prepare_document({"free": {"x": 1}})
    assert m.field("free.x") is not None


def test_rejected_document_leaves_mapping_unchanged() -> None:
    m = IndexMapping.from_body({"properties": {"n": {"type": "long"}}})
    with pytest.raises(ESError) as info:
        m.prepare_document({"new": "x", "n": "abc"}, doc_id="7")
    assert info.value.type == "document_parsing_exception"
    assert "failed to parse field [n] of type [long] in document with id '7'" in info.value.reason
    assert "new" not in m.to_body()["properties"]


def test_dynamic_false_indexes_only_mapped_fields_flat_and_nested() -> None:
    m = IndexMapping.from_body({"dynamic": False, "properties": {
        "kibana": {"properties": {"alert": {"properties": {"rule": {"properties": {"name": {"type": "keyword"}}}}}}},
        "score": {"type": "float"},
    }})
    source = {"kibana.alert": {"rule.name": "R1"}, "kibana.alert.rule.name": "R2", "score": "2.5", "other": 1}
    assert not m.prepare_document(source)
    indexed = m.index_document(source)
    assert sorted(indexed["kibana.alert.rule.name"]) == ["R1", "R2"]
    assert indexed["score"] == [2.5]
    assert "other" not in indexed


def test_ignore_above_and_multi_fields_and_null_value() -> None:
    m = IndexMapping.from_body({"properties": {
        "t": {"type": "text", "fields": {"raw": {"type": "keyword", "ignore_above": 3}}},
        "k": {"type": "keyword", "null_value": "NULL"},
    }})
    indexed = m.index_document({"t": ["Hello World", "abc"], "k": None})
    assert indexed["t"] == ["hello", "world", "abc"]
    assert indexed["t.raw"] == ["abc"]
    assert indexed["k"] == ["NULL"]


def test_alias_must_point_to_existing_field() -> None:
    with pytest.raises(ESError, match="an alias must refer to an existing field"):
        IndexMapping.from_body({"properties": {"a": {"type": "alias", "path": "missing"}}})
    m = IndexMapping.from_body({"properties": {"a": {"type": "alias", "path": "b"}, "b": {"type": "long"}}})
    field = m.field("a")
    assert field is not None and field.path == "b"


def test_copy_is_independent() -> None:
    m = IndexMapping.from_body({"properties": {"a": {"type": "keyword"}}})
    c = m.copy()
    c.merge({"properties": {"b": {"type": "keyword"}}})
    assert "b" not in m.to_body()["properties"]
