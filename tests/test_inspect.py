"""`segcolor inspect`: every file written, a self-contained HTML page, and on a real photo with
the real segmenter (when its weights are on this machine) a people and an animals region; color
hints of routing edits drawn on the overlay and listed (with hand-set experts that copy them)."""

from __future__ import annotations

import argparse
import base64
import json
import re
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcolor.cli import main as cli
from segcolor.commands import inspect as inspect_command
from segcolor.errors import SegcolorError

from .conftest import SHARED, color_image
from .test_hints import hint_yaml, lab_ab, make_hint_experts
from .test_pipeline import make_experts, write_yaml
from .test_routing_edits import DOG, PERSON, subjects_photo

PERSON_AND_DOG = SHARED / "data" / "multi_subject_nomask" / "flickr8k_1003163366_44323f5815.jpg"
TFLITE = SHARED / "weights" / "deeplabv3_mnv2_pascal_quant.tflite"


@pytest.fixture(scope="module")
def expert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_experts(tmp_path_factory.mktemp("experts"))


def run_inspect(*argv: str) -> int:
    parser = argparse.ArgumentParser()
    inspect_command.add_arguments(parser)
    return inspect_command.run(parser.parse_args(list(argv)))


def test_inspect_writes_every_file(tmp_path: Path, expert_dir: Path, capsys) -> None:
    Image.fromarray(color_image(48, 72)).convert("L").save(tmp_path / "photo.png")
    path = write_yaml(tmp_path, expert_dir, segmenter="test_thirds")
    out = tmp_path / "report"
    assert (
        run_inspect(
            str(tmp_path / "photo.png"), "-o", str(out), "--pipeline", str(path), "--device", "cpu"
        )
        == 0
    )
    assert capsys.readouterr().out.strip() == (
        "photo.png: people 33% (person), animals 33% (dog), places 33%"
    )
    expected = {"routing.json", "overlay.png", "colorized.png", "index.html"} | {
        f"{kind}_{name}.png"
        for kind in ("expert", "weights")
        for name in ("people", "animals", "places")
    }
    assert {p.name for p in out.iterdir()} == expected

    report = json.loads((out / "routing.json").read_text())
    assert [r["category"] for r in report["regions"]] == ["people", "animals", "places"]
    assert report["regions"][0]["classes"] == ["person"]
    assert report["regions"][0]["bbox_xyxy"][0] == 0
    assert {e["category"] for e in report["experts"]} == {"people", "animals", "places"}
    assert all(e["checkpoints"] for e in report["experts"])
    assert Image.open(out / "colorized.png").size == (72, 48)
    overlay = Image.open(out / "overlay.png")
    assert overlay.width == 72 and overlay.height > 48  # legend below the photo

    page = (out / "index.html").read_text()
    uris = re.findall(r'src="data:image/png;base64,([A-Za-z0-9+/=]+)"', page)
    assert len(uris) == 3 + 2 * 3  # input, overlay, result; each expert alone + its weights
    for uri in uris:
        assert base64.b64decode(uri).startswith(b"\x89PNG")
    assert "<script" not in page and "http://" not in page and "https://" not in page
    assert "<style>" in page and "people 33% (person)" in page
    assert "Color hints" not in page and "hints" not in report


def test_inspect_refuses_a_file_as_its_report_folder(tmp_path: Path) -> None:
    Image.fromarray(color_image(16, 16)).save(tmp_path / "photo.png")
    (tmp_path / "file").write_text("x")
    with pytest.raises(SegcolorError, match="needs a folder"):
        run_inspect(str(tmp_path / "photo.png"), "-o", str(tmp_path / "file"))
    assert (tmp_path / "file").read_text() == "x"


def test_real_photo_with_a_person_and_a_dog(
    tmp_path: Path,
    expert_dir: Path,
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    if not TFLITE.is_file() or not PERSON_AND_DOG.is_file():
        pytest.skip(f"needs {TFLITE} and {PERSON_AND_DOG} (set SEGCOLOR_SHARED_DIR)")
    monkeypatch.setenv("SEGCOLOR_WEIGHTS_DIR", str(TFLITE.parent))
    path = write_yaml(tmp_path, expert_dir, segmenter="deeplabv3_mnv2_voc", working_size=128)
    out = tmp_path / "report"
    assert (
        run_inspect(str(PERSON_AND_DOG), "-o", str(out), "--pipeline", str(path), "--device", "cpu")
        == 0
    )
    report = json.loads((out / "routing.json").read_text())
    regions = {r["category"]: r for r in report["regions"]}
    assert "person" in regions["people"]["classes"] and "dog" in regions["animals"]["classes"]
    assert regions["people"]["area_percent"] > 3 and regions["animals"]["area_percent"] > 1
    width, height = Image.open(PERSON_AND_DOG).size
    x0, y0, x1, y1 = regions["animals"]["bbox_xyxy"]
    assert 0 <= x0 < x1 <= width and 0 <= y0 < y1 <= height
    result = np.asarray(Image.open(out / "colorized.png"))
    assert result.shape == (height, width, 3)


@pytest.mark.parametrize("name", ["overlay.png", "colorized.png", "expert_people.png"])
def test_inspect_refuses_to_overwrite_its_photo(
    tmp_path: Path, expert_dir: Path, name: str, capsys: pytest.CaptureFixture[str]
) -> None:
    """A photo named like a report file, inspected into its own folder, is kept, before work."""
    report = tmp_path / "report"
    report.mkdir()
    Image.fromarray(color_image(24, 32)).save(report / name)
    before = (report / name).read_bytes()
    pipeline = write_yaml(tmp_path, expert_dir, segmenter="test_thirds")
    argv = ["inspect", str(report / name), "-o", str(report), "--pipeline", str(pipeline)]
    assert cli([*argv, "--device", "cpu"]) == 2
    err = capsys.readouterr().err
    assert err == (
        f"segcolor: error: {report / name}: output would overwrite an input; choose another -o\n"
    )
    assert (report / name).read_bytes() == before
    assert [p.name for p in report.iterdir()] == [name]  # nothing else written either


def test_inspect_draws_and_lists_the_color_hints(tmp_path: Path) -> None:
    from skimage.color import rgb2lab

    from segcolor.inspection import write_inspection
    from segcolor.pipeline import Pipeline
    from segcolor.router.edits import RoutingEdits

    pipeline = Pipeline.from_config(
        hint_yaml(tmp_path / "p", make_hint_experts(tmp_path / "e")), device="cpu"
    )
    photo = subjects_photo()  # 128 x 192, working size 128: photo px = working px
    Image.fromarray(photo).save(tmp_path / "photo.png")
    x, y = round((DOG[0] + DOG[2]) / 2 * 192), round((DOG[1] + DOG[3]) / 2 * 128)
    px = round((PERSON[0] + PERSON[2]) / 2 * 192)
    edits = RoutingEdits.from_dict(
        {
            "hints": [
                {"x": x, "y": y, "color": "#6a5acd", "radius": 5},
                {"points": [[px, 10], [px, 90]], "color": "#f0e68c"},
            ]
        }
    )
    files = write_inspection(pipeline, tmp_path / "photo.png", tmp_path / "report", edits)

    # the overlay: the point in its color (dark: a white outline), the stroke (light: black)
    overlay = np.asarray(Image.open(files["overlay"]).convert("RGB"))
    assert tuple(overlay[y, x]) == (0x6A, 0x5A, 0xCD)
    ring = overlay[y, x - 8 : x + 1]
    assert (ring == 255).all(axis=1).any()
    assert tuple(overlay[65, px]) == (0xF0, 0xE6, 0x8C)
    assert (overlay[65, px - 8 : px + 1] == 0).all(axis=1).any()
    # the result: the experts copied the hint (their a, b at the photo's lightness)
    lab = rgb2lab(np.asarray(Image.open(files["colorized"]).convert("RGB")))
    ea, eb = lab_ab("#6a5acd")
    assert abs(lab[y, x, 1] - ea) < 3 and abs(lab[y, x, 2] - eb) < 3

    report = json.loads(files["routing"].read_text())
    point, stroke = report["hints"]
    assert point == {
        "index": 0,
        "kind": "point",
        "x": x,
        "y": y,
        "color": "#6a5acd",
        "radius": 5,
        "size_px": 5,
        "size_is_default": False,
        "categories": ["animals"],
    }
    assert stroke["kind"] == "stroke" and stroke["size_is_default"] is True
    assert stroke["size_px"] == 4.0 and stroke["categories"] == ["places", "people"]
    assert report["edits"]["hints"][1]["points"] == [[px, 10], [px, 90]]
    assert report["settings"]["style"] == "faithful"

    page = files["index"].read_text()
    assert "<h2>Color hints</h2>" in page and "2 color hint(s), numbered" in page
    assert "#6a5acd</td><td>point</td><td>(" + f"{x}, {y})" in page
    assert f"({px}, 10) to ({px}, 90), 2 points" in page and "width 4 (default)" in page
