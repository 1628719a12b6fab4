"""Bearer tokens: shown once at creation, stored only as SHA-256 digests."""

from __future__ import annotations

import hashlib
import hmac
import json
import secrets
from dataclasses import asdict, dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path

from quanta.errors import QuantaError
from quanta.sidecar.principals import Principal
from quanta.storage.files import write_atomic
from quanta.storage.locks import file_lock

PREFIX = "qnt"


class AuthenticationError(QuantaError):
    """No token, or a token that is unknown, revoked or expired (HTTP 401)."""

    code = "unauthenticated"


@dataclass(frozen=True)
class TokenRecord:
    """What is kept of a token: never the token itself."""

    id: str
    principal: str
    groups: list[str]
    digest: str
    created_at: str
    expires_at: str | None = None
    revoked_at: str | None = None

    def active(self, now: datetime) -> bool:
        if self.revoked_at:
            return False
        return self.expires_at is None or datetime.fromisoformat(self.expires_at) > now


def _digest(secret: str) -> str:
    return hashlib.sha256(secret.encode()).hexdigest()


class TokenStore:
    """Tokens of one mesh, in ``<storage>/security/tokens.json``."""

    def __init__(self, storage_root: Path) -> None:
        self.file = storage_root / "security" / "tokens.json"
        self._cache: tuple[float, dict[str, TokenRecord]] | None = None

    def _load(self) -> dict[str, TokenRecord]:
        try:
            mtime = self.file.stat().st_mtime_ns
        except FileNotFoundError:
            return {}
        if self._cache and self._cache[0] == mtime:
            return self._cache[1]
        records = {r["id"]: TokenRecord(**r) for r in json.loads(self.file.read_text())}
        self._cache = (mtime, records)
        return records

    def _save(self, records: dict[str, TokenRecord]) -> None:
        data = json.dumps([asdict(r) for r in records.values()], indent=2).encode()
        write_atomic(self.file, data)
        self.file.chmod(0o600)

    def create(self, principal: str, groups: list[str] | None = None,
               expires_in: timedelta | None = None) -> tuple[str, TokenRecord]:
        """A new token for ``principal``; returns the token (shown once) and its record."""
        token_id = secrets.token_hex(6)
        secret = secrets.token_urlsafe(32)
        now = datetime.now(UTC)
        record = TokenRecord(
            id=token_id, principal=principal, groups=sorted(set(groups or [])),
            digest=_digest(secret), created_at=now.isoformat(),
            expires_at=(now + expires_in).isoformat() if expires_in else None,
        )
        with file_lock(self.file):
            records = dict(self._load())
            records[token_id] = record
            self._save(records)
        return f"{PREFIX}_{token_id}_{secret}", record

    def records(self) -> list[TokenRecord]:
        """Every token record, newest last."""
        return sorted(self._load().values(), key=lambda r: r.created_at)

    def revoke(self, token_id_or_principal: str) -> list[TokenRecord]:
        """Revoke a token by id, or every token of a principal; return what was revoked."""
        now = datetime.now(UTC).isoformat()
        with file_lock(self.file):
            records = dict(self._load())
            hit = [r for r in records.values() if not r.revoked_at and
                   token_id_or_principal in (r.id, r.principal)]
            for record in hit:
                records[record.id] = TokenRecord(**{**asdict(record), "revoked_at": now})
            if hit:
                self._save(records)
        if not hit:
            raise QuantaError(f"no active token with id or principal '{token_id_or_principal}'",
                              hint="see 'quanta token list'", code="token_not_found")
        return hit

    def authenticate(self, token: str | None) -> Principal:
        """The principal a bearer token stands for; AuthenticationError otherwise."""
        if not token:
            raise AuthenticationError("no token given",
                                      hint="send 'Authorization: Bearer <token>'")
        parts = token.strip().split("_", 2)
        if len(parts) != 3 or parts[0] != PREFIX:
            raise AuthenticationError("malformed token",
                                      hint="tokens look like qnt_<id>_<secret>")
        record = self._load().get(parts[1])
        if record is None or not hmac.compare_digest(record.digest, _digest(parts[2])):
            raise AuthenticationError("unknown token", hint="create one: quanta token create")
        if not record.active(datetime.now(UTC)):
            raise AuthenticationError("token revoked or expired",
                                      hint="ask for a new token: quanta token create")
        return Principal(record.principal, frozenset(record.groups))
