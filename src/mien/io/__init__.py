"""Image input: decode files, bytes, PIL images and arrays into (H, W, 3) uint8 RGB; expand path arguments."""

from .images import IMAGE_SUFFIXES, VIDEO_SUFFIXES, ImageError, expand_inputs, is_video, read_image

__all__ = ["IMAGE_SUFFIXES", "VIDEO_SUFFIXES", "ImageError", "expand_inputs", "is_video", "read_image"]
