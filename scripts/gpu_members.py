"""Train several run configs at once on one accelerator under a wall-clock deadline; pack each run.

Made for a lent GPU (docs/results/flagship.md, "Training on a lent GPU"): one device call, a hard
time limit, at most 8 files of 16 MiB back. Each member is an ordinary `fit` in its own process
(small 48x48 nets leave an H200 mostly idle, so several share it), writing its run directory under
--work. --deadline seconds after the first member starts, members still training are stopped; their `best`
checkpoint (chosen on the validation split, written atomically every epoch) stays valid. Then each
run directory, without `last.safetensors` (optimizer state), becomes OUT/NAME.tar, and
OUT/summary.json lists every member's status, epochs, best validation accuracy and seconds.

Give the data as an `.mpk` holding only Training and PublicTest (`mien data convert ... --usage
Training,PublicTest`): the official split then has an empty test split, so PrivateTest never leaves
the CPU machine, where `mien evaluate` scores the unpacked runs afterwards.

    PYTHONPATH=src python3 scripts/gpu_members.py configs/gpu/*.yaml --data .gpu/trainval.mpk \\
        --out "$OUT" --deadline 480 --parallel 4
    # a dry run on the CPU with tiny settings:
    .venv/bin/python scripts/gpu_members.py configs/gpu/*.yaml --data /tmp/trainval.mpk --out /tmp/gpu-out \\
        --deadline 300 --parallel 2 --set train.epochs=1 --set data.train_limit=500 --set train.device=cpu
"""

from __future__ import annotations

import argparse
import json
import multiprocessing as mp
import sys
import tarfile
import time
from pathlib import Path

MAX_FILES = 8  # the device tool returns at most 8 files...
MAX_FILE_BYTES = 16 * 2**20  # ...of at most 16 MiB each...
MAX_TOTAL_BYTES = 64 * 2**20  # ...and 64 MiB together
SKIPPED_FILES = {"last.safetensors"}


def _train(config: str, overrides: list[str], run_dir: str, log_path: str) -> None:
    """Child process: one `fit`, its output and any traceback in `log_path`."""
    import traceback

    with open(log_path, "a", buffering=1) as log:
        sys.stdout = sys.stderr = log
        try:
            from mien.config import load_config
            from mien.train import fit

            fit(load_config(config, overrides), run_dir, progress=False)
        except BaseException:
            traceback.print_exc()
            raise SystemExit(1) from None
        finally:
            sys.stdout, sys.stderr = sys.__stdout__, sys.__stderr__


def _epochs_done(run_dir: Path) -> int:
    metrics = run_dir / "metrics.csv"
    return max(0, len(metrics.read_text().splitlines()) - 1) if metrics.is_file() else 0


def _best(run_dir: Path) -> dict:
    path = run_dir / "best.json"
    if not path.is_file():
        return {}
    meta = json.loads(path.read_text())
    return {"best_epoch": meta.get("epoch"), "metrics": meta.get("metrics")}


def _pack(run_dir: Path, out: Path) -> list[Path]:
    """Tar `run_dir` (less its optimizer state) into `out`, split into 16 MiB parts if bigger.

    Parts are `out.part0`, `out.part1`, ...: `cat NAME.tar.part* > NAME.tar` joins them.
    """
    with tarfile.open(out, "w") as tar:
        for path in sorted(run_dir.iterdir()):
            if path.is_file() and path.name not in SKIPPED_FILES:
                tar.add(path, arcname=f"{run_dir.name}/{path.name}")
    if out.stat().st_size <= MAX_FILE_BYTES:
        return [out]
    data, parts = out.read_bytes(), []
    for k, offset in enumerate(range(0, len(data), MAX_FILE_BYTES)):
        parts.append(out.with_name(f"{out.name}.part{k}"))
        parts[-1].write_bytes(data[offset:offset + MAX_FILE_BYTES])
    out.unlink()
    return parts


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("configs", nargs="+", type=Path, help="run configs; each file's stem names its member")
    parser.add_argument("--data", required=True, help="FER2013 source for every member (an .mpk, npz, csv...)")
    parser.add_argument("--out", type=Path, required=True, help="where NAME.tar and summary.json go")
    parser.add_argument("--work", type=Path, default=Path("/tmp/mien-members"), help="run directories")
    parser.add_argument("--deadline", type=float, required=True, help="seconds after the first member starts to stop training")
    parser.add_argument("--parallel", type=int, default=4, help="members training at once")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE", dest="overrides",
                        help="section.key=value applied to every member (repeatable)")
    args = parser.parse_args()
    if len(args.configs) > MAX_FILES - 1:
        raise SystemExit(f"at most {MAX_FILES - 1} members fit the {MAX_FILES} files that come back "
                         f"(one is summary.json), got {len(args.configs)}")
    names = [c.stem for c in args.configs]
    if len(set(names)) != len(names):
        raise SystemExit(f"members need distinct file stems, got {names}")
    if args.parallel < 1:
        raise SystemExit(f"--parallel must be >= 1, got {args.parallel}")

    from mien.config import load_config
    from mien.errors import MienError
    from mien.models import create_model

    args.work.mkdir(parents=True, exist_ok=True)
    args.out.mkdir(parents=True, exist_ok=True)
    if not Path(args.data).is_file():
        raise SystemExit(f"--data {args.data} is not a file")
    overrides = [f"data.source={Path(args.data).resolve()}", *args.overrides]
    for config in args.configs:  # a bad config or model fails here, before any member starts
        try:
            cfg = load_config(config, overrides)
            create_model(cfg.model.name, num_classes=len(cfg.data.classes), **cfg.model.kwargs)
        except MienError as exc:
            raise SystemExit(f"{config}: {exc}") from None
    print(f"{len(names)} members, {args.parallel} at a time, deadline {args.deadline:.0f}s", flush=True)
    start = time.monotonic()  # the deadline counts from here, once every member's config has passed

    ctx = mp.get_context("spawn")  # CUDA cannot be used in forked children
    waiting = list(zip(names, args.configs))
    running: dict[str, tuple[mp.Process, float]] = {}
    status: dict[str, dict] = {}
    while waiting or running:
        for name, (proc, began) in list(running.items()):
            if not proc.is_alive():
                proc.join()
                status[name] = {"status": "finished" if proc.exitcode == 0 else f"failed (exit {proc.exitcode})",
                                "seconds": round(time.monotonic() - began, 1)}
                del running[name]
        past_deadline = time.monotonic() - start >= args.deadline
        while waiting and len(running) < args.parallel and not past_deadline:
            name, config = waiting.pop(0)
            run_dir = args.work / name
            proc = ctx.Process(target=_train, args=(str(config), overrides, str(run_dir), str(args.work / f"{name}.log")))
            proc.start()
            running[name] = (proc, time.monotonic())
            print(f"[{time.monotonic() - start:6.0f}s] started {name}", flush=True)
        if past_deadline:
            for name, (proc, began) in running.items():
                proc.terminate()
                proc.join()
                status[name] = {"status": "stopped at the deadline", "seconds": round(time.monotonic() - began, 1)}
            running.clear()
            for name, _ in waiting:
                status[name] = {"status": "not started (deadline)", "seconds": 0.0}
            waiting.clear()
        time.sleep(0.5)

    summary = []
    for name in names:
        run_dir = args.work / name
        row = {"name": name, **status[name], "epochs_done": _epochs_done(run_dir), **_best(run_dir)}
        log = args.work / f"{name}.log"
        if run_dir.is_dir():
            if log.is_file():
                (run_dir / "train.log").write_bytes(log.read_bytes())
            files = _pack(run_dir, args.out / f"{name}.tar")
            row["files"] = [f.name for f in files]
            row["tar_bytes"] = sum(f.stat().st_size for f in files)
        elif log.is_file():
            row["log_tail"] = log.read_text()[-2000:]
        summary.append(row)
        print(json.dumps(row), flush=True)
    (args.out / "summary.json").write_text(json.dumps(summary, indent=2))
    files = [f for f in args.out.iterdir() if f.is_file()]
    total = sum(f.stat().st_size for f in files)
    if len(files) > MAX_FILES or total > MAX_TOTAL_BYTES:
        print(f"warning: {len(files)} files, {total} bytes in {args.out}: the device tool returns at most "
              f"{MAX_FILES} files and {MAX_TOTAL_BYTES} bytes", flush=True)
    print(f"done in {time.monotonic() - start:.0f}s")
    return 0 if all(r["status"] != "not started (deadline)" and not r["status"].startswith("failed")
                    for r in summary) else 1


if __name__ == "__main__":
    raise SystemExit(main())
