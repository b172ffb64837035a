"""Index and alias name rules (MetadataCreateIndexService.validateIndexOrAliasName) and ES-style ids."""

from __future__ import annotations

import base64
import itertools
import os
import re
import threading
import time

from .errors import ESError

_INVALID_CHARS = '\\/*?"<>| ,'
_INVALID_LIST = '[ , ", *, \\, <, |, ,, >, /, ?]'
_MAX_NAME_BYTES = 255


def _name_problem(name: str) -> str | None:
    if any(c in _INVALID_CHARS for c in name):
        return f"must not contain the following characters {_INVALID_LIST}"
    if not name:
        return "must not be empty"
    if "#" in name:
        return "must not contain '#'"
    if ":" in name:
        return "must not contain ':'"
    if name[0] in "_-+":
        return "must not start with '_', '-', or '+'"
    size = len(name.encode())
    if size > _MAX_NAME_BYTES:
        return f"index name is too long, ({size} > {_MAX_NAME_BYTES})"
    if name in (".", ".."):
        return "must not be '.' or '..'"
    return None


def validate_index_name(name: str) -> None:
    problem = _name_problem(name)
    if problem is None and name.lower() != name:
        problem = "must be lowercase"
    if problem is not None:
        raise ESError(400, "invalid_index_name_exception", f"Invalid index name [{name}], {problem}",
                      index_uuid="_na_", index=name)


def validate_alias_name(alias: str) -> None:
    if not alias.strip():
        raise ESError(400, "illegal_argument_exception", "alias name is required")
    problem = _name_problem(alias)
    if problem is not None:
        raise ESError(400, "invalid_alias_name_exception", f"Invalid alias name [{alias}], {problem}")


_counter = itertools.count(int.from_bytes(os.urandom(3), "big"))
_lock = threading.Lock()


def auto_id() -> str:
    """A 20-character base64url id built, like ES's, from a timestamp, a sequence number and random bytes."""
    with _lock:
        seq = next(_counter) & 0xFFFFFF
    raw = int(time.time() * 1000).to_bytes(6, "big") + seq.to_bytes(3, "big") + os.urandom(6)
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def new_uuid() -> str:
    """An index uuid in ES's 22-character base64url form."""
    return base64.urlsafe_b64encode(os.urandom(16)).decode().rstrip("=")


_DATE_MATH_RE = re.compile(r"\{([^{}]*?)(?:\{([^{}|]*)(?:\|([^{}]*))?\})?\}")


def resolve_date_math(name: str) -> str:
    """``<logs-{now/d{yyyy.MM.dd|+01:00}}>`` → ``logs-2026.11.27`` (ES's DateMathExpressionResolver)."""
    if not (name.startswith("<") and name.endswith(">")):
        return name
    from .datemath import DateFormat, now_millis, parse_math, parse_time_zone

    def one(m: re.Match[str]) -> str:
        expr, fmt, zone = m.group(1), m.group(2) or "yyyy.MM.dd", m.group(3)
        try:
            tz = parse_time_zone(zone)
            millis = parse_math(expr, DateFormat(), now_millis(), tz=tz)
            return DateFormat(fmt).format(millis, tz)
        except ValueError as err:
            raise ESError(400, "parse_exception", f"invalid date math expression [{name}]: {err}") from None

    return _DATE_MATH_RE.sub(one, name[1:-1])
