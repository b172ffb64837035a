"""Pure unit tests of fieldpath.py: one path over flat, nested and mixed `_source` shapes."""

from __future__ import annotations

from tests.fakes.elasticsearch.fieldpath import values_at


def test_flat_nested_and_mixed_forms_address_the_same_field() -> None:
    source = {
        "kibana.alert.rule.name": "flat",
        "kibana": {"alert": {"rule": {"name": "nested"}}},
        "kibana.alert": {"rule.name": "mixed"},
    }
    assert sorted(values_at(source, "kibana.alert.rule.name")) == ["flat", "mixed", "nested"]


def test_arrays_of_values_and_objects_flatten() -> None:
    source = {"host": [{"ip": ["10.0.0.1", "10.0.0.2"]}, {"ip": "10.0.0.3"}], "tags": [["a"], "b"]}
    assert values_at(source, "host.ip") == ["10.0.0.1", "10.0.0.2", "10.0.0.3"]
    assert values_at(source, "tags") == ["a", "b"]
    assert values_at(source, "host") == [{"ip": ["10.0.0.1", "10.0.0.2"]}, {"ip": "10.0.0.3"}]
    assert values_at(source, "missing") == []
