"""Just enough ``multipart/form-data`` parsing for Kibana's import route (the stdlib ``cgi`` module is gone)."""

from __future__ import annotations

from dataclasses import dataclass
from email.parser import BytesParser
from email.policy import HTTP


@dataclass(frozen=True)
class Part:
    name: str
    filename: str | None
    content: bytes


class MultipartError(ValueError):
    pass


def parse(content_type: str, body: bytes) -> dict[str, Part]:
    """Form fields by name; raises :class:`MultipartError` when the body is not multipart/form-data."""
    if not content_type.lower().startswith("multipart/form-data") or "boundary=" not in content_type:
        raise MultipartError(f"expected multipart/form-data with a boundary, got {content_type!r}")
    message = BytesParser(policy=HTTP).parsebytes(b"Content-Type: " + content_type.encode("latin-1") + b"\r\n\r\n"
                                                  + body)
    if not message.is_multipart():
        raise MultipartError("the multipart body has no parts")
    parts: dict[str, Part] = {}
    for item in message.iter_parts():
        name = item.get_param("name", header="content-disposition")
        if not isinstance(name, str):
            continue
        payload = item.get_payload(decode=True)
        parts[name] = Part(name, item.get_filename(), payload if isinstance(payload, bytes) else b"")
    return parts
