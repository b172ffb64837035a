"""Content negotiation: ES media types, ``compatible-with`` versions and their errors."""

from __future__ import annotations

import re
from dataclasses import dataclass

from .errors import ESError

CURRENT_MAJOR = 8
MINIMUM_COMPATIBLE_MAJOR = 7
_VERSION_RE = re.compile(r"compatible-with\s*=\s*(\d+)", re.IGNORECASE)
_SUPPORTED_CONTENT = ("application/json", "application/x-ndjson", "application/vnd.elasticsearch+json",
                      "application/vnd.elasticsearch+x-ndjson")


@dataclass(frozen=True)
class Negotiated:
    compat_major: int | None  # the version asked for with compatible-with, else None

    def json_type(self) -> str:
        if self.compat_major is None:
            return "application/json"
        return f"application/vnd.elasticsearch+json;compatible-with={self.compat_major}"


def _version(header: str | None) -> int | None:
    if not header:
        return None
    m = _VERSION_RE.search(header)
    return int(m.group(1)) if m else None


def _status(reason: str) -> ESError:
    return ESError(
        400, "media_type_header_exception", "Invalid media-type value on headers [Accept, Content-Type]",
        root_cause=[{"type": "media_type_header_exception",
                     "reason": "Invalid media-type value on headers [Accept, Content-Type]"}],
        caused_by={"type": "status_exception", "reason": reason},
    )


def negotiate(accept: str | None, content_type: str | None, has_body: bool) -> Negotiated:
    """Validate the headers as ES 8's RestCompatibleVersionHelper does."""
    if has_body and not content_type:
        raise ESError(406, "content_type", "Content-Type header is missing")
    if has_body and content_type:
        base = content_type.split(";", 1)[0].strip().lower()
        if base not in _SUPPORTED_CONTENT and not base.endswith("/x-www-form-urlencoded"):
            raise ESError(406, "content_type", f"Content-Type header [{content_type}] is not supported")
    accept_v = _version(accept)
    content_v = _version(content_type) if has_body else None
    a = accept_v if accept_v is not None else CURRENT_MAJOR
    if a > CURRENT_MAJOR or a < MINIMUM_COMPATIBLE_MAJOR:
        raise _status(f"Accept version must be either version {CURRENT_MAJOR} or {MINIMUM_COMPATIBLE_MAJOR}, "
                      f"but found {a}. Accept={accept}")
    if has_body:
        c = content_v if content_v is not None else CURRENT_MAJOR
        if c > CURRENT_MAJOR or c < MINIMUM_COMPATIBLE_MAJOR:
            raise _status(f"Content-Type version must be either version {CURRENT_MAJOR} or "
                          f"{MINIMUM_COMPATIBLE_MAJOR}, but found {c}. Content-Type={content_type}")
        if c != a:
            raise _status("A compatible version is required on both Content-Type and Accept headers if either "
                          "one has requested a compatible version and the compatible versions must match. "
                          f"Accept={accept}, Content-Type={content_type}")
    wanted = accept_v if accept_v is not None else content_v
    return Negotiated(wanted)
