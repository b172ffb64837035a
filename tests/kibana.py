"""Kibana's security alert indices, laid out as Kibana 8.18 makes them, and the corpus seeded into them.

Kibana creates a hidden concrete index ``.internal.alerts-security.alerts-default-000001`` behind the
hidden write alias ``.alerts-security.alerts-default``, from an index template whose mapping is
``dynamic: false``. The mapping below is the part of Kibana's (alerts-as-data + ECS) field map that the
corpus and lme-enrich touch, with Kibana's types.
"""

from __future__ import annotations

import copy
import json
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from worker import alert

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "alerts" / "alerts.ndjson"

DEFAULT_SPACE = "default"


class Space:
    """Names Kibana derives from a space id (tests use a fresh space each, so they never collide)."""

    def __init__(self, space: str = DEFAULT_SPACE) -> None:
        self.space = space
        self.alias = f".alerts-security.alerts-{space}"
        self.index_prefix = f".internal.alerts-security.alerts-{space}-"
        self.first_index = f"{self.index_prefix}000001"
        self.template = f".alerts-security.alerts-{space}-index-template"
        # What lme-enrich is told to read: a dot-wildcard over the hidden alias, as `.alerts-security.alerts-*`.
        self.pattern = f"{self.alias}*"


_K = "keyword"
FIELD_TYPES: dict[str, Any] = {
    "@timestamp": "date",
    "event.kind": _K, "event.action": _K, "event.category": _K, "event.outcome": _K, "event.module": _K,
    "event.dataset": _K, "event.code": _K, "event.provider": _K, "event.type": _K,
    "kibana.alert.uuid": _K, "kibana.alert.status": _K, "kibana.alert.severity": _K,
    "kibana.alert.risk_score": "float", "kibana.alert.workflow_status": _K, "kibana.alert.workflow_tags": _K,
    "kibana.alert.workflow_user": _K, "kibana.alert.workflow_status_updated_at": "date",
    "kibana.alert.workflow_assignee_ids": _K, "kibana.alert.building_block_type": _K,
    "kibana.alert.reason": {"type": _K, "fields": {"text": {"type": "match_only_text"}}},
    "kibana.alert.original_time": "date", "kibana.alert.start": "date", "kibana.alert.last_detected": "date",
    "kibana.alert.intended_timestamp": "date", "kibana.alert.depth": "long",
    "kibana.alert.rule.name": _K, "kibana.alert.rule.uuid": _K, "kibana.alert.rule.rule_id": _K,
    "kibana.alert.rule.category": _K, "kibana.alert.rule.consumer": _K, "kibana.alert.rule.producer": _K,
    "kibana.alert.rule.rule_type_id": _K, "kibana.alert.rule.tags": _K, "kibana.alert.rule.type": _K,
    "kibana.alert.rule.severity": _K, "kibana.alert.rule.risk_score": "float", "kibana.alert.rule.version": _K,
    "kibana.alert.rule.revision": "long", "kibana.alert.rule.description": _K,
    "kibana.alert.rule.parameters": "flattened", "kibana.alert.rule.execution.uuid": _K,
    "kibana.alert.rule.execution.timestamp": "date",
    "kibana.alert.rule.threat.framework": _K, "kibana.alert.rule.threat.tactic.id": _K,
    "kibana.alert.rule.threat.tactic.name": _K, "kibana.alert.rule.threat.technique.id": _K,
    "kibana.alert.rule.threat.technique.name": _K, "kibana.alert.rule.threat.technique.subtechnique.id": _K,
    "kibana.alert.rule.threat.technique.subtechnique.name": _K,
    "kibana.alert.ancestors.id": _K, "kibana.alert.ancestors.index": _K, "kibana.alert.ancestors.type": _K,
    "kibana.alert.ancestors.depth": "long",
    "kibana.alert.original_event.action": _K, "kibana.alert.original_event.category": _K,
    "kibana.alert.original_event.dataset": _K, "kibana.alert.original_event.module": _K,
    "kibana.space_ids": _K, "kibana.version": _K,
    "host.name": _K, "host.hostname": _K, "host.id": _K, "host.os.type": _K, "host.os.family": _K,
    "host.os.name": _K, "user.name": _K, "user.domain": _K, "user.id": _K,
    "process.name": _K, "process.executable": _K, "process.command_line": _K, "process.pid": "long",
    "process.parent.name": _K, "process.parent.executable": _K, "process.parent.command_line": _K,
    "file.path": _K, "file.name": _K, "registry.path": _K, "message": "match_only_text",
}


def _properties(field_types: dict[str, Any]) -> dict[str, Any]:
    """Expand dotted field names into the nested ``properties`` form a mapping uses."""
    root: dict[str, Any] = {}
    for dotted, spec in field_types.items():
        node = root
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault(part, {}).setdefault("properties", {})
        node[leaf] = {"type": spec} if isinstance(spec, str) else spec
    return root


def alert_mappings() -> dict[str, Any]:
    return {"dynamic": False, "properties": _properties(FIELD_TYPES)}


def install(es: Elasticsearch, space: Space) -> None:
    """Create Kibana's template, first backing index and write alias."""
    es.indices.put_index_template(
        name=space.template,
        index_patterns=[f"{space.index_prefix}*"],
        priority=7,
        template={
            "settings": {"index.hidden": True, "index.mapping.total_fields.limit": 2500},
            "mappings": alert_mappings(),
        },
    )
    es.indices.create(index=space.first_index, aliases={space.alias: {"is_write_index": True, "is_hidden": True}})


def uninstall(es: Elasticsearch, space: Space) -> None:
    """Delete the space's alert indices (by concrete name: ES 8 refuses wildcard deletes) and template."""
    found = es.indices.get_alias(index=space.pattern, expand_wildcards="all", allow_no_indices=True,
                                 ignore_unavailable=True)
    for index in found.body:
        es.options(ignore_status=404).indices.delete(index=index)
    es.options(ignore_status=404).indices.delete_index_template(name=space.template)


def rollover(es: Elasticsearch, space: Space) -> str:
    """Roll the write alias over, as Kibana's ILM policy does every 30 days; returns the new index."""
    return str(es.indices.rollover(alias=space.alias)["new_index"])


def load_corpus() -> list[dict[str, Any]]:
    return [json.loads(line) for line in CORPUS.read_text(encoding="utf-8").splitlines() if line.strip()]


def eligible(docs: Iterable[dict[str, Any]]) -> list[dict[str, Any]]:
    """Corpus alerts lme-enrich should assess by default: distinct, open or acknowledged, not building blocks."""
    seen: set[str] = set()
    chosen = []
    for doc in docs:
        uuid = alert.first(doc, "kibana.alert.uuid")
        if not uuid or uuid in seen or alert.first(doc, "kibana.alert.workflow_status") == "closed":
            continue
        if alert.first(doc, "kibana.alert.building_block_type"):
            continue
        seen.add(uuid)
        chosen.append(doc)
    return chosen


def as_new(doc: dict[str, Any], when: datetime) -> dict[str, Any]:
    """The alert as if its rule had just fired: a recent ``@timestamp``; everything else as in the corpus."""
    fresh = copy.deepcopy(doc)
    fresh["@timestamp"] = when.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")
    return fresh


def seed(es: Elasticsearch, space: Space, docs: list[dict[str, Any]], *, now: datetime | None = None,
         refresh: bool = True) -> dict[str, str]:
    """Write ``docs`` through the write alias as new alerts, id = ``kibana.alert.uuid``; returns id → index."""
    moment = now or datetime.now(UTC)
    operations: list[dict[str, Any]] = []
    for position, doc in enumerate(docs):
        operations.append({"create": {"_index": space.alias, "_id": alert.first(doc, "kibana.alert.uuid")}})
        operations.append(as_new(doc, moment - timedelta(seconds=len(docs) - position)))
    response = es.bulk(operations=operations, refresh=refresh)
    failures = [item["create"] for item in response["items"] if item["create"].get("status", 500) >= 300]
    if failures:
        raise AssertionError(f"seeding failed for {len(failures)} alerts, first: {failures[0]}")
    return {item["create"]["_id"]: item["create"]["_index"] for item in response["items"]}


def set_field(source: dict[str, Any], path: str, value: Any) -> None:
    """Set ``path`` where the alert already keeps it (flat or nested), else as a flat key like Kibana."""
    keys = alert.key_form(source, path) or (path,)
    node = source
    for key in keys[:-1]:
        node = node[key]
    node[keys[-1]] = value


def variants(docs: list[dict[str, Any]], count: int, prefix: str, **fields: Any) -> list[dict[str, Any]]:
    """``count`` distinct alerts cycling through ``docs``, ids ``prefix-N``, with ``fields`` (dotted paths) set."""
    made = []
    for n in range(count):
        doc = copy.deepcopy(docs[n % len(docs)])
        set_field(doc, "kibana.alert.uuid", f"{prefix}-{n}")
        for path, value in fields.items():
            set_field(doc, path.replace("__", "."), value)
        made.append(doc)
    return made
