"""mien serve API: every route and every error path, limits, the worker pool, the page's assets, the real model."""

from __future__ import annotations

import asyncio
import io
import json
import re
import threading
from pathlib import Path
from typing import Any, Sequence

import httpx
import numpy as np
import pytest
from fastapi.testclient import TestClient
from PIL import Image

from conftest import REPO
from mien.errors import ConfigError
from mien.infer.results import FacePrediction, ImageResult
from mien.labels import EMOTIONS
from mien.serve import ServeSettings, create_app
from mien.weights.catalog import shipped_catalog

PROBS = dict(zip(EMOTIONS, (0.05, 0.02, 0.08, 0.1, 0.05, 0.6, 0.1)))  # "surprise" on top


class FakeRecognizer:
    """A stand-in Recognizer: one face covering the middle half of whatever image it is given.

    With `gate`, every call waits for the event first (to hold a request inside the worker pool).
    """

    class_names = EMOTIONS

    def __init__(self, *, gate: threading.Event | None = None, faces: int = 1) -> None:
        self.gate, self.faces = gate, faces
        self.shapes: list[tuple[int, ...]] = []
        self.threads: set[str] = set()

    def predict(self, image: np.ndarray) -> list[FacePrediction]:
        if self.gate is not None:
            assert self.gate.wait(10), "test gate never opened"
        self.shapes.append(image.shape)
        self.threads.add(threading.current_thread().name)
        h, w = image.shape[:2]
        box = (w / 4, h / 4, 3 * w / 4, 3 * h / 4)
        return [FacePrediction(i, box, 0.9, ((w * 0.4, h * 0.4), (w * 0.6, h * 0.4)), PROBS, "surprise", 0.6)
                for i in range(self.faces)]

    def predict_batch(self, images: Sequence[np.ndarray]) -> list[ImageResult]:
        return [ImageResult("<array>", tuple(self.predict(im))) for im in images]


def encode(fmt: str = "PNG", size: tuple[int, int] = (64, 48), **save: Any) -> bytes:
    """A smooth RGB test image (W, H) = size encoded in `fmt`."""
    w, h = size
    x = np.linspace(0, 255, w, dtype=np.float32)[None, :, None]
    y = np.linspace(0, 255, h, dtype=np.float32)[:, None, None]
    rgb = np.concatenate([np.broadcast_to(x, (h, w, 1)), np.broadcast_to(y, (h, w, 1)),
                          np.full((h, w, 1), 128, np.float32)], axis=2).astype(np.uint8)
    img = Image.fromarray(rgb)
    if fmt == "PPM":
        img = img.convert("L")
    buf = io.BytesIO()
    img.save(buf, format=fmt, **save)
    return buf.getvalue()


def client(settings: ServeSettings | None = None, rec: Any = None) -> TestClient:
    return TestClient(create_app(recognizer=rec or FakeRecognizer(), model="fake", settings=settings))


@pytest.fixture(scope="module")
def api() -> TestClient:
    return client()


def test_predict_multipart_returns_faces_boxes_probabilities_and_top_emotion(api: TestClient) -> None:
    r = api.post("/v1/predict", files={"file": ("face.png", encode(), "image/png")})
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["model"] == "fake"
    assert body["image"] == {"width": 64, "height": 48, "downscaled": False}
    (face,) = body["faces"]
    assert face["box"] == [16.0, 12.0, 48.0, 36.0]
    assert face["emotion"] == "surprise" and face["confidence"] == 0.6
    assert list(face["probs"]) == list(EMOTIONS) and sum(face["probs"].values()) == pytest.approx(1.0)
    assert face["landmarks"] == [[25.6, 19.2], [38.4, 19.2]] and "track_id" not in face
    assert body["time_ms"] >= 0


@pytest.mark.parametrize("content_type", ["image/jpeg", "image/png", "application/octet-stream", None])
def test_predict_takes_raw_bytes(api: TestClient, content_type: str | None) -> None:
    headers = {} if content_type is None else {"content-type": content_type}
    r = api.post("/v1/predict", content=encode("JPEG"), headers=headers)
    assert r.status_code == 200, r.text
    assert r.json()["faces"][0]["emotion"] == "surprise"


@pytest.mark.parametrize("fmt", ["JPEG", "PNG", "WEBP", "BMP", "TIFF", "GIF", "PPM"])
def test_predict_reads_every_documented_format(api: TestClient, fmt: str) -> None:
    r = api.post("/v1/predict", files={"file": (f"x.{fmt.lower()}", encode(fmt), "application/octet-stream")})
    assert r.status_code == 200, r.text
    assert r.json()["image"]["width"] == 64


def test_exif_rotation_is_applied_before_detection() -> None:
    exif = Image.Exif()
    exif[0x0112] = 6  # "rotate 90 CW to view": a 64x48 file shows as 48x64
    rec = FakeRecognizer()
    r = client(rec=rec).post("/v1/predict", content=encode("JPEG", exif=exif.tobytes()),
                             headers={"content-type": "image/jpeg"})
    assert r.status_code == 200
    assert r.json()["image"]["width"] == 48 and r.json()["image"]["height"] == 64
    assert rec.shapes == [(64, 48, 3)]


@pytest.mark.parametrize("data, status, words", [
    (b"", 400, "empty"),
    (b"this is plain text, not a picture", 415, "not an image file"),
    (b"%!PS-Adobe-3.0 EPSF-3.0\n%%BoundingBox: 0 0 10 10\n", 415, "not an image file"),  # EPS: never decoded
    (encode("JPEG")[:300], 400, "truncated or corrupt"),
    (encode("PNG")[:60], 400, "corrupt"),
])
def test_unreadable_uploads_get_a_clear_4xx(api: TestClient, data: bytes, status: int, words: str) -> None:
    for request in ({"files": {"file": ("f", data, "image/png")}},
                    {"content": data, "headers": {"content-type": "image/png"}}):
        r = api.post("/v1/predict", **request)
        assert r.status_code == status, r.text
        assert words in r.json()["detail"]


@pytest.mark.parametrize("content_type", ["text/plain", "application/json", "application/x-www-form-urlencoded"])
def test_unsupported_content_type_is_415_and_says_how_to_send(api: TestClient, content_type: str) -> None:
    r = api.post("/v1/predict", content=encode(), headers={"content-type": content_type})
    assert r.status_code == 415
    assert "multipart form field 'file'" in r.json()["detail"] and content_type in r.json()["detail"]


def test_malformed_multipart_requests_are_400(api: TestClient) -> None:
    no_field = api.post("/v1/predict", files={"image": ("a.png", encode(), "image/png")})
    assert no_field.status_code == 400 and "no field named 'file'" in no_field.json()["detail"]
    two = api.post("/v1/predict", files=[("file", ("a.png", encode(), "image/png")),
                                         ("file", ("b.png", encode(), "image/png"))])
    assert two.status_code == 400 and "/v1/predict/batch" in two.json()["detail"]
    no_boundary = api.post("/v1/predict", content=b"--x\r\n", headers={"content-type": "multipart/form-data"})
    assert no_boundary.status_code == 400 and "boundary" in no_boundary.json()["detail"]
    garbage = api.post("/v1/predict", content=b"--xyz\r\nnot a header line\r\n\r\n",
                       headers={"content-type": "multipart/form-data; boundary=xyz"})
    assert garbage.status_code == 400


def test_bodies_over_the_upload_limit_are_413_with_or_without_content_length() -> None:
    api = client(ServeSettings(max_upload_bytes=1000))
    big = encode("BMP", (64, 48))  # ~9 kB
    declared = api.post("/v1/predict", content=big, headers={"content-type": "image/bmp"})
    assert declared.status_code == 413 and "1,000 bytes" in declared.json()["detail"]
    chunked = api.post("/v1/predict", content=iter([big[:600], big[600:]]), headers={"content-type": "image/bmp"})
    assert chunked.status_code == 413
    multipart = api.post("/v1/predict", files={"file": ("a.bmp", big, "image/bmp")})
    assert multipart.status_code == 413
    small = api.post("/v1/predict", content=encode("PNG", (8, 8)), headers={"content-type": "image/png"})
    assert small.status_code == 200


def test_images_over_the_decode_limit_are_refused_before_decoding() -> None:
    rec = FakeRecognizer()
    r = client(ServeSettings(max_pixels=1000, max_decode_pixels=2000), rec).post(
        "/v1/predict", files={"file": ("a.png", encode("PNG", (64, 48)), "image/png")})
    assert r.status_code == 413 and "64x48 = 3,072 pixels" in r.json()["detail"]
    assert rec.shapes == []


def test_large_images_are_downscaled_and_boxes_come_back_in_original_pixels() -> None:
    rec = FakeRecognizer()
    r = client(ServeSettings(max_pixels=10_000), rec).post(
        "/v1/predict", files={"file": ("a.png", encode("PNG", (400, 200)), "image/png")})
    assert r.status_code == 200
    (shape,) = rec.shapes
    assert shape[0] * shape[1] <= 10_000 and shape[1] / shape[0] == pytest.approx(2.0, rel=0.02)
    body = r.json()
    assert body["image"] == {"width": 400, "height": 200, "downscaled": True}
    assert body["faces"][0]["box"] == pytest.approx([100, 50, 300, 150], abs=0.5)
    assert body["faces"][0]["landmarks"][0] == pytest.approx([160, 80], abs=0.5)


def test_batch_reports_each_image_and_keeps_going_past_bad_ones() -> None:
    rec = FakeRecognizer(faces=2)
    r = client(rec=rec).post("/v1/predict/batch", files=[
        ("files", ("good.jpg", encode("JPEG"), "image/jpeg")),
        ("files", ("notes.txt", b"hello", "text/plain")),
        ("files", ("cut.png", encode("PNG")[:60], "image/png")),
        ("files", ("wide.png", encode("PNG", (100, 20)), "image/png")),
    ])
    assert r.status_code == 200, r.text
    results = r.json()["results"]
    assert [x["status"] for x in results] == [200, 415, 400, 200]
    assert [x["filename"] for x in results] == ["good.jpg", "notes.txt", "cut.png", "wide.png"]
    assert "image 1 (notes.txt)" in results[1]["error"] and results[1]["faces"] == []
    assert len(results[0]["faces"]) == 2 and results[3]["image"]["width"] == 100
    assert rec.shapes == [(48, 64, 3), (20, 100, 3)]  # only the readable images reach the model


def test_batch_error_paths() -> None:
    api = client(ServeSettings(max_batch_files=2))
    three = [("files", (f"{i}.png", encode(), "image/png")) for i in range(3)]
    too_many = api.post("/v1/predict/batch", files=three)
    assert too_many.status_code == 413 and "limit is 2" in too_many.json()["detail"]
    none = api.post("/v1/predict/batch", files={"file": ("a.png", encode(), "image/png")})
    assert none.status_code == 400 and "'files'" in none.json()["detail"]
    raw = api.post("/v1/predict/batch", content=encode(), headers={"content-type": "image/png"})
    assert raw.status_code == 415
    all_bad = api.post("/v1/predict/batch", files=[("files", ("a", b"x", "image/png"))])
    assert all_bad.status_code == 200 and all_bad.json()["results"][0]["status"] == 415


def test_models_healthz_and_docs(api: TestClient) -> None:
    models = api.get("/v1/models").json()
    assert models["active"] == "fake" and models["class_names"] == list(EMOTIONS)
    assert "default" in models["shipped"] and "ensemble" in models["ensembles"]
    expected = [{k: v for k, v in m.to_dict().items() if k != "card"} for m in shipped_catalog()]
    assert models["catalog"] == json.loads(json.dumps(expected))
    assert api.get("/healthz").json() == {"status": "ok", "model": "fake", "pending": 0}
    docs = api.get("/docs")
    assert docs.status_code == 200
    urls = re.findall(r"""(?:src|href)=["']([^"']+)""", docs.text) + re.findall(r"url: '([^']+)'", docs.text)
    assert urls and all(u.startswith("/") or u.startswith("data:") for u in urls), urls
    for url in urls:
        if url.startswith("/"):
            assert api.get(url).status_code == 200, url
    spec = api.get("/openapi.json").json()
    assert set(spec["paths"]) == {"/v1/predict", "/v1/predict/batch", "/v1/models", "/healthz"}
    assert {"multipart/form-data", "image/jpeg"} <= set(spec["paths"]["/v1/predict"]["post"]["requestBody"]["content"])


def test_page_and_assets_are_served_by_mien_itself(api: TestClient) -> None:
    page = api.get("/")
    assert page.status_code == 200 and "text/html" in page.headers["content-type"]
    assert "default-src 'self'" in page.headers["content-security-policy"]
    refs = re.findall(r"""(?:src|href)=["']([^"']+)""", page.text)
    assert set(refs) >= {"/static/app.js", "/static/app.css"}
    assert not [r for r in refs if "//" in r], refs  # no CDN, no other host
    js = api.get("/static/app.js")
    assert js.status_code == 200 and "javascript" in js.headers["content-type"] and "/v1/predict" in js.text
    assert "css" in api.get("/static/app.css").headers["content-type"]
    for probe in ("/static/index.html", "/static/../app.py", "/static/%2e%2e/app.py", "/static/settings.py"):
        assert api.get(probe).status_code == 404, probe


def test_inference_runs_in_the_pool_and_the_event_loop_keeps_answering() -> None:
    gate = threading.Event()
    rec = FakeRecognizer(gate=gate)
    app = create_app(recognizer=rec, model="fake", settings=ServeSettings(max_pending=1))

    async def scenario() -> tuple[int, dict[str, Any], int, str, int]:
        async with httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="http://t") as c:
            held = asyncio.create_task(c.post("/v1/predict", content=encode(), headers={"content-type": "image/png"}))
            while app.state.service.pending == 0:
                await asyncio.sleep(0.01)
            health = (await c.get("/healthz")).json()  # answered while the prediction is held in a worker
            busy = await c.post("/v1/predict", content=encode(), headers={"content-type": "image/png"})
            gate.set()
            done = await held
            return done.status_code, health, busy.status_code, busy.headers.get("retry-after", ""), \
                app.state.service.pending

    status, health, busy, retry_after, pending_after = asyncio.run(scenario())
    assert status == 200 and health["pending"] == 1
    assert busy == 503 and retry_after == "1"
    assert pending_after == 0
    assert rec.threads and all(name.startswith("mien-serve") for name in rec.threads)


def test_requests_over_the_timeout_get_504_and_the_service_recovers() -> None:
    gate = threading.Event()
    rec = FakeRecognizer(gate=gate)
    api = client(ServeSettings(timeout_s=0.3), rec)
    r = api.post("/v1/predict", content=encode(), headers={"content-type": "image/png"})
    assert r.status_code == 504 and "0.3 s limit" in r.json()["detail"]
    gate.set()
    assert api.post("/v1/predict", content=encode(), headers={"content-type": "image/png"}).status_code == 200
    assert api.get("/healthz").json()["pending"] == 0


def test_uploads_are_stored_only_with_save_uploads_and_under_server_made_names(tmp_path: Path) -> None:
    monkey_cwd = tmp_path / "cwd"
    monkey_cwd.mkdir()
    data = encode("JPEG")
    plain = client()
    with pytest.MonkeyPatch.context() as mp:
        mp.chdir(monkey_cwd)
        assert plain.post("/v1/predict", files={"file": ("../../evil.jpg", data, "image/jpeg")}).status_code == 200
    assert list(monkey_cwd.iterdir()) == [] and sorted(p.name for p in tmp_path.iterdir()) == ["cwd"]
    store = tmp_path / "uploads"
    keeping = client(ServeSettings(save_uploads=store))
    assert keeping.post("/v1/predict", files={"file": ("../../evil.jpg", data, "image/jpeg")}).status_code == 200
    assert keeping.post("/v1/predict", content=b"not an image", headers={"content-type": "image/png"}).status_code == 415
    (saved,) = store.iterdir()
    assert re.fullmatch(r"\d{8}T\d{6}-[0-9a-f]{32}\.jpg", saved.name) and saved.read_bytes() == data
    assert sorted(p.name for p in tmp_path.iterdir()) == ["cwd", "uploads"]


@pytest.mark.parametrize("kwargs", [{"max_upload_bytes": 0}, {"timeout_s": -1.0}, {"workers": 0},
                                    {"max_pixels": 100, "max_decode_pixels": 10}])
def test_settings_reject_bad_values_naming_them(kwargs: dict[str, Any]) -> None:
    with pytest.raises(ConfigError, match=next(iter(kwargs))):
        ServeSettings(**kwargs)


def test_cli_serve_is_registered_with_examples_and_loopback_default() -> None:
    from mien.cli import build_parser
    from mien.cli.serve import _is_loopback

    parser = build_parser()
    args = parser.parse_args(["serve"])
    assert args.host == "127.0.0.1" and args.port == 8000 and args.model == "default" and args.save_uploads is None
    assert args.precision == "fp32" and parser.parse_args(["serve", "--precision", "auto"]).precision == "auto"
    assert args.retain_memory and not parser.parse_args(["serve", "--no-retain-memory"]).retain_memory
    sub = parser._subparsers._group_actions[0].choices["serve"]  # type: ignore[union-attr]
    assert "curl -F file=@photo.jpg" in sub.format_help()
    assert _is_loopback("127.0.0.1") and _is_loopback("::1") and _is_loopback("localhost")
    assert not _is_loopback("0.0.0.0") and not _is_loopback("example.org")


def test_real_shipped_model_finds_the_astronauts_face() -> None:
    with TestClient(create_app(model="default")) as api:  # the lifespan closes the MediaPipe graphs
        data = (REPO / "examples" / "astronaut.jpg").read_bytes()
        r = api.post("/v1/predict", files={"file": ("astronaut.jpg", data, "image/jpeg")})
        assert r.status_code == 200, r.text
        (face,) = r.json()["faces"]
        x0, y0, x1, y1 = face["box"]
        assert 150 < x0 < x1 < 300 and 50 < y0 < y1 < 200  # the face in the 512x512 photo
        assert face["emotion"] == max(face["probs"], key=face["probs"].get)
        assert api.get("/v1/models").json()["detector"] == "mediapipe"


def test_text_fields_are_not_taken_for_files(api: TestClient) -> None:
    for url, name in (("/v1/predict", "file"), ("/v1/predict/batch", "files")):
        urlencoded = api.post(url, data={name: "not a file"})
        assert urlencoded.status_code == 415
        r = api.post(url, data={name: "not a file"}, files={"other": ("x.png", encode(), "image/png")})
        assert r.status_code == 400 and f"form field '{name}' is a text field" in r.json()["detail"]


def test_cli_refuses_a_taken_port_before_loading_the_model() -> None:
    import socket

    from mien.cli.serve import _listen

    with socket.create_server(("127.0.0.1", 0)) as taken:
        port = taken.getsockname()[1]
        with pytest.raises(ConfigError, match=f"cannot listen on 127.0.0.1:{port} .*choose another --port"):
            _listen("127.0.0.1", port)
    with _listen("127.0.0.1", 0) as sock:
        assert sock.getsockname()[0] == "127.0.0.1"


def test_warm_up_runs_the_detector_and_the_model_once() -> None:
    from mien.serve.app import warm_up

    class Counting(FakeRecognizer):
        input_size = (48, 48)
        crops: list[tuple[int, ...]] = []

        def predict_faces(self, crops: np.ndarray) -> np.ndarray:
            self.crops.append(crops.shape)
            return np.full((len(crops), 7), 1 / 7, np.float32)

    rec = Counting()
    warm_up(rec)
    assert rec.shapes == [(240, 320, 3)] and rec.crops == [(1, 48, 48)]


def test_large_multipart_uploads_never_touch_a_temporary_file(monkeypatch: pytest.MonkeyPatch) -> None:
    import tempfile

    def no_disk(*_: Any, **__: Any) -> Any:
        raise AssertionError("an upload was written to a temporary file")

    big = encode("BMP", (1000, 700))  # 2.1 MB: a form parser that spools over 1 MB would hit the disk
    api = client()
    for name in ("TemporaryFile", "NamedTemporaryFile", "mkstemp", "SpooledTemporaryFile"):
        monkeypatch.setattr(tempfile, name, no_disk)
    assert api.post("/v1/predict", files={"file": ("big.bmp", big, "image/bmp")}).status_code == 200
    assert api.post("/v1/predict/batch", files=[("files", ("big.bmp", big, "image/bmp"))]).status_code == 200
