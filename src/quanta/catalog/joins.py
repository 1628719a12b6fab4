"""The polyseme registry: which products carry each shared concept, and which products can
be joined with one, on which keys.

A polyseme (``listener_id``) is a concept several products carry, each in a field of its
own; two ports that both carry one can be joined on those fields. The catalog answers from
its index; a mesh's specs answer the same question when the catalog cannot.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from quanta.address import Address
from quanta.spec.mesh import Mesh


@dataclass(frozen=True)
class Carrier:
    """A field of a product's port that carries a polyseme (a concept shared across
    products)."""

    polyseme: str
    product: str
    port: str
    field: str
    type: str
    classification: str


@dataclass(frozen=True)
class JoinKey:
    """One pair of fields that mean the same thing."""

    polyseme: str
    left: str
    right: str


@dataclass(frozen=True)
class JoinablePort:
    """A port of another product that joins with the product asked about."""

    product: str
    port: str
    left_port: str
    keys: list[JoinKey]

    @property
    def address(self) -> str:
        domain, _, name = self.product.partition(".")
        return f"quanta://{domain}/{name}/{self.port}"

    def sql(self, left_product: str) -> str:
        """A ready-to-run join of the two ports on every shared key."""
        on = " AND ".join(f"a.{k.left} = b.{k.right}" for k in self.keys)
        return (f"SELECT * FROM {left_product}.{self.left_port} AS a "
                f"JOIN {self.product}.{self.port} AS b ON {on} LIMIT 10")


@dataclass
class Joins:
    """Ports joinable with one product (or one of its ports), and where the answer came
    from (``catalog`` or ``specs``)."""

    address: Address
    source: str
    polysemes: dict[str, list[str]] = field(default_factory=dict)
    joinable: list[JoinablePort] = field(default_factory=list)
    notice: str | None = None

    def to_dict(self) -> dict[str, Any]:
        key = self.address.product_key
        return {
            "address": str(self.address), "source": self.source, "notice": self.notice,
            "polysemes": self.polysemes,
            "joinable": [{"product": j.product, "port": j.port, "address": j.address,
                          "with_port": j.left_port,
                          "keys": [{"polyseme": k.polyseme, "field": k.left,
                                    "joins": k.right} for k in j.keys],
                          "sql": j.sql(key)} for j in self.joinable],
        }


def joins(address: Address, mine: list[Carrier], others: list[Carrier], source: str) -> Joins:
    """Ports of other products sharing a polyseme with ``mine`` (the fields of the product
    at ``address``), most shared keys first."""
    if address.port:
        mine = [c for c in mine if c.port == address.port]
    found = Joins(address, source)
    for carrier in mine:
        found.polysemes.setdefault(carrier.polyseme, []).append(
            f"{carrier.port}.{carrier.field}")
    pairs: dict[tuple[str, str, str], list[JoinKey]] = {}
    for theirs in others:
        if theirs.product == address.product_key:
            continue
        for own in mine:
            if own.polyseme == theirs.polyseme:
                pairs.setdefault((theirs.product, theirs.port, own.port), []).append(
                    JoinKey(own.polyseme, own.field, theirs.field))
    found.joinable = sorted(
        (JoinablePort(product, port, left, keys) for (product, port, left), keys in
         pairs.items()), key=lambda j: (-len(j.keys), j.product, j.port, j.left_port))
    return found


def spec_carriers(mesh: Mesh, polysemes: set[str] | None = None) -> list[Carrier]:
    """Fields carrying a polyseme, as the mesh's specs declare them."""
    found = []
    for key, product in sorted(mesh.products.items()):
        for port in product.spec.outputs:
            for f in port.fields:
                if f.polyseme and (polysemes is None or f.polyseme in polysemes):
                    found.append(Carrier(f.polyseme, key, port.name, f.name, f.type,
                                         f.classification))
    return sorted(found, key=lambda c: (c.polyseme, c.product, c.port, c.field))


@dataclass
class PolysemeRegistry:
    """Which products carry each polyseme, and where the answer came from."""

    carriers: list[Carrier]
    source: str
    notice: str | None = None

    def by_polyseme(self) -> dict[str, list[Carrier]]:
        found: dict[str, list[Carrier]] = {}
        for carrier in self.carriers:
            found.setdefault(carrier.polyseme, []).append(carrier)
        return found

    def to_dict(self) -> dict[str, Any]:
        return {"source": self.source, "notice": self.notice, "polysemes": {
            name: [{"product": c.product, "port": c.port, "field": c.field, "type": c.type,
                    "classification": c.classification} for c in carriers]
            for name, carriers in self.by_polyseme().items()}}
