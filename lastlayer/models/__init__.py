"""Every model of the library behind one interface: `features(x)` (the embedding), `head` (the classifier),
`forward(x) == head(features(x))`. `create_model(name, **kwargs)` builds any of them by name."""
from __future__ import annotations

import torch.nn as nn

from .basenet import BaseNet
from .convnet import ConvNet
from .embed2d import Embed2dCNN, Embed2dResNet101
from .pairnet import PairNet, SiameseNet
from .plain import PLAIN_MODELS
from .resnet_cifar import ResNetCifar

_REGISTRY: dict[str, type[nn.Module]] = {
    "pairnet": PairNet,
    "siamese": SiameseNet,
    **PLAIN_MODELS,
    "convnet": ConvNet,
    "resnet18_cifar": ResNetCifar,
    "basenet": BaseNet,
    "embed2d_cnn": Embed2dCNN,
    "embed2d_resnet101": Embed2dResNet101,
}


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, **kwargs) -> nn.Module:
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    return _REGISTRY[name](**kwargs)
