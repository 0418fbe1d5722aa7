"""Hyperparameter search: an Optuna study over a declared, typed search space (optuna loads lazily)."""

from .space import (PARAMS, Range, SearchSpace, StudyConfig, TrialParams, TuneConfig, apply_params, load_tune_config,
                    scale_augment)
from .study import TuneResult, open_study, report_epoch, sample_params, tune

__all__ = ["PARAMS", "Range", "SearchSpace", "StudyConfig", "TrialParams", "TuneConfig", "TuneResult", "apply_params",
           "load_tune_config", "open_study", "report_epoch", "sample_params", "scale_augment", "tune"]
