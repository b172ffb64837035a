"""Which alerts need work, and in which order: the poller's query and sort.

Three kinds of alert need work: new ones (no ``lme.ai.status``) inside the backfill window, claims that
went stale (queued or running past the lease: a worker died), and alerts a person tagged in Kibana for a
new assessment. Our status fields are mapped before we poll, so these queries see them.
"""

from __future__ import annotations

from typing import Any

from worker import fields
from worker.fields import IN_FLIGHT
from worker.settings import Settings, Severity

# Kibana's severities are keywords (they sort alphabetically); the risk score orders them properly.
SORT: list[Any] = [
    {"kibana.alert.risk_score": {"order": "desc", "unmapped_type": "float", "missing": "_last"}},
    {"@timestamp": {"order": "asc", "unmapped_type": "date"}},
]


def _seconds(settings_value: Any) -> int:
    return max(int(settings_value.total_seconds()), 1)


def severities_at_or_above(floor: Severity) -> list[str]:
    return [level.name for level in Severity if level >= floor]


def new_alerts(settings: Settings) -> dict[str, Any]:
    must_not: list[dict[str, Any]] = [
        {"exists": {"field": fields.field("status")}},
        # A closed alert has been triaged by a person already.
        {"term": {"kibana.alert.workflow_status": "closed"}},
    ]
    if settings.skip_building_block:
        must_not.append({"exists": {"field": "kibana.alert.building_block_type"}})
    filters: list[dict[str, Any]] = [
        {"range": {"@timestamp": {"gte": f"now-{_seconds(settings.backfill_window)}s"}}},
    ]
    if settings.severity_floor > Severity.low:
        filters.append({"terms": {"kibana.alert.severity": severities_at_or_above(settings.severity_floor)}})
    return {"bool": {"filter": filters, "must_not": must_not}}


def _claimed_recently(settings: Settings) -> dict[str, Any]:
    return {"bool": {"filter": [
        {"terms": {fields.field("status"): list(IN_FLIGHT)}},
        {"range": {fields.field("claimed_at"): {"gte": f"now-{_seconds(settings.claim_lease)}s"}}},
    ]}}


def stale_claims(settings: Settings) -> dict[str, Any]:
    return {"bool": {
        "filter": [{"terms": {fields.field("status"): list(IN_FLIGHT)}}],
        "must_not": [_claimed_recently(settings)],
    }}


def reassess_requests(settings: Settings) -> dict[str, Any]:
    return {"bool": {
        "filter": [{"term": {"kibana.alert.workflow_tags": settings.reassess_tag}}],
        "must_not": [_claimed_recently(settings)],
    }}


def work_query(settings: Settings) -> dict[str, Any]:
    """Every alert that needs a (new) assessment now."""
    return {"bool": {
        "should": [new_alerts(settings), stale_claims(settings), reassess_requests(settings)],
        "minimum_should_match": 1,
    }}
