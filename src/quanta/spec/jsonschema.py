"""JSON Schemas of the spec files, for editors and other tools."""

from __future__ import annotations

from typing import Any

from quanta.spec.models import MeshSpec, ProductSpec


def json_schemas() -> dict[str, dict[str, Any]]:
    """``{"dataproduct.yaml": schema, "mesh.yaml": schema}`` (validation mode, by alias)."""
    result = {}
    for file, model in (("dataproduct.yaml", ProductSpec), ("mesh.yaml", MeshSpec)):
        schema = model.model_json_schema(by_alias=True, mode="validation")
        schema["$schema"] = "https://json-schema.org/draft/2020-12/schema"
        schema["title"] = file
        result[file] = schema
    return result
