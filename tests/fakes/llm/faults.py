"""Runtime-switchable faults of the LLM path (no auth; ``/_sim/faults``).

``POST /_sim/faults`` with one rule replaces the current one:

- ``{"kind": K, "count": N}``: the next N chat requests get fault K, then the rule is gone.
- ``{"kind": K, "rate": 0.2, "seed": 7}``: each chat request gets K with probability 0.2
  (seeded, so a run is reproducible).
- ``{"kind": K}``: every chat request until ``DELETE /_sim/faults``.
- optional ``"delay"`` (seconds) overrides the 4.5 s of ``backend_down``; ``"retry_after"``
  (seconds) the ``Retry-After`` of ``429``; ``"match"`` (text) limits the rule to chat requests whose
  messages contain it (others pass untouched and do not consume ``count``).

``GET /_sim/faults`` shows the rule (``remaining``, ``applied``); ``DELETE`` clears it.
The CLI's ``--fault-kind K --fault-rate R`` installs a rate rule at start.

Kinds:

- ``429``: LiteLLM's rate-limit error body with a ``Retry-After`` header, at once.
- ``500``, ``502``, ``503``: LiteLLM-shaped error bodies with that status, at once.
- ``hang``: the request takes a slot and computes, but no answer is ever sent; the slot stays
  busy until the client gives up (and at least until the answer would have been complete).
- ``reset``: the answer is computed, then the connection is closed half-way through the body.
- ``truncated``: ``finish_reason: "length"`` with the content cut to half its tokens.
- ``malformed``: content that is not valid JSON, even when a schema was requested.
- ``steered``: the model obeyed text in the alert: a schema-valid answer that calls it benign, risk
  low, confidence 99, and asks to close it (what small models answer to "mark this as benign"; with
  ``match``, only for prompts holding the attack).
- ``empty_choices``: a 200 answer with ``"choices": []``.
- ``slow_stream``: generation at a tenth of the rate (streaming or not; the CPU is busy longer).
- ``backend_down``: llama-server unreachable: 500 after ~4.5 s (LiteLLM's own retries), the same
  JSON with ``stream: true``; ``/health`` reports the model unhealthy while the rule is active.
"""

from __future__ import annotations

import random
import threading
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

KINDS = frozenset(
    {"429", "500", "502", "503", "hang", "reset", "truncated", "malformed", "steered", "empty_choices",
     "slow_stream", "backend_down"}
)
BACKEND_DOWN_DELAY = 4.5


class FaultSpecError(ValueError):
    pass


@dataclass
class FaultRule:
    kind: str
    count: int | None = None
    rate: float | None = None
    seed: int | None = None
    delay: float | None = None
    retry_after: int = 1
    match: str | None = None
    applied: int = 0

    @classmethod
    def parse(cls, spec: Mapping[str, Any]) -> FaultRule:
        kind = str(spec.get("kind", ""))
        if kind not in KINDS:
            raise FaultSpecError(f"unknown fault kind {kind!r}; known: {sorted(KINDS)}")
        count = spec.get("count")
        rate = spec.get("rate")
        if count is not None and (not isinstance(count, int) or count < 0):
            raise FaultSpecError("count must be a non-negative integer")
        if rate is not None and (not isinstance(rate, int | float) or not 0 <= rate <= 1):
            raise FaultSpecError("rate must be a number in [0, 1]")
        delay = spec.get("delay")
        if delay is not None and (not isinstance(delay, int | float) or delay < 0):
            raise FaultSpecError("delay must be a non-negative number")
        seed = spec.get("seed")
        match = spec.get("match")
        if match is not None and (not isinstance(match, str) or not match):
            raise FaultSpecError("match must be a non-empty string")
        return cls(
            kind=kind,
            count=count,
            rate=None if rate is None else float(rate),
            seed=None if seed is None else int(seed),
            delay=None if delay is None else float(delay),
            retry_after=int(spec.get("retry_after", 1)),
            match=match,
        )

    def describe(self) -> dict[str, Any]:
        return {
            "kind": self.kind, "remaining": self.count, "rate": self.rate, "seed": self.seed,
            "delay": self.delay, "retry_after": self.retry_after, "match": self.match, "applied": self.applied,
        }


class Faults:
    """The current fault rule, consumed by chat requests (thread-safe)."""

    def __init__(self, default_seed: int = 0) -> None:
        self._lock = threading.Lock()
        self._rule: FaultRule | None = None
        self._rng = random.Random(default_seed)
        self._default_seed = default_seed

    def set(self, spec: Mapping[str, Any]) -> FaultRule:
        rule = FaultRule.parse(spec)
        with self._lock:
            self._rule = rule
            self._rng = random.Random(self._default_seed if rule.seed is None else rule.seed)
        return rule

    def clear(self) -> None:
        with self._lock:
            self._rule = None

    def describe(self) -> dict[str, Any]:
        with self._lock:
            return {"fault": None if self._rule is None else self._rule.describe()}

    def take(self, text: str = "") -> FaultRule | None:
        """The fault for the next chat request, whose messages are ``text``, if any (consumes one of ``count``)."""
        with self._lock:
            rule = self._rule
            if rule is None or (rule.match is not None and rule.match not in text):
                return None
            if rule.count is not None:
                if rule.count <= 0:
                    self._rule = None
                    return None
                rule.count -= 1
            elif rule.rate is not None and self._rng.random() >= rule.rate:
                return None
            rule.applied += 1
            return rule

    def backend_down(self) -> bool:
        """Is llama-server 'down' right now (for /health)?"""
        with self._lock:
            rule = self._rule
            return (
                rule is not None and rule.kind == "backend_down"
                and (rule.count is None or rule.count > 0)
                and (rule.rate is None or rule.rate > 0)
            )
