"""The single-alert pipeline run in this process against the real Elasticsearch test server.

Claiming and assessing are the same functions the Celery tasks call; only the model may be replaced by an
``httpx.MockTransport`` that answers what a test needs (hostile replies a simulator would never give).
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import Any

import httpx
from elasticsearch import Elasticsearch

from tests import kibana
from worker.alerts import claiming
from worker.alerts.es import make_client
from worker.alerts.store import AlertStore
from worker.assessing import pipeline
from worker.assessing.llm import LLMClient
from worker.dispatch.scheduler import Job
from worker.settings import Settings, load_settings

MODEL = "lfm2.5-1.2b-instruct"


def settings_for(es_url: str, space: kibana.Space, **overrides: Any) -> Settings:
    base: dict[str, Any] = {
        "es_url": es_url, "es_username": "elastic", "es_password": "unused-by-the-test-server",
        "llm_url": "http://llm.invalid", "llm_api_key": "sk-hostile", "alert_index": space.pattern,
        "redis_url": "redis://127.0.0.1:1/0", "llm_read_timeout": "30s", "llm_attempts": 1, "task_retries": 0,
        "claim_lease": "5m", "llm_retry_wait_max": "1s", "retry_backoff_max": "2s",
    }
    return load_settings(**{**base, **overrides})


def answering(reply: Callable[[dict[str, Any]], dict[str, Any] | str]) -> httpx.MockTransport:
    """A LiteLLM stand-in whose chat answer content is ``reply(request body)`` (a dict is sent as JSON)."""

    def handle(request: httpx.Request) -> httpx.Response:
        body = json.loads(request.content)
        content = reply(body)
        text = content if isinstance(content, str) else json.dumps(content)
        return httpx.Response(200, json={
            "model": MODEL, "choices": [{"message": {"role": "assistant", "content": text},
                                         "finish_reason": "stop"}],
            "usage": {"prompt_tokens": 100, "completion_tokens": 50},
        })

    return httpx.MockTransport(handle)


GOOD = {"summary": "A process ran on a host.", "risk": "medium", "confidence": 0.5, "actions": ["Check the host."]}


def services(settings: Settings, transport: httpx.BaseTransport) -> pipeline.Services:
    llm = LLMClient(settings.llm_url, "sk-hostile", settings.llm_model, transport=transport)
    return pipeline.Services(settings, AlertStore(make_client(settings), settings.alert_index), llm)


def claim(svc: pipeline.Services, ids: list[str]) -> list[Job]:
    svc.store.ensure_mappings()
    jobs: list[Job] = []
    claiming.claim_and_queue(svc.settings, svc.store, {"ids": {"values": ids}}, jobs.extend)
    return jobs


def assess_ids(svc: pipeline.Services, ids: list[str]) -> dict[str, pipeline.Outcome]:
    return {job.alert_id: pipeline.assess(svc, job) for job in claim(svc, ids)}


def ai_of(es: Elasticsearch, index: str, doc_id: str) -> dict[str, Any]:
    return dict(es.get(index=index, id=doc_id)["_source"].get("lme", {}).get("ai", {}))
