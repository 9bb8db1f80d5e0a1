"""The plain CNNs of Henmi et al. (ASV): ResNet-shaped networks without batch norm and without residuals.

F34: an input block (conv 7x7/2, pad 3, ReLU, max-pool 3x3/2, pad 1), then pairs of 3x3 convs with ReLU,
3 / 4 / 6 / 3 pairs at 64 / 128 / 256 / 512 channels, stride 2 on the first conv of each later stage, global
average pooling and one linear layer (21,108,362 parameters for 10 classes and RGB input). F50 has the same
stem and 1x1 / 3x3 / 1x1 bottlenecks (3, 4, 6, 3 blocks, 4x expansion). Nothing normalises the signal, so its
variance through the layers is set by the initialisation alone — which is what the paper studies.

Every layer is a module (no functional ReLU or pooling) so that the layer structure is visible both to the
initialisers of `lastlayer.init` and to the hooks of `lastlayer.signal`.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from .base import Model


def _conv_relu(c_in: int, c_out: int, kernel: int, stride: int = 1) -> list[nn.Module]:
    return [nn.Conv2d(c_in, c_out, kernel, stride=stride, padding=kernel // 2), nn.ReLU()]


def _basic_block(c_in: int, c_out: int, stride: int) -> list[nn.Module]:
    """ConvBlock(c, s): conv 3x3/s, ReLU, conv 3x3, ReLU."""
    return _conv_relu(c_in, c_out, 3, stride) + _conv_relu(c_out, c_out, 3)


def _bottleneck_block(c_in: int, width: int, stride: int) -> list[nn.Module]:
    """conv 1x1 -> width, conv 3x3/s, conv 1x1 -> 4 width, each with ReLU (stride on the 3x3, as in the
    official code)."""
    return _conv_relu(c_in, width, 1) + _conv_relu(width, width, 3, stride) + _conv_relu(width, 4 * width, 1)


class PlainNet(Model):
    """Stem, stages of basic or bottleneck blocks, global average pooling, linear head.

    `widths[i]` channels in stage i (bottleneck stages output 4x that), `blocks[i]` blocks per stage.
    `features(x)` is the pooled embedding, `head` the last linear layer.
    """

    def __init__(self, widths=(64, 128, 256, 512), blocks=(3, 4, 6, 3), *, bottleneck: bool = False,
                 stem_channels: int = 64, in_channels: int = 3, num_classes: int = 10,
                 image_size: int = 224):
        super().__init__()
        widths, blocks = tuple(widths), tuple(blocks)
        if len(widths) != len(blocks) or not widths:
            raise ValueError(f"widths {widths} and blocks {blocks} must be non-empty and of the same length")
        if min(widths) < 1 or min(blocks) < 1 or stem_channels < 1:
            raise ValueError(f"widths {widths}, blocks {blocks} and stem_channels {stem_channels} must be positive")
        layers = [nn.Conv2d(in_channels, stem_channels, 7, stride=2, padding=3), nn.ReLU(),
                  nn.MaxPool2d(3, stride=2, padding=1)]
        c = stem_channels
        for stage, (width, n) in enumerate(zip(widths, blocks)):
            for b in range(n):
                stride = 2 if stage > 0 and b == 0 else 1
                if bottleneck:
                    layers += _bottleneck_block(c, width, stride)
                    c = 4 * width
                else:
                    layers += _basic_block(c, width, stride)
                    c = width
        layers += [nn.AdaptiveAvgPool2d(1), nn.Flatten()]
        self.body = nn.Sequential(*layers)
        self.head = nn.Linear(c, num_classes)
        self.num_features, self.input_size = c, (in_channels, image_size, image_size)  # nominal: the pool is adaptive

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)


def f34(num_classes: int = 10, in_channels: int = 3) -> PlainNet:
    """The paper's 34-layer plain network (33 convs + 1 linear)."""
    return PlainNet((64, 128, 256, 512), (3, 4, 6, 3), in_channels=in_channels, num_classes=num_classes)


def f50(num_classes: int = 10, in_channels: int = 3) -> PlainNet:
    """The paper's 50-layer plain bottleneck network (49 convs + 1 linear)."""
    return PlainNet((64, 128, 256, 512), (3, 4, 6, 3), bottleneck=True, in_channels=in_channels,
                    num_classes=num_classes)


def f14_narrow(num_classes: int = 10, in_channels: int = 1) -> PlainNet:
    """F34 shallower and narrower for 2 CPU cores: the same stem, 2 basic blocks per stage in three stages
    of 16 / 32 / 64 channels (13 convs + 1 linear)."""
    return PlainNet((16, 32, 64), (2, 2, 2), stem_channels=16, in_channels=in_channels, num_classes=num_classes,
                    image_size=28)


def f20_narrow(num_classes: int = 10, in_channels: int = 1) -> PlainNet:
    """F50 shallower and narrower: the same stem, 2 bottlenecks per stage of widths 8 / 16 / 32
    (outputs 32 / 64 / 128; 19 convs + 1 linear)."""
    return PlainNet((8, 16, 32), (2, 2, 2), bottleneck=True, stem_channels=16, in_channels=in_channels,
                    num_classes=num_classes, image_size=28)


PLAIN_MODELS = {"f34": f34, "f50": f50, "f14_narrow": f14_narrow, "f20_narrow": f20_narrow}
