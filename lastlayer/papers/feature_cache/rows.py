"""The per-run measurements of the feature_cache chapter, one frozen dataclass per kind of run.

`run` returns them in one list; `claims.decide` reads them by attribute, and the notebook stores them with the
report (`dataclasses.asdict`), so every verdict can be recomputed from the results file. Every row names its
`experiment`, so that the kinds stay apart there too. Accuracies are fractions.
"""
from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class TrainerRow:
    """One training run of Figure 7 ('fig7', the large batch) or Figure 8 ('fig8', the batch sweep)."""
    experiment: str          # 'fig7' or 'fig8'
    trainer: str             # 'normal', 'caching' or 'random' (the random-drop control)
    batch_size: int
    seed: int
    epochs: int
    train_acc: float         # the last epoch's model on the whole training subset
    test_acc: float          # the last epoch's
    mean_test_acc: float     # averaged over the epochs
    mean_hits: float         # images dropped per epoch, averaged over the epochs (0 for normal training)
    seconds_per_epoch: float
    seconds: float           # training seconds, evaluation excluded
    images_trained: int
    seconds_to_target: float  # training seconds until the test accuracy reached the target; NaN if never
    acc_at_random_end: float | None  # test accuracy when the random-drop run of its seed ended (with the control)


@dataclass(frozen=True)
class FeatureMapRow:
    """One model of Figure 9: a base model ('base'), the model trained on its maps ('fm'), or the second base
    model of another seed ('base2', the control of the attacks)."""
    experiment: str          # 'fig9'
    run: str                 # 'dataset:batch'
    seed: int
    model: str
    train_acc: float | None  # the feature-map model's on the training maps; not measured for base2
    test_acc: float          # the feature-map model's on the test images' maps
    test_acc_images: float | None  # the feature-map model on the clean test images themselves


@dataclass(frozen=True)
class AttackRow:
    """One model's accuracy on attacked test images (Figure 10): FGSM images made with the base model's
    gradients (the paper's protocol), or PGD through the model's own gradients."""
    experiment: str          # 'fig10'
    run: str
    seed: int
    model: str               # 'base', 'fm' or 'base2'
    attack: str              # 'fgsm' or 'pgd'
    eps: float
    acc: float


@dataclass(frozen=True)
class RawMapsRow:
    """One feature-map model trained on maps taken before the activation: did its loss become non-finite?"""
    experiment: str          # 'raw_maps'
    run: str
    seed: int
    diverged: bool


@dataclass(frozen=True)
class ThresholdRow:
    """One caching run of Figures 5-6: the cache updated after each step, with or without the per-class
    threshold."""
    experiment: str          # 'threshold'
    threshold: bool          # False: a hit whenever the most similar cached class is the true label
    batch_size: int
    seed: int
    epochs: int
    hit_shares: list[float]  # per epoch, the share of the training images that were cache hits
    test_acc: float          # the last epoch's
