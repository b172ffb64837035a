"""Request/response types and the path router (ES's trie semantics: literal segments beat wildcards)."""

from __future__ import annotations

import urllib.parse
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .errors import ESError
from .jsonbody import parse_json


@dataclass
class Request:
    method: str
    path: str                         # raw path, without the query string
    uri: str                          # path and query as received (ES names it in some errors)
    params: dict[str, str]
    body: bytes
    headers: dict[str, str]           # lower-case names
    path_params: dict[str, str] = field(default_factory=dict)

    @property
    def has_body(self) -> bool:
        return bool(self.body.strip())

    def json(self) -> Any:
        """The body as JSON (None when empty)."""
        if not self.has_body:
            return None
        return parse_json(self.body)

    def json_object(self, *, required: bool = False) -> dict[str, Any]:
        value = self.json()
        if value is None:
            if required:
                raise ESError(400, "parse_exception", "request body is required")
            return {}
        if not isinstance(value, dict):
            raise ESError(400, "parse_exception", "request body must be a JSON object")
        return value

    def param(self, name: str, default: str | None = None) -> str | None:
        return self.params.get(name, default)

    def flag(self, name: str, default: bool = False) -> bool:
        value = self.params.get(name)
        if value is None:
            return default
        if value in ("", "true"):
            return True
        if value == "false":
            return False
        raise ESError(400, "illegal_argument_exception",
                      f"Failed to parse value [{value}] as only [true] or [false] are allowed.")


@dataclass
class Response:
    status: int
    body: Any = None                  # dict/list → JSON, str → text/plain, None → empty
    headers: dict[str, str | list[str]] = field(default_factory=dict)


Handler = Callable[[Request], Response]


@dataclass
class Route:
    methods: tuple[str, ...]
    segments: list[str]
    handler: Handler

    def match(self, parts: list[str]) -> dict[str, str] | None:
        if len(parts) != len(self.segments):
            return None
        out: dict[str, str] = {}
        for seg, part in zip(self.segments, parts, strict=True):
            if seg.startswith("{"):
                if part == "":
                    return None
                out[seg[1:-1]] = part
            elif seg != part:
                return None
        return out

    def rank(self) -> tuple[int, ...]:
        return tuple(0 if s.startswith("{") else 1 for s in self.segments)


class Router:
    def __init__(self) -> None:
        self.routes: list[Route] = []

    def add(self, methods: str, pattern: str, handler: Handler) -> None:
        segs = list(pattern.strip("/").split("/")) if pattern != "/" else []
        self.routes.append(Route(tuple(methods.split(",")), segs, handler))

    def dispatch(self, req: Request) -> Response:
        raw = req.path.strip("/")
        parts = [urllib.parse.unquote(p) for p in raw.split("/")] if raw else []
        candidates = []
        for route in self.routes:
            found = route.match(parts)
            if found is not None:
                candidates.append((route, found))
        candidates.sort(key=lambda c: c[0].rank(), reverse=True)
        method = "GET" if req.method == "HEAD" else req.method
        for route, found in candidates:
            if req.method in route.methods or method in route.methods:
                req.path_params = found
                return route.handler(req)
        if candidates:
            allowed: list[str] = []
            for route, _ in candidates:
                allowed.extend(m for m in route.methods if m not in allowed)
            return Response(405, {"error": f"Incorrect HTTP method for uri [{req.uri}] and method [{req.method}], "
                                           f"allowed: [{', '.join(allowed)}]", "status": 405},
                            {"Allow": ",".join(allowed)})
        return Response(400, {"error": f"no handler found for uri [{req.uri}] and method [{req.method}]"})
