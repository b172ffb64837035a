"""Date formats (ES/Java-time subset) and date math (`now-1d/d`, `2026-01-01||+1M/d`)."""

from __future__ import annotations

import calendar
import re
from collections.abc import Callable
from datetime import UTC, datetime, timedelta, timezone, tzinfo
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
DEFAULT_DATE_FORMAT = "strict_date_optional_time||epoch_millis"
MS = timedelta(milliseconds=1)


class DateParseError(ValueError):
    """A value that none of a field's formats accept."""


def to_millis(dt: datetime) -> int:
    return (dt - EPOCH) // MS


def from_millis(ms: int, tz: tzinfo = UTC) -> datetime:
    return (EPOCH + timedelta(milliseconds=ms)).astimezone(tz)


def parse_time_zone(text: str | None) -> tzinfo:
    """A ZoneId as ES accepts it: `Z`, `UTC`, `+01:00`, `-0500`, `Europe/Paris`."""
    if text is None or text in ("Z", "UTC", "utc", "GMT"):
        return UTC
    m = re.fullmatch(r"(?:UTC|GMT)?([+-])(\d{1,2})(?::?(\d{2}))?", text)
    if m:
        delta = timedelta(hours=int(m.group(2)), minutes=int(m.group(3) or 0))
        return timezone(delta if m.group(1) == "+" else -delta)
    try:
        return ZoneInfo(text)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"Unknown time-zone ID: {text}") from exc


# --- parsers ------------------------------------------------------------------------------

Parser = Callable[[str, bool, tzinfo], int | None]

_ISO = re.compile(
    r"(?P<y>[+-]?\d{4,9})(?:-(?P<M>\d{1,2})(?:-(?P<d>\d{1,2})"
    r"(?:T(?P<H>\d{1,2})(?::(?P<m>\d{1,2})(?::(?P<s>\d{1,2})(?:[.,](?P<f>\d{1,9}))?)?)?"
    r"(?P<z>Z|[+-]\d{2}(?::?\d{2})?)?)?)?)?"
)


def _zone_of(z: str | None, default: tzinfo) -> tzinfo:
    if not z:
        return default
    if z == "Z":
        return UTC
    sign = 1 if z[0] == "+" else -1
    digits = z[1:].replace(":", "")
    delta = timedelta(hours=int(digits[:2]), minutes=int(digits[2:4] or 0))
    return timezone(sign * delta)


def _part(parts: dict[str, str | None], key: str, default: int) -> int:
    value = parts.get(key)
    return int(value) if value else default


NANOS = 1_000_000_000


def _build(parts: dict[str, str | None], round_up: bool, tz: tzinfo) -> int | None:
    """Epoch nanoseconds of parsed date parts; missing parts are filled low, or high when rounding up."""
    try:
        year = _part(parts, "y", 0)
        month = _part(parts, "M", 12 if round_up else 1)
        day = _part(parts, "d", calendar.monthrange(year, month)[1] if round_up else 1)
        hour = _part(parts, "H", 23 if round_up else 0)
        minute = _part(parts, "m", 59 if round_up else 0)
        second = _part(parts, "s", 59 if round_up else 0)
        frac = parts.get("f")
        frac_nanos = int(frac[:9].ljust(9, "0")) if frac else (NANOS - 1 if round_up else 0)
        ampm = parts.get("a")
        if ampm:
            hour = hour % 12 + (12 if ampm.upper() == "PM" else 0)
        zone = _zone_of(parts.get("z"), tz)
        dt = datetime(year, month, day, hour, minute, second, tzinfo=zone)
    except (ValueError, OverflowError):
        return None
    return (dt - EPOCH) // timedelta(seconds=1) * NANOS + frac_nanos


def _iso_parser(strict: bool) -> Parser:
    def parse(text: str, round_up: bool, tz: tzinfo) -> int | None:
        m = _ISO.fullmatch(text)
        if not m:
            return None
        parts = m.groupdict()
        if strict:
            for key, width in (("M", 2), ("d", 2), ("H", 2), ("m", 2), ("s", 2)):
                if parts[key] is not None and len(parts[key]) != width:
                    return None
            if len(parts["y"].lstrip("+-")) != 4:
                return None
        return _build(parts, round_up, tz)

    return parse


def _epoch_parser(nanos_per_unit: int) -> Parser:
    def parse(text: str, round_up: bool, tz: tzinfo) -> int | None:
        m = re.fullmatch(r"(-?)(\d+)(?:\.(\d+))?", text)
        if not m:
            return None
        whole = int(m.group(2)) * nanos_per_unit
        digits = len(str(nanos_per_unit)) - 1
        frac = int((m.group(3) or "")[:digits].ljust(digits, "0")) if digits else 0
        value = whole + frac
        return -value if m.group(1) else value

    return parse


_TOKEN = re.compile(r"'[^']*'|([a-zA-Z])\1*|\[|\]|.", re.S)
_FIELD_RE = {
    "y": ("y", r"[+-]?\d{4,9}"),
    "u": ("y", r"[+-]?\d{4,9}"),
    "M": ("M", r"\d{1,2}"),
    "d": ("d", r"\d{1,2}"),
    "H": ("H", r"\d{1,2}"),
    "h": ("H", r"\d{1,2}"),
    "m": ("m", r"\d{1,2}"),
    "s": ("s", r"\d{1,2}"),
    "S": ("f", r"\d{1,9}"),
    "a": ("a", r"[AaPp][Mm]"),
    "Z": ("z", r"Z|[+-]\d{2}(?::?\d{2})?"),
    "X": ("z", r"Z|[+-]\d{2}(?::?\d{2})?"),
    "x": ("z", r"[+-]\d{2}(?::?\d{2})?"),
}
# A printer renders a zoned datetime plus its nano-of-second.
Printer = Callable[[datetime, int], str]


_MONTHS = {
    "en": ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October",
           "November", "December"],
    "fr": ["janvier", "février", "mars", "avril", "mai", "juin", "juillet", "août", "septembre", "octobre",
           "novembre", "décembre"],
}
_SHORT_MONTHS = {
    "en": ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"],
    "fr": ["janv.", "févr.", "mars", "avr.", "mai", "juin", "juil.", "août", "sept.", "oct.", "nov.", "déc."],
}
_DAYS = {
    "en": ["Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday"],
    "fr": ["lundi", "mardi", "mercredi", "jeudi", "vendredi", "samedi", "dimanche"],
}
_SHORT_DAYS = {
    "en": ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"],
    "fr": ["lun.", "mar.", "mer.", "jeu.", "ven.", "sam.", "dim."],
}


def _names(table: dict[str, list[str]], locale: str) -> list[str]:
    return table.get(locale.split("_", maxsplit=1)[0].split("-", maxsplit=1)[0].lower(), table["en"])


def _pattern_parser(pattern: str, locale: str = "en") -> tuple[Parser, Printer]:
    regex: list[str] = []
    printers: list[Printer] = []
    used: set[str] = set()
    depth = 0
    for m in _TOKEN.finditer(pattern):
        tok = m.group(0)
        if tok.startswith("'"):
            lit = tok[1:-1] or "'"
            regex.append(re.escape(lit))
            printers.append(_literal(lit))
        elif tok == "[":
            regex.append("(?:")
            depth += 1
        elif tok == "]":
            regex.append(")?")
            depth -= 1
        elif tok[0] == "E" or (tok[0] == "M" and len(tok) >= 3):
            table = (_DAYS if len(tok) >= 4 else _SHORT_DAYS) if tok[0] == "E" else \
                (_MONTHS if len(tok) >= 4 else _SHORT_MONTHS)
            names = _names(table, locale)
            group = "E" if tok[0] == "E" else "T"
            regex.append(f"(?P<{group}{len(used)}>" + "|".join(re.escape(n) for n in names) + ")")
            used.add(group)
            printers.append(_text_printer(tok[0], names))
        elif tok[0] in _FIELD_RE:
            group, rx = _FIELD_RE[tok[0]]
            if tok[0] in "yu" and len(tok) == 2:
                rx = r"\d{2}"
            name = group if group not in used else f"{group}{len(used)}"
            used.add(group)
            regex.append(f"(?P<{name}>{rx})")
            printers.append(_printer(tok))
        else:
            regex.append(re.escape(tok))
            if depth == 0:
                printers.append(_literal(tok))
    compiled = re.compile("".join(regex))

    def parse(text: str, round_up: bool, tz: tzinfo) -> int | None:
        found = compiled.fullmatch(text)
        if not found:
            return None
        parts: dict[str, str | None] = {k[0]: v for k, v in found.groupdict().items() if v is not None}
        if parts.get("T"):
            lowered = [n.lower() for n in _names(_MONTHS, locale) + _names(_SHORT_MONTHS, locale)]
            parts["M"] = str(lowered.index(str(parts["T"]).lower()) % 12 + 1)
        if "y" not in parts:
            parts["y"] = "1970"
        elif len(parts["y"] or "") == 2:
            parts["y"] = str(2000 + int(parts["y"] or 0))
        return _build(parts, round_up, tz)

    def fmt(dt: datetime, nos: int) -> str:
        return "".join(p(dt, nos) for p in printers)

    return parse, fmt


def _text_printer(kind: str, names: list[str]) -> Printer:
    if kind == "E":
        return lambda dt, _: names[dt.weekday()]
    return lambda dt, _: names[dt.month - 1]


def _literal(text: str) -> Printer:
    return lambda _dt, _nos: text


def _printer(tok: str) -> Printer:
    c, n = tok[0], len(tok)
    if c in "yu":
        return lambda dt, _: f"{dt.year % 100:02d}" if n == 2 else f"{dt.year:0{max(n, 4)}d}"
    if c == "M":
        return lambda dt, _: f"{dt.month:0{n}d}"
    if c == "d":
        return lambda dt, _: f"{dt.day:0{n}d}"
    if c == "H":
        return lambda dt, _: f"{dt.hour:0{n}d}"
    if c == "h":
        return lambda dt, _: f"{(dt.hour % 12) or 12:0{n}d}"
    if c == "m":
        return lambda dt, _: f"{dt.minute:0{n}d}"
    if c == "s":
        return lambda dt, _: f"{dt.second:0{n}d}"
    if c == "S":
        return lambda _dt, nos: f"{nos:09d}"[:n]
    if c == "a":
        return lambda dt, _: "AM" if dt.hour < 12 else "PM"
    show = _offset_printer(tok)
    return lambda dt, _: show(dt)


def _offset_printer(tok: str) -> Callable[[datetime], str]:
    def show(dt: datetime) -> str:
        off = dt.utcoffset() or timedelta(0)
        if off == timedelta(0) and tok[0] in "XZ" and tok != "Z":
            return "Z"
        sign = "+" if off >= timedelta(0) else "-"
        minutes = abs(int(off.total_seconds())) // 60
        sep = ":" if len(tok) >= 3 or tok == "ZZ" else ""
        return f"{sign}{minutes // 60:02d}{sep}{minutes % 60:02d}"

    return show


def _iso_printer(nanos: bool) -> Printer:
    """strict_date_optional_time prints millis; the _nanos variant 3 to 9 fraction digits."""

    def show(dt: datetime, nos: int) -> str:
        if nanos:
            frac = f"{nos:09d}".rstrip("0")
            frac = frac.ljust(3, "0") if len(frac) <= 3 else frac
        else:
            frac = f"{nos // 1_000_000:03d}"
        off = dt.utcoffset() or timedelta(0)
        zone = "Z" if off == timedelta(0) else _offset_printer("XXX")(dt)
        return dt.strftime("%Y-%m-%dT%H:%M:%S") + f".{frac}{zone}"

    return show


def _epoch_printer(nanos_per_unit: int) -> Printer:
    def show(dt: datetime, nos: int) -> str:
        total = (dt - EPOCH) // timedelta(seconds=1) * NANOS + nos
        whole, rest = divmod(total, nanos_per_unit)
        digits = len(str(nanos_per_unit)) - 1
        frac = f"{rest:0{digits}d}".rstrip("0") if digits else ""
        return f"{whole}.{frac}" if frac else str(whole)

    return show


_NAMED: dict[str, str] = {
    "date": "yyyy-MM-dd",
    "strict_date": "yyyy-MM-dd",
    "basic_date": "yyyyMMdd",
    "basic_date_time": "yyyyMMdd'T'HHmmss.SSSZ",
    "basic_date_time_no_millis": "yyyyMMdd'T'HHmmssZ",
    "date_time": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
    "strict_date_time": "yyyy-MM-dd'T'HH:mm:ss.SSSXXX",
    "date_time_no_millis": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "strict_date_time_no_millis": "yyyy-MM-dd'T'HH:mm:ssXXX",
    "date_hour": "yyyy-MM-dd'T'HH",
    "strict_date_hour": "yyyy-MM-dd'T'HH",
    "date_hour_minute": "yyyy-MM-dd'T'HH:mm",
    "strict_date_hour_minute": "yyyy-MM-dd'T'HH:mm",
    "date_hour_minute_second": "yyyy-MM-dd'T'HH:mm:ss",
    "strict_date_hour_minute_second": "yyyy-MM-dd'T'HH:mm:ss",
    "date_hour_minute_second_millis": "yyyy-MM-dd'T'HH:mm:ss.SSS",
    "strict_date_hour_minute_second_millis": "yyyy-MM-dd'T'HH:mm:ss.SSS",
    "date_hour_minute_second_fraction": "yyyy-MM-dd'T'HH:mm:ss.SSS",
    "strict_date_hour_minute_second_fraction": "yyyy-MM-dd'T'HH:mm:ss.SSS",
    "hour_minute": "HH:mm",
    "strict_hour_minute": "HH:mm",
    "hour_minute_second": "HH:mm:ss",
    "strict_hour_minute_second": "HH:mm:ss",
    "year": "yyyy",
    "strict_year": "yyyy",
    "year_month": "yyyy-MM",
    "strict_year_month": "yyyy-MM",
    "year_month_day": "yyyy-MM-dd",
    "strict_year_month_day": "yyyy-MM-dd",
}


_PARSED_LIMIT = 50_000  # remembered parses per format: keeps a long-running server's memory bounded


class DateFormat:
    """One `format` value of a date field: `a||b||c`, each a named format or a Java pattern."""

    def __init__(self, spec: str | None = None, locale: str = "en") -> None:
        self.spec = spec or DEFAULT_DATE_FORMAT
        self._parsers: list[Parser] = []
        # Indexing validates a date, then indexes it, and the same timestamps recur across documents:
        # remember what plain parses (UTC, not rounding up) gave; parsing is pure, so this changes nothing.
        self._parsed: dict[str, int] = {}
        self._printer: Printer | None = None
        for part in self.spec.split("||"):
            parser, printer = _compile(part.strip(), locale)
            self._parsers.append(parser)
            if self._printer is None:
                self._printer = printer

    def parse_nanos(self, value: object, *, round_up: bool = False, tz: tzinfo = UTC) -> int:
        """Epoch nanoseconds of ``value``; raises DateParseError."""
        text = _as_text(value)
        plain = not round_up and tz is UTC
        if plain:
            known = self._parsed.get(text)
            if known is not None:
                return known
        for parser in self._parsers:
            result = parser(text, round_up, tz)
            if result is not None:
                if plain:
                    if len(self._parsed) >= _PARSED_LIMIT:
                        self._parsed.clear()
                    self._parsed[text] = result
                return result
        raise DateParseError(f"failed to parse date field [{text}] with format [{self.spec}]")

    def parse(self, value: object, *, round_up: bool = False, tz: tzinfo = UTC) -> int:
        """Epoch millis of ``value``; raises DateParseError."""
        return self.parse_nanos(value, round_up=round_up, tz=tz) // 1_000_000

    def format(self, millis: int, tz: tzinfo = UTC) -> str:
        return self.format_nanos(millis * 1_000_000, tz)

    def format_nanos(self, nanos: int, tz: tzinfo = UTC) -> str:
        assert self._printer is not None
        seconds, nos = divmod(nanos, NANOS)
        dt = (EPOCH + timedelta(seconds=seconds)).astimezone(tz)
        return self._printer(dt, nos)


def _as_text(value: object) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, float):
        return str(int(value)) if value.is_integer() else repr(value)
    return str(value)


def _compile(name: str, locale: str = "en") -> tuple[Parser, Printer]:
    if name in ("strict_date_optional_time", "strict_date_optional_time_nanos"):
        return _iso_parser(True), _iso_printer(name.endswith("_nanos"))
    if name in ("date_optional_time", "iso8601"):
        return _iso_parser(False), _iso_printer(False)
    if name == "epoch_millis":
        return _epoch_parser(1_000_000), _epoch_printer(1_000_000)
    if name == "epoch_second":
        return _epoch_parser(NANOS), _epoch_printer(NANOS)
    return _pattern_parser(_NAMED.get(name, name), locale)


def validate_format(spec: str) -> None:
    """Raise ValueError for a format ES would refuse (unknown letters)."""
    for raw in spec.split("||"):
        part = raw.strip()
        if not part:
            raise ValueError(f"Invalid format: [{spec}]: empty format")
        if part in _NAMED or part.startswith(("strict_date_optional_time", "epoch_")):
            continue
        if part in ("date_optional_time", "iso8601"):
            continue
        for m in _TOKEN.finditer(_NAMED.get(part, part)):
            tok = m.group(0)
            if tok[0].isalpha() and tok[0] not in _FIELD_RE and tok[0] != "E" and not tok.startswith("'"):
                raise ValueError(f"Invalid format: [{spec}]: Unknown pattern letter: {tok[0]}")


# --- date math ----------------------------------------------------------------------------

_UNITS = "yMwdhHms"


def parse_math(
    text: object,
    fmt: DateFormat,
    now_ms: int,
    *,
    round_up: bool = False,
    tz: tzinfo = UTC,
) -> int:
    """Resolve a date-math expression to epoch millis (ES `JavaDateMathParser` rules)."""
    if not isinstance(text, str):
        return fmt.parse(text, round_up=round_up, tz=tz)
    if text.startswith("now"):
        base = now_ms
        math = text[3:]
    elif "||" in text:
        head, math = text.split("||", 1)
        base = fmt.parse(head, round_up=False, tz=tz)
    else:
        return fmt.parse(text, round_up=round_up, tz=tz)
    return apply_math(base, math, round_up=round_up, tz=tz)


def apply_math(base_ms: int, math: str, *, round_up: bool, tz: tzinfo) -> int:
    dt = from_millis(base_ms, tz)
    i = 0
    while i < len(math):
        op = math[i]
        i += 1
        if op == "/":
            if i >= len(math) or math[i] not in _UNITS:
                raise DateParseError(f"rounding `/` can only be used on single unit types [{math}]")
            unit = math[i]
            i += 1
            start = truncate(dt, unit)
            dt = add_units(start, unit, 1) - MS if round_up else start
            continue
        if op not in "+-":
            raise DateParseError(f"operator not supported for date math [{math}]")
        j = i
        while j < len(math) and math[j].isdigit():
            j += 1
        amount = int(math[i:j]) if j > i else 1
        if j >= len(math) or math[j] not in _UNITS:
            raise DateParseError(f"unit [{math[j:j + 1]}] not supported for date math [{math}]")
        dt = add_units(dt, math[j], amount if op == "+" else -amount)
        i = j + 1
    return to_millis(dt)


def truncate(dt: datetime, unit: str) -> datetime:
    """Start of the calendar unit containing ``dt`` (in ``dt``'s zone)."""
    tz = dt.tzinfo or UTC
    naive = dt.replace(tzinfo=None)
    if unit == "y":
        naive = naive.replace(month=1, day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "q":
        naive = naive.replace(
            month=(naive.month - 1) // 3 * 3 + 1, day=1, hour=0, minute=0, second=0, microsecond=0
        )
    elif unit == "M":
        naive = naive.replace(day=1, hour=0, minute=0, second=0, microsecond=0)
    elif unit == "w":
        naive = (naive - timedelta(days=naive.weekday())).replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit == "d":
        naive = naive.replace(hour=0, minute=0, second=0, microsecond=0)
    elif unit in "hH":
        naive = naive.replace(minute=0, second=0, microsecond=0)
    elif unit == "m":
        naive = naive.replace(second=0, microsecond=0)
    elif unit == "s":
        naive = naive.replace(microsecond=0)
    return _localize(naive, tz)


def _localize(naive: datetime, tz: tzinfo) -> datetime:
    return naive.replace(tzinfo=tz)


def add_units(dt: datetime, unit: str, amount: int) -> datetime:
    tz = dt.tzinfo or UTC
    if unit in "yMq":
        months = amount * {"y": 12, "M": 1, "q": 3}[unit]
        naive = dt.replace(tzinfo=None)
        total = naive.year * 12 + naive.month - 1 + months
        year, month = divmod(total, 12)
        day = min(naive.day, calendar.monthrange(year, month + 1)[1])
        return _localize(naive.replace(year=year, month=month + 1, day=day), tz)
    if unit in "wd":
        naive = dt.replace(tzinfo=None) + timedelta(days=amount * (7 if unit == "w" else 1))
        return _localize(naive, tz)
    seconds = {"h": 3600, "H": 3600, "m": 60, "s": 1}[unit] * amount
    return (dt.astimezone(UTC) + timedelta(seconds=seconds)).astimezone(tz)


def now_millis() -> int:
    return to_millis(datetime.now(UTC))
