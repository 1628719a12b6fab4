"""Layering: cli → context → planes → storage/engine; lower layers never import upper ones."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[1] / "src" / "quanta"

# package → packages it must never import (directly or by a `from quanta.x import`)
FORBIDDEN = {
    "errors": {"spec", "storage", "engine", "inputs", "build", "quality", "sidecar", "context",
               "cli", "demo", "scaffold"},
    "address": {"spec", "storage", "engine", "inputs", "build", "quality", "sidecar", "context",
                "cli"},
    "storage": {"engine", "inputs", "build", "quality", "sidecar", "context", "cli", "spec"},
    "engine": {"storage", "inputs", "build", "quality", "sidecar", "context", "cli", "spec"},
    "spec": {"storage", "inputs", "build", "quality", "sidecar", "context", "cli"},
    "inputs": {"build", "quality", "sidecar", "context", "cli"},
    "quality": {"build", "sidecar", "context", "cli", "inputs"},
    "build": {"sidecar", "context", "cli"},
    "sidecar": {"build", "context", "cli", "inputs", "quality", "control", "serve"},
    "control": {"build", "context", "cli", "inputs", "quality", "serve"},
    "governance": {"build", "sidecar", "serve", "control", "context", "cli"},
    "context": {"cli"},
    # the catalog reads specs and storage (and the sidecar's plain words for policies)
    "catalog": {"build", "context", "cli", "serve", "control", "governance", "inputs",
                "quality", "engine", "lineage", "demo", "scaffold"},
    "lineage": {"build", "sidecar", "serve", "cli", "context", "engine", "inputs", "quality",
                "control", "governance", "demo", "scaffold"},
    # observability reads specs, storage and the audit file's format (not the sidecar itself)
    "observe": {"build", "sidecar", "serve", "cli", "context", "engine", "inputs", "quality",
                "control", "governance", "catalog", "lineage", "demo", "scaffold"},
}
# the governance plane sits above the spec and storage: nothing below it may import it
for _lower in ("errors", "address", "storage", "engine", "spec", "inputs"):
    FORBIDDEN[_lower] = FORBIDDEN[_lower] | {"governance"}
# the lineage plane reads specs and storage; the build runner may emit through it
for _lower in ("errors", "address", "storage", "engine", "spec", "inputs", "quality"):
    FORBIDDEN[_lower] = FORBIDDEN[_lower] | {"lineage"}
# builds, reads and governance never need observability: nothing below it imports it
for _lower in ("errors", "address", "storage", "engine", "spec", "inputs", "quality", "build",
               "sidecar", "governance", "control", "lineage"):
    FORBIDDEN[_lower] = FORBIDDEN.get(_lower, set()) | {"observe"}
# nothing below the experience plane imports the catalog: builds and reads never need it
for _lower in ("errors", "address", "storage", "engine", "spec", "inputs", "quality", "build",
               "sidecar", "governance", "control", "lineage"):
    FORBIDDEN[_lower] = FORBIDDEN.get(_lower, set()) | {"catalog"}


# the runtime (quanta run) and the product container sit beside the CLI and the servers: the
# planes and the context never import them
for _lower in ("errors", "address", "storage", "engine", "spec", "inputs", "quality", "build",
               "sidecar", "governance", "control", "lineage", "observe", "catalog", "context"):
    FORBIDDEN[_lower] = FORBIDDEN.get(_lower, set()) | {"runtime", "container"}
FORBIDDEN["runtime"] = {"cli", "serve"}
FORBIDDEN["container"] = {"cli", "runtime"}


def imported_packages(file: Path) -> set[str]:
    tree = ast.parse(file.read_text(encoding="utf-8"))
    found = set()
    for node in ast.walk(tree):
        names = []
        if isinstance(node, ast.ImportFrom) and node.module:
            names = [node.module]
        elif isinstance(node, ast.Import):
            names = [alias.name for alias in node.names]
        for name in names:
            parts = name.split(".")
            if parts[0] == "quanta" and len(parts) > 1:
                found.add(parts[1])
    return found


def layer_of(file: Path) -> str:
    rel = file.relative_to(SRC)
    return rel.parts[0].removesuffix(".py")


@pytest.mark.parametrize("file", sorted(SRC.rglob("*.py")), ids=lambda f: str(f.relative_to(SRC)))
def test_module_respects_the_layers(file: Path) -> None:
    layer = layer_of(file)
    wrong = imported_packages(file) & FORBIDDEN.get(layer, set())
    assert not wrong, f"{file.relative_to(SRC)} ({layer}) imports upper layer(s): {sorted(wrong)}"


def test_library_code_never_prints() -> None:
    offenders = []
    for file in SRC.rglob("*.py"):
        if layer_of(file) == "cli":
            continue
        for node in ast.walk(ast.parse(file.read_text(encoding="utf-8"))):
            if isinstance(node, ast.Call) and getattr(node.func, "id", None) == "print":
                offenders.append(f"{file.relative_to(SRC)}:{node.lineno}")
    assert not offenders, offenders
