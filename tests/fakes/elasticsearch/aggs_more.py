"""Less common aggregations (multi_terms, rare_terms, percentile_ranks, weighted_avg, top_metrics).

A mixin of `AggRunner`: it relies on the runner's `_field`, `_values`, `_numbers` and `_bucket`.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

from .fieldtypes import FieldDef
from .query import Doc

if TYPE_CHECKING:
    from .aggs import Agg

MORE_BUCKET_TYPES = {"multi_terms", "rare_terms"}
MORE_METRIC_TYPES = {"percentile_ranks", "weighted_avg", "top_metrics"}


class MoreAggs:
    """Aggregation evaluators beyond the core set."""

    def _field(self, agg: Agg) -> FieldDef | None:
        raise NotImplementedError

    def _values(self, agg: Agg, doc: Doc, fd: FieldDef | None) -> list[Any]:
        raise NotImplementedError

    def _numbers(self, agg: Agg, docs: Sequence[Doc]) -> tuple[FieldDef | None, list[float]]:
        raise NotImplementedError

    def _bucket(self, agg: Agg, docs: Sequence[Doc], base: dict[str, Any]) -> dict[str, Any]:
        raise NotImplementedError

    def _probe(self, agg: Agg, params: dict[str, Any]) -> Agg:
        return type(agg)(agg.name, "terms", params, {})

    def _multi_terms(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        probes = [self._probe(agg, t) for t in agg.params.get("terms") or [] if isinstance(t, dict)]
        fds = [self._field(p) for p in probes]
        groups: dict[tuple[Any, ...], list[Doc]] = {}
        for doc in docs:
            combos: list[tuple[Any, ...]] = [()]
            for probe, fd in zip(probes, fds, strict=True):
                values = [_hashable(fd.render(v) if fd is not None else v) for v in self._values(probe, doc, fd)]
                combos = [(*c, v) for c in combos for v in dict.fromkeys(values)]
            for combo in dict.fromkeys(combos):
                groups.setdefault(combo, []).append(doc)
        min_count = int(agg.params.get("min_doc_count", 1))
        keys = sorted(groups, key=lambda k: (-len(groups[k]), [str(v) for v in k]))
        keys = [k for k in keys if len(groups[k]) >= min_count]
        size = int(agg.params.get("size", 10))
        shown = keys[:size]
        buckets = [self._bucket(agg, groups[k], {"key": list(k), "key_as_string": "|".join(_text(v) for v in k)})
                   for k in shown]
        other = sum(len(groups[k]) for k in keys[size:])
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": other, "buckets": buckets}

    def _rare_terms(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        fd = self._field(agg)
        groups: dict[Any, list[Doc]] = {}
        for doc in docs:
            for value in dict.fromkeys(_hashable(v) for v in self._values(agg, doc, fd)):
                groups.setdefault(value, []).append(doc)
        limit = int(agg.params.get("max_doc_count", 1))
        keys = sorted((k for k in groups if len(groups[k]) <= limit), key=lambda k: (len(groups[k]), str(k)))
        return {"buckets": [self._bucket(agg, groups[k], {"key": fd.render(k) if fd else k}) for k in keys]}

    def _percentile_ranks(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        _fd, nums = self._numbers(agg, docs)
        out: dict[str, Any] = {}
        for raw in agg.params.get("values") or []:
            value = float(raw)
            out[str(value)] = (100.0 * sum(1 for n in nums if n <= value) / len(nums)) if nums else None
        if agg.params.get("keyed", True):
            return {"values": out}
        return {"values": [{"key": float(k), "value": v} for k, v in out.items()]}

    def _weighted_avg(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        value_spec = agg.params.get("value") or {}
        weight_spec = agg.params.get("weight") or {}
        value_probe, weight_probe = self._probe(agg, value_spec), self._probe(agg, weight_spec)
        value_fd, weight_fd = self._field(value_probe), self._field(weight_probe)
        total = weights = 0.0
        for doc in docs:
            values = [float(v) for v in self._values(value_probe, doc, value_fd) if isinstance(v, int | float)]
            weight = [float(w) for w in self._values(weight_probe, doc, weight_fd) if isinstance(w, int | float)]
            if values and weight:
                total += sum(values) * weight[0]
                weights += weight[0] * len(values)
        return {"value": total / weights if weights else None}

    def _top_metrics(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        metrics = agg.params.get("metrics") or []
        metric_specs = metrics if isinstance(metrics, list) else [metrics]
        sort = agg.params.get("sort") or {}
        (sort_field, order), = (sort.items() if isinstance(sort, dict) and sort else [("_score", "desc")])
        direction = order.get("order", "asc") if isinstance(order, dict) else str(order)
        sort_probe = self._probe(agg, {"field": sort_field})
        sort_fd = self._field(sort_probe)
        entries = []
        for doc in docs:
            keys = [doc.score] if sort_field == "_score" else self._values(sort_probe, doc, sort_fd)
            if keys:
                entries.append((max(keys) if direction == "desc" else min(keys), doc))
        entries.sort(key=lambda e: e[0], reverse=direction == "desc")
        top = []
        for key, doc in entries[: int(agg.params.get("size", 1))]:
            found: dict[str, Any] = {}
            for spec in metric_specs:
                probe = self._probe(agg, spec)
                fd = self._field(probe)
                values = self._values(probe, doc, fd)
                found[str(spec.get("field"))] = (fd.render(values[0]) if fd else values[0]) if values else None
            top.append({"sort": [key], "metrics": found})
        return {"top": top}


def _hashable(value: Any) -> Any:
    return repr(value) if isinstance(value, dict | list) else value


def _text(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)
