"""Cluster state: indices, aliases, templates, refresh (near-real-time) and point-in-time snapshots.

One re-entrant lock guards everything; ``cond`` (on that lock) wakes the refresh scheduler and
``refresh=wait_for`` waiters. Each index keeps its live doc table (what GET sees) and a searchable
copy taken at the last refresh (what search and count see).
"""

from __future__ import annotations

import base64
import copy
import fnmatch
import math
import os
import threading
import time
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from . import settings as settings_mod
from .errors import ESError, illegal_argument, index_not_found
from .expressions import (
    AliasMeta,
    IndicesOptions,
    Resolved,
    alias_index_map,
    index_closed,
    is_wildcard,
    resolve,
    split_expression,
)
from .mapping import IndexMapping
from .model import StoredDoc
from .names import new_uuid, resolve_date_math, validate_alias_name, validate_index_name
from .routing_hash import shard_id
from .templates import TemplateRegistry, compose_mappings

INDEX_VERSION_CREATED = "8525000"  # IndexVersion of ES 8.18
DEFAULT_REFRESH_INTERVAL = 1.0


@dataclass
class IndexState:
    name: str
    uuid: str
    creation_date: int                    # epoch millis
    settings: dict[str, Any]              # flat index.* → str
    mapping: IndexMapping
    aliases: dict[str, AliasMeta] = field(default_factory=dict)
    docs: dict[str, StoredDoc] = field(default_factory=dict)
    searchable: dict[str, StoredDoc] = field(default_factory=dict)
    versions: dict[str, int] = field(default_factory=dict)    # last version per id, deleted ones included
    max_seq_no: int = -1
    next_order: int = 0
    closed: bool = False
    refresh_gen: int = 0
    dirty_since: float | None = None      # monotonic time of the oldest unrefreshed write
    tick_anchor: float = field(default_factory=time.monotonic)
    nodes: int = 1                        # data nodes of the simulated cluster
    # `searchable` in insertion order, with the dict it was taken from: every search and PIT needs it,
    # and `searchable` only ever changes by being replaced (on refresh), so identity tells it is current.
    _in_order: tuple[dict[str, StoredDoc], list[StoredDoc]] | None = field(default=None, repr=False)

    @property
    def hidden(self) -> bool:
        return self.settings.get("index.hidden") == "true"

    @property
    def refresh_interval(self) -> float | None:
        raw = self.settings.get("index.refresh_interval")
        return DEFAULT_REFRESH_INTERVAL if raw is None else settings_mod.parse_time(raw)

    @property
    def shards(self) -> int:
        return int(self.settings.get("index.number_of_shards", "1"))

    @property
    def replicas(self) -> int:
        expand = self.settings.get("index.auto_expand_replicas")
        if expand not in (None, "false"):
            low, _, high = str(expand).partition("-")
            top = self.nodes - 1 if high == "all" else int(high or 0)
            return max(int(low or 0), min(top, self.nodes - 1))
        return int(self.settings.get("index.number_of_replicas", "1"))

    @property
    def assigned_replicas(self) -> int:
        """Replica copies a cluster of ``nodes`` can allocate (never two copies on one node)."""
        return min(self.replicas, self.nodes - 1)

    @property
    def unassigned_shards(self) -> int:
        return self.shards * (self.replicas - self.assigned_replicas)

    @property
    def health(self) -> str:
        return "yellow" if self.unassigned_shards else "green"

    def searchable_in_order(self) -> list[StoredDoc]:
        """The searchable docs by insertion order (``doc_order``); a fresh list the caller may keep."""
        cached = self._in_order
        if cached is None or cached[0] is not self.searchable:
            cached = (self.searchable, sorted(self.searchable.values(), key=lambda d: d.doc_order))
            self._in_order = cached
        return list(cached[1])

    def shard_of(self, doc_id: str, routing: str | None) -> int:
        raw = self.settings.get("index.number_of_routing_shards")
        return shard_id(routing if routing is not None else doc_id, self.shards, int(raw) if raw else None)

    def lookup(self, doc_id: str, routing: str | None, *, realtime: bool = True) -> StoredDoc | None:
        """The doc a request with this routing reaches (another shard's copy is invisible to it)."""
        doc = (self.docs if realtime else self.searchable).get(doc_id)
        if doc is None or self.shards == 1:
            return doc
        return doc if self.shard_of(doc_id, doc.routing) == self.shard_of(doc_id, routing) else None

    def routing_required(self) -> bool:
        # Read the root parameter directly: rendering the whole mapping (to_body) on every write was costly.
        meta = self.mapping.root.get("_routing")
        return isinstance(meta, dict) and meta.get("required") is True

    def shard_header(self) -> dict[str, int]:
        """``_shards`` of a write: a replica that cannot be allocated on one node counts but fails silently."""
        return {"total": 1 + self.replicas, "successful": 1 + self.assigned_replicas, "failed": 0}

    def next_seq_no(self) -> int:
        self.max_seq_no += 1
        return self.max_seq_no

    def render_settings(self) -> dict[str, Any]:
        flat = dict(self.settings)
        flat.setdefault("index.number_of_shards", "1")
        flat.setdefault("index.number_of_replicas", "1")
        flat.setdefault("index.routing.allocation.include._tier_preference", "data_content")
        flat["index.uuid"] = self.uuid
        flat["index.creation_date"] = str(self.creation_date)
        flat["index.provided_name"] = self.name
        flat["index.version.created"] = INDEX_VERSION_CREATED
        return flat


@dataclass
class Pit:
    id: str
    indices: list[str]
    docs: dict[str, list[StoredDoc]]
    mappings: dict[str, IndexMapping]
    keep_alive: float
    expires: float


class Cluster:
    def __init__(self, nodes: int = 2) -> None:
        self.nodes = nodes
        self.lock = threading.RLock()
        self.cond = threading.Condition(self.lock)
        self.indices: dict[str, IndexState] = {}
        self.templates = TemplateRegistry()
        self.pits: dict[str, Pit] = {}
        self.scrolls: dict[str, dict[str, Any]] = {}   # scroll id (a PIT id) → body, offset, params
        self.cluster_uuid = new_uuid()
        self.destructive_requires_name = True   # ES 8 default: no wildcard deletes
        self._stopping = False
        self._scheduler = threading.Thread(target=self._schedule_refreshes, name="refresh", daemon=True)
        self._scheduler.start()

    # ------------------------------------------------------------------ lifecycle
    def stop(self) -> None:
        with self.cond:
            self._stopping = True
            self.cond.notify_all()

    def reset(self) -> None:
        with self.cond:
            self.indices.clear()
            self.templates = TemplateRegistry()
            self.pits.clear()
            self.scrolls.clear()
            self.cond.notify_all()

    # ------------------------------------------------------------------ refresh
    def _schedule_refreshes(self) -> None:
        with self.cond:
            while not self._stopping:
                now = time.monotonic()
                nearest: float | None = None
                for idx in list(self.indices.values()):
                    if idx.dirty_since is None or idx.closed:
                        continue
                    interval = idx.refresh_interval
                    if interval is None:
                        continue
                    due = _next_tick(idx.tick_anchor, interval, idx.dirty_since)
                    if due <= now:
                        self.refresh_index(idx)
                    elif nearest is None or due < nearest:
                        nearest = due
                self.cond.wait(None if nearest is None else max(0.0, nearest - now))

    def refresh_index(self, idx: IndexState) -> None:
        idx.searchable = dict(idx.docs)
        idx.refresh_gen += 1
        idx.dirty_since = None
        self.cond.notify_all()

    def refresh_shard(self, idx: IndexState, doc_id: str, routing: str | None) -> None:
        """``refresh=true`` on a single-document write refreshes only the shard that took it."""
        if idx.shards == 1:
            self.refresh_index(idx)
            return
        shard = idx.shard_of(doc_id, routing)
        kept = {k: d for k, d in idx.searchable.items() if idx.shard_of(k, d.routing) != shard}
        kept.update({k: d for k, d in idx.docs.items() if idx.shard_of(k, d.routing) == shard})
        idx.searchable = kept
        if kept.keys() == idx.docs.keys() and all(kept[k] is idx.docs[k] for k in kept):
            idx.refresh_gen += 1
            idx.dirty_since = None
        self.cond.notify_all()

    def mark_written(self, idx: IndexState) -> None:
        if idx.dirty_since is None:
            idx.dirty_since = time.monotonic()
            self.cond.notify_all()

    def wait_for_refresh(self, targets: Mapping[str, int]) -> None:
        """Block until each index (name → refresh_gen seen at write time) has refreshed since."""
        with self.cond:
            def done() -> bool:
                for name, gen in targets.items():
                    idx = self.indices.get(name)
                    if idx is not None and idx.refresh_gen <= gen and idx.dirty_since is not None:
                        return False
                return True
            while not done() and not self._stopping:
                self.cond.wait(1.0)

    # ------------------------------------------------------------------ lookup
    def resolve(self, expr: Any, opts: IndicesOptions) -> Resolved:
        return resolve(self.indices, expr, opts)

    def alias_map(self) -> dict[str, list[str]]:
        return alias_index_map(self.indices)

    def single_index(self, name: str) -> IndexState:
        """The one index a read of a single document targets (an alias must point to exactly one)."""
        name = resolve_date_math(name)
        if name in self.indices:
            return self.indices[name]
        members = self.alias_map().get(name)
        if not members:
            raise index_not_found(name)
        if len(members) > 1:
            raise illegal_argument(f"alias [{name}] has more than one index associated with it "
                                   f"[{', '.join(members)}], can't execute a single index op")
        return self.indices[members[0]]

    def write_index(self, name: str, *, auto_create: bool = True, require_alias: bool = False) -> IndexState:
        """The index a write to ``name`` lands in; creates it (applying templates) when missing."""
        name = resolve_date_math(name)
        aliases = self.alias_map()
        if require_alias and name not in aliases:
            extra: dict[str, Any] = {"resource.type": "index_expression", "resource.id": name,
                                     "index_uuid": "_na_", "index": name}
            raise ESError(404, "index_not_found_exception",
                          f"no such index [{name}] and [require_alias] request flag is [true] and [{name}] is not "
                          "an alias", **extra)
        if name in self.indices:
            idx = self.indices[name]
        elif name in aliases:
            members = aliases[name]
            writers = [m for m in members if self.indices[m].aliases[name].is_write_index]
            if writers:
                idx = self.indices[writers[0]]
            elif len(members) == 1 and self.indices[members[0]].aliases[name].is_write_index is not False:
                idx = self.indices[members[0]]
            else:
                raise illegal_argument(
                    f"no write index is defined for alias [{name}]. The write index may be explicitly disabled "
                    "using is_write_index=false or the alias points to multiple indices without one being "
                    "designated as a write index")
        else:
            if not auto_create:
                raise index_not_found(name)
            idx = self.create_index(name, {})
        if idx.closed:
            raise index_closed(idx.name, idx.uuid)
        check_write_block(idx)
        return idx

    # ------------------------------------------------------------------ indices
    def create_index(self, name: str, body: dict[str, Any] | None) -> IndexState:
        body = body or {}
        if not isinstance(body, dict):
            raise ESError(400, "parse_exception", "request body must be an object")
        name = resolve_date_math(name)
        validate_index_name(name)
        if name in self.indices:
            idx = self.indices[name]
            raise ESError(400, "resource_already_exists_exception",
                          f"index [{name}/{idx.uuid}] already exists", index_uuid=idx.uuid, index=name)
        if name in self.alias_map():
            raise ESError(400, "invalid_index_name_exception",
                          f"Invalid index name [{name}], already exists as alias", index_uuid="_na_", index=name)
        for key in body:
            if key not in ("settings", "mappings", "aliases"):
                raise ESError(400, "parse_exception", f"unknown key [{key}] for create index")
        req_settings = settings_mod.flatten(body.get("settings") or {})
        settings_mod.validate(req_settings, creating=True)
        if req_settings.get("index.soft_deletes.enabled") == "false":
            raise illegal_argument("Creating indices with soft-deletes disabled is no longer supported. Please do "
                                   "not specify a value for setting [index.soft_deletes.enabled].")
        hidden_req = req_settings.get("index.hidden")
        composed = self.templates.for_index(name, None if hidden_req is None else hidden_req == "true")
        flat = {**composed.settings, **req_settings}
        flat = {k: v for k, v in flat.items() if v is not None}
        settings_mod.validate(flat, creating=True)
        mapping_bodies = list(composed.mappings)
        req_mappings = body.get("mappings")
        if req_mappings:
            mapping_bodies.append(req_mappings)
        elif req_mappings is not None and not isinstance(req_mappings, dict):
            raise ESError(400, "mapper_parsing_exception", "Failed to parse mapping: mappings must be an object")
        mapping = compose_mappings(mapping_bodies)
        aliases: dict[str, AliasMeta] = {}
        for raw_alias, spec in {**composed.aliases, **(body.get("aliases") or {})}.items():
            alias = resolve_date_math(raw_alias)
            aliases[alias] = self._alias_meta(alias, spec or {})
            if alias == name or alias in self.indices:
                raise ESError(400, "invalid_alias_name_exception",
                              f"Invalid alias name [{alias}], an index or data stream exists with the same name "
                              "as the alias")
        idx = IndexState(name=name, uuid=new_uuid(), creation_date=int(time.time() * 1000), settings=flat,
                         mapping=mapping, aliases=aliases, nodes=self.nodes)
        self.indices[name] = idx
        try:
            for alias in aliases:
                self._check_alias_consistency(alias)
        except ESError:
            del self.indices[name]
            raise
        return idx

    def _alias_meta(self, alias: str, spec: dict[str, Any]) -> AliasMeta:
        validate_alias_name(alias)
        if not isinstance(spec, dict):
            raise illegal_argument(f"alias [{alias}] must be an object")
        routing = spec.get("routing")
        flt = spec.get("filter")
        if flt is not None:
            from .query import parse_query
            try:
                parse_query(flt)
            except ESError as err:
                raise ESError(400, "illegal_argument_exception", f"failed to parse filter for alias [{alias}]",
                              caused_by=err.error_object()) from None
        return AliasMeta(
            filter=copy.deepcopy(flt),
            index_routing=_opt_str(spec.get("index_routing", routing)),
            search_routing=_opt_str(spec.get("search_routing", routing)),
            is_write_index=_opt_bool(spec.get("is_write_index")),
            is_hidden=_opt_bool(spec.get("is_hidden")),
        )

    def _check_alias_consistency(self, alias: str) -> None:
        members = self.alias_map().get(alias, [])
        writers = [m for m in members if self.indices[m].aliases[alias].is_write_index]
        if len(writers) > 1:
            raise ESError(400, "illegal_state_exception",
                          f"alias [{alias}] has more than one write index [{','.join(writers)}]")
        hidden = [m for m in members if self.indices[m].aliases[alias].is_hidden]
        if hidden and len(hidden) != len(members):
            visible = [m for m in members if m not in hidden]
            raise ESError(400, "illegal_state_exception",
                          f"alias [{alias}] has is_hidden set to true on indices [{','.join(hidden)}] but does not "
                          f"have is_hidden set to true on indices [{','.join(visible)}]; alias must have the same "
                          "is_hidden setting on all indices")

    def delete_indices(self, expr: str, params: Mapping[str, str]) -> None:
        """DELETE /{index}: names only (``action.destructive_requires_name``); never through an alias."""
        parts = split_expression(expr)
        if self.destructive_requires_name and any(is_wildcard(p) or p == "_all" for p in parts):
            raise illegal_argument("Wildcard expressions or all indices are not allowed")
        opts = IndicesOptions(expand_closed=True).from_params(params)
        aliases = self.alias_map()
        targets: list[str] = []
        for raw in parts:
            part = "*" if raw == "_all" else raw
            if is_wildcard(part):
                matched = [n for n, i in sorted(self.indices.items()) if fnmatch.fnmatchcase(n, part)
                           and (opts.expand_closed if i.closed else opts.expand_open)
                           and (not i.hidden or opts.expand_hidden or (part.startswith(".") and n.startswith(".")))]
                if not matched and not opts.allow_no_indices:
                    raise index_not_found(part)
                targets.extend(matched)
            elif part in self.indices:
                targets.append(part)
            elif opts.ignore_unavailable:
                continue
            elif part in aliases:
                raise illegal_argument(f"The provided expression [{part}] matches an alias, specify the "
                                       "corresponding concrete indices instead.")
            else:
                raise index_not_found(part)
        if not targets and not opts.allow_no_indices:
            raise index_not_found(",".join(parts))
        for name in targets:
            self.indices.pop(name, None)
        self.cond.notify_all()

    def put_mapping(self, names: list[str], body: dict[str, Any]) -> None:
        if not isinstance(body, dict):
            raise ESError(400, "mapper_parsing_exception", "Failed to parse mapping")
        staged = []
        for name in names:
            idx = self.indices[name]
            trial = idx.mapping.copy()
            trial.merge(body)
            staged.append((idx, trial))
        for idx, trial in staged:
            idx.mapping = trial

    def put_settings(self, names: list[str], body: dict[str, Any], *, preserve_existing: bool = False) -> None:
        if not isinstance(body, dict) or not body:
            raise ESError(400, "action_request_validation_exception", "Validation Failed: 1: no settings to update;")
        if "settings" in body and isinstance(body["settings"], dict):
            body = body["settings"]
        flat = settings_mod.flatten(body)
        settings_mod.validate({k: v for k, v in flat.items() if k not in settings_mod.PRIVATE}, creating=False)
        for key in flat:
            if key in settings_mod.PRIVATE:
                raise illegal_argument(f"final {names[0]} setting [{key}], not updateable")
        for name in names:
            idx = self.indices[name]
            if not idx.closed:
                settings_mod.check_dynamic(flat, f"{idx.name}/{idx.uuid}")
        for name in names:
            idx = self.indices[name]
            for key, value in flat.items():
                if preserve_existing and key in idx.settings:
                    continue
                if value is None:
                    idx.settings.pop(key, None)
                else:
                    idx.settings[key] = value
            if "index.refresh_interval" in flat:
                idx.tick_anchor = time.monotonic()
        self.cond.notify_all()

    # ------------------------------------------------------------------ aliases
    def add_alias(self, index: str, alias: str, spec: dict[str, Any]) -> None:
        idx = self.indices[index]
        alias = resolve_date_math(alias)
        if alias in self.indices:
            raise ESError(400, "invalid_alias_name_exception",
                          f"Invalid alias name [{alias}], an index or data stream exists with the same name as "
                          "the alias")
        idx.aliases[alias] = self._alias_meta(alias, spec)

    def remove_alias(self, index: str, alias: str) -> bool:
        return self.indices[index].aliases.pop(alias, None) is not None

    # ------------------------------------------------------------------ point in time
    def open_pit(self, names: list[str], keep_alive: float) -> Pit:
        pit_id = base64.urlsafe_b64encode(b"pit\x00" + os.urandom(24)).decode()
        now = time.monotonic()
        pit = Pit(
            id=pit_id,
            indices=list(names),
            docs={n: self.indices[n].searchable_in_order() for n in names},
            mappings={n: self.indices[n].mapping.copy() for n in names},
            keep_alive=keep_alive,
            expires=now + keep_alive,
        )
        self.pits[pit_id] = pit
        return pit

    def get_pit(self, pit_id: str) -> Pit | None:
        self._expire_pits()
        return self.pits.get(pit_id)

    def _expire_pits(self) -> None:
        now = time.monotonic()
        for key in [k for k, p in self.pits.items() if p.expires <= now]:
            del self.pits[key]
            self.scrolls.pop(key, None)


_BLOCKS = (("index.blocks.read_only", "FORBIDDEN/5/index read-only (api)"),
           ("index.blocks.read_only_allow_delete", "TOO_MANY_REQUESTS/12/disk usage exceeded flood-stage watermark, "
            "index has read-only-allow-delete block"),
           ("index.blocks.write", "FORBIDDEN/8/index write (api)"))


def check_write_block(idx: IndexState) -> None:
    for key, description in _BLOCKS:
        if idx.settings.get(key) == "true":
            status = 429 if "TOO_MANY" in description else 403
            raise ESError(status, "cluster_block_exception",
                          f"index [{idx.name}] blocked by: [{description}];")


def _next_tick(anchor: float, interval: float, since: float) -> float:
    if interval <= 0:
        return since
    k = math.floor((since - anchor) / interval) + 1
    return anchor + k * interval


def _opt_str(value: Any) -> str | None:
    return None if value is None else str(value)


def _opt_bool(value: Any) -> bool | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return value
    if str(value) in ("true", "false"):
        return str(value) == "true"
    raise illegal_argument(f"Failed to parse value [{value}] as only [true] or [false] are allowed.")
