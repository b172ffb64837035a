"""Single-document APIs: results, statuses, versions, seq_no, conflicts, update merge, _source, mget."""

from __future__ import annotations

import re

import pytest
from elasticsearch import BadRequestError, ConflictError, Elasticsearch, NotFoundError

from tests.es_server.rawhttp import raw_client


def test_index_create_get_delete_cycle(es: Elasticsearch, index_name: str) -> None:
    created = es.index(index=index_name, id="1", document={"a": 1})
    assert created.meta.status == 201
    assert created["result"] == "created"
    assert (created["_version"], created["_seq_no"], created["_primary_term"]) == (1, 0, 1)
    assert created["_shards"]["successful"] >= 1 and created["_shards"]["failed"] == 0
    updated = es.index(index=index_name, id="1", document={"a": 2})
    assert updated.meta.status == 200
    assert (updated["result"], updated["_version"], updated["_seq_no"]) == ("updated", 2, 1)
    got = es.get(index=index_name, id="1")
    assert got["found"] is True and got["_source"] == {"a": 2}
    assert (got["_version"], got["_seq_no"], got["_primary_term"]) == (2, 1, 1)
    deleted = es.delete(index=index_name, id="1")
    assert (deleted["result"], deleted["_version"], deleted["_seq_no"]) == ("deleted", 3, 2)
    with pytest.raises(NotFoundError) as missing:
        es.delete(index=index_name, id="1")
    assert missing.value.body["result"] == "not_found"


def test_get_missing_doc_body(es_url: str, index_name: str, es: Elasticsearch) -> None:
    es.indices.create(index=index_name)
    with raw_client(es_url) as http:
        resp = http.get(f"/{index_name}/_doc/nope")
        assert resp.status_code == 404
        assert resp.json() == {"_index": index_name, "_id": "nope", "found": False}
        assert http.head(f"/{index_name}/_doc/nope").status_code == 404
        missing_index = http.get(f"/{index_name}-absent/_doc/1")
        assert missing_index.status_code == 404
        assert missing_index.json()["error"]["type"] == "index_not_found_exception"
    assert not es.exists(index=index_name, id="nope")


def test_auto_id_looks_like_es(es: Elasticsearch, index_name: str) -> None:
    resp = es.index(index=index_name, document={"x": 1})
    assert resp["result"] == "created"
    assert re.fullmatch(r"[A-Za-z0-9_-]{20}", resp["_id"])
    assert es.get(index=index_name, id=resp["_id"])["_source"] == {"x": 1}


def test_create_conflict(es: Elasticsearch, index_name: str) -> None:
    assert es.create(index=index_name, id="c", document={"v": 1})["result"] == "created"
    with pytest.raises(ConflictError) as err:
        es.create(index=index_name, id="c", document={"v": 2})
    assert err.value.body["error"]["type"] == "version_conflict_engine_exception"
    assert err.value.body["error"]["reason"] == "[c]: version conflict, document already exists (current version [1])"
    with pytest.raises(ConflictError):
        es.index(index=index_name, id="c", document={"v": 3}, op_type="create")


def test_if_seq_no_conflicts(es: Elasticsearch, index_name: str) -> None:
    first = es.index(index=index_name, id="1", document={"v": 1})
    es.index(index=index_name, id="1", document={"v": 2})
    with pytest.raises(ConflictError) as err:
        es.index(index=index_name, id="1", document={"v": 3}, if_seq_no=first["_seq_no"],
                 if_primary_term=first["_primary_term"])
    assert err.value.body["error"]["reason"] == (
        "[1]: version conflict, required seqNo [0], primary term [1]. current document has seqNo [1] and "
        "primary term [1]")
    ok = es.index(index=index_name, id="1", document={"v": 3}, if_seq_no=1, if_primary_term=1)
    assert ok["_version"] == 3
    with pytest.raises(ConflictError):
        es.delete(index=index_name, id="1", if_seq_no=0, if_primary_term=1)
    with pytest.raises(ConflictError):
        es.update(index=index_name, id="1", doc={"v": 4}, if_seq_no=0, if_primary_term=1)
    assert es.update(index=index_name, id="1", doc={"v": 4}, if_seq_no=2, if_primary_term=1)["result"] == "updated"
    with pytest.raises(NotFoundError):
        es.update(index=index_name, id="missing", doc={"v": 1}, if_seq_no=0, if_primary_term=1)


def test_external_version(es: Elasticsearch, index_name: str) -> None:
    assert es.index(index=index_name, id="1", document={}, version=5, version_type="external")["_version"] == 5
    with pytest.raises(ConflictError) as err:
        es.index(index=index_name, id="1", document={}, version=5, version_type="external")
    assert "current version [5] is higher or equal to the one provided [5]" in err.value.body["error"]["reason"]
    assert es.index(index=index_name, id="1", document={}, version=9, version_type="external")["_version"] == 9


def test_update_partial_merge_semantics(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="1", document={
        "a": {"b": 1, "c": [1, 2], "d": {"e": 1}}, "list": [{"x": 1}], "k": "v", "m.n": 1})
    resp = es.update(index=index_name, id="1", doc={"a": {"c": [3], "d": {"f": 2}}, "list": [{"y": 2}],
                                                    "m": {"n": 2}, "new": True})
    assert (resp["result"], resp["_version"]) == ("updated", 2)
    src = es.get(index=index_name, id="1")["_source"]
    # A flat dotted key and an object path are distinct keys of the source map: both stay.
    assert src == {"a": {"b": 1, "c": [3], "d": {"e": 1, "f": 2}}, "list": [{"y": 2}], "k": "v", "m.n": 1,
                   "m": {"n": 2}, "new": True}
    flat = es.update(index=index_name, id="1", doc={"m.n": 3})
    assert flat["result"] == "updated"
    assert es.get(index=index_name, id="1")["_source"]["m"] == {"n": 2}


def test_update_noop_and_detect_noop_false(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="1", document={"foo": "bar"})
    noop = es.update(index=index_name, id="1", doc={"foo": "bar"})
    assert (noop["result"], noop["_version"], noop["_seq_no"]) == ("noop", 1, 0)
    forced = es.update(index=index_name, id="1", doc={"foo": "bar"}, detect_noop=False)
    assert (forced["result"], forced["_version"], forced["_seq_no"]) == ("updated", 2, 1)


def test_update_missing_doc_upsert_and_doc_as_upsert(es: Elasticsearch, index_name: str) -> None:
    with pytest.raises(NotFoundError) as err:
        es.update(index=index_name, id="1", doc={"a": 1})
    assert err.value.body["error"]["type"] == "document_missing_exception"
    assert err.value.body["error"]["reason"] == "[1]: document missing"
    up = es.update(index=index_name, id="1", doc={"a": 1}, upsert={"a": 0, "u": True})
    assert up.meta.status == 201 and up["result"] == "created"
    assert es.get(index=index_name, id="1")["_source"] == {"a": 0, "u": True}
    again = es.update(index=index_name, id="1", doc={"a": 1}, upsert={"a": 0})
    assert again["result"] == "updated"
    assert es.get(index=index_name, id="1")["_source"] == {"a": 1, "u": True}
    das = es.update(index=index_name, id="2", doc={"z": 1}, doc_as_upsert=True)
    assert das["result"] == "created"
    assert es.get(index=index_name, id="2")["_source"] == {"z": 1}


def test_update_returns_source_when_asked(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="1", document={"a": 1, "b": 2})
    resp = es.update(index=index_name, id="1", doc={"a": 5}, source=True)
    assert resp["get"]["found"] is True
    assert resp["get"]["_source"] == {"a": 5, "b": 2}
    partial = es.update(index=index_name, id="1", doc={"a": 6}, source_includes=["a"])
    assert partial["get"]["_source"] == {"a": 6}


def test_update_unknown_field_suggests(es: Elasticsearch, index_name: str) -> None:
    with pytest.raises(BadRequestError) as err:
        es.update(index=index_name, id="1", body={"dac": {"a": 1}})
    assert "[UpdateRequest] unknown field [dac] did you mean [doc]?" in err.value.body["error"]["reason"]


def test_get_source_filtering_and_source_endpoint(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="1", document={"a": {"x": 1, "y": 2}, "b": 3})
    assert es.get(index=index_name, id="1", source_includes=["a.x"])["_source"] == {"a": {"x": 1}}
    assert es.get(index=index_name, id="1", source_excludes=["a"])["_source"] == {"b": 3}
    assert "_source" not in es.get(index=index_name, id="1", source=False)
    assert es.get_source(index=index_name, id="1") == {"a": {"x": 1, "y": 2}, "b": 3}
    with pytest.raises(NotFoundError):
        es.get_source(index=index_name, id="nope")


def test_realtime_get_sees_unrefreshed_writes(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index.refresh_interval": "-1"})
    es.index(index=index_name, id="1", document={"a": 1})
    assert es.get(index=index_name, id="1")["found"] is True
    with pytest.raises(NotFoundError):
        es.get(index=index_name, id="1", realtime=False)
    es.indices.refresh(index=index_name)
    assert es.get(index=index_name, id="1", realtime=False)["found"] is True


def test_mget_docs_and_ids(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="1", document={"a": 1})
    es.index(index=index_name, id="2", document={"a": 2})
    by_ids = es.mget(index=index_name, ids=["1", "3"])
    assert [d["found"] for d in by_ids["docs"]] == [True, False]
    assert by_ids["docs"][0]["_source"] == {"a": 1}
    docs = es.mget(docs=[{"_index": index_name, "_id": "2"}, {"_index": f"{index_name}-absent", "_id": "1"}])
    assert docs["docs"][0]["_source"] == {"a": 2}
    assert docs["docs"][1]["error"]["type"] == "index_not_found_exception"


def test_write_auto_creates_index(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="1", document={"n": 1})
    assert es.indices.exists(index=index_name)


def test_refresh_true_reports_forced_refresh(es: Elasticsearch, index_name: str) -> None:
    resp = es.index(index=index_name, id="1", document={"n": 1}, refresh=True)
    assert resp["forced_refresh"] is True
    assert es.count(index=index_name)["count"] == 1


def test_scripted_updates(es: Elasticsearch, index_name: str) -> None:
    es.index(index=index_name, id="1", document={"n": 1, "tags": ["a"]})
    resp = es.update(index=index_name, id="1", script={"source": "ctx._source.n += params.inc; "
                                                                 "ctx._source.tags.add(params.tag)",
                                                       "params": {"inc": 2, "tag": "b"}})
    assert (resp["result"], resp["_version"]) == ("updated", 2)
    assert es.get(index=index_name, id="1")["_source"] == {"n": 3, "tags": ["a", "b"]}
    noop = es.update(index=index_name, id="1", script="ctx.op = 'noop'")
    assert (noop["result"], noop["_version"]) == ("noop", 2)
    upserted = es.update(index=index_name, id="2", script={"source": "ctx._source.n += 1"}, upsert={"n": 0})
    assert upserted["result"] == "created"
    assert es.get(index=index_name, id="2")["_source"] == {"n": 0}
    gone = es.update(index=index_name, id="2", script="ctx.op = 'delete'")
    assert gone["result"] == "deleted"
    with pytest.raises(BadRequestError) as err:
        es.update(index=index_name, id="1", script="ctx._source.missing.field = 1")
    assert err.value.body["error"]["caused_by"]["type"] == "script_exception"


def test_kibana_tag_script_via_update_by_query(es: Elasticsearch, index_name: str) -> None:
    """The painless Kibana runs for POST /api/detection_engine/signals/tags."""
    source = """List newTagsArray = [];
        if (ctx._source["kibana.alert.workflow_tags"] != null) {
          for (tag in ctx._source["kibana.alert.workflow_tags"]) {
            if (!params.tagsToRemove.contains(tag)) { newTagsArray.add(tag); }
          }
          for (tag in params.tagsToAdd) {
            if (!newTagsArray.contains(tag)) { newTagsArray.add(tag) }
          }
          ctx._source["kibana.alert.workflow_tags"] = newTagsArray;
        } else {
          ctx._source["kibana.alert.workflow_tags"] = params.tagsToAdd;
        }"""
    es.index(index=index_name, id="1", document={"kibana.alert.workflow_tags": ["x", "AI: Re-assess"]})
    es.index(index=index_name, id="2", document={"other": 1}, refresh=True)
    resp = es.update_by_query(index=index_name, refresh=True, conflicts="proceed", script={
        "source": source, "lang": "painless", "params": {"tagsToAdd": ["done"], "tagsToRemove": ["AI: Re-assess"]}})
    assert resp["updated"] == 2
    assert es.get(index=index_name, id="1")["_source"]["kibana.alert.workflow_tags"] == ["x", "done"]
    assert es.get(index=index_name, id="2")["_source"]["kibana.alert.workflow_tags"] == ["done"]


def test_update_by_query_conflict_on_unrefreshed_change(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, settings={"index.refresh_interval": "-1"})
    es.index(index=index_name, id="1", document={"v": 1}, refresh=True)
    es.index(index=index_name, id="1", document={"v": 2})          # not yet refreshed: the snapshot is stale
    with pytest.raises(ConflictError) as err:
        es.update_by_query(index=index_name)
    assert err.value.body["version_conflicts"] == 1
    assert err.value.body["failures"][0]["cause"]["type"] == "version_conflict_engine_exception"
    proceed = es.update_by_query(index=index_name, conflicts="proceed")
    assert (proceed["updated"], proceed["version_conflicts"]) == (0, 1)
