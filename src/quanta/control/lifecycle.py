"""Life cycle of a product: draft → active → deprecated (with a sunset date and a
replacement) → retired, and reactivation.

A draft is built and read by its owners only, and is not in the catalog; activating it
publishes it. A deprecated product is still served, with a notice on every answer (HTTP
``Deprecation``, ``Sunset`` and ``Link`` headers, Flight schema metadata, the CLI's warning); a
retired one is refused with a message naming its replacement, and is not built any more.
Moves follow that order (``MOVES``): a product is deprecated before it is retired, so its
consumers are warned. Only the mesh operator and the owning team (group named like
``owner.team``) change the state; every change is audited and kept in the product's history.
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
from quanta.storage.lifecycle import MOVES, Lifecycle, State, Transition


class LifecycleError(QuantaError):
    """A life cycle change that cannot be made as asked."""

    code = "lifecycle_invalid"


def draft(sidecar: Sidecar, principal: Principal, address: Address | str,
          reason: str | None = None) -> Lifecycle:
    """Declare a new product a draft, before its first release: built and read by its owners
    only, and not listed in discovery until it is activated."""
    return _change(sidecar, principal, address, "draft", reason, None, None)


def activate(sidecar: Sidecar, principal: Principal, address: Address | str,
             reason: str | None = None) -> Lifecycle:
    """Make a product active: a draft is published, a deprecated or retired one served
    again as before."""
    return _change(sidecar, principal, address, "active", reason, None, None)


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
    """Undo a deprecation or retirement (activates a draft too: the target is the same)."""
    return activate(sidecar, principal, address, reason)


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
    _check_move(storage, product.key, current, state)
    step = Transition(state=state, at=datetime.now(UTC), by=principal.name,
                      reason=(reason or "").strip() or None)
    if state == "draft" and product.spec.region is not None:
        # the first write to a region product's storage: its folder lives in the region
        storage.place(sidecar.mesh.region_root(product.spec.region))
    if state in ("active", "draft"):
        updated = Lifecycle(state=state, history=[*current.history, step])
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


def _check_move(storage: ProductStorage, key: str, current: Lifecycle, state: State) -> None:
    """Refuse a move the life cycle does not allow, saying what to do instead."""
    if state == "draft" and current.state != "draft":
        if current.history or storage.release_numbers() or storage.expired_numbers():
            raise LifecycleError(
                f"{key} is {current.state} and has been released or changed state; only a "
                "new product, before its first release, can be a draft",
                hint=f"to withdraw it, deprecate it: quanta deprecate {key} --sunset YYYY-MM-DD")
        return
    if state in MOVES[current.state]:
        return
    if state == current.state:
        hint = {"retired": f"quanta reactivate {key} first to change it",
                "draft": f"activate it: quanta activate {key}"}.get(current.state)
        raise LifecycleError(f"{key} is {current.state} already", hint=hint)
    if current.state == "draft":
        raise LifecycleError(
            f"{key} is a draft: it cannot be {state} before it was active",
            hint=f"activate it first (quanta activate {key}); a draft nobody should read "
            "can simply be removed from the mesh")
    if state == "retired":
        raise LifecycleError(
            f"{key} is {current.state}: a product is deprecated before it is retired, so its "
            "consumers are warned", hint=f"quanta deprecate {key} --sunset YYYY-MM-DD "
            "[--replacement ADDRESS], then retire it")
    raise LifecycleError(f"{key} is {current.state}; it cannot become {state}",
                         hint=f"reactivate it first: quanta reactivate {key}")


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
