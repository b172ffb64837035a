"""Aliases: add/remove actions, alias endpoints, rendering, write-index routing of writes, hidden aliases."""

from __future__ import annotations

import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError


def test_update_aliases_add_remove_and_render(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name)
    alias = f"{index_name}-alias"
    resp = es.indices.update_aliases(actions=[{"add": {
        "index": index_name, "alias": alias, "routing": "r1", "filter": {"term": {"user": "kimchy"}}}}])
    assert resp["acknowledged"] is True and resp["errors"] is False and "action_results" not in resp
    assert es.indices.get_alias(index=index_name, name=alias)[index_name]["aliases"][alias] == {
        "filter": {"term": {"user": "kimchy"}}, "index_routing": "r1", "search_routing": "r1"}
    assert es.indices.exists_alias(name=alias)
    es.indices.update_aliases(actions=[{"remove": {"index": index_name, "alias": alias}}])
    assert not es.indices.exists_alias(name=alias)


def test_remove_missing_alias_reports_action_results(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name)
    resp = es.indices.update_aliases(actions=[
        {"add": {"index": index_name, "aliases": f"{index_name}-a1"}},
        {"remove": {"index": index_name, "aliases": f"{index_name}-none"}},
    ])
    assert resp["errors"] is True
    assert resp["action_results"][0]["status"] == 200
    assert resp["action_results"][1]["status"] == 404
    assert resp["action_results"][1]["error"]["type"] == "aliases_not_found_exception"
    with pytest.raises(NotFoundError):
        es.indices.update_aliases(actions=[
            {"remove": {"index": index_name, "alias": f"{index_name}-none", "must_exist": True}},
            {"add": {"index": index_name, "alias": f"{index_name}-a3"}},
        ])
    assert not es.indices.exists_alias(name=f"{index_name}-a3")   # all or nothing


def test_put_get_delete_alias_endpoints(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=f"{index_name}-1")
    es.indices.create(index=f"{index_name}-2")
    alias = f"{index_name}-alias"
    assert es.indices.put_alias(index=f"{index_name}-1", name=alias)["acknowledged"] is True
    assert dict(es.indices.get_alias(name=alias)) == {f"{index_name}-1": {"aliases": {alias: {}}}}
    es.indices.put_alias(index=f"{index_name}-2", name=alias)
    assert set(es.indices.get_alias(name=alias)) == {f"{index_name}-1", f"{index_name}-2"}
    assert es.indices.delete_alias(index="*", name=alias)["acknowledged"] is True
    assert not es.indices.exists_alias(name=alias)
    with pytest.raises(NotFoundError) as err:
        es.indices.get_alias(name=alias)
    assert err.value.body["error"] == f"alias [{alias}] missing"
    with pytest.raises(NotFoundError) as gone:
        es.indices.delete_alias(index=f"{index_name}-1", name=alias)
    assert gone.value.body["error"]["type"] == "aliases_not_found_exception"


def test_get_alias_of_index_without_aliases(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name)
    assert dict(es.indices.get_alias(index=index_name)) == {index_name: {"aliases": {}}}


def test_writes_through_aliases(es: Elasticsearch, index_name: str) -> None:
    one = f"{index_name}-single"
    es.indices.create(index=f"{index_name}-1", aliases={one: {}})
    assert es.index(index=one, id="a", document={"v": 1})["_index"] == f"{index_name}-1"
    multi = f"{index_name}-multi"
    es.indices.create(index=f"{index_name}-2", aliases={multi: {}})
    es.indices.put_alias(index=f"{index_name}-1", name=multi)
    with pytest.raises(BadRequestError) as err:
        es.index(index=multi, id="b", document={"v": 2})
    assert err.value.body["error"]["reason"] == (
        f"no write index is defined for alias [{multi}]. The write index may be explicitly disabled using "
        "is_write_index=false or the alias points to multiple indices without one being designated as a write index")
    es.indices.update_aliases(actions=[{"add": {"index": f"{index_name}-2", "alias": multi, "is_write_index": True}}])
    assert es.index(index=multi, id="b", document={"v": 2})["_index"] == f"{index_name}-2"
    with pytest.raises(BadRequestError) as get_err:
        es.get(index=multi, id="b")
    assert "has more than one index associated with it" in get_err.value.body["error"]["reason"]


def test_two_write_indices_are_refused(es: Elasticsearch, index_name: str) -> None:
    alias = f"{index_name}-w"
    es.indices.create(index=f"{index_name}-1", aliases={alias: {"is_write_index": True}})
    es.indices.create(index=f"{index_name}-2")
    with pytest.raises(BadRequestError) as err:
        es.indices.update_aliases(actions=[{"add": {"index": f"{index_name}-2", "alias": alias,
                                                    "is_write_index": True}}])
    assert "more than one write index" in err.value.body["error"]["reason"]


def test_hidden_alias_is_skipped_by_wildcards(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=f"{index_name}-data", aliases={f"{index_name}-hidden-alias": {"is_hidden": True}})
    es.index(index=f"{index_name}-hidden-alias", id="1", document={"a": 1}, refresh=True)
    found = es.search(index=f"{index_name}-hidden-*", allow_no_indices=True)["hits"]["total"]["value"]
    assert found == 0
    assert es.search(index=f"{index_name}-hidden-*", expand_wildcards="all")["hits"]["total"]["value"] == 1
    assert es.search(index=f"{index_name}-hidden-alias")["hits"]["total"]["value"] == 1


def test_alias_filter_applies_to_search(es: Elasticsearch, index_name: str) -> None:
    alias = f"{index_name}-only-b"
    es.indices.create(index=index_name, mappings={"properties": {"tag": {"type": "keyword"}}},
                      aliases={alias: {"filter": {"term": {"tag": "b"}}}})
    es.index(index=index_name, id="1", document={"tag": "a"})
    es.index(index=index_name, id="2", document={"tag": "b"}, refresh=True)
    assert [h["_id"] for h in es.search(index=alias)["hits"]["hits"]] == ["2"]
    assert es.count(index=alias)["count"] == 1
    assert es.count(index=index_name)["count"] == 2


def test_alias_name_clash_with_index(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=f"{index_name}-1")
    es.indices.create(index=f"{index_name}-2")
    with pytest.raises(BadRequestError) as err:
        es.indices.put_alias(index=f"{index_name}-1", name=f"{index_name}-2")
    assert err.value.body["error"]["type"] == "invalid_alias_name_exception"


def test_cat_aliases(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, aliases={f"{index_name}-w": {"is_write_index": True}})
    rows = es.cat.aliases(name=f"{index_name}-w", format="json")
    assert [(r["alias"], r["index"], r["is_write_index"]) for r in rows] == [(f"{index_name}-w", index_name, "true")]
