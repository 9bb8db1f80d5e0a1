"""The EE-559 digit-pair task: is the first 14x14 MNIST digit less than or equal to the second?

A faithful port of the course's `generate_pair_sets(nb)`: MNIST train and test kept apart, images
average-pooled by 2 (28x28 -> 14x14), a random permutation of each split whose first 2N images are
grouped into N pairs (no image used twice), raw 0-255 values. Labels are stored as one (N, 3) tensor:
column 0 the target (1 when digit 1 <= digit 2), columns 1-2 the two digit classes.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F

from lastlayer.data import Split, load_split


@dataclass
class PairSets:
    train: Split
    test: Split

    def normalized(self) -> "PairSets":
        """Standardised with the training mean and std, as the paper's models do."""
        mean, std = self.train.x.mean(), self.train.x.std()
        return PairSets(*(Split((s.x - mean) / std, s.y, s.classes) for s in (self.train, self.test)))


def to_pairs(images: torch.Tensor, labels: torch.Tensor, n: int, generator: torch.Generator) -> Split:
    """Group the first 2n images of a random permutation into n pairs (the course's `mnist_to_pairs`)."""
    if 2 * n > len(images):
        raise ValueError(f"{n} pairs need {2 * n} images; the split has {len(images)}")
    index = torch.randperm(len(images), generator=generator)[: 2 * n].view(n, 2)
    pooled = F.avg_pool2d(images[index.flatten()], kernel_size=2)  # only the drawn images: same values
    x = pooled.view(n, 2, *pooled.shape[2:])  # pair i = images index[i, 0] and index[i, 1], as channels
    classes = labels[index]
    target = (classes[:, 0] <= classes[:, 1]).long()
    y = torch.cat((target[:, None], classes), dim=1)
    return Split(x, y, ["greater", "less or equal"])


_MNIST_CACHE: dict[str, tuple[torch.Tensor, ...]] = {}


def digit_pairs(n: int = 1000, seed: int = 0, *, root=None, n_test: int | None = None) -> PairSets:
    """N training and N test pairs drawn with `seed`; inputs are raw 0-255 floats, shape (N, 2, 14, 14)."""
    key = str(root)
    if key not in _MNIST_CACHE:  # reading and md5-checking MNIST once per process is enough
        tr, te = (load_split("mnist", t, root=root, raw=True) for t in (True, False))
        _MNIST_CACHE[key] = (tr.x, tr.y, te.x, te.y)
    xtr, ytr, xte, yte = _MNIST_CACHE[key]
    g = torch.Generator().manual_seed(seed)
    return PairSets(to_pairs(xtr, ytr, n, g), to_pairs(xte, yte, n if n_test is None else n_test, g))



# ---------------------------------------------------------------------------------------------------
# Experiments: one call trains a model kind for several rounds, each with fresh data and fresh weights.

MODEL_KINDS = ("pair", "siamese2", "siamese10")


@dataclass
class RoundsResult:
    """Accuracies (one per round) and per-epoch histories of one setting."""
    kind: str
    settings: dict
    test_acc: list[float]
    train_acc: list[float]
    histories: list[dict]

    @property
    def diverged(self) -> int:
        """Rounds whose loss became non-finite (their accuracies are NaN and left out of mean and std)."""
        return sum(a != a for a in self.test_acc)

    @property
    def mean(self) -> float:
        ok = [a for a in self.test_acc if a == a]
        return float(np.mean(ok)) if ok else float("nan")

    @property
    def std(self) -> float:
        ok = [a for a in self.test_acc if a == a]
        return float(np.std(ok, ddof=1)) if len(ok) > 1 else float("nan")


def build(kind: str, c1: int = 64, c2: int = 64, hidden: int = 64, batch_norm: bool = True,
          skip: bool = False, w_aux: float = 10 ** -0.5):
    """(model, objective) of a model kind: 'pair', 'siamese2' (auxiliary loss, head read-out) or
    'siamese10' (trained on the digit losses alone, read out by comparing the two predicted digits)."""
    from lastlayer.models.pairnet import PairNet, SiameseNet, pair_objective, siamese_objective
    if kind == "pair":
        return PairNet(c1, c2, hidden, batch_norm, skip), pair_objective
    if kind == "siamese2":
        return SiameseNet(c1, c2, hidden, batch_norm, skip), siamese_objective(1.0, w_aux, "pair")
    if kind == "siamese10":
        return SiameseNet(c1, c2, hidden, batch_norm, skip), siamese_objective(0.0, 1.0, "digits")
    raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")


def train_rounds(kind: str, *, rounds: int = 10, n: int = 1000, epochs: int = 25, batch_size: int = 100,
                 lr: float = 0.1, c1: int = 64, c2: int = 64, hidden: int = 64, batch_norm: bool = True,
                 skip: bool = False, w_aux: float = 10 ** -0.5, seed: int = 0, device: str = "auto",
                 root=None, callbacks=None, on_nonfinite: str = "raise", grouped: bool = True) -> RoundsResult:
    """Train `rounds` models of one kind and setting; round r draws its pairs and its weights from seed + r.

    `callbacks(r)` may return a list of callbacks for round r (e.g. gradient-norm recorders).
    `on_nonfinite='record'` turns a round whose loss became non-finite into NaN accuracies (sweeps over
    learning rates reach such rounds) instead of raising `NonFiniteLossError`.
    `grouped=True` trains all rounds at once as one vectorised model (`lastlayer.papers.digit_pairs.group`): the same
    numbers up to floating-point rounding, one step per batch for all rounds instead of one per round
    (what that saves depends on the device: `python -m lastlayer bench` measures it).
    Callbacks see one ordinary model at a time, so passing `callbacks` trains the rounds one after
    another, as `grouped=False` does.
    """
    from lastlayer.training.trainer import NonFiniteLossError, TrainConfig, fit, seed_everything
    if on_nonfinite not in ("raise", "record"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'record', not {on_nonfinite!r}")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    settings = dict(n=n, epochs=epochs, batch_size=batch_size, lr=lr, c1=c1, c2=c2, hidden=hidden,
                    batch_norm=batch_norm, skip=skip, w_aux=w_aux)

    def setup(r: int):
        data = digit_pairs(n, seed + r, root=root).normalized()
        seed_everything(seed + r)
        return data, build(kind, c1, c2, hidden, batch_norm, skip, w_aux)

    if grouped and callbacks is None:
        from lastlayer.papers.digit_pairs.group import fit_group, grouped_objective
        rounds_setup = [setup(r) for r in range(rounds)]
        datas, models = [data for data, _ in rounds_setup], [model for _, (model, _) in rounds_setup]
        config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, device=device)
        results = fit_group(models, [d.train for d in datas], [d.test for d in datas], config,
                            seeds=[seed + r for r in range(rounds)], objective=grouped_objective(kind, w_aux),
                            on_nonfinite=on_nonfinite)
    else:
        results = []
        for r in range(rounds):
            data, (model, objective) = setup(r)
            config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, seed=seed + r, device=device)
            try:
                results.append(fit(model, data.train, data.test, config, objective=objective,
                                   callbacks=callbacks(r) if callbacks else ()))
            except NonFiniteLossError:
                if on_nonfinite == "raise":
                    raise
                results.append(None)  # this round diverged: NaN accuracies, empty history
    nan = float("nan")
    return RoundsResult(kind, settings, [r.final("test_acc") if r is not None else nan for r in results],
                        [r.final("train_acc") if r is not None else nan for r in results],
                        [r.history if r is not None else {} for r in results])
