"""Index settings as ES keeps them: flat ``index.*`` keys with string values, rendered nested."""

from __future__ import annotations

import fnmatch
import re
from typing import Any

from .errors import ESError, illegal_argument

# Settings ES knows (exact keys) and families it accepts under a prefix.
KNOWN = {
    "index.number_of_shards", "index.number_of_replicas", "index.auto_expand_replicas", "index.hidden",
    "index.refresh_interval", "index.max_result_window", "index.max_inner_result_window",
    "index.max_rescore_window", "index.max_docvalue_fields_search", "index.max_script_fields",
    "index.max_ngram_diff", "index.max_shingle_diff", "index.max_refresh_listeners", "index.max_terms_count",
    "index.max_regex_length", "index.default_pipeline", "index.final_pipeline", "index.codec",
    "index.routing_partition_size", "index.number_of_routing_shards", "index.priority", "index.format",
    "index.gc_deletes", "index.load_fixed_bitset_filters_eagerly", "index.shard.check_on_startup",
    "index.soft_deletes.enabled", "index.mode", "index.time_series.start_time", "index.time_series.end_time",
    "index.routing_path", "index.uuid", "index.creation_date", "index.provided_name", "index.version.created",
    "index.frozen", "index.write.wait_for_active_shards", "index.requests.cache.enable", "index.auto_create",
    "index.default_field", "index.similarity.default.type", "index.max_slices_per_scroll",
    "index.max_adjacency_matrix_filters", "index.analyze.max_token_count",
    "index.highlight.max_analyzed_offset", "index.verified_before_close", "index.unassigned.node_left.delayed_timeout",
}
PREFIXES = (
    "index.routing.", "index.lifecycle.", "index.mapping.", "index.analysis.", "index.blocks.", "index.query.",
    "index.sort.", "index.translog.", "index.merge.", "index.search.", "index.indexing.", "index.store.",
    "index.similarity.", "index.soft_deletes.", "index.shard.", "index.plugin.", "index.version.",
    "index.allocation.", "index.recovery.", "index.fielddata.", "index.mapper.", "index.resize.",
    "index.time_series.", "index.look_ahead_time", "index.tier", "index.queries.",
)
NON_DYNAMIC = {"index.number_of_shards", "index.number_of_routing_shards", "index.routing_partition_size",
               "index.codec", "index.mode", "index.soft_deletes.enabled", "index.uuid", "index.creation_date",
               "index.provided_name", "index.version.created", "index.sort.field"}
PRIVATE = {"index.uuid", "index.creation_date", "index.provided_name", "index.version.created"}


def _stringify(value: Any) -> Any:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, list):
        return [_stringify(v) for v in value]
    if value is None:
        return None
    return str(value)


def flatten(body: Any, prefix: str = "") -> dict[str, Any]:
    """``{"index": {"hidden": true}}`` / ``{"hidden": true}`` / ``{"index.hidden": "true"}`` → flat ``index.*``."""
    out: dict[str, Any] = {}
    if not isinstance(body, dict):
        raise illegal_argument("settings must be an object")
    for key, value in body.items():
        full = f"{prefix}{key}"
        if isinstance(value, dict):
            out.update(flatten(value, full + "."))
        else:
            out[full] = _stringify(value)
    if not prefix:
        out = {(k if k.startswith("index.") else f"index.{k}"): v for k, v in out.items()}
    return out


def validate(flat: dict[str, Any], *, creating: bool) -> None:
    for key, value in flat.items():
        if key in PRIVATE and creating:
            raise illegal_argument(f"unknown setting [{key}] please check that any required plugins are installed, "
                                   "or check the breaking changes documentation for removed settings")
        if key not in KNOWN and not key.startswith(PREFIXES):
            raise illegal_argument(f"unknown setting [{key}] please check that any required plugins are installed, "
                                   "or check the breaking changes documentation for removed settings")
        if value is None:
            continue
        if key in ("index.number_of_shards", "index.number_of_replicas"):
            _int_setting(key, value, minimum=1 if key.endswith("shards") else 0)
        elif key == "index.refresh_interval":
            parse_time(value, key)
        elif key == "index.hidden" and value not in ("true", "false"):
            raise illegal_argument(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


def _int_setting(key: str, value: Any, minimum: int) -> int:
    try:
        n = int(str(value))
    except ValueError:
        raise illegal_argument(f"Failed to parse value [{value}] for setting [{key}]") from None
    if n < minimum:
        raise illegal_argument(f"Failed to parse value [{value}] for setting [{key}] must be >= {minimum}")
    return n


_TIME_UNITS = {"nanos": 1e-9, "micros": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0, "d": 86400.0}
_TIME_RE = re.compile(r"^\s*(-?\d+(?:\.\d+)?)\s*(nanos|micros|ms|s|m|h|d)\s*$")


def parse_time(value: Any, setting: str = "time") -> float | None:
    """A time value in seconds; ``-1`` → None (never)."""
    text = str(value).strip()
    if text in ("-1", "-1s", "-1ms"):
        return None
    if text == "0":
        return 0.0
    m = _TIME_RE.match(text)
    if not m:
        raise illegal_argument(f"failed to parse setting [{setting}] with value [{text}] as a time value: "
                               "unit is missing or unrecognized")
    n = float(m.group(1))
    if n < 0:
        raise illegal_argument(f"failed to parse setting [{setting}] with value [{text}] as a time value: "
                               "negative durations are not supported")
    return n * _TIME_UNITS[m.group(2)]


def nest(flat: dict[str, Any]) -> dict[str, Any]:
    """Render flat keys as nested objects, as GET _settings does without ``flat_settings``."""
    out: dict[str, Any] = {}
    for key in sorted(flat):
        parts = key.split(".")
        cur = out
        for part in parts[:-1]:
            nxt = cur.get(part)
            if not isinstance(nxt, dict):
                nxt = {}
                cur[part] = nxt
            cur = nxt
        cur[parts[-1]] = flat[key]
    return out


def select(flat: dict[str, Any], names: list[str] | None) -> dict[str, Any]:
    if not names:
        return dict(flat)
    return {k: v for k, v in flat.items()
            if any(fnmatch.fnmatchcase(k, n) or fnmatch.fnmatchcase(k, f"index.{n}") for n in names)}


def check_dynamic(updates: dict[str, Any], index_ref: str) -> None:
    static = sorted(k for k in updates if k in NON_DYNAMIC)
    if static:
        raise illegal_argument(f"Can't update non dynamic settings [[{', '.join(static)}]] for open indices "
                               f"[[{index_ref}]]")


def as_bool(value: Any, name: str, default: bool = False) -> bool:
    if value is None:
        return default
    if isinstance(value, bool):
        return value
    text = str(value)
    if text in ("", "true"):
        return True
    if text == "false":
        return False
    raise ESError(400, "illegal_argument_exception",
                  f"Failed to parse value [{text}] as only [true] or [false] are allowed.")
