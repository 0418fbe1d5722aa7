"""The shipped default model exported to ONNX matches PyTorch within 1e-4 on real PrivateTest faces."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch

from mien.data.pipeline import Normalization, model_input
from mien.export import export_onnx
from mien.labels import PRIVATE_TEST
from mien.train.checkpoint import load_model
from mien.weights import shipped_path

pytestmark = pytest.mark.data


def _private_test_faces(npz: Path, n: int) -> np.ndarray:
    with np.load(npz) as data:
        images, usage = data["images"], data["usage"]
    return images[usage == PRIVATE_TEST][:n]  # (n, 48, 48) uint8, in the file's order


def test_onnx_export_of_the_shipped_default_matches_torch_on_256_private_test_faces(fer_npz: Path,
                                                                                    tmp_path: Path) -> None:
    import onnxruntime as ort

    faces = _private_test_faces(fer_npz, 256)
    assert faces.shape == (256, 48, 48)
    model, meta = load_model(shipped_path("default"))
    x = model_input(torch.from_numpy(faces).unsqueeze(1).float() / 255.0,
                    normalization=Normalization(**meta["normalization"]), input_size=tuple(meta["input_size"]),
                    in_chans=meta["model"]["in_chans"], channels_last=False)
    with torch.no_grad():
        want = model(x).numpy()
    session = ort.InferenceSession(str(export_onnx("default", tmp_path / "default.onnx")),
                                   providers=["CPUExecutionProvider"])
    (got,) = session.run(None, {"input": x.numpy()})
    assert got.shape == (256, 7)
    assert np.abs(got - want).max() < 1e-4
    assert (got.argmax(1) == want.argmax(1)).all()


def test_recognizer_backends_agree_on_real_faces(fer_npz: Path, monkeypatch: pytest.MonkeyPatch,
                                                 tmp_path: Path) -> None:
    from mien.infer import Recognizer

    monkeypatch.setenv("MIEN_CACHE_DIR", str(tmp_path))
    faces = _private_test_faces(fer_npz, 256)
    for tta in ("none", "flip"):
        torch_probs = Recognizer(detector="none", tta=tta).predict_faces(faces)
        onnx_probs = Recognizer(detector="none", backend="onnx", tta=tta).predict_faces(faces)
        assert np.abs(torch_probs - onnx_probs).max() < 1e-4
