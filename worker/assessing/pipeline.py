"""Assess one claimed alert: the heart of the pipeline, as plain functions the assess task calls.

Re-read the alert, check the claim is still ours, mark it running, ask the model (retrying brief
faults), validate the answer and write it back, conditional on what we read, re-reading on conflict.
Claiming is in ``claiming.py``; ordering, cache and coalescing in ``scheduler.py`` and ``coordinator.py``.
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Final, Literal

from tenacity import RetryCallState, Retrying, retry_if_exception, stop_after_attempt, wait_random_exponential

from worker.alerts import alert, fields, history
from worker.alerts.fields import IN_FLIGHT, Status
from worker.alerts.store import MEMBER_SOURCE, AlertStore, Doc, alert_claim_id
from worker.assessing import assessment, fingerprint, group_prompt, guards, prompt
from worker.assessing.llm import Completion, LLMClient, LLMError
from worker.dispatch import grouping
from worker.dispatch.grouping import Groups
from worker.dispatch.scheduler import Job
from worker.settings import Settings

log = logging.getLogger(__name__)

CONFLICT_RETRIES = 8
PROMPT_SCALES = (1.0, 0.5, 0.25)  # shrink a prompt that does not fit the model's context


def now_iso(now: datetime | None = None) -> str:
    moment = now or datetime.now(UTC)
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _iso_epoch(epoch: float) -> str:
    return now_iso(datetime.fromtimestamp(epoch, UTC))


# -- assess ---------------------------------------------------------------------------------------

Result = Literal["done", "failed", "retry", "superseded", "gone"]


@dataclass(frozen=True)
class Outcome:
    result: Result
    reason: str = ""
    retry_in: float | None = None
    kind: str = ""  # error kind of a failure
    shared: dict[str, Any] | None = None  # the lme.ai fields of a success, for alerts that share it
    members: tuple[str, ...] = ()  # an incident group's alerts its prompt described (and history names)


class Superseded(Exception):
    """The alert is no longer ours to work on (re-claimed, finished elsewhere, or deleted)."""


def _ai(source: dict[str, Any], name: str) -> Any:
    return alert.first(source, fields.field(name))


def _check_ours(doc: Doc | None, claim_id: str) -> Doc:
    if doc is None:
        raise Superseded("the alert no longer exists")
    if alert_claim_id(doc.source) != claim_id or _ai(doc.source, "status") not in IN_FLIGHT:
        raise Superseded("the alert was claimed again or finished by another run")
    return doc


def update_ours(store: AlertStore, doc: Doc, claim_id: str, make: Callable[[Doc], dict[str, Any]]) -> Doc:
    """Apply ``make(current)`` conditionally; on a conflict re-read, re-check the claim, and try again."""
    for _ in range(CONFLICT_RETRIES):
        updated = store.update(doc, make(doc))
        if updated is not None:
            return updated
        doc = _check_ours(store.get(doc.index, doc.id), claim_id)
    raise Superseded(f"the alert kept changing under us ({CONFLICT_RETRIES} conflicts in a row)")


def without_tag(source: dict[str, Any], tag: str) -> dict[str, Any]:
    """A partial update that removes ``tag`` from the workflow tags, in the key form the alert uses."""
    keys = alert.key_form(source, "kibana.alert.workflow_tags") or ("kibana.alert.workflow_tags",)
    current = alert.values(source, "kibana.alert.workflow_tags")
    partial: dict[str, Any] = {keys[-1]: [t for t in current if t != tag]}
    for key in reversed(keys[:-1]):
        partial = {key: partial}
    return partial


def fingerprint_of(model: str, source: dict[str, Any], built: prompt.Prompt) -> str:
    return fingerprint.compute(source, built.pairs, model=model, prompt_version=built.version)


class _Attempts:
    """Counts model calls on the alert before each one is made, so calls never exceed recorded attempts."""

    def __init__(self, store: AlertStore, doc: Doc, claim_id: str) -> None:
        self.store, self.doc, self.claim_id = store, doc, claim_id
        self.calls = 0

    def begin(self) -> None:
        if self.calls:  # the first call was counted when the alert was marked running
            self.doc = update_ours(self.store, self.doc, self.claim_id, lambda d: fields.ai_doc(
                attempts=int(_ai(d.source, "attempts") or 0) + 1))
        self.calls += 1


def _wait(settings: Settings) -> Callable[[RetryCallState], float]:
    backoff = wait_random_exponential(multiplier=2, max=settings.llm_retry_wait_max.total_seconds())

    def wait(state: RetryCallState) -> float:
        seconds = backoff(state)
        error = state.outcome.exception() if state.outcome else None
        if isinstance(error, LLMError) and error.retry_after:
            # Honour Retry-After, but never wait past what the settings allow one wait to be.
            seconds = max(seconds, min(error.retry_after, settings.llm_retry_wait_max.total_seconds()))
        return seconds

    return wait


def _call_model(settings: Settings, llm: LLMClient, built: prompt.Prompt, attempts: _Attempts) -> Completion:
    def once() -> Completion:
        attempts.begin()
        return llm.complete(built.messages, prompt.response_format())

    retrying = Retrying(
        retry=retry_if_exception(lambda e: isinstance(e, LLMError) and e.retryable),
        stop=stop_after_attempt(settings.llm_attempts),
        wait=_wait(settings),
        reraise=True,
        before_sleep=lambda s: log.info("LLM call failed (%s); retrying", s.outcome.exception() if s.outcome else ""),
    )
    return retrying(once)


@dataclass(frozen=True)
class Services:
    """What the pipeline works with; built once per worker process."""

    settings: Settings
    store: AlertStore
    llm: LLMClient
    groups: Groups | None = None  # incident groups (None: grouping off)


def assess(services: Services, job: Job, *, task_retries: int = 0,
           peers: Callable[[], list[tuple[str, str]]] | None = None) -> Outcome:
    """Assess one claimed alert and write the result (or the failure) back into it.

    ``peers`` gives the (index, id) of the alerts waiting for this one's answer (its incident group's members
    claimed so far, which search may not see yet).
    """
    store = services.store
    try:
        doc = _check_ours(store.get(job.index, job.alert_id), job.claim_id)
        doc = update_ours(store, doc, job.claim_id, lambda d: fields.ai_doc(
            status=Status.running.value, started_at=now_iso(), attempts=int(_ai(d.source, "attempts") or 0) + 1))
        return _Run(services, job, _Attempts(store, doc, job.claim_id), peers).assess(task_retries)
    except Superseded as exc:
        log.info("alert %s: %s; leaving it alone", job.alert_id, exc)
        return Outcome("superseded", str(exc))


def fail_unexpected(services: Services, job: Job, kind: str, reason: str) -> Outcome:
    """Record a failure the pipeline did not foresee (a bug, the task time limit) on the alert, if still ours.

    The alert ends ``failed`` with the reason, and can be requeued, instead of staying ``running`` until its
    lease runs out.
    """
    store = services.store
    log.error("alert %s failed: %s", job.alert_id, reason)
    try:
        doc = _check_ours(store.get(job.index, job.alert_id), job.claim_id)
        update_ours(store, doc, job.claim_id, lambda _: fields.ai_doc(
            status=Status.failed.value, error=reason[:2000], error_kind=kind, enriched_at=now_iso(),
            next_attempt_at=None))
    except Superseded as exc:
        log.info("alert %s: %s; leaving it alone", job.alert_id, exc)
        return Outcome("superseded", str(exc))
    return Outcome("failed", reason, kind=kind)


class _Run:
    """One task run on one claimed alert that we have marked running."""

    def __init__(self, services: Services, job: Job, attempts: _Attempts,
                 peers: Callable[[], list[tuple[str, str]]] | None = None) -> None:
        self.settings = services.settings
        self.store = services.store
        self.llm = services.llm
        self.job = job
        self.attempts = attempts
        self.started = time.monotonic()
        # Scanning the whole alert for text aimed at the model is the costliest step of a run: once.
        self.reasons = guards.detect_injection(attempts.doc.source)
        self.built = prompt.build(attempts.doc.source, suspected=bool(self.reasons))
        self.completion: Completion | None = None
        self.grouping = services.groups is not None and bool(job.group)
        self.groups = services.groups
        self.peers = peers
        self.members: list[Doc] = []  # the incident group's alerts the prompt describes (empty: this alert alone)
        self._member_reasons: dict[str, list[str]] = {}

    def assess(self, task_retries: int) -> Outcome:
        try:
            self.completion = self._complete_fitting()
            answer = assessment.parse(self.completion.content, self.completion.finish_reason)
        except LLMError as exc:
            if exc.retryable and task_retries < self.settings.task_retries:
                return self._retry_later(exc, task_retries)
            return self._fail(exc.kind, str(exc))
        except assessment.AnswerError as exc:
            return self._fail(exc.kind, str(exc))
        source = self.attempts.doc.source
        if self.members:
            others = [(doc.source, self._reasons_of(doc)) for doc in self.members if doc.id != self.job.alert_id]
            answer = guards.for_group(answer, source, others, own_reasons=self.reasons)
        else:
            answer = guards.guard(answer, source, self.reasons, guards.rule_severity(source))
        result = {
            "status": Status.done.value, "enriched_at": now_iso(), "duration_ms": self._elapsed_ms(),
            "model": self.completion.model, "prompt_version": self.built.version,
            # The scheduler keyed coalescing and the cache on the job's fingerprint: record that one.
            "fingerprint": self.job.fingerprint or fingerprint_of(self.llm.model, self.attempts.doc.source, self.built),
            # This alert's own text (a group's prompt holds its members' too; each is flagged on its own).
            "injection_suspected": bool(answer.injection_reasons),
            "error": None, "error_kind": None, "next_attempt_at": None, "cached": False, "cached_from": None,
            "tokens": {"prompt": self.completion.prompt_tokens, "completion": self.completion.completion_tokens},
            **answer.as_fields(), **answer.guard_fields(),
        }
        if self.members:
            result = self._as_group(result)
        self._finish(fields.ai_doc(**result))
        return Outcome("done", shared=result, members=tuple(doc.id for doc in self.members))

    def _as_group(self, result: dict[str, Any]) -> dict[str, Any]:
        """A group's answer: the group's fields, a summary that names the count and host, what it saw."""
        sources = [doc.source for doc in self.members]
        facts = group_prompt.facts_of(sources, max(self.job.group_size, len(sources)))
        summary = group_prompt.ground(str(result["summary"]), facts, assessment.STORED_SUMMARY_MAX)
        if self.groups is not None:
            values = {v for source in sources for v in grouping.triage_values(source)}
            prints = {fingerprint_of(self.llm.model, source, prompt.build(source, suspected=False))
                      for source in sources}  # the flag does not enter a fingerprint: no scan
            self.groups.assessed(self.job.group, facts.size, values, int(self.settings.cache_ttl.total_seconds()),
                                 prints)
        group = {"id": self.job.group, "size": facts.size, "first_seen": _iso_epoch(facts.first_seen),
                 "last_seen": _iso_epoch(facts.last_seen)}
        return {**result, "summary": summary, "group": group}

    def _reasons_of(self, doc: Doc) -> list[str]:
        """A group member's injection reasons, scanned once per run (the prompt and the guards both need them)."""
        if doc.id == self.job.alert_id:
            return self.reasons
        if doc.id not in self._member_reasons:
            self._member_reasons[doc.id] = guards.detect_injection(doc.source)
        return self._member_reasons[doc.id]

    def _group_members(self) -> list[Doc]:
        """The group's alerts for one prompt (this alert first if search does not see it yet); [] alone."""
        if not self.grouping:
            return []
        docs = self.store.group_members(self.job.group, group_prompt.MAX_MEMBERS)
        if all(doc.id != self.job.alert_id for doc in docs):
            docs.insert(0, self.attempts.doc)
        # Members claimed moments ago wait for this answer but may not be searchable yet: read them directly.
        seen = {doc.id for doc in docs}
        peers = self.peers() if self.peers else []
        waiting = [(index, alert_id) for index, alert_id in peers if alert_id not in seen]
        room = max(group_prompt.MAX_MEMBERS - len(docs), 0)
        if waiting and room:
            docs += [doc for doc in self.store.mget(waiting[:room], source=MEMBER_SOURCE)
                     if doc is not None]
        return docs if len(docs) > 1 else []

    def _complete_fitting(self) -> Completion:
        """Ask the model, shrinking the extract when the prompt is over the model's context.

        An incident group's prompt describes all its alerts; when it does not fit, fewer members, then the
        alert alone.
        """
        source = self.attempts.doc.source
        members = self._group_members()
        while len(members) > 1:
            facts = group_prompt.facts_of([d.source for d in members], max(self.job.group_size, len(members)))
            self.built = group_prompt.build([d.source for d in members], facts,
                                            suspected=any(self._reasons_of(d) for d in members))
            try:
                completion = _call_model(self.settings, self.llm, self.built, self.attempts)
                self.members = members
                return completion
            except LLMError as exc:
                if exc.kind != "context_overflow":
                    raise
                members = members[: len(members) // 2]
        for scale in PROMPT_SCALES:
            self.built = prompt.build(source, scale=scale, suspected=bool(self.reasons))
            try:
                return _call_model(self.settings, self.llm, self.built, self.attempts)
            except LLMError as exc:
                if exc.kind != "context_overflow" or scale == PROMPT_SCALES[-1]:
                    raise
                log.info("alert %s: prompt over the model's context; shrinking it", self.job.alert_id)
        raise AssertionError("unreachable")  # pragma: no cover

    def _elapsed_ms(self) -> int:
        return int((time.monotonic() - self.started) * 1000)

    def _retry_later(self, error: LLMError, task_retries: int) -> Outcome:
        """Give the worker slot back and come again later: the model may be down for a while."""
        cap = self.settings.retry_backoff_max.total_seconds()
        delay = min(60.0 * 2**task_retries, cap)
        if error.retry_after:
            delay = max(delay, min(error.retry_after, cap))
        # Refreshing claimed_at keeps the poller from taking over a claim that is only waiting.
        self._update(lambda d: fields.ai_doc(
            status=Status.queued.value, claimed_at=now_iso(), error=str(error), error_kind=error.kind,
            next_attempt_at=now_iso(datetime.now(UTC) + timedelta(seconds=delay))))
        return Outcome("retry", str(error), retry_in=delay)

    def _fail(self, kind: str, reason: str) -> Outcome:
        log.warning("alert %s failed: %s", self.job.alert_id, reason)
        self._finish(fields.ai_doc(status=Status.failed.value, error=reason[:2000], error_kind=kind,
                                   enriched_at=now_iso(), duration_ms=self._elapsed_ms(), next_attempt_at=None,
                                   model=self.llm.model, prompt_version=self.built.version,
                                   injection_suspected=bool(self.reasons)))
        return Outcome("failed", reason, kind=kind)

    def _finish(self, result: dict[str, Any]) -> None:
        """Write the final state; a run that came from the re-assess tag also removes that tag (only it)."""
        tag = self.settings.reassess_tag

        def make(current: Doc) -> dict[str, Any]:
            if _ai(current.source, "source") == "reassess" and tag in alert.values(
                current.source, "kibana.alert.workflow_tags"
            ):
                return {**result, **without_tag(current.source, tag)}
            return result

        self._update(make)
        self._record_history(result["lme"]["ai"])

    def _record_history(self, result: dict[str, Any]) -> None:
        limit = self.settings.history_max_chars
        if self.members and isinstance(result.get("group"), dict):
            result = {**result, "group": {**result["group"], "members": [doc.id for doc in self.members]}}
        self.store.record_history(history_record(
            self.attempts.doc, result,
            prompt_text=history.truncate(self.built.messages[-1]["content"], limit),
            raw_reply=history.truncate(self.completion.content if self.completion else None, limit),
        ))

    def _update(self, make: Callable[[Doc], dict[str, Any]]) -> None:
        self.attempts.doc = update_ours(self.store, self.attempts.doc, self.job.claim_id, make)


# What history_record reads of the alert.
HISTORY_SOURCE: Final = (
    "@timestamp", "kibana.alert.severity", "kibana.alert.risk_score", "host.name", "user.name",
    "kibana.alert.rule.name", "kibana.alert.rule.rule_id", "kibana.alert.rule.uuid", "kibana.alert.rule.version",
    "lme.ai.*",
)


def history_record(doc: Doc, result: dict[str, Any], *, prompt_text: str | None = None,
                   raw_reply: str | None = None) -> dict[str, Any]:
    """The history document of one finished assessment of the alert ``doc`` (as it is after the write)."""
    source = doc.source
    return {
        "@timestamp": now_iso(),
        "alert": {
            "id": doc.id, "index": doc.index,
            "severity": alert.first(source, "kibana.alert.severity"),
            "risk_score": alert.first(source, "kibana.alert.risk_score"),
            "timestamp": alert.first(source, "@timestamp"),
            "host": alert.first(source, "host.name"), "user": alert.first(source, "user.name"),
        },
        "rule": {
            "name": alert.first(source, "kibana.alert.rule.name"),
            "id": alert.first(source, "kibana.alert.rule.rule_id") or alert.first(source, "kibana.alert.rule.uuid"),
            "version": _text_or_none(alert.first(source, "kibana.alert.rule.version")),
        },
        "source": _ai(source, "source"),
        "attempts": _ai(source, "attempts"),
        "queued_ms": _ms_since(_ai(source, "claimed_at"), _ai(source, "started_at")),
        "prompt": prompt_text,
        "raw_reply": raw_reply,
        **{k: v for k, v in result.items() if k in history.PROPERTIES and k not in ("source", "attempts")},
    }


def _text_or_none(value: Any) -> str | None:
    return None if value is None else str(value)


def _ms_since(start: Any, end: Any) -> int | None:
    try:
        begin = datetime.fromisoformat(str(start).replace("Z", "+00:00"))
        finish = datetime.fromisoformat(str(end).replace("Z", "+00:00"))
    except ValueError:
        return None
    return max(int((finish - begin).total_seconds() * 1000), 0)
