"""LME's documented batch script, the baseline every benchmark compares with.

LME's ``litellm-api.md`` ("Batch Analyze Multiple Alerts"): fetch alerts from ``.alerts-security.alerts-*``,
send each one as ``json.dumps(alert, indent=2)[:4000]`` with the system prompt below and ``max_tokens``
200, one at a time. For a fair comparison it also writes each answer back with one update per alert, and
it keeps fetching until no unanswered alert is left (the documented loop fetches once), so alerts that
arrive while it runs are answered too. It selects the same alerts lme-enrich does (not closed, not
building blocks), so both do the same work.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import httpx
from elasticsearch import Elasticsearch

SYSTEM_PROMPT = "Briefly assess this security alert in 2-3 sentences."
MAX_TOKENS = 200
MAX_CHARS = 4000
PAGE = 100


def messages(alert_source: dict[str, Any]) -> list[dict[str, str]]:
    """The chat messages the script sends for one alert."""
    return [{"role": "system", "content": SYSTEM_PROMPT},
            {"role": "user", "content": json.dumps(alert_source, indent=2)[:MAX_CHARS]}]


@dataclass
class BaselineRun:
    calls: int = 0
    finished: dict[str, float] = field(default_factory=dict)  # alert id → epoch of its write-back
    started: float = 0.0
    ended: float = 0.0

    @property
    def makespan(self) -> float:
        return self.ended - self.started


def _query(done: set[str]) -> dict[str, Any]:
    must_not: list[dict[str, Any]] = [{"term": {"kibana.alert.workflow_status": "closed"}},
                                      {"exists": {"field": "kibana.alert.building_block_type"}}]
    if done:
        must_not.append({"ids": {"values": sorted(done)}})
    return {"bool": {"must_not": must_not}}


def run(es: Elasticsearch, llm: httpx.Client, model: str, index: str, *,
        on_answer: Callable[[int], None] | None = None, deadline: float | None = None) -> BaselineRun:
    """Answer every alert in ``index`` one at a time; ``on_answer(n)`` is called after the n-th write-back."""
    result = BaselineRun(started=time.time())
    done: set[str] = set()
    while True:
        es.indices.refresh(index=index)
        hits = es.search(index=index, query=_query(done), size=PAGE,
                         sort=[{"@timestamp": {"order": "desc"}}])["hits"]["hits"]
        if not hits:
            break
        for hit in hits:
            if deadline is not None and time.time() > deadline:
                raise TimeoutError(f"the baseline did not finish in time ({len(done)} alerts answered)")
            response = llm.post("/v1/chat/completions", json={
                "model": model, "messages": messages(hit["_source"]), "max_tokens": MAX_TOKENS})
            result.calls += 1
            response.raise_for_status()
            answer = response.json()["choices"][0]["message"]["content"]
            now = time.time()
            es.update(index=hit["_index"], id=hit["_id"], doc={"lme": {"ai": {
                "status": "done", "summary": answer,
                "enriched_at": time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(now)) + f".{int(now % 1 * 1000):03d}Z",
            }}})
            done.add(hit["_id"])
            result.finished[hit["_id"]] = time.time()
            if on_answer is not None:
                on_answer(len(done))
    result.ended = time.time()
    return result
