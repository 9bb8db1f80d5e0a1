"""Weight initialisers by name: Xavier, Kaiming (forward, backward) and ASV (forward, backward).

Every method draws weights from N(0, std²) and zeroes biases. Xavier and Kaiming use the weight's shape
only, as the official ASV code has them, on every conv and linear layer including the last:
    xavier            std = sqrt(2 / (fan_in + fan_out))
    kaiming_forward   std = sqrt(2 / fan_in)      fan_in  = C_in · k · k  (conv), in  (linear)
    kaiming_backward  std = sqrt(2 / fan_out)     fan_out = C_out · k · k (conv), out (linear)

ASV (Henmi et al.) sees a "layer" as a weight layer together with the ReLU and/or pooling that follow it,
and uses the shapes the layer actually has in the network, from one dry forward pass:
    asv_forward   Var = M'_l / (τ_{l-1} ε_l)   (M'_l elements out of the weight layer, before pooling)
    asv_backward  Var = M_{l-1} / (γ_l ε_l)    (M_{l-1} elements into it)
ε_l counts the non-zero connections: for a conv, the kernel taps that fall inside the input at every output
position, times C_in, times C_out (so padding, stride and dilation count exactly); for a linear layer in·out.
τ is the second moment that survives ReLU and pooling, γ the share of gradient variance that flows back
through them (1 with nothing after the layer, 1/2 after a ReLU; see `pool_tau`, `pool_gamma`). τ_0 = 1 for
inputs of unit second moment. With stride 1, no boundary and a ReLU only, ASV is exactly Kaiming.
As in the official code, each ASV std is capped at `cap` times the std the same formula gives with τ (or γ)
= 1/2: without the cap the layer before global average pooling would start with std > 1.

The dry forward pass records the network's operations with a `TorchFunctionMode`, so functional calls
(`F.relu`, `F.max_pool2d`, `x.mean((2, 3))`) are seen as well as modules. ASV's theory covers plain chains of
conv/linear, ReLU and pooling; batch norm, residual additions, other activations and weights applied twice
are rejected with an error rather than silently mis-modelled.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import torch
import torch.nn as nn
import torch.nn.functional as F
from torch.overrides import TorchFunctionMode

METHODS = ("xavier", "kaiming_forward", "kaiming_backward", "asv_forward", "asv_backward")
ASV_METHODS = ("asv_forward", "asv_backward")
DEFAULT_CAP = 3.0

_WEIGHT_OPS = {"conv2d", "linear"}
_RELU_OPS = {"relu", "relu_"}
_MAX_OPS = {"max_pool2d", "max_pool2d_with_indices", "adaptive_max_pool2d", "adaptive_max_pool2d_with_indices"}
_AVG_OPS = {"avg_pool2d", "adaptive_avg_pool2d", "mean"}
_NORM_OPS = {"batch_norm", "layer_norm", "group_norm", "instance_norm"}
_OTHER_ACTIVATIONS = {"sigmoid", "tanh", "gelu", "leaky_relu", "elu", "silu", "selu", "softplus", "hardtanh",
                      "relu6", "prelu", "celu", "mish", "hardswish"}
_ADD_OPS = {"add", "add_", "__add__", "__iadd__", "__radd__"}


# ---------------------------------------------------------------- τ and γ of ReLU followed by pooling

def _max_tau(T: int) -> float:
    """E[max(0, s_1..s_T)²] for T independent standard normals: T ∫₀^∞ s² φ(s) Φ(s)^{T-1} ds."""
    from scipy.integrate import quad
    from scipy.stats import norm
    return T * quad(lambda s: s * s * norm.pdf(s) * norm.cdf(s) ** (T - 1), 0, math.inf)[0]


def pool_tau(pool: str | None, T: int = 1, relu: bool = True) -> float:
    """Signal second moment after ReLU and pooling over T elements, relative to the variance before.

    pool: None (ReLU only or nothing), 'max' or 'avg'. Without a ReLU (and without pooling) τ = 1.
    """
    if not relu:
        if pool is not None:
            raise ValueError("ASV's τ is derived for ReLU followed by pooling; pooling without ReLU is not covered")
        return 1.0
    if pool is None:
        return 0.5
    _check_T(T)
    if pool == "max":
        return _max_tau(T)
    if pool == "avg":
        return (1 + (T - 1) / math.pi) / (2 * T)
    raise ValueError(f"unknown pooling {pool!r}; expected None, 'max' or 'avg'")


def pool_gamma(pool: str | None, T: int = 1, relu: bool = True) -> float:
    """Share of the gradient variance that passes back through ReLU and pooling over T elements."""
    if not relu:
        if pool is not None:
            raise ValueError("ASV's γ is derived for ReLU followed by pooling; pooling without ReLU is not covered")
        return 1.0
    if pool is None:
        return 0.5
    _check_T(T)
    if pool == "max":
        return (1 - 2.0 ** -T) / T
    if pool == "avg":
        return 1 / (2 * T * T)
    raise ValueError(f"unknown pooling {pool!r}; expected None, 'max' or 'avg'")


def windowed_max_gamma(size, kernel, stride=None, padding=0) -> float:
    """γ of ReLU then max pooling counted over the actual windows, overlapping or not.

    With a gradient at the pooled output of independent elements of unit variance, an input receives the sum
    of the gradients of the windows whose (positive) maximum it holds, so its expected square is the number of
    such windows; summed over the inputs that is the number of windows with a positive maximum. Hence
        γ = Σ_windows (1 - 2^{-T_w}) / (number of inputs),
    T_w the in-bound elements of window w (padding holds -inf for max pooling). With stride = kernel and no
    padding every T_w = T and there are (inputs / T) windows: `pool_gamma('max', T)`. With overlapping windows
    (stride < kernel) there are more windows than inputs / T, and γ is larger: for a 3x3 window of stride 2
    about 1/4 instead of 0.111. `size`, `kernel`, `stride` and `padding` are ints or (h, w) pairs.
    """
    size, kernel = _pair(size), _pair(kernel)
    stride, padding = _pair(kernel if stride is None else stride), _pair(padding)
    ones = torch.ones(1, 1, *size, dtype=torch.float64)
    # the window sums of ones over a zero-padded map count each window's in-bound elements
    T = F.avg_pool2d(ones, kernel, stride, padding, count_include_pad=True) * (kernel[0] * kernel[1])
    return float((1 - 2.0 ** -T.round()).sum() / ones.numel())


def _check_T(T: int) -> None:
    if int(T) != T or T < 1:
        raise ValueError(f"a pooling window holds a positive whole number of elements, not {T!r}")


# ---------------------------------------------------------------- the network's layers, from a dry pass

@dataclass
class Layer:
    """One ASV layer: a weight layer and what follows it, with the shapes of the dry forward pass."""
    name: str              # the weight's module name, e.g. 'body.0'
    kind: str              # 'conv' or 'linear'
    weight: nn.Parameter
    fan_in: int
    fan_out: int
    m_in: int              # M_{l-1}: elements entering the layer (per example)
    m_out: int             # M'_l: elements out of the weight layer, before pooling
    eps: int               # ε_l: non-zero connections
    relu: bool = False
    pool: str | None = None  # None, 'max' or 'avg'
    T: int = 1             # pooling window size

    @property
    def tau(self) -> float:
        return pool_tau(self.pool, self.T, self.relu)

    @property
    def gamma(self) -> float:
        return pool_gamma(self.pool, self.T, self.relu)


def _arg(args, kwargs, i: int, name: str, default=None):
    return args[i] if len(args) > i else kwargs.get(name, default)


def _pair(v) -> tuple[int, int]:
    return (v, v) if isinstance(v, int) else tuple(v)


def _taps(size: int, kernel: int, stride: int, padding, dilation: int) -> int:
    """Along one axis: the kernel taps that fall inside the input, summed over the output positions."""
    span = dilation * (kernel - 1) + 1
    if padding == "same":  # stride 1; torch pads (span - 1) // 2 before, the rest after
        positions, padding = size, (span - 1) // 2
    else:
        padding = 0 if padding == "valid" else padding
        positions = (size + 2 * padding - span) // stride + 1
    return sum(1 for o in range(positions) for k in range(kernel)
               if 0 <= o * stride - padding + k * dilation < size)


def _conv_connections(x: torch.Tensor, weight: torch.Tensor, args, kwargs) -> int:
    """ε of a conv: C_out · C_in · (in-bounds taps summed over output positions). The count factorises
    over the two spatial axes, so it is computed per axis."""
    stride, padding, dilation = (_arg(args, kwargs, i, n, d) for i, n, d in
                                 ((3, "stride", 1), (4, "padding", 0), (5, "dilation", 1)))
    stride, dilation = _pair(stride), _pair(dilation)
    padding = padding if isinstance(padding, str) else _pair(padding)
    c_out, c_in, kh, kw = weight.shape
    per_axis = [_taps(x.shape[-2 + a], weight.shape[2 + a], stride[a],
                      padding if isinstance(padding, str) else padding[a], dilation[a]) for a in (0, 1)]
    return c_out * c_in * per_axis[0] * per_axis[1]


class _Recorder(TorchFunctionMode):
    """Runs every torch function unchanged and turns the ones ASV cares about into `Layer`s."""

    def __init__(self, weights: dict[int, tuple[str, nn.Parameter]]):
        super().__init__()
        self.weights = weights  # id of a stand-in weight -> (layer name, the model's own parameter)
        self.layers: list[Layer] = []
        self.problem: str | None = None

    def _fail(self, message: str) -> None:
        self.problem = self.problem or message

    def __torch_function__(self, func, types, args=(), kwargs=None):
        kwargs = kwargs or {}
        out = func(*args, **kwargs)
        name = getattr(func, "__name__", "")
        if name in _WEIGHT_OPS:
            self._weight(name, args, kwargs, out)
        elif name in _RELU_OPS | _MAX_OPS | _AVG_OPS:
            self._after(name, args, kwargs)
        elif name in _NORM_OPS:
            self._fail(f"{name} found: ASV assumes a plain network without normalisation layers")
        elif name in _OTHER_ACTIVATIONS:
            self._fail(f"{name} found: ASV's τ and γ are derived for ReLU only")
        elif name in _ADD_OPS and len(args) >= 2 and all(isinstance(a, torch.Tensor) for a in args[:2]) \
                and args[0].shape == args[1].shape and args[0].dim() >= 2:
            self._fail("an addition of two feature maps (a residual connection?) found: ASV assumes a plain "
                       "chain of layers")
        return out

    def _weight(self, op: str, args, kwargs, out: torch.Tensor) -> None:
        x, weight = args[0], _arg(args, kwargs, 1, "weight")
        if id(weight) not in self.weights:
            return self._fail(f"a {op} uses a weight that is not a parameter of the model")
        key, param = self.weights[id(weight)]
        if any(layer.name == key for layer in self.layers):
            return self._fail(f"the weight of {key!r} is applied twice; ASV needs each weight layer used once")
        receptive = math.prod(weight.shape[2:]) if op == "conv2d" else 1
        if op == "conv2d":
            if _arg(args, kwargs, 6, "groups", 1) != 1:
                return self._fail(f"{key!r} is a grouped convolution, which ASV does not cover")
            eps = _conv_connections(x, weight, args, kwargs)
        else:
            eps = weight.shape[0] * weight.shape[1]
        self.layers.append(Layer(key, "conv" if op == "conv2d" else "linear", param,
                                 fan_in=weight.shape[1] * receptive, fan_out=weight.shape[0] * receptive,
                                 m_in=x[0].numel(), m_out=out[0].numel(), eps=eps))

    def _after(self, op: str, args, kwargs) -> None:
        if not self.layers:
            return self._fail(f"{op} before the first weight layer: ASV cannot account for it")
        layer, x = self.layers[-1], args[0]
        if op in _RELU_OPS:
            if layer.pool == "avg":
                self._fail(f"ReLU after average pooling after {layer.name!r}: ASV covers ReLU then pooling")
            layer.relu = True  # max-pool then ReLU equals ReLU then max-pool: both are monotone
            return
        if layer.pool is not None:
            return self._fail(f"two poolings after {layer.name!r}: ASV covers one")
        layer.pool = "max" if op in _MAX_OPS else "avg"
        layer.T = self._window(op, x, args, kwargs)

    def _window(self, op: str, x: torch.Tensor, args, kwargs) -> int:
        """T: the elements one pooled output summarises (the kernel area; all of it for global pooling)."""
        if op == "mean":
            dims = _arg(args, kwargs, 1, "dim")
            dims = [dims] if isinstance(dims, int) else list(dims or [])
            spatial = {d % x.dim() for d in dims}
            if x.dim() != 4 or not spatial or not spatial <= {2, 3}:
                self._fail(f"a mean over dims {dims} of a {x.dim()}-d tensor: only spatial means count as pooling")
                return 1
            return math.prod(x.shape[d] for d in spatial)
        if op.startswith("adaptive"):
            out = _pair(_arg(args, kwargs, 1, "output_size"))
            out = tuple(x.shape[-2 + i] if o is None else o for i, o in enumerate(out))
            if x.shape[-2] % out[0] or x.shape[-1] % out[1]:
                self._fail(f"adaptive pooling from {tuple(x.shape[-2:])} to {out} has uneven windows")
                return 1
            return (x.shape[-2] // out[0]) * (x.shape[-1] // out[1])
        return math.prod(_pair(_arg(args, kwargs, 1, "kernel_size")))


def trace(model: nn.Module, input_shape) -> list[Layer]:
    """The model's ASV layers, in the order of one dry forward pass of one example of `input_shape`
    (C, H, W). The model's weights are not touched."""
    input_shape = tuple(int(s) for s in input_shape)
    if not input_shape or min(input_shape) < 1:
        raise ValueError(f"input_shape must be the shape of one example, e.g. (3, 224, 224); got {input_shape}")
    params = dict(model.named_parameters())
    if not params:
        raise ValueError("the model has no parameters to initialise")
    # stand-ins on the meta device for every parameter and buffer: the pass computes shapes only
    meta = {n: torch.empty_like(t, device="meta") for n, t in (*params.items(), *model.named_buffers())}
    recorder = _Recorder({id(meta[n]): (n.removesuffix(".weight"), p) for n, p in params.items()})
    was_training = model.training
    model.eval()
    try:
        with torch.no_grad(), recorder:
            x = torch.zeros((1, *input_shape), device="meta", dtype=next(iter(params.values())).dtype)
            torch.func.functional_call(model, meta, (x,))
    finally:
        model.train(was_training)
    if recorder.problem:
        raise ValueError(f"ASV cannot initialise {type(model).__name__}: {recorder.problem}")
    if not recorder.layers:
        raise ValueError(f"{type(model).__name__} has no conv2d or linear layer to initialise")
    for layer in recorder.layers:
        if layer.pool is not None and not layer.relu:
            raise ValueError(f"ASV cannot initialise {type(model).__name__}: pooling without ReLU after "
                             f"{layer.name!r}")
    return recorder.layers


# ---------------------------------------------------------------- the stds of each method

def _weight_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    return [(n, m) for n, m in model.named_modules() if isinstance(m, (nn.Conv2d, nn.Linear))]


def _fans(weight: torch.Tensor) -> tuple[int, int]:
    receptive = math.prod(weight.shape[2:])
    return weight.shape[1] * receptive, weight.shape[0] * receptive


def asv_stds(layers: list[Layer], mode: str, cap: float | None = DEFAULT_CAP,
             tau_input: float = 1.0) -> list[float]:
    """ASV's std per layer; mode 'forward' or 'backward'; cap None for the uncapped formula."""
    if mode not in ("forward", "backward"):
        raise ValueError(f"ASV mode must be 'forward' or 'backward', not {mode!r}")
    if cap is not None and cap <= 0:
        raise ValueError(f"cap must be positive or None, not {cap}")
    stds = []
    for i, layer in enumerate(layers):
        if mode == "forward":
            num, share = layer.m_out, (tau_input if i == 0 else layers[i - 1].tau)
        else:
            num, share = layer.m_in, layer.gamma
        std = math.sqrt(num / (share * layer.eps))
        if cap is not None:
            std = min(std, cap * math.sqrt(num / (0.5 * layer.eps)))
        stds.append(std)
    return stds


def predicted_gains(layers: list[Layer], stds: list[float], tau_input: float = 1.0
                    ) -> tuple[list[float], list[float]]:
    """What the theory predicts for weights of these stds, layer by layer:
    forward  Var(u_l) / Var(u_{l-1})       = σ_l² (ε_l / M'_l) τ_{l-1}   (Var(u_0) = input second moment)
    backward Var(∂z_{l-1}) / Var(∂z_l)     = σ_l² (ε_l / M_{l-1}) γ_l    (∂z_L = gradient at the logits)
    ASV forward makes every forward gain 1, ASV backward every backward gain 1 (where the cap is not hit)."""
    forward = [s * s * l.eps / l.m_out * (tau_input if i == 0 else layers[i - 1].tau)
               for i, (l, s) in enumerate(zip(layers, stds))]
    backward = [s * s * l.eps / l.m_in * l.gamma for l, s in zip(layers, stds)]
    return forward, backward


def method_stds(layers: list[Layer], method: str, cap: float | None = DEFAULT_CAP,
                tau_input: float = 1.0) -> list[float]:
    """Any method's std per traced layer."""
    _check_method(method)
    if method in ASV_METHODS:
        return asv_stds(layers, method.removeprefix("asv_"), cap, tau_input)
    return [baseline_std(method, l.fan_in, l.fan_out) for l in layers]


def baseline_std(method: str, fan_in: int, fan_out: int) -> float:
    if method == "xavier":
        return math.sqrt(2 / (fan_in + fan_out))
    if method == "kaiming_forward":
        return math.sqrt(2 / fan_in)
    if method == "kaiming_backward":
        return math.sqrt(2 / fan_out)
    raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}")


def _check_method(method: str) -> None:
    if method not in METHODS:
        raise ValueError(f"unknown initialisation {method!r}; choose one of {', '.join(METHODS)}")


def initialize(model: nn.Module, method: str, input_shape=None, *, cap: float | None = DEFAULT_CAP,
               tau_input: float = 1.0) -> dict[str, float]:
    """Initialise `model` in place by `method` (one of METHODS); return {layer name: std}.

    ASV needs `input_shape` (C, H, W): its stds depend on the layer shapes inside the network. Draws use
    torch's global generator: seed it first (`seed_everything`) for reproducible weights.
    """
    _check_method(method)
    if method in ASV_METHODS:
        if input_shape is None:
            raise ValueError(f"{method} needs input_shape (C, H, W): its stds depend on the network's shapes")
        layers = trace(model, input_shape)
        targets = [(layer.name, layer.weight, std) for layer, std in
                   zip(layers, asv_stds(layers, method.removeprefix("asv_"), cap, tau_input))]
        modules = dict(model.named_modules())
        biases = [getattr(modules.get(layer.name), "bias", None) for layer in layers]
    else:
        found = _weight_modules(model)
        if not found:
            raise ValueError(f"{type(model).__name__} has no Conv2d or Linear layer to initialise")
        targets = [(n, m.weight, baseline_std(method, *_fans(m.weight))) for n, m in found]
        biases = [m.bias for _, m in found]
    with torch.no_grad():
        for _, weight, std in targets:
            weight.normal_(0.0, std)
        for bias in biases:
            if isinstance(bias, torch.Tensor):
                bias.zero_()
    return {name: std for name, _, std in targets}


def std_table(model: nn.Module, input_shape, *, cap: float | None = DEFAULT_CAP, tau_input: float = 1.0):
    """A pandas table: one row per layer (numbered from 1) with its shapes, ε, τ, γ and every method's std.
    Nothing is initialised."""
    import pandas as pd
    layers = trace(model, input_shape)
    rows = {"layer": [l.name for l in layers], "kind": [l.kind for l in layers],
            "pool": [f"{l.pool} {l.T}" if l.pool else ("relu" if l.relu else "-") for l in layers],
            "M_in": [l.m_in for l in layers], "M_out": [l.m_out for l in layers], "eps": [l.eps for l in layers],
            "tau": [l.tau for l in layers], "gamma": [l.gamma for l in layers]}
    for method in METHODS:
        rows[method] = method_stds(layers, method, cap, tau_input)
    table = pd.DataFrame(rows)
    table.index = pd.RangeIndex(1, len(layers) + 1, name="l")
    return table
