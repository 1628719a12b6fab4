"""The federation's built-in standards, each a plain function ``(product, mesh) -> findings``.

Default severities are ``error`` only where the demo mesh, the scaffolded products of
``quanta new`` and existing meshes comply today; the rest are ``warn`` until a mesh raises them
in ``governance.severity`` (see docs/governance.md).
"""

from __future__ import annotations

import re
from collections.abc import Iterator
from typing import Any

from quanta.governance.findings import Finding, finding
from quanta.governance.registry import Standard, standard
from quanta.spec.loader import PathItem, SpecDocument
from quanta.spec.mesh import Mesh, Product
from quanta.spec.models import FieldSpec, GrantPolicy, MaskPolicy, OutputPort, ProductInput

EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")
PLACEHOLDER = re.compile(r"^\s*(todo|tbd|fixme|xxx)\b", re.IGNORECASE)
PURPOSE_TAG = "purpose:"
CLASSIFICATIONS = "public, internal, confidential, pii or restricted"

# Words DuckDB cannot take as a bare column or table name (duckdb_keywords() categories
# 'reserved' and 'type_function', DuckDB 2.0); a test compares this with the engine.
SQL_RESERVED = frozenset({
    "all", "analyse", "analyze", "and", "anti", "any", "array", "as", "asc", "asof",
    "asymmetric", "at", "authorization", "binary", "both", "by", "case", "cast", "check",
    "collate", "collation", "column", "columns", "concurrently", "constraint", "create",
    "cross", "default", "deferrable", "desc", "describe", "distinct", "do", "else", "end",
    "except", "false", "fetch", "for", "foreign", "freeze", "from", "full", "generated",
    "glob", "group", "having", "ilike", "in", "initially", "inner", "intersect", "into", "is",
    "isnull", "join", "lambda", "lateral", "leading", "left", "like", "limit", "map",
    "natural", "not", "notnull", "null", "offset", "on", "only", "or", "order", "outer",
    "overlaps", "pivot", "pivot_longer", "pivot_wider", "placing", "positional", "primary",
    "qualify", "references", "returning", "right", "select", "semi", "show", "similar", "some",
    "struct", "summarize", "symmetric", "table", "tablesample", "then", "to", "trailing",
    "true", "try_cast", "tuple", "union", "unique", "unpack", "unpivot", "using", "variadic",
    "verbose", "when", "where", "window", "with",
})


def _fields(product: Product) -> Iterator[tuple[tuple[PathItem, ...], OutputPort, FieldSpec]]:
    """Every output field with its YAML path."""
    for p_index, port in enumerate(product.spec.outputs):
        for f_index, field in enumerate(port.fields):
            yield ("outputs", p_index, "fields", f_index), port, field


def _written(doc: SpecDocument, path: tuple[PathItem, ...]) -> bool:
    """Whether the YAML file itself holds ``path`` (a default filled in by the model does not)."""
    node: Any = doc.tree
    for item in path:
        present = (item in node) if isinstance(node, dict) else (
            isinstance(node, list) and isinstance(item, int) and item < len(node))
        if not present:
            return False
        node = node[item]
    return True


def _missing_text(text: str | None) -> bool:
    """Empty, blank, or a placeholder such as 'TODO describe ...'."""
    return not text or not text.strip() or bool(PLACEHOLDER.match(text))


@standard("owner-required", severity="warn")
def owner_required(product: Product, mesh: Mesh) -> Iterator[Finding]:
    """Every product names its owning team and the team's email address."""
    email = product.spec.owner.email
    if email is None or not email.strip():
        yield finding(
            product, f"owner of {product.key} has no email address", at=("owner",),
            hint="add 'email: <the team's address>' to owner, so consumers can reach the team",
        )
    elif not EMAIL.match(email.strip()):
        yield finding(
            product, f"owner email {email!r} is not an email address", at=("owner", "email"),
            hint="write the team's address, e.g. listening-data@daff.example",
        )


@standard("description-required", severity="warn")
def description_required(product: Product, mesh: Mesh) -> Iterator[Finding]:
    """Every product says what it is: a description that is not a placeholder."""
    if _missing_text(product.spec.description):
        yield finding(
            product, f"{product.key} has no real description", at=("description",),
            hint="say what one row means, where the data comes from and who it is for",
        )


@standard("slos-required", severity="warn")
def slos_required(product: Product, mesh: Mesh) -> Iterator[Finding]:
    """Every product promises how fresh it is: an SLO for freshness or interval_of_change."""
    slos = product.spec.slos
    if slos.freshness is None and slos.interval_of_change is None:
        yield finding(
            product, f"{product.key} promises neither freshness nor interval_of_change",
            at=("slos",) if _written(product.doc, ("slos",)) else ("name",),
            hint="add e.g. 'slos: {freshness: 1d}' or 'slos: {interval_of_change: 1h}'",
        )


@standard("field-description-required", severity="warn")
def field_description_required(product: Product, mesh: Mesh) -> Iterator[Finding]:
    """Every output field says what it means."""
    for path, port, field in _fields(product):
        if _missing_text(field.description):
            yield finding(
                product, f"field '{field.name}' of port '{port.name}' has no description",
                at=(*path, "description"),
                hint="add 'description: ...': what the value means, its unit and time zone",
            )


@standard("field-classification-required", severity="warn")
def field_classification_required(product: Product, mesh: Mesh) -> Iterator[Finding]:
    """Every output field states its classification; the unwritten default does not count."""
    for path, port, field in _fields(product):
        if not _written(product.doc, (*path, "classification")):
            yield finding(
                product, f"field '{field.name}' of port '{port.name}' has no classification",
                at=path, hint=f"add 'classification: ...', one of {CLASSIFICATIONS}",
            )


def _masked(product: Product, port: OutputPort, field: FieldSpec) -> bool:
    """Whether a mask policy of the product covers ``field`` (by name or classification)."""
    for policy in product.spec.policies:
        if not isinstance(policy, MaskPolicy):
            continue
        if policy.ports is not None and port.name not in policy.ports:
            continue
        if field.name in (policy.columns or []) or policy.classification == field.classification:
            return True
    return False


@standard("pii-protected", severity="warn")
def pii_protected(product: Product, mesh: Mesh) -> Iterator[Finding]:
    """Every PII field carries a polyseme or is covered by a mask policy."""
    for path, port, field in _fields(product):
        if field.classification != "pii" or field.polyseme or _masked(product, port, field):
            continue
        yield finding(
            product, f"PII field '{field.name}' of port '{port.name}' has no polyseme and no "
            "mask policy", at=(*path, "classification"),
            hint=f"add a policy such as {{type: mask, columns: [{field.name}], method: redact}}, "
            "or a polyseme naming the shared concept",
        )


@standard("event-time-required", severity="warn", kinds=["source-aligned", "aggregate"])
def event_time_required(product: Product, mesh: Mesh) -> Iterator[Finding]:
    """Every port of a source-aligned or aggregate product declares its event time."""
    for index, port in enumerate(product.spec.outputs):
        if port.event_time is None:
            yield finding(
                product, f"port '{port.name}' declares no event_time", at=("outputs", index),
                hint="add 'event_time: <column>', the timestamp or date field that says when "
                "each row happened",
            )


def _names(product: Product) -> Iterator[tuple[str, str, tuple[PathItem, ...]]]:
    """(what, name, path) of every name the product gives: domain, product, inputs, ports..."""
    spec = product.spec
    yield "domain", spec.domain, ("domain",)
    yield "product", spec.name, ("name",)
    for index, item in enumerate(spec.inputs):
        yield "input", item.name, ("inputs", index, "name")
    for index, port in enumerate(spec.outputs):
        yield "port", port.name, ("outputs", index, "name")
    for path, _, field in _fields(product):
        yield "field", field.name, (*path, "name")


def _snake(name: str) -> str:
    """``name`` with runs of underscores collapsed and a trailing one dropped."""
    return re.sub("_+", "_", name).rstrip("_")


@standard("naming-convention", severity="error")
def naming_convention(product: Product, mesh: Mesh) -> Iterator[Finding]:
    """Names are snake_case words that SQL never needs to quote: no reserved words, no '__'."""
    for what, name, path in _names(product):
        if name in SQL_RESERVED:
            yield finding(
                product, f"{what} name '{name}' is a reserved SQL word", at=path,
                hint="queries would have to quote it; choose a more specific name",
            )
        elif "__" in name or name.endswith("_"):
            yield finding(
                product, f"{what} name '{name}' is not snake_case", at=path,
                hint=f"join words with single underscores, e.g. '{_snake(name)}'",
            )


@standard("source-reads-operational", severity="error", kinds=["source-aligned"])
def source_reads_operational(product: Product, mesh: Mesh) -> Iterator[Finding]:
    """A source-aligned product reads operational sources (file, sqlite, postgres) only."""
    for index, item in enumerate(product.spec.inputs):
        if isinstance(item, ProductInput):
            yield finding(
                product, f"source-aligned {product.key} reads product '{item.product}'",
                at=("inputs", index, "type"),
                hint="read the operational source itself, or make this an aggregate or "
                "consumer-aligned product",
            )


def _purposes(product: Product) -> list[str]:
    """Uses the product declares: ``purpose:<use>`` tags and the purposes of its grants."""
    spec = product.spec
    tagged = [t[len(PURPOSE_TAG):].strip() for t in spec.tags if t.startswith(PURPOSE_TAG)]
    granted = [p for g in spec.policies if isinstance(g, GrantPolicy) for p in g.purposes or []]
    return [p for p in tagged + granted if p]


@standard("consumer-use-declared", severity="warn", kinds=["consumer-aligned"])
def consumer_use_declared(product: Product, mesh: Mesh) -> Iterator[Finding]:
    """A consumer-aligned product declares what its consumers use it for."""
    if not _purposes(product):
        yield finding(
            product, f"consumer-aligned {product.key} declares no purpose",
            at=("tags",) if product.spec.tags else ("kind",),
            hint="add a tag such as 'purpose:churn_model' naming what consumers use it for, "
            "or a grant with 'purposes: [...]'",
        )


BUILTIN_STANDARDS: tuple[Standard, ...] = (
    owner_required, description_required, slos_required, field_description_required,
    field_classification_required, pii_protected, event_time_required, naming_convention,
    source_reads_operational, consumer_use_declared,
)
