"""Read FER2013 from its public forms into `FaceArrays`, and cache it as npz.

Supported sources:
  * the ICML/Kaggle `fer2013.csv` (`emotion,pixels,Usage`, 2304 space-separated pixels a row);
  * an npz with `images`, `labels`, `usage` and `classes` (what `save_npz` writes);
  * a Kaggle image folder: `<root>/<split>/<class>/*.jpg|png`;
  * an `.mpk`, mien's compact lossless form (`mien.data.packed`, about 70 % of the npz's size).
"""

from __future__ import annotations

import csv
import os
import re
import warnings
from pathlib import Path

import numpy as np

from ..errors import DataError
from ..labels import EMOTIONS, USAGES, canonical_emotion
from .arrays import FaceArrays
from ..files import write_atomically

SIDE = 48
PIXELS = SIDE * SIDE
MAX_LISTED = 10
IMAGE_SUFFIXES = frozenset({".jpg", ".jpeg", ".png", ".bmp", ".gif", ".pgm", ".tif", ".tiff", ".webp"})
NPZ_KEYS = ("images", "labels", "usage", "classes")

# Split spellings (CSV Usage values and folder names), lower-cased, to usage codes.
USAGE_ALIASES: dict[str, int] = {
    "training": 0, "train": 0,
    "publictest": 1, "val": 1, "valid": 1, "validation": 1,
    "privatetest": 2, "test": 2,
}

_INTEGER = re.compile(r"[+-]?\d+")


class DataWarning(UserWarning):
    """A source loaded, but some faces were skipped or converted."""


def load_source(path: str | Path, *, skip_bad: bool = False) -> FaceArrays:
    """Read a FER2013 csv, npz or image folder.

    Args:
        path: a `.csv`, `.npz` or `.mpk` file, or a folder with `train/` and `test/` class folders.
        skip_bad: skip malformed CSV rows and unreadable images (counted in a `DataWarning`)
            instead of raising `DataError`.

    Returns:
        The faces; class names are canonical (`labels.EMOTIONS` order for csv and folders).
    """
    path = Path(path).expanduser()
    if not path.exists():
        raise DataError(f"data source {path} does not exist; pass a FER2013 csv, npz or image folder")
    if path.is_dir():
        return _load_folder(path, skip_bad=skip_bad)
    suffix = path.suffix.lower()
    if suffix == ".csv":
        return _load_csv(path, skip_bad=skip_bad)
    if suffix == ".npz":
        return _load_npz(path)
    if suffix == ".mpk":
        from .packed import load_packed

        return load_packed(path)
    raise DataError(f"unknown data source type {path.name!r}: expected a .csv, .npz or .mpk file or an image folder")


def save_npz(faces: FaceArrays, path: str | Path) -> Path:
    """Write `faces` as a compressed npz that `load_source` reads back exactly; returns the file written."""
    return write_atomically(path, suffix=".npz", write=lambda tmp: np.savez_compressed(
        tmp,
        images=faces.images,
        labels=faces.labels.astype(np.int64),
        usage=faces.usage.astype(np.int8),
        classes=np.array(faces.names, dtype=str),
        usages=np.array(USAGES, dtype=str),
    ))


def select_usage(faces: FaceArrays, usages: list[str]) -> FaceArrays:
    """Keep only the faces of the named splits (Training, PublicTest, PrivateTest or their aliases).

    Raises:
        DataError: an unknown split name, or no face left.
    """
    codes = sorted({_usage_of(u) for u in usages})
    kept = faces.subset(np.isin(faces.usage, codes))
    if not len(kept):
        raise DataError(f"no faces in split(s) {', '.join(usages)}: {split_summary(faces)}")
    return kept


def default_source() -> Path:
    """Where FER2013 is when no source is given.

    `$MIEN_DATA` if set; else `../shared/data/fer2013.npz` from the current directory; else
    `shared/data/fer2013.npz` in any parent folder of this package.
    """
    env = os.environ.get("MIEN_DATA", "").strip()
    if env:
        path = Path(env).expanduser()
        if not path.exists():
            raise DataError(f"MIEN_DATA={env} does not exist; point it at a FER2013 npz, csv or image folder")
        return path
    candidates = [Path.cwd().parent / "shared" / "data" / "fer2013.npz"]
    candidates += [parent / "shared" / "data" / "fer2013.npz" for parent in Path(__file__).resolve().parents]
    for candidate in candidates:
        if candidate.is_file():
            return candidate
    looked = "\n".join(f"  {c}" for c in dict.fromkeys(candidates))
    raise DataError(
        "no FER2013 data found; looked in $MIEN_DATA (unset) and:\n"
        f"{looked}\nset MIEN_DATA=/path/to/fer2013.npz (or .csv, or an image folder) or pass the path explicitly"
    )


def count_table(faces: FaceArrays) -> str:
    """A text table of faces per class (rows) and split (columns), with totals."""
    counts = np.zeros((len(faces.names), len(USAGES)), dtype=np.int64)
    np.add.at(counts, (faces.labels, faces.usage.astype(np.int64)), 1)
    header = ["class", *USAGES, "total"]
    rows = [[name, *map(str, row), str(row.sum())] for name, row in zip(faces.names, counts)]
    rows.append(["total", *map(str, counts.sum(axis=0)), str(counts.sum())])
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header))]

    def line(cells: list[str]) -> str:
        return "  ".join(c.ljust(w) if i == 0 else c.rjust(w) for i, (c, w) in enumerate(zip(cells, widths)))

    rule = "  ".join("-" * w for w in widths)
    return "\n".join([line(header), rule, *map(line, rows[:-1]), rule, line(rows[-1])])


def split_summary(faces: FaceArrays) -> str:
    """One line: the number of faces in total and per split."""
    per = np.bincount(faces.usage.astype(np.int64), minlength=len(USAGES))
    return f"{len(faces)} faces (" + ", ".join(f"{u} {n}" for u, n in zip(USAGES, per)) + ")"


def _fail_or_warn(errors: list[str], *, total: int, what: str, source: Path, skip_bad: bool) -> None:
    """Raise DataError listing the first errors, or (skip_bad) warn how many were skipped."""
    if not errors:
        return
    listed = "\n".join(f"  {e}" for e in errors[:MAX_LISTED])
    more = f"\n  ... and {len(errors) - MAX_LISTED} more" if len(errors) > MAX_LISTED else ""
    if skip_bad:
        warnings.warn(f"skipped {len(errors)} of {total} {what} in {source}:\n{listed}{more}",
                      DataWarning, stacklevel=4)
        return
    raise DataError(f"{len(errors)} of {total} {what} in {source} are bad:\n{listed}{more}\n"
                    "fix them, or pass --skip-bad (data.skip_bad=true) to skip them")


def _label_of(value: str) -> int:
    value = value.strip()
    if value.lstrip("-").isdigit():
        label = int(value)
        if 0 <= label < len(EMOTIONS):
            return label
        raise DataError(f"unknown emotion label {value!r} (expected 0-{len(EMOTIONS) - 1} or a class name)")
    return EMOTIONS.index(canonical_emotion(value))


def _usage_of(value: str) -> int:
    key = value.strip().lower()
    if key not in USAGE_ALIASES:
        raise DataError(f"unknown Usage {value!r} (expected {', '.join(USAGES)})")
    return USAGE_ALIASES[key]


def _pixels_of(text: str) -> np.ndarray:
    """(2304,) uint8 from a space-separated pixel string, or DataError naming the problem."""
    # np.fromstring parses in C (a regex pre-check would double the cost on the 300 MB csv); it
    # stops at the first non-numeric token with a DeprecationWarning, which we turn into the error.
    with warnings.catch_warnings():
        warnings.simplefilter("error", DeprecationWarning)
        try:
            values = np.fromstring(text, dtype=np.int32, sep=" ") if text.strip() else np.empty(0, np.int32)
        except DeprecationWarning:
            raise DataError(f"non-numeric pixel value {_bad_token(text)!r}") from None
    if values.size != PIXELS:
        raise DataError(f"{values.size} pixel values, expected {PIXELS} ({SIDE}x{SIDE})")
    low, high = values.min(), values.max()
    if low < 0 or high > 255:
        raise DataError(f"pixel value {low if low < 0 else high} outside 0-255")
    return values.astype(np.uint8)


def _bad_token(text: str) -> str:
    """The first whitespace-separated token of `text` that is not an integer (for error messages)."""
    return next((t for t in text.split() if not _INTEGER.fullmatch(t)), text.strip())[:20]


def _csv_columns(header: list[str], path: Path) -> tuple[int, int, int]:
    """Indices of the emotion, pixels and Usage columns (any case), or DataError naming the missing ones."""
    columns = {name.strip().lower(): i for i, name in enumerate(header)}
    missing = [c for c in ("emotion", "pixels", "Usage") if c.lower() not in columns]
    if missing:
        raise DataError(f"{path} has no column {', '.join(map(repr, missing))}; its header is "
                        f"{','.join(header)!r}, expected 'emotion,pixels,Usage' (FER2013 csv)")
    return columns["emotion"], columns["pixels"], columns["usage"]


def _load_csv(path: Path, *, skip_bad: bool) -> FaceArrays:
    csv.field_size_limit(max(csv.field_size_limit(), 1 << 24))  # a row holds ~9 kB of pixels
    images: list[np.ndarray] = []
    labels: list[int] = []
    usage: list[int] = []
    errors: list[str] = []
    rows = 0
    with path.open(newline="", encoding="utf-8-sig") as fh:
        reader = csv.reader(fh)
        try:
            header = next(reader, None)
            if header is None:
                raise DataError(f"{path} is empty; expected a header line 'emotion,pixels,Usage'")
            ie, ip, iu = _csv_columns(header, path)
            for row in reader:
                if not row or (len(row) == 1 and not row[0].strip()):
                    continue
                rows += 1
                try:
                    if len(row) <= max(ie, ip, iu):
                        raise DataError(f"{len(row)} fields, expected {len(header)}")
                    label, use, pixels = _label_of(row[ie]), _usage_of(row[iu]), _pixels_of(row[ip])
                except DataError as exc:
                    errors.append(f"line {reader.line_num}: {exc}")
                    continue
                images.append(pixels)
                labels.append(label)
                usage.append(use)
        except (csv.Error, UnicodeDecodeError) as exc:
            raise DataError(f"{path} is not a readable csv (near line {reader.line_num + 1}): {exc}") from None
    _fail_or_warn(errors, total=rows, what="rows", source=path, skip_bad=skip_bad)
    if not images:
        raise DataError(f"{path} holds no faces" + (" after skipping bad rows" if errors else ""))
    return FaceArrays(np.stack(images).reshape(-1, SIDE, SIDE), np.array(labels, dtype=np.int64),
                      np.array(usage, dtype=np.int8), EMOTIONS)


def _load_npz(path: Path) -> FaceArrays:
    try:
        data = np.load(path, allow_pickle=False)
    except (OSError, ValueError) as exc:
        raise DataError(f"cannot read npz {path}: {exc}") from None
    with data:
        missing = [k for k in NPZ_KEYS if k not in data.files]
        if missing:
            raise DataError(f"npz {path} lacks {', '.join(missing)}; it has {', '.join(data.files)} "
                            f"and needs {', '.join(NPZ_KEYS)} (see mien data convert)")
        try:
            images, labels, usage = data["images"], data["labels"], data["usage"]
            classes = [str(c) for c in data["classes"]]
            usages = [str(u) for u in data["usages"]] if "usages" in data.files else list(USAGES)
        except (OSError, ValueError) as exc:
            raise DataError(f"cannot read npz {path}: {exc}") from None
    if images.dtype != np.uint8 or images.ndim != 3:
        raise DataError(f"npz {path}: images must be (N, H, W) uint8, got {images.shape} {images.dtype}")
    if not len(images):
        raise DataError(f"npz {path} holds no faces")
    try:
        names = tuple(canonical_emotion(c) for c in classes)
        codes = np.array([_usage_of(u) for u in usages], dtype=np.int8)
    except DataError as exc:
        raise DataError(f"npz {path}: {exc}") from None
    usage = usage.astype(np.int64)
    if usage.size and (usage.min() < 0 or usage.max() >= len(codes)):
        raise DataError(f"npz {path}: usage codes must lie in [0, {len(codes)}), got [{usage.min()}, {usage.max()}]")
    try:
        # `usages` names each stored code, so a file with another split order still maps correctly.
        return FaceArrays(images, labels.astype(np.int64), codes[usage], names)
    except DataError as exc:
        raise DataError(f"npz {path}: {exc}") from None


def _folder_entries(root: Path) -> tuple[list[tuple[Path, int, int]], int]:
    """(image path, label, usage) for every image under root/<split>/<class>/, and ignored files."""
    entries: list[tuple[Path, int, int]] = []
    ignored = 0
    split_dirs = sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
    for split_dir in split_dirs:
        use = USAGE_ALIASES.get(split_dir.name.lower())
        if use is None:
            raise DataError(
                f"unknown split folder {split_dir}; expected train/, test/ (or training, val, validation, "
                f"publictest, privatetest) holding one folder per class; point at the folder that holds them"
            )
        for class_dir in sorted(p for p in split_dir.iterdir() if p.is_dir() and not p.name.startswith(".")):
            try:
                label = EMOTIONS.index(canonical_emotion(class_dir.name))
            except DataError as exc:
                raise DataError(f"unknown class folder {class_dir}: {exc}") from None
            for file in class_dir.rglob("*"):
                if not file.is_file() or file.name.startswith("."):
                    continue
                if file.suffix.lower() in IMAGE_SUFFIXES:
                    entries.append((file, label, use))
                else:
                    ignored += 1
    entries.sort(key=lambda e: str(e[0]))
    return entries, ignored


def _read_image(path: Path) -> tuple[np.ndarray, bool, bool]:
    """(48, 48) uint8 grayscale, whether it was not 8-bit grayscale, whether it was resized.

    Raises DataError naming the file when it is not a readable image.
    """
    from PIL import Image, UnidentifiedImageError

    try:
        with Image.open(path) as img:
            img.load()
            colour = img.mode != "L"
            gray = img.convert("L")
    except (UnidentifiedImageError, OSError, ValueError, Image.DecompressionBombError) as exc:
        raise DataError(f"cannot read image {path}: {exc}") from None
    resized = gray.size != (SIDE, SIDE)
    if resized:
        gray = gray.resize((SIDE, SIDE), Image.Resampling.LANCZOS)
    return np.asarray(gray, dtype=np.uint8), colour, resized


def _load_folder(root: Path, *, skip_bad: bool) -> FaceArrays:
    entries, ignored = _folder_entries(root)
    if not entries:
        raise DataError(f"no images found under {root}; expected {root}/train/<class>/*.jpg and "
                        f"{root}/test/<class>/*.jpg")
    images = np.empty((len(entries), SIDE, SIDE), dtype=np.uint8)
    keep = np.ones(len(entries), dtype=bool)
    errors: list[str] = []
    colour = resized = converted = 0
    for i, (file, _, _) in enumerate(entries):
        try:
            images[i], was_colour, was_resized = _read_image(file)
        except DataError as exc:
            errors.append(str(exc))
            keep[i] = False
            continue
        colour += was_colour
        resized += was_resized
        converted += was_colour or was_resized
    _fail_or_warn(errors, total=len(entries), what="images", source=root, skip_bad=skip_bad)
    if converted:
        warnings.warn(f"converted {converted} images under {root} to {SIDE}x{SIDE} grayscale: "
                      f"{colour} colour or not 8-bit grayscale, {resized} not {SIDE}x{SIDE} (Lanczos resize)",
                      DataWarning, stacklevel=3)
    if ignored:
        warnings.warn(f"ignored {ignored} non-image files under {root} "
                      f"(image types read: {', '.join(sorted(IMAGE_SUFFIXES))})", DataWarning, stacklevel=3)
    if not keep.any():
        raise DataError(f"no readable images under {root}")
    labels = np.array([e[1] for e in entries], dtype=np.int64)
    usage = np.array([e[2] for e in entries], dtype=np.int8)
    return FaceArrays(images[keep], labels[keep], usage[keep], EMOTIONS)
