"""A product's column lineage, port by port: declared in ``lineage.yaml``, else analysed
from the SQL transform, else unknown.

Python transforms cannot be analysed, so their lineage is declared in ``lineage.yaml``
beside ``dataproduct.yaml`` (see docs/lineage.md): port → column → sources, each
``input.column`` or ``input`` (the input as a whole). Without it, every output column is
recorded as coming from every input, as a whole, with subtype ``unknown``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any

from ruamel.yaml.comments import CommentedMap, CommentedSeq

from quanta.errors import Location, QuantaError
from quanta.lineage.columns import ColumnSource, PortColumns, sql_lineage, unknown_lineage
from quanta.spec.loader import SpecDocument, read_yaml
from quanta.spec.mesh import Product
from quanta.spec.models import SqlTransform

LINEAGE_FILE = "lineage.yaml"


@dataclass
class DeclaredLineage:
    """``lineage.yaml`` of one product: port → column → sources (``input.column``/``input``)."""

    ports: dict[str, dict[str, tuple[ColumnSource, ...]]] = field(default_factory=dict)


def read_declared(product: Product) -> DeclaredLineage | None:
    """The product's ``lineage.yaml``, checked against its ports and inputs; None if absent.

    Raises a QuantaError with the file, line and column of the first wrong entry.
    """
    file = product.folder / LINEAGE_FILE
    if not file.is_file():
        return None
    doc = read_yaml(file)
    spec = product.spec
    inputs = {i.name for i in spec.inputs}
    declared = DeclaredLineage()
    tree = doc.tree if doc.tree is not None else CommentedMap()
    if not isinstance(tree, CommentedMap):
        raise _declared_error(doc, (), "lineage.yaml maps each output port to its columns")
    for port_name, columns in tree.items():
        port = spec.port(str(port_name))
        if port is None:
            raise _declared_error(doc, (port_name,), f"no output port '{port_name}'",
                                  f"ports: {', '.join(p.name for p in spec.outputs)}", key=True)
        if not isinstance(columns, CommentedMap):
            raise _declared_error(doc, (port_name,), f"port '{port_name}' must map each column "
                                  "to its sources")
        found: dict[str, tuple[ColumnSource, ...]] = {}
        for column, raw in columns.items():
            if port.field(str(column)) is None:
                raise _declared_error(
                    doc, (port_name, column), f"port '{port_name}' has no column '{column}'",
                    f"columns: {', '.join(f.name for f in port.fields)}", key=True)
            items = list(raw) if isinstance(raw, CommentedSeq) else [] if raw is None else [raw]
            sources = []
            for index, item in enumerate(items):
                text = str(item)
                name, _, source_column = text.partition(".")
                if name not in inputs or not isinstance(item, str):
                    where = (port_name, column, index) if isinstance(raw, CommentedSeq) else (
                        port_name, column)
                    raise _declared_error(
                        doc, where, f"'{text}' does not name a declared input",
                        f"write input.column or input; inputs: {', '.join(sorted(inputs))}")
                sources.append(ColumnSource(name, source_column or None, "transformation"))
            found[str(column)] = tuple(sorted(set(sources)))
        declared.ports[str(port_name)] = found
    return declared


def _declared_error(doc: SpecDocument, path: tuple[Any, ...], message: str,
                    hint: str | None = None, key: bool = False) -> QuantaError:
    where = doc.locate(path, key=key) if path else Location(doc.file, 1, 1)
    return QuantaError(message, location=where, code="lineage_invalid",
                       hint=hint or "see docs/lineage.md for the format of lineage.yaml")


def product_lineage(product: Product, inputs: Mapping[str, list[str] | None]
                    ) -> dict[str, PortColumns]:
    """Column lineage of every output port of ``product``.

    ``lineage.yaml`` wins when present; else a SQL transform is analysed; else (Python)
    the lineage is unknown. ``inputs`` maps input names to their columns (None: unknown).
    """
    spec = product.spec
    declared = read_declared(product)
    names = list(inputs)
    result: dict[str, PortColumns] = {}
    for port in spec.outputs:
        columns = [f.name for f in port.fields]
        if declared is not None and port.name in declared.ports:
            given = declared.ports[port.name]
            missing = [c for c in columns if c not in given]
            note = f"not declared: {', '.join(missing)}" if missing else ""
            result[port.name] = PortColumns(port.name, "declared",
                                            {c: given.get(c, ()) for c in columns}, note=note)
        elif isinstance(spec.transform, SqlTransform) and port.name == (
                spec.transform.port or spec.outputs[0].name):
            result[port.name] = sql_lineage(_sql_text(product), port.name, columns, inputs)
        else:
            why = ("a Python transform's column lineage is declared in "
                   f"{product.folder / LINEAGE_FILE}" if spec.transform.type == "python"
                   else "the SQL transform does not fill this port")
            result[port.name] = unknown_lineage(port.name, columns, names, why)
    return result


def _sql_text(product: Product) -> str:
    """The SQL of the product's transform, from its file or the spec."""
    transform = product.spec.transform
    assert isinstance(transform, SqlTransform)
    if transform.file:
        try:
            return (product.folder / transform.file).read_text(encoding="utf-8")
        except OSError as exc:
            raise QuantaError(f"cannot read the transform of {product.key}: {exc}",
                              location=Location(product.folder / transform.file),
                              code="file_unreadable") from None
    return transform.sql or ""
