"""The `mien` CLI as a user's shell runs it: a fresh interpreter, real file descriptors."""

from pathlib import Path


def test_predict_prints_no_native_mediapipe_logs(tmp_path):
    """MediaPipe's C++ start-up lines (absl/TFLite) must not clutter a user's terminal."""
    import subprocess
    import sys

    proc = subprocess.run([sys.executable, "-m", "mien", "predict", "examples/astronaut.jpg", "--no-progress"],
                          capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[2])
    assert proc.returncode == 0, proc.stderr
    assert '"emotion"' in proc.stdout
    assert "XNNPACK" not in proc.stderr and "W0000" not in proc.stderr and "absl" not in proc.stderr, proc.stderr


def test_a_reader_closing_the_pipe_stops_the_cli_quietly():
    """`mien models | head -0`: the write fails with EPIPE; no traceback, no 'error', the shell's 141."""
    import os
    import subprocess
    import sys

    read_end, write_end = os.pipe()
    os.close(read_end)  # nobody will ever read: the first write (the flush) gets EPIPE
    try:
        proc = subprocess.run([sys.executable, "-m", "mien", "models"], stdout=write_end, stderr=subprocess.PIPE,
                              text=True, timeout=120)
    finally:
        os.close(write_end)
    assert proc.returncode == 141, proc.stderr
    assert proc.stderr == ""
