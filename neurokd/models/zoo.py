"""The built-in topologies: an MLP for digits, a 1-D conv net and a 1-D ResNet for MFCC keywords, a VGG
for CIFAR-10.

Every builder returns a :class:`~neurokd.models.base.Topology`: a list of named layers made only of
exportable pieces (``Linear``, ``Conv1d``/``Conv2d``, ``BatchNorm1d``/``2d`` folded into the
preceding layer at export, ``AvgPool2d``, ``Flatten``, and :data:`NEURON`), plus, for the ResNet,
residual branches summed at a neuron's input (``Topology.shortcuts``).

Layer names follow one scheme the exporters and reports rely on: weight layers ``conv<i>`` /
``fc<i>``, their batch norms ``bn<i>``, their neurons ``lif<i>`` (same ``i``), pools ``pool<k>``,
``flatten``, and the non-spiking ``readout``; a residual branch into ``lif<i>`` is ``sc<i>`` (its
convolution) and ``scbn<i>`` (its batch norm).
"""

from __future__ import annotations

import math

from torch import nn

from neurokd.errors import NeurokdError
from neurokd.models import register
from neurokd.models.base import NEURON, Topology


@register("mlp")
def mlp(input_shape: tuple[int, ...], num_classes: int, hidden: tuple[int, ...] = (128, 64)) -> Topology:
    """Flatten -> [Linear -> neuron] x len(hidden) -> Linear readout."""
    layers: list = [("flatten", nn.Flatten())]
    n_in = math.prod(input_shape)
    for i, width in enumerate(hidden, start=1):
        layers += [(f"fc{i}", nn.Linear(n_in, int(width))), (f"lif{i}", NEURON)]
        n_in = int(width)
    layers.append(("readout", nn.Linear(n_in, num_classes)))
    return Topology(layers, input_shape, num_classes, {"hidden": list(hidden)})


def _conv_out(length: int, kernel: int, stride: int, padding: int) -> int:
    """Output length of a convolution: ``floor((L + 2p - k) / s) + 1``."""
    return (length + 2 * padding - kernel) // stride + 1


@register("conv1d")
def conv1d(
    input_shape: tuple[int, ...],
    num_classes: int,
    channels: tuple[int, ...] = (32, 64, 64),
    kernel: int = 3,
    strides: tuple[int, ...] | None = None,
    hidden: int = 128,
) -> Topology:
    """A small 1-D conv net for MFCC input ``(n_mfcc, frames)``, e.g. ``(10, 49)``.

    ``[Conv1d(k, stride s_i, padding k//2, no bias) -> BatchNorm1d -> neuron] x len(channels)``,
    then ``Flatten``, an optional hidden ``Linear -> neuron`` (``hidden=0`` leaves it out) and a
    ``Linear`` readout. Time is downsampled by strided convolutions, not pooling; the default
    strides are 1 for the first block and 2 after it. Sequential (see :func:`resnet1d` for the residual
    variant).
    """
    if len(input_shape) != 2:
        raise NeurokdError(f"model conv1d expects input (channels, frames), e.g. MFCC (10, 49); got {tuple(input_shape)}")
    channels = tuple(int(c) for c in channels)
    if not channels or min(channels) < 1 or kernel < 1:
        raise NeurokdError(f"model conv1d needs >= 1 positive channel counts and kernel >= 1; got {channels}, {kernel}")
    if strides is None:
        strides = (1,) + (2,) * (len(channels) - 1)
    strides = tuple(int(s) for s in strides)
    if len(strides) != len(channels):
        raise NeurokdError(f"model conv1d: strides {strides} must have one entry per block ({len(channels)})")
    c_in, length = int(input_shape[0]), int(input_shape[1])
    layers: list = []
    i = 0
    for i, (c_out, s) in enumerate(zip(channels, strides), start=1):
        pad = kernel // 2
        layers += [
            (f"conv{i}", nn.Conv1d(c_in, c_out, kernel, stride=s, padding=pad, bias=False)),
            (f"bn{i}", nn.BatchNorm1d(c_out)),
            (f"lif{i}", NEURON),
        ]
        length = _conv_out(length, kernel, s, pad)
        if length < 1:
            raise NeurokdError(f"model conv1d: input of {input_shape[1]} frames is too short for strides {strides}")
        c_in = c_out
    layers.append(("flatten", nn.Flatten()))
    n_in = c_in * length
    if hidden:
        i += 1
        layers += [(f"fc{i}", nn.Linear(n_in, int(hidden))), (f"lif{i}", NEURON)]
        n_in = int(hidden)
    layers.append(("readout", nn.Linear(n_in, num_classes)))
    info = {"channels": list(channels), "kernel": kernel, "strides": list(strides), "hidden": hidden}
    return Topology(layers, tuple(input_shape), num_classes, info)


VGG11 = (64, "P", 128, "P", 256, 256, "P", 512, 512, "P", 512, 512, "P")


@register("vgg")
def vgg(
    input_shape: tuple[int, ...],
    num_classes: int,
    cfg: tuple = VGG11,
    width: float = 1.0,
    kernel: int = 3,
    hidden: int = 0,
) -> Topology:
    """A VGG-style net for images ``(3, H, W)``; the default ``cfg`` is VGG-11's.

    Each integer ``c`` in ``cfg`` is ``Conv2d(round(c * width), k, padding k//2, no bias) ->
    BatchNorm2d -> neuron``; each ``"P"`` is ``AvgPool2d(2)`` (average pooling, exportable as a
    scaled sum pool). Then ``Flatten``, an optional hidden ``Linear -> neuron`` (``hidden`` > 0)
    and a ``Linear`` readout. Sequential: an image ResNet's identity shortcuts would need per-channel
    delay lines on Loihi (a dense ``DelayDense`` of a 32x32 feature map is too large).
    """
    if len(input_shape) != 3:
        raise NeurokdError(f"model vgg expects image input (channels, height, width); got {tuple(input_shape)}")
    if width <= 0:
        raise NeurokdError(f"model vgg: width multiplier must be > 0, got {width}")
    c_in, h, w = (int(d) for d in input_shape)
    layers: list = []
    i = pools = 0
    for item in cfg:
        if item in ("P", "p", "M"):
            pools += 1
            if h < 2 or w < 2:
                raise NeurokdError(f"model vgg: too many pools in cfg {list(cfg)} for input {tuple(input_shape)}")
            layers.append((f"pool{pools}", nn.AvgPool2d(2)))
            h, w = h // 2, w // 2
            continue
        i += 1
        c_out = max(1, round(int(item) * width))
        layers += [
            (f"conv{i}", nn.Conv2d(c_in, c_out, kernel, padding=kernel // 2, bias=False)),
            (f"bn{i}", nn.BatchNorm2d(c_out)),
            (f"lif{i}", NEURON),
        ]
        c_in = c_out
    layers.append(("flatten", nn.Flatten()))
    n_in = c_in * h * w
    if hidden:
        i += 1
        layers += [(f"fc{i}", nn.Linear(n_in, int(hidden))), (f"lif{i}", NEURON)]
        n_in = int(hidden)
    layers.append(("readout", nn.Linear(n_in, num_classes)))
    info = {"cfg": [c if isinstance(c, str) else int(c) for c in cfg], "width": width, "kernel": kernel, "hidden": hidden}
    return Topology(layers, tuple(input_shape), num_classes, info)


@register("resnet1d")
def resnet1d(
    input_shape: tuple[int, ...],
    num_classes: int,
    stem: int = 16,
    channels: tuple[int, ...] = (16, 32, 64),
    strides: tuple[int, ...] | None = None,
    kernel: int = 3,
) -> Topology:
    """A small spiking 1-D ResNet for MFCC input ``(n_mfcc, frames)``: the GSC student of Louis et al.

    Stem ``Conv1d(k) -> BatchNorm1d -> neuron``, then one basic block per entry of ``channels``::

        s_mid = neuron(bn_a(conv_a(s_in)))                     # conv_a: kernel k, stride s_i
        s_out = neuron(bn_b(conv_b(s_mid)) + shortcut(s_in))   # conv_b: kernel k, stride 1

    ``shortcut`` is the identity when the block keeps the shape, else ``Conv1d(1, stride s_i) ->
    BatchNorm1d`` (``sc<i>``, ``scbn<i>``). The sum sits before the neuron (hard reset to zero), so
    the residual is a second synapse into that neuron, which is how NIR graphs and Loihi express it.
    Then ``Flatten`` and a ``Linear`` readout. Default strides: 1 for the first block, 2 after it.
    On Loihi the shortcut reaches its neuron one step before the two-convolution path; the hardware
    side delays it by that step (a Lava ``DelayDense``), see :mod:`neurokd.hardware.network.ir`.
    """
    if len(input_shape) != 2:
        raise NeurokdError(f"model resnet1d expects input (channels, frames), e.g. MFCC (10, 49); got {tuple(input_shape)}")
    channels = tuple(int(c) for c in channels)
    if not channels or min(channels) < 1 or int(stem) < 1 or kernel < 1 or kernel % 2 == 0:
        raise NeurokdError(f"model resnet1d needs positive channel counts and an odd kernel; got stem {stem}, "
                           f"channels {channels}, kernel {kernel}")
    if strides is None:
        strides = (1,) + (2,) * (len(channels) - 1)
    strides = tuple(int(s) for s in strides)
    if len(strides) != len(channels) or min(strides) < 1:
        raise NeurokdError(f"model resnet1d: strides {strides} must be >= 1, one per block ({len(channels)})")
    c_in, length = int(input_shape[0]), int(input_shape[1])
    pad = kernel // 2
    layers: list = [("conv1", nn.Conv1d(c_in, int(stem), kernel, padding=pad, bias=False)),
                    ("bn1", nn.BatchNorm1d(int(stem))), ("lif1", NEURON)]
    shortcuts: dict = {}
    c_in, i, last = int(stem), 1, "lif1"
    for c_out, s in zip(channels, strides):
        a, b = i + 1, i + 2
        layers += [
            (f"conv{a}", nn.Conv1d(c_in, c_out, kernel, stride=s, padding=pad, bias=False)),
            (f"bn{a}", nn.BatchNorm1d(c_out)),
            (f"lif{a}", NEURON),
            (f"conv{b}", nn.Conv1d(c_out, c_out, kernel, padding=pad, bias=False)),
            (f"bn{b}", nn.BatchNorm1d(c_out)),
            (f"lif{b}", NEURON),
        ]
        branch = [] if (s == 1 and c_in == c_out) else [
            (f"sc{b}", nn.Conv1d(c_in, c_out, 1, stride=s, bias=False)), (f"scbn{b}", nn.BatchNorm1d(c_out))]
        shortcuts[f"lif{b}"] = (last, branch)
        length = _conv_out(length, kernel, s, pad)             # >= 1: odd kernel, padding k // 2
        c_in, i, last = c_out, b, f"lif{b}"
    layers += [("flatten", nn.Flatten()), ("readout", nn.Linear(c_in * length, num_classes))]
    info = {"stem": int(stem), "channels": list(channels), "strides": list(strides), "kernel": kernel}
    return Topology(layers, tuple(input_shape), num_classes, info, shortcuts)
