"""Global addresses of data products: ``quanta://<domain>/<product>[/<port>][@<version>]``.

Parsing and validation of addresses and SQL table names live here and nowhere else.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

from quanta.errors import AddressError

IDENTIFIER = re.compile(r"^[a-z][a-z0-9_]*$")
SCHEME = "quanta://"


def is_identifier(name: str) -> bool:
    """True when ``name`` is a snake_case identifier that SQL never needs to quote."""
    return bool(IDENTIFIER.fullmatch(name)) and len(name) <= 63


def check_identifier(name: str, what: str) -> str:
    """Return ``name`` or raise an AddressError naming ``what`` it was meant to be."""
    if not is_identifier(name):
        raise AddressError(
            f"{what} {name!r} is not a valid name",
            hint="use snake_case: lower-case letters, digits and '_', starting with a letter",
        )
    return name


@dataclass(frozen=True, order=True)
class Address:
    """Where a product (and optionally one port, at one release) lives in the mesh."""

    domain: str
    product: str
    port: str | None = None
    version: int | None = None

    @classmethod
    def parse(cls, text: str) -> Address:
        """Parse ``quanta://d/p[/port][@N]``; also accepts ``d.p[.port][@N]`` for the CLI."""
        raw = text.strip()
        version: int | None = None
        body = raw
        if "@" in body:
            body, _, tail = body.rpartition("@")
            if not (tail.isascii() and tail.isdigit()):
                raise AddressError(
                    f"release {tail!r} in address {raw!r} is not a release number",
                    hint="write a release number after '@', e.g. quanta://listening/play_events@3",
                )
            version = int(tail)
            if version < 1:
                raise AddressError(
                    f"release 0 in address {raw!r} does not exist",
                    hint="releases are numbered from 1",
                )
        if body.startswith(SCHEME):
            parts = body[len(SCHEME):].split("/")
        elif "://" in body:
            raise AddressError(
                f"address {raw!r} does not start with {SCHEME}",
                hint="addresses look like quanta://<domain>/<product>[/<port>][@<release>]",
            )
        else:
            parts = body.split(".")
        if len(parts) not in (2, 3) or not all(parts):
            raise AddressError(
                f"address {raw!r} must name a domain and a product, and may name a port",
                hint="e.g. quanta://listening/play_events/plays or listening.play_events",
            )
        domain = check_identifier(parts[0], "domain")
        product = check_identifier(parts[1], "product")
        port = check_identifier(parts[2], "port") if len(parts) == 3 else None
        return cls(domain, product, port, version)

    @property
    def product_key(self) -> str:
        """``domain.product``: the product's identity inside one mesh."""
        return f"{self.domain}.{self.product}"

    def with_port(self, port: str) -> Address:
        """This address narrowed to ``port``."""
        return Address(self.domain, self.product, port, self.version)

    def __str__(self) -> str:
        text = f"{SCHEME}{self.domain}/{self.product}"
        if self.port:
            text += f"/{self.port}"
        if self.version is not None:
            text += f"@{self.version}"
        return text
