"""Parsing and validating a `_search` body (coordinating-node checks) into a `SearchRequest`."""

from __future__ import annotations

import fnmatch
from collections.abc import Callable
from typing import Any

from .aggs import parse_aggs
from .errors import ESError, action_request_validation, illegal_argument, parsing_exception
from .fetch_fields import FieldFetcher
from .query import MatchAll, Query, parse_query
from .sorting import SortSpec, parse_sort
from .source_filter import parse_source_option

MAX_RESULT_WINDOW = 10_000
DEFAULT_TRACK_TOTAL = 10_000
BODY_KEYS = {
    "query", "from", "size", "sort", "_source", "track_total_hits", "track_scores", "aggs", "aggregations",
    "post_filter", "search_after", "min_score", "timeout", "terminate_after", "version", "seq_no_primary_term",
    "stored_fields", "docvalue_fields", "fields", "highlight", "explain", "profile", "stats", "indices_boost",
    "rescore", "collapse", "suggest", "slice", "runtime_mappings", "script_fields", "pit", "knn", "ext", "rank",
    "retriever", "sub_searches", "include_named_queries_score", "typed_keys",
}


def _token(value: Any) -> str:
    if isinstance(value, dict):
        return "START_OBJECT"
    if isinstance(value, list):
        return "START_ARRAY"
    if isinstance(value, bool):
        return "VALUE_BOOLEAN"
    if isinstance(value, int | float):
        return "VALUE_NUMBER"
    if value is None:
        return "VALUE_NULL"
    return "VALUE_STRING"


def _int_param(body: dict[str, Any], key: str, default: int) -> int:
    value = body.get(key, default)
    if value is None:
        return default
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise parsing_exception(f"[{key}] failed to parse field [{key}]") from exc
    if key == "size" and number == -1:
        return default  # deprecated spelling of "not set"
    if number < 0:
        raise illegal_argument(f"[{key}] parameter cannot be negative, found [{number}]")
    return number


def _track_total(value: Any) -> int | None:
    """Threshold up to which totals are exact; None = totals disabled."""
    if value is None:
        return DEFAULT_TRACK_TOTAL
    if value is True or value == "true":
        return 2**31 - 1
    if value is False or value == "false":
        return None
    try:
        number = int(value)
    except (TypeError, ValueError) as exc:
        raise parsing_exception(f"[track_total_hits] failed to parse [{value}]") from exc
    if number == -1:
        return None
    if number < 0:
        raise ESError(400, "action_request_validation_exception",
                      f"Validation Failed: 1: [track_total_hits] parameter must be positive or equals to -1, got "
                      f"{number};")
    return number


class SearchRequest:
    """A parsed search body."""

    def __init__(self, body: dict[str, Any], pit: bool) -> None:
        for key, value in body.items():
            if key not in BODY_KEYS:
                raise parsing_exception(f"Unknown key for a {_token(value)} in [{key}].")
        self.query: Query = parse_query(body["query"]) if body.get("query") is not None else MatchAll()
        self.post_filter = parse_query(body["post_filter"]) if body.get("post_filter") is not None else None
        self.size = _int_param(body, "size", 10)
        self.from_ = _int_param(body, "from", 0)
        self.sort = parse_sort(body.get("sort"))
        self.track_total = _track_total(body.get("track_total_hits"))
        self.track_scores = bool(body.get("track_scores", False))
        self.version = body.get("version") in (True, "true")
        self.seq_no = body.get("seq_no_primary_term") in (True, "true")
        self.fetch_source, self.includes, self.excludes = parse_source_option(body.get("_source"))
        stored = body.get("stored_fields")
        stored_list = [stored] if isinstance(stored, str) else list(stored or [])
        self.stored_none = stored_list == ["_none_"]
        self.stored_list = [str(s) for s in stored_list]
        self.fetchers: dict[str, FieldFetcher] = {}
        if stored is not None and not self.stored_none and body.get("_source") is None \
                and "_source" not in stored_list:
            self.fetch_source = False
        try:
            self.min_score = float(body["min_score"]) if body.get("min_score") is not None else None
            self.terminate_after = int(body.get("terminate_after") or 0)
        except (TypeError, ValueError) as exc:
            raise parsing_exception("[min_score] or [terminate_after] is not a number") from exc
        if self.terminate_after < 0:
            raise illegal_argument("terminateAfter must be > 0")
        agg_spec = body.get("aggs", body.get("aggregations"))
        self.aggs = parse_aggs(agg_spec) if agg_spec is not None else None
        self.search_after = body.get("search_after")
        self.fields = body.get("fields")
        self.docvalue_fields = body.get("docvalue_fields")
        # A URL parameter in ES; the HTTP layer passes it in the body.
        self.named_scores = body.get("include_named_queries_score") in (True, "true")
        self.explain = body.get("explain") in (True, "true")
        self.typed_keys = body.get("typed_keys") in (True, "true")  # URL parameter, passed in the body
        runtime = body.get("runtime_mappings")
        if runtime is not None and not isinstance(runtime, dict):
            raise parsing_exception("[runtime_mappings] must be an object")
        self.runtime_mappings: dict[str, Any] | None = runtime
        highlight_spec = body.get("highlight")
        self.highlight: dict[str, Any] | None = highlight_spec if isinstance(highlight_spec, dict) else None
        rescore = body.get("rescore") or []
        self.rescore: list[Any] = rescore if isinstance(rescore, list) else [rescore]
        self.indices_boost = _parse_indices_boost(body.get("indices_boost"))
        self.index_boost: dict[str, float] = {}
        script_fields = body.get("script_fields") or {}
        self.script_fields: dict[str, Any] = script_fields if isinstance(script_fields, dict) else {}
        if self.search_after is not None and not isinstance(self.search_after, list):
            raise parsing_exception("[search_after] failed to parse field [search_after]")
        self.collapse = _parse_collapse(body.get("collapse"))
        problems: list[str] = []
        if self.collapse is not None and self.rescore:
            problems.append("cannot use `collapse` in conjunction with `rescore`")
        if self.collapse is not None and self.search_after is not None and (
            not self.sort or len(self.sort) != 1 or self.sort[0].field != self.collapse["field"]
        ):
            problems.append("Cannot use [collapse] in conjunction with [search_after] unless the search is sorted on "
                            "the same field. Multiple sort fields are not allowed.")
        if self.search_after and self.from_ > 0:
            problems.append("`from` parameter must be set to 0 when `search_after` is used")
        if self.sort and not pit and any(s.field == "_shard_doc" for s in self.sort):
            problems.append("[_shard_doc] sort field cannot be used without [point in time]")
        if problems:
            raise action_request_validation(*problems)
        if pit and self.sort and (self.search_after is None or len(self.search_after) == len(self.sort) + 1) \
                and self.sort[-1].field != "_shard_doc":
            self.sort.append(SortSpec("_shard_doc", "asc", unmapped_type="long"))
        self.scoring = self.sort is None or self.track_scores or any(s.field == "_score" for s in self.sort)

    def resolve_boosts(self, indices: list[str], resolve: Callable[[str], list[str]] | None) -> None:
        """`indices_boost`: the first entry naming an index (directly, by alias or wildcard) wins."""
        for expr, boost in self.indices_boost:
            targets = resolve(expr) if resolve else [i for i in indices if fnmatch.fnmatchcase(i, expr)]
            for name in targets:
                self.index_boost.setdefault(name, boost)


def _parse_collapse(value: Any) -> dict[str, Any] | None:
    if value is None:
        return None
    if not isinstance(value, dict) or not isinstance(value.get("field"), str):
        raise parsing_exception("[collapse] failed to parse: [field] is required")
    inner = value.get("inner_hits")
    inner_list = [] if inner is None else (inner if isinstance(inner, list) else [inner])
    return {"field": value["field"], "inner_hits": [i for i in inner_list if isinstance(i, dict)]}


def _parse_indices_boost(value: Any) -> list[tuple[str, float]]:
    if value is None:
        return []
    items = value if isinstance(value, list) else [value]
    out: list[tuple[str, float]] = []
    for item in items:
        if not isinstance(item, dict):
            raise parsing_exception(f"Expected [START_OBJECT] in [indices_boost] but found [{_token(item)}]")
        for name, boost in item.items():
            try:
                out.append((str(name), float(boost)))
            except (TypeError, ValueError) as exc:
                raise parsing_exception(f"Expected [VALUE_NUMBER] in [indices_boost] but found [{boost}]") from exc
    return out


