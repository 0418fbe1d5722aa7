"""Learning-rate schedules at the edges: a long one-cycle warm-up over very few steps."""

from __future__ import annotations

import pytest
import torch

from mien.config import ScheduleConfig
from mien.errors import ConfigError
from mien.train.optim import build_scheduler


def optimizer() -> torch.optim.Optimizer:
    return torch.optim.SGD([torch.nn.Parameter(torch.zeros(1))], lr=0.1, momentum=0.9)


@pytest.mark.parametrize("warmup_epochs", [0.0, 1.0, 5.0])
@pytest.mark.parametrize("steps", [3, 4, 7])
def test_onecycle_runs_over_a_handful_of_steps_whatever_the_warmup(steps, warmup_epochs):
    opt = optimizer()
    scheduler, per_step = build_scheduler(ScheduleConfig(name="onecycle", warmup_epochs=warmup_epochs), opt,
                                          epochs=1, steps_per_epoch=steps, mode="max")
    assert per_step
    lrs = []  # the rate each of the run's optimizer steps uses
    for _ in range(steps):
        lrs.append(opt.param_groups[0]["lr"])
        opt.step()
        scheduler.step()
    # It warms up to the configured peak and anneals far below it by the last step.
    assert max(lrs) == pytest.approx(0.1) and lrs[0] < 0.1
    assert lrs[-1] < 0.001


def test_onecycle_over_too_few_steps_is_a_config_error():
    with pytest.raises(ConfigError, match="at least 3 optimizer steps.*give 2"):
        build_scheduler(ScheduleConfig(name="onecycle", warmup_epochs=5.0), optimizer(), epochs=1, steps_per_epoch=2,
                        mode="max")


def test_onecycle_warmup_within_bounds_is_unchanged():
    # A normal run keeps exactly its configured warm-up fraction (resumed runs depend on it).
    scheduler, _ = build_scheduler(ScheduleConfig(name="onecycle", warmup_epochs=2.0), optimizer(), epochs=30,
                                   steps_per_epoch=100, mode="max")
    assert scheduler.total_steps == 3000
    assert scheduler._schedule_phases[0]["end_step"] == pytest.approx(200 / 3000 * 3000 - 1)
