"""DistributedDataParallel with the same `fit`: 2 CPU processes under torchrun (gloo)."""

import subprocess
import sys
from pathlib import Path

import torch
from safetensors.torch import load_file


def test_two_cpu_ranks_end_with_identical_weights(tmp_path):
    worker = Path(__file__).with_name("ddp_worker.py")
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc-per-node", "2",
                           str(worker), str(tmp_path)], capture_output=True, text=True, timeout=300,
                          env={**__import__("os").environ, "OMP_NUM_THREADS": "1"})
    assert proc.returncode == 0, proc.stderr[-3000:]
    a, b = load_file(str(tmp_path / "rank0.safetensors")), load_file(str(tmp_path / "rank1.safetensors"))
    assert a.keys() == b.keys() and len(a) > 0
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=0)
    rows = (tmp_path / "run" / "metrics.csv").read_text().strip().splitlines()
    assert len(rows) == 3  # only rank 0 writes: header + 2 epochs, no duplicates
    import json
    assert json.loads((tmp_path / "run" / "run.json").read_text())["sessions"][0]["world_size"] == 2
