"""Custom standards: Python files in the folders that ``governance.standards`` lists.

Each ``*.py`` file (files starting with ``_`` are skipped) is run on its own and must define at
least one ``@standard`` function. A file that does not load becomes a problem naming the file
and line, never a traceback.
"""

from __future__ import annotations

import importlib.util
import sys
import traceback
import uuid
from pathlib import Path

from quanta.errors import Location, QuantaError
from quanta.governance.registry import Standard
from quanta.spec.loader import PathItem, read_yaml
from quanta.spec.mesh import MESH_FILE, Mesh

PROBLEM_CODE = "standard_invalid"


def mesh_location(mesh: Mesh, path: tuple[PathItem, ...], *, key: bool = False) -> Location:
    """Where ``path`` is written in the mesh's ``mesh.yaml`` (read again, for positions only)."""
    return read_yaml(mesh.root / MESH_FILE).locate(path, key=key)


def load_custom_standards(mesh: Mesh) -> tuple[list[Standard], list[QuantaError]]:
    """Every standard defined in the mesh's standards folders, and every problem loading them."""
    standards: list[Standard] = []
    problems: list[QuantaError] = []
    for index, folder in enumerate(mesh.spec.governance.standards):
        path = (mesh.root / folder).resolve()
        if not path.is_dir():
            problems.append(QuantaError(
                f"standards folder '{folder}' does not exist ({path})",
                hint="create it, or fix the path (relative to mesh.yaml)",
                location=mesh_location(mesh, ("governance", "standards", index)),
                code=PROBLEM_CODE,
            ))
            continue
        for file in sorted(path.glob("*.py")):
            if file.name.startswith("_"):
                continue
            found, problem = load_standards_file(file)
            standards += found
            if problem is not None:
                problems.append(problem)
    return standards, problems


def load_standards_file(file: Path) -> tuple[list[Standard], QuantaError | None]:
    """The standards one file defines, or the problem that stopped it from loading."""
    module_name = f"quanta_standards_{uuid.uuid4().hex}"
    loader_spec = importlib.util.spec_from_file_location(module_name, file)
    if loader_spec is None or loader_spec.loader is None:
        return [], _problem(f"cannot load standards file {file.name}", Location(file),
                            "standards files are Python source files ending in .py")
    module = importlib.util.module_from_spec(loader_spec)
    sys.modules[module_name] = module  # dataclasses and typing look their module up here
    try:
        loader_spec.loader.exec_module(module)
    except SyntaxError as exc:
        return [], _problem(f"standards file has a syntax error: {exc.msg}",
                            Location(file, exc.lineno, exc.offset), "fix the Python syntax")
    except QuantaError as exc:  # a malformed @standard(...) says what is wrong itself
        return [], _problem(exc.message, _user_frame(exc, file), exc.hint)
    except Exception as exc:
        return [], _problem(
            f"loading standards file {file.name} raised {type(exc).__name__}: {exc}",
            _user_frame(exc, file), "fix the module's top-level code",
        )
    finally:
        sys.modules.pop(module_name, None)
    found = sorted(
        {id(v): v for v in vars(module).values() if _defined_in(v, file)}.values(),
        key=lambda s: s.origin.line or 0 if s.origin else 0,
    )
    if not found:
        return [], _problem(
            f"standards file {file.name} defines no standard", Location(file),
            "mark a function with @standard(...) from quanta.governance; name helper files "
            "with a leading '_'",
        )
    return found, None


def _defined_in(value: object, file: Path) -> bool:
    """A standard defined in ``file`` itself (not one it imported from elsewhere)."""
    return (isinstance(value, Standard) and value.origin is not None
            and Path(value.origin.file).resolve() == file.resolve())


def _problem(message: str, location: Location, hint: str | None) -> QuantaError:
    return QuantaError(message, hint=hint, location=location, code=PROBLEM_CODE)


def user_frame(exc: BaseException, file: Path | None) -> Location | None:
    """The deepest stack frame in ``file``: where the user's code went wrong."""
    if file is None:
        return None
    where: Location | None = None
    resolved = file.resolve()
    for frame in traceback.extract_tb(exc.__traceback__):
        if Path(frame.filename).resolve() == resolved:
            column = frame.colno + 1 if frame.colno is not None else None
            where = Location(file, frame.lineno, column)
    return where


def _user_frame(exc: BaseException, file: Path) -> Location:
    return user_frame(exc, file) or Location(file)
