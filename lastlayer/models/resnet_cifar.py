"""The CIFAR-style ResNet-18 of the fixed-classifier paper's code (after kuangliu/pytorch-cifar):
a 3x3 stem with stride 1 and no max-pool, BasicBlocks 2-2-2-2 at 64/128/256/512 channels (stride 2 at
the start of the last three stages), global average pooling to a 512-d embedding, then `head`.

The pool is adaptive so the same network takes CIFAR's 32x32 and STL-10's 96x96 images.
`features(x)` is the pooled embedding and `forward(x) == head(features(x))`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import Model


class BasicBlock(nn.Module):
    def __init__(self, c_in: int, c_out: int, stride: int = 1):
        super().__init__()
        self.conv1 = nn.Conv2d(c_in, c_out, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(c_out)
        self.conv2 = nn.Conv2d(c_out, c_out, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(c_out)
        self.shortcut = nn.Sequential()
        if stride != 1 or c_in != c_out:  # 1x1 projection where the shape changes
            self.shortcut = nn.Sequential(nn.Conv2d(c_in, c_out, 1, stride, bias=False), nn.BatchNorm2d(c_out))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = F.relu(self.bn1(self.conv1(x)))
        out = self.bn2(self.conv2(out))
        return F.relu(out + self.shortcut(x))


class ResNetCifar(Model):
    def __init__(self, in_channels: int = 3, num_classes: int = 10, blocks: tuple[int, ...] | list[int] = (2, 2, 2, 2),
                 width: int = 64):
        super().__init__()
        self.stem = nn.Sequential(nn.Conv2d(in_channels, width, 3, 1, 1, bias=False), nn.BatchNorm2d(width),
                                  nn.ReLU(inplace=True))
        stages, c_in = [], width
        for i, n in enumerate(blocks):
            c_out = width * 2 ** i
            for j in range(n):
                stages.append(BasicBlock(c_in, c_out, stride=2 if (i > 0 and j == 0) else 1))
                c_in = c_out
        self.stages = nn.Sequential(*stages)
        self.num_features, self.input_size = c_in, (in_channels, 32, 32)
        self.head = nn.Linear(c_in, num_classes)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return F.adaptive_avg_pool2d(self.stages(self.stem(x)), 1).flatten(1)


def resnet18_cifar(in_channels: int = 3, num_classes: int = 10) -> ResNetCifar:
    return ResNetCifar(in_channels, num_classes, (2, 2, 2, 2))
