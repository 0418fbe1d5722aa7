"""Knowledge distillation: the soft loss, loading teachers (one model or a shipped ensemble), and fit's wiring."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

from conftest import make_faces
from mien.config import RunConfig, apply_overrides
from mien.data.pipeline import DataSplits
from mien.errors import ConfigError, ModelError
from mien.train import fit
from mien.train.distill import distill_loss, load_teacher
from mien.weights import resolve_model_source
from mien.weights.ensemble import ensemble_probs, read_ensemble

TINY = ["model.name=resnet_small", "model.kwargs.widths=[8,8,16,16]", "model.kwargs.blocks=[1,1,1,1]",
        "train.batch_size=32", "train.eval_batch_size=64", "train.epochs=1"]


def tiny_splits(seed: int = 0) -> DataSplits:
    faces = make_faces(200, seed=seed)
    return DataSplits(faces.subset(faces.usage == 0), faces.subset(faces.usage == 1), faces.subset(faces.usage == 2))


def run(tmp_path, name, *overrides, splits=None, log=lambda *_: None):
    cfg = apply_overrides(RunConfig(), [*TINY, *overrides])
    return fit(cfg, tmp_path / name, splits=splits or tiny_splits(), progress=False, log=log)


def test_soft_loss_is_zero_only_when_the_student_agrees_and_pulls_it_towards_the_teacher():
    teacher = torch.log_softmax(torch.tensor([[2.0, 0.0, -1.0], [0.0, 1.0, 0.5]]), dim=1)
    assert distill_loss(teacher + 7.0, teacher, temperature=3.0).item() == pytest.approx(0.0, abs=1e-6)
    student = torch.zeros(2, 3, requires_grad=True)
    loss = distill_loss(student, teacher, temperature=2.0)
    assert loss.item() > 0
    loss.backward()
    # a gradient step raises the student's logit where the teacher is most confident
    assert (student.grad.argmin(1) == teacher.argmax(1)).all()
    # T^2 scaling: at a high temperature the soft term does not vanish
    far = torch.tensor([[5.0, -5.0, 0.0]])
    assert distill_loss(far, teacher[:1], temperature=8.0).item() > 0.1


@pytest.mark.parametrize("override, fragment", [("distill.alpha=0", "distill.alpha"),
                                                ("distill.alpha=1.5", "distill.alpha"),
                                                ("distill.temperature=0", "distill.temperature"),
                                                ("distill.teacher=default++deep_cnn", "empty part")])
def test_bad_settings_are_named(override, fragment):
    with pytest.raises(ConfigError, match=fragment):
        apply_overrides(RunConfig(), [override])


def test_shipped_ensemble_teacher_matches_the_ensembles_own_probabilities():
    faces = make_faces(12, seed=3)
    manifest = resolve_model_source("ensemble", allow_ensemble=True)
    ensemble = read_ensemble(manifest)
    teacher = load_teacher("ensemble", class_names=ensemble.class_names, device=torch.device("cpu"))
    assert len(teacher.members) == len(ensemble.members)
    x = torch.from_numpy(faces.images).unsqueeze(1).float() / 255.0
    ours = teacher.log_probs(x).exp().numpy()
    np.testing.assert_allclose(ours, ensemble_probs(ensemble, faces.images, tta="none"), atol=1e-4)
    assert all(not p.requires_grad for model, _ in teacher.members for p in model.parameters())


def test_members_joined_by_plus_make_the_same_teacher_as_the_ensemble_that_ships_them():
    faces = make_faces(12, seed=5)
    ensemble = read_ensemble(resolve_model_source("ensemble", allow_ensemble=True))
    names = "+".join(path.name.removesuffix(".safetensors") for path in ensemble.members)
    assert "+" in names  # the shipped ensemble has several members
    joined = load_teacher(names, class_names=ensemble.class_names, device=torch.device("cpu"))
    shipped = load_teacher("ensemble", class_names=ensemble.class_names, device=torch.device("cpu"))
    assert joined.source.count(" + ") == len(ensemble.members) - 1
    x = torch.from_numpy(faces.images).unsqueeze(1).float() / 255.0
    torch.testing.assert_close(joined.log_probs(x), shipped.log_probs(x))
    # an ensemble inside a "+" list contributes its members
    both = load_teacher(f"ensemble + {names}", class_names=ensemble.class_names, device=torch.device("cpu"))
    assert len(both.members) == 2 * len(ensemble.members)
    with pytest.raises(ModelError, match="no_such_model"):
        load_teacher(f"{names}+no_such_model", class_names=ensemble.class_names, device=torch.device("cpu"))
    with pytest.raises(ConfigError, match="empty part"):
        load_teacher(f"{names}+ ", class_names=ensemble.class_names, device=torch.device("cpu"))


def test_a_bf16_teacher_runs_folded_bf16_copies_that_agree_with_the_fp32_teacher():
    faces = make_faces(16, seed=4)
    x = torch.from_numpy(faces.images).unsqueeze(1).float() / 255.0
    classes = RunConfig().data.classes
    fp32 = load_teacher("default", class_names=classes, device=torch.device("cpu"))
    bf16 = load_teacher("default", class_names=classes, device=torch.device("cpu"), precision="bf16")
    (net, _), = bf16.members
    assert {p.dtype for p in net.parameters()} == {torch.bfloat16}
    assert not any(isinstance(m, torch.nn.BatchNorm2d) for m in net.modules())  # folded
    ours = bf16.log_probs(x)
    assert ours.dtype == torch.float32
    np.testing.assert_allclose(ours.exp().numpy(), fp32.log_probs(x).exp().numpy(), atol=0.05)


def test_teacher_must_exist_and_predict_the_students_classes(tmp_path):
    with pytest.raises(ModelError, match="no_such_teacher"):
        load_teacher("no_such_teacher", class_names=("angry", "happy"), device=torch.device("cpu"))
    with pytest.raises(ConfigError, match="same classes"):
        load_teacher("default", class_names=("angry", "happy"), device=torch.device("cpu"))


def test_with_alpha_one_the_labels_no_longer_matter(tmp_path):
    teacher = run(tmp_path, "teacher").run_dir
    lines: list[str] = []
    a = run(tmp_path, "a", f"distill.teacher={teacher}", "distill.alpha=1", log=lines.append)
    assert any("distilling from" in line for line in lines)
    splits = tiny_splits()
    rng = np.random.default_rng(1)
    relabelled = dataclasses.replace(splits.train, labels=rng.permutation(splits.train.labels))
    shuffled = DataSplits(relabelled, splits.val, splits.test)
    b = run(tmp_path, "b", f"distill.teacher={teacher}", "distill.alpha=1", splits=shuffled)
    for k, v in a.model.state_dict().items():
        torch.testing.assert_close(b.model.state_dict()[k], v)
    # with part of the loss on the labels, the same relabelling changes what is learnt
    c = run(tmp_path, "c", f"distill.teacher={teacher}", "distill.alpha=0.5")
    d = run(tmp_path, "d", f"distill.teacher={teacher}", "distill.alpha=0.5", splits=shuffled)
    assert any(not torch.equal(c.model.state_dict()[k], v) for k, v in d.model.state_dict().items())
    # and the soft term is really in the loss: a plain run of the same seed ends elsewhere
    plain = run(tmp_path, "plain")
    assert any(not torch.equal(a.model.state_dict()[k], v) for k, v in plain.model.state_dict().items())
