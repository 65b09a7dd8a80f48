"""The routing studio's web app (FastAPI): the page, its assets, and a JSON API for scripts.

Safe by default: ``segcolor serve`` binds 127.0.0.1; uploads are capped in bytes (checked while
reading, before anything is decoded) and in pixels (``load_image``'s decompression-bomb rule);
uploads are written only to the app's own temporary folder and deleted once decoded; model work
runs ``workers`` at a time while further requests wait in a bounded queue (503 when it is full);
every client mistake is a 4xx with a one-line ``{"detail": ...}``; the page and its scripts are
served from the package (no CDN, nothing fetched from outside). The API is described by the app
at ``/openapi.json`` and, readably and offline, at ``/api``.
"""

from __future__ import annotations

import asyncio
import contextlib
import html
import json
import re
import shutil
import tempfile
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from fastapi import FastAPI, HTTPException, Query, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import FileResponse, HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from starlette.concurrency import run_in_threadpool

from segcolor import __version__
from segcolor.errors import SegcolorError
from segcolor.io.images import DEFAULT_MAX_PIXELS, load_image
from segcolor.pipeline import Pipeline
from segcolor.router.edits import RoutingEdits
from segcolor.router.hints import parse_hint
from segcolor.studio.session import PhotoSession, SessionStore, png_bytes

STATIC = Path(__file__).parent / "static"
MAX_EDITS_BYTES = 4 << 20  # a JSON of edits with a few painted masks
_SAFE_NAME = re.compile(r"[^A-Za-z0-9._-]+")
_RAW_IMAGE_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/octet-stream": {"schema": {"type": "string", "format": "binary"}}},
        "description": "the image file's bytes (JPEG, PNG, WebP, BMP, TIFF)",
    }
}
_EDITS_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
        "description": "routing edits: {reassign: [{region, category}], paint: [{category, "
        "polygon | rle | mask_png}], profiles: {category: variant}, vividness, style, hints}",
    }
}
_HINT_BODY = {
    "requestBody": {
        "required": True,
        "content": {"application/json": {"schema": {"type": "object"}}},
        "description": 'one color hint, in photo pixels: a point {"x", "y", "color": "#rrggbb", '
        '"radius"?} or a stroke {"points": [[x, y], ...], "color", "width"?}',
    }
}
MAX_HINT_BYTES = 256 << 10  # a stroke of 2,000 points


@dataclass
class StudioSettings:
    max_upload_bytes: int = 50 << 20
    max_pixels: int = DEFAULT_MAX_PIXELS
    workers: int = 1  # model work at once (each uses all of torch's threads)
    max_waiting: int = 64  # requests queued for a worker; more get 503
    max_photos: int = 20  # photos kept in memory (least recently used dropped)


class Busy:
    """At most ``workers`` jobs at once; at most ``max_waiting`` waiting for one."""

    def __init__(self, workers: int, max_waiting: int) -> None:
        self.semaphore = asyncio.Semaphore(workers)
        self.max_waiting = max_waiting
        self.waiting = 0
        self.running = 0

    async def run(self, function, *args):
        if self.waiting >= self.max_waiting:
            raise HTTPException(503, "the studio is busy: too many requests queued; retry later")
        self.waiting += 1
        try:
            await self.semaphore.acquire()
        finally:
            self.waiting -= 1
        self.running += 1
        try:
            return await run_in_threadpool(function, *args)
        finally:
            self.running -= 1
            self.semaphore.release()


def safe_name(name: str | None) -> str:
    """A display / download name: the file's base name with only safe characters."""
    base = Path(name or "photo").name
    cleaned = _SAFE_NAME.sub("_", base).strip("._") or "photo"
    return cleaned[:100]


def one_line(text: str) -> str:
    return " ".join(str(text).split())


def create_app(
    pipeline: Pipeline,
    settings: StudioSettings | None = None,
    workdir: str | Path | None = None,
) -> FastAPI:
    """The app for one loaded, routed ``pipeline``. ``workdir``: where uploads are written
    (default: a new temporary folder, removed when the app shuts down)."""
    if not pipeline.routed:
        raise SegcolorError("the studio needs a routed pipeline (a segmenter); one expert has none")
    settings = settings or StudioSettings()
    own_dir = workdir is None
    folder = Path(tempfile.mkdtemp(prefix="segcolor-studio-") if own_dir else workdir)
    folder.mkdir(parents=True, exist_ok=True)
    store = SessionStore(settings.max_photos)
    busy = Busy(settings.workers, settings.max_waiting)
    router = pipeline.router
    assert router is not None

    @contextlib.asynccontextmanager
    async def lifespan(app: FastAPI):
        yield
        if own_dir:
            shutil.rmtree(folder, ignore_errors=True)

    app = FastAPI(
        lifespan=lifespan,
        title="segcolor routing studio",
        version=__version__,
        description="Colorize photos, see which expert colored which region, and correct the "
        "routing. Images are sent as raw bytes; routing edits are JSON.",
        docs_url=None,  # FastAPI's docs page loads its scripts from a CDN: /api is local
        redoc_url=None,
    )
    app.state.pipeline, app.state.store, app.state.busy = pipeline, store, busy
    app.state.settings, app.state.workdir = settings, folder

    @app.exception_handler(HTTPException)
    async def _http_error(request: Request, err: HTTPException) -> JSONResponse:
        return JSONResponse({"detail": one_line(err.detail)}, status_code=err.status_code)

    @app.exception_handler(RequestValidationError)
    async def _validation_error(request: Request, err: RequestValidationError) -> JSONResponse:
        first = err.errors()[0] if err.errors() else {}
        where = ".".join(str(p) for p in first.get("loc", ()))
        detail = one_line(f"{where}: {first.get('msg', 'invalid request')}")
        return JSONResponse({"detail": detail}, status_code=422)

    # ------------------------------------------------------------------ helpers

    async def read_body(request: Request, limit: int, what: str) -> bytes:
        length = request.headers.get("content-length")
        if length is not None and length.isdigit() and int(length) > limit:
            raise HTTPException(413, f"{what} is {int(length):,} bytes; the limit is {limit:,}")
        chunks, total = [], 0
        async for chunk in request.stream():
            total += len(chunk)
            if total > limit:
                raise HTTPException(413, f"{what} is over the limit of {limit:,} bytes")
            chunks.append(chunk)
        data = b"".join(chunks)
        if not data:
            raise HTTPException(400, f"empty {what} (0 bytes)")
        return data

    def decode(data: bytes, name: str):
        """Bytes -> LoadedImage, via a file in the app's folder (deleted at once)."""
        path = folder / f"upload-{uuid.uuid4().hex}{Path(name).suffix.lower()[:8]}"
        try:
            path.write_bytes(data)
            return load_image(path, max_pixels=settings.max_pixels)
        except SegcolorError as err:
            message = str(err).removeprefix(f"{path}: ")
            raise HTTPException(400, f"{name}: {message}") from None
        finally:
            path.unlink(missing_ok=True)

    def parse_edits(data: bytes | str | None) -> RoutingEdits:
        if not data:
            return RoutingEdits()
        try:
            edits = RoutingEdits.from_json(data)
            router.check_edits(edits)
        except SegcolorError as err:
            raise HTTPException(400, str(err)) from None
        return edits

    def session_of(photo_id: str) -> PhotoSession:
        session = store.get(photo_id)
        if session is None:
            raise HTTPException(404, f"no photo {photo_id!r} (uploaded photos are kept in memory)")
        return session

    def apply(session: PhotoSession, edits: RoutingEdits) -> dict[str, Any]:
        try:
            session.render(edits)
        except SegcolorError as err:  # e.g. a region this photo does not have, a hint outside
            raise HTTPException(400, str(err)) from None
        return session.describe()

    def edited(function, *args) -> RoutingEdits:
        """``function(*args)`` -> new edits; a mistake in them is a one-line 400."""
        try:
            return function(*args)
        except SegcolorError as err:
            raise HTTPException(400, str(err)) from None

    def attachment(name: str) -> dict[str, str]:
        return {"Content-Disposition": f'attachment; filename="{name}"'}

    # ------------------------------------------------------------------ page

    @app.get("/", include_in_schema=False)
    def page() -> FileResponse:
        return FileResponse(STATIC / "index.html", media_type="text/html")

    app.mount("/static", StaticFiles(directory=STATIC), name="static")

    @app.get("/api", include_in_schema=False, response_class=HTMLResponse)
    def api_page() -> str:
        """The API, listed from the app's own OpenAPI description (no external scripts)."""
        spec = app.openapi()
        rows = []
        for route, methods in spec["paths"].items():
            for method, op in methods.items():
                rows.append(
                    f"<tr><td><code>{method.upper()}</code></td><td><code>{html.escape(route)}"
                    f"</code></td><td>{html.escape(op.get('summary', ''))}<br><small>"
                    f"{html.escape(op.get('description', ''))}</small></td></tr>"
                )
        return (
            "<!doctype html><meta charset=utf-8><title>segcolor studio API</title>"
            "<link rel=stylesheet href=/static/app.css><main class=api>"
            f"<h1>segcolor studio API {html.escape(__version__)}</h1><p>Machine-readable: "
            "<a href=/openapi.json>/openapi.json</a>. Images go in as raw bytes "
            "(<code>curl --data-binary @photo.jpg</code>); edits as JSON.</p>"
            f"<table>{''.join(rows)}</table></main>"
        )

    # ------------------------------------------------------------------ photos

    @app.get("/api/status", summary="Queue and limits")
    def status() -> dict[str, Any]:
        return {
            "version": __version__,
            "running": busy.running,
            "waiting": busy.waiting,
            "photos": len(store.all()),
            "limits": {
                "max_upload_bytes": settings.max_upload_bytes,
                "max_pixels": settings.max_pixels,
                "workers": settings.workers,
                "max_waiting": settings.max_waiting,
            },
            "categories": router.categories,
        }

    @app.post(
        "/api/photos",
        status_code=201,
        summary="Upload a photo: route and colorize it",
        description="Body: the image's bytes. Returns the photo's id, regions and categories.",
        openapi_extra=_RAW_IMAGE_BODY,
    )
    async def upload(request: Request, name: str = Query("photo", max_length=200)) -> Any:
        name = safe_name(name)
        data = await read_body(request, settings.max_upload_bytes, "upload")

        def work() -> dict[str, Any]:
            image = decode(data, name)
            session = PhotoSession.open(
                pipeline, image.pixels, id=uuid.uuid4().hex[:12], name=name,
                alpha=image.alpha_pixels,
            )  # fmt: skip
            store.add(session)
            return session.describe()

        return await busy.run(work)

    @app.get("/api/photos", summary="The photos in memory")
    def photos() -> list[dict[str, Any]]:
        return [
            {"id": s.id, "name": s.name, "version": s.version, "summary": s.describe()["summary"]}
            for s in store.all()
        ]

    @app.get("/api/photos/{photo_id}", summary="A photo's routing, regions and edits")
    def photo(photo_id: str) -> dict[str, Any]:
        return session_of(photo_id).describe()

    @app.delete("/api/photos/{photo_id}", status_code=204, summary="Forget a photo")
    def forget(photo_id: str) -> Response:
        if not store.remove(photo_id):
            raise HTTPException(404, f"no photo {photo_id!r}")
        return Response(status_code=204)

    @app.put(
        "/api/photos/{photo_id}/edits",
        summary="Apply routing edits (replacing the previous ones)",
        description="Only the experts whose crops change run again; returns the photo with "
        "render_ms, the time the re-routing took.",
        openapi_extra=_EDITS_BODY,
    )
    async def put_edits(photo_id: str, request: Request) -> Any:
        session = session_of(photo_id)
        edits = parse_edits(await read_body(request, MAX_EDITS_BYTES, "edits"))
        return await busy.run(apply, session, edits)

    @app.post(
        "/api/photos/{photo_id}/hints",
        summary="Add a color hint",
        description="The hint's a, b go to the experts of the regions it lies in; only the "
        'experts whose crops hold it run again. Saved in the edits ("hints").',
        openapi_extra=_HINT_BODY,
    )
    async def add_hint(photo_id: str, request: Request) -> Any:
        session = session_of(photo_id)
        body = await read_body(request, MAX_HINT_BYTES, "hint")
        try:
            raw = json.loads(body)
        except (ValueError, UnicodeDecodeError):
            raise HTTPException(400, "the hint is not valid JSON") from None
        hint = edited(parse_hint, len(session.edits.hints), raw)
        # the edits are read when the work runs: hints sent at once all count
        return await busy.run(lambda: apply(session, edited(session.edits.with_hint, hint)))

    @app.delete("/api/photos/{photo_id}/hints/{index}", summary="Remove a color hint")
    async def remove_hint(photo_id: str, index: int) -> Any:
        session = session_of(photo_id)

        def work() -> dict[str, Any]:
            count = len(session.edits.hints)
            if not 0 <= index < count:
                raise HTTPException(404, f"no hint {index} (this photo has {count})")
            return apply(session, session.edits.without_hint(index))

        return await busy.run(work)

    @app.put(
        "/api/photos/{photo_id}/style",
        summary="Set the photo's style: faithful or vivid (empty: the pipeline's)",
    )
    async def put_style(photo_id: str, style: str = Query(..., max_length=40)) -> Any:
        session = session_of(photo_id)
        return await busy.run(
            lambda: apply(session, edited(session.edits.with_style, style or None))
        )

    @app.post("/api/photos/{photo_id}/undo", summary="Undo the last change of edits")
    async def undo(photo_id: str) -> Any:
        session = session_of(photo_id)

        def work() -> dict[str, Any]:
            if not session.undo():
                raise HTTPException(409, "nothing to undo")
            return session.describe()

        return await busy.run(work)

    @app.get("/api/photos/{photo_id}/edits.json", summary="Download the edits")
    def get_edits(photo_id: str) -> Response:
        session = session_of(photo_id)
        stem = Path(session.name).stem
        return Response(
            session.edits.to_json(),
            media_type="application/json",
            headers=attachment(f"{stem}.edits.json"),
        )

    @app.get("/api/photos/{photo_id}/routing.json", summary="Download the routing report")
    async def get_routing(photo_id: str) -> Response:
        session = session_of(photo_id)
        report = await busy.run(session.routing_report)
        return Response(
            json.dumps(report, indent=2, default=str) + "\n",
            media_type="application/json",
            headers=attachment(f"{Path(session.name).stem}.routing.json"),
        )

    @app.get(
        "/api/photos/{photo_id}/{kind}.png",
        summary="gray (preview), overlay (preview) or result (full size) as PNG",
        responses={200: {"content": {"image/png": {}}}},
    )
    async def image(photo_id: str, kind: str, download: bool = False) -> Response:
        if kind not in ("gray", "overlay", "result"):
            raise HTTPException(404, f"no image {kind!r}: gray, overlay or result")
        session = session_of(photo_id)
        data = await busy.run(session.png, kind)
        stem = Path(session.name).stem
        headers = {"Cache-Control": "no-store"}
        if download:
            suffix = "colorized" if kind == "result" else kind
            headers.update(attachment(f"{stem}.{suffix}.png"))
        return Response(data, media_type="image/png", headers=headers)

    @app.get("/api/photos/{photo_id}/regions/at", summary="The region under a pixel")
    async def region_at(photo_id: str, x: float, y: float) -> dict[str, Any]:
        session = session_of(photo_id)
        index = session.base.region_at(x, y)
        if index is None:
            return {"id": None}
        return await busy.run(session.region_info, index)

    @app.get("/api/photos/{photo_id}/regions/{region}", summary="A region's details")
    async def region(photo_id: str, region: int) -> dict[str, Any]:
        session = session_of(photo_id)
        if not 0 <= region < len(session.base.regions):
            raise HTTPException(404, f"no region {region} in {session.name}")
        return await busy.run(session.region_info, region)

    # ------------------------------------------------------------------ one-shot, for scripts

    @app.post(
        "/api/colorize",
        summary="Colorize a photo in one request (PNG back)",
        description="Body: the image's bytes; `edits`: routing edits as a JSON string. "
        "Same result as `segcolor colorize --routing`.",
        openapi_extra=_RAW_IMAGE_BODY,
        responses={200: {"content": {"image/png": {}}}},
    )
    async def colorize(
        request: Request, name: str = Query("photo", max_length=200), edits: str | None = None
    ) -> Response:
        name = safe_name(name)
        parsed = parse_edits(edits)
        data = await read_body(request, settings.max_upload_bytes, "upload")

        def work() -> bytes:
            image = decode(data, name)
            try:
                rgb = pipeline.colorize(image.pixels, None if parsed.empty else parsed)
            except SegcolorError as err:
                raise HTTPException(400, str(err)) from None
            return png_bytes(rgb, image.alpha_pixels)

        return Response(await busy.run(work), media_type="image/png")

    @app.post(
        "/api/route",
        summary="Route a photo in one request (its routing as JSON)",
        openapi_extra=_RAW_IMAGE_BODY,
    )
    async def route(
        request: Request, name: str = Query("photo", max_length=200), edits: str | None = None
    ) -> dict[str, Any]:
        name = safe_name(name)
        parsed = parse_edits(edits)
        data = await read_body(request, settings.max_upload_bytes, "upload")

        def work() -> dict[str, Any]:
            image = decode(data, name)
            try:
                routing = pipeline.route(image.pixels, None if parsed.empty else parsed)
            except SegcolorError as err:
                raise HTTPException(400, str(err)) from None
            return {"image": name, **routing.to_dict()}

        return await busy.run(work)

    return app
