"""Rules that span fields, files and products, checked after the models validate."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from quanta.address import Address
from quanta.errors import AddressError, QuantaError
from quanta.spec.expressions import parse_condition
from quanta.spec.loader import PathItem, SpecDocument
from quanta.spec.models import (
    ConsentPolicy,
    MaskPolicy,
    ProductInput,
    ProductSpec,
    PythonTransform,
    RowFilterPolicy,
    SqlTransform,
)


def _problem(doc: SpecDocument, path: tuple[PathItem, ...], message: str, hint: str) -> QuantaError:
    return QuantaError(message, hint=hint, location=doc.locate(path), code="spec_inconsistent")


def _duplicates(names: Iterable[str]) -> list[str]:
    seen: set[str] = set()
    dupes = []
    for name in names:
        if name in seen:
            dupes.append(name)
        seen.add(name)
    return dupes


def check_product(spec: ProductSpec, doc: SpecDocument) -> list[QuantaError]:
    """Every cross-field problem inside one product spec."""
    problems: list[QuantaError] = []
    folder = doc.file.parent

    def add(path: tuple[PathItem, ...], message: str, hint: str) -> None:
        problems.append(_problem(doc, path, message, hint))

    for name in _duplicates(i.name for i in spec.inputs):
        add(("inputs",), f"input '{name}' is declared twice", "give each input its own name")
    for name in _duplicates(p.name for p in spec.outputs):
        add(("outputs",), f"output port '{name}' is declared twice", "rename one of them")
    for p_index, port in enumerate(spec.outputs):
        names = [f.name for f in port.fields]
        for name in _duplicates(names):
            add(("outputs", p_index, "fields"), f"field '{name}' of port '{port.name}' is "
                "declared twice", "remove or rename the second one")
        if port.event_time and port.event_time not in names:
            add(("outputs", p_index, "event_time"), f"event_time '{port.event_time}' is not a "
                f"field of port '{port.name}'", f"use one of: {', '.join(names)}")
        elif port.event_time:
            kind = port.field(port.event_time)
            if kind and kind.type not in ("timestamp", "date"):
                add(("outputs", p_index, "event_time"), f"event_time '{port.event_time}' has "
                    f"type {kind.type}", "the event-time column must be a timestamp or a date")
        for k_index, column in enumerate(port.primary_key):
            if column not in names:
                add(("outputs", p_index, "primary_key", k_index), f"primary key column "
                    f"'{column}' is not a field of port '{port.name}'",
                    f"use one of: {', '.join(names)}")
    problems += _check_transform(spec, doc, folder)
    problems += _check_quality(spec, doc)
    input_names = {i.name for i in spec.inputs}
    for t_index, trigger in enumerate(spec.triggers):
        for name in trigger.inputs or []:
            if name not in input_names:
                add(("triggers", t_index, "inputs"), f"trigger names unknown input '{name}'",
                    f"declared inputs: {', '.join(sorted(input_names)) or 'none'}")
    for i_index, item in enumerate(spec.inputs):
        if isinstance(item, ProductInput):
            try:
                Address.parse(item.product)
            except AddressError as exc:
                add(("inputs", i_index, "product"), exc.message, exc.hint or "")
    problems += _check_policies(spec, doc)
    problems += _check_incremental(spec, doc)
    return problems


def _check_policies(spec: ProductSpec, doc: SpecDocument) -> list[QuantaError]:
    problems = []
    port_names = ", ".join(p.name for p in spec.outputs)
    for index, policy in enumerate(spec.policies):
        path: tuple[PathItem, ...] = ("policies", index)
        ports = [spec.port(name) for name in policy.ports or [p.name for p in spec.outputs]]
        if None in ports:
            problems.append(_problem(doc, (*path, "ports"), "policy names an unknown port",
                                     f"ports: {port_names}"))
            continue
        if isinstance(policy, MaskPolicy) and policy.columns:
            for column in policy.columns:
                if not any(port.field(column) for port in ports if port):
                    problems.append(_problem(
                        doc, (*path, "columns"), f"mask names unknown column '{column}'",
                        "name a field of the ports the mask applies to"))
        if isinstance(policy, ConsentPolicy):
            for port in ports:
                assert port is not None
                if port.field(policy.column) is None:
                    problems.append(_problem(
                        doc, (*path, "column"),
                        f"consent names unknown column '{policy.column}' (port '{port.name}')",
                        "name the port's field that identifies the subject, e.g. listener_id"))
        if isinstance(policy, RowFilterPolicy):
            for port in ports:
                assert port is not None
                try:
                    parse_condition(policy.where, {f.name for f in port.fields})
                except ValueError as exc:
                    problems.append(_problem(
                        doc, (*path, "where"), f"{exc} (port '{port.name}')",
                        "write a condition such as country = 'DE'; use 'ports:' to limit "
                        "it to the ports that have its columns"))
    return problems


def _check_incremental(spec: ProductSpec, doc: SpecDocument) -> list[QuantaError]:
    """An incremental build reads one declared input from its watermark on; a merge
    replaces rows by primary key, so every port needs one."""
    declared = spec.incremental
    if declared is None:
        return []
    problems = []
    if spec.input(declared.input) is None:
        problems.append(_problem(
            doc, ("incremental", "input"), f"incremental names unknown input "
            f"'{declared.input}'", f"declared inputs: "
            f"{', '.join(i.name for i in spec.inputs) or 'none'}"))
    if declared.strategy == "merge":
        for port in spec.outputs:
            if not port.primary_key:
                problems.append(_problem(
                    doc, ("incremental", "strategy"), f"strategy merge replaces rows by "
                    f"primary key, but port '{port.name}' declares none",
                    f"add 'primary_key: [...]' to port '{port.name}', or use strategy: append"))
    for index, check in enumerate(spec.quality):
        if check.check == "referential" and check.input == declared.input:
            problems.append(_problem(
                doc, ("quality", index, "input"), f"referential check reads input "
                f"'{check.input}', which incremental builds read only in part",
                "refer to another input, or check the rows with a sql check"))
    return problems


def _check_transform(spec: ProductSpec, doc: SpecDocument, folder: Path) -> list[QuantaError]:
    problems = []
    transform = spec.transform
    if transform.file is not None and not (folder / transform.file).is_file():
        problems.append(_problem(
            doc, ("transform", "file"), f"transform file '{transform.file}' does not exist",
            f"create it next to {doc.file.name}, or fix the path",
        ))
    if isinstance(transform, SqlTransform) and transform.port and spec.port(
        transform.port
    ) is None:
        problems.append(_problem(
            doc, ("transform", "port"), f"transform fills unknown port '{transform.port}'",
            f"ports: {', '.join(p.name for p in spec.outputs)}",
        ))
    if isinstance(transform, SqlTransform) and len(spec.outputs) > 1 and transform.port is None:
        problems.append(_problem(
            doc, ("transform",), "a SQL transform fills one port, but the product has "
            f"{len(spec.outputs)}", "use a Python transform to fill several ports",
        ))
    if isinstance(transform, PythonTransform) and not transform.function.isidentifier():
        problems.append(_problem(
            doc, ("transform", "function"), f"'{transform.function}' is not a function name",
            "name a top-level function of the transform file, e.g. transform",
        ))
    return problems


def _check_quality(spec: ProductSpec, doc: SpecDocument) -> list[QuantaError]:
    problems = []
    for index, check in enumerate(spec.quality):
        path: tuple[PathItem, ...] = ("quality", index)
        port = spec.port(check.port)
        if port is None:
            problems.append(_problem(
                doc, (*path, "port"), f"check names unknown port '{check.port}'",
                f"ports: {', '.join(p.name for p in spec.outputs)}",
            ))
            continue
        columns = check.named_columns()
        names = [f.name for f in port.fields]
        for column in columns:
            if column not in names:
                problems.append(_problem(
                    doc, path, f"check '{check.check}' names unknown column '{column}' of port "
                    f"'{port.name}'", f"columns: {', '.join(names)}",
                ))
        if check.check == "regex" and (problem := _re2_problem(check.pattern)):
            problems.append(_problem(
                doc, (*path, "pattern"), f"pattern does not compile in the engine: {problem}",
                "checks run in DuckDB, which uses RE2 syntax: no lookarounds or backreferences",
            ))
        if check.check == "freshness" and check.column is None and port.event_time is None:
            problems.append(_problem(
                doc, path, "freshness check has no column and the port declares no event_time",
                "add 'column: <timestamp column>' or an event_time to the port",
            ))
        if check.check == "referential" and spec.input(check.input) is None:
            problems.append(_problem(
                doc, (*path, "input"), f"referential check names unknown input '{check.input}'",
                f"declared inputs: {', '.join(i.name for i in spec.inputs) or 'none'}",
            ))
    return problems


def _re2_problem(pattern: str) -> str | None:
    """The engine's complaint about a regular expression, or None when it compiles."""
    import duckdb

    try:
        duckdb.connect().execute("SELECT regexp_full_match('', ?)", [pattern]).fetchall()
    except duckdb.Error as exc:
        return str(exc).splitlines()[0]
    return None
