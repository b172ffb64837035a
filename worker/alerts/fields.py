"""The ``lme.ai.*`` fields lme-enrich owns, and their Elasticsearch mapping: the one source of truth.

Kibana's alert indices are ``dynamic: false``, so a field is searchable only once this mapping is on
the backing index that holds the alert.
"""

from __future__ import annotations

from enum import StrEnum
from typing import Any, Final

ROOT: Final = "lme.ai"


class Status(StrEnum):
    queued = "queued"
    running = "running"
    done = "done"
    failed = "failed"


class RiskLevel(StrEnum):
    low = "low"
    medium = "medium"
    high = "high"
    critical = "critical"


IN_FLIGHT: Final = (Status.queued.value, Status.running.value)


def field(name: str) -> str:
    """Full dotted path of one of our fields, e.g. ``field("status") == "lme.ai.status"``."""
    return f"{ROOT}.{name}"


_KEYWORD: Final = {"type": "keyword", "ignore_above": 1024}
_TEXT_WITH_KEYWORD: Final = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}}

# Every field we write. Adding one here maps it on every backing index at the next start or poll.
AI_PROPERTIES: Final[dict[str, Any]] = {
    "status": {"type": "keyword"},
    "source": {"type": "keyword"},
    "claim_id": {"type": "keyword"},
    "claimed_at": {"type": "date"},
    "started_at": {"type": "date"},
    "enriched_at": {"type": "date"},
    "next_attempt_at": {"type": "date"},
    "attempts": {"type": "integer"},
    "summary": _TEXT_WITH_KEYWORD,
    # Written by prompts v1 and v2 only; v3 writes null so a re-assessment leaves no stale text. Still mapped:
    # older alerts hold it, and a mapping cannot be taken back.
    "what_happened": {"type": "text"},
    "risk_level": {"type": "keyword"},
    "recommended_actions": {"type": "text"},
    "confidence": {"type": "float"},
    "injection_suspected": {"type": "boolean"},
    # worker.assessing.guards: why the alert was taken for addressing the model (role_marker, fence, instruction,
    # verdict_request, other_alerts, answer_json), and what the guards changed in the answer (risk_floor,
    # warning, verdict_demoted, action_dropped, echo_cut, grounded, default_action, default_summary).
    "injection_reasons": {"type": "keyword"},
    "guards": {"type": "keyword"},
    "model": {"type": "keyword"},
    "prompt_version": {"type": "keyword"},
    "fingerprint": {"type": "keyword"},
    "duration_ms": {"type": "long"},
    "tokens": {"properties": {"prompt": {"type": "integer"}, "completion": {"type": "integer"}}},
    "error": _TEXT_WITH_KEYWORD,
    "error_kind": {"type": "keyword"},
    "cached": {"type": "boolean"},
    "cached_from": _KEYWORD,
    # Written at claim time, before any model call: what the alert itself says, in one short text.
    "facts": {"type": "text"},
    # The incident group the alert belongs to (alerts of one rule on one host and user, close in time).
    "group": {"properties": {
        "id": {"type": "keyword"},
        "size": {"type": "integer"},
        "first_seen": {"type": "date"},
        "last_seen": {"type": "date"},
    }},
}


def mapping_body() -> dict[str, Any]:
    """The ``PUT _mapping`` body for our fields (additive: touches nothing else in the index)."""
    return {"properties": {"lme": {"properties": {"ai": {"properties": AI_PROPERTIES}}}}}


def leaf_paths(properties: dict[str, Any] | None = None, prefix: str = ROOT) -> list[str]:
    """Dotted paths of every leaf field we map (what ``ensure_mappings`` checks is present)."""
    props = AI_PROPERTIES if properties is None else properties
    paths: list[str] = []
    for name, spec in props.items():
        if "properties" in spec:
            paths.extend(leaf_paths(spec["properties"], f"{prefix}.{name}"))
        else:
            paths.append(f"{prefix}.{name}")
    return paths


def ai_doc(**values: Any) -> dict[str, Any]:
    """A partial-update ``doc`` that sets only the given ``lme.ai`` fields (nested form)."""
    unknown = set(values) - set(AI_PROPERTIES)
    if unknown:
        raise KeyError(f"not an lme.ai field: {sorted(unknown)}")
    return {"lme": {"ai": values}}
