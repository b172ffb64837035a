"""Kibana's security alert indices, laid out as Kibana 8.18 makes them, and the corpus seeded into them.

Kibana creates a hidden concrete index ``.internal.alerts-security.alerts-default-000001`` behind the
hidden write alias ``.alerts-security.alerts-default``, from an index template whose mapping is
``dynamic: false``. The mapping is Kibana's own: the full alerts-as-data field map (ECS, ``kibana.alert.*``,
the security fields and the legacy ``signal.*`` aliases) from the security alerts archive Kibana ships as
test data (``data/kibana/security-alerts-mappings.json``, see its ``LICENSE-NOTE.md``), with two explicit,
listed adjustments applied for every server the tests run against, so all are judged on identical indices:

* ``LATER_FIELDS``: the few fields Kibana's field map gained after that archive was written (8.8.0) that the
  corpus carries and lme-enrich queries (``kibana.alert.workflow_tags``, ...);
* ``SUBSTITUTES``: field types the Maven-built Elasticsearch node cannot create (their modules are not
  published on Maven Central), replaced by the nearest core type; ``substituted_fields()`` lists each field
  so affected, which is exactly how these indices differ from LME's real ones.
"""

from __future__ import annotations

import copy
import functools
import json
from collections.abc import Iterable, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

from elasticsearch import Elasticsearch

from worker.alerts import alert

CORPUS = Path(__file__).resolve().parents[2] / "shared" / "data" / "alerts" / "alerts.ndjson"
KIBANA_MAPPINGS = Path(__file__).resolve().parent / "data" / "kibana" / "security-alerts-mappings.json"

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


# Fields Kibana's alerts-as-data / security field map gained after the archive's 8.8.0 and maps in 8.18, that
# the corpus carries and lme-enrich queries or reads; merged over the archive's mapping (Kibana's types).
LATER_FIELDS: dict[str, dict[str, Any]] = {
    "kibana.alert.workflow_tags": {"type": "keyword"},
    "kibana.alert.workflow_assignee_ids": {"type": "keyword"},
    "kibana.alert.workflow_status_updated_at": {"type": "date"},
    "kibana.alert.intended_timestamp": {"type": "date"},
    "kibana.alert.rule.execution.timestamp": {"type": "date"},
    "kibana.alert.rule.execution.type": {"type": "keyword"},
    "kibana.alert.reason": {"type": "keyword", "fields": {"text": {"type": "match_only_text"}}},
}

# The one substitution table: Kibana's type -> (the type both test servers get instead, parameters dropped
# because the new type does not take them). Applied to the whole mapping for every server.
SUBSTITUTES: dict[str, tuple[str, frozenset[str]]] = {
    # mapper-extras module, not on Maven Central: text without positions/norms -> plain text
    "match_only_text": ("text", frozenset()),
    # mapper-extras module, not on Maven Central: long-backed fixed-point number -> float
    "scaled_float": ("float", frozenset({"scaling_factor"})),
    # mapper-extras module, not on Maven Central: text with shingle subfields -> plain text
    "search_as_you_type": ("text", frozenset({"max_shingle_size"})),
    # mapper-extras module, not on Maven Central: analysed token count -> integer
    "token_count": ("integer", frozenset({"analyzer", "enable_position_increments"})),
    # mapper-extras module, not on Maven Central: feature -> weight object -> flattened object
    "rank_features": ("flattened", frozenset({"positive_score_impact"})),
    # x-pack wildcard module, not on Maven Central: n-gram indexed keyword -> keyword
    "wildcard": ("keyword", frozenset()),
    # x-pack constant-keyword module, not on Maven Central: one value per index -> keyword
    "constant_keyword": ("keyword", frozenset({"value"})),
    # x-pack version module, not on Maven Central: semver-ordered keyword -> keyword (lexical order)
    "version": ("keyword", frozenset()),
    # x-pack unsigned-long module, not on Maven Central: 0..2^64-1 -> long (signed, 0..2^63-1)
    "unsigned_long": ("long", frozenset()),
}


@functools.cache
def _kibana_archive() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(KIBANA_MAPPINGS.read_text(encoding="utf-8"))
    return loaded


def kibana_mappings() -> dict[str, Any]:
    """Kibana's mapping as the archive has it, plus ``LATER_FIELDS``; no substitutions (a fresh copy)."""
    mappings: dict[str, Any] = copy.deepcopy(_kibana_archive()["mappings"])
    for dotted, spec in LATER_FIELDS.items():
        node = mappings
        *parents, leaf = dotted.split(".")
        for part in parents:
            node = node.setdefault("properties", {}).setdefault(part, {})
        node.setdefault("properties", {}).setdefault(leaf, {}).update(copy.deepcopy(spec))
    return mappings


def kibana_settings() -> dict[str, Any]:
    """The index settings of Kibana's archive (hidden, 1 shard, its total-fields limit)."""
    settings: dict[str, Any] = copy.deepcopy(_kibana_archive()["settings"])
    return settings


def _leaves(properties: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, dict[str, Any]]]:
    """Every mapped leaf and multi-field as (dotted path, its spec), objects walked through."""
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            yield from _leaves(spec["properties"], f"{path}.")
        if "type" in spec and spec["type"] not in ("object", "nested"):
            yield path, spec
            for sub, sub_spec in spec.get("fields", {}).items():
                yield f"{path}.{sub}", sub_spec


def substituted_fields(mappings: dict[str, Any] | None = None) -> dict[str, tuple[str, str]]:
    """Field path -> (Kibana's type, the type the tests map instead), for every field ``SUBSTITUTES`` touches."""
    props = (mappings if mappings is not None else kibana_mappings()).get("properties", {})
    return {path: (spec["type"], SUBSTITUTES[spec["type"]][0])
            for path, spec in _leaves(props) if spec["type"] in SUBSTITUTES}


def field_count(mappings: dict[str, Any] | None = None) -> int:
    """How many leaf fields (multi-fields and aliases included) the mapping defines."""
    return sum(1 for _ in _leaves((mappings if mappings is not None else alert_mappings())["properties"]))


def _substitute(properties: dict[str, Any]) -> None:
    for spec in properties.values():
        if "properties" in spec:
            _substitute(spec["properties"])
        for target in (spec, *spec.get("fields", {}).values()):
            if target.get("type") in SUBSTITUTES:
                new_type, dropped = SUBSTITUTES[target["type"]]
                for param in dropped:
                    target.pop(param, None)
                target["type"] = new_type


def alert_mappings() -> dict[str, Any]:
    """The mapping both test servers get: Kibana's (``kibana_mappings()``) with ``SUBSTITUTES`` applied."""
    mappings = kibana_mappings()
    _substitute(mappings["properties"])
    return mappings


def install(es: Elasticsearch, space: Space) -> None:
    """Create Kibana's template, first backing index and write alias."""
    mappings = alert_mappings()
    mappings["_meta"] = {**mappings.get("_meta", {}), "namespace": space.space}
    es.indices.put_index_template(
        name=space.template,
        index_patterns=[f"{space.index_prefix}*"],
        priority=7,
        template={"settings": kibana_settings(), "mappings": mappings},
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


def burst(rule: str, prefix: str, count: int) -> list[dict[str, Any]]:
    """``count`` alerts of the corpus rule ``rule`` on one host, a second apart: one incident group."""
    base = next(d for d in eligible(load_corpus())
                if alert.first(d, "kibana.alert.rule.name") == rule and alert.first(d, "host.name"))
    docs = variants([base], count, prefix)
    for n, doc in enumerate(docs):
        set_field(doc, "kibana.alert.original_time", f"2026-12-01T10:00:{n:02d}.000Z")
    return docs
