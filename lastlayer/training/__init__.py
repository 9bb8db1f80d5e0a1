"""Training: one short trainer with a dataclass config and callbacks (`trainer`), the recorders that plug into
it (`callbacks`)."""
from .callbacks import GradientNorms
from lastlayer.training.trainer import (Callback, NonFiniteLossError, TrainConfig, TrainResult, apply_batched, device_name, evaluate,
                      fit, make_optimizer, resolve_device, seed_everything)

__all__ = ["Callback", "GradientNorms", "NonFiniteLossError", "TrainConfig", "TrainResult", "apply_batched",
           "device_name", "evaluate", "fit", "make_optimizer", "resolve_device", "seed_everything"]
