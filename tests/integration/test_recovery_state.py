"""Recovery's decisions on Redis and Elasticsearch state (no Celery): who is dead, what goes back in line.

The real processes being killed are in tests/faults/test_recovery.py; these pin each rule down on its own.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable

import pytest
import redis
from elasticsearch import Elasticsearch

from tests import kibana
from worker.alerts import claiming, fields, selection
from worker.alerts.es import make_client
from worker.alerts.store import AlertStore
from worker.assessing import pipeline
from worker.assessing.llm import LLMClient
from worker.assessing.pipeline import Services
from worker.celery_conf import ASSESS_QUEUE
from worker.dispatch import liveness, recovery
from worker.dispatch.scheduler import InFlight, Job, Scheduler
from worker.settings import Settings

NOW = 2_000_000_000.0


@pytest.fixture
def settings(settings_with: Callable[..., Settings]) -> Settings:
    return settings_with()


@pytest.fixture
def scheduler(client: redis.Redis, settings: Settings) -> Scheduler:
    return Scheduler(client, settings)


def _dispatch_one(scheduler: Scheduler, alert_id: str, *, fingerprint: str = "") -> Job:
    scheduler.add([Job("idx", alert_id, f"claim-{alert_id}", fingerprint, "rule", "high", NOW)])
    (sent,) = scheduler.dispatch(lambda job: None).sent
    assert sent.task_id, "dispatch names the task that may run the job"
    return sent


def _entry(scheduler: Scheduler, claim_id: str) -> InFlight:
    (entry,) = [e for e in scheduler.in_flight() if e.claim_id == claim_id]
    return entry


def test_a_job_held_by_a_live_worker_stays_however_long_it_takes(scheduler: Scheduler, client: redis.Redis) -> None:
    job = _dispatch_one(scheduler, "slow")
    assert scheduler.start(job, job.task_id, "live|1|a")
    liveness.beat(client, "live|1|a")
    # Ten minutes of model time later, it is still the same worker's: liveness is the heartbeat, not age.
    assert recovery.reap(scheduler, now=time.time() + 600) == 0
    assert scheduler.inflight_count() == 1 and scheduler.pending_count() == 0


def test_a_job_whose_worker_stopped_beating_goes_back_in_line_with_its_claim(
    scheduler: Scheduler, client: redis.Redis
) -> None:
    job = _dispatch_one(scheduler, "orphan")
    assert scheduler.start(job, job.task_id, "dead|2|b")  # its owner never beats (or its key expired)
    assert recovery.reap(scheduler) == 1
    assert scheduler.inflight_count() == 0
    (waiting,) = scheduler.pending_jobs()
    assert waiting.claim_id == job.claim_id and waiting.alert_id == "orphan"
    # Sent again under a new task id; the dead worker's copy of the old task may no longer run it.
    (again,) = scheduler.dispatch(lambda j: None).sent
    assert again.task_id != job.task_id
    assert not scheduler.start(job, job.task_id, "other|3|c")
    assert scheduler.start(again, again.task_id, "other|3|c")


def test_a_restarted_node_makes_its_previous_process_dead_at_once(scheduler: Scheduler, client: redis.Redis) -> None:
    job = _dispatch_one(scheduler, "restarted")
    liveness.register_node(client, "assess@host", "old|1|x")
    liveness.beat(client, "old|1|x")
    assert scheduler.start(job, job.task_id, "old|1|x")
    assert recovery.reap(scheduler) == 0
    assert liveness.register_node(client, "assess@host", "new|2|y") == "old|1|x"
    assert recovery.reap(scheduler) == 1


def test_a_job_no_worker_took_returns_after_the_grace_when_nothing_waits_in_the_queue(
    scheduler: Scheduler, client: redis.Redis
) -> None:
    job = _dispatch_one(scheduler, "unsent")
    dispatched_at = _entry(scheduler, job.claim_id).dispatched_at
    assert recovery.reap(scheduler, now=dispatched_at + recovery.UNSENT_GRACE_S / 2) == 0
    # A message still waits in the assess queue: it may be this job's, and a worker will take it.
    client.rpush(ASSESS_QUEUE, b"{}")
    assert recovery.assess_messages_waiting(client) == 1
    assert recovery.reap(scheduler, now=dispatched_at + recovery.UNSENT_GRACE_S + 1) == 0
    client.delete(ASSESS_QUEUE)
    assert recovery.reap(scheduler, now=dispatched_at + recovery.UNSENT_GRACE_S + 1) == 1
    assert [j.claim_id for j in scheduler.pending_jobs()] == [job.claim_id]


def test_a_task_that_ended_without_settling_is_handed_back_by_its_live_worker(
    scheduler: Scheduler, client: redis.Redis
) -> None:
    # The task finished while Redis was away (or Redis lost its last second): the job still looks held by a
    # worker that is alive and beating, so only that worker can say the task is over.
    job = _dispatch_one(scheduler, "unsettled")
    assert scheduler.start(job, job.task_id, "live|1|a")
    liveness.beat(client, "live|1|a")
    assert not scheduler.disown(job.claim_id, "another-task", "live|1|a"), "a newer task for it is not touched"
    assert not scheduler.disown(job.claim_id, job.task_id, "other|2|b"), "nor one another worker holds"
    assert recovery.reap(scheduler, now=time.time() + 600) == 0
    assert scheduler.disown(job.claim_id, job.task_id, "live|1|a")
    released_at = _entry(scheduler, job.claim_id).dispatched_at
    assert _entry(scheduler, job.claim_id).owner == ""
    # Then it is a job no worker holds: back in line after the grace, as a lost message is.
    assert recovery.reap(scheduler, now=released_at + recovery.UNSENT_GRACE_S / 2) == 0
    assert recovery.reap(scheduler, now=released_at + recovery.UNSENT_GRACE_S + 1) == 1
    assert [j.claim_id for j in scheduler.pending_jobs()] == [job.claim_id]


def test_a_retried_task_received_again_is_not_handed_back(scheduler: Scheduler, client: redis.Redis) -> None:
    liveness.beat(client, "live|3|c")
    job = _dispatch_one(scheduler, "retried")
    assert scheduler.start(job, job.task_id, "live|1|a")
    assert scheduler.disown(job.claim_id, job.task_id, "live|1|a")
    # Its retry message reaches a worker (same task id, as Celery retries keep it): that worker owns it again.
    assert scheduler.start(job, job.task_id, "live|3|c")
    assert _entry(scheduler, job.claim_id).owner == "live|3|c"
    assert recovery.reap(scheduler, now=time.time() + recovery.UNSENT_GRACE_S + 1) == 0


def test_a_requeued_leader_keeps_its_followers(scheduler: Scheduler) -> None:
    leader = _dispatch_one(scheduler, "leader", fingerprint="fp-shared")
    follower = Job("idx", "follower", "claim-follower", "fp-shared", "rule", "high", NOW)
    assert scheduler.add([follower]) == 1  # waits for the leader's answer
    assert scheduler.start(leader, leader.task_id, "dead|9|z")
    assert recovery.reap(scheduler) == 1
    # Dispatched again, it still leads its fingerprint (it does not wait behind itself).
    (again,) = scheduler.dispatch(lambda j: None).sent
    assert again.claim_id == leader.claim_id
    assert [j.alert_id for j in scheduler.release_followers(again)] == ["follower"]


def test_starting_a_job_redis_lost_records_it_again(scheduler: Scheduler) -> None:
    job = Job("idx", "lost", "claim-lost", "", "rule", "high", NOW)
    assert scheduler.start(job, "task-1", "live|1|a")
    assert scheduler.inflight_count() == 1 and "claim-lost" in scheduler.known_claims()
    assert not scheduler.start(job, "task-2", "live|1|a")
    scheduler.finished(job)
    assert scheduler.inflight_count() == 0 and scheduler.in_flight() == []


def _services(settings: Settings) -> Services:
    llm = LLMClient("https://127.0.0.1:9", "k", settings.llm_model)  # never called by recovery
    return Services(settings, AlertStore(make_client(settings), settings.alert_index), llm)


def _claimed_long_ago(es: Elasticsearch, space: kibana.Space, placed: dict[str, str], claim_ids: dict[str, str],
                      source: str) -> None:
    for doc_id, index in placed.items():
        es.update(index=index, id=doc_id, refresh=True, doc=fields.ai_doc(
            status="queued", claim_id=claim_ids[doc_id], claimed_at="2020-01-01T00:00:00.000Z", source=source))


def test_claims_redis_does_not_know_are_claimed_again_keeping_their_source(
    es: Elasticsearch, space: kibana.Space, settings: Settings, scheduler: Scheduler
) -> None:
    services = _services(settings)
    services.store.ensure_mappings()
    docs = kibana.eligible(kibana.load_corpus())[:3]
    placed = kibana.seed(es, space, docs)
    ids = sorted(placed)
    known_job = Job(placed[ids[0]], ids[0], "claim-known", "", "rule", "high", NOW)
    scheduler.add([known_job])
    _claimed_long_ago(es, space, placed, {ids[0]: "claim-known", ids[1]: "claim-lost-1", ids[2]: "claim-lost-2"},
                      source="requeue")
    queued: list[Job] = []
    assert recovery.reconcile(services, scheduler, queued.extend) == 2
    assert sorted(job.alert_id for job in queued) == ids[1:]
    for job in queued:
        assert job.replaces.startswith("claim-lost-") and job.level == "requeue" and job.fresh
        source = es.get(index=placed[job.alert_id], id=job.alert_id)["_source"]["lme"]["ai"]
        assert source["claim_id"] == job.claim_id and source["source"] == "requeue"
    known = es.get(index=placed[ids[0]], id=ids[0])["_source"]["lme"]["ai"]
    assert known["claim_id"] == "claim-known", "a claim Redis has in hand is left alone"


def test_a_recent_claim_is_not_taken_for_lost(es: Elasticsearch, space: kibana.Space, settings: Settings,
                                             scheduler: Scheduler) -> None:
    services = _services(settings)
    services.store.ensure_mappings()
    placed = kibana.seed(es, space, kibana.eligible(kibana.load_corpus())[:2])
    report = claiming.claim_and_queue(settings, services.store, {"ids": {"values": sorted(placed)}},
                                      lambda jobs: None)  # claimed, then the process died before queueing
    assert report.claimed == 2
    es.indices.refresh(index=space.pattern)
    assert services.store.count(selection.claims_older_than(recovery.CLAIM_GRACE_S)) == 0
    assert recovery.reconcile(services, scheduler, lambda jobs: None) == 0


def test_an_empty_redis_is_noticed_and_reconciled_after_the_workers_reassert(
    settings: Settings, scheduler: Scheduler, client: redis.Redis
) -> None:
    services = _services(settings)
    first = recovery.recover(services, scheduler, lambda jobs: None)
    assert first.redis_reset and first.reclaimed == 0
    assert client.ttl(recovery.RECONCILED) > 0, "reconciling waits for the live workers to re-assert their jobs"
    assert not recovery.recover(services, scheduler, lambda jobs: None).redis_reset


def test_an_unforeseen_error_ends_the_alert_failed_with_its_reason_not_running(
    es: Elasticsearch, space: kibana.Space, settings: Settings
) -> None:
    services = _services(settings)
    services.store.ensure_mappings()
    placed = kibana.seed(es, space, kibana.eligible(kibana.load_corpus())[:1])
    jobs: list[Job] = []
    claiming.claim_and_queue(settings, services.store, {"ids": {"values": sorted(placed)}}, jobs.extend)
    (job,) = jobs
    outcome = pipeline.fail_unexpected(services, job, "internal", "internal error (KeyError: 'x'); requeue")
    assert (outcome.result, outcome.kind) == ("failed", "internal")
    ai = es.get(index=job.index, id=job.alert_id)["_source"]["lme"]["ai"]
    assert ai["status"] == "failed" and ai["error_kind"] == "internal" and "KeyError" in ai["error"]
    # The same job run again (recovery sent it twice) finds the alert no longer its own and leaves it alone.
    assert pipeline.fail_unexpected(services, job, "internal", "again").result == "superseded"
    assert es.get(index=job.index, id=job.alert_id)["_source"]["lme"]["ai"]["error"] == ai["error"]


def test_a_fact_card_carries_the_last_verdict_for_the_same_activity(
    es: Elasticsearch, space: kibana.Space, settings: Settings, scheduler: Scheduler
) -> None:
    # Not recovery, but the same pieces: claiming reads a page's last verdicts from the cache in one round trip.
    services = _services(settings)
    services.store.ensure_mappings()
    first, second = (dict(doc) for doc in kibana.eligible(kibana.load_corpus())[:2])
    twin = copy.deepcopy(first)
    twin["kibana.alert.uuid"] = f"{first['kibana.alert.uuid']}-twin"  # same activity, another alert
    placed = kibana.seed(es, space, [first])
    context = claiming.ClaimContext(None, scheduler)
    jobs: list[Job] = []
    claiming.claim_and_queue(settings, services.store, {"ids": {"values": sorted(placed)}}, jobs.extend,
                             context=context)
    (job,) = jobs
    scheduler.remember(job.fingerprint, {"risk_level": "high", "summary": "Discovery burst on ws5.",
                                         "enriched_at": "2026-12-01T09:00:00.000Z"})
    later = kibana.seed(es, space, [twin, second])
    claiming.claim_and_queue(settings, services.store, {"ids": {"values": sorted(later)}}, jobs.extend,
                             context=context)
    cards = {doc_id: es.get(index=index, id=doc_id)["_source"]["lme"]["ai"]["facts"] for doc_id, index in later.items()}
    assert "Last AI verdict for the same activity (2026-12-01 09:00 UTC): high. Discovery burst on ws5." in cards[
        twin["kibana.alert.uuid"]]
    assert "Last AI verdict" not in cards[second["kibana.alert.uuid"]]
