"""Access decisions: may this principal read this port, and with which masks and filters.

A decision is made once per port per query and compiled into the SQL of a secure relation;
the user's query reads only those relations, so no query shape can see around a mask or a
row filter.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime

from quanta.address import Address
from quanta.engine.duckdb import keyed_hash, quote
from quanta.engine.types import duckdb_type
from quanta.errors import QuantaError
from quanta.sidecar.grants import AccessGrant
from quanta.sidecar.principals import Principal
from quanta.spec.mesh import Product
from quanta.spec.models import (
    ConsentPolicy,
    FieldSpec,
    GrantPolicy,
    MaskPolicy,
    OutputPort,
    Policy,
    RowFilterPolicy,
)

RECORDED_AT = "_recorded_at"


class AuthorizationError(QuantaError):
    """Authenticated, but not allowed to read what was asked (HTTP 403)."""

    code = "forbidden"


@dataclass(frozen=True)
class Consent:
    """Rows pass only when their subject is marked consenting in a consent port."""

    column: str
    source: Address  # a full address, port included
    source_column: str
    consented: str
    why: str

    def condition(self, source_sql: str) -> str:
        """The row filter over the consent port's data given as ``source_sql``."""
        return (f"{quote(self.column)} IN (SELECT {quote(self.source_column)} FROM "
                f"{source_sql} WHERE {quote(self.consented)})")

    def explain(self) -> str:
        return (f"{self.column} consented ({self.consented}) in {self.source}: "
                f"{self.why}")


@dataclass
class PortAccess:
    """What one principal sees of one port: clear or masked columns, and row filters."""

    address: Address
    masked: dict[str, str] = field(default_factory=dict)  # column -> method
    filters: list[str] = field(default_factory=list)
    why: list[str] = field(default_factory=list)
    why_masked: dict[str, str] = field(default_factory=dict)  # column -> the policy, in words
    consents: list[Consent] = field(default_factory=list)

    def explain(self) -> dict[str, str]:
        """``domain.product.port.column`` → how and why it is masked for this reader."""
        prefix = f"{self.address.domain}.{self.address.product}.{self.address.port}"
        return {f"{prefix}.{column}": f"{method}: {self.why_masked.get(column, '')}"
                for column, method in self.masked.items()}

    def relation_sql(self, port: OutputPort, source: str, mask_key: str,
                     pseudonyms: dict[str, str] | None = None,
                     consent_sources: dict[Address, str] | None = None) -> str:
        """The secure relation over ``source`` (the release's data): masks applied to
        columns, filters applied to rows. ``pseudonyms`` names stored columns holding a hash
        mask's values already; ``consent_sources`` gives the data of each consent port."""
        stored = pseudonyms or {}
        columns = []
        for f in port.fields:
            method = self.masked.get(f.name)
            if method is None:
                columns.append(quote(f.name))
            elif method == "hash" and f.name in stored:
                columns.append(f"{quote(stored[f.name])} AS {quote(f.name)}")
            else:
                columns.append(_mask(f, method, mask_key) + f" AS {quote(f.name)}")
        columns.append(RECORDED_AT)
        conditions = [*self.filters, *(c.condition((consent_sources or {})[c.source])
                                       for c in self.consents)]
        where = " AND ".join(f"({c})" for c in conditions) or "true"
        return f"SELECT {', '.join(columns)} FROM {source} WHERE {where}"


def _mask(spec: FieldSpec, method: str, key: str) -> str:
    col = quote(spec.name)
    text = f"CAST({col} AS VARCHAR)"
    if method == "null":
        return f"CAST(NULL AS {duckdb_type(spec.type)})"
    if method == "hash":
        # keyed, so low-entropy values (emails, birth dates) cannot be found by guessing
        return keyed_hash(col, key)
    if method == "truncate_year" and spec.type in ("date", "timestamp"):
        return f"CAST(date_trunc('year', {col}) AS {duckdb_type(spec.type)})"
    if method == "last4":
        return f"CASE WHEN {col} IS NULL THEN NULL ELSE '****' || right({text}, 4) END"
    return f"CASE WHEN {col} IS NULL THEN NULL ELSE '***' END"


def _ports_of(policy: Policy, port: str) -> bool:
    return policy.ports is None or port in policy.ports


def decide(principal: Principal, purpose: str | None, product: Product, address: Address,
           stored: list[AccessGrant], now: datetime | None = None) -> PortAccess:
    """Allow (with masks and filters) or raise AuthorizationError saying why and what to do."""
    now = now or datetime.now(UTC)
    spec = product.spec
    assert address.port is not None
    port = spec.port(address.port)
    assert port is not None
    access = PortAccess(address)
    if principal.operator:
        access.why.append("operator of the mesh")
    else:
        declared = [
            p for p in spec.policies if isinstance(p, GrantPolicy) and _ports_of(p, port.name)
            and principal.matches(p.to) and (p.purposes is None or purpose in p.purposes)
        ]
        granted = [g for g in stored if g.allows(principal, address, purpose, now)]
        if not declared and not granted:
            raise AuthorizationError(
                f"{principal} may not read {address}" + (f" for purpose '{purpose}'"
                                                         if purpose else ""),
                hint=f"ask the owner ({spec.owner.email or spec.owner.team}) for access: "
                f"quanta access request {address}" + (f" --purpose {purpose}"
                                                      if purpose else "")
                + " --reason '...'",
            )
        access.why += [f"grant in the spec to {', '.join(p.to)}" for p in declared]
        access.why += [f"grant {g.id} to {g.subject}" for g in granted]
    for number, policy in enumerate(spec.policies, start=1):
        if not _ports_of(policy, port.name):
            continue
        if isinstance(policy, MaskPolicy) and _applies(principal, policy.to, policy.unless) and \
                not (policy.purposes and purpose in policy.purposes):
            chosen = [f for f in port.fields if f.name not in access.masked and (
                f.name in (policy.columns or []) or f.classification == policy.classification)]
            for f in chosen:  # the first mask that names a column decides it
                access.masked[f.name] = policy.method
                access.why_masked[f.name] = f"policy {number} of {spec.key}: {describe(policy)}"
        if isinstance(policy, RowFilterPolicy) and _applies(principal, policy.to, policy.unless):
            access.filters.append(policy.where)
        if isinstance(policy, ConsentPolicy) and purpose in policy.purposes and \
                _applies(principal, None, policy.unless):
            source = Address.parse(policy.source)
            access.consents.append(Consent(
                column=policy.column, source=source, source_column=policy.source_column
                or policy.column, consented=policy.consented,
                why=f"policy {number} of {spec.key}: {describe(policy)}"))
    return access


def _applies(principal: Principal, to: list[str] | None, unless: list[str]) -> bool:
    return principal.matches(to) and not (unless and principal.matches(unless))


def describe(policy: Policy) -> str:
    """A policy in plain words."""
    ports = f" on {', '.join(policy.ports)}" if policy.ports else ""
    if isinstance(policy, ConsentPolicy):
        unless = f", unless {', '.join(policy.unless)}" if policy.unless else ""
        return (f"for purpose {', '.join(policy.purposes)}, only rows whose {policy.column} "
                f"consented ({policy.consented} in {policy.source}){ports}{unless}")
    if isinstance(policy, GrantPolicy):
        purposes = f" for {', '.join(policy.purposes)}" if policy.purposes else ""
        return f"{', '.join(policy.to)} may read{ports}{purposes}"
    who = f" for {', '.join(policy.to)}" if policy.to else ""
    unless = f", unless {', '.join(policy.unless)}" if policy.unless else ""
    if isinstance(policy, MaskPolicy):
        what = (f"columns {', '.join(policy.columns)}" if policy.columns
                else f"{policy.classification} columns")
        purposes = (f"; clear for purpose {', '.join(policy.purposes)}"
                    if policy.purposes else "")
        return f"mask {what} ({policy.method}){ports}{who}{unless}{purposes}"
    return f"only rows where {policy.where}{ports}{who}{unless}"
