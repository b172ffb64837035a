"""`_search` and `_count` over the documents of the resolved indices (pure functions)."""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any

from .aggs import AggRunner
from .datemath import DateFormat, now_millis
from .errors import ESError, parsing_exception
from .fetch_fields import FieldFetcher, FieldPattern, FieldsFormatError, parse_field_patterns
from .fieldtypes import DATE_TYPES, KEYWORD_TYPES, NUMERIC_TYPES, FieldDef
from .highlight import highlight
from .mapping import IGNORED, IGNORED_VALUES, IndexMapping
from .model import StoredDoc
from .query import Doc, MatchAll, ShardContext, ShardFailure, parse_query, values_of
from .runtime_fields import runtime_fields, with_runtime_values
from .search_request import MAX_RESULT_WINDOW, SearchRequest
from .sorting import (
    SortKeys,
    SortSpec,
    compare_values,
    parse_after,
    render_sort_value,
    sort_docs,
    text_fielddata_error,
)
from .source_filter import filter_source
from .typed_keys import rename

__all__ = ["execute_count", "execute_search", "filter_source"]

SourceLookup = Callable[[str, str], dict[str, Any] | None]

def _docs_by_index(
    docs: Sequence[StoredDoc], mappings: Mapping[str, IndexMapping], now: int, *,
    settings: Mapping[str, Mapping[str, Any]] | None = None, uuids: Mapping[str, str] | None = None,
    get_source: SourceLookup | None = None,
    runtime_mappings: dict[str, Any] | None = None,
) -> dict[str, ShardContext]:
    order: list[str] = list(mappings)
    position = {name: n for n, name in enumerate(order)}    # every search visits every doc: no list.index
    for d in docs:
        if d.index not in position:
            position[d.index] = len(order)
            order.append(d.index)
    ctxs: dict[str, ShardContext] = {}
    grouped: dict[str, list[Doc]] = {name: [] for name in order}
    effective = {name: _with_runtime(m, runtime_mappings) for name, m in mappings.items()}
    runtime = {name: runtime_fields(m) for name, m in effective.items()}
    for d in docs:
        indexed = d.extra.get("indexed")
        if indexed is None:
            mapping = effective.get(d.index)
            indexed = mapping.index_document(d.source) if mapping is not None else {}
        if runtime.get(d.index):
            indexed = with_runtime_values(indexed, d.source, runtime[d.index])
        grouped[d.index].append(Doc(d, indexed, position[d.index]))
    for name in order:
        ctxs[name] = ShardContext(name, effective.get(name) or IndexMapping(), now, grouped[name],
                                  (settings or {}).get(name) or {}, (uuids or {}).get(name))
    by_key: dict[tuple[str, str], dict[str, Any]] | None = None

    def lookup(index: str, doc_id: str) -> dict[str, Any] | None:
        nonlocal by_key
        if get_source is not None:
            return get_source(index, doc_id)
        if by_key is None:      # built on first use: most searches never look a document up
            by_key = {(d.index, d.id): d.source for d in docs}
        return by_key.get((index, doc_id))

    for ctx in ctxs.values():
        ctx.lookup = lookup
    return ctxs


def _with_runtime(mapping: IndexMapping, runtime_mappings: dict[str, Any] | None) -> IndexMapping:
    """The index mapping as this request sees it: `runtime_mappings` add or shadow fields."""
    if not runtime_mappings:
        return mapping
    copy = mapping.copy()
    copy.root["runtime"] = {**(copy.root.get("runtime") or {}), **runtime_mappings}
    return copy


def shard_failures_error(failures: list[tuple[str, ShardFailure]]) -> ESError:
    """search_phase_execution_exception "all shards failed", grouped as ES does."""
    grouped: list[dict[str, Any]] = []
    roots: list[dict[str, Any]] = []
    seen: set[tuple[str, str]] = set()
    for index, failure in failures:
        key = (failure.reason.get("type", ""), index)
        if key in seen:
            continue
        seen.add(key)
        grouped.append({"shard": 0, "index": index, "reason": failure.reason})
        roots.append({k: v for k, v in failure.reason.items() if k != "caused_by"})
    first = failures[0][1]
    return ESError(first.status, "search_phase_execution_exception", "all shards failed", root_cause=roots,
                   phase="query", grouped=True, failed_shards=grouped, caused_by=first.reason)


def _run_shards(req: SearchRequest, ctxs: dict[str, ShardContext]) -> tuple[list[tuple[Doc, float]], list[str],
                                                                        list[tuple[str, ShardFailure]]]:
    """Match every shard; returns (hits with scores, shards that succeeded, failures)."""
    hits: list[tuple[Doc, float]] = []
    ok: list[str] = []
    failures: list[tuple[str, ShardFailure]] = []
    for name, ctx in ctxs.items():
        try:
            _check_limits(req, ctx)
            matcher = req.query.compile(ctx)
            if req.sort:
                SortKeys(req.sort, ctx)  # validates the sort on this shard
                if req.search_after is not None:
                    _check_after(req, req.search_after, req.sort)
                    parse_after(req.search_after, req.sort, [ctx])
            elif req.search_after:
                raise ShardFailure({"type": "illegal_argument_exception",
                                    "reason": "Sort must contain at least one field."})
            if req.aggs:
                AggRunner({name: ctx}).check(req.aggs, ctx)
            if req.collapse is not None:
                _check_collapse(req.collapse["field"], ctx)
            fetcher = _field_fetcher(req, ctx)
            if fetcher is not None:
                req.fetchers[name] = fetcher
            local: list[tuple[Doc, float]] = []
            for doc in ctx.docs:
                score = matcher(doc)
                if score is None:
                    continue
                score *= req.index_boost.get(name, 1.0)
                if req.min_score is not None and score < req.min_score:
                    continue
                doc.score = score
                local.append((doc, score))
                if req.terminate_after and len(local) >= req.terminate_after:
                    break
            hits.extend(local)
            ok.append(name)
        except ShardFailure as failure:
            failures.append((name, failure))
    return hits, ok, failures


def _limit_error(reason: str) -> ShardFailure:
    return ShardFailure({"type": "illegal_argument_exception", "reason": reason})


def _check_limits(req: SearchRequest, ctx: ShardContext) -> None:
    window = ctx.setting("index.max_result_window", MAX_RESULT_WINDOW)
    if req.from_ + req.size > window:
        raise _limit_error(
            f"Result window is too large, from + size must be less than or equal to: [{window}] but was "
            f"[{req.from_ + req.size}]. See the scroll api for a more efficient way to request large data sets. "
            "This limit can be set by changing the [index.max_result_window] index level setting.")
    for item in req.rescore:
        size = int(item.get("window_size", 10)) if isinstance(item, dict) else 10
        limit = ctx.setting("index.max_rescore_window", window)
        if size > limit:
            raise _limit_error(f"Rescore window [{size}] is too large. It must be less than [{limit}]. This "
                               "prevents allocating massive heaps for storing the results to be rescored. This "
                               "limit can be set by changing the [index.max_rescore_window] index level setting.")
    limit = ctx.setting("index.max_docvalue_fields_search", 100)
    if len(req.docvalue_fields or []) > limit:
        raise _limit_error(
            f"Trying to retrieve too many docvalue_fields. Must be less than or equal to: [{limit}] but was "
            f"[{len(req.docvalue_fields or [])}]. This limit can be set by changing the "
            "[index.max_docvalue_fields_search] index level setting.")
    for entry in req.docvalue_fields or []:
        name = entry.get("field") if isinstance(entry, dict) else entry
        fd = ctx.field(name) if isinstance(name, str) and "*" not in name else None
        if fd is not None and fd.is_text and not fd.params.get("fielddata"):
            raise text_fielddata_error(fd.path)
    limit = ctx.setting("index.max_script_fields", 32)
    if len(req.script_fields) > limit:
        raise _limit_error(
            f"Trying to retrieve too many script_fields. Must be less than or equal to: [{limit}] but was "
            f"[{len(req.script_fields)}]. This limit can be set by changing the [index.max_script_fields] index "
            "level setting.")


def _check_collapse(name: str, ctx: ShardContext) -> None:
    fd = ctx.field(name)
    if fd is None:
        raise _limit_error(f"no mapping found for `{name}` in order to collapse on")
    if fd.is_text or fd.type not in KEYWORD_TYPES | NUMERIC_TYPES | DATE_TYPES | {"ip", "boolean"}:
        raise _limit_error(f"collapse is not supported for the field [{fd.path}] of the type [{fd.type}]")
    if fd.params.get("doc_values") is False:
        raise _limit_error(f"cannot collapse on field `{name}` without `doc_values`")


def _collapse_key(doc: Doc, name: str, ctx: ShardContext) -> Any:
    fd = ctx.field(name)
    values = values_of(doc, fd.path) if fd is not None else []
    return fd.render(values[0]) if fd is not None and values else None


def _collapse(req: SearchRequest, ordered: list[tuple[Doc, float, list[Any] | None]],
              ctxs: dict[str, ShardContext]) -> list[tuple[Doc, float, list[Any] | None]]:
    assert req.collapse is not None
    seen: set[Any] = set()
    out = []
    for entry in ordered:
        key = _collapse_key(entry[0], req.collapse["field"], ctxs[entry[0].stored.index])
        if key in seen:
            continue
        seen.add(key)
        out.append(entry)
    return out


def _inner_hits(req: SearchRequest, doc: Doc, matched: list[tuple[Doc, float]],
                ctxs: dict[str, ShardContext]) -> dict[str, Any]:
    assert req.collapse is not None
    field_name = req.collapse["field"]
    key = _collapse_key(doc, field_name, ctxs[doc.stored.index])
    group = [(d, s) for d, s in matched if _collapse_key(d, field_name, ctxs[d.stored.index]) == key]
    out: dict[str, Any] = {}
    for spec in req.collapse["inner_hits"]:
        sub_body = {k: v for k, v in spec.items() if k in ("sort", "size", "from", "version", "_source", "fields",
                                                           "seq_no_primary_term", "docvalue_fields",
                                                           "stored_fields", "track_scores")}
        sub_body.setdefault("size", 3)
        sub = SearchRequest(sub_body, pit=False)
        for name, ctx in ctxs.items():
            fetcher = _field_fetcher(sub, ctx)
            if fetcher is not None:
                sub.fetchers[name] = fetcher
        ordered = _order(sub, group, ctxs)[sub.from_: sub.from_ + sub.size]
        scores = [s for _, s in group]
        out[str(spec.get("name", field_name))] = {"hits": {
            "total": {"value": len(group), "relation": "eq"},
            "max_score": max(scores) if sub.scoring and scores else None,
            "hits": [_render_hit(sub, d, s, sv, ctxs) for d, s, sv in ordered],
        }}
    return out


def _top_hits(spec: dict[str, Any], docs: Sequence[Doc], ctxs: dict[str, ShardContext]) -> dict[str, Any]:
    """The `top_hits` aggregation: a small search over the bucket's documents."""
    body = {k: v for k, v in spec.items() if k in ("sort", "size", "from", "version", "_source", "fields",
                                                   "seq_no_primary_term", "docvalue_fields", "stored_fields",
                                                   "track_scores")}
    body.setdefault("size", 3)
    sub = SearchRequest(body, pit=False)
    for name, ctx in ctxs.items():
        fetcher = _field_fetcher(sub, ctx)
        if fetcher is not None:
            sub.fetchers[name] = fetcher
    pairs = [(d, d.score) for d in docs]
    ordered = _order(sub, pairs, ctxs)[sub.from_: sub.from_ + sub.size]
    scores = [s for _, s in pairs]
    return {"hits": {
        "total": {"value": len(pairs), "relation": "eq"},
        "max_score": max(scores) if sub.scoring and scores else None,
        "hits": [_render_hit(sub, d, s, sv, ctxs) for d, s, sv in ordered],
    }}


def _check_after(req: SearchRequest, after: list[Any], sort: list[SortSpec]) -> None:
    if len(after) != len(sort):
        raise ShardFailure({"type": "illegal_argument_exception",
                            "reason": f"search_after has {len(after)} value(s) but sort has {len(sort)}."})


def execute_search(
    docs: Sequence[StoredDoc],
    body: dict[str, Any],
    mappings: Mapping[str, IndexMapping],
    *,
    pit: bool = False,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    uuids: Mapping[str, str] | None = None,
    get_source: SourceLookup | None = None,
    resolve_index: Callable[[str], list[str]] | None = None,
) -> dict[str, Any]:
    """Run a search body over ``docs``: {"hits": ..., "aggregations": ... (if asked)}.

    Optional ``settings`` (flat `index.*` settings per index: max_result_window, max_regex_length ...) and
    ``uuids`` (index uuid per index, shown in shard errors) refine limits and error bodies;
    ``get_source(index, id)`` serves `terms` lookups (default: only among ``docs``);
    ``resolve_index(expr)`` turns an `indices_boost` name (alias, wildcard) into concrete indices.
    A partial shard failure adds `_shards` (with `failures`) to the result.
    """
    req = SearchRequest(body or {}, pit)
    req.resolve_boosts(list(mappings), resolve_index)
    ctxs = _docs_by_index(docs, mappings, now_millis(), settings=settings, uuids=uuids, get_source=get_source,
                          runtime_mappings=req.runtime_mappings)
    matched, ok, failures = _run_shards(req, ctxs)
    if failures and not ok:
        raise shard_failures_error(failures)
    live = {name: ctxs[name] for name in ok}
    result: dict[str, Any] = {}
    if req.aggs:
        runner = AggRunner(live, lambda spec, docs: _top_hits(spec, docs, live))
        result["aggregations"] = runner.run(req.aggs, [d for d, _ in matched])
        if req.typed_keys:
            result["aggregations"] = rename(result["aggregations"], req.aggs, runner.field_of)
    if req.post_filter is not None:
        post = {name: req.post_filter.compile(ctx) for name, ctx in live.items()}
        matched = [(d, s) for d, s in matched if post[d.stored.index](d) is not None]
    ordered = _order(req, matched, live)
    if req.collapse is not None:
        ordered = _collapse(req, ordered, live)
    total = len(matched)
    page = ordered[req.from_ : req.from_ + req.size]
    hits_obj: dict[str, Any] = {}
    if req.track_total is not None:
        if total > req.track_total:
            hits_obj["total"] = {"value": req.track_total, "relation": "gte"}
        else:
            hits_obj["total"] = {"value": total, "relation": "eq"}
    scores = [s for _, s in matched]
    hits_obj["max_score"] = max(scores) if (req.scoring and scores and req.size > 0) else None
    hits_obj["hits"] = [_render_hit(req, doc, score, sort_values, live) for doc, score, sort_values in page]
    if req.collapse is not None:
        for hit, (doc, _score, _sv) in zip(hits_obj["hits"], page, strict=True):
            key = _collapse_key(doc, req.collapse["field"], live[doc.stored.index])
            hit.setdefault("fields", {})[req.collapse["field"]] = [key]
            if req.collapse["inner_hits"]:
                hit["inner_hits"] = _inner_hits(req, doc, matched, live)
        # `sort` stays last, as ES renders it
        for hit in hits_obj["hits"]:
            if "sort" in hit:
                hit["sort"] = hit.pop("sort")
    result = {"hits": hits_obj, **result}
    if req.terminate_after:
        result["terminated_early"] = any(
            sum(1 for d, _ in matched if d.stored.index == name) >= req.terminate_after for name in live
        )
    if failures:
        result["_shards"] = {
            "total": len(ctxs), "successful": len(ok), "skipped": 0, "failed": len(failures),
            "failures": [{"shard": 0, "index": name, "reason": f.reason} for name, f in failures],
        }
    return result


def _order(
    req: SearchRequest, matched: list[tuple[Doc, float]], ctxs: dict[str, ShardContext]
) -> list[tuple[Doc, float, list[Any] | None]]:
    if not req.sort:
        ranked = sorted(matched, key=lambda e: (-e[1], e[0].shard, e[0].stored.doc_order))
        return [(d, s, None) for d, s in ranked]
    keys = {name: SortKeys(req.sort, ctx) for name, ctx in ctxs.items()}
    entries = [(keys[d.stored.index].values(d, s), d) for d, s in matched]
    score_of = {id(d): s for d, s in matched}
    if req.search_after is not None:
        after = parse_after(req.search_after, req.sort, list(ctxs.values()))
        entries = [e for e in entries if compare_values(e[0], after, req.sort) > 0]
    ordered = sort_docs(entries, req.sort)
    return [(d, score_of[id(d)], vals) for vals, d in ordered]


def _render_hit(
    req: SearchRequest, doc: Doc, score: float, sort_values: list[Any] | None, ctxs: dict[str, ShardContext]
) -> dict[str, Any]:
    stored = doc.stored
    hit: dict[str, Any] = {"_index": stored.index}
    if not req.stored_none:
        hit["_id"] = stored.id
    if req.version:
        hit["_version"] = stored.version
    if req.seq_no:
        hit["_seq_no"] = stored.seq_no
        hit["_primary_term"] = stored.primary_term
    hit["_score"] = score if req.scoring else None
    if stored.routing is not None:
        hit["_routing"] = stored.routing
    if doc.fields.get(IGNORED):
        hit["_ignored"] = list(doc.fields[IGNORED])
    source_enabled = (ctxs[stored.index].mapping.root.get("_source") or {}).get("enabled") is not False
    if req.fetch_source and not req.stored_none and source_enabled:
        hit["_source"] = filter_source(stored.source, req.includes, req.excludes)
    fields = _fetch_fields(req, doc, ctxs[stored.index])
    if fields:
        hit["fields"] = fields
    if req.highlight is not None:
        marked = highlight(req.highlight, req.query.highlight_terms(), stored.source, ctxs[stored.index].mapping)
        if marked:
            hit["highlight"] = marked
    ignored_values = _ignored_values(req, doc, ctxs[stored.index])
    if ignored_values:
        hit["ignored_field_values"] = ignored_values
    if sort_values is not None:
        hit["sort"] = [_render_sort(v, spec, ctxs[stored.index]) for v, spec in zip(sort_values, req.sort or [],
                                                                                   strict=False)]
    if req.explain:
        hit["_shard"] = f"[{stored.index}][0]"
        hit["_explanation"] = {"value": score, "description": "sum of:" if req.scoring else "constant score",
                               "details": []}
    named = ctxs[stored.index].named.get(id(doc))
    if named:
        names = sorted(named)
        hit["matched_queries"] = {n: named[n] for n in names} if req.named_scores else names
    return hit


def _render_sort(value: Any, spec: SortSpec, ctx: ShardContext) -> Any:
    if spec.format and isinstance(value, int) and not isinstance(value, bool):
        fd = ctx.field(spec.field)
        if fd is not None and fd.date_format is not None:
            if spec.numeric_type == "date_nanos" or (spec.numeric_type is None and fd.type == "date_nanos"):
                return DateFormat(spec.format).format_nanos(value)
            return DateFormat(spec.format).format(value)
    return render_sort_value(value)


def _field_fetcher(req: SearchRequest, ctx: ShardContext) -> FieldFetcher | None:
    """The `fields` (and stored `store: true` fields) fetcher of one index; shard errors as ES."""
    patterns = parse_field_patterns(req.fields) if req.fields is not None else []
    for name in req.stored_list:
        fd = ctx.mapping.fields().get(name)
        if fd is not None and fd.params.get("store") is True:
            patterns.append(FieldPattern(name))
    if not patterns:
        return None
    if req.fields is not None and (ctx.mapping.root.get("_source") or {}).get("enabled") is False:
        raise _limit_error("Unable to retrieve the requested [fields] since _source is disabled in the mappings "
                           f"for index [{ctx.index}]")
    try:
        return FieldFetcher(ctx.mapping, patterns)
    except FieldsFormatError as exc:
        raise _limit_error(str(exc)) from exc


def _fetch_fields(req: SearchRequest, doc: Doc, ctx: ShardContext) -> dict[str, Any]:
    out: dict[str, Any] = {}
    fetcher = req.fetchers.get(ctx.index)
    if fetcher is not None:
        out.update(fetcher.fetch(doc.stored.source))
    for entry in req.docvalue_fields or []:
        name, fmt = (entry.get("field"), entry.get("format")) if isinstance(entry, dict) else (entry, None)
        if not isinstance(name, str):
            continue
        for path in ctx.mapping.match_fields(name):
            fd = ctx.field(path)
            if fd is None or fd.is_text:
                continue
            raw = sorted(doc.fields.get(fd.path, []), key=lambda v: (str(type(v)), v))
            if fd.type in KEYWORD_TYPES or fd.type == "ip":
                raw = list(dict.fromkeys(raw))  # keyword doc values are a sorted set
            out[path] = [_format_value(fd, v, fmt) for v in raw]
            if not out[path]:
                del out[path]
    return out


def _ignored_values(req: SearchRequest, doc: Doc, ctx: ShardContext) -> dict[str, list[Any]]:
    out: dict[str, list[Any]] = {}
    names = [e.get("field") if isinstance(e, dict) else e for e in req.fields or []]
    for path, value in doc.fields.get(IGNORED_VALUES, []):
        if any(isinstance(n, str) and path in ctx.mapping.match_fields(n) for n in names):
            out.setdefault(path, []).append(value)
    return out


def _format_value(fd: FieldDef, value: Any, fmt: str | None) -> Any:
    if fd.type in DATE_TYPES and isinstance(value, int):
        return fd.format_date(value, DateFormat(fmt) if fmt else None)
    if fmt and isinstance(value, int | float) and not isinstance(value, bool):
        return decimal_format(float(value), fmt)
    if fd.type == "boolean":
        return bool(value)
    return value


def decimal_format(value: float, pattern: str) -> str:
    """Java DecimalFormat for the simple patterns docvalue_fields use (`#.0`, `0.00`, `#,##0.###`)."""
    integer, _, fraction = pattern.partition(".")
    min_frac = fraction.count("0")
    max_frac = min_frac + fraction.count("#")
    text = f"{value:.{max_frac}f}"
    if "." in text:
        whole, frac = text.split(".")
        frac = frac.rstrip("0")
        frac = frac + "0" * (min_frac - len(frac))
    else:
        whole, frac = text, ""
    if "," in integer:
        whole = f"{int(whole):,}"
    min_int = integer.replace(",", "").count("0")
    if whole in ("0", "-0") and min_int == 0 and frac:
        whole = whole[:-1]
    return f"{whole}.{frac}" if frac else whole


def execute_count(
    docs: Sequence[StoredDoc],
    body: dict[str, Any],
    mappings: Mapping[str, IndexMapping],
    *,
    settings: Mapping[str, Mapping[str, Any]] | None = None,
    uuids: Mapping[str, str] | None = None,
    get_source: SourceLookup | None = None,
) -> int:
    """`_count`: how many documents match `query` (body may hold only `query`)."""
    body = body or {}
    for key in body:
        if key != "query":
            raise parsing_exception(f"request does not support [{key}]")
    query = parse_query(body["query"]) if body.get("query") is not None else MatchAll()
    ctxs = _docs_by_index(docs, mappings, now_millis(), settings=settings, uuids=uuids, get_source=get_source)
    count, ok, failures = 0, 0, []
    for name, ctx in ctxs.items():
        try:
            matcher = query.compile(ctx)
            count += sum(1 for d in ctx.docs if matcher(d) is not None)
            ok += 1
        except ShardFailure as failure:
            failures.append((name, failure))
    if failures and not ok:
        raise shard_failures_error(failures)
    return count
