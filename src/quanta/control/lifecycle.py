"""Life cycle of a product: deprecate (with a sunset date and a replacement), retire, reactivate.

A deprecated product is still served, with a notice on every answer (HTTP ``Deprecation``,
``Sunset`` and ``Link`` headers, Flight schema metadata, the CLI's warning); a retired one is
refused with a message naming its replacement, and is not built any more. Only the mesh
operator and the owning team (group named like ``owner.team``) change the state; every
change is audited and kept in the product's history.
"""

from __future__ import annotations

from datetime import UTC, date, datetime

from quanta.address import Address
from quanta.control.grants import owns
from quanta.errors import QuantaError
from quanta.sidecar.access import AuthorizationError
from quanta.sidecar.core import Sidecar
from quanta.sidecar.principals import Principal
from quanta.storage import ProductStorage
from quanta.storage.lifecycle import Lifecycle, State, Transition


class LifecycleError(QuantaError):
    """A life cycle change that cannot be made as asked."""

    code = "lifecycle_invalid"


def deprecate(sidecar: Sidecar, principal: Principal, address: Address | str, sunset: date,
              replacement: str | None = None, reason: str | None = None,
              today: date | None = None) -> Lifecycle:
    """Mark a product deprecated: served with a notice until ``sunset``."""
    today = today or datetime.now(UTC).date()
    if sunset < today:
        raise LifecycleError(f"the sunset {sunset.isoformat()} is in the past",
                             hint="give a date from today on, e.g. --sunset "
                             f"{today.replace(year=today.year + 1).isoformat()}")
    return _change(sidecar, principal, address, "deprecated", reason, replacement, sunset)


def retire(sidecar: Sidecar, principal: Principal, address: Address | str,
           replacement: str | None = None, reason: str | None = None) -> Lifecycle:
    """Retire a product: reads are refused naming the replacement; it is not built again.
    Its releases stay in storage (retention and erasure still apply to them)."""
    return _change(sidecar, principal, address, "retired", reason, replacement, None)


def reactivate(sidecar: Sidecar, principal: Principal, address: Address | str,
               reason: str | None = None) -> Lifecycle:
    """Undo a deprecation or retirement."""
    return _change(sidecar, principal, address, "active", reason, None, None)


def _change(sidecar: Sidecar, principal: Principal, address: Address | str, state: State,
            reason: str | None, replacement: str | None, sunset: date | None) -> Lifecycle:
    if isinstance(address, str):
        address = Address.parse(address)
    product = sidecar.mesh.product(address)
    if not owns(sidecar, principal, product.key):
        raise AuthorizationError(
            f"{principal} may not change the life cycle of {product.key}",
            hint=f"the owners do: group:{product.spec.owner.team} or the mesh operator")
    storage = ProductStorage(sidecar.mesh.storage_root, product.key)
    current = storage.lifecycle()
    if replacement is not None:
        replacement = _check_replacement(sidecar, product.key, replacement)
    if state == current.state == "retired":
        raise LifecycleError(f"{product.key} is retired already",
                             hint=f"quanta reactivate {product.key} first to change it")
    if state == "active" and current.state == "active":
        raise LifecycleError(f"{product.key} is active already")
    step = Transition(state=state, at=datetime.now(UTC), by=principal.name,
                      reason=(reason or "").strip() or None)
    if state == "active":
        updated = Lifecycle(history=[*current.history, step])
    else:
        updated = Lifecycle(
            state=state, sunset=sunset if state == "deprecated" else current.sunset,
            replacement=replacement or current.replacement, reason=step.reason,
            history=[*current.history, step])
    storage.set_lifecycle(updated)
    sidecar.audit.append({
        "principal": principal.name, "groups": sorted(principal.groups), "mode": "control",
        "action": f"lifecycle.{state}", "product": product.key,
        "sunset": updated.sunset.isoformat() if updated.sunset else None,
        "replacement": updated.replacement, "reason": step.reason, "outcome": "ok",
    })
    return updated


def _check_replacement(sidecar: Sidecar, key: str, replacement: str) -> str:
    address = Address.parse(replacement)
    target = sidecar.mesh.product(address)
    if target.key == key:
        raise LifecycleError(f"{key} cannot replace itself",
                             hint="name the product consumers should move to")
    if address.port is not None and target.spec.port(address.port) is None:
        raise LifecycleError(f"{target.key} has no port '{address.port}'",
                             hint=f"ports: {', '.join(p.name for p in target.spec.outputs)}")
    if ProductStorage(sidecar.mesh.storage_root, target.key).lifecycle().state == "retired":
        raise LifecycleError(f"the replacement {target.key} is retired itself",
                             hint="name a product consumers can read")
    return str(Address(address.domain, address.product, address.port))
