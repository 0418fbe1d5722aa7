"""Face detection (MediaPipe BlazeFace, OpenCV Haar, or none) and FER2013-style face alignment."""

from .align import FRAMING, align_face, eye_angle, face_transform, transform_points
from .faces import DETECTORS, Face, FaceDetector, box_iou, create_detector, suppress_overlaps

__all__ = [
    "DETECTORS", "FRAMING", "Face", "FaceDetector", "align_face", "box_iou", "create_detector", "eye_angle",
    "face_transform", "suppress_overlaps", "transform_points",
]
