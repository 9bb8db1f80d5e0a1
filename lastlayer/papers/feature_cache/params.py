"""The one parameter type of the feature_cache chapter: the notebook's parameters cell, name for name.

No defaults here: the cell holds them, and the profiles of paper.yml override them."""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Params:
    """The parameters cell of notebooks/feature_cache.ipynb, name for name (its comments say what each is)."""
    dataset: str
    n_train: int
    n_test: int
    optimizer: str
    lr: float
    fm_lr: float
    momentum: float
    epochs: int
    cache_batch: int
    seeds: list[int]
    layer: str
    compare: str
    update: str
    target_acc: float
    random_control: bool
    threshold_seeds: list[int]
    sweep_batch_sizes: list[int]
    sweep_epochs: int
    sweep_seeds: list[int]
    fm_runs: list[str]
    fm_n_train: int
    fm_map_images: int
    base_epochs: int
    fm_epochs: int
    fm_maps: str | int
    fm_after_activation: bool
    fm_init: str
    fm_seeds: list[int]
    epsilons: list[float]
    pgd_steps: int
    pgd_epsilons: list[float]
    fm_control: bool
    fgsm_n: int
    nan_check: bool
    tsne_n: int
    tsne_iter: int
    seed: int
    device: str
    cpu_threads: int
