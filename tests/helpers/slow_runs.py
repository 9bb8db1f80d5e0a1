"""A tiny 'profile' for the run-cache tests: four cached runs that log each start and end to a file."""
import os
import sys
import time

import torch

from lastlayer.training.cache import cached_run


def one_run(seed: int, log: str, pause: float) -> dict:
    with open(log, "a") as f:
        f.write(f"start {seed} {os.getpid()}\n")
    torch.manual_seed(seed)
    w = torch.randn(8)
    time.sleep(pause)
    with open(log, "a") as f:
        f.write(f"end {seed}\n")
    return {"seed": seed, "w": w}


def meeting_run(seed: int, log: str) -> int:
    """Logs its start, then waits (up to a minute) until runs of two processes have started: it returns only
    when two runs are in progress at once."""
    with open(log, "a") as f:
        f.write(f"start {seed} {os.getpid()}\n")
    end = time.time() + 60
    while time.time() < end and len({line.split()[2] for line in open(log)}) < 2:
        time.sleep(0.02)
    return seed


def big_run(n: int) -> torch.Tensor:
    """A result of n float32 zeros: 4n bytes to store."""
    return torch.zeros(n)


def failing_run(seed: int) -> int:
    if seed == 2:
        raise ValueError(f"run {seed} failed")
    return seed


if __name__ == "__main__":
    log, pause = sys.argv[1], float(sys.argv[2])
    results = [cached_run(one_run, seed, log, pause) for seed in range(4)]
    print(" ".join(f"{float(r['w'].sum()):.6f}" for r in results))
