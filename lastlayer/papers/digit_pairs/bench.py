"""The digit-pairs paper's contribution to `python -m lastlayer bench`: many small models trained as one group."""
from __future__ import annotations

import statistics

import torch

from lastlayer.timing import median_times
from lastlayer.papers.digit_pairs.rounds import train_rounds


def bench(device: torch.device, quick: bool) -> list[dict]:
    if quick:
        return bench_group(device, ["pair"], rounds=10, n=100, epochs=1, repeats=1, c1=4, c2=4, hidden=4)
    return bench_group(device, ["pair", "siamese2"], rounds=10, n=1000, epochs=2, repeats=3)


def bench_group(device: torch.device, kinds: list[str], rounds: int, n: int, epochs: int, repeats: int,
                **model_kwargs) -> list[dict]:
    """Seconds per epoch of `train_rounds` for `rounds` models, one after another and as one group.

    Wall time per epoch includes each epoch's evaluation and the drawing of the pairs; the training
    time alone (the histories' `seconds`) is recorded too."""
    out = []
    for kind in kinds:
        row = {"title": "Many small models at once: digit-pair models, one per round, trained one after another "
                          "or as one group (seconds per epoch, each epoch's evaluation included)",
               "kind": kind, "models": rounds, "n": n, "epochs": epochs, "repeats": repeats, **model_kwargs}
        train_seconds = {"sequential": [], "grouped": []}  # the histories' training time of every call

        def path(name: str):
            def run():
                result = train_rounds(kind, rounds=rounds, n_pairs=n, epochs=epochs, device=str(device),
                                      grouped=name == "grouped", **model_kwargs)
                train_seconds[name].append(sum(sum(h["seconds"]) for h in result.histories))
            return run

        wall = median_times({name: path(name) for name in train_seconds}, repeats, device)  # in turns
        for name, seconds in train_seconds.items():
            row[f"{name}_s_per_epoch"] = wall[name] / epochs
            row[f"{name}_train_s_per_epoch"] = statistics.median(seconds[1:]) / epochs  # after the warm-up
        row["speedup"] = row["sequential_s_per_epoch"] / row["grouped_s_per_epoch"]
        row["train_speedup"] = row["sequential_train_s_per_epoch"] / row["grouped_train_s_per_epoch"]
        out.append(row)
    return out


