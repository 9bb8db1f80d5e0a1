"""The digit-pairs paper's contribution to `python -m lastlayer bench`: many small models trained as one group."""
from __future__ import annotations

import torch

from lastlayer.book.bench import median_time
from lastlayer.papers.digit_pairs.experiments import train_rounds


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
        for grouped in (False, True):
            last = {}

            def run():
                last["result"] = train_rounds(kind, rounds=rounds, n=n, epochs=epochs, device=str(device),
                                              grouped=grouped, **model_kwargs)

            name = "grouped" if grouped else "sequential"
            row[f"{name}_s_per_epoch"] = median_time(run, repeats, device) / epochs
            row[f"{name}_train_s_per_epoch"] = sum(sum(h["seconds"]) for h in last["result"].histories) / epochs
        row["speedup"] = row["sequential_s_per_epoch"] / row["grouped_s_per_epoch"]
        row["train_speedup"] = row["sequential_train_s_per_epoch"] / row["grouped_train_s_per_epoch"]
        out.append(row)
    return out


