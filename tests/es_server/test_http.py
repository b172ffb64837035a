"""HTTP layer: product header, info, media types, errors for unknown routes and bad JSON, gzip, filter_path."""

from __future__ import annotations

import gzip
import json

import pytest
from elasticsearch import Elasticsearch

from tests.es_server.rawhttp import raw_client

COMPAT8 = "application/vnd.elasticsearch+json; compatible-with=8"
COMPAT9 = "application/vnd.elasticsearch+json; compatible-with=9"


@pytest.fixture
def http(es_url: str):
    with raw_client(es_url) as client:
        yield client


def test_info_body_and_product_header(http) -> None:
    resp = http.get("/")
    assert resp.status_code == 200
    assert resp.headers["X-Elastic-Product"] == "Elasticsearch"
    body = resp.json()
    assert body["version"]["number"].startswith("8.18.")
    assert body["version"]["build_flavor"] == "default"
    for key in ("lucene_version", "minimum_wire_compatibility_version", "minimum_index_compatibility_version"):
        assert body["version"][key]
    assert body["tagline"] == "You Know, for Search"
    assert body["cluster_name"] and body["cluster_uuid"]


def test_product_header_on_errors_too(http) -> None:
    resp = http.get("/no-such-index-for-header-test/_doc/1")
    assert resp.status_code == 404
    assert resp.headers["X-Elastic-Product"] == "Elasticsearch"


def test_head_root_is_status_only(http) -> None:
    resp = http.head("/")
    assert resp.status_code == 200
    assert resp.content == b""


def test_official_client_info_and_ping(es: Elasticsearch) -> None:
    assert es.ping()
    assert es.info()["version"]["number"].startswith("8.")


def test_compatible_with_8_is_echoed(http) -> None:
    resp = http.get("/", headers={"Accept": COMPAT8})
    assert resp.status_code == 200
    assert resp.headers["Content-Type"].replace(" ", "") == "application/vnd.elasticsearch+json;compatible-with=8"


def test_compatible_with_8_request_body(http, index_name: str) -> None:
    resp = http.put(f"/{index_name}", headers={"Accept": COMPAT8, "Content-Type": COMPAT8},
                    content=json.dumps({"settings": {"number_of_replicas": 0}}))
    assert resp.status_code == 200
    assert resp.json()["acknowledged"] is True


def test_compatible_with_9_is_refused(http) -> None:
    resp = http.get("/", headers={"Accept": COMPAT9, "Content-Type": COMPAT9})
    assert resp.status_code == 400
    err = resp.json()["error"]
    assert err["type"] == "media_type_header_exception"
    assert "Accept version must be either version 8 or 7, but found 9" in err["caused_by"]["reason"]


def test_unknown_endpoint_answers_no_handler(http) -> None:
    resp = http.get("/_no_such_api/a/b/c")
    assert resp.status_code == 400
    assert resp.json() == {"error": "no handler found for uri [/_no_such_api/a/b/c] and method [GET]"}


def test_wrong_method_on_known_path_is_405(http) -> None:
    resp = http.delete("/_cluster/health")
    assert resp.status_code == 405
    body = resp.json()
    assert body["status"] == 405
    assert body["error"].startswith("Incorrect HTTP method for uri [/_cluster/health] and method [DELETE], allowed:")
    assert "GET" in body["error"]


def test_malformed_json_body(http, index_name: str) -> None:
    http.put(f"/{index_name}")
    resp = http.post(f"/{index_name}/_search", headers={"Content-Type": "application/json"},
                     content=b'{"query": {"match_all": {}')
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] in ("x_content_parse_exception", "parsing_exception")
    resp = http.put(f"/{index_name}/_doc/1", headers={"Content-Type": "application/json"}, content=b'{"a": }')
    assert resp.status_code == 400
    assert resp.json()["error"]["type"] == "document_parsing_exception"


def test_get_with_body_is_a_search(http, index_name: str) -> None:
    http.put(f"/{index_name}/_doc/1?refresh=true", json={"k": "v"})
    resp = http.request("GET", f"/{index_name}/_search", headers={"Content-Type": "application/json"},
                        content=json.dumps({"query": {"term": {"k.keyword": "v"}}}))
    assert resp.status_code == 200
    assert resp.json()["hits"]["total"]["value"] == 1


def test_gzip_request_body(http, index_name: str) -> None:
    body = gzip.compress(json.dumps({"msg": "compressed"}).encode())
    resp = http.put(f"/{index_name}/_doc/1", content=body,
                    headers={"Content-Type": "application/json", "Content-Encoding": "gzip"})
    assert resp.status_code == 201
    assert http.get(f"/{index_name}/_doc/1").json()["_source"] == {"msg": "compressed"}


def test_client_with_http_compress(es_url: str, index_name: str) -> None:
    from tests.conftest import _client_options
    with Elasticsearch(es_url, http_compress=True, **_client_options()) as client:  # type: ignore[arg-type]
        client.index(index=index_name, id="z", document={"n": 1}, refresh=True)
        assert client.get(index=index_name, id="z")["_source"] == {"n": 1}


def test_filter_path(http) -> None:
    assert http.get("/", params={"filter_path": "version.number"}).json() == {
        "version": {"number": http.get("/").json()["version"]["number"]}}
    wild = http.get("/", params={"filter_path": "version.*_version"}).json()
    assert set(wild["version"]) >= {"lucene_version", "minimum_wire_compatibility_version"}
    assert "number" not in wild["version"]
    excluded = http.get("/", params={"filter_path": "-version,-cluster_uuid"}).json()
    assert "version" not in excluded and "tagline" in excluded


def test_filter_path_through_arrays(http, index_name: str) -> None:
    http.put(f"/{index_name}/_doc/1?refresh=true", json={"a": 1, "b": 2})
    resp = http.get(f"/{index_name}/_search", params={"filter_path": "hits.hits._id,hits.hits._source.a"})
    assert resp.json() == {"hits": {"hits": [{"_id": "1", "_source": {"a": 1}}]}}


def test_pretty_and_human_are_accepted(http) -> None:
    resp = http.get("/", params={"pretty": "true", "human": "true"})
    assert resp.status_code == 200
    assert resp.text.startswith("{\n")
    assert json.loads(resp.text)["tagline"] == "You Know, for Search"


def test_error_trace_is_accepted(http) -> None:
    resp = http.get("/no-such-index-error-trace/_doc/1", params={"error_trace": "true"})
    assert resp.status_code == 404
    assert resp.json()["error"]["type"] == "index_not_found_exception"


def test_content_type_missing_or_unsupported(http) -> None:
    missing = http.post("/_search", content=b'{"query": {"match_all": {}}}')
    assert missing.status_code == 406
    assert missing.json() == {"error": "Content-Type header is missing", "status": 406}
    wrong = http.post("/_search", content=b'{"query": {"match_all": {}}}', headers={"Content-Type": "text/plain"})
    assert wrong.status_code == 406
    assert wrong.json() == {"error": "Content-Type header [text/plain] is not supported", "status": 406}
