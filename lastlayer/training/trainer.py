"""One short trainer for every paper: a dataclass config, tensors batched by indexing, hooks.

`fit(model, train, test, config)` trains in place and returns a `TrainResult` with a per-epoch history.
What a paper needs beyond plain classification comes in through two seams:
- an `objective(model, x, y) -> (loss, n_correct)`: auxiliary losses, pair read-outs, ...;
- `Callback`s: `filter_batch` (drop examples before the step: the feature-cache trainer),
  `after_backward` (gradient norms), `on_epoch_end` (recording classifier vectors, extra metrics).
"""
from __future__ import annotations

import math
import os
import random
import time
from dataclasses import asdict, dataclass, field
from typing import Callable

import numpy as np
import torch
import torch.nn as nn
import torch.nn.functional as F

from lastlayer.data import Split, batches
from lastlayer.numbers import plural

Objective = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


class NonFiniteLossError(FloatingPointError):
    """Training produced a NaN or infinite loss; the message says at which epoch and batch."""


def seed_everything(seed: int) -> None:
    """Seed Python, NumPy and torch (all devices): same seed and profile, same numbers on CPU."""
    random.seed(seed)
    np.random.seed(seed % 2**32)
    torch.manual_seed(seed)


def resolve_device(device: str | torch.device = "auto") -> torch.device:
    if str(device) != "auto":
        return torch.device(device)
    if torch.cuda.is_available():
        return torch.device("cuda")
    if getattr(torch.backends, "mps", None) is not None and torch.backends.mps.is_available():
        return torch.device("mps")
    return torch.device("cpu")


def device_name(device: str | torch.device = "auto") -> str:
    """A readable name of the device, for the records: 'cpu (2 threads)' or the GPU's name."""
    device = resolve_device(device)
    if device.type == "cuda":
        return f"cuda ({torch.cuda.get_device_name(device)})"
    if device.type == "cpu":
        return f"cpu ({plural(torch.get_num_threads(), 'thread')}, {plural(os.cpu_count(), 'core')})"
    return device.type


def classification(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """The default objective: cross-entropy of model(x) against integer labels."""
    logits = model(x)
    return F.cross_entropy(logits, y), (logits.argmax(1) == y).sum()


@dataclass
class TrainConfig:
    epochs: int = 10
    batch_size: int = 64
    lr: float = 0.1
    optimizer: str = "sgd"  # sgd | adam | adamw | adadelta | adagrad | rmsprop
    momentum: float = 0.0
    nesterov: bool = False
    weight_decay: float = 0.0
    seed: int = 0  # seeds the order of the batches; the caller seeds the weights
    device: str = "auto"
    eval_batch_size: int = 2048
    # Speed-ups that change the numerics beyond bit-exactness (rounding order, precision); say so where used.
    amp: str | None = None        # 'bf16': autocast the forward pass to bfloat16 (CUDA, and CPU for tests)
    # NHWC memory layout for image batches. None: on where it is faster for conv nets, i.e. on a CPU (oneDNN's
    # convolutions and pooling run 1.2-1.7x faster: see the benchmark) and on CUDA with bf16 (tensor cores).
    # It changes only the order of floating-point sums. The model is given back in the default layout.
    channels_last: bool | None = None
    compile: bool = False         # torch.compile the model; pays a compile time once per run


_OPTIMIZERS = {"sgd": torch.optim.SGD, "adam": torch.optim.Adam, "adamw": torch.optim.AdamW,
               "adadelta": torch.optim.Adadelta, "adagrad": torch.optim.Adagrad,
               "rmsprop": torch.optim.RMSprop}


def make_optimizer(params, config: TrainConfig) -> torch.optim.Optimizer:
    name = config.optimizer.lower()
    if name not in _OPTIMIZERS:
        raise ValueError(f"unknown optimizer {config.optimizer!r}; choose one of {', '.join(_OPTIMIZERS)}")
    kwargs = {"lr": config.lr, "weight_decay": config.weight_decay}
    if name == "sgd":
        kwargs.update(momentum=config.momentum, nesterov=config.nesterov)
    elif name == "rmsprop":
        kwargs.update(momentum=config.momentum)
    return _OPTIMIZERS[name]([p for p in params if p.requires_grad], **kwargs)


class Callback:
    """Hooks into `fit`; override what you need."""

    def on_train_start(self, model: nn.Module, optimizer: torch.optim.Optimizer) -> None: ...

    def filter_batch(self, model: nn.Module, x: torch.Tensor, y: torch.Tensor, epoch: int):
        return x, y

    def after_backward(self, model: nn.Module, epoch: int, batch: int) -> None: ...

    def on_epoch_end(self, model: nn.Module, epoch: int, history: dict) -> None: ...


@dataclass
class TrainResult:
    model: nn.Module
    history: dict[str, list[float]] = field(default_factory=dict)
    config: dict = field(default_factory=dict)

    def final(self, key: str) -> float:
        return self.history[key][-1]


@torch.no_grad()
def evaluate(model: nn.Module, data: Split, objective: Objective = classification,
             batch_size: int = 2048) -> tuple[float, float]:
    """(mean loss, accuracy) of `model` on `data` in eval mode; the model's mode is restored."""
    was_training = model.training
    model.eval()
    loss_sum, correct = 0.0, 0
    for start in range(0, len(data), batch_size):
        x, y = data.x[start:start + batch_size], data.y[start:start + batch_size]
        loss, n_correct = objective(model, x, y)
        loss_sum += float(loss) * len(x)
        correct += int(n_correct)
    model.train(was_training)
    return loss_sum / len(data), correct / len(data)


@torch.no_grad()
def apply_batched(fn: Callable[[torch.Tensor], torch.Tensor], x: torch.Tensor,
                  batch_size: int = 2048) -> torch.Tensor:
    """fn over x in batches, concatenated: embeddings, logits, feature maps of a whole split."""
    return torch.cat([fn(x[i:i + batch_size]) for i in range(0, len(x), batch_size)])


def defer_checks(device: torch.device) -> bool:
    """Whether `fit` checks the loss once per epoch (from a flag kept on the device) rather than per step."""
    return device.type == "cuda"


def uses_channels_last(config: TrainConfig, device: torch.device, x: torch.Tensor) -> bool:
    """Whether `fit` trains in the NHWC layout: `config.channels_last`, or where None, the faster layout."""
    if x.dim() != 4:
        return False
    if config.channels_last is not None:
        return bool(config.channels_last)
    return device.type == "cpu" or (device.type == "cuda" and config.amp == "bf16")


def _raise_non_finite(value: float, epoch: int, batch: int, opt) -> None:
    raise NonFiniteLossError(
        f"non-finite loss ({value}) at epoch {epoch + 1}, batch {batch + 1} "
        f"(lr {opt.param_groups[0]['lr']:g}): lower the learning rate or check the inputs")


def _check_finite_state(model: nn.Module, epoch: int, opt, test_loss: float | None) -> None:
    """After an epoch: the weights, the buffers (batch-norm statistics) and the test loss must be finite. A step
    can overflow the weights while the loss it was computed from was finite; the last step of a run has no
    next loss to show it, and a model whose outputs are NaN still yields an accuracy (argmax of NaN logits), so
    without this a run that diverged would be reported as one that trained."""
    tensors = [t for t in (*model.parameters(), *model.buffers()) if t.is_floating_point()]
    finite = torch.stack([torch.isfinite(t).all() for t in tensors]).all() if tensors else True
    if not bool(finite):  # one sync per epoch
        raise NonFiniteLossError(f"non-finite weights after epoch {epoch + 1} (lr {opt.param_groups[0]['lr']:g}): "
                                 f"lower the learning rate or check the inputs")
    if test_loss is not None and not math.isfinite(test_loss):
        raise NonFiniteLossError(f"non-finite test loss ({test_loss}) after epoch {epoch + 1} "
                                 f"(lr {opt.param_groups[0]['lr']:g}): lower the learning rate or check the inputs")


def fit(model: nn.Module, train: Split, test: Split | None = None, config: TrainConfig | None = None, *,
        objective: Objective = classification, optimizer: torch.optim.Optimizer | None = None,
        scheduler: Callable[[torch.optim.Optimizer], object] | None = None,
        callbacks: tuple[Callback, ...] | list[Callback] = (), verbose: bool = False) -> TrainResult:
    """Train `model` on `train` for `config.epochs`, evaluating on `test` after every epoch.

    The history holds per epoch: train_loss and train_acc (running, over the examples stepped on),
    test_loss and test_acc, lr, seconds (training time of the epoch, evaluation excluded) and
    examples (how many were stepped on). A non-finite loss, or weights or a test loss that are not finite after
    an epoch, raise `NonFiniteLossError`.
    """
    config = config or TrainConfig()
    device = resolve_device(config.device)
    if config.amp not in (None, "bf16"):
        raise ValueError(f"amp must be None or 'bf16', not {config.amp!r}")
    model.to(device)
    train = train.to(device)
    test = test.to(device) if test is not None else None
    if not uses_channels_last(config, device, train.x):
        return _fit(model, train, test, config, device, objective, optimizer, scheduler, callbacks, verbose)
    layout = torch.channels_last
    train = Split(train.x.contiguous(memory_format=layout), train.y, train.classes)
    if test is not None and test.x.dim() == 4:
        test = Split(test.x.contiguous(memory_format=layout), test.y, test.classes)
    model.to(memory_format=layout)
    try:
        return _fit(model, train, test, config, device, objective, optimizer, scheduler, callbacks, verbose)
    finally:  # the layout is an implementation detail of the training: the caller gets the model as it gave it
        model.to(memory_format=torch.contiguous_format)


def _fit(model, train, test, config, device, objective, optimizer, scheduler, callbacks, verbose) -> TrainResult:
    opt = optimizer or make_optimizer(model.parameters(), config)
    sched = scheduler(opt) if scheduler is not None else None
    generator = torch.Generator().manual_seed(config.seed)
    history: dict[str, list[float]] = {k: [] for k in (
        "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "examples")}
    for cb in callbacks:
        cb.on_train_start(model, opt)
    step_model = torch.compile(model) if config.compile else model
    autocast = torch.autocast(device.type, dtype=torch.bfloat16, enabled=config.amp == "bf16")
    # On a GPU the loss is checked without a host sync per step: the first bad batch is kept on the device
    # and read once per epoch, so kernels queue freely. On a CPU there is no queue to stall: check at once.
    check_now = not defer_checks(device)

    for epoch in range(config.epochs):
        model.train()
        start = time.perf_counter()
        loss_sum = torch.zeros((), device=device)
        correct = torch.zeros((), device=device, dtype=torch.long)
        first_bad = torch.full((), -1, device=device, dtype=torch.long)
        seen = 0
        for b, index in enumerate(batches(len(train), config.batch_size, generator=generator, device=device)):
            x, y = train.x[index], train.y[index]
            for cb in callbacks:
                x, y = cb.filter_batch(model, x, y, epoch)
            if len(x) == 0:
                continue
            with autocast:
                loss, n_correct = objective(step_model, x, y)
            if check_now:
                if not torch.isfinite(loss):
                    _raise_non_finite(float(loss.detach()), epoch, b, opt)
            else:
                bad = ~torch.isfinite(loss.detach()) & (first_bad < 0)
                first_bad = torch.where(bad, torch.full_like(first_bad, b), first_bad)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            for cb in callbacks:
                cb.after_backward(model, epoch, b)
            opt.step()
            loss_sum += loss.detach().float() * len(x)
            correct += n_correct
            seen += len(x)
        if not check_now and int(first_bad) >= 0:  # one sync per epoch
            _raise_non_finite(float("nan"), epoch, int(first_bad), opt)
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        history["seconds"].append(time.perf_counter() - start)
        history["examples"].append(seen)
        history["train_loss"].append(float(loss_sum) / max(seen, 1))
        history["train_acc"].append(float(correct) / max(seen, 1))
        history["lr"].append(opt.param_groups[0]["lr"])
        test_loss = None
        if test is not None:
            with autocast:
                test_loss, test_acc = evaluate(model, test, objective, config.eval_batch_size)
        _check_finite_state(model, epoch, opt, test_loss)
        if test is not None:
            history["test_loss"].append(test_loss)
            history["test_acc"].append(test_acc)
        for cb in callbacks:
            cb.on_epoch_end(model, epoch, history)
        if sched is not None:
            if isinstance(sched, torch.optim.lr_scheduler.ReduceLROnPlateau):
                key = "test_acc" if test is not None else "train_acc"
                sched.step(history[key][-1])
            else:
                sched.step()
        if verbose:
            acc = f", test acc {history['test_acc'][-1]:.4f}" if test is not None else ""
            print(f"epoch {epoch + 1}/{config.epochs}: loss {history['train_loss'][-1]:.4f}{acc}")
    return TrainResult(model, {k: v for k, v in history.items() if v}, asdict(config))

