"""Export trained models to other runtimes (ONNX)."""

from .onnx import export_onnx, read_onnx_metadata

__all__ = ["export_onnx", "read_onnx_metadata"]
