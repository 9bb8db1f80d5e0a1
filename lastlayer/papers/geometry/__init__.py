"""The paper `geometry`: `run(Params(...))` trains every arm and returns the `Runs` (its `rows` are `Row`s);
`claims.decide(runs.rows, params)` decides the claims."""
from .experiments import GeometryRun, Params, Row, Runs, run

__all__ = ["GeometryRun", "Params", "Row", "Runs", "run"]
