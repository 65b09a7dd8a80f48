"""`segcolor colorize` end to end: sizes and lightness kept, bad files reported, batch goes on."""

from pathlib import Path

import numpy as np
import pytest
import skimage.color
import torch
from PIL import Image

from segcolor.cli import main
from segcolor.experts import create_expert, save_expert
from segcolor.pipeline import Pipeline, working_shape

from .conftest import color_image
from .test_images import make_bad_files


@pytest.fixture(scope="module")
def expert_path(tmp_path_factory) -> Path:
    path = tmp_path_factory.mktemp("expert") / "tiny.safetensors"
    return save_expert(create_expert(decoder_channels=[32, 16, 8]), path, {"name": "tiny"})


def lightness(path: Path) -> np.ndarray:
    return skimage.color.rgb2lab(np.asarray(Image.open(path).convert("RGB")) / 255.0)[..., 0]


def test_working_shape_bounds_the_short_side():
    assert working_shape(1000, 3000, 256) == (256, 768)
    assert working_shape(100, 80, 256) == (100, 80)  # never upscaled


def test_colorize_keeps_size_and_lightness(tmp_path, expert_path):
    gray = Image.fromarray(color_image(75, 101)).convert("L")
    gray.save(tmp_path / "gray.png")
    assert (
        main(
            [
                "colorize",
                str(tmp_path / "gray.png"),
                "-o",
                str(tmp_path / "out.png"),
                "--expert",
                str(expert_path),
                "--working-size",
                "48",
            ]
        )
        == 0
    )
    out = Image.open(tmp_path / "out.png")
    assert out.size == (101, 75) and out.mode == "RGB"
    assert np.abs(lightness(tmp_path / "out.png") - lightness(tmp_path / "gray.png")).mean() < 1.0


def test_colorize_historical_photo(tmp_path, expert_path, historical_photo):
    out = tmp_path / "old.jpg"
    assert (
        main(["colorize", str(historical_photo), "-o", str(out), "--expert", str(expert_path)]) == 0
    )
    assert Image.open(out).size == Image.open(historical_photo).size
    assert np.abs(lightness(out) - lightness(historical_photo)).mean() < 1.0


def test_color_input_is_colorized_from_its_luminance(expert_path):
    pipeline = Pipeline.from_expert(expert_path, device="cpu")
    rgb = color_image(32, 40)
    lab = skimage.color.rgb2lab(rgb / 255.0)
    lab[..., 1:] = 0  # the same photo with its color removed
    gray = np.rint(skimage.color.lab2rgb(lab)[..., 0] * 255).astype(np.uint8)
    from_color, from_gray = pipeline.colorize(rgb), pipeline.colorize(gray)
    assert from_color.shape == (32, 40, 3) and from_color.dtype == np.uint8
    # only the luminance is used: color and grayscale versions give the same result
    assert np.abs(from_color.astype(int) - from_gray.astype(int)).mean() < 2


def test_folder_in_folder_out_keeps_names_alpha_and_orientation(tmp_path, expert_path):
    src = tmp_path / "in"
    (src / "sub").mkdir(parents=True)
    Image.fromarray(color_image(30, 20)).save(src / "a.jpg")
    rgba = Image.fromarray(color_image(20, 30)).convert("RGBA")
    rgba.putalpha(100)
    rgba.save(src / "sub" / "b.png")
    stored = color_image(20, 50)
    stored[:6, :10] = 255  # a white top-left corner: each way of turning the photo differs
    rotated = Image.fromarray(stored)
    exif = rotated.getexif()
    exif[0x0112] = 6  # stored sideways: turn 90 degrees clockwise to display
    rotated.save(src / "c.jpg", exif=exif.tobytes(), quality=95)
    assert (
        main(["colorize", str(src), "-o", str(tmp_path / "out"), "--expert", str(expert_path)]) == 0
    )
    out = tmp_path / "out"
    names = {p.relative_to(out).as_posix() for p in out.rglob("*") if p.is_file()}
    assert names - {"segcolor-manifest.jsonl"} == {"a.jpg", "sub/b.png", "c.jpg"}
    assert Image.open(out / "a.jpg").size == (20, 30)
    b = Image.open(out / "sub" / "b.png")
    assert b.mode == "RGBA" and np.asarray(b)[..., 3].max() == 100
    assert Image.open(out / "c.jpg").size == (20, 50)
    # the result's lightness is the input's turned upright, not turned the other way
    decoded = np.asarray(Image.open(src / "c.jpg").convert("RGB"))  # as stored: no EXIF turn
    turned = {k: skimage.color.rgb2lab(np.rot90(decoded, k) / 255.0)[..., 0] for k in (-1, 1)}
    errors = {k: np.abs(lightness(out / "c.jpg") - upright).mean() for k, upright in turned.items()}
    assert errors[-1] < 1.5 and errors[1] > 5, errors


def test_batch_goes_on_past_bad_files(tmp_path, expert_path, capsys):
    folder = tmp_path / "batch"
    bad = make_bad_files(folder)
    for name in ("good1.png", "good2.jpg"):
        Image.fromarray(color_image(24, 24)).save(folder / name)
    code = main(
        ["colorize", str(folder), "-o", str(tmp_path / "out"), "--expert", str(expert_path)]
    )
    err = capsys.readouterr().err
    assert code == 1
    assert (tmp_path / "out" / "good1.png").is_file() and (tmp_path / "out" / "good2.jpg").is_file()
    for path, fragment in bad.values():
        lines = [line for line in err.splitlines() if str(path) in line]
        assert len(lines) == 1 and fragment in lines[0], (path, err)
    assert f"colorized 2 of {2 + len(bad)} images; {len(bad)} failed" in err
    assert "Traceback" not in err


def test_one_corrupt_and_two_good_files(tmp_path, expert_path, capsys):
    files = []
    for name in ("a.png", "b.png"):
        Image.fromarray(color_image(16, 16)).save(tmp_path / name)
        files.append(str(tmp_path / name))
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8garbage")
    code = main(
        [
            "colorize",
            *files,
            str(tmp_path / "broken.jpg"),
            "-o",
            str(tmp_path / "out"),
            "--expert",
            str(expert_path),
        ]
    )
    err = capsys.readouterr().err
    outputs = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert code == 1 and outputs == ["a.png", "b.png", "segcolor-manifest.jsonl"]
    assert sum("broken.jpg" in line for line in err.splitlines()) == 1


def test_output_equal_to_input_is_refused(tmp_path, expert_path, capsys):
    Image.fromarray(color_image(16, 16)).save(tmp_path / "photo.png")
    before = (tmp_path / "photo.png").read_bytes()
    code = main(
        [
            "colorize",
            str(tmp_path / "photo.png"),
            "-o",
            str(tmp_path / "photo.png"),
            "--expert",
            str(expert_path),
        ]
    )
    assert code == 2 and "overwrite an input" in capsys.readouterr().err
    assert (tmp_path / "photo.png").read_bytes() == before
    code = main(["colorize", str(tmp_path), "-o", str(tmp_path), "--expert", str(expert_path)])
    assert code == 2 and (tmp_path / "photo.png").read_bytes() == before


def test_missing_input_is_one_line_before_any_work(tmp_path, expert_path, capsys):
    Image.fromarray(color_image(16, 16)).save(tmp_path / "photo.png")
    out = tmp_path / "out"
    args = ["colorize", str(tmp_path / "photo.png"), str(tmp_path / "typo.png"), "-o", str(out)]
    code = main([*args, "--expert", str(expert_path)])
    err = capsys.readouterr().err
    assert code == 2 and err.count("\n") == 1
    assert "typo.png: no such file or folder" in err and not out.exists()


@pytest.mark.parametrize(
    ("inputs", "output", "message"),
    [
        (1, "out.xyz", "unsupported output extension '.xyz'"),
        (1, "out.gif", "unsupported output extension '.gif'"),
        (2, "out.png", "several images need an output folder, not an image file name"),
        (1, "photo0.png/out.png", "cannot write here"),  # a file where a folder should be
        (2, "photo0.png/out", "photo0.png"),
    ],
)
def test_unusable_output_is_one_line(tmp_path, expert_path, capsys, inputs, output, message):
    photos = [tmp_path / f"photo{i}.png" for i in range(inputs)]
    for photo in photos:
        Image.fromarray(color_image(16, 16)).save(photo)
    before = sorted(tmp_path.rglob("*"))
    code = main(
        ["colorize", *map(str, photos), "-o", str(tmp_path / output), "--expert", str(expert_path)]
    )
    err = [line for line in capsys.readouterr().err.splitlines() if line.startswith("segcolor:")]
    assert code in (1, 2) and message in err[0] and "Traceback" not in "".join(err)
    assert "unexpected error" not in err[0] and ".tmp" not in err[0]
    assert sorted(tmp_path.rglob("*")) == before  # nothing written, no stray temporaries


def test_one_photo_into_an_existing_folder_with_a_dot(tmp_path, expert_path):
    Image.fromarray(color_image(16, 16)).save(tmp_path / "photo.png")
    (tmp_path / "scans.png").mkdir()  # a folder, whatever its name says
    args = ["colorize", str(tmp_path / "photo.png"), "-o", str(tmp_path / "scans.png")]
    assert main([*args, "--expert", str(expert_path)]) == 0
    assert Image.open(tmp_path / "scans.png" / "photo.png").size == (16, 16)


@pytest.mark.parametrize("kind", ["missing", "junk"])
def test_bad_checkpoint_is_one_line(tmp_path, kind, capsys):
    Image.fromarray(color_image(16, 16)).save(tmp_path / "photo.png")
    ckpt = tmp_path / "expert.safetensors"
    if kind == "junk":
        ckpt.write_text("garbage")
    code = main(
        [
            "colorize",
            str(tmp_path / "photo.png"),
            "-o",
            str(tmp_path / "o.png"),
            "--expert",
            str(ckpt),
        ]
    )
    err = capsys.readouterr().err.strip().splitlines()
    assert code == 2 and len(err) == 1 and str(ckpt) in err[0]


def test_sixteen_bit_scan_is_colorized_from_its_sixteen_bit_lightness(tmp_path, expert_path):
    ramp = np.linspace(0, 65535, 60 * 90).reshape(60, 90).astype(np.uint16)
    Image.fromarray(ramp).save(tmp_path / "deep.png")
    code = main(
        ["colorize", str(tmp_path / "deep.png"), "-o", str(tmp_path / "out.png"), "--expert"]
        + [str(expert_path)]
    )
    assert code == 0
    out = Image.open(tmp_path / "out.png")
    assert out.mode == "RGB" and out.size == (90, 60)  # written as 8-bit, as before
    truth = skimage.color.rgb2lab(np.repeat((ramp / 65535.0)[..., None], 3, axis=2))[..., 0]
    assert np.abs(lightness(tmp_path / "out.png") - truth).mean() < 0.3


def test_colorize_matches_the_whole_image_path_on_a_historical_photo(expert_path, historical_photo):
    """The banded uint8 path against the float whole-image recombination it replaced."""
    import torch

    from segcolor.color.lab import fit_to_gamut, lab_to_rgb, rgb_to_lab
    from segcolor.color.recombine import upsample_ab
    from segcolor.io.images import load_image
    from segcolor.pipeline import LabImage, to_uint8

    pipeline = Pipeline.from_expert(expert_path, device="cpu")
    image = load_image(historical_photo)
    out = pipeline.colorize(image.pixels)
    rgb = torch.from_numpy(image.rgb).permute(2, 0, 1)[None]
    lightness = rgb_to_lab(rgb)[:, :1]
    ab = pipeline.predict_ab(LabImage.from_rgb(image.rgb, pipeline.working_size, pipeline.device))
    ab_full = upsample_ab(ab, tuple(lightness.shape[-2:]))
    before = lab_to_rgb(fit_to_gamut(torch.cat([lightness, ab_full], dim=1)))
    before = to_uint8(before[0].permute(1, 2, 0).numpy())
    lab_out, lab_before = skimage.color.rgb2lab(out / 255.0), skimage.color.rgb2lab(before / 255.0)
    assert np.abs(lab_out[..., 1:] - lab_before[..., 1:]).mean() < 0.05
    assert np.abs(lab_out[..., 0] - lightness[0, 0].numpy()).mean() < 0.1


def test_band_size_does_not_change_the_colors(expert_path):
    from segcolor.pipeline import LabImage

    pipeline = Pipeline.from_expert(expert_path, device="cpu")
    gray = color_image(75, 101).mean(axis=2).astype(np.uint8)
    whole = LabImage.from_rgb(gray, 48, pipeline.device)
    banded = LabImage.from_rgb(gray, 48, pipeline.device, band_pixels=101 * 2 + 30)
    # the shrunk L of two band sizes: the same sums in another grouping, float32 rounding apart
    torch.testing.assert_close(whole.l_small, banded.l_small, atol=1e-4, rtol=0)
    ab = pipeline.predict_ab(whole)
    a, b = Pipeline.to_rgb(whole, ab, np.uint8), Pipeline.to_rgb(banded, ab, np.uint8)
    assert a.dtype == np.uint8 and a.shape == (75, 101, 3)
    assert np.abs(a.astype(int) - b).max() <= 1 and (a != b).mean() < 0.001
    np.testing.assert_allclose(Pipeline.to_rgb(whole, ab), a / 255.0, atol=0.5 / 255 + 1e-6)
