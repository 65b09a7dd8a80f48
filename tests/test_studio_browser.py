"""The routing studio in headless Chromium (the system's, driven by playwright; no browser is
downloaded): load the page, upload a photo, click a region, change its category, see the result
change. Skipped, saying why, without playwright or Chromium. SEGCOLOR_UPDATE_SCREENSHOT=1 also
writes the page's screenshot to docs/studio.png (the README shows it)."""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcolor.pipeline import Pipeline

from .conftest import REPO
from .test_pipeline import make_experts
from .test_routing_edits import subjects_photo, subjects_yaml

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
