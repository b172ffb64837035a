"""Model time of a request as the LLM simulator computes it: its token counts and its latency formula.

Used for the storm benchmark's physical limit (one call per distinct fingerprint) and for deadlines.
The request body is captured from :class:`worker.assessing.llm.LLMClient` itself, so it is exactly what the worker
sends (model, max_tokens, temperature, response_format decide the simulator's answer and its length).
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import httpx

from bench import baseline
from tests.fakes.llm.answers import expected_answer
from tests.fakes.llm.latency import duration_alone
from tests.fakes.llm.tokens import common_prefix, prompt_tokens
from worker.assessing import fingerprint, group_prompt, prompt
from worker.assessing.llm import LLMClient
from worker.dispatch import grouping
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
    return [p + g for p, g in sequential_split(calls, pp_rate, tg_rate)]


def sequential_split(calls: Sequence[Call], pp_rate: float, tg_rate: float) -> list[tuple[float, float]]:
    """Each call's (reading the prompt, generating the answer) seconds, as :func:`sequential_seconds` counts them."""
    out = []
    previous: tuple[str, ...] = ()
    for c in calls:
        cached = min(common_prefix(previous, c.prompt), max(len(c.prompt) - 1, 0))
        reading = duration_alone(len(c.prompt), 0, pp_rate, tg_rate, cached)
        out.append((reading, duration_alone(len(c.prompt), c.completion_tokens, pp_rate, tg_rate, cached) - reading))
        previous = c.prompt
    return out


def script_seconds(settings: Settings, sources: Sequence[dict[str, Any]], *, pp_rate: float, tg_rate: float,
                   n_ctx: int) -> float:
    """Model time of LME's batch script (``bench.baseline``) on ``sources``: one call per alert, one after another."""
    calls = [call({"model": settings.llm_model, "messages": baseline.messages(d), "max_tokens": baseline.MAX_TOKENS},
                  n_ctx) for d in sources]
    return sum(sequential_seconds(calls, pp_rate, tg_rate))


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


def incident_groups(sources: Sequence[dict[str, Any]], window_s: float) -> list[list[dict[str, Any]]]:
    """The incident groups ``sources`` form when claimed in this order, as ``worker.dispatch.grouping``'s script forms
    them: an alert joins its key's open group when its start is within ``window_s`` of the group's span, else
    opens a new one. Alerts without a key or a start time (or with grouping off) are groups of one."""
    groups: list[list[dict[str, Any]]] = []
    open_: dict[str, tuple[int, float, float]] = {}  # key -> (index in groups, first, last)
    for source in sources:
        key, start = grouping.key_of(source), grouping.start_of(source)
        if window_s <= 0 or key is None or start is None:
            groups.append([source])
            continue
        found = open_.get(key)
        if found is not None and found[1] - window_s <= start <= found[2] + window_s:
            index, first, last = found
            groups[index].append(source)
            open_[key] = (index, min(first, start), max(last, start))
        else:
            open_[key] = (len(groups), start, start)
            groups.append([source])
    return groups


@dataclass(frozen=True)
class GroupLimit:
    groups: int  # incident groups, groups of one included
    multi: int  # groups of two or more alerts (answered with a group prompt)
    calls: int  # one per group of two or more, one per distinct fingerprint among the alerts alone
    seconds: float  # model time of those calls, divided by slots
    mean_call_s: float
    group_prompt_tokens_mean: float | None  # tokens of a group prompt (all members, up to MAX_MEMBERS)


def group_calls(settings: Settings, sources: Sequence[dict[str, Any]], window_s: float, *,
                n_ctx: int) -> tuple[list[list[dict[str, Any]]], list[Call], list[int]]:
    """The incident groups of ``sources``, the model calls they cost (one per group of two or more, its group
    prompt on all members; for alerts alone one per distinct fingerprint, the cache answers the rest) and the
    token count of each group prompt."""
    groups = incident_groups(sources, window_s)
    bodies: list[dict[str, Any]] = []
    alone: set[str] = set()
    group_tokens: list[int] = []
    for members in groups:
        if len(members) > 1:
            facts = group_prompt.facts_of(members, len(members))
            body = worker_body(settings, group_prompt.build(members[:group_prompt.MAX_MEMBERS], facts).messages)
            group_tokens.append(len(prompt_tokens(body.get("messages") or [])))
            bodies.append(body)
        elif (fp := fingerprint_of(settings, members[0])) not in alone:
            alone.add(fp)
            bodies.append(worker_body(settings, prompt.build(members[0]).messages))
    return groups, [call(b, n_ctx) for b in bodies], group_tokens


def group_limit(settings: Settings, sources: Sequence[dict[str, Any]], window_s: float, *, pp_rate: float,
                tg_rate: float, slots: int, n_ctx: int) -> GroupLimit:
    """The physical limit with incident groups: one model call per group (its group prompt on all members),
    and for alerts alone one call per distinct fingerprint (the cache answers the rest)."""
    groups, calls, group_tokens = group_calls(settings, sources, window_s, n_ctx=n_ctx)
    seconds = sequential_seconds(calls, pp_rate, tg_rate)
    total = sum(seconds)
    return GroupLimit(len(groups), sum(1 for g in groups if len(g) > 1), len(calls), total / slots,
                      total / len(seconds) if seconds else 0.0,
                      sum(group_tokens) / len(group_tokens) if group_tokens else None)
