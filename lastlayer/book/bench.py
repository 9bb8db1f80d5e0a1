"""`python -m lastlayer bench`: how fast the library trains, measured on this device, side by side.

1. The trainer (`fit`, data held as tensors on the device and batched by indexing) against the canonical
   PyTorch loop (the PyTorch MNIST example: torchvision's `datasets.MNIST` with `ToTensor`/`Normalize`
   through a `DataLoader`), same model, optimiser and batch size: images per second and their ratio.
2. The trainer against the compute floor: forward, backward and step of the same model on batches
   prepared beforehand, with no data handling and no bookkeeping.
3. Ten digit-pair models trained as one group (`lastlayer.papers.digit_pairs.group`) against one after another
   (`train_rounds(grouped=False)`): seconds per epoch and the speedup.
4. The wall time of each notebook's last run, from `book/results/<id>.json`.

Every timing is the median of repeats after a warm-up run. The result goes to `book/results/bench.json`
(rendered into the book by `markdown_table`).
"""
from __future__ import annotations

import gzip
import importlib
import os
import platform
import shutil
import statistics
import sys
import tempfile
import time
from datetime import datetime, timezone
from pathlib import Path

import torch
import torch.nn as nn
import torch.nn.functional as F

from lastlayer import PAPERS
from lastlayer.data import DataError, Split, data_root, load_split
from lastlayer.book.report import write_json_atomic
from lastlayer.training.trainer import TrainConfig, device_name, fit, resolve_device

# The PyTorch MNIST example's normalisation, optimiser and batch size.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
BATCH_SIZE = 64
GOALS = {"speedup_cpu": 1.8, "speedup_gpu": 10.0, "floor_overhead": 1.10}


class LeNet(nn.Module):
    """LeNet-5 (28x28 inputs, max pooling, ReLU): a small CNN, so that the data pipeline, which is what
    the trainer changes, is a visible part of the time. (With a large model both loops approach the
    same compute-bound speed and the ratio tends to 1.)"""

    def __init__(self):
        super().__init__()
        self.conv1, self.conv2 = nn.Conv2d(1, 6, 5, padding=2), nn.Conv2d(6, 16, 5)
        self.fc1, self.fc2 = nn.Linear(16 * 5 * 5, 120), nn.Linear(120, 84)
        self.head = nn.Linear(84, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        x = F.max_pool2d(F.relu(self.conv1(x)), 2)
        x = F.max_pool2d(F.relu(self.conv2(x)), 2).flatten(1)
        return F.relu(self.fc2(F.relu(self.fc1(x))))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _median_time(run, repeats: int, device: torch.device) -> float:
    """Median wall seconds of `run()` over `repeats`, after one warm-up call."""
    run()
    times = []
    for _ in range(repeats):
        _sync(device)
        start = time.perf_counter()
        run()
        _sync(device)
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def _torchvision_root(tmp: Path) -> Path:
    """A writable copy of MNIST's raw files, unpacked, as torchvision's `datasets.MNIST` needs them."""
    source = data_root() / "MNIST" / "raw"
    names = ["train-images-idx3-ubyte", "train-labels-idx1-ubyte", "t10k-images-idx3-ubyte",
             "t10k-labels-idx1-ubyte"]
    missing = [n + ".gz" for n in names if not (source / (n + ".gz")).exists()]
    if missing:
        raise DataError(f"the benchmark needs MNIST: {', '.join(missing)} missing under {source}; "
                        f"set LASTLAYER_DATA to a folder holding MNIST/raw/*.gz")
    raw = tmp / "MNIST" / "raw"
    raw.mkdir(parents=True)
    for n in names:
        shutil.copy(source / (n + ".gz"), raw / (n + ".gz"))
        with gzip.open(raw / (n + ".gz"), "rb") as f, open(raw / n, "wb") as out:
            shutil.copyfileobj(f, out)
    return tmp


def bench_trainer(device: torch.device, images: int, repeats: int) -> dict:
    """Images per second of the canonical loop, of `fit` and of the compute floor, on `images` images."""
    from torch.utils.data import DataLoader
    from torchvision import datasets, transforms

    config = TrainConfig(epochs=1, batch_size=BATCH_SIZE, optimizer="adadelta", lr=1.0, device=str(device))
    torch.manual_seed(0)
    model = LeNet().to(device)
    opt = torch.optim.Adadelta(model.parameters(), lr=1.0)

    with tempfile.TemporaryDirectory() as tmp:
        transform = transforms.Compose([transforms.ToTensor(), transforms.Normalize((MNIST_MEAN,), (MNIST_STD,))])
        dataset = datasets.MNIST(_torchvision_root(Path(tmp)), train=True, download=False, transform=transform)
        accel = {"num_workers": 1, "pin_memory": True, "persistent_workers": True} if device.type == "cuda" else {}
        loader = DataLoader(dataset, batch_size=BATCH_SIZE, shuffle=True, **accel)

        # the PyTorch MNIST example's train() (without its logging), stopped after `images` images; shuffled
        # on every device, as `fit` does (the example shuffles on accelerators only)
        def canonical():
            model.train()
            seen = 0
            for data, target in loader:
                data, target = data.to(device), target.to(device)
                opt.zero_grad()
                loss = F.cross_entropy(model(data), target)
                loss.backward()
                opt.step()
                seen += len(data)
                if seen >= images:
                    break

        t_canonical = _median_time(canonical, repeats, device)
        del loader  # ends its worker processes

    train = load_split("mnist", True)
    train = Split((train.x - MNIST_MEAN) / MNIST_STD, train.y, train.classes)
    index = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:images]
    train = train.subset(index).to(device)  # the library keeps data on the device: moved once, not timed
    t_fit = _median_time(lambda: fit(model, train, None, config), repeats, device)

    prepared = [(train.x[i:i + BATCH_SIZE], train.y[i:i + BATCH_SIZE]) for i in range(0, images, BATCH_SIZE)]

    def floor():
        model.train()
        for x, y in prepared:
            opt.zero_grad()
            F.cross_entropy(model(x), y).backward()
            opt.step()

    t_floor = _median_time(floor, repeats, device)
    return {"model": "LeNet-5", "optimizer": "adadelta (lr 1.0)", "batch_size": BATCH_SIZE, "images": images,
            "repeats": repeats,
            "canonical_images_per_s": images / t_canonical, "fit_images_per_s": images / t_fit,
            "floor_images_per_s": images / t_floor,
            "speedup_vs_canonical": t_canonical / t_fit, "fit_over_floor": t_fit / t_floor}


def paper_benches(device: torch.device, quick: bool) -> dict:
    """The benchmarks a paper's package contributes (`lastlayer/papers/<id>/bench.py`, function `bench`),
    found by name so that the core never imports a paper."""
    import importlib.util
    out = {}
    for paper in PAPERS:
        name = f"lastlayer.papers.{paper}.bench"
        if importlib.util.find_spec(name) is not None:
            out[paper] = importlib.import_module(name).bench(device, quick)
    return out


def notebook_times(root: Path) -> list[dict]:
    """Each notebook's last run as the runner recorded it (profile, device, wall time)."""
    import json
    out = []
    for paper in PAPERS:
        f = Path(root) / "book" / "results" / f"{paper}.json"
        if f.exists():
            r = json.loads(f.read_text())
            out.append({"paper": paper, "profile": r.get("profile"), "device": r.get("device"),
                        "seconds": r.get("seconds")})
    return out


def run_bench(root: Path, quick: bool = False, device: str = "auto") -> dict:
    dev = resolve_device(device)
    import torchvision
    info = {"date": datetime.now(timezone.utc).isoformat(timespec="seconds"), "quick": quick,
            "device": device_name(dev), "threads": torch.get_num_threads(), "cores": os.cpu_count(),
            "torch": torch.__version__, "torchvision": torchvision.__version__,
            "python": platform.python_version()}
    goal = GOALS["speedup_gpu"] if dev.type == "cuda" else GOALS["speedup_cpu"]
    trainer = bench_trainer(dev, images=256 if quick else 12800, repeats=1 if quick else 5)
    trainer.update(goal_speedup=goal, goal_fit_over_floor=GOALS["floor_overhead"])
    group = paper_benches(dev, quick).get("digit_pairs", [])
    return {**info, "trainer": trainer, "group": group, "notebooks": notebook_times(root)}


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:,.{digits}f}"


def markdown_table(bench: dict) -> str:
    """The benchmark as Markdown: the trainer's speed, the group's speedup, the notebooks' wall times."""
    t = bench["trainer"]
    threads = "" if "threads" in bench["device"] else f" ({bench['threads']} CPU threads)"
    lines = [f"Measured on {bench['device']}{threads}, torch {bench['torch']}, "
             f"torchvision {bench['torchvision']}, Python {bench['python']}, on {bench['date']}"
             + (" (quick run: small sizes, few repeats)" if bench.get("quick") else "") + ". "
             "Every time is the median of repeated runs after a warm-up run.", "",
             f"**Trainer** ({t['model']}, {t['optimizer']}, batch {t['batch_size']}, {t['images']:,} MNIST "
             f"training images per run, median of {t['repeats']} runs):", "",
             "| loop | images/s | speed relative to the canonical loop | goal |", "|---|---|---|---|",
             f"| canonical PyTorch loop (torchvision `MNIST`, `ToTensor`/`Normalize`, `DataLoader`) | "
             f"{_fmt(t['canonical_images_per_s'], 0)} | 1.00x | |",
             f"| `lastlayer.training.fit` (tensors on the device, batched by indexing) | "
             f"{_fmt(t['fit_images_per_s'], 0)} | {_fmt(t['speedup_vs_canonical'])}x | >= {t['goal_speedup']:g}x |",
             f"| compute floor (forward, backward, step on prepared batches) | {_fmt(t['floor_images_per_s'], 0)} | "
             f"{_fmt(t['floor_images_per_s'] / t['canonical_images_per_s'])}x | |", "",
             f"`fit` takes {_fmt(t['fit_over_floor'])}x the compute floor's time (goal: at most "
             f"{t['goal_fit_over_floor']:g}x).",
             "", "**Many small models at once** (`train_rounds`: digit-pair models, one per round, trained one "
             "after another or as one group; seconds per epoch including each epoch's evaluation):", "",
             "| model | models | pairs | sequential s/epoch | grouped s/epoch | speedup | speedup, training only |",
             "|---|---|---|---|---|---|---|"]
    for g in bench["group"]:
        lines.append(f"| {g['kind']} | {g['models']} | {g['n']} | {_fmt(g['sequential_s_per_epoch'])} | "
                     f"{_fmt(g['grouped_s_per_epoch'])} | {_fmt(g['speedup'])}x | {_fmt(g['train_speedup'])}x |")
    lines += ["", "**Notebooks** (each one's last run):", ""]
    if bench["notebooks"]:
        lines += ["| notebook | profile | device | wall time (min) |", "|---|---|---|---|"]
        lines += [f"| {r['paper']} | {r['profile']} | {r['device']} | "
                  f"{_fmt(r['seconds'] / 60, 1) if r['seconds'] is not None else '?'} |" for r in bench["notebooks"]]
    else:
        lines.append("No notebook has been run yet.")
    return "\n".join(lines) + "\n"


def main(root: str | os.PathLike, quick: bool = False) -> dict:
    """Run the benchmark, write `book/results/bench.json` under `root`, print the table."""
    print("benchmarking (this takes a few minutes; --quick for a short run) ...", file=sys.stderr)
    bench = run_bench(Path(root), quick)
    path = write_json_atomic(Path(root) / "book" / "results" / "bench.json", bench)
    print(markdown_table(bench))
    print(f"written to {path}", file=sys.stderr)
    return bench
