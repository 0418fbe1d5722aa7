"""Grad-CAM maps, overlays, the summary selections and `mien explain` on a tiny untrained checkpoint."""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from conftest import REPO, make_faces
from mien.data.pipeline import Normalization, model_input
from mien.errors import DataError
from mien.explain import cam_and_probs, gradcam_maps, overlay
from mien.explain.run import class_mean_maps, select_confident
from mien.labels import EMOTIONS
from mien.models import create_model, gradcam_target
from mien.train.checkpoint import save_checkpoint

NORM = {"mean": 0.5, "std": 0.25}


def tiny_model() -> torch.nn.Module:
    torch.manual_seed(0)
    return create_model("resnet_small", widths=[8, 8, 16, 16], blocks=[1, 1, 1, 1]).eval()


@pytest.fixture(scope="module")
def checkpoint(tmp_path_factory) -> Path:
    model = tiny_model()
    meta = {"model": model.spec, "class_names": list(EMOTIONS), "normalization": NORM, "input_size": [48, 48],
            "epoch": 0}
    return save_checkpoint(tmp_path_factory.mktemp("ckpt") / "tiny", model=model, meta=meta)


@pytest.fixture(scope="module")
def crops() -> np.ndarray:
    return make_faces(6, seed=1).images


def test_maps_have_the_crop_shape_and_range_and_probs_match_the_model(crops):
    model = tiny_model()
    maps, probs = cam_and_probs(model, crops, normalization=NORM, batch_size=4)  # two batches
    assert maps.shape == (6, 48, 48) and maps.dtype == np.float32
    assert maps.min() >= 0 and maps.max() <= 1
    assert np.allclose(maps.reshape(6, -1).max(1), 1, atol=1e-4)  # each map is scaled to its own peak
    x = model_input(torch.from_numpy(crops).float().div(255).unsqueeze(1), normalization=Normalization(**NORM),
                    input_size=(48, 48), in_chans=1)
    with torch.no_grad():
        expected = torch.softmax(model(x), 1).numpy()
    np.testing.assert_allclose(probs, expected, atol=1e-5)


def test_default_target_is_the_predicted_class_and_classes_differ(crops):
    model = tiny_model()
    maps, probs = cam_and_probs(model, crops, normalization=NORM)
    np.testing.assert_allclose(maps, gradcam_maps(model, crops, normalization=NORM, targets=probs.argmax(1)),
                               atol=1e-5)
    per_class = [gradcam_maps(model, crops, normalization=NORM, targets=[c] * len(crops)) for c in range(3)]
    assert not np.allclose(per_class[0], per_class[1], atol=1e-2)
    assert not np.allclose(per_class[1], per_class[2], atol=1e-2)


def test_nothing_is_left_on_the_model(crops):
    model = tiny_model().train()
    first = next(model.parameters())
    sentinel = torch.full_like(first, 7.0)
    first.grad = sentinel
    frozen = model.fc.weight
    frozen.requires_grad_(False)
    a = gradcam_maps(model, crops, normalization=NORM)
    b = gradcam_maps(model, crops, normalization=NORM)  # a second call works the same
    np.testing.assert_allclose(a, b, atol=1e-6)
    for module in model.modules():
        assert not module._forward_hooks and not module._backward_hooks and not module._forward_pre_hooks
    assert not gradcam_target(model)._forward_hooks
    assert model.training  # mode restored
    assert first.grad is sentinel and not frozen.requires_grad
    assert all(p.requires_grad for p in model.parameters() if p is not frozen)
    assert all(p.grad is None for p in model.parameters() if p is not first)


def test_hooks_are_released_when_the_call_fails(crops):
    model = tiny_model()
    with pytest.raises(DataError, match="targets must lie in"):
        gradcam_maps(model, crops, normalization=NORM, targets=[9] * len(crops))
    bad = tiny_model()
    bad.spec = {**bad.spec, "num_classes": 99}  # passes the check, so indexing fails inside GradCAM
    with pytest.raises(IndexError):  # raised, not swallowed (GradCAM's own __exit__ would swallow it)
        gradcam_maps(bad, crops, normalization=NORM, targets=[40] * len(crops))
    assert not gradcam_target(bad)._forward_hooks and all(p.requires_grad for p in bad.parameters())


def test_channels_last_and_inference_mode_callers_get_the_same_maps(crops):
    model = tiny_model()
    plain = gradcam_maps(model, crops, normalization=NORM)
    model = model.to(memory_format=torch.channels_last)
    with torch.inference_mode():
        np.testing.assert_allclose(gradcam_maps(model, crops, normalization=Normalization(**NORM)), plain, atol=1e-4)


def test_baseline_cnn_maps(crops):
    torch.manual_seed(0)
    maps = gradcam_maps(create_model("baseline_cnn"), crops, normalization=NORM)
    assert maps.shape == (6, 48, 48) and 0 <= maps.min() and maps.max() <= 1


@pytest.mark.parametrize("crops, kw, match", [
    (np.zeros((2, 48, 48), np.float32), {}, "uint8"),
    (np.zeros((2, 3, 48, 48), np.uint8), {}, "uint8"),
    (np.zeros((2, 48, 48), np.uint8), {"targets": [0]}, "one per crop"),
    (np.zeros((2, 48, 48), np.uint8), {"batch_size": 0}, "batch_size"),
])
def test_bad_arguments_are_named(crops, kw, match):
    with pytest.raises(DataError, match=match):
        gradcam_maps(tiny_model(), crops, normalization=NORM, **kw)
    with pytest.raises(DataError, match="normalization"):
        gradcam_maps(tiny_model(), np.zeros((1, 48, 48), np.uint8), normalization={"mean": 0.5})


def test_overlay_shapes_and_blending():
    gray = np.full((96, 80), 200, np.uint8)
    cam = np.zeros((48, 48), np.float32)
    cam[:24] = 1.0
    out = overlay(gray, cam)
    assert out.shape == (96, 80, 3) and out.dtype == np.uint8
    assert out[0, 0, 0] > out[0, 0, 2]  # jet(1) is red at the top
    assert out[-1, 0, 2] > out[-1, 0, 0]  # jet(0) is blue at the bottom
    np.testing.assert_array_equal(overlay(np.stack([gray] * 3, -1), cam, alpha=0.0), np.stack([gray] * 3, -1))
    assert overlay(np.full((10, 10, 3), 0.5, np.float32), np.ones((10, 10)), alpha=0.5).shape == (10, 10, 3)
    with pytest.raises(DataError, match="alpha"):
        overlay(gray, cam, alpha=1.5)
    with pytest.raises(DataError, match="cam"):
        overlay(gray, cam[None])


def test_class_mean_maps_use_only_correct_faces():
    images = np.stack([np.full((4, 4), v, np.uint8) for v in (10, 30, 200, 90)])
    maps = np.stack([np.full((4, 4), v, np.float32) for v in (0.2, 0.4, 1.0, 0.8)])
    faces, means, counts = class_mean_maps(images, maps, np.array([0, 0, 0, 1]), np.array([0, 0, 1, 0]),
                                           num_classes=3)
    assert counts.tolist() == [2, 0, 0]
    assert np.allclose(faces[0], 20) and np.allclose(means[0], 0.3)
    assert not means[1].any() and not faces[2].any()


def test_select_confident_per_true_class():
    y_true = np.array([0, 0, 0, 1, 1, 0])
    y_pred = np.array([0, 1, 0, 1, 0, 0])
    conf = np.array([0.5, 0.9, 0.7, 0.6, 0.8, 0.7])
    right, wrong = select_confident(y_true, y_pred, conf, per_class=2, num_classes=3)
    assert right[0].tolist() == [2, 5]  # 0.7 twice: dataset order
    assert wrong[0].tolist() == [1] and right[1].tolist() == [3] and wrong[1].tolist() == [4]
    assert len(right[2]) == 0 and len(wrong[2]) == 0
    with pytest.raises(DataError, match="per_class"):
        select_confident(y_true, y_pred, conf, per_class=0, num_classes=3)


def run_cli(*argv: str) -> int:
    from mien.cli import explain

    parser = argparse.ArgumentParser(prog="mien")
    explain.add_parser(parser.add_subparsers(dest="command"))
    args = parser.parse_args(["explain", *argv])
    return args.handler(args)


def test_cli_explains_each_image_and_carries_on_past_a_bad_file(tmp_path, checkpoint, capsys):
    faces = make_faces(2, seed=3).images
    for i, face in enumerate(faces):
        Image.fromarray(face).resize((96, 96)).save(tmp_path / f"img{i}.png")
    (tmp_path / "broken.png").write_bytes(b"not a png")
    out = tmp_path / "out"
    rc = run_cli(str(tmp_path), "--no-detect", "--model", str(checkpoint), "--out", str(out))
    captured = capsys.readouterr()
    assert rc == 1 and "broken.png" in captured.err
    written = sorted(p.name for p in out.glob("*.png"))
    assert len(written) == 2 and all(n.startswith(("img0_face0_", "img1_face0_")) for n in written)
    assert all(n.removesuffix(".png").split("_")[-1] in EMOTIONS for n in written)
    single = Image.open(out / written[0]).size
    rc = run_cli(str(tmp_path / "img0.png"), "--no-detect", "--all-classes", "--model", str(checkpoint),
                 "--out", str(tmp_path / "all"))
    (strip,) = (tmp_path / "all").glob("img0_face0_*.png")
    assert rc == 0 and Image.open(strip).size[0] > 3 * single[0]  # 1 face + 7 overlays vs 1 face + 1


@pytest.mark.skipif(not (REPO / "examples" / "astronaut.jpg").is_file(), reason="examples/astronaut.jpg not in tree")
def test_cli_detects_the_astronaut(tmp_path, checkpoint):
    rc = run_cli(str(REPO / "examples" / "astronaut.jpg"), "--detector", "haar", "--model", str(checkpoint),
                 "--out", str(tmp_path))
    assert rc == 0 and len(list(tmp_path.glob("astronaut_face0_*.png"))) == 1


def test_cli_dataset_mode_writes_both_grids(tmp_path, checkpoint, capsys):
    from mien.data.sources import save_npz

    faces = make_faces(140, seed=2)
    npz = save_npz(faces, tmp_path / "faces.npz")
    out = tmp_path / "grids"
    assert run_cli("--dataset", str(npz), "--split", "test", "--model", str(checkpoint), "--out", str(out),
                   "--per-class", "2") == 0
    assert (out / "class_mean_gradcam.png").stat().st_size > 10_000
    assert (out / "confident_examples.png").stat().st_size > 10_000
    assert f"{int((faces.usage == 2).sum())} PrivateTest faces" in capsys.readouterr().out


def test_cli_wants_images_or_dataset_not_both(tmp_path):
    with pytest.raises(SystemExit):
        run_cli("a.jpg", "--dataset")
    with pytest.raises(SystemExit):
        run_cli()
