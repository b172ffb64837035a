"""Saved objects and advanced settings of the Kibana test double, with Kibana 8.18's import semantics.

Import, as ``importSavedObjectsFromStream`` does it: collect the objects (unknown types fail with
``unsupported_type``), check references against the file and the stored objects (``missing_references``),
check existing ids (``conflict`` unless ``overwrite``), then create every object without an error and
report ``successResults`` and ``errors``.
"""

from __future__ import annotations

import copy
import threading
import uuid
from dataclasses import dataclass
from typing import Any, Final

BUILD_NUM: Final = 84336

# Importable types and their management icons (each type's ``management.icon`` in Kibana's source).
ICONS: Final = {
    "index-pattern": "indexPatternApp", "search": "discoverApp", "visualization": "visualizeApp",
    "lens": "lensApp", "dashboard": "dashboardApp", "tag": "tag", "config": "advancedSettingsApp",
    "links": "link", "map": "gisApp", "query": "search",
}
# The newest typeMigrationVersion of each type in 8.18: a newer one cannot be imported.
LATEST_VERSION: Final = {
    "index-pattern": "8.0.0", "search": "10.5.0", "visualization": "8.5.0", "lens": "8.9.0",
    "dashboard": "10.2.0", "tag": "8.0.0",
}
ARRAY_SETTINGS: Final = frozenset({"securitySolution:alertTags", "securitySolution:defaultIndex"})


@dataclass(frozen=True)
class ImportOptions:
    overwrite: bool = False
    createNewCopies: bool = False
    compatibilityMode: bool = False


def _version_tuple(version: str) -> tuple[int, ...]:
    return tuple(int(part) for part in version.split(".") if part.isdigit())


def _title(obj: dict[str, Any]) -> str:
    attributes = obj.get("attributes") or {}
    return str(attributes.get("title") or attributes.get("name") or "")


class Store:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._objects: dict[tuple[str, str], dict[str, Any]] = {}
        self._settings: dict[str, Any] = {}

    def reset(self) -> None:
        with self._lock:
            self._objects.clear()
            self._settings.clear()

    def snapshot(self) -> dict[str, Any]:
        with self._lock:
            return {"objects": [copy.deepcopy(o) for o in self._objects.values()],
                    "settings": copy.deepcopy(self._settings)}

    # --- saved objects -------------------------------------------------------------------------------------
    def import_objects(self, objects: list[dict[str, Any]], options: ImportOptions) -> dict[str, Any]:
        with self._lock:
            return self._import(objects, options)

    def _import(self, objects: list[dict[str, Any]], options: ImportOptions) -> dict[str, Any]:
        errors: list[dict[str, Any]] = []
        in_file = {(str(o.get("type")), str(o.get("id"))) for o in objects}

        def fail(obj: dict[str, Any], error: dict[str, Any]) -> None:
            kind = str(obj.get("type"))
            errors.append({"id": str(obj.get("id")), "type": kind, "title": _title(obj),
                           "meta": {"title": _title(obj), "icon": ICONS.get(kind)}, "error": error})

        to_create = []
        for obj in objects:
            kind, oid = str(obj.get("type")), str(obj.get("id"))
            if kind not in ICONS:
                fail(obj, {"type": "unsupported_type"})
                continue
            version = obj.get("typeMigrationVersion") or obj.get("migrationVersion", {}).get(kind)
            latest = LATEST_VERSION.get(kind)
            if isinstance(version, str) and latest and _version_tuple(version) > _version_tuple(latest):
                fail(obj, {"type": "unknown", "statusCode": 400,
                           "message": f'Document "{oid}" belongs to a more recent version of Kibana [{version}] '
                                      f"when the last known version is [{latest}]."})
                continue
            missing = [{"type": r.get("type"), "id": r.get("id")} for r in obj.get("references", [])
                       if (str(r.get("type")), str(r.get("id"))) not in in_file
                       and (str(r.get("type")), str(r.get("id"))) not in self._objects]
            if missing:
                fail(obj, {"type": "missing_references", "references": missing})
                continue
            exists = (kind, oid) in self._objects
            if exists and not options.overwrite and not options.createNewCopies:
                fail(obj, {"type": "conflict"})
                continue
            to_create.append((obj, exists))

        results = []
        for obj, existed in to_create:
            stored = copy.deepcopy(obj)
            kind, oid = str(obj["type"]), str(obj["id"])
            entry: dict[str, Any] = {"type": kind, "id": oid, "meta": {"title": _title(obj), "icon": ICONS[kind]},
                                     "managed": bool(obj.get("managed", False))}
            if options.createNewCopies:
                stored["id"] = str(uuid.uuid4())
                entry["destinationId"] = stored["id"]
            elif existed:
                entry["overwrite"] = True
            stored["namespaces"] = ["default"]
            self._objects[(kind, str(stored["id"]))] = stored
            results.append(entry)

        response: dict[str, Any] = {"successCount": len(results), "success": not errors, "warnings": []}
        if results:
            response["successResults"] = results
        if errors:
            response["errors"] = errors
        return response

    # --- advanced settings ---------------------------------------------------------------------------------
    def user_settings(self) -> dict[str, Any]:
        """What ``getUserProvided()`` returns: only values someone set, each as ``{"userValue": ...}``."""
        with self._lock:
            values = {"buildNum": {"userValue": BUILD_NUM}}
            values.update({key: {"userValue": copy.deepcopy(value)} for key, value in self._settings.items()})
            return values

    def set_settings(self, changes: dict[str, Any]) -> str | None:
        """Apply all changes or none; returns the 400 message of an invalid value."""
        for key, value in changes.items():
            if key in ARRAY_SETTINGS and value is not None and (
                    not isinstance(value, list) or not all(isinstance(item, str) for item in value)):
                got = "array" if isinstance(value, list) else type(value).__name__.replace("str", "string")
                expected = "string" if isinstance(value, list) else "array"
                where = f"{key}.0" if isinstance(value, list) else key
                return f"[validation [{key}]]: [{where}]: expected value of type [{expected}] but got [{got}]"
        with self._lock:
            for key, value in changes.items():
                if value is None:
                    self._settings.pop(key, None)  # null resets a setting to its default
                else:
                    self._settings[key] = copy.deepcopy(value)
        return None
