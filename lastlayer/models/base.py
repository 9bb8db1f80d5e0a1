"""The one contract every model of the library follows (in the spirit of timm's `forward_features` /
`forward_head`): a backbone `features(x) -> (N, num_features)` and a swappable classifier `head`, with
`forward(x) == head(features(x))` written once, here.

The papers study the last layer, so the head is the part they replace: `reset_head(...)` swaps it for a
given module or for a `ClassifierHead` (dot / cosine, learned / fixed) built from keyword arguments.
"""
from __future__ import annotations

import torch
import torch.nn as nn

from lastlayer.heads import ClassifierHead


class Model(nn.Module):
    """Subclasses set `self.head` and `self.num_features` (the embedding size, the head's input) and
    `self.input_size` (channels, height, width: the input the model was built for), and define `features`."""

    num_features: int
    input_size: tuple[int, int, int]
    head: nn.Module

    def features(self, x: torch.Tensor) -> torch.Tensor:
        raise NotImplementedError

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.head(self.features(x))

    @property
    def num_classes(self) -> int:
        return self.head.out_features

    def reset_head(self, head: nn.Module | None = None, /, **kwargs) -> "Model":
        """Replace the classifier, in place (returns the model, so calls chain).

        `reset_head(module)` installs `module`; `reset_head(kind="cosine", fixed=True, scale=20.0)` builds a
        `ClassifierHead(num_features, num_classes, **kwargs)`, `num_classes` defaulting to the current one.
        The new head lands on the device of the model's parameters."""
        if head is None:
            num_classes = kwargs.pop("num_classes", self.num_classes)
            head = ClassifierHead(self.num_features, num_classes, **kwargs)
        elif kwargs:
            raise TypeError("pass either a head module or ClassifierHead keyword arguments, not both")
        if getattr(head, "in_features", self.num_features) != self.num_features:
            raise ValueError(f"the head takes {head.in_features} features; the model gives {self.num_features}")
        tensor = next(iter(self.state_dict().values()), None)
        self.head = head if tensor is None else head.to(tensor.device)
        return self
