"""End to end: real Redis, real Celery worker and beat processes, the ES test server and the LLM simulator.

Alerts from the corpus are seeded in Kibana's layout; lme-enrich must enrich each one exactly once,
make every field it writes searchable, and leave every other byte of the alert as it was.
"""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
from collections import Counter
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests import kibana
from tests.celery_procs import ROOT, CeleryProcesses, celery_processes, wait_for
from tests.fakes.llm.answers import expected_answer
from tests.fakes.process import RunningServer
from tests.faults.harness import pool_children
from tests.integration.conftest import LLMSim
from worker.alerts import alert, fields
from worker.assessing import assessment, fingerprint, guards, prompt
from worker.assessing.llm import BODY_TIMEOUT_MARGIN_S
from worker.celery_conf import ASSESS_QUEUE, POLL_QUEUE

pytestmark = pytest.mark.slow

MODEL = "lfm2.5-1.2b-instruct"
SHARED = ("summary", "risk_level", "recommended_actions", "confidence", "model")
DONE_FIELDS = [
    "status", "source", "claim_id", "claimed_at", "started_at", "enriched_at", "attempts", "summary",
    "risk_level", "recommended_actions", "confidence", "model", "prompt_version", "fingerprint",
    "duration_ms", "tokens.prompt", "tokens.completion", "injection_suspected", "cached",
]


def count(es: Elasticsearch, space: kibana.Space, query: dict[str, Any]) -> int:
    return int(es.count(index=space.pattern, query=query)["count"])


def status_count(es: Elasticsearch, space: kibana.Space, status: str) -> int:
    return count(es, space, {"term": {"lme.ai.status": status}})


def wait_for_status(es: Elasticsearch, space: kibana.Space, status: str, n: int, timeout: float) -> None:
    wait_for(lambda: status_count(es, space, status) >= n, timeout=timeout,
             what=f"{n} alerts with lme.ai.status={status}")


def sources(es: Elasticsearch, placed: dict[str, str]) -> dict[str, dict[str, Any]]:
    docs = es.mget(docs=[{"_index": index, "_id": doc_id} for doc_id, index in placed.items()])["docs"]
    return {d["_id"]: d["_source"] for d in docs}


def without_ours(source: dict[str, Any]) -> str:
    """The alert as JSON text without our namespace: what must stay byte-for-byte the same."""
    return json.dumps({k: v for k, v in source.items() if k != "lme"}, ensure_ascii=False)


def start_pipeline(procs: CeleryProcesses, *, assess_concurrency: int = 2) -> None:
    procs.worker("poll", queues=(POLL_QUEUE,), concurrency=1)
    procs.worker("assess", queues=(ASSESS_QUEUE,), concurrency=assess_concurrency)
    procs.beat()


def test_corpus_alerts_are_enriched_searchable_and_otherwise_untouched(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    docs = kibana.eligible(kibana.load_corpus())[:200]
    assert len(docs) == 200
    placed = kibana.seed(es, space, docs)
    before = sources(es, placed)

    # Each alert against its own prompt and answer: grouping off (incident groups: tests/integration/test_groups.py).
    with celery_processes({**worker_env, "LME_ENRICH_GROUP_WINDOW": "0"}, tmp_path) as procs:
        start_pipeline(procs)
        wait_for_status(es, space, "done", 200, timeout=240)

    # Every field we write is mapped, so Kibana (and our own poller) can search it.
    for name in DONE_FIELDS:
        assert count(es, space, {"exists": {"field": fields.field(name)}}) == 200, name
    assert status_count(es, space, "failed") == 0

    after = sources(es, placed)
    chats = llm.chat_requests()
    # One model call per distinct fingerprint: the corpus' storms are coalesced or served from the cache.
    fingerprints = {fingerprint.compute(s, prompt.build(s).pairs, model=MODEL, prompt_version=prompt.PROMPT_VERSION)
                    for s in before.values()}
    assert len(chats) == len(fingerprints) < 200
    by_messages = {json.dumps(r["body"]["messages"]): r["body"] for r in chats}
    for alert_id, source in after.items():
        assert without_ours(source) == without_ours(before[alert_id]), f"alert {alert_id} changed outside lme.ai"
        assert "lme" not in before[alert_id]
        ai = source["lme"]["ai"]
        assert ai["status"] == "done"
        assert ai["source"] == "new"
        assert ai["prompt_version"] == prompt.PROMPT_VERSION
        assert ai["error"] is None
        if ai["cached_from"]:
            # Served without a model call: exactly the assessment of the alert it names.
            origin = after[ai["cached_from"]]["lme"]["ai"]
            assert ai["attempts"] == 0
            assert ai["fingerprint"] == origin["fingerprint"]
            assert {k: ai[k] for k in SHARED} == {k: origin[k] for k in SHARED}
            continue
        body = by_messages[json.dumps(prompt.build(before[alert_id]).messages)]
        # The simulator's answers are a pure function of the request: what we wrote back must be exactly it.
        reply = expected_answer(body)
        # What we wrote back is exactly the answer after the deterministic guards (worker/assessing/guards.py).
        src = before[alert_id]
        parsed = assessment.parse(reply.content, reply.finish_reason)
        expected = guards.guard(parsed, src, guards.detect_injection(src), guards.rule_severity(src)).as_fields()
        assert {k: ai[k] for k in expected} == expected
        assert ai["attempts"] == 1
        assert ai["cached"] is False
        assert ai["tokens"] == {"prompt": reply.prompt_tokens, "completion": reply.completion_tokens}
    # The LiteLLM body timeout sits below our read timeout, so LiteLLM cancels a call we gave up on.
    assert {r["body"]["timeout"] for r in chats} == {30 - BODY_TIMEOUT_MARGIN_S}
    assert {r["body"]["num_retries"] for r in chats} == {0}


def test_kibana_changes_made_during_an_assessment_survive(
    es: Elasticsearch, space: kibana.Space, worker_env: dict[str, str], slow_llm: RunningServer, tmp_path: Path
) -> None:
    docs = kibana.eligible(kibana.load_corpus())[:2]
    placed = kibana.seed(es, space, docs)
    target = next(iter(placed))
    # The target must run itself (in a group it could wait as a follower): grouping off.
    env = {**worker_env, "LME_ENRICH_LLM_URL": slow_llm.url, "LME_ENRICH_GROUP_WINDOW": "0"}
    with celery_processes(env, tmp_path) as procs:
        start_pipeline(procs, assess_concurrency=1)
        wait_for(lambda: alert.first(es.get(index=placed[target], id=target)["_source"], "lme.ai.status")
                 == "running", timeout=60, what="the alert to be running")
        # What Kibana's status and tag actions do: change only their own fields.
        es.update(index=placed[target], id=target, doc={"kibana.alert.workflow_status": "acknowledged",
                                                        "kibana.alert.workflow_tags": ["Duplicate"]})
        wait_for_status(es, space, "done", 2, timeout=120)
    final = es.get(index=placed[target], id=target)["_source"]
    assert final["kibana.alert.workflow_status"] == "acknowledged"
    assert final["kibana.alert.workflow_tags"] == ["Duplicate"]
    assert final["lme"]["ai"]["status"] == "done"


def test_two_beats_and_two_workers_call_the_model_once_per_alert(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    docs = kibana.eligible(kibana.load_corpus())[:100]
    placed = kibana.seed(es, space, docs)
    seeded = sources(es, placed)
    beat_dirs = [tmp_path / "a", tmp_path / "b"]
    env = {**worker_env, "LME_ENRICH_GROUP_WINDOW": "0"}  # one question per alert's own prompt
    with celery_processes(env, beat_dirs[0]) as first, celery_processes(env, beat_dirs[1]) as second:
        for procs, name in ((first, "one"), (second, "two")):
            procs.worker(f"poll-{name}", queues=(POLL_QUEUE,), concurrency=1)
            procs.worker(f"assess-{name}", queues=(ASSESS_QUEUE,), concurrency=2)
            procs.beat(f"beat-{name}")
        wait_for_status(es, space, "done", 100, timeout=240)
    # Never the same question twice: one call per distinct prompt, whatever raced.
    made = Counter(json.dumps(r["body"]["messages"]) for r in llm.chat_requests())
    assert made == Counter({json.dumps(prompt.build(source).messages): 1 for source in seeded.values()})
    assert all(s["lme"]["ai"]["attempts"] in (0, 1) for s in sources(es, placed).values())


def test_transient_llm_faults_are_retried_until_it_recovers(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    docs = kibana.eligible(kibana.load_corpus())[:20]
    placed = kibana.seed(es, space, docs)
    llm.fault(kind="500", count=8)
    # Calls are matched to each alert's own prompt: grouping off.
    with celery_processes({**worker_env, "LME_ENRICH_GROUP_WINDOW": "0"}, tmp_path) as procs:
        start_pipeline(procs)
        wait_for(lambda: len(llm.chat_requests()) >= 8, timeout=60, what="the 500s to be served")
        llm.fault(kind="429", rate=0.4, seed=3, retry_after=1)
        wait_for_status(es, space, "done", 20, timeout=180)
    after = sources(es, placed)
    calls: dict[str, int] = {}
    for r in llm.chat_requests():
        calls[json.dumps(r["body"]["messages"])] = calls.get(json.dumps(r["body"]["messages"]), 0) + 1
    assert sum(calls.values()) > 20  # the faults really hit
    recorded: Counter[str] = Counter()
    for source in after.values():
        ai = source["lme"]["ai"]
        assert ai["status"] == "done"
        recorded[json.dumps(prompt.build({k: v for k, v in source.items() if k != "lme"}).messages)] += ai["attempts"]
    # Attempts are counted before each call: never fewer recorded than made (alerts sharing a prompt share
    # its calls: one of them made them, the others were served its answer).
    for messages, made in calls.items():
        assert recorded[messages] >= made


def test_a_broken_llm_ends_in_failed_and_the_reassess_tag_brings_it_back(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    docs = kibana.eligible(kibana.load_corpus())[:5]
    placed = kibana.seed(es, space, docs)
    llm.fault(kind="503")  # every call until cleared
    env = {**worker_env, "LME_ENRICH_LLM_ATTEMPTS": "2", "LME_ENRICH_TASK_RETRIES": "1"}
    with celery_processes(env, tmp_path) as procs:
        start_pipeline(procs)
        wait_for_status(es, space, "failed", 5, timeout=120)
        for source in sources(es, placed).values():
            ai = source["lme"]["ai"]
            assert ai["error_kind"] == "server"
            assert "503" in ai["error"]
        llm.clear()
        target = next(iter(placed))
        # What Kibana's "add tag" action does: only the tags change.
        es.update(index=placed[target], id=target, doc={"kibana.alert.workflow_tags": ["Duplicate", "AI: Re-assess"]})
        wait_for_status(es, space, "done", 1, timeout=60)
    final = es.get(index=placed[target], id=target)["_source"]
    assert final["lme"]["ai"]["status"] == "done"
    assert final["lme"]["ai"]["source"] == "reassess"
    assert final["kibana.alert.workflow_tags"] == ["Duplicate"]  # only our tag removed
    assert status_count(es, space, "failed") == 4


def test_rollover_mid_run_maps_and_enriches_the_new_index(
    es: Elasticsearch, space: kibana.Space, worker_env: dict[str, str], tmp_path: Path
) -> None:
    docs = kibana.eligible(kibana.load_corpus())
    first, second = docs[:10], docs[10:20]
    kibana.seed(es, space, first)
    with celery_processes(worker_env, tmp_path) as procs:
        start_pipeline(procs)
        wait_for_status(es, space, "done", 10, timeout=120)
        new_index = kibana.rollover(es, space)
        assert new_index.endswith("-000002")
        placed = kibana.seed(es, space, second)
        assert set(placed.values()) == {new_index}
        wait_for_status(es, space, "done", 20, timeout=120)
    mapping = es.indices.get_mapping(index=new_index)[new_index]["mappings"]
    assert "ai" in mapping["properties"]["lme"]["properties"]


def test_a_worker_killed_mid_assessment_and_restarted_under_its_name_loses_nothing(
    es: Elasticsearch, space: kibana.Space, worker_env: dict[str, str], slow_llm: RunningServer, tmp_path: Path
) -> None:
    docs = kibana.eligible(kibana.load_corpus())[:3]
    kibana.seed(es, space, docs)
    with celery_processes({**worker_env, "LME_ENRICH_LLM_URL": slow_llm.url}, tmp_path) as procs:
        start_pipeline(procs, assess_concurrency=1)
        wait_for_status(es, space, "running", 1, timeout=60)
        # Polled and assessing: each worker does it in threads of its one process (worker.celery_conf.POOL).
        assert pool_children(procs.procs["poll"].pid) == [], "the poll worker forked a pool"
        assert pool_children(procs.procs["assess"].pid) == [], "the assess worker forked a pool"
        # Killed mid-assessment (OOM killer) and restarted by its supervisor under the same node name: its
        # start says the process that ran the name before is dead, and what that process held goes back in line.
        procs.kill("assess")
        procs.restart("assess")
        wait_for_status(es, space, "done", 3, timeout=120)
    assert status_count(es, space, "queued") == 0
    assert status_count(es, space, "running") == 0
    assert "restarted; the tasks its previous process held go back in line" in procs.log("assess")


def test_a_killed_worker_s_alert_is_recovered_by_its_heartbeat_not_the_lease(
    es: Elasticsearch, space: kibana.Space, worker_env: dict[str, str], slow_llm: RunningServer, tmp_path: Path
) -> None:
    env = {k: v for k, v in worker_env.items() if k != "LME_ENRICH_CLAIM_LEASE"}  # the default: 2 h
    env.update({"LME_ENRICH_LLM_URL": slow_llm.url, "LME_ENRICH_LLM_ATTEMPTS": "1"})
    placed = kibana.seed(es, space, kibana.eligible(kibana.load_corpus())[:1])
    (alert_id, index), = placed.items()
    with celery_processes(env, tmp_path) as procs:
        start_pipeline(procs, assess_concurrency=1)
        wait_for_status(es, space, "running", 1, timeout=60)
        first_claim = es.get(index=index, id=alert_id)["_source"]["lme"]["ai"]["claim_id"]
        # The whole worker dies (OOM killer, host crash): nothing acknowledges or requeues its task.
        victim = procs.procs["assess"]
        for pid in [*pool_children(victim.pid), victim.pid]:
            os.kill(pid, signal.SIGKILL)
        victim.wait(10)
        # Another node name: its heartbeat has to expire (15 s) before the job is put back in line.
        procs.worker("assess-restarted", queues=(ASSESS_QUEUE,), concurrency=1)
        wait_for_status(es, space, "done", 1, timeout=120)
    ai = es.get(index=index, id=alert_id)["_source"]["lme"]["ai"]
    assert ai["claim_id"] == first_claim  # the job went back in line with its claim: no takeover needed
    assert ai["source"] == "new"
    assert ai["attempts"] == 2


def test_preflight_names_the_models_litellm_serves(worker_env: dict[str, str]) -> None:
    result = subprocess.run(
        [sys.executable, "-m", "worker.admin.preflight"], cwd=ROOT, capture_output=True, text=True, timeout=60,
        env={**os.environ, **worker_env, "LME_ENRICH_LLM_MODEL": "gpt-4"}, check=False,
    )
    assert result.returncode == 2
    lines = [line for line in result.stderr.splitlines() if line.startswith("lme-enrich:")]
    assert len(lines) == 1
    assert "LME_ENRICH_LLM_MODEL" in lines[0]
    assert "lfm2.5-1.2b-instruct" in lines[0]


def test_every_assessment_is_recorded_in_the_history_index(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    from worker.alerts import history

    docs = kibana.eligible(kibana.load_corpus())[:6]
    placed = kibana.seed(es, space, docs)
    llm.fault(kind="malformed", count=1)  # one reply is garbage: a failure, recorded as well
    # One record per alert assessed on its own (a group's record names its members: test_groups.py).
    env = {**worker_env, "LME_ENRICH_HISTORY_MAX_CHARS": "300", "LME_ENRICH_GROUP_WINDOW": "0"}
    with celery_processes(env, tmp_path) as procs:
        start_pipeline(procs, assess_concurrency=1)
        wait_for(lambda: status_count(es, space, "done") + status_count(es, space, "failed") == 6, timeout=120,
                 what="six finished assessments")
    es.indices.refresh(index=history.ALIAS)
    # Other tests assess the same corpus alerts in other spaces: select this space's backing index.
    mine = {"bool": {"filter": [{"terms": {"alert.id": list(placed)}},
                                {"terms": {"alert.index": sorted(set(placed.values()))}}]}}
    hits = es.search(index=history.ALIAS, query=mine, size=20)["hits"]["hits"]
    records = {h["_source"]["alert"]["id"]: h["_source"] for h in hits}
    assert set(records) == set(placed)
    statuses = sorted(r["status"] for r in records.values())
    assert statuses == ["done"] * 5 + ["failed"]
    failed = next(r for r in records.values() if r["status"] == "failed")
    assert failed["error_kind"] == "not_json"
    assert failed["raw_reply"]
    for alert_id, record in records.items():
        assert record["alert"]["index"] == placed[alert_id]
        assert record["rule"]["name"]
        assert record["prompt_version"] == prompt.PROMPT_VERSION
        assert record["attempts"] == 1
        assert len(record["prompt"]) <= 300 + len("… [99999 more characters]")
        assert "more characters]" in record["prompt"]
