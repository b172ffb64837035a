"""`typed_keys`: aggregation names in the response prefixed with their internal type (`sterms#name`)."""

from __future__ import annotations

from typing import Any

from .fieldtypes import DATE_TYPES, FLOAT_TYPES, INTEGER_RANGES, FieldDef

_FIXED = {
    "avg": "avg", "sum": "sum", "min": "min", "max": "max", "value_count": "value_count",
    "cardinality": "cardinality", "stats": "stats", "extended_stats": "extended_stats",
    "percentiles": "tdigest_percentiles", "percentile_ranks": "tdigest_percentile_ranks",
    "weighted_avg": "weighted_avg", "top_hits": "top_hits", "top_metrics": "top_metrics",
    "date_histogram": "date_histogram", "histogram": "histogram", "range": "range", "date_range": "date_range",
    "filter": "filter", "filters": "filters", "missing": "missing", "global": "global", "composite": "composite",
    "nested": "nested", "reverse_nested": "reverse_nested", "multi_terms": "multi_terms",
    "avg_bucket": "simple_value", "sum_bucket": "simple_value", "cumulative_sum": "simple_value",
    "max_bucket": "bucket_metric_value", "min_bucket": "bucket_metric_value", "stats_bucket": "stats_bucket",
    "derivative": "derivative",
}


def type_name(kind: str, fd: FieldDef | None) -> str:
    """The name ES puts before `#` for an aggregation of ``kind`` over ``fd``."""
    if kind in ("terms", "rare_terms"):
        suffix = "terms" if kind == "terms" else "rareterms"
        if fd is None:
            return "umterms" if kind == "terms" else "umrareterms"
        if fd.type in FLOAT_TYPES:
            return f"d{suffix}"
        if fd.type in INTEGER_RANGES or fd.type in DATE_TYPES or fd.type == "boolean":
            return f"l{suffix}"
        return f"s{suffix}"
    return _FIXED.get(kind, kind)


def rename(result: dict[str, Any], specs: dict[str, Any], field_of: Any) -> dict[str, Any]:
    """``result`` with typed names, recursively into buckets (``specs``: name -> parsed `Agg`)."""
    out: dict[str, Any] = {}
    for name, value in result.items():
        agg = specs.get(name)
        if agg is None or not isinstance(value, dict):
            out[name] = value
            continue
        typed = f"{type_name(agg.kind, field_of(agg))}#{name}"
        out[typed] = _rename_inside(value, agg, field_of)
    return out


def _rename_inside(value: dict[str, Any], agg: Any, field_of: Any) -> dict[str, Any]:
    if not agg.subs:
        return value
    copy = dict(value)
    buckets = copy.get("buckets")
    if isinstance(buckets, list):
        copy["buckets"] = [rename(b, agg.subs, field_of) for b in buckets]
    elif isinstance(buckets, dict):
        copy["buckets"] = {k: rename(b, agg.subs, field_of) for k, b in buckets.items()}
    else:
        copy = rename(copy, agg.subs, field_of)
    return copy
