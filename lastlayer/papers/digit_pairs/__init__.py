"""The paper `digit_pairs`: `run(Params)` trains every experiment, `claims.decide(rows, params)` decides."""
from .experiments import Params, Runs, run
from .gradients import GradientRow
from .rounds import RoundRow

__all__ = ["Params", "Runs", "run", "RoundRow", "GradientRow"]
