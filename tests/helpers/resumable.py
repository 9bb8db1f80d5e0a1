"""A cached training run for the `--max-minutes` test: run 1 of the first chunk outlasts the chunk's deadline,
so the chunk ends with the next run, whatever the kernel's start-up took."""
import os
import time


def step(i: int, lr: float) -> float:
    deadline = os.environ.get("LASTLAYER_DEADLINE")
    if i == 1 and deadline:
        time.sleep(max(0.0, float(deadline) - time.time()) + 0.5)
    return round(lr * (i + 1) ** 2, 6)
