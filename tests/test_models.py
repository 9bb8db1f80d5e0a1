"""One contract for every model: `features(x)`, `head`, `num_features`, `reset_head`, forward == head(features),
and one registry that builds them all with the same keywords."""
import pytest
import torch
import torch.nn as nn

from lastlayer.heads import ClassifierHead
from lastlayer.models import Model, create_model, list_models

HEAVY = {"f34", "f50", "embed2d_resnet101"}  # ImageNet-sized nets: built once, not for both channel counts


def _cases():
    for name in list_models():
        for channels in ((1,) if name in HEAVY else (1, 3)):
            yield name, channels


@pytest.mark.parametrize("name, in_channels", list(_cases()))
def test_every_model_follows_the_contract(name, in_channels):
    torch.manual_seed(0)
    model = create_model(name, num_classes=3, in_channels=in_channels).eval()
    assert isinstance(model, Model) and isinstance(model.head, nn.Module)
    assert model.num_classes == 3
    x = torch.randn(2, *model.input_size)
    with torch.no_grad():
        f = model.features(x)
        assert f.shape == (2, model.num_features)
        assert model(x).shape == (2, 3)
        assert torch.allclose(model(x), model.head(f), atol=1e-6)
    model.reset_head(kind="cosine", fixed=True, scale=5.0, num_classes=4)
    assert isinstance(model.head, ClassifierHead) and model.head.in_features == model.num_features
    with torch.no_grad():
        out = model(x)
    assert out.shape == (2, 4) and (out.abs() <= 5.0 + 0.01 + 1e-5).all()


def test_reset_head_takes_a_module_and_checks_its_size():
    model = create_model("convnet", num_classes=5)
    new = nn.Linear(model.num_features, 7)
    assert model.reset_head(new).head is new and model.num_classes == 7
    with pytest.raises(ValueError, match="features"):
        model.reset_head(nn.Linear(model.num_features + 1, 7))
    with pytest.raises(TypeError):
        model.reset_head(new, kind="dot")


def test_reset_head_keeps_the_head_trainable_or_fixed_as_asked():
    model = create_model("basenet", num_classes=4)
    n_body = sum(p.numel() for p in model.parameters()) - sum(p.numel() for p in model.head.parameters())
    model.reset_head(fixed=True)
    assert sum(p.numel() for p in model.parameters()) == n_body  # the optimiser would see the body only
    model.reset_head(fixed=False, bias=None)
    assert sum(p.numel() for p in model.parameters()) == n_body + 4 * model.num_features


def test_former_constructor_keywords_still_work():
    assert create_model("embed2d_cnn", num_classes=4).head.out_features == 4
    from lastlayer.models import Embed2dCNN, PairNet, SiameseNet
    assert Embed2dCNN(classes=6).head.out_features == 6 and Embed2dCNN(6).head.out_features == 6
    assert PairNet(8, 8, 16, False, True).input_size == (2, 14, 14)
    assert SiameseNet(8, 8, 16).digit_logits(torch.randn(3, 2, 14, 14)).shape == (3, 2, 10)


def test_unknown_model_is_named():
    with pytest.raises(ValueError, match="unknown model 'vgg'"):
        create_model("vgg")
