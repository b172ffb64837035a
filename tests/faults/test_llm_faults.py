"""LLM faults during a run: each ends with every alert done or failed with a clear reason, and the invariants."""

from __future__ import annotations

from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests import kibana
from tests.celery_procs import celery_processes, wait_for
from tests.faults.harness import seed_distinct, start_pipeline
from tests.integration.conftest import LLMSim
from tests.invariants import check

pytestmark = pytest.mark.slow

ALERTS = 10
MODEL = "lfm2.5-1.2b-instruct"
# (fault rule, alerts expected to end failed, their error kind): brief faults are retried until done;
# answers that cannot be used are failed at once (asking again would cost minutes on a CPU model).
CASES = {
    "429-storm": ({"kind": "429", "rate": 0.5, "seed": 11, "retry_after": 1}, 0, None),
    "500": ({"kind": "500", "count": 8}, 0, None),
    "503": ({"kind": "503", "count": 6}, 0, None),
    "reset": ({"kind": "reset", "count": 6}, 0, None),
    "empty_choices": ({"kind": "empty_choices", "count": 4}, 0, None),
    "truncated": ({"kind": "truncated", "count": 3}, 3, "truncated"),
    "malformed": ({"kind": "malformed", "count": 3}, 3, "not_json"),
}
ATTEMPTS, TASK_RETRIES = 3, 6


@pytest.mark.parametrize("case", sorted(CASES))
def test_llm_fault(case: str, *, es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str],
                   tmp_path: Path) -> None:
    rule, failed, kind = CASES[case]
    ledger = seed_distinct(es, space, ALERTS, f"llm-{case}")
    llm.fault(**rule)
    with celery_processes(worker_env, tmp_path) as procs:
        start_pipeline(procs)
        ledger.wait_all_final(timeout=150)
    applied = llm.http.get("/_sim/faults").json()["fault"]
    report = check(ledger, llm.chat_requests(), max_attempts=ATTEMPTS * (TASK_RETRIES + 1))
    print(f"\nRELIABILITY llm {case}: {report.line()} faults_injected="
          f"{applied['applied'] if applied else rule.get('count')}")
    assert report.failed == failed
    if kind:
        assert set(report.failure_kinds) == {kind}
    assert report.model_calls > ALERTS or case in ("truncated", "malformed")


def test_llm_hang_past_the_read_timeout_is_retried(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    ledger = seed_distinct(es, space, 2, "llm-hang")
    llm.fault(kind="hang", count=1)
    with celery_processes({**worker_env, "LME_ENRICH_CONCURRENCY": "1"}, tmp_path) as procs:
        start_pipeline(procs, assess_concurrency=1)
        ledger.wait_all_final(timeout=120)
    report = check(ledger, llm.chat_requests(), max_attempts=ATTEMPTS * (TASK_RETRIES + 1), allow_failed=False)
    print(f"\nRELIABILITY llm hang: {report.line()} faults_injected=1")
    assert report.model_calls == 3  # the hung call, its retry, the other alert


def test_a_model_that_disappears_fails_clearly_and_recovers(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    ledger = seed_distinct(es, space, 8, "llm-gone")
    tag = "AI: Re-assess"
    try:
        # The LME admin switches LiteLLM to another model while the worker runs.
        llm.set_models(["qwen3-4b-instruct"])
        with celery_processes(worker_env, tmp_path) as procs:
            start_pipeline(procs)
            ledger.wait_all_final(timeout=90)
            gone = check(ledger, llm.chat_requests())
            assert gone.failed == 8
            assert set(gone.failure_kinds) == {"unknown_model"}  # not retried: it would not come back by itself
            for source in ledger.es.mget(docs=[{"_index": i, "_id": d} for d, i in ledger.placed.items()])["docs"]:
                assert "LME_ENRICH_LLM_MODEL" in source["_source"]["lme"]["ai"]["error"]
            # The admin fixes it; an analyst asks for the failed alerts again.
            llm.set_models([MODEL])
            for doc_id in ledger.placed:
                ledger.kibana_update(doc_id, {"kibana.alert.workflow_tags": [tag]})
                ledger.expect_tag_removed(doc_id, tag)
            wait_for(lambda: es.count(index=space.pattern, query={"term": {"lme.ai.status": "done"}})["count"] == 8,
                     timeout=90, what="the alerts to be assessed after the model came back")
    finally:
        llm.set_models([MODEL])
    report = check(ledger, llm.chat_requests(), allow_failed=False)
    print(f"\nRELIABILITY llm model-disappears: {report.line()} faults_injected={gone.model_calls}")
