"""The assessment history index: one document per assessment (success or failure).

It is the audit trail (the exact prompt and raw reply, truncated), the source of the Kibana dashboard and
of ``lme-enrich status``. We own it entirely: our index template, a write alias and rollover-ready
backing indices ``lme-ai-assessments-000001`` and on.
"""

from __future__ import annotations

from typing import Any, Final

from elasticsearch import ApiError, Elasticsearch

ALIAS: Final = "lme-ai-assessments"
PATTERN: Final = f"{ALIAS}-*"
FIRST_INDEX: Final = f"{ALIAS}-000001"
TEMPLATE: Final = "lme-ai-assessments"

_KW: Final = {"type": "keyword", "ignore_above": 1024}
_TEXT_KW: Final = {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 1024}}}
_STORED_ONLY: Final = {"type": "text", "index": False}

PROPERTIES: Final[dict[str, Any]] = {
    "@timestamp": {"type": "date"},
    "alert": {"properties": {
        "id": _KW, "index": _KW, "severity": _KW, "risk_score": {"type": "float"},
        "timestamp": {"type": "date"}, "host": _KW, "user": _KW,
    }},
    "rule": {"properties": {"name": _KW, "id": _KW, "version": _KW}},
    "status": _KW,
    "source": _KW,
    "summary": _TEXT_KW,
    "what_happened": {"type": "text"},
    "risk_level": _KW,
    "confidence": {"type": "float"},
    "recommended_actions": {"type": "text"},
    "injection_suspected": {"type": "boolean"},
    "injection_reasons": _KW,
    "guards": _KW,
    "cached": {"type": "boolean"},
    "cached_from": _KW,
    "model": _KW,
    "prompt_version": _KW,
    "fingerprint": _KW,
    "duration_ms": {"type": "long"},
    "queued_ms": {"type": "long"},
    "attempts": {"type": "integer"},
    "tokens": {"properties": {"prompt": {"type": "integer"}, "completion": {"type": "integer"}}},
    "error": _TEXT_KW,
    "error_kind": _KW,
    "prompt": _STORED_ONLY,
    "raw_reply": _STORED_ONLY,
    "facts": {"type": "text"},
    # One record per group assessment, naming the alerts it was written to.
    "group": {"properties": {
        "id": _KW, "size": {"type": "integer"}, "first_seen": {"type": "date"}, "last_seen": {"type": "date"},
        "members": _KW,
    }},
}


def template_body() -> dict[str, Any]:
    return {
        "index_patterns": [PATTERN],
        "priority": 200,
        "template": {
            "settings": {"number_of_shards": 1, "auto_expand_replicas": "0-1"},
            "mappings": {"dynamic": "strict", "properties": PROPERTIES},
        },
        "_meta": {"managed_by": "lme-enrich"},
    }


def ensure_index(es: Elasticsearch) -> None:
    """Install our template and the first backing index behind the write alias (idempotent)."""
    es.indices.put_index_template(name=TEMPLATE, **template_body())
    if es.indices.exists_alias(name=ALIAS):
        # Backing indices made by an older version lack the newer fields (and the mapping is strict).
        es.indices.put_mapping(index=PATTERN, properties=PROPERTIES)
    else:
        try:
            es.indices.create(index=FIRST_INDEX, aliases={ALIAS: {"is_write_index": True}})
        except ApiError as exc:
            if exc.meta.status != 400 or "resource_already_exists" not in str(exc.body):
                raise


def truncate(text: str | None, limit: int) -> str | None:
    if text is None or len(text) <= limit:
        return text
    return text[:limit] + f"… [{len(text) - limit} more characters]"
