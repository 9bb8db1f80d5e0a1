"""Every model of the library behind one contract (`Model`: `features(x)`, `head`, `num_features`,
`reset_head(...)`, `forward(x) == head(features(x))`) and one registry: `create_model(name, num_classes=...,
in_channels=..., **kw)` builds any of them with the same keywords."""
from __future__ import annotations

from typing import Callable

from .base import Model
from .basenet import BaseNet
from .convnet import ConvNet
from .embed2d import Embed2dCNN, Embed2dResNet101
from .pairnet import PairNet, SiameseNet
from .plain import PLAIN_MODELS, PlainNet
from .resnet_cifar import ResNetCifar

# name -> a constructor taking num_classes= and in_channels= (pair models: channels of each of the two images)
_REGISTRY: dict[str, Callable[..., Model]] = {
    "pairnet": PairNet,
    "siamese": SiameseNet,
    **PLAIN_MODELS,
    "convnet": ConvNet,
    "resnet18_cifar": ResNetCifar,
    "basenet": BaseNet,
    "embed2d_cnn": Embed2dCNN,
    "embed2d_resnet101": Embed2dResNet101,
}

__all__ = ["Model", "BaseNet", "ConvNet", "Embed2dCNN", "Embed2dResNet101", "PairNet", "SiameseNet", "PlainNet",
           "ResNetCifar", "create_model", "list_models"]


def list_models() -> list[str]:
    return sorted(_REGISTRY)


def create_model(name: str, *, num_classes: int = 10, in_channels: int = 1, **kwargs) -> Model:
    """Build the registered model `name`; further keywords go to its constructor."""
    if name not in _REGISTRY:
        raise ValueError(f"unknown model {name!r}; choose one of {', '.join(list_models())}")
    return _REGISTRY[name](num_classes=num_classes, in_channels=in_channels, **kwargs)
