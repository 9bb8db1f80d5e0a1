"""The chapter in one call: `run(Params(...))` runs every study and returns the rows its claims are decided from.

- Study 1 (`long_tail.py`): which last layer for a long tail;
- Study 2 (`initialisers.py`): does ASV help the other papers' networks;
- Study 3 (`skipping.py`): the cache against cheaper ways to skip work.
Every training run goes through the run cache; the runs defined here carry the fingerprint of the packages they
build on (`uses.fingerprint`), so a change there trains them again.
"""
from __future__ import annotations

from dataclasses import dataclass

from lastlayer.training.trainer import TrainConfig, resolve_device

from .initialisers import InitRow, JumpRow, initialiser_study
from .long_tail import TailRow, long_tail_study
from .skipping import Settings, SkipRow, skipping_study
from .uses import fingerprint


@dataclass(frozen=True)
class Params:
    """The parameters cell of notebooks/cross.ipynb, name for name (the cell holds the defaults, the profiles of
    paper.yml override them)."""
    tail_datasets: list[str]
    p: float
    data_seed: int
    test_per_class: int | None
    tail_dims: list[int]
    heads: list[str]
    cosine_scales: list[float]
    constrain_norm: float
    tail_epochs: int
    tail_batch: int
    tail_lr: float
    tail_milestones: list[int]
    tail_weight_decay: float
    tail_seeds: list[int]
    asv_networks: list[str]
    asv_lrs: list[float]
    asv_n_train: int
    asv_n_val: int
    asv_epochs: int
    asv_batch: int
    asv_draws: int
    asv_signal_batch: int
    draw_seed: int
    asv_select_seeds: list[int]
    asv_seeds: list[int]
    skip_datasets: list[str]
    skip_targets: list[float]
    skip_n_train: int
    skip_n_test: int
    skip_epochs: int
    skip_batch: int
    skip_lr: float
    skip_momentum: float
    skip_seeds: list[int]
    device: str
    cpu_threads: int | None


@dataclass
class Runs:
    """What `run` returns: the rows the claims are decided from (`TailRow`s, then `SkipRow`s), and what the figures
    need beside them."""
    rows: list
    tail_counts: dict             # {dataset: long-tailed training images per class}
    asv_curves: object            # study 2's per-layer log2 variances at initialisation (a table)
    skip_histories: dict          # {(dataset, trainer, seed): the run's history}


def run(params: Params) -> Runs:
    """Study 1, study 2, then study 3 (see the module's text)."""
    p, code = params, fingerprint()
    if len(p.skip_targets) != len(p.skip_datasets):
        raise ValueError(f"skip_targets needs one target accuracy per data set of skip_datasets "
                         f"({len(p.skip_datasets)}), got {len(p.skip_targets)}")
    config = TrainConfig(epochs=p.tail_epochs, batch_size=p.tail_batch, lr=p.tail_lr, optimizer="adam",
                         weight_decay=p.tail_weight_decay, device=p.device)
    tail, counts = long_tail_study(p.tail_datasets, p.tail_dims, p.heads, p.cosine_scales, p.tail_seeds, config,
                                   p=p.p, data_seed=p.data_seed, test_per_class=p.test_per_class,
                                   milestones=p.tail_milestones, constrain_norm=p.constrain_norm, code=code)
    if set(p.asv_select_seeds) & set(p.asv_seeds):
        raise ValueError("asv_select_seeds and asv_seeds must differ: a learning rate chosen on the runs a claim is "
                         "judged on would favour it")
    init, curves = initialiser_study(p.asv_networks, p.asv_lrs, p.asv_select_seeds, p.asv_seeds,
                                     n_train=p.asv_n_train, n_val=p.asv_n_val, epochs=p.asv_epochs,
                                     batch_size=p.asv_batch, draws=p.asv_draws, signal_batch=p.asv_signal_batch,
                                     data_seed=p.data_seed, draw_seed=p.draw_seed,
                                     device=str(resolve_device(p.device)))
    # feature_cache's cache settings: the first conv layer, a hit at or above the threshold, updated after the step
    settings = Settings(lr=p.skip_lr, optimizer="sgd", momentum=p.skip_momentum, layer="conv1", compare=">=",
                        update="after", target_acc=p.skip_targets[0], device=p.device)
    skip, histories = skipping_study(p.skip_datasets, p.skip_targets, p.skip_seeds, settings, n_train=p.skip_n_train,
                                     n_test=p.skip_n_test, batch_size=p.skip_batch, epochs=p.skip_epochs,
                                     data_seed=p.data_seed, code=code)
    return Runs([*tail, *init, *skip], counts, curves, histories)


__all__ = ["InitRow", "JumpRow", "Params", "Runs", "SkipRow", "TailRow", "run"]
