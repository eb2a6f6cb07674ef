"""TOML in and out: reading with errors mapped to InputError, writing, overrides, paths.

These are the package's only TOML reader and writer: config files, sweep
files and the files the experiments write all go through them.

Paths inside a config file (``data.path``, ``init.path``) are relative to
the folder of the file that names them, wherever the file is read from
(``meanfield run``, a sweep's base config, the Python API); paths given on
the command line with ``--set`` are relative to the working directory.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Mapping
from pathlib import Path

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover
    import tomli as tomllib

from ..errors import InputError

PATH_KEYS = (("data", "path"), ("init", "path"))
"""The (section, key) pairs that hold file names."""


def parse_toml(text: str, source: str = "<string>") -> dict:
    """Parse TOML ``text``; a syntax error is an InputError naming ``source``."""
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise InputError(f"{source}: invalid TOML: {exc}") from None


def read_toml(path, what: str = "config") -> dict:
    """Read and parse the TOML file ``path`` (``what`` it is names it in errors).

    Raises
    ------
    InputError
        ``cannot read <what> PATH: <reason>`` when the file is missing,
        unreadable or not UTF-8, ``PATH: invalid TOML: ...`` on a syntax error.
    """
    path = Path(path)
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        reason = getattr(exc, "strerror", None) or str(exc)
        raise InputError(f"cannot read {what} {path}: {reason}") from None
    return parse_toml(text, str(path))


def toml_value(v) -> str:
    """One TOML value: bool, int, float, string or a (nested) list of them."""
    if isinstance(v, bool):
        return "true" if v else "false"
    if isinstance(v, (int, float)):
        return repr(v)
    if isinstance(v, (list, tuple)):
        return "[" + ", ".join(toml_value(x) for x in v) + "]"
    # a JSON string is a TOML basic string, once DEL (legal in JSON) is escaped too
    return json.dumps(str(v), ensure_ascii=False).replace("\x7f", "\\u007f")


def toml_key(key: str) -> str:
    """A bare key when TOML allows it, else a quoted one (``"model.m"``)."""
    bare = key and all(ch.isascii() and (ch.isalnum() or ch in "-_") for ch in key)
    return key if bare else toml_value(key)


def dumps_toml(tables: Mapping, prefix: str = "") -> str:
    """Nested ``{name: value or table}`` as TOML text; ``parse_toml`` reads it back equal.

    ``None`` values are left out (TOML has no null).
    """
    lines, subtables = [], []
    for key, v in tables.items():
        if isinstance(v, Mapping):
            subtables.append((key, v))
        elif v is not None:
            lines.append(f"{toml_key(key)} = {toml_value(v)}")
    text = "\n".join(lines) + ("\n" if lines else "")
    for key, v in subtables:
        name = f"{prefix}.{toml_key(key)}" if prefix else toml_key(key)
        text += ("\n" if text else "") + f"[{name}]\n" + dumps_toml(v, name)
    return text


def parse_override(item: str):
    """Split ``section.key=value``; the value is read as TOML, else taken as a string."""
    if not isinstance(item, str) or "=" not in item:
        raise InputError(f"--set {item!r}: expected section.key=value")
    name, raw = item.split("=", 1)
    parts = name.strip().split(".")
    if len(parts) != 2 or not all(parts):
        raise InputError(f"--set {item!r}: expected section.key=value")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw.strip()
    return name.strip(), value


def apply_overrides(tables: Mapping, overrides) -> dict:
    """A copy of ``{section: {key: value}}`` with ``overrides`` applied.

    Parameters
    ----------
    tables : mapping
        Section tables (left unchanged).
    overrides : mapping or iterable of str
        ``{"section.key": value}`` or ``"section.key=value"`` strings (the
        value parsed as TOML, else taken as a string).

    Raises
    ------
    InputError
        When a name is not ``section.key`` or the section is not a table.
    """
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in tables.items()}
    if isinstance(overrides, Mapping):
        items = list(overrides.items())
    elif isinstance(overrides, str):
        raise InputError(f"overrides must be a list of section.key=value, got {overrides!r}")
    else:
        items = [parse_override(item) for item in overrides]
    for name, value in items:
        section, _, key = str(name).partition(".")
        if not section or not key or "." in key:
            raise InputError(f"override {name!r}: expected section.key")
        table = out.setdefault(section, {})
        if not isinstance(table, dict):
            raise InputError(f"[{section}] must be a table")
        table[key] = value
    return out


def resolve_paths(tables: Mapping, folder) -> dict:
    """A copy of ``tables`` with relative ``data.path`` / ``init.path`` made absolute from ``folder``.

    ``init.path`` may end in ``:SNAPSHOT_INDEX``; only the file part is resolved.
    """
    out = {k: dict(v) if isinstance(v, Mapping) else v for k, v in tables.items()}
    for section, key in PATH_KEYS:
        table = out.get(section)
        value = table.get(key) if isinstance(table, dict) else None
        if not isinstance(value, str) or not value:
            continue
        name, suffix = split_snapshot(value) if section == "init" else (value, None)
        p = Path(name).expanduser()
        if not p.is_absolute():
            p = (Path(folder) / p).resolve()
        table[key] = str(p) + ("" if suffix is None else f":{suffix}")
    return out


def split_snapshot(value: str):
    """``"FILE:INDEX"`` -> ``("FILE", INDEX)``; ``"FILE"`` -> ``("FILE", None)``."""
    head, sep, tail = value.rpartition(":")
    if sep and head and tail.lstrip("-").isdigit():
        return head, int(tail)
    return value, None
