"""`segcolor serve`, the routing studio: a real server on a free local port (uvicorn in a
thread) with the tiny experts and the fake person-and-dog segmenter. A reassigned region is the
only one whose colors change, and its edits replay through `segcolor colorize --routing` to the
same image; bad uploads and bad edits get one-line 4xx answers and the server keeps serving;
20 concurrent requests all complete; the page uses no outside assets. With hand-set experts
that copy color hints (tests/test_hints.py): a hint colors its spot, reruns only the experts
whose crops hold it, is undone, and replays through the CLI; the photo's style is saved."""

from __future__ import annotations

import argparse
import http.client
import io
import json
import socket
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from segcolor.cli import main
from segcolor.commands import serve as serve_command
from segcolor.pipeline import Pipeline

from .test_hints import count_forward_calls, hint_yaml, lab_ab, make_hint_experts
from .test_pipeline import make_experts
from .test_profiles import profiled_yaml, variant_dir  # noqa: F401 (a fixture)
from .test_routing_edits import DOG, PERSON, far_from, subjects_photo, subjects_yaml

fastapi = pytest.importorskip("fastapi", reason="the studio extra is not installed")
uvicorn = pytest.importorskip("uvicorn", reason="the studio extra is not installed")

from segcolor.studio.app import StudioSettings, create_app  # noqa: E402

MAX_UPLOAD = 2 << 20
MAX_PIXELS = 1_000_000


@dataclass
class Reply:
    status: int
    body: bytes
    headers: dict[str, str]

    def json(self):
        return json.loads(self.body)

    def image(self) -> np.ndarray:
        return np.asarray(Image.open(io.BytesIO(self.body)))


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Client:
    def __init__(self, base: str) -> None:
        self.base = base

    def request(self, method: str, path: str, data: bytes | None = None, **headers) -> Reply:
        request = urllib.request.Request(self.base + path, data=data, method=method)
        for key, value in headers.items():
            request.add_header(key.replace("_", "-"), value)
        try:
            with urllib.request.urlopen(request, timeout=60) as response:
                return Reply(response.status, response.read(), dict(response.headers))
        except urllib.error.HTTPError as err:
            return Reply(err.code, err.read(), dict(err.headers))

    def get(self, path: str) -> Reply:
        return self.request("GET", path)

    def upload(self, data: bytes, name: str = "photo.png") -> Reply:
        return self.request("POST", f"/api/photos?name={urllib.parse.quote(name)}", data)

    def put_edits(self, photo: str, edits: dict | bytes) -> Reply:
        body = edits if isinstance(edits, bytes) else json.dumps(edits).encode()
        path = f"/api/photos/{photo}/edits"
        return self.request("PUT", path, body, Content_Type="application/json")


def png(array: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    Image.fromarray(array).save(buffer, format="PNG")
    return buffer.getvalue()


class StudioServer:
    """uvicorn serving the studio app in a thread, on a free port of 127.0.0.1."""

    def __init__(self, app) -> None:
        self.port = free_port()
        config = uvicorn.Config(app, host="127.0.0.1", port=self.port, log_level="warning")
        self.server = uvicorn.Server(config)
        self.thread = threading.Thread(target=self.server.run, daemon=True)

    def __enter__(self) -> Client:
        self.thread.start()
        deadline = time.monotonic() + 30
        while not self.server.started:
            if time.monotonic() > deadline or not self.thread.is_alive():
                raise RuntimeError("the studio server did not start")
            time.sleep(0.02)
        return Client(f"http://127.0.0.1:{self.port}")

    def __exit__(self, *exc) -> None:
        self.server.should_exit = True
        self.thread.join(timeout=30)


@pytest.fixture(scope="module")
def expert_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return make_experts(tmp_path_factory.mktemp("experts"))


@pytest.fixture(scope="module")
def yaml_path(tmp_path_factory: pytest.TempPathFactory, expert_dir: Path) -> Path:
    return subjects_yaml(tmp_path_factory.mktemp("studio"), expert_dir)


@pytest.fixture(scope="module")
def studio(yaml_path: Path, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    pipeline = Pipeline.from_config(yaml_path, device="cpu")
    workdir = tmp_path_factory.mktemp("studio-work")
    settings = StudioSettings(max_upload_bytes=MAX_UPLOAD, max_pixels=MAX_PIXELS)
    app = create_app(pipeline, settings, workdir=workdir)
    with StudioServer(app) as client:
        client.workdir = workdir
        yield client


def test_reassigned_region_alone_changes_and_replays_in_the_cli(
    studio: Client, yaml_path: Path, tmp_path: Path
) -> None:
    photo = subjects_photo()
    reply = studio.upload(png(photo), "person and dog.png")
    assert reply.status == 201, reply.body
    info = reply.json()
    assert info["name"] == "person_and_dog.png" and (info["width"], info["height"]) == (192, 128)
    assert [r["category"] for r in info["regions"]] == ["people", "animals", "places"]
    photo_id = info["id"]
    before = studio.get(f"/api/photos/{photo_id}/result.png").image()
    assert before.shape == (128, 192, 3)

    # click on the dog: the region under the pixel, with its details
    x0, y0, x1, y1 = info["regions"][1]["bbox_xyxy"]
    region = studio.get(f"/api/photos/{photo_id}/regions/at?x={(x0 + x1) / 2}&y={(y0 + y1) / 2}")
    region = region.json()
    assert region["id"] == 1 and region["category_now"] == "animals"
    assert region["classes"] == ["dog"] and region["confidence"] > 0.9
    assert region["dominant_colors"]["colors"]

    started = time.perf_counter()
    reply = studio.put_edits(photo_id, {"reassign": [{"region": 1, "category": "people"}]})
    elapsed = time.perf_counter() - started
    assert reply.status == 200, reply.body
    assert reply.json()["regions"][1]["category_now"] == "people"
    assert reply.json()["render_ms"] < 1000 and elapsed < 2
    after = studio.get(f"/api/photos/{photo_id}/result.png").image()
    changed = np.abs(after.astype(int) - before.astype(int)).max(axis=2) > 0
    far = far_from(DOG, photo.shape, 24)
    assert not changed[far].any()  # pixels far from the region: identical
    assert changed[~far].mean() > 0.3  # the region's own colors changed
    assert studio.get(f"/api/photos/{photo_id}/regions/1").json()["reassigned"] is True

    # the downloads: edits, routing.json; the edits replay through the CLI to the same image
    edits = studio.get(f"/api/photos/{photo_id}/edits.json")
    assert 'filename="person_and_dog.edits.json"' in edits.headers["content-disposition"]
    routing = studio.get(f"/api/photos/{photo_id}/routing.json").json()
    assert routing["edits"] == edits.json() and "animals" not in routing["shares_percent"]
    assert all("dominant_colors" in r for r in routing["regions"])
    (tmp_path / "edits.json").write_bytes(edits.body)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    argv = ["colorize", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out.png")]
    argv += ["--pipeline", str(yaml_path), "--routing", str(tmp_path / "edits.json")]
    assert main([*argv, "--device", "cpu"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), after)
    # the one-shot API gives the same image too
    one_shot = studio.request(
        "POST", "/api/colorize?edits=" + urllib.parse.quote(edits.body.decode()), png(photo)
    )
    assert one_shot.status == 200 and np.array_equal(one_shot.image(), after)
    # the photo's own vividness: saved with the edits, the same routing, livelier colors
    vivid = studio.put_edits(photo_id, {**edits.json(), "vividness": 1.5})
    assert vivid.status == 200 and vivid.json()["vividness"] == 1.5
    assert vivid.json()["regions"][1]["category_now"] == "people"
    livelier = studio.get(f"/api/photos/{photo_id}/result.png").image()
    assert chroma(livelier) > chroma(after) + 1.0
    assert studio.get(f"/api/photos/{photo_id}/edits.json").json()["vividness"] == 1.5
    # reset: back to the router's own result
    reset = studio.put_edits(photo_id, {})
    assert reset.status == 200 and reset.json()["vividness"] == 1.0
    assert np.array_equal(studio.get(f"/api/photos/{photo_id}/result.png").image(), before)


def chroma(rgb: np.ndarray) -> float:
    from skimage.color import rgb2lab

    lab = rgb2lab(rgb)
    return float(np.hypot(lab[..., 1], lab[..., 2]).mean())


def test_bad_uploads_and_edits_are_one_line_4xx(studio: Client) -> None:
    good = png(subjects_photo())
    bomb = png(np.zeros((1001, 1000), dtype=np.uint8))  # 1.001 MP over the 1 MP limit
    cases = {
        "empty": (b"", 400, "empty upload"),
        "truncated": (good[: len(good) // 2], 400, "corrupt or truncated"),
        "bomb": (bomb, 400, "image too large"),
        "text": (b"hello, not an image", 400, "not a readable image"),
    }
    for name, (data, status, fragment) in cases.items():
        reply = studio.upload(data, f"{name}.png")
        detail = reply.json()["detail"]
        assert reply.status == status, (name, reply.status, detail)
        assert fragment in detail and "\n" not in detail, (name, detail)
    assert "truncated.png: " in studio.upload(good[:100], "truncated.png").json()["detail"]
    # huge: refused from its Content-Length, before the body is read
    connection = http.client.HTTPConnection("127.0.0.1", int(studio.base.rsplit(":", 1)[1]))
    connection.putrequest("POST", "/api/photos?name=huge.png")
    connection.putheader("Content-Length", str(MAX_UPLOAD + 1))
    connection.endheaders()
    reply = connection.getresponse()
    detail = json.loads(reply.read())["detail"]
    assert reply.status == 413 and detail == "upload is 2,097,153 bytes; the limit is 2,097,152"
    connection.close()

    photo_id = studio.upload(good).json()["id"]
    bad_edits = {
        b"{": "not valid JSON",
        b'{"reassign": [{"region": 7, "category": "people"}]}': "no region 7 in this photo",
        b'{"reassign": [{"region": 0, "category": "cars"}]}': "unknown category 'cars'",
        b'{"profiles": {"places": "green"}}': "'places' has no profile variants",
        b'{"paint": [{"category": "people", "polygon": [1]}]}': "3 or more [x, y] points",
        b'{"hints": [{"x": 500, "y": 1, "color": "#000000"}]}': "outside the 192x128 photo",
        b'{"hints": [{"x": 5, "y": 1, "color": "black"}]}': "hints[0].color must be an sRGB",
        b'{"style": "loud"}': '"style" must be one of faithful, vivid',
    }
    for body, fragment in bad_edits.items():
        reply = studio.put_edits(photo_id, body)
        assert reply.status == 400 and fragment in reply.json()["detail"], reply.body
    assert studio.get("/api/photos/nope").status == 404
    assert studio.get(f"/api/photos/{photo_id}/regions/99").status == 404
    assert studio.get(f"/api/photos/{photo_id}/regions/at?x=abc&y=1").status == 422
    # still serving, and no upload was left in its folder
    assert studio.get("/api/status").status == 200
    assert list(studio.workdir.iterdir()) == []


def test_twenty_concurrent_requests_all_complete(studio: Client) -> None:
    photos = [png(subjects_photo(96 + 8 * i, 128)) for i in range(4)]

    def work(i: int) -> int:
        if i % 2:
            return studio.request("POST", "/api/colorize", photos[i % 4]).status
        return studio.upload(photos[i % 4], f"p{i}.png").status

    with ThreadPoolExecutor(20) as pool:
        statuses = list(pool.map(work, range(20)))
    assert statuses == [201 if i % 2 == 0 else 200 for i in range(20)]
    assert studio.get("/api/status").json()["waiting"] == 0


def test_page_and_api_description_are_local(studio: Client) -> None:
    page = studio.get("/").body.decode()
    assert '<script src="/static/app.js">' in page
    for asset in ("/", "/static/app.js", "/static/app.css", "/api"):
        text = studio.get(asset).body.decode()
        assert "http://" not in text and "https://" not in text and "//cdn" not in text, asset
    spec = studio.get("/openapi.json").json()
    assert {"/api/photos", "/api/photos/{photo_id}/edits", "/api/colorize", "/api/route"} <= set(
        spec["paths"]
    )
    assert studio.get("/docs").status == 404  # FastAPI's docs page would load a CDN's scripts
    routed = studio.request("POST", "/api/route", png(subjects_photo())).json()
    assert [r["category"] for r in routed["regions"]] == ["people", "animals", "places"]


def test_serve_binds_localhost_by_default() -> None:
    parser = argparse.ArgumentParser()
    serve_command.add_arguments(parser)
    args = parser.parse_args([])
    assert (args.host, args.port) == ("127.0.0.1", 8000)


def test_a_session_pins_a_profile_and_reruns_only_that_expert(
    variant_dir: Path,  # noqa: F811
    tmp_path: Path,
) -> None:
    from segcolor.router.edits import RoutingEdits
    from segcolor.studio.session import PhotoSession

    pipeline = Pipeline.from_config(profiled_yaml(tmp_path, variant_dir), device="cpu")
    image = (np.random.default_rng(0).random((36, 60)) * 255).astype(np.uint8)
    session = PhotoSession.open(pipeline, image, id="p", name="p.png")
    places = next(i for i, r in enumerate(session.base.regions) if r.category == "places")
    profile = session.region_info(places)["profile"]
    assert profile["variants"] == ["gray", "cold-blue", "green"] and profile["pinned"] is None
    before = session.result.copy()
    calls = []
    original = pipeline.run_expert
    pipeline.run_expert = lambda name, *a, **k: calls.append(name) or original(name, *a, **k)
    try:
        session.render(RoutingEdits.from_dict({"profiles": {"places": "green"}}))
    finally:
        del pipeline.run_expert
    assert calls == ["places"]
    assert session.region_info(places)["profile"]["pinned"] == "green"
    assert not np.array_equal(session.result, before)
    assert np.array_equal(session.result, pipeline.colorize(image, session.edits))


# ----------------------------------------------------------------------------- color hints


@pytest.fixture(scope="module")
def hint_studio(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Client]:
    """The studio on the person-and-dog pipeline whose experts copy hints (gray elsewhere)."""
    experts = make_hint_experts(tmp_path_factory.mktemp("hint-experts"))
    yaml = hint_yaml(tmp_path_factory.mktemp("hint-studio"), experts)
    pipeline = Pipeline.from_config(yaml, device="cpu")
    app = create_app(pipeline, workdir=tmp_path_factory.mktemp("hint-work"))
    with StudioServer(app) as client:
        client.yaml, client.pipeline = yaml, pipeline
        yield client


def lab_of(rgb: np.ndarray) -> np.ndarray:
    from skimage.color import rgb2lab

    return rgb2lab(rgb)


def test_a_hint_colors_its_spot_reruns_only_its_crops_and_is_undone(
    hint_studio: Client, tmp_path: Path
) -> None:
    studio, photo = hint_studio, subjects_photo()
    info = studio.upload(png(photo), "hinted.png").json()
    photo_id = info["id"]
    assert info["hints"] == [] and info["style"] == "faithful" and info["can_undo"] is False
    assert info["reads_hints"] is True and info["has_vivid"] is True
    assert info["hint_defaults"] == {"radius": 2.0, "width": 4.0}  # working size = photo size
    gray = studio.get(f"/api/photos/{photo_id}/result.png").image()
    assert np.array_equal(gray[..., 0], gray[..., 2])  # no hint: these experts answer gray

    # the dog's swatches for a hint: its dominant chromas (gray here)
    x, y = (DOG[0] + DOG[2]) / 2 * 192, (DOG[1] + DOG[3]) / 2 * 128
    region = studio.get(f"/api/photos/{photo_id}/regions/at?x={x}&y={y}").json()
    (swatch,) = region["hint_colors"]
    assert abs(swatch["a"]) < 1 and abs(swatch["b"]) < 1 and swatch["percent"] == 100

    calls = count_forward_calls(studio.pipeline)
    color = "#6a5acd"
    reply = studio.request(
        "POST",
        f"/api/photos/{photo_id}/hints",
        json.dumps({"x": x, "y": y, "color": color, "radius": 5}).encode(),
        Content_Type="application/json",
    )
    assert reply.status == 200, reply.body
    assert set(calls) == {"animals", "places"}  # the people's crop does not hold the hint
    described = reply.json()
    assert described["hints"] == [
        {"index": 0, "kind": "point", "x": x, "y": y, "color": color, "radius": 5.0}
    ]
    assert described["can_undo"] is True
    one = studio.get(f"/api/photos/{photo_id}/result.png").image()
    lab = lab_of(one)
    ea, eb = lab_ab(color)
    assert abs(lab[round(y), round(x), 1] - ea) < 3 and abs(lab[round(y), round(x), 2] - eb) < 3
    far = far_from((x / 192, y / 128, x / 192, y / 128), photo.shape, 12)
    assert np.array_equal(one[far], gray[far])  # far from the hint: not a value moved

    # a stroke over the person: its expert and the background's run, the dog's does not
    calls.clear()
    px = (PERSON[0] + PERSON[2]) / 2 * 192
    stroke = {"points": [[px, 40], [px, 90]], "color": "#2e8b57", "width": 4}
    reply = studio.request(
        "POST",
        f"/api/photos/{photo_id}/hints",
        json.dumps(stroke).encode(),
        Content_Type="application/json",
    )
    assert reply.status == 200 and set(calls) == {"people", "places"}
    two = studio.get(f"/api/photos/{photo_id}/result.png").image()
    ga, gb = lab_ab("#2e8b57")
    along = lab_of(two)[45:86, round(px)]
    assert (np.abs(along[:, 1] - ga) < 3).all() and (np.abs(along[:, 2] - gb) < 3).all()

    # bad hints: one-line 4xx, nothing changed
    bad = {
        b'{"x": 192, "y": 5, "color": "#000000"}': (400, "at (192, 5) is outside the 192x128"),
        b'{"x": 5, "y": 5, "color": "blue"}': (400, 'color must be an sRGB color like "#'),
        b'{"x": 5, "y": 5, "color": "#000000", "size": 3}': (400, "unknown key 'size'"),
        b'{"x": "5", "y": 5, "color": "#000000"}': (400, "x must be a number, got '5'"),
        b'{"x": 5, "y": 5, "color": "#000000", "radius": 40}': (400, "too large"),
        b"[1, 2": (400, "the hint is not valid JSON"),
    }
    for body, (status, fragment) in bad.items():
        reply = studio.request(
            "POST", f"/api/photos/{photo_id}/hints", body, Content_Type="application/json"
        )
        detail = reply.json()["detail"]
        assert reply.status == status and fragment in detail and "\n" not in detail, detail
    assert studio.request("DELETE", f"/api/photos/{photo_id}/hints/2").status == 404
    reply = studio.request("PUT", f"/api/photos/{photo_id}/style?style=loud")
    assert reply.status == 400 and "must be one of faithful, vivid" in reply.json()["detail"]
    assert len(studio.get(f"/api/photos/{photo_id}").json()["hints"]) == 2

    # the edits replay through `segcolor colorize --routing` to the same image
    edits = studio.get(f"/api/photos/{photo_id}/edits.json")
    assert [h["color"] for h in edits.json()["hints"]] == [color, "#2e8b57"]
    (tmp_path / "edits.json").write_bytes(edits.body)
    Image.fromarray(photo).save(tmp_path / "photo.png")
    argv = ["colorize", str(tmp_path / "photo.png"), "-o", str(tmp_path / "out.png")]
    argv += ["--pipeline", str(studio.yaml), "--routing", str(tmp_path / "edits.json")]
    assert main([*argv, "--device", "cpu"]) == 0
    assert np.array_equal(np.asarray(Image.open(tmp_path / "out.png")), two)

    # remove the first; undo brings it back; undo twice more: back to gray
    calls.clear()
    reply = studio.request("DELETE", f"/api/photos/{photo_id}/hints/0")
    assert reply.status == 200 and [h["color"] for h in reply.json()["hints"]] == ["#2e8b57"]
    assert "people" not in calls
    reply = studio.request("POST", f"/api/photos/{photo_id}/undo")
    assert reply.status == 200 and len(reply.json()["hints"]) == 2
    assert np.array_equal(studio.get(f"/api/photos/{photo_id}/result.png").image(), two)
    assert studio.request("POST", f"/api/photos/{photo_id}/undo").status == 200
    assert np.array_equal(studio.get(f"/api/photos/{photo_id}/result.png").image(), one)
    reply = studio.request("POST", f"/api/photos/{photo_id}/undo")
    assert reply.status == 200 and reply.json()["can_undo"] is False
    assert np.array_equal(studio.get(f"/api/photos/{photo_id}/result.png").image(), gray)
    reply = studio.request("POST", f"/api/photos/{photo_id}/undo")
    assert reply.status == 409 and reply.json()["detail"] == "nothing to undo"


def test_the_style_toggle_is_saved_with_the_edits_and_undone(hint_studio: Client) -> None:
    studio = hint_studio
    photo_id = studio.upload(png(subjects_photo()), "styled.png").json()["id"]
    faithful = studio.get(f"/api/photos/{photo_id}/result.png").image()
    reply = studio.request("PUT", f"/api/photos/{photo_id}/style?style=vivid")
    assert reply.status == 200 and reply.json()["style"] == "vivid"
    assert reply.json()["edits"]["style"] == "vivid"
    vivid = studio.get(f"/api/photos/{photo_id}/result.png").image()
    assert not np.array_equal(vivid, faithful)  # the (random) 313-bin heads choose colors
    assert studio.get(f"/api/photos/{photo_id}/edits.json").json()["style"] == "vivid"
    reply = studio.request("PUT", f"/api/photos/{photo_id}/style?style=faithful")
    assert reply.json()["edits"]["style"] == "faithful"
    assert np.array_equal(studio.get(f"/api/photos/{photo_id}/result.png").image(), faithful)
    reply = studio.request("PUT", f"/api/photos/{photo_id}/style?style=")  # the pipeline's
    assert reply.status == 200 and "style" not in reply.json()["edits"]
    studio.request("POST", f"/api/photos/{photo_id}/undo")
    studio.request("POST", f"/api/photos/{photo_id}/undo")
    reply = studio.get(f"/api/photos/{photo_id}").json()
    assert reply["style"] == "vivid"
    assert np.array_equal(studio.get(f"/api/photos/{photo_id}/result.png").image(), vivid)


def test_the_patch_cache_keeps_the_latest_batches() -> None:
    from segcolor.studio.session import BoundedCache

    cache = BoundedCache(limit=2)
    cache["a"], cache["b"] = 1, 2
    assert cache["a"] == 1  # used: now the latest
    cache["c"] = 3
    assert list(cache) == ["a", "c"] and "b" not in cache


def test_hint_swatches_are_the_regions_dominant_chromas() -> None:
    from skimage.color import lab2rgb

    from segcolor.studio.session import hint_colors

    # a region half (L 30, a 40, b 20), half (L 70, a -20, b -30); outside it: green
    lab = np.zeros((40, 60, 3))
    lab[..., 0] = 50.0
    lab[:, :, 1:] = (-60.0, 50.0)
    lab[:20, :30] = (30.0, 40.0, 20.0)
    lab[20:, :30] = (70.0, -20.0, -30.0)
    rgb = np.rint(lab2rgb(lab) * 255).astype(np.uint8)
    mask = np.zeros((40, 60), dtype=bool)
    mask[:, :30] = True
    swatches = hint_colors(rgb, mask)
    assert len(swatches) == 2 and [s["percent"] for s in swatches] == [50.0, 50.0]
    found = sorted((s["a"], s["b"]) for s in swatches)
    assert np.allclose(found, [(-20, -30), (40, 20)], atol=1.5)  # a, b kept, whatever L was
    for swatch in swatches:  # each shown at one visible lightness, with the same a, b
        shown = skimage_lab(swatch["hex"])
        assert 45 <= shown[0] <= 75 and abs(shown[1] - swatch["a"]) < 2
    assert hint_colors(rgb, np.zeros((40, 60), dtype=bool)) == []


def skimage_lab(color: str) -> np.ndarray:
    from skimage.color import rgb2lab

    rgb = np.array([[[int(color[i : i + 2], 16) for i in (1, 3, 5)]]], dtype=np.uint8)
    return rgb2lab(rgb)[0, 0]
