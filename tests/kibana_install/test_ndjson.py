"""kibana/lme-enrich.ndjson: well-formed Kibana 8.18 saved objects that only use fields we or Kibana map."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from worker.admin.kibana import DEFAULT_NDJSON
from worker.alerts import fields, history

CONTRACT = Path(__file__).resolve().parents[1] / "fakes" / "kibana" / "contract.json"
LME_TAG = "05484269-a438-43a1-8114-4f32479f51c4"
TAGGABLE = {"search", "visualization", "lens", "dashboard"}
ALERTS_VIEW, HISTORY_VIEW = "lme-enrich-alerts", "lme-enrich-assessments"

# Kibana alert fields the objects use, with their type in Kibana's alerts-as-data mapping
# (src/platform/packages/shared/kbn-alerts-as-data-utils/src/field_maps/alert_field_map.ts and the
# generated security_schema.ts): all keyword except @timestamp.
KIBANA_ALERT_FIELDS = {"@timestamp": "date", "kibana.alert.rule.name": "keyword", "kibana.alert.severity": "keyword",
                       "kibana.alert.workflow_status": "keyword", "kibana.alert.workflow_tags": "keyword",
                       "kibana.alert.uuid": "keyword"}
AGGREGATABLE = {"keyword", "long", "integer", "float", "double", "date", "boolean"}


def _leaf_types(properties: dict[str, Any], prefix: str = "") -> Iterator[tuple[str, str]]:
    for name, spec in properties.items():
        path = f"{prefix}{name}"
        if "properties" in spec:
            yield from _leaf_types(spec["properties"], f"{path}.")
            continue
        yield path, spec["type"]
        for sub, sub_spec in spec.get("fields", {}).items():
            yield f"{path}.{sub}", sub_spec["type"]


MAPPED = {
    ALERTS_VIEW: {**KIBANA_ALERT_FIELDS, **dict(_leaf_types(fields.AI_PROPERTIES, f"{fields.ROOT}."))},
    HISTORY_VIEW: dict(_leaf_types(history.PROPERTIES)),
}


def load() -> list[dict[str, Any]]:
    return [json.loads(line) for line in DEFAULT_NDJSON.read_text(encoding="utf-8").splitlines() if line.strip()]


OBJECTS = load()
BY_KEY = {(o["type"], o["id"]): o for o in OBJECTS}


def of_type(kind: str) -> list[dict[str, Any]]:
    return [o for o in OBJECTS if o["type"] == kind]


def data_view_of(obj: dict[str, Any]) -> str:
    (ref,) = [r for r in obj["references"] if r["name"] == "kibanaSavedObjectMeta.searchSourceJSON.index"]
    assert ref["type"] == "index-pattern"
    return str(ref["id"])


def test_every_line_is_one_json_object_and_ids_are_unique() -> None:
    lines = DEFAULT_NDJSON.read_text(encoding="utf-8").split("\n")
    assert lines[-1] == "", "the file ends with a newline"
    for number, line in enumerate(lines[:-1], start=1):
        assert line.strip(), f"line {number} is empty"
        assert isinstance(json.loads(line), dict), f"line {number} is not a JSON object"
    assert len(BY_KEY) == len(OBJECTS)
    assert len({o["id"] for o in OBJECTS}) == len(OBJECTS)
    assert {o["type"] for o in OBJECTS} == {"tag", "index-pattern", "search", "visualization", "dashboard"}


def test_migration_versions_are_kibana_8_18s() -> None:
    versions = json.loads(CONTRACT.read_text())["saved_object_versions_8_18"]
    for obj in OBJECTS:
        assert obj["coreMigrationVersion"] == versions["coreMigrationVersion"], obj["id"]
        assert obj["typeMigrationVersion"] == versions["typeMigrationVersion"][obj["type"]], obj["id"]


def test_every_reference_target_is_in_the_file() -> None:
    for obj in OBJECTS:
        names = [r["name"] for r in obj["references"]]
        assert len(names) == len(set(names)), f"{obj['id']} repeats a reference name"
        for ref in obj["references"]:
            assert (ref["type"], ref["id"]) in BY_KEY, f"{obj['id']} references missing {ref}"


def test_objects_carry_lmes_tag_like_its_own_dashboards() -> None:
    (tag,) = of_type("tag")
    assert tag["id"] == LME_TAG and tag["attributes"]["name"] == "Logging Made Easy"
    for obj in OBJECTS:
        tag_refs = [r for r in obj["references"] if r["type"] == "tag"]
        if obj["type"] in TAGGABLE:
            assert tag_refs == [{"id": LME_TAG, "name": f"tag-ref-{LME_TAG}", "type": "tag"}], obj["id"]
        else:
            assert tag_refs == [], f"{obj['type']} objects are not taggable"


def test_data_views_cover_the_alert_indices_and_our_history_index() -> None:
    views = {o["id"]: o["attributes"] for o in of_type("index-pattern")}
    assert views[ALERTS_VIEW]["title"] == ".alerts-security.alerts-*"
    assert views[HISTORY_VIEW]["title"] == f"{history.ALIAS}*"
    for attributes in views.values():
        assert attributes["timeFieldName"] == "@timestamp"
        assert attributes["name"]
        for key in ("fieldAttrs", "fieldFormatMap", "runtimeFieldMap", "sourceFilters", "fields"):
            json.loads(attributes[key])  # JSON text, as Kibana stores it


@pytest.mark.parametrize("view", [ALERTS_VIEW, HISTORY_VIEW])
def test_data_view_field_attributes_name_mapped_fields(view: str) -> None:
    attributes = BY_KEY[("index-pattern", view)]["attributes"]
    named = set(json.loads(attributes["fieldAttrs"])) | set(json.loads(attributes["fieldFormatMap"]))
    assert named, "the data view makes our fields visible"
    assert named <= set(MAPPED[view]), sorted(named - set(MAPPED[view]))


def test_alert_data_view_surfaces_the_main_ai_fields() -> None:
    attrs = json.loads(BY_KEY[("index-pattern", ALERTS_VIEW)]["attributes"]["fieldAttrs"])
    for name in ("status", "risk_level", "summary", "recommended_actions", "confidence"):
        assert attrs[fields.field(name)]["customLabel"].startswith("AI")
        assert attrs[fields.field(name)]["count"] > 0  # popularity puts them first in field lists


def test_saved_search_shows_the_ai_columns_newest_first() -> None:
    search = BY_KEY[("search", "lme-enrich-ai-assessed-alerts")]
    attributes = search["attributes"]
    assert attributes["title"] == "AI-assessed alerts"
    assert attributes["columns"] == ["kibana.alert.rule.name", "kibana.alert.severity", "lme.ai.risk_level",
                                     "lme.ai.summary", "lme.ai.status"]
    assert attributes["sort"] == [["@timestamp", "desc"]]
    source = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert source["query"] == {"query": "lme.ai.status : *", "language": "kuery"}
    assert source["indexRefName"] == "kibanaSavedObjectMeta.searchSourceJSON.index"
    assert data_view_of(search) == ALERTS_VIEW
    assert set(attributes["columns"]) <= set(MAPPED[ALERTS_VIEW])


def test_group_search_lists_one_row_per_group_assessment() -> None:
    search = BY_KEY[("search", "lme-enrich-ai-incident-groups")]
    attributes = search["attributes"]
    assert data_view_of(search) == HISTORY_VIEW, "the history index holds one record per group assessment"
    assert attributes["columns"][0] == "group.size" and set(attributes["columns"]) <= set(MAPPED[HISTORY_VIEW])
    source = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
    assert _kql_fields(source["query"]["query"]) <= set(MAPPED[HISTORY_VIEW])


def test_alert_data_view_labels_the_group_and_fact_card_fields() -> None:
    attrs = json.loads(BY_KEY[("index-pattern", ALERTS_VIEW)]["attributes"]["fieldAttrs"])
    for name in ("facts", "group.id", "group.size", "group.first_seen", "group.last_seen"):
        assert attrs[fields.field(name)]["customLabel"].startswith("AI")


def _kql_fields(query: str) -> set[str]:
    return set(re.findall(r"([A-Za-z@][\w.@]*)\s*:", query))


def test_every_visualization_aggregates_mapped_aggregatable_fields() -> None:
    for vis in of_type("visualization"):
        attributes = vis["attributes"]
        state = json.loads(attributes["visState"])
        source = json.loads(attributes["kibanaSavedObjectMeta"]["searchSourceJSON"])
        assert state["title"] == attributes["title"]
        assert source["indexRefName"] == "kibanaSavedObjectMeta.searchSourceJSON.index"
        mapped = MAPPED[data_view_of(vis)]
        for field_name in _kql_fields(source["query"]["query"]):
            assert field_name in mapped, f"{vis['id']} queries unmapped {field_name}"
        assert state["aggs"], vis["id"]
        for agg in state["aggs"]:
            name = agg["params"].get("field")
            if name is None:
                assert agg["type"] == "count"
                continue
            assert name in mapped, f"{vis['id']} aggregates unmapped {name}"
            assert mapped[name] in AGGREGATABLE, f"{vis['id']} aggregates {name} of type {mapped[name]}"
            if agg["params"].get("sortField"):
                assert agg["params"]["sortField"] in mapped


def test_dashboard_has_the_six_views_and_the_two_saved_searches() -> None:
    (dashboard,) = of_type("dashboard")
    attributes = dashboard["attributes"]
    assert attributes["title"] == "LME AI enrichment"
    panels = json.loads(attributes["panelsJSON"])
    json.loads(attributes["optionsJSON"])
    refs = {r["name"]: r for r in dashboard["references"] if r["type"] != "tag"}
    assert len(panels) == len(refs) == 8
    titles = set()
    for panel in panels:
        assert panel["gridData"]["i"] == panel["panelIndex"]
        ref = refs[f"{panel['panelIndex']}:{panel['panelRefName']}"]
        assert ref["type"] == panel["type"]
        titles.add(BY_KEY[(ref["type"], ref["id"])]["attributes"]["title"])
    wanted = ["status", "risk by rule severity", "over time", "duration percentiles", "failures by error",
              "AI-assessed alerts", "incident groups, largest first", "AI incident groups"]
    for words in wanted:
        assert any(words in title for title in titles), f"no panel about {words!r}: {sorted(titles)}"


@pytest.mark.parametrize("kind", ["dashboard", "search"])
def test_attributes_are_ones_kibana_8_18_accepts(kind: str) -> None:
    allowed = set(json.loads(CONTRACT.read_text())["attribute_keys_8_18"][kind])
    for obj in of_type(kind):
        assert set(obj["attributes"]) <= allowed, sorted(set(obj["attributes"]) - allowed)
