"""Access decisions: may this principal read this port, and with which masks and filters.

A decision is made once per port per query and compiled into the SQL of a secure relation;
the user's query reads only those relations, so no query shape can see around a mask or a
row filter.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass, field
from datetime import UTC, datetime

from quanta.address import Address
from quanta.engine.duckdb import keyed_hash, quote
from quanta.engine.types import duckdb_type
from quanta.errors import QuantaError
from quanta.governance.policies import (
    ColumnInfo,
    Decision,
    DenyPolicy,
    Placed,
    PolicyRequest,
    PolicySet,
    PythonPolicy,
    check_masks,
)
from quanta.sidecar.grants import AccessGrant
from quanta.sidecar.principals import Principal
from quanta.spec.expressions import parse_condition
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
           stored: list[AccessGrant], now: datetime | None = None,
           policies: PolicySet | None = None) -> PortAccess:
    """Allow (with masks and filters) or raise AuthorizationError saying why and what to do.

    Global policies (``policies``) come first and cannot be lifted by the product's own: a
    deny wins over every grant, global masks and row filters always hold.
    """
    now = now or datetime.now(UTC)
    spec = product.spec
    assert address.port is not None
    port = spec.port(address.port)
    assert port is not None
    access = PortAccess(address)
    placed, python = policies.for_product(product) if policies else (_NO_POLICIES, [])
    if policies is not None and policies.problems:
        raise AuthorizationError(
            f"the mesh's global policies do not load, so nothing is served: "
            f"{policies.problems[0].render()}",
            hint="fix them ('quanta validate' lists every problem); reads fail closed until then")
    for item in placed:
        if isinstance(item.policy, DenyPolicy) and _denies(item.policy, principal, purpose):
            raise AuthorizationError(
                f"{principal} may not read {address}: {item.policy.reason}",
                hint=f"global policy {item.name} refuses it, whatever the grants")
    decisions = _python_decisions(python, principal, purpose, product, port, address)
    if principal.operator:
        access.why.append("operator of the mesh")
    else:
        _authorize(access, principal, purpose, product, port, stored, now, placed, decisions)
    rules = _rules(product, port, placed)
    for rule in rules.federal:
        _narrow(access, rule, principal, purpose)
    for function, decision in decisions:
        why = f"global policy {function.name}: {decision.reason}"
        for column, method in check_masks(decision.masks, f"policy {function.name}").items():
            if port.field(column) is not None and column not in access.masked:
                access.masked[column] = method
                access.why_masked[column] = why
        for condition in decision.row_filters:
            problem = _condition_problem(condition, frozenset(f.name for f in port.fields))
            if problem is not None:
                raise AuthorizationError(
                    f"global policy {function.name} gave a row filter that cannot be applied "
                    f"to {address}: {problem}", hint="fix the policy; it fails closed")
            access.filters.append(condition)
    for rule in rules.local:
        _narrow(access, rule, principal, purpose)
    return access


def _authorize(access: PortAccess, principal: Principal, purpose: str | None,
               product: Product, port: OutputPort, stored: list[AccessGrant], now: datetime,
               placed: list[Placed], decisions: list[tuple[PythonPolicy, Decision]]) -> None:
    """Record why ``principal`` may read, or raise: default deny."""
    spec, address = product.spec, access.address
    declared = [
        p for p in spec.policies if isinstance(p, GrantPolicy) and _ports_of(p, port.name)
        and principal.matches(p.to) and (p.purposes is None or purpose in p.purposes)
    ]
    federal = [
        (item.name, item.policy) for item in placed if isinstance(item.policy, GrantPolicy)
        and _ports_of(item.policy, port.name) and principal.matches(item.policy.to)
        and (item.policy.purposes is None or purpose in item.policy.purposes)
    ]
    granted = [g for g in stored if g.allows(principal, address, purpose, now)]
    allowing = [(f, d) for f, d in decisions if d.allowed]
    if not (declared or federal or granted or allowing):
        raise AuthorizationError(
            f"{principal} may not read {address}" + (f" for purpose '{purpose}'"
                                                     if purpose else ""),
            hint=f"ask the owner ({spec.owner.email or spec.owner.team}) for access: "
            f"quanta access request {address}" + (f" --purpose {purpose}"
                                                  if purpose else "")
            + " --reason '...'",
        )
    access.why += [f"grant in the spec to {', '.join(p.to)}" for p in declared]
    access.why += [f"global policy {name}: {describe(grant)}" for name, grant in federal]
    access.why += [f"grant {g.id} to {g.subject}" for g in granted]
    access.why += [f"global policy {f.name}: {d.reason}" for f, d in allowing]


@dataclass(frozen=True)
class _Rule:
    """A mask, row filter or consent policy that bears on one port, with what it touches
    there worked out once (who it applies to is decided per request)."""

    policy: MaskPolicy | RowFilterPolicy | ConsentPolicy
    which: str  # its name in reasons: "global policy x.yaml#2", "policy 3 of d.p"
    columns: tuple[str, ...] = ()  # a mask: the port's columns it covers

    @functools.cached_property
    def why(self) -> str:
        return f"{self.which}: {describe(self.policy)}"


@dataclass(frozen=True)
class _PortRules:
    federal: tuple[_Rule, ...]
    local: tuple[_Rule, ...]


_compiled: dict[tuple[int, str, int], tuple[object, object, _PortRules]] = {}
_NO_POLICIES: list[Placed] = []


def _rules(product: Product, port: OutputPort, placed: list[Placed]) -> _PortRules:
    """The rules bearing on ``port``, compiled once per spec, port and policy list."""
    key = (id(product.spec), port.name, id(placed))
    cached = _compiled.get(key)
    if cached is not None and cached[0] is product.spec and cached[1] is placed:
        return cached[2]
    federal = [_rule(item.policy, f"global policy {item.name}", port, strict=False)
               for item in placed
               if isinstance(item.policy, MaskPolicy | RowFilterPolicy | ConsentPolicy)]
    local = [_rule(policy, f"policy {number} of {product.spec.key}", port, strict=True)
             for number, policy in enumerate(product.spec.policies, start=1)
             if isinstance(policy, MaskPolicy | RowFilterPolicy | ConsentPolicy)]
    rules = _PortRules(tuple(r for r in federal if r is not None),
                       tuple(r for r in local if r is not None))
    if len(_compiled) > 10_000:
        _compiled.clear()
    _compiled[key] = (product.spec, placed, rules)
    return rules


def _rule(policy: MaskPolicy | RowFilterPolicy | ConsentPolicy, which: str, port: OutputPort,
          strict: bool) -> _Rule | None:
    """``policy`` as a rule for ``port``, or None when it does not bear on it. ``strict`` (a
    product's own policy): its columns exist, validate checked them; a global policy applies
    where they exist."""
    if not _ports_of(policy, port.name):
        return None
    if isinstance(policy, MaskPolicy):
        columns = tuple(f.name for f in port.fields if f.name in (policy.columns or [])
                        or f.classification == policy.classification)
        return _Rule(policy, which, columns) if columns else None
    if isinstance(policy, RowFilterPolicy):
        return _Rule(policy, which) if strict or _reads_only(policy.where, port) else None
    if strict or port.field(policy.column) is not None:
        return _Rule(policy, which)
    return None


def _narrow(access: PortAccess, rule: _Rule, principal: Principal, purpose: str | None
            ) -> None:
    """Apply one rule to what ``principal`` reads for ``purpose``."""
    policy = rule.policy
    if isinstance(policy, MaskPolicy):
        if _applies(principal, policy.to, policy.unless) and \
                not (policy.purposes and purpose in policy.purposes):
            for column in rule.columns:  # the first mask that names a column decides it
                if column not in access.masked:
                    access.masked[column] = policy.method
                    access.why_masked[column] = rule.why
    elif isinstance(policy, RowFilterPolicy):
        if _applies(principal, policy.to, policy.unless):
            access.filters.append(policy.where)
    elif purpose in policy.purposes and _applies(principal, None, policy.unless):
        access.consents.append(Consent(
            column=policy.column, source=Address.parse(policy.source),
            source_column=policy.source_column or policy.column, consented=policy.consented,
            why=rule.why))


def _denies(policy: DenyPolicy, principal: Principal, purpose: str | None) -> bool:
    if not _applies(principal, policy.to, policy.unless):
        return False
    if purpose is None:
        return policy.without_purpose or policy.purposes is None
    return policy.purposes is None or purpose in policy.purposes


def _python_decisions(python: list[PythonPolicy], principal: Principal, purpose: str | None,
                      product: Product, port: OutputPort, address: Address
                      ) -> list[tuple[PythonPolicy, Decision]]:
    """Each Python policy's decision; a deny, an error or a wrong answer refuses the read."""
    if not python:
        return []
    spec = product.spec
    request = PolicyRequest(
        principal=principal.name, groups=principal.groups, purpose=purpose, product=spec.key,
        domain=spec.domain, kind=spec.kind, port=port.name, operator=principal.operator,
        columns=tuple(ColumnInfo(f.name, f.type, f.classification, f.polyseme)
                      for f in port.fields))
    decisions = []
    for function in python:
        try:
            decision = function(request)
        except Exception as exc:
            raise AuthorizationError(
                f"global policy {function.name} failed ({type(exc).__name__}: {exc}), so the "
                f"read of {address} is refused", hint="fix the policy; it fails closed") from None
        if decision is None:
            continue
        if not isinstance(decision, Decision):
            raise AuthorizationError(
                f"global policy {function.name} returned {type(decision).__name__}, not a "
                "Decision, so the read is refused", hint="return Decision.allow/deny/narrow "
                "or None")
        if decision.allowed is False:
            raise AuthorizationError(f"{principal} may not read {address}: {decision.reason}",
                                     hint=f"global policy {function.name} refuses it")
        decisions.append((function, decision))
    return decisions


@functools.lru_cache(maxsize=4096)
def _condition_problem(where: str, columns: frozenset[str]) -> str | None:
    """Why ``where`` is not a row filter over ``columns``, or None when it is."""
    try:
        parse_condition(where, set(columns))
    except ValueError as exc:
        return str(exc)
    return None


def _reads_only(where: str, port: OutputPort) -> bool:
    """True when the condition reads only columns ``port`` has."""
    return _condition_problem(where, frozenset(f.name for f in port.fields)) is None


def _applies(principal: Principal, to: list[str] | None, unless: list[str]) -> bool:
    return principal.matches(to) and not (unless and principal.matches(unless))


def describe(policy: Policy | DenyPolicy) -> str:
    """A policy in plain words."""
    if isinstance(policy, DenyPolicy):
        who = f"{', '.join(policy.to)}" if policy.to else "everyone"
        unless = f" (unless {', '.join(policy.unless)})" if policy.unless else ""
        purposes = f" for {', '.join(policy.purposes)}" if policy.purposes else ""
        return f"{who}{unless} may not read{purposes}: {policy.reason}"
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
