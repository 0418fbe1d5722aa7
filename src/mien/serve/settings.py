"""`ServeSettings`: the limits and options of the web service (one frozen dataclass, validated)."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from ..errors import ConfigError

MB = 1024 * 1024


@dataclass(frozen=True)
class ServeSettings:
    """What `mien serve` allows a request to do and how it runs inference.

    Attributes:
        max_upload_bytes: largest request body (one image, or all images of a batch); above it: 413.
        max_pixels: images with more pixels are downscaled (aspect kept) before detection; boxes
            are still reported in the original image's pixels.
        max_decode_pixels: images whose header declares more pixels are refused (413) before they
            are decoded, so a small file cannot expand into gigabytes (a "decompression bomb").
        max_batch_files: most images in one `/v1/predict/batch` request.
        timeout_s: per-request limit (reading the body, waiting for a worker, inference); above it: 504.
        workers: threads that decode uploads; detection and the model run one request at a time
            (MediaPipe graphs are not thread-safe), so more workers overlap decoding with inference.
        max_pending: requests admitted at once (queued or running); more get 503 with Retry-After.
        save_uploads: folder where accepted images are written under server-made names (None: nothing
            is stored).
    """

    max_upload_bytes: int = 10 * MB
    max_pixels: int = 12_000_000
    max_decode_pixels: int = 64_000_000
    max_batch_files: int = 16
    timeout_s: float = 30.0
    workers: int = 2
    max_pending: int = 64
    save_uploads: Path | None = None

    def __post_init__(self) -> None:
        positive = {"max_upload_bytes": self.max_upload_bytes, "max_pixels": self.max_pixels,
                    "max_decode_pixels": self.max_decode_pixels, "max_batch_files": self.max_batch_files,
                    "timeout_s": self.timeout_s, "workers": self.workers, "max_pending": self.max_pending}
        for name, value in positive.items():
            if not value > 0:
                raise ConfigError(f"serve setting {name} must be > 0, got {value!r}")
        if self.max_decode_pixels < self.max_pixels:
            raise ConfigError(f"serve setting max_decode_pixels ({self.max_decode_pixels}) must be >= "
                              f"max_pixels ({self.max_pixels})")
        if self.save_uploads is not None and Path(self.save_uploads).exists() and not Path(self.save_uploads).is_dir():
            raise ConfigError(f"--save-uploads {self.save_uploads} exists and is not a folder")
