"""Composable index templates and component templates: storage, validation, matching, composition."""

from __future__ import annotations

import copy
import fnmatch
from dataclasses import dataclass, field
from typing import Any

from . import settings as settings_mod
from .errors import ESError, action_request_validation, illegal_argument
from .mapping import IndexMapping


@dataclass
class Composed:
    """What templates contribute to a new index."""

    settings: dict[str, Any] = field(default_factory=dict)  # flat
    mappings: list[dict[str, Any]] = field(default_factory=list)
    aliases: dict[str, dict[str, Any]] = field(default_factory=dict)
    template_name: str | None = None


def globs_intersect(a: str, b: str) -> bool:
    """True when some string matches both ``*``-globs (used for ES's same-priority overlap check)."""
    stack = [(0, 0)]
    seen: set[tuple[int, int]] = set()
    while stack:
        i, j = stack.pop()
        if (i, j) in seen:
            continue
        seen.add((i, j))
        if i == len(a) and j == len(b):
            return True
        if i < len(a) and a[i] == "*":
            stack.append((i + 1, j))
        if j < len(b) and b[j] == "*":
            stack.append((i, j + 1))
        if i < len(a) and j < len(b):
            ca, cb = a[i], b[j]
            if ca == "*" and cb == "*":
                stack.append((i, j))      # consuming one char keeps both stars
            elif ca == "*":
                stack.append((i, j + 1))
            elif cb == "*":
                stack.append((i + 1, j))
            elif ca == cb:
                stack.append((i + 1, j + 1))
    return False


def _patterns(body: dict[str, Any]) -> list[str]:
    raw = body.get("index_patterns")
    if isinstance(raw, str):
        return [p.strip() for p in raw.split(",") if p.strip()]
    return [str(p) for p in raw or []]


class TemplateRegistry:
    def __init__(self) -> None:
        self.index_templates: dict[str, dict[str, Any]] = {}
        self.component_templates: dict[str, dict[str, Any]] = {}

    # ------------------------------------------------------------------ component templates
    def put_component(self, name: str, body: dict[str, Any], *, create: bool) -> None:
        if create and name in self.component_templates:
            raise illegal_argument(f"component template [{name}] already exists")
        tmpl = body.get("template")
        if not isinstance(tmpl, dict):
            raise action_request_validation("template is missing")
        unknown = sorted(set(body) - {"template", "version", "_meta", "deprecated"})
        if unknown:
            raise ESError(400, "x_content_parse_exception",
                          f"[1:2] [component_template] unknown field [{unknown[0]}]")
        self._validate_template_block(tmpl)
        self.component_templates[name] = copy.deepcopy(body)

    def get_components(self, name: str | None) -> list[tuple[str, dict[str, Any]]]:
        names = sorted(self.component_templates)
        if name:
            wanted = [n.strip() for n in name.split(",")]
            names = [n for n in names if any(fnmatch.fnmatchcase(n, w) for w in wanted)]
            if not names:
                raise ESError(404, "resource_not_found_exception", f"component template matching [{name}] not found")
        return [(n, self.component_templates[n]) for n in names]

    def delete_component(self, name: str) -> None:
        wanted = [n.strip() for n in name.split(",")]
        names = [n for n in self.component_templates if any(fnmatch.fnmatchcase(n, w) for w in wanted)]
        if not names:
            raise ESError(404, "resource_not_found_exception", name)
        users = sorted(t for t, body in self.index_templates.items()
                       if set(body.get("composed_of") or []) & set(names))
        if users:
            raise illegal_argument(f"component templates [{', '.join(sorted(names))}] cannot be removed as they "
                                   f"are still in use by index templates [{', '.join(users)}]")
        for n in names:
            del self.component_templates[n]

    # ------------------------------------------------------------------ index templates
    def put_index_template(self, name: str, body: dict[str, Any], *, create: bool) -> None:
        if create and name in self.index_templates:
            raise illegal_argument(f"index template [{name}] already exists")
        allowed = {"index_patterns", "template", "composed_of", "priority", "version", "_meta", "data_stream",
                   "allow_auto_create", "ignore_missing_component_templates", "deprecated"}
        unknown = sorted(set(body) - allowed)
        if unknown:
            raise ESError(400, "x_content_parse_exception",
                          f"[1:2] [index_template] unknown field [{unknown[0]}]")
        patterns = _patterns(body)
        if not patterns:
            raise action_request_validation("index patterns are missing")
        priority = body.get("priority")
        if priority is not None and (not isinstance(priority, int) or priority < 0):
            raise action_request_validation("index template priority must be >= 0")
        composed = list(body.get("composed_of") or [])
        ignore_missing = set(body.get("ignore_missing_component_templates") or [])
        missing = [c for c in composed if c not in self.component_templates and c not in ignore_missing]
        if missing:
            raise ESError(400, "invalid_index_template_exception",
                          f"index_template [{name}] invalid, cause [index template [{name}] specifies component "
                          f"templates {_list(missing)} that do not exist]")
        tmpl = body.get("template")
        if tmpl is not None:
            if not isinstance(tmpl, dict):
                raise illegal_argument("template must be an object")
            self._validate_template_block(tmpl)
        prio = priority or 0
        for other_name, other in sorted(self.index_templates.items()):
            if other_name == name or (other.get("priority") or 0) != prio:
                continue
            other_patterns = _patterns(other)
            if any(globs_intersect(p, q) for p in patterns for q in other_patterns):
                raise illegal_argument(
                    f"index template [{name}] has index patterns {_list(patterns)} matching patterns from existing "
                    f"templates [{other_name}] with patterns ({other_name} => {_list(other_patterns)}) that have "
                    f"the same priority [{prio}], multiple index templates may not match during index creation, "
                    "please use a different priority")
        stored = copy.deepcopy(body)
        stored["index_patterns"] = patterns
        stored.setdefault("composed_of", [])
        # The composed mapping must be valid as a whole.
        self.compose_template(stored)
        self.index_templates[name] = stored

    def get_index_templates(self, name: str | None) -> list[tuple[str, dict[str, Any]]]:
        names = sorted(self.index_templates)
        if name:
            wanted = [n.strip() for n in name.split(",")]
            names = [n for n in names if any(fnmatch.fnmatchcase(n, w) for w in wanted)]
            if not names:
                raise ESError(404, "resource_not_found_exception", f"index template matching [{name}] not found")
        return [(n, self.index_templates[n]) for n in names]

    def delete_index_template(self, name: str) -> None:
        wanted = [n.strip() for n in name.split(",")]
        names = [n for n in self.index_templates if any(fnmatch.fnmatchcase(n, w) for w in wanted)]
        if not names:
            raise ESError(404, "index_template_missing_exception", f"index_template [{name}] missing")
        for n in names:
            del self.index_templates[n]

    # ------------------------------------------------------------------ matching and composition
    def find(self, index: str, hidden: bool | None) -> tuple[str, dict[str, Any]] | None:
        best: tuple[int, str, dict[str, Any]] | None = None
        for name, body in self.index_templates.items():
            patterns = _patterns(body)
            if hidden and "*" in patterns:
                continue   # global templates never apply to indices created hidden
            if any(fnmatch.fnmatchcase(index, p) for p in patterns):
                prio = body.get("priority") or 0
                if best is None or prio > best[0]:
                    best = (prio, name, body)
        return None if best is None else (best[1], best[2])

    def compose_template(self, body: dict[str, Any]) -> Composed:
        out = Composed()
        blocks: list[dict[str, Any]] = []
        for comp in body.get("composed_of") or []:
            if comp in self.component_templates:
                blocks.append(self.component_templates[comp].get("template") or {})
        blocks.append(body.get("template") or {})
        for block in blocks:
            if block.get("settings"):
                out.settings.update(settings_mod.flatten(block["settings"]))
            if block.get("mappings"):
                out.mappings.append(block["mappings"])
            for alias, spec in (block.get("aliases") or {}).items():
                out.aliases[alias] = dict(spec or {})
        compose_mappings(out.mappings)  # raises when the blocks do not combine
        return out

    def for_index(self, index: str, hidden: bool | None) -> Composed:
        found = self.find(index, hidden)
        if found is None:
            return Composed()
        composed = self.compose_template(found[1])
        composed.template_name = found[0]
        return composed

    def _validate_template_block(self, tmpl: dict[str, Any]) -> None:
        if tmpl.get("settings") is not None:
            settings_mod.validate(settings_mod.flatten(tmpl["settings"]), creating=True)
        if tmpl.get("mappings") is not None:
            IndexMapping.from_body(tmpl["mappings"])


def compose_mappings(bodies: list[dict[str, Any]]) -> IndexMapping:
    """Template composition: later blocks win, a field whose type changes is replaced whole (ES's
    INDEX_TEMPLATE merge reason), objects merge recursively."""
    merged: dict[str, Any] = {}
    for body in bodies:
        merged = _merge_mapping_body(merged, _unwrap_type(body))
    return IndexMapping.from_body(merged or None)


def _unwrap_type(body: dict[str, Any]) -> dict[str, Any]:
    if len(body) == 1 and "_doc" in body and isinstance(body["_doc"], dict):
        return body["_doc"]
    return body


def _merge_mapping_body(base: dict[str, Any], new: dict[str, Any]) -> dict[str, Any]:
    out = copy.deepcopy(base)
    for key, value in new.items():
        if key == "properties" and isinstance(value, dict) and isinstance(out.get(key), dict):
            props = out[key]
            for field_name, spec in value.items():
                old = props.get(field_name)
                if isinstance(old, dict) and isinstance(spec, dict) and old.get("type") == spec.get("type"):
                    props[field_name] = _merge_mapping_body(old, spec)
                else:
                    props[field_name] = copy.deepcopy(spec)
        elif isinstance(value, dict) and isinstance(out.get(key), dict) and key != "dynamic_templates":
            out[key] = _merge_mapping_body(out[key], value)
        else:
            out[key] = copy.deepcopy(value)
    return out


def _list(items: list[str]) -> str:
    return "[" + ", ".join(items) + "]"
