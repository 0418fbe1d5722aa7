"""mien.evaluate.plots and .report: PNGs that open, right/wrong colours, every report artefact."""

from __future__ import annotations

import csv
import json
import math
import re
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from mien.errors import CheckpointError, DataError
from mien.evaluate.plots import plot_confusion, plot_curves, plot_prediction_grid
from mien.evaluate.report import read_metrics_csv, sample_grid, write_report

NAMES = ("angry", "happy", "sad")


def _png(path: Path) -> np.ndarray:
    assert path.is_file() and path.stat().st_size > 0
    with Image.open(path) as im:
        assert im.format == "PNG"
        return np.asarray(im.convert("RGB")).astype(int)


def _green(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (g > r + 60) & (g > b + 40)


def _red(rgb: np.ndarray) -> np.ndarray:
    r, g, b = rgb[..., 0], rgb[..., 1], rgb[..., 2]
    return (r > g + 80) & (r > b + 80)


def _case(n: int = 30, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(y_true, probs, images) where about half the predictions are wrong."""
    rng = np.random.default_rng(seed)
    y_true = np.arange(n) % len(NAMES)
    logits = rng.normal(size=(n, len(NAMES)))
    logits[np.arange(n), y_true] += 1.0
    images = rng.integers(0, 256, size=(n, 48, 48), dtype=np.uint8)
    return y_true, logits, images


def test_plot_confusion_writes_png(tmp_path: Path) -> None:
    counts = np.array([[5, 1, 0], [0, 4, 2], [0, 0, 0]])
    norm = counts / np.maximum(counts.sum(1, keepdims=True), 1)
    rgb = _png(plot_confusion(norm, NAMES, tmp_path / "sub" / "cm.png", counts=counts, title="t"))
    assert rgb.shape[0] > 200 and rgb.shape[1] > 200
    with pytest.raises(DataError, match=r"\(3, 3\)"):
        plot_confusion(norm[:2], NAMES, tmp_path / "bad.png")


def test_plot_curves_skips_missing_and_nan(tmp_path: Path) -> None:
    history = [{"epoch": 1, "train_loss": 1.5, "train_acc": 0.4, "val_loss": 1.6, "val_acc": 0.35},
               {"epoch": 2, "train_loss": 1.2, "val_loss": math.nan, "val_acc": 0.45},
               {"epoch": 3, "train_loss": 1.0, "train_acc": 0.6}]
    _png(plot_curves(history, tmp_path / "curves.png"))
    _png(plot_curves([{"epoch": 1, "lr": 0.1}], tmp_path / "empty.png"))
    with pytest.raises(DataError, match="row 0"):
        plot_curves([{"epoch": 1, "val_acc": "high"}], tmp_path / "bad.png")


def test_prediction_grid_frames_right_green_and_wrong_red(tmp_path: Path) -> None:
    images = np.full((2, 48, 48), 128, dtype=np.uint8)
    path = plot_prediction_grid(images, np.array([1, 2]), np.array([1, 0]), np.array([0.9, 0.6]), NAMES,
                                tmp_path / "grid.png", cols=2)
    rgb = _png(path)
    left, right = rgb[:, : rgb.shape[1] // 2], rgb[:, rgb.shape[1] // 2:]
    assert _green(left).sum() > 500 and _red(left).sum() == 0
    assert _red(right).sum() > 500 and _green(right).sum() == 0


def test_prediction_grid_all_right_has_no_red_and_fills_partial_rows(tmp_path: Path) -> None:
    y = np.array([0, 1, 2, 0, 1])
    rgb = _png(plot_prediction_grid(np.zeros((5, 1, 48, 48), np.uint8), y, y, np.ones(5), NAMES,
                                    tmp_path / "grid.png", cols=3))
    assert _green(rgb).sum() > 0 and _red(rgb).sum() == 0


@pytest.mark.parametrize("kwargs, match", [
    ({"y_pred": np.array([0, 5])}, r"y_pred must lie in \[0, 3\)"),
    ({"confidence": np.ones(3)}, r"confidence must be \(2,\)"),
    ({"images": np.zeros((0, 48, 48), np.uint8)}, "non-empty"),
])
def test_prediction_grid_rejects_bad_input(tmp_path: Path, kwargs: dict, match: str) -> None:
    args = {"images": np.zeros((2, 48, 48), np.uint8), "y_true": np.array([0, 1]), "y_pred": np.array([0, 1]),
            "confidence": np.ones(2)} | kwargs
    with pytest.raises(DataError, match=match):
        plot_prediction_grid(names=NAMES, path=tmp_path / "g.png", **args)


def test_sample_grid_mixes_right_and_wrong_and_is_seeded() -> None:
    y_true = np.zeros(100, dtype=int)
    y_pred = np.where(np.arange(100) < 10, 1, 0)  # 10 wrong, 90 right
    pick = sample_grid(y_true, y_pred, 8, np.random.default_rng(3))
    assert len(set(pick.tolist())) == 8
    assert (y_true[pick] != y_pred[pick]).sum() == 4
    assert np.array_equal(pick, sample_grid(y_true, y_pred, 8, np.random.default_rng(3)))
    pick = sample_grid(y_true, y_pred, 32, np.random.default_rng(0))  # only 10 wrong: right ones fill up
    assert len(pick) == 32 and (y_true[pick] != y_pred[pick]).sum() == 10
    assert len(sample_grid(y_true[:5], y_pred[:5], 32, np.random.default_rng(0))) == 5


def _image_links(markdown: str) -> set[str]:
    return set(re.findall(r"!\[[^\]]*\]\(([^)]+)\)", markdown))


def test_write_report_writes_every_artefact(tmp_path: Path) -> None:
    y_true, logits, images = _case()
    history = [{"epoch": 1.0, "train_loss": 1.0, "train_acc": 0.5, "val_loss": 1.1, "val_acc": 0.4}]
    extra = {"split": "test", "tta": "none", "checkpoint": tmp_path / "best.safetensors",
             "hardware": {"device": "cpu", "threads": np.int64(2)}, "val_loss": float("nan")}
    out = tmp_path / "eval"
    m = write_report(out, y_true=y_true, probs=logits, names=NAMES, images=images, history=history,
                     title="unit report", extra=extra, grid_size=12)
    for name in ("metrics.json", "confusion_matrix.png", "confusion_matrix.csv", "per_class.csv", "curves.png",
                 "predictions.png", "report.md"):
        assert (out / name).is_file() and (out / name).stat().st_size > 0, name
    for name in ("confusion_matrix.png", "curves.png", "predictions.png"):
        _png(out / name)

    stored = json.loads((out / "metrics.json").read_text())
    assert stored == m
    assert stored["run"] == {"split": "test", "tta": "none", "checkpoint": str(tmp_path / "best.safetensors"),
                             "hardware": {"device": "cpu", "threads": 2}, "val_loss": None}
    assert stored["accuracy"] == pytest.approx(np.mean(logits.argmax(1) == y_true))

    with (out / "confusion_matrix.csv").open() as fh:
        rows = list(csv.reader(fh))
    assert rows[0][1:] == list(NAMES) and [r[0] for r in rows[1:]] == list(NAMES)
    assert [[int(v) for v in r[1:]] for r in rows[1:]] == m["confusion"]
    with (out / "per_class.csv").open() as fh:
        per_class = list(csv.DictReader(fh))
    assert [r["class"] for r in per_class] == list(NAMES)
    assert [int(r["support"]) for r in per_class] == [10, 10, 10]

    report = (out / "report.md").read_text()
    assert report.startswith("# unit report")
    assert _image_links(report) == {"confusion_matrix.png", "curves.png", "predictions.png"}
    assert f"{100 * m['accuracy']:.2f}%" in report and f"{m['f1']['macro']:.4f}" in report
    assert "| tta | none |" in report and "| happy |" in report


def test_write_report_without_history_or_grid_links_only_what_it_wrote(tmp_path: Path) -> None:
    y_true, logits, images = _case(9)
    write_report(tmp_path, y_true=y_true, probs=logits, names=NAMES, images=images, grid_size=0)
    assert not (tmp_path / "curves.png").exists() and not (tmp_path / "predictions.png").exists()
    assert _image_links((tmp_path / "report.md").read_text()) == {"confusion_matrix.png"}
    with pytest.raises(DataError, match="images has 8 faces"):
        write_report(tmp_path, y_true=y_true, probs=logits, names=NAMES, images=images[:8])
    with pytest.raises(TypeError, match=r"extra\.bad"):
        write_report(tmp_path, y_true=y_true, probs=logits, names=NAMES, images=images, extra={"bad": object()})


def test_read_metrics_csv(tmp_path: Path) -> None:
    path = tmp_path / "metrics.csv"
    path.write_text("epoch,train_loss,val_acc\n1,1.5,0.4\n2,1.2,\n3,1.0\n")
    rows = read_metrics_csv(path)
    assert rows[0] == {"epoch": 1.0, "train_loss": 1.5, "val_acc": 0.4}
    assert math.isnan(rows[1]["val_acc"]) and math.isnan(rows[2]["val_acc"])
    path.write_text("epoch,val_acc\n1,0.4\n2,oops\n")
    with pytest.raises(CheckpointError, match=r"line 3: column 'val_acc' holds 'oops'"):
        read_metrics_csv(path)
    with pytest.raises(CheckpointError, match="does not exist"):
        read_metrics_csv(tmp_path / "missing.csv")
    path.write_text("epoch,val_acc\n")
    assert read_metrics_csv(path) == []


def test_importing_mien_evaluate_stays_light() -> None:
    code = ("import sys, mien.evaluate; "
            "print(sorted(m for m in ('matplotlib', 'sklearn', 'PIL') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]"
