"""The query DSL core: parsing (coordinating-node errors), compiling per index (shard errors), compound queries.

Leaf queries live in `query_terms` (term-level) and `query_text` (full text).
"""

from __future__ import annotations

import base64
import binascii
import functools
import json
import math
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from .errors import ESError, parsing_exception
from .fieldpath import values_at
from .fieldtypes import (
    KEYWORD_TYPES,
    FieldDef,
)
from .mapping import IndexedFields, IndexMapping
from .model import StoredDoc

Matcher = Callable[["Doc"], float | None]
TermTest = tuple[str, Callable[[str], bool]]


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
                for term in set(map(hashable, values)):
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
        n = df.get(hashable(term), 0)
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


def hashable(value: Any) -> Any:
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

    def highlight_terms(self) -> list[TermTest]:
        """(field pattern, token test) pairs a highlighter marks; leaf queries that match terms override it."""
        return [t for child in self.children() for t in child.highlight_terms()]

    def children(self) -> list[Query]:
        return []


def parse_query(body: Any, where: str = "query") -> Query:
    """Parse one query clause `{"type": {...}}`."""
    if not isinstance(body, dict):
        raise parsing_exception("[_na] query malformed, must start with start_object")
    if not body:
        raise ESError(400, "illegal_argument_exception", "query malformed, empty clause found at [1:11]")
    kind, spec = next(iter(body.items()))
    if len(body) > 1:
        second = list(body)[1]
        raise parsing_exception(f"[{kind}] malformed query, expected [END_OBJECT] but found [FIELD_NAME]")
        del second
    parser = _parsers().get(kind)
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


def boost_of(spec: dict[str, Any], kind: str) -> float:
    value = spec.get("boost", 1.0)
    try:
        return float(value)
    except (TypeError, ValueError) as exc:
        raise parsing_exception(f"[{kind}] boost must be a number") from exc


def check_keys(kind: str, spec: dict[str, Any], allowed: set[str]) -> None:
    for key in spec:
        if key not in allowed:
            raise parsing_exception(f"[{kind}] query does not support [{key}]")


def single_field(
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
    check_keys("match_all", spec, {"boost", "_name"})
    return MatchAll(boost_of(spec, "match_all"))


def _parse_match_none(spec: dict[str, Any]) -> Query:
    check_keys("match_none", spec, {"boost", "_name"})
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
        check_keys("bool", spec, {"must", "filter", "should", "must_not", "minimum_should_match", "boost",
                                   "_name", "adjust_pure_negative", "disable_coord"})
        self.must = _clauses("must", spec.get("must", []))
        self.filter = _clauses("filter", spec.get("filter", []))
        self.should = _clauses("should", spec.get("should", []))
        self.must_not = _clauses("must_not", spec.get("must_not", []))
        self.msm = spec.get("minimum_should_match")
        self.boost = boost_of(spec, "bool")

    def children(self) -> list[Query]:
        return [*self.must, *self.filter, *self.should]

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
        check_keys("constant_score", spec, {"filter", "boost", "_name"})
        if "filter" not in spec:
            raise parsing_exception("[constant_score] requires a 'filter' element")
        self.inner = parse_query(spec["filter"])
        self.boost = boost_of(spec, "constant_score")

    def children(self) -> list[Query]:
        return [self.inner]

    def _compile(self, ctx: ShardContext) -> Matcher:
        inner, boost = self.inner.compile(ctx), self.boost
        return lambda doc: boost if inner(doc) is not None else None


class DisMax(Query):
    def __init__(self, spec: dict[str, Any]) -> None:
        check_keys("dis_max", spec, {"queries", "tie_breaker", "boost", "_name"})
        self.queries = _clauses("queries", spec.get("queries", []))
        self.tie = float(spec.get("tie_breaker", 0.0))
        self.boost = boost_of(spec, "dis_max")

    def children(self) -> list[Query]:
        return list(self.queries)

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
        check_keys("boosting", spec, {"positive", "negative", "negative_boost", "boost", "_name"})
        self.positive = parse_query(spec.get("positive", {"match_all": {}}))
        self.negative = parse_query(spec.get("negative", {"match_none": {}}))
        self.factor = float(spec.get("negative_boost", 0.5))
        self.boost = boost_of(spec, "boosting")

    def children(self) -> list[Query]:
        return [self.positive]

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
        self.boost = boost_of(spec, kind)
        self.min_score = spec.get("min_score")
        self.score_mode = str(spec.get("score_mode", "avg"))

    def children(self) -> list[Query]:
        return [self.inner]

    def _compile(self, ctx: ShardContext) -> Matcher:
        if self.kind == "nested" and isinstance(self.path, str):
            obj = ctx.mapping.objects().get(self.path)
            if obj is None or obj.get("type") != "nested":
                if self.ignore_unmapped:
                    return lambda _doc: None
                raise ctx.query_shard_error(f"[nested] failed to find nested object under path [{self.path}]")
            return self._nested(ctx, self.path)
        inner, boost = self.inner.compile(ctx), self.boost
        min_score = float(self.min_score) if self.min_score is not None else None

        def match(doc: Doc) -> float | None:
            s = inner(doc)
            if s is None or (min_score is not None and s * boost < min_score):
                return None
            return s * boost

        return match

    def _nested(self, ctx: ShardContext, path: str) -> Matcher:
        """The inner query must match within one nested object; scores combine per `score_mode`."""
        inner, boost, mode = self.inner.compile(ctx), self.boost, self.score_mode

        def match(doc: Doc) -> float | None:
            scores = []
            for obj in values_at(doc.stored.source, path):
                if not isinstance(obj, dict):
                    continue
                wrapped: dict[str, Any] = obj
                for part in reversed(path.split(".")):
                    wrapped = {part: wrapped}
                sub = Doc(doc.stored, ctx.mapping.index_document(wrapped, nested_scope=path), doc.shard)
                s = inner(sub)
                if s is not None:
                    scores.append(s)
            if not scores:
                return None
            if mode == "none":
                return 0.0
            if mode == "max":
                return max(scores) * boost
            if mode == "min":
                return min(scores) * boost
            total = sum(scores)
            return (total if mode == "sum" else total / len(scores)) * boost

        return match


# --- term-level queries ----------------------------------------------------------------------


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

    def children(self) -> list[Query]:
        return [self.inner]

    def _compile(self, ctx: ShardContext) -> Matcher:
        return self.inner.compile(ctx)


@functools.cache
def _parsers() -> dict[str, Callable[[dict[str, Any]], Query]]:
    """Query name -> parser; built on first use because the leaf query modules import this one."""
    from .query_terms import (
        Exists,
        Fuzzy,
        Ids,
        Prefix,
        Range,
        Regexp,
        Term,
        Terms,
        Wildcard,
    )
    from .query_text import Match, MatchBoolPrefix, MatchPhrase, MultiMatch, QueryString

    return {
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
