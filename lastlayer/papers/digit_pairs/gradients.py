"""Figure 2: do the gradients of the layers die within a few mini-batches without batch norm?

The report says that without batch norm "the gradients at any layer drop to 0 after two minibatches"
(dead ReLUs). We record each weight layer's gradient norm per mini-batch and read, per round, whether and
when every layer of the body (all but the head) went to exactly zero and stayed there, and what the
rounds that did not die did instead. The head is left out of "dead" on purpose: when the body's last ReLU
is dead its bias still gets a gradient, so a total norm over all layers never reaches zero.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from lastlayer.papers.digit_pairs.rounds import train_rounds
from lastlayer.training.callbacks import GradientNorms

# What a round did, in the order it is checked: its loss became non-finite; every body layer's gradient
# was exactly 0 from some mini-batch on (early: at or before `within`); it trained no better than
# `stall_acc` on its training pairs; or it trained.
OUTCOMES = ("diverged", "died", "died late", "stalled", "trains")


def body_layers(layers) -> list[str]:
    """The layers whose gradients can die: every weight layer but the head."""
    return [name for name in layers if name != "head" and not name.startswith("head.")]


def death_batch(norms: dict[str, list[float]]) -> int | None:
    """The first mini-batch (1-based) from which every body layer's gradient norm is exactly 0 up to the end
    of the record; None if the body still had a gradient at the last recorded mini-batch."""
    body = np.array([norms[k] for k in body_layers(norms)], dtype=float)
    if body.size == 0:
        raise ValueError(f"no body layers among {sorted(norms)}")
    alive = np.flatnonzero((body != 0).any(axis=0))  # mini-batches where some body layer had a gradient
    if len(alive) == 0:
        return 1
    last = int(alive[-1]) + 1  # 1-based index of the last mini-batch with a gradient
    return last + 1 if last < body.shape[1] else None


def outcome(norms: dict[str, list[float]], diverged: bool, train_acc: float, *, within: int,
            stall_acc: float) -> str:
    if diverged:
        return "diverged"
    died = death_batch(norms)
    if died is not None:
        return "died" if died <= within else "died late"
    return "stalled" if train_acc <= stall_acc else "trains"


@dataclass(frozen=True)
class GradientRow:
    """One round of Figure 2: what it did (`OUTCOMES`), from which mini-batch its body was dead (None: never),
    and the body's total gradient norm at the first and last recorded mini-batch."""
    experiment: str  # 'fig2' (the pair model) or 'fig2-siamese'
    batch_norm: bool
    round: int
    outcome: str
    died_at: int | None
    train_acc: float
    batches: int
    body_norm_first: float
    body_norm_last: float
    head_norm_last: float
    kind: str = "pair"


@dataclass
class GradientRounds:
    """Per-round gradient norms (layer -> list over mini-batches) of one setting, and what each round did."""
    batch_norm: bool
    norms: list[dict[str, list[float]]]
    train_acc: list[float]
    diverged: list[bool]
    within: int
    stall_acc: float
    kind: str = "pair"

    @property
    def outcomes(self) -> list[str]:
        return [outcome(n, d, a, within=self.within, stall_acc=self.stall_acc)
                for n, d, a in zip(self.norms, self.diverged, self.train_acc)]

    def rows(self, experiment: str = "fig2") -> list[GradientRow]:
        """One row per round: outcome, mini-batch of death, training accuracy, first and last norms."""
        out = []
        for r, (norms, o) in enumerate(zip(self.norms, self.outcomes)):
            body = body_layers(norms)
            seen = len(norms[body[0]]) if body else 0  # a round that diverged at once recorded nothing
            total = lambda i: math.sqrt(sum(norms[k][i] ** 2 for k in body)) if seen else float("nan")
            out.append(GradientRow(experiment=experiment, batch_norm=self.batch_norm, round=r, outcome=o,
                                   died_at=death_batch(norms) if seen else None, train_acc=self.train_acc[r],
                                   batches=seen, body_norm_first=total(0), body_norm_last=total(-1),
                                   head_norm_last=norms["head"][-1] if norms.get("head") else float("nan"),
                                   kind=self.kind))
        return out


def gradient_rounds(kind: str = "pair", *, batch_norm: bool, batches: int, rounds: int, n_pairs: int = 1000,
                    batch_size: int = 100, within: int = 5, stall_acc: float = 0.6, **kw) -> GradientRounds:
    """Train `rounds` rounds for the epochs that hold `batches` mini-batches, recording per-layer gradient
    norms of the first `batches`; diverged rounds are kept (their record stops where the loss broke).
    `kw` goes to `train_rounds` (learning rate, sizes, seed, device); the epochs follow from `batches`."""
    if "epochs" in kw:
        raise ValueError("gradient_rounds trains the epochs that hold `batches` mini-batches; pass no epochs")
    recorders: dict[int, GradientNorms] = {}

    def callbacks(r: int):
        recorders[r] = GradientNorms(max_batches=batches)
        return [recorders[r]]

    epochs = -(-batches * batch_size // n_pairs)  # enough epochs to see `batches` mini-batches
    result = train_rounds(kind, rounds=rounds, n_pairs=n_pairs, batch_size=batch_size, epochs=epochs,
                          batch_norm=batch_norm, callbacks=callbacks, on_nonfinite="record", curves=False, **kw)
    return GradientRounds(batch_norm, [recorders[r].norms for r in range(rounds)], result.train_acc,
                          [a != a for a in result.test_acc], within, stall_acc, kind)
