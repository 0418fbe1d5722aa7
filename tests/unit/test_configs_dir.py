"""Every shipped YAML in configs/ loads, validates and names a registered model."""

from pathlib import Path

import pytest

from mien.config import load_config
from mien.models import create_model, list_models

CONFIGS = sorted((Path(__file__).resolve().parents[2] / "configs").glob("*.yaml"))


def test_there_are_configs():
    assert CONFIGS


@pytest.mark.parametrize("path", CONFIGS, ids=lambda p: p.name)
def test_config_loads_and_builds_its_model(path):
    cfg = load_config(path)
    assert cfg.model.name in list_models()
    model = create_model(cfg.model.name, num_classes=len(cfg.data.classes), **cfg.model.kwargs)
    assert sum(p.numel() for p in model.parameters()) > 0
