#!/usr/bin/env bash
# Set up, then run the main job: recognise the expression on the shipped example photo with the
# shipped default model; then, where the FER2013 npz is at hand, describe it, train briefly on
# 2,000 training faces and evaluate on PrivateTest.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/setup.sh
.venv/bin/mien predict examples/astronaut.jpg --no-progress
if ! .venv/bin/mien data info; then
    echo "no FER2013 data found (set MIEN_DATA); skipping the training demo"
    exit 0
fi
run="runs/quickstart-$(date +%Y%m%d-%H%M%S)"
.venv/bin/mien train data.train_limit=2000 train.epochs=1 --out "$run"
.venv/bin/mien evaluate "$run" --split test
