"""The least-privilege role and API key (worker/admin/credentials.py), against ES 8.18's documented privileges."""

from __future__ import annotations

import base64
import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import BadRequestError, Elasticsearch

from tests.deploy.security_server import CLUSTER_PRIVILEGES, INDEX_PRIVILEGES
from tests.fakes.process import RunningServer, start_server
from worker.admin import credentials

ROOT = Path(__file__).resolve().parents[2]
PASSWORD = "admin-secret"


def _privileges(role: dict[str, Any]) -> dict[str, set[str]]:
    return {entry["names"][0]: set(entry["privileges"]) for entry in role["indices"]}


def test_role_uses_only_documented_privilege_names() -> None:
    modes: tuple[credentials.MappingPrivilege, ...] = ("write", "manage")
    for mode in modes:
        role = credentials.role_body(put_mapping_via=mode)
        assert set(role["cluster"]) <= CLUSTER_PRIVILEGES
        for entry in role["indices"]:
            assert set(entry["privileges"]) <= INDEX_PRIVILEGES, entry


def test_role_grants_what_the_worker_does_and_nothing_more() -> None:
    role = credentials.role_body()
    assert role["cluster"] == ["manage_index_templates"], "only our history template needs a cluster privilege"
    assert _privileges(role) == {
        ".alerts-security.alerts-*": {"read", "view_index_metadata"},
        ".internal.alerts-security.alerts-*": {"read", "view_index_metadata", "write"},
        "lme-ai-assessments*": {"create_index", "read", "view_index_metadata", "write", "manage"},
    }
    assert all(entry["allow_restricted_indices"] is False for entry in role["indices"])
    # Deleting Kibana's alert indices needs manage or delete_index: never on the default role.
    for names, privileges in _privileges(role).items():
        if "alerts" in names:
            assert not privileges & {"all", "manage", "delete", "delete_index"}, names


def test_manage_for_put_mapping_is_an_explicit_choice() -> None:
    role = credentials.role_body(put_mapping_via="manage")
    assert "manage" in _privileges(role)[".internal.alerts-security.alerts-*"]


def test_role_follows_a_narrower_alert_pattern() -> None:
    role = credentials.role_body(".alerts-security.alerts-default")
    assert set(_privileges(role)) >= {".alerts-security.alerts-default", ".internal.alerts-security.alerts-default"}
    with pytest.raises(ValueError, match="Kibana alert alias pattern"):
        credentials.backing_pattern("logs-*")


def test_shipped_role_file_is_the_role_body() -> None:
    shipped = json.loads((ROOT / "deploy" / "elasticsearch" / "lme-enrich-role.json").read_text(encoding="utf-8"))
    assert shipped == credentials.role_body()


def test_api_key_body_limits_the_key_to_the_role() -> None:
    role = credentials.role_body()
    body = credentials.api_key_body(role, expiration="365d")
    assert body["role_descriptors"] == {"lme-enrich": role}
    assert body["expiration"] == "365d"
    assert "expiration" not in credentials.api_key_body(role)


def test_encoded_key_falls_back_to_id_and_secret() -> None:
    assert credentials.encoded_key({"encoded": "abc"}) == "abc"
    assert base64.b64decode(credentials.encoded_key({"id": "i", "api_key": "k"})) == b"i:k"


@pytest.fixture
def security_server() -> Iterator[RunningServer]:
    server = start_server("tests.deploy.security_server", ["--password", PASSWORD])
    yield server
    server.stop()


def test_setup_creates_role_and_key_over_http(security_server: RunningServer) -> None:
    es = Elasticsearch(security_server.url, basic_auth=("elastic", PASSWORD))
    encoded = credentials.setup(es, expiration="90d")
    received = httpx.get(f"{security_server.url}/_test/requests").json()
    assert [(r["method"], r["path"]) for r in received] == [("PUT", "/_security/role/lme-enrich"),
                                                            ("PUT", "/_security/api_key")]
    assert received[0]["body"] == credentials.role_body()
    assert received[1]["body"]["role_descriptors"]["lme-enrich"] == credentials.role_body()
    assert received[1]["body"]["expiration"] == "90d"
    assert base64.b64decode(encoded).decode() == "key-1:secret-key-1"


def test_stand_in_refuses_an_unknown_privilege(security_server: RunningServer) -> None:
    es = Elasticsearch(security_server.url, basic_auth=("elastic", PASSWORD))
    with pytest.raises(BadRequestError, match="unknown index privilege"):
        es.security.put_role(name="x", indices=[{"names": ["a"], "privileges": ["put_mapping"]}])
