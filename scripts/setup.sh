#!/usr/bin/env bash
# Create .venv and install mien with its test tools. torch 2.14.1 / torchvision 0.29.1 come from
# this machine kind's local disk (see pyproject.toml); mediapipe, opencv and onnxruntime from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
python3.11 -m venv .venv
.venv/bin/pip install -q -e ".[test]"
.venv/bin/mien --version
