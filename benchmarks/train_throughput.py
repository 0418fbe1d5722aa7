"""Training throughput of registered models on this machine: images/s, ms/step, GFLOP/s, % of matmul peak.

Each step is the project's own training step, `mien.train.loop.train_one_epoch` over one batch:
gather uint8 faces from the Training split (or random faces), /255, normalise, cast to the memory
format, forward under the precision's autocast, cross-entropy, backward, AdamW step. FLOPs are
counted by torch's FlopCounterMode (convolutions and matmuls; norms, activations and the optimizer
are not counted), so "% of peak" is the share of the machine's measured matmul peak that the
model's arithmetic reaches.

Run from the repository root:
    .venv/bin/python benchmarks/train_throughput.py
    .venv/bin/python benchmarks/train_throughput.py --models baseline_cnn --precisions fp32 --compare-memory-format
    .venv/bin/python benchmarks/train_throughput.py --data ../shared/data/fer2013.npz --json bench.json
    .venv/bin/python benchmarks/train_throughput.py --models resnet_small --precisions auto --compare-compile
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import statistics
import time
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from mien.cli import add_retain_memory_flag, apply_retain_memory
from mien.data.pipeline import Normalization, normalization_from
from mien.labels import TRAINING
from mien.models import create_model, list_models
from mien.train.hardware import cpu_has_native_bf16, describe_hardware, resolve_device, resolve_precision
from mien.train.loop import InputSpec, train_one_epoch


@dataclass(frozen=True)
class Faces:
    images: torch.Tensor  # (N, 1, 48, 48) uint8 on the device
    labels: torch.Tensor  # (N,) int64
    normalization: Normalization
    source: str


@dataclass(frozen=True)
class Row:
    model: str
    precision: str
    memory_format: str
    compiled: bool
    batch: int
    steps: int
    ms_per_step: float
    images_per_s: float
    params_m: float
    fwd_gflop_per_image: float
    train_gflop_per_image: float
    achieved_gflops: float
    peak_gflops: float
    percent_of_peak: float
    cpu_share_percent: float


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def load_faces(path: str | None, *, n_random: int, device: torch.device, seed: int) -> Faces:
    """Training-split faces of a FER2013 source (npz, csv or image folder), else random uint8 faces."""
    if path:
        from mien.data.sources import load_source

        faces = load_source(path)
        train = faces.subset(faces.usage == TRAINING)
        images, labels = train.images, train.labels.astype(np.int64)
        source = f"{path} (Training split, {len(images)} faces)"
    else:
        rng = np.random.default_rng(seed)
        images = rng.integers(0, 256, size=(n_random, 48, 48), dtype=np.uint8)
        labels = rng.integers(0, 7, size=n_random).astype(np.int64)
        source = f"random uint8 48x48 ({n_random} faces)"
    return Faces(torch.from_numpy(images).unsqueeze(1).to(device), torch.from_numpy(labels).to(device),
                 normalization_from(images), source)


def matmul_peak_gflops(dtype: torch.dtype, device: torch.device, *, size: int = 2048,
                       seconds: float = 1.0) -> tuple[float, int]:
    """(GFLOP/s, matrix side used) of a square torch.mm loop.

    Emulated bf16 can be 100x slower than fp32 (0.2 GFLOP/s on an AVX2-only EPYC), so the side
    halves until one product should take under 2 `seconds`; the side used is returned.
    """
    small = torch.randn(256, 256, device=device).to(dtype)
    torch.mm(small, small)  # the first call pays one-off setup
    _sync(device)
    t0 = time.perf_counter()
    torch.mm(small, small)
    _sync(device)
    one_small = time.perf_counter() - t0
    n = size
    # Cost scales with n^3: estimate one n-side product from the 256-side one.
    while n > 256 and one_small * (n / 256) ** 3 > 2 * seconds:
        n //= 2
    a = torch.randn(n, n, device=device).to(dtype)
    b = torch.randn(n, n, device=device).to(dtype)
    torch.mm(a, b)  # first call allocates and picks kernels
    _sync(device)
    iters, t0 = 0, time.perf_counter()
    while iters < 2 or time.perf_counter() - t0 < seconds:
        torch.mm(a, b)
        iters += 1
        _sync(device)
    return 2 * n**3 * iters / (time.perf_counter() - t0) / 1e9, n


def count_gflop_per_image(model: nn.Module, device: torch.device) -> tuple[float, float]:
    """(forward, forward + backward) GFLOP per image, counted on a batch of 2 (BatchNorm needs > 1)."""
    from torch.utils.flop_counter import FlopCounterMode

    x = torch.randn(2, model.in_chans, *model.input_size, device=device)
    with FlopCounterMode(display=False) as fwd, torch.no_grad():
        model(x)
    with FlopCounterMode(display=False) as train:
        model(x).sum().backward()
    model.zero_grad(set_to_none=True)
    return fwd.get_total_flops() / 2 / 1e9, train.get_total_flops() / 2 / 1e9


def measure(name: str, precision: str, *, faces: Faces, device: torch.device, batch: int, steps: int,
            warmup: int, max_seconds: float, channels_last: bool, peak: float, emulated: bool, seed: int,
            compiled: bool = False) -> Row:
    """Time `steps` training steps after `warmup` untimed ones, within about `max_seconds`.

    `compiled` runs the steps through `torch.compile(model)`; its first (untimed) step pays the
    compilation, which can take a minute, whatever `max_seconds` says.

    An `emulated` precision (bf16 without bf16 units: up to 100x slower than fp32) keeps the
    batch only if a step fits a third of the budget; otherwise the batch shrinks to fit.
    """
    torch.manual_seed(seed)
    model = create_model(name, num_classes=int(faces.labels.max()) + 1).to(device)
    if channels_last:
        model = model.to(memory_format=torch.channels_last)
    fwd_gflop, train_gflop = count_gflop_per_image(model, device)
    optimizer = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=5e-4)
    criterion = nn.CrossEntropyLoss()
    inputs = InputSpec.for_model(model, faces.normalization, channels_last=channels_last)
    gen = torch.Generator().manual_seed(seed)
    stepped = torch.compile(model) if compiled else model

    def step(size: int) -> float:
        order = torch.randint(len(faces.images), (size,), generator=gen).to(device)
        t0 = time.perf_counter()
        train_one_epoch(stepped, faces.images, faces.labels, order, batch_size=size, optimizer=optimizer,
                        criterion=criterion, inputs=inputs, precision=precision)
        _sync(device)
        return time.perf_counter() - t0

    if emulated:
        probe = min(8, batch)
        step(probe)  # the first step at a shape pays one-off kernel setup
        per_image = step(probe) / probe
        while batch > probe and per_image * batch > max_seconds / 3:
            batch //= 2
    start = time.perf_counter()
    for _ in range(max(1, warmup)):
        step(batch)
        if time.perf_counter() - start > max_seconds / 3:
            break
    times: list[float] = []
    start, cpu_start = time.perf_counter(), time.process_time()
    while len(times) < max(1, steps) and (len(times) < 2 or time.perf_counter() - start < max_seconds):
        times.append(step(batch))
    # CPU time this process got over the wall time its threads could have used: near 100 % on an
    # idle machine (OpenMP threads spin while waiting); lower means other processes took the cores.
    cpu_share = (time.process_time() - cpu_start) / ((time.perf_counter() - start) * torch.get_num_threads())
    seconds = statistics.median(times)
    images_per_s = batch / seconds
    achieved = train_gflop * images_per_s
    return Row(model=name, precision=precision, memory_format="channels_last" if channels_last else "contiguous",
               compiled=compiled, batch=batch, steps=len(times), ms_per_step=1000 * seconds, images_per_s=images_per_s,
               params_m=sum(p.numel() for p in model.parameters()) / 1e6, fwd_gflop_per_image=fwd_gflop,
               train_gflop_per_image=train_gflop, achieved_gflops=achieved, peak_gflops=peak,
               percent_of_peak=100 * achieved / peak, cpu_share_percent=100 * cpu_share)


def format_table(rows: list[Row], labels: dict[str, str]) -> str:
    """A Markdown table, one line per (model, precision, memory format, compiled)."""
    head = ("| model | precision | memory | compiled | batch | steps | ms/step | img/s | params (M) | fwd GFLOP/img "
            "| train GFLOP/img | GFLOP/s | % of peak | cpu share |")
    lines = [head, "|" + "---|" * head.count(" | ") + "---|"]
    for r in rows:
        compiled = "yes" if r.compiled else "no"
        lines.append(f"| {r.model} | {labels[r.precision]} | {r.memory_format} | {compiled} | {r.batch} | {r.steps} "
                     f"| {r.ms_per_step:.0f} | {r.images_per_s:.1f} | {r.params_m:.2f} "
                     f"| {r.fwd_gflop_per_image:.3f} | {r.train_gflop_per_image:.3f} "
                     f"| {r.achieved_gflops:.1f} | {r.percent_of_peak:.1f} | {r.cpu_share_percent:.0f} % |")
    return "\n".join(lines)


def parse_args(argv: list[str] | None = None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0],
                                     formatter_class=argparse.RawDescriptionHelpFormatter,
                                     epilog=__doc__.split("\n\n", 2)[2])
    parser.add_argument("--models", nargs="+", default=["baseline_cnn", "resnet_small"], choices=list_models())
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--precisions", nargs="+", choices=["auto", "fp32", "bf16"], default=None,
                        help="default: fp32 and bf16 (bf16 labelled 'emulated' where the CPU has no bf16 units)")
    parser.add_argument("--steps", type=int, default=20, help="timed steps per measurement (fewer if --max-seconds runs out)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed steps before timing")
    parser.add_argument("--max-seconds", type=float, default=15.0,
                        help="rough time budget per measurement; emulated bf16 shrinks its batch to fit (see the batch column)")
    parser.add_argument("--channels-last", action=argparse.BooleanOptionalAction, default=True)
    parser.add_argument("--compare-memory-format", action="store_true",
                        help="also time fp32 in the other memory format (channels_last vs contiguous)")
    parser.add_argument("--compare-compile", action="store_true",
                        help="also time each row with torch.compile (inductor); compiling takes about a minute a model")
    parser.add_argument("--data", help="FER2013 npz, csv or image folder to draw Training batches from "
                        "(default: random faces)")
    parser.add_argument("--device", default="auto", choices=["auto", "cpu", "cuda"])
    parser.add_argument("--threads", type=int, default=0, help="torch intra-op threads; 0 keeps torch's default")
    add_retain_memory_flag(parser)  # on CPU, as `mien train` does by default (train.retain_memory)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--json", type=Path, help="also write hardware, peaks and rows to this JSON file")
    args = parser.parse_args(argv)
    if args.batch_size < 2 or args.steps < 1 or args.warmup < 0 or args.max_seconds <= 0:
        parser.error("--batch-size must be >= 2, --steps >= 1, --warmup >= 0 and --max-seconds > 0")
    return args


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    auto = resolve_precision("auto", device)
    precisions = list(dict.fromkeys(resolve_precision(p, device) for p in (args.precisions or ["fp32", "bf16"])))
    native_bf16 = device.type == "cuda" or cpu_has_native_bf16()
    labels = {"fp32": "fp32", "bf16": "bf16" if native_bf16 else "bf16 (emulated)"}
    # Emulated bf16 runs on the fp32 units, so its share of the machine is measured against fp32.
    peak_of = {"fp32": "fp32", "bf16": "bf16" if native_bf16 else "fp32"}
    retained = device.type == "cpu" and apply_retain_memory(args)
    hardware = describe_hardware(device, auto) | {"retain_memory": retained}
    faces = load_faces(args.data, n_random=max(4096, args.batch_size), device=device, seed=args.seed)

    print(f"date        {datetime.datetime.now().astimezone().isoformat(timespec='seconds')}")
    print(f"cpu         {hardware['cpu_model']} ({os.cpu_count()} logical cpus, "
          f"load average {os.getloadavg()[0]:.2f} before the run)")
    if "gpu" in hardware:
        print(f"gpu         {hardware['gpu']}")
    print(f"torch       {hardware['torch']}, cpu capability {hardware['cpu_capability']}, "
          f"{torch.get_num_threads()} threads, mkldnn {'on' if torch.backends.mkldnn.is_available() else 'off'}")
    print(f"precision   auto -> {auto} (native bf16: {native_bf16})")
    print(f"malloc      {'freed memory retained for reuse' if retained else 'C library default'}")
    print(f"data        {faces.source}")
    peaks: dict[str, float] = {}
    for precision in ("fp32", "bf16"):
        gflops, side = matmul_peak_gflops(torch.float32 if precision == "fp32" else torch.bfloat16, device)
        peaks[precision] = gflops
        print(f"matmul peak {labels[precision]}: {gflops:.1f} GFLOP/s (torch.mm {side}x{side})")

    rows: list[Row] = []
    for name in args.models:
        for precision in precisions:
            layouts = [args.channels_last]
            if args.compare_memory_format and precision == "fp32":
                layouts.append(not args.channels_last)
            for channels_last in layouts:
                for compiled in [False, True] if args.compare_compile else [False]:
                    row = measure(name, precision, faces=faces, device=device, batch=args.batch_size,
                                  steps=args.steps, warmup=args.warmup, max_seconds=args.max_seconds,
                                  channels_last=channels_last, peak=peaks[peak_of[precision]],
                                  emulated=labels[precision].endswith("(emulated)"), seed=args.seed,
                                  compiled=compiled)
                    rows.append(row)
                    print(f"  {name} {labels[precision]} {row.memory_format}{' compiled' if compiled else ''}: "
                          f"{row.images_per_s:.1f} img/s", flush=True)
    print()
    print(format_table(rows, labels))
    print("\nGFLOP counts convolutions and matmuls only (x2 per multiply-add); % of peak is against the "
          "torch.mm peak above of the same precision (of fp32 for emulated bf16).\ncpu share: CPU time this "
          "process got / (wall time x threads); well under 100 % means other processes competed for the cores.")
    print(f"load average {os.getloadavg()[0]:.2f} after the run")
    if args.json:
        args.json.write_text(json.dumps({"hardware": hardware, "matmul_peak_gflops": peaks,
                                         "precision_labels": labels, "data": faces.source,
                                         "rows": [asdict(r) for r in rows]}, indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
