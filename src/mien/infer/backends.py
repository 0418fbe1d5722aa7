"""Classifier backends: aligned uint8 face crops in, class probabilities out.

Both backends share the preprocessing (`mien.data.pipeline.model_input` with the checkpoint's
normalisation), the chunking and the flip test-time augmentation; they differ only in what runs
the network: PyTorch (`TorchBackend`) or onnxruntime (`OnnxBackend`, which exports the checkpoint
once into a cache keyed by the weights' sha256 -- nothing is ever downloaded).
"""

from __future__ import annotations

import os
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from ..errors import ConfigError
from ..tta import TTA_MODES

if TYPE_CHECKING:
    import torch

BACKENDS = ("torch", "onnx")
PRECISIONS = ("fp32", "bf16", "auto")


@dataclass(frozen=True)
class ModelInfo:
    """What a backend needs to know about its checkpoint to prepare input and name outputs."""

    class_names: tuple[str, ...]
    mean: float
    std: float
    input_size: tuple[int, int]
    in_chans: int
    source: Path

    @classmethod
    def from_meta(cls, meta: dict[str, Any], *, source: Path, in_chans: int | None = None) -> ModelInfo:
        from ..errors import CheckpointError

        spec = meta["model"]
        if not meta.get("input_size"):
            raise CheckpointError(f"{source} does not record its model's input_size; re-save it with mien")
        return cls(tuple(meta["class_names"]), float(meta["normalization"]["mean"]),
                   float(meta["normalization"]["std"]), tuple(meta["input_size"]),
                   int(in_chans if in_chans is not None else spec["in_chans"]), source)


class _Backend:
    """Shared chunking, preprocessing and TTA; subclasses provide `_logits`."""

    name = ""
    channels_last = False  # memory format of the model input

    def __init__(self, info: ModelInfo, *, batch_size: int, tta: str) -> None:
        if tta not in TTA_MODES:
            raise ConfigError(f"tta must be one of {', '.join(TTA_MODES)}, got {tta!r}")
        if batch_size < 1:
            raise ConfigError(f"batch_size must be >= 1, got {batch_size}")
        self.info, self.batch_size, self.tta = info, batch_size, tta

    @property
    def class_names(self) -> tuple[str, ...]:
        return self.info.class_names

    def probs(self, crops: np.ndarray) -> np.ndarray:
        """(N, H, W) uint8 aligned grayscale faces -> (N, C) float32 probabilities (rows sum to 1).

        Crops at another size than the model's `input_size` are resized bilinearly.
        """
        import torch

        from ..data.pipeline import Normalization, model_input
        from ..train.loop import tta_probs

        crops = check_crops(crops)
        out = np.empty((len(crops), len(self.class_names)), dtype=np.float32)
        norm = Normalization(self.info.mean, self.info.std)

        def logits(view: torch.Tensor) -> torch.Tensor:
            return self._logits(model_input(view, normalization=norm, input_size=self.info.input_size,
                                            in_chans=self.info.in_chans, channels_last=self.channels_last))

        with torch.inference_mode():
            for start in range(0, len(crops), self.batch_size):
                x = torch.from_numpy(crops[start:start + self.batch_size]).unsqueeze(1).float().div_(255.0)
                out[start:start + len(x)] = tta_probs(x, logits, self.tta).numpy()
        return out

    def _logits(self, x: torch.Tensor) -> torch.Tensor:  # (B, in_chans, H, W) -> (B, C)
        raise NotImplementedError


class TorchBackend(_Backend):
    """Runs the checkpoint's PyTorch model under `torch.inference_mode`, batch norms folded.

    `precision`: "fp32" (default; what model cards are measured with), "bf16" (weights and
    activations in bf16), or "auto": bf16 on CUDA and on CPUs with bf16 matrix units (AMX /
    AVX512-BF16), where it runs small CNNs ~3x faster (docs/results/flagship.md), else fp32.
    `model` is the checkpoint's network as trained (Grad-CAM hooks its layers); `net`, which runs,
    is `mien.infer.fold.inference_network`'s copy of it.
    """

    name = "torch"
    # Measured on a 2-core AVX2 EPYC: the baseline CNN runs ~1.7x faster on channels_last tensors.
    channels_last = True

    def __init__(self, checkpoint: str | Path, *, device: str = "cpu", batch_size: int = 256,
                 tta: str = "none", precision: str = "fp32") -> None:
        import torch

        from ..train.checkpoint import load_model
        from ..train.hardware import resolve_precision
        from .fold import inference_network

        model, meta = load_model(checkpoint, device=device)
        self.model = model.to(memory_format=torch.channels_last)
        self.device = next(self.model.parameters()).device
        self.precision = resolve_precision(precision, self.device)
        self.net = inference_network(self.model, self.precision)
        self._dtype = torch.bfloat16 if self.precision == "bf16" else torch.float32
        super().__init__(ModelInfo.from_meta(meta, source=Path(checkpoint)), batch_size=batch_size, tta=tta)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x.to(self.device, self._dtype)).float().cpu()


class OnnxBackend(_Backend):
    """Runs an exported model through onnxruntime on the CPU.

    Args:
        source: an exported `.onnx` file (from `mien export`) or a checkpoint `.safetensors` file,
            which is exported once into `cache_dir` under its sha256.
        threads: onnxruntime intra-op threads (default: every CPU core).
        cache_dir: where checkpoint exports are kept (default: `default_cache_dir()/onnx`).
    """

    name = "onnx"

    def __init__(self, source: str | Path, *, batch_size: int = 256, tta: str = "none",
                 threads: int | None = None, cache_dir: str | Path | None = None) -> None:
        import onnxruntime as ort

        from ..export.onnx import INPUT_NAME, read_onnx_metadata

        source = Path(source)
        path = source if source.suffix == ".onnx" else cached_onnx(source, cache_dir=cache_dir)
        meta = read_onnx_metadata(path)
        options = ort.SessionOptions()
        options.intra_op_num_threads = threads or os.cpu_count() or 1
        options.inter_op_num_threads = 1
        # Idle workers sleep instead of spinning: between model calls the CPU belongs to decoding and
        # face detection (on a busy 2-core EPYC this halved single-face latency, 3.4 -> 1.8 ms).
        options.add_session_config_entry("session.intra_op.allow_spinning", "0")
        self.session = ort.InferenceSession(str(path), sess_options=options, providers=["CPUExecutionProvider"])
        self.onnx_path, self._input = path, INPUT_NAME
        super().__init__(ModelInfo.from_meta(meta, source=source, in_chans=meta["input"]["shape"][1]),
                         batch_size=batch_size, tta=tta)

    def _logits(self, x: torch.Tensor) -> torch.Tensor:
        import torch

        (logits,) = self.session.run(None, {self._input: x.numpy()})
        return torch.from_numpy(logits)


def create_backend(name: str, source: str | Path, *, device: str = "cpu", batch_size: int = 256,
                   tta: str = "none", threads: int | None = None,
                   precision: str = "fp32") -> TorchBackend | OnnxBackend:
    """A backend by name ("torch" or "onnx") for a checkpoint file (or, for onnx, an .onnx file).

    `precision` is the torch backend's ("fp32", "bf16" or "auto", see `TorchBackend`); onnxruntime
    runs fp32, so it takes "fp32" or "auto" only.
    """
    if precision not in PRECISIONS:
        raise ConfigError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if name == "torch":
        if Path(source).suffix == ".onnx":
            raise ConfigError(f"the torch backend cannot run {source}; use backend='onnx' for .onnx files")
        return TorchBackend(source, device=device, batch_size=batch_size, tta=tta, precision=precision)
    if name == "onnx":
        if device != "cpu":
            raise ConfigError(f"the onnx backend runs on the CPU only, got device={device!r}")
        if precision == "bf16":
            raise ConfigError("the onnx backend runs fp32 only; use backend='torch' for precision='bf16'")
        return OnnxBackend(source, batch_size=batch_size, tta=tta, threads=threads)
    raise ConfigError(f"backend must be one of {', '.join(BACKENDS)}, got {name!r}")


def default_cache_dir() -> Path:
    """$MIEN_CACHE_DIR, else $XDG_CACHE_HOME/mien, else ~/.cache/mien."""
    if os.environ.get("MIEN_CACHE_DIR"):
        return Path(os.environ["MIEN_CACHE_DIR"])
    base = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(base) / "mien"


def cached_onnx(checkpoint: str | Path, *, cache_dir: str | Path | None = None) -> Path:
    """The ONNX export of a checkpoint, made on first use and reused while the weights are unchanged."""
    from ..export.onnx import export_onnx, weights_sha256

    checkpoint = Path(checkpoint)
    key = weights_sha256(checkpoint)[:24]
    folder = Path(cache_dir) if cache_dir is not None else default_cache_dir() / "onnx"
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError:  # read-only home (containers, CI): a per-user temp folder still avoids re-exports
        folder = Path(tempfile.gettempdir()) / f"mien-onnx-{os.getuid() if hasattr(os, 'getuid') else 0}"
        folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{checkpoint.stem}-{key}.onnx"
    if not path.is_file():
        export_onnx(checkpoint, path)
    return path


def check_crops(crops: np.ndarray) -> np.ndarray:
    """Validate face crops: (N, H, W) or (N, H, W, 1) uint8 -> C-contiguous (N, H, W) uint8."""
    from ..io.images import ImageError

    crops = np.asarray(crops)
    if crops.ndim == 4 and crops.shape[3] == 1:
        crops = crops[..., 0]
    if crops.ndim != 3:
        raise ImageError(f"face crops must be (N, H, W) uint8 grayscale, got shape {crops.shape}"
                         + ("; add a batch axis with crops[None]" if crops.ndim == 2 else ""))
    if crops.dtype != np.uint8:
        raise ImageError(f"face crops must be uint8 (0-255), got {crops.dtype}")
    return np.ascontiguousarray(crops)
