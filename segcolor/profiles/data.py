"""Which training photos belong to which profile: for a profile expert and for the classifier.

Photos are matched by file name, the key the train/val split uses too, so a profiles file
fitted on one folder selects the same photos in any folder that holds them.
"""

from __future__ import annotations

from pathlib import Path

from segcolor.errors import ConfigError
from segcolor.profiles.store import ProfileSet, load_profiles


def resolve_profiles_file(value: str | Path) -> Path:
    """A profiles file named in a training config: relative to the working directory, like
    ``out:`` (configs name ``configs/profiles/places.yaml`` from the repository root)."""
    path = Path(value).expanduser()
    if not path.is_file():
        raise ConfigError(
            f"profiles file {value} not found (relative paths start at the working directory; "
            "write one with `segcolor profiles fit`)"
        )
    return path


def profile_members(file: str | Path, name: str) -> set[str]:
    """File names of the photos of profile ``name``."""
    return load_profiles(resolve_profiles_file(file)).member_names(name)


def profile_labels(file: str | Path) -> tuple[ProfileSet, dict[str, int]]:
    """The profiles and, per photo file name, the index of its profile."""
    profiles = load_profiles(resolve_profiles_file(file))
    return profiles, profiles.labels()
