"""Basic and ApiKey authentication with ES's 401 bodies, and HTTPS verified against the test CA."""

from __future__ import annotations

import base64
import ssl
from collections.abc import Iterator

import httpx
import pytest
from elasticsearch import AuthenticationException, Elasticsearch
from elasticsearch import ConnectionError as ESConnectionError

from tests.fakes import tls
from tests.fakes.process import RunningServer, start_server

# fake_only: the test server's own authentication and TLS (x-pack security, which the Maven-built node lacks).
pytestmark = pytest.mark.fake_only

USER, PASSWORD = "elastic", "s3cret-pass"
API_ID, API_KEY = "VuaCfGcBCdbkQm-e5aOx", "ui2lp2axTNmsyakw9tvNnw"


@pytest.fixture(scope="module")
def basic_server() -> Iterator[RunningServer]:
    server = start_server("tests.fakes.elasticsearch", ["--user", USER, "--password", PASSWORD])
    yield server
    assert server.stop() == 0


@pytest.fixture(scope="module")
def apikey_server() -> Iterator[RunningServer]:
    server = start_server("tests.fakes.elasticsearch", ["--api-key", f"{API_ID}:{API_KEY}"])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def tls_server(server_cert: tls.ServerCert) -> Iterator[RunningServer]:
    server = start_server("tests.fakes.elasticsearch",
                          ["--tls-cert", str(server_cert.cert), "--tls-key", str(server_cert.key),
                           "--user", USER, "--password", PASSWORD])
    yield server
    server.stop()


def _basic(user: str, password: str) -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def test_missing_credentials(basic_server: RunningServer) -> None:
    resp = httpx.get(basic_server.url + "/_cluster/health")
    assert resp.status_code == 401
    err = resp.json()["error"]
    assert err["type"] == "security_exception"
    assert err["reason"] == "missing authentication credentials for REST request [/_cluster/health]"
    assert err["root_cause"][0]["type"] == "security_exception"
    challenges = resp.headers.get_list("WWW-Authenticate")
    assert 'Basic realm="security" charset="UTF-8"' in challenges and "ApiKey" in challenges


def test_wrong_password(basic_server: RunningServer) -> None:
    resp = httpx.get(basic_server.url + "/", headers={"Authorization": _basic(USER, "nope")})
    assert resp.status_code == 401
    assert resp.json()["error"]["reason"] == f"unable to authenticate user [{USER}] for REST request [/]"


def test_basic_auth_with_official_client(basic_server: RunningServer, index_name: str) -> None:
    with Elasticsearch(basic_server.url, basic_auth=(USER, PASSWORD)) as client:
        client.index(index=index_name, id="1", document={"a": 1}, refresh=True)
        assert client.count(index=index_name)["count"] == 1
    with Elasticsearch(basic_server.url, basic_auth=(USER, "bad")) as bad, pytest.raises(AuthenticationException):
        bad.info()


def test_fake_controls_need_no_auth(basic_server: RunningServer) -> None:
    assert httpx.get(basic_server.url + "/_fake/faults").status_code == 200


def test_api_key(apikey_server: RunningServer) -> None:
    with Elasticsearch(apikey_server.url, api_key=(API_ID, API_KEY)) as client:
        assert client.info()["tagline"] == "You Know, for Search"
    encoded = base64.b64encode(f"{API_ID}:{API_KEY}".encode()).decode()
    with Elasticsearch(apikey_server.url, api_key=encoded) as client:
        assert client.ping()
    resp = httpx.get(apikey_server.url + "/", headers={"Authorization": "ApiKey " + base64.b64encode(
        b"wrong:key").decode()})
    assert resp.status_code == 401
    assert resp.json()["error"]["type"] == "security_exception"
    assert "ApiKey" in resp.headers.get_list("WWW-Authenticate")
    assert httpx.get(apikey_server.url + "/").status_code == 401


def test_https_verified_with_ca(tls_server: RunningServer, test_ca: tls.TestCA) -> None:
    assert tls_server.url.startswith("https://")
    with Elasticsearch(tls_server.url, ca_certs=str(test_ca.cert_path), basic_auth=(USER, PASSWORD)) as client:
        assert client.info()["version"]["number"].startswith("8.")


def test_https_without_ca_fails(tls_server: RunningServer) -> None:
    with Elasticsearch(tls_server.url, basic_auth=(USER, PASSWORD), max_retries=0) as client, \
            pytest.raises(ESConnectionError):
        client.info()
    ctx = ssl.create_default_context()
    with pytest.raises(httpx.ConnectError):
        httpx.get(tls_server.url + "/", verify=ctx)
