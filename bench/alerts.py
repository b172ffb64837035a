"""The benchmark's alerts in Elasticsearch: made distinct, written as new, counted and read back."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from typing import Any

from elasticsearch import Elasticsearch

from bench.harness import BenchError, Pipeline, wait_for
from tests import kibana
from worker.alerts import alert


def distinct_ids(docs: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """The docs with every ``kibana.alert.uuid`` made unique: a repeated one gets a new id."""
    seen: set[str] = set()
    out = []
    for n, original in enumerate(docs):
        doc = original
        uid = str(alert.first(doc, "kibana.alert.uuid") or f"alert-{n}")
        if uid in seen:
            doc = kibana.variants([original], 1, f"{uid}-replay{n}")[0]
            uid = str(alert.first(doc, "kibana.alert.uuid"))
        seen.add(uid)
        out.append(doc)
    return out


def in_scope(doc: dict[str, Any]) -> bool:
    """What lme-enrich assesses with default settings: not closed, not a building block."""
    return (alert.first(doc, "kibana.alert.workflow_status") != "closed"
            and not alert.first(doc, "kibana.alert.building_block_type"))


def seed(es: Elasticsearch, space: kibana.Space, docs: list[dict[str, Any]], *, chunk: int = 500,
         refresh: bool = True) -> dict[str, tuple[str, float]]:
    """Write ``docs`` as alerts created now (``@timestamp`` = the write); returns id → (index, created epoch)."""
    placed: dict[str, tuple[str, float]] = {}
    for start in range(0, len(docs), chunk):
        part = docs[start:start + chunk]
        now = time.time()
        operations: list[dict[str, Any]] = []
        for position, doc in enumerate(part):
            operations.append({"create": {"_index": space.alias, "_id": alert.first(doc, "kibana.alert.uuid")}})
            # A millisecond apart, so "oldest first" keeps the corpus order.
            operations.append(kibana.as_new(doc, datetime.fromtimestamp(now, UTC) + timedelta(milliseconds=position)))
        response = es.bulk(operations=operations, refresh=refresh and start + chunk >= len(docs))
        for position, item in enumerate(response["items"]):
            result = item["create"]
            if result.get("status", 500) >= 300:
                raise BenchError(f"seeding failed: {result}")
            placed[result["_id"]] = (result["_index"], now + position / 1000)
    return placed


def count(es: Elasticsearch, space: kibana.Space, query: dict[str, Any]) -> int:
    return int(es.count(index=space.pattern, query=query)["count"])


def finished_count(es: Elasticsearch, space: kibana.Space) -> int:
    return count(es, space, {"terms": {"lme.ai.status": ["done", "failed"]}})


def wait_finished(es: Elasticsearch, space: kibana.Space, n: int, timeout: float, *,
                  pipeline: Pipeline | None = None, interval: float = 0.5) -> None:
    def done() -> bool:
        if pipeline is not None:
            pipeline.check_alive()
        return finished_count(es, space) >= n

    wait_for(done, timeout=timeout, interval=interval, what=f"{n} alerts to be done or failed")


def results(es: Elasticsearch, space: kibana.Space, size: int) -> dict[str, dict[str, Any]]:
    """id → the ``lme.ai`` object (plus ``_severity``) of every alert in the space."""
    es.indices.refresh(index=space.pattern)
    hits = es.search(index=space.pattern, size=size, query={"match_all": {}},
                     source_includes=["lme.ai", "kibana.alert.severity"])["hits"]["hits"]
    out = {}
    for hit in hits:
        ai = alert.first(hit["_source"], "lme.ai") or {}
        out[hit["_id"]] = {**ai, "_severity": alert.first(hit["_source"], "kibana.alert.severity")}
    return out


def outcomes(found: dict[str, dict[str, Any]]) -> dict[str, int]:
    """How the alerts were answered: done/failed, and of the done ones, served from the cache or coalesced."""
    done = [ai for ai in found.values() if ai.get("status") == "done"]
    return {
        "done": len(done), "failed": sum(1 for ai in found.values() if ai.get("status") == "failed"),
        "cached": sum(1 for ai in done if ai.get("cached") is True),
        # A follower shares its leader's answer: not from the cache, but with the leader as its source.
        "coalesced": sum(1 for ai in done if ai.get("cached") is not True and ai.get("cached_from")),
    }


def percentile(values: list[float], q: float) -> float | None:
    """Nearest-rank percentile (q from 0 to 100)."""
    if not values:
        return None
    ordered = sorted(values)
    rank = max(1, -(-len(ordered) * q // 100))
    return ordered[int(rank) - 1]


