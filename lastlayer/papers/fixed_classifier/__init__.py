"""The paper `fixed_classifier`: `run(Params(...))` trains the study, `claims.decide(runs.rows, params)` decides."""
from .experiments import CorruptionRow, Params, Row, Runs, run

__all__ = ["CorruptionRow", "Params", "Row", "Runs", "run"]
