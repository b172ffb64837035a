"""Index lifecycle: create/exists/get/delete, name rules, settings rendering, mappings, cat and health."""

from __future__ import annotations

import pytest
from elasticsearch import BadRequestError, Elasticsearch, NotFoundError

from tests.es_server.rawhttp import raw_client


def test_create_exists_delete(es: Elasticsearch, index_name: str) -> None:
    resp = es.indices.create(index=index_name)
    assert dict(resp) == {"acknowledged": True, "shards_acknowledged": True, "index": index_name}
    assert es.indices.exists(index=index_name)
    with pytest.raises(BadRequestError) as err:
        es.indices.create(index=index_name)
    assert err.value.body["error"]["type"] == "resource_already_exists_exception"
    assert err.value.body["error"]["reason"].startswith(f"index [{index_name}/")
    assert dict(es.indices.delete(index=index_name)) == {"acknowledged": True}
    assert not es.indices.exists(index=index_name)
    with pytest.raises(NotFoundError) as missing:
        es.indices.delete(index=index_name)
    assert missing.value.body["error"]["type"] == "index_not_found_exception"
    assert missing.value.body["error"]["reason"] == f"no such index [{index_name}]"


@pytest.mark.parametrize(("name", "problem"), [
    ("UPPER", "must be lowercase"),
    ("a*b", "must not contain the following characters"),
    ("a?b", "must not contain the following characters"),
    ("a b", "must not contain the following characters"),
    ("a#b", "must not contain '#'"),
    ("_under", "must not start with '_', '-', or '+'"),
    ("-dash", "must not start with '_', '-', or '+'"),
    ("+plus", "must not start with '_', '-', or '+'"),
])
def test_invalid_index_names(es_url: str, name: str, problem: str) -> None:
    with raw_client(es_url) as http:
        resp = http.put("/" + name.replace("#", "%23").replace("?", "%3F").replace(" ", "%20"))
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["type"] == "invalid_index_name_exception"
    assert err["reason"].startswith(f"Invalid index name [{name}], {problem}")


def test_get_index_renders_settings_as_es(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"number_of_shards": 1, "number_of_replicas": 0,
                                                  "index.refresh_interval": "5s"},
                      mappings={"properties": {"k": {"type": "keyword"}}}, aliases={f"{index_name}-a": {}})
    body = es.indices.get(index=index_name)[index_name]
    idx = body["settings"]["index"]
    assert idx["number_of_shards"] == "1" and idx["number_of_replicas"] == "0"
    assert idx["refresh_interval"] == "5s"
    assert idx["provided_name"] == index_name
    assert idx["creation_date"].isdigit() and len(idx["uuid"]) >= 20
    assert idx["version"]["created"].isdigit()
    assert body["mappings"] == {"properties": {"k": {"type": "keyword"}}}
    assert body["aliases"] == {f"{index_name}-a": {}}
    flat = es.indices.get_settings(index=index_name, flat_settings=True)[index_name]["settings"]
    assert flat["index.number_of_shards"] == "1"
    named = es.indices.get_settings(index=index_name, name="index.refresh_interval")
    assert named[index_name]["settings"] == {"index": {"refresh_interval": "5s"}}


def test_get_missing_index(es: Elasticsearch, index_name: str) -> None:
    with pytest.raises(NotFoundError) as err:
        es.indices.get(index=index_name)
    assert err.value.body["error"]["type"] == "index_not_found_exception"
    assert err.value.body["error"]["resource.id"] == index_name
    assert dict(es.indices.get(index=index_name, ignore_unavailable=True)) == {}
    assert dict(es.indices.get(index=f"{index_name}*")) == {}
    with pytest.raises(NotFoundError):
        es.indices.get(index=f"{index_name}*", allow_no_indices=False)
    with pytest.raises(BadRequestError) as underscore:
        es.indices.get(index="_no_such_thing")
    assert underscore.value.body["error"]["type"] == "invalid_index_name_exception"


def test_delete_refuses_wildcards_and_aliases(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, aliases={f"{index_name}-alias": {}})
    with pytest.raises(BadRequestError) as err:
        es.indices.delete(index=f"{index_name}*")
    assert err.value.body["error"]["type"] == "illegal_argument_exception"
    with pytest.raises(BadRequestError) as via_alias:
        es.indices.delete(index=f"{index_name}-alias")
    assert "matches an alias" in via_alias.value.body["error"]["reason"]
    assert es.indices.exists(index=index_name)


def test_delete_comma_list(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=f"{index_name}-1")
    es.indices.create(index=f"{index_name}-2")
    es.indices.delete(index=f"{index_name}-1,{index_name}-2")
    assert not es.indices.exists(index=f"{index_name}-1")
    assert not es.indices.exists(index=f"{index_name}-2")


def test_put_and_get_mapping(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, mappings={"properties": {"a": {"type": "keyword"}}})
    es.indices.put_mapping(index=index_name, properties={"b": {"type": "long"}})
    props = es.indices.get_mapping(index=index_name)[index_name]["mappings"]["properties"]
    assert props == {"a": {"type": "keyword"}, "b": {"type": "long"}}
    with pytest.raises(BadRequestError) as err:
        es.indices.put_mapping(index=index_name, properties={"a": {"type": "long"}})
    assert err.value.body["error"]["type"] == "illegal_argument_exception"
    assert index_name in es.indices.get_mapping()


def test_put_settings_refresh_interval(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name)
    assert dict(es.indices.put_settings(index=index_name, settings={"index": {"refresh_interval": "30s"}})) == {
        "acknowledged": True}
    got = es.indices.get_settings(index=index_name)[index_name]["settings"]["index"]
    assert got["refresh_interval"] == "30s"
    with pytest.raises(BadRequestError) as err:
        es.indices.put_settings(index=index_name, settings={"index.number_of_shards": 3})
    assert "non dynamic settings" in err.value.body["error"]["reason"]


def test_hidden_setting_and_refresh(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index.hidden": True})
    assert es.indices.get_settings(index=index_name)[index_name]["settings"]["index"]["hidden"] == "true"
    resp = es.indices.refresh(index=index_name)
    assert resp["_shards"]["successful"] >= 1 and resp["_shards"]["failed"] == 0


def test_cat_indices_text_json_and_columns(es: Elasticsearch, es_url: str, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"number_of_replicas": 0})
    es.index(index=index_name, id="1", document={"a": 1}, refresh=True)
    rows = es.cat.indices(index=index_name, format="json", h="index,health,status,docs.count")
    assert [dict(r) for r in rows] == [{"index": index_name, "health": "green", "status": "open", "docs.count": "1"}]
    with raw_client(es_url) as http:
        text = http.get(f"/_cat/indices/{index_name}", params={"h": "index,docs.count", "v": "true"}).text
    lines = text.strip().splitlines()
    assert lines[0].split() == ["index", "docs.count"]
    assert lines[1].split() == [index_name, "1"]


def test_cat_indices_expand_wildcards(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=f"{index_name}-hidden", settings={"index.hidden": True})
    es.indices.create(index=f"{index_name}-open")
    opened = {r["index"] for r in es.cat.indices(index=f"{index_name}-*", format="json", expand_wildcards="open")}
    assert opened == {f"{index_name}-open"}
    everything = {r["index"] for r in es.cat.indices(index=f"{index_name}-*", format="json",
                                                     expand_wildcards="all")}
    assert everything == {f"{index_name}-open", f"{index_name}-hidden"}


def test_cluster_health(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"number_of_replicas": 0})
    health = es.cluster.health(index=index_name, wait_for_status="yellow")
    assert health["status"] in ("green", "yellow")
    assert health["number_of_nodes"] >= 1 and health["timed_out"] is False
    assert es.cluster.health()["status"] in ("green", "yellow")


def test_close_and_open(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name)
    es.index(index=index_name, id="1", document={"a": 1}, refresh=True)
    closed = es.indices.close(index=index_name)
    assert closed["acknowledged"] is True
    with pytest.raises(BadRequestError) as err:
        es.search(index=index_name)
    assert err.value.body["error"]["type"] == "index_closed_exception"
    es.indices.open(index=index_name)
    assert es.count(index=index_name)["count"] == 1
