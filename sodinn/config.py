"""TOML configuration files: reading (stdlib ``tomllib``) and writing the effective configuration.

Only the subset of TOML that configurations need is written: tables of strings, numbers, booleans
and lists of those.
"""

from __future__ import annotations

import os
import tempfile
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

import tomllib

__all__ = ["dump_toml", "load_toml"]


def load_toml(path: str | os.PathLike[str], *, sections: Iterable[str] | None = None) -> dict[str, Any]:
    """Read a TOML configuration; with ``sections``, refuse unknown top-level tables.

    Raises
    ------
    FileNotFoundError
        If the file does not exist.
    ValueError
        If it is not valid TOML or holds unknown sections.
    """
    p = Path(path)
    if not p.is_file():
        msg = f"configuration file not found: {p}"
        raise FileNotFoundError(msg)
    try:
        cfg = tomllib.loads(p.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as err:
        msg = f"{p} is not valid TOML: {err}"
        raise ValueError(msg) from err
    if sections is not None:
        allowed = set(sections)
        unknown = sorted(set(cfg) - allowed)
        if unknown:
            msg = f"{p}: unknown section(s) {', '.join(unknown)}; expected {', '.join(sorted(allowed))}"
            raise ValueError(msg)
    return cfg


def dump_toml(path: str | os.PathLike[str], config: Mapping[str, Mapping[str, Any]]) -> Path:
    """Write ``{section: {key: value}}`` as TOML, atomically."""
    lines: list[str] = []
    for section, table in config.items():
        lines.append(f"[{section}]")
        for key, value in table.items():
            if value is None:
                continue
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    p = Path(path)
    p.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{p.name}.", suffix=".tmp", dir=p.parent)
    with os.fdopen(fd, "w", encoding="utf-8") as fh:
        fh.write("\n".join(lines))
    os.replace(tmp, p)
    return p


def _toml_value(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (int, float)):
        return repr(value)
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    text = str(value).replace("\\", "\\\\").replace('"', '\\"')
    return f'"{text}"'
