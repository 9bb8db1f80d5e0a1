"""The base model of Anand, Bhupathiraju and Chandrala (2022): two conv layers, each followed by max-pool
then the activation, then two linear layers with the activation between them.

The paper gives no sizes. The defaults are those of PyTorch's classic MNIST example, which has exactly this
layout (conv 5x5 to 10 maps, conv 5x5 to 20 maps, linear 320 -> 50 -> classes), without its dropout: the
paper wants a model with no regulariser. `features(x)` is the 50-d hidden layer and `head` the last linear
layer, so that `forward(x) == head(features(x))`.
"""
from __future__ import annotations

import torch
import torch.nn as nn
import torch.nn.functional as F

from .base import Model

_ACTIVATIONS = {"relu": nn.ReLU, "leaky_relu": nn.LeakyReLU, "tanh": nn.Tanh}


class BaseNet(Model):
    def __init__(self, in_channels: int = 1, num_classes: int = 10, image_size: int = 28, c1: int = 10,
                 c2: int = 20, kernel_size: int = 5, hidden: int = 50, activation: str = "relu"):
        super().__init__()
        if activation not in _ACTIVATIONS:
            raise ValueError(f"unknown activation {activation!r}; choose one of {', '.join(_ACTIVATIONS)}")
        side = ((image_size - kernel_size + 1) // 2 - kernel_size + 1) // 2
        if side < 1:
            raise ValueError(f"image_size {image_size} is too small for two {kernel_size}x{kernel_size} convs "
                             f"each followed by a 2x2 max-pool")
        self.conv1 = nn.Conv2d(in_channels, c1, kernel_size)
        self.conv2 = nn.Conv2d(c1, c2, kernel_size)
        self.act = _ACTIVATIONS[activation]()
        self.fc1 = nn.Linear(c2 * side * side, hidden)
        self.head = nn.Linear(hidden, num_classes)
        self.num_features, self.input_size = hidden, (in_channels, image_size, image_size)

    def features(self, x: torch.Tensor) -> torch.Tensor:
        h = self.act(F.max_pool2d(self.conv1(x), 2))
        h = self.act(F.max_pool2d(self.conv2(h), 2))
        return self.act(self.fc1(h.flatten(1)))
