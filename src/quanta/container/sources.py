"""Inputs a bundle does not carry: found when packaging, linked in where the bundle runs.

A file or SQLite input whose path stays inside the product's folder travels with the bundle.
One that points elsewhere in the mesh (``../../../sources/player.db``) is recorded with its
place relative to the mesh folder (``sources/player.db``); where the bundle runs, a sources
folder (``--sources DIR`` or ``QUANTA_SOURCES``) stands for that mesh folder, and the input is
linked in at the same place, so dataproduct.yaml is used exactly as packaged.
"""

from __future__ import annotations

import os
import posixpath
from pathlib import Path, PurePosixPath

from quanta.address import Address
from quanta.container.lock import BundleError, BundleLock, ExternalInput
from quanta.errors import AddressError
from quanta.spec.mesh import Product
from quanta.spec.models import (
    ConsentPolicy,
    FileInput,
    PostgresInput,
    ProductInput,
    SqliteInput,
)

SOURCES_ENV = "QUANTA_SOURCES"
_GLOB = set("*?[")


def external_inputs(product: Product, folder: str) -> tuple[list[ExternalInput], list[str]]:
    """What ``product`` (kept at ``folder`` inside the bundle) reads from outside its folder,
    and the other products it needs (inputs and consent sources)."""
    found: list[ExternalInput] = []
    requires: list[str] = []
    for item in product.spec.inputs:
        if isinstance(item, FileInput | SqliteInput):
            if PurePosixPath(item.path).is_absolute():
                found.append(ExternalInput(name=item.name, type=item.type, path=item.path))
                continue
            place = posixpath.normpath(posixpath.join(folder, item.path))
            if place.startswith(f"{folder}/"):
                continue  # inside the product's folder: it travels with the bundle
            if place == ".." or place.startswith("../"):
                raise BundleError(
                    f"{product.key}: input '{item.name}' reads {item.path}, outside the mesh "
                    "folder, so a bundle cannot say where to find it",
                    hint="keep sources under the mesh folder (e.g. sources/), or give an "
                    "absolute path", code="bundle_source_outside")
            found.append(ExternalInput(name=item.name, type=item.type, path=item.path,
                                       mesh_path=place))
        elif isinstance(item, PostgresInput):
            found.append(ExternalInput(name=item.name, type="postgres", url_env=item.url_env))
        elif isinstance(item, ProductInput):
            found.append(ExternalInput(name=item.name, type="product", product=item.product))
            requires.append(_key(item.product))
    for policy in product.spec.policies:
        if isinstance(policy, ConsentPolicy):
            requires.append(_key(policy.source))
    return found, sorted(set(requires) - {"", product.key})


def _key(address: str) -> str:
    try:
        return Address.parse(address).product_key
    except AddressError:
        return ""  # reported by the spec checks


def sources_folder(given: Path | None) -> Path | None:
    """``given``, else ``QUANTA_SOURCES``, else None."""
    if given is not None:
        return given
    env = os.environ.get(SOURCES_ENV)
    return Path(env) if env else None


def link_sources(root: Path, lock: BundleLock, sources: Path) -> list[Path]:
    """Link each recorded source into the unpacked mesh at ``root``, from ``sources`` (which
    stands for the packaged mesh's folder: ``sources/<mesh path>``, else by its name). A place
    that already holds a real file or folder is left alone. Returns the links made."""
    sources = sources.resolve()
    if not sources.is_dir():
        raise BundleError(f"sources folder {sources} does not exist",
                          hint="point --sources (or QUANTA_SOURCES) at a folder",
                          code="bundle_sources_missing")
    made, missing = [], []
    for item in lock.external:
        if item.mesh_path is None:
            continue
        place = _fixed_part(item.mesh_path)
        target = root / place
        if target.exists() and not target.is_symlink():
            continue
        found = next((c for c in (sources / place, sources / PurePosixPath(place).name)
                      if c.exists()), None)
        if found is None:
            missing.append(f"'{item.name}' ({place})")
            continue
        target.parent.mkdir(parents=True, exist_ok=True)
        if target.is_symlink():
            target.unlink()
        target.symlink_to(found.resolve(), target_is_directory=found.is_dir())
        made.append(target)
    if missing:
        raise BundleError(
            f"{lock.product}: sources not found in {sources}: {', '.join(missing)}",
            hint=f"put them at the same place under {sources} as under the mesh folder they "
            "were packaged from, or directly in it", code="bundle_sources_missing")
    return made


def _fixed_part(mesh_path: str) -> str:
    """The part of a path before its first glob component (a glob's folder is linked)."""
    parts = []
    for part in PurePosixPath(mesh_path).parts:
        if _GLOB & set(part):
            break
        parts.append(part)
    return "/".join(parts) or mesh_path
