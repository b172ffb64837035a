"""Which alerts need work, and in which order: the poller's query and sort.

Three kinds of alert need work: new ones (no ``lme.ai.status``) inside the backfill window, claims that
went stale (queued or running past the lease: a worker died), and alerts a person tagged in Kibana for a
new assessment. Our status fields are mapped before we poll, so these queries see them.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from worker.alerts import fields
from worker.alerts.fields import IN_FLIGHT
from worker.settings import Settings, Severity

# Kibana's severities are keywords (they sort alphabetically); the risk score orders them properly.
SORT: list[Any] = [
    {"kibana.alert.risk_score": {"order": "desc", "unmapped_type": "float", "missing": "_last"}},
    {"@timestamp": {"order": "asc", "unmapped_type": "date"}},
]


def _seconds(duration: timedelta) -> int:
    return max(int(duration.total_seconds()), 1)


def severities_at_or_above(floor: Severity) -> list[str]:
    return [level.name for level in Severity if level >= floor]


def new_alerts(settings: Settings, window: timedelta | None = None) -> dict[str, Any]:
    """Alerts never assessed, inside ``window`` (default: the backfill window) and in scope."""
    must_not: list[dict[str, Any]] = [
        {"exists": {"field": fields.field("status")}},
        # A closed alert has been triaged by a person already.
        {"term": {"kibana.alert.workflow_status": "closed"}},
    ]
    if settings.skip_building_block:
        must_not.append({"exists": {"field": "kibana.alert.building_block_type"}})
    filters: list[dict[str, Any]] = [
        {"range": {"@timestamp": {"gte": f"now-{_seconds(window or settings.backfill_window)}s"}}},
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


def claims_older_than(seconds: int) -> dict[str, Any]:
    """Alerts queued or running under a claim made more than ``seconds`` ago (recovery checks these)."""
    return {"bool": {"filter": [
        {"terms": {fields.field("status"): list(IN_FLIGHT)}},
        {"range": {fields.field("claimed_at"): {"lt": f"now-{seconds}s"}}},
    ]}}


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


class SelectionError(ValueError):
    """The requested selection of alerts is not usable; the message says why."""


def requeue_query(
    settings: Settings,
    *,
    ids: list[str] | None = None,
    rule: str | None = None,
    status: str | None = None,
    since: timedelta | None = None,
    severities: list[str] | None = None,
    raw: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """Alerts a person asked to assess again; those already queued or running are left alone."""
    filters: list[dict[str, Any]] = []
    if ids:
        filters.append({"ids": {"values": ids}})
    if rule:
        filters.append({"term": {"kibana.alert.rule.name": rule}})
    if status:
        filters.append({"term": {fields.field("status"): status}})
    if since is not None:
        filters.append({"range": {"@timestamp": {"gte": f"now-{_seconds(since)}s"}}})
    if severities:
        filters.append({"terms": {"kibana.alert.severity": severities}})
    if raw is not None:
        filters.append(raw)
    if not filters:
        raise SelectionError("name the alerts to requeue: ids, --rule, --status, --since, --severity or --query")
    return {"bool": {"filter": filters, "must_not": [_claimed_recently(settings)]}}


def backfill_query(settings: Settings, since: timedelta) -> dict[str, Any]:
    """Older alerts never assessed, back to ``since`` ago."""
    return new_alerts(settings, window=since)
