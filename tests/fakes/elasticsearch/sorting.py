"""Sort specifications: parsing, per-document sort values, ordering and `search_after`."""

from __future__ import annotations

import functools
import math
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from .datemath import DateFormat, DateParseError
from .errors import ESError, parsing_exception, x_content_parse
from .fieldpath import values_at
from .fieldtypes import DATE_TYPES, FLOAT_TYPES, INTEGER_RANGES, NUMERIC_TYPES, FieldDef, MalformedValue
from .query import Doc, ShardContext, ShardFailure, values_of

LONG_MAX, LONG_MIN = 2**63 - 1, -(2**63)
INT_MAX, INT_MIN = 2**31 - 1, -(2**31)
SPECIAL = ("_score", "_doc", "_shard_doc")


@dataclass
class SortSpec:
    field: str
    order: str  # "asc" | "desc"
    missing: Any = "_last"
    unmapped_type: str | None = None
    mode: str | None = None
    format: str | None = None
    numeric_type: str | None = None
    nested: dict[str, Any] | None = None

    @property
    def desc(self) -> bool:
        return self.order == "desc"


_FIELD_KEYS = {"order", "missing", "unmapped_type", "mode", "numeric_type", "format", "nested", "nested_path",
               "nested_filter"}


def parse_sort(value: Any) -> list[SortSpec] | None:
    if value is None:
        return None
    items = value if isinstance(value, list) else [value]
    specs: list[SortSpec] = []
    for item in items:
        if isinstance(item, str):
            name, order = item, None
            if ":" in item and item.rsplit(":", 1)[1] in ("asc", "desc"):
                name, order = item.rsplit(":", 1)
            specs.append(SortSpec(name, order or ("desc" if name == "_score" else "asc")))
        elif isinstance(item, dict):
            for name, opts in item.items():
                specs.append(_parse_one(name, opts))
        else:
            raise parsing_exception(f"[sort] failed to parse: unexpected token in [{item}]")
    return specs


def _parse_one(name: str, opts: Any) -> SortSpec:
    default = "desc" if name == "_score" else "asc"
    if isinstance(opts, str):
        return SortSpec(name, _order(opts))
    if not isinstance(opts, dict):
        raise parsing_exception(f"[sort] failed to parse field [{name}]")
    for key in opts:
        if key not in _FIELD_KEYS:
            raise x_content_parse(f"[field_sort] unknown field [{key}]")
    mode = opts.get("mode")
    if mode is not None and mode not in ("min", "max", "sum", "avg", "median"):
        raise ESError(400, "x_content_parse_exception", "[1:1] [field_sort] failed to parse field [mode]",
                      caused_by={"type": "illegal_argument_exception", "reason": f"Unknown SortMode [{mode}]"})
    return SortSpec(
        name,
        _order(opts.get("order", default)),
        opts.get("missing", "_last"),
        opts.get("unmapped_type"),
        mode,
        opts.get("format"),
        opts.get("numeric_type"),
        opts.get("nested") if isinstance(opts.get("nested"), dict) else None,
    )


def _order(value: Any) -> str:
    text = str(value).lower()
    if text not in ("asc", "desc"):
        raise ESError(400, "x_content_parse_exception", "[1:1] [field_sort] failed to parse field [order]",
                      caused_by={"type": "illegal_argument_exception", "reason": f"Unknown SortOrder [{value}]"})
    return text


def tiebreak_value(doc: Doc) -> int:
    return (doc.shard << 32) | int(doc.stored.doc_order)


_TEXT_SORT = (
    "Text fields are not optimised for operations that require per-document field data like aggregations and "
    "sorting, so these operations are disabled by default. Please use a keyword field instead. Alternatively, "
    "set fielddata=true on [{f}] in order to load field data by uninverting the inverted index. Note that this "
    "can use significant memory."
)


def text_fielddata_error(path: str) -> ShardFailure:
    return ShardFailure({"type": "illegal_argument_exception", "reason": _TEXT_SORT.format(f=path)})


class SortKeys:
    """Computes the `sort` values of documents for one shard (index)."""

    def __init__(self, specs: list[SortSpec], ctx: ShardContext) -> None:
        self.specs = specs
        self.getters: list[Callable[[Doc, float | None], Any]] = []
        for spec in specs:
            self.getters.append(self._getter(spec, ctx))

    def _getter(self, spec: SortSpec, ctx: ShardContext) -> Callable[[Doc, float | None], Any]:
        if spec.field == "_score":
            return lambda _doc, score: score if score is not None else 0.0
        if spec.field == "_doc":
            return lambda doc, _score: doc.stored.doc_order
        if spec.field == "_shard_doc":
            return lambda doc, _score: tiebreak_value(doc)
        fd = ctx.field(spec.field)
        if fd is None:
            if spec.unmapped_type is None:
                raise ctx.query_shard_error(f"No mapping found for [{spec.field}] in order to sort on")
            fd = FieldDef(spec.field, spec.unmapped_type)
            return lambda _doc, _score: self.missing_value(spec, fd)
        if fd.is_text and not fd.params.get("fielddata"):
            raise text_fielddata_error(fd.path)
        nested_path = ctx.mapping.nested_owner(fd.path)
        if nested_path is not None and spec.nested is None:
            raise ctx.query_shard_error(
                f"it is mandatory to set the [nested] context on the nested sort field: [{fd.path}].")
        if spec.field == "_id":
            raise ShardFailure({"type": "illegal_argument_exception",
                                "reason": "Fielddata access on the _id field is disallowed, you can re-enable it "
                                          "by updating the dynamic cluster setting: indices.id_field_data.enabled"})
        mode = spec.mode or ("max" if spec.desc else "min")
        if mode in ("avg", "sum", "median") and fd.type not in NUMERIC_TYPES | DATE_TYPES | {"boolean"}:
            raise ctx.query_shard_error("we only support AVG, MEDIAN and SUM on number based fields")
        missing = self.missing_value(spec, fd)
        is_bool = fd.type == "boolean"
        scale = _numeric_scale(fd.type, spec.numeric_type)

        def nested_values(doc: Doc) -> list[Any]:
            out: list[Any] = []
            for raw in values_at(doc.stored.source, fd.path):
                try:
                    out.extend(fd.index_values(raw))
                except MalformedValue:
                    continue
            return out

        plain = not is_bool and scale is None and mode in ("min", "max")

        def get(doc: Doc, _score: float | None) -> Any:
            found = nested_values(doc) if nested_path is not None else values_of(doc, fd.path)
            if plain and len(found) == 1:   # one value (the usual case) is its own min and max
                return missing if found[0] is None else found[0]
            vals: list[Any] = [v for v in found if v is not None]
            if not vals:
                return missing
            if is_bool:
                vals = [int(v) for v in vals]
            if scale is not None:
                vals = [scale(v) for v in vals]
            return _reduce(vals, mode)

        return get

    @staticmethod
    def missing_value(spec: SortSpec, fd: FieldDef) -> Any:
        last = spec.missing in ("_last", None)
        if spec.missing not in ("_last", "_first", None):
            if isinstance(spec.missing, dict | list):
                raise ShardFailure({"type": "illegal_argument_exception",
                                    "reason": f"Unsupported missing value [{spec.missing}]"})
            try:
                value = fd.coerce(spec.missing)
            except MalformedValue as exc:
                raise ShardFailure(exc.cause) from exc
            return int(value) if fd.type == "boolean" else value
        high = last != spec.desc  # the value that sorts last in this direction
        if fd.type in INTEGER_RANGES and fd.type not in ("long", "unsigned_long"):
            return INT_MAX if high else INT_MIN
        if fd.type in INTEGER_RANGES or fd.type in DATE_TYPES or fd.type == "boolean":
            return LONG_MAX if high else LONG_MIN
        if fd.type in FLOAT_TYPES:
            return float("inf") if high else float("-inf")
        return _Missing(high)

    def values(self, doc: Doc, score: float | None) -> list[Any]:
        return [g(doc, score) for g in self.getters]


def _numeric_scale(field_type: str, numeric_type: str | None) -> Callable[[Any], Any] | None:
    """`numeric_type` converts sort values between date (millis) and date_nanos (nanos) resolutions."""
    if numeric_type == "date_nanos" and field_type == "date":
        return lambda v: v * 1_000_000
    if numeric_type == "date" and field_type == "date_nanos":
        return lambda v: v // 1_000_000
    if numeric_type == "double":
        return float
    if numeric_type == "long":
        return int
    return None


class _Missing:
    """A missing string sort value: null in output, sorts first or last."""

    def __init__(self, high: bool) -> None:
        self.high = high

    def __repr__(self) -> str:
        return "null"


def _reduce(vals: list[Any], mode: str) -> Any:
    if mode == "min":
        return min(vals)
    if mode == "max":
        return max(vals)
    if mode == "sum":
        return sum(vals)
    if mode == "avg":
        return sum(vals) / len(vals)
    return statistics.median(vals)


def render_sort_value(value: Any) -> Any:
    if isinstance(value, _Missing):
        return None
    if isinstance(value, float) and value in (float("inf"), float("-inf")):
        return "Infinity" if value > 0 else "-Infinity"
    if isinstance(value, bool):
        return int(value)
    return value


def compare_values(a: list[Any], b: list[Any], specs: list[SortSpec]) -> int:
    for x, y, spec in zip(a, b, specs, strict=False):
        c = _cmp_one(x, y, spec)
        if c:
            return c
    return 0


def _cmp_one(x: Any, y: Any, spec: SortSpec) -> int:
    if isinstance(x, _Missing) or isinstance(y, _Missing) or x is None or y is None:
        xm = x is None or isinstance(x, _Missing)
        ym = y is None or isinstance(y, _Missing)
        if xm and ym:
            return 0
        # A missing string value sorts as `missing` says, whatever the direction.
        last = spec.missing != "_first"
        return (1 if last else -1) if xm else (-1 if last else 1)
    try:
        c = int(x > y) - int(x < y)
    except TypeError:
        c = int(str(x) > str(y)) - int(str(x) < str(y))
    return -c if spec.desc else c


def sort_docs(entries: list[tuple[list[Any], Doc]], specs: list[SortSpec]) -> list[tuple[list[Any], Doc]]:
    try:
        return _sort_by_keys(entries, specs)
    except TypeError:   # values of unlike types: only _cmp_one's string fallback orders them as ES does
        pass

    def cmp(a: tuple[list[Any], Doc], b: tuple[list[Any], Doc]) -> int:
        c = compare_values(a[0], b[0], specs)
        if c:
            return c
        return 1 if (a[1].shard, a[1].stored.doc_order) > (b[1].shard, b[1].stored.doc_order) else -1

    return sorted(entries, key=functools.cmp_to_key(cmp))


def _sort_by_keys(entries: list[tuple[list[Any], Doc]], specs: list[SortSpec]) -> list[tuple[list[Any], Doc]]:
    """The order ``compare_values`` and the (shard, doc order) tiebreak give, by key instead of comparator.

    Sorting a page's worth of hits by comparator was most of a sorted search. Stable sorts from the last
    criterion to the first order by all of them, the first one deciding; ``reverse`` keeps equal items in
    place too. A missing value goes first or last in either direction, so its key depends on both.
    """
    ordered = sorted(entries, key=lambda e: (e[1].shard, e[1].stored.doc_order))
    for n in range(len(specs) - 1, -1, -1):
        spec = specs[n]
        missing_key = (2 if (spec.missing != "_first") != spec.desc else 0, 0)

        def key(entry: tuple[list[Any], Doc], n: int = n, missing_key: tuple[int, int] = missing_key,
                ) -> tuple[int, Any]:
            value = entry[0][n]
            if value is None or isinstance(value, _Missing):
                return missing_key
            if isinstance(value, float) and math.isnan(value):
                raise TypeError("NaN orders inconsistently: leave it to the comparator, as before")
            return (1, value)

        ordered.sort(key=key, reverse=spec.desc)
    return ordered


def parse_after(after: list[Any], specs: list[SortSpec], ctxs: list[ShardContext]) -> list[Any]:
    """`search_after` values in the form our sort values take."""
    out: list[Any] = []
    for value, spec in zip(after, specs, strict=False):
        fd = next((f for c in ctxs if (f := c.field(spec.field)) is not None), None)
        if value is None:
            out.append(_Missing(spec.missing == "_last"))
        elif fd is not None and fd.type in DATE_TYPES and isinstance(value, str):
            fmt = DateFormat(spec.format) if spec.format else fd.date_format or DateFormat()
            if not spec.format and value.lstrip("-").isdigit():
                out.append(int(value))
                continue
            nanos = spec.numeric_type == "date_nanos" or (spec.numeric_type is None and fd.type == "date_nanos")
            try:
                out.append(fmt.parse_nanos(value) if nanos else fmt.parse(value))
            except DateParseError as exc:
                reason = f"failed to parse date field [{value}] with format [{fmt.spec}]"
                raise ShardFailure({"type": "parse_exception", "reason": f"{reason}: [{reason}]",
                                    "caused_by": {"type": "illegal_argument_exception", "reason": reason}}) from exc
        elif fd is not None and (fd.type in INTEGER_RANGES or fd.type in DATE_TYPES) and isinstance(value, str):
            try:
                out.append(int(value))
            except ValueError:
                out.append(value)
        elif fd is not None and fd.type == "boolean" and isinstance(value, bool | str):
            out.append(1 if value in (True, "true") else 0)
        elif value in ("Infinity", "-Infinity"):
            out.append(float(value))
        else:
            out.append(value)
    return out
