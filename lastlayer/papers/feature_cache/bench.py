"""The feature_cache paper's contribution to `python -m lastlayer bench`: what the caching trainer costs per
epoch against normal training at the same batch, and the random-drop control beside them."""
from __future__ import annotations

import torch

from lastlayer.book.bench import median_time
from lastlayer.papers.feature_cache.experiments import load_subsets, train_base
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
    rows, share = [], 0.0
    for name, kwargs in (("normal", {}), ("caching (after-step update)", {"trainer": "caching"}),
                         ("caching (before-step update)", {"trainer": "caching", "update": "before"}),
                         ("random drop", {"trainer": "random"})):
        last = {}

        def run():
            extra = {"shares": share} if kwargs.get("trainer") == "random" else {}
            last["h"] = train_base(train, None, config, **kwargs, **extra).history

        median_time(run, repeats, device)  # wall time includes model creation: the trainer's own clock is used
        h = last["h"]
        dropped = sum(h.get("cache_hits", [0])) / (epochs * len(train))
        if name.startswith("caching (after"):
            share = dropped
        rows.append({"title": "The caching trainer against normal training at the same batch (training seconds "
                              "per epoch)", "trainer": name, "images": len(train), "batch_size": batch_size, "epochs": epochs,
                     "repeats": repeats, "s_per_epoch": sum(h["seconds"]) / epochs, "dropped_share": dropped})
    for r in rows:
        r["relative_to_normal"] = r["s_per_epoch"] / rows[0]["s_per_epoch"]
    return rows
