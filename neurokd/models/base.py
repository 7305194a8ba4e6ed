"""Teacher ANN and SNN student of one topology, built from the same layer list.

A model is an ordered list of named layers. A layer that is the placeholder :data:`NEURON`
becomes a :class:`~neurokd.models.neurons.LIF` in the student and a ``ReLU`` in the teacher, so
the two always share their topology. Everything else must be an exportable piece: ``Linear``,
``Conv1d``/``Conv2d``, ``AvgPool1d``/``AvgPool2d``, :class:`SumPool2d`, ``Flatten``,
``BatchNorm1d``/``BatchNorm2d`` (folded into the preceding layer at export). The last layer is a
non-spiking readout (``Linear``) whose output, averaged over the ``T`` steps, is the logits.

Direct encoding: the student repeats its input at each of the ``T`` time steps.
"""

from __future__ import annotations

import copy
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch import nn

from neurokd.models.neurons import LIF


class _NeuronPlaceholder:
    """Marks where a neuron goes: LIF in the student, ReLU in the teacher."""

    def __repr__(self) -> str:
        return "NEURON"


NEURON = _NeuronPlaceholder()


class SumPool2d(nn.Module):
    """Sum pooling (NIR ``SumPool2d``): ``AvgPool2d`` times the kernel area."""

    def __init__(self, kernel_size: int, stride: int | None = None, padding: int = 0) -> None:
        super().__init__()
        self.kernel_size = kernel_size
        self.stride = stride if stride is not None else kernel_size
        self.padding = padding

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        k = self.kernel_size
        return nn.functional.avg_pool2d(x, k, self.stride, self.padding, count_include_pad=True) * (k * k)


@dataclass
class Topology:
    """What a registry builder returns: named layers (with :data:`NEURON` placeholders) and shapes."""

    layers: list[tuple[str, nn.Module | _NeuronPlaceholder]]
    input_shape: tuple[int, ...]
    num_classes: int
    info: dict = field(default_factory=dict)


class Teacher(nn.Module):
    """The ANN teacher: the topology with ReLU neurons, applied once per sample."""

    def __init__(self, topology: Topology) -> None:
        super().__init__()
        self.input_shape = tuple(topology.input_shape)
        self.num_classes = topology.num_classes
        self.net = nn.Sequential(
            OrderedDict(
                (name, nn.ReLU() if layer is NEURON else copy.deepcopy(layer)) for name, layer in topology.layers
            )
        )

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net(x)


class Student(nn.Module):
    """The SNN student: the topology with :class:`LIF` neurons, run for ``timesteps`` steps.

    ``forward(x)`` returns the logits (readout averaged over time). ``run(x)`` also returns the
    spike trains of every LIF layer, ``{name: (T, B, ...)}``, with gradients, for activity
    regularisation and counting.
    """

    def __init__(self, topology: Topology, timesteps: int, neuron: Callable[[], LIF] | None = None) -> None:
        super().__init__()
        if timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {timesteps}")
        make = neuron or (lambda: LIF())
        self.timesteps = int(timesteps)
        self.input_shape = tuple(topology.input_shape)
        self.num_classes = topology.num_classes
        self.net = nn.Sequential(
            OrderedDict(
                (name, make() if layer is NEURON else copy.deepcopy(layer)) for name, layer in topology.layers
            )
        )

    def spiking_layers(self) -> list[str]:
        return [name for name, m in self.net.named_children() if isinstance(m, LIF)]

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """Return ``(logits, spikes, readout)``: logits ``(B, C)``, spikes per LIF layer
        ``(T, B, ...)``, and the readout at each step ``(T, B, C)``."""
        T, B = self.timesteps, x.shape[0]
        h = x.unsqueeze(0).expand(T, *x.shape).reshape(T * B, *x.shape[1:])  # direct encoding
        spikes: dict[str, torch.Tensor] = {}
        for name, layer in self.net.named_children():
            if isinstance(layer, LIF):
                s = layer(h.reshape(T, B, *h.shape[1:]))
                spikes[name] = s
                h = s.reshape(T * B, *s.shape[2:])
            else:
                h = layer(h)
        readout = h.reshape(T, B, *h.shape[1:])
        return readout.mean(0), spikes, readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]
