"""Run by test_distributed under `torchrun`: fit on tiny synthetic faces, save this rank's weights."""

import sys
from pathlib import Path

import torch.distributed as dist
from safetensors.torch import save_file

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "unit"))  # test_train's tiny task
sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # conftest

from test_train import cfg_for, tiny_splits  # noqa: E402

from mien.train import fit  # noqa: E402

out = Path(sys.argv[1])
result = fit(cfg_for("train.epochs=2", "train.batch_size=16"), out / "run", splits=tiny_splits(), progress=False,
             log=lambda *_: None)
rank = int(__import__("os").environ["RANK"])
save_file({k: v.contiguous() for k, v in result.model.state_dict().items()}, str(out / f"rank{rank}.safetensors"))
assert not dist.is_initialized()  # fit tore down the group it created
