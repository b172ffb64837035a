"""Pure unit tests of datemath.py: formats and ES rounding rules."""

from __future__ import annotations

import pytest

from tests.fakes.elasticsearch.datemath import DateFormat, DateParseError, parse_math, parse_time_zone

NOW = DateFormat().parse("2026-03-15T10:20:30.400Z")


def iso(ms: int) -> str:
    return DateFormat().format(ms)


def test_default_format_parses_iso_and_epoch_millis() -> None:
    f = DateFormat()
    assert f.parse("1970-01-01T00:00:01Z") == 1000
    assert f.parse(1700000000000) == 1700000000000
    assert f.parse("2026-01-01T01:00:00+01:00") == f.parse("2026-01-01T00:00:00Z")
    with pytest.raises(DateParseError):
        f.parse("not a date")


def test_custom_formats() -> None:
    assert DateFormat("epoch_second").parse("10") == 10_000
    assert DateFormat("yyyy-MM-dd").parse("1970-01-02") == 86_400_000
    assert DateFormat("yyyy-MM-dd").format(86_400_000) == "1970-01-02"
    with pytest.raises(DateParseError):
        DateFormat("yyyy-MM-dd").parse("1970-01-02T00:00:00Z")


@pytest.mark.parametrize(
    ("expr", "round_up", "expected"),
    [
        ("now/d", False, "2026-03-15T00:00:00.000Z"),
        ("now/d", True, "2026-03-15T23:59:59.999Z"),
        ("now-24h", False, "2026-03-14T10:20:30.400Z"),
        ("2026-01-31||+1M/d", False, "2026-02-28T00:00:00.000Z"),
        ("2026-01-01", True, "2026-01-01T23:59:59.999Z"),
        ("2026-01", False, "2026-01-01T00:00:00.000Z"),
    ],
)
def test_date_math(expr: str, round_up: bool, expected: str) -> None:
    assert iso(parse_math(expr, DateFormat(), NOW, round_up=round_up)) == expected


def test_rounding_in_time_zone() -> None:
    tz = parse_time_zone("+02:00")
    assert iso(parse_math("now/d", DateFormat(), NOW, tz=tz)) == "2026-03-14T22:00:00.000Z"
