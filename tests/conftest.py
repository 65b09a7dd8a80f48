"""Shared test fixtures: the shared reference directory and tiny generated images."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

REPO = Path(__file__).resolve().parents[1]
SHARED = Path(os.environ.get("SEGCOLOR_SHARED_DIR", REPO.parent / "shared"))


@pytest.fixture(autouse=True)
def _seeded() -> None:
    torch.manual_seed(0)
    np.random.seed(0)


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models run faster on one thread, and do not stall when the CPU is shared (modules
    that train or run many tiny models use it: ``pytestmark = pytest.mark.usefixtures(...)``)."""
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.fixture(scope="session")
def shared_dir() -> Path:
    if not SHARED.is_dir():
        pytest.skip(f"shared reference directory {SHARED} is absent (set SEGCOLOR_SHARED_DIR)")
    return SHARED


@pytest.fixture(scope="session")
def historical_photo(shared_dir: Path) -> Path:
    photos = sorted((shared_dir / "data" / "historical_bw").glob("*.png"))
    if not photos:
        pytest.skip(f"no historical photos under {shared_dir}/data/historical_bw")
    return photos[0]


def color_image(height: int = 40, width: int = 56, seed: int = 0) -> np.ndarray:
    """A smooth, colorful uint8 RGB test image."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width] / max(height, width)
    phase = rng.uniform(0, 2 * np.pi, size=3)
    channels = [0.5 + 0.45 * np.sin(4 * x + 3 * y + p) for p in phase]
    return (np.stack(channels, axis=-1) * 255).round().astype(np.uint8)


@pytest.fixture(scope="session")
def training_photos(tmp_path_factory) -> Path:
    """Real bird photos from the shared directory, else 32 generated color images in two
    subfolders (training datasets are recursive)."""
    birds = SHARED / "data" / "train" / "birds"
    if birds.is_dir():
        return birds
    root = tmp_path_factory.mktemp("photos")
    for i in range(32):
        folder = root / f"set{i % 2}"
        folder.mkdir(exist_ok=True)
        Image.fromarray(color_image(40, 52, seed=i)).save(folder / f"{i:02d}.png")
    return root
