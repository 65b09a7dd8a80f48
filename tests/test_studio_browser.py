"""The routing studio in headless Chromium (the system's, driven by playwright; no browser is
downloaded): load the page, upload a photo, click a region, change its category, see the result
change; place a color hint (with hand-set experts that copy hints: tests/test_hints.py) and see
the pixels around it take its color while the rest stay put; draw a stroke, remove a hint, undo,
switch the style. Skipped, saying why, without playwright or Chromium.
SEGCOLOR_UPDATE_SCREENSHOT=1 also writes the page's screenshot to docs/studio.png (the README
shows it)."""

from __future__ import annotations

import base64
import io
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcolor.pipeline import Pipeline

from .conftest import REPO
from .test_hints import hint_yaml, lab_ab, make_hint_experts
from .test_pipeline import make_experts
from .test_routing_edits import DOG, PERSON, subjects_photo, subjects_yaml

pytest.importorskip("fastapi", reason="the studio extra is not installed")
sync_api = pytest.importorskip(
    "playwright.sync_api", reason="playwright is not installed (pip install -e '.[studio-test]')"
)

from segcolor.studio.app import create_app  # noqa: E402

from .test_studio import StudioServer  # noqa: E402


def chromium() -> str:
    for name in (os.environ.get("SEGCOLOR_CHROMIUM"), "chromium", "chromium-browser"):
        if name and shutil.which(name):
            return shutil.which(name)  # type: ignore[return-value]
    pytest.skip("no Chromium on this machine (apt-get install chromium, or set SEGCOLOR_CHROMIUM)")


def result_sum(page) -> int:
    """The sum of the result image's pixels, read back through a canvas."""
    return page.evaluate(
        """() => { const img = document.getElementById('result');
        const c = document.createElement('canvas'); c.width = img.naturalWidth;
        c.height = img.naturalHeight; const g = c.getContext('2d'); g.drawImage(img, 0, 0);
        const d = g.getImageData(0, 0, c.width, c.height).data; let s = 0;
        for (let i = 0; i < d.length; i += 4) s += d[i] * 3 + d[i + 1] * 5 + d[i + 2] * 7;
        return s; }"""
    )


def test_page_uploads_clicks_a_region_and_reroutes(tmp_path: Path) -> None:
    executable = chromium()
    pipeline = Pipeline.from_config(
        subjects_yaml(tmp_path / "p", make_experts(tmp_path / "e")), device="cpu"
    )
    Image.fromarray(subjects_photo(256, 384)).save(tmp_path / "person_and_dog.png")
    app = create_app(pipeline, workdir=tmp_path / "work")
    with StudioServer(app) as client, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 640})
            page.goto(client.base + "/")
            page.set_input_files("#files", str(tmp_path / "person_and_dog.png"))
            page.wait_for_function(
                "() => document.getElementById('result').complete "
                "&& document.getElementById('result').naturalWidth === 384"
            )
            assert "people" in page.text_content("#legend")
            before = result_sum(page)

            # click the dog (right, lower half of the overlay)
            box = page.locator("#overlay").bounding_box()
            page.mouse.click(box["x"] + 0.76 * box["width"], box["y"] + 0.68 * box["height"])
            page.wait_for_selector("#region:not([hidden])")
            assert page.input_value("#r-category") == "animals"
            assert page.text_content("#r-classes") == "dog"

            page.select_option("#r-category", "people")
            page.wait_for_function(
                "() => document.getElementById('result').dataset.version === '2' "
                "&& document.getElementById('result').complete"
            )
            page.wait_for_function("() => /re-routed in/.test(document.body.innerText)")
            assert result_sum(page) != before
            assert page.input_value("#r-category") == "people"
            assert "router said animals" in page.text_content("#r-was")

            # the photo's vividness: the slider saves it with the edits and re-renders
            rerouted = result_sum(page)
            page.fill("#vivid", "1.5")  # fires input and change, as a user's drag does
            page.wait_for_function(
                "() => document.getElementById('result').dataset.version === '3' "
                "&& document.getElementById('result').complete"
            )
            assert result_sum(page) != rerouted
            assert page.text_content("#vivid-value") == "1.50"
            (photo,) = client.get("/api/photos").json()
            saved = client.get(f"/api/photos/{photo['id']}/edits.json").json()
            assert saved["vividness"] == 1.5 and saved["reassign"]
            page.fill("#slider", "35")
            page.dispatch_event("#slider", "input")
            shot = tmp_path / "studio.png"
            page.screenshot(path=str(shot))
        finally:
            browser.close()
    image = Image.open(shot)
    assert image.size == (1100, 640) and np.asarray(image).std() > 10
    if os.environ.get("SEGCOLOR_UPDATE_SCREENSHOT"):
        docs = REPO / "docs"
        docs.mkdir(exist_ok=True)
        image.convert("RGB").quantize(64).save(docs / "studio.png", optimize=True)


def shown_result(page) -> np.ndarray:
    """The result image as the page shows it (H, W, 3), read back through a canvas."""
    url = page.evaluate(
        """() => { const img = document.getElementById('result');
        const c = document.createElement('canvas'); c.width = img.naturalWidth;
        c.height = img.naturalHeight; c.getContext('2d').drawImage(img, 0, 0);
        return c.toDataURL('image/png'); }"""
    )
    data = base64.b64decode(url.split(",", 1)[1])
    return np.asarray(Image.open(io.BytesIO(data)).convert("RGB"))


def wait_version(page, version: int) -> None:
    page.wait_for_function(
        f"() => document.getElementById('result').dataset.version === '{version}' "
        "&& document.getElementById('result').complete"
    )


def test_a_hint_placed_on_the_page_colors_its_spot_only(tmp_path: Path) -> None:
    from skimage.color import rgb2lab

    executable = chromium()
    yaml = hint_yaml(tmp_path / "p", make_hint_experts(tmp_path / "e"))
    pipeline = Pipeline.from_config(yaml, device="cpu")
    height, width = 256, 384
    Image.fromarray(subjects_photo(height, width)).save(tmp_path / "dog.png")
    app = create_app(pipeline, workdir=tmp_path / "work")
    with StudioServer(app) as client, sync_api.sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=executable, args=["--no-sandbox", "--disable-gpu"]
        )
        try:
            page = browser.new_page(viewport={"width": 1100, "height": 700})
            page.goto(client.base + "/")
            page.set_input_files("#files", str(tmp_path / "dog.png"))
            wait_version(page, 1)
            assert page.is_hidden("#hint-note")  # these experts read hints
            before = shown_result(page)

            # the dog's swatches, then the hint tool with a color of our own
            box = page.locator("#overlay").bounding_box()
            fx, fy = (DOG[0] + DOG[2]) / 2, (DOG[1] + DOG[3]) / 2
            page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            page.wait_for_selector("#hint-swatches .swatch")
            page.check("#hint-tool")
            color = "#6a5acd"
            page.fill("#hint-color", color)
            page.fill("#hint-size", "12")  # 12 px across: a radius of 6
            box = page.locator("#result").bounding_box()
            page.mouse.click(box["x"] + fx * box["width"], box["y"] + fy * box["height"])
            wait_version(page, 2)
            assert page.locator("#hint-list li").count() == 1
            assert page.locator("#hint-marks circle").count() == 1
            after = shown_result(page)
            (hint,) = client.get("/api/photos").json()  # the photo, then its hint
            (saved,) = client.get(f"/api/photos/{hint['id']}").json()["hints"]
            assert saved["color"] == color and saved["radius"] == 6
            x, y = round(saved["x"]), round(saved["y"])
            assert abs(x - fx * width) < 3 and abs(y - fy * height) < 3

            # around the hint: its color (at the photo's lightness); far away: untouched
            ea, eb = lab_ab(color)
            spot = rgb2lab(after[y - 2 : y + 3, x - 2 : x + 3]).reshape(-1, 3)
            assert np.abs(spot[:, 1] - ea).max() < 4 and np.abs(spot[:, 2] - eb).max() < 4
            old = rgb2lab(before[y - 2 : y + 3, x - 2 : x + 3]).reshape(-1, 3)
            assert np.hypot(old[:, 1] - ea, old[:, 2] - eb).min() > 20  # it moved that far
            sides = (width, height) * 2
            px0, py0, px1, py1 = (round(f * s) for f, s in zip(PERSON, sides, strict=True))
            person = (slice(py0, py1), slice(px0, px1))
            assert np.abs(after[person].astype(int) - before[person]).max() <= 2

            # drag a stroke down the person; remove the first hint; undo; the vivid style
            sx = box["x"] + (PERSON[0] + PERSON[2]) / 2 * box["width"]
            page.mouse.move(sx, box["y"] + 0.3 * box["height"])
            page.mouse.down()
            page.mouse.move(sx, box["y"] + 0.7 * box["height"], steps=12)
            page.mouse.up()
            wait_version(page, 3)
            assert "stroke of" in page.text_content("#hint-list li:nth-child(2)")
            stroked = shown_result(page)
            column = rgb2lab(stroked[round(0.4 * height) : round(0.6 * height), px0:px1])
            assert np.hypot(column[..., 1], column[..., 2]).max(axis=1).min() > 20
            page.click("#hint-list li:first-child button.remove")
            wait_version(page, 4)
            assert page.locator("#hint-list li").count() == 1
            page.click("#undo")
            wait_version(page, 5)
            assert page.locator("#hint-list li").count() == 2
            assert np.array_equal(shown_result(page), stroked)
            page.select_option("#style", "vivid")
            wait_version(page, 6)
            edits = client.get(f"/api/photos/{hint['id']}/edits.json").json()
            assert edits["style"] == "vivid" and len(edits["hints"]) == 2
        finally:
            browser.close()
