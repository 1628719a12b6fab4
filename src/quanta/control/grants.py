"""Grants through the control port: owners (or the mesh operator) let principals read their
products, and take it back; every change is audited and holds for new queries at once."""

from __future__ import annotations

import re
from datetime import timedelta

from quanta.address import Address
from quanta.errors import NotFoundError, QuantaError
from quanta.sidecar.access import AuthorizationError
from quanta.sidecar.core import Sidecar
from quanta.sidecar.grants import AccessGrant
from quanta.sidecar.principals import Principal

SUBJECT = re.compile(r"^(\*|group:[A-Za-z0-9_.@-]+|[A-Za-z0-9_.@:-]+)$")


def owns(sidecar: Sidecar, principal: Principal, product_key: str) -> bool:
    """The mesh operator and the product's owning team (group named like ``owner.team``)."""
    if principal.operator:
        return True
    product = sidecar.mesh.products.get(product_key)
    return product is not None and product.spec.owner.team in principal.groups


def grant(sidecar: Sidecar, principal: Principal, subject: str, address: Address | str,
          purpose: str | None = None, expires_in: timedelta | None = None) -> AccessGrant:
    """Let ``subject`` (a principal, ``group:G`` or ``*``) read a product or one port."""
    target = _target(sidecar, principal, address, "grant")
    if not SUBJECT.match(subject):
        raise QuantaError(f"{subject!r} is not a principal or group",
                          hint="write a name like alice or svc-churn, or group:analysts",
                          code="subject_invalid")
    if expires_in is not None and expires_in <= timedelta(0):
        raise QuantaError("a grant must expire in the future", code="duration_invalid")
    record = sidecar.grants.grant(subject, target, purpose, expires_in)
    _audit(sidecar, principal, "grant", record)
    return record


def revoke(sidecar: Sidecar, principal: Principal, subject: str, address: Address | str,
           purpose: str | None = None) -> list[AccessGrant]:
    """Remove matching grants; new queries are refused at once."""
    target = _target(sidecar, principal, address, "revoke")
    gone = sidecar.grants.revoke(subject, target, purpose)
    for record in gone:
        _audit(sidecar, principal, "revoke", record)
    return gone


def visible(sidecar: Sidecar, principal: Principal) -> list[AccessGrant]:
    """The grants of the products ``principal`` owns, and the grants naming it."""
    return [g for g in sidecar.grants.grants()
            if owns(sidecar, principal, g.product) or g.subject in principal.subjects()]


def _target(sidecar: Sidecar, principal: Principal, address: Address | str, verb: str
            ) -> Address:
    if isinstance(address, str):
        address = Address.parse(address)
    product = sidecar.mesh.product(address)
    if address.port is not None and product.spec.port(address.port) is None:
        raise NotFoundError(f"{product.key} has no port '{address.port}'",
                            hint=f"ports: {', '.join(p.name for p in product.spec.outputs)}",
                            code="port_not_found")
    if not owns(sidecar, principal, product.key):
        sidecar.audit.append({"principal": principal.name, "groups": sorted(principal.groups),
                              "mode": "control", "action": verb, "product": product.key,
                              "outcome": "denied"})
        raise AuthorizationError(
            f"{principal} may not {verb} access to {product.key}",
            hint=f"its owners do: group:{product.spec.owner.team} or the mesh operator; "
            f"to read it yourself: quanta access request {address}")
    return Address(address.domain, address.product, address.port)


def _audit(sidecar: Sidecar, principal: Principal, action: str, record: AccessGrant) -> None:
    sidecar.audit.append({
        "principal": principal.name, "groups": sorted(principal.groups), "mode": "control",
        "action": action, "grant": record.id, "subject": record.subject,
        "product": record.product, "port": record.port, "purpose": record.purpose,
        "expires_at": record.expires_at, "outcome": "ok",
    })
