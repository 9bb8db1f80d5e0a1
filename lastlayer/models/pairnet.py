"""The digit-pair convnets of the EE-559 report: the pair model and the weight-sharing siamese model.

Both take a pair of images stacked as channels: (N, 2 * in_channels, 14, 14), digit 1 first. Both follow
the library's `Model` contract: `features(x)`, `head`, `forward(x) == head(features(x))`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import Model

class PairBranch(nn.Module):
    """conv3x3 -> maxpool2 -> ReLU [-> BN] [+ skip], conv6x6 -> ReLU [-> BN] [+ skip], FC -> ReLU.

    Input (N, in_channels, 14, 14); `features` gives (N, hidden). A skip is a linear map of the flat
    input followed by ReLU, added to the block's output (the report's dimension-matching skip).
    """

    def __init__(self, in_channels: int = 2, c1: int = 64, c2: int = 64, hidden: int = 64,
                 batch_norm: bool = True, skip: bool = False):
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, c1, 3)   # 14 -> 12, pooled to 6
        self.conv2 = nn.Conv2d(c1, c2, 6)            # 6 -> 1
        self.bn1 = nn.BatchNorm2d(c1) if batch_norm else nn.Identity()
        self.bn2 = nn.BatchNorm2d(c2) if batch_norm else nn.Identity()
        flat = in_channels * 14 * 14
        self.skip1 = nn.Linear(flat, c1 * 6 * 6) if skip else None
        self.skip2 = nn.Linear(flat, c2) if skip else None
        self.fc = nn.Linear(c2, hidden)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.flatten(1)
        h = self.bn1(F.relu(F.max_pool2d(self.conv1(x), 2)))
        if self.skip1 is not None:
            h = h + F.relu(self.skip1(flat)).view_as(h)
        h = self.bn2(F.relu(self.conv2(h))).flatten(1)
        if self.skip2 is not None:
            h = h + F.relu(self.skip2(flat))
        return F.relu(self.fc(h))


class PairNet(Model):
    """The plain pair model: both digits as channels of one image, `num_classes` (2) outputs."""

    def __init__(self, c1: int = 64, c2: int = 64, hidden: int = 64, batch_norm: bool = True,
                 skip: bool = False, *, in_channels: int = 1, num_classes: int = 2):
        super().__init__()
        self.body = PairBranch(2 * in_channels, c1, c2, hidden, batch_norm, skip)
        self.head = nn.Linear(hidden, num_classes)
        self.num_features, self.input_size = hidden, (2 * in_channels, 14, 14)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


class SiameseNet(Model):
    """One branch (1 channel in, 10 digit logits out) applied to both digits with shared weights; the
    two 10-way outputs, concatenated, are the 20-d features, and the head maps them to the pair's 2 classes."""

    def __init__(self, c1: int = 64, c2: int = 64, hidden: int = 64, batch_norm: bool = True,
                 skip: bool = False, *, in_channels: int = 1, num_classes: int = 2):
        super().__init__()
        self.branch = nn.Sequential(PairBranch(in_channels, c1, c2, hidden, batch_norm, skip), nn.Linear(hidden, 10))
        self.head = nn.Linear(20, num_classes)
        self.num_features, self.input_size = 20, (2 * in_channels, 14, 14)

    def digit_logits(self, x: torch.Tensor) -> torch.Tensor:
        """(N, 2, 10): both digits through the same branch in one batch."""
        n = len(x)
        return self.branch(x.reshape(2 * n, -1, *x.shape[2:])).view(n, 2, 10)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.digit_logits(x).flatten(1)


def pair_objective(model: nn.Module, x: torch.Tensor, y: torch.Tensor):
    """Cross-entropy on the pair target; accuracy of argmax(model(x))."""
    logits = model(x)
    t = y[:, 0]  # labels of pairs are (target, digit 1, digit 2): see lastlayer.papers.digit_pairs
    return F.cross_entropy(logits, t), (logits.argmax(1) == t).sum()


def siamese_objective(w_pair: float = 1.0, w_aux: float = 10 ** -0.5, readout: str = "pair"):
    """w_pair·CE(pair) + w_aux·(CE(digit 1) + CE(digit 2)).

    readout 'pair' predicts with the head ("siamese 2"); 'digits' predicts digit 1 <= digit 2 from the two
    argmax digits ("siamese 10"), for which the head is not needed and w_pair may be 0.
    """
    if readout not in ("pair", "digits"):
        raise ValueError(f"readout must be 'pair' or 'digits', not {readout!r}")

    def objective(model: SiameseNet, x: torch.Tensor, y: torch.Tensor):
        d = model.digit_logits(x)
        t, cls = y[:, 0], y[:, 1:]
        aux = F.cross_entropy(d[:, 0], cls[:, 0]) + F.cross_entropy(d[:, 1], cls[:, 1])
        if readout == "pair" or w_pair:
            logits = model.head(d.flatten(1))
            loss = w_pair * F.cross_entropy(logits, t) + w_aux * aux
        else:
            loss = w_aux * aux
        if readout == "pair":
            pred = logits.argmax(1)
        else:
            digit = d.argmax(2)
            pred = (digit[:, 0] <= digit[:, 1]).long()
        return loss, (pred == t).sum()

    return objective
