"""A small CNN for 28x28 images: three 3x3 conv blocks (BN, ReLU; max-pool after the first two) and a
global average pool, so the embedding is non-negative like a ResNet's, then a swappable `head`.

It stands in for the paper's ResNet-18 where two CPU cores must train dozens of models in minutes.
`features(x)` is the pooled (N, widths[-1]) embedding and `forward(x) == head(features(x))`.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .base import Model


def _block(c_in: int, c_out: int, pool: bool) -> nn.Sequential:
    layers = [nn.Conv2d(c_in, c_out, 3, padding=1, bias=False), nn.BatchNorm2d(c_out), nn.ReLU(inplace=True)]
    return nn.Sequential(*layers, *([nn.MaxPool2d(2)] if pool else []))


class ConvNet(Model):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, widths: tuple[int, ...] | list[int] = (32, 64, 128)):
        super().__init__()
        widths = list(widths)
        if not widths or min(widths) < 1:
            raise ValueError(f"widths must be a non-empty list of positive channel counts, got {widths}")
        chans = [in_channels, *widths]
        # pool after every block but the last: 28 -> 14 -> 7 with the default three blocks
        self.body = nn.Sequential(*(_block(chans[i], chans[i + 1], pool=i < len(widths) - 1)
                                    for i in range(len(widths))),
                                  nn.AdaptiveAvgPool2d(1), nn.Flatten())
        self.num_features, self.input_size = widths[-1], (in_channels, 28, 28)
        self.head = nn.Linear(widths[-1], num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
