"""`segcolor video` on tiny clips: round trips (files, folders, audio), scene cuts, the
stabilizer's known answers, resuming, bad inputs, and the routing timeline.

The pipeline is real (``Pipeline``, ``Router``) but its segmenter and experts are fakes whose
answers are known: the segmenter calls bright pixels "person", and the experts paint a fixed
color per category plus a jitter that depends on the exact lightness, like a colorizer whose
output wobbles with film grain.
"""

from __future__ import annotations

import os
import subprocess
import sys
from fractions import Fraction
from itertools import pairwise
from pathlib import Path

import av
import numpy as np
import pytest
import torch
from PIL import Image

from segcolor.cli import main
from segcolor.color.lab import AB_SCALE
from segcolor.errors import SegcolorError
from segcolor.experts import Expert, create_expert, save_expert
from segcolor.pipeline import Pipeline
from segcolor.pipeline_config import CategorySpec
from segcolor.router.router import Router
from segcolor.router.segmenters import Segmenter, register_segmenter
from segcolor.video import (
    RunOptions,
    Stabilizer,
    StabilizerOptions,
    VideoReader,
    build_timeline,
    colorize_video,
    write_timeline,
)
from segcolor.video.encode import plan_output
from segcolor.video.runner import fingerprint, work_dir_for
from segcolor.video.scenes import CutDetector
from segcolor.video.stabilize import COLOR_ALPHA

CLASSES = ["background", "person", "dog"]
SIZE = (64, 48)  # width, height
FPS = Fraction(24000, 1001)


class BrightIsPerson(Segmenter):
    """Bright pixels are a person, the rest background; ``noise`` jitters the logits."""

    def __init__(self, noise: float = 0.0) -> None:
        super().__init__(CLASSES)
        self.noise = noise
        self.generator = torch.Generator().manual_seed(0)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        gray = x.mean(1, keepdim=True)
        person = (gray - 0.5) * 12.0
        logits = torch.cat([torch.zeros_like(gray), person, torch.full_like(gray, -9.0)], 1)
        if self.noise:
            logits = logits + self.noise * torch.randn(logits.shape, generator=self.generator)
        return logits


register_segmenter("test_video_bright")(lambda weights=None: BrightIsPerson())


pytestmark = pytest.mark.usefixtures("one_thread")


class JitterExpert(Expert):
    """A fixed color plus a jitter that is a deterministic function of the exact lightness."""

    def __init__(self, color: tuple[float, float], jitter: float) -> None:
        super().__init__()
        self.register_buffer("color", torch.tensor(color) / AB_SCALE)
        self.jitter = jitter / AB_SCALE

    def forward_raw(self, l_norm: torch.Tensor) -> torch.Tensor:
        wobble = torch.cat([torch.sin(l_norm * 700.0), torch.cos(l_norm * 900.0)], 1)
        return self.color[None, :, None, None] + self.jitter * wobble


def fake_pipeline(
    jitter: float = 12.0, seg_noise: float = 0.0, style: str = "faithful"
) -> Pipeline:
    specs = [
        CategorySpec("people", ("person",), (Path("people"),)),
        CategorySpec("animals", ("dog",), ()),
        CategorySpec("places", ("background",), (Path("places"),)),
    ]
    router = Router(BrightIsPerson(seg_noise), specs, CLASSES, "places")
    experts = {
        "people": JitterExpert((25.0, 30.0), jitter),
        "places": JitterExpert((-10, 20), jitter),
    }
    return Pipeline(router=router, experts=experts, device="cpu", working_size=48, style=style)


# ---------------------------------------------------------------- clips


def scene(seed: int, width: int = 96, height: int = 72) -> np.ndarray:
    """A smooth gray scene with a bright blob, larger than a frame so a camera can move."""
    rng = np.random.default_rng(seed)
    y, x = np.mgrid[0:height, 0:width].astype(np.float32)
    cx, cy = rng.uniform(0.3, 0.7) * width, rng.uniform(0.3, 0.7) * height
    base = 0.25 + 0.15 * np.sin(x / 9.0 + seed) * np.cos(y / 7.0)
    blob = 0.6 * np.exp(-((x - cx) ** 2 + (y - cy) ** 2) / (2 * 10.0**2))
    return np.clip(base + blob, 0, 1)


def pan_frames(count: int, seed: int = 0, grain: float = 0.0) -> list[np.ndarray]:
    """``count`` uint8 RGB frames: the camera moves one pixel right per frame."""
    world = scene(seed)
    rng = np.random.default_rng(seed + 100)
    frames = []
    for t in range(count):
        crop = world[8 : 8 + SIZE[1], 4 + t : 4 + t + SIZE[0]]
        crop = crop + grain * rng.standard_normal(crop.shape)
        gray = np.clip(np.rint(crop * 255), 0, 255).astype(np.uint8)
        frames.append(np.repeat(gray[..., None], 3, axis=2))
    return frames


def write_clip(
    path: Path, frames: list[np.ndarray], fps: Fraction = FPS, audio: bool = False
) -> Path:
    with av.open(str(path), "w") as container:
        stream = container.add_stream("libx264", rate=fps)
        stream.width, stream.height, stream.pix_fmt = SIZE[0], SIZE[1], "yuv420p"
        stream.options = {"crf": "10"}
        sound = container.add_stream("aac", rate=16000) if audio else None
        for i, rgb in enumerate(frames):
            frame = av.VideoFrame.from_ndarray(rgb, format="rgb24")
            frame.pts = i
            container.mux(stream.encode(frame))
        container.mux(stream.encode())
        if sound is not None:
            seconds = len(frames) / float(fps)
            samples = int(16000 * seconds)
            tone = (0.3 * np.sin(np.arange(samples) * 2 * np.pi * 440 / 16000)).astype(np.float32)
            for start in range(0, samples, 1024):
                chunk = tone[None, start : start + 1024]
                aframe = av.AudioFrame.from_ndarray(chunk, format="fltp", layout="mono")
                aframe.sample_rate, aframe.pts = 16000, start
                container.mux(sound.encode(aframe))
            container.mux(sound.encode())
    return path


def read_video(path: Path) -> tuple[list[np.ndarray], Fraction, bool]:
    with av.open(str(path)) as container:
        stream = container.streams.video[0]
        rate = stream.average_rate
        has_audio = bool(container.streams.audio)
        frames = [f.to_ndarray(format="rgb24") for f in container.decode(stream)]
    return frames, rate, has_audio


@pytest.fixture(scope="module")
def clip(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return write_clip(tmp_path_factory.mktemp("clip") / "pan.mp4", pan_frames(12))


@pytest.fixture(scope="module")
def pipeline() -> Pipeline:
    return fake_pipeline()


QUICK = RunOptions(chunk_frames=5, progress=False)


# ---------------------------------------------------------------- round trips


@pytest.mark.parametrize("suffix", [".mp4", ".mov", ".mkv", ".webm", ".avi"])
def test_video_round_trip_keeps_count_rate_and_size(
    tmp_path: Path, clip: Path, pipeline: Pipeline, suffix: str
) -> None:
    out = tmp_path / f"out{suffix}"
    summary = colorize_video(pipeline, clip, out, options=QUICK)
    frames, rate, _ = read_video(out)
    assert summary.frames == len(frames) == 12
    assert frames[0].shape == (SIZE[1], SIZE[0], 3)
    assert abs(float(rate) - float(FPS)) < (0.05 if suffix == ".webm" else 1e-6)
    assert not work_dir_for(out).exists()  # chunks removed once joined
    assert np.ptp(frames[6].reshape(-1, 3).mean(0)) > 3  # colored, not gray


def test_gif_round_trip(tmp_path: Path, clip: Path, pipeline: Pipeline) -> None:
    out = tmp_path / "out.gif"
    colorize_video(pipeline, clip, out, options=QUICK)
    with Image.open(out) as gif:
        assert gif.n_frames == 12 and gif.size == SIZE
        assert abs(gif.info["duration"] - 40) <= 10  # 23.976 fps -> 40 ms, GIF's 10 ms steps


def test_folder_round_trips(tmp_path: Path, clip: Path, pipeline: Pipeline) -> None:
    frames_in = tmp_path / "frames"
    frames_in.mkdir()
    for i, rgb in enumerate(pan_frames(11)):
        Image.fromarray(rgb).save(frames_in / f"img{i}.png")  # img10 sorts after img9
    out = tmp_path / "colored"
    colorize_video(pipeline, frames_in, out, options=QUICK)
    assert sorted(p.name for p in out.iterdir()) == sorted(f"img{i}.png" for i in range(11))
    assert Image.open(out / "img10.png").size == SIZE

    video = tmp_path / "from_frames.mp4"
    colorize_video(pipeline, frames_in, video, options=RunOptions(fps=12, progress=False))
    frames, rate, _ = read_video(video)
    assert len(frames) == 11 and rate == 12

    folder = tmp_path / "from_video"
    colorize_video(pipeline, clip, folder, options=QUICK)
    names = sorted(p.name for p in folder.iterdir())
    assert names == [f"frame_{i:06d}.png" for i in range(12)]
    # the same run again into its own frames is fine; a folder holding other images is not
    colorize_video(pipeline, clip, folder, options=QUICK)
    Image.fromarray(pan_frames(1)[0]).save(folder / "poster.png")
    with pytest.raises(SegcolorError, match=r"holds 1 other image\(s\) \(e.g. poster.png\)"):
        colorize_video(pipeline, clip, folder, options=QUICK)
    assert sorted(p.name for p in folder.iterdir()) == sorted([*names, "poster.png"])


def test_audio_is_copied_through(tmp_path: Path, pipeline: Pipeline) -> None:
    source = write_clip(tmp_path / "talk.mp4", pan_frames(12), audio=True)
    for suffix, codec in ((".mp4", "aac"), (".mkv", "aac"), (".webm", "opus")):
        out = tmp_path / f"out{suffix}"
        colorize_video(pipeline, source, out, options=QUICK)
        with av.open(str(out)) as container:
            (audio,) = container.streams.audio
            assert audio.codec_context.name == codec
            packets = [p for p in container.demux(audio) if p.pts is not None]
            end = float(packets[-1].pts * audio.time_base)
        assert 0.3 < end < 0.6, suffix  # the clip lasts 0.5 s


# ---------------------------------------------------------------- stability


def test_scene_cut_is_found_where_the_shot_changes() -> None:
    first = pan_frames(6, seed=1)
    second = [255 - f for f in pan_frames(6, seed=7)]  # another place, other tones
    detector = CutDetector()
    cuts = [i for i, f in enumerate(first + second) if detector.update(f[..., 0] / 2.55)]
    assert cuts == [0, 6]  # the first frame starts a shot too


def _ab_flicker(results: list) -> float:
    """Mean ab change at the same scene point (the camera moves 1 px right per frame)."""
    steps = [b.ab[..., 2:-2] - a.ab[..., 3:-1] for a, b in pairwise(results)]
    return float(np.mean([step.norm(dim=1).mean() for step in steps]))


def test_stabilizer_cuts_flicker_of_noisy_predictions() -> None:
    """Grain makes each frame's prediction jitter by ~12 ab units; the true color is fixed."""
    frames = pan_frames(12, seed=3, grain=0.004)
    runs = {}
    for name, options in (("naive", StabilizerOptions(enabled=False)), ("steady", None)):
        stabilizer = Stabilizer(fake_pipeline(jitter=12.0), options)
        runs[name] = [stabilizer.process(f) for f in frames]
    naive, steady = _ab_flicker(runs["naive"]), _ab_flicker(runs["steady"])
    assert naive > 5.0  # the jitter is real
    assert steady < 0.4 * naive
    truth = torch.tensor([-10.0, 20.0])[None, :, None, None]  # places' color (dark pixels)

    def error(results: list) -> float:
        return float(np.mean([(r.ab - truth).norm(dim=1).median() for r in results[4:]]))

    assert error(runs["steady"]) < error(runs["naive"])  # averaging the jitter also helps


def test_the_colors_carried_over_follow_the_style() -> None:
    """Vivid carries more of the previous frame's colors (its chosen colors move more between
    frames than faithful's means); a --color-alpha given by the user holds for either style."""
    frames = pan_frames(10, seed=3, grain=0.004)

    def run(style: str, options: StabilizerOptions | None = None) -> list:
        stabilizer = Stabilizer(fake_pipeline(jitter=12.0, style=style), options)
        return [stabilizer.process(f) for f in frames]

    assert (
        COLOR_ALPHA["vivid"]
        < COLOR_ALPHA["faithful"]
        == StabilizerOptions().color_weight("faithful")
    )
    assert _ab_flicker(run("vivid")) < 0.8 * _ab_flicker(run("faithful"))
    given = StabilizerOptions(color_alpha=COLOR_ALPHA["faithful"])
    same = zip(run("vivid", given), run("faithful"), strict=True)
    assert all(torch.equal(a.ab, b.ab) for a, b in same)  # the experts here have no bins head
    with pytest.raises(ValueError, match="color_alpha must be in"):
        StabilizerOptions(color_alpha=0.0)


def test_stabilizer_keeps_regions_on_their_expert() -> None:
    """At routing_alpha 0.3 flips halve (the default, 0.5, trades some of that for accuracy:
    on the real segmenter, bench/video_stability.py measures both)."""
    frames = pan_frames(12, seed=5)
    flips = {}
    steady = StabilizerOptions(routing_alpha=0.3)
    for name, options in (("naive", StabilizerOptions(enabled=False)), ("steady", steady)):
        stabilizer = Stabilizer(fake_pipeline(seg_noise=3.0), options)
        maps = [stabilizer.process(f, colorize=False).routing.category_map_small for f in frames]
        # the camera moves 1 px right per frame: compare each map with the previous one moved
        flips[name] = np.mean([(b[:, 2:-2] != a[:, 3:-1]).mean() for a, b in pairwise(maps)])
    assert flips["steady"] < 0.5 * flips["naive"]


def test_stabilizer_resets_at_a_cut() -> None:
    frames = pan_frames(5, seed=1) + [255 - f for f in pan_frames(5, seed=7)]
    stabilizer = Stabilizer(fake_pipeline(), StabilizerOptions())
    naive = Stabilizer(fake_pipeline(), StabilizerOptions(enabled=False))
    results = [stabilizer.process(f) for f in frames]
    assert [r.cut for r in results] == [True] + [False] * 4 + [True] + [False] * 4
    fresh = naive.process(frames[5])  # right after the cut nothing is carried over
    assert torch.equal(results[5].ab, fresh.ab)


def test_repeated_frames_keep_their_colors() -> None:
    """Telecine duplicates and freezes: the same picture gets the same colors, no recompute."""
    frames = pan_frames(3, seed=2)
    clip = [frames[0], frames[1], frames[1].copy(), frames[2]]
    stabilizer = Stabilizer(fake_pipeline())
    results = [stabilizer.process(f) for f in clip]
    assert [r.repeat for r in results] == [False, False, True, False]
    assert torch.equal(results[2].ab, results[1].ab)
    assert np.array_equal(results[2].rgb, results[1].rgb)
    naive = Stabilizer(fake_pipeline(), StabilizerOptions(enabled=False))
    assert not any(naive.process(f).repeat for f in clip)


# ---------------------------------------------------------------- resume


def _folder_frames(folder: Path) -> list[np.ndarray]:
    return [np.asarray(Image.open(p)) for p in sorted(folder.glob("*.png"))]


def test_a_work_folder_records_the_color_weight_as_used(tmp_path: Path, clip: Path) -> None:
    """Faithful's fingerprint is the one it had when 0.3 was written out (old work folders
    resume); vivid's differs from vivid at 0.3, so chunks of two weights are never joined."""
    reader = VideoReader(clip)
    spec = plan_output(tmp_path / "out", reader.info, 18)

    def run_id(style: str, options: StabilizerOptions) -> str:
        return fingerprint(fake_pipeline(style=style), reader, spec, options, QUICK)

    explicit = StabilizerOptions(color_alpha=0.3)
    assert run_id("faithful", StabilizerOptions()) == run_id("faithful", explicit)
    assert run_id("vivid", StabilizerOptions()) != run_id("vivid", explicit)


def test_resume_after_interruption_matches_an_uninterrupted_run(
    tmp_path: Path, clip: Path, pipeline: Pipeline, monkeypatch: pytest.MonkeyPatch
) -> None:
    options = RunOptions(chunk_frames=4, progress=False)
    colorize_video(pipeline, clip, tmp_path / "whole", options=options)

    calls = {"n": 0}
    original = Stabilizer.process

    def counting(self: Stabilizer, frame: np.ndarray, colorize: bool = True):  # noqa: ANN202
        calls["n"] += 1
        if calls.get("stop") == calls["n"]:
            raise KeyboardInterrupt
        return original(self, frame, colorize)

    monkeypatch.setattr(Stabilizer, "process", counting)
    out = tmp_path / "resumed"
    calls["stop"] = 7  # in the second chunk, after the first is finished
    with pytest.raises(KeyboardInterrupt):
        colorize_video(pipeline, clip, out, options=options)
    work = work_dir_for(out)
    assert sorted(p.name for p in work.iterdir() if p.name.startswith("chunk")) == ["chunk_00000"]
    assert not out.exists()

    calls.update(n=0, stop=None)
    summary = colorize_video(pipeline, clip, out, options=options)
    assert summary.resumed_chunks == 1 and summary.processed == 8 and calls["n"] == 8
    whole, resumed = _folder_frames(tmp_path / "whole"), _folder_frames(out)
    assert len(resumed) == 12
    assert all(np.array_equal(a, b) for a, b in zip(whole, resumed, strict=True))


def test_resume_without_saved_state_reseeds_on_overlap(
    tmp_path: Path, clip: Path, pipeline: Pipeline
) -> None:
    options = RunOptions(chunk_frames=4, warmup_frames=3, progress=False, keep_work=True)
    out = tmp_path / "out.mp4"
    colorize_video(pipeline, clip, out, options=options)
    work = work_dir_for(out)
    for name in ("chunk_00002.mp4", "state_00001.npz", "state_00002.npz"):
        (work / name).unlink(missing_ok=True)
    summary = colorize_video(pipeline, clip, out, options=options)
    assert summary.resumed_chunks == 2 and summary.processed == 4
    assert len(read_video(out)[0]) == 12


def test_changed_settings_refuse_to_mix_chunks(
    tmp_path: Path, clip: Path, pipeline: Pipeline
) -> None:
    out = tmp_path / "out.mp4"
    colorize_video(pipeline, clip, out, options=RunOptions(chunk_frames=4, keep_work=True))
    with pytest.raises(SegcolorError, match="--restart"):
        colorize_video(pipeline, clip, out, StabilizerOptions(color_alpha=0.5), QUICK)
    restart = RunOptions(chunk_frames=4, restart=True, progress=False)
    colorize_video(pipeline, clip, out, StabilizerOptions(color_alpha=0.5), restart)


def test_a_second_run_on_the_same_output_is_refused(
    tmp_path: Path, clip: Path, pipeline: Pipeline
) -> None:
    """Two runs writing one output would interleave chunks: the second is refused while the
    first's process lives; a lock whose process is gone (killed) is taken over."""
    out = tmp_path / "out.mp4"
    work = work_dir_for(out)
    kept = RunOptions(chunk_frames=5, keep_work=True, progress=False)  # QUICK, work kept
    colorize_video(pipeline, clip, out, options=kept)
    assert not (work / "lock").exists()  # released when the run ends
    (work / "lock").write_text(str(os.getppid()))  # a live process holds it
    with pytest.raises(SegcolorError, match="another segcolor video"):
        colorize_video(pipeline, clip, out, options=QUICK)
    assert (work / "lock").read_text() == str(os.getppid())  # not taken from its owner
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    (work / "lock").write_text(str(dead.pid))
    summary = colorize_video(pipeline, clip, out, options=QUICK)
    assert summary.frames > 0 and not work.exists()


# ---------------------------------------------------------------- errors


def test_bad_inputs_give_one_line(tmp_path: Path, clip: Path, pipeline: Pipeline) -> None:
    corrupt = tmp_path / "corrupt.mp4"
    corrupt.write_bytes(b"\x00\x00\x00\x18ftypmp42" + bytes(range(256)) * 8)
    empty = tmp_path / "empty.mp4"
    empty.write_bytes(b"")
    nothing = tmp_path / "nothing"
    nothing.mkdir()
    cases = {
        tmp_path / "missing.mp4": "no such file",
        corrupt: "not a readable video",
        empty: "empty file",
        nothing: "holds no frames",
    }
    for path, message in cases.items():
        with pytest.raises(SegcolorError, match=message) as err:
            colorize_video(pipeline, path, tmp_path / "out.mp4", options=QUICK)
        assert "\n" not in str(err.value) and str(path) in str(err.value)
    with pytest.raises(SegcolorError, match="overwrite the input"):
        colorize_video(pipeline, clip, clip, options=QUICK)
    with pytest.raises(SegcolorError, match="unknown video extension"):
        colorize_video(pipeline, clip, tmp_path / "out.xyz", options=QUICK)


def test_reader_streams_frames(clip: Path) -> None:
    reader = VideoReader(clip)
    assert (reader.info.width, reader.info.height, reader.info.fps) == (*SIZE, FPS)
    assert reader.info.frames == 12
    assert len(list(reader.frames(start=9))) == 3


# ---------------------------------------------------------------- CLI and timeline


@pytest.fixture(scope="module")
def pipeline_yaml(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("pipe")
    for i, name in enumerate(("people", "places")):
        torch.manual_seed(i)
        expert = create_expert(decoder_channels=[32, 16, 8])
        save_expert(expert, folder / f"{name}.safetensors", {"name": name})
    path = folder / "pipeline.yaml"
    path.write_text(
        "segmenter: {name: test_video_bright}\nworking_size: 48\nfallback: places\n"
        "categories:\n"
        "  people: {classes: [person], expert: people.safetensors}\n"
        "  animals: {classes: [dog]}\n"
        "  places: {classes: [background], expert: places.safetensors}\n"
    )
    return path


def test_cli_video_and_inspect_timeline(
    tmp_path: Path, clip: Path, pipeline_yaml: Path, capsys: pytest.CaptureFixture
) -> None:
    out = tmp_path / "out.mp4"
    args = ["video", str(clip), "-o", str(out), "--pipeline", str(pipeline_yaml)]
    assert main([*args, "--chunk-frames", "5"]) == 0
    assert len(read_video(out)[0]) == 12
    assert "wrote" in capsys.readouterr().err

    assert main(["video", str(tmp_path / "nope.mp4"), "-o", str(out)]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "no such file" in err
    assert main([*args, "--color-alpha", "0"]) == 2
    assert capsys.readouterr().err.strip() == (
        "segcolor: error: color-alpha must be in (0, 1], got 0.0"
    )
    assert main([*args, "--cut-threshold", "2"]) == 2  # a cut score is at most 1: never cuts
    assert capsys.readouterr().err.strip() == (
        "segcolor: error: cut-threshold must be in (0, 1], got 2.0"
    )

    report = tmp_path / "report"
    assert main(["inspect", str(clip), "-o", str(report), "--pipeline", str(pipeline_yaml)]) == 0
    assert (report / "timeline.png").is_file() and (report / "timeline.json").is_file()


def test_timeline_json_and_png(tmp_path: Path, pipeline: Pipeline) -> None:
    frames = pan_frames(6, seed=1) + [255 - f for f in pan_frames(6, seed=7)]
    source = write_clip(tmp_path / "cut.mp4", frames)
    timeline = build_timeline(pipeline, source, progress=False)
    files = write_timeline(timeline, tmp_path / "report")
    data = timeline.to_dict()
    assert data["frames"] == 12 and data["cuts"] == [6]
    assert data["categories"] == ["people", "animals", "places"]
    row = data["shares_percent"][0]
    assert abs(row["people"] + row["animals"] + row["places"] - 100) < 0.1
    with Image.open(files["png"]) as png:
        assert png.width >= 640 and png.mode == "RGB"


def test_stabilizer_carries_the_segmenters_features_along_the_flow() -> None:
    """The features every expert reads are a running mean: a trusted pixel takes
    ``feature_alpha`` of the new frame's, an untrusted one all of it, a cut starts afresh,
    and the mean survives a save/load of the state (resumed == uninterrupted)."""
    from segcolor.pipeline import LabImage, Semantics
    from segcolor.video.flow import Motion
    from segcolor.video.stabilize import _Steadying

    stabilizer = Stabilizer(fake_pipeline(), StabilizerOptions(feature_alpha=0.25))
    lab = LabImage.from_rgb(np.zeros((8, 8), np.uint8), 8, torch.device("cpu"))
    probs = torch.full((1, 3, 8, 8), 1 / 3)
    first, second = torch.zeros(1, 4, 5, 5), torch.ones(1, 4, 5, 5)
    ys, xs = torch.meshgrid(torch.linspace(-1, 1, 8), torch.linspace(-1, 1, 8), indexing="ij")
    trust = torch.ones(1, 1, 8, 8)
    trust[..., :, 4:] = 0.0  # the right half: the flow cannot explain it
    still = Motion(grid=torch.stack([xs, ys], -1)[None], trust=trust)

    out = _Steadying(stabilizer, None).on_semantics(lab, Semantics(probs, first))
    assert torch.equal(out.features, first)  # nothing carried yet
    out = _Steadying(stabilizer, still).on_semantics(lab, Semantics(probs, second))
    assert torch.allclose(out.features[..., :2], torch.full((1, 4, 5, 2), 0.25))  # trusted
    assert torch.allclose(out.features[..., 3:], second[..., 3:])  # untrusted: the new frame's
    saved = stabilizer.state()
    again = Stabilizer(fake_pipeline(), StabilizerOptions(feature_alpha=0.25))
    again.load_state(saved)
    assert torch.equal(again._features, out.features)
    cut = _Steadying(stabilizer, None).on_semantics(lab, Semantics(probs, first))
    assert torch.equal(cut.features, first)  # a cut: this frame's own
