"""Fair dispatch of claimed alerts to the model, with a fingerprint cache and coalescing.

Claimed alerts wait in a Redis sorted set, not in the Celery queue: only as many assess tasks as the
model can use (``LME_ENRICH_DISPATCH_AHEAD``, default concurrency + 1) are in Celery at once, so the
order is decided when a slot frees up, with what is known then:

- priority: critical, high, medium, low, then backfill; a person's requeue before all of them. Waiting
  ages an alert: every ``LME_ENRICH_PRIORITY_AGING`` of waiting counts as one severity level, so low
  alerts are never starved. Because everyone ages at the same rate, this is a static score:
  ``level x aging + time claimed``.
- fairness: each rule's recent dispatches add a penalty, so one storming rule cannot take every slot.
  A rule may keep the model for a short run (``AFFINITY_RUN`` dispatches): during it, the run's own
  penalty is waived and the rule gets a small head start (``AFFINITY_S``, far less than a severity level),
  because prompts start with the rule's fields and the model server reads them from its prompt cache only
  when the previous prompt was for the same rule.
- coalescing: an alert whose fingerprint (or incident group, ``worker/dispatch/grouping.py``) is being assessed right
  now waits for that result as a follower instead of queueing its own model call. ``Job.key`` says which:
  the group when the alert is in one, else the fingerprint.
- cache: an alert whose fingerprint was assessed within ``LME_ENRICH_CACHE_TTL`` gets that assessment
  without a model call (``lme.ai.cached: true``, ``cached_from`` the source alert).

Everything here is Redis, and nothing here is the only record of a claim: Elasticsearch holds every claim.
A dispatched job stays in Redis (``DISPATCHED``, with the id of the one task allowed to run it) until its
task settles, and the worker process that holds the task owns it (``OWNER``, kept alive by that process's
heartbeat, see ``worker.dispatch.liveness``); ``worker.dispatch.recovery`` puts jobs whose owner died back in
line and claims again what Redis lost.
"""

from __future__ import annotations

import contextlib
import json
import math
import time
import uuid
from collections.abc import Callable, Iterable
from dataclasses import asdict, dataclass, replace
from typing import Any, Final, cast

import redis

from worker.settings import Settings

PREFIX: Final = "lme-enrich:"
PENDING: Final = PREFIX + "pending"
JOBS: Final = PREFIX + "jobs"
INFLIGHT: Final = PREFIX + "inflight"  # claim id -> when it was dispatched: the model's taken slots
DISPATCHED: Final = PREFIX + "dispatched"  # claim id -> job, while its task has not settled
TASK: Final = PREFIX + "task"  # claim id -> the one Celery task id allowed to run it (a re-send replaces it)
OWNER: Final = PREFIX + "owner"  # claim id -> liveness token of the worker process that holds its task
LEADER: Final = PREFIX + "leader:"
FOLLOWERS: Final = PREFIX + "followers:"
GROUP: Final = PREFIX + "pending-fp:"  # waiting claims per coalescing key (not the incident group)
CACHE: Final = PREFIX + "cache:"
GROUP_CACHE: Final = "group:"  # within CACHE: an incident group's assessment, by group id
RULE_LOAD: Final = PREFIX + "rule-load"
DISPATCH_LOCK: Final = PREFIX + "dispatch-lock"
LAST_RULE: Final = PREFIX + "last-rule"  # {"rule": ..., "run": n}: the current run of one rule

LEVELS: Final = {"requeue": -10, "critical": 0, "high": 1, "medium": 2, "low": 3, "backfill": 4}
RULE_PENALTY_S: Final = 60.0  # each recent dispatch of a rule pushes its next alerts back this much
RULE_LOAD_HALF_LIFE_S: Final = 600.0
AFFINITY_RUN: Final = 4
AFFINITY_S: Final = 30.0
SCAN: Final = 200  # candidates considered per round

# Add a job: behind its fingerprint's leader if one is in flight (coalescing), else into the waiting set
# and its fingerprint group. Atomic, so no job can slip between a leader's start and its end.
_ADD = """
if ARGV[1] ~= '' and redis.call('EXISTS', KEYS[1]) == 1 then
  redis.call('RPUSH', KEYS[2], ARGV[2])
  redis.call('EXPIRE', KEYS[2], ARGV[5])
  return 1
end
redis.call('HSET', KEYS[4], ARGV[3], ARGV[2])
redis.call('ZADD', KEYS[3], ARGV[4], ARGV[3])
if ARGV[1] ~= '' then redis.call('SADD', KEYS[5], ARGV[3]) end
return 0
"""
# Take every follower and end the leadership in one step, so no follower can attach to a finished leader.
_RELEASE = """
local followers = redis.call('LRANGE', KEYS[2], 0, -1)
redis.call('DEL', KEYS[2])
if redis.call('GET', KEYS[1]) == ARGV[1] then redis.call('DEL', KEYS[1]) end
return followers
"""
# Forget a claim the poll took over (its worker died): free its slot, drop it if still waiting, and end
# its leadership so new alerts with its fingerprint do not wait for an answer that will never come.
_FORGET = """
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('ZREM', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[7], ARGV[1])
redis.call('HDEL', KEYS[8], ARGV[1])
redis.call('HDEL', KEYS[9], ARGV[1])
if ARGV[2] ~= '' then
  redis.call('SREM', KEYS[6], ARGV[1])
  if redis.call('GET', KEYS[4]) == ARGV[1] then
    redis.call('DEL', KEYS[4])
    redis.call('DEL', KEYS[5])
  end
end
return 1
"""
# Take one waiting job out (the caller that gets it is the only one to handle it).
_TAKE = """
if redis.call('ZREM', KEYS[1], ARGV[1]) == 0 then return false end
local job = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
if ARGV[2] ~= '' then redis.call('SREM', KEYS[3], ARGV[1]) end
return job
"""


# Lead a fingerprint unless another claim leads it (a job put back in line still leads its own followers).
_LEAD = """
local current = redis.call('GET', KEYS[1])
if current and current ~= ARGV[1] then return 0 end
redis.call('SET', KEYS[1], ARGV[1], 'EX', ARGV[2])
return 1
"""
# The task for a claim starts (or its message reached a worker): only the task id dispatch chose may run it,
# so a stale copy (a message a dead worker held, redelivered later) never runs next to its replacement. A
# claim Redis does not know (Redis lost its state) is taken on again, so recovery knows it is in hand.
_START = """
local expected = redis.call('HGET', KEYS[1], ARGV[1])
if expected and expected ~= ARGV[2] then return 0 end
if not expected then
  redis.call('HSET', KEYS[1], ARGV[1], ARGV[2])
  redis.call('HSETNX', KEYS[3], ARGV[1], ARGV[4])
  redis.call('ZADD', KEYS[4], 'NX', ARGV[5], ARGV[1])
end
redis.call('HSET', KEYS[2], ARGV[1], ARGV[3])
return 1
"""
# Put a dispatched job whose task will not run back in line, unless a worker took it meanwhile.
_REQUEUE = """
local owner = redis.call('HGET', KEYS[4], ARGV[1]) or ''
if owner ~= ARGV[2] or redis.call('ZSCORE', KEYS[1], ARGV[1]) == false then return 0 end
local job = redis.call('HGET', KEYS[2], ARGV[1])
redis.call('ZREM', KEYS[1], ARGV[1])
redis.call('HDEL', KEYS[2], ARGV[1])
redis.call('HDEL', KEYS[3], ARGV[1])
redis.call('HDEL', KEYS[4], ARGV[1])
if not job then return -1 end
redis.call('HSET', KEYS[6], ARGV[1], job)
redis.call('ZADD', KEYS[5], ARGV[3], ARGV[1])
if ARGV[4] ~= '' then redis.call('SADD', KEYS[7], ARGV[1]) end
return 1
"""
# A task ended without settling its job (Redis was away or lost its last second when it finished): if this
# process still owns the claim under that task id, drop the owner and restart the grace, so recovery sends it
# again unless a worker takes it meanwhile (a retry's message being received).
_DISOWN = """
if redis.call('HGET', KEYS[1], ARGV[1]) ~= ARGV[2] then return 0 end
if redis.call('HGET', KEYS[2], ARGV[1]) ~= ARGV[3] then return 0 end
redis.call('HDEL', KEYS[1], ARGV[1])
redis.call('ZADD', KEYS[3], 'XX', ARGV[4], ARGV[1])
return 1
"""

@dataclass(frozen=True)
class InFlight:
    """A dispatched job as recovery sees it."""

    claim_id: str
    dispatched_at: float
    job: Job | None
    task_id: str
    owner: str


@dataclass(frozen=True)
class Job:
    """One claimed alert: ids and what ordering and coalescing need; never the document or a secret."""

    index: str
    alert_id: str
    claim_id: str
    fingerprint: str = ""
    rule: str = ""
    level: str = "medium"
    claimed_at: float = 0.0
    fresh: bool = False  # a person asked for a new assessment (requeue, re-assess tag): never from the cache
    replaces: str = ""  # the stale claim this job takes over, if any
    group: str = ""  # the incident group it joined (empty: none, or a person asked for this alert alone)
    group_size: int = 0  # the group's size when the alert joined it
    triage: str = ""  # digests of the values a group's re-assessment looks for (grouping.triage_values)
    task_id: str = ""  # set by dispatch: the Celery task that runs it (not part of the stored job)

    @property
    def key(self) -> str:
        """What coalescing and waiting are keyed on: the incident group, else the fingerprint."""
        return self.group or self.fingerprint

    def to_json(self) -> str:
        data = asdict(self)
        del data["task_id"]
        return json.dumps(data, separators=(",", ":"))

    @classmethod
    def from_json(cls, raw: str | bytes) -> Job:
        return cls(**json.loads(raw))


@dataclass
class Dispatch:
    """What one dispatch round decided."""

    sent: list[Job]
    followers: list[Job]
    cached: list[tuple[Job, dict[str, Any]]]


def prompt_version() -> str:
    from worker.assessing.prompt import PROMPT_VERSION  # noqa: PLC0415 (the prompt module is heavy; only this needs it)

    return PROMPT_VERSION


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw


def _decayed(raw: Any, now: float) -> float:
    """A rule's recent dispatch count, halving every ``RULE_LOAD_HALF_LIFE_S``."""
    if raw is None:
        return 0.0
    text = raw.decode() if isinstance(raw, bytes) else str(raw)
    count, stamp = (float(part) for part in text.split(":", 1))
    return count * math.pow(0.5, max(now - stamp, 0.0) / RULE_LOAD_HALF_LIFE_S)


class Scheduler:
    def __init__(self, client: redis.Redis, settings: Settings,
                 regrown: Callable[[Job], bool] | None = None) -> None:
        self.redis = client
        self.settings = settings
        # Whether a job's incident group grew enough since its last assessment to be assessed again.
        self.regrown = regrown
        self._add = client.register_script(_ADD)
        self._release = client.register_script(_RELEASE)
        self._take = client.register_script(_TAKE)
        self._forget = client.register_script(_FORGET)
        self._lead = client.register_script(_LEAD)
        self._start = client.register_script(_START)
        self._requeue = client.register_script(_REQUEUE)
        self._disown = client.register_script(_DISOWN)
        # Every dispatch round reads the best SCAN waiting jobs, mostly the same ones as the last round: decoding
        # them once per process, not per round, was a quarter of the dispatch cost (profiled).
        self._decoded: dict[bytes, Job] = {}

    def _decode(self, raw: bytes) -> Job:
        job = self._decoded.get(raw)
        if job is None:
            if len(self._decoded) >= 4 * SCAN:
                self._decoded.clear()
            job = self._decoded[raw] = Job.from_json(raw)
        return job

    # -- waiting --------------------------------------------------------------------------------
    def score(self, job: Job) -> float:
        return LEVELS.get(job.level, LEVELS["medium"]) * self.settings.priority_aging.total_seconds() + job.claimed_at

    def add(self, jobs: Iterable[Job]) -> int:
        """Queue claimed jobs; return how many joined a leader already in flight instead of waiting."""
        lease = int(self.settings.claim_lease.total_seconds())
        pipe = self.redis.pipeline()
        add_positions = []
        for job in jobs:
            fp = job.key
            if job.replaces:
                self._forget(keys=[INFLIGHT, PENDING, JOBS, LEADER + fp, FOLLOWERS + fp, GROUP + fp,
                                   DISPATCHED, TASK, OWNER],
                             args=[job.replaces, fp], client=pipe)
            self._add(keys=[LEADER + fp, FOLLOWERS + fp, PENDING, JOBS, GROUP + fp],
                      args=[fp, job.to_json(), job.claim_id, self.score(job), lease], client=pipe)
            add_positions.append(len(pipe.command_stack) - 1)
        results = pipe.execute()
        return sum(int(results[i]) for i in add_positions)

    def _take_job(self, claim_id: str, fingerprint: str) -> Job | None:
        raw = self._take(keys=[PENDING, JOBS, GROUP + fingerprint], args=[claim_id, fingerprint])
        return None if raw is None else Job.from_json(raw)

    def _take_group(self, fingerprint: str) -> list[Job]:
        """Every other waiting job with ``fingerprint``: they will share one answer."""
        taken = []
        for claim in self.redis.smembers(GROUP + fingerprint):
            claim_id = claim.decode() if isinstance(claim, bytes) else str(claim)
            job = self._take_job(claim_id, fingerprint)
            if job is not None:
                taken.append(job)
        return taken

    def pending_count(self) -> int:
        return int(self.redis.zcard(PENDING))

    def pending_jobs(self) -> list[Job]:
        ids = cast(list[bytes], self.redis.zrange(PENDING, 0, -1))
        raws = self.redis.hmget(JOBS, ids) if ids else []
        return [Job.from_json(raw) for raw in raws if raw is not None]

    def following_jobs(self) -> list[Job]:
        """Jobs waiting for a leader's answer (for status and tests)."""
        jobs = []
        for key in self.redis.scan_iter(match=FOLLOWERS + "*", count=500):
            jobs += [Job.from_json(raw) for raw in self.redis.lrange(key, 0, -1)]
        return jobs

    def inflight_count(self) -> int:
        return int(self.redis.zcard(INFLIGHT))

    # -- dispatch -------------------------------------------------------------------------------
    def _rule_penalties(self, rules: list[str], now: float) -> dict[str, float]:
        if not rules:
            return {}
        loads = self.redis.hmget(RULE_LOAD, rules)
        return {rule: _decayed(raw, now) * RULE_PENALTY_S for rule, raw in zip(rules, loads, strict=True)}

    def _bump_rule(self, rule: str, now: float) -> None:
        self.redis.hset(RULE_LOAD, rule, f"{_decayed(self.redis.hget(RULE_LOAD, rule), now) + 1}:{now}")
        last, run = self._run()
        self.redis.set(LAST_RULE, json.dumps({"rule": rule, "run": run + 1 if rule == last else 1}))

    def _run(self) -> tuple[str | None, int]:
        """The rule of the last dispatch and how many dispatches in a row it has had."""
        raw = self.redis.get(LAST_RULE)
        try:
            value = json.loads(raw) if raw else {}
            return str(value["rule"]), int(value["run"])
        except (ValueError, KeyError, TypeError):
            return None, 0

    def _ranked(self, jobs: list[tuple[Job, float]], now: float) -> list[tuple[Job, float]]:
        """Best first: priority score plus each rule's recent-dispatch penalty; a short run of one rule goes on."""
        penalties = self._rule_penalties(sorted({job.rule for job, _ in jobs}), now)
        last, run = self._run()
        if last in penalties and run < AFFINITY_RUN:
            penalties[last] = max(penalties[last] - run * RULE_PENALTY_S, 0.0) - AFFINITY_S
        return sorted(jobs, key=lambda js: js[1] + penalties.get(js[0].rule, 0.0))

    def dispatch(self, send: Callable[[Job], None]) -> Dispatch:
        """Send the best waiting alerts while the model has room; attach or serve from cache the rest.

        One dispatcher at a time (a Redis lock); every alert leaves the waiting set exactly once (ZREM
        decides who takes it), so racing dispatchers never send an alert twice.
        """
        result = Dispatch([], [], [])
        # Wait for a dispatcher already at work rather than skip: what was just added (a requeue) must
        # not wait for the next poll.
        # The lock outlives any round (Redis calls only) but not by much: a dispatcher killed while holding
        # it must not stop the others for long.
        lock = self.redis.lock(DISPATCH_LOCK, timeout=20, blocking_timeout=15)
        if not lock.acquire(blocking=True):
            return result
        try:
            now = time.time()
            free = self.settings.dispatch_window() - self.inflight_count()
            lease = int(self.settings.claim_lease.total_seconds())
            # One read of the best SCAN waiting jobs serves the round (each add is followed by a dispatch of its
            # own, so nothing added meanwhile waits); read again only when the last pass over them still took
            # something (more may be servable beyond them: a storm of cached answers).
            while True:
                ids = cast(list[tuple[bytes, float]], self.redis.zrange(PENDING, 0, SCAN - 1, withscores=True))
                if not ids:
                    break
                raws = cast(list[bytes | None], self.redis.hmget(JOBS, [claim for claim, _ in ids]))
                waiting = {job.claim_id: (job, score) for raw, (_, score) in zip(raws, ids, strict=True) if raw
                           for job in [self._decode(raw)]}
                took = False
                while waiting:
                    took = False
                    candidates = list(waiting.values())
                    if free <= 0:
                        # Without a free slot, only what needs none goes ahead: a cached answer, and a person's
                        # requeue (it goes to Celery ahead of the backlog). Which may be cached: one round trip.
                        servable = self._maybe_cached([job for job, _ in candidates])
                        candidates = [(job, score) for job, score in candidates
                                      if job.level == "requeue" or job.claim_id in servable]
                    sent = False
                    for candidate, _score in self._ranked(candidates, now):
                        no_room = free <= 0 and candidate.level != "requeue"
                        if no_room and self.cached_for(candidate) is None:
                            continue
                        waiting.pop(candidate.claim_id, None)
                        job = self._take_job(candidate.claim_id, candidate.key)
                        if job is None:
                            continue  # taken by another dispatcher
                        took = True
                        cached = self.cached_for(job)
                        if cached is not None:
                            group = [job, *self._take_group(job.key)] if job.key else [job]
                            result.cached.extend((member, cached) for member in group)
                            for member in group:
                                waiting.pop(member.claim_id, None)
                            continue
                        if job.key and not self._lead(keys=[LEADER + job.key], args=[job.claim_id, lease]):
                            # Its leader started meanwhile (another dispatcher): join it.
                            if self.add([job]):
                                result.followers.append(job)
                            continue
                        job = replace(job, task_id=uuid.uuid4().hex)
                        # Recorded before the message exists: a dispatcher killed between here and the send
                        # leaves an owner-less entry that recovery puts back in line.
                        self._record_dispatch(job, now)
                        self._bump_rule(job.rule, now)
                        send(job)
                        result.sent.append(job)
                        free -= 1
                        if job.key:
                            followers = self._take_group(job.key)
                            for follower in followers:
                                self._add(keys=[LEADER + job.key, FOLLOWERS + job.key, PENDING, JOBS,
                                                GROUP + job.key],
                                          args=[job.key, follower.to_json(), follower.claim_id,
                                                self.score(follower), lease])
                                waiting.pop(follower.claim_id, None)
                            result.followers.extend(followers)
                        # Penalties changed: re-rank before the next pick.
                        sent = True
                        break
                    if not sent:
                        break
                if not took or len(ids) < SCAN:
                    break
        finally:
            with contextlib.suppress(redis.exceptions.LockError):  # it expired: nothing else to undo
                lock.release()
        return result

    # -- finishing --------------------------------------------------------------------------------
    def finished(self, job: Job) -> None:
        """The task for ``job`` will not run again: its slot is free."""
        pipe = self.redis.pipeline()
        pipe.zrem(INFLIGHT, job.claim_id)
        for key in (DISPATCHED, TASK, OWNER):
            pipe.hdel(key, job.claim_id)
        pipe.execute()

    def _record_dispatch(self, job: Job, now: float) -> None:
        pipe = self.redis.pipeline()
        pipe.zadd(INFLIGHT, {job.claim_id: now})
        pipe.hset(DISPATCHED, job.claim_id, job.to_json())
        pipe.hset(TASK, job.claim_id, job.task_id)
        pipe.execute()

    # -- ownership and recovery -------------------------------------------------------------------
    def start(self, job: Job, task_id: str, owner: str) -> bool:
        """Whether task ``task_id`` may run ``job`` (recording ``owner`` as the process that holds it)."""
        return bool(self._start(keys=[TASK, OWNER, DISPATCHED, INFLIGHT],
                                args=[job.claim_id, task_id, owner, job.to_json(), time.time()]))

    def in_flight(self) -> list[InFlight]:
        """Every dispatched job whose task has not settled, with its task id and owner."""
        entries = cast(list[tuple[bytes, float]], self.redis.zrange(INFLIGHT, 0, -1, withscores=True))
        if not entries:
            return []
        claims = [claim for claim, _ in entries]
        pipe = self.redis.pipeline()
        for key in (DISPATCHED, TASK, OWNER):
            pipe.hmget(key, claims)
        jobs, tasks, owners = pipe.execute()
        return [
            InFlight(claim.decode(), float(at), Job.from_json(raw) if raw else None,
                     task.decode() if task else "", owner.decode() if owner else "")
            for (claim, at), raw, task, owner in zip(entries, jobs, tasks, owners, strict=True)
        ]

    def requeue(self, entry: InFlight) -> bool:
        """Put ``entry`` back in line (its slot freed), unless a worker took its task since it was read."""
        fp = entry.job.key if entry.job else ""
        score = self.score(entry.job) if entry.job else 0.0
        return int(self._requeue(keys=[INFLIGHT, DISPATCHED, TASK, OWNER, PENDING, JOBS, GROUP + fp],
                                 args=[entry.claim_id, entry.owner, score, fp])) == 1

    def disown(self, claim_id: str, task_id: str, owner: str) -> bool:
        """``owner``'s task ``task_id`` for ``claim_id`` ended without settling it: hand the job to recovery."""
        return int(self._disown(keys=[OWNER, TASK, INFLIGHT], args=[claim_id, owner, task_id, time.time()])) == 1

    def known_claims(self) -> set[str]:
        """Every claim id Redis has in hand: waiting, dispatched, or following a leader."""
        known = {_text(c) for c in self.redis.hkeys(JOBS)} | {_text(c) for c in self.redis.hkeys(DISPATCHED)}
        known |= {job.claim_id for job in self.following_jobs()}
        return known

    def release_followers(self, job: Job) -> list[Job]:
        """End ``job``'s leadership of its key and return the alerts that waited for it."""
        if not job.key:
            return []
        raws = self._release(keys=[LEADER + job.key, FOLLOWERS + job.key], args=[job.claim_id])
        return [Job.from_json(raw) for raw in raws]

    def followers_of(self, job: Job) -> list[tuple[str, str]]:
        """(index, id) of the alerts waiting for ``job``'s answer right now."""
        if not job.key:
            return []
        waiting = [Job.from_json(raw) for raw in self.redis.lrange(FOLLOWERS + job.key, 0, -1)]
        return [(follower.index, follower.alert_id) for follower in waiting]

    def keep_leading(self, job: Job) -> None:
        """The leader will retry later: keep followers attached to it meanwhile."""
        if job.key:
            lease = int(self.settings.claim_lease.total_seconds())
            self.redis.expire(LEADER + job.key, lease)
            self.redis.expire(FOLLOWERS + job.key, lease)

    # -- cache ------------------------------------------------------------------------------------
    def cached_for(self, job: Job) -> dict[str, Any] | None:
        """A recent assessment ``job`` may reuse: its group's (unless the group grew enough to ask again),
        else its fingerprint's; never for an alert a person asked to assess afresh."""
        if job.fresh:
            return None
        if job.group:
            hit = self.cached(self.group_cache_key(job.group))
            if hit is not None and (self.regrown is None or not self.regrown(job)):
                return hit
            if hit is not None:
                return None  # grown enough: this member leads a new assessment of the group
        return self.cached(job.fingerprint)

    def _cache_keys(self, job: Job) -> list[str]:
        """The keys :meth:`cached_for` may read for ``job``."""
        if job.fresh:
            return []
        return [key for key in (self.group_cache_key(job.group) if job.group else "", job.fingerprint) if key]

    def _maybe_cached(self, jobs: list[Job]) -> set[str]:
        """Claim ids of ``jobs`` with an answer in the cache (:meth:`cached_for` decides), in one round trip."""
        if not self.settings.cache_enabled:
            return set()
        keys = sorted({key for job in jobs for key in self._cache_keys(job)})
        if not keys:
            return set()
        present = {key for key, raw in zip(keys, self.redis.mget([CACHE + key for key in keys]), strict=True)
                   if raw is not None}
        return {job.claim_id for job in jobs if any(key in present for key in self._cache_keys(job))}

    def group_cache_key(self, group_id: str) -> str:
        """Where a group's assessment is cached: per model and prompt version, as fingerprints are."""
        return f"{GROUP_CACHE}{self.settings.llm_model}|{prompt_version()}|{group_id}"

    def cached(self, fingerprint: str) -> dict[str, Any] | None:
        if not fingerprint or not self.settings.cache_enabled:
            return None
        raw = self.redis.get(CACHE + fingerprint)
        return None if raw is None else dict(json.loads(raw))

    def cached_many(self, fingerprints: list[str]) -> list[dict[str, Any] | None]:
        """``cached`` for many keys in one round trip (a page's fact cards)."""
        wanted = [fp for fp in fingerprints if fp]
        if not wanted or not self.settings.cache_enabled:
            return [None] * len(fingerprints)
        found: dict[str, Any] = dict(zip(wanted, self.redis.mget([CACHE + fp for fp in wanted]), strict=True))
        raws = [found.get(fp) for fp in fingerprints]
        return [None if raw is None else dict(json.loads(raw)) for raw in raws]

    def remember(self, fingerprint: str, result: dict[str, Any]) -> None:
        """Keep a successful assessment for ``LME_ENRICH_CACHE_TTL`` (when the cache is on)."""
        if fingerprint and self.settings.cache_enabled:
            ttl = max(int(self.settings.cache_ttl.total_seconds()), 1)
            self.redis.set(CACHE + fingerprint, json.dumps(result), ex=ttl)
