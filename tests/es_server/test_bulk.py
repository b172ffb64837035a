"""_bulk: per-item results and errors, top-level errors flag, malformed bodies, refresh."""

from __future__ import annotations

import pytest
from elasticsearch import BadRequestError, Elasticsearch

from tests.es_server.rawhttp import raw_client

ND = {"Content-Type": "application/x-ndjson"}


def test_bulk_mixed_actions_and_item_errors(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="exists", document={"n": 0})
    resp = es.bulk(operations=[
        {"index": {"_index": index_name, "_id": "1"}}, {"n": 1},
        {"create": {"_index": index_name, "_id": "exists"}}, {"n": 2},
        {"update": {"_index": index_name, "_id": "missing"}}, {"doc": {"n": 3}},
        {"update": {"_index": index_name, "_id": "exists"}}, {"doc": {"n": 4}},
        {"delete": {"_index": index_name, "_id": "nope"}},
        {"index": {"_index": index_name, "_id": "1", "if_seq_no": 99, "if_primary_term": 1}}, {"n": 5},
        {"update": {"_index": index_name, "_id": "up"}}, {"doc": {"n": 6}, "doc_as_upsert": True},
    ], refresh=True)
    assert resp["errors"] is True
    assert isinstance(resp["took"], int)
    items = resp["items"]
    assert items[0]["index"]["status"] == 201 and items[0]["index"]["result"] == "created"
    assert items[1]["create"]["status"] == 409
    assert items[1]["create"]["error"]["type"] == "version_conflict_engine_exception"
    assert items[1]["create"]["error"]["reason"] == (
        "[exists]: version conflict, document already exists (current version [1])")
    assert items[2]["update"]["status"] == 404
    assert items[2]["update"]["error"]["type"] == "document_missing_exception"
    assert items[3]["update"]["status"] == 200 and items[3]["update"]["result"] == "updated"
    assert items[4]["delete"]["status"] == 404 and items[4]["delete"]["result"] == "not_found"
    assert "error" not in items[4]["delete"]
    assert items[5]["index"]["status"] == 409
    assert items[6]["update"]["status"] == 201 and items[6]["update"]["result"] == "created"
    assert es.count(index=index_name)["count"] == 3


def test_bulk_without_errors_and_default_index(es: Elasticsearch, index_name: str) -> None:
    resp = es.bulk(index=index_name, operations=[{"index": {"_id": "a"}}, {"v": 1}, {"create": {}}, {"v": 2}])
    assert resp["errors"] is False
    assert [next(iter(i)) for i in resp["items"]] == ["index", "create"]
    assert all(i[k]["_index"] == index_name for i in resp["items"] for k in i)


def test_bulk_item_error_when_alias_has_no_write_index(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=f"{index_name}-1", aliases={f"{index_name}-alias": {}})
    es.indices.create(index=f"{index_name}-2", aliases={f"{index_name}-alias": {}})
    resp = es.bulk(operations=[{"index": {"_index": f"{index_name}-alias"}}, {"f": 1}])
    item = resp["items"][0]["index"]
    assert resp["errors"] is True and item["status"] == 400
    assert item["error"]["type"] == "illegal_argument_exception"
    assert item["error"]["reason"].startswith(f"no write index is defined for alias [{index_name}-alias].")


def test_bulk_empty_id_is_an_item_error(es: Elasticsearch, index_name: str) -> None:
    resp = es.bulk(operations=[{"index": {"_index": index_name, "_id": ""}}, {"f": 1},
                               {"index": {"_index": index_name}}, {"f": 2}])
    assert resp["items"][0]["index"]["status"] == 400
    assert resp["items"][0]["index"]["error"]["reason"] == "if _id is specified it must not be empty"
    assert resp["items"][1]["index"]["result"] == "created"


@pytest.mark.parametrize(("body", "reason"), [
    (b'{"index": {"_index": "x", "_id": "1"}}\n{"f": 1}\n{}\n',
     "Malformed action/metadata line [3], expected FIELD_NAME but found [END_OBJECT]"),
    (b'{"explode": {"_index": "x"}}\n{"f": 1}\n',
     "Malformed action/metadata line [1], expected one of [create, delete, index, update] but found [explode]"),
    (b'{"index": {"_index": "x", "bogus": 1}}\n{"f": 1}\n',
     "Action/metadata line [1] contains an unknown parameter [bogus]"),
    (b'{"index": {"_index": "x"}}\n{"f": 1}',
     "The bulk request must be terminated by a newline [\\n]"),
])
def test_bulk_malformed_bodies(es_url: str, body: bytes, reason: str) -> None:
    with raw_client(es_url) as http:
        resp = http.post("/_bulk", content=body, headers=ND)
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["type"] == "illegal_argument_exception"
    assert err["reason"] == reason


def test_bulk_bad_json_line_is_a_parse_error(es_url: str) -> None:
    with raw_client(es_url) as http:
        resp = http.post("/_bulk", content=b'{"index": {"_index": "x"\n{"f": 1}\n', headers=ND)
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] in ("x_content_parse_exception", "json_parse_exception",
                                            "illegal_argument_exception")


def test_bulk_index_missing_everywhere_is_validation_error(es: Elasticsearch) -> None:
    with pytest.raises(BadRequestError) as err:
        es.bulk(operations=[{"index": {}}, {"f": 1}])
    assert err.value.body["error"]["type"] == "action_request_validation_exception"
    assert "index is missing" in err.value.body["error"]["reason"]


def test_bulk_update_returns_source(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="1", document={"foo": "bar", "bar": "foo"})
    resp = es.bulk(operations=[{"update": {"_index": index_name, "_id": "1", "_source": True}},
                               {"doc": {"foo": "baz"}}])
    assert resp["items"][0]["update"]["get"]["_source"] == {"foo": "baz", "bar": "foo"}


def test_bulk_refresh_wait_for(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index.refresh_interval": "100ms"})
    es.bulk(operations=[{"index": {"_index": index_name}}, {"f": 1}], refresh="wait_for")
    assert es.count(index=index_name)["count"] == 1


def test_bulk_bad_document_fails_only_its_item(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, mappings={"properties": {"n": {"type": "long"}}})
    resp = es.bulk(operations=[{"index": {"_index": index_name, "_id": "1"}}, {"n": "not a number"},
                               {"index": {"_index": index_name, "_id": "2"}}, {"n": 2}], refresh=True)
    assert resp["errors"] is True
    assert resp["items"][0]["index"]["status"] == 400
    assert resp["items"][0]["index"]["error"]["type"] == "document_parsing_exception"
    assert resp["items"][1]["index"]["status"] == 201


def test_client_helpers_bulk_and_scan(es: Elasticsearch, index_name: str) -> None:
    from elasticsearch import helpers
    ok, errors = helpers.bulk(es, ({"_index": index_name, "_id": str(i), "n": i} for i in range(250)),
                              refresh=True)
    assert (ok, errors) == (250, [])
    scanned = list(helpers.scan(es, index=index_name, size=40, query={"query": {"range": {"n": {"gte": 50}}}}))
    assert sorted(int(h["_id"]) for h in scanned) == list(range(50, 250))
