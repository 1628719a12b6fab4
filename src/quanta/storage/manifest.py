"""Release manifests and run records: the durable facts of a product's history."""

from __future__ import annotations

from datetime import datetime
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field


class Record(BaseModel):
    """Base of stored records: frozen, unknown keys kept out."""

    model_config = ConfigDict(extra="forbid", frozen=True)


class DataFile(Record):
    """One Parquet file of a port at a release, with its digest."""

    path: str
    size: int
    sha256: str


class FieldContract(Record):
    """What a consumer relies on of one field: its name, type and meaning."""

    name: str
    type: str
    classification: str
    polyseme: str | None = None
    nullable: bool = True


class PortContract(Record):
    """The interface of one port at a release, to compare the next release's with."""

    fields: list[FieldContract]
    primary_key: list[str] = Field(default_factory=list)


class PortRelease(Record):
    """Where one output port of a release lives."""

    delta_version: int
    schema_hash: str
    rows: int
    files: list[DataFile]
    pseudonyms: dict[str, str] = Field(
        default_factory=dict, description="column → stored column holding its keyed hash")
    key_id: str | None = Field(None, description="the mask key the pseudonyms were made with")
    contract: PortContract | None = Field(
        None, description="the port's declared interface (releases before it was kept: none)")


class CheckResult(Record):
    """Outcome of one quality check on one release candidate."""

    name: str
    check: str
    port: str
    severity: Literal["error", "warn"]
    passed: bool
    failing_rows: int = 0
    total_rows: int = 0
    message: str = ""
    sample: list[dict[str, Any]] = Field(default_factory=list)
    dimension: str | None = Field(None, description="the quality metric it informs")


class InputRead(Record):
    """What one input was when the build read it."""

    type: str
    product: str | None = None
    release: int | None = None
    rows: int | None = None
    fingerprint: str | None = None
    after: str | None = Field(
        None, description="incremental build: only rows whose watermark is above this were read")


class Watermark(Record):
    """How far an incremental product has read one input: the highest watermark value."""

    column: str
    type: str = Field(description="the column's engine type: values compare as this type")
    value: str | None = Field(description="the highest value read, as text (None: no rows)")
    after: str | None = Field(
        None, description="this build read only rows above this value (None: every row)")
    strategy: Literal["append", "merge"]
    transform: str = Field(description="digest of the transform and inputs the rows were made "
                           "with; an incremental build needs the same")
    checks: str = Field(description="digest of the quality checks the release passed")


class Release(Record):
    """An immutable product version: one Delta version per port, and how it came to be."""

    product: str
    release: int
    interface_version: str
    committed_at: datetime
    recorded_at: datetime
    run_id: str
    ports: dict[str, PortRelease]
    inputs: dict[str, InputRead] = Field(default_factory=dict)
    checks: list[CheckResult] = Field(default_factory=list)
    metrics: dict[str, float] = Field(default_factory=dict)
    profile: dict[str, dict[str, dict[str, Any]]] = Field(default_factory=dict)
    erasures: list[str] = Field(default_factory=list,
                                description="ids of erasures that removed rows from it")
    retention_cutoff: datetime | None = Field(
        None, description="rows whose event time is before this were left out or removed")
    retentions: list[str] = Field(default_factory=list,
                                  description="ids of retention runs that removed rows from it")
    watermarks: dict[str, Watermark] = Field(
        default_factory=dict, description="incremental products: per input, how far it was read")
    definition: str | None = Field(
        None, description="digest of the product's spec and code this release was built from")

    @property
    def rows(self) -> int:
        return sum(p.rows for p in self.ports.values())


class RunRecord(Record):
    """One build attempt of one product, successful or not."""

    run_id: str
    product: str
    started_at: datetime
    ended_at: datetime
    outcome: Literal["released", "failed", "unchanged"]
    release: int | None = None
    rows: dict[str, int] = Field(default_factory=dict)
    inputs: dict[str, InputRead] = Field(default_factory=dict)
    error: dict[str, Any] | None = None
    warnings: list[str] = Field(default_factory=list)
    stages: dict[str, float] = Field(default_factory=dict, description="seconds per stage")

    @property
    def seconds(self) -> float:
        return (self.ended_at - self.started_at).total_seconds()
