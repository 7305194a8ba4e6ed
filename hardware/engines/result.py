"""What a run on the hardware model returns, whichever engine ran it (Lava or neurokd's fast model).

One class for both engines so that counting, energy reports, agreement checks and the export
command read a result without knowing where it came from; this module imports neither Lava nor
torch. :class:`LavaResult` (``neurokd.hardware.engines.lava_backend``) and :class:`FastResult`
(``neurokd.hardware.engines.fastsim``) differ only in their ``engine`` tag.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from neurokd.hardware.network.quantize import FixedNetwork


@dataclass
class HardwareResult:
    """Spikes, readout and timings of ``samples`` samples x ``timesteps`` steps; neuron axes are flat
    PyTorch (C, H, W) order.

    ``counts[layer]``: ``(N, size)`` int spikes summed over the sample's ``T`` steps (spiking layers).
    ``spikes[layer]``: ``(N, T, size)`` uint8, delay-corrected (only with ``record_steps``).
    ``readout[layer]``: ``(N, T, size)`` float per step of each output layer (synaptic input + bias
    for a readout without neuron, ``v`` for a non-spiking neuron, spikes for a spiking output).
    ``logits``: ``(N, C)`` mean over time of the first output; ``predictions``: its argmax.
    ``voltages[layer]``: ``(N, T, size)`` membrane after reset, float units (``record_voltage``);
    ``currents[layer]``: synaptic current ``u`` likewise (fast model, ``record_current``).
    ``states[layer]``: ``(N, T, size)`` bool, state kept into the next step (fast model, ``record_state``).
    ``lava_steps``: Lava time steps run (0 for the fast model). ``fixed``: the quantised network of a
    fixed-point run.
    """

    precision: str
    samples: int
    timesteps: int
    mode: str
    counts: dict[str, np.ndarray]
    readout: dict[str, np.ndarray]
    logits: np.ndarray
    predictions: np.ndarray
    spikes: dict[str, np.ndarray] | None = None
    voltages: dict[str, np.ndarray] | None = None
    delays: dict[str, int] = field(default_factory=dict)
    lava_steps: int = 0
    build_seconds: float = 0.0
    run_seconds: float = 0.0
    fixed: FixedNetwork | None = None
    currents: dict[str, np.ndarray] | None = None
    states: dict[str, np.ndarray] | None = None
    engine: str = "lava"

    @property
    def samples_per_second(self) -> float:
        return self.samples / self.run_seconds if self.run_seconds > 0 else float("nan")

    @property
    def wall_seconds(self) -> float:
        return self.build_seconds + self.run_seconds

    def spikes_per_sample(self) -> dict[str, float]:
        return {k: float(v.sum()) / max(self.samples, 1) for k, v in self.counts.items()}


@dataclass
class LavaResult(HardwareResult):
    """A run in Lava's CPU simulation (:func:`neurokd.hardware.engines.lava_backend.run_lava`)."""

    engine: str = "lava"


@dataclass
class FastResult(HardwareResult):
    """A run in neurokd's vectorised model (:func:`neurokd.hardware.engines.fastsim.run_fast`); ``lava_steps`` is 0."""

    engine: str = "fast"
