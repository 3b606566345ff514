"""Read a YAML mapping file and validate it with a pydantic model, every problem reported as
``file:line: field: reason`` (policies, HR sources)."""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from provisioner.targets.config import ConfigError

M = TypeVar("M", bound=BaseModel)
Lines = dict[tuple[Any, ...], int]


def _line_map(node: yaml.Node, path: tuple[Any, ...], out: Lines) -> None:
    out[path] = node.start_mark.line + 1
    if isinstance(node, yaml.MappingNode):
        for key, value in node.value:
            k = key.value
            out[path + (k,)] = key.start_mark.line + 1
            _line_map(value, path + (k,), out)
    elif isinstance(node, yaml.SequenceNode):
        for index, item in enumerate(node.value):
            _line_map(item, path + (index,), out)


def yaml_path(data: Any, loc: tuple[Any, ...]) -> tuple[Any, ...]:
    """Pydantic's error location without the union tags it inserts: only the parts that index
    into the YAML data itself."""
    path: list[Any] = []
    node = data
    for part in loc:
        if isinstance(node, dict) and part in node:
            node = node[part]
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
        else:
            continue
        path.append(part)
    return tuple(path)


def line_for(lines: Lines, path: tuple[Any, ...]) -> int:
    """The line of ``path`` in the file, or of its nearest parent that has one."""
    while path and path not in lines:
        path = path[:-1]
    return lines.get(path, 1)


def read_mapping(path: Path, what: str) -> tuple[dict[str, Any], Lines]:
    """The file's top-level mapping and the line of every key and item in it; ``what`` names the
    file's kind in the error ("a policy file holds one mapping (name, when, grants)")."""
    text = path.read_text()
    try:
        node = yaml.compose(text)
        data = yaml.safe_load(text)
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        raise ConfigError([f"{path}:{(mark.line + 1) if mark else 1}: not valid YAML: "
                           f"{getattr(exc, 'problem', exc)}"]) from exc
    lines: Lines = {}
    if node is not None:
        _line_map(node, (), lines)
    if not isinstance(data, dict):
        raise ConfigError([f"{path}:1: {what}"])
    return data, lines


def validate(model: type[M], data: dict[str, Any], lines: Lines, path: Path) -> M:
    """``model.model_validate(data)``, its errors as ``ConfigError`` lines ``file:line: field: reason``."""
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        problems: list[str] = []
        for err in exc.errors(include_url=False):
            at = yaml_path(data, tuple(err["loc"]))
            field = ".".join(str(p) for p in at)
            if err["type"] == "missing" and err["loc"]:  # name the key that is missing, not its parent
                field = f"{field}.{err['loc'][-1]}" if field else str(err["loc"][-1])
            msg = err["msg"].removeprefix("Value error, ")
            text_line = f"{path}:{line_for(lines, at)}: {field or '(file)'}: {msg}"
            if text_line not in problems:
                problems.append(text_line)
        raise ConfigError(problems) from exc
