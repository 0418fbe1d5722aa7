"""The page end to end: `mien serve` (the real CLI, shipped model) driven in headless Chromium by Playwright.

Chromium is Debian's package (scripts/setup.sh installs it; Playwright's own browser download cannot
work here); set MIEN_CHROMIUM to use another binary. The webcam runs on Chromium's fake camera.
Set MIEN_SCREENSHOT_DIR to keep screenshots of the page.
"""

from __future__ import annotations

import base64
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path
from typing import Iterator

import pytest

from conftest import REPO

sync_api = pytest.importorskip("playwright.sync_api", reason="playwright is a test extra: pip install -e '.[test]'")
CHROMIUM = os.environ.get("MIEN_CHROMIUM") or shutil.which("chromium") or shutil.which("chromium-browser")
pytestmark = pytest.mark.skipif(CHROMIUM is None, reason="no chromium binary (bash scripts/setup.sh installs "
                                                          "Debian's chromium; or set MIEN_CHROMIUM)")
PHOTO = REPO / "examples" / "astronaut.jpg"


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture(scope="module")
def server() -> Iterator[str]:
    """`mien serve` in a subprocess on a free loopback port; its base URL once /healthz answers."""
    port = _free_port()
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    proc = subprocess.Popen([sys.executable, "-m", "mien", "serve", "--port", str(port), "--threads", "1",
                             "--log-level", "warning"], env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    base = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 300  # loading torch, the model and MediaPipe: ~10 s idle, minutes when starved
        while True:
            if proc.poll() is not None:
                pytest.fail(f"mien serve exited with {proc.returncode}: {proc.stdout.read().decode()[-2000:]}")  # type: ignore[union-attr]
            try:
                with urllib.request.urlopen(f"{base}/healthz", timeout=2) as r:
                    if r.status == 200:
                        break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail("mien serve did not answer /healthz within 5 minutes")
            time.sleep(0.2)
        yield base
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()


@pytest.fixture(scope="module")
def browser() -> Iterator[sync_api.Browser]:
    with sync_api.sync_playwright() as p:
        b = p.chromium.launch(executable_path=CHROMIUM, headless=True, args=[
            "--no-sandbox",  # the tests run as root in CI
            "--use-fake-device-for-media-stream", "--use-fake-ui-for-media-stream"])
        yield b
        b.close()


@pytest.fixture
def page(browser: sync_api.Browser, server: str) -> Iterator[sync_api.Page]:
    context = browser.new_context(base_url=server, viewport={"width": 1100, "height": 1300})
    context.grant_permissions(["camera"], origin=server)
    page = context.new_page()
    page.requests_seen = []  # type: ignore[attr-defined]
    page.on("request", lambda r: page.requests_seen.append(r.url))  # type: ignore[attr-defined]
    page.goto("/")
    yield page
    context.close()


def _api_answer(server: str, data: bytes) -> dict:
    import json

    req = urllib.request.Request(f"{server}/v1/predict", data=data, headers={"Content-Type": "image/jpeg"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def _shot(page: sync_api.Page, name: str) -> None:
    folder = os.environ.get("MIEN_SCREENSHOT_DIR")
    if folder:
        Path(folder).mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(Path(folder) / name), full_page=True)


def test_uploading_a_photo_draws_the_face_label_box_and_bars(page: sync_api.Page, server: str) -> None:
    expected = _api_answer(server, PHOTO.read_bytes())["faces"][0]
    page.set_input_files("#file", str(PHOTO))
    label = page.locator(".face-label").first
    label.wait_for(timeout=60_000)
    assert label.inner_text() == f"Face 1: {expected['emotion']} {round(expected['confidence'] * 100)}%"
    assert page.locator("#error").is_hidden()
    assert page.locator(".face .bar-row").count() == len(expected["probs"])
    assert page.locator(".bar-row.top span").first.inner_text() == expected["emotion"]
    assert "1 face found" in page.locator("#status").inner_text()
    # The box's top edge is stroked in the first face colour (#e8710a) on the canvas.
    x0, y0, x1, _ = expected["box"]
    pixel = page.evaluate("([x, y]) => Array.from(document.getElementById('canvas').getContext('2d')"
                          ".getImageData(x, y, 1, 1).data)", [round((x0 + x1) / 2), round(y0)])
    assert pixel[:3] == pytest.approx([0xE8, 0x71, 0x0A], abs=40)
    assert page.evaluate("[document.getElementById('canvas').width, document.getElementById('canvas').height]") \
        == [512, 512]
    _shot(page, "serve_page_upload.png")
    assert all(url.startswith(server) for url in page.requests_seen), page.requests_seen  # type: ignore[attr-defined]


def test_dropping_a_non_image_shows_the_error_in_plain_words(page: sync_api.Page) -> None:
    data = base64.b64encode(b"just some notes, not a photo").decode()
    transfer = page.evaluate_handle("(b64) => { const dt = new DataTransfer();"
                                    " const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0));"
                                    " dt.items.add(new File([bytes], 'notes.txt', {type: 'text/plain'})); return dt; }",
                                    data)
    page.dispatch_event("#drop", "drop", {"dataTransfer": transfer})
    error = page.locator("#error")
    error.wait_for(state="visible", timeout=30_000)
    assert error.inner_text().startswith("That file is not an image this service reads.")
    assert "JPEG, PNG" in error.inner_text()
    assert page.locator(".face-label").count() == 0


def test_webcam_frames_are_sent_and_answered(page: sync_api.Page) -> None:
    page.click("#camera")
    # Chromium's fake camera shows a test pattern without a face.
    page.locator("#status").filter(has_text="No face found").wait_for(timeout=60_000)
    assert page.locator("#camera").inner_text() == "Stop webcam"
    assert page.locator("#error").is_hidden()
    assert page.evaluate("document.getElementById('canvas').width") > 0
    with page.expect_request(lambda r: r.url.endswith("/v1/predict"), timeout=60_000):
        pass  # the loop goes on: another frame is sent after the answer
    page.click("#camera")
    assert page.locator("#camera").inner_text() == "Start webcam"
