"""A data product as one self-contained file: ``quanta package`` writes it, ``unpack`` opens it.

A bundle (``<domain>.<product>-<version>.quanta.tar.gz``, or ``.quanta.zip``) holds the
product's folder as it sits in its mesh (spec, transform code, tests, lineage.yaml and every
other file of the folder), a ``mesh.yaml`` for a one-product mesh that keeps the mesh's name,
serving settings and governance (global policies and standards travel with the product,
because its own sidecar enforces them), those policy and standard folders, and
``quanta.lock`` (see ``quanta.container.lock``). Unpacking checks every file against the
lock before anything is put in place, so a damaged or tampered bundle changes nothing.
"""

from __future__ import annotations

import hashlib
import io
import os
import posixpath
import secrets
import shutil
import tarfile
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path, PurePosixPath
from typing import Any

from ruamel.yaml import YAML

from quanta.container.lock import (
    LOCK_FILE,
    BundleError,
    BundleLock,
    environment,
    now_stamp,
)
from quanta.container.sources import external_inputs, link_sources, sources_folder
from quanta.errors import SpecError
from quanta.spec.mesh import MESH_FILE, Mesh, Product
from quanta.storage.files import sha256_file

SUFFIXES = (".quanta.tar.gz", ".quanta.zip")
_SKIPPED = ("__pycache__",)


@dataclass(frozen=True)
class Packaged:
    """A bundle written: where, its lock, and the SHA-256 of the whole file (to pin it)."""

    path: Path
    lock: BundleLock
    sha256: str


def package(mesh: Mesh, key: str, output: Path | None = None) -> Packaged:
    """Write the bundle of product ``key``; ``output`` is a file (``.zip`` or ``.tar.gz``)
    or a folder (default: the working folder)."""
    product = mesh.product(key)
    problems = [p for p in mesh.problems if _concerns(p.location, product, mesh)]
    if problems:
        raise SpecError(problems)
    folder = _folder_in_bundle(product, mesh)
    external, requires = external_inputs(product, folder)
    files: dict[str, Path | bytes] = {}
    for file in _files(product.folder):
        files[f"{folder}/{file.relative_to(product.folder).as_posix()}"] = file
    governance = mesh.spec.governance
    placed: dict[str, list[str]] = {}
    for kind, declared in (("policies", governance.policies),
                           ("standards", governance.standards)):
        placed[kind] = []
        for index, name in enumerate(declared):
            source = (mesh.root / name).resolve()
            inside = source.is_relative_to(mesh.root)
            kept_at = (source.relative_to(mesh.root).as_posix() if inside
                       else f"governance/{kind}/{index}_{source.name}")
            placed[kind].append(kept_at)
            for file in _files(source):
                files[f"{kept_at}/{file.relative_to(source).as_posix()}"] = file
    files[MESH_FILE] = _mesh_yaml(mesh, product, folder, placed)
    quanta, python, dependencies = environment()
    lock = BundleLock(
        product=product.key, address=f"quanta://{product.spec.domain}/{product.spec.name}",
        version=product.spec.version, mesh=mesh.spec.name, product_folder=folder,
        origin=str(mesh.root), created_at=now_stamp(), quanta=quanta, python=python,
        dependencies=dependencies,
        files={name: _digest(content) for name, content in sorted(files.items())},
        external=external, requires=requires)
    target = _target(output, f"{product.key}-{product.spec.version}")
    target.parent.mkdir(parents=True, exist_ok=True)
    temp = target.with_name(f".{target.name}.{secrets.token_hex(4)}.tmp")
    try:
        _write(temp, lock, files, as_zip=target.name.endswith(".zip"))
        os.replace(temp, target)
    finally:
        temp.unlink(missing_ok=True)
    return Packaged(target, lock, sha256_file(target))


def _concerns(location: Any, product: Product, mesh: Mesh) -> bool:
    """Whether a spec problem is about the product or mesh.yaml (others do not travel)."""
    if location is None:
        return False
    file = Path(location.file).resolve()
    return file == (mesh.root / MESH_FILE).resolve() or file.is_relative_to(product.folder)


def _folder_in_bundle(product: Product, mesh: Mesh) -> str:
    """The product's folder as it sits in its mesh, so relative source paths keep meaning."""
    folder = product.folder.resolve()
    if folder.is_relative_to(mesh.root) and folder != mesh.root:
        return folder.relative_to(mesh.root).as_posix()
    return f"domains/{product.spec.domain}/{product.spec.name}"


def _files(folder: Path) -> list[Path]:
    """Every file under ``folder`` but caches and hidden ones (``.quanta`` storage included)."""
    if not folder.is_dir():
        return []
    found = []
    for file in sorted(folder.rglob("*")):
        parts = file.relative_to(folder).parts
        if any(p.startswith(".") or p in _SKIPPED for p in parts) or file.suffix == ".pyc":
            continue
        if file.is_file():
            found.append(file)
    return found


def _mesh_yaml(mesh: Mesh, product: Product, folder: str, placed: dict[str, list[str]]
               ) -> bytes:
    """mesh.yaml of the one-product mesh: name, serving and governance as the mesh set them,
    the policy and standard folders where the bundle keeps them, the products it reads
    (``external``: served by other units); storage and the catalog are the running unit's
    own."""
    spec = mesh.spec
    document: dict[str, Any] = {"apiVersion": spec.api_version, "name": spec.name}
    if spec.description:
        document["description"] = spec.description
    document["products"] = [f"{folder}/dataproduct.yaml"]
    upstream = sorted({f"quanta://{a.domain}/{a.product}" for _, a in product.upstream()
                       if a.product_key != product.key})
    if upstream:  # served by other units: the build reads them through the catalog
        document["external"] = upstream
    governance = spec.governance.model_dump(mode="json", exclude_unset=True)
    for kind, targets in placed.items():
        if targets:
            governance[kind] = targets
    if governance:
        document["governance"] = governance
    serving = spec.serving.model_dump(mode="json", exclude_unset=True)
    if serving:
        document["serving"] = serving
    if product.spec.region:
        document["storage"] = {"regions": {product.spec.region:
                                           f".quanta/regions/{product.spec.region}"}}
    stream = io.StringIO()
    stream.write(f"# One-product mesh written by 'quanta package {product.key}' from mesh "
                 f"'{spec.name}'.\n")
    yaml = YAML(typ="safe", pure=True)
    yaml.default_flow_style = False
    yaml.dump(document, stream)
    return stream.getvalue().encode()


def _digest(content: Path | bytes) -> str:
    if isinstance(content, bytes):
        return hashlib.sha256(content).hexdigest()
    return sha256_file(content)


def _target(output: Path | None, stem: str) -> Path:
    if output is None:
        return Path.cwd() / f"{stem}{SUFFIXES[0]}"
    if output.name.endswith((".tar.gz", ".tgz", ".zip")) and not output.is_dir():
        return output
    if output.exists() and not output.is_dir():
        raise BundleError(f"-o {output}: a bundle is a .tar.gz or .zip file, or a folder",
                          hint=f"e.g. -o {stem}{SUFFIXES[0]} or -o dist/",
                          code="bundle_output_invalid")
    return output / f"{stem}{SUFFIXES[0]}"  # a folder, made if need be


def _write(path: Path, lock: BundleLock, files: dict[str, Path | bytes], as_zip: bool
           ) -> None:
    """The lock first (a reader finds it at once), then every file in name order."""
    members = {LOCK_FILE: lock.to_bytes(), **{k: files[k] for k in sorted(files)}}
    if as_zip:
        with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
            for name, content in members.items():
                if isinstance(content, bytes):
                    archive.writestr(name, content)
                else:
                    archive.write(content, name)
        return
    with tarfile.open(path, "w:gz") as archive:
        for name, content in members.items():
            data = content if isinstance(content, bytes) else content.read_bytes()
            info = tarfile.TarInfo(name)
            info.size, info.mode, info.mtime = len(data), 0o644, 0
            archive.addfile(info, io.BytesIO(data))


# --- opening a bundle --------------------------------------------------------------------


def unpack(bundle: Path | str, into: Path | str, sources: Path | str | None = None) -> Path:
    """Open ``bundle`` into the folder ``into`` and return the root of its one-product mesh.

    Every file is checked against ``quanta.lock`` (present, not changed, nothing added)
    before any is put in place; a damaged or tampered bundle raises BundleError and leaves
    ``into`` as it was. ``into`` may be empty, new, or hold an earlier unpack of the same
    product: its files are replaced and its storage (``.quanta/``: releases, tokens, audit)
    is kept, so a new version of a product runs on with its history. Sources the bundle does
    not carry are linked in from ``sources`` (else ``QUANTA_SOURCES``) when given.
    """
    bundle, root = Path(bundle), Path(into).resolve()
    lock, members = _read(bundle)
    previous = _installed(root, lock)
    staging = root.parent / f".{root.name}.unpacking-{secrets.token_hex(4)}"
    try:
        for name, data in members:
            if hashlib.sha256(data).hexdigest() != lock.files[name]:
                raise BundleError(
                    f"{bundle}: {name} does not match its digest in {LOCK_FILE}: the bundle "
                    "is damaged or was changed after packaging",
                    hint="package the product again, or fetch the bundle again",
                    code="bundle_tampered")
            file = staging / name
            file.parent.mkdir(parents=True, exist_ok=True)
            file.write_bytes(data)
        root.mkdir(parents=True, exist_ok=True)
        if previous is not None:
            for name in previous.files:
                (root / name).unlink(missing_ok=True)
            _prune(root, previous.files)
        for name in lock.files:
            (root / name).parent.mkdir(parents=True, exist_ok=True)
            os.replace(staging / name, root / name)
        (root / LOCK_FILE).write_bytes(lock.to_bytes())  # last: it marks a complete unpack
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    folder = sources_folder(Path(sources) if sources is not None else None)
    if folder is not None:
        link_sources(root, lock, folder)
    return root


def read_lock(bundle_or_root: Path | str) -> BundleLock:
    """The lock of a bundle file, or of the folder a bundle was unpacked into."""
    path = Path(bundle_or_root)
    if path.is_dir():
        file = path / LOCK_FILE
        if not file.is_file():
            raise BundleError(f"{path} holds no unpacked bundle (no {LOCK_FILE})",
                              hint="unpack a bundle into it first", code="bundle_not_found")
        return BundleLock.from_bytes(file.read_bytes(), str(path))
    return _read(path, with_data=False)[0]


def verify(root: Path | str) -> BundleLock:
    """Check an unpacked bundle's files against its lock (each present and unchanged)."""
    root = Path(root)
    lock = read_lock(root)
    for name, digest in lock.files.items():
        file = root / name
        if not file.is_file():
            raise BundleError(f"{root}: {name} is missing", code="bundle_incomplete",
                              hint="unpack the bundle again")
        if sha256_file(file) != digest:
            raise BundleError(f"{root}: {name} was changed since it was unpacked",
                              hint="unpack the bundle again", code="bundle_tampered")
    return lock


def is_bundle(path: Path | str) -> bool:
    """Whether ``path`` names a bundle file (by its name) rather than a product."""
    return str(path).endswith((*SUFFIXES, ".tar.gz", ".tgz", ".zip"))


def default_folder(bundle: Path) -> Path:
    """Where a bundle is unpacked when no folder is given: beside it, named like it."""
    name = bundle.name
    for suffix in (*SUFFIXES, ".tar.gz", ".tgz", ".zip"):
        if name.endswith(suffix):
            return bundle.with_name(name.removesuffix(suffix))
    return bundle.with_name(f"{name}.unpacked")


def _read(bundle: Path, with_data: bool = True
          ) -> tuple[BundleLock, list[tuple[str, bytes]]]:
    """The lock and (name, bytes) of every other member, checked: safe names, regular files,
    exactly the files the lock lists."""
    if not bundle.is_file():
        raise BundleError(f"bundle {bundle} does not exist", code="bundle_not_found",
                          hint="write one with 'quanta package DOMAIN.PRODUCT'")
    try:
        members = dict(_members(bundle))
    except (tarfile.TarError, zipfile.BadZipFile, EOFError, OSError) as exc:
        raise BundleError(f"{bundle} is not a readable bundle: {exc}",
                          hint="fetch or package it again", code="bundle_damaged") from None
    if LOCK_FILE not in members:
        raise BundleError(f"{bundle} is not a quanta bundle: it holds no {LOCK_FILE}",
                          hint="write bundles with 'quanta package DOMAIN.PRODUCT'",
                          code="bundle_damaged")
    lock = BundleLock.from_bytes(members.pop(LOCK_FILE), str(bundle))
    missing = sorted(set(lock.files) - set(members))
    extra = sorted(set(members) - set(lock.files))
    if missing or extra:
        what = "; ".join(text for text in (
            f"missing {', '.join(missing)}" if missing else "",
            f"not in the lock: {', '.join(extra)}" if extra else "") if text)
        raise BundleError(f"{bundle} does not match its {LOCK_FILE}: {what}",
                          hint="package the product again, or fetch the bundle again",
                          code="bundle_tampered")
    return lock, sorted(members.items()) if with_data else []


def _members(bundle: Path) -> Iterator[tuple[str, bytes]]:
    if zipfile.is_zipfile(bundle):
        with zipfile.ZipFile(bundle) as archive:
            for info in archive.infolist():
                if info.is_dir():
                    continue
                yield _safe(info.filename, bundle), archive.read(info)
        return
    with tarfile.open(bundle, "r:*") as archive:
        for member in archive:
            if member.isdir():
                continue
            if not member.isfile():
                raise BundleError(f"{bundle}: {member.name} is not a regular file (links and "
                                  "devices are refused)", code="bundle_tampered",
                                  hint="package the product again")
            handle = archive.extractfile(member)
            assert handle is not None
            yield _safe(member.name, bundle), handle.read()


def _safe(name: str, bundle: Path) -> str:
    """A member name that stays inside the folder it is unpacked into."""
    clean = posixpath.normpath(name)
    if (PurePosixPath(name).is_absolute() or clean == ".." or clean.startswith("../")
            or "\\" in name or clean != name.removeprefix("./")):
        raise BundleError(f"{bundle}: member {name!r} would be written outside its folder",
                          hint="only unpack bundles written by 'quanta package'",
                          code="bundle_tampered")
    return clean


def _installed(root: Path, lock: BundleLock) -> BundleLock | None:
    """The lock of an earlier unpack of the same product in ``root``; refuse a folder that
    holds anything else."""
    if not root.exists():
        return None
    if not root.is_dir():
        raise BundleError(f"{root} is not a folder", code="bundle_target_invalid",
                          hint="unpack into a new or empty folder")
    if (root / LOCK_FILE).is_file():
        previous = read_lock(root)
        if previous.product != lock.product:
            raise BundleError(
                f"{root} holds the unpacked bundle of {previous.product}, not {lock.product}",
                hint="unpack each product into a folder of its own",
                code="bundle_target_invalid")
        return previous
    if any(root.iterdir()):
        raise BundleError(f"{root} is not empty and holds no unpacked bundle",
                          hint="unpack into a new or empty folder",
                          code="bundle_target_invalid")
    return None


def _prune(root: Path, names: dict[str, str]) -> None:
    """Remove folders an earlier unpack left empty (deepest first)."""
    folders = {(root / n).parent for n in names}
    for folder in sorted(folders, key=lambda f: len(f.parts), reverse=True):
        while folder != root and folder.is_dir() and not any(folder.iterdir()):
            folder.rmdir()
            folder = folder.parent
