"""Incident groups and fact cards through the real pipeline (worker and beat processes, Redis, ES, the simulator).

The rules on their own (window chaining, growth, the group prompt, the card text) are in tests/unit/test_groups.py.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

from tests import kibana
from tests.celery_procs import celery_processes, wait_for
from tests.integration.conftest import LLMSim
from tests.integration.test_pipeline import sources, start_pipeline, status_count, wait_for_status
from tests.invariants import Ledger, check
from worker.alerts import alert, history

pytestmark = pytest.mark.slow

GROUP_LINE = "Incident group:"


def _storm(prefix: str, count: int) -> list[dict[str, Any]]:
    """``count`` alerts of one rule on one host, a second apart, that differ in the file they touched."""
    base = next(d for d in kibana.eligible(kibana.load_corpus())
                if alert.first(d, "kibana.alert.rule.name") == "Whoami Process Activity"
                and alert.first(d, "host.name"))
    docs = kibana.variants([base], count, prefix)
    for n, doc in enumerate(docs):
        kibana.set_field(doc, "file.path", f"C:\\Windows\\System32\\lib{n}.dll")
        kibana.set_field(doc, "kibana.alert.original_time", f"2026-12-01T10:00:{n:02d}.000Z")
    return docs


def _others() -> list[dict[str, Any]]:
    """Alerts of other rules on other hosts: groups of one, assessed as before."""
    corpus = kibana.eligible(kibana.load_corpus())
    picked: dict[tuple[Any, Any], dict[str, Any]] = {}
    for doc in corpus:
        key = (alert.first(doc, "kibana.alert.rule.name"), alert.first(doc, "host.name"))
        if key[0] != "Whoami Process Activity" and key not in picked:
            picked[key] = doc
    return list(picked.values())[:3]


def _group_calls(llm: LLMSim) -> list[str]:
    prompts = [r["body"]["messages"][-1]["content"] for r in llm.chat_requests()
               if isinstance(r.get("body"), dict) and r["body"].get("messages")]
    return [p for p in prompts if GROUP_LINE in p]


def _history(es: Elasticsearch, ids: list[str], placed: dict[str, str]) -> list[dict[str, Any]]:
    """This test's history records (the history index is shared: other tests' alerts may have the same ids)."""
    es.indices.refresh(index=history.ALIAS)
    found = es.search(index=history.ALIAS, size=100, query={"bool": {"should": [
        {"terms": {"alert.id": ids}}, {"terms": {"group.members": ids}}]}})
    ours = set(placed.values())
    return [hit["_source"] for hit in found["hits"]["hits"] if hit["_source"]["alert"]["index"] in ours]


def test_a_storm_is_one_incident_group_assessed_once_and_written_to_every_member(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    storm, others = _storm("storm", 12), _others()
    ledger = Ledger.of(es, kibana.seed(es, space, storm + others))
    storm_ids = [alert.first(d, "kibana.alert.uuid") for d in storm]
    with celery_processes(worker_env, tmp_path) as procs:
        start_pipeline(procs)
        ledger.wait_all_final(timeout=120)
    check(ledger, llm.chat_requests(), allow_failed=False)
    now = sources(es, ledger.placed)
    groups = {now[i]["lme"]["ai"]["group"]["id"] for i in storm_ids}
    assert len(groups) == 1, "one burst, one group"
    calls = _group_calls(llm)
    assert len(calls) == 1, f"the storm took {len(calls)} group calls"
    assert "12 alerts of this rule on host" in calls[0] and 'file (varies): "12 distinct values' in calls[0], calls[0]
    host = alert.first(storm[0], "host.name")
    for alert_id in storm_ids:
        ai = now[alert_id]["lme"]["ai"]
        assert ai["status"] == "done" and ai["group"]["size"] == 12
        assert "12" in ai["summary"] and host.lower() in ai["summary"].lower()
        assert "Whoami Process Activity" in ai["facts"] and host in ai["facts"]
    for doc in others:
        ai = now[alert.first(doc, "kibana.alert.uuid")]["lme"]["ai"]
        assert ai["status"] == "done" and ai.get("group", {}).get("size", 1) == 1
    records = _history(es, storm_ids, ledger.placed)
    grouped = [r for r in records if r.get("group", {}).get("members")]
    assert len(grouped) == 1 and set(grouped[0]["group"]["members"]) == set(storm_ids)
    assert all(r["alert"]["id"] not in storm_ids or r is grouped[0] for r in records), "recorded once"


def test_requeue_of_a_member_reassesses_that_alert_alone(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    from tests.integration.test_cli import cli

    storm = _storm("alone", 4)
    placed = kibana.seed(es, space, storm)
    member = alert.first(storm[0], "kibana.alert.uuid")
    with celery_processes(worker_env, tmp_path) as procs:
        start_pipeline(procs)
        wait_for_status(es, space, "done", 4, timeout=120)
        group_id = sources(es, placed)[member]["lme"]["ai"]["group"]["id"]
        llm.clear()
        result = cli(worker_env, "requeue", member)
        assert result.returncode == 0, result.stderr
        wait_for(lambda: sources(es, placed)[member]["lme"]["ai"]["source"] == "requeue"
                 and sources(es, placed)[member]["lme"]["ai"]["status"] == "done", timeout=120,
                 what="the requeued member assessed")
    assert len(llm.chat_requests()) == 1 and _group_calls(llm) == [], "assessed alone, not as its group"
    ai = sources(es, placed)[member]["lme"]["ai"]
    assert ai["group"]["id"] == group_id, "it still belongs to its incident"


def test_fact_cards_are_written_at_claim_time_and_stay_when_the_model_answers(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    docs = _others()
    placed = kibana.seed(es, space, docs)
    llm.fault(kind="503")  # the model is down: only the fact cards can say anything
    with celery_processes(worker_env, tmp_path) as procs:
        start_pipeline(procs)
        wait_for(lambda: status_count(es, space, "queued") + status_count(es, space, "running") == len(docs)
                 and all("facts" in s.get("lme", {}).get("ai", {}) for s in sources(es, placed).values()),
                 timeout=60, what="claimed alerts with fact cards")
        cards = {i: s["lme"]["ai"]["facts"] for i, s in sources(es, placed).items()}
        for doc in docs:
            card = cards[alert.first(doc, "kibana.alert.uuid")]
            assert card.startswith(f"Rule: {alert.first(doc, 'kibana.alert.rule.name')}")
            assert f"Host: {alert.first(doc, 'host.name')}" in card
        llm.clear()  # the model is back
        wait_for_status(es, space, "done", len(docs), timeout=240)
    assert {i: s["lme"]["ai"]["facts"] for i, s in sources(es, placed).items()} == cards


def test_grouping_off_assesses_each_alert_as_before(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    storm = _storm("nogroup", 5)
    placed = kibana.seed(es, space, storm)
    with celery_processes({**worker_env, "LME_ENRICH_GROUP_WINDOW": "0"}, tmp_path) as procs:
        start_pipeline(procs)
        wait_for_status(es, space, "done", 5, timeout=120)
    assert _group_calls(llm) == []
    assert all("group" not in s["lme"]["ai"] for s in sources(es, placed).values())
    assert all(s["lme"]["ai"]["facts"] for s in sources(es, placed).values()), "fact cards do not need groups"
