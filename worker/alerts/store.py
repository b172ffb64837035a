"""AlertStore: every Elasticsearch call the pipeline makes, over the official 8.x client.

Writes are partial updates of ``lme.ai.*`` addressed to the concrete backing index of the alert (never
the alias: older backing indices must stay reachable) and conditional on the ``_seq_no`` and
``_primary_term`` we read, so a change made meanwhile (by Kibana or another worker) is never overwritten.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from datetime import timedelta
from typing import Any

from elasticsearch import (
    ApiError,
    AuthorizationException,
    ConflictError,
    Elasticsearch,
    NotFoundError,
    TransportError,
)

from worker.alerts import alert, fields, history
from worker.alerts.errors import StoreError
from worker.assessing import prompt

log = logging.getLogger(__name__)

PIT_KEEP_ALIVE = "2m"
# What a group prompt reads of each member: the extract, the times and who.
MEMBER_SOURCE = sorted({*prompt.SOURCE_PATHS, "@timestamp", "kibana.alert.original_time", "kibana.alert.start",
                        "host.name", "host.hostname", "user.name", "kibana.alert.rule.uuid",
                        "kibana.alert.rule.rule_id", "kibana.alert.rule.version", "kibana.alert.rule.revision"})
# What claiming needs: our fields, tags and severity, and every field of the prompt extract (the poll
# computes each alert's fingerprint once, from this read).
HIT_SOURCE = sorted({
    "kibana.alert.workflow_tags", "kibana.alert.severity", "kibana.alert.risk_score", "lme.ai.*",
    "kibana.alert.rule.rule_id", "kibana.alert.rule.uuid", "kibana.alert.rule.version", "kibana.alert.rule.revision",
    "kibana.alert.rule.threat", *prompt.SOURCE_PATHS,
    # incident groups: when the event started, and the fact card's extra fields
    "@timestamp", "kibana.alert.original_time", "kibana.alert.start", "destination.domain", "process.name",
    "process.parent.name", "file.name",
})



class MappingError(StoreError):
    """Our fields cannot be mapped; writing them would leave them unsearchable."""


@dataclass(frozen=True)
class Doc:
    """An alert as read (search hit or get): where it is, its version, and its ``_source`` (maybe filtered)."""

    index: str
    id: str
    seq_no: int
    primary_term: int
    source: dict[str, Any]


class AlertStore:
    def __init__(self, es: Elasticsearch, index_pattern: str) -> None:
        self.es = es
        self.index_pattern = index_pattern
        self._mapped: set[str] = set()
        self._history_ready = False

    # -- mapping --------------------------------------------------------------------------------
    def backing_indices(self) -> list[str]:
        """Concrete indices behind the pattern (hidden ones included, as Kibana's are)."""
        found = self.es.indices.get_alias(
            index=self.index_pattern, expand_wildcards="open,hidden", ignore_unavailable=True, allow_no_indices=True
        )
        return sorted(found.body)

    def ensure_mappings(self) -> list[str]:
        """Put our mapping on every backing index that lacks part of it; return those indices.

        Cheap when nothing changed: indices already checked by this process are skipped, so only a
        new backing index (after a rollover) costs a mapping read.
        """
        try:
            indices = [i for i in self.backing_indices() if i not in self._mapped]
            if not indices:
                return []
            mappings = self.es.indices.get_mapping(index=",".join(indices), expand_wildcards="open,hidden").body
            updated = []
            for index in indices:
                present = mapped_paths(mappings.get(index, {}).get("mappings", {}))
                if not set(fields.leaf_paths()) <= present:
                    self.es.indices.put_mapping(index=index, **fields.mapping_body())
                    updated.append(index)
                    log.info("mapped lme.ai.* fields on %s", index)
                self._mapped.add(index)
            return updated
        except AuthorizationException as exc:
            raise MappingError(
                f"Elasticsearch refused to read or put the mapping of {self.index_pattern} ({_reason(exc)}). "
                "lme-enrich needs 'view_index_metadata' and 'write' (which covers put-mapping on 8.x) on the "
                "alert backing indices (`lme-enrich setup-credentials` creates such a key); without the mapping "
                "its fields would be unsearchable."
            ) from exc
        except ApiError as exc:
            raise MappingError(f"cannot map lme.ai.* fields on {self.index_pattern}: {_reason(exc)}") from exc

    # -- finding and claiming work ----------------------------------------------------------------
    def search_pages(self, query: dict[str, Any], sort: list[Any], page_size: int, *,
                     source: list[str] | None = None) -> Iterator[list[Doc]]:
        """Every hit of ``query``, page by page, over a point in time so paging sees one consistent view.

        Hits carry the fields claiming needs (``HIT_SOURCE``), or only ``source`` when given.
        """
        try:
            pit = self.es.open_point_in_time(
                index=self.index_pattern, keep_alive=PIT_KEEP_ALIVE, expand_wildcards="open,hidden",
                ignore_unavailable=True,
            )["id"]
        except NotFoundError:
            return
        search_after: list[Any] | None = None
        try:
            while True:
                extra: dict[str, Any] = {"search_after": search_after} if search_after is not None else {}
                response = self.es.search(
                    pit={"id": pit, "keep_alive": PIT_KEEP_ALIVE},
                    query=query,
                    sort=sort,
                    size=page_size,
                    seq_no_primary_term=True,
                    source_includes=HIT_SOURCE if source is None else source,
                    track_total_hits=False,
                    **extra,
                )
                pit = response.get("pit_id", pit)
                raw_hits = response["hits"]["hits"]
                if not raw_hits:
                    return
                yield [
                    Doc(h["_index"], h["_id"], h["_seq_no"], h["_primary_term"], h.get("_source", {}))
                    for h in raw_hits
                ]
                if len(raw_hits) < page_size:
                    return
                search_after = raw_hits[-1]["sort"]
        finally:
            try:
                self.es.close_point_in_time(id=pit)
            except ApiError as exc:  # it expires by itself; not worth failing a poll over
                log.debug("closing point in time failed: %s", exc)

    def _conditional_bulk(self, docs: Sequence[Doc], partials: Sequence[dict[str, Any]]) -> list[dict[str, Any]]:
        """Apply ``partials[i]`` to ``docs[i]`` if it is still at the version read, in one bulk request."""
        operations: list[dict[str, Any]] = []
        for doc, partial in zip(docs, partials, strict=True):
            operations.append({"update": {"_index": doc.index, "_id": doc.id, "if_seq_no": doc.seq_no,
                                          "if_primary_term": doc.primary_term}})
            operations.append({"doc": partial})
        return [item["update"] for item in self.es.bulk(operations=operations)["items"]]

    def claim(self, hits: Sequence[Doc], docs: Sequence[dict[str, Any]]) -> list[bool]:
        """Conditionally apply ``docs[i]`` to ``hits[i]`` in one bulk request; True where it applied.

        A conflict means the alert changed since we saw it (another poller claimed it, or Kibana
        touched it): that alert is skipped now and reconsidered at the next poll.
        """
        if not hits:
            return []
        results = []
        conflicts = []
        for position, (hit, outcome) in enumerate(zip(hits, self._conditional_bulk(hits, docs), strict=True)):
            status = outcome.get("status", 500)
            if status == 409:
                conflicts.append(position)
            elif status >= 300:
                log.warning("claiming alert %s in %s failed: %s", hit.id, hit.index, outcome.get("error"))
            results.append(status < 300)
        # The client retries a bulk whose connection dropped; an update that had applied then conflicts
        # with itself. Our claim id on the alert tells that case apart from a real conflict.
        if conflicts:
            current = self.es.mget(docs=[{"_index": hits[i].index, "_id": hits[i].id,
                                          "_source": ["lme.ai.claim_id"]} for i in conflicts])
            for position, found in zip(conflicts, current["docs"], strict=True):
                ours = alert_claim_id(docs[position])
                results[position] = ours is not None and found.get("found") and \
                    alert_claim_id(found.get("_source", {})) == ours
        return results

    # -- reports --------------------------------------------------------------------------------------
    def count(self, query: dict[str, Any]) -> int:
        response = self.es.count(index=self.index_pattern, query=query, expand_wildcards="open,hidden",
                                 ignore_unavailable=True, allow_no_indices=True)
        return int(response["count"])

    def status_counts(self) -> dict[str, int]:
        """Alerts per ``lme.ai.status``."""
        response = self.es.search(
            index=self.index_pattern, size=0, expand_wildcards="open,hidden", ignore_unavailable=True,
            aggs={"status": {"terms": {"field": fields.field("status"), "size": 10}}},
        )
        buckets = response.get("aggregations", {}).get("status", {}).get("buckets", [])
        return {str(b["key"]): int(b["doc_count"]) for b in buckets}

    def oldest_claim(self, status: str) -> float | None:
        """Epoch seconds of the oldest ``claimed_at`` among alerts in ``status``."""
        response = self.es.search(
            index=self.index_pattern, size=0, expand_wildcards="open,hidden", ignore_unavailable=True,
            query={"term": {fields.field("status"): status}},
            aggs={"oldest": {"min": {"field": fields.field("claimed_at")}}},
        )
        value = response.get("aggregations", {}).get("oldest", {}).get("value")
        return None if value is None else float(value) / 1000

    def history_stats(self, window: timedelta) -> dict[str, Any]:
        """Assessments recorded in the last ``window``: count, failures, mean and 95th percentile duration."""
        try:
            response = self.es.search(
                index=history.ALIAS, size=0, ignore_unavailable=True, track_total_hits=True,
                query={"range": {"@timestamp": {"gte": f"now-{int(window.total_seconds())}s"}}},
                aggs={"failed": {"filter": {"term": {"status": "failed"}}},
                      "mean": {"avg": {"field": "duration_ms"}},
                      "p95": {"percentiles": {"field": "duration_ms", "percents": [95]}}},
            )
        except NotFoundError:
            return {"count": 0, "failed": 0, "mean_ms": None, "p95_ms": None}
        aggs = response.get("aggregations", {})
        p95 = next(iter((aggs.get("p95", {}).get("values") or {}).values()), None)
        mean = aggs.get("mean", {}).get("value")
        return {
            "count": int(response["hits"]["total"]["value"]),
            "failed": int(aggs.get("failed", {}).get("doc_count", 0)),
            "mean_ms": None if mean is None else round(mean, 1),
            "p95_ms": None if p95 is None else round(p95, 1),
        }

    def group_members(self, group_id: str, limit: int) -> list[Doc]:
        """Up to ``limit`` alerts of an incident group, oldest first (as far as search sees them yet)."""
        response = self.es.search(
            index=self.index_pattern, query={"term": {fields.field("group.id"): group_id}}, size=limit,
            sort=[{"@timestamp": {"order": "asc", "unmapped_type": "date"}}, {"_doc": "asc"}],
            source_includes=MEMBER_SOURCE, expand_wildcards="open,hidden", ignore_unavailable=True,
            track_total_hits=False,
        )
        return [Doc(h["_index"], h["_id"], 0, 0, h.get("_source", {})) for h in response["hits"]["hits"]]

    # -- one alert --------------------------------------------------------------------------------
    def get(self, index: str, alert_id: str) -> Doc | None:
        """The alert as it is now (a realtime get), or None if it is gone."""
        try:
            response = self.es.get(index=index, id=alert_id)
        except NotFoundError:
            return None
        return Doc(index, alert_id, response["_seq_no"], response["_primary_term"], response["_source"])

    def update(self, doc: Doc, partial: dict[str, Any]) -> Doc | None:
        """Apply ``partial`` if the alert is still at ``doc``'s version; the new state, or None on conflict."""
        try:
            response = self.es.update(
                index=doc.index, id=doc.id, doc=partial, if_seq_no=doc.seq_no, if_primary_term=doc.primary_term
            )
        except ConflictError:
            return None
        return Doc(doc.index, doc.id, response["_seq_no"], response["_primary_term"], _merged(doc.source, partial))


    def mget(self, addresses: list[tuple[str, str]], *, source: list[str] | None = None) -> list[Doc | None]:
        """Several alerts as they are now (realtime), in the order asked; None for one that is gone.

        ``source``: only these ``_source`` paths (an alert is ~25 KB; most writers need a few fields of it).
        """
        if not addresses:
            return []
        response = self.es.mget(docs=[{"_index": index, "_id": alert_id} for index, alert_id in addresses],
                                source_includes=source)
        return [
            Doc(d["_index"], d["_id"], d["_seq_no"], d["_primary_term"], d["_source"]) if d.get("found") else None
            for d in response["docs"]
        ]

    def update_many(self, docs: list[Doc], partials: list[dict[str, Any]]) -> list[Doc | None]:
        """Conditional partial updates in one bulk; the new state of each, or None where it conflicted."""
        if not docs:
            return []
        return [
            None if outcome.get("status", 500) >= 300
            else Doc(doc.index, doc.id, outcome["_seq_no"], outcome["_primary_term"], _merged(doc.source, partial))
            for doc, partial, outcome in zip(docs, partials, self._conditional_bulk(docs, partials), strict=True)
        ]

    # -- history ------------------------------------------------------------------------------------
    def ensure_history(self) -> None:
        """Our history index (template, first backing index, write alias); once per process."""
        if not self._history_ready:
            try:
                history.ensure_index(self.es)
            except AuthorizationException as exc:
                raise StoreError(
                    f"Elasticsearch refused to set up the history index {history.ALIAS} ({_reason(exc)}); "
                    "lme-enrich needs create_index, write and manage on lme-ai-assessments* (see README)."
                ) from exc
            self._history_ready = True

    def record_history(self, doc: dict[str, Any]) -> None:
        """Append one assessment to the history; a failure here is logged, never fails the assessment."""
        try:
            self.ensure_history()
            self.es.index(index=history.ALIAS, document=doc)
        except (ApiError, StoreError, TransportError) as exc:
            log.warning("could not record assessment of alert %s in %s: %s",
                        doc.get("alert", {}).get("id"), history.ALIAS, exc)


    def record_history_many(self, docs: list[dict[str, Any]]) -> None:
        """Append several assessments in one bulk; failures are logged, never raised."""
        if not docs:
            return
        try:
            self.ensure_history()
            operations: list[dict[str, Any]] = []
            for doc in docs:
                operations += [{"create": {"_index": history.ALIAS}}, doc]
            response = self.es.bulk(operations=operations)
            if response.get("errors"):
                log.warning("some history records were refused by %s", history.ALIAS)
        except (ApiError, StoreError, TransportError) as exc:
            log.warning("could not record %d assessments in %s: %s", len(docs), history.ALIAS, exc)


def alert_claim_id(source: dict[str, Any]) -> str | None:
    value = alert.first(source, fields.field("claim_id"))
    return value if isinstance(value, str) else None


def _merged(source: dict[str, Any], partial: dict[str, Any]) -> dict[str, Any]:
    """``source`` with ``partial`` deep-merged into it, as Elasticsearch merges a partial update."""
    result = dict(source)
    for key, value in partial.items():
        if isinstance(value, dict) and isinstance(result.get(key), dict):
            result[key] = _merged(result[key], value)
        else:
            result[key] = value
    return result


def mapped_paths(mapping: dict[str, Any], prefix: str = "") -> set[str]:
    paths: set[str] = set()
    for name, spec in (mapping.get("properties") or {}).items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            paths |= mapped_paths(spec, path + ".")
        else:
            paths.add(path)
    return paths


def _reason(exc: ApiError) -> str:
    body = exc.body if isinstance(exc.body, dict) else {}
    error = body.get("error")
    if not isinstance(error, dict):
        error = {}
    return f"HTTP {exc.meta.status}: {error.get('type', '')} {error.get('reason', exc.message)}".strip()
