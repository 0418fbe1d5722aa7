"""The FastAPI app of `mien serve`: thin routes over `mien.infer.Recognizer`.

    from mien.serve import create_app, ServeSettings
    app = create_app(model="default", settings=ServeSettings(max_upload_bytes=5 * 2**20))
    # uvicorn.run(app, host="127.0.0.1", port=8000)

Routes: POST /v1/predict (multipart field `file`, or the raw image bytes with an image/* or
application/octet-stream Content-Type), POST /v1/predict/batch (multipart, repeated field `files`),
GET /v1/models, GET /healthz, the page at / (assets under /static/), API docs at /docs (Swagger UI
files served from the swagger-ui-py package, no CDN). The model is loaded once, in `create_app`.
Decoding and inference run in a thread pool; detection and the model run one request at a time
under a lock (MediaPipe graphs are not thread-safe), so the event loop never blocks.
"""

from __future__ import annotations

import asyncio
import contextlib
import functools
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from importlib import resources
from importlib.util import find_spec
from pathlib import Path
from typing import Any, AsyncIterator, Callable, Protocol, Sequence, TypeVar

from fastapi import FastAPI, Request
from fastapi.openapi.docs import get_swagger_ui_html
from fastapi.responses import HTMLResponse, JSONResponse, Response

from ..infer.results import FacePrediction, ImageResult
from .multipart import Part, parse_multipart
from .schemas import (BatchItem, BatchResponse, ErrorOut, FaceOut, Health, ImageInfo, ModelsResponse, PredictResponse,
                      ShippedModelOut)
from .settings import ServeSettings
from .uploads import DecodedImage, UploadError, decode_upload, save_upload, to_original

T = TypeVar("T")

RAW_TYPES = ("image/jpeg", "image/png", "image/webp", "application/octet-stream")
_ERRORS: dict[int | str, dict[str, Any]] = {
    code: {"model": ErrorOut, "description": text} for code, text in (
        (400, "empty, corrupt or malformed upload"), (413, "body or image larger than the service's limits"),
        (415, "not an image in a format mien reads, or an unsupported Content-Type"),
        (503, "too many requests pending; retry after the Retry-After seconds"),
        (504, "the request took longer than the service's timeout"))}
_UPLOAD_BODY = {"requestBody": {"required": True, "content": {
    "multipart/form-data": {"schema": {"type": "object", "required": ["file"],
                                       "properties": {"file": {"type": "string", "format": "binary"}}}},
    **{t: {"schema": {"type": "string", "format": "binary"}} for t in RAW_TYPES}}}}
_BATCH_BODY = {"requestBody": {"required": True, "content": {"multipart/form-data": {"schema": {
    "type": "object", "required": ["files"],
    "properties": {"files": {"type": "array", "items": {"type": "string", "format": "binary"}}}}}}}}
# The page: only our own files and the browser's own blobs/camera; nothing from elsewhere.
_PAGE_CSP = ("default-src 'self'; img-src 'self' blob: data:; media-src 'self' blob: mediastream:; "
             "connect-src 'self'; style-src 'self'; script-src 'self'; object-src 'none'; base-uri 'none'")


class Predictor(Protocol):
    """What the service needs of a `Recognizer` (tests pass small stand-ins)."""

    @property
    def class_names(self) -> tuple[str, ...]: ...

    def predict(self, image: Any) -> list[FacePrediction]: ...

    def predict_batch(self, images: Sequence[Any]) -> list[ImageResult]: ...


@dataclass
class _Service:
    recognizer: Predictor
    model: str
    settings: ServeSettings
    owns_recognizer: bool
    lock: threading.Lock = field(default_factory=threading.Lock)
    pending: int = 0
    _pool: ThreadPoolExecutor | None = None

    def pool(self) -> ThreadPoolExecutor:
        if self._pool is None:  # made on first use, so an app whose lifespan ended still works
            self._pool = ThreadPoolExecutor(self.settings.workers, thread_name_prefix="mien-serve")
        return self._pool

    def shutdown(self) -> None:
        if self._pool is not None:
            self._pool.shutdown(wait=True, cancel_futures=True)
            self._pool = None


def create_app(*, recognizer: Predictor | None = None, model: str = "default",
               settings: ServeSettings | None = None) -> FastAPI:
    """The service as an ASGI app.

    Args:
        recognizer: the Recognizer to serve; None builds `Recognizer(model)` here (loaded once, warmed
            up by `warm_up`, and closed when the app shuts down).
        model: the model name the answers report (and the one loaded when `recognizer` is None).
        settings: limits and pool size (default: `ServeSettings()`).

    Raises:
        ModelError, CheckpointError: `model` cannot be loaded (only when `recognizer` is None).
    """
    settings = settings or ServeSettings()
    owns = recognizer is None
    if recognizer is None:
        from ..infer import Recognizer

        recognizer = Recognizer(model)
        warm_up(recognizer)
    svc = _Service(recognizer, str(model), settings, owns)

    @contextlib.asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        yield
        svc.shutdown()
        if svc.owns_recognizer:
            getattr(svc.recognizer, "close", lambda: None)()

    app = FastAPI(title="mien", version=_version(), lifespan=lifespan, docs_url=None, redoc_url=None,
                  description="Facial expression recognition: upload a photo, get each face's box, the "
                              "probabilities of " + ", ".join(recognizer.class_names) + " and the top emotion.")
    app.state.service = svc
    app.add_exception_handler(UploadError, _upload_error)  # type: ignore[arg-type]
    _add_api_routes(app, svc)
    _add_page_routes(app)
    return app


def warm_up(recognizer: Predictor) -> None:
    """Run the detector and the model once on a blank image, so the first request is not the slow one."""
    import numpy as np

    recognizer.predict(np.full((240, 320, 3), 128, dtype=np.uint8))
    predict_faces = getattr(recognizer, "predict_faces", None)  # the detector finds no face in a blank image
    if predict_faces is not None:
        predict_faces(np.full((1, *getattr(recognizer, "input_size", (48, 48))), 128, dtype=np.uint8))


def _add_api_routes(app: FastAPI, svc: _Service) -> None:
    @app.post("/v1/predict", response_model=PredictResponse, responses=_ERRORS, openapi_extra=_UPLOAD_BODY,
              summary="Faces and expressions in one image")
    async def predict(request: Request) -> PredictResponse:
        started = time.perf_counter()
        async with _admitted(svc):
            body = await _read_body(request, svc.settings.max_upload_bytes)
            data = _single_image(body, request.headers.get("content-type", ""))
            image, faces = await _in_pool(svc, _predict_one, svc, data)
        return PredictResponse(model=svc.model, image=_info(image), faces=[_face(f) for f in faces],
                               time_ms=_ms(started))

    @app.post("/v1/predict/batch", response_model=BatchResponse, responses=_ERRORS, openapi_extra=_BATCH_BODY,
              summary="Faces and expressions in several images (multipart field `files`, repeated)")
    async def predict_batch(request: Request) -> BatchResponse:
        started = time.perf_counter()
        async with _admitted(svc):
            body = await _read_body(request, svc.settings.max_upload_bytes)
            files = _batch_files(body, request.headers.get("content-type", ""), svc.settings.max_batch_files)
            results = await _in_pool(svc, _predict_many, svc, files)
        return BatchResponse(model=svc.model, results=results, time_ms=_ms(started))

    @app.get("/v1/models", response_model=ModelsResponse, summary="The model in use and the shipped ones")
    async def models() -> ModelsResponse:
        catalog = _catalog()
        backend = getattr(svc.recognizer, "backend", None)
        return ModelsResponse(active=svc.model, backend=getattr(backend, "name", None),
                              detector=getattr(svc.recognizer, "detector_name", None),
                              class_names=list(svc.recognizer.class_names),
                              shipped=[m.name for m in catalog if m.kind == "model"],
                              ensembles=[m.name for m in catalog if m.kind == "ensemble"],
                              catalog=[ShippedModelOut(**{k: v for k, v in m.to_dict().items() if k != "card"})
                                       for m in catalog])

    @app.get("/healthz", response_model=Health, summary="Liveness: the model is loaded and the service answers")
    async def healthz() -> Health:
        return Health(status="ok", model=svc.model, pending=svc.pending)


def _add_page_routes(app: FastAPI) -> None:
    # Every file is read now, under a fixed name: no part of a request ever reaches a path.
    static = resources.files("mien.serve") / "static"
    page = (static / "index.html").read_text(encoding="utf-8")
    assets = {name: ((static / name).read_bytes(), kind) for name, kind in
              (("app.js", "text/javascript"), ("app.css", "text/css"))}
    swagger = Path(find_spec("swagger_ui").submodule_search_locations[0]) / "static"  # type: ignore[index, union-attr]
    docs_assets = {name: ((swagger / name).read_bytes(), kind) for name, kind in
                   (("swagger-ui-bundle.js", "text/javascript"), ("swagger-ui.css", "text/css"))}

    @app.get("/", response_class=HTMLResponse, include_in_schema=False)
    async def index() -> HTMLResponse:
        return HTMLResponse(page, headers={"Content-Security-Policy": _PAGE_CSP, "X-Content-Type-Options": "nosniff"})

    def fixed(name: str, content: bytes, kind: str, prefix: str) -> None:
        async def asset() -> Response:
            return Response(content, media_type=kind, headers={"Cache-Control": "no-cache"})

        app.add_api_route(f"{prefix}/{name}", asset, methods=["GET"], include_in_schema=False)

    for name, (content, kind) in assets.items():
        fixed(name, content, kind, "/static")
    for name, (content, kind) in docs_assets.items():
        fixed(name, content, kind, "/docs/assets")

    @app.get("/docs", include_in_schema=False)
    async def docs() -> HTMLResponse:
        return get_swagger_ui_html(openapi_url=app.openapi_url or "/openapi.json", title="mien API",
                                   swagger_js_url="/docs/assets/swagger-ui-bundle.js",
                                   swagger_css_url="/docs/assets/swagger-ui.css", swagger_favicon_url="data:,")


async def _upload_error(_: Request, exc: UploadError) -> JSONResponse:
    headers = {"Retry-After": "1"} if exc.status == 503 else None
    return JSONResponse({"detail": str(exc)}, status_code=exc.status, headers=headers)


@contextlib.asynccontextmanager
async def _admitted(svc: _Service) -> AsyncIterator[None]:
    """Admit a request (503 when `max_pending` are in already) and bound it by `timeout_s` (504)."""
    if svc.pending >= svc.settings.max_pending:
        raise UploadError(503, f"the service is busy ({svc.pending} requests pending); retry in a moment")
    svc.pending += 1  # only the event loop thread touches the counter
    try:
        async with asyncio.timeout(svc.settings.timeout_s):
            yield
    except TimeoutError:
        raise UploadError(504, f"the request took longer than the service's {svc.settings.timeout_s:g} s limit; "
                               "retry, or send a smaller image") from None
    finally:
        svc.pending -= 1


async def _read_body(request: Request, limit: int) -> bytes:
    """The request body, refused (413) as soon as it is known to be longer than `limit` bytes."""
    declared = request.headers.get("content-length", "")
    if declared.isdigit() and int(declared) > limit:
        raise UploadError(413, f"the request body is {int(declared):,} bytes; the limit is {limit:,} bytes")
    chunks, total = [], 0
    async for chunk in request.stream():
        total += len(chunk)
        if total > limit:
            raise UploadError(413, f"the request body is over the limit of {limit:,} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


def _single_image(body: bytes, content_type: str) -> bytes:
    kind = content_type.split(";")[0].strip().lower()
    if kind == "multipart/form-data":
        parts = [p for p in parse_multipart(body, content_type, max_parts=16) if p.name == "file"]
        if not parts:
            raise UploadError(400, "the form has no field named 'file'; send the image as file=@photo.jpg")
        if len(parts) > 1:
            raise UploadError(400, "the form has several 'file' fields; use /v1/predict/batch for several images")
        return _file_data(parts[0])
    if kind.startswith("image/") or kind in ("application/octet-stream", ""):
        return body
    raise UploadError(415, f"Content-Type {kind!r} is not accepted; send the image as a multipart form field "
                           "'file' (curl -F file=@photo.jpg) or as raw bytes with Content-Type image/jpeg, "
                           "image/png, ... or application/octet-stream")


def _batch_files(body: bytes, content_type: str, max_files: int) -> list[Part]:
    if content_type.split(";")[0].strip().lower() != "multipart/form-data":
        raise UploadError(415, "send the images as multipart/form-data, one field 'files' per image "
                               "(curl -F files=@a.jpg -F files=@b.jpg)")
    files = [p for p in parse_multipart(body, content_type, max_parts=max_files + 16) if p.name == "files"]
    if not files:
        raise UploadError(400, "the form has no field named 'files'; send one 'files' field per image")
    if len(files) > max_files:
        raise UploadError(413, f"the batch has {len(files)} images; the limit is {max_files} per request")
    for part in files:
        _file_data(part)
    return files


def _file_data(part: Part) -> bytes:
    """A file part's bytes; a plain text field (no filename) is refused like FastAPI's UploadFile does."""
    if part.filename is None:
        raise UploadError(400, f"form field '{part.name}' is a text field, not a file; attach the image as a file "
                               f"({part.name}=@photo.jpg with curl)")
    return part.data


async def _in_pool(svc: _Service, fn: Callable[..., T], *args: Any) -> T:
    # A request that times out while queued is cancelled here, and its job never starts.
    return await asyncio.get_running_loop().run_in_executor(svc.pool(), fn, *args)


def _decode(svc: _Service, data: bytes, name: str) -> DecodedImage:
    s = svc.settings
    image = decode_upload(data, name=name, max_pixels=s.max_pixels, max_decode_pixels=s.max_decode_pixels)
    if s.save_uploads is not None:
        save_upload(data, image, Path(s.save_uploads))
    return image


def _predict_one(svc: _Service, data: bytes) -> tuple[DecodedImage, list[FacePrediction]]:
    image = _decode(svc, data, "the upload")
    with svc.lock:
        faces = svc.recognizer.predict(image.rgb)
    return image, to_original(faces, image)


def _predict_many(svc: _Service, files: list[Part]) -> list[BatchItem]:
    items: list[BatchItem] = []
    decoded: list[tuple[int, DecodedImage]] = []
    for i, part in enumerate(files):
        items.append(BatchItem(index=i, filename=part.filename, status=200))
        try:
            decoded.append((i, _decode(svc, part.data, f"image {i} ({part.filename or 'no name'})")))
        except UploadError as exc:
            items[i] = BatchItem(index=i, filename=part.filename, status=exc.status, error=str(exc))
    with svc.lock:  # one batched model pass over every face of the readable images
        results = svc.recognizer.predict_batch([img.rgb for _, img in decoded]) if decoded else []
    for (i, image), result in zip(decoded, results):
        faces = [_face(f) for f in to_original(result.faces, image)]
        items[i] = BatchItem(index=i, filename=files[i].filename, status=200, image=_info(image), faces=faces)
    return items


def _face(face: FacePrediction) -> FaceOut:
    record = face.to_dict()
    del record["track_id"]  # always None for still images
    return FaceOut(**record)


def _info(image: DecodedImage) -> ImageInfo:
    return ImageInfo(width=image.width, height=image.height, downscaled=image.downscaled)


@functools.cache
def _catalog() -> tuple:
    """The shipped catalog, read once per process: the package's weights do not change while it runs."""
    from ..weights.catalog import shipped_catalog

    return tuple(shipped_catalog())


def _ms(started: float) -> float:
    return round((time.perf_counter() - started) * 1000.0, 2)


def _version() -> str:
    from .. import __version__

    return __version__
