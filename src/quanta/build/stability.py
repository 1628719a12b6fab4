"""Schema stability: how a product's interface changed since its last release, and whether
its version says so.

Additive changes (a new port, a new field, a widened type) are minor. Removing or renaming a
port or field, narrowing or changing a type, and changing a field's meaning (classification,
polyseme, nullable → not nullable) or a port's primary key break consumers: they need a new
major version (for 0.x versions, a new minor one, as semantic versioning allows).
"""

from __future__ import annotations

from dataclasses import dataclass

from quanta.engine.types import DECIMAL
from quanta.errors import QuantaError
from quanta.spec.models import SEMVER, OutputPort, ProductSpec
from quanta.storage import FieldContract, PortContract, Release

# declared type → the types a consumer's reader accepts unchanged when it grows into them
WIDER = {
    "int32": {"int64", "float64"},
    "float32": {"float64"},
}


class BreakingChangeError(QuantaError):
    """The interface changed in a way that breaks consumers, without a major version."""

    code = "breaking_change"


@dataclass(frozen=True)
class Change:
    """One difference between the last release's interface and the spec's."""

    port: str
    field: str | None
    what: str
    breaking: bool

    def describe(self) -> str:
        where = f"{self.port}.{self.field}" if self.field else f"port {self.port}"
        return f"{where}: {self.what}"


def contract_of(port: OutputPort) -> PortContract:
    """The interface of ``port`` as its spec declares it."""
    return PortContract(
        fields=[FieldContract(name=f.name, type=f.type, classification=f.classification,
                              polyseme=f.polyseme, nullable=f.nullable) for f in port.fields],
        primary_key=list(port.primary_key),
    )


def changes(previous: Release, spec: ProductSpec) -> list[Change]:
    """Every interface change from ``previous`` to ``spec`` (ports recorded without a contract,
    by releases older than this check, are compared by name only)."""
    found: list[Change] = []
    declared = {p.name: p for p in spec.outputs}
    for name, written in previous.ports.items():
        port = declared.get(name)
        if port is None:
            found.append(Change(name, None, "removed", True))
        elif written.contract is not None:
            found += _port_changes(name, written.contract, contract_of(port))
    found += [Change(name, None, "added", False) for name in declared if name not in
              previous.ports]
    return found


def unannounced(previous: Release, spec: ProductSpec, found: list[Change]) -> bool:
    """True when ``found`` breaks consumers and the version is not a new major."""
    return any(c.breaking for c in found) and not _major_bump(previous.interface_version,
                                                              spec.version)


def check_version(previous: Release, spec: ProductSpec, found: list[Change],
                  consumers: list[str] | None = None) -> None:
    """Raise BreakingChangeError when ``found`` breaks consumers but the version does not."""
    if not unannounced(previous, spec, found):
        return
    breaking = [c for c in found if c.breaking]
    wanted = _next_major(previous.interface_version)
    who = f"; consumers who would break: {', '.join(consumers)}" if consumers else ""
    raise BreakingChangeError(
        f"{spec.key} {spec.version} breaks its interface since release {previous.release} "
        f"({previous.interface_version}): "
        + "; ".join(c.describe() for c in breaking) + who,
        hint=f"set 'version: {wanted}' in dataproduct.yaml (and tell the consumers), or undo "
        "the change; additive changes (new fields, new ports, wider types) need no new major",
    )


def _port_changes(port: str, before: PortContract, after: PortContract) -> list[Change]:
    found: list[Change] = []
    old = {f.name: f for f in before.fields}
    new = {f.name: f for f in after.fields}
    for name, field in old.items():
        if name not in new:
            found.append(Change(port, name, "removed (or renamed)", True))
            continue
        found += _field_changes(port, field, new[name])
    found += [Change(port, name, f"added ({new[name].type})", False)
              for name in new if name not in old]
    if before.primary_key != after.primary_key:
        found.append(Change(port, None, f"primary key {before.primary_key} → "
                                        f"{after.primary_key}", True))
    return found


def _field_changes(port: str, before: FieldContract, after: FieldContract) -> list[Change]:
    found: list[Change] = []
    if before.type != after.type:
        wider = _widens(before.type, after.type)
        found.append(Change(port, before.name, f"type {before.type} → {after.type}"
                            + (" (wider)" if wider else ""), not wider))
    for meaning in ("classification", "polyseme"):
        old, new = getattr(before, meaning), getattr(after, meaning)
        if old != new:
            found.append(Change(port, before.name, f"{meaning} {old} → {new}", True))
    if before.nullable and not after.nullable:
        found.append(Change(port, before.name, "nullable → not nullable", True))
    elif not before.nullable and after.nullable:
        found.append(Change(port, before.name, "not nullable → nullable", False))
    return found


def _widens(old: str, new: str) -> bool:
    if new in WIDER.get(old, set()):
        return True
    before, after = DECIMAL.match(old), DECIMAL.match(new)
    if before and after:
        (p1, s1), (p2, s2) = (map(int, before.groups()), map(int, after.groups()))
        return s2 >= s1 and p2 - s2 >= p1 - s1
    return False


def _parts(version: str) -> tuple[int, int, int]:
    match = SEMVER.match(version)
    if match is None:
        return (0, 0, 0)
    major, minor, patch = (int(g) for g in match.groups())
    return major, minor, patch


def _major_bump(old: str, new: str) -> bool:
    (m1, n1, _), (m2, n2, _) = _parts(old), _parts(new)
    if m1 == 0 and m2 == 0:
        return n2 > n1  # 0.x: anything may change with a new minor
    return m2 > m1


def _next_major(old: str) -> str:
    major, minor, _ = _parts(old)
    return f"0.{minor + 1}.0" if major == 0 else f"{major + 1}.0.0"
