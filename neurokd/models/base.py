"""Teacher ANN and SNN student of one topology, built from the same layer list.

A model is an ordered list of named layers. A layer that is the placeholder :data:`NEURON`
becomes a :class:`~neurokd.models.neurons.LIF` in the student and a ``ReLU`` in the teacher, so
the two always share their topology. Everything else must be an exportable piece: ``Linear``,
``Conv1d``/``Conv2d``, ``AvgPool1d``/``AvgPool2d``, :class:`SumPool2d`, ``Flatten``,
``BatchNorm1d``/``BatchNorm2d`` (folded into the preceding layer at export). The last layer is a
non-spiking readout (``Linear``) whose output, averaged over the ``T`` steps, is the logits.

Residual connections: ``Topology.shortcuts`` maps a neuron layer to ``(source, branch)``; the
branch (a list of named exportable layers, empty for the identity) is applied to the source's
output (a neuron layer's spikes, or ``"input"``) and added to the neuron's input current, as in a
spiking ResNet's ``lif(bn(conv(s)) + shortcut(s_in))``. The sum happens at a neuron, which is where
NIR graphs and Loihi sum their inputs. The teacher adds the same branch before its ReLU.

Input: direct encoding (``input_mode="graded"``) repeats the input at each of the ``T`` time steps; ``bias`` and
``spikes`` first turn it into the binary spikes the chip's first synapses receive (:mod:`neurokd.models.encoders`,
``Student.encoder``).
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


INPUT = "input"


@dataclass
class Topology:
    """What a registry builder returns: named layers (with :data:`NEURON` placeholders) and shapes.

    ``shortcuts``: ``{neuron layer: (source, [(name, layer), ...])}``, residual branches added to
    that neuron's input (module docstring). ``source`` is an earlier neuron layer or :data:`INPUT`.
    """

    layers: list[tuple[str, nn.Module | _NeuronPlaceholder]]
    input_shape: tuple[int, ...]
    num_classes: int
    info: dict = field(default_factory=dict)
    shortcuts: dict[str, tuple[str, list[tuple[str, nn.Module]]]] = field(default_factory=dict)

    def __post_init__(self) -> None:
        names = [n for n, _ in self.layers]
        branch_names = [n for _, (_, branch) in self.shortcuts.items() for n, _ in branch]
        dup = {n for n in names + branch_names if (names + branch_names).count(n) > 1}
        if dup:
            raise ValueError(f"layer names must be unique: {sorted(dup)}")
        if self.shortcuts and INPUT in names + branch_names:
            raise ValueError(f"layer name {INPUT!r} is reserved for the input in a topology with shortcuts")
        kinds = dict(self.layers)
        for target, (source, _) in self.shortcuts.items():
            if kinds.get(target) is not NEURON:
                raise ValueError(f"shortcut target {target!r} is not a neuron layer")
            if source != INPUT and (kinds.get(source) is not NEURON or names.index(source) >= names.index(target)):
                raise ValueError(f"shortcut into {target!r} must come from the input or an earlier neuron, not {source!r}")


class _Residual(nn.Module):
    """The layer list as ``self.net`` plus the residual branches as ``self.shortcuts``.

    ``self.net`` stays an ``nn.Sequential`` of the topology's layers (state-dict keys, exporters and
    counting read it layer by layer); ``self.shortcuts[target]`` is an ``nn.Sequential`` branch
    (empty: identity) and ``self.shortcut_from[target]`` its source. :meth:`walk` runs them in order.
    """

    def _init_graph(self, topology: Topology, make_neuron: Callable[[], nn.Module]) -> None:
        self.net = nn.Sequential(
            OrderedDict(
                (name, make_neuron() if layer is NEURON else copy.deepcopy(layer)) for name, layer in topology.layers
            )
        )
        self.shortcuts = nn.ModuleDict(
            {t: nn.Sequential(OrderedDict((n, copy.deepcopy(m)) for n, m in branch))
             for t, (_, branch) in topology.shortcuts.items()}
        )
        self.shortcut_from = {t: src for t, (src, _) in topology.shortcuts.items()}

    def walk(self, h: torch.Tensor, neuron: Callable[[str, nn.Module, torch.Tensor], torch.Tensor]) -> torch.Tensor:
        """Run the layers on ``h``; ``neuron(name, layer, current)`` runs each neuron layer."""
        keep = set(self.shortcut_from.values())
        saved = {INPUT: h} if INPUT in keep else {}
        for name, layer in self.net.named_children():
            if name in self.shortcuts:
                h = h + self.shortcuts[name](saved[self.shortcut_from[name]])
            h = neuron(name, layer, h) if self._is_neuron(layer) else layer(h)
            if name in keep:
                saved[name] = h
        return h

    @staticmethod
    def _is_neuron(layer: nn.Module) -> bool:
        return isinstance(layer, (LIF, nn.ReLU))


class Teacher(_Residual):
    """The ANN teacher: the topology with ReLU neurons, applied once per sample."""

    def __init__(self, topology: Topology) -> None:
        super().__init__()
        self.input_shape = tuple(topology.input_shape)
        self.num_classes = topology.num_classes
        self._init_graph(topology, nn.ReLU)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if not self.shortcuts:
            return self.net(x)
        return self.walk(x, lambda _name, relu, h: relu(h))


class Student(_Residual):
    """The SNN student: the topology with :class:`LIF` neurons, run for ``timesteps`` steps.

    ``forward(x)`` returns the logits (readout averaged over time). ``run(x)`` also returns the
    spike trains of every LIF layer, ``{name: (T, B, ...)}``, with gradients, for activity
    regularisation and counting.
    """

    def __init__(self, topology: Topology, timesteps: int, neuron: Callable[[], LIF] | None = None,
                 input_mode: str = "graded") -> None:
        super().__init__()
        if timesteps < 1:
            raise ValueError(f"timesteps must be >= 1, got {timesteps}")
        from neurokd.models.encoders import INPUT_MODES, InputEncoder

        if input_mode not in INPUT_MODES:
            raise ValueError(f"input_mode must be one of {', '.join(INPUT_MODES)}, got {input_mode!r}")
        self.input_mode = input_mode
        #: ``bias`` / ``spikes``: the input layer or host encoder (None: graded, direct encoding)
        self.encoder = InputEncoder(input_mode) if input_mode != "graded" else None
        make = neuron or (lambda: LIF())
        self.timesteps = int(timesteps)
        self.input_shape = tuple(topology.input_shape)
        self.num_classes = topology.num_classes
        self._init_graph(topology, make)

    def spiking_layers(self) -> list[str]:
        return [name for name, m in self.net.named_children() if isinstance(m, LIF)]

    def run(self, x: torch.Tensor, with_input: bool = False):
        """Return ``(logits, spikes, readout)``: logits ``(B, C)``, spikes per LIF layer
        ``(T, B, ...)``, and the readout at each step ``(T, B, C)``. ``with_input``: a fourth item, the
        input layer's / encoder's spikes ``(T, B, ...)`` (None under graded input), kept apart from the LIF
        layers' (activity counts report the input apart; ``--lambda-input`` regularises them)."""
        T, B = self.timesteps, x.shape[0]
        input_spikes = None
        if self.encoder is not None:                  # the binary spikes the chip's first synapses receive
            input_spikes = self.encoder(x, T)
            h = input_spikes.reshape(T * B, *x.shape[1:])
        else:
            h = x.unsqueeze(0).expand(T, *x.shape).reshape(T * B, *x.shape[1:])  # direct encoding
        spikes: dict[str, torch.Tensor] = {}

        def neuron(name: str, layer: LIF, current: torch.Tensor) -> torch.Tensor:
            s = layer(current.reshape(T, B, *current.shape[1:]))
            spikes[name] = s
            return s.reshape(T * B, *s.shape[2:])

        h = self.walk(h, neuron)
        readout = h.reshape(T, B, *h.shape[1:])
        if with_input:
            return readout.mean(0), spikes, readout, input_spikes
        return readout.mean(0), spikes, readout

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]
