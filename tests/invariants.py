"""The invariants every reliability suite asserts at its end: nothing lost, nothing corrupted, no double work.

A :class:`Ledger` remembers what every seeded alert looked like outside ``lme.ai`` and applies (and
records) the changes "Kibana" makes meanwhile, so the final check knows exactly what each alert must be.
"""

from __future__ import annotations

import json
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

from elasticsearch import Elasticsearch

from tests.celery_procs import wait_for
from worker.alerts import alert
from worker.assessing import group_prompt, prompt

FINAL = ("done", "failed")
GROUP_LINE = "Incident group:"  # in the prompt of an incident group's call
CHUNK = 500


def outside_ours(source: dict[str, Any]) -> str:
    """The alert as JSON text without our namespace: what must stay byte-for-byte the same."""
    return json.dumps({k: v for k, v in source.items() if k != "lme"}, ensure_ascii=False, sort_keys=False)


def fetch(es: Elasticsearch, placed: dict[str, str]) -> dict[str, dict[str, Any] | None]:
    """Each alert's ``_source`` as it is now (realtime), None for one that is gone."""
    found: dict[str, dict[str, Any] | None] = {}
    items = list(placed.items())
    for start in range(0, len(items), CHUNK):
        chunk = items[start:start + CHUNK]
        docs = es.mget(docs=[{"_index": index, "_id": doc_id} for doc_id, index in chunk])["docs"]
        for doc in docs:
            found[doc["_id"]] = doc["_source"] if doc.get("found") else None
    return found


def _merge(source: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
    merged = dict(source)
    for key, value in partial.items():
        merged[key] = _merge(merged[key], value) if isinstance(value, dict) and isinstance(
            merged.get(key), dict) else value
    return merged


@dataclass
class Ledger:
    """What each seeded alert must look like outside ``lme.ai`` at the end of a run."""

    es: Elasticsearch
    placed: dict[str, str]
    expected: dict[str, dict[str, Any]] = field(default_factory=dict)
    kibana_changes: int = 0

    @classmethod
    def of(cls, es: Elasticsearch, placed: dict[str, str]) -> Ledger:
        ledger = cls(es, dict(placed))
        for doc_id, source in fetch(es, placed).items():
            assert source is not None, f"seeded alert {doc_id} is missing"
            assert "lme" not in source, f"seeded alert {doc_id} already has lme fields"
            ledger.expected[doc_id] = source
        return ledger

    def kibana_update(self, doc_id: str, partial: dict[str, Any]) -> None:
        """What Kibana's status and tag actions do: a partial update of their own fields, recorded."""
        self.es.update(index=self.placed[doc_id], id=doc_id, doc=partial, retry_on_conflict=5)
        self.expected[doc_id] = _merge(self.expected[doc_id], partial)
        self.kibana_changes += 1

    def expect_tag_removed(self, doc_id: str, tag: str) -> None:
        """The one change lme-enrich may make outside ``lme.ai``: removing the re-assess tag."""
        source = self.expected[doc_id]
        source["kibana.alert.workflow_tags"] = [t for t in source.get("kibana.alert.workflow_tags", []) if t != tag]

    def finished(self) -> int:
        count = 0
        for source in fetch(self.es, self.placed).values():
            if source is not None and alert.first(source, "lme.ai.status") in FINAL:
                count += 1
        return count

    def unfinished(self) -> Counter[str]:
        """How many alerts are not done or failed yet, by status (``none``: never claimed)."""
        waiting: Counter[str] = Counter()
        for source in fetch(self.es, self.placed).values():
            status = alert.first(source, "lme.ai.status") if source is not None else "gone"
            if status not in FINAL:
                waiting[str(status or "none")] += 1
        return waiting

    def wait_all_final(self, timeout: float) -> None:
        """Wait until every alert is done or failed (the run is over)."""
        total = len(self.placed)
        try:
            wait_for(lambda: self.finished() == total, timeout=timeout, interval=0.5,
                     what=f"all {total} alerts to be done or failed")
        except AssertionError as exc:
            raise AssertionError(f"{exc}; still waiting: {dict(self.unfinished())}") from None


@dataclass
class Report:
    processed: int
    done: int
    failed: int
    lost: int
    corrupted: int
    model_calls: int
    failure_kinds: Counter[str]

    def line(self) -> str:
        return (f"processed={self.processed} done={self.done} failed={self.failed} lost={self.lost} "
                f"corrupted={self.corrupted} model_calls={self.model_calls} failures={dict(self.failure_kinds)}")


def _is_assessment(request: dict[str, Any]) -> bool:
    """A chat call of an assessment (not e.g. `doctor`'s own probe of the model)."""
    body = request.get("body")
    messages = body.get("messages") if isinstance(body, dict) else None
    return isinstance(messages, list) and bool(messages) and messages[0].get("content") == prompt.SYSTEM_PROMPT


def _calls_by_prompt(chat_requests: Iterable[dict[str, Any]]) -> Counter[str]:
    return Counter(json.dumps(r["body"]["messages"]) for r in chat_requests if _is_assessment(r))


def check(ledger: Ledger, chat_requests: list[dict[str, Any]], *, max_attempts: int | None = None,
          allow_failed: bool = True) -> Report:
    """Assert the three invariants on every alert of ``ledger``; return the figures of the run.

    ``chat_requests`` is the LLM simulator's log of chat calls made during the run (``/_sim/requests``).
    """
    now = fetch(ledger.es, ledger.placed)
    lost: list[str] = []
    corrupted: list[str] = []
    statuses: Counter[str] = Counter()
    kinds: Counter[str] = Counter()
    recorded: Counter[str] = Counter()
    group_attempts = 0  # attempts of incident-group leaders: their calls carry the group's prompt
    for doc_id, source in now.items():
        if source is None:
            lost.append(f"{doc_id}: deleted")
            continue
        if outside_ours(source) != outside_ours(ledger.expected[doc_id]):
            corrupted.append(doc_id)
        ai = source.get("lme", {}).get("ai", {})
        status = ai.get("status")
        statuses[str(status)] += 1
        if status not in FINAL:
            lost.append(f"{doc_id}: status {status!r}")  # unclaimed, or stuck queued/running
            continue
        if status == "failed":
            if not ai.get("error") or not ai.get("error_kind"):
                lost.append(f"{doc_id}: failed without a reason")
            kinds[str(ai.get("error_kind"))] += 1
        attempts = int(ai.get("attempts") or 0)
        if max_attempts is not None:
            assert attempts <= max_attempts, f"alert {doc_id} made {attempts} model calls (max {max_attempts})"
        plain = {k: v for k, v in source.items() if k != "lme"}
        recorded[json.dumps(prompt.build(plain).messages)] += attempts
        if str(ai.get("prompt_version", "")).endswith(group_prompt.VERSION_SUFFIX) or ai.get("group"):
            group_attempts += attempts
    assert not lost, f"{len(lost)} alerts lost, e.g. {lost[:5]}"
    assert not corrupted, f"{len(corrupted)} alerts changed outside lme.ai, e.g. {corrupted[:5]}"
    if not allow_failed:
        assert statuses["failed"] == 0, f"unexpected failures: {dict(kinds)}"
    made = _calls_by_prompt(chat_requests)
    group_calls = sum(n for m, n in made.items() if GROUP_LINE in m)
    # An incident group's call describes all its members: count those against the attempts of grouped alerts.
    assert group_calls <= group_attempts, f"double work: {group_calls} group calls for {group_attempts} attempts"
    # Attempts are counted before each call, and alerts sharing a fingerprint share its calls: never more
    # calls with a prompt than attempts recorded on the alerts with that prompt.
    over = {m[:80]: (n, recorded[m]) for m, n in made.items() if n > recorded[m] and GROUP_LINE not in m}
    assert not over, f"double work: calls exceed recorded attempts for {len(over)} prompts: {list(over.items())[:3]}"
    return Report(processed=len(now), done=statuses["done"], failed=statuses["failed"], lost=len(lost),
                  corrupted=len(corrupted), model_calls=sum(made.values()), failure_kinds=kinds)
