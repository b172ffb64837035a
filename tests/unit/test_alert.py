"""Alert fields read the same whether stored flat, nested or mixed."""

from __future__ import annotations

from worker.alerts import alert


def test_flat_nested_and_mixed_keys():
    source = {
        "kibana.alert.rule.name": "flat",
        "host": {"name": "nested"},
        "kibana.alert": {"severity": "mixed"},
        "process": [{"pid": 1}, {"pid": 2}],
        "kibana.alert.workflow_tags": ["a", ["b"]],
    }
    assert alert.first(source, "kibana.alert.rule.name") == "flat"
    assert alert.first(source, "host.name") == "nested"
    assert alert.first(source, "kibana.alert.severity") == "mixed"
    assert alert.values(source, "process.pid") == [1, 2]
    assert alert.values(source, "kibana.alert.workflow_tags") == ["a", "b"]
    assert alert.first(source, "user.name") is None
    assert alert.values("not a dict", "a.b") == []


def test_key_form_finds_how_a_field_is_stored():
    source = {"kibana.alert.workflow_tags": [], "kibana": {"space_ids": ["default"]}}
    assert alert.key_form(source, "kibana.alert.workflow_tags") == ("kibana.alert.workflow_tags",)
    assert alert.key_form(source, "kibana.space_ids") == ("kibana", "space_ids")
    assert alert.key_form(source, "kibana.alert.uuid") is None
