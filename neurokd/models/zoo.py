"""The built-in topologies: an MLP for digits, a 1-D conv net for MFCC keywords, a VGG for CIFAR-10."""

from __future__ import annotations

import math

from torch import nn

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
