"""Model comparison: train several models on identical splits and seeds, one table and figures.

Importing this package is cheap: torch work, scikit-learn and matplotlib load inside the functions.
"""

from ..models.registry import count_params
from .plots import plot_confusions, plot_curves, plot_scores
from .run import CompareEntry, ModelResult, compare_models, grid_configs, model_entries, score_run
from .speed import count_macs, measure_speed
from .table import table_rows, write_table

__all__ = ["CompareEntry", "ModelResult", "compare_models", "count_macs", "count_params", "grid_configs",
           "measure_speed", "model_entries", "plot_confusions", "plot_curves", "plot_scores", "score_run",
           "table_rows", "write_table"]
