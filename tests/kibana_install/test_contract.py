"""The Kibana test double answers as recorded in tests/fakes/kibana/contract.json (raw HTTP, no client code)."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.fakes.process import RunningServer, start_server
from tests.kibana_install.conftest import PASSWORD, USER
from worker.admin.kibana import DEFAULT_NDJSON

CONTRACT = json.loads((Path(__file__).resolve().parents[1] / "fakes" / "kibana" / "contract.json").read_text())
ENDPOINTS = {e["name"]: e for e in CONTRACT["endpoints"]}
AUTH = (USER, PASSWORD)
XSRF = {"kbn-xsrf": "true"}


def recorded(endpoint: str, case: str) -> dict[str, Any]:
    return ENDPOINTS[endpoint]["responses"][case]  # type: ignore[no-any-return]


def upload(url: str, overwrite: bool, *, content: bytes | None = None, name: str = "lme-enrich.ndjson",
           headers: dict[str, str] | None = None, auth: tuple[str, str] | None = AUTH) -> httpx.Response:
    return httpx.post(f"{url}/api/saved_objects/_import", params={"overwrite": str(overwrite).lower()},
                      headers=XSRF if headers is None else headers, auth=auth, timeout=10,
                      files={"file": (name, DEFAULT_NDJSON.read_bytes() if content is None else content,
                                      "application/ndjson")})


def test_every_entry_names_its_sources() -> None:
    for endpoint in CONTRACT["endpoints"]:
        assert endpoint["sources"], endpoint["name"]
        assert all(str(case["status"]).isdigit() for case in endpoint["responses"].values())


def test_import_success_shape(kibana_url: str) -> None:
    response = upload(kibana_url, overwrite=True)
    body = response.json()
    expected = recorded("import", "200_success")["body"]
    assert response.status_code == 200
    assert set(body) == set(expected)
    assert body["success"] is True and body["successCount"] == len(body["successResults"]) == 12
    assert set(body["successResults"][0]) == {"type", "id", "meta", "managed"}
    again = upload(kibana_url, overwrite=True).json()
    assert all(result["overwrite"] is True for result in again["successResults"])


def test_import_conflict_shape(kibana_url: str) -> None:
    upload(kibana_url, overwrite=True)
    response = upload(kibana_url, overwrite=False)
    body = response.json()
    expected = recorded("import", "200_conflict")["body"]
    assert response.status_code == 200
    assert set(body) == set(expected) and body["success"] is False and body["successCount"] == 0
    dashboard = next(e for e in body["errors"] if e["type"] == "dashboard")
    assert dashboard == expected["errors"][0]


@pytest.mark.parametrize(("case", "kwargs"), [
    ("400_no_xsrf", {"headers": {}}),
    ("400_bad_file", {"name": "objects.txt"}),
    ("401_no_credentials", {"auth": None}),
])
def test_import_error_bodies(kibana_url: str, case: str, kwargs: dict[str, Any]) -> None:
    response = upload(kibana_url, overwrite=True, **kwargs)
    expected = recorded("import", case)
    assert response.status_code == expected["status"]
    assert response.json() == expected["body"]


def test_bad_credentials_body(kibana_url: str) -> None:
    response = upload(kibana_url, overwrite=True, auth=(USER, "nope"))
    expected = recorded("import", "401_bad_credentials")["body"]
    body = response.json()
    assert response.status_code == 401
    assert (body["statusCode"], body["error"]) == (expected["statusCode"], expected["error"])
    assert body["message"].startswith("[security_exception") and f"[{USER}]" in body["message"]


def test_settings_round_trip(kibana_url: str) -> None:
    assert "securitySolution:alertTags" not in httpx.get(f"{kibana_url}/api/kibana/settings", auth=AUTH).json()[
        "settings"]
    tags = recorded("set settings", "200")["body"]["settings"]["securitySolution:alertTags"]["userValue"]
    response = httpx.post(f"{kibana_url}/api/kibana/settings", auth=AUTH, headers=XSRF,
                          json={"changes": {"securitySolution:alertTags": tags}})
    assert response.status_code == 200
    assert response.json()["settings"]["securitySolution:alertTags"] == {"userValue": tags}
    bad = httpx.post(f"{kibana_url}/api/kibana/settings", auth=AUTH, headers=XSRF,
                     json={"changes": {"securitySolution:alertTags": "AI: Re-assess"}})
    assert bad.status_code == 400 and bad.json()["message"].startswith("[validation [securitySolution:alertTags]]")


@pytest.fixture
def starting() -> Iterator[RunningServer]:
    server = start_server("tests.fakes.kibana", ["--not-ready-for", "60"])
    yield server
    server.stop()


def test_not_ready_answers(starting: RunningServer) -> None:
    status = httpx.get(f"{starting.url}/api/status")
    assert status.status_code == 503 and status.json() == recorded("status", "503_not_ready")["body"]
    other = httpx.get(f"{starting.url}/api/kibana/settings")
    assert other.status_code == 503 and other.text == recorded("status", "503_other_routes_while_starting")["body"]


def test_anonymous_status_is_redacted(kibana_url: str) -> None:
    response = httpx.get(f"{kibana_url}/api/status")
    assert response.status_code == 200
    assert response.json() == recorded("status", "200_anonymous_redacted")["body"]
    full = httpx.get(f"{kibana_url}/api/status", auth=AUTH).json()
    assert full["status"]["overall"]["level"] == "available" and full["version"]["number"] == "8.18.8"


def test_server_stops_cleanly_on_sigterm() -> None:
    server = start_server("tests.fakes.kibana")
    assert httpx.get(f"{server.url}/api/status").status_code == 200
    assert server.stop() == 0
