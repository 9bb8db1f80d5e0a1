"""A tiny 'profile' for the run-cache tests: four cached runs that log each start and end to a file."""
import sys
import time

import torch

from lastlayer.training.cache import cached_run


def one_run(seed: int, log: str, pause: float) -> dict:
    with open(log, "a") as f:
        f.write(f"start {seed}\n")
    torch.manual_seed(seed)
    w = torch.randn(8)
    time.sleep(pause)
    with open(log, "a") as f:
        f.write(f"end {seed}\n")
    return {"seed": seed, "w": w}


if __name__ == "__main__":
    log, pause = sys.argv[1], float(sys.argv[2])
    results = [cached_run(one_run, seed, log, pause) for seed in range(4)]
    print(" ".join(f"{float(r['w'].sum()):.6f}" for r in results))
