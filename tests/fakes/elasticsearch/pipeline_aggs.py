"""Pipeline aggregations over already computed results: sibling (`avg_bucket`...) and parent ones."""

from __future__ import annotations

import math
from collections.abc import Callable
from typing import Any

from .errors import ESError

SIBLING = {"avg_bucket", "max_bucket", "min_bucket", "sum_bucket", "stats_bucket"}
PARENT = {"cumulative_sum", "derivative", "bucket_sort"}
PIPELINE = SIBLING | PARENT


def _path_error(path: str) -> ESError:
    return ESError(400, "action_request_validation_exception",
                   f"Validation Failed: 1: No aggregation found for path [{path}];")


def bucket_value(bucket: dict[str, Any], path: str) -> float | None:
    """A `buckets_path` element inside one bucket: `_count`, `_key`, `agg`, `agg.metric`, `agg>sub.metric`."""
    if path == "_count":
        return float(bucket["doc_count"])
    if path == "_key":
        key = bucket.get("key")
        return float(key) if isinstance(key, int | float) else None
    head, sep, rest = path.partition(">")
    name, _, metric = head.partition(".")
    if name.endswith("]") and "[" in name:  # percentiles: agg[99.0]
        name, _, pct = name[:-1].partition("[")
        metric = f"values.{pct}"
    node = bucket.get(name)
    if node is None:
        raise _path_error(path)
    if sep:
        return bucket_value(node, rest)
    if metric.startswith("values."):
        value = node.get("values", {}).get(metric[len("values."):])
    else:
        value = node.get(metric or "value", node.get("doc_count")) if isinstance(node, dict) else node
    return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None


def sibling(kind: str, params: dict[str, Any], results: dict[str, Any]) -> dict[str, Any]:
    """`avg_bucket`-style aggregations: `buckets_path` is `multi_bucket_agg>metric`."""
    path = str(params.get("buckets_path", ""))
    agg_name, _, inner = path.partition(">")
    target = results.get(agg_name)
    if not isinstance(target, dict) or "buckets" not in target:
        raise _path_error(path)
    raw = target["buckets"]
    buckets = list(raw.values()) if isinstance(raw, dict) else list(raw)
    pairs = [(b, bucket_value(b, inner or "_count")) for b in buckets]
    skip_gaps = params.get("gap_policy", "skip") == "skip"
    values = [(b, v) for b, v in pairs if v is not None and not (skip_gaps and math.isnan(v))]
    nums = [v for _, v in values]
    if kind == "avg_bucket":
        return {"value": sum(nums) / len(nums) if nums else None}
    if kind == "sum_bucket":
        return {"value": float(sum(nums))}
    if kind == "stats_bucket":
        if not nums:
            return {"count": 0, "min": None, "max": None, "avg": None, "sum": 0.0}
        return {"count": len(nums), "min": min(nums), "max": max(nums), "avg": sum(nums) / len(nums),
                "sum": float(sum(nums))}
    best = (max if kind == "max_bucket" else min)(nums) if nums else None
    keys = [str(b.get("key_as_string", b.get("key"))) for b, v in values if v == best]
    return {"value": best, "keys": keys}


def apply_parent(pipelines: dict[str, tuple[str, dict[str, Any]]], buckets: list[dict[str, Any]]) -> list[
        dict[str, Any]]:
    """Parent pipelines (declared among a histogram's or terms' sub-aggregations) over its buckets."""
    for name, (kind, params) in pipelines.items():
        if kind == "bucket_sort":
            buckets = _bucket_sort(params, buckets)
            continue
        path = str(params.get("buckets_path", "_count"))
        running = 0.0
        previous: float | None = None
        for bucket in buckets:
            value = bucket_value(bucket, path)
            if kind == "cumulative_sum":
                running += value or 0.0
                bucket[name] = {"value": running}
            else:  # derivative
                if previous is not None and value is not None:
                    bucket[name] = {"value": value - previous}
                previous = value
    return buckets


def _sort_key(path: str) -> Callable[[dict[str, Any]], tuple[bool, float]]:
    def key(bucket: dict[str, Any]) -> tuple[bool, float]:
        value = bucket_value(bucket, path)
        return value is None, value or 0.0

    return key


def _bucket_sort(params: dict[str, Any], buckets: list[dict[str, Any]]) -> list[dict[str, Any]]:
    ordered = list(buckets)
    for spec in reversed(params.get("sort") or []):
        (path, opts), = (spec.items() if isinstance(spec, dict) else [(spec, {})])
        desc = (opts.get("order") if isinstance(opts, dict) else opts) == "desc"
        ordered.sort(key=_sort_key(str(path)), reverse=desc)
    start = int(params.get("from", 0))
    size = params.get("size")
    return ordered[start: start + int(size)] if size is not None else ordered[start:]
