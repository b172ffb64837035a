"""Model time of a request as the LLM simulator computes it: its token counts and its latency formula.

Used for the storm benchmark's physical limit (one call per distinct fingerprint) and for deadlines.
The request body is captured from :class:`worker.llm.LLMClient` itself, so it is exactly what the worker
sends (model, max_tokens, temperature, response_format decide the simulator's answer and its length).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from tests.fakes.llm.answers import expected_answer
from tests.fakes.llm.latency import duration_alone
from tests.fakes.llm.tokens import common_prefix, prompt_tokens
from worker import fingerprint, prompt
from worker.llm import LLMClient
from worker.settings import Settings


def worker_body(settings: Settings, messages: list[dict[str, str]]) -> dict[str, Any]:
    """The JSON body lme-enrich's LLM client sends for ``messages``."""
    captured: dict[str, Any] = {}

    def handler(request: httpx.Request) -> httpx.Response:
        captured.update(json.loads(request.content))
        return httpx.Response(200, json={"choices": [{"message": {"content": ""}, "finish_reason": "stop"}],
                                         "usage": {}})

    client = LLMClient("http://capture.invalid", "key", settings.llm_model, max_tokens=settings.llm_max_tokens,
                       temperature=settings.llm_temperature, transport=httpx.MockTransport(handler))
    try:
        client.complete(messages, prompt.response_format())
    finally:
        client.close()
    return captured


@dataclass(frozen=True)
class Call:
    prompt: tuple[str, ...]
    completion_tokens: int


def call(body: dict[str, Any], n_ctx: int) -> Call:
    answer = expected_answer(body, n_ctx=n_ctx)
    return Call(prompt_tokens(body.get("messages") or []), answer.completion_tokens)


def sequential_seconds(calls: Sequence[Call], pp_rate: float, tg_rate: float) -> list[float]:
    """Each call's model time when run one after another on one slot (prefix cache of the previous prompt)."""
    out = []
    previous: tuple[str, ...] = ()
    for c in calls:
        cached = min(common_prefix(previous, c.prompt), max(len(c.prompt) - 1, 0))
        out.append(duration_alone(len(c.prompt), c.completion_tokens, pp_rate, tg_rate, cached))
        previous = c.prompt
    return out


def fingerprint_of(settings: Settings, source: dict[str, Any]) -> str:
    built = prompt.build(source)
    return fingerprint.compute(source, built.pairs, model=settings.llm_model, prompt_version=built.version)


@dataclass(frozen=True)
class Limit:
    fingerprints: int
    seconds: float  # model time for one call per fingerprint, divided by slots
    mean_call_s: float


def physical_limit(settings: Settings, sources: Sequence[dict[str, Any]], *, pp_rate: float, tg_rate: float,
                   slots: int, n_ctx: int) -> Limit:
    """Sum over distinct fingerprints of one model call's time (first alert of each), divided by slots."""
    first: dict[str, dict[str, Any]] = {}
    for source in sources:
        first.setdefault(fingerprint_of(settings, source), source)
    calls = [call(worker_body(settings, prompt.build(s).messages), n_ctx) for s in first.values()]
    seconds = sequential_seconds(calls, pp_rate, tg_rate)
    total = sum(seconds)
    return Limit(len(first), total / slots, total / len(seconds) if seconds else 0.0)
