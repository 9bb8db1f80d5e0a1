"""`python -m lastlayer bench`: how fast the library trains, measured on this device, side by side.

1. The trainer (`fit`, data held as tensors on the device and batched by indexing) against the canonical
   PyTorch loop (the PyTorch MNIST example: torchvision's `datasets.MNIST` with `ToTensor`/`Normalize`
   through a `DataLoader`), same model, optimiser and batch size: images per second and their ratio.
2. The trainer against the compute floor: forward, backward and step of the same model on batches
   prepared beforehand, with no data handling and no bookkeeping, in the memory layout `fit` trains in
   (NHWC on a CPU; the NCHW floor beside it shows what the layout alone buys).
   On a GPU, the fastest floor we know: the same step captured once in a CUDA graph and replayed.
3. What each paper's package adds (`lastlayer/papers/<id>/bench.py`, function `bench(device, quick)`): e.g. ten
   digit-pair models trained as one group against one after another.

Every timing is the median of repeats after a warm-up run; the contestants take turns within each repeat. The result goes to one file per device,
`book/results/bench/<device>.json`, so that the CPU and GPU figures stand side by side; the book renders every
file it finds (`markdown_table`). The notebooks' wall times are not copied here: the book reads them from the
results files, the one source of truth.
"""
from __future__ import annotations

import gzip
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

from lastlayer.book.registry import find_papers
from lastlayer.data import DataError, Split, data_root, load
from lastlayer.book.report import write_json_atomic
from lastlayer.timing import median_time, median_times, sync
from lastlayer.training.trainer import TrainConfig, device_name, fit, resolve_device, uses_channels_last

# The PyTorch MNIST example's normalisation, optimiser and batch size.
MNIST_MEAN, MNIST_STD = 0.1307, 0.3081
BATCH_SIZE = 64
GOALS = {"speedup_cpu": 3.0, "speedup_gpu": 10.0, "floor_overhead": 1.10}


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

        train = load("mnist", "train")
        train = Split((train.x - MNIST_MEAN) / MNIST_STD, train.y, train.classes)
        index = torch.randperm(len(train), generator=torch.Generator().manual_seed(0))[:images]
        train = train.subset(index).to(device)  # the library keeps data on the device: moved once, not timed
        prepared = [(train.x[i:i + BATCH_SIZE], train.y[i:i + BATCH_SIZE]) for i in range(0, images, BATCH_SIZE)]

        # the floor trains in the layout `fit` picks (NHWC on a CPU: see TrainConfig.channels_last); where that
        # is not the canonical loop's NCHW, the NCHW floor is measured too, to show what the layout buys
        nhwc = uses_channels_last(config, device, train.x)

        def floor_in(layout):
            batches = [(x.contiguous(memory_format=layout), y) for x, y in prepared]

            def floor():
                model.to(memory_format=layout).train()
                for x, y in batches:
                    opt.zero_grad()
                    F.cross_entropy(model(x), y).backward()
                    opt.step()
                model.to(memory_format=torch.contiguous_format)
            return floor

        runs = {"canonical": canonical, "fit": lambda: fit(model, train, None, config),
                "floor": floor_in(torch.channels_last if nhwc else torch.contiguous_format)}
        if nhwc:
            runs["floor_nchw"] = floor_in(torch.contiguous_format)
        t = median_times(runs, repeats, device)
        loader = None  # ends its worker processes

    graphed = graphed_floor(model, opt, prepared, repeats, device) if device.type == "cuda" else None
    return {"model": "LeNet-5", "optimizer": "adadelta (lr 1.0)", "batch_size": BATCH_SIZE, "images": images,
            "repeats": repeats,
            "canonical_images_per_s": images / t["canonical"], "fit_images_per_s": images / t["fit"],
            "floor_images_per_s": images / t["floor"], "layout": "channels_last" if nhwc else "contiguous",
            "floor_nchw_images_per_s": images / t["floor_nchw"] if nhwc else None,
            "speedup_vs_canonical": t["canonical"] / t["fit"], "fit_over_floor": t["fit"] / t["floor"],
            "graphed_floor_images_per_s": images / graphed if graphed else None,
            "fit_over_graphed_floor": t["fit"] / graphed if graphed else None}


def graphed_floor(model: nn.Module, opt: torch.optim.Optimizer, prepared, repeats: int,
                  device: torch.device) -> float | None:
    """Seconds for the floor's steps with forward, backward and step captured once in a CUDA graph and
    replayed per batch (only the copy of each batch into the graph's static input is left outside).
    None, with a note on stderr, where capture fails (e.g. an optimizer that cannot be captured)."""
    full = [(x, y) for x, y in prepared if len(x) == BATCH_SIZE]
    static_x, static_y = full[0][0].clone(), full[0][1].clone()
    try:
        for group in opt.param_groups:
            group["capturable"] = True
        stream = torch.cuda.Stream(device)
        stream.wait_stream(torch.cuda.current_stream(device))
        with torch.cuda.stream(stream):  # warm up on a side stream, as capture requires
            for _ in range(3):
                opt.zero_grad(set_to_none=True)
                F.cross_entropy(model(static_x), static_y).backward()
                opt.step()
        torch.cuda.current_stream(device).wait_stream(stream)
        graph = torch.cuda.CUDAGraph()
        opt.zero_grad(set_to_none=True)
        with torch.cuda.graph(graph):
            F.cross_entropy(model(static_x), static_y).backward()
            opt.step()
    except Exception as e:  # report, do not fail the whole benchmark
        print(f"bench: CUDA graph capture failed ({type(e).__name__}: {e}); no graphed floor", file=sys.stderr)
        return None

    def replay():
        for x, y in full:
            static_x.copy_(x)
            static_y.copy_(y)
            graph.replay()

    return median_time(replay, repeats, device) * len(prepared) / len(full)


def paper_benches(device: torch.device, quick: bool) -> dict:
    """The benchmarks a paper's package contributes (`lastlayer/papers/<id>/bench.py`, function `bench`),
    found through the registry so that the core never imports a paper."""
    out = {}
    for paper in find_papers().values():
        module = paper.load("bench")
        if module is not None:
            out[paper.id] = module.bench(device, quick)
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
    return {**info, "trainer": trainer, "papers": paper_benches(dev, quick)}


def _fmt(x: float, digits: int = 2) -> str:
    return f"{x:,.{digits}f}"


def device_slug(device: str) -> str:
    """A file name for a device description: 'cpu (2 threads, 2 cores)' -> 'cpu', 'cuda (NVIDIA H100 ...)' ->
    'cuda-nvidia-h100-...'."""
    import re
    head, _, detail = device.partition(" (")
    if head == "cpu":
        return "cpu"
    return re.sub(r"[^a-z0-9]+", "-", f"{head} {detail.rstrip(')')}".lower()).strip("-")


def load_benches(root: Path) -> list[dict]:
    """Every device's last benchmark, CPU first."""
    import json
    files = sorted((Path(root) / "book" / "results" / "bench").glob("*.json"))
    benches = [json.loads(f.read_text()) for f in files]
    return sorted(benches, key=lambda b: (not b["device"].startswith("cpu"), b["device"]))


def markdown_table(bench: dict) -> str:
    """One device's benchmark as Markdown: the trainer's speed, then what each paper adds."""
    t = bench["trainer"]
    threads = "" if "threads" in bench["device"] else f" ({bench['threads']} CPU threads)"
    lines = [f"Measured on {bench['device']}{threads}, torch {bench['torch']}, "
             f"torchvision {bench['torchvision']}, Python {bench['python']}, on {bench['date']}"
             + (" (quick run: small sizes, few repeats)" if bench.get("quick") else "") + ". "
             "Every time is the median of repeated runs after a warm-up run; the trainer, the canonical loop and the "
             "floors take turns within each repeat, so that a drift of the machine's speed touches them alike.", "",
             f"**Trainer** ({t['model']}, {t['optimizer']}, batch {t['batch_size']}, {t['images']:,} MNIST "
             f"training images per run, median of {t['repeats']} runs):", "",
             "| loop | images/s | speed relative to the canonical loop | goal |", "|---|---|---|---|",
             f"| canonical PyTorch loop (torchvision `MNIST`, `ToTensor`/`Normalize`, `DataLoader`) | "
             f"{_fmt(t['canonical_images_per_s'], 0)} | 1.00x | |",
             f"| `lastlayer.training.fit` (tensors on the device, batched by indexing) | "
             f"{_fmt(t['fit_images_per_s'], 0)} | {_fmt(t['speedup_vs_canonical'])}x | >= {t['goal_speedup']:g}x |"]
    nhwc = t.get("layout") == "channels_last"
    if t.get("floor_nchw_images_per_s"):
        lines.append(f"| compute floor in the canonical loop's NCHW layout (forward, backward, step on prepared "
                     f"batches) | {_fmt(t['floor_nchw_images_per_s'], 0)} | "
                     f"{_fmt(t['floor_nchw_images_per_s'] / t['canonical_images_per_s'])}x | |")
    lines.append(f"| compute floor{' in NHWC, the layout `fit` trains in here' if nhwc else ''} (forward, backward, "
                 f"step on prepared batches) | {_fmt(t['floor_images_per_s'], 0)} | "
                 f"{_fmt(t['floor_images_per_s'] / t['canonical_images_per_s'])}x | |")
    if t.get("graphed_floor_images_per_s"):
        lines.append(f"| graphed floor (the same step captured in a CUDA graph) | "
                     f"{_fmt(t['graphed_floor_images_per_s'], 0)} | "
                     f"{_fmt(t['graphed_floor_images_per_s'] / t['canonical_images_per_s'])}x | |")
    lines += ["", f"`fit` takes {_fmt(t['fit_over_floor'])}x the compute floor's time"
              + (f" and {_fmt(t['fit_over_graphed_floor'])}x the graphed floor's" if t.get("fit_over_graphed_floor")
                 else "") + f" (goal: at most {t['goal_fit_over_floor']:g}x)."]
    for paper, rows in bench.get("papers", {}).items():
        if not rows:
            continue
        columns = [c for c in rows[0] if c != "title"]
        # a value shared by every row goes into the heading, so the table keeps only what varies (fits the column)
        same = [c for c in columns if len(rows) > 1 and all(r.get(c) == rows[0].get(c) for r in rows)]
        columns = [c for c in columns if c not in same]
        shared = ", ".join(f"{c.replace('_', ' ')} {_cell(rows[0][c])}" for c in same)
        lines += ["", f"**{rows[0].get('title', paper)}** (`lastlayer/papers/{paper}/bench.py`"
                  + (f"; {shared}" if shared else "") + "):", ""]
        lines += ["| " + " | ".join(c.replace("_", " ") for c in columns) + " |", "|" + "---|" * len(columns)]
        for row in rows:
            lines.append("| " + " | ".join(_cell(row.get(c)) for c in columns) + " |")
        if any("speedup" in c for c in columns):
            lines += ["", "A speedup is the first path's time over the second's: above 1 the second is faster, "
                          "below 1 it is slower."]
    return "\n".join(lines) + "\n"


def _cell(v) -> str:
    if isinstance(v, float):
        return _fmt(v, 3 if abs(v) < 10 else 1)
    return "" if v is None else str(v)


def main(root: str | os.PathLike, quick: bool = False) -> dict:
    """Run the benchmark, write `book/results/bench/<device>.json` under `root`, print the table."""
    print("benchmarking (this takes a few minutes; --quick for a short run) ...", file=sys.stderr)
    bench = run_bench(Path(root), quick)
    path = write_json_atomic(Path(root) / "book" / "results" / "bench" / f"{device_slug(bench['device'])}.json", bench)
    print(markdown_table(bench))
    print(f"written to {path}", file=sys.stderr)
    return bench
