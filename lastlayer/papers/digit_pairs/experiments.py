"""The report's experiments in one call: `run(Params)` trains Table I, Figure 1's sweeps and Figure 2's
gradient rounds, and returns their rows (what the claims are decided on) with what the figures draw.

Figure 1 varies one thing at a time around each model's Table I setting, and a sweep trains only the values
that differ from it: the claims and figures take that value's rounds from Table I (same seeds, hence the same
pairs in every round). Every setting of Table I and Figure 1 goes through the run cache: a rerun with the
same inputs loads it, a stopped profile resumes where it stopped, and `--workers N` trains N settings at once.
"""
from __future__ import annotations

import functools
from dataclasses import dataclass

from lastlayer.papers.digit_pairs.claims import DEAD_WITHIN
from lastlayer.papers.digit_pairs.gradients import GradientRounds, GradientRow, gradient_rounds
from lastlayer.papers.digit_pairs.rounds import MODEL_KINDS, RoundRow, RoundsResult, train_rounds
from lastlayer.training.cache import cached_runs


@dataclass(frozen=True)
class Params:
    """The parameters cell of notebooks/digit_pairs.ipynb, one field per name (the cell holds the defaults,
    the profiles of paper.yml override them)."""
    seed: int
    device: str
    n_pairs: int
    epochs: int
    batch_size: int
    rounds: int
    c1: int
    c2: int
    hidden: int
    lr_pair: float
    lr_siamese: float
    w_aux: float
    bn_skip_combos: list[list[bool]]
    bn_skip_rounds: int
    grid_lrs: list[float]
    lr_rounds: int
    aux_weights: list[float]
    aux_rounds: int
    size_values: list[int]
    hidden_values: list[int]
    size_rounds: int
    grad_batches: int
    grad_rounds: int
    siamese_grad_rounds: int


@dataclass
class Runs:
    """What `run` measured: every round as a row (Table I and Figure 1: `RoundRow`; Figure 2: `GradientRow`),
    the Table I results with their per-epoch curves, and Figure 2's per-layer gradient norms by batch norm."""
    rows: list[RoundRow | GradientRow]
    table: dict[str, RoundsResult]
    grads: dict[bool, GradientRounds]
    siamese_grads: dict[tuple[str, bool], GradientRounds]


def lr_of(params: Params, kind: str) -> float:
    """A model kind's Table I learning rate."""
    return params.lr_pair if kind == "pair" else params.lr_siamese


def _setting(params: Params) -> dict:
    """The keywords of `train_rounds` that every experiment shares (Table I's sizes and auxiliary weight)."""
    return dict(n_pairs=params.n_pairs, batch_size=params.batch_size, seed=params.seed, device=params.device,
                c1=params.c1, c2=params.c2, hidden=params.hidden, w_aux=params.w_aux)


def _call(experiment: str, kind: str, rounds: int, params: Params, change: dict | None = None, *,
          curves: bool = False, **setting) -> functools.partial:
    """One setting to train: Table I's for `kind` at `lr`, with the values of `change` instead (a sweep)."""
    keywords = {**_setting(params), "lr": lr_of(params, kind), **setting, **(change or {})}
    return functools.partial(train_rounds, kind, rounds=rounds, epochs=params.epochs, on_nonfinite="record",
                             curves=curves, experiment=experiment, varied=",".join(change or {}), **keywords)


def table1(params: Params) -> list[functools.partial]:
    """Table I: each model kind at its learning rate, with per-epoch test curves."""
    return [_call("table1", k, params.rounds, params, curves=True) for k in MODEL_KINDS]


def figure1a(params: Params) -> list[functools.partial]:
    """(batch norm, skip) combinations other than Table I's (True, False), at each model's Table I rate."""
    changes = [{"batch_norm": bool(bn), "skip": bool(skip)} for bn, skip in params.bn_skip_combos
               if (bn, skip) != (True, False)]
    return [_call("fig1a", k, params.bn_skip_rounds, params, c) for k in MODEL_KINDS for c in changes]


def figure1b(params: Params) -> list[functools.partial]:
    """The learning rates of `grid_lrs` other than each model's Table I rate."""
    return [_call("fig1b", k, params.lr_rounds, params, {"lr": lr}) for k in MODEL_KINDS
            for lr in params.grid_lrs if lr != lr_of(params, k)]


def figure1c(params: Params) -> list[functools.partial]:
    """Siamese 2 with auxiliary-loss weights `aux_weights` other than Table I's `w_aux`."""
    return [_call("fig1c", "siamese2", params.aux_rounds, params, {"w_aux": w}) for w in params.aux_weights
            if w != params.w_aux]


def figure1d(params: Params) -> list[functools.partial]:
    """The pair model with c1, c2 (`size_values`) and hidden (`hidden_values`) swept one layer at a time, the
    others at Table I's."""
    sizes = {"c1": params.size_values, "c2": params.size_values, "hidden": params.hidden_values}
    return [_call("fig1d", "pair", params.size_rounds, params, {layer: v}) for layer, values in sizes.items()
            for v in values if v != getattr(params, layer)]


def figure2(params: Params) -> dict[bool, GradientRounds]:
    """The pair model at its Table I setting, with and without batch norm: per-layer gradient norms of its
    first `grad_batches` mini-batches (not cached: the recorders are the result)."""
    setting = {**_setting(params), "lr": params.lr_pair}
    return {bn: gradient_rounds("pair", batch_norm=bn, batches=params.grad_batches, rounds=params.grad_rounds,
                                within=DEAD_WITHIN, **setting) for bn in (True, False)}


SIAMESE_KINDS = ("siamese2", "siamese10")


def figure2_siamese(params: Params) -> dict[tuple[str, bool], GradientRounds]:
    """The report's 'the effect was the same also for the siamese network': Figure 2's rounds for both siamese
    models at their Table I setting (learning rate `lr_siamese`; the report names neither model nor rate for this
    remark), with and without batch norm. Round r uses seed + r, as the pair model's rounds do."""
    if params.siamese_grad_rounds == 0:
        return {}
    setting = {**_setting(params), "lr": params.lr_siamese}
    return {(kind, bn): gradient_rounds(kind, batch_norm=bn, batches=params.grad_batches,
                                        rounds=params.siamese_grad_rounds, within=DEAD_WITHIN, **setting)
            for kind in SIAMESE_KINDS for bn in (True, False)}


def run(params: Params) -> Runs:
    """Every experiment of the chapter, in the notebook's order: Table I, Figure 1a-d, Figure 2 (pair model,
    then the siamese ones)."""
    table_calls = table1(params)
    results = cached_runs(table_calls + figure1a(params) + figure1b(params) + figure1c(params) + figure1d(params))
    grads, siamese = figure2(params), figure2_siamese(params)
    rows = ([row for result in results for row in result.rows()] + [row for g in grads.values() for row in g.rows()]
            + [row for g in siamese.values() for row in g.rows("fig2-siamese")])
    return Runs(rows, dict(zip(MODEL_KINDS, results[:len(table_calls)])), grads, siamese)
