"""Spike counting: THE activity counter used by training, evaluation and export.

Feed it the spike trains of every spiking layer, ``{layer: (T, B, ...)}``, once per batch; it
keeps, per layer, the number of spikes and the number of neuron-steps (``T * B * neurons``), and
the number of samples seen. From these::

    rate_l          = spikes_l / neuron_steps_l                     spikes per neuron per time step, layer l
    total           = sum_l spikes_l / sum_l neuron_steps_l         all spiking layers pooled
    spikes/sample   = sum_l spikes_l / samples                      every spike of one inference

``total`` is the pooled ratio (a big layer weighs more), the activity metric of Louis et al.'s
tool (PAPER.md): it is not the mean of the per-layer rates. Counts are taken from detached
tensors and accumulated in float64 (spikes, exact for integer counts up to 2^53) and int64
(neuron-steps, samples), so no graph is kept and no precision is lost over a whole test set.
"""

from __future__ import annotations

from typing import Mapping

import numpy as np
import torch


class ActivityCounter:
    """Accumulate spikes per layer over batches; report rates per layer, pooled total and per sample.

    ``update(spikes)`` must be called once per batch with ALL spiking layers of that batch (the
    sample count is taken from it once, not once per layer). Layers may differ in shape but must
    share ``T`` and ``B``.
    """

    def __init__(self) -> None:
        self._spikes: dict[str, torch.Tensor] = {}  # float64 sums, on the spikes' device until read
        self.neuron_steps: dict[str, int] = {}
        self.neurons: dict[str, int] = {}
        self.samples = 0
        self.timesteps: int | None = None

    def update(self, spikes: Mapping[str, torch.Tensor]) -> None:
        """Count one batch: ``spikes[layer]`` is ``(T, B, ...)`` (0/1 or graded values), a torch tensor
        or anything numpy reads (e.g. spikes recorded from Lava, put in ``(T, B, ...)`` order)."""
        if not spikes:
            return
        spikes = {name: s if isinstance(s, torch.Tensor) else torch.as_tensor(np.asarray(s)) for name, s in spikes.items()}
        shapes = {name: tuple(s.shape) for name, s in spikes.items()}
        tb = {shape[:2] for shape in shapes.values()}
        if len(tb) != 1 or any(len(shape) < 2 for shape in shapes.values()):
            raise ValueError(f"spike tensors must all be (T, B, ...) with the same T and B; got {shapes}")
        T, B = next(iter(tb))
        if self.timesteps is not None and T != self.timesteps:
            raise ValueError(f"time steps changed between batches: {self.timesteps} then {T}")
        self.timesteps = T
        with torch.no_grad():
            for name, s in spikes.items():
                n = 1
                for d in s.shape[2:]:
                    n *= int(d)
                count = s.detach().to(torch.float64).sum()
                self._spikes[name] = self._spikes[name] + count if name in self._spikes else count
                self.neuron_steps[name] = self.neuron_steps.get(name, 0) + T * B * n
                self.neurons[name] = n
        self.samples += B

    @property
    def spikes(self) -> dict[str, float]:
        """Spikes counted so far, per layer."""
        return {name: float(c) for name, c in self._spikes.items()}

    def rate(self, layer: str) -> float:
        """Spikes per neuron per time step of one layer."""
        steps = self.neuron_steps.get(layer, 0)
        return float(self._spikes[layer]) / steps if steps else 0.0

    def per_layer(self) -> dict[str, float]:
        return {name: self.rate(name) for name in self._spikes}

    def total(self) -> float:
        """All spiking layers pooled: total spikes / total neuron-steps."""
        steps = sum(self.neuron_steps.values())
        return sum(self.spikes.values()) / steps if steps else 0.0

    def spikes_per_sample(self) -> float:
        return sum(self.spikes.values()) / self.samples if self.samples else 0.0

    def spikes_per_sample_per_layer(self) -> dict[str, float]:
        return {name: (c / self.samples if self.samples else 0.0) for name, c in self.spikes.items()}

    def merge(self, other: "ActivityCounter") -> None:
        """Add another counter's counts (e.g. from another process or data shard)."""
        if other.timesteps is not None and self.timesteps not in (None, other.timesteps):
            raise ValueError(f"cannot merge counts of {other.timesteps} time steps into {self.timesteps}")
        for name, c in other._spikes.items():
            c = c.to(self._spikes[name].device) if name in self._spikes else c
            self._spikes[name] = self._spikes[name] + c if name in self._spikes else c.clone()
            self.neuron_steps[name] = self.neuron_steps.get(name, 0) + other.neuron_steps[name]
            self.neurons[name] = other.neurons[name]
        self.samples += other.samples
        self.timesteps = self.timesteps if self.timesteps is not None else other.timesteps

    def as_dict(self) -> dict:
        """The ``activity`` block of metrics.json: ``{"total": ..., "per_layer": {layer: ...}}``."""
        return {"total": self.total(), "per_layer": self.per_layer()}

    def report(self) -> dict:
        """Everything counted: activity block, spikes per sample (total and per layer), sizes."""
        return {
            "activity": self.as_dict(),
            "spikes_per_sample": self.spikes_per_sample(),
            "spikes_per_sample_per_layer": self.spikes_per_sample_per_layer(),
            "neurons_per_layer": dict(self.neurons),
            "samples": self.samples,
            "timesteps": self.timesteps,
        }


class SpikeRecorder:
    """Forward hooks on every spiking module of any model: the spikes it emitted, ``{layer: (T, B, ...)}``.

    Spiking modules are found by type (:mod:`neurokd.models.peers`: neurokd's LIF, snnTorch's
    ``Leaky``/``Synaptic``/``RLeaky``/``RSynaptic``/``Lapicque``..., SpikingJelly's ``LIFNode``/
    ``IFNode``/``ParametricLIFNode``... in single- or multi-step mode). A module called once per
    time step contributes one ``(B, ...)`` tensor per call, stacked along a new first axis; one
    called with the whole sequence contributes its ``(T, B, ...)`` output. The spikes keep their
    gradient (``detach=False``), so :func:`neurokd.losses.activation_reg` can take them::

        recorder = SpikeRecorder(net)                  # once
        for x, y in loader:
            out = net(x)                               # the user's own forward, its own time loop
            spikes = recorder.pop()                    # {layer: (T, B, ...)}, this batch only
            counter.update(spikes)                     # an ActivityCounter, if activity is wanted

    Call :meth:`pop` (or :meth:`clear`) once per batch: the recorder holds every call's output
    until then. :meth:`remove` takes the hooks off; the recorder is also a context manager.
    Layer names are the modules' qualified names in ``model.named_modules()``.
    """

    def __init__(self, model: torch.nn.Module, detach: bool = False) -> None:
        from neurokd.errors import NeurokdError
        from neurokd.models.peers import spiking_modules

        self.layers = spiking_modules(model)
        if not self.layers:
            raise NeurokdError(f"{type(model).__name__} has no spiking module neurokd knows (neurokd LIF, snnTorch "
                               "SpikingNeuron, SpikingJelly BaseNode); nothing to record")
        self.detach = detach
        self._calls: dict[str, list[tuple[bool, torch.Tensor]]] = {name: [] for name, _ in self.layers}
        self._handles = [module.register_forward_hook(self._hook(name)) for name, module in self.layers]

    def _hook(self, name: str):
        from neurokd.models.peers import spikes_of, whole_sequence

        def hook(module, _inputs, output) -> None:
            s = spikes_of(output)
            self._calls[name].append((whole_sequence(module), s.detach() if self.detach else s))

        return hook

    @property
    def names(self) -> list[str]:
        return [name for name, _ in self.layers]

    def spikes(self) -> dict[str, torch.Tensor]:
        """The spikes recorded since the last :meth:`clear`, ``{layer: (T, B, ...)}`` (layers not called left out)."""
        out = {}
        for name, calls in self._calls.items():
            if not calls:
                continue
            parts = [s if seq else s.unsqueeze(0) for seq, s in calls]
            out[name] = parts[0] if len(parts) == 1 else torch.cat(parts, 0)
        return out

    def clear(self) -> None:
        for calls in self._calls.values():
            calls.clear()

    def pop(self) -> dict[str, torch.Tensor]:
        """:meth:`spikes`, then :meth:`clear`."""
        out = self.spikes()
        self.clear()
        return out

    def remove(self) -> None:
        for h in self._handles:
            h.remove()
        self._handles = []
        self.clear()

    def __enter__(self) -> "SpikeRecorder":
        return self

    def __exit__(self, *exc) -> None:
        self.remove()
