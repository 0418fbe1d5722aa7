"""Every shipped training YAML under configs/ (experiments included) loads, validates and names a
registered model. Optuna search spaces (configs/**/tune/) are checked by test_tune."""

from pathlib import Path

import pytest

from mien.config import load_config
from mien.models import create_model, list_models

CONFIGS = sorted(p for p in (Path(__file__).resolve().parents[2] / "configs").rglob("*.yaml") if "tune" not in p.parts)


def test_there_are_configs():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.parent.name + "/" + p.name)
def test_config_loads_and_builds_its_model(path):
    cfg = load_config(path)
    assert cfg.model.name in list_models()
    model = create_model(cfg.model.name, num_classes=len(cfg.data.classes), **cfg.model.kwargs)
    assert sum(p.numel() for p in model.parameters()) > 0
