"""Heads: dot, cosine and norm-constrained; learned or fixed through one mechanism (buffers)."""
import pytest
import torch
import torch.nn as nn
import torch.nn.functional as F

from lastlayer.heads import ClassifierHead, NormConstrainedLinear, freeze, random_class_vectors


def _steps(module, n=5, weight_decay=0.1):
    params = list(module.parameters())
    opt = torch.optim.SGD(params, lr=0.5, momentum=0.9, weight_decay=weight_decay) if params else None
    g = torch.Generator().manual_seed(0)
    for _ in range(n):
        f = torch.randn(16, module.in_features, generator=g, requires_grad=True)
        loss = F.cross_entropy(module(f), torch.randint(0, module.out_features, (16,), generator=g))
        loss.backward()
        if opt:
            opt.step()
            opt.zero_grad()
    return f


@pytest.mark.parametrize("kind", ["dot", "cosine"])
@pytest.mark.parametrize("bias", [0.01, None])
def test_fixed_head_gets_no_gradient_and_stays_unchanged(kind, bias):
    head = ClassifierHead(8, 4, kind=kind, fixed=True, bias=bias, scale=3.0)
    assert list(head.parameters()) == []
    state = {k: v.clone() for k, v in head.state_dict().items()}
    assert set(state) == ({"weight", "bias"} if bias is not None else {"weight"})
    f = _steps(head)
    assert f.grad is not None  # gradient still flows to the embedding, i.e. into a backbone
    assert head.weight.grad is None and not head.weight.requires_grad
    assert all(torch.equal(v, head.state_dict()[k]) for k, v in state.items())


@pytest.mark.parametrize("kind", ["dot", "cosine"])
def test_learned_head_trains(kind):
    head = ClassifierHead(8, 4, kind=kind)
    w0 = head.weight.detach().clone()
    _steps(head)
    assert not torch.equal(head.weight.detach(), w0)


@pytest.mark.parametrize("scale", [1.0, 20.0])
def test_cosine_logits_bounded_by_scale_plus_bias(scale):
    head = ClassifierHead(16, 5, kind="cosine", scale=scale, bias=0.01)
    logits = head(torch.randn(64, 16) * 100)
    assert (logits.abs() <= scale + 0.01 + 1e-5).all()
    f = head.weight[2:3].detach() * 7.0  # along class 2's vector the logit reaches S + bias
    assert float(head(f)[0, 2].detach()) == pytest.approx(scale + 0.01, rel=1e-5)


def test_dot_head_is_a_linear_map_plus_bias():
    head = ClassifierHead(6, 3, kind="dot", bias=0.01)
    f = torch.randn(4, 6)
    assert torch.allclose(head(f), f @ head.weight.T + 0.01)
    assert ClassifierHead(6, 3, bias=None).bias is None


@pytest.mark.parametrize("fixed", [False, True])
def test_norm_constrained_rows_keep_their_norm_after_steps(fixed):
    head = NormConstrainedLinear(5, 4, norm=3.0, fixed=fixed)
    d0 = head.direction.detach().clone()
    _steps(head, weight_decay=0.5)
    assert torch.allclose(head.weight.norm(dim=1), torch.full((4,), 3.0), atol=1e-5)
    assert torch.equal(head.direction.detach(), d0) == fixed  # learned: the directions did move
    assert len(list(head.parameters())) == (0 if fixed else 1)


def test_freeze_turns_parameters_into_buffers_that_follow_the_module():
    layer = freeze(nn.Linear(3, 2))
    assert list(layer.parameters()) == [] and set(dict(layer.named_buffers())) == {"weight", "bias"}
    assert layer(torch.ones(1, 3)).shape == (1, 2)
    assert layer.to(torch.float64).weight.dtype == torch.float64


def test_head_rejects_bad_arguments():
    with pytest.raises(ValueError, match="kind"):
        ClassifierHead(4, 2, kind="arc")
    with pytest.raises(ValueError, match="scale"):
        ClassifierHead(4, 2, kind="cosine", scale=0)
    with pytest.raises(ValueError, match="norm"):
        NormConstrainedLinear(2, 3, norm=0)


def test_class_vectors_are_unit_rows_from_integer_draw():
    g = torch.Generator().manual_seed(0)
    w = random_class_vectors(7, 33, g)
    assert w.shape == (7, 33)
    assert torch.allclose(w.norm(dim=1), torch.ones(7), atol=1e-6)
    g = torch.Generator().manual_seed(0)
    raw = torch.randint(-100, 100, (7, 33), generator=g).float()
    assert torch.allclose(w, raw / raw.norm(dim=1, keepdim=True))
