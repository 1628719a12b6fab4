"""``quanta.lock``: what a bundle holds and what it was made with.

The lock names the product (key, global address, interface version), the quanta, Python and
key library versions that packaged it, the SHA-256 of every other file of the bundle, and
what the product needs that the bundle does not carry: sources outside the product's folder,
database URLs from the environment, and other products (inputs and consent sources).
"""

from __future__ import annotations

import importlib.metadata
import json
import platform
from datetime import UTC, datetime
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from quanta.errors import QuantaError

LOCK_FILE = "quanta.lock"
FORMAT: Literal["quanta/bundle/v1"] = "quanta/bundle/v1"
# what a product's build and reads depend on; a different version is worth a warning
KEY_DEPENDENCIES = ("duckdb", "pyarrow", "deltalake", "sqlglot", "pydantic", "sqlalchemy",
                    "polars", "fastapi")


class BundleError(QuantaError):
    """A bundle that cannot be packaged, or one that is damaged, tampered with or incomplete."""

    code = "bundle_invalid"


class _Frozen(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True, strict=True)


class ExternalInput(_Frozen):
    """An input the bundle does not carry: resolved where the bundle runs."""

    name: str
    type: Literal["file", "sqlite", "postgres", "product"]
    path: str | None = Field(None, description="as dataproduct.yaml writes it")
    mesh_path: str | None = Field(
        None, description="where the path points, relative to the mesh folder; a --sources "
        "folder stands for that mesh folder at run time")
    url_env: str | None = None
    product: str | None = Field(None, description="the address a product input reads")


class BundleLock(_Frozen):
    """The contents of ``quanta.lock``."""

    format: Literal["quanta/bundle/v1"] = FORMAT
    product: str
    address: str
    version: str
    mesh: str
    product_folder: str = Field(description="the product's folder inside the bundle")
    origin: str = Field(description="the mesh folder it was packaged from")
    created_at: str
    quanta: str
    python: str
    dependencies: dict[str, str]
    files: dict[str, str] = Field(description="path in the bundle → SHA-256 of its bytes")
    external: list[ExternalInput] = Field(default_factory=list)
    requires: list[str] = Field(
        default_factory=list,
        description="other products it needs at run time (product inputs, consent sources)")

    def to_bytes(self) -> bytes:
        return (json.dumps(self.model_dump(mode="json"), indent=2, sort_keys=True) + "\n"
                ).encode()

    @classmethod
    def from_bytes(cls, data: bytes, where: str) -> BundleLock:
        try:
            return cls.model_validate(json.loads(data))
        except (ValueError, ValidationError) as exc:
            first = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
            raise BundleError(f"{where}: {LOCK_FILE} is not a quanta bundle lock: {first}",
                              hint="package the product again with 'quanta package'") from None

    def differences(self) -> list[str]:
        """How the running environment differs from the one that packaged the bundle."""
        quanta, python, dependencies = environment()
        found = []
        if quanta != self.quanta:
            found.append(f"packaged with quanta {self.quanta}, running {quanta}")
        if python.rsplit(".", 1)[0] != self.python.rsplit(".", 1)[0]:
            found.append(f"packaged with Python {self.python}, running {python}")
        for name, version in sorted(self.dependencies.items()):
            here = dependencies.get(name)
            if here is not None and here != version:
                found.append(f"packaged with {name} {version}, running {here}")
        return found


def environment() -> tuple[str, str, dict[str, str]]:
    """quanta's version, Python's and those of the key dependencies installed here."""
    versions = {}
    for name in KEY_DEPENDENCIES:
        try:
            versions[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return _version("quanta"), platform.python_version(), versions


def now_stamp() -> str:
    return datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _version(name: str) -> str:
    try:
        return importlib.metadata.version(name)
    except importlib.metadata.PackageNotFoundError:
        return "unknown"
