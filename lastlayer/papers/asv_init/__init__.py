"""The paper `asv_init`: `run(Params)` measures, `claims.decide(runs.rows, params)` decides."""
from .experiments import GridRow, Params, PooledRow, Runs, run

__all__ = ["GridRow", "Params", "PooledRow", "Runs", "run"]
