"""The Celery app starts as real worker and beat processes with the project's settings."""

from __future__ import annotations

import os
import signal
import time
from pathlib import Path

import redis

from tests.celery_procs import celery_processes, wait_for
from worker.dispatch import heartbeat


def test_beat_schedules_and_a_poll_worker_runs(redis_url: str, tmp_path: Path) -> None:
    client = redis.Redis.from_url(redis_url)
    client.delete(heartbeat.KEY_PREFIX + "beat")
    env = {
        "LME_ENRICH_REDIS_URL": redis_url,
        "LME_ENRICH_ES_USERNAME": "elastic",
        "LME_ENRICH_ES_PASSWORD": "unused-here",
        "LME_ENRICH_LLM_API_KEY": "unused-here",
        "LME_ENRICH_POLL_INTERVAL": "1s",
        # No Elasticsearch here: a closed loopback port refuses at once, where the default host name waits for
        # DNS (seen on a loaded CI machine: a poll still resolving when the test stopped the worker, SIGKILLed).
        "LME_ENRICH_ES_URL": "https://127.0.0.1:9",
    }
    started = time.time()
    with celery_processes(env, tmp_path) as procs:
        procs.worker("poll")
        procs.beat()
        seen = wait_for(lambda: heartbeat.last_seen(client, "beat"), timeout=60, what="beat's heartbeat task")
        assert seen >= started
        # A second beat tick proves the schedule repeats rather than firing once at start.
        wait_for(lambda: (heartbeat.last_seen(client, "beat") or 0) > seen, timeout=30, what="a second heartbeat")
    for name, proc in procs.procs.items():
        assert proc.returncode == 0, f"{name} exited with {proc.returncode}:\n{procs.log(name)[-2000:]}"


def test_start_up_fails_clearly_on_a_wrong_setting(redis_url: str, tmp_path: Path) -> None:
    env = {
        "LME_ENRICH_REDIS_URL": redis_url,
        "LME_ENRICH_ES_USERNAME": "elastic",
        "LME_ENRICH_ES_PASSWORD": "x",
        "LME_ENRICH_LLM_API_KEY": "x",
        "LME_ENRICH_POLL_INTERVAL": "whenever",
    }
    with celery_processes(env, tmp_path) as procs:
        proc = procs.worker("bad")
        proc.wait(60)
    assert proc.returncode != 0
    assert "LME_ENRICH_POLL_INTERVAL: expected a duration" in procs.log("bad")


def test_the_test_supervisor_restarts_what_ends_on_its_own_not_what_a_test_killed(redis_url: str,
                                                                                  tmp_path: Path) -> None:
    env = {"LME_ENRICH_REDIS_URL": redis_url, "LME_ENRICH_ES_USERNAME": "elastic",
           "LME_ENRICH_ES_PASSWORD": "unused-here", "LME_ENRICH_LLM_API_KEY": "unused-here"}
    with celery_processes(env, tmp_path) as procs:
        first = procs.beat()
        procs.supervise()
        os.killpg(first.pid, signal.SIGKILL)  # as kombu's crash or an OOM kill would end it
        wait_for(lambda: procs.procs["beat"].pid != first.pid and procs.procs["beat"].poll() is None, timeout=30,
                 what="the supervisor to start beat again")
        assert procs.restarts == [("beat", -signal.SIGKILL)]
        procs.kill("beat")  # a test's own kill stays down until the test restarts it
        assert procs.procs["beat"].poll() is not None
        procs.restart("beat")
        assert procs.restarts == [("beat", -signal.SIGKILL)]
