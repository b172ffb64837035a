"""Field types: how a mapped leaf validates, indexes and coerces values."""

from __future__ import annotations

import functools
import ipaddress
import math
import struct
from dataclasses import dataclass, field
from typing import Any

from .analysis import analyze, normalize_keyword
from .datemath import DateFormat, DateParseError

INTEGER_RANGES: dict[str, tuple[int, int]] = {
    "byte": (-(2**7), 2**7 - 1),
    "short": (-(2**15), 2**15 - 1),
    "integer": (-(2**31), 2**31 - 1),
    "long": (-(2**63), 2**63 - 1),
    "unsigned_long": (0, 2**64 - 1),
}
FLOAT_TYPES = frozenset({"double", "float", "half_float", "scaled_float"})
NUMERIC_TYPES = frozenset(INTEGER_RANGES) | FLOAT_TYPES
KEYWORD_TYPES = frozenset({"keyword", "constant_keyword", "wildcard", "version", "flattened"})
TEXT_TYPES = frozenset({"text", "match_only_text", "search_as_you_type"})
DATE_TYPES = frozenset({"date", "date_nanos"})
OBJECT_TYPES = frozenset({"object", "nested"})
# Types we accept in mappings but never index for queries.
OPAQUE_TYPES = frozenset(
    {
        "geo_point", "geo_shape", "shape", "point", "binary", "dense_vector", "sparse_vector", "rank_feature",
        "rank_features", "completion", "histogram", "integer_range", "long_range", "float_range",
        "double_range", "date_range", "ip_range", "token_count", "semantic_text", "aggregate_metric_double",
        "percolator", "annotated_text", "murmur3", "counted_keyword",
    }
)
LEAF_TYPES = (
    NUMERIC_TYPES | KEYWORD_TYPES | TEXT_TYPES | DATE_TYPES | OPAQUE_TYPES | {"boolean", "ip", "alias"}
)
ALL_TYPES = LEAF_TYPES | OBJECT_TYPES
# Leaf types whose values may be JSON objects.
OBJECT_VALUED = frozenset({"flattened", "geo_point", "geo_shape", "shape", "point"}) | {
    t for t in OPAQUE_TYPES if t.endswith("_range") or t in ("rank_features", "aggregate_metric_double",
                                                             "sparse_vector", "histogram", "completion")
}


@functools.lru_cache(maxsize=256)
def date_format(spec: str | None, locale: str = "en") -> DateFormat:
    """Formats compile regexes: share one per spec."""
    return DateFormat(spec, locale)


class MalformedValue(ValueError):
    """A value a field cannot take; ``cause`` is the ES error object behind it."""

    def __init__(self, cause: dict[str, Any]) -> None:
        super().__init__(cause["reason"])
        self.cause = cause


def _number_format(value: Any) -> MalformedValue:
    return MalformedValue({"type": "number_format_exception", "reason": f'For input string: "{value}"'})


@dataclass
class FieldDef:
    """A mapped leaf field (or multi-field) at its full dotted path."""

    path: str
    type: str
    params: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        default = "strict_date_optional_time_nanos||epoch_millis" if self.type == "date_nanos" else None
        locale = str(self.params.get("locale") or "en")
        self.date_format = date_format(self.params.get("format") or default, locale) \
            if self.type in DATE_TYPES else None

    @property
    def searchable(self) -> bool:
        return self.type not in OPAQUE_TYPES and self.type != "alias"

    @property
    def is_text(self) -> bool:
        return self.type in TEXT_TYPES

    @property
    def analyzer(self) -> str | None:
        value = self.params.get("analyzer")
        return value if isinstance(value, str) else None

    @property
    def search_analyzer(self) -> str | None:
        value = self.params.get("search_analyzer", self.params.get("analyzer"))
        return value if isinstance(value, str) else None

    # -- indexing -----------------------------------------------------------------------------
    def index_values(self, value: Any) -> list[Any]:
        """Indexed terms for one source value (raises MalformedValue)."""
        t = self.type
        if value is None:
            if "null_value" in self.params and self.params["null_value"] is not None:
                return self.index_values(self.params["null_value"])
            return []
        if t in TEXT_TYPES:
            if isinstance(value, dict | list):
                raise _illegal_state(value)
            return analyze(_stringify(value), self.analyzer)
        if t in KEYWORD_TYPES:
            if t == "flattened":
                return [_stringify(v) for v in _flattened_leaves(value)]
            if isinstance(value, dict | list):
                raise _illegal_state(value)
            text = normalize_keyword(_stringify(value), self.params.get("normalizer"))
            above = self.params.get("ignore_above")
            if above is not None and len(text) > int(above):
                return []
            return [text]
        if t in OPAQUE_TYPES:
            return [value]
        return [self.coerce(value)]

    def validate(self, value: Any) -> None:
        """Raise MalformedValue if this field cannot take ``value`` (cheaper than indexing it)."""
        if value is None:
            return
        if self.type in TEXT_TYPES or (self.type in KEYWORD_TYPES and self.type != "flattened"):
            if isinstance(value, dict | list):
                raise _illegal_state(value)
            return
        if self.type in OPAQUE_TYPES or self.type == "flattened":
            return
        self.coerce(value)

    def coerce(self, value: Any) -> Any:
        """One value as this field indexes it (numbers, dates, booleans, ips); raises MalformedValue."""
        t = self.type
        if t in INTEGER_RANGES:
            return _to_integer(t, value, bool(self.params.get("coerce", True)))
        if t in FLOAT_TYPES:
            number = _to_float(value)
            if t == "scaled_float":
                factor = float(self.params.get("scaling_factor", 1))
                return round(number * factor) / factor
            if t in ("float", "half_float"):
                try:
                    return narrow_float(number, t)
                except OverflowError as exc:
                    raise MalformedValue({"type": "illegal_argument_exception",
                                          "reason": f"[{t}] supports only finite values, but got [{value}]"}) from exc
            return number
        if t == "boolean":
            return _to_bool(value)
        if t in DATE_TYPES:
            assert self.date_format is not None
            if isinstance(value, bool | dict | list):
                raise _date_error(value, self.date_format.spec)
            try:
                if t == "date_nanos":
                    return self.date_format.parse_nanos(value)
                return self.date_format.parse(value)
            except DateParseError as exc:
                raise _date_error(value, self.date_format.spec) from exc
        if t == "ip":
            try:
                return str(ipaddress.ip_address(str(value)))
            except ValueError as exc:
                raise MalformedValue(
                    {"type": "illegal_argument_exception", "reason": f"'{value}' is not an IP string literal."}
                ) from exc
        if t in TEXT_TYPES or t in KEYWORD_TYPES:
            return _stringify(value)
        return value

    def format_date(self, indexed: int, fmt: DateFormat | None = None, tz: Any = None) -> str:
        """An indexed date (millis, or nanos for date_nanos) in ``fmt`` (default: the field's format)."""
        use = fmt or self.date_format or DateFormat()
        args = (tz,) if tz is not None else ()
        if self.type == "date_nanos":
            return use.format_nanos(indexed, *args)
        return use.format(indexed, *args)

    def to_millis(self, indexed: int) -> int:
        return indexed // 1_000_000 if self.type == "date_nanos" else indexed

    def render(self, indexed: Any) -> Any:
        """An indexed value as sort values / doc values show it."""
        if self.type == "boolean":
            return bool(indexed)
        return indexed


def narrow_float(value: float, type_name: str) -> float:
    """``value`` rounded to the precision ES stores a float / half_float in (OverflowError if out of range)."""
    code = "<f" if type_name == "float" else "<e"
    result: float = struct.unpack(code, struct.pack(code, value))[0]
    return result


def shortest_float(value: float, type_name: str) -> float:
    """The shortest decimal that reads back as the same float32 / float16 (how ES prints source floats)."""
    for digits in range(1, 18):
        candidate = float(f"{value:.{digits}g}")
        try:
            if narrow_float(candidate, type_name) == value:
                return candidate
        except OverflowError:
            continue
    return value


def _illegal_state(value: Any) -> MalformedValue:
    token = "START_OBJECT" if isinstance(value, dict) else "START_ARRAY"
    return MalformedValue({"type": "illegal_state_exception", "reason": f"Can't get text on a {token} at 1:1"})


def _date_error(value: Any, spec: str) -> MalformedValue:
    return MalformedValue(
        {
            "type": "illegal_argument_exception",
            "reason": f"failed to parse date field [{value}] with format [{spec}]",
            "caused_by": {"type": "date_time_parse_exception", "reason": "Failed to parse with all enclosed parsers"},
        }
    )


def _stringify(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float) and value.is_integer() and abs(value) < 1e16:
        return repr(value)
    return str(value)


def _flattened_leaves(value: Any) -> list[Any]:
    if isinstance(value, dict):
        return [leaf for v in value.values() for leaf in _flattened_leaves(v)]
    if isinstance(value, list):
        return [leaf for v in value for leaf in _flattened_leaves(v)]
    return [] if value is None else [value]


def _to_float(value: Any) -> float:
    if isinstance(value, bool | dict | list):
        raise MalformedValue({"type": "illegal_argument_exception", "reason": f"Cannot parse [{value}] as a number"})
    if isinstance(value, int | float):
        number = float(value)
    else:
        try:
            number = float(str(value).strip())
        except ValueError as exc:
            raise _number_format(value) from exc
    if math.isnan(number) or math.isinf(number):
        raise MalformedValue({"type": "illegal_argument_exception", "reason": f"[{value}] is not a valid number"})
    return number


def _to_integer(type_name: str, value: Any, coerce: bool) -> int:
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    else:
        if isinstance(value, str) and not coerce:
            raise _number_format(value)
        text = str(value).strip() if isinstance(value, str) else None
        # ES truncates decimals when coercing
        number = int(text) if text is not None and text.lstrip("+-").isdigit() else int(_to_float(value))
    low, high = INTEGER_RANGES[type_name]
    if not low <= number <= high:
        label = {"unsigned_long": "unsigned_long"}.get(type_name, type_name)
        raise MalformedValue(
            {"type": "illegal_argument_exception", "reason": f"Value [{value}] is out of range for {_article(label)}"}
        )
    return number


def _article(label: str) -> str:
    return f"an {label}" if label[0] in "aeiou" else f"a {label}"


def _to_bool(value: Any) -> bool:
    if isinstance(value, bool):
        return value
    if value in ("true", "false"):
        return bool(value == "true")
    if value == "":
        return False
    raise MalformedValue(
        {
            "type": "illegal_argument_exception",
            "reason": f"Failed to parse value [{_stringify(value)}] as only [true] or [false] are allowed.",
        }
    )
