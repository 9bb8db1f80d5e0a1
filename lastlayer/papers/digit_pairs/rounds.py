"""The EE-559 digit-pair task and its unit of work: a model kind trained for several rounds.

The task: is the first 14x14 MNIST digit less than or equal to the second? A faithful port of the course's
`generate_pair_sets(nb)`: MNIST train and test kept apart, images average-pooled by 2 (28x28 -> 14x14), a
random permutation of each split whose first 2N images are grouped into N pairs (no image used twice), raw
0-255 values. Labels are stored as one (N, 3) tensor: column 0 the target (1 when digit 1 <= digit 2),
columns 1-2 the two digit classes.
"""
from __future__ import annotations

from dataclasses import dataclass, replace

import numpy as np
import torch
import torch.nn.functional as F

from lastlayer.data import Split, load
from lastlayer.models import create_model


@dataclass
class PairSets:
    train: Split
    test: Split

    def normalized(self) -> "PairSets":
        """Standardised with the training mean and std, as the paper's models do."""
        stats = self.train.stats()
        return PairSets(self.train.standardize(stats), self.test.standardize(stats))


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
        tr, te = load("mnist", root=root, raw=True)
        _MNIST_CACHE[key] = (tr.x, tr.y, te.x, te.y)
    xtr, ytr, xte, yte = _MNIST_CACHE[key]
    g = torch.Generator().manual_seed(seed)
    return PairSets(to_pairs(xtr, ytr, n, g), to_pairs(xte, yte, n if n_test is None else n_test, g))


# ---------------------------------------------------------------------------------------------------
# Rounds: one call trains a model kind for several rounds, each with fresh data and fresh weights.

MODEL_KINDS = ("pair", "siamese2", "siamese10")


@dataclass(frozen=True)
class RoundRow:
    """One round of one setting: what the claims and tables read. `experiment` is 'table1', 'fig1a', 'fig1b',
    'fig1c' or 'fig1d'; `varied` names the settings a sweep changed from Table I's ('' for Table I itself,
    'batch_norm,skip' for Figure 1a). A diverged round has NaN accuracies."""
    experiment: str
    varied: str
    kind: str
    round: int
    seed: int
    n_pairs: int
    epochs: int
    batch_size: int
    lr: float
    c1: int
    c2: int
    hidden: int
    batch_norm: bool
    skip: bool
    w_aux: float
    test_acc: float
    train_acc: float
    diverged: bool


@dataclass
class RoundsResult:
    """Accuracies (one per round) and per-epoch histories of one setting; `experiment` and `varied` as in
    `RoundRow`."""
    kind: str
    settings: dict
    test_acc: list[float]
    train_acc: list[float]
    histories: list[dict]
    experiment: str = ""
    varied: str = ""

    @property
    def diverged(self) -> int:
        """Rounds whose loss became non-finite (their accuracies are NaN)."""
        return sum(a != a for a in self.test_acc)

    @property
    def mean(self) -> float:
        ok = [a for a in self.test_acc if a == a]
        return float(np.mean(ok)) if ok else float("nan")

    def rows(self) -> list[RoundRow]:
        """One row per round: model kind, settings, seed and accuracies (NaN when diverged)."""
        s = {k: v for k, v in self.settings.items() if k != "seed"}
        return [RoundRow(experiment=self.experiment, varied=self.varied, kind=self.kind, round=r,
                         seed=self.settings["seed"] + r, **s, test_acc=a, train_acc=t, diverged=a != a)
                for r, (a, t) in enumerate(zip(self.test_acc, self.train_acc))]


def build(kind: str, c1: int = 64, c2: int = 64, hidden: int = 64, batch_norm: bool = True,
          skip: bool = False, w_aux: float = 10 ** -0.5):
    """(model, objective) of a model kind: 'pair', 'siamese2' (auxiliary loss, head read-out) or
    'siamese10' (trained on the digit losses alone, read out by comparing the two predicted digits)."""
    from lastlayer.models.pairnet import pair_objective, siamese_objective
    if kind not in MODEL_KINDS:
        raise ValueError(f"unknown model kind {kind!r}; choose one of {', '.join(MODEL_KINDS)}")
    model = create_model("pairnet" if kind == "pair" else "siamese", num_classes=2, in_channels=1, c1=c1, c2=c2,
                         hidden=hidden, batch_norm=batch_norm, skip=skip)
    if kind == "pair":
        return model, pair_objective
    if kind == "siamese2":
        return model, siamese_objective(1.0, w_aux, "pair")
    return model, siamese_objective(0.0, 1.0, "digits")


def faster_grouped(kind: str, device: str | torch.device = "auto") -> bool:
    """Whether grouped training is the faster path for `kind` on `device`.

    Measured with `python -m lastlayer bench` (10 rounds, 1000 pairs): on 2 CPU cores one round after another is
    faster for every kind (grouped: pair 0.36x, siamese 0.35x), since `fit` trains each round in the NHWC layout
    that oneDNN's convolutions prefer while the grouped convolutions over G*64 channels have no such path; on a
    GPU one call for G models is the faster path (one small model leaves the card idle). `kind` is kept for
    callers: the answer may differ between kinds on other machines."""
    from lastlayer.training.trainer import resolve_device
    return resolve_device(device).type == "cuda"


def train_rounds(kind: str, *, rounds: int = 10, n_pairs: int = 1000, epochs: int = 25, batch_size: int = 100,
                 lr: float = 0.1, c1: int = 64, c2: int = 64, hidden: int = 64, batch_norm: bool = True,
                 skip: bool = False, w_aux: float = 10 ** -0.5, seed: int = 0, device: str = "auto",
                 root=None, callbacks=None, on_nonfinite: str = "raise", grouped: bool | str = "auto",
                 curves: bool = True, experiment: str = "", varied: str = "") -> RoundsResult:
    """Train `rounds` models of one kind and setting; round r draws its pairs and its weights from seed + r.

    `callbacks(r)` may return a list of callbacks for round r (e.g. gradient-norm recorders).
    `on_nonfinite='record'` turns a round whose loss became non-finite into NaN accuracies (sweeps over
    learning rates reach such rounds) instead of raising `NonFiniteLossError`.
    `curves=False` evaluates on the test pairs once, after the last epoch, instead of after every epoch:
    the same final accuracy (evaluation changes no state and draws no random numbers) for about a third
    less time; the histories then hold no test curves.
    `grouped=True` trains all rounds at once as one vectorised model (`lastlayer.papers.digit_pairs.group`),
    `False` one after another, `'auto'` whichever `faster_grouped` says. Both paths compute the same
    function with the same seeds, but grouped kernels sum in another order: after 25 epochs of SGD the
    rounding differences have grown, so a single round's accuracy can differ by a few test pairs while
    the distribution over rounds is the same (tests/papers/test_digit_pairs_group.py checks both).
    Callbacks see one ordinary model at a time, so passing `callbacks` trains the rounds one after another.
    `experiment` and `varied` only label the rows.
    """
    from lastlayer.training.trainer import NonFiniteLossError, TrainConfig, evaluate, fit, seed_everything
    if on_nonfinite not in ("raise", "record"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'record', not {on_nonfinite!r}")
    if rounds < 1:
        raise ValueError(f"rounds must be at least 1, not {rounds}")
    if grouped == "auto":
        grouped = faster_grouped(kind, device)
    settings = dict(n_pairs=n_pairs, epochs=epochs, batch_size=batch_size, lr=lr, c1=c1, c2=c2, hidden=hidden,
                    batch_norm=batch_norm, skip=skip, w_aux=w_aux, seed=seed)
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=lr, device=device)

    def setup(r: int):
        data = digit_pairs(n_pairs, seed + r, root=root).normalized()
        seed_everything(seed + r)
        return data, build(kind, c1, c2, hidden, batch_norm, skip, w_aux)

    rounds_setup = [setup(r) for r in range(rounds)] if grouped and callbacks is None else None
    if rounds_setup is not None:
        from lastlayer.papers.digit_pairs.group import fit_group, grouped_objective
        datas, models = [data for data, _ in rounds_setup], [model for _, (model, _) in rounds_setup]
        results = fit_group(models, [d.train for d in datas], [d.test for d in datas] if curves else None,
                            config, seeds=[seed + r for r in range(rounds)],
                            objective=grouped_objective(kind, w_aux), on_nonfinite=on_nonfinite)
    else:
        results, rounds_setup = [], []
        for r in range(rounds):
            data, (model, objective) = setup(r)
            rounds_setup.append((data, (model, objective)))
            try:
                results.append(fit(model, data.train, data.test if curves else None,
                                   replace(config, seed=seed + r),
                                   objective=objective, callbacks=callbacks(r) if callbacks else ()))
            except NonFiniteLossError:
                if on_nonfinite == "raise":
                    raise
                results.append(None)  # this round diverged: NaN accuracies, empty history
    nan = float("nan")
    test_acc = []
    for result, (data, (_, objective)) in zip(results, rounds_setup):
        if result is None:
            test_acc.append(nan)
        elif curves:
            test_acc.append(result.final("test_acc"))
        else:
            test_acc.append(evaluate(result.model, data.test.to(next(result.model.parameters()).device),
                                     objective)[1])
    return RoundsResult(kind, settings, test_acc,
                        [r.final("train_acc") if r is not None else nan for r in results],
                        [r.history if r is not None else {} for r in results], experiment, varied)
