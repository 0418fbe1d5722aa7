"""Inference: `Recognizer` (detect, align, classify images and videos), backends, tracking, timelines.

Importing this package is cheap: torch, onnxruntime, OpenCV and mediapipe load when a Recognizer
is built or a video is read.
"""

from .backends import OnnxBackend, TorchBackend, create_backend
from .recognizer import Recognizer
from .results import FacePrediction, FrameResult, ImageResult

__all__ = ["FacePrediction", "FrameResult", "ImageResult", "OnnxBackend", "Recognizer", "TorchBackend",
           "create_backend"]
