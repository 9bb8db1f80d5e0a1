"""The chapter `cross`: the five papers' ideas tested against each other. `run(Params(...))` runs every study and
returns the `Runs` (its `rows` are `TailRow`s, `JumpRow`s, `InitRow`s and `SkipRow`s); `claims.decide(runs.rows, params)` decides the claims.
It builds on the packages its paper.yml `uses`, and imports no other."""
from .experiments import Params, Runs, run
from .initialisers import InitRow, JumpRow
from .long_tail import TailRow
from .skipping import SkipRow

__all__ = ["InitRow", "JumpRow", "Params", "Runs", "SkipRow", "TailRow", "run"]
