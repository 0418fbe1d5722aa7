"""Training engine: free functions `train_one_epoch`, `evaluate`, `fit`."""

from .fit import FitResult, fit
from .loop import EpochStats, EvalResult, InputSpec, evaluate, predict_probs, train_one_epoch

__all__ = ["EpochStats", "EvalResult", "FitResult", "InputSpec", "evaluate", "fit", "predict_probs",
           "train_one_epoch"]
