"""End-to-end: realistic alert queries on a `dynamic: false` index loaded from the alert corpus."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from elasticsearch import Elasticsearch

CORPUS = Path("/work/shared/data/alerts/alerts.ndjson")
N_DOCS = 30
MAPPING = {
    "dynamic": False,
    "properties": {
        "@timestamp": {"type": "date"},
        "kibana": {"properties": {"alert": {"properties": {
            "risk_score": {"type": "float"},
            "workflow_status": {"type": "keyword"},
            "building_block_type": {"type": "keyword"},
            "uuid": {"type": "keyword"},
            "rule": {"properties": {"name": {"type": "keyword"}}},
        }}}},
    },
}
LME_MAPPING = {"properties": {"lme": {"properties": {"ai": {"properties": {
    "status": {"type": "keyword"},
    "duration_ms": {"type": "long"},
}}}}}}


def field(doc: dict[str, Any], path: str) -> Any:
    """A value by dotted path in a source that mixes flat dotted keys and nested objects."""
    if path in doc:
        return doc[path]
    for key, value in doc.items():
        if path.startswith(key + ".") and isinstance(value, dict):
            found = field(value, path[len(key) + 1:])
            if found is not None:
                return found
    return None


def iso(dt: datetime) -> str:
    return dt.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


def poller_query() -> dict[str, Any]:
    return {"bool": {
        "filter": [
            {"range": {"@timestamp": {"gte": "now-24h"}}},
            {"terms": {"kibana.alert.workflow_status": ["open", "acknowledged"]}},
        ],
        "must_not": [
            {"exists": {"field": "lme.ai.status"}},
            {"exists": {"field": "kibana.alert.building_block_type"}},
        ],
    }}


@pytest.fixture
def alerts(es: Elasticsearch, index_name: str) -> list[dict[str, Any]]:
    """N_DOCS corpus alerts with fresh timestamps; every 5th already carries an (unmapped) lme.ai.status."""
    es.indices.create(index=index_name, mappings=MAPPING)
    now = datetime.now(UTC).replace(microsecond=0)
    docs: list[dict[str, Any]] = []
    with CORPUS.open() as fh:
        for i, line in enumerate(fh):
            if i == N_DOCS:
                break
            doc = json.loads(line)
            age = timedelta(days=3) if i % 10 == 9 else timedelta(minutes=5 + 37 * i)
            doc["@timestamp"] = iso(now - age)
            if i % 7 == 3:
                doc["kibana.alert.building_block_type"] = "default"
            if i % 5 == 0:
                doc["lme"] = {"ai": {"status": "done", "duration_ms": 1000 + i}}
            doc["_test_id"] = f"a{i}"
            docs.append(doc)
    ops: list[dict[str, Any]] = []
    for doc in docs:
        ops += [{"index": {"_index": index_name, "_id": doc["_test_id"]}}, doc]
    resp = es.bulk(operations=ops, refresh=True)
    assert not resp["errors"]
    return docs


def expected_unassessed(docs: list[dict[str, Any]], assessed: set[str]) -> set[str]:
    cutoff = datetime.now(UTC) - timedelta(hours=24)
    out = set()
    for d in docs:
        ts = datetime.fromisoformat(d["@timestamp"].replace("Z", "+00:00"))
        if ts < cutoff or d["_test_id"] in assessed:
            continue
        if field(d, "kibana.alert.building_block_type") is not None:
            continue
        if field(d, "kibana.alert.workflow_status") not in ("open", "acknowledged"):
            continue
        out.add(d["_test_id"])
    return out


def test_poller_query_ignores_unmapped_status_until_mapped(
    es: Elasticsearch, index_name: str, alerts: list[dict[str, Any]]
) -> None:
    resp = es.search(index=index_name, query=poller_query(), size=100, _source=False)
    got = {h["_id"] for h in resp["hits"]["hits"]}
    # lme.ai.status exists in _source of every 5th doc but is not indexed (dynamic: false).
    want = expected_unassessed(alerts, assessed=set())
    assert got == want
    assert resp["hits"]["total"] == {"value": len(want), "relation": "eq"}
    assert {h["_score"] for h in resp["hits"]["hits"]} == {0.0}
    assert any(i % 5 == 0 for i in (int(x[1:]) for x in got))

    es.indices.put_mapping(index=index_name, **LME_MAPPING)
    # Existing docs are not re-indexed: the old status is still invisible...
    assert {h["_id"] for h in es.search(index=index_name, query=poller_query(), size=100)["hits"]["hits"]} == want
    # ...but a doc written after the mapping update is.
    target = sorted(want)[0]
    doc = next(d for d in alerts if d["_test_id"] == target)
    es.index(index=index_name, id=target, document={**doc, "lme": {"ai": {"status": "done"}}}, refresh=True)
    after = {h["_id"] for h in es.search(index=index_name, query=poller_query(), size=100)["hits"]["hits"]}
    assert after == want - {target}


def test_pit_search_after_pages_through_everything_once(
    es: Elasticsearch, index_name: str, alerts: list[dict[str, Any]]
) -> None:
    pit = es.open_point_in_time(index=index_name, keep_alive="1m")["id"]
    try:
        seen: list[str] = []
        scores: list[float] = []
        after: list[Any] | None = None
        while True:
            kwargs: dict[str, Any] = {}
            if after is not None:
                kwargs["search_after"] = after
            resp = es.search(
                pit={"id": pit, "keep_alive": "1m"},
                size=7,
                sort=[{"kibana.alert.risk_score": "desc"}, {"@timestamp": "asc"}],
                source_includes=["kibana.alert.risk_score"],
                **kwargs,
            )
            pit = resp["pit_id"]
            hits = resp["hits"]["hits"]
            if not hits:
                break
            for h in hits:
                assert len(h["sort"]) == 3  # risk score, timestamp (epoch millis), implicit _shard_doc
                assert isinstance(h["sort"][1], int)
                seen.append(h["_id"])
                scores.append(h["sort"][0])
            after = hits[-1]["sort"]
        assert len(seen) == len(set(seen)) == len(alerts)
        assert scores == sorted(scores, reverse=True)
    finally:
        es.close_point_in_time(id=pit)


def test_status_terms_aggregation_and_duration_percentiles(
    es: Elasticsearch, index_name: str, alerts: list[dict[str, Any]]
) -> None:
    es.indices.put_mapping(index=index_name, **LME_MAPPING)
    # Re-write the assessed docs so they are indexed with the new mapping.
    statuses = {}
    for i, d in enumerate(alerts[:12]):
        status = "done" if i % 3 else "error"
        statuses[d["_test_id"]] = status
        es.index(index=index_name, id=d["_test_id"],
                 document={**d, "lme": {"ai": {"status": status, "duration_ms": 100 * (i + 1)}}})
    es.indices.refresh(index=index_name)
    resp = es.search(index=index_name, size=0, aggs={
        "by_status": {"terms": {"field": "lme.ai.status"}},
        "latency": {"percentiles": {"field": "lme.ai.duration_ms", "percents": [0, 50, 100]}},
        "assessed": {"value_count": {"field": "lme.ai.status"}},
    })
    aggs = resp["aggregations"]
    assert aggs["by_status"]["buckets"] == [{"key": "done", "doc_count": 8}, {"key": "error", "doc_count": 4}]
    assert aggs["by_status"]["sum_other_doc_count"] == 0
    values = aggs["latency"]["values"]
    assert values["0.0"] == 100.0
    assert values["100.0"] == 1200.0
    assert 100.0 < values["50.0"] < 1200.0
    assert aggs["assessed"]["value"] == 12
    assert resp["hits"]["total"]["value"] == len(alerts)


def test_hourly_date_histogram(es: Elasticsearch, index_name: str) -> None:
    es.indices.create(index=index_name, mappings=MAPPING)
    base = datetime(2026, 5, 4, 10, 0, tzinfo=UTC)
    minutes = [1, 15, 59, 61, 185, 186]  # hours 10, 10, 10, 11, 13, 13 -> an empty 12:00 bucket in between
    ops: list[dict[str, Any]] = []
    for i, m in enumerate(minutes):
        ops += [{"index": {"_index": index_name, "_id": str(i)}},
                {"@timestamp": iso(base + timedelta(minutes=m)), "kibana.alert.risk_score": 21}]
    assert not es.bulk(operations=ops, refresh=True)["errors"]
    resp = es.search(index=index_name, size=0, aggs={
        "per_hour": {"date_histogram": {"field": "@timestamp", "fixed_interval": "1h"}},
        "per_hour_cal": {"date_histogram": {"field": "@timestamp", "calendar_interval": "hour"}},
    })
    for name in ("per_hour", "per_hour_cal"):
        buckets = resp["aggregations"][name]["buckets"]
        assert [(b["key_as_string"], b["doc_count"]) for b in buckets] == [
            ("2026-05-04T10:00:00.000Z", 3),
            ("2026-05-04T11:00:00.000Z", 1),
            ("2026-05-04T12:00:00.000Z", 0),
            ("2026-05-04T13:00:00.000Z", 2),
        ]
        assert buckets[0]["key"] == int(base.timestamp() * 1000)
