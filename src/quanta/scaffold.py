"""Scaffolding: a new mesh, and new products that build on the first try."""

from __future__ import annotations

import json
from pathlib import Path

from quanta.address import Address, check_identifier
from quanta.errors import QuantaError
from quanta.spec.mesh import MESH_FILE, PRODUCT_FILE, load_mesh

KINDS = ("source-aligned", "aggregate", "consumer-aligned")

_MESH_YAML = """\
apiVersion: quanta/v1
name: {name}
description: {description}
# Where releases, run records and the catalog live (relative to this file).
storage: {{root: .quanta}}
# Where product specs live; one folder per product.
products: ["domains/*/*/dataproduct.yaml"]
"""

_SAMPLE_CSV = """\
id,name,amount,updated_at
1,first,10.5,2026-11-01 09:00:00
2,second,20.0,2026-11-01 10:30:00
3,third,7.25,2026-11-02 08:15:00
"""

_SOURCE_YAML = """\
apiVersion: quanta/v1
name: {product}
domain: {domain}
kind: source-aligned
version: 0.1.0
owner: {{team: {domain}, email: {domain}-data@example.com}}
description: TODO describe what one row of {product} means and where it comes from.
inputs:
  # Replace the sample with your operational source (file, sqlite or postgres).
  - {{name: source, type: file, path: sample.csv}}
transform: {{type: sql, file: transform.sql}}
outputs:
  - name: {product}
    event_time: updated_at
    primary_key: [id]
    fields:
      - {{name: id, type: int64, description: Row id, nullable: false}}
      - {{name: name, type: string, description: Name, classification: internal}}
      - {{name: amount, type: float64, description: Amount}}
      - {{name: updated_at, type: timestamp, description: When the row last changed (UTC)}}
quality:
  - {{check: not_null, columns: [id]}}
  - {{check: unique, columns: [id]}}
  - {{check: range, column: amount, min: 0}}
slos: {{freshness: 1d, completeness: 0.99}}
triggers: [{{on: source-change}}]
"""

_SOURCE_SQL = """\
-- Inputs are visible as tables by their declared names; nothing else is.
SELECT id, name, amount, updated_at
FROM source
"""

_DERIVED_YAML = """\
apiVersion: quanta/v1
name: {product}
domain: {domain}
kind: {kind}
version: 0.1.0
owner: {{team: {domain}, email: {domain}-data@example.com}}
description: TODO describe what one row of {product} means and who it is for.
inputs:
{inputs}
transform: {{type: sql, file: transform.sql}}
outputs:
  - name: {product}
{event_time}    fields:
{fields}
quality:
  - {{check: row_count, min: 1}}
slos: {{freshness: 1d}}
triggers: [{{on: upstream}}]
"""

_TEST_PY = '''\
"""Tests of {key}: build it in its mesh and check what consumers rely on."""

from pathlib import Path

from quanta import MeshContext

MESH = next(p for p in Path(__file__).resolve().parents if (p / "mesh.yaml").is_file())


def test_{product}_builds_and_serves_rows() -> None:
    ctx = MeshContext(MESH)
    wanted, todo = set(), ["{key}"]
    while todo:  # build what it reads too, so the test passes in a fresh checkout
        key = todo.pop()
        if key not in wanted:
            wanted.add(key)
            todo += [a.product_key for _, a in ctx.mesh.product(key).upstream()]
    results = ctx.build(sorted(wanted))
    assert all(r.ok for r in results), [r.error for r in results if not r.ok]
    rows = ctx.query("SELECT count(*) AS n FROM {domain}.{product}").table
    assert rows.column("n")[0].as_py() > 0
'''


def init_mesh(folder: Path, name: str | None = None) -> Path:
    """Create a mesh in ``folder``; refuse to overwrite an existing one."""
    folder = folder.resolve()
    mesh_name = name or folder.name.replace("-", "_").lower()
    check_identifier(mesh_name, "mesh name")
    if (folder / MESH_FILE).exists():
        raise QuantaError(
            f"{folder / MESH_FILE} already exists", hint="choose another folder",
            code="mesh_exists",
        )
    (folder / "domains").mkdir(parents=True, exist_ok=True)
    (folder / MESH_FILE).write_text(_MESH_YAML.format(
        name=mesh_name, description=f"The {mesh_name} data mesh."
    ))
    ignore = folder / ".gitignore"
    if not ignore.exists():
        ignore.write_text(".quanta/\n")
    return folder / MESH_FILE


def new_product(mesh_root: Path, key: str, kind: str, inputs: list[str] | None = None) -> Path:
    """Scaffold ``domain.product`` with a spec, a transform and a test; return its folder."""
    if kind not in KINDS:
        raise QuantaError(f"unknown kind {kind!r}", hint=f"use one of: {', '.join(KINDS)}",
                          code="kind_invalid")
    domain, _, product = key.partition(".")
    check_identifier(domain, "domain")
    check_identifier(product, "product")
    folder = mesh_root / "domains" / domain / product
    if (folder / PRODUCT_FILE).exists():
        raise QuantaError(f"{folder / PRODUCT_FILE} already exists",
                          hint="choose another name", code="product_exists")
    if kind == "source-aligned" and not inputs:
        spec_text, sql = _SOURCE_YAML.format(domain=domain, product=product), _SOURCE_SQL
        extra = {"sample.csv": _SAMPLE_CSV}
    else:
        spec_text, sql = _derived(mesh_root, domain, product, kind, inputs or [])
        extra = {}
    folder.mkdir(parents=True, exist_ok=True)
    (folder / PRODUCT_FILE).write_text(spec_text)
    (folder / "transform.sql").write_text(sql)
    for name, text in extra.items():
        (folder / name).write_text(text)
    (folder / f"test_{product}.py").write_text(
        _TEST_PY.format(key=key, domain=domain, product=product)
    )
    return folder


def _derived(mesh_root: Path, domain: str, product: str, kind: str, inputs: list[str]
             ) -> tuple[str, str]:
    """Spec and SQL of a product reading other products; fields copied from the first."""
    if not inputs:
        raise QuantaError(
            f"an {kind} product reads other products" if kind == "aggregate" else
            f"a {kind} product reads other products",
            hint="name them: quanta new d.p --kind aggregate --input quanta://d/upstream",
            code="input_required",
        )
    mesh = load_mesh(mesh_root)
    lines, first_port = [], None
    for text in inputs:
        address = mesh_address = Address.parse(text)
        upstream = mesh.product(mesh_address)
        port = upstream.spec.port(address.port)
        if port is None:
            raise QuantaError(
                f"{upstream.key} has no port '{address.port}'", code="port_not_found",
                hint=f"ports: {', '.join(p.name for p in upstream.spec.outputs)}",
            )
        first_port = first_port or port
        name = address.product
        lines.append(f"  - {{name: {name}, type: product, product: "
                     f"quanta://{address.domain}/{address.product}/{port.name}}}")
    assert first_port is not None
    fields = "\n".join(
        f"      - {{name: {f.name}, type: '{f.type}', "
        f"description: {json.dumps(f.description or 'TODO')}"
        f", classification: {f.classification}"
        + (f", polyseme: {f.polyseme}" if f.polyseme else "") + "}"
        for f in first_port.fields
    )
    event_time = f"    event_time: {first_port.event_time}\n" if first_port.event_time else ""
    columns = ", ".join(f.name for f in first_port.fields)
    first_input = Address.parse(inputs[0]).product
    spec_text = _DERIVED_YAML.format(
        domain=domain, product=product, kind=kind, inputs="\n".join(lines),
        event_time=event_time, fields=fields,
    )
    sql = ("-- Inputs are visible as tables by their declared names; nothing else is.\n"
           f"SELECT {columns}\nFROM {first_input}\n")
    return spec_text, sql
