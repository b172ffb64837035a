"""Secrets never leave the process that needs them: not in logs, errors, `doctor`/`status` output, Celery
task arguments, Redis or the history index; and Redis holds ids, never alert documents."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import redis
from elasticsearch import Elasticsearch

from tests import kibana
from tests.celery_procs import ROOT, celery_processes, wait_for
from tests.fakes import tls
from tests.fakes.process import RunningServer, start_server
from tests.faults.harness import start_pipeline
from tests.faults.redis_server import OwnRedis
from tests.integration.conftest import FAST_LLM, LLMSim
from tests.invariants import Ledger, check
from worker.alerts import history

# fake_only: Elasticsearch must demand a password (x-pack security, not on Maven Central): a test server of its own.
pytestmark = [pytest.mark.slow, pytest.mark.fake_only]

ES_USER = "lme_enrich_user"
ES_PASSWORD = "es-pw-" + uuid.uuid4().hex
LLM_KEY = "sk-llm-" + uuid.uuid4().hex
WRONG_ES_PASSWORD = "es-wrong-" + uuid.uuid4().hex
WRONG_LLM_KEY = "sk-wrong-" + uuid.uuid4().hex
DOC_MARK = "DOCMARK-" + uuid.uuid4().hex
REDIS_PASSWORD = "redis-pw-" + uuid.uuid4().hex
SECRETS = (ES_PASSWORD, LLM_KEY, WRONG_ES_PASSWORD, WRONG_LLM_KEY, REDIS_PASSWORD)


@pytest.fixture(scope="module")
def auth_es() -> Iterator[RunningServer]:
    server = start_server("tests.fakes.elasticsearch", ["--user", ES_USER, "--password", ES_PASSWORD])
    yield server
    server.stop()


@pytest.fixture(scope="module")
def keyed_llm(llm_cert: tls.ServerCert, test_ca: tls.TestCA) -> Iterator[LLMSim]:
    server = start_server("tests.fakes.llm", ["--api-key", LLM_KEY, "--tls-cert", str(llm_cert.cert),
                                              "--tls-key", str(llm_cert.key), *FAST_LLM])
    sim = LLMSim(server, test_ca.cert_path)
    yield sim
    sim.http.close()
    server.stop()


def redis_dump(client: Any) -> bytes:
    """Every key and value in the database, whatever its type."""
    parts: list[Any] = []
    for key in client.scan_iter(count=500):
        kind = client.type(key)
        parts.append(key)
        if kind == b"string":
            parts.append(client.get(key) or b"")
        elif kind == b"hash":
            parts += [k + b"=" + v for k, v in client.hgetall(key).items()]
        elif kind == b"list":
            parts += client.lrange(key, 0, -1)
        elif kind == b"set":
            parts += list(client.smembers(key))
        elif kind == b"zset":
            parts += [m for m, _ in client.zrange(key, 0, -1, withscores=True)]
    return b"\n".join(parts)


def _cli(env: dict[str, str], *args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worker.admin.cli", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=120, check=False)


def _assert_clean(where: str, text: str | bytes) -> None:
    blob = text if isinstance(text, str) else text.decode("utf-8", "replace")
    for secret in SECRETS:
        assert secret not in blob, f"a secret appears in {where}"


def test_secrets_never_appear_anywhere_and_redis_holds_only_ids(
    auth_es: RunningServer, keyed_llm: LLMSim, test_ca: tls.TestCA, tmp_path: Path
) -> None:
    # Redis with a password, as SECURITY.md tells operators to run it.
    own = OwnRedis(tmp_path / "redis", password=REDIS_PASSWORD)
    own.start()
    try:
        _run_and_grep(auth_es, keyed_llm, own.url, test_ca, tmp_path)
    finally:
        own.stop()


def _run_and_grep(auth_es: RunningServer, keyed_llm: LLMSim, clean_redis: str, test_ca: tls.TestCA,
                  tmp_path: Path) -> None:
    es = Elasticsearch(auth_es.url, basic_auth=(ES_USER, ES_PASSWORD), request_timeout=30)
    space = kibana.Space("sec" + uuid.uuid4().hex[:8])
    kibana.install(es, space)
    docs = kibana.variants(kibana.eligible(kibana.load_corpus()), 12, "sec")
    for doc in docs:
        doc["labels"] = {"note": DOC_MARK}  # a field the worker has no reason to copy anywhere
    ledger = Ledger.of(es, kibana.seed(es, space, docs))
    command_lines = {str(d.get("process", {}).get("command_line")) for d in docs if d.get("process")}
    env = {
        "LME_ENRICH_ES_URL": auth_es.url, "LME_ENRICH_ES_USERNAME": ES_USER, "LME_ENRICH_ES_PASSWORD": ES_PASSWORD,
        "LME_ENRICH_LLM_URL": keyed_llm.url, "LME_ENRICH_LLM_API_KEY": LLM_KEY,
        "LME_ENRICH_LLM_CA_CERT": str(test_ca.cert_path), "LME_ENRICH_REDIS_URL": clean_redis,
        "LME_ENRICH_ALERT_INDEX": space.pattern, "LME_ENRICH_POLL_INTERVAL": "1s", "LME_ENRICH_CONCURRENCY": "1",
        "LME_ENRICH_LLM_READ_TIMEOUT": "30s", "LME_ENRICH_LLM_RETRY_WAIT_MAX": "1s",
        "LME_ENRICH_RETRY_BACKOFF_MAX": "2s", "LME_ENRICH_CLAIM_LEASE": "5m", "LME_ENRICH_LLM_ATTEMPTS": "2",
        "LME_ENRICH_TASK_RETRIES": "1", "LME_ENRICH_STATE_DIR": str(tmp_path / "state"),
        # Two garbage replies, two failures: no group shares a failure with its members.
        "LME_ENRICH_GROUP_WINDOW": "0",
    }
    keyed_llm.clear()
    keyed_llm.fault(kind="malformed", count=2)  # failures carry error text: it must not carry secrets
    client = redis.Redis.from_url(clean_redis)
    dumps: list[bytes] = []
    outputs: dict[str, str] = {}
    with celery_processes({**env, "LME_ENRICH_LOG_LEVEL": "DEBUG"}, tmp_path / "logs") as procs:
        start_pipeline(procs, assess_concurrency=1)

        def finished() -> bool:
            dumps.append(redis_dump(client))  # what Redis holds at every moment of the run
            return ledger.finished() == len(docs)

        wait_for(finished, timeout=120, interval=0.2, what="every alert done or failed")
        for args in (("doctor",), ("doctor", "--json"), ("status",), ("status", "--json")):
            result = _cli(env, *args)
            outputs[" ".join(args)] = result.stdout + result.stderr
        # Wrong credentials: the errors explain, and never echo what was given.
        wrong = {**env, "LME_ENRICH_ES_PASSWORD": WRONG_ES_PASSWORD, "LME_ENRICH_LLM_API_KEY": WRONG_LLM_KEY}
        for args in (("doctor",), ("check",), ("status",)):
            result = _cli(wrong, *args)
            outputs["wrong " + " ".join(args)] = result.stdout + result.stderr
            assert result.returncode != 0
        preflight = subprocess.run([sys.executable, "-m", "worker.admin.preflight"], cwd=ROOT, capture_output=True,
                                   text=True, env={**os.environ, **wrong}, timeout=120, check=False)
        outputs["wrong preflight"] = preflight.stdout + preflight.stderr
        settings_out = _cli(env, "--help")  # sanity: the CLI runs at all
        assert settings_out.returncode == 0
        printed = subprocess.run([sys.executable, "-m", "worker.settings"], cwd=ROOT, capture_output=True,
                                 text=True, env={**os.environ, **env}, timeout=60, check=False)
        outputs["settings"] = printed.stdout + printed.stderr
    assert "401" in outputs["wrong check"] or "auth" in outputs["wrong check"].lower()
    for name, text in outputs.items():
        _assert_clean(f"`{name}` output", text)
    for log in (tmp_path / "logs").glob("*.log"):
        _assert_clean(f"log {log.name}", log.read_text(errors="replace"))
    es.indices.refresh(index=history.ALIAS)
    records = es.search(index=history.ALIAS, size=1000, query={"match_all": {}})["hits"]["hits"]
    # Every alert has its record, or is named among the members of its incident group's record.
    named = {r["_source"]["alert"]["id"] for r in records}
    named |= {m for r in records for m in r["_source"].get("group", {}).get("members", [])}
    assert named == set(ledger.placed)
    _assert_clean("the history index", json.dumps(records))
    for doc_id, index in ledger.placed.items():
        _assert_clean(f"alert {doc_id}", json.dumps(es.get(index=index, id=doc_id)["_source"]))
    assert dumps and any(b"lme_enrich.assess" in d or b"lme-enrich:jobs" in d for d in dumps)
    for dump in dumps:
        _assert_clean("Redis", dump)
        assert DOC_MARK.encode() not in dump, "an alert document reached Redis"
        for line in command_lines:
            assert line.encode() not in dump, "alert content reached Redis"
    report = check(ledger, keyed_llm.chat_requests())
    assert report.failed == 2
    print(f"\nRELIABILITY security secrets: {report.line()} redis_snapshots={len(dumps)} outputs={len(outputs)}")
    es.close()
    client.close()


