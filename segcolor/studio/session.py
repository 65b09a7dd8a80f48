"""One photo in the routing studio: what is expensive is computed once, edits are cheap.

On upload the photo is converted to Lab once and the segmenter runs once (class probabilities
and features are kept); the unedited routing is kept too, since routing edits name its
regions. Each expert's colors are kept per batch of crops (``Pipeline.expert_patches``' cache),
so applying edits re-runs the router (milliseconds), only the experts whose crops changed, and
the merge. Results equal ``segcolor colorize --routing EDITS`` on the same photo.

Color hints and the photo's style are edits like the others: the patch cache's key holds the
style and the hints inside each crop, so a new hint reruns only the experts whose crops hold
it. Every change of edits can be undone (``undo``), hints included.

Nothing here knows about HTTP: ``segcolor.studio.app`` serves it.
"""

from __future__ import annotations

import io
import threading
import time
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from PIL import Image
from scipy import ndimage

from segcolor.color.dcd import dominant_colors_lab, dominant_colors_many, subsample
from segcolor.color.lab import lab_to_rgb, rgb_to_lab
from segcolor.pipeline import LabImage, PatchCache, Pipeline, Semantics, to_uint8
from segcolor.pipeline_config import STYLES
from segcolor.router.edits import RoutingEdits
from segcolor.router.hints import check_hints, default_radius
from segcolor.router.overlay import ALPHA, category_colors, hex_rgb, preview_size, region_colors
from segcolor.router.routing import Routing

PREVIEW_SIDE = 1024  # gray and overlay images for the page; results are served at full size
MAX_UNDO = 100  # edits kept for undo, per photo
CACHE_BATCHES = 48  # expert answers kept per photo: a few hints' worth for every expert
HINT_SWATCHES = 5  # colors offered for a hint in a clicked region
SWATCH_LIGHTNESS = (45.0, 75.0)  # a hint's swatch shows its chroma at a visible lightness


def png_bytes(array: np.ndarray, alpha: np.ndarray | None = None) -> bytes:
    image = Image.fromarray(array)
    if alpha is not None:
        image.putalpha(Image.fromarray(alpha))
    buffer = io.BytesIO()
    image.save(buffer, format="PNG", compress_level=1)  # fast: these are sent, not archived
    return buffer.getvalue()


class BoundedCache(OrderedDict):
    """The patch cache, least recently used batches dropped beyond ``limit``: each hint makes
    new entries, so an unbounded cache would grow with every click."""

    def __init__(self, limit: int = CACHE_BATCHES) -> None:
        super().__init__()
        self.limit = limit

    def __getitem__(self, key: Any) -> Any:
        value = super().__getitem__(key)
        self.move_to_end(key)
        return value

    def __setitem__(self, key: Any, value: Any) -> None:
        super().__setitem__(key, value)
        self.move_to_end(key)
        while len(self) > self.limit:
            self.popitem(last=False)


@dataclass
class PhotoSession:
    """A photo's cached analysis and its current edits and result."""

    id: str
    name: str
    pipeline: Pipeline
    lab: LabImage
    semantics: Semantics  # the segmenter's answer, kept: an edit re-routes without it
    base: Routing  # unedited: region ids of edits refer to it
    alpha: np.ndarray | None = None
    cache: PatchCache = field(default_factory=BoundedCache)
    edits: RoutingEdits = field(default_factory=RoutingEdits)
    history: list[RoutingEdits] = field(default_factory=list)  # earlier edits, for undo
    routing: Routing | None = None
    result: np.ndarray | None = None  # (H, W, 3) uint8
    version: int = 0
    render_ms: float = 0.0
    _pngs: dict[str, bytes] = field(default_factory=dict)
    _gray: np.ndarray | None = None

    @classmethod
    def open(cls, pipeline: Pipeline, pixels: np.ndarray, **fields: Any) -> PhotoSession:
        """Convert, segment and colorize a decoded photo (``load_image(...).pixels``)."""
        if not pipeline.routed:
            raise ValueError("the studio needs a routed pipeline")
        lab = LabImage.from_rgb(pixels, pipeline.working_size, pipeline.device)
        semantics = pipeline.segment(lab)
        base = pipeline.route_semantics(lab, semantics)
        session = cls(pipeline=pipeline, lab=lab, semantics=semantics, base=base, **fields)
        session.render(RoutingEdits(), record=False)
        return session

    @property
    def size(self) -> tuple[int, int]:
        return self.lab.size

    @torch.inference_mode()
    def render(self, edits: RoutingEdits, *, record: bool = True) -> float:
        """Apply ``edits`` (replacing the previous ones); returns the milliseconds it took.
        ``record``: the previous edits can be restored by ``undo``. Edits that do not fit
        the photo (a hint outside it) raise ``EditsError`` and change nothing."""
        check_hints(edits.hints, self.size)
        previous = self.edits if self.routing is not None else None
        start = time.perf_counter()
        result = self.pipeline.run(
            self.lab,
            None if edits.empty else edits,
            semantics=self.semantics,
            cache=self.cache,
            dtype=np.uint8,
        )
        routing, self.result = result.routing, result.rgb
        self.routing, self.edits = routing, edits
        if record and previous is not None and previous != edits:
            self.history = [*self.history[-(MAX_UNDO - 1) :], previous]
        self.version += 1
        self._pngs.clear()
        self.render_ms = (time.perf_counter() - start) * 1000.0
        return self.render_ms

    def undo(self) -> bool:
        """Back to the edits before the last change; False when there is none."""
        if not self.history:
            return False
        self.render(self.history[-1], record=False)
        self.history.pop()
        return True

    # ------------------------------------------------------------------ images

    def gray(self) -> np.ndarray:
        """(H, W) uint8: the lightness the pipeline sees, as gray."""
        if self._gray is None:
            lightness = self.lab.lightness
            zeros = torch.zeros_like(lightness)
            rgb = lab_to_rgb(torch.cat([lightness, zeros, zeros], dim=1))[0, 0]
            self._gray = to_uint8(rgb.float().cpu().numpy())
        return self._gray

    def colors(self) -> dict[str, str]:
        config = self.pipeline.config
        overrides = {c.name: c.color for c in config.categories} if config else {}
        return category_colors(self.base.categories, overrides)

    def png(self, kind: str) -> bytes:
        """``gray`` and ``overlay`` (previews at most 1024 px) or ``result`` (full size)."""
        if kind not in self._pngs:
            if kind == "result":
                assert self.result is not None
                self._pngs[kind] = png_bytes(self.result, self.alpha)
            elif kind == "gray":
                self._pngs[kind] = png_bytes(self._preview(self.gray()))
            elif kind == "overlay":
                self._pngs[kind] = png_bytes(self.overlay())
            else:
                raise KeyError(kind)
        return self._pngs[kind]

    def _preview(self, image: np.ndarray) -> np.ndarray:
        size = preview_size(*self.size, PREVIEW_SIDE)
        if image.shape[:2] == size:
            return image
        return np.asarray(Image.fromarray(image).resize(size[::-1], Image.BILINEAR))

    def overlay(self) -> np.ndarray:
        """The current categories tinted over the gray preview, region borders drawn."""
        assert self.routing is not None
        gray = self._preview(self.gray()).astype(np.float32)
        labels = self.routing.category_map_at(gray.shape)
        palette = np.array(
            [hex_rgb(self.colors()[c]) for c in self.routing.categories], dtype=np.float32
        )
        tint = palette[labels]
        out = gray[..., None] * (1 - ALPHA) + tint * ALPHA
        border = ndimage.morphological_gradient(labels, size=(3, 3)) > 0
        out[border] = tint[border]
        return np.clip(out, 0, 255).astype(np.uint8)

    # ------------------------------------------------------------------ regions

    def category_of(self, region: int) -> str:
        """The category a region of the unedited routing has now."""
        for edit in reversed(self.edits.reassign):
            if edit.region == region:
                return edit.category
        return self.base.regions[region].category

    def region_info(self, region: int) -> dict[str, Any]:
        """What the page shows for a clicked region: categories before and now, classes,
        confidence, area, the result's dominant colors inside it, the profile mix."""
        assert self.routing is not None and self.result is not None
        info = {"id": region, **self.base.regions[region].to_dict()}
        now = self.category_of(region)
        expert = self.pipeline.router.expert_of[now] if self.pipeline.router else now
        info.update(category_now=now, expert_now=expert, reassigned=now != info["category"])
        mask = self.base.region_map_small == region
        small = np.asarray(Image.fromarray(self.result).resize(mask.shape[::-1], Image.BILINEAR))
        info["dominant_colors"] = dominant_colors_many([small], [mask])[0].to_dict()
        info["hint_colors"] = hint_colors(small, mask)
        choice = self.routing.profiles.get(expert)
        if choice is not None:
            info["profile"] = {
                **choice.to_dict(),
                "variants": list(choice.variants),
                "pinned": self.edits.profiles.get(expert),
            }
        return info

    def describe(self) -> dict[str, Any]:
        """The photo as the page and scripts see it (JSON-ready)."""
        assert self.routing is not None
        router = self.pipeline.router
        assert router is not None
        height, width = self.size
        variants = router.variants
        radius = default_radius(self.size, tuple(self.lab.l_small.shape[-2:]))
        experts = self.pipeline.experts.values()
        return {
            "id": self.id,
            "name": self.name,
            "width": width,
            "height": height,
            "version": self.version,
            "render_ms": round(self.render_ms, 1),
            "summary": self.routing.summary() or "nothing found",
            "categories": [
                {
                    "name": name,
                    "color": color,
                    "expert": router.expert_of[name],
                    "variants": list(variants.get(router.expert_of[name], ())),
                    "share_percent": round(self.routing.shares.get(name, 0.0), 2),
                }
                for name, color in self.colors().items()
            ],
            "regions": [
                {"id": i, **r.to_dict(), "category_now": self.category_of(i)}
                for i, r in enumerate(self.base.regions)
            ],
            "profiles": {k: c.to_dict() for k, c in self.routing.profiles.items()},
            "edits": self.edits.to_dict(),
            # the chroma gain the result has: the photo's own (an edit) or the pipeline's
            "vividness": self.pipeline.vividness_for(self.edits),
            "style": self.pipeline.style_for(self.edits),
            "styles": list(STYLES),
            "hints": [
                {"index": i, "kind": "point" if h.is_point else "stroke", **h.to_dict()}
                for i, h in enumerate(self.edits.hints)
            ],
            "hint_defaults": {"radius": round(radius, 2), "width": round(2 * radius, 2)},
            # whether these experts can answer hints and the vivid style at all (older ones
            # ignore them: the page says so rather than leave the user guessing)
            "reads_hints": any(m.takes_hints for ms in experts for m in ms),
            "has_vivid": any(m.has_bins for ms in experts for m in ms),
            "can_undo": bool(self.history),
        }

    def routing_report(self) -> dict[str, Any]:
        """routing.json as ``segcolor inspect`` writes it (regions with dominant colors), for
        the current edits."""
        assert self.routing is not None and self.result is not None
        report = {"image": self.name, **self.routing.to_dict()}
        colors = region_colors(self.routing, self.result)
        for region, dcd in zip(report["regions"], colors, strict=True):
            region["dominant_colors"] = dcd
        report["edits"] = self.edits.to_dict()
        return report


def hint_colors(rgb: np.ndarray, mask: np.ndarray, count: int = HINT_SWATCHES) -> list[dict]:
    """The few chromas (Lab a, b) that dominate a region of the result (``rgb`` (h, w, 3)
    uint8, ``mask`` (h, w) bool): colors to offer for a hint. The clustering is the MPEG-7
    DCD's, on a, b alone (a hint gives only a, b: the photo keeps its lightness); each swatch
    shows its a, b at the lightness nearest the region's median that sRGB can show them at."""
    if subsample(mask).any():  # a few thousand pixels tell the colors (a speck keeps all)
        rgb, mask = subsample(rgb), subsample(mask)
    if not mask.any():
        return []
    lab = rgb_to_lab(torch.from_numpy(np.array(rgb, np.float32)).permute(2, 0, 1)[None] / 255.0)
    median = float(np.clip(np.median(lab[0, 0].numpy()[mask]), *SWATCH_LIGHTNESS))
    lab[:, 0] = median  # one lightness: the distances are between chromas alone
    weight = torch.from_numpy(mask.astype(np.float32))[None]
    dcd = dominant_colors_lab(lab, weight, td=8.0)[0]
    out = []
    for color, share in zip(dcd.colors, dcd.percents, strict=True):
        if share < 0.03 or len(out) == count:
            continue
        a, b = float(color[1]), float(color[2])
        out.append(
            {
                "hex": _swatch_hex(a, b, median),
                "a": round(a, 1),
                "b": round(b, 1),
                "percent": round(float(share) * 100, 1),
            }
        )
    return out


def _swatch_hex(a: float, b: float, lightness: float) -> str:
    """``#rrggbb`` of chroma (a, b) at the lightness nearest ``lightness`` whose 8-bit sRGB
    keeps that a, b best (a hint read from the swatch then asks for the chroma it shows)."""
    levels = torch.arange(20.0, 91.0, 2.5, dtype=torch.float64)
    lab = torch.stack([levels, torch.full_like(levels, a), torch.full_like(levels, b)])
    rgb = torch.round(lab_to_rgb(lab[None, :, :, None])[0, :, :, 0] * 255) / 255  # (3, n)
    back = rgb_to_lab(rgb[None, :, :, None])[0, :, :, 0]
    error = torch.hypot(back[1] - a, back[2] - b)
    best = int(torch.argmin(error + 0.02 * (levels - lightness).abs()))
    return "#{:02x}{:02x}{:02x}".format(*(round(float(v) * 255) for v in rgb[:, best]))


class SessionStore:
    """Photos by id, the least recently used dropped beyond ``limit`` (memory stays bounded)."""

    def __init__(self, limit: int = 20) -> None:
        self.limit = limit
        self._items: OrderedDict[str, PhotoSession] = OrderedDict()
        self._lock = threading.Lock()

    def add(self, session: PhotoSession) -> None:
        with self._lock:
            self._items[session.id] = session
            while len(self._items) > self.limit:
                self._items.popitem(last=False)

    def get(self, key: str) -> PhotoSession | None:
        with self._lock:
            session = self._items.get(key)
            if session is not None:
                self._items.move_to_end(key)
            return session

    def remove(self, key: str) -> bool:
        with self._lock:
            return self._items.pop(key, None) is not None

    def all(self) -> list[PhotoSession]:
        with self._lock:
            return list(self._items.values())
