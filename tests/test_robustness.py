"""The gradient attacks of lastlayer.robustness.attacks: PGD against FGSM."""
import pytest
import torch
import torch.nn.functional as F

from lastlayer.data import Split
from lastlayer.models.basenet import BaseNet
from lastlayer.robustness.attacks import adversarial_accuracy, fgsm, pgd
from lastlayer.training.trainer import TrainConfig, fit


@pytest.fixture(scope="module")
def trained():
    """A small model fitted to an easy synthetic task (the class sets the brightness of one quadrant)."""
    torch.manual_seed(0)
    y = torch.randint(0, 4, (256,))
    x = 0.3 * torch.rand(256, 1, 28, 28)
    for c in range(4):
        r, q = divmod(c, 2)
        x[y == c, :, 14 * r:14 * r + 14, 14 * q:14 * q + 14] += 0.2
    data = Split(x.clamp(0, 1), y, ["a", "b", "c", "d"])
    model = fit(BaseNet(num_classes=4), data, None, TrainConfig(epochs=8, batch_size=32, lr=0.05, momentum=0.5,
                                                                 device="cpu")).model
    return model.eval(), data


def test_pgd_stays_in_the_eps_ball_and_the_pixel_range(trained):
    model, data = trained
    before = [p.clone() for p in model.parameters()]
    adv = pgd(model, data.x[:32], data.y[:32], 0.1, steps=5, generator=torch.Generator().manual_seed(0))
    assert (adv - data.x[:32]).abs().max() <= 0.1 + 1e-6
    assert adv.min() >= 0 and adv.max() <= 1
    assert all(torch.equal(a, b) for a, b in zip(before, model.parameters()))
    with pytest.raises(ValueError, match="steps"):
        pgd(model, data.x[:2], data.y[:2], 0.1, steps=0)


def test_pgd_is_at_least_as_strong_as_fgsm(trained):
    model, data = trained
    clean = adversarial_accuracy(model, data, 0.0)
    eps = 0.15
    acc_fgsm = adversarial_accuracy(model, data, eps)
    acc_pgd = adversarial_accuracy(model, data, eps, attack="pgd", steps=10,
                                   generator=torch.Generator().manual_seed(0))
    assert clean > 0.9 and acc_fgsm < clean
    assert acc_pgd <= acc_fgsm
    with torch.no_grad():  # and it raises the loss more
        loss = lambda adv: float(F.cross_entropy(model(adv), data.y))
        assert loss(pgd(model, data.x, data.y, eps, steps=10)) >= loss(fgsm(model, data.x, data.y, eps))


def test_unknown_attack_is_refused(trained):
    model, data = trained
    with pytest.raises(ValueError, match="unknown attack"):
        adversarial_accuracy(model, data, 0.1, attack="cw")
