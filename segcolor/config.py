"""YAML configs: load with one-line errors, merge command-line overrides, validate keys."""

from __future__ import annotations

import copy
import difflib
from collections.abc import Mapping
from pathlib import Path
from typing import Any

import yaml

from segcolor.errors import ConfigError


def load_yaml(path: str | Path) -> dict[str, Any]:
    """Parse a YAML mapping; any problem becomes a ``ConfigError`` naming the file and line."""
    path = Path(path)
    if path.is_dir():
        raise ConfigError("is a folder; give the config's YAML file", path)
    if not path.is_file():
        raise ConfigError("config file not found", path)
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except yaml.YAMLError as err:
        mark = getattr(err, "problem_mark", None)
        where = f" at line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        problem = getattr(err, "problem", None) or str(err).splitlines()[0]
        raise ConfigError(f"malformed YAML{where}: {problem}", path) from None
    except UnicodeDecodeError:
        raise ConfigError("not a text file", path) from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise ConfigError(f"expected a mapping at the top level, got {type(data).__name__}", path)
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """``override`` wins; nested mappings merge key by key; neither input is modified."""
    merged = copy.deepcopy(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = copy.deepcopy(value)
    return merged


def check_keys(
    section: Mapping[str, Any],
    allowed: Mapping[str, Any],
    prefix: str,
    path: str | Path | None,
) -> None:
    """Reject unknown keys (typos would otherwise be silently ignored): a one-line
    ``ConfigError`` naming the first, with ``prefix`` (``"train."``), the allowed keys and the
    closest one."""
    for key in section:
        if key not in allowed:
            close = difflib.get_close_matches(str(key), list(allowed), n=1)
            hint = f"; did you mean {prefix}{close[0]}?" if close else ""
            raise ConfigError(
                f"unknown key {prefix}{key} (allowed: {', '.join(sorted(allowed))}){hint}", path
            )


def set_dotted(config: dict[str, Any], dotted: str, value: Any) -> None:
    """``set_dotted(cfg, "train.epochs", 3)`` sets ``cfg["train"]["epochs"] = 3``."""
    *parents, leaf = dotted.split(".")
    node = config
    for key in parents:
        if not isinstance(node.get(key), dict):
            node[key] = {}
        node = node[key]
    node[leaf] = value
