"""Training on feature maps (the paper's Figures 9 and 10): a base model, the model of the same architecture
trained on its first conv layer's maps, a second base model as the control, all tested on clean, FGSM and PGD
images; every experiment cached."""
from __future__ import annotations

import copy

import torch
import torch.nn as nn
import torch.nn.functional as F

from lastlayer.data import Split
from lastlayer.papers.feature_cache.cache import layer_output
from lastlayer.papers.feature_cache.params import Params
from lastlayer.papers.feature_cache.trainers import load_subsets, make_base, train_base
from lastlayer.training.cache import cached_run
from lastlayer.training.trainer import NonFiniteLossError, TrainConfig, apply_batched, evaluate, fit, resolve_device

@torch.no_grad()
def feature_maps(model: nn.Module, x: torch.Tensor, *, layer: str = "conv1", after_activation: bool = True,
                 maps: str | int = "all", size: int | None = None, batch_size: int = 2048) -> torch.Tensor:
    """The maps of `model`'s `layer` for images x, as one-channel images (M, 1, size, size).

    after_activation: pass the maps through the model's activation (`model.act`, else ReLU): the paper's fix
        for the NaN losses it met when training on raw conv outputs, which are mostly negative.
    maps: 'all' makes every map of every image an example (M = N x channels, grouped by image);
        'mean' averages the maps of an image; an int keeps that map only.
    size: resize (bilinear) to size x size, so that the same architecture can take the maps as input.
    """
    if not (maps in ("all", "mean") or isinstance(maps, int)):
        raise ValueError(f"maps must be 'all', 'mean' or a channel index, not {maps!r}")
    act = getattr(model, "act", nn.ReLU())

    def one_batch(xb):
        m = layer_output(model, layer, xb)
        if after_activation:
            m = act(m)
        if maps == "mean":
            m = m.mean(1, keepdim=True)
        elif isinstance(maps, int):
            if not 0 <= maps < m.shape[1]:
                raise ValueError(f"layer {layer!r} has {m.shape[1]} maps; map {maps} does not exist")
            m = m[:, maps:maps + 1]
        else:
            m = m.reshape(-1, 1, *m.shape[2:])
        if size is not None and m.shape[-1] != size:
            m = F.interpolate(m, size=(size, size), mode="bilinear", align_corners=False)
        return m

    return apply_batched(one_batch, x, batch_size)


def feature_map_split(model: nn.Module, split: Split, *, scale: float | None = None, **kwargs) -> tuple[Split, float]:
    """A new dataset of `split`'s feature maps (see `feature_maps`), labels repeated per map, divided by
    `scale` (default: the largest absolute value, so values fall in [-1, 1], or [0, 1] after the
    activation). Returns (split, scale): scale the test split with the training split's scale."""
    m = feature_maps(model, split.x, **kwargs)
    if scale is None:
        scale = float(m.abs().max()) or 1.0
    repeat = len(m) // len(split)
    return Split(m / scale, split.y.repeat_interleave(repeat), split.classes), scale


def _fm_model(base, train, test, fm_config, *, layer, after_activation, maps, init, map_images):
    """The model of the base model's architecture trained on its maps, and the train and test map splits."""
    size = train.x.shape[-1]
    source = train if map_images is None else train.subset(torch.arange(min(map_images, len(train))))
    kw = dict(layer=layer, after_activation=after_activation, maps=maps, size=size)
    fm_train, scale = feature_map_split(base, source, **kw)
    fm_test, _ = feature_map_split(base, test, scale=scale, **kw)
    model = copy.deepcopy(base) if init == "base" else make_base(train, fm_config.seed + 1)
    return fit(model, fm_train, None, fm_config).model, fm_train, fm_test


def feature_map_experiment(train: Split, test: Split, base_config: TrainConfig, fm_config: TrainConfig, *,
                           layer: str = "conv1", after_activation: bool = True, maps: str | int = "all",
                           init: str = "base", epsilons=(0.15, 0.25), map_images: int | None = None,
                           pgd_steps: int = 10, pgd_epsilons=(0.25,), control: bool = True,
                           raw_check: bool = False) -> dict:
    """Train a base model on images, then a model of the same architecture on the base model's feature
    maps (initialised from the base model's weights, `init='base'`, as the paper's conclusion says, or
    afresh, `init='scratch'`); `map_images` limits the maps to those of the first images of `train`
    (each gives one example per map). Returns a dict of accuracies (fractions):

    base_train, base_test; fm_train, fm_test_maps (the maps of the training and test images), fm_test_images;
    per eps, FGSM on every model (images made with the base model's gradients: the paper's protocol);
    per eps of `pgd_epsilons`, PGD on base and fm (each attacked through its own gradients: the
    white-box test; PGD costs `pgd_steps` FGSM-sized passes, so it runs where the claims need it); and with
    `control`, base2_test for a second base model trained normally from another seed (its FGSM accuracy is
    the control of the paper's protocol: the same transferred images on a model that never saw a map).
    The attacks are listed under `attacks`, one dict (model, attack, eps, acc) each.
    `raw_check` also trains on maps taken before the activation and records whether the loss stayed finite.
    """
    from lastlayer.robustness.attacks import adversarial_accuracy
    if init not in ("base", "scratch"):
        raise ValueError(f"init must be 'base' or 'scratch', not {init!r}")
    dev = resolve_device(base_config.device)
    train, test = train.to(dev), test.to(dev)
    base = train_base(train, test, base_config).model
    fm_kw = dict(layer=layer, maps=maps, init=init, map_images=map_images)
    fm, fm_train, fm_test = _fm_model(base, train, test, fm_config, after_activation=after_activation, **fm_kw)
    out = {"base_train": evaluate(base, train)[1], "base_test": evaluate(base, test)[1],
           "fm_train": evaluate(fm, fm_train)[1], "fm_test_maps": evaluate(fm, fm_test)[1],
           "fm_test_images": evaluate(fm, test)[1]}
    models, attacks = {"base": base, "fm": fm}, []
    out["attacks"] = attacks
    if control:
        seed2 = base_config.seed + 1000
        base2 = train_base(train, test, TrainConfig(**{**base_config.__dict__, "seed": seed2})).model
        models["base2"] = base2
        out["base2_test"] = evaluate(base2, test)[1]
    for eps in epsilons:
        for name, model in models.items():
            attacks.append(dict(model=name, attack="fgsm", eps=eps,
                                acc=adversarial_accuracy(model, test, eps, source=base)))
            if name == "base2" or eps not in pgd_epsilons:
                continue
            gen = torch.Generator().manual_seed(base_config.seed)
            attacks.append(dict(model=name, attack="pgd", eps=eps,
                                acc=adversarial_accuracy(model, test, eps, attack="pgd", steps=pgd_steps,
                                                         generator=gen)))
    if raw_check:
        try:
            _fm_model(base, train, test, fm_config, after_activation=False, **fm_kw)
            out["raw_maps_nan"] = 0
        except NonFiniteLossError:
            out["raw_maps_nan"] = 1
    return out


def feature_map_runs(params: Params):
    """`feature_map_experiment` for every 'dataset:batch' run of `fm_runs` and every seed of `fm_seeds`, on
    `fm_n_train` training and `fgsm_n` test images (subsets drawn with `seed`). The attacks, and the control
    base model they need, run only for the first run (Figure 10's). Returns two pandas DataFrames: `fm`, one
    row per (run, seed) with the accuracies and the train - test gaps of both models, and `attacks`, one row
    per (run, seed, model, attack, eps)."""
    import pandas as pd
    p = params
    device = str(resolve_device(p.device))
    rows, attacks = [], []
    for run in p.fm_runs:
        name, bs = run.split(":")
        train, test = load_subsets(name, p.fm_n_train, p.fgsm_n, p.seed, device=device)
        attacked = run == p.fm_runs[0]
        for s in p.fm_seeds:
            cfg = dict(batch_size=int(bs), lr=p.fm_lr, optimizer=p.optimizer, momentum=p.momentum, seed=s,
                       device=device)
            out = cached_run(feature_map_experiment, train, test, TrainConfig(epochs=p.base_epochs, **cfg),
                             TrainConfig(epochs=p.fm_epochs, **cfg), epsilons=tuple(p.epsilons) if attacked else (),
                             control=p.fm_control and attacked, layer=p.layer,
                             after_activation=p.fm_after_activation, maps=p.fm_maps, init=p.fm_init,
                             map_images=p.fm_map_images, pgd_steps=p.pgd_steps, pgd_epsilons=tuple(p.pgd_epsilons),
                             raw_check=p.nan_check)
            attacks += [dict(run=run, seed=s, **a) for a in out.pop("attacks")]
            rows.append(dict(run=run, seed=s, **out))
    fm = pd.DataFrame(rows)
    fm["base_gap"] = fm.base_train - fm.base_test
    fm["fm_gap"] = fm.fm_train - fm.fm_test_maps
    return fm, pd.DataFrame(attacks, columns=["run", "seed", "model", "attack", "eps", "acc"])
