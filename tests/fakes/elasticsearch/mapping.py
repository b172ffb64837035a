"""Index mappings: parse, merge, render, validate documents and compute what a document indexes.

Indexing contract with the cluster state (A1): when a document is stored, call
``mapping.prepare_document(source, doc_id=...)`` (validates, applies `dynamic`, returns True if the
mapping changed) and then ``mapping.index_document(source)``; keep its result in
``StoredDoc.extra["indexed"]``. That dict (field path -> list of indexed values) is what queries,
sorts and aggregations read, so a field mapped later (PUT _mapping) stays unsearchable for documents
stored before, as in Elasticsearch. The search engine falls back to indexing ``_source`` with the
current mapping when ``extra["indexed"]`` is absent. ``index_parts`` gives the same dict for a document
that replaces an earlier version, reusing what the unchanged top-level entries indexed to (partial updates).
"""

from __future__ import annotations

import contextlib
import copy as _copy
import fnmatch
import json
import re
from collections.abc import Callable, Iterator
from typing import Any

from .datemath import DateFormat, DateParseError, validate_format
from .errors import ESError, illegal_argument
from .fieldtypes import ALL_TYPES, OBJECT_TYPES, OBJECT_VALUED, FieldDef, MalformedValue

IndexedFields = dict[str, list[Any]]
IGNORED = "_ignored"
IGNORED_VALUES = "_ignored_values"  # (path, raw value) pairs behind `ignored_field_values`

ROOT_PARAMS = frozenset(
    {
        "dynamic", "_meta", "properties", "date_detection", "numeric_detection", "dynamic_date_formats",
        "dynamic_templates", "_source", "_routing", "runtime", "enabled", "subobjects", "_field_names",
        "_data_stream_timestamp", "_size", "_doc_count", "_tier", "_id", "_index", "_ignored",
    }
)
OBJECT_PARAMS = frozenset({"type", "properties", "dynamic", "enabled", "subobjects", "include_in_parent",
                           "include_in_root", "_meta"})
FIELD_PARAMS = frozenset(
    {
        "type", "fields", "index", "doc_values", "store", "meta", "copy_to", "ignore_malformed", "null_value",
        "boost", "script", "on_script_error", "time_series_dimension", "time_series_metric", "index_options",
        "similarity", "norms", "ignore_above", "normalizer", "eager_global_ordinals",
        "split_queries_on_whitespace", "analyzer", "search_analyzer", "search_quote_analyzer", "fielddata",
        "fielddata_frequency_filter", "index_phrases", "index_prefixes", "position_increment_gap",
        "term_vector", "coerce", "scaling_factor", "format", "locale", "path", "value", "depth_limit",
        "ignore_z_value", "orientation", "dims", "element_type", "positive_score_impact",
        "max_shingle_size", "preserve_separators", "preserve_position_increments", "max_input_length",
        "contexts", "inference_id", "search_inference_id", "metrics", "default_metric", "enable_position_increments",
        "time_series_dimensions", "dynamic", "synthetic_source_keep",
        "relations",
    }
)
DEFAULT_DYNAMIC_DATE_FORMATS = ["strict_date_optional_time", "yyyy/MM/dd HH:mm:ss Z||yyyy/MM/dd Z"]


def mapper_parsing(reason: str, wrap: bool) -> ESError:
    if wrap:
        return ESError(
            400,
            "mapper_parsing_exception",
            f"Failed to parse mapping: {reason}",
            root_cause=[{"type": "mapper_parsing_exception", "reason": reason}],
            caused_by={"type": "mapper_parsing_exception", "reason": reason},
        )
    return ESError(400, "mapper_parsing_exception", reason)


def dynamic_str(value: Any) -> str:
    if value is True or value == "true":
        return "true"
    if value is False or value == "false":
        return "false"
    if value in ("strict", "runtime"):
        return str(value)
    raise ValueError(f"Could not convert [dynamic] to boolean: [{value}]")


class IndexMapping:
    """The mapping of one index (the `mappings` object of create-index)."""

    def __init__(self) -> None:
        self.root: dict[str, Any] = {}
        self.props: dict[str, Any] = {}
        self._fields: dict[str, FieldDef] | None = None
        self._objects: dict[str, dict[str, Any]] | None = None
        self._constants: list[tuple[str, str]] | None = None  # constant_keyword fields with a value
        self._has_nested: bool | None = None
        # Bumped on every change: what a document validated and indexed to is reusable while it stays put.
        self.generation = 0
        # Per older mapping (by id): (it, its generation, ours, the top-level names whose parts went stale).
        self._stale_since: dict[int, tuple[IndexMapping, int, int, frozenset[str] | None]] = {}

    # -- construction ---------------------------------------------------------------------------
    @classmethod
    def from_body(cls, body: dict[str, Any] | None, *, wrap_errors: bool = True) -> IndexMapping:
        mapping = cls()
        if not body:
            return mapping
        try:
            mapping.root, mapping.props = _parse_root(body, wrap_errors)
        except ESError as exc:
            if not wrap_errors or exc.type == "mapper_parsing_exception":
                raise
            reason = f"Failed to parse mapping: {exc.reason}"
            raise ESError(400, "mapper_parsing_exception", reason,
                          root_cause=[{"type": "mapper_parsing_exception", "reason": reason}],
                          caused_by=exc.error_object()) from exc
        mapping._check_aliases(wrap_errors)
        return mapping

    def copy(self) -> IndexMapping:
        other = IndexMapping()
        other.root = _copy.deepcopy(self.root)
        other.props = _copy.deepcopy(self.props)
        return other

    def merge(self, body: dict[str, Any]) -> None:
        """PUT _mapping: add fields, update `dynamic`/`_meta`; refuse type changes."""
        if isinstance(body, dict) and len(body) == 1 and "_doc" in body:
            raise illegal_argument("Types cannot be provided in put mapping requests")
        incoming = IndexMapping.from_body(body, wrap_errors=False)
        old_mode = (self.root.get("_source") or {}).get("mode")
        new_source = incoming.root.get("_source")
        if old_mode == "synthetic" and isinstance(new_source, dict) and \
                new_source.get("mode", "stored") != "synthetic":
            raise illegal_argument(
                "Mapper for [_source] conflicts with existing mapper:\n\tCannot update parameter [mode] from "
                f"[synthetic] to [{new_source.get('mode', 'stored')}]"
            )
        merged_props = _copy.deepcopy(self.props)
        _merge_props(merged_props, incoming.props, "")
        for key, value in incoming.root.items():
            if key == "runtime" and isinstance(value, dict):
                # Runtime fields merge by name; `null` removes one.
                merged = {**(self.root.get("runtime") or {}), **_copy.deepcopy(value)}
                self.root["runtime"] = {k: v for k, v in merged.items() if v is not None}
            else:
                self.root[key] = _copy.deepcopy(value)
        self.props = merged_props
        self._invalidate()
        self._check_aliases(False)

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = _copy.deepcopy(self.root)
        if self.props:
            body["properties"] = _render_props(self.props)
        return body

    def _invalidate(self) -> None:
        self._fields = None
        self._objects = None
        self._constants = None
        self._has_nested = None
        self._stale_since = {}
        self.generation += 1

    def _check_aliases(self, wrap: bool) -> None:
        fields = self.fields()
        for path, fd in fields.items():
            if fd.type != "alias":
                continue
            target = fd.params.get("path")
            if not isinstance(target, str):
                raise mapper_parsing(f"The [path] property must be specified for field [{path}].", wrap)
            if target not in fields or fields[target].type == "alias":
                raise mapper_parsing(
                    f"Invalid [path] value [{target}] for field alias [{path}]: an alias must refer to an "
                    "existing field in the mappings.",
                    wrap,
                )

    # -- lookups ----------------------------------------------------------------------------------
    @property
    def dynamic(self) -> str:
        return dynamic_str(self.root.get("dynamic", True))

    def fields(self) -> dict[str, FieldDef]:
        """Every leaf field and multi-field by full path."""
        if self._fields is None:
            fields: dict[str, FieldDef] = {}
            objects: dict[str, dict[str, Any]] = {}
            _collect_fields(self.props, "", fields, objects)
            runtime = self.root.get("runtime")
            for name, spec in (runtime.items() if isinstance(runtime, dict) else []):
                if isinstance(spec, dict) and isinstance(spec.get("type"), str):
                    # Runtime fields shadow indexed ones and are computed at search time.
                    params = {k: v for k, v in spec.items() if k != "type"}
                    fields[name] = FieldDef(name, spec["type"], {**params, "_runtime": True})
            self._fields, self._objects = fields, objects
            self._constants = [(path, str(fd.params["value"])) for path, fd in fields.items()
                               if fd.type == "constant_keyword" and fd.params.get("value") is not None]
            self._has_nested = any(s.get("type") == "nested" for s in objects.values())
        return self._fields

    def objects(self) -> dict[str, dict[str, Any]]:
        self.fields()
        assert self._objects is not None
        return self._objects

    def field(self, path: str) -> FieldDef | None:
        """The leaf at ``path``, following a field alias to its target."""
        fd = self.fields().get(path)
        if fd is not None and fd.type == "alias":
            return self.fields().get(str(fd.params.get("path")))
        return fd

    def is_object(self, path: str) -> bool:
        return path in self.objects()

    def match_fields(self, pattern: str) -> list[str]:
        """Leaf paths matching a wildcard pattern (or the one exact path)."""
        if "*" not in pattern:
            return [pattern] if pattern in self.fields() else []
        return [p for p in self.fields() if fnmatch.fnmatchcase(p, pattern)]

    # -- documents ------------------------------------------------------------------------------
    def prepare_document(self, source: dict[str, Any], *, doc_id: str | None = None,
                         reuse: IndexedParts | None = None) -> bool:
        """Validate ``source`` against the mapping and add dynamic fields; True if the mapping changed.

        ``reuse``: the parts of the document's previous version; a top-level entry it holds (the very same
        object) passed validation under this very mapping without changing it, so it would again.
        """
        ctx = _DocContext(self, source, doc_id)
        stale = self._stale_heads(reuse) if reuse is not None and reuse.validated else None
        entries = reuse.entries if reuse is not None and stale is not None else {}
        dynamic = self.dynamic
        changed = False
        try:
            for key, value in source.items():
                # Only while this walk has changed nothing: a new field could make an old value invalid.
                known = entries.get(key)
                if known is not None and not changed and _reusable_entry(known, value, key, stale):
                    continue
                changed |= ctx.walk_entry(self.props, dynamic, "", key, value)
        except ESError:
            for undo in reversed(ctx.undo):  # a rejected document leaves the mapping untouched
                undo()
            self._invalidate()
            raise
        if changed:
            self._invalidate()
        return changed

    def _stale_heads(self, parts: IndexedParts) -> frozenset[str] | None:
        """Top-level names whose entries in ``parts`` must be redone under this mapping (None: all).

        Parts from this very mapping are all good. Parts from the mapping this one replaced (PUT _mapping
        builds a new one) stay good outside the top-level objects the change touched, provided the root
        parameters (dynamic, templates, runtime fields ...) are the same: an entry only reads the mapping
        below its own top-level name, and through ``copy_to`` the targets' definitions.
        """
        old = parts.mapping
        if old is self:
            return frozenset() if parts.generation == self.generation else None
        if old.generation != parts.generation:
            return None     # the older mapping has moved on since: its state then is gone
        known = self._stale_since.get(id(old))
        if known is not None and known[0] is old and known[1] == old.generation and known[2] == self.generation:
            return known[3]
        stale = self._changed_heads(old)
        if len(self._stale_since) >= 8:
            self._stale_since.clear()
        self._stale_since[id(old)] = (old, old.generation, self.generation, stale)
        return stale

    def _changed_heads(self, old: IndexMapping) -> frozenset[str] | None:
        if old.root != self.root:
            return None
        # By first path segment: a property name may itself hold dots.
        changed = {name.split(".", 1)[0] for name in old.props.keys() | self.props.keys()
                   if old.props.get(name) != self.props.get(name)}
        for mapping in (old, self):
            for path, fd in mapping.fields().items():
                targets = fd.params.get("copy_to")
                for target in [targets] if isinstance(targets, str) else (targets or []):
                    if str(target).split(".", 1)[0] in changed:
                        changed.add(path.split(".", 1)[0])
        return frozenset(changed)

    def index_parts(self, source: dict[str, Any], *, validated: bool,
                    reuse: IndexedParts | None = None) -> tuple[IndexedFields, IndexedParts]:
        """``index_document(source)``, built from one part per top-level entry, and those parts.

        A partial update changes few entries of a large document: the others are the very objects of the
        previous version, and while the mapping is unchanged they index exactly as before, so their parts
        are reused. ``validated``: ``prepare_document`` accepted ``source`` without changing the mapping.
        """
        fields = self.fields()
        objects = self.objects()
        stale = self._stale_heads(reuse) if reuse is not None else None
        previous = reuse.entries if reuse is not None and stale is not None else {}
        entries: dict[str, tuple[Any, IndexedFields]] = {}
        out: IndexedFields = {}
        added = 0
        for key, value in source.items():
            known = previous.get(key)
            # (_reusable_entry, inlined: this loop runs for every entry of every update)
            if known is not None and known[0] is value and (not stale or _fresh_head(key, stale)):
                entries[key] = known
                part = known[1]
            else:
                part = {}
                self._index_entries(_walk_value(key, value, fields, objects), None, part)
                entries[key] = (value, part)
            # Parts rarely share a path; when none does, this is exactly the in-place indexing order.
            out.update(part)
            added += len(part)
        if added != len(out):
            out = {}
            owned: set[str] = set()
            for _value, part in entries.values():
                _merge_part(out, part, owned)
        self._add_constants(out)
        return out, IndexedParts(self, self.generation, validated, entries)

    def _index_entries(self, leaves: Iterator[tuple[str, Any]], nested_scope: str | None,
                       out: IndexedFields) -> None:
        fields = self.fields()
        scoped = nested_scope is not None or bool(self._has_nested)
        for path, value in leaves:
            fd = fields.get(path)
            if fd is None or fd.type == "alias" or fd.params.get("_runtime") or \
                    (scoped and not self._in_scope(path, nested_scope)):
                continue
            self._index_leaf(fd, value, out)

    def _add_constants(self, out: IndexedFields) -> None:
        self.fields()
        for path, value in self._constants or ():
            out[path] = [value]

    def index_document(self, source: dict[str, Any], *, nested_scope: str | None = None) -> IndexedFields:
        """What the document indexes now: field path -> indexed values (see module docstring).

        Fields inside `nested` objects belong to hidden nested documents in ES, so the root document does
        not index them (unless `include_in_root`); ``nested_scope`` indexes one nested object instead.
        """
        out: IndexedFields = {}
        fields = self.fields()
        objects = self.objects()
        self._index_entries(_walk(source, "", fields, objects), nested_scope, out)
        self._add_constants(out)
        return out

    def nested_owner(self, path: str) -> str | None:
        """The innermost `nested` object path containing ``path`` (None at the root)."""
        owner = None
        for obj_path, spec in self.objects().items():
            if spec.get("type") == "nested" and path.startswith(obj_path + ".") and \
                    (owner is None or len(obj_path) > len(owner)):
                owner = obj_path
        return owner

    def _in_scope(self, path: str, scope: str | None) -> bool:
        owner = self.nested_owner(path)
        if owner == scope:
            return True
        if scope is None and owner is not None:
            spec = self.objects()[owner]
            in_parent = spec.get("include_in_parent") and self.nested_owner(owner) is None
            return bool(spec.get("include_in_root") or in_parent)
        return False

    def _index_leaf(self, fd: FieldDef, value: Any, out: IndexedFields) -> None:
        try:
            values = fd.index_values(value)
        except MalformedValue:
            _note_ignored(out, fd.path, value)
            return
        above = fd.params.get("ignore_above")
        if above is not None and isinstance(value, str) and len(value) > int(above) and fd.type != "flattened":
            _note_ignored(out, fd.path, value)
        if values:
            out.setdefault(fd.path, []).extend(values)
        elif value == "" and fd.is_text:
            out.setdefault(fd.path, [])  # an empty string still "exists"
        for sub in fd.params.get("_multi", ()):
            sub_fd = self.fields().get(f"{fd.path}.{sub}")
            if sub_fd is not None:
                self._index_leaf(sub_fd, value, out)
        copy_to = fd.params.get("copy_to")
        for target in [copy_to] if isinstance(copy_to, str) else (copy_to or []):
            target_fd = self.fields().get(target)
            if target_fd is not None and target_fd is not fd:
                with contextlib.suppress(MalformedValue):
                    out.setdefault(target, []).extend(target_fd.index_values(value))


class IndexedParts:
    """What a stored document's top-level entries indexed to (and whether they passed validation as they
    are), under one generation of one mapping: reused by the document's next version (see index_parts)."""

    __slots__ = ("entries", "generation", "mapping", "validated")

    def __init__(self, mapping: IndexMapping, generation: int, validated: bool,
                 entries: dict[str, tuple[Any, IndexedFields]]) -> None:
        self.mapping = mapping
        self.generation = generation
        self.validated = validated
        self.entries = entries          # key -> (the value object, what it indexed)


def _reusable_entry(known: tuple[Any, IndexedFields] | None, value: Any, key: str,
                    stale: frozenset[str] | None) -> bool:
    """Is ``known`` (an earlier version's entry) this very ``value``, under a top-level name still good?"""
    if known is None or known[0] is not value or stale is None:
        return False
    return not stale or _fresh_head(key, stale)


def _fresh_head(key: str, stale: frozenset[str]) -> bool:
    head = key.split(".", 1)[0]
    return bool(head) and head not in stale


def _merge_part(out: IndexedFields, part: IndexedFields, owned: set[str]) -> None:
    """Add one entry's part to ``out`` exactly as indexing that entry in place would have.

    Indexed values are never changed in place once stored, so ``out`` takes a part's list as it is, and
    copies it (noting the path in ``owned``) only when a second part adds to the same path.
    """
    for path, values in part.items():
        existing = out.get(path)
        if existing is None:
            out[path] = values
            continue
        if path not in owned:
            existing = out[path] = list(existing)
            owned.add(path)
        if path == IGNORED:     # a set of names: _note_ignored adds each once
            for name in values:
                if name not in existing:
                    existing.append(name)
        else:
            existing.extend(values)


def _note_ignored(out: IndexedFields, path: str, value: Any) -> None:
    """Record a value that was not indexed (ignore_malformed / ignore_above), as ES's `_ignored` does."""
    ignored = out.setdefault(IGNORED, [])
    if path not in ignored:
        ignored.append(path)
    out.setdefault(IGNORED_VALUES, []).append((path, value))


# --- parsing -----------------------------------------------------------------------------------


def _parse_root(body: dict[str, Any], wrap: bool) -> tuple[dict[str, Any], dict[str, Any]]:
    if not isinstance(body, dict):
        raise mapper_parsing("Root mapping definition must be an object", wrap)
    if len(body) == 1 and "_doc" in body and isinstance(body["_doc"], dict):
        body = body["_doc"]
    unknown = [k for k in body if k not in ROOT_PARAMS]
    if unknown:
        listed = ", ".join(f"{k} : {_java_str(body[k])}" for k in unknown)
        raise mapper_parsing(f"Root mapping definition has unsupported parameters:  [{listed}]", wrap)
    root: dict[str, Any] = {}
    for key, value in body.items():
        if key == "properties":
            continue
        if key == "dynamic":
            try:
                root["dynamic"] = dynamic_str(value)
            except ValueError as exc:
                raise mapper_parsing(str(exc), wrap) from exc
        elif key in ("date_detection", "numeric_detection"):
            root[key] = value in (True, "true")
        else:
            root[key] = _copy.deepcopy(value)
    props_body = body.get("properties") or {}
    if not isinstance(props_body, dict):
        raise mapper_parsing("Expected map for property [fields] on field [properties]", wrap)
    props = _parse_props(props_body, "", wrap)
    return root, props


def _java_str(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, dict):
        return "{" + ", ".join(f"{k}={_java_str(v)}" for k, v in value.items()) + "}"
    if isinstance(value, list):
        return "[" + ", ".join(_java_str(v) for v in value) + "]"
    return str(value)


def _parse_props(body: dict[str, Any], prefix: str, wrap: bool) -> dict[str, Any]:
    props: dict[str, Any] = {}
    for name, spec in body.items():
        if not name.strip():
            raise illegal_argument("field name cannot be an empty string")
        if not name.strip("."):
            raise illegal_argument(f"field name cannot contain only dots: [{prefix}{name}]")
        if name.strip(".") != name or ".." in name:
            raise illegal_argument(f"field name [{prefix}{name}] cannot contain empty segments")
        if not isinstance(spec, dict):
            raise mapper_parsing(f"Expected map for property [fields] on field [{prefix}{name}]", wrap)
        # A dotted name in `properties` is shorthand for nested objects.
        parts = name.split(".")
        target = props
        for i, part in enumerate(parts[:-1]):
            node = target.setdefault(part, {"properties": {}})
            if "properties" not in node:
                raise mapper_parsing(f"can't merge a non object mapping [{prefix}{'.'.join(parts[:i + 1])}] "
                                     "with an object mapping", wrap)
            target = node["properties"]
        full = prefix + name
        parsed = _parse_field(full, spec, wrap)
        leaf = parts[-1]
        if leaf in target and "properties" in target[leaf] and "properties" in parsed:
            _merge_props(target[leaf]["properties"], parsed["properties"], full + ".")
        else:
            target[leaf] = parsed
    return props


def _parse_field(path: str, spec: dict[str, Any], wrap: bool) -> dict[str, Any]:
    ftype = spec.get("type")
    if ftype is None:
        ftype = "object"
    if not isinstance(ftype, str) or ftype not in ALL_TYPES:
        raise mapper_parsing(f"No handler for type [{ftype}] declared on field [{path}]", wrap)
    if ftype in OBJECT_TYPES:
        unknown = [k for k in spec if k not in OBJECT_PARAMS]
        if unknown:
            listed = ", ".join(f"{k} : {_java_str(spec[k])}" for k in unknown)
            raise mapper_parsing(f"unknown parameter [{unknown[0]}] on mapper [{path}] of type [{ftype}]"
                                 if len(unknown) == 1 else f"Mapping definition for [{path}] has unsupported "
                                 f"parameters:  [{listed}]", wrap)
        node: dict[str, Any] = {}
        if ftype == "nested":
            node["type"] = ftype  # plain objects render `type` only when they have no properties
        for key, value in spec.items():
            if key in ("type", "properties"):
                continue
            if key == "dynamic":
                try:
                    node["dynamic"] = dynamic_str(value)
                except ValueError as exc:
                    raise mapper_parsing(str(exc), wrap) from exc
            elif key == "enabled":
                node["enabled"] = value in (True, "true")
            else:
                node[key] = value
        sub = spec.get("properties") or {}
        if not isinstance(sub, dict):
            raise mapper_parsing(f"Expected map for property [properties] on field [{path}]", wrap)
        node["properties"] = _parse_props(sub, path + ".", wrap)
        return node
    for key in spec:
        if key not in FIELD_PARAMS:
            raise mapper_parsing(f"unknown parameter [{key}] on mapper [{path}] of type [{ftype}]", wrap)
    node = {"type": ftype}
    for key, raw in spec.items():
        if key in ("type", "fields"):
            continue
        value = raw
        if key in ("ignore_above", "position_increment_gap", "depth_limit") and isinstance(raw, str):
            try:
                value = int(raw)
            except ValueError as exc:
                raise mapper_parsing(f"Failed to parse value [{raw}] for parameter [{key}] of field [{path}]",
                                     wrap) from exc
        if key in ("index", "doc_values", "store", "norms", "ignore_malformed", "coerce", "fielddata") and \
                isinstance(raw, str):
            value = raw == "true"
        if key in ("scaling_factor", "boost") and isinstance(raw, int | float | str) and not isinstance(raw, bool):
            try:
                value = float(raw)
            except ValueError as exc:
                raise mapper_parsing(f"Failed to parse value [{raw}] for parameter [{key}] of field [{path}]",
                                     wrap) from exc
        node[key] = value
    if ftype == "scaled_float" and "scaling_factor" not in spec:
        raise mapper_parsing("Failed to parse mapping: Field [scaling_factor] is required", wrap)
    if ftype in ("date", "date_nanos") and "format" in spec:
        try:
            validate_format(str(spec["format"]))
        except ValueError as exc:
            raise mapper_parsing(f"Error parsing [format] on field [{path}]: {exc}", wrap) from exc
    if "null_value" in spec and spec["null_value"] is not None:
        try:
            FieldDef(path, ftype, dict(node)).coerce(spec["null_value"])
        except MalformedValue as exc:
            raise mapper_parsing(f"Failed to parse mapping: {exc}", wrap) from exc
    fields = spec.get("fields")
    if fields is not None:
        if not isinstance(fields, dict):
            raise mapper_parsing(f"Expected map for property [fields] on field [{path}]", wrap)
        parsed_fields: dict[str, Any] = {}
        for sub_name, sub_spec in fields.items():
            if not isinstance(sub_spec, dict):
                raise mapper_parsing(f"Expected map for property [fields] on field [{sub_name}]", wrap)
            if sub_spec.get("type", "object") in OBJECT_TYPES:
                raise mapper_parsing(f"Type [{sub_spec.get('type', 'object')}] cannot be used in multi field",
                                     wrap)
            parsed_fields[sub_name] = _parse_field(f"{path}.{sub_name}", sub_spec, wrap)
        node["fields"] = parsed_fields
    return node


def _merge_props(into: dict[str, Any], new: dict[str, Any], prefix: str) -> None:
    for name, spec in new.items():
        path = prefix + name
        old = into.get(name)
        if old is None:
            into[name] = _copy.deepcopy(spec)
            continue
        old_obj, new_obj = "properties" in old, "properties" in spec
        if old_obj != new_obj:
            raise illegal_argument(f"can't merge a non object mapping [{path}] with an object mapping")
        if old_obj:
            old_type, new_type = old.get("type", "object"), spec.get("type", "object")
            if old_type != new_type:
                raise illegal_argument(f"can't merge a non-nested mapping [{path}] with a nested mapping")
            for key, value in spec.items():
                if key != "properties":
                    old[key] = _copy.deepcopy(value)
            _merge_props(old["properties"], spec["properties"], path + ".")
            continue
        if old["type"] != spec["type"]:
            raise illegal_argument(f"mapper [{path}] cannot be changed from type [{old['type']}] to [{spec['type']}]")
        for key in ("analyzer", "index", "doc_values", "store", "format", "scaling_factor", "path"):
            if key in old and key in spec and old[key] != spec[key] and key != "path":
                raise illegal_argument(
                    f"Mapper for [{path}] conflicts with existing mapper:\n\tCannot update parameter [{key}] "
                    f"from [{_java_str(old[key])}] to [{_java_str(spec[key])}]"
                )
        old_fields = old.get("fields", {})
        for key, value in spec.items():
            if key == "fields":
                merged = dict(old_fields)
                _merge_props(merged, value, path + ".")
                old["fields"] = merged
            else:
                old[key] = _copy.deepcopy(value)


def _render_props(props: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, spec in props.items():
        if "properties" in spec:
            node = {k: v for k, v in spec.items() if k != "properties"}
            if spec["properties"]:
                node["properties"] = _render_props(spec["properties"])
            elif "type" not in node:
                node = {"type": "object", **node}
            out[name] = node
        else:
            node = {k: v for k, v in spec.items() if k != "fields"}
            if spec.get("fields"):
                node["fields"] = _render_props(spec["fields"])
            out[name] = node
    return out


def _collect_fields(
    props: dict[str, Any], prefix: str, fields: dict[str, FieldDef], objects: dict[str, dict[str, Any]]
) -> None:
    for name, spec in props.items():
        path = prefix + name
        if "properties" in spec:
            objects[path] = spec
            if spec.get("enabled", True):
                _collect_fields(spec["properties"], path + ".", fields, objects)
            continue
        params = {k: v for k, v in spec.items() if k not in ("type", "fields")}
        subs = spec.get("fields") or {}
        if subs:
            params["_multi"] = list(subs)
        fields[path] = FieldDef(path, spec["type"], params)
        for sub_name, sub_spec in subs.items():
            sub_params = {k: v for k, v in sub_spec.items() if k not in ("type", "fields")}
            fields[f"{path}.{sub_name}"] = FieldDef(f"{path}.{sub_name}", sub_spec["type"], sub_params)


def _walk(
    node: dict[str, Any], prefix: str, fields: dict[str, FieldDef], objects: dict[str, dict[str, Any]]
) -> Iterator[tuple[str, Any]]:
    """Leaf values of a source, keeping whole the object values of object-valued leaf types."""
    for key, value in node.items():
        path = prefix + key
        yield from _walk_value(path, value, fields, objects)


def _walk_value(
    path: str, value: Any, fields: dict[str, FieldDef], objects: dict[str, dict[str, Any]]
) -> Iterator[tuple[str, Any]]:
    if isinstance(value, list):
        for item in value:
            yield from _walk_value(path, item, fields, objects)
        return
    if isinstance(value, dict):
        fd = fields.get(path)
        if fd is not None and fd.type in OBJECT_VALUED:
            yield path, value
            return
        obj = objects.get(path)
        if obj is not None and not obj.get("enabled", True):
            return
        yield from _walk(value, path + ".", fields, objects)
        return
    yield path, value


# --- document validation and dynamic mapping -------------------------------------------------


class _DocContext:
    def __init__(self, mapping: IndexMapping, source: dict[str, Any], doc_id: str | None) -> None:
        self.mapping = mapping
        self.source = source
        self.doc_id = doc_id
        self._compact: str | None = None
        self.undo: list[Callable[[], Any]] = []

    def position(self, key: str) -> str:
        if self._compact is None:
            self._compact = json.dumps(self.source, separators=(",", ":"), ensure_ascii=False)
        at = self._compact.find(json.dumps(key, ensure_ascii=False) + ":")
        col = at + len(json.dumps(key, ensure_ascii=False)) + 2 if at >= 0 else 2
        return f"[1:{col}]"

    def walk_object(self, props: dict[str, Any], dynamic: str, prefix: str, obj: dict[str, Any]) -> bool:
        changed = False
        for key, value in obj.items():
            changed |= self.walk_entry(props, dynamic, prefix, key, value)
        return changed

    def walk_entry(self, props: dict[str, Any], dynamic: str, prefix: str, key: str, value: Any) -> bool:
        if not key.strip():
            raise ESError(400, "document_parsing_exception",
                          f"{self.position(key)} field name cannot be an empty string")
        if "." in key.strip("."):
            head, rest = key.split(".", 1)
            return self.walk_entry(props, dynamic, prefix, head, {rest: value})
        path = prefix + key
        spec = props.get(key)
        if spec is None:
            return self.add_dynamic(props, dynamic, prefix, key, value)
        if "properties" in spec:
            if not spec.get("enabled", True):
                return False
            inner = spec.get("dynamic", dynamic)
            changed = False
            for item in value if isinstance(value, list) else [value]:
                if item is None:
                    continue
                if not isinstance(item, dict):
                    raise ESError(
                        400, "document_parsing_exception",
                        f"{self.position(key)} object mapping for [{path}] tried to parse field [{key}] as object, "
                        "but found a concrete value",
                    )
                changed |= self.walk_object(spec["properties"], inner, path + ".", item)
            return changed
        cached = self.mapping.fields().get(path) if self.mapping._fields is not None else None
        fd = cached if cached is not None and cached.type == spec["type"] else \
            FieldDef(path, spec["type"], {k: v for k, v in spec.items() if k not in ("type", "fields")})
        changed = False
        for item in _flat(value):
            if isinstance(item, dict) and fd.type not in OBJECT_VALUED:
                self.fail(key, path, fd, item, {"type": "illegal_argument_exception",
                                                 "reason": f"Cannot parse object as {fd.type}"})
            if fd.type == "constant_keyword" and item is not None:
                current = spec.get("value")
                if current is None:
                    spec["value"] = str(item)
                    self.undo.append(_popper(spec, "value"))
                    changed = True
                elif str(item) != str(current):
                    self.fail(key, path, fd, item, {
                        "type": "illegal_argument_exception",
                        "reason": f"[constant_keyword] field [{path}] only accepts values that are equal to the "
                                  f"value defined in the mappings [{current}], but got [{item}]"})
                continue
            if fd.type in OBJECT_VALUED or fd.type == "alias":
                continue
            try:
                fd.validate(item)
            except MalformedValue as exc:
                if not fd.params.get("ignore_malformed", False):
                    self.fail(key, path, fd, item, exc.cause)
        return changed

    def fail(self, key: str, path: str, fd: FieldDef, value: Any, cause: dict[str, Any]) -> None:
        preview = _java_str(value)
        doc = f"'{self.doc_id}'" if self.doc_id is not None else "'unknown'"
        raise ESError(
            400,
            "document_parsing_exception",
            f"{self.position(key)} failed to parse field [{path}] of type [{fd.type}] in document with id {doc}. "
            f"Preview of field's value: '{preview}'",
            caused_by=cause,
        )

    def add_dynamic(self, props: dict[str, Any], dynamic: str, prefix: str, key: str, value: Any) -> bool:
        path = prefix + key
        if dynamic == "strict":
            within = prefix[:-1] if prefix else "_doc"
            raise ESError(
                400,
                "strict_dynamic_mapping_exception",
                f"{self.position(key)} mapping set to strict, dynamic introduction of [{key}] within [{within}] "
                "is not allowed",
            )
        if dynamic == "runtime":
            return self.add_runtime(prefix + key, value)
        if dynamic == "false":
            return False
        sample = next((v for v in _flat(value, keep_dicts=True) if v is not None), None)
        if sample is None:
            return False
        spec = self.infer(path, key, sample)
        if spec is None:
            return False
        props[key] = spec
        self.undo.append(_popper(props, key))
        self.walk_entry(props, dynamic, prefix, key, value)
        return True

    def add_runtime(self, path: str, value: Any) -> bool:
        """`dynamic: runtime`: new leaves become runtime fields (objects are walked, not mapped)."""
        if isinstance(value, dict):
            changed = False
            for k, v in value.items():
                changed |= self.add_runtime(f"{path}.{k}", v)
            return changed
        sample = next((v for v in _flat(value) if v is not None), None)
        if sample is None or isinstance(sample, dict):
            return False
        runtime = self.mapping.root.setdefault("runtime", {})
        if path in runtime:
            return False
        kind = _json_kind(sample)
        runtime[path] = {"type": {"string": "keyword", "double": "double"}.get(kind, kind)}
        if kind == "string" and any(str(sample).count(c) > 1 for c in ":-/"):
            try:
                DateFormat().parse(sample)
                runtime[path] = {"type": "date"}
            except DateParseError:
                pass
        self.undo.append(_popper(runtime, path))
        return True

    def infer(self, path: str, key: str, sample: Any) -> dict[str, Any] | None:
        kind = _json_kind(sample)
        root = self.mapping.root
        # ES only tries date detection on strings with more than one ':', '-' or '/' ("1" parses as a year).
        if kind == "string" and root.get("date_detection", True) and \
                any(str(sample).count(c) > 1 for c in ":-/"):
            for fmt in root.get("dynamic_date_formats", DEFAULT_DYNAMIC_DATE_FORMATS):
                try:
                    DateFormat(fmt).parse(sample)
                except DateParseError:
                    continue
                kind = "date"
                date_fmt = None if fmt == "strict_date_optional_time" else fmt
                break
        if kind == "string" and root.get("numeric_detection", False):
            try:
                float(sample)
                kind = "long" if str(sample).lstrip("+-").isdigit() else "double"
            except ValueError:
                pass
        template = self.template_for(path, key, kind)
        if template is not None:
            return template
        if kind == "object":
            return {"properties": {}}
        if kind == "date":
            spec: dict[str, Any] = {"type": "date"}
            if date_fmt is not None:
                spec["format"] = date_fmt
            return spec
        if kind == "string":
            return {"type": "text", "fields": {"keyword": {"type": "keyword", "ignore_above": 256}}}
        if kind == "double":
            return {"type": "float"}
        return {"type": kind}

    def template_for(self, path: str, key: str, kind: str) -> dict[str, Any] | None:
        for entry in self.mapping.root.get("dynamic_templates") or []:
            if not isinstance(entry, dict) or len(entry) != 1:
                continue
            tpl = next(iter(entry.values()))
            if not isinstance(tpl, dict) or not _template_matches(tpl, path, key, kind):
                continue
            mapping = tpl.get("mapping", {})
            dyn_type = {"string": "text", "double": "float"}.get(kind, kind)
            rendered = json.loads(
                json.dumps(mapping).replace("{name}", key).replace("{dynamic_type}", dyn_type)
            )
            if kind == "object" and "type" not in rendered:
                return {"properties": {}, **rendered}
            rendered.setdefault("type", dyn_type)
            if rendered["type"] in OBJECT_TYPES:
                rendered["properties"] = {}
            return dict(_parse_field(path, rendered, False))
        return None


def _popper(target: dict[str, Any], key: str) -> Callable[[], Any]:
    return lambda: target.pop(key, None)


def _template_matches(tpl: dict[str, Any], path: str, key: str, kind: str) -> bool:
    def any_match(patterns: Any, value: str) -> bool:
        items = patterns if isinstance(patterns, list) else [patterns]
        if tpl.get("match_pattern") == "regex":
            return any(re.fullmatch(str(p), value) for p in items)
        return any(fnmatch.fnmatchcase(value, str(p)) for p in items)

    if "match_mapping_type" in tpl:
        mt = tpl["match_mapping_type"]
        types = mt if isinstance(mt, list) else [mt]
        if "*" not in types and kind not in types:
            return False
    if "match" in tpl and not any_match(tpl["match"], key):
        return False
    if "unmatch" in tpl and any_match(tpl["unmatch"], key):
        return False
    if "path_match" in tpl and not any_match(tpl["path_match"], path):
        return False
    return not ("path_unmatch" in tpl and any_match(tpl["path_unmatch"], path))


def _json_kind(value: Any) -> str:
    if isinstance(value, bool):
        return "boolean"
    if isinstance(value, int):
        return "long"
    if isinstance(value, float):
        return "double"
    if isinstance(value, dict):
        return "object"
    return "string"


def _flat(value: Any, keep_dicts: bool = True) -> list[Any]:
    if isinstance(value, list):
        return [x for v in value for x in _flat(v, keep_dicts)]
    return [value]
