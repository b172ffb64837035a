"""Aggregations over the matching documents' indexed values.

Percentiles are exact (linear interpolation between closest ranks), not ES's t-digest estimate.
"""

from __future__ import annotations

import contextlib
import math
import re
import struct
from collections.abc import Callable, Sequence
from datetime import tzinfo
from typing import Any

from .aggs_more import MORE_BUCKET_TYPES, MORE_METRIC_TYPES, MoreAggs
from .datemath import (
    DateFormat,
    DateParseError,
    add_units,
    from_millis,
    parse_math,
    parse_time_zone,
    to_millis,
    truncate,
)
from .errors import ESError, illegal_argument, parsing_exception
from .fieldpath import values_at
from .fieldtypes import DATE_TYPES, INTEGER_RANGES, KEYWORD_TYPES, NUMERIC_TYPES, FieldDef, MalformedValue
from .pipeline_aggs import PARENT, PIPELINE, apply_parent, sibling
from .query import Doc, Query, ShardContext, ShardFailure, parse_query
from .sorting import text_fielddata_error

BUCKET_TYPES = {"terms", "date_histogram", "histogram", "filter", "filters", "range", "missing", "global",
                "date_range", "composite", "nested", "reverse_nested"}
METRIC_TYPES = {"value_count", "avg", "min", "max", "sum", "stats", "percentiles", "cardinality", "top_hits",
                "extended_stats"}
ALL_TYPES = BUCKET_TYPES | METRIC_TYPES | PIPELINE | MORE_BUCKET_TYPES | MORE_METRIC_TYPES
NUMERIC_ONLY = {"avg", "sum", "stats", "percentiles", "extended_stats"}
CALENDAR = {"1m": "m", "minute": "m", "1h": "h", "hour": "h", "1d": "d", "day": "d", "1w": "w", "week": "w",
            "1M": "M", "month": "M", "1q": "q", "quarter": "q", "1y": "y", "year": "y"}
VALUE_TYPES = {"string": "keyword", "long": "long", "double": "double", "number": "double", "numeric": "double",
               "boolean": "boolean", "date": "date", "ip": "ip"}
_FIXED_UNITS = {"ms": 1, "s": 1000, "m": 60_000, "h": 3_600_000, "d": 86_400_000}


class Agg:
    """One parsed aggregation with its sub-aggregations."""

    def __init__(self, name: str, kind: str, params: dict[str, Any], subs: dict[str, Agg],
                 meta: Any = None) -> None:
        self.name, self.kind, self.params, self.subs, self.meta = name, kind, params, subs, meta
        self.filter: Query | None = None
        self.filters: dict[str, Query] | list[Query] | None = None
        if kind == "filter":
            self.filter = parse_query(params)
        if kind == "filters":
            raw = params.get("filters")
            if isinstance(raw, dict):
                self.filters = {k: parse_query(v) for k, v in raw.items()}
            elif isinstance(raw, list):
                self.filters = [parse_query(v) for v in raw]
            else:
                raise parsing_exception("[filters] cannot be empty.")
        if kind == "date_histogram":
            self._check_interval()
        if kind in ("terms", "composite") and "size" in params:
            try:
                size = int(params["size"])
            except (TypeError, ValueError) as exc:
                raise ESError(400, "x_content_parse_exception", f"[1:1] [{kind}] failed to parse field [size]") from exc
            if size <= 0:
                raise illegal_argument(f"[size] must be greater than 0. Found [{size}] in [{name}]")
        if kind in ("range", "date_range"):
            ranges = params.get("ranges")
            if not isinstance(ranges, list) or not all(isinstance(r, dict) for r in ranges):
                raise ESError(400, "x_content_parse_exception", f"[1:1] [{kind}] failed to parse field [ranges]")
            if kind == "range":
                for r in ranges:
                    for side in ("from", "to"):
                        try:
                            if r.get(side) is not None:
                                float(r[side])
                        except (TypeError, ValueError) as exc:
                            raise ESError(400, "x_content_parse_exception",
                                          "[1:1] [range] failed to parse field [ranges]") from exc

    def _check_interval(self) -> None:
        cal, fixed = self.params.get("calendar_interval"), self.params.get("fixed_interval")
        if cal is None and fixed is None:
            if "interval" in self.params:
                raise ESError(400, "x_content_parse_exception",
                              "[1:1] [date_histogram] unknown field [interval]")
            raise illegal_argument("Required one of fields [fixed_interval, calendar_interval], but none were "
                                   "specified.")
        if cal is not None and fixed is not None:
            raise illegal_argument("Cannot use [fixed_interval] with [calendar_interval] configuration option.")
        if cal is not None and str(cal) not in CALENDAR:
            raise illegal_argument(f"The supplied interval [{cal}] could not be parsed as a calendar interval.")
        if fixed is not None and _fixed_ms(str(fixed)) is None:
            raise ESError(400, "illegal_argument_exception",
                          f"failed to parse setting [date_histogram.fixedInterval] with value [{fixed}] as a time "
                          "value: unit is missing or unrecognized")


def _fixed_ms(text: str) -> int | None:
    m = re.fullmatch(r"(\d+)(ms|s|m|h|d)", text)
    return int(m.group(1)) * _FIXED_UNITS[m.group(2)] if m else None


def parse_aggs(spec: Any) -> dict[str, Agg]:
    if not isinstance(spec, dict):
        raise parsing_exception("Aggregation definition must be an object")
    out: dict[str, Agg] = {}
    for name, body in spec.items():
        if not isinstance(body, dict):
            raise parsing_exception(f"Expected [START_OBJECT] under [{name}], but got a [VALUE] in [{name}]")
        kinds = [k for k in body if k not in ("aggs", "aggregations", "meta")]
        if not kinds:
            raise parsing_exception(f"Missing definition for aggregation [{name}]")
        if len(kinds) > 1:
            raise parsing_exception(
                f"Found two aggregation type definitions in [{name}]: [{kinds[0]}] and [{kinds[1]}]"
            )
        kind = kinds[0]
        if kind not in ALL_TYPES:
            raise ESError(400, "parsing_exception", f"Unknown aggregation type [{kind}]", line=1, col=1,
                          caused_by={"type": "named_object_not_found_exception",
                                     "reason": f"[1:1] unknown field [{kind}]"})
        params = body[kind]
        if not isinstance(params, dict):
            raise parsing_exception(f"Expected [START_OBJECT] under [{kind}], but got a [VALUE] in [{name}]")
        sub_spec = body.get("aggs", body.get("aggregations"))
        subs = parse_aggs(sub_spec) if sub_spec is not None else {}
        if (kind in METRIC_TYPES or kind in PIPELINE or kind in MORE_METRIC_TYPES) and subs:
            raise ESError(400, "aggregation_initialization_exception",
                          f"Aggregator [{name}] of type [{kind}] cannot accept sub-aggregations")
        out[name] = Agg(name, kind, params, subs, body.get("meta"))
    return out


class AggRunner(MoreAggs):
    """Evaluates parsed aggregations over documents from several shards (indices)."""

    def __init__(
        self,
        ctxs: dict[str, ShardContext],
        top_hits: Callable[[dict[str, Any], Sequence[Doc]], dict[str, Any]] | None = None,
    ) -> None:
        self.ctxs = ctxs
        self.top_hits = top_hits
        self.parents: dict[int, Doc] = {}  # nested pseudo-document -> its root document

    # -- validation per shard -------------------------------------------------------------------
    def check(self, aggs: dict[str, Agg], ctx: ShardContext) -> None:
        for agg in aggs.values():
            if agg.kind == "nested":
                path = agg.params.get("path")
                obj = ctx.mapping.objects().get(str(path))
                if obj is None:
                    raise ShardFailure({"type": "illegal_argument_exception",
                                        "reason": f"[nested] failed to find nested object under path [{path}]"})
                if obj.get("type") != "nested":
                    raise ShardFailure({"type": "aggregation_execution_exception",
                                        "reason": f"[nested] nested path [{path}] is not nested"})
            name = agg.params.get("field")
            if isinstance(name, str):
                fd = ctx.field(name)
                if fd is not None:
                    if fd.is_text and not fd.params.get("fielddata"):
                        raise text_fielddata_error(fd.path)
                    if agg.kind in NUMERIC_ONLY and fd.type not in NUMERIC_TYPES | DATE_TYPES | {"boolean"}:
                        raise ShardFailure({"type": "illegal_argument_exception",
                                            "reason": f"Field [{name}] of type [{fd.type}] is not supported for "
                                                      f"aggregation [{agg.kind}]"})
                    regex = [p for p in ("include", "exclude") if isinstance(agg.params.get(p), str)]
                    if agg.kind == "terms" and regex and fd.type not in KEYWORD_TYPES:
                        raise ShardFailure({
                            "type": "aggregation_execution_exception",
                            "reason": f"Aggregation [{agg.name}] cannot support regular expression style "
                                      "include/exclude settings as they can only be applied to string fields. Use "
                                      "an array of values for include/exclude clauses"})
                    if agg.kind == "date_histogram" and fd.type not in DATE_TYPES | NUMERIC_TYPES:
                        raise ShardFailure({"type": "illegal_argument_exception",
                                            "reason": f"Field [{name}] of type [{fd.type}] is not supported for "
                                                      "aggregation [date_histogram]"})
            self.check(agg.subs, ctx)

    # -- evaluation ----------------------------------------------------------------------------
    def run(self, aggs: dict[str, Agg], docs: Sequence[Doc]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for name, agg in aggs.items():
            if agg.kind in PIPELINE:
                continue
            result = getattr(self, "_" + agg.kind)(agg, docs)
            if agg.meta is not None:
                result = {"meta": agg.meta, **result}
            out[name] = result
        for name, agg in aggs.items():
            if agg.kind in PIPELINE and agg.kind not in PARENT:
                out[name] = sibling(agg.kind, agg.params, out)
        return out

    @staticmethod
    def _parents(agg: Agg, buckets: list[dict[str, Any]]) -> list[dict[str, Any]]:
        pipelines = {n: (a.kind, a.params) for n, a in agg.subs.items() if a.kind in PARENT}
        return apply_parent(pipelines, buckets) if pipelines else buckets

    def field_of(self, agg: Agg) -> FieldDef | None:
        return self._field(agg)

    def _field(self, agg: Agg) -> FieldDef | None:
        name = agg.params.get("field")
        if not isinstance(name, str):
            return None
        for ctx in self.ctxs.values():
            fd = ctx.field(name)
            if fd is not None:
                return fd
        value_type = agg.params.get("value_type")
        if isinstance(value_type, str) and value_type in VALUE_TYPES:
            # An unmapped field with `value_type` behaves as that type (for `missing`).
            return FieldDef(name, VALUE_TYPES[value_type])
        return None

    def _values(self, agg: Agg, doc: Doc, fd: FieldDef | None) -> list[Any]:
        if fd is None:
            vals: list[Any] = []
        elif fd.path == "_index":
            vals = [doc.stored.index]
        elif fd.path == "_id":
            vals = [doc.stored.id]
        else:
            ctx = self.ctxs.get(doc.stored.index)
            local = ctx.field(fd.path) if ctx is not None else None
            vals = list(doc.fields.get(local.path, [])) if local is not None else []
            if local is not None and local.type == "date_nanos":
                vals = [local.to_millis(v) for v in vals]
        if not vals and "missing" in agg.params:
            missing = agg.params["missing"]
            if fd is not None:
                with contextlib.suppress(MalformedValue):
                    missing = fd.coerce(missing)
            vals = [missing]
        return vals

    def _numbers(self, agg: Agg, docs: Sequence[Doc]) -> tuple[FieldDef | None, list[float]]:
        fd = self._field(agg)
        nums: list[float] = []
        for doc in docs:
            for v in self._values(agg, doc, fd):
                if isinstance(v, bool | int | float):
                    nums.append(float(v))
        return fd, nums

    def _with_string(self, fd: FieldDef | None, agg: Agg, value: float | None) -> dict[str, Any]:
        out: dict[str, Any] = {"value": value}
        if value is not None and fd is not None and fd.type in DATE_TYPES and math.isfinite(value):
            out["value_as_string"] = _date_fmt(agg, fd).format(int(value))
        return out

    # metrics
    def _value_count(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        fd = self._field(agg)
        return {"value": sum(len(self._values(agg, d, fd)) for d in docs)}

    def _avg(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        fd, nums = self._numbers(agg, docs)
        return self._with_string(fd, agg, sum(nums) / len(nums) if nums else None)

    def _sum(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        fd, nums = self._numbers(agg, docs)
        return self._with_string(fd, agg, float(sum(nums)))

    def _min(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        fd, nums = self._numbers(agg, docs)
        return self._with_string(fd, agg, min(nums) if nums else None)

    def _max(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        fd, nums = self._numbers(agg, docs)
        return self._with_string(fd, agg, max(nums) if nums else None)

    def _stats(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        _fd, nums = self._numbers(agg, docs)
        if not nums:
            return {"count": 0, "min": None, "max": None, "avg": None, "sum": 0.0}
        return {"count": len(nums), "min": min(nums), "max": max(nums), "avg": sum(nums) / len(nums),
                "sum": float(sum(nums))}

    def _extended_stats(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        out = self._stats(agg, docs)
        _fd, nums = self._numbers(agg, docs)
        if nums:
            mean = sum(nums) / len(nums)
            var = sum((x - mean) ** 2 for x in nums) / len(nums)
            out.update({"sum_of_squares": sum(x * x for x in nums), "variance": var,
                        "std_deviation": math.sqrt(var)})
        else:
            out.update({"sum_of_squares": None, "variance": None, "std_deviation": None})
        return out

    def _cardinality(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        fd = self._field(agg)
        seen = {repr(v) for d in docs for v in self._values(agg, d, fd)}
        return {"value": len(seen)}

    def _percentiles(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        fd, nums = self._numbers(agg, docs)
        percents = agg.params.get("percents", [1, 5, 25, 50, 75, 95, 99])
        nums.sort()
        keyed = agg.params.get("keyed", True)
        values: list[tuple[float, float | None]] = [(float(p), _percentile(nums, float(p))) for p in percents]
        is_date = fd is not None and fd.type in DATE_TYPES
        if keyed:
            out: dict[str, Any] = {}
            for p, v in values:
                out[str(p)] = v
                if is_date and v is not None and fd is not None:
                    out[f"{p}_as_string"] = _date_fmt(agg, fd).format(int(v))
            return {"values": out}
        return {"values": [{"key": p, "value": v} for p, v in values]}

    def _top_hits(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        if self.top_hits is not None:
            return self.top_hits(agg.params, docs)
        size = int(agg.params.get("size", 3))
        hits = [{"_index": d.stored.index, "_id": d.stored.id, "_score": d.score, "_source": d.stored.source}
                for d in list(docs)[:size]]
        return {"hits": {"total": {"value": len(docs), "relation": "eq"}, "max_score": None, "hits": hits}}

    def _composite(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        sources = agg.params.get("sources") or []
        size = int(agg.params.get("size", 10))
        specs: list[tuple[str, str, dict[str, Any]]] = []
        for item in sources:
            (name, spec), = item.items()
            (kind, params), = spec.items()
            specs.append((name, kind, params))
        groups: dict[tuple[Any, ...], list[Doc]] = {}
        for doc in docs:
            combos: list[tuple[Any, ...]] = [()]
            for _name, kind, params in specs:
                keys = self._source_keys(kind, params, doc)
                combos = [(*c, k) for c in combos for k in keys]
            for combo in dict.fromkeys(combos):
                groups.setdefault(combo, []).append(doc)
        orders = [str(p.get("order", "asc")) for _n, _k, p in specs]
        ordered = sorted(groups, key=lambda key: [_Directed(_NullFirst(v), o == "desc") for v, o in zip(key, orders,
                                                                                                        strict=True)])
        after = agg.params.get("after")
        if isinstance(after, dict):
            after_key = tuple(self._after_value(kind, params, after.get(name)) for name, kind, params in specs)
            ordered = [k for k in ordered if _composite_after(k, after_key, orders)]
        shown = ordered[:size]
        buckets = []
        for key in shown:
            rendered = {name: self._render_source_key(kind, params, v)
                        for (name, kind, params), v in zip(specs, key, strict=True)}
            buckets.append(self._bucket(agg, groups[key], {"key": rendered}))
        out: dict[str, Any] = {}
        if buckets:
            out["after_key"] = buckets[-1]["key"]
        out["buckets"] = buckets
        return out

    def _source_keys(self, kind: str, params: dict[str, Any], doc: Doc) -> list[Any]:
        probe = Agg("source", "terms", {k: v for k, v in params.items() if k != "missing"}, {})
        fd = self._field(probe)
        values = [_hashable(v) for v in self._values(probe, doc, fd)]
        if fd is not None and fd.type == "boolean":
            values = [bool(v) for v in values]
        if kind == "histogram":
            interval = float(params.get("interval", 1))
            values = [math.floor(float(v) / interval) * interval for v in values if isinstance(v, int | float)]
        elif kind == "date_histogram":
            tz = parse_time_zone(params.get("time_zone"))
            cal = params.get("calendar_interval")
            fixed = _fixed_ms(str(params.get("fixed_interval", "1d")))
            if cal is not None and str(cal) in CALENDAR:
                unit = CALENDAR[str(cal)]
                values = [to_millis(truncate(from_millis(int(v), tz), unit)) for v in values]
            elif fixed:
                values = [int(v) // fixed * fixed for v in values]
        values = list(dict.fromkeys(values))
        if not values:
            return [None] if params.get("missing_bucket") else []
        return values

    def _after_value(self, kind: str, params: dict[str, Any], value: Any) -> Any:
        if value is None or kind == "histogram":
            return value
        fd = self._field(Agg("source", "terms", params, {}))
        if fd is None:
            return value
        if fd.type in DATE_TYPES and isinstance(value, str):
            fmt = DateFormat(params["format"]) if params.get("format") else fd.date_format or DateFormat()
            try:
                return fmt.parse(value)
            except DateParseError:
                return value
        if fd.type == "boolean":
            return value in (True, "true", 1)
        return value

    def _render_source_key(self, kind: str, params: dict[str, Any], value: Any) -> Any:
        if value is None:
            return None
        fd = self._field(Agg("source", "terms", params, {}))
        if isinstance(value, bool):
            return value
        if params.get("format") and (kind == "date_histogram" or (fd is not None and fd.type in DATE_TYPES)):
            return DateFormat(str(params["format"])).format(int(value))
        return value

    # buckets
    def _bucket(self, agg: Agg, docs: Sequence[Doc], base: dict[str, Any]) -> dict[str, Any]:
        base["doc_count"] = len(docs)
        base.update(self.run(agg.subs, docs))
        return base

    def _nested(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        path = str(agg.params.get("path"))
        children: list[Doc] = []
        for doc in docs:
            ctx = self.ctxs.get(doc.stored.index)
            if ctx is None:
                continue
            for obj in values_at(doc.stored.source, path):
                if not isinstance(obj, dict):
                    continue
                wrapped: dict[str, Any] = obj
                for part in reversed(path.split(".")):
                    wrapped = {part: wrapped}
                child = Doc(doc.stored, ctx.mapping.index_document(wrapped, nested_scope=path), doc.shard, doc.score)
                self.parents[id(child)] = self.parents.get(id(doc), doc)
                children.append(child)
        return self._bucket(agg, children, {})

    def _reverse_nested(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        roots = {id(p): p for p in (self.parents.get(id(d), d) for d in docs)}
        return self._bucket(agg, list(roots.values()), {})

    def _filter(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        assert agg.filter is not None
        return self._bucket(agg, self._filtered(agg.filter, docs), {})

    def _filtered(self, query: Query, docs: Sequence[Doc]) -> list[Doc]:
        matchers = {name: query.compile(ctx) for name, ctx in self.ctxs.items()}
        return [d for d in docs if matchers[d.stored.index](d) is not None]

    def _filters(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        assert agg.filters is not None
        queries = agg.filters.values() if isinstance(agg.filters, dict) else agg.filters
        matched = [self._filtered(q, docs) for q in queries]
        other_key = agg.params.get("other_bucket_key")
        other: list[Doc] | None = None
        if agg.params.get("other_bucket") or other_key is not None:
            hit = {id(d) for group in matched for d in group}
            other = [d for d in docs if id(d) not in hit]
        if isinstance(agg.filters, dict):
            keyed = {k: self._bucket(agg, group, {}) for k, group in zip(agg.filters, matched, strict=True)}
            if other is not None:
                keyed[str(other_key or "_other_")] = self._bucket(agg, other, {})
            return {"buckets": keyed}
        buckets = [self._bucket(agg, group, {}) for group in matched]
        if other is not None:
            buckets.append(self._bucket(agg, other, {}))
        return {"buckets": buckets}

    def _global(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        everything = [d for ctx in self.ctxs.values() for d in ctx.docs]
        return self._bucket(agg, everything, {})

    def _missing(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        fd = self._field(agg)
        params = {k: v for k, v in agg.params.items() if k != "missing"}
        probe = Agg(agg.name, agg.kind, params, {})
        return self._bucket(agg, [d for d in docs if not self._values(probe, d, fd)], {})

    def _terms(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        fd = self._field(agg)
        size = int(agg.params.get("size", 10))
        min_count = int(agg.params.get("min_doc_count", 1))
        groups: dict[Any, list[Doc]] = {}
        for doc in docs:
            for value in dict.fromkeys(_hashable(v) for v in self._values(agg, doc, fd)):
                groups.setdefault(value, []).append(doc)
        if min_count == 0 and fd is not None:
            for ctx in self.ctxs.values():
                for doc in ctx.docs:
                    for value in self._values(agg, doc, fd):
                        groups.setdefault(_hashable(value), [])
        include, exclude = agg.params.get("include"), agg.params.get("exclude")
        keys = [k for k in groups if _term_allowed(k, include, exclude, fd)]
        if any(isinstance(k, float) for k in keys):
            # Longs and doubles from different indices merge as doubles, as in ES.
            keys = [float(k) if isinstance(k, int) and not isinstance(k, bool) else k for k in keys]
            groups = {(float(k) if isinstance(k, int) and not isinstance(k, bool) else k): v
                      for k, v in groups.items()}
            fd = FieldDef(fd.path, "double") if fd is not None and fd.type in INTEGER_RANGES else fd
        buckets = [self._bucket(agg, groups[k], self._term_key(fd, agg, k)) for k in keys]
        buckets = [b for b in buckets if b["doc_count"] >= min_count]
        buckets.sort(key=_order_key(agg.params.get("order"), fd))
        total = sum(len(groups[k]) for k in keys)
        shown = buckets[:size]
        other = total - sum(b["doc_count"] for b in shown)
        if agg.params.get("show_term_doc_count_error"):
            for bucket in shown:
                bucket["doc_count_error_upper_bound"] = 0
        return {"doc_count_error_upper_bound": 0, "sum_other_doc_count": other,
                "buckets": self._parents(agg, shown)}

    def _term_key(self, fd: FieldDef | None, agg: Agg, key: Any) -> dict[str, Any]:
        if fd is not None and fd.type == "boolean":
            return {"key": 1 if key else 0, "key_as_string": "true" if key else "false"}
        if fd is not None and fd.type in DATE_TYPES and isinstance(key, int):
            return {"key": key, "key_as_string": _date_fmt(agg, fd).format(key)}
        if fd is not None and fd.type in INTEGER_RANGES and isinstance(key, float) and key.is_integer():
            return {"key": int(key)}
        return {"key": key}

    def _histogram(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        interval = float(agg.params.get("interval", 0))
        if interval <= 0:
            raise illegal_argument("[interval] must be >0 for histogram aggregation [" + agg.name + "]")
        offset = float(agg.params.get("offset", 0))
        fd, _ = self._numbers(agg, [])

        def key_of(v: float) -> float:
            return math.floor((v - offset) / interval) * interval + offset

        groups: dict[float, list[Doc]] = {}
        for doc in docs:
            for k in dict.fromkeys(key_of(float(v)) for v in self._values(agg, doc, fd)
                                   if isinstance(v, int | float)):
                groups.setdefault(k, []).append(doc)
        min_count = int(agg.params.get("min_doc_count", 0))
        keys = sorted(groups)
        bounds = agg.params.get("extended_bounds")
        if min_count == 0:
            lo = keys[0] if keys else None
            hi = keys[-1] if keys else None
            if isinstance(bounds, dict):
                if bounds.get("min") is not None:
                    b = key_of(float(bounds["min"]))
                    lo = b if lo is None else min(lo, b)
                if bounds.get("max") is not None:
                    b = key_of(float(bounds["max"]))
                    hi = b if hi is None else max(hi, b)
            if lo is not None and hi is not None:
                _check_bucket_count((hi - lo) / interval + 1)
                keys, k = [], lo
                while k <= hi + interval / 1e9:
                    keys.append(k)
                    k = key_of(k + interval)
        buckets = [self._bucket(agg, groups.get(k, []), {"key": k}) for k in keys]
        buckets = [b for b in buckets if b["doc_count"] >= min_count]
        return _keyed(agg, self._parents(agg, buckets))

    def _date_histogram(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        fd = self._field(agg)
        tz = parse_time_zone(agg.params.get("time_zone"))
        cal = agg.params.get("calendar_interval")
        fixed = _fixed_ms(str(agg.params["fixed_interval"])) if cal is None else None
        offset = _offset_ms(agg.params.get("offset"))
        unit = CALENDAR[str(cal)] if cal is not None else None

        def key_of(ms: int) -> int:
            if unit is not None:
                return to_millis(truncate(from_millis(ms - offset, tz), unit)) + offset
            assert fixed is not None
            local = ms + _tz_offset_ms(ms, tz) - offset
            return local // fixed * fixed - _tz_offset_ms(ms, tz) + offset

        def next_key(k: int) -> int:
            if unit is not None:
                return to_millis(add_units(from_millis(k - offset, tz), unit, 1)) + offset
            assert fixed is not None
            return k + fixed

        groups: dict[int, list[Doc]] = {}
        for doc in docs:
            for k in dict.fromkeys(key_of(int(v)) for v in self._values(agg, doc, fd)
                                   if isinstance(v, int | float) and not isinstance(v, bool)):
                groups.setdefault(k, []).append(doc)
        min_count = int(agg.params.get("min_doc_count", 0))
        keys = sorted(groups)
        if min_count == 0:
            keys = self._fill(agg, keys, key_of, next_key, fd)
        fmt = _date_fmt(agg, fd)
        hard = agg.params.get("hard_bounds")
        if isinstance(hard, dict):
            now = next(iter(self.ctxs.values())).now_ms if self.ctxs else 0
            try:
                lo = parse_math(hard["min"], fmt, now) if hard.get("min") is not None else None
                hi = parse_math(hard["max"], fmt, now) if hard.get("max") is not None else None
            except DateParseError as exc:
                raise ESError(400, "parse_exception", str(exc)) from exc
            keys = [k for k in keys if (lo is None or next_key(k) > lo) and (hi is None or k <= hi)]
        buckets = [
            self._bucket(agg, groups.get(k, []), {"key_as_string": fmt.format(k, tz), "key": k}) for k in keys
        ]
        buckets = [b for b in buckets if b["doc_count"] >= min_count]
        order = agg.params.get("order")
        if isinstance(order, dict) and order.get("_key") == "desc":
            buckets.reverse()
        elif isinstance(order, dict) and "_count" in order:
            buckets.sort(key=lambda b: (b["doc_count"] * (-1 if order["_count"] == "desc" else 1), b["key"]))
        return _keyed(agg, self._parents(agg, buckets), key_field="key_as_string")

    def _fill(self, agg: Agg, keys: list[int], key_of: Callable[[int], int], next_key: Callable[[int], int],
              fd: FieldDef | None) -> list[int]:
        lo = keys[0] if keys else None
        hi = keys[-1] if keys else None
        bounds = agg.params.get("extended_bounds")
        if isinstance(bounds, dict):
            fmt = _date_fmt(agg, fd)
            ctx = next(iter(self.ctxs.values()), None)
            now = ctx.now_ms if ctx is not None else 0
            for side in ("min", "max"):
                if bounds.get(side) is None:
                    continue
                b = key_of(parse_math(bounds[side], fmt, now))
                if side == "min":
                    lo = b if lo is None else min(lo, b)
                else:
                    hi = b if hi is None else max(hi, b)
        if lo is None or hi is None:
            return keys
        out: list[int] = []
        k = lo
        while k <= hi:
            out.append(k)
            _check_bucket_count(len(out))
            k = next_key(k)
        return out

    def _range(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        fd, _ = self._numbers(agg, [])
        buckets = []
        for r in agg.params.get("ranges", []):
            lo, hi = r.get("from"), r.get("to")
            lo_f = float(lo) if lo is not None else None
            hi_f = float(hi) if hi is not None else None
            key = r.get("key") or f"{'*' if lo_f is None else lo_f}-{'*' if hi_f is None else hi_f}"

            def inside(v: Any, lo_f: float | None = lo_f, hi_f: float | None = hi_f) -> bool:
                return isinstance(v, int | float) and (lo_f is None or v >= lo_f) and (hi_f is None or v < hi_f)

            sel = [d for d in docs if any(inside(v) for v in self._values(agg, d, fd))]
            base: dict[str, Any] = {"key": key}
            if lo_f is not None:
                base["from"] = lo_f
            if hi_f is not None:
                base["to"] = hi_f
            buckets.append(self._bucket(agg, sel, base))
        return _keyed(agg, buckets)

    def _date_range(self, agg: Agg, docs: Sequence[Doc]) -> dict[str, Any]:
        fd = self._field(agg)
        fmt = _date_fmt(agg, fd)
        ctx = next(iter(self.ctxs.values()), None)
        now = ctx.now_ms if ctx is not None else 0
        buckets = []
        for r in agg.params.get("ranges", []):
            try:
                lo = parse_math(r["from"], fmt, now) if r.get("from") is not None else None
                hi = parse_math(r["to"], fmt, now) if r.get("to") is not None else None
            except DateParseError as exc:
                raise ESError(400, "parse_exception", str(exc)) from exc
            key = r.get("key") or f"{'*' if lo is None else fmt.format(lo)}-{'*' if hi is None else fmt.format(hi)}"

            def inside(v: Any, lo: int | None = lo, hi: int | None = hi) -> bool:
                return isinstance(v, int) and (lo is None or v >= lo) and (hi is None or v < hi)

            sel = [d for d in docs if any(inside(v) for v in self._values(agg, d, fd))]
            base: dict[str, Any] = {"key": key}
            if lo is not None:
                base.update({"from": float(lo), "from_as_string": fmt.format(lo)})
            if hi is not None:
                base.update({"to": float(hi), "to_as_string": fmt.format(hi)})
            buckets.append(self._bucket(agg, sel, base))
        return _keyed(agg, buckets)


MAX_BUCKETS = 65536


def _check_bucket_count(count: float) -> None:
    if count > MAX_BUCKETS:
        raise ESError(400, "too_many_buckets_exception",
                      f"Trying to create too many buckets. Must be less than or equal to: [{MAX_BUCKETS}] but was "
                      f"[{int(count)}]. This limit can be set by changing the [search.max_buckets] cluster level "
                      "setting.", max_buckets=MAX_BUCKETS)


def _keyed(agg: Agg, buckets: list[dict[str, Any]], key_field: str = "key") -> dict[str, Any]:
    if agg.params.get("keyed"):
        return {"buckets": {str(b[key_field]): b for b in buckets}}
    return {"buckets": buckets}


def _offset_ms(value: Any) -> int:
    if value is None:
        return 0
    text = str(value)
    sign = -1 if text.startswith("-") else 1
    ms = _fixed_ms(text.lstrip("+-"))
    return sign * (ms or 0)


def _tz_offset_ms(ms: int, tz: tzinfo) -> int:
    off = from_millis(ms, tz).utcoffset()
    return int(off.total_seconds() * 1000) if off else 0


def _date_fmt(agg: Agg, fd: FieldDef | None) -> DateFormat:
    fmt = agg.params.get("format")
    if fmt:
        return DateFormat(str(fmt))
    if fd is not None and fd.date_format is not None:
        return fd.date_format
    return DateFormat()


def _hashable(value: Any) -> Any:
    return value if not isinstance(value, dict | list) else repr(value)


def _percentile(sorted_nums: list[float], pct: float) -> float | None:
    if not sorted_nums:
        return None
    if len(sorted_nums) == 1:
        return sorted_nums[0]
    rank = pct / 100 * (len(sorted_nums) - 1)
    lo = math.floor(rank)
    hi = min(lo + 1, len(sorted_nums) - 1)
    return sorted_nums[lo] + (sorted_nums[hi] - sorted_nums[lo]) * (rank - lo)


def _term_allowed(key: Any, include: Any, exclude: Any, fd: FieldDef | None) -> bool:
    text = str(key)
    if isinstance(include, dict):
        partitions = int(include.get("num_partitions", 1))
        if _partition_hash(key) % partitions != int(include.get("partition", 0)):
            return False
    if isinstance(include, str) and not re.fullmatch(include, text):
        return False
    if isinstance(include, list) and key not in _coerce_all(include, fd):
        return False
    if isinstance(exclude, str) and re.fullmatch(exclude, text):
        return False
    return not (isinstance(exclude, list) and key in _coerce_all(exclude, fd))


def _coerce_all(values: list[Any], fd: FieldDef | None) -> list[Any]:
    out: list[Any] = []
    for v in values:
        try:
            out.append(fd.coerce(v) if fd is not None else v)
        except MalformedValue:
            continue
    return out


_HASH_PARTITIONING_SEED = 31


def _partition_hash(key: Any) -> int:
    """The hash ES partitions terms with: murmur3 (seed 31) of strings, HPPC's mix64 of numbers."""
    if isinstance(key, int | float) and not isinstance(key, bool):
        bits = int(key) if isinstance(key, int) else struct.unpack(">q", struct.pack(">d", key))[0]
        return _mix64(bits)
    return _murmur3_32(str(key).encode(), _HASH_PARTITIONING_SEED)


def _mix64(value: int) -> int:
    mask = (1 << 64) - 1
    z = value & mask
    z = ((z ^ (z >> 32)) * 0x4CD6944C5CC20B6D) & mask
    z = ((z ^ (z >> 29)) * 0xFC12C5B19D3259E9) & mask
    z ^= z >> 32
    return z - (1 << 64) if z >> 63 else z


def _murmur3_32(data: bytes, seed: int) -> int:
    c1, c2, mask = 0xCC9E2D51, 0x1B873593, 0xFFFFFFFF

    def scramble(k: int) -> int:
        k = (k * c1) & mask
        k = ((k << 15) | (k >> 17)) & mask
        return (k * c2) & mask

    h = seed & mask
    body = len(data) // 4 * 4
    for i in range(0, body, 4):
        h ^= scramble(int.from_bytes(data[i:i + 4], "little"))
        h = ((h << 13) | (h >> 19)) & mask
        h = (h * 5 + 0xE6546B64) & mask
    tail = data[body:]
    if tail:
        h ^= scramble(int.from_bytes(tail, "little"))
    h ^= len(data)
    h ^= h >> 16
    h = (h * 0x85EBCA6B) & mask
    h ^= h >> 13
    h = (h * 0xC2B2AE35) & mask
    h ^= h >> 16
    return h - (1 << 32) if h & 0x80000000 else h


def _order_key(order: Any, fd: FieldDef | None) -> Callable[[dict[str, Any]], Any]:
    specs: list[tuple[str, str]] = []
    for item in order if isinstance(order, list) else ([order] if order else []):
        if isinstance(item, dict):
            specs.extend((k, str(v)) for k, v in item.items())
    if not specs:
        specs = [("_count", "desc")]
    if not any(k in ("_key", "_term") for k, _ in specs):
        specs.append(("_key", "asc"))

    def key(bucket: dict[str, Any]) -> Any:
        parts: list[Any] = []
        for name, direction in specs:
            if name in ("_key", "_term"):
                value: Any = bucket["key"]
            elif name == "_count":
                value = bucket["doc_count"]
            else:
                agg_name, _, metric = name.partition(".")
                sub = bucket.get(agg_name, {})
                value = sub.get(metric or "value", sub.get("doc_count")) if isinstance(sub, dict) else None
                if value is None:
                    value = -math.inf if direction == "desc" else math.inf
            parts.append(_Directed(value, direction == "desc"))
        return parts

    del fd
    return key


class _NullFirst:
    """Composite keys sort `null` (missing_bucket) before any value."""

    def __init__(self, value: Any) -> None:
        self.value = value

    def __lt__(self, other: _NullFirst) -> bool:
        if self.value is None or other.value is None:
            return self.value is None and other.value is not None
        try:
            return bool(self.value < other.value)
        except TypeError:
            return str(self.value) < str(other.value)

    def __gt__(self, other: _NullFirst) -> bool:
        return other < self

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _NullFirst) and self.value == other.value

    __hash__ = None  # type: ignore[assignment]


def _composite_after(key: tuple[Any, ...], after: tuple[Any, ...], orders: list[str]) -> bool:
    for v, a, order in zip(key, after, orders, strict=False):
        x, y = _NullFirst(v), _NullFirst(a)
        if x == y:
            continue
        return (x > y) if order != "desc" else (x < y)
    return False


class _Directed:
    def __init__(self, value: Any, desc: bool) -> None:
        self.value, self.desc = value, desc

    def __lt__(self, other: _Directed) -> bool:
        a, b = self.value, other.value
        try:
            less = a > b if self.desc else a < b
        except TypeError:
            less = str(a) > str(b) if self.desc else str(a) < str(b)
        return bool(less)

    def __eq__(self, other: object) -> bool:
        return isinstance(other, _Directed) and self.value == other.value

    __hash__ = None  # type: ignore[assignment]

