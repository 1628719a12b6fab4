"""Load spec files into models, reporting every problem with file, line, column and a hint.

YAML is read with ruamel's round-trip loader, which remembers where each key and value
stood; pydantic's error paths are then mapped back onto those positions.
"""

from __future__ import annotations

import difflib
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError

from quanta.errors import Location, QuantaError

M = TypeVar("M", bound=BaseModel)
PathItem = str | int


@dataclass(frozen=True)
class SpecDocument:
    """A parsed YAML file that can say where any path in it was written."""

    file: Path
    tree: Any

    def locate(self, path: Sequence[PathItem], *, key: bool = False) -> Location:
        """Location of the value at ``path`` (or of its key, with ``key=True``).

        Path items that are not in the document (pydantic's union tags, a missing key)
        are skipped, so the nearest enclosing node is named.
        """
        node = self.tree
        line, col = (0, 0)
        found_any = False
        for index, item in enumerate(path):
            last = index == len(path) - 1
            if isinstance(node, CommentedMap) and isinstance(item, str) and item in node:
                pos = node.lc.key(item) if (key and last) else node.lc.value(item)
                line, col = pos[0], pos[1]
                node = node[item]
                found_any = True
            elif isinstance(node, CommentedSeq) and isinstance(item, int) and item < len(node):
                line, col = node.lc.item(item)
                node = node[item]
                found_any = True
        if not found_any:
            return Location(self.file, 1, 1)
        return Location(self.file, line + 1, col + 1)


def read_yaml(file: Path) -> SpecDocument:
    """Parse one YAML file; syntax errors become a QuantaError with the position."""
    try:
        text = file.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise QuantaError(
            "file not found", location=Location(file), hint="check the path", code="file_missing"
        ) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise QuantaError(
            f"cannot read file: {exc}", location=Location(file), code="file_unreadable"
        ) from None
    yaml = YAML(typ="rt")
    yaml.allow_duplicate_keys = False
    try:
        tree = yaml.load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        where = Location(file, mark.line + 1, mark.column + 1) if mark else Location(file)
        problem = exc.problem or exc.context or "invalid YAML"
        opened = exc.context_mark
        if opened is not None and exc.context and exc.context.startswith(
            ("while parsing a flow", "while scanning a quoted")
        ):
            problem += (f" ({exc.context.removeprefix('while ')} that starts at "
                        f"line {opened.line + 1}, column {opened.column + 1})")
        raise QuantaError(
            f"invalid YAML: {problem}",
            location=where,
            hint="check indentation, colons and quoting near this position",
            code="yaml_invalid",
        ) from None
    if tree is None:
        tree = CommentedMap()
    if not isinstance(tree, CommentedMap):
        raise QuantaError(
            "the file must hold a mapping of keys to values",
            location=Location(file, 1, 1),
            hint="start with 'apiVersion: quanta/v1' and one key per line",
            code="yaml_invalid",
        )
    return SpecDocument(file, tree)


def plain(node: Any) -> Any:
    """ruamel's commented containers and scalars as plain Python values."""
    if isinstance(node, dict):
        return {str(k): plain(v) for k, v in node.items()}
    if isinstance(node, list):
        return [plain(v) for v in node]
    if isinstance(node, str):
        return str(node)
    if isinstance(node, bool):
        return bool(node)
    if isinstance(node, int):
        return int(node)
    if isinstance(node, float):
        return float(node)
    return node


def load_model(file: Path, model: type[M]
               ) -> tuple[SpecDocument | None, M | None, list[QuantaError]]:
    """Read ``file`` and validate it against ``model``: the document (for positions), the
    model, and every problem (a YAML syntax error included) instead of raising."""
    try:
        doc = read_yaml(file)
    except QuantaError as exc:
        return None, None, [exc]
    found, problems = validate(doc, model)
    return doc, found, problems


def validate(doc: SpecDocument, model: type[M]) -> tuple[M | None, list[QuantaError]]:
    """Validate ``doc`` against ``model``; return the model or every problem found."""
    try:
        return model.model_validate(plain(doc.tree)), []
    except ValidationError as exc:
        return None, [_problem(doc, model, err) for err in exc.errors()]


def _problem(doc: SpecDocument, model: type[BaseModel], err: Any) -> QuantaError:
    path: tuple[PathItem, ...] = tuple(err["loc"])
    kind = err["type"]
    dotted = _dotted(path, doc)
    if kind == "extra_forbidden":
        name = str(path[-1])
        allowed = _allowed_keys(model, path[:-1], doc)
        close = difflib.get_close_matches(name, allowed, n=1)
        hint = f"did you mean '{close[0]}'?" if close else (
            f"allowed keys here: {', '.join(sorted(allowed))}" if allowed else None
        )
        if _value_at(doc, path) is None:
            hint = (f"{hint}; " if hint else "") + (
                "a comma inside {...} starts a new key: quote text that contains commas"
            )
        where = f" in {_dotted(path[:-1], doc)}" if path[:-1] else ""
        return QuantaError(
            f"unknown key '{name}'{where}",
            hint=hint,
            location=doc.locate(path, key=True),
            code="spec_unknown_key",
        )
    if kind == "missing":
        return QuantaError(
            f"missing required key '{path[-1]}'" + (f" in {_dotted(path[:-1], doc)}"
                                                   if path[:-1] else ""),
            hint=f"add '{path[-1]}: ...'",
            location=doc.locate(path[:-1]),
            code="spec_missing_key",
        )
    message = str(err["msg"])
    if message.startswith("Value error, "):
        message = message[len("Value error, "):]
    hint = _hint_for(kind, err)
    if kind == "value_error" and hint is None and "; " in message:
        message, hint = message.split("; ", 1)
    ctx = err.get("ctx") or {}
    if kind in ("union_tag_invalid", "literal_error"):
        given = str(ctx.get("tag", err.get("input")))
        options = [o.strip(" '") for o in str(
            ctx.get("expected_tags") or ctx.get("expected", "")
        ).replace(" or ", ", ").split(",")]
        tag_key = str(ctx.get("discriminator", "")).strip("'")
        if tag_key:
            dotted = f"{dotted}.{tag_key}" if dotted else tag_key
            path = (*path, tag_key)
        close = difflib.get_close_matches(given, options, n=1)
        message = f"unknown value {given!r}"
        hint = (f"did you mean '{close[0]}'? " if close else "") + (
            f"expected one of: {', '.join(options)}"
        )
    return QuantaError(
        f"{dotted}: {message}" if dotted else message,
        hint=hint,
        location=doc.locate(path),
        code="spec_invalid_value",
    )


def _value_at(doc: SpecDocument, path: Sequence[PathItem]) -> Any:
    """The raw YAML value at ``path`` (following only items present in the document)."""
    node = doc.tree
    for item in path:
        present = (item in node) if isinstance(node, dict) else (
            isinstance(node, list) and isinstance(item, int) and item < len(node))
        if present:
            node = node[item]
    return node


def _dotted(path: Sequence[PathItem], doc: SpecDocument) -> str:
    """A readable path (``outputs[0].fields[2].type``), leaving out pydantic's tag items."""
    text = ""
    node = doc.tree
    for item in path:
        if isinstance(item, int):
            text += f"[{item}]"
            node = node[item] if isinstance(node, list) and item < len(node) else None
        elif isinstance(node, dict) and item in node:
            text += f".{item}" if text else item
            node = node[item]
        elif node is None or not isinstance(node, dict):
            continue
        else:
            # a key that is not there (missing) still belongs in the path
            if item not in ("function-after", "function-before") and not _is_tag(node, item):
                text += f".{item}" if text else item
    return text


def _is_tag(node: dict[str, Any], item: str) -> bool:
    return item in {str(node.get("type")), str(node.get("check"))}


def _hint_for(kind: str, err: Any) -> str | None:
    ctx = err.get("ctx") or {}
    if kind == "union_tag_not_found":
        return f"add '{str(ctx.get('discriminator', 'type')).strip(chr(39))}: ...'"
    if kind.endswith("_type"):
        return "quote the value if it should be text, e.g. version: '1.0.0'" if kind == \
            "string_type" else None
    if kind == "string_pattern_mismatch":
        return "names are snake_case: lower-case letters, digits and '_', starting with a letter"
    return None


def _allowed_keys(
    model: type[BaseModel], path: Sequence[PathItem], doc: SpecDocument
) -> list[str]:
    """Field names (by alias) of the model at ``path``, for 'did you mean' hints."""
    current: Any = model
    node: Any = doc.tree
    for item in path:
        if isinstance(node, dict) and isinstance(item, str) and item in node:
            node = node[item]
            current = _field_model(current, item, node)
        elif isinstance(node, list) and isinstance(item, int) and item < len(node):
            node = node[item]
            current = _resolve_union(current, node)
        if current is None:
            return []
    if not (isinstance(current, type) and issubclass(current, BaseModel)):
        return []
    return [f.alias or name for name, f in current.model_fields.items()]


def _field_model(model: Any, key: str, node: Any) -> Any:
    if not (isinstance(model, type) and issubclass(model, BaseModel)):
        return None
    for name, info in model.model_fields.items():
        if key in (name, info.alias):
            return _resolve_union(info.annotation, node)
    return None


def _resolve_union(annotation: Any, node: Any) -> Any:
    """Pick the model a node validates against, inside list[...] and tagged unions."""
    from typing import Union, get_args, get_origin

    origin = get_origin(annotation)
    if origin in (list,):
        return get_args(annotation)[0]
    args = [a for a in get_args(annotation) if isinstance(a, type) and issubclass(a, BaseModel)]
    if not args:
        if hasattr(annotation, "__metadata__"):
            return _resolve_union(get_args(annotation)[0], node)
        if isinstance(annotation, type) and issubclass(annotation, BaseModel):
            return annotation
        return None
    if len(args) == 1 or (origin not in (Union,) and not isinstance(node, dict)):
        return args[0]
    for candidate in args:
        for tag_key in ("type", "check"):
            field = candidate.model_fields.get(tag_key)
            if field is not None and isinstance(node, dict) and node.get(tag_key) in get_args(
                field.annotation
            ):
                return candidate
    return args[0]
