"""Evaluation: metrics (pure), figures and the on-disk report.

Importing this package is cheap: scikit-learn and matplotlib are imported only inside the
functions that use them.
"""

from .metrics import accuracy, classification_metrics, predict
from .report import read_metrics_csv, write_report

__all__ = ["accuracy", "classification_metrics", "predict", "read_metrics_csv", "write_report"]
