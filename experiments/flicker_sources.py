"""Why do the experts flicker frame by frame? Each candidate source held still in turn.

Issue 29, item 2. The shipped experts (resnet18_unet_semantic) fuse the segmenter's DeepLab ASPP
features at stride 8; the routing gives them soft masks; the places variants are mixed per frame
by a profile classifier; everything runs at the working size. In the NAIVE mode (every frame
colorized on its own: no stabilizer) each variant below changes one thing, on the first
``--frames`` frames of the real color clips of data/video:

- ``shipped``: the shipped pipeline, every frame alone (= the bench's naive mode);
- ``feat-frame0`` / ``feat-ema`` / ``feat-ema-flow``: the segmenter's features fed to the experts
  are frame 0's / a running mean (``--feature-alpha`` of the new frame, no motion) / the same
  running mean carried along the flow (DIS on the working-size L, the stabilizer's
  ``FlowEstimator``; the new frame's features where the flow is not trusted); the routing
  (class probabilities) and the profile mix stay per frame;
  ``feat-ema-flow-slow``: the same with ``--slow-alpha``;
- ``feat-pool-frame0`` / ``feat-local-frame0``: the segmenter's ASPP has two branches, a 1x1
  conv of each cell (local, whose receptive field is most of the image) and the image-pooling
  branch (one vector for the whole frame, broadcast to every cell); the features are recomputed
  with the pooling branch's vector / the local branch held at frame 0's (one more segmenter
  pass per frame);
- ``no-feat``: the experts get no features at all (they were trained with feature dropout);
- ``route-frame0`` / ``route-ema-flow``: the class probabilities (hence regions, soft masks and
  boxes) are frame 0's / the stabilizer's running mean along the flow (``--routing-alpha``);
  features and profile mix per frame;
- ``profile-frame0``: the places variants are mixed by frame 0's P(profile); all else per frame;
- ``all-frame0``: features, class probabilities and P(profile) all frame 0's: what remains is the
  experts' own answer to the change of their input L (the trunk);
- ``general``, ``general-no-feat``, ``general-feat-frame0``: the shipped general model alone on
  every pixel (no routing, no profiles) with each frame's features, none, frame 0's;
- ``round1`` / ``round1-all-frame0``: the experts shipped before routed training (git
  ``--round1``, no semantic features) in the same pipeline, per frame / with class
  probabilities and P(profile) frame 0's;
- ``native-size``: the shipped pipeline with no resampling to the working size (working size =
  the clip's short side; the carphone clip, 144 px, is never resampled anyway).

Measures per clip (bench/video_metrics.py): static-pixel flicker (mean ab change in Lab units on
pixels whose input L moves < 2 in a 5x5 neighbourhood, as bench/video_stability.py), warp error
(mean ab distance to the previous output moved along DIS flow of the color original, over
non-occluded pixels; Lab units), CDC (x 10^3), PSNR and ΔE2000 against the color original
(ΔE2000 on every ``--de-every``-th frame, it is slow). Besides, how much the inputs of the
experts themselves jitter on still pixels: the input L (full size, and at the working size), the
segmenter features (relative change ||f_t - f_t-1|| / ||f_t|| on feature cells that are still;
also split into the part due to the pooling branch alone, and the change that Gaussian noise
of ``--noise`` L units on a still frame causes, every ``--probe-every``-th frame), the class
probabilities (mean L1 change) and P(profile) (L1 change).

    python experiments/flicker_sources.py --frames 60 --threads 1
    python experiments/flicker_sources.py --clips dog --frames 20 --variants shipped feat-frame0

Set OMP_WAIT_POLICY=PASSIVE on a shared CPU.
"""

from __future__ import annotations

import argparse
import shlex
import statistics
import subprocess
import sys
import time
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import cv2
import numpy as np
import torch
import torch.nn.functional as F
from skimage.color import deltaE_ciede2000, rgb2lab
from skimage.metrics import peak_signal_noise_ratio

from segcolor.feature_grid import features_on_grid
from segcolor.pipeline import GENERAL_EXPERT, LabImage, Pipeline
from segcolor.video.flow import FlowEstimator
from segcolor.video.flow import Motion as WorkingMotion

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "bench"))
import video_metrics as vm  # noqa: E402
from common import REPO, shared, table_header  # noqa: E402

ROUND1 = "4ec42cb"  # the last commit before routed training: experts without features
VARIANTS = (
    "shipped",
    "feat-frame0",
    "feat-ema",
    "feat-ema-flow",
    "feat-ema-flow-slow",
    "feat-pool-frame0",
    "feat-local-frame0",
    "no-feat",
    "route-frame0",
    "route-ema-flow",
    "profile-frame0",
    "all-frame0",
    "general",
    "general-no-feat",
    "general-feat-frame0",
    "round1",
    "round1-all-frame0",
    "native-size",
)


# ------------------------------------------------------------------ per-frame inputs


@dataclass
class Frame:
    """What every variant of one frame shares (computed once)."""

    t: int
    rgb: np.ndarray  # uint8 (H,W,3), the color original
    lab: LabImage  # the pipeline's input (its L)
    probs: torch.Tensor  # (1,C,h,w) class probabilities
    features: torch.Tensor  # (1,F,gh,gw) the segmenter's ASPP features, its own grid
    motion: WorkingMotion | None  # working-size motion from the previous frame (None at t=0)


def grid_motion(motion: WorkingMotion, size: tuple[int, int]) -> WorkingMotion:
    """The working-size motion resampled to another grid spanning the same image corner to
    corner (the segmenter's feature grid): both use align_corners coordinates."""
    grid = F.interpolate(
        motion.grid.permute(0, 3, 1, 2), size=size, mode="bilinear", align_corners=True
    ).permute(0, 2, 3, 1)
    trust = F.interpolate(motion.trust, size=size, mode="area")
    return WorkingMotion(grid=grid.contiguous(), trust=trust)


def blend(previous: torch.Tensor, fresh: torch.Tensor, motion, alpha: float) -> torch.Tensor:
    """The stabilizer's rule: ``alpha`` of the fresh value where the carried one is trusted,
    all of it where not (``motion`` None: no motion, everything trusted)."""
    if motion is None:
        return previous + alpha * (fresh - previous)
    carried = motion.warp(previous)
    weight = 1.0 - (1.0 - alpha) * motion.trust
    return carried + weight * (fresh - carried)


# ------------------------------------------------------------------ variants


@dataclass
class Variant:
    """A way to colorize frame t given the shared inputs; keeps its own state."""

    name: str
    step: Callable[[Frame, dict], torch.Tensor]  # -> ab (1,2,h,w) at the working size
    state: dict = field(default_factory=dict)
    lab_of: Callable[[Frame], LabImage] | None = None  # its own input (native-size)


def routed_ab(
    pipe: Pipeline,
    lab: LabImage,
    probs: torch.Tensor,
    features: torch.Tensor | None,
    profiles: dict[str, dict[str, float]] | None = None,
    state: dict | None = None,
) -> torch.Tensor:
    """Route and merge; ``profiles`` (expert -> P(profile)) replaces the per-frame mix of those
    experts; ``state`` (if given) records the first P(profile) seen of each gated expert."""
    routing = pipe.route_probs(lab, probs, features)
    if state is not None:
        seen = state.setdefault("profiles", {})
        for expert, choice in routing.profiles.items():
            seen.setdefault(expert, dict(choice.probabilities))
    for expert, probabilities in (profiles or {}).items():
        if expert in routing.profiles:
            routing.profiles[expert] = pipe.router.gates[expert].mix(probabilities)
    return pipe.merge_routed(lab, routing)[0]


def first(state: dict, key: str, value):
    """``state[key]``, set to ``value`` the first time."""
    return state.setdefault(key, value)


def make_variants(names: list[str], pipe: Pipeline, args) -> list[Variant]:
    general = general_nofeat = round1 = native = None
    if any(n.startswith("general") for n in names):
        general = Pipeline.from_expert(GENERAL_EXPERT, device=pipe.device, features=False)
        general.working_size = pipe.working_size
        general_nofeat = general  # features passed explicitly below; None -> zeros (dropout)
    if any(n.startswith("round1") for n in names):
        round1 = Pipeline.from_config(round1_pipeline(args.round1), device=pipe.device)
    if "native-size" in names:
        native = Pipeline.default(device=pipe.device, working_size=100_000)  # never resampled
    fa, ra = args.feature_alpha, args.routing_alpha

    def grid(f: Frame, features: torch.Tensor | None) -> torch.Tensor | None:
        return None if features is None else features_on_grid(features, f.lab.l_small.shape[-2:])

    def shipped(f, s):
        return routed_ab(pipe, f.lab, f.probs, f.features)

    def feat_frame0(f, s):
        return routed_ab(pipe, f.lab, f.probs, first(s, "features", f.features))

    def feat_ema(f, s, along_flow=False, alpha=fa):
        previous = s.get("features")
        if previous is None:
            features = f.features
        else:
            motion = f.motion and grid_motion(f.motion, tuple(f.features.shape[-2:]))
            features = blend(previous, f.features, motion if along_flow else None, alpha)
        s["features"] = features
        return routed_ab(pipe, f.lab, f.probs, features)

    def feat_branch_frame0(f, s, hold: str):
        pooled, local = aspp_branches(pipe, f.lab)
        if hold == "pooled":
            pooled = first(s, "pooled", pooled)
        else:
            local = first(s, "local", local)
        return routed_ab(pipe, f.lab, f.probs, project(pipe, pooled, local))

    def no_feat(f, s):
        return routed_ab(pipe, f.lab, f.probs, None)

    def route_frame0(f, s):
        return routed_ab(pipe, f.lab, first(s, "probs", f.probs), f.features)

    def route_ema_flow(f, s):
        previous = s.get("probs")
        probs = f.probs if previous is None else blend(previous, f.probs, f.motion, ra)
        s["probs"] = probs
        return routed_ab(pipe, f.lab, probs, f.features)

    def profile_frame0(f, s):
        return routed_ab(pipe, f.lab, f.probs, f.features, s.get("profiles"), s)

    def all_frame0(f, s, model=pipe):
        probs = first(s, "probs", f.probs)
        features = first(s, "features", f.features)
        return routed_ab(model, f.lab, probs, features, s.get("profiles"), s)

    def general_feat(f, s):
        return general.predict_ab(f.lab, features=grid(f, f.features))

    def general_no_feat(f, s):
        return general_nofeat.predict_ab(f.lab, features=None)

    def general_feat_frame0(f, s):
        return general.predict_ab(f.lab, features=grid(f, first(s, "features", f.features)))

    def round1_ab(f, s):
        return routed_ab(round1, f.lab, f.probs, None)

    def round1_all_frame0(f, s):
        return all_frame0(f, s, model=round1)

    def native_ab(f, s):
        lab = s["lab"]
        semantics = native.segment(lab)
        probs, features = semantics.probs, semantics.features
        return routed_ab(native, lab, probs, features)

    def native_lab(f: Frame) -> LabImage:
        return native.lab(f.rgb)

    table = {
        "shipped": shipped,
        "feat-frame0": feat_frame0,
        "feat-ema": feat_ema,
        "feat-ema-flow": lambda f, s: feat_ema(f, s, along_flow=True),
        "feat-ema-flow-slow": lambda f, s: feat_ema(f, s, along_flow=True, alpha=args.slow_alpha),
        "feat-pool-frame0": lambda f, s: feat_branch_frame0(f, s, "pooled"),
        "feat-local-frame0": lambda f, s: feat_branch_frame0(f, s, "local"),
        "no-feat": no_feat,
        "route-frame0": route_frame0,
        "route-ema-flow": route_ema_flow,
        "profile-frame0": profile_frame0,
        "all-frame0": all_frame0,
        "general": general_feat,
        "general-no-feat": general_no_feat,
        "general-feat-frame0": general_feat_frame0,
        "round1": round1_ab,
        "round1-all-frame0": round1_all_frame0,
        "native-size": native_ab,
    }
    return [Variant(n, table[n], lab_of=native_lab if n == "native-size" else None) for n in names]


def aspp_branches(pipe: Pipeline, lab: LabImage) -> tuple[torch.Tensor, torch.Tensor]:
    """The DeepLab ASPP's two branches before their projection: (pooled (1,256,1,1), local
    (1,256,gh,gw)), as ``DeepLabV3MobileNetV2.net_features`` computes them."""
    seg = pipe.router.segmenter
    feat = seg.features(seg.net_input(pipe.gray_rgb(lab)))
    pooled = F.relu(seg.image_pooling(feat.mean((2, 3), keepdim=True)))
    return pooled, F.relu(seg.aspp0(feat))


def project(pipe: Pipeline, pooled: torch.Tensor, local: torch.Tensor) -> torch.Tensor:
    """The ASPP features from its two branches (``net_features``' projection)."""
    seg = pipe.router.segmenter
    return F.relu(seg.concat_projection(torch.cat([pooled.expand_as(local), local], 1)))


def round1_pipeline(commit: str) -> Path:
    """The shipped pipeline of ``commit`` (extracted with ``git archive`` under out/)."""
    folder = REPO / "out" / "flicker_sources" / f"weights-{commit}"
    yaml = folder / "segcolor" / "weights" / "pipeline.yaml"
    if not yaml.is_file():
        folder.mkdir(parents=True, exist_ok=True)
        archive = subprocess.run(
            ["git", "-C", str(REPO), "archive", commit, "segcolor/weights"],
            check=True,
            capture_output=True,
        ).stdout
        subprocess.run(["tar", "-x", "-C", str(folder)], input=archive, check=True)
    return yaml


# ------------------------------------------------------------------ measures


@dataclass
class Tally:
    """One variant on one clip, accumulated frame by frame."""

    flicker: list[float] = field(default_factory=list)
    warp: list[float] = field(default_factory=list)
    psnr: list[float] = field(default_factory=list)
    delta_e: list[float] = field(default_factory=list)
    hists: list[np.ndarray] = field(default_factory=list)
    seconds: float = 0.0
    previous: np.ndarray | None = None  # the previous output's Lab

    def add(self, out: np.ndarray, truth: np.ndarray, f: Frame, ctx: dict, de: bool) -> None:
        lab = rgb2lab(out).astype(np.float32)
        if self.previous is not None:
            static = ctx["static"]
            if static.mean() >= 0.01:
                self.flicker.append(vm.ab_distance(self.previous, lab, static))
            motion = ctx["motion"]
            if motion.valid.any():
                self.warp.append(vm.warp_error_ab(self.previous, lab, motion))
        self.previous = lab
        self.hists.append(vm.channel_histograms(out))
        self.psnr.append(peak_signal_noise_ratio(f.rgb, out, data_range=255))
        if de:
            self.delta_e.append(float(deltaE_ciede2000(truth, lab).mean()))

    def cdc(self) -> float:
        pairs = zip(self.hists[:-1], self.hists[1:], strict=True)
        js = [vm.js_divergence(a, b).mean() for a, b in pairs]
        return float(np.mean(js)) if js else float("nan")


@dataclass
class Jitter:
    """How much the experts' inputs change on still pixels, per frame pair."""

    l_full: list[float] = field(default_factory=list)
    l_small: list[float] = field(default_factory=list)
    features: list[float] = field(default_factory=list)
    pooled_part: list[float] = field(default_factory=list)  # of the features' change
    noise: list[float] = field(default_factory=list)  # features' change under input noise
    probs: list[float] = field(default_factory=list)
    profile: list[float] = field(default_factory=list)


def still_on(static: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A full-size still mask on a coarser grid spanning the same image: cells all still."""
    share = cv2.resize(static.astype(np.float32), size[::-1], interpolation=cv2.INTER_AREA)
    return share > 0.99


def profile_probs(pipe: Pipeline, f: Frame) -> np.ndarray | None:
    routing = pipe.route_probs(f.lab, f.probs, f.features)
    choice = routing.profiles.get("places")
    return None if choice is None else np.array(list(choice.probabilities.values()))


# ------------------------------------------------------------------ the run


def decode(path: Path, limit: int) -> list[np.ndarray]:
    import av

    frames = []
    with av.open(str(path)) as container:
        for frame in container.decode(video=0):
            frames.append(frame.to_ndarray(format="rgb24"))
            if len(frames) >= limit:
                break
    return frames


@torch.inference_mode()
def run_clip(path: Path, pipe: Pipeline, variants: list[Variant], args) -> tuple[dict, Jitter]:
    frames = decode(path, args.frames)
    flow_full = vm.FlowEstimator(args.flow)
    flow_small = FlowEstimator("medium")
    tallies = {v.name: Tally() for v in variants}
    jitter = Jitter()
    previous: Frame | None = None
    prev_profile = None
    ctx_truth_l = np.zeros(0)
    for t, rgb in enumerate(frames):
        lab = pipe.lab(rgb)
        semantics = pipe.segment(lab)
        probs, features = semantics.probs, semantics.features
        l_small = lab.l_small[0, 0].float().cpu().numpy()
        motion = None
        if previous is not None:
            l_prev = previous.lab.l_small[0, 0].float().cpu().numpy()
            motion = flow_small.motion(l_prev, l_small, pipe.device)
        f = Frame(t, rgb, lab, probs, features, motion)
        truth = rgb2lab(rgb).astype(np.float32)
        ctx: dict = {}
        if previous is not None:
            ctx["static"] = vm.static_mask(ctx_truth_l, truth[..., 0])
            ctx["motion"] = vm.motion_between(previous.rgb, rgb, flow_full)
            measure_jitter(jitter, pipe, previous, f, ctx["static"], ctx_truth_l, truth, args)
        profile = profile_probs(pipe, f)
        if profile is not None and prev_profile is not None:
            jitter.profile.append(float(np.abs(profile - prev_profile).sum()))
        prev_profile = profile
        for v in variants:
            start = time.perf_counter()
            if v.lab_of is not None:
                v.state["lab"] = v.lab_of(f)
            ab = v.step(f, v.state)
            lab_out = v.state.get("lab", lab)
            out = Pipeline.to_rgb(lab_out, ab, np.uint8)
            tallies[v.name].seconds += time.perf_counter() - start
            tallies[v.name].add(out, truth, f, ctx, de=t % args.de_every == 0)
        previous, ctx_truth_l = f, truth[..., 0]
        if args.verbose:
            print(f"  {path.stem} frame {t}", file=sys.stderr, flush=True)
    return tallies, jitter


def measure_jitter(
    jitter: Jitter,
    pipe: Pipeline,
    prev: Frame,
    cur: Frame,
    static: np.ndarray,
    l_prev_full: np.ndarray,
    truth: np.ndarray,
    args: argparse.Namespace,
) -> None:
    if static.mean() < 0.01:
        return
    jitter.l_full.append(float(np.abs(truth[..., 0] - l_prev_full)[static].mean()))
    small_size = tuple(cur.lab.l_small.shape[-2:])
    still = still_on(static, small_size)
    if still.any():
        dl = (cur.lab.l_small - prev.lab.l_small)[0, 0].abs().cpu().numpy()
        jitter.l_small.append(float(dl[still].mean()))
        dp = (cur.probs - prev.probs)[0].abs().sum(0).cpu().numpy()
        jitter.probs.append(float(dp[still].mean()))
    cells = still_on(static, tuple(cur.features.shape[-2:]))
    if cells.any():
        size = cur.features[0].norm(dim=0).cpu().numpy()[cells].mean()

        def relative(a: torch.Tensor, b: torch.Tensor) -> float:
            change = (a - b)[0].norm(dim=0).cpu().numpy()
            return float(change[cells].mean() / max(size, 1e-9))

        jitter.features.append(relative(cur.features, prev.features))
        if (cur.t - 1) % args.probe_every == 0:  # the pooling branch's share, the noise response
            pooled_now, local_now = aspp_branches(pipe, cur.lab)
            pooled_before = aspp_branches(pipe, prev.lab)[0]
            only_pooled = project(pipe, pooled_before, local_now)  # local now, pooling before
            jitter.pooled_part.append(relative(cur.features, only_pooled))
            rng = np.random.default_rng(cur.t)
            noisy_l = cur.lab.l_small + torch.from_numpy(
                rng.normal(0, args.noise, size=tuple(cur.lab.l_small.shape)).astype(np.float32)
            ).to(cur.lab.l_small)
            noisy = LabImage(l_small=noisy_l, pixels=cur.lab.pixels)
            jitter.noise.append(relative(pipe.segment(noisy).features, cur.features))


def mean(values: list[float]) -> float:
    return statistics.fmean(values) if values else float("nan")


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--frames", type=int, default=60, help="frames per clip (from the start)")
    ap.add_argument("--clips", nargs="+", default=["color"], help="clip name substrings")
    ap.add_argument("--variants", nargs="+", choices=VARIANTS, default=list(VARIANTS))
    ap.add_argument("--feature-alpha", type=float, default=0.3, help="new frame's share (EMA)")
    ap.add_argument("--slow-alpha", type=float, default=0.1, help="feat-ema-flow-slow's")
    ap.add_argument("--noise", type=float, default=0.05, help="L units, the noise probe")
    ap.add_argument("--probe-every", type=int, default=5, help="frames between probes")
    ap.add_argument("--routing-alpha", type=float, default=0.5, help="as the stabilizer's")
    ap.add_argument("--round1", default=ROUND1, help="git commit of the round-1 experts")
    ap.add_argument("--flow", choices=vm.FLOW_METHODS, default="dis")
    ap.add_argument("--de-every", type=int, default=4, help="ΔE2000 on every n-th frame")
    ap.add_argument("--threads", type=int)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--verbose", action="store_true")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    root = shared()
    paths = [
        p
        for p in sorted((root / "data/video").glob("*.mp4"))
        if p.name.startswith("color") and any(c in p.stem for c in args.clips)
    ]
    if not paths:
        print("no color clip selected", file=sys.stderr)
        return 2
    pipe = Pipeline.default(device=args.device)
    variants = make_variants(args.variants, pipe, args)
    results: dict[str, dict[str, dict[str, float]]] = defaultdict(dict)  # variant -> clip -> m
    jitters: dict[str, Jitter] = {}
    for path in paths:
        for v in variants:
            v.state = {}
        tallies, jitters[path.stem] = run_clip(path, pipe, variants, args)
        for name, tally in tallies.items():
            results[name][path.stem] = {
                "flicker": mean(tally.flicker),
                "warp": mean(tally.warp),
                "cdc": 1e3 * tally.cdc(),
                "psnr": mean(tally.psnr),
                "de": mean(tally.delta_e),
                "fps": len(tally.psnr) / tally.seconds if tally.seconds else float("nan"),
            }
        line = ", ".join(
            f"{n} {results[n][path.stem]['flicker']:.3f}/{results[n][path.stem]['warp']:.3f}"
            for n in tallies
        )
        print(f"{path.stem}: flicker/warp {line}", file=sys.stderr, flush=True)
    print_tables(results, jitters, [p.stem for p in paths], args)
    return 0


def short(clip: str) -> str:
    return clip.removeprefix("color_").split("_")[0]


def print_tables(results, jitters, clips: list[str], args) -> None:
    base = results.get("shipped")
    print("### Static-pixel flicker (Δab, Lab units) per clip, naive mode\n")
    cols = ["variant", *[short(c) for c in clips], "mean", "vs shipped"]
    print(table_header(cols, "l" + "r" * (len(cols) - 1)))
    for name, per in results.items():
        values = [per[c]["flicker"] for c in clips]
        rel = f"{mean(values) / mean([base[c]['flicker'] for c in clips]):.0%}" if base else "–"
        cells = [f"{v:.3f}" for v in values]
        print(f"| {name} | {' | '.join(cells)} | {mean(values):.3f} | {rel} |")
    print("\n### Warp error (Δab, Lab units, non-occluded pixels, DIS flow of the original)\n")
    print(table_header(cols, "l" + "r" * (len(cols) - 1)))
    for name, per in results.items():
        values = [per[c]["warp"] for c in clips]
        rel = f"{mean(values) / mean([base[c]['warp'] for c in clips]):.0%}" if base else "–"
        cells = [f"{v:.3f}" for v in values]
        print(f"| {name} | {' | '.join(cells)} | {mean(values):.3f} | {rel} |")
    print("\n### Means over the clips\n")
    cols = ["variant", "flicker Δab", "warp Δab", "CDC ×10³", "PSNR dB", "ΔE2000", "fps"]
    print(table_header(cols, "l" + "r" * 6))
    for name, per in results.items():
        m = {k: mean([per[c][k] for c in clips]) for k in per[clips[0]]}
        print(
            f"| {name} | {m['flicker']:.3f} | {m['warp']:.3f} | {m['cdc']:.3f} "
            f"| {m['psnr']:.2f} | {m['de']:.2f} | {m['fps']:.2f} |"
        )
    print("\n### How much the experts' inputs change on still pixels (per frame pair, mean)\n")
    cols = [
        "clip", "ΔL full size", "ΔL working size", "features ‖Δf‖/‖f‖ %",
        "Δf from the pooling branch alone %", f"features under L noise σ={args.noise} %",
        "class probs L1", "P(profile) L1",
    ]  # fmt: skip
    print(table_header(cols, "l" + "r" * 7))
    for clip in clips:
        j = jitters[clip]
        print(
            f"| {short(clip)} | {mean(j.l_full):.3f} | {mean(j.l_small):.3f} "
            f"| {100 * mean(j.features):.2f} | {100 * mean(j.pooled_part):.2f} "
            f"| {100 * mean(j.noise):.2f} | {mean(j.probs):.4f} | {mean(j.profile):.4f} |"
        )
    print(f"\nCommand: {shlex.join(['python', *sys.argv])}")


if __name__ == "__main__":
    sys.exit(main())
