"""Face detection on the shipped example photos, box mapping, overlap suppression and face alignment."""

from __future__ import annotations

import socket
from pathlib import Path

import cv2
import numpy as np
import pytest

from mien.detect import (
    DETECTORS, FRAMING, Face, FaceDetector, align_face, box_iou, create_detector, eye_angle, face_transform,
    suppress_overlaps, transform_points,
)
from mien.detect.faces import downscale, finish
from mien.errors import ConfigError
from mien.io import ImageError, read_image

EXAMPLES = Path(__file__).resolve().parents[2] / "examples"
# The astronaut's face in examples/astronaut.jpg (512x512), labelled by hand: hairline-to-chin and
# ear-to-ear. The brief's rough region (x 150-260, y 60-200) holds its centre, but the face reaches x 272.
FACE_BOX = (178.0, 75.0, 272.0, 180.0)
CANVAS_FACE_BOX = (80 + 178 * 0.9375, 75 * 0.9375, 80 + 272 * 0.9375, 180 * 0.9375)


@pytest.fixture(scope="module")
def astronaut() -> np.ndarray:
    return read_image(EXAMPLES / "astronaut.jpg")


@pytest.fixture(scope="module")
def detectors() -> dict[str, FaceDetector]:
    """Each detector built once: building MediaPipe graphs is the slow part."""
    built = {name: create_detector(name) for name in ("mediapipe", "mediapipe-short", "mediapipe-full", "haar")}
    yield built
    for det in built.values():
        det.close()  # type: ignore[attr-defined]


@pytest.mark.parametrize("name", ["mediapipe", "mediapipe-short", "mediapipe-full", "haar"])
def test_detectors_find_the_astronaut(detectors: dict[str, FaceDetector], astronaut: np.ndarray, name: str) -> None:
    faces = detectors[name].detect(astronaut)
    assert len(faces) == 1
    face = faces[0]
    cx, cy = face.center
    assert 195 <= cx <= 255 and 100 <= cy <= 160
    assert box_iou(face.box, FACE_BOX) >= 0.5
    assert 0.5 <= face.score <= 1.0
    assert face.detector in ("mediapipe-short", "mediapipe-full", "haar")


def test_mediapipe_landmarks_are_in_the_documented_order(detectors: dict[str, FaceDetector],
                                                         astronaut: np.ndarray) -> None:
    face = detectors["mediapipe"].detect(astronaut)[0]
    marks = face.landmarks
    assert marks is not None and marks.shape == (6, 2)
    right_eye, left_eye, nose, mouth, right_ear, left_ear = marks
    assert right_eye[0] < nose[0] < left_eye[0]  # the subject's right eye is on the image's left
    assert right_ear[0] < right_eye[0] and left_eye[0] < left_ear[0]
    assert max(right_eye[1], left_eye[1]) < nose[1] < mouth[1]
    assert FACE_BOX[0] < right_eye[0] < FACE_BOX[2] and FACE_BOX[1] < right_eye[1] < FACE_BOX[3]


@pytest.mark.parametrize("name", ["mediapipe", "mediapipe-tiles", "mediapipe-both"])
def test_exactly_one_face_on_the_astronaut_canvas(name: str) -> None:
    canvas = read_image(EXAMPLES / "astronaut_canvas.jpg")
    with create_detector(name) as detector:  # type: ignore[attr-defined]
        faces = detector.detect(canvas)
    assert len(faces) == 1
    assert box_iou(faces[0].box, CANVAS_FACE_BOX) >= 0.5


@pytest.mark.parametrize("name", ["mediapipe", "haar"])
def test_blank_image_gives_no_faces(detectors: dict[str, FaceDetector], name: str) -> None:
    assert detectors[name].detect(np.full((480, 640, 3), 128, np.uint8)) == []


def test_boxes_map_back_from_a_downscaled_4000x3000_image(detectors: dict[str, FaceDetector],
                                                          astronaut: np.ndarray) -> None:
    # The photo scaled x5.859 (3000 px) on a 4000x3000 canvas at x = 500; detection runs at 1280 px.
    big = np.full((3000, 4000, 3), 128, np.uint8)
    big[:, 500:3500] = cv2.resize(astronaut, (3000, 3000), interpolation=cv2.INTER_LINEAR)
    # The same pixels the detector sees after its own downscale, detected without downscaling.
    small = cv2.resize(big, (1280, 960), interpolation=cv2.INTER_AREA)
    k = 3000 / 512
    for name in ("mediapipe", "haar"):
        faces = detectors[name].detect(big)
        assert len(faces) == 1
        on_small = detectors[name].detect(small)[0]
        assert np.allclose(faces[0].box, np.array(on_small.box) * 3.125, atol=1e-6)
        if on_small.landmarks is not None:
            assert np.allclose(faces[0].landmarks, on_small.landmarks * 3.125, atol=1e-6)
        # And the box lands on the face: the hand-labelled box, scaled and moved.
        expected = (FACE_BOX[0] * k + 500, FACE_BOX[1] * k, FACE_BOX[2] * k + 500, FACE_BOX[3] * k)
        assert box_iou(faces[0].box, expected) >= 0.5, (name, faces[0].box, expected)


def test_downscale_and_finish_map_clip_and_sort() -> None:
    rgb = np.zeros((300, 2000, 3), np.uint8)
    small, factor = downscale(rgb, 1000)
    assert small.shape == (150, 1000, 3) and factor == 2.0
    assert downscale(rgb, 4000)[1] == 1.0
    raw = [
        Face((-10.0, 10.0, 40.0, 60.0), 0.6, np.array([[5.0, 20.0], [30.0, 20.0]])),
        Face((900.0, 100.0, 1200.0, 200.0), 0.9),
        Face((1200.0, 10.0, 1300.0, 60.0), 0.7),  # entirely right of the 1000 px wide downscaled image
    ]
    out = finish(raw, scale=2.0, shape=rgb.shape)
    assert [f.score for f in out] == [0.9, 0.6]
    assert out[0].box == (1800.0, 200.0, 2000.0, 300.0)
    assert out[1].box == (0.0, 20.0, 80.0, 120.0)
    assert np.array_equal(out[1].landmarks, [[10.0, 40.0], [60.0, 40.0]])


def test_suppress_overlaps_keeps_the_best_of_duplicates() -> None:
    a = Face((0.0, 0.0, 100.0, 100.0), 0.9)
    shifted = Face((10.0, 5.0, 110.0, 105.0), 0.8)  # IoU 0.77 with a
    nested = Face((20.0, 20.0, 60.0, 60.0), 0.95)   # IoU 0.16 but wholly inside a... and better scored
    apart = Face((200.0, 0.0, 300.0, 100.0), 0.5)
    kept = suppress_overlaps([shifted, apart, a])
    assert kept == [a, apart]
    assert suppress_overlaps([a, nested, apart]) == [nested, apart]  # the best box wins, the outer one goes
    assert suppress_overlaps([]) == []


def test_none_detector_covers_the_whole_image() -> None:
    det = create_detector("none")
    rgb = np.zeros((30, 50, 3), np.uint8)
    faces = det.detect(rgb)
    assert len(faces) == 1 and faces[0].box == (0.0, 0.0, 50.0, 30.0) and faces[0].landmarks is None
    assert faces[0].score == 1.0 and faces[0].detector == "none"


def test_none_detector_then_align_is_the_identity_on_a_48x48_face() -> None:
    rng = np.random.default_rng(0)
    gray = rng.integers(0, 256, (48, 48), dtype=np.uint8)
    rgb = np.repeat(gray[:, :, None], 3, axis=2)
    face = create_detector("none").detect(rgb)[0]
    assert np.array_equal(align_face(rgb, face), gray)


def test_align_face_shape_dtype_and_size(detectors: dict[str, FaceDetector], astronaut: np.ndarray) -> None:
    face = detectors["mediapipe"].detect(astronaut)[0]
    crop = align_face(astronaut, face)
    assert crop.shape == (48, 48) and crop.dtype == np.uint8
    assert align_face(astronaut, face, size=64).shape == (64, 64)
    assert crop.std() > 20  # a face, not a flat patch


def rotate(rgb: np.ndarray, angle: float, center: tuple[float, float]) -> np.ndarray:
    turn = cv2.getRotationMatrix2D(center, angle, 1.0)
    return cv2.warpAffine(rgb, turn, (rgb.shape[1], rgb.shape[0]), flags=cv2.INTER_LINEAR,
                          borderMode=cv2.BORDER_REPLICATE)


def correlation(a: np.ndarray, b: np.ndarray) -> float:
    return float(np.corrcoef(a.ravel().astype(np.float64), b.ravel().astype(np.float64))[0, 1])


def test_align_face_levels_a_rotated_face(detectors: dict[str, FaceDetector], astronaut: np.ndarray) -> None:
    detector = detectors["mediapipe"]
    upright = detector.detect(astronaut)[0]
    turned_rgb = rotate(astronaut, 20.0, upright.center)  # 20 degrees anticlockwise on screen
    turned = detector.detect(turned_rgb)[0]
    # The image-right eye rises by the rotation: the eye line's angle drops by about 20 degrees.
    assert eye_angle(turned) - eye_angle(upright) == pytest.approx(-20.0, abs=4.0)
    reference = align_face(astronaut, upright)
    aligned = align_face(turned_rgb, turned)
    unlevelled = align_face(turned_rgb, turned, rotate=False)
    assert correlation(aligned, reference) > 0.9
    assert correlation(aligned, reference) > correlation(unlevelled, reference) + 0.1
    for face in (upright, turned):
        eyes = transform_points(face_transform(face), face.landmarks[:2])
        assert abs(eyes[0, 1] - eyes[1, 1]) < 1e-6  # level in the crop
        assert eyes[0, 0] < 24 < eyes[1, 0] and 5 < eyes[0, 1] < 24  # on either side, upper half


def test_face_transform_frames_the_box() -> None:
    face = Face((100.0, 50.0, 200.0, 150.0), 0.9)
    corners = transform_points(face_transform(face, margin=0.0, shift=0.0), np.array([[100.0, 50.0], [200, 150]]))
    assert np.allclose(corners, [[0, 0], [48, 48]])
    wide = transform_points(face_transform(face, margin=0.5, shift=0.0), np.array([[100.0, 50.0], [200, 150]]))
    assert np.allclose(wide, [[12, 12], [36, 36]])
    up = transform_points(face_transform(face, margin=0.0, shift=-0.1), np.array([[150.0, 100.0]]))
    assert np.allclose(up, [[24, 28.8]])  # the crop centre moved up 10 px, so the box centre sits lower
    assert face_transform(face).tolist() == face_transform(face, margin=FRAMING[""][0], shift=FRAMING[""][1]).tolist()
    haar = Face(face.box, 0.9, detector="haar")
    assert face_transform(haar).tolist() == face_transform(haar, margin=FRAMING["haar"][0], shift=0.0).tolist()


def test_align_face_replicates_the_border_outside_the_image() -> None:
    rgb = np.full((100, 100, 3), 200, np.uint8)
    rgb[:, 50:] = 60
    crop = align_face(rgb, Face((0.0, 0.0, 30.0, 30.0), 0.9), margin=0.5)
    assert crop.min() == 200 and crop.max() == 200  # no black padding
    edge = align_face(rgb, Face((70.0, 0.0, 100.0, 30.0), 0.9), margin=0.5)
    assert edge.max() == 60


def test_align_face_averages_big_faces_rather_than_aliasing() -> None:
    # A 1-pixel checkerboard averages to mid-grey; sampling it point-wise would give 0s and 255s.
    board = ((np.indices((960, 960)).sum(axis=0) % 2) * 255).astype(np.uint8)
    rgb = np.repeat(board[:, :, None], 3, axis=2)
    crop = align_face(rgb, Face((0.0, 0.0, 960.0, 960.0), 1.0), margin=0.0, shift=0.0)
    assert abs(float(crop.mean()) - 127.5) < 3 and crop.std() < 10


def test_create_detector_rejects_bad_settings_and_inputs() -> None:
    with pytest.raises(ConfigError, match="unknown face detector 'dlib'"):
        create_detector("dlib")
    with pytest.raises(ConfigError, match="unknown face detector 'mediapipe-huge'"):
        create_detector("mediapipe-huge")
    with pytest.raises(ConfigError, match="min_score"):
        create_detector("haar", min_score=1.5)
    with pytest.raises(ConfigError, match="max_side"):
        create_detector("haar", max_side=10)
    with pytest.raises(ImageError, match="uint8 RGB"):
        create_detector("none").detect(np.zeros((10, 10), np.uint8))
    assert set(DETECTORS) >= {"mediapipe", "haar", "none"}


def test_mediapipe_needs_no_network(monkeypatch: pytest.MonkeyPatch, astronaut: np.ndarray) -> None:
    def refuse(*args: object, **kwargs: object) -> None:
        raise AssertionError(f"network access attempted: {args}")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    monkeypatch.setattr(socket, "create_connection", refuse)
    monkeypatch.setattr(socket, "getaddrinfo", refuse)
    with create_detector("mediapipe-both") as detector:  # type: ignore[attr-defined]
        assert len(detector.detect(astronaut)) == 1
