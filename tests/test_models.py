"""One interface for every model of the library: `features(x)` and `head`, with forward == head(features)."""
import pytest
import torch
import torch.nn as nn

from lastlayer.models import create_model, list_models

# a small input each model accepts; F34 and F50 expect ImageNet-sized inputs and are checked for their head only
INPUTS = {"embed2d_resnet101": (1, 28, 28), "basenet": (1, 28, 28), "convnet": (1, 28, 28), "embed2d_cnn": (1, 28, 28), "pairnet": (2, 14, 14),
          "siamese": (2, 14, 14), "resnet18_cifar": (3, 32, 32), "f14_narrow": (1, 28, 28),
          "f20_narrow": (1, 28, 28)}


@pytest.mark.parametrize("name", list_models())
def test_every_model_exposes_features_and_head(name):
    model = create_model(name)
    assert isinstance(model.head, nn.Module)
    if name in INPUTS:
        torch.manual_seed(0)
        x = torch.randn(3, *INPUTS[name])
        model.eval()
        with torch.no_grad():
            assert torch.allclose(model(x), model.head(model.features(x)), atol=1e-6)


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        create_model("vgg")
