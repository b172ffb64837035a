"""The operator commands against the test servers, real Redis and real worker processes."""

from __future__ import annotations

import base64
import json
import os
import signal
import subprocess
import sys
from collections import Counter
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import redis
from elasticsearch import Elasticsearch

from tests import kibana
from tests.celery_procs import ROOT, celery_processes, wait_for
from tests.integration.conftest import LLMSim
from tests.integration.test_pipeline import sources, start_pipeline, status_count, wait_for_status
from worker.alerts import alert, history
from worker.celery_conf import ASSESS_QUEUE, POLL_QUEUE, queue_lists
from worker.dispatch.scheduler import Scheduler
from worker.settings import load_settings

pytestmark = pytest.mark.slow


def cli(env: dict[str, str], *args: str, timeout: float = 120) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "worker.admin.cli", *args], cwd=ROOT, env={**os.environ, **env},
                          capture_output=True, text=True, timeout=timeout, check=False)


def celery_messages(redis_url: str) -> list[list[Any]]:
    """The args of every assess task in the Celery queue (all priority levels)."""
    client = redis.Redis.from_url(redis_url)
    found = []
    for name in queue_lists(ASSESS_QUEUE):
        for raw in client.lrange(name, 0, -1):
            message = json.loads(raw)
            args, _kwargs, _embed = json.loads(base64.b64decode(message["body"]))
            found.append(args)
    client.close()
    return found


def queued_assessments(redis_url: str) -> list[str]:
    """Alert ids waiting for an assessment: in the Celery queue, in lme-enrich's own queue, or behind a leader."""
    client = redis.Redis.from_url(redis_url)
    scheduler = Scheduler(client, load_settings(es_username="u", es_password="p", llm_api_key="k"))
    ids = [args[1] for args in celery_messages(redis_url)]
    ids += [job.alert_id for job in scheduler.pending_jobs() + scheduler.following_jobs()]
    client.close()
    return ids


def test_status_json_agrees_with_what_was_seeded_and_processed(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    docs = kibana.eligible(kibana.load_corpus())
    kibana.seed(es, space, docs[:12])
    # The history index is shared with every other run on this cluster: compare last-hour figures as deltas.
    # Refreshed first so that history written by earlier tests cannot become visible mid-test.
    es.options(ignore_status=404).indices.refresh(index=history.ALIAS)
    before = json.loads(cli(worker_env, "status", "--json").stdout)["last_hour"]
    # One assessment (and history record) per alert, so the figures can be counted: grouping off.
    with celery_processes({**worker_env, "LME_ENRICH_GROUP_WINDOW": "0"}, tmp_path) as procs:
        start_pipeline(procs)
        wait_for_status(es, space, "done", 12, timeout=120)
        kibana.seed(es, space, docs[12:15], refresh=True)  # three more arrive while we look
        assert es.count(index=space.pattern)["count"] == 15
        # Each history record is written just after its alert turns done and is searchable a refresh
        # later: status is near-real-time, so wait for it to catch up rather than read it once.
        live_reports: list[dict[str, Any]] = []

        def status_caught_up() -> bool:
            run = cli(worker_env, "status", "--json")
            assert run.returncode == 0, run.stderr
            live_reports.append(json.loads(run.stdout))
            return bool(live_reports[-1]["last_hour"]["assessed"] - before["assessed"] >= 12)

        wait_for(status_caught_up, timeout=30, what="status to count the twelve assessments")
    report = live_reports[-1]
    assert report["alerts"]["by_status"].get("done", 0) >= 12
    assert report["last_hour"]["assessed"] - before["assessed"] >= 12
    assert report["last_hour"]["failed"] == before["failed"]
    assert report["last_hour"]["p95_duration_ms"] is not None
    assert report["beat"]["alive"] is True
    assert report["workers"]["poll"] is True
    assert report["workers"]["assess"] is True
    assert report["last_poll_at"] is not None
    # After the workers stopped: exact numbers, nothing waiting, nobody alive.
    wait_for(lambda: status_count(es, space, "done") + status_count(es, space, "queued")
             + status_count(es, space, "running") == 15, timeout=30, what="the last alerts' claims to be visible")
    after = json.loads(cli(worker_env, "status", "--json").stdout)
    counts = after["alerts"]["by_status"]
    assert counts.get("done", 0) + counts.get("queued", 0) + counts.get("running", 0) == 15
    assert after["alerts"]["waiting"] == counts.get("queued", 0) + counts.get("running", 0)
    assert after["queues"][ASSESS_QUEUE] == len(celery_messages(worker_env["LME_ENRICH_REDIS_URL"]))
    assert after["queues"][POLL_QUEUE] >= 0
    assert after["workers"]["alive"] == []
    people = cli(worker_env, "status")
    assert people.returncode == 0
    assert "alerts" in people.stdout
    assert "NONE ANSWERED" in people.stdout


def test_requeue_dry_run_then_requeue_is_idempotent(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    docs = kibana.eligible(kibana.load_corpus())[:8]
    placed = kibana.seed(es, space, docs)
    rule = alert.first(docs[0], "kibana.alert.rule.name")
    same_rule = [d for d in docs if alert.first(d, "kibana.alert.rule.name") == rule]
    with celery_processes(worker_env, tmp_path) as procs:
        start_pipeline(procs)
        wait_for_status(es, space, "done", 8, timeout=120)
    dry = cli(worker_env, "requeue", "--rule", rule, "--dry-run")
    assert dry.returncode == 0, dry.stderr
    assert dry.stdout.startswith(f"{len(same_rule)} alert(s) would be requeued")
    assert queued_assessments(worker_env["LME_ENRICH_REDIS_URL"]) == []
    first = cli(worker_env, "requeue", "--rule", rule)
    assert first.returncode == 0, first.stderr
    assert f"requeued {len(same_rule)} alert(s)" in first.stdout
    wait_for(lambda: status_count(es, space, "queued") == len(same_rule), timeout=10, what="claims visible")
    second = cli(worker_env, "requeue", "--rule", rule)
    assert "requeued 0 alert(s)" in second.stdout  # already queued: not queued twice
    queued = queued_assessments(worker_env["LME_ENRICH_REDIS_URL"])
    assert sorted(queued) == sorted(alert.first(d, "kibana.alert.uuid") for d in same_rule)
    for source in sources(es, placed).values():
        if alert.first(source, "kibana.alert.rule.name") == rule:
            assert source["lme"]["ai"]["source"] == "requeue"
    by_id = cli(worker_env, "requeue", next(iter(placed)), "--dry-run")
    assert by_id.returncode == 0


def test_requeue_names_ids_that_are_no_alert_and_fails(
    es: Elasticsearch, space: kibana.Space, worker_env: dict[str, str]
) -> None:
    placed = kibana.seed(es, space, kibana.eligible(kibana.load_corpus())[:1])
    real = next(iter(placed))
    result = cli(worker_env, "requeue", real, "no-such-alert-1", "no-such-alert-2")
    assert result.returncode == 1
    assert "no-such-alert-1, no-such-alert-2" in result.stderr and real not in result.stderr
    assert "nothing was requeued" in result.stderr
    assert status_count(es, space, "queued") == 0


@pytest.mark.parametrize(
    ("args", "message"),
    [
        ((), "name the alerts to requeue"),
        (("--query", "{not json"), "not JSON"),
        (("--query", "[1]"), "expected a JSON object"),
        (("--since", "soon"), "expected a duration"),
        (("--status", "weird"), "Invalid value"),
    ],
)
def test_requeue_bad_arguments(worker_env: dict[str, str], args: tuple[str, ...], message: str) -> None:
    result = cli(worker_env, "requeue", *args)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_requeued_alerts_go_ahead_of_a_waiting_backlog(
    es: Elasticsearch, space: kibana.Space, llm: LLMSim, worker_env: dict[str, str], tmp_path: Path
) -> None:
    corpus = kibana.eligible(kibana.load_corpus())
    urgent = kibana.variants(corpus, 100, "urgent", kibana__alert__rule__name="Urgent rule")
    worker_env = {**worker_env, "LME_ENRICH_GROUP_WINDOW": "0"}  # the order of single assessments
    backlog = kibana.variants(corpus, 1000, "backlog", kibana__alert__rule__name="Backlog rule",
                              kibana__alert__severity="low", kibana__alert__risk_score=21)
    kibana.seed(es, space, urgent)
    with celery_processes(worker_env, tmp_path / "first") as procs:
        start_pipeline(procs)
        wait_for_status(es, space, "done", 100, timeout=180)
    # The backlog is claimed and queued by the poll, but no assessment worker runs yet.
    kibana.seed(es, space, backlog)
    with celery_processes(worker_env, tmp_path / "second") as procs:
        procs.worker("poll", queues=(POLL_QUEUE,), concurrency=1)
        procs.beat()
        wait_for(lambda: len(queued_assessments(worker_env["LME_ENRICH_REDIS_URL"])) == 1000, timeout=120,
                 what="the backlog to be queued")
        result = cli(worker_env, "requeue", "--rule", "Urgent rule")
        assert "requeued 100 alert(s)" in result.stdout, result.stderr
        procs.worker("assess", queues=(ASSESS_QUEUE,), concurrency=1)
        wait_for(lambda: es.count(index=space.pattern, query={"bool": {"filter": [
            {"term": {"kibana.alert.rule.name": "Urgent rule"}}, {"term": {"lme.ai.source": "requeue"}},
            {"term": {"lme.ai.status": "done"}}]}})["count"] == 100, timeout=180, what="the requeued alerts")
    from worker.alerts import history

    es.indices.refresh(index=history.ALIAS)
    # This space's records only: other tests write the same history index.
    finished = es.search(index=history.ALIAS, size=1200, sort=[{"@timestamp": "asc"}],
                         query={"prefix": {"alert.index": space.index_prefix}})
    order = [h["_source"]["rule"]["name"] for h in finished["hits"]["hits"]
             if h["_source"]["rule"]["name"] == "Backlog rule" or h["_source"].get("source") == "requeue"]
    first_backlog = order.index("Backlog rule") if "Backlog rule" in order else len(order)
    assert Counter(order[:first_backlog]) == Counter({"Urgent rule": 100}), order[: first_backlog + 3]


def test_backfill_interrupted_and_rerun_queues_each_alert_once(
    es: Elasticsearch, space: kibana.Space, worker_env: dict[str, str]
) -> None:
    docs = kibana.eligible(kibana.load_corpus())[:120]
    old = datetime.now(UTC) - timedelta(days=3)
    kibana.seed(es, space, docs, now=old)
    env = {**worker_env, "LME_ENRICH_BATCH_SIZE": "10"}
    proc = subprocess.Popen([sys.executable, "-m", "worker.admin.cli", "backfill", "--since", "7d"], cwd=ROOT,
                            env={**os.environ, **env}, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    wait_for(lambda: len(queued_assessments(env["LME_ENRICH_REDIS_URL"])) >= 10, timeout=60,
             what="the first page to be queued")
    proc.send_signal(signal.SIGINT)  # Ctrl-C
    out, err = proc.communicate(timeout=60)
    assert proc.returncode == 130, err
    assert "interrupted" in out
    part = len(queued_assessments(env["LME_ENRICH_REDIS_URL"]))
    assert 10 <= part < 120
    wait_for(lambda: status_count(es, space, "queued") == part, timeout=10, what="the claims to be searchable")
    again = cli(env, "backfill", "--since", "7d")
    assert again.returncode == 0, again.stderr
    assert f"queued {120 - part} of {120 - part}" in again.stdout
    queued = queued_assessments(env["LME_ENRICH_REDIS_URL"])
    assert Counter(queued) == Counter({alert.first(d, "kibana.alert.uuid"): 1 for d in docs})
    wait_for(lambda: status_count(es, space, "queued") == 120, timeout=10, what="all claims")
    assert cli(env, "backfill", "--since", "7d").stdout.strip() == "nothing to backfill"


def test_commands_fail_in_one_line_when_a_dependency_is_down(worker_env: dict[str, str]) -> None:
    es_down = cli({**worker_env, "LME_ENRICH_ES_URL": "http://127.0.0.1:9", "LME_ENRICH_ES_REQUEST_TIMEOUT": "2s"},
                  "status")
    assert es_down.returncode == 2
    assert es_down.stderr.startswith("lme-enrich: ")
    assert "Traceback" not in es_down.stderr
    check = cli({**worker_env, "LME_ENRICH_ES_URL": "http://127.0.0.1:9"}, "check")
    assert check.returncode == 2
    assert "cannot reach Elasticsearch" in check.stderr
