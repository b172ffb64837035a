"""Crash recovery with the default claim lease and timeouts: processes SIGKILLed and restarted, Redis killed.

Every test ends with the invariants (nothing lost, nothing corrupted, no double work) plus one write per
alert, and waits for the run to finish within the documented recovery bound after the last restart (a
deadline: anything that waited for the two-hour claim lease or Celery's visibility timeout would miss it).
"""

from __future__ import annotations

import os
import random
from pathlib import Path

import pytest
from elasticsearch import Elasticsearch

from tests import kibana
from tests.celery_procs import CeleryProcesses, celery_processes, wait_for
from tests.faults.harness import seed_distinct, start_pipeline, status_counts
from tests.faults.redis_server import OwnRedis
from tests.integration.conftest import LLMSim
from tests.invariants import Ledger, check
from worker.alerts import history
from worker.dispatch import recovery
from worker.settings import parse_duration

pytestmark = pytest.mark.slow

POLL_INTERVAL = "5s"
# The instant model assesses what is left of a run well inside this once the pipeline is going again. Real
# Elasticsearch is the slower store (each assessment is a get, conditional updates and a history record, about
# 4-5 alerts/s on a loaded 2-CPU machine): 200 alerts need ~45 s of writes beside the recovery itself.
PROCESSING_S = 120.0
# What the fault tests set beyond the addresses of the test servers: no lease, retry or timeout override.
NOT_DEFAULTS = ("LME_ENRICH_CLAIM_LEASE", "LME_ENRICH_RETRY_BACKOFF_MAX", "LME_ENRICH_LLM_READ_TIMEOUT",
                "LME_ENRICH_LLM_RETRY_WAIT_MAX")
KILLED = {"assess": ("assess",), "poll": ("poll",), "beat": ("beat",), "group": ("poll", "assess", "beat")}
SEED = int(os.environ.get("LME_ENRICH_FAULT_SEED", "0")) or random.randrange(1, 10**6)


def defaults(worker_env: dict[str, str], **extra: str) -> dict[str, str]:
    env = {k: v for k, v in worker_env.items() if k not in NOT_DEFAULTS}
    return {**env, "LME_ENRICH_POLL_INTERVAL": POLL_INTERVAL, **extra}


def deadline() -> float:
    """The documented recovery bound at this poll interval, plus the time to assess what is left."""
    return recovery.bound(parse_duration(POLL_INTERVAL).total_seconds()) + PROCESSING_S


def done(es: Elasticsearch, space: kibana.Space) -> int:
    return status_counts(es, space).get("done", 0)


def assert_one_write_each(es: Elasticsearch, ledger: Ledger) -> None:
    """No double write: each alert's assessment was written (and recorded in history) exactly once."""
    es.indices.refresh(index=history.ALIAS)
    response = es.search(index=history.ALIAS, size=0, query={"ids": {"values": []}} if not ledger.placed else {
        "terms": {"alert.id": sorted(ledger.placed)}}, aggs={"per": {"terms": {"field": "alert.id", "size": 10_000,
                                                                                "min_doc_count": 2}}})
    twice = [b["key"] for b in response["aggregations"]["per"]["buckets"]]
    assert not twice, f"{len(twice)} alerts written twice, e.g. {twice[:3]}"


def _kill_and_restart(procs: CeleryProcesses, names: tuple[str, ...], rng: random.Random) -> None:
    for name in names:
        procs.kill(name)
    # A supervisor restarts at once or after a moment; starting the worker first or beat first both happen.
    for name in rng.sample(names, len(names)):
        procs.restart(name)


@pytest.mark.parametrize("target", list(KILLED))
def test_sigkill_and_restart_during_a_200_alert_run(target: str, *, es: Elasticsearch, space: kibana.Space,
                                                    llm: LLMSim, worker_env: dict[str, str], tmp_path: Path) -> None:
    rng = random.Random(f"{SEED}-{target}")
    alerts, kills = 200, 3
    ledger = seed_distinct(es, space, alerts, f"rk{target}")
    with celery_processes(defaults(worker_env), tmp_path) as procs:
        start_pipeline(procs)
        for round_ in range(kills):
            # A random point of the run: assessments running, dispatch under way, claims being made.
            target_done = (round_ + 1) * alerts // (kills + 2) + rng.randrange(alerts // 10)
            wait_for(lambda: done(es, space) >= target_done, timeout=deadline(),  # noqa: B023
                     what=f"{target_done} alerts done (seed {SEED})")
            _kill_and_restart(procs, KILLED[target], rng)
        ledger.wait_all_final(timeout=deadline())
    report = check(ledger, llm.chat_requests(), allow_failed=False)
    assert_one_write_each(es, ledger)
    print(f"\nRELIABILITY sigkill+restart {target} x{kills} ({alerts} alerts, default lease, seed {SEED}): "
          f"{report.line()}")


def test_the_issue_scenario_whole_group_killed_twice_then_a_fresh_worker(
    es: Elasticsearch, space: kibana.Space, paced_llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    """40 alerts, defaults (the 30 s poll interval too), the whole group killed twice while it assesses."""
    llm = paced_llm
    ledger = seed_distinct(es, space, 40, "scenario")
    env = {k: v for k, v in worker_env.items() if k not in (*NOT_DEFAULTS, "LME_ENRICH_POLL_INTERVAL")}
    env["LME_ENRICH_LLM_URL"] = llm.url
    with celery_processes(env, tmp_path) as procs:
        start_pipeline(procs)
        for kill in (1, 2):
            wait_for(lambda: status_counts(es, space).get("running", 0) > 0, timeout=120,
                     what=f"an assessment running before kill {kill}")
            _kill_and_restart(procs, KILLED["group"], random.Random(kill))
        ledger.wait_all_final(timeout=recovery.bound(30.0) + PROCESSING_S)
    report = check(ledger, llm.chat_requests(), allow_failed=False)
    assert_one_write_each(es, ledger)
    print(f"\nRELIABILITY issue scenario (40 alerts, all defaults, group SIGKILLed twice): {report.line()}")


@pytest.mark.parametrize("persistent", [True, False], ids=["aof", "no-persistence"])
def test_redis_sigkilled_twice_during_a_200_alert_run(persistent: bool, *, es: Elasticsearch, space: kibana.Space,
                                                      llm: LLMSim, worker_env: dict[str, str],
                                                      tmp_path: Path) -> None:
    own = OwnRedis(tmp_path / "redis", persistent=persistent)
    own.start()
    try:
        alerts = 200
        ledger = seed_distinct(es, space, alerts, f"rr{int(persistent)}")
        with celery_processes(defaults(worker_env, LME_ENRICH_REDIS_URL=own.url), tmp_path) as procs:
            start_pipeline(procs)
            procs.supervise()
            for round_ in (1, 2):
                target_done = round_ * alerts // 3
                wait_for(lambda: done(es, space) >= target_done, timeout=deadline(),  # noqa: B023
                         what=f"{target_done} alerts done")
                own.kill()  # without AOF it comes back empty: queues, claims in hand, cache, all gone
                own.start()
            ledger.wait_all_final(timeout=deadline())
        report = check(ledger, llm.chat_requests(), allow_failed=False)
        assert_one_write_each(es, ledger)
    finally:
        own.stop()
    print(f"\nRELIABILITY redis SIGKILL x2 {'with AOF' if persistent else 'without persistence'} "
          f"({alerts} alerts, default lease): {report.line()} supervisor_restarts={procs.restarts}")
