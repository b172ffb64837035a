"""The query DSL: parse (coordinating-node errors) then compile per index (shard errors) and match."""

from __future__ import annotations

import base64
import binascii
import json
import math
import re
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .analysis import analyze, normalize_keyword
from .datemath import DateFormat, DateParseError, parse_math, parse_time_zone
from .errors import ESError, parsing_exception
from .fieldpath import values_at
from .fieldtypes import (
    DATE_TYPES,
    INTEGER_RANGES,
    KEYWORD_TYPES,
    NUMERIC_TYPES,
    FieldDef,
    MalformedValue,
    narrow_float,
)
from .mapping import IndexedFields, IndexMapping
from .model import StoredDoc

Matcher = Callable[["Doc"], float | None]


class ShardFailure(Exception):
    """A failure on one shard (index): becomes `failed_shards[].reason` of search_phase_execution_exception."""

    def __init__(self, reason: dict[str, Any], status: int = 400) -> None:
        super().__init__(reason.get("reason"))
        self.reason = reason
        self.status = status


@dataclass
class Doc:
    """A candidate document with what it indexed."""

    stored: StoredDoc
    fields: IndexedFields
    shard: int  # position of its index in the request (the shard index of `_shard_doc`)
    score: float = 0.0  # set once the main query matched it (used by `top_hits`)


@dataclass
class ShardContext:
    """What compiling a query needs about one index."""

    index: str
    mapping: IndexMapping
    now_ms: int
    docs: Sequence[Doc] = ()
    settings: Mapping[str, Any] = field(default_factory=dict)
    uuid: str | None = None
    lookup: Callable[[str, str], dict[str, Any] | None] | None = None
    named: dict[int, dict[str, float]] = field(default_factory=dict)
    _stats: dict[str, tuple[int, float, dict[Any, int]]] = field(default_factory=dict)

    def setting(self, name: str, default: int) -> int:
        try:
            return int(self.settings.get(name, default))
        except (TypeError, ValueError):
            return default

    def field(self, name: str) -> FieldDef | None:
        if name in ("_id", "_index", "_routing", "_tier", "_ignored"):
            return FieldDef(name, "keyword")
        if name in ("_seq_no", "_version", "_primary_term"):
            return FieldDef(name, "long")
        return self.mapping.field(name)

    def stats(self, path: str) -> tuple[int, float, dict[Any, int]]:
        """(docs with the field, average field length, document frequency per term) for BM25-like scores."""
        found = self._stats.get(path)
        if found is None:
            count, total = 0, 0
            df: dict[Any, int] = {}
            for doc in self.docs:
                values = doc.fields.get(path)
                if values is None:
                    continue
                count += 1
                total += len(values)
                for term in set(map(_hashable, values)):
                    df[term] = df.get(term, 0) + 1
            found = (count, (total / count) if count else 1.0, df)
            self._stats[path] = found
        return found

    def term_score(self, path: str, term: Any, doc: Doc, boost: float) -> float:
        fd = self.mapping.fields().get(path)
        if path.startswith("_") or fd is None or not (fd.is_text or fd.type in KEYWORD_TYPES):
            return boost  # points / doc-values queries score a constant, as in ES
        count, avg_len, df = self.stats(path)
        values = doc.fields.get(path, [])
        tf = sum(1 for v in values if v == term)
        n = df.get(_hashable(term), 0)
        idf = math.log(1 + (count - n + 0.5) / (n + 0.5))
        k1, b = 1.2, 0.75
        norm = k1 * (1 - b + b * len(values) / avg_len) if avg_len else k1
        return boost * idf * (tf * (k1 + 1)) / (tf + norm) if tf else 0.0

    def query_shard_error(self, reason: str, cause: dict[str, Any] | None = None) -> ShardFailure:
        obj: dict[str, Any] = {"type": "query_shard_exception", "reason": reason}
        if self.uuid is not None:
            obj["index_uuid"] = self.uuid
        obj["index"] = self.index
        if cause is not None:
            obj["caused_by"] = cause
        return ShardFailure(obj)


def _hashable(value: Any) -> Any:
    return value if not isinstance(value, dict | list) else repr(value)


def values_of(doc: Doc, path: str) -> list[Any]:
    if path == "_id":
        return [doc.stored.id]
    if path == "_index":
        return [doc.stored.index]
    if path == "_routing":
        return [doc.stored.routing] if doc.stored.routing is not None else []
    if path == "_seq_no":
        return [doc.stored.seq_no]
    if path == "_version":
        return [doc.stored.version]
    if path == "_primary_term":
        return [doc.stored.primary_term]
    return doc.fields.get(path, [])


# --- the AST ----------------------------------------------------------------------------------


class Query:
    """A parsed query clause."""

    boost: float = 1.0
    query_name: str | None = None  # `_name`: reported in the hit's `matched_queries`

    def compile(self, ctx: ShardContext) -> Matcher:
        matcher = self._compile(ctx)
        name = self.query_name
        if name is None:
            return matcher

        def named(doc: Doc) -> float | None:
            score = matcher(doc)
            if score is not None:
                ctx.named.setdefault(id(doc), {})[name] = score
            return score

        return named

    def _compile(self, ctx: ShardContext) -> Matcher:
        raise NotImplementedError


def parse_query(body: Any, where: str = "query") -> Query:
    """Parse one query clause `{"type": {...}}`."""
    if not isinstance(body, dict):
        raise parsing_exception("[_na] query malformed, must start with start_object")
    if not body:
        raise parsing_exception("query malformed, empty clause found at [1:1]")
    kind, spec = next(iter(body.items()))
    if len(body) > 1:
        second = list(body)[1]
        raise parsing_exception(f"[{kind}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]")
        del second
    parser = _PARSERS.get(kind)
    if parser is None:
        raise ESError(
            400,
            "parsing_exception",
            f"unknown query [{kind}]",
            line=1,
            col=1,
            caused_by={"type": "named_object_not_found_exception", "reason": f"[1:1] unknown field [{kind}]"},
        )
    if not isinstance(spec, dict):
        raise parsing_exception(f"[{kind}] query malformed, no start_object after query name")
    query = parser(spec)
    query.query_name = _query_name(spec)
    return query


def _query_name(spec: dict[str, Any]) -> str | None:
    if isinstance(spec.get("_name"), str):
        return str(spec["_name"])
    for value in spec.values():
        if isinstance(value, dict) and isinstance(value.get("_name"), str):
            return str(value["_name"])
    return None


def _boost(spec: dict[str, Any], kind: str) -> float:
    value = spec.get("boost", 1.0)
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise parsing_exception(f"[{kind}] boost must be a number") from exc


def _check_keys(kind: str, spec: dict[str, Any], allowed: set[str]) -> None:
    for key in spec:
        if key not in allowed:
            raise parsing_exception(f"[{kind}] query does not support [{key}]")


def _single_field(
    kind: str, spec: dict[str, Any], extra: frozenset[str] = frozenset()
) -> tuple[str, Any, dict[str, Any]]:
    """`{field: value}` or `{field: {..params}}` plus query-level boost/_name."""
    fields = [k for k in spec if k not in ("boost", "_name") and k not in extra]
    if not fields:
        raise parsing_exception(f"No field specified for {kind} query")
    if len(fields) > 1:
        raise parsing_exception(
            f"[{kind}] query doesn't support multiple fields, found [{fields[0]}] and [{fields[1]}]"
        )
    name = fields[0]
    outer = {k: v for k, v in spec.items() if k != name}
    return name, spec[name], outer


class MatchAll(Query):
    def __init__(self, boost: float = 1.0) -> None:
        self.boost = boost

    def _compile(self, ctx: ShardContext) -> Matcher:
        boost = self.boost
        return lambda _doc: boost


class MatchNone(Query):
    def _compile(self, ctx: ShardContext) -> Matcher:
        return lambda _doc: None


def _parse_match_all(spec: dict[str, Any]) -> Query:
    _check_keys("match_all", spec, {"boost", "_name"})
    return MatchAll(_boost(spec, "match_all"))


def _parse_match_none(spec: dict[str, Any]) -> Query:
    _check_keys("match_none", spec, {"boost", "_name"})
    return MatchNone()


# --- bool and compound -----------------------------------------------------------------------


def _clauses(kind: str, value: Any) -> list[Query]:
    if isinstance(value, dict):
        return [parse_query(value)]
    if isinstance(value, list):
        return [parse_query(v) for v in value]
    raise parsing_exception(f"[bool] query does not support [{kind}]")


def min_should(spec: Any, optional: int) -> int:
    """ES `minimum_should_match` semantics for ``optional`` clauses."""
    if spec is None:
        return 0
    try:
        return _min_should(spec, optional)
    except ValueError as exc:
        raise parsing_exception(f"[bool] failed to parse field [minimum_should_match] value [{spec}]") from exc


def _min_should(spec: Any, optional: int) -> int:
    text = str(spec).strip()
    if "<" in text:
        result = optional
        for part in text.split():
            bound, _, rule = part.partition("<")
            if optional > int(bound):
                result = _min_should(rule, optional)
        return result
    if text.endswith("%"):
        pct = float(text[:-1])
        n = int(optional * abs(pct) / 100)
        result = n if pct >= 0 else optional - n
    else:
        n = int(float(text))
        result = n if n >= 0 else optional + n
    return max(0, min(result, optional)) if result >= 0 else 0


class Bool(Query):
    def __init__(self, spec: dict[str, Any]) -> None:
        _check_keys("bool", spec, {"must", "filter", "should", "must_not", "minimum_should_match", "boost",
                                   "_name", "adjust_pure_negative", "disable_coord"})
        self.must = _clauses("must", spec.get("must", []))
        self.filter = _clauses("filter", spec.get("filter", []))
        self.should = _clauses("should", spec.get("should", []))
        self.must_not = _clauses("must_not", spec.get("must_not", []))
        self.msm = spec.get("minimum_should_match")
        self.boost = _boost(spec, "bool")

    def _compile(self, ctx: ShardContext) -> Matcher:
        must = [q.compile(ctx) for q in self.must]
        filt = [q.compile(ctx) for q in self.filter]
        should = [q.compile(ctx) for q in self.should]
        must_not = [q.compile(ctx) for q in self.must_not]
        if self.msm is not None:
            required = min_should(self.msm, len(should))
            if str(self.msm).strip().endswith("%") is False and _int_or_none(self.msm) is not None and \
                    int(str(self.msm)) > len(should):
                required = len(should) + 1  # more than there are: nothing matches
        else:
            required = 0 if (must or filt) else (1 if should else 0)
        boost = self.boost
        empty = not (must or filt or should or must_not)

        def match(doc: Doc) -> float | None:
            if empty:
                return boost
            score = 0.0
            for m in must:
                s = m(doc)
                if s is None:
                    return None
                score += s
            for m in filt:
                if m(doc) is None:
                    return None
            for m in must_not:
                if m(doc) is not None:
                    return None
            hits = 0
            for m in should:
                s = m(doc)
                if s is not None:
                    hits += 1
                    score += s
            if hits < required:
                return None
            return score * boost

        return match


def _int_or_none(value: Any) -> int | None:
    try:
        return int(str(value))
    except ValueError:
        return None


class ConstantScore(Query):
    def __init__(self, spec: dict[str, Any]) -> None:
        _check_keys("constant_score", spec, {"filter", "boost", "_name"})
        if "filter" not in spec:
            raise parsing_exception("[constant_score] requires a 'filter' element")
        self.inner = parse_query(spec["filter"])
        self.boost = _boost(spec, "constant_score")

    def _compile(self, ctx: ShardContext) -> Matcher:
        inner, boost = self.inner.compile(ctx), self.boost
        return lambda doc: boost if inner(doc) is not None else None


class DisMax(Query):
    def __init__(self, spec: dict[str, Any]) -> None:
        _check_keys("dis_max", spec, {"queries", "tie_breaker", "boost", "_name"})
        self.queries = _clauses("queries", spec.get("queries", []))
        self.tie = float(spec.get("tie_breaker", 0.0))
        self.boost = _boost(spec, "dis_max")

    def _compile(self, ctx: ShardContext) -> Matcher:
        inner = [q.compile(ctx) for q in self.queries]
        tie, boost = self.tie, self.boost

        def match(doc: Doc) -> float | None:
            scores = [s for s in (m(doc) for m in inner) if s is not None]
            if not scores:
                return None
            best = max(scores)
            return (best + tie * (sum(scores) - best)) * boost

        return match


class Boosting(Query):
    def __init__(self, spec: dict[str, Any]) -> None:
        _check_keys("boosting", spec, {"positive", "negative", "negative_boost", "boost", "_name"})
        self.positive = parse_query(spec.get("positive", {"match_all": {}}))
        self.negative = parse_query(spec.get("negative", {"match_none": {}}))
        self.factor = float(spec.get("negative_boost", 0.5))
        self.boost = _boost(spec, "boosting")

    def _compile(self, ctx: ShardContext) -> Matcher:
        pos, neg, factor, boost = self.positive.compile(ctx), self.negative.compile(ctx), self.factor, self.boost

        def match(doc: Doc) -> float | None:
            s = pos(doc)
            if s is None:
                return None
            return s * boost * (factor if neg(doc) is not None else 1.0)

        return match


class Wrapper(Query):
    """Queries that only wrap an inner query for our purposes (function_score, nested, has_*)."""

    def __init__(self, kind: str, spec: dict[str, Any], key: str = "query") -> None:
        self.kind = kind
        self.inner = parse_query(spec[key]) if key in spec else MatchAll()
        self.path = spec.get("path")
        self.ignore_unmapped = bool(spec.get("ignore_unmapped", False))
        self.boost = _boost(spec, kind)
        self.min_score = spec.get("min_score")

    def _compile(self, ctx: ShardContext) -> Matcher:
        if self.kind == "nested" and isinstance(self.path, str):
            obj = ctx.mapping.objects().get(self.path)
            if obj is None or obj.get("type") != "nested":
                if self.ignore_unmapped:
                    return lambda _doc: None
                raise ctx.query_shard_error(f"[nested] failed to find nested object under path [{self.path}]")
        inner, boost = self.inner.compile(ctx), self.boost
        min_score = float(self.min_score) if self.min_score is not None else None

        def match(doc: Doc) -> float | None:
            s = inner(doc)
            if s is None or (min_score is not None and s * boost < min_score):
                return None
            return s * boost

        return match


# --- term-level queries ----------------------------------------------------------------------


def _term_value(ctx: ShardContext, fd: FieldDef, value: Any) -> Any:
    """A query value coerced to the field's indexed form (query_shard_exception if it can't be)."""
    if fd.type in KEYWORD_TYPES or fd.path in ("_id", "_index", "_routing"):
        if isinstance(value, dict | list):
            raise ctx.query_shard_error(f"failed to create query: Can't parse value of type {type(value)}")
        text = "true" if value is True else "false" if value is False else str(value)
        return normalize_keyword(text, fd.params.get("normalizer"))
    if fd.is_text:
        return "true" if value is True else "false" if value is False else str(value)
    if fd.type in INTEGER_RANGES and isinstance(value, float) and not value.is_integer():
        return _NO_MATCH
    if fd.type in INTEGER_RANGES and isinstance(value, str):
        try:
            f = float(value)
            if not f.is_integer():
                return _NO_MATCH
        except ValueError:
            pass
    try:
        return fd.coerce(value)
    except MalformedValue as exc:
        if fd.type in DATE_TYPES:
            cause = exc.cause
            raise ShardFailure({"type": "parse_exception", "reason": f"{cause['reason']}: [{cause['reason']}]",
                                "caused_by": cause}) from exc
        raise ctx.query_shard_error(f"failed to create query: {exc.cause['reason']}", exc.cause) from exc


_NO_MATCH = object()


class Term(Query):
    def __init__(self, spec: dict[str, Any]) -> None:
        name, value, _ = _single_field("term", spec)
        self.field = name
        self.case_insensitive = False
        if isinstance(value, dict):
            _check_keys("term", value, {"value", "boost", "_name", "case_insensitive"})
            if "value" not in value:
                raise parsing_exception("[term] query does not support [value] being null" if False else
                                        "value cannot be null")
            self.boost = _boost(value, "term")
            self.case_insensitive = bool(value.get("case_insensitive", False))
            value = value["value"]
        else:
            self.boost = _boost(spec, "term")
        if value is None:
            raise ESError(400, "illegal_argument_exception", "value cannot be null")
        if isinstance(value, list):
            raise parsing_exception("[term] query does not support array of values")
        self.value = value

    def _compile(self, ctx: ShardContext) -> Matcher:
        fd = ctx.field(self.field)
        if fd is None or not fd.searchable:
            return lambda _doc: None
        term = _term_value(ctx, fd, self.value)
        if term is _NO_MATCH:
            return lambda _doc: None
        path, boost = fd.path, self.boost
        if self.case_insensitive and isinstance(term, str):
            low = term.lower()
            return lambda doc: boost if any(str(v).lower() == low for v in values_of(doc, path)) else None
        if path.startswith("_"):
            return lambda doc: boost if term in values_of(doc, path) else None

        def match(doc: Doc) -> float | None:
            if term not in doc.fields.get(path, ()):
                return None
            return ctx.term_score(path, term, doc, boost)

        return match


class Terms(Query):
    def __init__(self, spec: dict[str, Any]) -> None:
        name, value, _ = _single_field("terms", spec, frozenset({"format"}))
        self.lookup: dict[str, Any] | None = None
        if isinstance(value, dict):
            for key in value:
                if key not in ("index", "id", "path", "routing", "type"):
                    raise parsing_exception(f"[terms] unknown token [{key}] in terms lookup")
            if "id" not in value or "path" not in value or "index" not in value:
                raise parsing_exception("[terms] query lookup element requires specifying the index, id and path.")
            self.lookup = value
            value = []
        elif not isinstance(value, list):
            raise parsing_exception(f"[terms] query does not support [{name}]")
        self.field, self.values = name, value
        self.boost = _boost(spec, "terms")

    def _lookup_values(self, ctx: ShardContext) -> list[Any]:
        assert self.lookup is not None
        source = ctx.lookup(str(self.lookup["index"]), str(self.lookup["id"])) if ctx.lookup else None
        if source is None:
            return []
        return [v for v in values_at(source, str(self.lookup["path"])) if not isinstance(v, dict)]

    def _compile(self, ctx: ShardContext) -> Matcher:
        fd = ctx.field(self.field)
        if fd is None or not fd.searchable:
            return lambda _doc: None
        values = self._lookup_values(ctx) if self.lookup is not None else self.values
        limit = ctx.setting("index.max_terms_count", 65536)
        if len(values) > limit:
            raise ShardFailure({
                "type": "illegal_argument_exception",
                "reason": f"The number of terms [{len(values)}] used in the Terms Query request has exceeded "
                          f"the allowed maximum of [{limit}]. This maximum can be set by changing the "
                          "[index.max_terms_count] index level setting.",
            })
        wanted = {_hashable(_term_value(ctx, fd, v)) for v in values if v is not None}
        wanted.discard(_NO_MATCH)
        path, boost = fd.path, self.boost
        return lambda doc: boost if any(_hashable(v) in wanted for v in values_of(doc, path)) else None


class Ids(Query):
    def __init__(self, spec: dict[str, Any]) -> None:
        _check_keys("ids", spec, {"values", "boost", "_name", "type"})
        values = spec.get("values", [])
        if not isinstance(values, list):
            raise parsing_exception("[ids] failed to parse field [values]")
        self.ids = {str(v) for v in values}
        self.boost = _boost(spec, "ids")

    def _compile(self, ctx: ShardContext) -> Matcher:
        ids, boost = self.ids, self.boost
        return lambda doc: boost if doc.stored.id in ids else None


class Exists(Query):
    def __init__(self, spec: dict[str, Any]) -> None:
        _check_keys("exists", spec, {"field", "boost", "_name"})
        if "field" not in spec:
            raise parsing_exception("[exists] must be provided with a [field]")
        self.field = str(spec["field"])
        self.boost = _boost(spec, "exists")

    def _compile(self, ctx: ShardContext) -> Matcher:
        name, boost = self.field, self.boost
        if name in ("_id", "_index", "_seq_no", "_version", "_primary_term"):
            return lambda _doc: boost
        if name == "_source":
            raise ctx.query_shard_error("Field [_source] of type [_source] does not support exists queries")
        if name in ("_routing", "_ignored"):
            return lambda doc: boost if values_of(doc, name) else None
        paths = [fd.path for p in ctx.mapping.match_fields(name) if (fd := ctx.field(p)) is not None]
        prefixes: list[str] = []
        if "*" not in name and ctx.mapping.is_object(name):
            prefixes.append(name + ".")
        if not paths and not prefixes:
            return lambda _doc: None

        def match(doc: Doc) -> float | None:
            for p in paths:
                if p in doc.fields:
                    return boost
            for prefix in prefixes:
                if any(k.startswith(prefix) for k in doc.fields):
                    return boost
            return None

        return match


class Range(Query):
    KEYS = {"gt", "gte", "lt", "lte", "from", "to", "include_lower", "include_upper", "format", "time_zone",
            "boost", "_name", "relation"}

    def __init__(self, spec: dict[str, Any]) -> None:
        name, value, _ = _single_field("range", spec)
        if not isinstance(value, dict):
            raise parsing_exception("[range] query malformed, no start_object after query name")
        _check_keys("range", value, self.KEYS)
        self.field = name
        self.boost = _boost(value, "range")
        lower_inc = bool(value.get("include_lower", True))
        upper_inc = bool(value.get("include_upper", True))
        self.lower: Any = value.get("from")
        self.upper: Any = value.get("to")
        self.lower_inc, self.upper_inc = lower_inc, upper_inc
        if "gt" in value:
            self.lower, self.lower_inc = value["gt"], False
        if "gte" in value:
            self.lower, self.lower_inc = value["gte"], True
        if "lt" in value:
            self.upper, self.upper_inc = value["lt"], False
        if "lte" in value:
            self.upper, self.upper_inc = value["lte"], True
        self.format = value.get("format")
        self.time_zone = value.get("time_zone")
        self.relation = str(value.get("relation", "intersects")).lower()
        if self.relation not in ("intersects", "within", "contains"):
            raise parsing_exception(f"[range] query does not support relation [{self.relation}]")
        if self.time_zone is not None:
            try:
                parse_time_zone(str(self.time_zone))
            except ValueError as exc:
                raise parsing_exception("[range] failed to parse field [time_zone]") from exc

    def _compile(self, ctx: ShardContext) -> Matcher:
        fd = ctx.field(self.field)
        if fd is None or not fd.searchable:
            return lambda _doc: None
        low, high = self.lower, self.upper
        if fd.type in DATE_TYPES:
            fmt = DateFormat(self.format) if self.format else fd.date_format
            assert fmt is not None
            tz = parse_time_zone(self.time_zone)

            nanos = fd.type == "date_nanos"

            def bound(value: Any, round_up: bool) -> Any:
                try:
                    if nanos and not (isinstance(value, str) and (value.startswith("now") or "||" in value)):
                        return fmt.parse_nanos(value, round_up=round_up, tz=tz)
                    ms = parse_math(value, fmt, ctx.now_ms, round_up=round_up, tz=tz)
                    return ms * 1_000_000 + (999_999 if round_up else 0) if nanos else ms
                except DateParseError as exc:
                    reason = f"failed to parse date field [{value}] with format [{fmt.spec}]"
                    raise ShardFailure({
                        "type": "parse_exception",
                        "reason": f"{reason}: [{reason}]",
                        "caused_by": {"type": "illegal_argument_exception", "reason": reason,
                                      "caused_by": {"type": "date_time_parse_exception",
                                                    "reason": f"Text '{value}' could not be parsed at index 0"}},
                    }) from exc

            lo = bound(low, round_up=not self.lower_inc) if low is not None else None
            hi = bound(high, round_up=self.upper_inc) if high is not None else None
        elif fd.type in NUMERIC_TYPES:
            lo = _numeric_bound(ctx, fd, low)
            hi = _numeric_bound(ctx, fd, high)
        elif fd.type in ("boolean", "ip"):
            lo = _term_value(ctx, fd, low) if low is not None else None
            hi = _term_value(ctx, fd, high) if high is not None else None
        else:
            lo = str(low) if low is not None else None
            hi = str(high) if high is not None else None
        key: Callable[[Any], Any] = _ip_key if fd.type == "ip" else (lambda v: v)
        lo_inc, hi_inc, path, boost = self.lower_inc, self.upper_inc, fd.path, self.boost

        def inside(v: Any) -> bool:
            try:
                if lo is not None and (key(v) < key(lo) or (not lo_inc and key(v) == key(lo))):
                    return False
                return not (hi is not None and (key(v) > key(hi) or (not hi_inc and key(v) == key(hi))))
            except TypeError:
                return False

        return lambda doc: boost if any(inside(v) for v in values_of(doc, path)) else None


def _ip_key(value: Any) -> tuple[int, int]:
    import ipaddress

    addr = ipaddress.ip_address(str(value))
    if isinstance(addr, ipaddress.IPv4Address):
        return (0, int(addr))
    return (1, int(addr))


def _numeric_bound(ctx: ShardContext, fd: FieldDef, value: Any) -> float | None:
    if value is None:
        return None
    try:
        number = float(str(value).strip()) if not isinstance(value, int | float) or isinstance(value, bool) \
            else float(value)
    except ValueError as exc:
        cause = {"type": "number_format_exception", "reason": f'For input string: "{value}"'}
        raise ctx.query_shard_error(f"failed to create query: For input string: \"{value}\"", cause) from exc
    if fd.type in ("float", "half_float"):
        # Bounds are parsed at the field's precision, as ES does.
        try:
            return narrow_float(number, fd.type)
        except OverflowError:
            return math.copysign(math.inf, number)
    return number


class _PatternQuery(Query):
    """prefix / wildcard / regexp / fuzzy: a per-term predicate over keyword values or text tokens."""

    kind = "prefix"
    value_keys: tuple[str, ...] = ("value",)

    def __init__(self, spec: dict[str, Any]) -> None:
        name, value, _ = _single_field(self.kind, spec)
        self.field = name
        self.case_insensitive = False
        self.params: dict[str, Any] = {}
        if isinstance(value, dict):
            for key in self.value_keys:
                if key in value:
                    self.value = value[key]
                    break
            else:
                raise parsing_exception(f"[{self.kind}] query does not support [{self.kind}] without a value")
            self.boost = _boost(value, self.kind)
            self.case_insensitive = bool(value.get("case_insensitive", False))
            self.params = value
        else:
            self.value = value
            self.boost = 1.0

    def predicate(self, pattern: str) -> Callable[[str], bool]:
        raise NotImplementedError

    def _compile(self, ctx: ShardContext) -> Matcher:
        fd = ctx.field(self.field)
        if fd is None or not fd.searchable:
            return lambda _doc: None
        if fd.type not in KEYWORD_TYPES and not fd.is_text and fd.path not in ("_id", "_index", "_routing") \
                and (fd.type in NUMERIC_TYPES or fd.type in DATE_TYPES or fd.type in ("boolean", "ip")):
            raise ctx.query_shard_error(
                f"Can only use {self.kind} queries on keyword and text fields - not on [{self.field}] "
                f"which is of type [{fd.type}]"
            )
        pattern = str(self.value)
        if fd.type in KEYWORD_TYPES:
            pattern = normalize_keyword(pattern, fd.params.get("normalizer"))
        if self.case_insensitive:
            pattern = pattern.lower()
        test = self.predicate(pattern)
        ci, path, boost = self.case_insensitive, fd.path, self.boost
        return lambda doc: boost if any(test(str(v).lower() if ci else str(v)) for v in values_of(doc, path)) \
            else None


class Prefix(_PatternQuery):
    kind = "prefix"

    def predicate(self, pattern: str) -> Callable[[str], bool]:
        return lambda v: v.startswith(pattern)


def wildcard_regex(pattern: str) -> re.Pattern[str]:
    out = []
    i = 0
    while i < len(pattern):
        c = pattern[i]
        if c == "\\" and i + 1 < len(pattern):
            out.append(re.escape(pattern[i + 1]))
            i += 2
            continue
        out.append(".*" if c == "*" else "." if c == "?" else re.escape(c))
        i += 1
    return re.compile("".join(out), re.S)


class Wildcard(_PatternQuery):
    kind = "wildcard"
    value_keys = ("value", "wildcard")

    def predicate(self, pattern: str) -> Callable[[str], bool]:
        rx = wildcard_regex(pattern)
        return lambda v: rx.fullmatch(v) is not None


class Regexp(_PatternQuery):
    kind = "regexp"

    def _compile(self, ctx: ShardContext) -> Matcher:
        check_regex_length(ctx, str(self.value), "Regexp")
        return super()._compile(ctx)

    def predicate(self, pattern: str) -> Callable[[str], bool]:
        try:
            rx = re.compile(pattern, re.S)
        except re.error:
            return lambda _v: False
        return lambda v: rx.fullmatch(v) is not None


class Fuzzy(_PatternQuery):
    kind = "fuzzy"

    def predicate(self, pattern: str) -> Callable[[str], bool]:
        fuzz = str(self.params.get("fuzziness", "AUTO"))

        def allowed(term: str) -> int:
            if fuzz.upper().startswith("AUTO"):
                n = len(term)
                return 0 if n < 3 else 1 if n < 6 else 2
            return int(float(fuzz))

        return lambda v: _edit_distance(pattern, v) <= allowed(pattern)


def check_regex_length(ctx: ShardContext, pattern: str, kind: str) -> None:
    limit = ctx.setting("index.max_regex_length", 1000)
    if len(pattern) > limit:
        raise ShardFailure({
            "type": "illegal_argument_exception",
            "reason": f"The length of regex [{len(pattern)}] used in the {kind} Query request has exceeded the "
                      f"allowed maximum of [{limit}]. This maximum can be set by changing the "
                      "[index.max_regex_length] index level setting.",
        })


def _edit_distance(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a, 1):
        cur = [i]
        for j, cb in enumerate(b, 1):
            cur.append(min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca != cb)))
        prev = cur
    return prev[-1]


# --- full-text queries -----------------------------------------------------------------------


def _text_terms(ctx: ShardContext, fd: FieldDef, text: Any, analyzer: str | None, lenient: bool) -> list[Any] | None:
    """Terms a full-text query looks for in ``fd``; None when a lenient query can't coerce."""
    if fd.is_text:
        return analyze(str(text) if not isinstance(text, bool) else str(text).lower(),
                       analyzer or fd.search_analyzer)
    try:
        term = _term_value(ctx, fd, text)
    except ShardFailure:
        if lenient:
            return None
        raise
    return [] if term is _NO_MATCH else [term]


class Match(Query):
    KEYS = {"query", "operator", "minimum_should_match", "analyzer", "fuzziness", "lenient", "zero_terms_query",
            "boost", "_name", "auto_generate_synonyms_phrase_query", "prefix_length", "max_expansions",
            "fuzzy_transpositions", "fuzzy_rewrite", "cutoff_frequency"}

    def __init__(self, spec: dict[str, Any]) -> None:
        name, value, _ = _single_field("match", spec)
        self.field = name
        params: dict[str, Any] = {}
        if isinstance(value, dict):
            _check_keys("match", value, self.KEYS)
            params = value
            if "query" not in value:
                raise parsing_exception("No text specified for text query")
            value = value["query"]
        self.text = value
        self.operator = str(params.get("operator", "or")).lower()
        if self.operator not in ("or", "and"):
            raise parsing_exception(f"[match] query does not support [operator] value [{self.operator}]")
        self.msm = params.get("minimum_should_match")
        self.analyzer = params.get("analyzer")
        self.lenient = bool(params.get("lenient", False))
        self.zero_terms_all = str(params.get("zero_terms_query", "none")).lower() == "all"
        self.fuzziness = params.get("fuzziness")
        self.boost = _boost(params, "match")

    def _compile(self, ctx: ShardContext) -> Matcher:
        fd = ctx.field(self.field)
        if fd is None or not fd.searchable:
            return lambda _doc: None
        terms = _text_terms(ctx, fd, self.text, self.analyzer, self.lenient)
        if terms is None:
            return lambda _doc: None
        if not terms:
            return (lambda _doc: 0.0 if False else 1.0) if self.zero_terms_all else (lambda _doc: None)
        required = len(terms) if self.operator == "and" else max(1, min_should(self.msm, len(terms)) or 1)
        if self.msm is not None and self.operator == "or":
            required = min_should(self.msm, len(terms))
            if required == 0:
                required = 1
        path, boost = fd.path, self.boost
        fuzzy = self.fuzziness is not None and fd.is_text

        def has(doc: Doc, term: Any) -> bool:
            vals = values_of(doc, path)
            if term in vals:
                return True
            return fuzzy and any(_edit_distance(str(term), str(v)) <= _auto_fuzz(self.fuzziness, str(term))
                                 for v in vals)

        def match(doc: Doc) -> float | None:
            if not values_of(doc, path):
                return None
            found = [t for t in terms if has(doc, t)]
            if len(found) < required:
                return None
            return sum(ctx.term_score(path, t, doc, boost) for t in found) or boost * 0.0

        return match


def _auto_fuzz(fuzz: Any, term: str) -> int:
    text = str(fuzz).upper()
    if text.startswith("AUTO"):
        return 0 if len(term) < 3 else 1 if len(term) < 6 else 2
    return int(float(text))


class MatchPhrase(Query):
    def __init__(self, spec: dict[str, Any], prefix: bool = False) -> None:
        kind = "match_phrase_prefix" if prefix else "match_phrase"
        name, value, _ = _single_field(kind, spec)
        params: dict[str, Any] = {}
        if isinstance(value, dict):
            _check_keys(kind, value, {"query", "slop", "analyzer", "zero_terms_query", "boost", "_name",
                                      "max_expansions"})
            params = value
            value = value.get("query")
        self.field, self.text, self.prefix = name, value, prefix
        self.slop = int(params.get("slop", 0))
        self.analyzer = params.get("analyzer")
        self.zero_all = str(params.get("zero_terms_query", "none")).lower() == "all"
        self.boost = _boost(params, kind)

    def _compile(self, ctx: ShardContext) -> Matcher:
        fd = ctx.field(self.field)
        if fd is None or not fd.searchable:
            return lambda _doc: None
        terms = _text_terms(ctx, fd, self.text, self.analyzer, False) or []
        if not terms:
            return (lambda _doc: 1.0) if self.zero_all else (lambda _doc: None)
        path, boost, slop, prefix = fd.path, self.boost, self.slop, self.prefix
        text_field = fd.is_text

        def match(doc: Doc) -> float | None:
            tokens = values_of(doc, path)
            if not tokens:
                return None
            if not text_field:
                ok = any((str(v).startswith(str(terms[0])) if prefix else v == terms[0]) for v in tokens)
                return boost if ok else None
            if _phrase_in(tokens, terms, slop, prefix):
                return sum(ctx.term_score(path, t, doc, boost) for t in terms if t in tokens) or boost
            return None

        return match


def _phrase_in(tokens: list[Any], terms: list[Any], slop: int, prefix: bool) -> bool:
    def eq(tok: Any, term: Any, last: bool) -> bool:
        return str(tok).startswith(str(term)) if (prefix and last) else tok == term

    n = len(terms)
    for start, tok in enumerate(tokens):
        if not eq(tok, terms[0], n == 1):
            continue
        pos, ok = start, True
        for k in range(1, n):
            window = tokens[pos + 1 : pos + 2 + slop]
            nxt = next((pos + 1 + i for i, t in enumerate(window) if eq(t, terms[k], k == n - 1)), None)
            if nxt is None:
                ok = False
                break
            pos = nxt
        if ok:
            return True
    return False


def _split_field_boost(entry: str) -> tuple[str, float]:
    name, _, boost = entry.partition("^")
    return name, float(boost) if boost else 1.0


def _default_fields(ctx: ShardContext, patterns: list[str]) -> list[tuple[str, float]]:
    out: list[tuple[str, float]] = []
    for entry in patterns:
        name, boost = _split_field_boost(entry)
        for path in ctx.mapping.match_fields(name) if name != "*" else list(ctx.mapping.fields()):
            fd = ctx.field(path)
            if fd is not None and fd.searchable and (fd.is_text or fd.type in KEYWORD_TYPES or name != "*"):
                out.append((path, boost))
    return out


class MultiMatch(Query):
    def __init__(self, spec: dict[str, Any]) -> None:
        if "query" not in spec:
            raise parsing_exception("[multi_match] requires query value")
        self.text = spec["query"]
        fields = spec.get("fields", ["*"])
        self.fields = [fields] if isinstance(fields, str) else list(fields)
        self.type = spec.get("type", "best_fields")
        self.params = {k: v for k, v in spec.items() if k in ("operator", "minimum_should_match", "analyzer",
                                                             "lenient", "zero_terms_query", "fuzziness")}
        self.tie = float(spec.get("tie_breaker", 0.0))
        self.boost = _boost(spec, "multi_match")

    def _compile(self, ctx: ShardContext) -> Matcher:
        subs: list[Matcher] = []
        for path, fboost in _default_fields(ctx, self.fields):
            if self.type in ("phrase", "phrase_prefix"):
                q: Query = MatchPhrase({path: {"query": self.text, "boost": fboost}}, self.type == "phrase_prefix")
            else:
                q = Match({path: {"query": self.text, "boost": fboost, "lenient": True, **self.params}})
            subs.append(q.compile(ctx))
        tie, boost, most = self.tie, self.boost, self.type == "most_fields"

        def match(doc: Doc) -> float | None:
            scores = [s for s in (m(doc) for m in subs) if s is not None]
            if not scores:
                return None
            if most:
                return sum(scores) * boost
            best = max(scores)
            return (best + tie * (sum(scores) - best)) * boost

        return match


class QueryString(Query):
    """A small `query_string` / `simple_query_string`: terms, field:value, quotes, AND/OR/NOT, +/-, wildcards."""

    def __init__(self, spec: dict[str, Any], simple: bool = False) -> None:
        kind = "simple_query_string" if simple else "query_string"
        if "query" not in spec:
            raise parsing_exception(f"[{kind}] must be provided with a [query]")
        self.text = str(spec["query"])
        fields = spec.get("fields") or ([spec["default_field"]] if "default_field" in spec else ["*"])
        self.fields = list(fields)
        self.and_default = str(spec.get("default_operator", "or")).lower() == "and"
        self.lenient = spec.get("lenient") in (True, "true")
        self.boost = _boost(spec, kind)

    def _compile(self, ctx: ShardContext) -> Matcher:
        stripped = self.text.strip()
        if stripped.startswith("/") and stripped.count("/") >= 2:
            check_regex_length(ctx, stripped[1:stripped.rindex("/")], "Regexp")
        tokens = re.findall(r'[+-]?(?:[\w.*?@-]+:)?"[^"]*"|\S+', self.text)
        clauses: list[tuple[str, Matcher]] = []
        conj = "OR" if not self.and_default else "AND"
        pending_op: str | None = None
        for raw in tokens:
            tok = raw
            if tok in ("AND", "OR", "&&", "||"):
                pending_op = "AND" if tok in ("AND", "&&") else "OR"
                continue
            occur = "SHOULD" if conj == "OR" else "MUST"
            if tok in ("NOT", "!"):
                pending_op = "NOT"
                continue
            if tok.startswith("+"):
                occur, tok = "MUST", tok[1:]
            elif tok.startswith("-"):
                occur, tok = "MUST_NOT", tok[1:]
            if pending_op == "NOT":
                occur = "MUST_NOT"
            elif pending_op == "AND":
                occur = "MUST"
                if clauses and clauses[-1][0] == "SHOULD":
                    clauses[-1] = ("MUST", clauses[-1][1])
            pending_op = None
            clauses.append((occur, self._clause(ctx, tok)))
        boost = self.boost
        has_positive = any(o != "MUST_NOT" for o, _ in clauses)

        def match(doc: Doc) -> float | None:
            score, any_should, should_hit = 0.0, False, False
            for occur, m in clauses:
                s = m(doc)
                if occur == "MUST":
                    if s is None:
                        return None
                    score += s
                elif occur == "MUST_NOT":
                    if s is not None:
                        return None
                else:
                    any_should = True
                    if s is not None:
                        should_hit = True
                        score += s
            if any_should and not should_hit and not any(o == "MUST" for o, _ in clauses):
                return None
            if not has_positive:
                return None
            return score * boost or boost

        return match

    def _clause(self, ctx: ShardContext, token: str) -> Matcher:
        field_name = None
        tok = token
        m = re.match(r'([\w.*?@-]+):(.+)', token)
        if m and not token.startswith('"'):
            field_name, tok = m.group(1), m.group(2)
        phrase = tok.startswith('"') and tok.endswith('"') and len(tok) >= 2
        text = tok[1:-1] if phrase else tok
        targets = [(field_name, 1.0)] if field_name else None
        # Expanding to every field ("*") is always lenient in ES.
        lenient = self.lenient or (field_name is None and "*" in self.fields)
        subs: list[Matcher] = []
        for path, fboost in targets or _default_fields(ctx, self.fields):
            if path is None:
                continue
            for p in ctx.mapping.match_fields(path) if "*" in path else [path]:
                fd = ctx.field(p)
                if fd is None:
                    continue
                q: Query
                if phrase:
                    q = MatchPhrase({p: {"query": text, "boost": fboost}})
                elif "*" in text or "?" in text:
                    q = Wildcard({p: {"value": text.lower() if fd.is_text else text, "boost": fboost}})
                elif fd.is_text or fd.type in KEYWORD_TYPES:
                    q = Match({p: {"query": text, "boost": fboost}})
                else:
                    q = Match({p: {"query": text, "boost": fboost, "lenient": lenient}})
                subs.append(q.compile(ctx))

        def match(doc: Doc) -> float | None:
            scores = [s for s in (m(doc) for m in subs) if s is not None]
            return max(scores) if scores else None

        return match


class MatchBoolPrefix(Query):
    """`match_bool_prefix`: analysed terms as should-clauses, the last one as a prefix."""

    def __init__(self, spec: dict[str, Any]) -> None:
        name, value, _ = _single_field("match_bool_prefix", spec)
        params: dict[str, Any] = value if isinstance(value, dict) else {"query": value}
        _check_keys("match_bool_prefix", params, {"query", "analyzer", "operator", "minimum_should_match",
                                                  "fuzziness", "prefix_length", "max_expansions",
                                                  "fuzzy_transpositions", "fuzzy_rewrite", "boost", "_name"})
        self.field, self.text = name, params.get("query")
        self.analyzer = params.get("analyzer")
        self.operator = str(params.get("operator", "or")).lower()
        self.msm = params.get("minimum_should_match")
        self.boost = _boost(params, "match_bool_prefix")

    def _compile(self, ctx: ShardContext) -> Matcher:
        fd = ctx.field(self.field)
        if fd is None or not fd.searchable:
            return lambda _doc: None
        terms = _text_terms(ctx, fd, self.text, self.analyzer, False) or []
        if not terms:
            return lambda _doc: None
        n = len(terms)
        required = n if self.operator == "and" else max(1, min_should(self.msm, n))
        path, boost = fd.path, self.boost

        def match(doc: Doc) -> float | None:
            vals = values_of(doc, path)
            found = sum(1 for i, t in enumerate(terms)
                        if any((str(v).startswith(str(t)) if i == n - 1 else v == t) for v in vals))
            return boost * found if found >= required else None

        return match


class Wrapped(Query):
    """`wrapper`: a base64-encoded query."""

    def __init__(self, spec: dict[str, Any]) -> None:
        raw = spec.get("query")
        if not isinstance(raw, str):
            raise parsing_exception("[wrapper] query malformed, expected [query] to be a base64 string")
        try:
            decoded = json.loads(base64.b64decode(raw))
        except (ValueError, binascii.Error) as exc:
            raise parsing_exception("[wrapper] query malformed, could not decode [query]") from exc
        self.inner = parse_query(decoded)

    def _compile(self, ctx: ShardContext) -> Matcher:
        return self.inner.compile(ctx)


_PARSERS: dict[str, Callable[[dict[str, Any]], Query]] = {
    "match_all": _parse_match_all,
    "match_none": _parse_match_none,
    "bool": Bool,
    "constant_score": ConstantScore,
    "dis_max": DisMax,
    "boosting": Boosting,
    "function_score": lambda s: Wrapper("function_score", s),
    "script_score": lambda s: Wrapper("script_score", s),
    "nested": lambda s: Wrapper("nested", s),
    "term": Term,
    "terms": Terms,
    "ids": Ids,
    "exists": Exists,
    "range": Range,
    "prefix": Prefix,
    "wildcard": Wildcard,
    "regexp": Regexp,
    "fuzzy": Fuzzy,
    "match": Match,
    "match_phrase": MatchPhrase,
    "match_phrase_prefix": lambda s: MatchPhrase(s, prefix=True),
    "multi_match": MultiMatch,
    "combined_fields": lambda s: MultiMatch({**s, "type": "most_fields"}),
    "match_bool_prefix": MatchBoolPrefix,
    "wrapper": Wrapped,
    "query_string": QueryString,
    "simple_query_string": lambda s: QueryString(s, simple=True),
}
