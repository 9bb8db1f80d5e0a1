"""Backbones with a 2-D embedding and a bias-free linear classifier (de la Calle et al., "Geometric
interpretation of a CNN's last layer").

With a 2-D embedding and no bias, each class is a vector W_c in the embedding plane and an image x goes to
the class whose W_c·x is largest: the whole classifier can be drawn. Every model here exposes
`features(x)` (N, 2) and `head` (a `Linear(2, classes, bias=False)` or `NormConstrainedLinear`), with
`forward(x) == head(features(x))`; `head.weight` is always the (classes, 2) matrix of class vectors.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from lastlayer.heads import NormConstrainedLinear  # lives in heads; re-exported for existing imports

from .base import Model


def make_head(embed_dim: int, classes: int, constrain_norm: float | None = None) -> nn.Module:
    """The bias-free classifier: plain, or with every class vector's norm fixed to `constrain_norm`."""
    if constrain_norm is None:
        return nn.Linear(embed_dim, classes, bias=False)
    return NormConstrainedLinear(embed_dim, classes, constrain_norm)


def xavier_init(module: nn.Module) -> None:
    """Xavier (Glorot) uniform weights and zero biases on every conv and linear layer, as the paper does;
    batch-norm layers keep their (1, 0) defaults."""
    for m in module.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.xavier_uniform_(m.weight)
            if m.bias is not None:
                nn.init.zeros_(m.bias)
        elif isinstance(m, NormConstrainedLinear):
            nn.init.xavier_uniform_(m.direction)


class Embed2dCNN(Model):
    """A LeNet-sized CNN for 28x28 digits, cheap enough to train dozens of times on 2 CPU cores: two 5x5
    convolutions of stride 2 with ReLU (strides rather than max-pooling: the same shapes at a third of
    the cost), a hidden linear layer with ReLU, a linear map to the 2-D embedding (no activation, so
    embeddings can lie anywhere in the plane, as after the ResNet's last linear layer), then the
    bias-free classifier."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, channels: tuple[int, int] = (8, 16),
                 hidden: int = 64, embed_dim: int = 2, constrain_norm: float | None = None, *,
                 classes: int | None = None):
        super().__init__()
        num_classes = num_classes if classes is None else classes  # `classes`: the former keyword
        c1, c2 = channels
        self.body = nn.Sequential(
            nn.Conv2d(in_channels, c1, 5, stride=2, padding=2), nn.ReLU(),   # 28 -> 14
            nn.Conv2d(c1, c2, 5, stride=2, padding=2), nn.ReLU(),            # 14 -> 7
            nn.Flatten(), nn.Linear(c2 * 7 * 7, hidden), nn.ReLU(),
            nn.Linear(hidden, embed_dim))
        self.head = make_head(embed_dim, num_classes, constrain_norm)
        self.num_features, self.input_size = embed_dim, (in_channels, 28, 28)
        xavier_init(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        if x.shape[-2:] != (28, 28):
            raise ValueError(f"Embed2dCNN expects 28x28 images, got {tuple(x.shape[-2:])}")
        return self.body(x)


class Embed2dResNet101(Model):
    """The paper's backbone: torchvision's ResNet-101 (random weights), its stem taking `in_channels`
    (1 for MNIST), its 2048-d pooled output mapped linearly to the 2-D embedding, then the bias-free
    classifier; Xavier initialisation throughout."""

    def __init__(self, num_classes: int = 10, in_channels: int = 1, embed_dim: int = 2,
                 constrain_norm: float | None = None, *, classes: int | None = None):
        super().__init__()
        num_classes = num_classes if classes is None else classes
        from torchvision.models import resnet101
        net = resnet101(weights=None)
        net.conv1 = nn.Conv2d(in_channels, 64, kernel_size=7, stride=2, padding=3, bias=False)
        net.fc = nn.Linear(net.fc.in_features, embed_dim)
        self.body = net
        self.head = make_head(embed_dim, num_classes, constrain_norm)
        self.num_features, self.input_size = embed_dim, (in_channels, 28, 28)  # MNIST, as in the paper
        xavier_init(self)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
