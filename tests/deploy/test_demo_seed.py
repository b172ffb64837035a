"""deploy/demo/setup.py seed: Kibana's alert index layout and fresh sample alerts, in the Elasticsearch test server.

Run as the demo runs it (a separate process, configured by environment) against the test server with
security on; what it wrote is then read back with the official client.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests.fakes.process import RunningServer, start_server
from worker.alerts import alert

ROOT = Path(__file__).resolve().parents[2]
SETUP = ROOT / "deploy" / "demo" / "setup.py"
SAMPLE = ROOT / "deploy" / "demo" / "alerts-sample.ndjson"
ALIAS = ".alerts-security.alerts-default"
FIRST = ".internal.alerts-security.alerts-default-000001"
PASSWORD = "demo-elastic"


@pytest.fixture
def secured_es() -> Iterator[RunningServer]:
    server = start_server("tests.fakes.elasticsearch", ["--user", "elastic", "--password", PASSWORD])
    yield server
    server.stop()


def seed(url: str, tmp_path: Path) -> subprocess.CompletedProcess[str]:
    secret = tmp_path / "elastic_password"
    secret.write_text(PASSWORD + "\n", encoding="utf-8")
    env = {**os.environ, "DEMO_ES_URL": url, "ELASTIC_PASSWORD_FILE": str(secret)}
    env.pop("DEMO_CA_CERT", None)
    return subprocess.run([sys.executable, str(SETUP), "seed"], capture_output=True, text=True, timeout=120,
                          env=env, check=False)


def test_seed_lays_out_kibanas_index_and_writes_fresh_alerts(secured_es: RunningServer, tmp_path: Path) -> None:
    started = datetime.now(UTC)
    result = seed(secured_es.url, tmp_path)
    assert result.returncode == 0, result.stderr
    es = Elasticsearch(secured_es.url, basic_auth=("elastic", PASSWORD))
    aliases = es.indices.get_alias(name=ALIAS, expand_wildcards="all").body
    assert aliases == {FIRST: {"aliases": {ALIAS: {"is_write_index": True, "is_hidden": True}}}}
    settings = es.indices.get_settings(index=FIRST, expand_wildcards="all")[FIRST]["settings"]["index"]
    assert settings["hidden"] == "true"
    mapping = es.indices.get_mapping(index=FIRST, expand_wildcards="all")[FIRST]["mappings"]
    assert mapping["dynamic"] in (False, "false")
    hits = es.search(index=".alerts-security.alerts-*", size=100, sort=[{"@timestamp": "desc"}])["hits"]["hits"]
    sample = [json.loads(line) for line in SAMPLE.read_text(encoding="utf-8").splitlines() if line.strip()]
    assert len(hits) == len(sample) == 20
    for hit in hits:
        assert hit["_index"] == FIRST
        assert alert.first(hit["_source"], "kibana.alert.uuid") == hit["_id"], "id must be kibana.alert.uuid"
        stamp = datetime.fromisoformat(hit["_source"]["@timestamp"].replace("Z", "+00:00"))
        assert started - timedelta(minutes=1) <= stamp <= datetime.now(UTC) + timedelta(seconds=5)
    # Alerts are found by their mapped Kibana fields, as lme-enrich's poll query finds them.
    opened = es.count(index=".alerts-security.alerts-*",
                      query={"terms": {"kibana.alert.workflow_status": ["open", "acknowledged"]}})["count"]
    assert opened == 20


def test_seeding_again_adds_new_alerts_to_the_same_layout(secured_es: RunningServer, tmp_path: Path) -> None:
    assert seed(secured_es.url, tmp_path).returncode == 0
    again = seed(secured_es.url, tmp_path)
    assert again.returncode == 0, again.stderr
    es = Elasticsearch(secured_es.url, basic_auth=("elastic", PASSWORD))
    assert es.count(index=ALIAS)["count"] == 40
    assert list(es.indices.get_alias(name=ALIAS, expand_wildcards="all").body) == [FIRST]


def test_wrong_password_fails_loudly(secured_es: RunningServer, tmp_path: Path) -> None:
    secret = tmp_path / "elastic_password"
    secret.write_text("wrong\n", encoding="utf-8")
    env = {**os.environ, "DEMO_ES_URL": secured_es.url, "ELASTIC_PASSWORD_FILE": str(secret),
           "DEMO_WAIT_SECONDS": "1"}
    result = subprocess.run([sys.executable, str(SETUP), "seed"], capture_output=True, text=True, timeout=120,
                            env=env, check=False)
    assert result.returncode != 0
    assert "401" in result.stderr or "authentication" in result.stderr
