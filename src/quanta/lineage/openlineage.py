"""OpenLineage events of builds: a run START and a COMPLETE or FAIL per build attempt.

Events go through the ``openlineage-python`` client: always to a file transport (one
NDJSON file per run under ``<storage root>/lineage/``), and to an HTTP endpoint too when
``QUANTA_OPENLINEAGE_URL`` is set (``QUANTA_OPENLINEAGE_ENDPOINT``, default
``api/v1/lineage``; ``QUANTA_OPENLINEAGE_API_KEY`` for a Bearer key). Names: the job is
``<domain>.<product>`` and each port the dataset ``<domain>.<product>.<port>``, both in the
namespace named like the mesh; the run id is a UUID derived from quanta's run id.

Emission never fails a build: every problem (a transport that is down, a lineage file that
does not parse) is returned as a warning for the run record and logged.
"""

from __future__ import annotations

import logging
import os
import uuid
from dataclasses import dataclass, field
from datetime import datetime
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import attr
from openlineage.client import OpenLineageClient
from openlineage.client.event_v2 import InputDataset, Job, OutputDataset, Run, RunEvent, RunState
from openlineage.client.facet_v2 import (
    DatasetFacet,
    column_lineage_dataset,
    data_quality_assertions_dataset,
    data_quality_metrics_dataset,
    dataset_version_dataset,
    documentation_dataset,
    documentation_job,
    error_message_run,
    input_statistics_input_dataset,
    job_type_job,
    output_statistics_output_dataset,
    ownership_job,
    processing_engine_run,
    schema_dataset,
    sql_job,
    tags_run,
)
from openlineage.client.serde import Serde
from openlineage.client.transport.file import FileConfig, FileTransport
from openlineage.client.transport.http import HttpConfig, HttpTransport

from quanta.address import Address
from quanta.errors import QuantaError
from quanta.lineage.columns import ColumnSource, PortColumns
from quanta.lineage.mesh import input_columns
from quanta.lineage.ports import product_lineage
from quanta.spec.mesh import Mesh, Product
from quanta.spec.models import (
    FileInput,
    OutputPort,
    PostgresInput,
    ProductInput,
    SqliteInput,
    SqlTransform,
)
from quanta.storage import CheckResult, InputRead, Release

LINEAGE_FOLDER = "lineage"
URL_ENV = "QUANTA_OPENLINEAGE_URL"
ENDPOINT_ENV = "QUANTA_OPENLINEAGE_ENDPOINT"
API_KEY_ENV = "QUANTA_OPENLINEAGE_API_KEY"
HTTP_TIMEOUT = 5.0
log = logging.getLogger("quanta.lineage")


def _quanta_version() -> str:
    try:
        return version("quanta")
    except PackageNotFoundError:
        return "0"


QUANTA_VERSION = _quanta_version()
PRODUCER = f"urn:quanta:{QUANTA_VERSION}"
QUALITY_FACET_SCHEMA = "urn:quanta:facets:QualityDimensionsDatasetFacet:1-0-0"


@attr.define
class QualityDimensionsFacet(DatasetFacet):
    """quanta's quality metrics of a release: share of rows passing, per dimension."""

    metrics: dict[str, float] = attr.field(factory=dict)
    release: int | None = attr.field(default=None)

    @staticmethod
    def _get_schema() -> str:
        return QUALITY_FACET_SCHEMA


def run_uuid(mesh_name: str, run_id: str) -> str:
    """The OpenLineage run id of quanta run ``run_id``: the same UUID for every event."""
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"quanta:{mesh_name}:{run_id}"))


@dataclass
class BuildFacts:
    """What a build knows when it ends: what it read, checked and released, or its error."""

    release: Release | None = None
    inputs: dict[str, InputRead] = field(default_factory=dict)
    checks: list[CheckResult] = field(default_factory=list)
    error: QuantaError | None = None


class EventBuilder:
    """Makes the START and COMPLETE/FAIL events of one mesh's builds."""

    def __init__(self, mesh: Mesh) -> None:
        self.mesh = mesh
        self.namespace = mesh.spec.name
        self.problems: list[str] = []

    def event(self, state: RunState, product: Product, run_id: str, when: datetime,
              facts: BuildFacts | None = None) -> RunEvent:
        """One run event of ``product``; problems met on the way are in ``self.problems``."""
        facts = facts or BuildFacts()
        lineage = self._lineage(product)
        return RunEvent(
            eventType=state, eventTime=when.isoformat(), producer=PRODUCER,
            run=Run(runId=run_uuid(self.namespace, run_id),
                    facets=self._run_facets(run_id, facts)),
            job=Job(namespace=self.namespace, name=product.key,
                    facets=self._job_facets(product)),
            inputs=[self._input(product, item.name, facts) for item in product.spec.inputs],
            outputs=[self._output(product, port.name, lineage.get(port.name), facts)
                     for port in product.spec.outputs],
        )

    def dataset(self, product: Product, input_name: str) -> tuple[str, str]:
        """(namespace, name) of one input of ``product``, following OpenLineage's naming."""
        item = product.spec.input(input_name)
        if isinstance(item, ProductInput):
            address = _address(item.product)
            upstream = self.mesh.products.get(address[0])
            port = address[1] or (upstream.spec.outputs[0].name if upstream else "?")
            return self.namespace, f"{address[0]}.{port}"
        if isinstance(item, FileInput):
            return "file", os.path.normpath(product.folder / item.path)
        if isinstance(item, SqliteInput):
            return f"sqlite://{os.path.normpath(product.folder / item.path)}", item.table
        if isinstance(item, PostgresInput):
            return _postgres(item)
        return self.namespace, input_name

    # --- parts ---------------------------------------------------------------------------

    def _lineage(self, product: Product) -> dict[str, PortColumns]:
        try:
            return product_lineage(product, input_columns(self.mesh, product))
        except QuantaError as exc:
            self.problems.append(f"column lineage of {product.key}: {exc.render()}")
            return {}

    def _run_facets(self, run_id: str, facts: BuildFacts) -> dict[str, Any]:
        tags = [tags_run.TagsRunFacetFields("quanta.run_id", run_id, "QUANTA")]
        if facts.release is not None:
            tags.append(tags_run.TagsRunFacetFields(
                "quanta.release", str(facts.release.release), "QUANTA"))
        facets: dict[str, Any] = {
            "processing_engine": processing_engine_run.ProcessingEngineRunFacet(
                version=QUANTA_VERSION, name="quanta",
                openlineageAdapterVersion=QUANTA_VERSION, producer=PRODUCER),
            "tags": tags_run.TagsRunFacet(tags=tags, producer=PRODUCER),
        }
        if facts.error is not None:
            # the code, not the message: a message may quote rows (a value that does not
            # convert), and erasure scrubs run records, not these events
            facets["errorMessage"] = error_message_run.ErrorMessageRunFacet(
                message=f"{facts.error.code}: the build failed; its run record "
                f"(quanta runs, run {run_id}) says why", programmingLanguage="python",
                producer=PRODUCER)
        return facets

    def _job_facets(self, product: Product) -> dict[str, Any]:
        spec = product.spec
        facets: dict[str, Any] = {
            "jobType": job_type_job.JobTypeJobFacet(
                processingType="BATCH", integration="QUANTA", jobType="DATA_PRODUCT",
                producer=PRODUCER),
            "documentation": documentation_job.DocumentationJobFacet(
                description=spec.description, producer=PRODUCER),
            "ownership": ownership_job.OwnershipJobFacet(
                owners=[ownership_job.Owner(name=f"team:{spec.owner.team}", type="MAINTAINER")],
                producer=PRODUCER),
        }
        if isinstance(spec.transform, SqlTransform):
            try:
                query = (product.folder / spec.transform.file).read_text(encoding="utf-8") \
                    if spec.transform.file else spec.transform.sql or ""
                facets["sql"] = sql_job.SQLJobFacet(query=query, dialect="duckdb",
                                                    producer=PRODUCER)
            except OSError as exc:
                self.problems.append(f"transform SQL of {product.key}: {exc}")
        return facets

    def _input(self, product: Product, name: str, facts: BuildFacts) -> InputDataset:
        namespace, dataset = self.dataset(product, name)
        facets: dict[str, Any] = {}
        item = product.spec.input(name)
        if isinstance(item, ProductInput):
            key, port_name = _address(item.product)
            upstream = self.mesh.products.get(key)
            port = upstream.spec.port(port_name) if upstream else None
            if port is not None:
                facets["schema"] = _schema(port.fields)
        read = facts.inputs.get(name)
        # the release of a product read, else the fingerprint of the files or table read
        seen = None if read is None else (read.release or read.fingerprint)
        if seen is not None:
            facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=str(seen), producer=PRODUCER)
        input_facets: dict[str, Any] = {}
        if read is not None and read.rows is not None:
            input_facets["inputStatistics"] = \
                input_statistics_input_dataset.InputStatisticsInputDatasetFacet(
                    rowCount=read.rows, producer=PRODUCER)
        return InputDataset(namespace=namespace, name=dataset, facets=facets,
                            inputFacets=input_facets)

    def _output(self, product: Product, port_name: str, lineage: PortColumns | None,
                facts: BuildFacts) -> OutputDataset:
        port = product.spec.port(port_name)
        assert port is not None
        facets: dict[str, Any] = {"schema": _schema(port.fields)}
        if port.description:
            facets["documentation"] = documentation_dataset.DocumentationDatasetFacet(
                description=port.description, producer=PRODUCER)
        if lineage is not None and lineage.method != "unknown":
            facets["columnLineage"] = self._column_lineage(product, lineage)
        assertions = [
            data_quality_assertions_dataset.Assertion(
                assertion=c.check, success=c.passed, severity=c.severity, name=c.name,
                description=c.message or None, column=_check_column(product, c))
            for c in facts.checks if c.port == port_name]
        if assertions:
            facets["dataQualityAssertions"] = \
                data_quality_assertions_dataset.DataQualityAssertionsDatasetFacet(
                    assertions=assertions, producer=PRODUCER)
        output_facets: dict[str, Any] = {}
        release = facts.release
        stored = release.ports.get(port_name) if release else None
        if release is not None and stored is not None:
            facets["version"] = dataset_version_dataset.DatasetVersionDatasetFacet(
                datasetVersion=str(release.release), producer=PRODUCER)
            facets["dataQualityMetrics"] = _metrics(release, port)
            facets["quanta_quality"] = QualityDimensionsFacet(
                metrics=dict(release.metrics), release=release.release, producer=PRODUCER)
            output_facets["outputStatistics"] = \
                output_statistics_output_dataset.OutputStatisticsOutputDatasetFacet(
                    rowCount=stored.rows, size=sum(f.size for f in stored.files),
                    fileCount=len(stored.files), producer=PRODUCER)
        return OutputDataset(namespace=self.namespace, name=f"{product.key}.{port_name}",
                             facets=facets, outputFacets=output_facets)

    def _column_lineage(self, product: Product, lineage: PortColumns
                        ) -> column_lineage_dataset.ColumnLineageDatasetFacet:
        def input_fields(sources: tuple[ColumnSource, ...], kind: str
                         ) -> list[column_lineage_dataset.InputField]:
            # one entry per input column, with every way it is used
            grouped: dict[tuple[str, str], list[str]] = {}
            for source in sources:
                if source.column is not None:  # a whole input has no field to name
                    grouped.setdefault((source.input, source.column), []).append(
                        source.subtype.upper())
            found = []
            for (name, column), subtypes in grouped.items():
                namespace, dataset = self.dataset(product, name)
                found.append(column_lineage_dataset.InputField(
                    namespace=namespace, name=dataset, field=column,
                    transformations=[column_lineage_dataset.Transformation(type=kind, subtype=s)
                                     for s in subtypes]))
            return found

        fields = {}
        for column, sources in lineage.columns.items():
            direct = input_fields(sources, "DIRECT")
            if direct:
                fields[column] = column_lineage_dataset.Fields(inputFields=direct)
        return column_lineage_dataset.ColumnLineageDatasetFacet(
            fields=fields, dataset=input_fields(lineage.dataset, "INDIRECT"), producer=PRODUCER)


class OpenLineageEmitter:
    """Sends build events through the OpenLineage client; never raises."""

    def __init__(self, mesh: Mesh, url: str | None = None, folder: Path | None = None) -> None:
        self.mesh = mesh
        self.url = url if url is not None else os.environ.get(URL_ENV) or None
        self.folder = folder or mesh.storage_root / LINEAGE_FOLDER
        self._http: OpenLineageClient | None = None

    def start(self, product: Product, run_id: str, when: datetime) -> list[str]:
        """Emit the run's START event; return the problems met (for the run record)."""
        return self._send(RunState.START, product, run_id, when, None)

    def finish(self, product: Product, run_id: str, when: datetime, facts: BuildFacts
               ) -> list[str]:
        """Emit COMPLETE (a release was made) or FAIL; return the problems met."""
        state = RunState.COMPLETE if facts.release is not None else RunState.FAIL
        return self._send(state, product, run_id, when, facts)

    def _send(self, state: RunState, product: Product, run_id: str, when: datetime,
              facts: BuildFacts | None) -> list[str]:
        problems: list[str] = []
        try:
            builder = EventBuilder(self.mesh)
            event = builder.event(state, product, run_id, when, facts)
            problems += builder.problems
        except Exception as exc:  # a bug here must not cost the build: send what is sure
            problems.append(f"OpenLineage event of {product.key}: {type(exc).__name__}: {exc}")
            event = RunEvent(eventType=state, eventTime=when.isoformat(), producer=PRODUCER,
                             run=Run(runId=run_uuid(self.mesh.spec.name, run_id)),
                             job=Job(namespace=self.mesh.spec.name, name=product.key))
        for label, client in self._clients(run_id, problems):
            try:
                client.emit(event)
            except Exception as exc:
                problems.append(f"OpenLineage {label} transport failed: "
                                f"{type(exc).__name__}: {str(exc)[:300]}")
        for problem in problems:
            log.warning("%s", problem)
        return problems

    def _clients(self, run_id: str, problems: list[str]) -> list[tuple[str, OpenLineageClient]]:
        clients: list[tuple[str, OpenLineageClient]] = []
        try:
            self.folder.mkdir(parents=True, exist_ok=True)
            path = self.folder / f"{run_id}.ndjson"
            file = FileTransport(FileConfig(log_file_path=str(path), append=True))
            clients.append(("file", OpenLineageClient(transport=file)))
        except Exception as exc:
            problems.append(f"OpenLineage file transport failed: {type(exc).__name__}: {exc}")
        if self.url:
            try:
                if self._http is None:
                    self._http = OpenLineageClient(transport=HttpTransport(_http_config(
                        self.url)))
                clients.append(("http", self._http))
            except Exception as exc:
                problems.append(f"OpenLineage http transport failed: {type(exc).__name__}: "
                                f"{exc}")
        return clients


def event_json(event: RunEvent) -> dict[str, Any]:
    """An event as the transports send it (nulls dropped)."""
    return Serde.to_dict(event)


def _http_config(url: str) -> HttpConfig:
    params: dict[str, Any] = {
        "url": url, "endpoint": os.environ.get(ENDPOINT_ENV, "api/v1/lineage"),
        "timeout": HTTP_TIMEOUT,
        "retry": {"total": 2, "connect": 2, "read": 2, "backoff_factor": 0.2},
    }
    key = os.environ.get(API_KEY_ENV)
    if key:
        params["auth"] = {"type": "api_key", "apiKey": key}
    return HttpConfig.from_dict(params)


def _address(text: str) -> tuple[str, str | None]:
    address = Address.parse(text)
    return address.product_key, address.port


def _postgres(item: PostgresInput) -> tuple[str, str]:
    """postgres://host:port and database.schema.table; never the credentials."""
    table = item.table if "." in item.table else f"public.{item.table}"
    url = os.environ.get(item.url_env)
    if url:
        try:
            parts = urlsplit(url)
            host = f"{parts.hostname or 'localhost'}:{parts.port or 5432}"
            database = parts.path.lstrip("/") or "postgres"
            return f"postgres://{host}", f"{database}.{table}"
        except ValueError:
            pass
    return "postgres", f"${item.url_env}.{table}"


def _schema(fields: list[Any]) -> schema_dataset.SchemaDatasetFacet:
    return schema_dataset.SchemaDatasetFacet(
        fields=[schema_dataset.SchemaDatasetFacetFields(
            name=f.name, type=f.type, description=f.description or None, ordinal_position=n)
            for n, f in enumerate(fields, start=1)],
        producer=PRODUCER)


def _check_column(product: Product, check: CheckResult) -> str | None:
    """The one column a check result is about, if it names exactly one."""
    for spec in product.spec.quality:
        columns = spec.named_columns()
        if (spec.name or "_".join([spec.check, *columns])) == check.name:
            return columns[0] if len(columns) == 1 else None
    return None


def _metrics(release: Release, port: OutputPort
             ) -> data_quality_metrics_dataset.DataQualityMetricsDatasetFacet:
    """Rows, files and column metrics of a released port, from the release's profile."""
    stored = release.ports[port.name]
    profile = release.profile.get(port.name, {})
    columns = {}
    for spec in port.fields:
        stats = profile.get(spec.name)
        if stats is None:
            continue
        share = stats.get("null_share")
        nulls = round(share * stored.rows) if isinstance(share, int | float) else None
        # no values of personal or restricted columns: erasure does not reach these events
        personal = spec.classification in ("pii", "restricted")
        numeric = {} if personal else {
            k: v for k in ("min", "max") if (v := _number(stats.get(k), spec.type)) is not None}
        quantiles = {} if personal else stats.get("quantiles") or {}
        columns[spec.name] = data_quality_metrics_dataset.ColumnMetrics(
            nullCount=nulls, distinctCount=stats.get("distinct"),
            count=float(stored.rows - nulls) if nulls is not None else None,
            min=numeric.get("min"), max=numeric.get("max"),
            quantiles={str(q): float(v) for q, v in quantiles.items()})
    return data_quality_metrics_dataset.DataQualityMetricsDatasetFacet(
        columnMetrics=columns, rowCount=stored.rows,
        bytes=sum(f.size for f in stored.files), fileCount=len(stored.files),
        lastUpdated=release.committed_at.isoformat(), producer=PRODUCER)


def _number(value: Any, type_name: str) -> float | None:
    """A profile's min or max as a number, for numeric columns only (decimals are text)."""
    if isinstance(value, bool) or not type_name.startswith(("int", "float", "decimal")):
        return None
    try:
        return float(value) if isinstance(value, int | float | str) else None
    except ValueError:
        return None
