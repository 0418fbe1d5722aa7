"""`mien explain --dataset` on 200 real PrivateTest faces with the shipped default model."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from mien.explain.run import explain_dataset


@pytest.mark.data
def test_dataset_grids_on_real_private_test_faces(fer_npz, tmp_path):
    result = explain_dataset(fer_npz, split="test", model="default", limit=200, per_class=3, out_dir=tmp_path)
    assert result["faces"] == 200 and result["split"] == "PrivateTest"
    assert result["model"].endswith("default.safetensors")
    for key, name in (("class_means", "class_mean_gradcam.png"), ("confident", "confident_examples.png")):
        assert result[key] == tmp_path / name
        with Image.open(result[key]) as img:
            width, height = img.size
            pixels = np.asarray(img.convert("RGB"))
        assert width > 800 and height > 300
        assert pixels.std() > 20  # faces and heat maps were drawn, not an empty canvas
