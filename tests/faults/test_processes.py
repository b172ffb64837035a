"""Worker processes killed, Redis restarted or down, beats and workers racing: nothing lost or done twice."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests import kibana
from tests.celery_procs import celery_processes, wait_for
from tests.faults.harness import crash, seed_corpus, seed_distinct, start_pipeline, status_counts
from tests.faults.redis_server import OwnRedis
from tests.faults.test_recovery import deadline, defaults
from tests.integration.conftest import LLMSim
from tests.invariants import check
from worker.celery_conf import ASSESS_QUEUE, POLL_QUEUE
from worker.dispatch import recovery

pytestmark = pytest.mark.slow

ATTEMPTS, TASK_RETRIES = 3, 6


@pytest.mark.parametrize(("alerts", "kills"), [
    pytest.param(100, 3, id="100-alerts"),
    pytest.param(500, 20, id="500-alerts", marks=pytest.mark.soak),
])
def test_assess_worker_crashes_repeatedly_mid_run(alerts: int, kills: int, *, es: Elasticsearch,
                                                  space: kibana.Space, llm: LLMSim, worker_env: dict[str, str],
                                                  tmp_path: Path) -> None:
    ledger = seed_distinct(es, space, alerts, "kill")
    # The default claim lease and timeouts: a kill anywhere is recovered by worker.dispatch.recovery, not by the lease.
    with celery_processes(defaults(worker_env), tmp_path) as procs:
        start_pipeline(procs)
        procs.supervise()
        done_at_kill = 0
        for round_ in range(kills):
            # Kill while assessments are running (the model answers in tens of ms, so 'running' is brief:
            # kill as soon as the worker, restarted or not, has finished some since the last kill). Counted
            # after a refresh: a search a second behind would let the next kill come before any progress.
            target = min(max((round_ + 1) * alerts // (kills + 2), done_at_kill + 1), alerts)
            wait_for(lambda: status_counts(es, space, refresh=True).get("done", 0) >= target,  # noqa: B023
                     timeout=120, what=f"{target} alerts done")
            crash(procs, "assess")
            done_at_kill = status_counts(es, space, refresh=True).get("done", 0)
        ledger.wait_all_final(timeout=deadline())
    report = check(ledger, llm.chat_requests(), max_attempts=TASK_RETRIES + 1 + kills, allow_failed=False)
    restarted = [name for name, _ in procs.restarts if name == "assess"]
    print(f"\nRELIABILITY assess crashes {alerts}: {report.line()} faults_injected={kills} "
          f"supervisor_restarts={len(restarted)}")
    assert len(restarted) >= kills, procs.restarts


@pytest.mark.parametrize("down_s", [pytest.param(8, id="8s"), pytest.param(60, id="60s", marks=pytest.mark.soak)])
def test_redis_restart_and_outage(down_s: int, *, es: Elasticsearch, space: kibana.Space, llm: LLMSim,
                                  worker_env: dict[str, str], own_redis: OwnRedis, tmp_path: Path) -> None:
    ledger = seed_distinct(es, space, 60, "redis")
    # A task sent or running while Redis is away can be lost with it: recovery sends it again (default lease).
    env = defaults(worker_env, LME_ENRICH_REDIS_URL=own_redis.url)
    with celery_processes(env, tmp_path) as procs:
        start_pipeline(procs, assess_concurrency=1)
        procs.supervise()
        wait_for(lambda: status_counts(es, space).get("done", 0) >= 5, timeout=60, what="5 alerts done")
        # A crash and restart: the append-only file brings the queues and our state back.
        own_redis.kill()
        own_redis.start()
        wait_for(lambda: status_counts(es, space).get("done", 0) >= 20, timeout=90, what="progress after restart")
        own_redis.kill()
        time.sleep(down_s)  # sync-ok: how long Redis stays down is the fault under test
        own_redis.start()
        # Redis was away for the outage too: allow one more recovery bound than after a restart.
        ledger.wait_all_final(timeout=deadline() + recovery.bound(5.0))
    report = check(ledger, llm.chat_requests(), max_attempts=TASK_RETRIES + 1 + 2, allow_failed=False)
    print(f"\nRELIABILITY redis restart+down {down_s}s: {report.line()} faults_injected=2 "
          f"supervisor_restarts={procs.restarts}")


def test_two_beats_and_three_workers_race_while_kibana_changes_alerts(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    ledger = seed_corpus(es, space, 120)
    ids = sorted(ledger.placed)
    with celery_processes(worker_env, tmp_path / "a") as one, celery_processes(worker_env, tmp_path / "b") as two:
        for procs, name in ((one, "one"), (two, "two")):
            procs.worker(f"poll-{name}", queues=(POLL_QUEUE,), concurrency=1)
            procs.worker(f"assess-{name}", queues=(ASSESS_QUEUE,), concurrency=2)
            procs.beat(f"beat-{name}")
        one.worker("assess-three", queues=(ASSESS_QUEUE,), concurrency=1)
        # Analysts acknowledge and tag alerts while the workers race on them.
        for n, doc_id in enumerate(ids[::6]):
            ledger.kibana_update(doc_id, {"kibana.alert.workflow_status": "acknowledged",
                                          "kibana.alert.workflow_tags": [f"triage-{n}"]})
        ledger.wait_all_final(timeout=240)
    report = check(ledger, llm.chat_requests(), max_attempts=ATTEMPTS, allow_failed=False)
    print(f"\nRELIABILITY race 2 beats 3 workers: {report.line()} faults_injected=0 "
          f"kibana_changes={ledger.kibana_changes}")
    assert ledger.kibana_changes == 20
