"""Wall-clock timing that a shared machine and an asynchronous GPU cannot fool: contestants take turns, and
the device is synchronised around each call. Used by the benchmark and by the papers whose claims are times."""
from __future__ import annotations

import statistics
import time

import torch


def sync(device: torch.device) -> None:
    """Wait for the device's queued work (a no-op on the CPU)."""
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize(device)


def median_times(runs: dict, repeats: int, device: torch.device) -> dict[str, float]:
    """Median wall seconds of each `runs[name]()`, after one warm-up call of each. The runs take turns, one of
    each per repeat, so that a drift of this machine's speed (a shared host) touches every contestant alike."""
    for run in runs.values():
        run()
    times = {name: [] for name in runs}
    for _ in range(repeats):
        for name, run in runs.items():
            sync(device)
            start = time.perf_counter()
            run()
            sync(device)
            times[name].append(time.perf_counter() - start)
    return {name: statistics.median(t) for name, t in times.items()}


def median_time(run, repeats: int, device: torch.device) -> float:
    """Median wall seconds of `run()` over `repeats`, after one warm-up call."""
    return median_times({"run": run}, repeats, device)["run"]
