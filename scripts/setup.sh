#!/usr/bin/env bash
# Create .venv and install mien with its test tools. torch 2.14.1 / torchvision 0.29.1 come from
# this machine kind's local disk (see pyproject.toml); mediapipe, opencv and onnxruntime from PyPI.
set -euo pipefail
cd "$(dirname "$0")/.."
python3.11 -m venv .venv
.venv/bin/pip install -q -e ".[test]"
# Debian's chromium for the web page's end-to-end test (Playwright drives it by path; Playwright's
# own browser download cannot work here). Only when missing, and only where apt-get can run as root.
if ! command -v chromium >/dev/null 2>&1; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
        apt-get update -qq
        DEBIAN_FRONTEND=noninteractive apt-get install -y -qq chromium >/dev/null
    else
        echo "setup: chromium is missing and apt-get cannot run here; the browser test will skip" >&2
    fi
fi
.venv/bin/mien --version
