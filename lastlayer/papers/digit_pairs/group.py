"""Train a group of G identical-architecture digit-pair models as one vectorised model.

Papers 002 and 003 train many small models (10 rounds per setting). One after another, each step of
each model pays the per-call overhead of a small network; together they pay it once. Members are laid
side by side:
- convolutions become one `Conv2d(groups=G)` over the members' channels stacked;
- batch norm over G*C channels is exactly per-member batch norm, running statistics included
  (`torch.func.vmap` cannot update running statistics, which is why this module does not use it);
- linear layers become one batched matmul with weights (G, out, in).
Every grouped tensor is the members' tensors stacked along a new first axis, then reshaped (conv and batch
norm parameters: (G*C, ...), linear ones: (G, out, in)), under the members' own state-dict names, so moving
weights in and out is a stack and an index.

Each member keeps its own data, batch order and loss: the loss is the sum of the members' mean losses, so
each member's gradient is its own, and plain SGD (elementwise) steps each member as if it were alone.
Member g of `fit_group` therefore equals `fit` with seed `seeds[g]`, up to floating-point rounding
(grouped kernels sum in another order).
"""
from __future__ import annotations

import math
import time
from dataclasses import asdict, replace
from typing import Callable, Sequence

import torch
import torch.nn as nn
import torch.nn.functional as F

from lastlayer.data import Split
from lastlayer.models.pairnet import PairBranch, PairNet, SiameseNet
from lastlayer.training.trainer import NonFiniteLossError, TrainConfig, TrainResult, make_optimizer, resolve_device

# A grouped objective: (model, x (B, G, ...), y (B, G, ...)) -> (per-member mean losses (G,), correct (G,)).
GroupObjective = Callable[[nn.Module, torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]


# ---------------------------------------------------------------------------------------------------
# Grouped layers: built from one member, so that they inherit its hyper-parameters; their weights are
# always loaded from the members (`group`), never initialised here.

class GroupedLinear(nn.Module):
    """G independent linear maps: (B, G, in) -> (B, G, out), weight (G, out, in), bias (G, out)."""

    def __init__(self, groups: int, in_features: int, out_features: int, bias: bool = True):
        super().__init__()
        self.weight = nn.Parameter(torch.zeros(groups, out_features, in_features))
        self.bias = nn.Parameter(torch.zeros(groups, out_features)) if bias else None

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        xt = x.transpose(0, 1)  # (G, B, in): one matmul per member, batched
        w = self.weight.transpose(1, 2)
        out = torch.baddbmm(self.bias.unsqueeze(1), xt, w) if self.bias is not None else torch.bmm(xt, w)
        return out.transpose(0, 1)


def _linear(layer: nn.Linear | None, groups: int) -> GroupedLinear | None:
    if layer is None:
        return None
    return GroupedLinear(groups, layer.in_features, layer.out_features, layer.bias is not None)


def _conv(conv: nn.Conv2d, groups: int) -> nn.Conv2d:
    return nn.Conv2d(groups * conv.in_channels, groups * conv.out_channels, conv.kernel_size, conv.stride,
                     conv.padding, conv.dilation, groups=groups * conv.groups, bias=conv.bias is not None)


def _norm(norm: nn.Module, groups: int) -> nn.Module:
    if isinstance(norm, nn.Identity):
        return nn.Identity()
    if type(norm) is not nn.BatchNorm2d:
        raise TypeError(f"cannot group a {type(norm).__name__}; only BatchNorm2d and Identity")
    return nn.BatchNorm2d(groups * norm.num_features, norm.eps, norm.momentum, norm.affine,
                          norm.track_running_stats)


def _grouped_conv(conv: nn.Conv2d, groups: int, x: torch.Tensor) -> torch.Tensor:
    """`conv(x)`; when the kernel covers the whole input (PairBranch's conv2: 6x6 on 6x6) the convolution is
    a linear map of each member's flat input, done as one batched matmul (grouped convolutions of that
    shape are several times slower on CPU)."""
    if conv.padding != (0, 0) or conv.dilation != (1, 1) or tuple(x.shape[-2:]) != conv.kernel_size:
        return conv(x)
    b, out = len(x), conv.out_channels
    w = conv.weight.view(groups, out // groups, -1).transpose(1, 2)
    xt = x.reshape(b, groups, -1).transpose(0, 1)
    y = torch.bmm(xt, w) if conv.bias is None else torch.baddbmm(conv.bias.view(groups, 1, -1), xt, w)
    return y.transpose(0, 1).reshape(b, out, 1, 1)


class GroupedBranch(nn.Module):
    """G `PairBranch`es: input (B, G*C, 14, 14) (member g's channels at g*C), output (B, G, hidden)."""

    def __init__(self, member: PairBranch, groups: int):
        super().__init__()
        self.groups = groups
        self.conv1, self.conv2 = _conv(member.conv1, groups), _conv(member.conv2, groups)
        self.bn1, self.bn2 = _norm(member.bn1, groups), _norm(member.bn2, groups)
        self.skip1, self.skip2 = _linear(member.skip1, groups), _linear(member.skip2, groups)
        self.fc = _linear(member.fc, groups)

    def forward(self, x: torch.Tensor) -> torch.Tensor:  # mirrors PairBranch.forward
        b = len(x)
        flat = x.reshape(b, self.groups, -1)
        h = self.bn1(F.relu(F.max_pool2d(self.conv1(x), 2)))
        if self.skip1 is not None:
            h = h + F.relu(self.skip1(flat)).reshape(h.shape)
        h = self.bn2(F.relu(_grouped_conv(self.conv2, self.groups, h))).reshape(b, self.groups, -1)
        if self.skip2 is not None:
            h = h + F.relu(self.skip2(flat))
        return F.relu(self.fc(h))


class GroupedPairNet(nn.Module):
    """G `PairNet`s; input (B, G, 2, 14, 14), logits (B, G, 2)."""

    def __init__(self, member: PairNet, groups: int):
        super().__init__()
        self.groups = groups
        self.body = GroupedBranch(member.body, groups)
        self.head = _linear(member.head, groups)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x.reshape(len(x), -1, *x.shape[3:]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


class GroupedSiameseNet(nn.Module):
    """G `SiameseNet`s; input (B, G, 2, 14, 14), digit logits (B, G, 2, 10), logits (B, G, 2)."""

    def __init__(self, member: SiameseNet, groups: int):
        super().__init__()
        self.groups = groups
        self.branch = nn.Sequential(GroupedBranch(member.branch[0], groups), _linear(member.branch[1], groups))
        self.head = _linear(member.head, groups)

    def digit_logits(self, x: torch.Tensor) -> torch.Tensor:
        # A member sends row 2i+j = digit j of pair i through its branch; (B, 2, G, ...) -> (2B, G, ...)
        # keeps that order, with member g on channel g.
        b = len(x)
        d = self.branch(x.transpose(1, 2).reshape(2 * b, self.groups, *x.shape[3:]))  # (2B, G, 10)
        return d.view(b, 2, self.groups, -1).transpose(1, 2)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.digit_logits(x).flatten(2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))


_GROUPED = {PairNet: GroupedPairNet, SiameseNet: GroupedSiameseNet}


def group(models: Sequence[nn.Module]) -> nn.Module:
    """One grouped model holding copies of `models` (same class and shapes), on the first model's device."""
    if len(models) == 0:
        raise ValueError("a group needs at least one model")
    cls = type(models[0])
    if cls not in _GROUPED:
        raise TypeError(f"cannot group {cls.__name__} models; groupable: "
                        f"{', '.join(c.__name__ for c in _GROUPED)}")
    states = [m.state_dict() for m in models]
    for i, (m, s) in enumerate(zip(models, states)):
        if type(m) is not cls or {k: v.shape for k, v in s.items()} != {k: v.shape for k, v in states[0].items()}:
            raise ValueError(f"model {i} ({type(m).__name__}) differs in class or shapes from model 0 "
                             f"({cls.__name__}); a group needs identical architectures")
    first = next(models[0].parameters())
    grouped = _GROUPED[cls](models[0], len(models)).to(first.device, first.dtype)
    target = grouped.state_dict()
    if set(target) != set(states[0]):
        raise TypeError(f"grouped {cls.__name__} does not mirror its members' parameters: "
                        f"{sorted(set(target) ^ set(states[0]))}")
    stacked = {}
    for k, t in target.items():
        if t.dim() == 0:  # num_batches_tracked: one counter, equal for members trained together
            stacked[k] = states[0][k]
        else:
            stacked[k] = torch.stack([s[k] for s in states]).reshape(t.shape)
    grouped.load_state_dict(stacked)
    return grouped


def ungroup(grouped: nn.Module, models: Sequence[nn.Module]) -> None:
    """Write the grouped weights and buffers back into `models` (member g into models[g]), in place."""
    if len(models) != grouped.groups:
        raise ValueError(f"the group has {grouped.groups} members, but {len(models)} models were given")
    source = grouped.state_dict()
    for g, m in enumerate(models):
        m.load_state_dict(_member_state(source, m, g))
        m.to(next(grouped.parameters()).device)


def _member_state(source: dict, member: nn.Module, g: int) -> dict:
    """Member g's state dict, as views into a grouped state dict `source`."""
    return {k: (source[k] if v.dim() == 0 else source[k].reshape(-1, *v.shape)[g])
            for k, v in member.state_dict().items()}


# ---------------------------------------------------------------------------------------------------
# Grouped objectives: the pair objectives of `lastlayer.models.pairnet`, one mean loss per member.

def _cross_entropy(logits: torch.Tensor, target: torch.Tensor) -> torch.Tensor:
    """(B, G, K) logits, (B, G) labels -> (G,) mean cross-entropy of each member."""
    b, g, k = logits.shape
    return F.cross_entropy(logits.reshape(b * g, k), target.reshape(-1), reduction="none").view(b, g).mean(0)


def grouped_pair_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """`pair_objective` per member."""
    logits = model(x)
    t = y[..., 0]
    return _cross_entropy(logits, t), (logits.argmax(-1) == t).sum(0)


def grouped_siamese_objective(w_pair: float = 1.0, w_aux: float = 10 ** -0.5, readout: str = "pair"):
    """`siamese_objective` per member."""
    if readout not in ("pair", "digits"):
        raise ValueError(f"readout must be 'pair' or 'digits', not {readout!r}")

    def objective(model: GroupedSiameseNet, x: torch.Tensor, y: torch.Tensor):
        d = model.digit_logits(x)
        t, cls = y[..., 0], y[..., 1:]
        aux = _cross_entropy(d[:, :, 0], cls[..., 0]) + _cross_entropy(d[:, :, 1], cls[..., 1])
        if readout == "pair" or w_pair:
            logits = model.head(d.flatten(2))
            loss = w_pair * _cross_entropy(logits, t) + w_aux * aux
        else:
            loss = w_aux * aux
        if readout == "pair":
            pred = logits.argmax(-1)
        else:
            digit = d.argmax(-1)
            pred = (digit[..., 0] <= digit[..., 1]).long()
        return loss, (pred == t).sum(0)

    return objective


def grouped_objective(kind: str, w_aux: float = 10 ** -0.5) -> GroupObjective:
    """The grouped counterpart of `lastlayer.papers.digit_pairs.experiments.build(kind, ...)`'s objective."""
    if kind == "pair":
        return grouped_pair_objective
    if kind == "siamese2":
        return grouped_siamese_objective(1.0, w_aux, "pair")
    if kind == "siamese10":
        return grouped_siamese_objective(0.0, 1.0, "digits")
    raise ValueError(f"unknown model kind {kind!r}; choose one of pair, siamese2, siamese10")


# ---------------------------------------------------------------------------------------------------
# The trainer.

def _stack(splits: Sequence[Split], what: str, groups: int, device: torch.device) -> tuple[torch.Tensor, ...]:
    if len(splits) != groups:
        raise ValueError(f"{groups} models but {len(splits)} {what} splits; give one per model")
    for i, s in enumerate(splits):
        if s.x.shape != splits[0].x.shape or s.y.shape != splits[0].y.shape:
            raise ValueError(f"{what} split {i} has shapes {tuple(s.x.shape)}, {tuple(s.y.shape)}, split 0 "
                             f"{tuple(splits[0].x.shape)}, {tuple(splits[0].y.shape)}; members need equal sizes")
    return torch.stack([s.x for s in splits]).to(device), torch.stack([s.y for s in splits]).to(device)


@torch.no_grad()
def evaluate_group(model: nn.Module, x: torch.Tensor, y: torch.Tensor, objective: GroupObjective,
                   batch_size: int = 2048) -> tuple[list[float], list[float]]:
    """Per-member (mean loss, accuracy) on per-member data x (G, N, ...), y (G, N, ...), in eval mode.

    `batch_size` bounds the examples of all members together (G times fewer per member), so that a group
    evaluates with the memory of one model.
    """
    was_training = model.training
    model.eval()
    n = x.shape[1]
    batch_size = max(1, batch_size // x.shape[0])
    loss_sum = torch.zeros(x.shape[0], device=x.device)
    correct = torch.zeros(x.shape[0], device=x.device, dtype=torch.long)
    for start in range(0, n, batch_size):
        xb, yb = x[:, start:start + batch_size].transpose(0, 1), y[:, start:start + batch_size].transpose(0, 1)
        loss, n_correct = objective(model, xb, yb)
        loss_sum += loss * len(xb)
        correct += n_correct
    model.train(was_training)
    return (loss_sum / n).tolist(), [c / n for c in correct.tolist()]


def fit_group(models: Sequence[nn.Module], trains: Sequence[Split], tests: Sequence[Split] | None,
              config: TrainConfig, *, seeds: Sequence[int], objective: GroupObjective,
              on_nonfinite: str = "raise") -> list[TrainResult | None]:
    """`fit` for G models at once: model g trains on trains[g] with batch order from seeds[g]
    (`config.seed` is ignored) and is evaluated on tests[g] after every epoch.

    Returns one `TrainResult` per model, with `fit`'s history keys; the models are trained in place.
    `seconds` is the group's epoch time divided by G (each member's share, so that sums over members
    are the group's time). No callbacks or schedulers: use `fit` for those.
    A non-finite loss raises `NonFiniteLossError` naming the member, as `fit` would for that model alone;
    with `on_nonfinite='record'` that member stops (its model is left as `fit` leaves it when it raises:
    before the bad step), the others go on, and its result is None.
    """
    if on_nonfinite not in ("raise", "record"):
        raise ValueError(f"on_nonfinite must be 'raise' or 'record', not {on_nonfinite!r}")
    g = len(models)
    if len(seeds) != g:
        raise ValueError(f"{g} models but {len(seeds)} seeds; give one seed per model")
    device = resolve_device(config.device)
    for m in models:
        m.to(device)
    x, y = _stack(trains, "train", g, device)
    test = _stack(tests, "test", g, device) if tests is not None else None
    n = x.shape[1]
    model = group(models)
    opt = make_optimizer(model.parameters(), config)  # elementwise update rules: per-member exact
    generators = [torch.Generator().manual_seed(s) for s in seeds]
    members = torch.arange(g, device=device)[:, None]
    alive = torch.ones(g, dtype=torch.bool, device=device)
    all_alive = True
    stopped: dict[int, dict] = {}  # member -> its state when its loss became non-finite
    history = {k: [[] for _ in range(g)] for k in (
        "train_loss", "train_acc", "test_loss", "test_acc", "lr", "seconds", "examples")}

    for epoch in range(config.epochs):
        model.train()
        start = time.perf_counter()
        # one randperm per member and epoch from its own generator, as `fit`'s `batches` draws it
        order = torch.stack([torch.randperm(n, generator=gen) for gen in generators]).to(device)
        loss_sum = torch.zeros(g, device=device)
        correct = torch.zeros(g, device=device, dtype=torch.long)
        for b, begin in enumerate(range(0, n, config.batch_size)):
            index = order[:, begin:begin + config.batch_size]
            xb, yb = x[members, index].transpose(0, 1), y[members, index].transpose(0, 1)  # (B, G, ...)
            loss, n_correct = objective(model, xb, yb)
            bad = ~torch.isfinite(loss.detach()) & alive
            if bool(bad.any()):  # one sync per step, as in `fit`
                first = int(bad.nonzero()[0])
                if on_nonfinite == "raise":
                    raise NonFiniteLossError(
                        f"non-finite loss ({float(loss[first].detach())}) of group member {first} "
                        f"(seed {seeds[first]}) at epoch {epoch + 1}, batch {b + 1} "
                        f"(lr {opt.param_groups[0]['lr']:g}): lower the learning rate or check the inputs")
                for i in bad.nonzero()[:, 0].tolist():  # what `fit` would have left behind when it raised
                    stopped[i] = {k: v.clone() for k, v in _member_state(model.state_dict(), models[i], i).items()}
                alive &= ~bad
                all_alive = False
                if not bool(alive.any()):
                    break  # every member stopped: nothing left to train
            opt.zero_grad(set_to_none=True)
            # member g's parameters get the gradient of member g's loss only
            (loss if all_alive else torch.where(alive, loss, 0.0)).sum().backward()
            if not all_alive:  # stopped members get NaN gradients on their own slices: zeroed, to keep NaN out
                for p in model.parameters():
                    if p.grad is not None:
                        p.grad.view(g, -1)[~alive] = 0
            opt.step()
            loss_sum += loss.detach() * index.shape[1]
            correct += n_correct
        if not all_alive and not bool(alive.any()):
            break
        if device.type == "cuda":
            torch.cuda.synchronize(device)
        seconds = (time.perf_counter() - start) / g
        train_loss, train_acc = (loss_sum / n).tolist(), [c / n for c in correct.tolist()]
        tested = evaluate_group(model, *test, objective, config.eval_batch_size) if test is not None else None
        # as `fit`: a member whose weights or test loss are not finite after the epoch diverged (its last step
        # overflowed, or its outputs are NaN while an accuracy can still be counted from them)
        state_ok = torch.stack([torch.isfinite(t.reshape(g, -1)).all(1) for t in model.state_dict().values()
                                if t.is_floating_point() and t.dim() > 0]).all(0)  # member-major, as `group` stacks
        test_ok = torch.tensor([math.isfinite(v) for v in tested[0]] if tested else [True] * g, device=device)
        late = ~(state_ok & test_ok) & alive
        if bool(late.any()):
            first = int(late.nonzero()[0])
            if on_nonfinite == "raise":
                raise NonFiniteLossError(f"non-finite weights or test loss of group member {first} (seed "
                                         f"{seeds[first]}) after epoch {epoch + 1} (lr {opt.param_groups[0]['lr']:g}): "
                                         f"lower the learning rate or check the inputs")
            for i in late.nonzero()[:, 0].tolist():
                stopped[i] = {k: v.clone() for k, v in _member_state(model.state_dict(), models[i], i).items()}
            alive &= ~late
            all_alive = False
        for i in range(g):
            h = {k: v[i] for k, v in history.items()}
            h["seconds"].append(seconds)
            h["examples"].append(n)
            h["train_loss"].append(train_loss[i])
            h["train_acc"].append(train_acc[i])
            h["lr"].append(opt.param_groups[0]["lr"])
            if tested is not None:
                h["test_loss"].append(tested[0][i])
                h["test_acc"].append(tested[1][i])
    ungroup(model, models)
    for i, state in stopped.items():
        models[i].load_state_dict(state)
    return [TrainResult(m, {k: v[i] for k, v in history.items() if v[i]}, asdict(replace(config, seed=s)))
            if ok else None for i, (m, s, ok) in enumerate(zip(models, seeds, alive.tolist()))]
