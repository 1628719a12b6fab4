"""MeshContext: the one object the CLI, HTTP API, portal and SDK hold."""

from __future__ import annotations

from datetime import timedelta
from functools import cached_property
from pathlib import Path
from typing import TYPE_CHECKING, Any

from quanta.address import Address
from quanta.build import stability
from quanta.build.runner import Builder, BuildResult
from quanta.catalog import registry as catalog_registry
from quanta.catalog.document import observations
from quanta.catalog.entry import CatalogUnavailableError
from quanta.catalog.joins import Joins, PolysemeRegistry, joins, spec_carriers
from quanta.catalog.search import SearchQuery, SearchResult
from quanta.console import Reporter, SilentReporter
from quanta.control import AccessRequests
from quanta.engine.base import EngineLimits
from quanta.errors import NotFoundError, QuantaError
from quanta.governance import StandardsReport, review_standards
from quanta.governance.policies import load_policies
from quanta.governance.report import GovernanceReport, ReportSources, governance_report
from quanta.inputs import RemoteInputs
from quanta.lineage import MeshLineage
from quanta.observe import (
    DEFAULT_OBJECTIVE,
    DEFAULT_WINDOW,
    SloReport,
    UsageReport,
    slo_report,
    usage_report,
)
from quanta.sidecar import AsOf, Principal, QueryResult, Sidecar
from quanta.sidecar.access import describe
from quanta.spec.mesh import MESH_FILE, Mesh, Product, find_mesh_root, load_mesh
from quanta.spec.models import GrantPolicy
from quanta.storage import ProductStorage, Release, RunLog, RunRecord

if TYPE_CHECKING:
    from quanta.catalog.store import Catalog


class MeshContext:
    """A mesh opened for work: its specs, storage, builds and reads."""

    def __init__(self, root: Path | str, reporter: Reporter | None = None,
                 limits: EngineLimits | None = None, remote: RemoteInputs | None = None
                 ) -> None:
        self.root = Path(root).resolve()
        self.reporter = reporter or SilentReporter()
        self.limits = limits
        # how builds read the products of the mesh's ``external`` (served by other units);
        # given by the layer that knows the catalog (quanta.container.remote)
        self.remote = remote
        self._catalog: Catalog | None = None

    @classmethod
    def discover(cls, mesh: Path | str | None = None, reporter: Reporter | None = None
                 ) -> MeshContext:
        """Open ``mesh``, else the mesh found from QUANTA_MESH or the working folder upwards."""
        if mesh is None:
            return cls(find_mesh_root(), reporter)
        root = Path(mesh).resolve()
        if not (root / MESH_FILE).is_file():
            raise NotFoundError(
                f"--mesh {mesh}: no {MESH_FILE} in {root}",
                hint="point --mesh at the folder holding mesh.yaml, or create one with "
                "'quanta init DIR'", code="mesh_not_found",
            )
        return cls(root, reporter)

    @cached_property
    def mesh(self) -> Mesh:
        """The loaded mesh (problems collected, not raised)."""
        return load_mesh(self.root)

    def validate(self) -> list[QuantaError]:
        """Every problem in the mesh's specs, and interface changes since the last release
        that break consumers without a new major version (naming those consumers)."""
        problems = list(self.mesh.problems) + load_policies(self.mesh).problems
        for key, product in sorted(self.mesh.products.items()):
            previous = self.storage(key).latest()
            found = [] if previous is None else stability.changes(previous, product.spec)
            if previous is None or not stability.unannounced(previous, product.spec, found):
                continue
            try:
                stability.check_version(previous, product.spec, found, self.consumers(key))
            except stability.BreakingChangeError as exc:
                exc.location = product.doc.locate(("version",))
                problems.append(exc)
        return problems

    def consumers(self, key: str) -> list[str]:
        """Who relies on a product: downstream products, principals and groups granted it
        (spec policies and grants) and principals who read it (from the audit log)."""
        product = self.mesh.products[key]
        found = [f"product {k}" for k in self.mesh.downstream(key)]
        subjects = {s for p in product.spec.policies if isinstance(p, GrantPolicy)
                    for s in p.to if s != "*"}
        subjects |= {g.subject for g in self.sidecar.grants.grants() if g.product == key}
        subjects |= self.sidecar.audit.readers(key)
        return found + sorted(subjects)

    def standards(self, products: list[str] | None = None) -> StandardsReport:
        """The federation's standards checked on the mesh's products (default: all of them).

        Returns findings and the problems loading custom standards; nothing is raised for
        either, so ``validate`` can list everything at once.
        """
        return review_standards(self.mesh, products)

    def governance_report(self, record: bool = True) -> GovernanceReport:
        """Standards compliance, policies, grants, access requests and fitness functions of
        the whole mesh; with ``record``, the fitness numbers join the mesh's history."""
        sources = ReportSources(self.sidecar.grants.grants(), self.access_requests().all(),
                                describe)
        return governance_report(self.mesh, sources, record=record)

    def product(self, key: str | Address) -> Product:
        """A product by ``domain.product`` or address."""
        return self.mesh.product(Address.parse(key) if isinstance(key, str) else key)

    def storage(self, key: str) -> ProductStorage:
        return ProductStorage(self.mesh.storage_root, key)

    def releases(self, key: str | Address) -> list[Release]:
        """Every release of a product, oldest first."""
        return self.storage(self.product(key).key).releases()

    def build(self, keys: list[str] | None = None, full: bool = False) -> list[BuildResult]:
        """Build products (all by default), upstream first; specs must be valid. ``full``:
        incremental products are rebuilt from every source row."""
        self.mesh.raise_problems()
        wanted = [self.product(k).key for k in keys] if keys else None
        results = Builder(self.mesh, self.reporter, self.limits, remote=self.remote).build(
            wanted, full=full)
        self._publish([r.product for r in results if r.release is not None])
        return results

    def build_product(self, key: str, skip_unchanged: bool = False) -> BuildResult:
        """Build one product alone (its inputs as released now), as the runtime does."""
        product = self.product(key)
        result = Builder(self.mesh, self.reporter, self.limits, remote=self.remote).build_one(
            product, skip_unchanged=skip_unchanged)
        self._publish([product.key] if result.release is not None else [])
        return result

    def _publish(self, released: list[str]) -> None:
        # each release's discovery document goes beside it and into the catalog; a catalog
        # that fails is reported, never a failed build (the release is the truth)
        if released:
            published = catalog_registry.publish(self.mesh, released, self.catalog)
            for problem in published.problems:
                self.reporter.warn(problem.render())

    # --- the catalog: discovery, search, polysemes ----------------------------------------

    def catalog(self) -> Catalog:
        """The mesh's catalog, opened on first use; CatalogUnavailableError when its
        database is down or damaged (reading data never needs it)."""
        if self._catalog is None:
            from quanta.catalog.store import open_catalog  # SQLAlchemy: only when needed

            self._catalog = open_catalog(self.mesh)
        return self._catalog

    def search(self, query: SearchQuery) -> SearchResult:
        """Products matching ``query`` (full text, filters, facets), best first."""
        found = self.catalog().search(query)
        return catalog_registry.with_lifecycle(found, self.mesh.storage_root)

    def discovery(self, key: str | Address) -> dict[str, Any]:
        """A product's discovery document, from the catalog, with its SLO attainment and
        usage measured now."""
        address = Address.parse(key) if isinstance(key, str) else key
        document = catalog_registry.served_document(self.catalog(), self.mesh.storage_root,
                                                    address.product_key)
        return document | observations(self.mesh, address.product_key)

    def joinable(self, key: str | Address) -> Joins:
        """Ports of other products that share a polyseme with a product (or one of its
        ports), with the join keys: from the catalog, else from the specs."""
        address = Address.parse(key) if isinstance(key, str) else key
        product = address.product_key
        notice = None
        try:
            catalog = self.catalog()
            if catalog.has(product):
                mine = catalog.carriers(product=product)
                others = [c for p in sorted({c.polyseme for c in mine})
                          for c in catalog.carriers(polyseme=p)]
                return joins(address, mine, others, "catalog")
            notice = f"{product} is not in the catalog"
        except CatalogUnavailableError as exc:
            notice = exc.message
        self.product(address)  # the specs must know it
        carriers = spec_carriers(self.mesh)
        found = joins(address, [c for c in carriers if c.product == product], carriers,
                      "specs")
        found.notice = f"{notice}; answered from the specs"
        return found

    def polysemes(self, name: str | None = None) -> PolysemeRegistry:
        """Which products carry each polyseme (or ``name``): from the catalog, else from the
        specs."""
        try:
            return PolysemeRegistry(self.catalog().carriers(polyseme=name), "catalog")
        except CatalogUnavailableError as exc:
            carriers = spec_carriers(self.mesh, {name} if name else None)
            return PolysemeRegistry(carriers, "specs", f"{exc.message}; answered from the specs")

    def rebuild_catalog(self, write_documents: bool = False
                        ) -> catalog_registry.RebuildReport:
        """Recreate the catalog from the discovery documents in storage (a damaged SQLite
        catalog is set aside first); with ``write_documents``, first write each released
        product's document from its spec (for releases made before the catalog)."""
        if write_documents:
            catalog_registry.write_documents(self.mesh)
        from quanta.catalog.location import catalog_url, set_aside_damaged

        set_aside = None
        try:
            catalog = self.catalog()
        except CatalogUnavailableError:
            set_aside = set_aside_damaged(catalog_url(self.mesh))
            if set_aside is None:
                raise
            catalog = self.catalog()
        report = catalog_registry.rebuild(catalog, self.mesh.storage_root)
        report.set_aside = set_aside
        return report

    @cached_property
    def lineage(self) -> MeshLineage:
        """Lineage of the mesh's products and columns, and change impact."""
        return MeshLineage(self.mesh)

    @cached_property
    def sidecar(self) -> Sidecar:
        """The mesh's sidecar: every read goes through it."""
        return Sidecar(self.mesh)

    def access_requests(self) -> AccessRequests:
        """The control port's access requests (ask, approve, deny)."""
        return AccessRequests(self.sidecar)

    def principal(self, name: str | None = None, groups: list[str] | None = None) -> Principal:
        """The operator (default), or the principal ``name`` in ``groups``."""
        if name is None:
            return self.sidecar.operator()
        return Principal(name, frozenset(groups or []))

    def query(self, sql: str, as_of: str | int | None = None, *,
              principal: Principal | None = None, purpose: str | None = None) -> QueryResult:
        """Run one SELECT over the mesh's ports at ``as_of`` (release number or timestamp)."""
        who = principal or self.sidecar.operator()
        return self.sidecar.query(who, sql, AsOf.parse(as_of), purpose, mode="local").result()

    def read(self, address: str | Address, as_of: str | int | None = None, *,
             principal: Principal | None = None, purpose: str | None = None) -> QueryResult:
        """A whole port, at its latest release, ``address@N`` or ``as_of``."""
        who = principal or self.sidecar.operator()
        return self.sidecar.read(who, address, AsOf.parse(as_of), purpose, mode="local").result()

    def close(self) -> None:
        """Flush the audit log and release engines."""
        if "sidecar" in self.__dict__:
            self.sidecar.close()
        if self._catalog is not None:
            self._catalog.close()
            self._catalog = None

    def runs(self, product: str | None = None, limit: int | None = None) -> list[RunRecord]:
        """Build history, oldest first."""
        key = self.product(product).key if product else None
        return RunLog(self.mesh.storage_root).runs(key, limit)

    # --- observability: SLOs and usage, from what the mesh recorded -------------------------

    def slos(self, products: list[str] | None = None, window: timedelta = DEFAULT_WINDOW,
             objective: float = DEFAULT_OBJECTIVE) -> SloReport:
        """Each product's SLOs (default: every product) over ``window``: attainment, error
        budget left against ``objective`` and breaches with their causes."""
        keys = [self.product(p).key for p in products] if products else None
        return slo_report(self.mesh, keys, window=window, objective=objective)

    def usage(self, products: list[str] | None = None, days: int = 30) -> UsageReport:
        """Reads and distinct readers per product and day over the last ``days`` days."""
        keys = [self.product(p).key for p in products] if products else None
        return usage_report(self.mesh, keys, days=days)
