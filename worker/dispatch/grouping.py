"""Incident groups: alerts of one rule on one host (and user) that start close together are one incident.

A storm is one rule firing on one host again and again: analysts want one account of the burst, and a CPU
model should answer once for it. An alert joins the open group of its key (rule, host, user) when its start
time is within ``LME_ENRICH_GROUP_WINDOW`` of the group's span, so a burst of any length stays one group as
long as no gap is longer than the window; otherwise it opens a new group. The open group of each key lives in
Redis (assignment is atomic, so racing pollers agree); Elasticsearch keeps each member's group id
(``lme.ai.group.id``), which is how the assessment finds the members.

A group is assessed again when it has grown enough to change the picture: doubled since its last
assessment with an alert unlike those it saw (another fingerprint), or grown by half with a value analysts
triage on (process, destination) that the last assessment did not see. Both need the group to grow
geometrically, so re-assessment can never loop; more copies of what was seen change nothing.
"""

from __future__ import annotations

import hashlib
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Final

import redis

from worker.alerts import alert
from worker.assessing import prompt
from worker.dispatch.scheduler import PREFIX, Job

OPEN: Final = PREFIX + "group-open:"  # key hash -> the open group of that key
STATE: Final = PREFIX + "group:"  # group id -> what its last assessment saw
START_PATHS: Final = ("kibana.alert.original_time", "kibana.alert.start", "@timestamp")
# Extract labels whose new values can change what a burst means (the file a storm touches varies freely).
TRIAGE_LABELS: Final = ("process", "parent_process", "destination", "dns_question", "url")

# Join the open group when the start time is within the window of its span, else open a new one.
_ASSIGN = """
local id = redis.call('HGET', KEYS[1], 'id')
local start = tonumber(ARGV[1])
local window = tonumber(ARGV[2])
if id then
  local first = tonumber(redis.call('HGET', KEYS[1], 'first'))
  local last = tonumber(redis.call('HGET', KEYS[1], 'last'))
  if start >= first - window and start <= last + window then
    if start < first then redis.call('HSET', KEYS[1], 'first', ARGV[1]) end
    if start > last then redis.call('HSET', KEYS[1], 'last', ARGV[1]) end
    local size = redis.call('HINCRBY', KEYS[1], 'size', 1)
    redis.call('EXPIRE', KEYS[1], ARGV[4])
    return {id, redis.call('HGET', KEYS[1], 'first'), redis.call('HGET', KEYS[1], 'last'), size}
  end
end
redis.call('DEL', KEYS[1])
redis.call('HSET', KEYS[1], 'id', ARGV[3], 'first', ARGV[1], 'last', ARGV[1], 'size', 1)
redis.call('EXPIRE', KEYS[1], ARGV[4])
return {ARGV[3], ARGV[1], ARGV[1], 1}
"""


@dataclass(frozen=True)
class Group:
    """The group an alert joined, as far as it was known when the alert was claimed."""

    id: str
    size: int
    first_seen: float
    last_seen: float


def key_of(source: dict[str, Any]) -> str | None:
    """The grouping key of an alert (rule, host, user), or None when it names no rule or host."""
    rule = (alert.first(source, "kibana.alert.rule.uuid") or alert.first(source, "kibana.alert.rule.rule_id")
            or alert.first(source, "kibana.alert.rule.name"))
    host = alert.first(source, "host.name") or alert.first(source, "host.hostname")
    if not rule or not host:
        return None
    user = alert.first(source, "user.name") or ""
    raw = json.dumps([str(rule), str(host), str(user)], ensure_ascii=False)
    return hashlib.sha256(raw.encode("utf-8", "surrogatepass")).hexdigest()[:24]


def start_of(source: dict[str, Any]) -> float | None:
    """When the alert's event started (epoch seconds), or None when the alert carries no usable time."""
    for path in START_PATHS:
        value = alert.first(source, path)
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.replace("Z", "+00:00")).timestamp()
            except ValueError:
                continue
    return None


def triage_values(source: dict[str, Any]) -> list[str]:
    """Short digests of the values analysts triage a burst on (what a re-assessment looks for)."""
    pairs = dict(prompt.extract_pairs(source))
    return sorted(hashlib.sha256(f"{label}={pairs[label]}".encode("utf-8", "surrogatepass")).hexdigest()[:12]
                  for label in TRIAGE_LABELS if label in pairs)


class Groups:
    """Assigns alerts to incident groups and remembers what each group's last assessment saw."""

    def __init__(self, client: redis.Redis, window_s: float) -> None:
        self.redis = client
        self.window_s = window_s
        self._assign = client.register_script(_ASSIGN)

    @property
    def enabled(self) -> bool:
        return self.window_s > 0

    def assign(self, source: dict[str, Any]) -> Group | None:
        """The group ``source`` joins (or opens); None when grouping is off or the alert has no key or time."""
        return self.assign_many([source])[0]

    def assign_many(self, sources: list[dict[str, Any]]) -> list[Group | None]:
        """``assign`` for a page of alerts, in one round trip to Redis (in order, so a burst chains)."""
        if not self.enabled:
            return [None] * len(sources)
        ttl = int(max(self.window_s * 3, 3600))
        pipe = self.redis.pipeline()
        placed: list[int] = []
        for n, source in enumerate(sources):
            key, start = key_of(source), start_of(source)
            if key is None or start is None:
                continue
            self._assign(keys=[OPEN + key], args=[repr(start), self.window_s, uuid.uuid4().hex[:20], ttl], client=pipe)
            placed.append(n)
        groups: list[Group | None] = [None] * len(sources)
        for n, (gid, first, last, size) in zip(placed, pipe.execute() if placed else [], strict=True):
            groups[n] = Group(_text(gid), int(size), float(first), float(last))
        return groups

    # -- re-assessment ------------------------------------------------------------------------------
    def assessed(self, group_id: str, size: int, values: set[str], ttl_s: int,
                 fingerprints: set[str] | None = None) -> None:
        """Record what the group's assessment just saw: its size, triage values and alert fingerprints."""
        state = {"size": size, "values": sorted(values), "fingerprints": sorted(fingerprints or ())}
        self.redis.set(STATE + group_id, json.dumps(state), ex=max(ttl_s, 1))

    def needs_new_assessment(self, group_id: str, size_now: int, values: list[str], fingerprint: str = "") -> bool:
        """Whether a group assessed before has grown enough (in size, or in what it shows) to ask again."""
        raw = self.redis.get(STATE + group_id)
        if raw is None:
            return False
        seen = json.loads(raw)
        before = max(int(seen.get("size", 1)), 1)
        if size_now >= 2 * before and fingerprint not in set(seen.get("fingerprints", [])):
            return True
        return size_now * 2 >= before * 3 and not set(values) <= set(seen.get("values", []))

    def regrown(self, job: Job) -> bool:
        """Whether ``job``'s group grew enough, by the time the job joined it, to be assessed again."""
        return self.needs_new_assessment(job.group, job.group_size, [v for v in job.triage.split(",") if v],
                                         job.fingerprint)

    def size(self, source: dict[str, Any]) -> int | None:
        """How many alerts the open group of ``source``'s key has had (None once it closed)."""
        key = key_of(source)
        if key is None:
            return None
        raw = self.redis.hget(OPEN + key, "size")
        return None if raw is None else int(raw)


def _text(raw: bytes | str) -> str:
    return raw.decode() if isinstance(raw, bytes) else raw
