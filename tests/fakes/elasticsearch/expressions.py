"""Index expressions: comma lists, ``*`` wildcards, ``-`` exclusions, aliases, hidden/closed visibility."""

from __future__ import annotations

import fnmatch
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from typing import Any, Protocol

from .errors import ESError, illegal_argument, index_not_found
from .names import resolve_date_math


@dataclass
class AliasMeta:
    """One alias on one index, as the index metadata holds it."""

    filter: dict[str, Any] | None = None
    index_routing: str | None = None
    search_routing: str | None = None
    is_write_index: bool | None = None
    is_hidden: bool | None = None

    def render(self) -> dict[str, Any]:
        out: dict[str, Any] = {}
        if self.filter is not None:
            out["filter"] = self.filter
        if self.index_routing is not None:
            out["index_routing"] = self.index_routing
        if self.search_routing is not None:
            out["search_routing"] = self.search_routing
        if self.is_write_index is not None:
            out["is_write_index"] = self.is_write_index
        if self.is_hidden is not None:
            out["is_hidden"] = self.is_hidden
        return out


class IndexLike(Protocol):
    @property
    def hidden(self) -> bool: ...
    @property
    def closed(self) -> bool: ...
    @property
    def aliases(self) -> dict[str, AliasMeta]: ...


@dataclass(frozen=True)
class IndicesOptions:
    ignore_unavailable: bool = False
    allow_no_indices: bool = True
    expand_open: bool = True
    expand_closed: bool = False
    expand_hidden: bool = False
    forbid_closed: bool = False

    def from_params(self, params: Mapping[str, str]) -> IndicesOptions:
        opts = self
        if "ignore_unavailable" in params:
            opts = replace(opts, ignore_unavailable=_bool(params["ignore_unavailable"], "ignore_unavailable"))
        if "allow_no_indices" in params:
            opts = replace(opts, allow_no_indices=_bool(params["allow_no_indices"], "allow_no_indices"))
        if "expand_wildcards" in params:
            opts = replace(opts, **parse_expand_wildcards(params["expand_wildcards"]))
        return opts


STRICT_EXPAND_OPEN = IndicesOptions()
STRICT_EXPAND_OPEN_FORBID_CLOSED = IndicesOptions(forbid_closed=True)
LENIENT_EXPAND_OPEN = IndicesOptions(ignore_unavailable=True)
STRICT_EXPAND_HIDDEN = IndicesOptions(expand_closed=True, expand_hidden=True)


def _bool(value: str, name: str) -> bool:
    if value in ("", "true"):
        return True
    if value == "false":
        return False
    raise illegal_argument(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


def parse_expand_wildcards(value: str) -> dict[str, bool]:
    out = {"expand_open": False, "expand_closed": False, "expand_hidden": False}
    for part in (p.strip() for p in value.split(",")):
        if part == "open":
            out["expand_open"] = True
        elif part == "closed":
            out["expand_closed"] = True
        elif part == "hidden":
            out["expand_hidden"] = True
        elif part == "all":
            out = {"expand_open": True, "expand_closed": True, "expand_hidden": True}
        elif part == "none":
            pass
        else:
            raise illegal_argument(f"No enum constant org.elasticsearch.action.support.IndicesOptions.WildcardStates."
                                   f"{part.upper()}")
    return out


@dataclass
class Resolved:
    """Concrete indices in resolution order, and which names led to each (for alias filters)."""

    indices: list[str] = field(default_factory=list)
    via_alias: dict[str, list[str]] = field(default_factory=dict)   # index → aliases it was reached through
    direct: set[str] = field(default_factory=set)                   # indices named (or matched) themselves
    names: list[str] = field(default_factory=list)                  # the index/alias names after expansion


def split_expression(expr: str | Iterable[str] | None) -> list[str]:
    if expr is None:
        return []
    if isinstance(expr, str):
        return [resolve_date_math(p.strip()) for p in expr.split(",") if p.strip()]
    out: list[str] = []
    for item in expr:
        out.extend(split_expression(item))
    return out


def is_wildcard(name: str) -> bool:
    return "*" in name


def alias_index_map(indices: Mapping[str, IndexLike]) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for name in sorted(indices):
        for alias in indices[name].aliases:
            out.setdefault(alias, []).append(name)
    return out


def _alias_hidden(indices: Mapping[str, IndexLike], alias: str, members: list[str]) -> bool:
    return any(indices[m].aliases[alias].is_hidden for m in members)


def _visible(name: str, hidden: bool, pattern: str, opts: IndicesOptions) -> bool:
    if not hidden or opts.expand_hidden:
        return True
    # ES PR #50452: a dot-prefixed pattern matches dot-prefixed hidden indices and aliases.
    return pattern.startswith(".") and name.startswith(".")


def _state_ok(index: IndexLike, opts: IndicesOptions) -> bool:
    return opts.expand_closed if index.closed else opts.expand_open


def resolve(indices: Mapping[str, IndexLike], expr: str | Iterable[str] | None, opts: IndicesOptions) -> Resolved:
    """Resolve an index expression to concrete indices as ES's IndexNameExpressionResolver does."""
    parts = split_expression(expr)
    aliases = alias_index_map(indices)
    if not parts or parts in (["_all"], ["*"]):
        parts = ["*"]
    names: list[str] = []           # ordered, unique
    seen: set[str] = set()
    wildcard_seen = False
    for i, raw_part in enumerate(parts):
        part = "*" if raw_part == "_all" else raw_part
        if part.startswith("-") and i > 0 and wildcard_seen:
            pattern = part[1:]
            names = [n for n in names if not (fnmatch.fnmatchcase(n, pattern) if is_wildcard(pattern)
                                              else n == pattern)]
            seen = set(names)
            continue
        if is_wildcard(part) and (opts.expand_open or opts.expand_closed):
            wildcard_seen = True
            matched: list[str] = []
            for name in sorted(indices):
                idx = indices[name]
                if fnmatch.fnmatchcase(name, part) and _state_ok(idx, opts) \
                        and _visible(name, idx.hidden, part, opts):
                    matched.append(name)
            for alias in sorted(aliases):
                if fnmatch.fnmatchcase(alias, part) \
                        and _visible(alias, _alias_hidden(indices, alias, aliases[alias]), part, opts) \
                        and any(_state_ok(indices[m], opts) for m in aliases[alias]):
                    matched.append(alias)
            if not matched and not opts.allow_no_indices:
                raise index_not_found(part)
            for n in matched:
                if n not in seen:
                    seen.add(n)
                    names.append(n)
            continue
        # With expand_wildcards=none a pattern is taken as a plain (missing) name.
        if part in indices or part in aliases:
            if part not in seen:
                seen.add(part)
                names.append(part)
            continue
        if not opts.ignore_unavailable:
            if part.startswith("_"):
                # ES answers a name that cannot exist differently from a missing index.
                raise ESError(400, "invalid_index_name_exception",
                              f"Invalid index name [{part}], must not start with '_'.", index_uuid="_na_", index=part)
            raise index_not_found(part)
    result = Resolved(names=names)
    for n in names:
        if n in indices:
            targets = [n]
            result.direct.add(n)
        else:
            targets = [m for m in aliases[n] if opts.expand_closed or not indices[m].closed
                       or not any(is_wildcard(p) for p in parts)]
            for m in targets:
                result.via_alias.setdefault(m, []).append(n)
        for t in targets:
            if t not in result.indices:
                result.indices.append(t)
    if opts.forbid_closed:
        kept = []
        for t in result.indices:
            if indices[t].closed:
                if opts.ignore_unavailable:
                    continue
                raise index_closed(t, getattr(indices[t], "uuid", "_na_"))
            kept.append(t)
        result.indices = kept
    if not result.indices and not opts.allow_no_indices:
        raise index_not_found(",".join(parts) if parts != ["*"] else "_all")
    return result


def index_closed(name: str, uuid: str) -> ESError:
    return ESError(400, "index_closed_exception", "closed", index_uuid=uuid, index=name)
