"""`mien serve`: a thin adapter that builds the Recognizer and `mien.serve.create_app`, then runs uvicorn."""

from __future__ import annotations

import argparse
import ipaddress
import socket
import sys
from pathlib import Path

from ..tta import TTA_MODES
from . import add_retain_memory_flag, apply_retain_memory, example_epilog


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    p = subparsers.add_parser(
        "serve",
        help="run the web service (HTTP API and a page at /)",
        description=(
            "Serve expression recognition over HTTP (FastAPI + uvicorn):\n"
            "  POST /v1/predict        one image (multipart field 'file', or raw bytes) -> faces as JSON\n"
            "  POST /v1/predict/batch  several images (multipart, one 'files' field each)\n"
            "  GET  /v1/models, GET /healthz, API docs at /docs, and a page at / (upload, drag-and-drop, webcam).\n"
            "The model is loaded once at start. Listens on 127.0.0.1 only unless --host says otherwise;\n"
            "uploads are kept in memory and never stored unless --save-uploads DIR is given."
        ),
        formatter_class=argparse.RawDescriptionHelpFormatter,
        epilog=example_epilog(
            "mien serve                                   # then open http://127.0.0.1:8000/",
            "curl -F file=@photo.jpg http://127.0.0.1:8000/v1/predict",
            "mien serve --port 9000 --model runs/resnet --backend onnx --threads 2",
            "mien serve --host 0.0.0.0 --save-uploads uploads/   # reachable from the network; keeps images",
        ),
    )
    p.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1, this machine only)")
    p.add_argument("--port", type=int, default=8000, help="TCP port (default: 8000)")
    p.add_argument("--model", default="default",
                   help="shipped model name, run directory, checkpoint or exported .onnx file (default: default)")
    p.add_argument("--backend", choices=("torch", "onnx"), default="torch")
    p.add_argument("--detector", choices=("mediapipe", "haar", "none"), default="mediapipe",
                   help="face detector; 'none' treats each image as one aligned face (default: mediapipe)")
    p.add_argument("--tta", choices=TTA_MODES, default="none",
                   help="test-time augmentation: flip averages 2 views, tencrop 10 (default: none)")
    p.add_argument("--threads", type=int, metavar="N", help="CPU threads for the model (default: every core)")
    p.add_argument("--precision", choices=("fp32", "bf16", "auto"), default="fp32",
                   help="torch backend arithmetic (as for mien predict); auto = bf16 where the CPU has AMX")
    p.add_argument("--save-uploads", type=Path, metavar="DIR",
                   help="store each accepted image in DIR under a generated name (default: store nothing)")
    p.add_argument("--max-upload-mb", type=float, default=10.0, metavar="MB",
                   help="largest request body in MiB; larger ones get 413 (default: 10)")
    p.add_argument("--max-pixels", type=int, default=12_000_000, metavar="N",
                   help="downscale larger images before detection (default: 12000000)")
    p.add_argument("--max-batch", type=int, default=16, metavar="N", help="most images per batch request (default: 16)")
    p.add_argument("--timeout", type=float, default=30.0, metavar="S", help="per-request limit in seconds; 504 above it")
    p.add_argument("--workers", type=int, default=2, metavar="N", help="threads that decode uploads (default: 2)")
    p.add_argument("--log-level", choices=("critical", "error", "warning", "info", "debug"), default="info")
    add_retain_memory_flag(p)
    p.set_defaults(handler=run)


def run(args: argparse.Namespace) -> int:
    import uvicorn

    from ..errors import ConfigError
    from ..infer import Recognizer
    from ..serve import ServeSettings, create_app
    from ..serve.app import warm_up

    if not 0 <= args.port <= 65535:
        raise ConfigError(f"--port must be 0..65535, got {args.port}")
    if args.threads is not None and args.threads < 1:
        raise ConfigError(f"--threads must be >= 1, got {args.threads}")
    settings = ServeSettings(max_upload_bytes=int(args.max_upload_mb * 1024 * 1024), max_pixels=args.max_pixels,
                             max_decode_pixels=max(64_000_000, args.max_pixels), max_batch_files=args.max_batch,
                             timeout_s=args.timeout, workers=args.workers, save_uploads=args.save_uploads)
    if args.threads and args.backend == "torch":
        import torch

        torch.set_num_threads(args.threads)  # process-wide, which the CLI owns
    apply_retain_memory(args)
    if not _is_loopback(args.host):
        print(f"mien: warning: listening on {args.host}: anyone who can reach this machine can send images "
              "(there is no authentication)", file=sys.stderr)
    sock = _listen(args.host, args.port)  # before the slow model load, so a taken port fails at once
    try:
        rec = Recognizer(args.model, backend=args.backend, detector=args.detector, tta=args.tta,
                         threads=args.threads, precision=args.precision)
        try:
            warm_up(rec)
            app = create_app(recognizer=rec, model=str(args.model), settings=settings)
            host, port = sock.getsockname()[:2]
            url = f"http://{f'[{host}]' if ':' in host else host}:{port}"
            print(f"mien: serving {args.model} at {url}/ (page) and {url}/docs (API); Ctrl+C stops",
                  file=sys.stderr)
            server = uvicorn.Server(uvicorn.Config(app, log_level=args.log_level, server_header=False))
            server.run(sockets=[sock])
        finally:
            rec.close()
    finally:
        sock.close()
    return 0


def _listen(host: str, port: int) -> socket.socket:
    """A listening TCP socket on host:port.

    Raises:
        ConfigError: the address cannot be bound (port taken, no such address, privileged port).
    """
    from ..errors import ConfigError

    try:
        family = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)[0][0]
        return socket.create_server((host, port), family=family, backlog=128)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).split(" (while")[0]
        raise ConfigError(f"cannot listen on {host}:{port} ({reason}); choose another --port or "
                          "stop the program using it") from None


def _is_loopback(host: str) -> bool:
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False
