"""Incident groups under faults: a worker killed mid-group, analysts acting on members meanwhile, a rollover.

Every test ends with the invariants (nothing lost, nothing corrupted, no double work) with the default lease.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests import kibana
from tests.celery_procs import celery_processes, wait_for
from tests.faults.harness import start_pipeline, status_counts
from tests.faults.test_recovery import NOT_DEFAULTS, PROCESSING_S, defaults
from tests.integration.conftest import LLMSim
from tests.integration.test_groups import _storm
from tests.integration.test_pipeline import sources
from tests.invariants import Ledger, check
from worker.alerts import alert
from worker.dispatch import recovery

pytestmark = pytest.mark.slow


def _group_of(es: Elasticsearch, placed: dict[str, str], alert_id: str) -> str:
    return str(sources(es, placed)[alert_id]["lme"]["ai"]["group"]["id"])


def test_worker_killed_while_its_group_is_assessed(es: Elasticsearch, space: kibana.Space, paced_llm: LLMSim,
                                                  worker_env: dict[str, str], tmp_path: Path) -> None:
    storm = _storm("gkill", 30)
    ledger = Ledger.of(es, kibana.seed(es, space, storm))
    env = defaults({**worker_env, "LME_ENRICH_LLM_URL": paced_llm.url})
    with celery_processes(env, tmp_path) as procs:
        start_pipeline(procs, assess_concurrency=1)
        wait_for(lambda: status_counts(es, space).get("running", 0) > 0, timeout=60, what="the group's leader running")
        procs.kill("assess")  # the whole worker, mid-call: its group's followers wait on a dead leader
        procs.restart("assess")
        ledger.wait_all_final(timeout=recovery.bound(5.0) + PROCESSING_S)
    check(ledger, paced_llm.chat_requests(), allow_failed=False)
    now = sources(es, ledger.placed)
    assert len({now[i]["lme"]["ai"]["group"]["id"] for i in ledger.placed}) == 1
    assert all("30" in now[i]["lme"]["ai"]["summary"] or now[i]["lme"]["ai"]["group"]["size"] >= 2
               for i in ledger.placed)


def test_members_closed_and_tagged_by_analysts_while_their_group_is_assessed(
    es: Elasticsearch, space: kibana.Space, paced_llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    storm = _storm("gkib", 20)
    ledger = Ledger.of(es, kibana.seed(es, space, storm))
    ids = [alert.first(d, "kibana.alert.uuid") for d in storm]
    env = defaults({**worker_env, "LME_ENRICH_LLM_URL": paced_llm.url})
    with celery_processes(env, tmp_path) as procs:
        start_pipeline(procs, assess_concurrency=1)
        wait_for(lambda: status_counts(es, space).get("running", 0) > 0, timeout=60, what="the group's leader running")
        # While the model writes the group's answer, an analyst closes one member and tags another.
        ledger.kibana_update(ids[5], {"kibana.alert.workflow_status": "closed"})
        ledger.kibana_update(ids[6], {"kibana.alert.workflow_tags": ["triage-later"]})
        ledger.wait_all_final(timeout=recovery.bound(5.0) + PROCESSING_S)
    report = check(ledger, paced_llm.chat_requests(), allow_failed=False)
    now = sources(es, ledger.placed)
    assert now[ids[5]]["kibana.alert.workflow_status"] == "closed", "the analyst's close survives the group write"
    assert now[ids[6]]["kibana.alert.workflow_tags"] == ["triage-later"]
    print(f"\nRELIABILITY group + kibana changes: {report.line()}")


def test_a_group_spanning_a_rollover_is_one_group_written_in_both_indices(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    storm = _storm("groll", 16)
    placed = kibana.seed(es, space, storm[:8])
    kibana.rollover(es, space)  # Kibana's ILM rolls the write alias over in the middle of the burst
    placed.update(kibana.seed(es, space, storm[8:]))
    assert len(set(placed.values())) == 2
    ledger = Ledger.of(es, placed)
    env = {k: v for k, v in worker_env.items() if k not in NOT_DEFAULTS}
    with celery_processes(env, tmp_path) as procs:
        start_pipeline(procs)
        ledger.wait_all_final(timeout=120)
    check(ledger, llm.chat_requests(), allow_failed=False)
    now = sources(es, placed)
    assert len({now[i]["lme"]["ai"]["group"]["id"] for i in placed}) == 1
    assert {_group_of(es, placed, i) for i in placed} == {now[next(iter(placed))]["lme"]["ai"]["group"]["id"]}
