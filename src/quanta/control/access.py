"""Access requests: a consumer asks, the product's owner approves or denies.

An approval creates an expiring grant (never an open-ended one); every step is audited. The
owners of a product are the mesh's operator and the principals in the group named after the
product's owning team (``owner.team`` in dataproduct.yaml). Nobody approves their own request.
"""

from __future__ import annotations

import json
import secrets
from dataclasses import asdict, dataclass, replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any, Literal

from quanta.address import Address
from quanta.control.grants import owns
from quanta.errors import NotFoundError, QuantaError
from quanta.sidecar.access import AuthorizationError
from quanta.sidecar.core import Sidecar
from quanta.sidecar.principals import Principal
from quanta.storage.files import write_atomic
from quanta.storage.locks import file_lock

State = Literal["pending", "approved", "denied"]
DEFAULT_LIFETIME = timedelta(days=90)
MAX_REASON = 2_000


@dataclass(frozen=True)
class AccessRequest:
    """One request to read a product (or one port) for a purpose, and its outcome."""

    id: str
    requester: str
    product: str
    port: str | None
    purpose: str | None
    reason: str
    requested_at: str
    state: State = "pending"
    decided_by: str | None = None
    decided_at: str | None = None
    comment: str | None = None
    grant_id: str | None = None
    expires_at: str | None = None

    @property
    def address(self) -> Address:
        domain, _, name = self.product.partition(".")
        return Address(domain, name, self.port)

    def to_dict(self) -> dict[str, Any]:
        return {**asdict(self), "address": str(self.address)}


class AccessRequests:
    """The access requests of one mesh, in ``<storage>/security/access_requests.json``."""

    def __init__(self, sidecar: Sidecar) -> None:
        self.sidecar = sidecar
        self.file: Path = sidecar.mesh.storage_root / "security" / "access_requests.json"

    # --- reading --------------------------------------------------------------------------

    def all(self) -> list[AccessRequest]:
        """Every request on record, oldest first."""
        try:
            raw = json.loads(self.file.read_text())
        except FileNotFoundError:
            return []
        return [AccessRequest(**item) for item in raw]

    def visible_to(self, principal: Principal, state: State | None = None
                   ) -> list[AccessRequest]:
        """The requests ``principal`` made, and those it may decide as an owner."""
        return [r for r in self.all()
                if (state is None or r.state == state)
                and (r.requester == principal.name or self.may_decide(principal, r))]

    def get(self, request_id: str) -> AccessRequest:
        for item in self.all():
            if item.id == request_id:
                return item
        raise NotFoundError(f"no access request {request_id!r}",
                            hint="list them with 'quanta access list'",
                            code="access_request_not_found")

    def owners(self, product_key: str) -> str:
        """Who may decide requests for a product, in words."""
        team = self.sidecar.mesh.products[product_key].spec.owner.team
        return f"group:{team} (the owning team) or the mesh operator"

    def may_decide(self, principal: Principal, request: AccessRequest) -> bool:
        return owns(self.sidecar, principal, request.product)

    # --- the steps ------------------------------------------------------------------------

    def request(self, principal: Principal, address: Address | str, purpose: str | None,
                reason: str) -> AccessRequest:
        """Ask for read access; refused when already allowed or already pending."""
        if isinstance(address, str):
            address = Address.parse(address)
        product = self.sidecar.mesh.product(address)
        if address.port is not None and product.spec.port(address.port) is None:
            raise NotFoundError(f"{product.key} has no port '{address.port}'",
                                hint=f"ports: {', '.join(p.name for p in product.spec.outputs)}",
                                code="port_not_found")
        reason = reason.strip()
        if not reason:
            raise QuantaError("an access request needs a reason",
                              hint="say what you will use the data for: --reason '...'",
                              code="reason_missing")
        if len(reason) > MAX_REASON:
            raise QuantaError(f"the reason is longer than {MAX_REASON} characters",
                              code="reason_too_long")
        if self._allowed(principal, address, purpose):
            raise QuantaError(f"{principal} may already read {address}"
                              + (f" for {purpose}" if purpose else ""),
                              hint="no request needed", code="already_allowed")
        record = AccessRequest(
            id=secrets.token_hex(4), requester=principal.name, product=product.key,
            port=address.port, purpose=purpose, reason=reason,
            requested_at=datetime.now(UTC).isoformat(),
        )
        with file_lock(self.file):
            current = self.all()
            for other in current:
                if (other.state == "pending" and other.requester == record.requester
                        and other.product == record.product and other.port == record.port
                        and other.purpose == record.purpose):
                    raise QuantaError(f"{principal} already asked for {address} "
                                      f"(request {other.id}, pending)",
                                      hint="wait for the owner's decision",
                                      code="already_requested")
            self._save([*current, record])
        self._audit(principal, "access.request", record)
        return record

    def approve(self, principal: Principal, request_id: str,
                expires_in: timedelta | None = None, comment: str | None = None
                ) -> AccessRequest:
        """Approve a pending request: an expiring grant for exactly what was asked."""
        lifetime = expires_in or DEFAULT_LIFETIME
        if lifetime <= timedelta(0):
            raise QuantaError("a grant must expire in the future", code="duration_invalid")

        def approved(item: AccessRequest) -> AccessRequest:
            grant = self.sidecar.grants.grant(item.requester, item.address, item.purpose,
                                              lifetime)
            return replace(item, state="approved", grant_id=grant.id,
                           expires_at=grant.expires_at)

        return self._decide(principal, request_id, "approve", comment, approved)

    def deny(self, principal: Principal, request_id: str, comment: str) -> AccessRequest:
        """Deny a pending request; the comment tells the requester why."""
        if not comment.strip():
            raise QuantaError("say why the request is denied",
                              hint="--comment 'what the requester should know'",
                              code="comment_missing")
        return self._decide(principal, request_id, "deny", comment,
                            lambda item: replace(item, state="denied"))

    # --- inside ---------------------------------------------------------------------------

    def _decide(self, principal: Principal, request_id: str, verb: str, comment: str | None,
                outcome: Any) -> AccessRequest:
        with file_lock(self.file):
            current = self.all()
            item = next((r for r in current if r.id == request_id), None)
            if item is None:
                raise NotFoundError(f"no access request {request_id!r}",
                                    hint="list them with 'quanta access list'",
                                    code="access_request_not_found")
            if not self.may_decide(principal, item):
                self._audit(principal, f"access.{verb}", item, "denied")
                raise AuthorizationError(
                    f"{principal} may not decide requests for {item.product}",
                    hint=f"the owners decide: {self.owners(item.product)}")
            if item.requester == principal.name:
                self._audit(principal, f"access.{verb}", item, "denied")
                raise AuthorizationError("nobody decides their own access request",
                                         hint=f"ask another owner: {self.owners(item.product)}")
            if item.state != "pending":
                raise QuantaError(f"request {item.id} was {item.state} already",
                                  code="access_request_decided")
            decided = outcome(replace(item, decided_by=principal.name,
                                      decided_at=datetime.now(UTC).isoformat(),
                                      comment=(comment or "").strip() or None))
            self._save([decided if r.id == item.id else r for r in current])
        self._audit(principal, f"access.{verb}", decided)
        return decided

    def _allowed(self, principal: Principal, address: Address, purpose: str | None) -> bool:
        product = self.sidecar.mesh.product(address)
        ports = [address.port] if address.port else [p.name for p in product.spec.outputs]
        try:
            for port in ports:
                self.sidecar.decide(principal, purpose, Address(address.domain,
                                                                address.product, port))
        except AuthorizationError:
            return False
        return True

    def _save(self, requests: list[AccessRequest]) -> None:
        write_atomic(self.file, json.dumps([asdict(r) for r in requests], indent=2).encode())

    def _audit(self, principal: Principal, action: str, item: AccessRequest,
               outcome: str = "ok") -> None:
        self.sidecar.audit.append({
            "principal": principal.name, "groups": sorted(principal.groups), "mode": "control",
            "action": action, "request": item.id, "product": item.product, "port": item.port,
            "purpose": item.purpose, "state": item.state, "grant": item.grant_id,
            "expires_at": item.expires_at, "outcome": outcome,
        })
