#!/usr/bin/env bash
# Set up, then run the main job on the embedded default: describe the data, train the default
# model briefly on 2,000 training faces, and evaluate it on PrivateTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
run="runs/quickstart-$(date +%Y%m%d-%H%M%S)"
.venv/bin/mien data info
.venv/bin/mien train data.train_limit=2000 train.epochs=1 --out "$run"
.venv/bin/mien evaluate "$run" --split test
