"""Robustness probes: algorithmic corruptions of test images and adversarial attacks."""
from lastlayer.robustness.attacks import adversarial_accuracy, fgsm
from lastlayer.robustness.corruptions import corrupt

__all__ = ["adversarial_accuracy", "corrupt", "fgsm"]
