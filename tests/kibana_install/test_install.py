"""``worker.admin.kibana.install`` and ``lme-enrich kibana install`` against the Kibana test double (a real process)."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import httpx
import pytest

from tests.fakes import tls
from tests.fakes.process import ROOT, RunningServer, start_server
from tests.kibana_install.conftest import API_KEY, PASSWORD, READ_ONLY, USER, fake_state
from worker.admin import kibana
from worker.admin.kibana import DEFAULT_ALERT_TAGS, DEFAULT_NDJSON, ApiKey, BasicAuth, KibanaError

TAG = "AI: Re-assess"
AUTH = BasicAuth(USER, PASSWORD)
OBJECT_KEYS = {(json.loads(line)["type"], json.loads(line)["id"])
               for line in DEFAULT_NDJSON.read_text().splitlines() if line.strip()}


def run(url: str, auth: kibana.Auth = AUTH, verify: bool | str | Path = True, **kwargs: object) -> kibana.InstallResult:
    options: dict[str, object] = {"wait": 0, "timeout": 10, **kwargs}
    path = options.pop("path", DEFAULT_NDJSON)
    return kibana.install(url, auth, verify, path, TAG, **options)  # type: ignore[arg-type]


def alert_tags(url: str) -> list[str] | None:
    value = fake_state(url)["settings"].get("securitySolution:alertTags")
    return None if value is None else list(value)


def stored_keys(url: str) -> set[tuple[str, str]]:
    return {(o["type"], o["id"]) for o in fake_state(url)["objects"]}


def test_install_imports_every_object_and_adds_the_tag_to_the_defaults(kibana_url: str) -> None:
    result = run(kibana_url)
    assert {(kind, oid) for kind, oid, _ in result.imported} == OBJECT_KEYS
    assert stored_keys(kibana_url) == OBJECT_KEYS
    assert alert_tags(kibana_url) == [*DEFAULT_ALERT_TAGS, TAG]
    assert result.tag_added and result.alert_tags == [*DEFAULT_ALERT_TAGS, TAG]
    assert result.kibana_version == "8.18.8"
    imports = [r for r in fake_state(kibana_url)["requests"] if r["path"] == "/api/saved_objects/_import"]
    assert imports and all(r["headers"].get("kbn-xsrf") == "true" for r in imports)
    assert all(r["headers"]["content-type"].startswith("multipart/form-data") for r in imports)


def test_second_run_changes_nothing_and_does_not_duplicate_the_tag(kibana_url: str) -> None:
    run(kibana_url)
    before = fake_state(kibana_url)
    result = run(kibana_url)
    after = fake_state(kibana_url)
    assert not result.tag_added
    assert alert_tags(kibana_url) == [*DEFAULT_ALERT_TAGS, TAG]
    assert after["objects"] == before["objects"]
    settings_writes = [r for r in after["requests"][len(before["requests"]):]
                       if r["method"] == "POST" and r["path"] == "/api/kibana/settings"]
    assert settings_writes == []


def test_tags_an_admin_added_are_kept(kibana_url: str) -> None:
    custom = ["Duplicate", "Phishing", "Escalated to IR"]
    response = httpx.post(f"{kibana_url}/api/kibana/settings", auth=(USER, PASSWORD), headers={"kbn-xsrf": "true"},
                          json={"changes": {"securitySolution:alertTags": custom}})
    assert response.status_code == 200
    result = run(kibana_url)
    assert alert_tags(kibana_url) == [*custom, TAG] == result.alert_tags


def test_api_key_authentication(kibana_url: str) -> None:
    run(kibana_url, auth=ApiKey(API_KEY))
    assert stored_keys(kibana_url) == OBJECT_KEYS
    headers = [r["headers"].get("authorization") for r in fake_state(kibana_url)["requests"]
               if r["path"].startswith("/api/")]
    assert headers and set(headers) == {f"ApiKey {API_KEY}"}


def test_conflicts_are_reported_per_object_without_overwrite(kibana_url: str) -> None:
    run(kibana_url)
    with pytest.raises(KibanaError) as caught:
        run(kibana_url, overwrite=False)
    message = str(caught.value)
    assert "\n" not in message
    assert f"refused {len(OBJECT_KEYS)}" in message
    assert "dashboard lme-enrich-dashboard ('LME AI enrichment'): conflict" in message
    assert message.count(": conflict") == len(OBJECT_KEYS)


def test_missing_references_and_unknown_types_are_named(kibana_url: str, tmp_path: Path) -> None:
    broken = tmp_path / "broken.ndjson"
    objects = [
        {"type": "search", "id": "orphan", "attributes": {"title": "Orphan"}, "typeMigrationVersion": "10.5.0",
         "coreMigrationVersion": "8.8.0",
         "references": [{"type": "index-pattern", "id": "nowhere",
                         "name": "kibanaSavedObjectMeta.searchSourceJSON.index"}]},
        {"type": "widget", "id": "w1", "attributes": {"title": "Widget"}, "references": []},
    ]
    broken.write_text("".join(json.dumps(o) + "\n" for o in objects))
    with pytest.raises(KibanaError) as caught:
        run(kibana_url, path=broken)
    message = str(caught.value)
    assert "search orphan ('Orphan'): references missing objects: index-pattern nowhere" in message
    assert "widget w1 ('Widget'): unsupported type" in message
    assert alert_tags(kibana_url) is None, "nothing else is changed after a failed import"


def test_wrong_password_is_one_clear_line(kibana_url: str) -> None:
    with pytest.raises(KibanaError, match=r"refused the credentials \(HTTP 401\)") as caught:
        run(kibana_url, auth=BasicAuth(USER, "wrong"))
    assert "LME_ENRICH_KIBANA_USERNAME" in str(caught.value) and "wrong" not in str(caught.value)
    assert stored_keys(kibana_url) == set()


def test_missing_credentials(kibana_url: str) -> None:
    with pytest.raises(KibanaError, match=r"requires credentials \(HTTP 401\) for the saved objects import"):
        run(kibana_url, auth=None)


def test_user_without_write_privileges_gets_403(kibana_url: str) -> None:
    with pytest.raises(KibanaError, match=r"denied the saved objects import \(HTTP 403: Unable to bulk_create"):
        run(kibana_url, auth=BasicAuth(*READ_ONLY))
    assert stored_keys(kibana_url) == set()


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def test_unreachable_kibana() -> None:
    url = f"http://127.0.0.1:{_free_port()}"
    with pytest.raises(KibanaError, match=rf"cannot reach Kibana at {url}: .*[Cc]onnection refused"):
        run(url)


def test_unreadable_saved_objects_file(kibana_url: str, tmp_path: Path) -> None:
    with pytest.raises(KibanaError, match="cannot read the saved objects file"):
        run(kibana_url, path=tmp_path / "absent.ndjson")


@pytest.fixture
def starting_kibana() -> Iterator[RunningServer]:
    server = start_server("tests.fakes.kibana", ["--user", USER, "--password", PASSWORD, "--not-ready-for", "60"])
    yield server
    server.stop()


def test_kibana_that_stays_not_ready(starting_kibana: RunningServer) -> None:
    started = time.monotonic()
    with pytest.raises(KibanaError, match=r"is not ready \(status unavailable\).*\(waited 1s\)"):
        run(starting_kibana.url, wait=1.0)
    assert time.monotonic() - started >= 1.0
    assert fake_state(starting_kibana.url)["objects"] == []


def test_install_waits_for_kibana_to_finish_starting() -> None:
    server = start_server("tests.fakes.kibana", ["--user", USER, "--password", PASSWORD, "--not-ready-for", "1"])
    try:
        result = run(server.url, wait=30.0, sleep=lambda seconds: time.sleep(min(seconds, 0.2)))  # sync-ok
        assert result.tag_added
        statuses = [r for r in fake_state(server.url)["requests"] if r["path"] == "/api/status"]
        assert len(statuses) >= 2, "the first status calls were answered 503"
    finally:
        server.stop()


@pytest.fixture(scope="module")
def tls_kibana(server_cert: tls.ServerCert) -> Iterator[RunningServer]:
    server = start_server("tests.fakes.kibana", ["--user", USER, "--password", PASSWORD, "--tls-cert",
                                                 str(server_cert.cert), "--tls-key", str(server_cert.key)])
    yield server
    server.stop()


def test_tls_verified_with_lmes_ca(tls_kibana: RunningServer, test_ca: tls.TestCA) -> None:
    assert tls_kibana.url.startswith("https://")
    result = run(tls_kibana.url, verify=test_ca.cert_path)
    assert {(kind, oid) for kind, oid, _ in result.imported} == OBJECT_KEYS


def test_tls_without_the_ca_fails_with_a_hint(tls_kibana: RunningServer) -> None:
    with pytest.raises(KibanaError, match=r"TLS handshake with Kibana .* failed: .*CERTIFICATE_VERIFY_FAILED.*"
                                          r"LME_ENRICH_KIBANA_CA_CERT"):
        run(tls_kibana.url, verify=True)


def test_plain_http_to_a_tls_kibana_is_explained(tls_kibana: RunningServer) -> None:
    with pytest.raises(KibanaError, match=r"closed the connection .*https://"):
        run(tls_kibana.url.replace("https://", "http://"))


def _cli(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    clean = {k: v for k, v in os.environ.items() if not k.startswith("LME_ENRICH_")}
    return subprocess.run([sys.executable, "-m", "worker.admin.cli_kibana", "install", *args], cwd=ROOT, text=True,
                          capture_output=True, env={**clean, **env}, timeout=60, check=False)


def test_cli_install_uses_the_es_credentials_and_reports(kibana_url: str) -> None:
    done = _cli("--wait", "0", env={"LME_ENRICH_KIBANA_URL": kibana_url, "LME_ENRICH_ES_USERNAME": USER,
                                    "LME_ENRICH_ES_PASSWORD": PASSWORD, "LME_ENRICH_REASSESS_TAG": "AI: again"})
    assert done.returncode == 0, done.stderr
    assert "imported 12 saved objects" in done.stdout and "LME AI enrichment" in done.stdout
    assert "'AI: again' added to securitySolution:alertTags" in done.stdout
    assert alert_tags(kibana_url) == [*DEFAULT_ALERT_TAGS, "AI: again"]


def test_cli_error_is_one_line_and_exit_code_2(kibana_url: str, tmp_path: Path) -> None:
    secret = tmp_path / "password"
    secret.write_text("not-it\n")
    done = _cli("--url", kibana_url, "--wait", "0",
                env={"LME_ENRICH_KIBANA_USERNAME": USER, "LME_ENRICH_KIBANA_PASSWORD_FILE": str(secret)})
    assert done.returncode == 2
    assert done.stderr.count("\n") == 1 and done.stderr.startswith("lme-enrich: Kibana at ")
    assert "Traceback" not in done.stderr and "not-it" not in done.stderr
