"""The feature_cache paper's contribution to `python -m lastlayer bench`: what the caching trainer costs per
epoch against normal training at the same batch, and the random-drop control beside them."""
from __future__ import annotations

import statistics

import torch

from lastlayer.timing import median_times
from lastlayer.papers.feature_cache.trainers import load_subsets, train_base
from lastlayer.training.trainer import TrainConfig


def bench(device: torch.device, quick: bool) -> list[dict]:
    if quick:
        return bench_cache(device, images=1024, batch_size=256, epochs=2, repeats=1)
    return bench_cache(device, images=8000, batch_size=512, epochs=3, repeats=3)


def bench_cache(device: torch.device, images: int, batch_size: int, epochs: int, repeats: int) -> list[dict]:
    """Training seconds per epoch (evaluation excluded, the median over `repeats` runs after a warm-up) of
    normal training, of the caching trainer with the paper's after-step update and with the free 'before'
    update, and of dropping the caching run's share of images at random; MNIST images, the base model."""
    train, _ = load_subsets("mnist", images, 1, seed=0, device=str(device))
    config = TrainConfig(epochs=epochs, batch_size=batch_size, lr=0.1, momentum=0.5, device=str(device))
    trainers = {"normal": {}, "caching (after-step update)": {"trainer": "caching"},
                "caching (before-step update)": {"trainer": "caching", "update": "before"},
                "random drop": {"trainer": "random"}}
    histories = {name: [] for name in trainers}
    share = {}  # the caching run's share of dropped images, which the random drop copies

    def trainer(name: str):
        kwargs = trainers[name]

        def run():
            extra = {"shares": share["after"]} if kwargs.get("trainer") == "random" else {}
            h = train_base(train, None, config, **kwargs, **extra).history
            histories[name].append(h)
            if name.startswith("caching (after"):
                share["after"] = sum(h["cache_hits"]) / (epochs * len(train))
        return run

    # in turns, the caching run before the random drop that copies its share; the wall time includes model
    # creation, so the trainer's own clock (the histories' seconds) is what is reported
    median_times({name: trainer(name) for name in trainers}, repeats, device)
    rows = []
    for name, hs in histories.items():
        timed = hs[1:]  # after the warm-up
        rows.append({"title": "The caching trainer against normal training at the same batch (training seconds "
                              "per epoch)", "trainer": name, "images": len(train), "batch_size": batch_size,
                     "epochs": epochs, "repeats": repeats,
                     "s_per_epoch": statistics.median(sum(h["seconds"]) for h in timed) / epochs,
                     "dropped_share": statistics.median(sum(h.get("cache_hits", [0])) for h in timed)
                     / (epochs * len(train))})
    for r in rows:
        r["relative_to_normal"] = r["s_per_epoch"] / rows[0]["s_per_epoch"]
    return rows
