"""Does the video stabilizer steady the colors without costing accuracy? Naive vs stabilized.

    SEGCOLOR_WEIGHTS_DIR=../shared/weights python bench/video_stability.py [--pipeline YAML]
    python bench/video_stability.py --no-synthetic --real-frames 60 --clips color --threads 1
    python bench/video_stability.py --no-synthetic --clips dog --real-frames 20   # a quick look

Clips:

- synthetic: a virtual camera pans or zooms over a color photo (COCO and DAVIS frames of
  data/eval_masks, photos of data/train), 192x144, 24 frames, sub-pixel motion; the rendered
  color frames are the ground truth and the pipeline sees only their lightness;
- real: the first ``--real-frames`` frames of every clip in data/video (the color ones give
  ground truth too; the B&W films do not).

Measures, for the naive mode (every frame colorized alone) and the stabilized one:

- flicker: the mean ab change (Euclidean, Lab units, on the output frames as written) between
  frame t and frame t-1 brought to the same scene point. On synthetic clips frame t-1 is moved
  by the exact camera motion (known, not estimated: the stabilizer's own optical flow is not
  the judge); pixels count where that motion is valid and the ground truth's L agrees within 2
  after the move (the ground truth's own residual ab change there is the floor, column "gt").
  On real clips there is no true motion, so only static pixels count: those whose input L
  changes by less than 2 within their 5x5 neighbourhood (the share is given);
- flips: the share of those same pixels whose routed category differs from frame t-1's;
- warp error (Lai et al. 2018; bench/video_metrics.py has the exact definitions): output frame
  t-1 moved onto frame t along OpenCV DIS flow (``--flow``) computed on the full-resolution
  *reference* frames (the color original's gray, or the B&W film itself; never the output),
  compared with output frame t where the forward-backward check (and the motion-boundary test)
  finds no occlusion: "warp Δab" is the mean Euclidean ab distance in Lab units, "E_warp" Lai
  et al.'s mean squared RGB distance (RGB in [0, 1], x 10^3), "noc" the share of pixels
  compared. Every pixel that the flow explains counts, moving ones too. Frame pairs across a
  scene cut (segcolor's cut detector on the reference frames) are left out, here and in CDC;
- CDC (color distribution consistency, Liu et al.'s TCVC, as in NTIRE 2023 / BiSTNet /
  ColorMNet): Jensen-Shannon divergence (nats) of per-channel 256-bin RGB histograms of frames
  t and t+1, averaged over t and channels (x 10^3); "CDC 1,2,4" averages gaps 1, 2 and 4 as
  the reference code does;
- PSNR (RGB) and mean CIEDE2000 against the color source, where there is one;
- fps: frames per second of the colorization loop alone (no decoding, no metrics).

Where the clip has true colors, a row "original" gives the same measures of the color source
itself: the floor of every temporal measure (real motion, light, compression noise).
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import sys
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
from PIL import Image
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio

import video_metrics as vm
from common import Timer, random_pipeline_yaml, shared, table_header

CLIP_SIZE = (192, 144)  # width, height of the synthetic clips
STATIC_L = vm.STATIC_L  # L units: "barely changes"
MODES = ("naive", "stabilized")
ORIGINAL = "original"  # the color source's own measures (a table row, not a mode)
ROWS = (*MODES, ORIGINAL)


@dataclass
class Clip:
    """Frames (uint8 RGB), whether they are true colors, and the known motion if any."""

    name: str
    group: str
    frames: list[np.ndarray]
    has_truth: bool
    to_previous: list[np.ndarray | None] = field(default_factory=list)  # 2x3: t -> t-1 coords


# ------------------------------------------------------------------ clips


def pick_photos(root: Path, limit: int) -> list[Path]:
    """A fixed, varied set: COCO (people, animals), DAVIS, and each training category."""
    masks = root / "data/eval_masks"
    train = root / "data/train"
    candidates = [
        sorted((masks / "coco128").glob("*.jpg")),
        sorted((masks / "davis2016").glob("*.jpg")),
        sorted((train / "people").glob("*.jpg")),
        sorted((train / "animals").glob("*.jpg")),
        sorted((train / "birds").glob("*.jpg")),
        sorted((train / "places").glob("*.jpg")),
        sorted((masks / "coco_taming_train100").glob("*.jpg")),
    ]
    photos: list[Path] = []
    for r in range(limit):
        group = [p for p in candidates[r % len(candidates)] if p.is_file()]
        if not group:
            continue
        index = (r // len(candidates)) * 11
        while index < len(group) and min(Image.open(group[index]).size) < 128:
            index += 1
        if index < len(group):
            photos.append(group[index])
    return photos


def camera(kind: str, t: int, frames: int, source: tuple[int, int]) -> np.ndarray:
    """3x3 matrix from output pixels to source pixels at frame ``t``."""
    width, height = CLIP_SIZE
    src_w, src_h = source
    fit = min(src_w / width, src_h / height)  # source px per output px when the view fills
    progress = t / max(frames - 1, 1)
    if kind == "pan":
        scale = 0.8 * fit
        room_x = src_w - width * scale
        room_y = src_h - height * scale
        cx = width * scale / 2 + room_x * (0.1 + 0.8 * progress)
        cy = height * scale / 2 + room_y * (0.3 + 0.4 * progress)
    else:  # zoom in by 25 % about a slowly drifting center
        scale = fit * (0.95 - 0.25 * progress)
        cx = src_w / 2 + 0.05 * src_w * progress
        cy = src_h / 2 - 0.03 * src_h * progress
    return np.array(
        [[scale, 0, cx - scale * width / 2], [0, scale, cy - scale * height / 2], [0, 0, 1]]
    )


def synthetic_clip(photo: Path, kind: str, frames: int) -> Clip:
    rgb = np.asarray(Image.open(photo).convert("RGB"))
    size = (rgb.shape[1], rgb.shape[0])
    mats = [camera(kind, t, frames, size) for t in range(frames)]
    flags = cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP
    clip_frames = [
        cv2.warpAffine(rgb, m[:2], CLIP_SIZE, flags=flags, borderMode=cv2.BORDER_REFLECT)
        for m in mats
    ]
    to_prev: list[np.ndarray | None] = [None]
    for t in range(1, frames):
        to_prev.append((np.linalg.inv(mats[t - 1]) @ mats[t])[:2])
    return Clip(f"{photo.parent.name}/{photo.stem}", kind, clip_frames, True, to_prev)


def real_clips(root: Path, limit: int, names: list[str] | None = None) -> Iterator[Clip]:
    """The first ``limit`` frames of each clip of data/video whose name contains one of
    ``names`` (all of them without)."""
    import av

    for path in sorted((root / "data/video").glob("*.mp4")):
        if names and not any(n in path.stem for n in names):
            continue
        frames = []
        with av.open(str(path)) as container:
            for frame in container.decode(video=0):
                frames.append(frame.to_ndarray(format="rgb24"))
                if len(frames) >= limit:
                    break
        color = path.name.startswith("color")
        yield Clip(path.stem, "real color" if color else "real B&W", frames, color)


# ------------------------------------------------------------------ measures


@dataclass
class Scores:
    flicker: list[float] = field(default_factory=list)
    gt_flicker: list[float] = field(default_factory=list)
    flips: list[float] = field(default_factory=list)
    valid_share: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    delta_e: list[float] = field(default_factory=list)
    warp_ab: list[float] = field(default_factory=list)  # per frame pair
    warp_rgb: list[float] = field(default_factory=list)
    noc_share: list[float] = field(default_factory=list)
    cdc: list[float] = field(default_factory=list)  # per clip
    cdc124: list[float] = field(default_factory=list)
    frames: int = 0
    seconds: float = 0.0


LISTS = (
    "flicker", "gt_flicker", "flips", "valid_share", "psnr", "delta_e",
    "warp_ab", "warp_rgb", "noc_share", "cdc", "cdc124",
)  # fmt: skip


def clip_motions(
    clip: Clip, flow: vm.FlowEstimator, cuts: list[int] | None = None
) -> list[vm.Motion | None]:
    """Motion from each reference frame to the next (None for the first and at ``cuts``): the
    flow of the color source (or the B&W film), shared by every mode's warp error."""
    return [None] + [
        None if t in (cuts or []) else vm.motion_between(clip.frames[t - 1], clip.frames[t], flow)
        for t in range(1, len(clip.frames))
    ]


def run_clip(pipeline, clip: Clip, options) -> tuple[list[np.ndarray], list[np.ndarray], float]:
    """Colorize a clip; outputs (uint8), category maps at output size, and seconds taken."""
    from segcolor.pipeline import to_uint8
    from segcolor.video.stabilize import Stabilizer

    stabilizer = Stabilizer(pipeline, options)
    outputs, categories = [], []
    seconds = 0.0
    for frame in clip.frames:
        with Timer() as timer:
            result = stabilizer.process(frame)
            out = to_uint8(result.rgb)
        seconds += timer.seconds
        outputs.append(out)
        if result.routing is not None:
            cats = result.routing.category_map_small.astype(np.uint8)
            categories.append(cv2.resize(cats, out.shape[1::-1], interpolation=cv2.INTER_NEAREST))
    return outputs, categories, seconds


def _move(image: np.ndarray, to_prev: np.ndarray, nearest: bool = False) -> np.ndarray:
    """Frame t-1's ``image`` resampled at frame t's pixels."""
    interp = cv2.INTER_NEAREST if nearest else cv2.INTER_LINEAR
    height, width = image.shape[:2]
    return cv2.warpAffine(
        image, to_prev, (width, height), flags=interp | cv2.WARP_INVERSE_MAP,
        borderMode=cv2.BORDER_REPLICATE,
    )  # fmt: skip


def score_clip(
    clip: Clip,
    outputs: list[np.ndarray],
    cats: list[np.ndarray],
    into: Scores,
    motions: list[vm.Motion | None] | None = None,
    truth: list[np.ndarray] | None = None,
    cuts: list[int] | None = None,
) -> None:
    labs = [rgb2lab(o).astype(np.float32) for o in outputs]
    truth = truth or [rgb2lab(f).astype(np.float32) for f in clip.frames]
    height, width = outputs[0].shape[:2]
    for t in range(1, len(outputs)):
        to_prev = clip.to_previous[t] if clip.to_previous else None
        if to_prev is not None:  # known camera motion
            moved_out = _move(labs[t - 1], to_prev)
            moved_gt = _move(truth[t - 1], to_prev)
            ys, xs = np.mgrid[0:height, 0:width].astype(np.float32)
            px = to_prev[0, 0] * xs + to_prev[0, 1] * ys + to_prev[0, 2]
            py = to_prev[1, 0] * xs + to_prev[1, 1] * ys + to_prev[1, 2]
            inside = (px >= 1) & (px <= width - 2) & (py >= 1) & (py <= height - 2)
            valid = inside & (np.abs(truth[t][..., 0] - moved_gt[..., 0]) < STATIC_L)
            moved_cat = _move(cats[t - 1], to_prev, nearest=True) if cats else None
            into.gt_flicker.append(_ab_distance(truth[t], moved_gt, valid))
        else:  # genuinely static pixels of the input
            valid = vm.static_mask(truth[t - 1][..., 0], truth[t][..., 0], STATIC_L)
            moved_out = labs[t - 1]
            moved_cat = cats[t - 1] if cats else None
        motion = motions[t] if motions else None
        if motion is not None and motion.valid.any():
            into.noc_share.append(motion.valid_share)
            into.warp_ab.append(vm.warp_error_ab(labs[t - 1], labs[t], motion))
            into.warp_rgb.append(vm.warp_error_rgb(outputs[t - 1], outputs[t], motion))
        if valid.mean() < 0.01:  # a cut, or everything moves: nothing to compare
            continue
        into.valid_share.append(float(valid.mean()))
        into.flicker.append(_ab_distance(labs[t], moved_out, valid))
        if moved_cat is not None:
            into.flips.append(float((cats[t] != moved_cat)[valid].mean()))
    if len(outputs) > 1:
        into.cdc.append(vm.cdc(outputs, (1,), cuts=cuts or ()))
        into.cdc124.append(vm.cdc(outputs, (1, 2, 4), cuts=cuts or ()))
    if clip.has_truth and outputs is not clip.frames:
        for out, gt, lab_out, lab_gt in zip(outputs, clip.frames, labs, truth, strict=True):
            into.psnr.append(peak_signal_noise_ratio(gt, out, data_range=255))
            into.delta_e.append(float(deltaE_ciede2000(lab_gt, lab_out).mean()))


def _ab_distance(a: np.ndarray, b: np.ndarray, mask: np.ndarray) -> float:
    return vm.ab_distance(a, b, mask)


# ------------------------------------------------------------------ report


def _mean(values: list[float], fmt: str) -> str:
    return format(statistics.fmean(values), fmt) if values else "–"


def table(results: dict[tuple[str, str], Scores]) -> list[str]:
    columns = (
        "clips, mode, flicker Δab, gt, flips %, static %, warp Δab, E_warp ×10³, noc %, "
        "CDC ×10³, CDC 1,2,4 ×10³, PSNR dB, ΔE2000, fps"
    )
    lines = [table_header(columns.split(", "), "ll" + "r" * 12)]
    groups = list(dict.fromkeys(group for group, _ in results))
    for group, mode in sorted(results, key=lambda k: (groups.index(k[0]), ROWS.index(k[1]))):
        s = results[(group, mode)]
        fps = f"{s.frames / s.seconds:.1f}" if s.seconds else "–"
        flips = [100 * f for f in s.flips]
        share = [100 * v for v in s.valid_share]
        noc = [100 * v for v in s.noc_share]
        lines.append(
            f"| {group} | {mode} | {_mean(s.flicker, '.3f')} | {_mean(s.gt_flicker, '.2f')} "
            f"| {_mean(flips, '.2f')} | {_mean(share, '.0f')} | {_mean(s.warp_ab, '.3f')} "
            f"| {_mean([1e3 * v for v in s.warp_rgb], '.3f')} | {_mean(noc, '.0f')} "
            f"| {_mean([1e3 * v for v in s.cdc], '.3f')} "
            f"| {_mean([1e3 * v for v in s.cdc124], '.3f')} | {_mean(s.psnr, '.2f')} "
            f"| {_mean(s.delta_e, '.2f')} | {fps} |"
        )
    return lines


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--pipeline", type=Path, help="pipeline YAML (default: shipped experts)")
    parser.add_argument("--random-experts", action="store_true", help="random-init experts")
    parser.add_argument("--device", default="auto")
    parser.add_argument("--photos", type=int, default=6, help="photos for synthetic clips")
    parser.add_argument("--frames", type=int, default=24, help="frames per synthetic clip")
    parser.add_argument("--real-frames", type=int, default=45, help="frames per real clip")
    parser.add_argument("--no-real", action="store_true", help="synthetic clips only")
    parser.add_argument("--no-synthetic", action="store_true", help="real clips only")
    parser.add_argument(
        "--clips", nargs="+", metavar="NAME",
        help="real clips whose file name contains one of these (e.g. color dog); default all",
    )  # fmt: skip
    parser.add_argument(
        "--flow", choices=vm.FLOW_METHODS, default="dis", help="flow of the warp error"
    )
    parser.add_argument("--no-original", action="store_true", help="skip the 'original' rows")
    parser.add_argument("--threads", type=int, help="torch threads (default: torch's)")
    parser.add_argument("--routing-alpha", type=float, help="stabilizer setting (default: video's)")
    parser.add_argument("--color-alpha", type=float, help="stabilizer setting (default: video's)")
    parser.add_argument("--profile-alpha", type=float, help="stabilizer setting (default: video's)")
    parser.add_argument("--feature-alpha", type=float, help="stabilizer setting (default: video's)")
    args = parser.parse_args()
    root = shared()
    if not (root / "data").is_dir():
        print(f"no shared data under {root} (set SEGCOLOR_SHARED_DIR)", file=sys.stderr)
        return 2
    if args.threads:
        torch.set_num_threads(args.threads)
    from segcolor.pipeline import Pipeline
    from segcolor.video.stabilize import StabilizerOptions

    with tempfile.TemporaryDirectory() as tmp:
        if args.random_experts:
            pipeline = Pipeline.from_config(random_pipeline_yaml(Path(tmp), 256), args.device)
            experts = "random-init experts"
        elif args.pipeline:
            pipeline = Pipeline.from_config(args.pipeline, device=args.device)
            experts = f"experts of {args.pipeline}"
        else:
            pipeline = Pipeline.default(device=args.device)
            experts = "shipped experts (Pipeline.default())"
    steady = {
        k: v
        for k, v in (
            ("routing_alpha", args.routing_alpha),
            ("color_alpha", args.color_alpha),
            ("profile_alpha", args.profile_alpha),
            ("feature_alpha", args.feature_alpha),
        )
        if v
    }
    options = {"naive": StabilizerOptions(enabled=False), "stabilized": StabilizerOptions(**steady)}
    clips: list[Clip] = []
    if not args.no_synthetic:
        for photo in pick_photos(root, args.photos):
            clips += [synthetic_clip(photo, kind, args.frames) for kind in ("pan", "zoom")]
    if not args.no_real:
        clips += list(real_clips(root, args.real_frames, args.clips))
    if not clips:
        print("no clips selected", file=sys.stderr)
        return 2
    flow = vm.FlowEstimator(args.flow)
    results: dict[tuple[str, str], Scores] = {}
    per_clip: list[str] = []
    for clip in clips:
        groups = ["synthetic (all)", f"synthetic {clip.group}"] if clip.to_previous else []
        groups = groups or [clip.name]
        cuts = vm.scene_cuts(clip.frames) if not clip.to_previous else []
        motions = clip_motions(clip, flow, cuts)
        truth = [rgb2lab(f).astype(np.float32) for f in clip.frames]
        rows = [*MODES, ORIGINAL] if clip.has_truth and not args.no_original else MODES
        line = []
        for mode in rows:
            if mode == ORIGINAL:  # the source's own change: the floor of each measure
                outputs, cats, seconds = clip.frames, [], 0.0
            else:
                outputs, cats, seconds = run_clip(pipeline, clip, options[mode])
            scores = Scores()
            score_clip(clip, outputs, cats, scores, motions, truth, cuts)
            scores.frames, scores.seconds = len(outputs), seconds
            for group in groups:
                _merge(results.setdefault((group, mode), Scores()), scores)
            line.append(
                f"{mode} flicker {_mean(scores.flicker, '.3f')} warp {_mean(scores.warp_ab, '.3f')}"
                f" CDC {_mean([1e3 * v for v in scores.cdc], '.3f')}e-3"
            )
        cut_note = f" (cuts at frames {', '.join(map(str, cuts))})" if cuts else ""
        per_clip.append(f"{clip.group:>10} {clip.name}{cut_note}: {', '.join(line)}")
        print(per_clip[-1], file=sys.stderr, flush=True)
    print("\n".join(table(results)))
    synth = [results.get(("synthetic (all)", m)) for m in MODES]
    if all(synth):
        naive, stab = (statistics.fmean(s.flicker) for s in synth)  # type: ignore[union-attr]
        de = [statistics.fmean(s.delta_e) for s in synth]  # type: ignore[union-attr]
        print(
            f"\nSynthetic clips: stabilized flicker is {stab / naive:.0%} of naive "
            f"({naive:.2f} -> {stab:.2f}); ΔE2000 {de[0]:.2f} -> {de[1]:.2f}."
        )
    print(f"\nExperts: {experts}; device {pipeline.device}; working size {pipeline.working_size}.")
    print("Command: " + shlex.join(["python", *sys.argv]))
    return 0


def _merge(total: Scores, part: Scores) -> None:
    for name in LISTS:
        getattr(total, name).extend(getattr(part, name))
    total.frames += part.frames
    total.seconds += part.seconds


if __name__ == "__main__":
    sys.exit(main())
