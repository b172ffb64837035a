"""The Kibana alerts-as-data chain: hidden dot index + hidden write alias, ``dynamic: false``, rollover."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

ALERTS = Path("/work/shared/data/alerts/alerts.ndjson")


def _kibana_like(es: Elasticsearch, space: str) -> tuple[str, str, str]:
    """Create what Kibana creates for a space: template, hidden concrete index, hidden write alias."""
    alias = f".alerts-security.alerts-{space}"
    pattern = f".internal.alerts-security.alerts-{space}-*"
    es.indices.put_index_template(
        name=f".alerts-security.alerts-{space}-index-template",
        index_patterns=[pattern],
        priority=7,
        template={
            "settings": {"index": {"hidden": True, "auto_expand_replicas": "0-1"}},
            "mappings": {"dynamic": False, "properties": {
                "@timestamp": {"type": "date"},
                "kibana.alert.uuid": {"type": "keyword"},
                "kibana.alert.severity": {"type": "keyword"},
                "kibana.alert.rule.name": {"type": "keyword"},
                "host": {"properties": {"name": {"type": "keyword"}}},
            }},
        },
    )
    first = f".internal.alerts-security.alerts-{space}-000001"
    es.indices.create(index=first, aliases={alias: {"is_write_index": True, "is_hidden": True}})
    return alias, first, pattern


@pytest.fixture
def space(request: pytest.FixtureRequest, es: Elasticsearch):
    name = "t" + request.node.name.lower().replace("_", "")[-20:]
    yield name
    found = es.indices.get(index=f".internal.alerts-security.alerts-{name}-*", expand_wildcards="all",
                           allow_no_indices=True)
    for index in found:
        es.options(ignore_status=404).indices.delete(index=index)
    es.options(ignore_status=404).indices.delete_index_template(name=f".alerts-security.alerts-{name}-index-template")


def _alerts(n: int) -> list[dict[str, Any]]:
    with ALERTS.open() as fh:
        return [json.loads(line) for _, line in zip(range(n), fh, strict=False)]


def test_alias_write_and_dot_pattern_search(es: Elasticsearch, space: str) -> None:
    alias, first, _ = _kibana_like(es, space)
    settings = es.indices.get(index=first)[first]["settings"]["index"]
    assert settings["hidden"] == "true"
    alias_meta = es.indices.get_alias(name=alias)[first]["aliases"][alias]
    assert alias_meta == {"is_write_index": True, "is_hidden": True}
    docs = _alerts(3)
    for n, doc in enumerate(docs):
        resp = es.index(index=alias, id=f"a{n}", document=doc)
        assert resp["_index"] == first
    es.indices.refresh(index=alias)
    hits = es.search(index=f".alerts-security.alerts-{space}*", size=10)["hits"]
    assert hits["total"]["value"] == 3
    assert {h["_index"] for h in hits["hits"]} == {first}
    assert es.get(index=alias, id="a0")["_source"] == docs[0]
    # Hidden: a plain wildcard does not reach them, expand_wildcards=all does.
    assert first not in es.indices.get(index="*", allow_no_indices=True)
    assert first in es.indices.get(index="*", expand_wildcards="all")
    star = es.search(index="*", size=100, query={"term": {"kibana.alert.uuid": docs[0]["kibana.alert.uuid"]}})
    assert star["hits"]["total"]["value"] == 0
    every = es.search(index="*", size=100, expand_wildcards="all",
                      query={"term": {"kibana.alert.uuid": docs[0]["kibana.alert.uuid"]}})
    assert every["hits"]["total"]["value"] == 1


def test_dynamic_false_keeps_source_but_not_searchable(es: Elasticsearch, space: str) -> None:
    alias, first, _ = _kibana_like(es, space)
    doc = _alerts(1)[0]
    es.index(index=alias, id="x", document=doc, refresh=True)
    es.update(index=alias, id="x", doc={"lme": {"ai": {"verdict": "benign"}}}, refresh=True)
    assert es.get(index=alias, id="x")["_source"]["lme"] == {"ai": {"verdict": "benign"}}
    mapping = es.indices.get_mapping(index=first)[first]["mappings"]
    assert mapping["dynamic"] == "false"
    assert "lme" not in mapping.get("properties", {})
    for query in ({"exists": {"field": "lme.ai.verdict"}}, {"term": {"lme.ai.verdict": "benign"}}):
        assert es.search(index=alias, query=query)["hits"]["total"]["value"] == 0
    es.indices.put_mapping(index=first, properties={"lme": {"properties": {"ai": {"properties": {
        "verdict": {"type": "keyword"}}}}}})
    # The old document was indexed before the field was mapped: still not searchable...
    assert es.search(index=alias, query={"term": {"lme.ai.verdict": "benign"}})["hits"]["total"]["value"] == 0
    # ...but a document written after the mapping change is.
    es.update(index=alias, id="x", doc={"lme": {"ai": {"verdict": "malicious"}}}, refresh=True)
    hits = es.search(index=alias, query={"term": {"lme.ai.verdict": "malicious"}})["hits"]
    assert [h["_id"] for h in hits["hits"]] == ["x"]
    assert es.search(index=alias, query={"exists": {"field": "lme.ai.verdict"}})["hits"]["total"]["value"] == 1


def test_rollover_moves_the_write_alias(es: Elasticsearch, space: str) -> None:
    alias, first, _ = _kibana_like(es, space)
    es.index(index=alias, id="old", document={"@timestamp": "2026-01-01T00:00:00Z"}, refresh=True)
    dry = es.indices.rollover(alias=alias, conditions={"max_docs": 1}, dry_run=True)
    second = f".internal.alerts-security.alerts-{space}-000002"
    assert (dry["old_index"], dry["new_index"], dry["dry_run"], dry["rolled_over"]) == (first, second, True, False)
    assert dry["conditions"] == {"[max_docs: 1]": True}
    not_yet = es.indices.rollover(alias=alias, conditions={"max_docs": 5})
    assert not_yet["rolled_over"] is False and not_yet["conditions"] == {"[max_docs: 5]": False}
    assert not es.indices.exists(index=second)
    resp = es.indices.rollover(alias=alias)
    assert (resp["acknowledged"], resp["rolled_over"], resp["new_index"]) == (True, True, second)
    # The template applied to the new index: hidden, dynamic false.
    assert es.indices.get(index=second)[second]["settings"]["index"]["hidden"] == "true"
    assert es.indices.get_mapping(index=second)[second]["mappings"]["dynamic"] == "false"
    aliases = es.indices.get_alias(name=alias)
    assert aliases[first]["aliases"][alias]["is_write_index"] is False
    assert aliases[second]["aliases"][alias]["is_write_index"] is True
    assert es.index(index=alias, id="new", document={"@timestamp": "2026-01-02T00:00:00Z"})["_index"] == second
    es.indices.refresh(index=alias)
    hits = es.search(index=f".alerts-security.alerts-{space}*", size=10)["hits"]["hits"]
    assert {(h["_id"], h["_index"]) for h in hits} == {("old", first), ("new", second)}


def test_update_by_query_reindexes_under_new_mapping(es: Elasticsearch, space: str) -> None:
    alias, first, _ = _kibana_like(es, space)
    es.index(index=alias, id="x", document={"lme": {"ai": {"verdict": "benign"}}}, refresh=True)
    es.indices.put_mapping(index=first, properties={"lme": {"properties": {"ai": {"properties": {
        "verdict": {"type": "keyword"}}}}}})
    assert es.count(index=alias, query={"term": {"lme.ai.verdict": "benign"}})["count"] == 0
    resp = es.update_by_query(index=alias, refresh=True, conflicts="proceed")
    assert (resp["total"], resp["updated"], resp["version_conflicts"]) == (1, 1, 0)
    assert es.count(index=alias, query={"term": {"lme.ai.verdict": "benign"}})["count"] == 1
    deleted = es.delete_by_query(index=alias, query={"term": {"lme.ai.verdict": "benign"}}, refresh=True)
    assert deleted["deleted"] == 1
    assert es.count(index=alias)["count"] == 0
