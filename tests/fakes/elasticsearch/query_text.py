"""Full-text queries: match, match_phrase(_prefix), multi_match, match_bool_prefix, query_string."""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import Any

from .analysis import analyze
from .errors import parsing_exception
from .fieldtypes import KEYWORD_TYPES, FieldDef
from .query import (
    Doc,
    Matcher,
    Query,
    ShardContext,
    ShardFailure,
    TermTest,
    boost_of,
    check_keys,
    min_should,
    single_field,
    values_of,
)
from .query_terms import (
    NO_MATCH,
    Exists,
    Range,
    Wildcard,
    check_regex_length,
    require_indexed,
    term_value,
)
from .textdist import edit_distance


def _text_terms(ctx: ShardContext, fd: FieldDef, text: Any, analyzer: str | None, lenient: bool) -> list[Any] | None:
    """Terms a full-text query looks for in ``fd``; None when a lenient query can't coerce."""
    if fd.is_text:
        return analyze(str(text) if not isinstance(text, bool) else str(text).lower(),
                       analyzer or fd.search_analyzer)
    try:
        term = term_value(ctx, fd, text)
    except ShardFailure:
        if lenient:
            return None
        raise
    return [] if term is NO_MATCH else [term]


class Match(Query):
    KEYS = {"query", "operator", "minimum_should_match", "analyzer", "fuzziness", "lenient", "zero_terms_query",
            "boost", "_name", "auto_generate_synonyms_phrase_query", "prefix_length", "max_expansions",
            "fuzzy_transpositions", "fuzzy_rewrite", "cutoff_frequency"}

    def __init__(self, spec: dict[str, Any]) -> None:
        name, value, _ = single_field("match", spec)
        self.field = name
        params: dict[str, Any] = {}
        if isinstance(value, dict):
            check_keys("match", value, self.KEYS)
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
        self.boost = boost_of(params, "match")

    def highlight_terms(self) -> list[TermTest]:
        tokens = set(analyze(str(self.text), self.analyzer))
        return [(self.field, lambda tok: tok in tokens)]

    def _compile(self, ctx: ShardContext) -> Matcher:
        fd = ctx.field(self.field)
        if fd is None or not fd.searchable:
            return lambda _doc: None
        require_indexed(ctx, fd)
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
            return fuzzy and any(edit_distance(str(term), str(v)) <= _auto_fuzz(self.fuzziness, str(term))
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
        name, value, _ = single_field(kind, spec)
        params: dict[str, Any] = {}
        if isinstance(value, dict):
            check_keys(kind, value, {"query", "slop", "analyzer", "zero_terms_query", "boost", "_name",
                                      "max_expansions"})
            params = value
            value = value.get("query")
        self.field, self.text, self.prefix = name, value, prefix
        self.slop = int(params.get("slop", 0))
        self.analyzer = params.get("analyzer")
        self.zero_all = str(params.get("zero_terms_query", "none")).lower() == "all"
        self.boost = boost_of(params, kind)

    def highlight_terms(self) -> list[TermTest]:
        tokens = set(analyze(str(self.text), self.analyzer))
        return [(self.field, lambda tok: tok in tokens)]

    def _compile(self, ctx: ShardContext) -> Matcher:
        fd = ctx.field(self.field)
        if fd is None or not fd.searchable:
            return lambda _doc: None
        require_indexed(ctx, fd)
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
        self.boost = boost_of(spec, "multi_match")

    def highlight_terms(self) -> list[TermTest]:
        tokens = set(analyze(str(self.text)))
        return [(_split_field_boost(f)[0], lambda tok: tok in tokens) for f in self.fields]

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
        self.boost = boost_of(spec, kind)

    def highlight_terms(self) -> list[TermTest]:
        out: list[TermTest] = []
        for raw in _QS_TOKEN.findall(self.text):
            if raw in ("AND", "OR", "NOT", "&&", "||", "!", "(", ")") or raw.startswith("-"):
                continue
            name, sep, text = raw.lstrip("+").rpartition(":")
            test = _member_test(set(analyze(text.strip('"()'))))
            out.extend((pattern, test) for pattern in
                       ([name] if sep else [_split_field_boost(f)[0] for f in self.fields]))
        return out

    def _compile(self, ctx: ShardContext) -> Matcher:
        stripped = self.text.strip()
        if stripped.startswith("/") and stripped.count("/") >= 2:
            check_regex_length(ctx, stripped[1:stripped.rindex("/")], "Regexp")
        tokens = _QS_TOKEN.findall(self.text)
        clauses, _ = self._parse(ctx, tokens, 0, None)
        matcher = self._combine(clauses)
        boost = self.boost

        def match(doc: Doc) -> float | None:
            score = matcher(doc)
            return None if score is None else (score * boost or boost)

        return match

    def _parse(self, ctx: ShardContext, tokens: list[str], i: int,
               field_name: str | None) -> tuple[list[tuple[str, Matcher]], int]:
        """Clauses up to the matching `)` (Lucene classic syntax: AND/OR/NOT, +/-, groups)."""
        clauses: list[tuple[str, Matcher]] = []
        default = "MUST" if self.and_default else "SHOULD"
        pending_op: str | None = None
        while i < len(tokens):
            tok = tokens[i]
            i += 1
            if tok == ")":
                break
            if tok in ("AND", "OR", "&&", "||"):
                pending_op = "AND" if tok in ("AND", "&&") else "OR"
                continue
            if tok in ("NOT", "!"):
                pending_op = "NOT"
                continue
            occur = default
            if tok[0] in "+-" and len(tok) > 1:
                occur, tok = ("MUST" if tok[0] == "+" else "MUST_NOT"), tok[1:]
            if pending_op == "NOT":
                occur = "MUST_NOT"
            elif pending_op == "AND":
                occur = "MUST" if occur == default else occur
                if clauses and clauses[-1][0] == "SHOULD":
                    clauses[-1] = ("MUST", clauses[-1][1])
            elif pending_op == "OR" and occur == "MUST" and default == "MUST":
                occur = "SHOULD"
                if clauses and clauses[-1][0] == "MUST":
                    clauses[-1] = ("SHOULD", clauses[-1][1])
            pending_op = None
            if tok.endswith("(") and (tok == "(" or tok.endswith(":(")):
                inner_field = tok[:-2] if tok.endswith(":(") else field_name
                sub, i = self._parse(ctx, tokens, i, inner_field)
                clauses.append((occur, self._combine(sub)))
            else:
                clauses.append((occur, self._clause(ctx, tok if field_name is None or ":" in tok.strip('"')
                                                    else f"{field_name}:{tok}")))
        return clauses, i

    @staticmethod
    def _combine(clauses: list[tuple[str, Matcher]]) -> Matcher:
        has_positive = any(o != "MUST_NOT" for o, _ in clauses)
        has_must = any(o == "MUST" for o, _ in clauses)
        if not clauses:
            return lambda _doc: None

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
            # A purely negative query matches everything else (ES adds a match_all).
            if has_positive and any_should and not should_hit and not has_must:
                return None
            return score

        return match

    def _clause(self, ctx: ShardContext, token: str) -> Matcher:
        field_name = None
        tok = token
        if token in ("*", "*:*"):
            return lambda _doc: 1.0
        m = re.match(r'([\w.*?@-]+):(.+)', token)
        if m and not token.startswith('"'):
            field_name, tok = m.group(1), m.group(2)
        if field_name is not None and tok == "*":
            return Exists({"field": field_name}).compile(ctx)
        if field_name is not None:
            ranged = _query_string_range(field_name, tok)
            if ranged is not None:
                return ranged.compile(ctx)
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
        name, value, _ = single_field("match_bool_prefix", spec)
        params: dict[str, Any] = value if isinstance(value, dict) else {"query": value}
        check_keys("match_bool_prefix", params, {"query", "analyzer", "operator", "minimum_should_match",
                                                  "fuzziness", "prefix_length", "max_expansions",
                                                  "fuzzy_transpositions", "fuzzy_rewrite", "boost", "_name"})
        self.field, self.text = name, params.get("query")
        self.analyzer = params.get("analyzer")
        self.operator = str(params.get("operator", "or")).lower()
        self.msm = params.get("minimum_should_match")
        self.boost = boost_of(params, "match_bool_prefix")

    def highlight_terms(self) -> list[TermTest]:
        tokens = analyze(str(self.text), self.analyzer)
        head, last = set(tokens[:-1]), tokens[-1] if tokens else ""
        return [(self.field, lambda tok: tok in head or (bool(last) and tok.startswith(last)))]

    def _compile(self, ctx: ShardContext) -> Matcher:
        fd = ctx.field(self.field)
        if fd is None or not fd.searchable:
            return lambda _doc: None
        require_indexed(ctx, fd)
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


_QS_TOKEN = re.compile(r'[+-]?(?:[\w.*?@-]+:)?(?:"[^"]*"|[\[{][^\]}]*[\]}])|[+-]?(?:[\w.*?@-]+:)?\(|\)|[^\s()]+')


def _member_test(words: set[str]) -> Callable[[str], bool]:
    return lambda tok: tok in words


def _query_string_range(field_name: str, tok: str) -> Query | None:
    """`f:[a TO b]`, `f:{a TO b}`, `f:>a`, `f:<=b` from query_string syntax."""
    m = re.fullmatch(r"([\[{])\s*(\S+)\s+TO\s+(\S+)\s*([\]}])", tok)
    if m:
        spec: dict[str, Any] = {}
        if m.group(2) != "*":
            spec["gte" if m.group(1) == "[" else "gt"] = m.group(2)
        if m.group(3) != "*":
            spec["lte" if m.group(4) == "]" else "lt"] = m.group(3)
        return Range({field_name: spec})
    m = re.fullmatch(r"(>=|<=|>|<)(.+)", tok)
    if m:
        op = {">=": "gte", "<=": "lte", ">": "gt", "<": "lt"}[m.group(1)]
        return Range({field_name: {op: m.group(2)}})
    return None

