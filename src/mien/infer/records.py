"""Flat output records of predictions: one per face, or one `faces: 0` record per image or frame without any.

Every record has the same keys, so JSON lines and CSV carry the same information:
file, frame, time_s (None for still images), faces (faces in that image/frame), face_index,
track_id (videos), box [x0, y0, x1, y1], score, landmarks [[x, y], ...], probs {class: p},
emotion, confidence (None in a `faces: 0` record).
"""

from __future__ import annotations

import csv
import json
from typing import IO, Any, Sequence

from .results import FacePrediction

KEYS = ("file", "frame", "time_s", "faces", "face_index", "track_id", "box", "score", "landmarks", "probs",
        "emotion", "confidence")


def face_records(file: str, faces: Sequence[FacePrediction], *, frame: int | None = None,
                 time_s: float | None = None) -> list[dict[str, Any]]:
    """One record per face, or a single `faces: 0` record when there is none."""
    head = {"file": file, "frame": frame, "time_s": None if time_s is None else round(time_s, 3), "faces": len(faces)}
    if not faces:
        return [{**head, **{k: None for k in KEYS[4:]}}]
    return [{**head, **face.to_dict()} for face in faces]


class RecordWriter:
    """Writes records to a text stream as JSON lines or CSV (header first)."""

    def __init__(self, stream: IO[str], *, fmt: str, class_names: Sequence[str]) -> None:
        if fmt not in ("jsonl", "csv"):
            raise ValueError(f"format must be jsonl or csv, got {fmt!r}")
        self.stream, self.fmt, self.class_names = stream, fmt, tuple(class_names)
        self._csv = None
        if fmt == "csv":
            self._csv = csv.writer(stream)
            self._csv.writerow(csv_header(self.class_names))

    def write(self, records: Sequence[dict[str, Any]]) -> None:
        for record in records:
            if self._csv is None:
                self.stream.write(json.dumps(record) + "\n")
            else:
                self._csv.writerow(csv_row(record, self.class_names))
        self.stream.flush()


def csv_header(class_names: Sequence[str]) -> list[str]:
    """CSV columns: the record's scalars, the box as x0..y1, landmarks as JSON, one column per class."""
    return ["file", "frame", "time_s", "faces", "face_index", "track_id", "x0", "y0", "x1", "y1", "score",
            "landmarks", *class_names, "emotion", "confidence"]


def csv_row(record: dict[str, Any], class_names: Sequence[str]) -> list[Any]:
    box = record["box"] or [None] * 4
    probs = record["probs"] or {}
    landmarks = "" if record["landmarks"] is None else json.dumps(record["landmarks"])
    row = [record["file"], record["frame"], record["time_s"], record["faces"], record["face_index"],
           record["track_id"], *box, record["score"], landmarks, *(probs.get(c) for c in class_names),
           record["emotion"], record["confidence"]]
    return ["" if v is None else v for v in row]
