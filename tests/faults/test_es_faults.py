"""Elasticsearch faults during a run: nothing lost, nothing corrupted.

The worker and these checks talk to the session's Elasticsearch (the real node by default) through the fault
proxy (tests/realstack/es_fault_proxy.py), whose /_fake/faults control API is the test server's."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from elasticsearch import Elasticsearch

from tests import kibana
from tests.celery_procs import celery_processes, wait_for
from tests.es_backends import behind_fault_proxy
from tests.faults.harness import seed_distinct, start_pipeline
from tests.integration.conftest import LLMSim
from tests.invariants import check

pytestmark = pytest.mark.slow

es_url, es = behind_fault_proxy()

ALERTS = 20
# Paths the worker uses and the test's own checks (_mget) do not: a fault never blinds the checker.
WORKER_PATHS = r"^/(?!_mget|_count|_fake)"
CASES: dict[str, dict[str, Any]] = {
    # Rejections of claims and shared writes (write thread pool full); the client retries them.
    "429-bulk": {"path": r"/_bulk", "kind": "429", "count": 6},
    # No master for a moment while assessments write back.
    "503-update": {"path": r"/_update/", "kind": "503", "count": 6},
    # Slow responses on reads and writes of one alert.
    "slow": {"path": r"/_update/|/_doc/", "kind": "delay", "delay": 1.0, "count": 12},
    # The connection dropped on a bulk write (the client sends it again).
    "drop-bulk": {"path": r"/_bulk", "kind": "drop", "count": 3},
    # A bulk claim applied whose answer never arrived in time (client timeout, then its retry conflicts
    # with the claim that did apply): the claim id on the alert tells ours from another poller's.
    "bulk-answer-lost": {"path": r"/_bulk", "kind": "delay", "delay": 3.0, "count": 1},
}


class FakeFaults:
    def __init__(self, es_url: str) -> None:
        self.http = httpx.Client(base_url=es_url, timeout=10)

    def add(self, **spec: Any) -> None:
        self.http.post("/_fake/faults", json=spec).raise_for_status()

    def remaining(self) -> int:
        return sum(int(f["remaining"]) for f in self.http.get("/_fake/faults").json()["faults"])

    def clear(self) -> None:
        self.http.delete("/_fake/faults").raise_for_status()


@pytest.fixture
def faults(es_url: str) -> Any:
    control = FakeFaults(es_url)
    control.clear()
    yield control
    control.clear()
    control.http.close()


@pytest.mark.parametrize("case", sorted(CASES))
def test_es_fault(case: str, *, es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str],
                  faults: FakeFaults, tmp_path: Path) -> None:
    ledger = seed_distinct(es, space, ALERTS, f"es-{case}")
    spec = CASES[case]
    faults.add(**spec)
    env = {**worker_env, "LME_ENRICH_ES_REQUEST_TIMEOUT": "2s"}
    with celery_processes(env, tmp_path) as procs:
        start_pipeline(procs)
        wait_for(lambda: faults.remaining() == 0, timeout=60, what="every injected fault to be served")
        ledger.wait_all_final(timeout=150)
    report = check(ledger, llm.chat_requests(), allow_failed=False)
    print(f"\nRELIABILITY es {case}: {report.line()} faults_injected={spec['count']}")


@pytest.mark.parametrize("outage_s", [pytest.param(10, id="10s"), pytest.param(30, id="30s", marks=pytest.mark.soak)])
def test_elasticsearch_unavailable_for_a_while(outage_s: int, *, es: Elasticsearch, space: kibana.Space, llm: LLMSim,
                                               worker_env: dict[str, str], faults: FakeFaults,
                                               tmp_path: Path) -> None:
    ledger = seed_distinct(es, space, ALERTS, "es-outage")
    env = {**worker_env, "LME_ENRICH_ES_REQUEST_TIMEOUT": "2s"}
    with celery_processes(env, tmp_path) as procs:
        start_pipeline(procs, assess_concurrency=1)
        wait_for(lambda: es.count(index=space.pattern, query={"term": {"lme.ai.status": "done"}})["count"] >= 2,
                 timeout=60, what="the run to be under way")
        faults.add(path=WORKER_PATHS, kind="503", count=1_000_000)
        time.sleep(outage_s)  # sync-ok: the outage's length is the fault under test
        served = 1_000_000 - faults.remaining()
        faults.clear()
        ledger.wait_all_final(timeout=240)
    report = check(ledger, llm.chat_requests(), allow_failed=False)
    print(f"\nRELIABILITY es outage {outage_s}s: {report.line()} faults_injected={served}")
    assert served > 0


def test_rollover_mid_run(es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str],
                          tmp_path: Path) -> None:
    ledger = seed_distinct(es, space, ALERTS, "roll-a")
    with celery_processes(worker_env, tmp_path) as procs:
        start_pipeline(procs)
        wait_for(lambda: es.count(index=space.pattern, query={"term": {"lme.ai.status": "done"}})["count"] >= 5,
                 timeout=60, what="the run to be under way")
        new_index = kibana.rollover(es, space)  # what Kibana's ILM policy does every ~30 days
        later = seed_distinct(es, space, ALERTS, "roll-b")
        assert set(later.placed.values()) == {new_index}
        ledger.placed.update(later.placed)
        ledger.expected.update(later.expected)
        ledger.wait_all_final(timeout=150)
    report = check(ledger, llm.chat_requests(), allow_failed=False)
    print(f"\nRELIABILITY es rollover: {report.line()} faults_injected=1")
    assert len(set(ledger.placed.values())) == 2
