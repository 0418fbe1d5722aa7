"""Bounded load test of `mien serve` on loopback: N concurrent clients for T seconds, then it stops.

Starts `mien serve` (shipped default model unless --model) on a free 127.0.0.1 port in a child
process, waits for /healthz, warms up, then each client thread posts the same photo to
/v1/predict over its own keep-alive connection until the time is up. Prints the CPU model,
throughput, latency percentiles and the error count (any non-200 answer or failed request), and
stops the server. Nothing leaves the machine.

Run from the repository root:
    .venv/bin/python benchmarks/serve_load.py                          # 8 clients, 30 s
    .venv/bin/python benchmarks/serve_load.py --clients 4 --duration 10 --json serve_load.json
"""

from __future__ import annotations

import argparse
import datetime
import http.client
import json
import os
import socket
import subprocess
import sys
import threading
import time
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
PHOTO = REPO / "examples" / "astronaut_canvas.jpg"
HOST = "127.0.0.1"  # loopback only, by design


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--clients", type=int, default=8, help="concurrent clients (default: 8)")
    ap.add_argument("--duration", type=float, default=30.0, help="seconds of load after warm-up (default: 30)")
    ap.add_argument("--image", type=Path, default=PHOTO, help=f"photo to send (default: {PHOTO.relative_to(REPO)})")
    ap.add_argument("--model", default="default", help="model for `mien serve --model` (default: default)")
    ap.add_argument("--threads", type=int, default=None, help="`mien serve --threads` (default: every core)")
    ap.add_argument("--json", type=Path, help="also write the figures here")
    args = ap.parse_args()
    if not (1 <= args.clients <= 64 and 0 < args.duration <= 600):
        ap.error("--clients must be 1..64 and --duration 0..600 s: the test is bounded")
    data = args.image.read_bytes()

    port = _free_port()
    cmd = [sys.executable, "-m", "mien", "serve", "--host", HOST, "--port", str(port), "--model", args.model,
           "--log-level", "warning"]
    if args.threads:
        cmd += ["--threads", str(args.threads)]
    server = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE)
    try:
        _wait_healthy(server, port)
        for _ in range(3):  # warm-up: first calls build lazy state
            _post(http.client.HTTPConnection(HOST, port, timeout=60), data)
        figures = _load(port, data, clients=args.clients, duration=args.duration)
    finally:
        server.terminate()
        try:
            server.wait(timeout=15)
        except subprocess.TimeoutExpired:
            server.kill()
            server.wait()

    from mien.train.hardware import cpu_model

    report = {"date": datetime.datetime.now(datetime.timezone.utc).isoformat(timespec="seconds"),
              "cpu": cpu_model(), "cores": os.cpu_count(), "load_avg_1m_at_end": round(os.getloadavg()[0], 2),
              "image": str(args.image.name), "image_bytes": len(data), "model": args.model,
              "server_threads": args.threads or "all cores", **figures}
    print(f"CPU: {report['cpu']} ({report['cores']} cores, load average {report['load_avg_1m_at_end']} at the end)")
    print(f"{args.clients} clients x {figures['seconds']:.1f} s, {args.image.name} ({len(data):,} bytes), "
          f"model {args.model}")
    print(f"requests {figures['requests']}, errors {figures['errors']}, throughput {figures['throughput_rps']:.2f} req/s")
    print(f"latency ms: p50 {figures['p50_ms']:.1f}, p95 {figures['p95_ms']:.1f}, p99 {figures['p99_ms']:.1f}, "
          f"max {figures['max_ms']:.1f}; server-side median {figures['server_p50_ms']:.1f}")
    if args.json:
        args.json.write_text(json.dumps(report, indent=2) + "\n")
    return 0 if figures["errors"] == 0 else 1


def _load(port: int, data: bytes, *, clients: int, duration: float) -> dict[str, float | int]:
    latencies: list[list[float]] = [[] for _ in range(clients)]
    server_ms: list[list[float]] = [[] for _ in range(clients)]
    errors = [0] * clients
    start = time.perf_counter()
    deadline = start + duration

    def client(i: int) -> None:
        conn = http.client.HTTPConnection(HOST, port, timeout=60)
        while time.perf_counter() < deadline:
            t0 = time.perf_counter()
            try:
                status, body = _post(conn, data)
            except (OSError, http.client.HTTPException):
                errors[i] += 1
                conn.close()
                conn = http.client.HTTPConnection(HOST, port, timeout=60)
                continue
            latencies[i].append(time.perf_counter() - t0)
            if status != 200:
                errors[i] += 1
            else:
                server_ms[i].append(body["time_ms"])
        conn.close()

    threads = [threading.Thread(target=client, args=(i,), daemon=True) for i in range(clients)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(timeout=duration + 120)  # a request already sent at the deadline may still finish
    seconds = time.perf_counter() - start
    lat = np.array([x for xs in latencies for x in xs]) * 1000.0
    done = int(lat.size)
    pct = np.percentile(lat, [50, 95, 99]) if done else [float("nan")] * 3
    return {"clients": clients, "seconds": round(seconds, 2), "requests": done, "errors": sum(errors),
            "throughput_rps": round(done / seconds, 3), "p50_ms": round(float(pct[0]), 1),
            "p95_ms": round(float(pct[1]), 1), "p99_ms": round(float(pct[2]), 1),
            "max_ms": round(float(lat.max()), 1) if done else float("nan"),
            "server_p50_ms": round(float(np.median([x for xs in server_ms for x in xs])), 1) if done else float("nan")}


def _post(conn: http.client.HTTPConnection, data: bytes) -> tuple[int, dict]:
    conn.request("POST", "/v1/predict", body=data, headers={"Content-Type": "image/jpeg"})
    response = conn.getresponse()
    body = response.read()
    return response.status, json.loads(body) if response.status == 200 else {}


def _free_port() -> int:
    with socket.socket() as s:
        s.bind((HOST, 0))
        return s.getsockname()[1]


def _wait_healthy(server: subprocess.Popen, port: int, *, timeout: float = 180.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if server.poll() is not None:
            raise SystemExit(f"mien serve exited with {server.returncode}: {server.stderr.read().decode()[-2000:]}")  # type: ignore[union-attr]
        try:
            conn = http.client.HTTPConnection(HOST, port, timeout=1)
            conn.request("GET", "/healthz")
            if conn.getresponse().status == 200:
                return
        except OSError:
            time.sleep(0.3)
    raise SystemExit(f"mien serve did not answer /healthz within {timeout:.0f} s")


if __name__ == "__main__":
    sys.exit(main())
