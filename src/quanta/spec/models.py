"""Pydantic models of ``mesh.yaml`` and ``dataproduct.yaml``.

Models are frozen and strict and forbid unknown keys; unions are discriminated by ``type:``
(or ``check:`` for quality checks). Cross-field rules that need the file system or other
products live in ``quanta.spec.semantics``.
"""

from __future__ import annotations

import re
from typing import Annotated, Any, ClassVar, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from quanta.address import IDENTIFIER
from quanta.engine.types import DECIMAL, SCALAR_TYPES
from quanta.spec.durations import parse_duration

API_VERSION = "quanta/v1"
SEMVER = re.compile(r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)(?:-[0-9A-Za-z.-]+)?$")

Identifier = Annotated[str, Field(pattern=IDENTIFIER.pattern, max_length=63)]
Duration = Annotated[str, Field(
    description="a whole number and a unit: 30s, 15m, 1h, 400d, 2w",
    json_schema_extra={"pattern": r"^\s*\d+\s*[smhdw]\s*$"},
)]
Kind = Literal["source-aligned", "aggregate", "consumer-aligned"]
Classification = Literal["public", "internal", "confidential", "pii", "restricted"]
Severity = Literal["error", "warn"]


class Model(BaseModel):
    """Base of every spec model: frozen, strict, no unknown keys."""

    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


def _check_duration(value: str | None) -> str | None:
    if value is not None:
        parse_duration(value)
    return value


# --- mesh.yaml ---------------------------------------------------------------------------------


class ReleaseHistory(Model):
    """How many old releases a product keeps for ``as_of`` reads; ``quanta vacuum`` expires
    the others. A release goes when neither rule keeps it: it is not one of the ``keep``
    newest, and it was superseded more than ``max_age`` ago. The latest release, releases a
    product input pins and the newest release of each major version always stay. Neither
    rule set: every release is kept. (Not to be confused with ``retention``, which removes
    old rows by event time.)"""

    keep: int | None = Field(None, ge=1, description="keep at least the N newest releases")
    max_age: Duration | None = Field(
        None, description="keep releases superseded less than this long ago, e.g. 90d")

    _max_age = field_validator("max_age")(_check_duration)

    def describe(self) -> str:
        """The rule in words, e.g. ``keep 10 newest or superseded within 90d``."""
        parts = [f"keep {self.keep} newest" if self.keep is not None else "",
                 f"superseded within {self.max_age}" if self.max_age is not None else ""]
        return " or ".join(p for p in parts if p) or "keep every release"


class StorageSpec(Model):
    """Where the mesh keeps its data, release manifests and run records."""

    root: str = Field(".quanta", description="folder for storage, relative to mesh.yaml")
    regions: dict[Identifier, str] = Field(
        default_factory=dict,
        description="data sovereignty: region → its own storage folder (relative to mesh.yaml "
        "or absolute); products declaring 'region' keep their data there")
    history: ReleaseHistory | None = Field(
        None, description="the release history rule of products that declare none; "
        "default: keep every release")


class CatalogSpec(Model):
    """The catalog index (the experience plane); QUANTA_CATALOG_URL overrides it."""

    url: str | None = Field(None, description="SQLAlchemy URL; default SQLite in storage root")


class GovernanceSpec(Model):
    """Global policies and standards of the federation, as folders of code, and settings.

    ``severity`` and ``scope`` are keyed by standard code (``owner-required``); codes that
    name no standard are reported by ``quanta.governance``, which knows the loaded standards.
    """

    STANDARD_CODE: ClassVar[re.Pattern[str]] = re.compile(r"^[a-z][a-z0-9]*(-[a-z0-9]+)*$")

    policies: list[str] = Field(default_factory=list)
    erasure: list[Annotated[str, Field(pattern=r"^(group:[A-Za-z0-9_.@-]+|[A-Za-z0-9_.@:-]+)$")]
                  ] = Field(default_factory=list,
                            description="who may erase subjects through the HTTP control port "
                            "(principals or group:<name>); the CLI's operator always may")
    standards: list[str] = Field(
        default_factory=list,
        description="folders of custom standards (Python files), relative to mesh.yaml",
    )
    severity: dict[str, Literal["error", "warn", "info", "off"]] = Field(
        default_factory=dict,
        description="a standard's severity in this mesh, or off to switch it off",
        json_schema_extra={"propertyNames": {"pattern": STANDARD_CODE.pattern}},
    )
    scope: dict[str, Annotated[list[Identifier], Field(min_length=1)]] = Field(
        default_factory=dict,
        description="the only domains a standard applies to (default: every domain)",
        json_schema_extra={"propertyNames": {"pattern": STANDARD_CODE.pattern}},
    )

    @field_validator("severity", "scope")
    @classmethod
    def _standard_codes(cls, value: dict[str, Any]) -> dict[str, Any]:
        for code in value:
            if not cls.STANDARD_CODE.match(code):
                raise ValueError(
                    f"{code!r} is not a standard code; codes are kebab-case, e.g. owner-required"
                )
        return value


class LimitsSpec(Model):
    """Resource limits of one query."""

    timeout: Duration | None = None
    max_rows: int | None = Field(None, ge=1)
    max_bytes: int | None = Field(None, ge=1)
    memory_limit: str | None = Field(None, pattern=r"^\d+(\.\d+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$")

    _timeout = field_validator("timeout")(_check_duration)


class ServingSpec(Model):
    """How the mesh's sidecar serves reads."""

    operator: str = Field("operator", description="the local principal of CLI and SDK reads")
    limits: LimitsSpec = Field(default_factory=lambda: LimitsSpec(
        timeout="60s", max_rows=50_000_000, memory_limit="4GB"))
    principal_limits: dict[str, LimitsSpec] = Field(
        default_factory=dict, description="limits for one principal or group:<name>")


class MeshSpec(Model):
    """``mesh.yaml``: one mesh, its storage, and where its products live."""

    api_version: Literal["quanta/v1"] = Field("quanta/v1", alias="apiVersion")
    name: Identifier
    description: str = ""
    storage: StorageSpec = Field(default_factory=StorageSpec)
    catalog: CatalogSpec = Field(default_factory=CatalogSpec)
    products: list[str] = Field(
        default_factory=lambda: ["domains/*/*/dataproduct.yaml"],
        description="glob patterns, relative to mesh.yaml, of product spec files",
    )
    governance: GovernanceSpec = Field(default_factory=GovernanceSpec)
    serving: ServingSpec = Field(default_factory=ServingSpec)
    engine: Literal["duckdb"] = "duckdb"
    external: list[str] = Field(
        default_factory=list,
        description="addresses of products served by other units (found through the "
        "catalog) that products of this mesh read; written by 'quanta package'")

    def release_history(self, product: ProductSpec) -> ReleaseHistory:
        """The release history rule of ``product``: its own (never merged), else the
        mesh's default, else keep every release."""
        if product.history is not None:
            return product.history
        return self.storage.history or ReleaseHistory()


# --- dataproduct.yaml: owner, inputs, transform ------------------------------------------------


class Owner(Model):
    """The team accountable for a product, and how to reach it."""

    team: Identifier
    email: str | None = None
    name: str | None = None


class FileInput(Model):
    """A file (or glob of files) in csv, parquet, json or ndjson format."""

    type: Literal["file"]
    name: Identifier
    path: str = Field(description="path or glob, relative to dataproduct.yaml")
    format: Literal["csv", "parquet", "json", "ndjson"] | None = Field(
        None, description="default: from the file extension"
    )
    delimiter: str | None = None
    header: bool = True
    description: str = ""


class SqliteInput(Model):
    """A table of an operational SQLite database."""

    type: Literal["sqlite"]
    name: Identifier
    path: str = Field(description="database file, relative to dataproduct.yaml")
    table: str
    description: str = ""


class PostgresInput(Model):
    """A table of an operational PostgreSQL database; the URL comes from the environment."""

    type: Literal["postgres"]
    name: Identifier
    url_env: str = Field(description="name of the environment variable holding the URL")
    table: str = Field(description="table name, optionally schema-qualified")
    description: str = ""

    @field_validator("url_env")
    @classmethod
    def _env_name(cls, value: str) -> str:
        if not re.match(r"^[A-Za-z_][A-Za-z0-9_]*$", value):
            raise ValueError(
                "url_env names an environment variable (e.g. SUBSCRIPTIONS_DB_URL), "
                "never the URL itself"
            )
        return value


class ProductInput(Model):
    """Another product's output port, at its latest release or a pinned one."""

    type: Literal["product"]
    name: Identifier
    product: str = Field(description="address, e.g. quanta://listening/play_events/plays")
    release: int | None = Field(None, ge=1, description="pin a release; default latest")
    description: str = ""


InputPort = Annotated[
    FileInput | SqliteInput | PostgresInput | ProductInput, Field(discriminator="type")
]


class SqlTransform(Model):
    """A DuckDB SQL query; declared inputs are visible as tables by their names."""

    type: Literal["sql"]
    file: str | None = None
    sql: str | None = None
    port: Identifier | None = Field(None, description="output port it fills; default the first")

    @model_validator(mode="after")
    def _one_source(self) -> SqlTransform:
        if (self.file is None) == (self.sql is None):
            raise ValueError("give exactly one of 'file' (a .sql file) or 'sql' (inline query)")
        return self


class PythonTransform(Model):
    """A Python function ``transform(inputs) -> {port: Arrow table or DuckDB relation}``."""

    type: Literal["python"]
    file: str
    function: str = "transform"


Transform = Annotated[SqlTransform | PythonTransform, Field(discriminator="type")]


class IncrementalSpec(Model):
    """Build from the new rows of one input only: append what they give, or merge it by the
    output ports' primary keys. ``quanta build --full`` rebuilds from every row."""

    strategy: Literal["append", "merge"] = Field(
        description="append: add the new rows' output; merge: also replace rows whose primary "
        "key reappears")
    input: Identifier = Field(description="the declared input read incrementally")
    watermark: str = Field(
        min_length=1, description="a column of that input that grows with new rows (an event "
        "time or an id); a build reads the rows above the highest value the last one read")


# --- output ports ------------------------------------------------------------------------------


class FieldSpec(Model):
    """One column of an output port, with its meaning."""

    name: Identifier
    type: str = Field(description=f"one of {', '.join(SCALAR_TYPES)} or decimal(P,S)")
    description: str = ""
    classification: Classification = "internal"
    polyseme: Identifier | None = Field(
        None, description="a concept shared across products, e.g. listener_id"
    )
    nullable: bool = True
    unit: str | None = None

    @field_validator("type")
    @classmethod
    def _known_type(cls, value: str) -> str:
        if value.startswith("decimal(") and not value.endswith(")"):
            raise ValueError(
                f"type {value!r} is cut at a comma; in {{...}} flow style quote it: "
                "type: 'decimal(10,2)'"
            )
        if value not in SCALAR_TYPES and not DECIMAL.match(value):
            raise ValueError(
                f"unknown type {value!r}; use one of {', '.join(SCALAR_TYPES)} or decimal(P,S)"
            )
        return value


class OutputPort(Model):
    """A named table the product serves, stored as one Delta table."""

    name: Identifier
    description: str = ""
    event_time: Identifier | None = Field(None, description="the business-time column")
    primary_key: list[Identifier] = Field(default_factory=list)
    fields: list[FieldSpec] = Field(min_length=1)

    def field(self, name: str) -> FieldSpec | None:
        """The field called ``name``, if any."""
        return next((f for f in self.fields if f.name == name), None)


# --- quality checks ----------------------------------------------------------------------------


class CheckBase(Model):
    """What every quality check shares."""

    port: Identifier | None = Field(None, description="output port; default the first")
    severity: Severity = "error"
    name: str | None = None
    description: str = ""

    def named_columns(self) -> list[str]:
        """Every column the check names (``columns`` and ``column``)."""
        columns = list(getattr(self, "columns", None) or [])
        column = getattr(self, "column", None)
        if column:
            columns.append(column)
        return columns


class NotNullCheck(CheckBase):
    check: Literal["not_null"]
    columns: list[Identifier] = Field(min_length=1)


class UniqueCheck(CheckBase):
    check: Literal["unique"]
    columns: list[Identifier] = Field(min_length=1)


class AcceptedValuesCheck(CheckBase):
    check: Literal["accepted_values"]
    column: Identifier
    values: list[str | int | float | bool] = Field(min_length=1)


class RangeCheck(CheckBase):
    check: Literal["range"]
    column: Identifier
    min: int | float | None = None
    max: int | float | None = None

    @model_validator(mode="after")
    def _bounded(self) -> RangeCheck:
        if self.min is None and self.max is None:
            raise ValueError("a range check needs 'min', 'max' or both")
        return self


class RegexCheck(CheckBase):
    check: Literal["regex"]
    column: Identifier
    pattern: str

    @field_validator("pattern")
    @classmethod
    def _compiles(cls, value: str) -> str:
        try:
            re.compile(value)
        except re.error as exc:
            raise ValueError(f"pattern does not compile: {exc}") from None
        return value


class RowCountCheck(CheckBase):
    check: Literal["row_count"]
    min: int | None = Field(None, ge=0)
    max: int | None = Field(None, ge=0)


class FreshnessCheck(CheckBase):
    check: Literal["freshness"]
    column: Identifier | None = Field(None, description="default: the port's event_time")
    max_age: Duration

    _duration = field_validator("max_age")(_check_duration)


class ReferentialCheck(CheckBase):
    check: Literal["referential"]
    column: Identifier
    input: Identifier = Field(description="a declared input holding the referenced values")
    to_column: Identifier


class SqlCheck(CheckBase):
    check: Literal["sql"]
    sql: str = Field(description="a query returning the offending rows; the port is `this`")


QualityCheck = Annotated[
    NotNullCheck | UniqueCheck | AcceptedValuesCheck | RangeCheck | RegexCheck | RowCountCheck
    | FreshnessCheck | ReferentialCheck | SqlCheck,
    Field(discriminator="check"),
]


# --- SLOs, triggers, policies ------------------------------------------------------------------


class Slos(Model):
    """Service level objectives the product promises its consumers."""

    freshness: Duration | None = None
    interval_of_change: Duration | None = None
    timeliness: Duration | None = None
    completeness: float | None = Field(None, ge=0, le=1)
    availability: float | None = Field(None, ge=0, le=1)
    check_pass_rate: float | None = Field(None, ge=0, le=1)

    _durations = field_validator("freshness", "interval_of_change", "timeliness")(
        _check_duration
    )


class Trigger(Model):
    """When the product rebuilds: ``every: 15m``, ``on: upstream``, ``on: source-change``."""

    every: Duration | None = None
    on: Literal["upstream", "source-change", "manual"] | None = None
    inputs: list[Identifier] | None = None

    _duration = field_validator("every")(_check_duration)

    @model_validator(mode="after")
    def _one_kind(self) -> Trigger:
        if (self.every is None) == (self.on is None):
            raise ValueError("a trigger has exactly one of 'every: <duration>' or 'on: <event>'")
        return self


class RuntimeSpec(Model):
    """How the product's builds run under ``quanta run``: limits and retries."""

    timeout: Duration = Field("1h", description="a build running longer is stopped")
    memory: str | None = Field(
        None, pattern=r"^[0-9]+(\.[0-9]+)?\s*(KB|MB|GB|TB|KiB|MiB|GiB|TiB)$",
        description="most memory a build may use, e.g. 2GB; default: no limit")
    retries: int = Field(3, ge=0, le=20,
                         description="retries after a transient failure (source unreachable)")
    retry_delay: Duration = Field("10s", description="first retry delay, doubled each time")

    _durations = field_validator("timeout", "retry_delay")(_check_duration)


Subject = Annotated[str, Field(
    pattern=r"^(\*|group:[A-Za-z0-9_.@-]+|[A-Za-z0-9_.@:-]+)$",
    description="a principal, group:<name>, or * for every authenticated principal",
)]
MaskMethod = Literal["null", "hash", "redact", "truncate_year", "last4"]


class GrantPolicy(Model):
    """Who may read which ports, for which purposes."""

    type: Literal["grant"]
    to: list[Subject] = Field(min_length=1, description="principals, group:<name>, or *")
    ports: list[Identifier] | None = Field(None, description="default: every port")
    purposes: list[str] | None = Field(None, description="default: any purpose")


class MaskPolicy(Model):
    """Replace the values of columns (named, or by classification) for some readers."""

    type: Literal["mask"]
    columns: list[Identifier] | None = None
    classification: Classification | None = None
    method: MaskMethod = "redact"
    ports: list[Identifier] | None = Field(None, description="default: every port")
    to: list[Subject] | None = Field(None, description="who sees the mask; default everyone")
    unless: list[Subject] = Field(default_factory=list, description="who sees clear values")
    purposes: list[str] | None = Field(None, description="clear values for these purposes")

    @model_validator(mode="after")
    def _selects_columns(self) -> MaskPolicy:
        if (self.columns is None) == (self.classification is None):
            raise ValueError("a mask names 'columns' or a 'classification', not both")
        return self


class RowFilterPolicy(Model):
    """Show some readers only the rows matching a SQL condition."""

    type: Literal["row_filter"]
    where: str = Field(description="a SQL boolean expression over the port's columns")
    ports: list[Identifier] | None = Field(None, description="default: every port")
    to: list[Subject] | None = Field(None, description="who is filtered; default everyone")
    unless: list[Subject] = Field(default_factory=list, description="who sees every row")


class ConsentPolicy(Model):
    """For some purposes, only rows of subjects who consented, as a consent product says."""

    type: Literal["consent"]
    purposes: list[str] = Field(min_length=1, description="the purposes that need consent")
    column: Identifier = Field(description="the port's column naming the subject")
    source: str = Field(description="the port holding consent, e.g. "
                        "quanta://subscriptions/accounts")
    source_column: Identifier | None = Field(
        None, description="the source's column naming the subject; default: column")
    consented: Identifier = Field(
        description="the source's boolean column: true when the subject consented")
    ports: list[Identifier] | None = Field(None, description="default: every port")
    unless: list[Subject] = Field(default_factory=list,
                                  description="who sees every row whatever the consent")


Policy = Annotated[GrantPolicy | MaskPolicy | RowFilterPolicy | ConsentPolicy,
                   Field(discriminator="type")]


class ProductSpec(Model):
    """``dataproduct.yaml``: everything a data product declares about itself."""

    api_version: Literal["quanta/v1"] = Field("quanta/v1", alias="apiVersion")
    name: Identifier
    domain: Identifier
    kind: Kind
    version: str = Field(description="semantic version of the product's interface",
                         json_schema_extra={"pattern": SEMVER.pattern})
    owner: Owner
    description: str = Field(min_length=1)
    tags: list[str] = Field(default_factory=list)
    inputs: list[InputPort] = Field(default_factory=list)
    transform: Transform
    incremental: IncrementalSpec | None = Field(
        None, description="read only new rows of one input (see Incremental builds)")
    outputs: list[OutputPort] = Field(min_length=1)
    quality: list[QualityCheck] = Field(default_factory=list)
    slos: Slos = Field(default_factory=Slos)
    retention: Duration | None = None
    history: ReleaseHistory | None = Field(
        None, description="which old releases stay readable (as_of); default: mesh.yaml's "
        "storage.history, else every release")
    region: Identifier | None = Field(
        None, description="keep this product's data under the storage folder mesh.yaml names "
        "for this region (storage.regions)")
    triggers: list[Trigger] = Field(default_factory=list)
    runtime: RuntimeSpec = Field(default_factory=RuntimeSpec)
    policies: list[Policy] = Field(default_factory=list)

    _retention = field_validator("retention")(_check_duration)

    @field_validator("version")
    @classmethod
    def _semver(cls, value: str) -> str:
        if not SEMVER.match(value):
            raise ValueError(
                f"{value!r} is not a semantic version; write MAJOR.MINOR.PATCH, e.g. 1.0.0 or "
                "2.1.0-rc.1"
            )
        return value

    @property
    def key(self) -> str:
        """``domain.name``, the product's identity in its mesh."""
        return f"{self.domain}.{self.name}"

    def port(self, name: str | None = None) -> OutputPort | None:
        """The output port called ``name``; the first port when ``name`` is None."""
        if name is None:
            return self.outputs[0]
        return next((p for p in self.outputs if p.name == name), None)

    def hash_masked(self, port: OutputPort) -> list[str]:
        """Columns of ``port`` that some mask policy pseudonymizes with a keyed hash."""
        names = []
        for policy in self.policies:
            if not isinstance(policy, MaskPolicy) or policy.method != "hash":
                continue
            if policy.ports is not None and port.name not in policy.ports:
                continue
            names += [f.name for f in port.fields if f.name in (policy.columns or [])
                      or f.classification == policy.classification]
        return list(dict.fromkeys(names))

    def input(self, name: str) -> Any:
        """The declared input called ``name``, if any."""
        return next((i for i in self.inputs if i.name == name), None)
