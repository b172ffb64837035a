"""Throughput features: fair priority, coalescing and the fingerprint cache (behaviour, not timings)."""

from __future__ import annotations

import itertools
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import redis
from elasticsearch import Elasticsearch

from tests import kibana
from tests.celery_procs import celery_processes
from tests.integration.conftest import LLMSim
from tests.integration.test_pipeline import sources, start_pipeline, wait_for_status
from worker.assessing import fingerprint, prompt
from worker.dispatch.scheduler import AFFINITY_RUN, SCAN, Job, Scheduler
from worker.settings import load_settings

pytestmark = pytest.mark.slow


@pytest.fixture
def scheduler(clean_redis: str, monkeypatch: pytest.MonkeyPatch) -> Iterator[Scheduler]:
    for name, value in {"LME_ENRICH_ES_USERNAME": "u", "LME_ENRICH_ES_PASSWORD": "p", "LME_ENRICH_LLM_API_KEY": "k",
                        "LME_ENRICH_DISPATCH_AHEAD": "1", "LME_ENRICH_PRIORITY_AGING": "15m"}.items():
        monkeypatch.setenv(name, value)
    client = redis.Redis.from_url(clean_redis)
    yield Scheduler(client, load_settings())
    client.close()


def _drain(scheduler: Scheduler) -> list[Job]:
    """Dispatch one at a time, finishing each before the next, as one model slot would."""
    order: list[Job] = []
    while True:
        sent = scheduler.dispatch(order.append).sent
        if not sent:
            return order
        for job in sent:
            scheduler.finished(job)
            scheduler.release_followers(job)


def test_severity_then_age_then_rule_share(scheduler: Scheduler) -> None:
    now = 1_000_000.0
    jobs = [
        Job("i", "low-new", "c1", "f1", "rule-l", "low", now),
        Job("i", "critical", "c2", "f2", "rule-c", "critical", now + 5),
        Job("i", "high", "c3", "f3", "rule-h", "high", now + 1),
        Job("i", "medium", "c4", "f4", "rule-m", "medium", now),
        # Waiting an hour is four levels of ageing: ahead of a fresh critical.
        Job("i", "low-old", "c5", "f5", "rule-l2", "low", now - 3600),
        Job("i", "requeued", "c6", "f6", "rule-r", "requeue", now + 100),
        Job("i", "backfill", "c7", "f7", "rule-b", "backfill", now - 60),
    ]
    scheduler.add(jobs)
    order = [job.alert_id for job in _drain(scheduler)]
    assert order == ["requeued", "low-old", "critical", "high", "medium", "low-new", "backfill"]


def test_a_storming_rule_does_not_take_every_slot(scheduler: Scheduler) -> None:
    now = 1_000_000.0
    storm = [Job("i", f"storm-{n}", f"s{n}", f"fs{n}", "storm rule", "high", now + n * 0.01) for n in range(50)]
    others = [Job("i", f"other-{n}", f"o{n}", f"fo{n}", f"rule-{n}", "high", now + 1 + n) for n in range(5)]
    scheduler.add(storm + others)
    order = [job.alert_id for job in _drain(scheduler)]
    assert len(order) == 55
    # Every other rule's alert is served within the first few dispatches, not after fifty storm alerts.
    assert max(order.index(f"other-{n}") for n in range(5)) < 12


def test_a_rule_keeps_the_model_for_a_short_run_for_its_prompt_cache(scheduler: Scheduler) -> None:
    now = 1_000_000.0
    # Two rules' alerts claimed alternately within seconds, and one critical that arrives last.
    jobs = [Job("i", f"{rule}-{n}", f"{rule}{n}", f"f{rule}{n}", f"rule {rule}", "medium", now + 2 * n + offset)
            for n in range(8) for rule, offset in (("a", 0.0), ("b", 1.0))]
    jobs.append(Job("i", "critical", "crit", "fcrit", "rule c", "critical", now + 60))
    scheduler.add(jobs)
    order = [job.alert_id for job in _drain(scheduler)]
    assert order[0] == "critical"  # a run never outranks a higher severity
    rules = [alert_id.split("-")[0] for alert_id in order[1:]]
    runs = [len(list(group)) for _, group in itertools.groupby(rules)]
    assert max(runs) == AFFINITY_RUN  # alerts of one rule go together, for the model's prompt cache ...
    assert runs[:2] == [AFFINITY_RUN, AFFINITY_RUN]  # ... but only for a short run: the other rule is next
    assert sorted(order) == sorted(job.alert_id for job in jobs)


def test_identical_fingerprints_are_dispatched_once(scheduler: Scheduler) -> None:
    jobs = [Job("i", f"a{n}", f"c{n}", "same", "rule", "high", 1000.0 + n) for n in range(10)]
    scheduler.add(jobs)
    first = scheduler.dispatch(lambda job: None)
    assert len(first.sent) == 1
    assert len(first.followers) == 9
    assert scheduler.release_followers(first.sent[0]) == first.followers
    scheduler.remember("same", {"summary": "x"})
    scheduler.add([Job("i", "late", "c-late", "same", "rule", "high", 2000.0)])
    scheduler.finished(first.sent[0])
    later = scheduler.dispatch(lambda job: None)
    assert later.sent == []
    assert [job.alert_id for job, _ in later.cached] == ["late"]


def test_fingerprint_changes_with_model_and_prompt_version_only() -> None:
    doc = kibana.eligible(kibana.load_corpus())[0]
    pairs = prompt.build(doc).pairs
    base = fingerprint.compute(doc, pairs, model="m1", prompt_version="v1")
    assert fingerprint.compute(doc, pairs, model="m1", prompt_version="v1") == base
    assert fingerprint.compute(doc, pairs, model="m2", prompt_version="v1") != base
    assert fingerprint.compute(doc, pairs, model="m1", prompt_version="v2") != base
    volatile = [(label, value.replace("1234", "98765")) for label, value in pairs]
    assert fingerprint.compute(doc, volatile, model="m1", prompt_version="v1") == fingerprint.compute(
        doc, [(label, value) for label, value in pairs], model="m1", prompt_version="v1")


def test_a_storm_costs_one_model_call_and_later_copies_come_from_the_cache(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    storm = kibana.variants(kibana.eligible(kibana.load_corpus())[:1], 30, "storm")
    placed = kibana.seed(es, space, storm[:25])
    with celery_processes(worker_env, tmp_path) as procs:
        start_pipeline(procs)
        wait_for_status(es, space, "done", 25, timeout=120)
        assert len(llm.chat_requests()) == 1
        later = kibana.seed(es, space, storm[25:])
        wait_for_status(es, space, "done", 30, timeout=120)
    assert len(llm.chat_requests()) == 1  # the five late copies came from the cache
    everything = sources(es, {**placed, **later})
    leaders = [i for i, s in everything.items() if not s["lme"]["ai"]["cached_from"]]
    assert len(leaders) == 1
    leader = everything[leaders[0]]["lme"]["ai"]
    cached = [s["lme"]["ai"] for i, s in everything.items() if i in later]
    assert all(ai["cached"] is True and ai["cached_from"] == leaders[0] for ai in cached)
    for ai in (s["lme"]["ai"] for s in everything.values()):
        assert ai["summary"] == leader["summary"]
        assert ai["fingerprint"] == leader["fingerprint"]


def test_a_new_model_is_not_served_from_the_cache_of_the_old_one(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    storm = kibana.variants(kibana.eligible(kibana.load_corpus())[:1], 2, "switch")
    kibana.seed(es, space, storm[:1])
    with celery_processes(worker_env, tmp_path / "old") as procs:
        start_pipeline(procs)
        wait_for_status(es, space, "done", 1, timeout=60)
    llm.set_models(["lfm2.5-1.2b-instruct", "other-model"])
    try:
        placed = kibana.seed(es, space, storm[1:])
        with celery_processes({**worker_env, "LME_ENRICH_LLM_MODEL": "other-model"}, tmp_path / "new") as procs:
            start_pipeline(procs)
            wait_for_status(es, space, "done", 2, timeout=60)
    finally:
        llm.set_models(["lfm2.5-1.2b-instruct"])
    calls = llm.chat_requests()
    assert [r["body"]["model"] for r in calls] == ["lfm2.5-1.2b-instruct", "other-model"]
    ai = next(iter(sources(es, placed).values()))["lme"]["ai"]
    assert ai["cached"] is False
    assert ai["model"] == "other-model"
    assert json.dumps(ai).count("switch-0") == 0  # not the old alert's assessment


def test_the_cache_can_be_turned_off(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    storm = kibana.variants(kibana.eligible(kibana.load_corpus())[:1], 2, "nocache")
    env = {**worker_env, "LME_ENRICH_CACHE_ENABLED": "false"}
    kibana.seed(es, space, storm[:1])
    with celery_processes(env, tmp_path) as procs:
        start_pipeline(procs)
        wait_for_status(es, space, "done", 1, timeout=60)
        kibana.seed(es, space, storm[1:])
        wait_for_status(es, space, "done", 2, timeout=60)
    assert len(llm.chat_requests()) == 2


def test_without_a_free_slot_every_cached_alert_is_served_past_one_read_and_a_requeue_still_goes(
    scheduler: Scheduler
) -> None:
    # One job in flight fills the window (LME_ENRICH_DISPATCH_AHEAD=1).
    scheduler.add([Job("i", "busy", "c-busy", "f-busy", "rule", "high", 1000.0)])
    assert [job.alert_id for job in scheduler.dispatch(lambda job: None).sent] == ["busy"]
    # More cached alerts than one dispatch read takes (SCAN), each with its own fingerprint, then one never seen.
    count = 2 * SCAN + 50
    jobs = [Job("i", f"a{n}", f"c{n}", f"f{n}", f"rule-{n % 7}", "medium", 2000.0 + n) for n in range(count)]
    for job in jobs:
        scheduler.remember(job.fingerprint, {"summary": f"answer {job.fingerprint}", "risk_level": "low"})
    scheduler.add([*jobs, Job("i", "new", "c-new", "f-new", "rule", "high", 1500.0)])
    decided = scheduler.dispatch(lambda job: None)
    assert decided.sent == []  # no slot: the uncached one waits
    assert sorted(job.alert_id for job, _ in decided.cached) == sorted(job.alert_id for job in jobs)
    assert all(answer["summary"] == f"answer {job.fingerprint}" for job, answer in decided.cached)
    # A person's requeue goes to Celery even without a slot.
    scheduler.add([Job("i", "asked", "c-asked", "f-asked", "rule", "requeue", 3000.0)])
    assert [job.alert_id for job in scheduler.dispatch(lambda job: None).sent] == ["asked"]
    assert scheduler.pending_count() == 1  # "new", still waiting for its slot


def test_taking_over_a_dead_claim_frees_its_slot_and_its_leadership(scheduler: Scheduler) -> None:
    dead = Job("i", "a1", "old-claim", "fp", "rule", "high", 1000.0)
    scheduler.add([dead, Job("i", "a2", "old-follower", "fp", "rule", "high", 1000.5)])
    first = scheduler.dispatch(lambda job: None)
    assert [job.claim_id for job in first.sent] == ["old-claim"]
    assert scheduler.inflight_count() == 1
    # The worker died with it; the poll re-claims both alerts after the lease.
    scheduler.add([Job("i", "a1", "new-claim", "fp", "rule", "high", 5000.0, replaces="old-claim"),
                   Job("i", "a2", "new-follower", "fp", "rule", "high", 5000.5, replaces="old-follower")])
    assert scheduler.inflight_count() == 0
    again = scheduler.dispatch(lambda job: None)
    assert [job.claim_id for job in again.sent] == ["new-claim"]  # a new leader, not a wait for the dead one
    assert [job.claim_id for job in again.followers] == ["new-follower"]
