import pytest

from mien.config import (RunConfig, apply_overrides, config_from_dict, config_to_dict, load_config,
                         same_experiment, save_config)
from mien.errors import ConfigError


def test_defaults_are_valid_and_round_trip_through_yaml(tmp_path):
    cfg = RunConfig()
    save_config(cfg, tmp_path / "c.yaml")
    assert load_config(tmp_path / "c.yaml") == cfg
    assert config_from_dict(config_to_dict(cfg)) == cfg


def test_overrides_are_coerced_to_declared_types():
    cfg = apply_overrides(RunConfig(), ["optim.lr=5e-4", "train.epochs=3", "train.channels_last=false",
                                        "data.ratios=[0.6,0.2,0.2]", "augment.scale=0.8,1.2",
                                        "model.kwargs.widths=[16,32,64,128]", "optim.name=sgd"])
    assert cfg.optim.lr == 5e-4 and isinstance(cfg.optim.lr, float)
    assert cfg.train.epochs == 3 and cfg.train.channels_last is False
    assert cfg.data.ratios == (0.6, 0.2, 0.2)
    assert cfg.augment.scale == (0.8, 1.2)
    assert cfg.model.kwargs == {"widths": [16, 32, 64, 128]}
    assert cfg.optim.name == "sgd"


def test_yaml_file_then_overrides(tmp_path):
    path = tmp_path / "c.yaml"
    path.write_text("model:\n  name: baseline_cnn\noptim:\n  lr: 0.01\n")
    cfg = load_config(path, ["optim.lr=0.002"])
    assert cfg.model.name == "baseline_cnn" and cfg.optim.lr == 0.002
    assert cfg.train == RunConfig().train


def test_classes_are_canonicalised():
    cfg = apply_overrides(RunConfig(), ["data.classes=[Anger,fearful,happiness,sad,surprised,neutral]"])
    assert cfg.data.classes == ("angry", "fear", "happy", "sad", "surprise", "neutral")


@pytest.mark.parametrize("override, fragment", [
    ("optim.lrr=1", "optim.lrr"),
    ("optim.name=rmsprop", "optim.name must be one of"),
    ("train.epochs=zero", "train.epochs must be an integer"),
    ("train.epochs=0", "train.epochs must be >= 1"),
    ("optim.lr=-1", "optim.lr must be > 0"),
    ("data.ratios=[0.5,0.2]", "sum to 1"),
    ("augment.hflip=1.5", "augment.hflip"),
    ("data.classes=[angry,joyous]", "joyous"),
    ("train.channels_last=maybe", "true or false"),
    ("epochs=3", "must name a section"),
    ("noequals", "section.key=value"),
    ("data.fold=7", "data.fold"),
])
def test_bad_values_fail_naming_the_value(override, fragment):
    with pytest.raises(ConfigError, match=fragment.replace("[", r"\[").replace(".", r"\.")):
        apply_overrides(RunConfig(), [override])


def test_missing_or_broken_file(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_config(tmp_path / "nope.yaml")
    bad = tmp_path / "bad.yaml"
    bad.write_text("train: [1, 2\n")
    with pytest.raises(ConfigError, match="not valid YAML"):
        load_config(bad)
    listed = tmp_path / "listed.yaml"
    listed.write_text("- train\n- model\n")
    with pytest.raises(ConfigError, match="listed.yaml must be a mapping at the top level, got list"):
        load_config(listed)
    unknown = tmp_path / "unknown.yaml"
    unknown.write_text("trian:\n  epochs: 2\n")
    with pytest.raises(ConfigError, match="unknown.yaml: unknown config key trian"):
        load_config(unknown)


def test_configs_are_frozen():
    cfg = RunConfig()
    with pytest.raises(AttributeError):
        cfg.train.epochs = 5  # type: ignore[misc]


def test_same_experiment_ignores_only_where_a_run_executes():
    cfg = RunConfig()
    assert same_experiment(cfg, apply_overrides(cfg, ["train.threads=2"]))
    assert same_experiment(config_to_dict(cfg), apply_overrides(cfg, ["train.threads=1"]))
    assert same_experiment(cfg, apply_overrides(cfg, ["train.retain_memory=false"]))
    for change in ("train.epochs=3", "train.seed=1", "train.precision=fp32", "data.split=kfold"):
        assert not same_experiment(cfg, apply_overrides(cfg, [change])), change
    # a config stored before a section or field existed compares at that field's default
    stored = config_to_dict(cfg)
    del stored["distill"], stored["train"]["mixup_alpha"]
    assert same_experiment(stored, cfg)
    assert not same_experiment(stored, apply_overrides(cfg, ["train.mixup_alpha=0.2"]))


def test_a_base_file_is_laid_under_the_experiment(tmp_path):
    (tmp_path / "parent").mkdir()
    (tmp_path / "parent" / "root.yaml").write_text(
        "model:\n  name: baseline_cnn\n  kwargs:\n    widths: [8, 16, 32, 64]\noptim:\n  lr: 0.01\ntrain:\n  epochs: 9\n  seed: 1\n")
    (tmp_path / "mid.yaml").write_text("base: parent/root.yaml\ntrain:\n  seed: 2\n")
    (tmp_path / "leaf.yaml").write_text("base: mid.yaml\ntrain:\n  epochs: 4\nmodel:\n  kwargs:\n    dropout: 0.1\n")
    cfg = load_config(tmp_path / "leaf.yaml", ["optim.lr=0.02"])
    # sections merge key by key down the chain; the override still comes last
    assert cfg.model.name == "baseline_cnn"
    assert cfg.model.kwargs == {"widths": [8, 16, 32, 64], "dropout": 0.1}
    assert (cfg.train.epochs, cfg.train.seed, cfg.optim.lr) == (4, 2, 0.02)
    assert cfg.train.batch_size == RunConfig().train.batch_size


def test_bad_bases_fail_naming_the_file(tmp_path):
    (tmp_path / "a.yaml").write_text("base: b.yaml\n")
    (tmp_path / "b.yaml").write_text("base: a.yaml\n")
    with pytest.raises(ConfigError, match="cycle: .*a.yaml -> .*b.yaml -> .*a.yaml"):
        load_config(tmp_path / "a.yaml")
    (tmp_path / "orphan.yaml").write_text("base: gone.yaml\n")
    with pytest.raises(ConfigError, match=r"gone.yaml does not exist \(the base of .*orphan.yaml\)"):
        load_config(tmp_path / "orphan.yaml")
    (tmp_path / "num.yaml").write_text("base: 3\n")
    with pytest.raises(ConfigError, match="num.yaml: base must name another config file, got 3"):
        load_config(tmp_path / "num.yaml")
    (tmp_path / "child.yaml").write_text("base: ok.yaml\ntrian:\n  epochs: 2\n")
    (tmp_path / "ok.yaml").write_text("train:\n  epochs: 3\n")
    with pytest.raises(ConfigError, match="child.yaml: unknown config key trian"):
        load_config(tmp_path / "child.yaml")
