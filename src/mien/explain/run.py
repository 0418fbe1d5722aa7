"""Grad-CAM explanations written to files: per face of image files, or summary grids of a FER2013 split."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable, Sequence

import numpy as np

from ..errors import CheckpointError, DataError
from .gradcam import cam_and_probs

SPLITS = ("train", "val", "test")
_USAGE_NAMES = {"train": "Training", "val": "PublicTest", "test": "PrivateTest"}


@dataclass(frozen=True)
class ExplainedImage:
    """What `explain_images` did with one input: one PNG and one emotion per face, or an error."""

    source: Path
    outputs: tuple[Path, ...] = ()
    emotions: tuple[str, ...] = ()
    error: str | None = None


def explain_images(
    inputs: Sequence[str | Path],
    *,
    out_dir: str | Path,
    model: str | Path = "default",
    all_classes: bool = False,
    detector: str = "mediapipe",
    device: str = "cpu",
    batch_size: int = 64,
    log: Callable[[str], None] = print,
) -> list[ExplainedImage]:
    """Write `STEM_face{i}_{emotion}.png` for every face of every image: crop, overlays, probabilities.

    Faces are found and aligned exactly as `mien predict` does (`Recognizer.detect_and_align`), so
    the explained crop is the one the model classifies.

    Args:
        inputs: files, folders (recursive) or globs of images (see `mien.io.expand_inputs`).
        out_dir: where the PNGs go (created).
        model: a shipped model name, a run directory or a checkpoint file.
        all_classes: one overlay per class instead of only the predicted class.
        detector: "mediapipe", "haar", or "none" (each image is one already-aligned face).
        log: called with one line per explained image (unreadable ones are only in the results).

    Returns:
        One ExplainedImage per input image; an unreadable image has `error` set and does not stop the rest.
    """
    from ..infer import Recognizer
    from ..io.images import IMAGE_SUFFIXES, ImageError, expand_inputs, read_image
    from ..weights import resolve_model_source
    from .grids import plot_face_explanation

    paths = expand_inputs([str(p) for p in inputs], suffixes=IMAGE_SUFFIXES)
    # Grad-CAM needs one network: an ensemble is refused here with its members named.
    rec = Recognizer(resolve_model_source(model), backend="torch", detector=detector, device=device)
    net, names = rec.backend.model, rec.class_names
    norm = {"mean": rec.backend.info.mean, "std": rec.backend.info.std}
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    stems: dict[str, int] = {}
    results = []
    for path in paths:
        try:
            rgb = read_image(path)
        except ImageError as exc:  # reported in the result; the other images still get explained
            results.append(ExplainedImage(path, error=str(exc)))
            continue
        faces, crops = rec.detect_and_align(rgb)
        stem = _unique_stem(path.stem, stems)
        classes = np.arange(len(names)) if all_classes else None
        written, emotions = [], []
        if len(crops):
            if all_classes:  # every face repeated once per class: (N * C, H, W) -> maps (N, C, H, W)
                every = np.repeat(crops, len(names), axis=0)
                targets = np.tile(np.arange(len(names)), len(crops))
                maps, probs = cam_and_probs(net, every, normalization=norm, targets=targets, batch_size=batch_size)
                maps, probs = maps.reshape(len(crops), len(names), *crops.shape[1:]), probs[::len(names)]
            else:
                maps, probs = cam_and_probs(net, crops, normalization=norm, batch_size=batch_size)
            for i, face in enumerate(faces):
                top = int(np.argmax(probs[i]))
                target = plot_face_explanation(
                    crops[i], maps[i] if all_classes else maps[i][None], probs[i], names,
                    out / f"{stem}_face{i}_{names[top]}.png",
                    classes=classes if classes is not None else [top],
                    title=f"{path.name} face {i} (box {', '.join(f'{v:.0f}' for v in face.box)})")
                written.append(target)
                emotions.append(names[top])
        log(f"{path}: {len(faces)} face(s)" + "".join(f"\n  {p}" for p in written))
        results.append(ExplainedImage(path, tuple(written), tuple(emotions)))
    return results


def _unique_stem(stem: str, seen: dict[str, int]) -> str:
    """`stem`, or `stem-2`, `stem-3`... when images in different folders share a name."""
    seen[stem] = seen.get(stem, 0) + 1
    return stem if seen[stem] == 1 else f"{stem}-{seen[stem]}"


def class_mean_maps(
    images: np.ndarray, maps: np.ndarray, y_true: np.ndarray, y_pred: np.ndarray, *, num_classes: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Per class, the mean face and mean map over its correctly classified faces.

    Returns:
        (mean_faces (C, H, W) float32 on 0..255, mean_maps (C, H, W) float32, counts (C,) int64);
        classes without a correct face get zeros.
    """
    images, maps = np.asarray(images), np.asarray(maps)
    y_true, y_pred = np.asarray(y_true), np.asarray(y_pred)
    if not (len(images) == len(maps) == len(y_true) == len(y_pred)):
        raise DataError(f"images, maps, y_true and y_pred need equal lengths, got {len(images)}, {len(maps)}, "
                        f"{len(y_true)} and {len(y_pred)}")
    faces = np.zeros((num_classes, *images.shape[1:]), dtype=np.float32)
    means = np.zeros((num_classes, *maps.shape[1:]), dtype=np.float32)
    counts = np.zeros(num_classes, dtype=np.int64)
    for c in range(num_classes):
        keep = (y_true == c) & (y_pred == c)
        counts[c] = keep.sum()
        if counts[c]:
            faces[c] = images[keep].astype(np.float32).mean(axis=0)
            means[c] = maps[keep].astype(np.float32).mean(axis=0)
    return faces, means, counts


def select_confident(
    y_true: np.ndarray, y_pred: np.ndarray, confidence: np.ndarray, *, per_class: int, num_classes: int
) -> tuple[list[np.ndarray], list[np.ndarray]]:
    """Per true class, the indices of its `per_class` most confident right and wrong predictions.

    Ties keep dataset order (stable sort), so the selection is deterministic.
    """
    if per_class < 1:
        raise DataError(f"per_class must be >= 1, got {per_class}")
    y_true, y_pred, confidence = np.asarray(y_true), np.asarray(y_pred), np.asarray(confidence)
    order = np.argsort(-confidence, kind="stable")
    right, wrong = [], []
    for c in range(num_classes):
        mine = order[y_true[order] == c]
        ok = y_pred[mine] == c
        right.append(mine[ok][:per_class])
        wrong.append(mine[~ok][:per_class])
    return right, wrong


def explain_dataset(
    source: str | Path | None = None,
    *,
    out_dir: str | Path,
    split: str = "test",
    model: str | Path = "default",
    per_class: int = 4,
    limit: int = 0,
    device: str = "cpu",
    batch_size: int = 128,
) -> dict[str, Any]:
    """Grad-CAM summary of one official FER2013 split (test = PrivateTest): two PNG grids.

    Writes `class_mean_gradcam.png` (per true class, the mean map of its correctly classified faces
    over their mean face) and `confident_examples.png` (per true class, the most confident right and
    wrong predictions with their overlays). Maps explain the predicted class; no test-time augmentation.

    Args:
        source: a FER2013 npz, csv or image folder with usage; None or "" means the default source.
        split: "train", "val" or "test" of the official split.
        model: a shipped model name, a run directory or a checkpoint file.
        per_class: examples of each kind per class in the second grid.
        limit: if > 0, a stratified random subset (seed 0) of this many faces of the split.

    Returns:
        {"class_means": Path, "confident": Path, "faces": int, "accuracy": float, "split": str, "model": str}.
    """
    from ..config import DataConfig
    from ..data.pipeline import load_faces
    from ..data.splits import official_split, stratified_subset
    from ..train.checkpoint import load_model
    from ..weights import resolve_model_source
    from .grids import plot_class_mean_cams, plot_confident_examples

    if split not in SPLITS:
        raise DataError(f"split must be one of {', '.join(SPLITS)}, got {split!r}")
    checkpoint = resolve_model_source(model)
    net, meta = load_model(checkpoint, device=device)
    names = tuple(meta["class_names"])
    faces = load_faces(DataConfig(source=str(source or ""), classes=names))
    if tuple(faces.names) != names:
        raise CheckpointError(f"checkpoint classes {list(names)} differ from the data's {list(faces.names)}")
    index = getattr(official_split(faces.usage), split)
    if len(index) == 0:
        raise DataError(f"the source has no {_USAGE_NAMES[split]} faces for split {split!r}")
    if limit and limit < len(index):
        index = index[stratified_subset(faces.labels[index], limit, rng=np.random.default_rng(0))]
    images, y_true = faces.images[index], faces.labels[index]
    maps, probs = cam_and_probs(net, images, normalization=meta["normalization"], batch_size=batch_size)
    y_pred, conf = probs.argmax(1), probs.max(1)
    accuracy = float((y_pred == y_true).mean())
    title = (f"{meta['model']['name']} ({checkpoint.name}) on {_USAGE_NAMES[split]}: {len(index)} faces, "
             f"accuracy {100 * accuracy:.1f}% (no TTA)")
    out = Path(out_dir)
    mean_faces, mean_maps, counts = class_mean_maps(images, maps, y_true, y_pred, num_classes=len(names))
    means_png = plot_class_mean_cams(mean_faces, mean_maps, counts, names, out / "class_mean_gradcam.png",
                                     title=title + "; mean Grad-CAM over correctly classified faces")
    right, wrong = select_confident(y_true, y_pred, conf, per_class=per_class, num_classes=len(names))
    confident_png = plot_confident_examples(images, maps, y_true, y_pred, conf, right, wrong, names,
                                            out / "confident_examples.png", title=title)
    return {"class_means": means_png, "confident": confident_png, "faces": int(len(index)),
            "accuracy": accuracy, "split": _USAGE_NAMES[split], "model": str(checkpoint)}
