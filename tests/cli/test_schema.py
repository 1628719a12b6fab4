"""`quanta schema`: JSON Schemas of the spec files, for editors and other tools."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import pytest
from ruamel.yaml import YAML

from conftest import cli


def schema_of(*args: str) -> Any:
    result = cli("schema", *args)
    assert result.exit_code == 0, result.output
    return json.loads(result.stdout)


def plain_yaml(file: Path) -> Any:
    return YAML(typ="safe").load(file.read_text())


@pytest.fixture(scope="module")
def product_validator() -> jsonschema.Draft202012Validator:
    schema = schema_of("dataproduct")
    jsonschema.Draft202012Validator.check_schema(schema)
    return jsonschema.Draft202012Validator(schema)


def test_schema_without_argument_prints_both() -> None:
    document = schema_of()
    assert set(document) == {"dataproduct.yaml", "mesh.yaml"}
    for title, schema in document.items():
        assert schema["title"] == title
        assert schema["$schema"] == "https://json-schema.org/draft/2020-12/schema"
        jsonschema.Draft202012Validator.check_schema(schema)


def test_schema_accepts_the_file_name_too() -> None:
    assert schema_of("mesh.yaml") == schema_of("mesh") == schema_of()["mesh.yaml"]


def test_product_schema_accepts_the_tiny_mesh(
    tiny_mesh: Path, product_validator: jsonschema.Draft202012Validator
) -> None:
    files = sorted(tiny_mesh.glob("domains/*/*/dataproduct.yaml"))
    assert len(files) == 3
    for file in files:
        errors = [e.message for e in product_validator.iter_errors(plain_yaml(file))]
        assert errors == [], (file, errors)


def test_mesh_schema_accepts_the_tiny_mesh(tiny_mesh: Path) -> None:
    validator = jsonschema.Draft202012Validator(schema_of("mesh"))
    assert list(validator.iter_errors(plain_yaml(tiny_mesh / "mesh.yaml"))) == []
    assert not validator.is_valid({"apiVersion": "quanta/v1", "name": "tiny", "colour": "red"})


def test_product_schema_rejects_an_unknown_key(
    tiny_mesh: Path, product_validator: jsonschema.Draft202012Validator
) -> None:
    data = plain_yaml(tiny_mesh / "domains" / "shop" / "orders" / "dataproduct.yaml")
    data["desciption"] = data.pop("description")
    messages = [e.message for e in product_validator.iter_errors(data)]
    assert any("'desciption' was unexpected" in m for m in messages), messages
    assert any("'description' is a required property" in m for m in messages), messages


@pytest.mark.parametrize(
    ("change", "why"),
    [
        (lambda d: d.update(kind="source-algned"), "kind not in the enum"),
        (lambda d: d.update(version=1.0), "version is not a string"),
        (lambda d: d["outputs"][0]["fields"][0].update(colour="red"), "unknown nested key"),
        (lambda d: d["inputs"][0].update(type="ftp"), "unknown input type"),
        (lambda d: d.update(name="Orders"), "name not snake_case"),
        (lambda d: d.pop("owner"), "owner is required"),
    ],
)
def test_product_schema_rejects_what_the_loader_rejects(
    tiny_mesh: Path, product_validator: jsonschema.Draft202012Validator, change: Any, why: str
) -> None:
    data = plain_yaml(tiny_mesh / "domains" / "shop" / "orders" / "dataproduct.yaml")
    assert product_validator.is_valid(data)
    change(data)
    assert not product_validator.is_valid(data), why


def test_unknown_schema_name_fails_with_a_hint() -> None:
    result = cli("schema", "nope")
    assert result.exit_code == 1
    assert "no schema for 'nope'" in result.output
    assert "use 'dataproduct' or 'mesh'" in result.output
    assert result.stdout == ""


@pytest.mark.parametrize(
    "change",
    [
        lambda d: d["slos"].update(freshness="1 hour"),
        lambda d: d.update(version="v1"),
    ],
)
def test_product_schema_rejects_bad_durations_and_versions(
    tiny_mesh: Path, product_validator: jsonschema.Draft202012Validator, change: Any
) -> None:
    data = plain_yaml(tiny_mesh / "domains" / "shop" / "orders" / "dataproduct.yaml")
    change(data)
    assert not product_validator.is_valid(data)
