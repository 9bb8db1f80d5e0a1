"""The paper `feature_cache`: `run(Params(...))` trains everything, `claims.decide(runs.rows, params)` decides."""
from .experiments import Params, Runs, run
from .rows import AttackRow, FeatureMapRow, RawMapsRow, ThresholdRow, TrainerRow

__all__ = ["Params", "Runs", "run", "TrainerRow", "FeatureMapRow", "AttackRow", "RawMapsRow", "ThresholdRow"]
