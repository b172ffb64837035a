"""Elasticsearch error responses, shaped exactly as ES 8.18 sends them."""

from __future__ import annotations

from typing import Any


class ESError(Exception):
    """An error that becomes an Elasticsearch JSON error response.

    ``extra`` keys (``index``, ``index_uuid``, ``resource.id``, ``shard`` ...) go into the
    error object and its root cause, as Elasticsearch puts them there.
    """

    def __init__(
        self,
        status: int,
        type: str,
        reason: str,
        *,
        root_cause: list[dict[str, Any]] | None = None,
        caused_by: dict[str, Any] | None = None,
        **extra: Any,
    ) -> None:
        super().__init__(f"{status} {type}: {reason}")
        self.status = status
        self.type = type
        self.reason = reason
        self.extra = extra
        self.caused_by = caused_by
        self._root_cause = root_cause

    def error_object(self) -> dict[str, Any]:
        obj: dict[str, Any] = {"type": self.type, "reason": self.reason, **self.extra}
        if self.caused_by is not None:
            obj["caused_by"] = self.caused_by
        return obj

    def body(self) -> dict[str, Any]:
        cause = {"type": self.type, "reason": self.reason, **self.extra}
        root = self._root_cause if self._root_cause is not None else [cause]
        return {"error": {"root_cause": root, **self.error_object()}, "status": self.status}


def index_not_found(index: str) -> ESError:
    extra: dict[str, Any] = {"resource.type": "index_or_alias", "resource.id": index, "index_uuid": "_na_",
                             "index": index}
    return ESError(404, "index_not_found_exception", f"no such index [{index}]", **extra)


def illegal_argument(reason: str) -> ESError:
    return ESError(400, "illegal_argument_exception", reason)


def parsing_exception(reason: str, line: int = 1, col: int = 1) -> ESError:
    return ESError(400, "parsing_exception", reason, line=line, col=col)


def x_content_parse(reason: str, line: int = 1, col: int = 1) -> ESError:
    return ESError(400, "x_content_parse_exception", f"[{line}:{col}] {reason}")


def action_request_validation(*problems: str) -> ESError:
    listed = "".join(f"{i + 1}: {p};" for i, p in enumerate(problems))
    return ESError(400, "action_request_validation_exception", f"Validation Failed: {listed}")
