"""Knowledge distillation (Hinton et al., 2015): a fixed teacher's softened probabilities as extra targets.

The teacher is any model source inference takes: a shipped model or ensemble name, a run directory
or a checkpoint, or several of them joined by "+". It sees the student's own augmented (and mixed)
batch, each member through its own normalisation and input size, so its targets always describe
the image the student is shown. Each member runs as an inference copy (batch norms folded, bf16
weights in bf16: `mien.infer.fold`): on an AMX machine at 2 threads, batch 128, that cut the 2.8 M
`resnet_small_ema_long`'s forward pass from 0.167 to 0.129 s and `deep_cnn`'s from 0.068 to 0.056 s.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence

import torch
import torch.nn.functional as F
from torch import nn

from ..config import teacher_parts
from ..errors import ConfigError
from ..infer.fold import inference_network
from .loop import InputSpec


@dataclass(frozen=True)
class Teacher:
    """Frozen member networks (folded inference copies) whose probabilities are averaged, as a shipped
    ensemble's are."""

    members: tuple[tuple[nn.Module, InputSpec], ...]
    class_names: tuple[str, ...]
    source: str  # what it was loaded from, resolved: paths joined by " + "

    @torch.no_grad()
    def log_probs(self, x: torch.Tensor) -> torch.Tensor:
        """(B, C) float32 log mean member probabilities of float (B, 1, H, W) faces in [0, 1]."""
        from ..weights.ensemble import mean_probs

        def member_probs(net: nn.Module, inputs: InputSpec) -> torch.Tensor:
            dtype = next(net.parameters()).dtype  # bf16 weights for bf16, so the input must match
            return F.softmax(net(inputs(x).to(dtype)).float(), dim=1)

        return mean_probs(member_probs(m, i) for m, i in self.members).clamp_min(1e-8).log()


def load_teacher(source: str, *, class_names: Sequence[str], device: torch.device, precision: str = "fp32",
                 channels_last: bool = True) -> Teacher:
    """Load `source` (shipped model/ensemble name, run directory or checkpoint; several joined by "+")
    as a frozen teacher whose members are every model named, an ensemble's members in its place.
    `precision` ("fp32" or "bf16", resolved) is the dtype the members' folded weights run in.

    Raises:
        ConfigError: the teacher predicts other classes than the student (names and order must match),
            or a part of `source` between "+" signs is empty.
        ModelError / CheckpointError: `source` names no model.
    """
    from ..data.pipeline import Normalization
    from ..weights import resolve_model_source
    from ..weights.ensemble import is_ensemble_manifest, read_ensemble
    from .checkpoint import load_model

    sources = [resolve_model_source(part, allow_ensemble=True) for part in teacher_parts(source)]
    paths = [m for s in sources for m in (read_ensemble(s).members if is_ensemble_manifest(s) else (s,))]
    members = []
    for member in paths:
        model, meta = load_model(member, device=device)
        if tuple(meta["class_names"]) != tuple(class_names):
            raise ConfigError(f"distill.teacher {source!r} ({member.name}) predicts {meta['class_names']}, the "
                              f"student {list(class_names)}; distil from a teacher with the same classes")
        net = inference_network(model, precision).requires_grad_(False)
        members.append((net, InputSpec.for_model(model, Normalization(**meta["normalization"]),
                                                 channels_last=channels_last)))
    return Teacher(tuple(members), tuple(class_names), " + ".join(map(str, sources)))


def distill_loss(student_logits: torch.Tensor, teacher_log_probs: torch.Tensor, *, temperature: float) -> torch.Tensor:
    """T^2 * KL(teacher || student), both softened by `temperature`, averaged over the batch.

    The T^2 factor keeps the soft term's gradients on the scale of the hard loss's as T changes.
    """
    soft_targets = F.softmax(teacher_log_probs / temperature, dim=1)
    log_student = F.log_softmax(student_logits.float() / temperature, dim=1)
    return F.kl_div(log_student, soft_targets, reduction="batchmean") * temperature ** 2
