"""The profiles file (``profiles.yaml``): K color profiles, each with its centroid descriptor,
its readable name and its member photos, plus how it was fitted.

It is the contract between ``segcolor profiles fit`` and everything downstream (the profile
classifier's labels, a profile expert's training photos), so it is validated on load with
one-line ``ConfigError``s naming the file.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from segcolor.color.dcd import DominantColors
from segcolor.config import load_yaml
from segcolor.errors import ConfigError
from segcolor.io.atomic import atomic_write

FORMAT = "segcolor-profiles/1"
NAME = re.compile(r"^[A-Za-z][A-Za-z0-9_-]*$")  # profile names end up in file names and YAML keys


@dataclass
class Profile:
    """One color profile."""

    name: str
    centroid: DominantColors  # the pooled dominant colors of its (fitted) members
    members: list[str]  # photo paths relative to ``ProfileSet.root``, most typical first
    held_out: int = 0  # members held out of fitting (assigned to the nearest profile only)
    sheet: str | None = None  # contact sheet, relative to the profiles file's folder

    @property
    def size(self) -> int:
        return len(self.members)

    def to_dict(self) -> dict[str, Any]:
        return {
            "name": self.name,
            "size": self.size,
            "held_out": self.held_out,
            "centroid": self.centroid.to_dict(),
            "sheet": self.sheet,
            "members": list(self.members),
        }


@dataclass
class ProfileSet:
    """All profiles of one fit."""

    profiles: list[Profile]
    root: str  # the folder members are relative to, as written (relative to the shared dir)
    settings: dict[str, Any] = field(default_factory=dict)  # k, seed, descriptor, embedding...
    path: Path | None = None

    @property
    def names(self) -> list[str]:
        return [p.name for p in self.profiles]

    def profile(self, name: str) -> Profile:
        for p in self.profiles:
            if p.name == name:
                return p
        raise ConfigError(
            f"no profile named {name!r} (profiles: {', '.join(self.names)})", self.path
        )

    def labels(self) -> dict[str, int]:
        """Photo file name -> profile index. Keyed by name, like the train/val split, so any
        folder holding the same photos matches."""
        return {Path(m).name: i for i, p in enumerate(self.profiles) for m in p.members}

    def member_names(self, name: str) -> set[str]:
        return {Path(m).name for m in self.profile(name).members}

    def to_dict(self) -> dict[str, Any]:
        return {
            "format": FORMAT,
            "root": self.root,
            **self.settings,
            "profiles": [p.to_dict() for p in self.profiles],
        }

    def save(self, path: str | Path) -> Path:
        """Write atomically (a crash never leaves half a file)."""
        path = Path(path)
        text = yaml.dump(
            self.to_dict(), Dumper=_Dumper, sort_keys=False, width=100, allow_unicode=True
        )
        with atomic_write(path) as tmp:
            tmp.write_text(HEADER + text, encoding="utf-8")
        self.path = path
        return path


class _Dumper(yaml.SafeDumper):
    """Short lists of numbers (a Lab color) on one line; everything else in block style."""


def _represent_list(dumper: yaml.SafeDumper, data: list) -> yaml.Node:
    flow = bool(data) and all(isinstance(v, int | float) for v in data)
    return dumper.represent_sequence("tag:yaml.org,2002:seq", data, flow_style=flow)


_Dumper.add_representer(list, _represent_list)

HEADER = (
    "# Color profiles written by `segcolor profiles fit` (see `segcolor profiles show FILE`).\n"
    "# Members are training photos: their licences (mostly research / non-commercial) apply to\n"
    "# anything trained on them.\n"
)


def load_profiles(path: str | Path) -> ProfileSet:
    """Read and validate a profiles file."""
    path = Path(path)
    data = load_yaml(path)
    if data.get("format") != FORMAT:
        raise ConfigError(
            f"not a profiles file (format {data.get('format')!r}, expected {FORMAT!r}); "
            "write one with `segcolor profiles fit`",
            path,
        )
    raw = data.get("profiles")
    if not isinstance(raw, list) or not raw:
        raise ConfigError("`profiles:` must be a non-empty list", path)
    profiles: list[Profile] = []
    seen: dict[str, str] = {}
    for i, entry in enumerate(raw):
        if not isinstance(entry, dict):
            raise ConfigError(f"profile {i + 1}: expected a mapping", path)
        name = entry.get("name")
        if not isinstance(name, str) or not NAME.match(name):
            raise ConfigError(f"profile {i + 1}: bad name {name!r}", path)
        if name in {p.name for p in profiles}:
            raise ConfigError(f"profile name {name!r} is used twice", path)
        members = entry.get("members") or []
        if not isinstance(members, list) or not all(isinstance(m, str) for m in members):
            raise ConfigError(f"profile {name!r}: members must be a list of paths", path)
        for m in members:
            key = Path(m).name
            if key in seen:
                raise ConfigError(
                    f"photo {key} is a member of both {seen[key]!r} and {name!r}", path
                )
            seen[key] = name
        try:
            centroid = DominantColors.from_dict(entry.get("centroid") or {})
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"profile {name!r}: bad centroid ({err})", path) from None
        profiles.append(
            Profile(
                name=name,
                centroid=centroid,
                members=members,
                held_out=int(entry.get("held_out") or 0),
                sheet=entry.get("sheet"),
            )
        )
    settings = {k: v for k, v in data.items() if k not in ("format", "root", "profiles")}
    return ProfileSet(profiles, str(data.get("root") or ""), settings, path)
