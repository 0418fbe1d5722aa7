"""Recognizer: input kinds, typed results, batching with a corrupt file, backends, lazy import, README snippet."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from conftest import REPO
from mien.infer import FacePrediction, ImageResult, Recognizer
from mien.io import ImageError
from mien.labels import EMOTIONS

CANVAS = REPO / "examples" / "astronaut_canvas.jpg"


@pytest.fixture(scope="module")
def cache(tmp_path_factory: pytest.TempPathFactory):  # noqa: ANN201
    """ONNX exports go to a temporary cache, never to the user's ~/.cache."""
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("MIEN_CACHE_DIR", str(tmp_path_factory.mktemp("cache")))
        yield


@pytest.fixture(scope="module")
def rec() -> Recognizer:
    return Recognizer(detector="none")


@pytest.fixture(scope="module")
def onnx_rec(cache: None) -> Recognizer:
    return Recognizer(detector="none", backend="onnx", threads=1)


def _face_image(seed: int = 0, size: int = 48) -> np.ndarray:
    """A smooth random (size, size) uint8 gray image (resizing it barely changes it)."""
    rng = np.random.default_rng(seed)
    small = rng.integers(0, 256, (6, 6)).astype(np.float64)
    return np.kron(small, np.ones((size // 6, size // 6))).astype(np.uint8)


def _check(faces: list[FacePrediction]) -> FacePrediction:
    assert len(faces) == 1 and isinstance(faces[0], FacePrediction)
    face = faces[0]
    assert tuple(face.probs) == EMOTIONS
    assert sum(face.probs.values()) == pytest.approx(1.0, abs=1e-5)
    assert face.emotion == max(face.probs, key=face.probs.get)
    assert face.confidence == face.probs[face.emotion]
    assert face.track_id is None and face.face_index == 0
    return face


def test_predict_accepts_paths_pil_and_arrays_of_every_documented_kind(rec: Recognizer, tmp_path: Path) -> None:
    from PIL import Image

    gray = _face_image()
    path = tmp_path / "face.png"
    Image.fromarray(gray).save(path)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    inputs = {"path": path, "str": str(path), "pil": Image.open(path), "rgb": rgb, "gray": gray,
              "float": gray.astype(np.float32) / 255.0, "bytes": path.read_bytes()}
    results = {name: _check(rec.predict(image)) for name, image in inputs.items()}
    want = results["path"].probs
    for name, face in results.items():
        assert face.box == (0.0, 0.0, 48.0, 48.0), name
        np.testing.assert_allclose(list(face.probs.values()), list(want.values()), atol=1e-5, err_msg=name)


def test_predict_without_detection_resizes_the_whole_image(rec: Recognizer) -> None:
    big = np.kron(_face_image(1), np.ones((4, 4), dtype=np.uint8))  # (192, 192), same picture
    face = _check(rec.predict(big))
    assert face.box == (0.0, 0.0, 192.0, 192.0)
    want = rec.predict_faces(_face_image(1)[None])[0]
    np.testing.assert_allclose(list(face.probs.values()), want, atol=2e-3)


def test_predict_batch_reports_a_corrupt_file_and_keeps_the_others(rec: Recognizer, tmp_path: Path) -> None:
    from PIL import Image

    paths = []
    for i in range(3):
        paths.append(tmp_path / f"face{i}.png")
        Image.fromarray(_face_image(i)).save(paths[-1])
    corrupt = tmp_path / "corrupt.jpg"
    corrupt.write_bytes(paths[0].read_bytes()[:60])
    results = rec.predict_batch([paths[0], corrupt, paths[1], _face_image(2)])
    assert [r.ok for r in results] == [True, False, True, True]
    assert all(isinstance(r, ImageResult) for r in results)
    assert "corrupt.jpg" in results[1].error and len(results[1]) == 0
    assert results[0].source == str(paths[0]) and results[3].source == "<ndarray #3>"
    # Batching changes nothing: each image's probabilities equal its own single prediction.
    for result, image in zip([results[0], results[2], results[3]], paths):
        np.testing.assert_allclose(list(result[0].probs.values()), list(_check(rec.predict(image)).probs.values()),
                                   atol=1e-5)
    with pytest.raises(ImageError, match="corrupt.jpg"):
        rec.predict(corrupt)


def test_predict_faces_shape_and_errors(rec: Recognizer) -> None:
    crops = np.stack([_face_image(i) for i in range(5)])
    probs = rec.predict_faces(crops)
    assert probs.shape == (5, 7) and probs.dtype == np.float32
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    assert rec.predict_faces(np.zeros((0, 48, 48), np.uint8)).shape == (0, 7)
    with pytest.raises(ImageError, match="batch axis"):
        rec.predict_faces(crops[0])
    with pytest.raises(ImageError, match="uint8"):
        rec.predict_faces(crops.astype(np.float32))


@pytest.mark.parametrize("tta", ["none", "flip", "tencrop"])
def test_torch_and_onnx_backends_agree(cache: None, tta: str) -> None:
    crops = np.random.default_rng(3).integers(0, 256, (7, 48, 48), dtype=np.uint8)
    torch_probs = Recognizer(detector="none", tta=tta).predict_faces(crops)
    onnx_probs = Recognizer(detector="none", backend="onnx", tta=tta, threads=1).predict_faces(crops)
    assert np.abs(torch_probs - onnx_probs).max() < 1e-4


def test_torch_precision_bf16_runs_a_folded_bf16_net_and_auto_follows_the_cpu(rec: Recognizer) -> None:
    import torch

    from mien.train.hardware import cpu_has_native_bf16

    crops = np.random.default_rng(4).integers(0, 256, (5, 48, 48), dtype=np.uint8)
    assert rec.backend.precision == "fp32"
    bf16 = Recognizer(detector="none", precision="bf16")
    assert bf16.backend.precision == "bf16"
    seen = []
    hook = bf16.backend.net.register_forward_hook(lambda m, i, o: seen.append(o.dtype))
    probs = bf16.predict_faces(crops)
    hook.remove()
    assert seen == [torch.bfloat16] and probs.dtype == np.float32
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in bf16.backend.net.modules())
    assert any(isinstance(m, torch.nn.BatchNorm2d) for m in bf16.backend.model.modules())  # for Grad-CAM
    np.testing.assert_allclose(probs.sum(1), 1.0, atol=1e-5)
    # bf16 keeps ~3 significant digits: close to fp32, not equal
    assert 0 < np.abs(probs - rec.predict_faces(crops)).max() < 0.05
    auto = Recognizer(detector="none", precision="auto").backend.precision
    assert auto == ("bf16" if cpu_has_native_bf16() else "fp32")


def test_onnx_backend_reuses_its_cache_and_runs_an_exported_file(onnx_rec: Recognizer, tmp_path: Path) -> None:
    from mien.export import export_onnx

    cached = onnx_rec.backend.onnx_path
    assert cached.is_file() and cached.parent.parent == Path(os.environ["MIEN_CACHE_DIR"])
    assert Recognizer(detector="none", backend="onnx", threads=1).backend.onnx_path == cached
    exported = export_onnx("default", tmp_path / "m.onnx")
    direct = Recognizer(exported, detector="none", backend="onnx", threads=1)
    crops = np.stack([_face_image(i) for i in range(3)])
    np.testing.assert_allclose(direct.predict_faces(crops), onnx_rec.predict_faces(crops), atol=1e-6)


def test_bad_settings_fail_loudly() -> None:
    from mien.errors import ConfigError, ModelError

    with pytest.raises(ConfigError, match="backend"):
        Recognizer(detector="none", backend="tensorrt")
    with pytest.raises(ConfigError, match="tta"):
        Recognizer(detector="none", tta="ten-crop")
    with pytest.raises(ConfigError, match="precision must be one of fp32, bf16, auto, got 'fp16'"):
        Recognizer(detector="none", precision="fp16")
    with pytest.raises(ConfigError, match="onnx backend runs fp32 only"):
        Recognizer(detector="none", backend="onnx", precision="bf16")
    with pytest.raises(ModelError, match="default"):
        Recognizer("no-such-model", detector="none")


def test_mediapipe_finds_the_astronaut_first_and_nothing_in_a_blank_image() -> None:
    with Recognizer() as rec:
        faces = rec.predict(CANVAS)
        assert rec.predict(np.full((240, 320, 3), 128, np.uint8)) == []
    assert faces and [f.face_index for f in faces] == list(range(len(faces)))
    x0, y0, x1, y1 = faces[0].box  # the best-scoring face: the astronaut's, around (292, 118) on the canvas
    assert x0 < 292 < x1 and y0 < 118 < y1 and 40 < x1 - x0 < 200
    assert faces[0].landmarks is not None and len(faces[0].landmarks) >= 2
    assert all(sum(f.probs.values()) == pytest.approx(1.0, abs=1e-5) for f in faces)


def test_import_mien_is_cheap_and_recognizer_is_lazy() -> None:
    code = ("import sys, mien; heavy = [m for m in ('torch', 'cv2', 'mediapipe', 'onnxruntime') if m in sys.modules];"
            "assert not heavy, heavy; from mien import Recognizer; assert Recognizer.__name__ == 'Recognizer';"
            "from mien import retain_freed_memory; assert retain_freed_memory.__module__ == 'mien.memory';"
            "assert 'torch' not in sys.modules; print('ok')")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=False)
    assert out.returncode == 0 and out.stdout.strip() == "ok", out.stderr
    import mien

    with pytest.raises(AttributeError, match="no attribute 'Nope'"):
        mien.Nope  # noqa: B018


def _readme_snippet() -> str:
    """The first ```python block in the README section whose heading mentions Recognizer."""
    heading, fence, block = "", None, []
    for line in (REPO / "README.md").read_text().splitlines():
        if fence is None and line.startswith("```"):
            fence = line[3:].strip()
        elif fence is not None and line.startswith("```"):
            if fence == "python" and "Recognizer" in heading:
                return "\n".join(block)
            fence, block = None, []
        elif fence is not None:
            block.append(line)
        elif line.startswith("#"):  # a heading only outside code blocks (Python comments start with # too)
            heading = line
    pytest.fail("README.md has no section whose heading mentions `Recognizer` with a ```python block "
                "(the snippet is in Helper B's report for issue 10)")


def test_readme_recognizer_snippet_runs(monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture) -> None:
    monkeypatch.chdir(REPO)
    exec(compile(_readme_snippet(), "README.md", "exec"), {"__name__": "readme"})  # noqa: S102
    out = capsys.readouterr().out
    assert any(name in out for name in EMOTIONS) and "%" in out, out
