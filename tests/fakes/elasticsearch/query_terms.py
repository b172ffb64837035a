"""Term-level queries: term, terms, ids, exists, range, prefix, wildcard, regexp, fuzzy."""

from __future__ import annotations

import math
import re
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .analysis import normalize_keyword
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
from .query import (
    Doc,
    Matcher,
    Query,
    ShardContext,
    ShardFailure,
    TermTest,
    boost_of,
    check_keys,
    hashable,
    single_field,
    values_of,
)
from .textdist import edit_distance


def require_indexed(ctx: ShardContext, fd: FieldDef) -> None:
    """ES refuses to query a field that is neither indexed nor (for non-text fields) has doc values."""
    if fd.params.get("index") is not False:
        return
    if fd.is_text:
        raise ctx.query_shard_error(f"Cannot search on field [{fd.path}] since it is not indexed.")
    if fd.params.get("doc_values") is False:
        raise ctx.query_shard_error(
            f"Cannot search on field [{fd.path}] since it is not indexed nor has doc values.")


def term_value(ctx: ShardContext, fd: FieldDef, value: Any) -> Any:
    """A query value coerced to the field's indexed form (query_shard_exception if it can't be)."""
    if fd.type in KEYWORD_TYPES or fd.path in ("_id", "_index", "_routing"):
        if isinstance(value, dict | list):
            raise ctx.query_shard_error(f"failed to create query: Can't parse value of type {type(value)}")
        text = "true" if value is True else "false" if value is False else str(value)
        return normalize_keyword(text, fd.params.get("normalizer"))
    if fd.is_text:
        return "true" if value is True else "false" if value is False else str(value)
    if fd.type in INTEGER_RANGES and isinstance(value, float) and not value.is_integer():
        return NO_MATCH
    if fd.type in INTEGER_RANGES and isinstance(value, str):
        try:
            f = float(value)
            if not f.is_integer():
                return NO_MATCH
        except ValueError:
            pass
    try:
        if fd.type in DATE_TYPES and isinstance(value, str):
            return _date_term(ctx, fd, value)
        return fd.coerce(value)
    except MalformedValue as exc:
        if fd.type in DATE_TYPES:
            cause = exc.cause
            raise ShardFailure({"type": "parse_exception", "reason": f"{cause['reason']}: [{cause['reason']}]",
                                "caused_by": cause}) from exc
        raise ctx.query_shard_error(f"failed to create query: {exc.cause['reason']}", exc.cause) from exc


NO_MATCH = object()


@dataclass(frozen=True, eq=False)
class DateSpan:
    """A date term: ES matches every instant the value denotes (`2026-01-01` is the whole day)."""

    lo: int
    hi: int

    def __eq__(self, other: object) -> bool:
        if isinstance(other, DateSpan):
            return (self.lo, self.hi) == (other.lo, other.hi)
        return isinstance(other, int) and not isinstance(other, bool) and self.lo <= other <= self.hi

    def __hash__(self) -> int:
        return hash((self.lo, self.hi))


def _date_term(ctx: ShardContext, fd: FieldDef, value: str) -> Any:
    fmt = fd.date_format or DateFormat()
    try:
        lo = parse_math(value, fmt, ctx.now_ms)
        hi = parse_math(value, fmt, ctx.now_ms, round_up=True)
    except DateParseError as exc:
        raise MalformedValue({"type": "illegal_argument_exception",
                              "reason": f"failed to parse date field [{value}] with format [{fmt.spec}]"}) from exc
    if fd.type == "date_nanos":
        lo, hi = lo * 1_000_000, hi * 1_000_000 + 999_999
        exact = fmt.parse_nanos(value) if "now" not in value and "||" not in value else None
        if exact is not None and value.count(":") >= 2 and "." in value:
            return exact
    return lo if lo == hi else DateSpan(lo, hi)


class Term(Query):
    def __init__(self, spec: dict[str, Any]) -> None:
        name, value, _ = single_field("term", spec)
        self.field = name
        self.case_insensitive = False
        if isinstance(value, dict):
            check_keys("term", value, {"value", "boost", "_name", "case_insensitive"})
            if "value" not in value:
                raise parsing_exception("[term] query does not support [value] being null" if False else
                                        "value cannot be null")
            self.boost = boost_of(value, "term")
            self.case_insensitive = bool(value.get("case_insensitive", False))
            value = value["value"]
        else:
            self.boost = boost_of(spec, "term")
        if value is None:
            raise ESError(400, "illegal_argument_exception", "value cannot be null")
        if isinstance(value, list):
            raise parsing_exception("[term] query does not support array of values")
        self.value = value

    def highlight_terms(self) -> list[TermTest]:
        wanted = str(self.value).lower() if self.case_insensitive else str(self.value)
        return [(self.field, lambda tok: tok == wanted or tok == wanted.lower())]

    def _compile(self, ctx: ShardContext) -> Matcher:
        fd = ctx.field(self.field)
        if fd is None or not fd.searchable:
            return lambda _doc: None
        require_indexed(ctx, fd)
        term = term_value(ctx, fd, self.value)
        if term is NO_MATCH:
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
        name, value, _ = single_field("terms", spec, frozenset({"format"}))
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
        self.boost = boost_of(spec, "terms")

    def _lookup_values(self, ctx: ShardContext) -> list[Any]:
        assert self.lookup is not None
        source = ctx.lookup(str(self.lookup["index"]), str(self.lookup["id"])) if ctx.lookup else None
        if source is None:
            return []
        return [v for v in values_at(source, str(self.lookup["path"])) if not isinstance(v, dict)]

    def highlight_terms(self) -> list[TermTest]:
        wanted = {str(v) for v in self.values}
        return [(self.field, lambda tok: tok in wanted)]

    def _compile(self, ctx: ShardContext) -> Matcher:
        fd = ctx.field(self.field)
        if fd is None or not fd.searchable:
            return lambda _doc: None
        require_indexed(ctx, fd)
        values = self._lookup_values(ctx) if self.lookup is not None else self.values
        limit = ctx.setting("index.max_terms_count", 65536)
        if len(values) > limit:
            raise ShardFailure({
                "type": "illegal_argument_exception",
                "reason": f"The number of terms [{len(values)}] used in the Terms Query request has exceeded "
                          f"the allowed maximum of [{limit}]. This maximum can be set by changing the "
                          "[index.max_terms_count] index level setting.",
            })
        wanted = {hashable(term_value(ctx, fd, v)) for v in values if v is not None}
        wanted.discard(NO_MATCH)
        path, boost = fd.path, self.boost
        spans = [w for w in wanted if isinstance(w, DateSpan)]
        if spans:
            return lambda doc: boost if any(s == v for s in spans for v in values_of(doc, path)) else None
        return lambda doc: boost if any(hashable(v) in wanted for v in values_of(doc, path)) else None


class Ids(Query):
    def __init__(self, spec: dict[str, Any]) -> None:
        check_keys("ids", spec, {"values", "boost", "_name", "type"})
        values = spec.get("values", [])
        if not isinstance(values, list):
            raise parsing_exception("[ids] failed to parse field [values]")
        self.ids = {str(v) for v in values}
        self.boost = boost_of(spec, "ids")

    def _compile(self, ctx: ShardContext) -> Matcher:
        ids, boost = self.ids, self.boost
        return lambda doc: boost if doc.stored.id in ids else None


class Exists(Query):
    def __init__(self, spec: dict[str, Any]) -> None:
        check_keys("exists", spec, {"field", "boost", "_name"})
        if "field" not in spec:
            raise parsing_exception("[exists] must be provided with a [field]")
        self.field = str(spec["field"])
        self.boost = boost_of(spec, "exists")

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
        name, value, _ = single_field("range", spec)
        if not isinstance(value, dict):
            raise parsing_exception("[range] query malformed, no start_object after query name")
        check_keys("range", value, self.KEYS)
        self.field = name
        self.boost = boost_of(value, "range")
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
        require_indexed(ctx, fd)
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
            lo = term_value(ctx, fd, low) if low is not None else None
            hi = term_value(ctx, fd, high) if high is not None else None
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
        name, value, _ = single_field(self.kind, spec)
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
            self.boost = boost_of(value, self.kind)
            self.case_insensitive = bool(value.get("case_insensitive", False))
            self.params = value
        else:
            self.value = value
            self.boost = 1.0

    def predicate(self, pattern: str) -> Callable[[str], bool]:
        raise NotImplementedError

    def highlight_terms(self) -> list[TermTest]:
        test = self.predicate(str(self.value).lower())
        return [(self.field, test)]

    def _compile(self, ctx: ShardContext) -> Matcher:
        fd = ctx.field(self.field)
        if fd is None or not fd.searchable:
            return lambda _doc: None
        require_indexed(ctx, fd)
        if fd.type not in KEYWORD_TYPES and not fd.is_text and fd.path not in ("_id", "_index", "_routing") \
                and (fd.type in NUMERIC_TYPES or fd.type in DATE_TYPES or fd.type in ("boolean", "ip")):
            raise ctx.query_shard_error(
                f"Can only use {self.kind} queries on keyword and text fields - not on [{self.field}] "
                f"which is of type [{fd.type}]"
            )
        pattern = str(self.value)
        if fd.type in KEYWORD_TYPES:
            pattern = normalize_keyword(pattern, fd.params.get("normalizer"))
        elif fd.is_text and self.kind == "wildcard" and fd.search_analyzer not in ("whitespace", "keyword"):
            pattern = pattern.lower()  # ES normalises wildcard patterns with the field's search analyzer
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

        return lambda v: edit_distance(pattern, v) <= allowed(pattern)


def check_regex_length(ctx: ShardContext, pattern: str, kind: str) -> None:
    limit = ctx.setting("index.max_regex_length", 1000)
    if len(pattern) > limit:
        raise ShardFailure({
            "type": "illegal_argument_exception",
            "reason": f"The length of regex [{len(pattern)}] used in the {kind} Query request has exceeded the "
                      f"allowed maximum of [{limit}]. This maximum can be set by changing the "
                      "[index.max_regex_length] index level setting.",
        })




# --- full-text queries -----------------------------------------------------------------------
