"""End-to-end: mappings as GET _mapping shows them, dynamic modes and value validation."""

from __future__ import annotations

import pytest
from elasticsearch import BadRequestError, Elasticsearch


def test_get_mapping_renders_dynamic_false_as_string(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, mappings={"dynamic": False, "properties": {"a.b": {"type": "keyword"}}})
    got = es.indices.get_mapping(index=index_name)[index_name]["mappings"]
    assert got == {"dynamic": "false", "properties": {"a": {"properties": {"b": {"type": "keyword"}}}}}


def test_dynamic_true_infers_and_renders(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="1", document={"n": 5, "s": "hello", "d": "2026-01-01T00:00:00Z", "f": 1.5},
             refresh=True)
    props = es.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]
    assert props["n"] == {"type": "long"}
    assert props["d"] == {"type": "date"}
    assert props["f"] == {"type": "float"}
    assert props["s"] == {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
    assert es.search(index=index_name, query={"term": {"s.keyword": "hello"}})["hits"]["total"]["value"] == 1


def test_unmapped_fields_are_not_searchable_and_not_sortable(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, mappings={"dynamic": False, "properties": {"k": {"type": "keyword"}}})
    es.index(index=index_name, id="1", document={"k": "a", "free": "text", "num": 3}, refresh=True)
    hit = es.search(index=index_name)["hits"]["hits"][0]
    assert hit["_source"] == {"k": "a", "free": "text", "num": 3}
    for query in ({"exists": {"field": "free"}}, {"term": {"free": "text"}}, {"range": {"num": {"gte": 0}}},
                  {"match": {"free": "text"}}):
        assert es.search(index=index_name, query=query)["hits"]["total"]["value"] == 0
    with pytest.raises(BadRequestError) as info:
        es.search(index=index_name, sort=["num"])
    assert info.value.body["error"]["root_cause"][0]["reason"] == "No mapping found for [num] in order to sort on"
    resp = es.search(index=index_name, sort=[{"num": {"order": "asc", "unmapped_type": "long"}}])
    assert resp["hits"]["total"]["value"] == 1
    aggs = es.search(index=index_name, size=0, aggs={"t": {"terms": {"field": "free"}}})["aggregations"]
    assert aggs["t"]["buckets"] == []


def test_strict_mapping_rejects_new_fields(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, mappings={"dynamic": "strict", "properties": {"k": {"type": "keyword"}}})
    with pytest.raises(BadRequestError) as info:
        es.index(index=index_name, id="1", document={"k": "a", "extra": 1})
    err = info.value.body["error"]
    assert err["type"] == "strict_dynamic_mapping_exception"
    assert err["reason"].endswith("mapping set to strict, dynamic introduction of [extra] within [_doc] is not "
                                  "allowed")


def test_type_change_refused(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, mappings={"properties": {"f": {"type": "keyword"}}})
    with pytest.raises(BadRequestError) as info:
        es.indices.put_mapping(index=index_name, properties={"f": {"type": "long"}})
    err = info.value.body["error"]
    assert err["type"] == "illegal_argument_exception"
    assert err["reason"] == "mapper [f] cannot be changed from type [keyword] to [long]"


def test_unknown_field_type_refused(es: Elasticsearch, index_name: str) -> None:
    with pytest.raises(BadRequestError) as info:
        es.indices.create(index=index_name, mappings={"properties": {"f": {"type": "bogus"}}})
    err = info.value.body["error"]
    assert err["type"] == "mapper_parsing_exception"
    assert "No handler for type [bogus] declared on field [f]" in err["reason"]


def test_malformed_value_is_document_parsing_exception(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, mappings={"properties": {"n": {"type": "long"},
                                                                 "m": {"type": "long", "ignore_malformed": True}}})
    with pytest.raises(BadRequestError) as info:
        es.index(index=index_name, id="x", document={"n": "abc"})
    err = info.value.body["error"]
    assert err["type"] == "document_parsing_exception"
    assert "failed to parse field [n] of type [long] in document with id 'x'" in err["reason"]
    es.index(index=index_name, id="y", document={"m": "abc"}, refresh=True)
    assert es.count(index=index_name, query={"exists": {"field": "m"}})["count"] == 0
