"""Sigma-delta (lava-dl SDNN) networks in Lava's fixed point, step by step, as netx runs them.

A netx file with ``SDNN`` neurons (:mod:`neurokd.hardware.formats.netx_reader`: neuron kinds ``delta``,
``sigma_delta``, ``sigma``) builds Lava's ``lava.proc.sdn`` processes; :func:`run_sigma_delta` computes
what their ``fixed_pt`` models compute (lava-nc 0.10 ``lava/proc/sdn/models.py`` and ``process.py``),
with the synapses as Lava's fixed-point ``Dense`` (the same integers as the fast engine:
:func:`~neurokd.hardware.engines.fastsim.lava_dense_weights`, then the weight exponent as a floor
shift) and ``Conv`` (integer cross-correlation of the stored kernel, in int64). With ``E = spike_exp + state_exp``
(netx: 6 + 6), per neuron and step:

* ``Delta`` (the input layer, fed the data directly, no synapse): ``a = x << E``;
  ``delta = a - act + residue``; ``s = delta where |delta| >= vth << E`` else 0;
  ``residue = delta - s``; ``act = a``; sends ``s >> state_exp``.
* ``SigmaDelta``: ``sigma += a_in``; ``act = relu(sigma + bias << E)`` (or without ``relu`` for
  ``activation`` unit); then as ``Delta``.
* ``Sigma`` (an output, ``sigma_output``): ``sigma += a_in``; sends ``sigma``.

Time is Lava's, as netx runs the file: every layer works from step 0 (so a bias drives a layer before
the data reaches it), and each synapse delivers one step late; the messages are recorded per Lava step.
This differs from the spiking engines' delay-corrected trains, which start each layer at its own window;
both equal their Lava runs. ``cum_error`` is off (netx does not set it); Lava's 24-bit state precision is
a type annotation its Python models do not enforce, and neither does this model. Checked against
lava-dl's recorded PilotNet SDNN output (``tests/test_netx_gts.py``).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from neurokd.errors import NeurokdError
from neurokd.hardware.engines.fastsim import lava_dense_weights
from neurokd.hardware.network.ir import Network, conv2d

#: netx's exponents (``netx.hdf5.Network(spike_exp=6)``, ``get_neuron_params``: ``'state_exp': 6``).
SPIKE_EXP = 6
STATE_EXP = 6
SIGMA_DELTA_KINDS = ("delta", "sigma_delta", "sigma")


@dataclass
class SigmaDeltaResult:
    """``messages``: per layer ``(N, T, size)`` int64, the graded message each neuron sent at each Lava step
    (0: none; a ``sigma`` layer's is its state). ``counts``: non-zero messages per sample and neuron."""

    messages: dict[str, np.ndarray]
    counts: dict[str, np.ndarray]
    samples: int
    timesteps: int
    run_seconds: float
    notes: list[str] = field(default_factory=list)

    def messages_per_sample(self) -> dict[str, float]:
        return {k: float(v.sum()) / max(self.samples, 1) for k, v in self.counts.items()}


def is_sigma_delta(network: Network) -> bool:
    return bool(network.layers) and all(l.neuron.kind in SIGMA_DELTA_KINDS for l in network.layers)


def run_sigma_delta(network: Network, fixed, x: np.ndarray) -> SigmaDeltaResult:
    """Run ``network`` (every layer sigma-delta, as a netx SDNN file reads) on ``x`` ``(N, T, *input_shape)``
    integers; ``fixed``: its :class:`~neurokd.hardware.network.quantize.FixedNetwork` (netx's integers)."""
    if not is_sigma_delta(network):
        other = sorted({l.neuron.kind for l in network.layers} - set(SIGMA_DELTA_KINDS))
        raise NeurokdError(f"the sigma-delta model runs networks of sigma-delta layers only; this one also has {other}")
    if network.layers[0].neuron.kind != "delta" or any(l.neuron.kind == "delta" for l in network.layers[1:]):
        raise NeurokdError("a sigma-delta network starts with one Delta input layer (netx's SDNN input)")
    if any(len(l.synapses) != 1 for l in network.layers[1:]) or network.recurrent:
        raise NeurokdError("the sigma-delta model runs a chain of layers (one synapse each, no recurrence)")
    if any(s.delays is not None for l in network.layers for s in l.synapses):
        raise NeurokdError("the sigma-delta model does not run synaptic delays")
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != len(network.input_shape) + 2 or tuple(x.shape[2:]) != tuple(network.input_shape):
        raise NeurokdError(f"sigma-delta input: shape {x.shape}, expected (N, T, {', '.join(map(str, network.input_shape))})")
    if not np.all(x == np.round(x)):
        raise NeurokdError("sigma-delta input: Lava's fixed point takes integers; the data holds fractions")
    t0 = time.perf_counter()
    n, steps = x.shape[:2]
    data = x.reshape(n, steps, -1).astype(np.int64)
    e = SPIKE_EXP + STATE_EXP
    layers = network.layers
    weights = {}
    for lay in layers[1:]:
        syn = lay.synapses[0]
        fs = fixed.layers[lay.name].synapses[syn.name]
        if syn.kind == "dense":
            weights[lay.name] = (lava_dense_weights(fs.mant, int(fs.num_weight_bits)).T.astype(np.int64), int(fs.weight_exp))
        else:
            weights[lay.name] = (np.asarray(fs.mant, dtype=np.int64) << int(fs.weight_exp), 0)
    state = {l.name: {k: np.zeros((n, l.size), dtype=np.int64) for k in ("sigma", "act", "res")} for l in layers}
    out = {l.name: np.zeros((n, steps, l.size), dtype=np.int64) for l in layers}
    sent = {l.name: np.zeros((n, l.size), dtype=np.int64) for l in layers}     # the previous step's messages
    for t in range(steps):
        now = {}
        for lay in layers:
            st, fl = state[lay.name], fixed.layers[lay.name]
            vth = int(fl.neuron.vth) << e
            if lay.neuron.kind == "delta":
                act = data[:, t] << e
            else:
                syn = lay.synapses[0]
                st["sigma"] = st["sigma"] + _apply(syn, *weights[lay.name], sent[syn.source])
                if lay.neuron.kind == "sigma":
                    now[lay.name] = st["sigma"].copy()
                    continue
                act = st["sigma"] + (np.asarray(fl.neuron.bias_mant, dtype=np.int64) << e)
                if str(lay.neuron.nir.get("activation", "relu")).lower() != "unit":
                    act = np.maximum(act, 0)
            delta = act - st["act"] + st["res"]
            s = np.where(np.abs(delta) >= vth, delta, 0)
            st["res"], st["act"] = delta - s, act
            now[lay.name] = s >> STATE_EXP
        for name, m in now.items():
            out[name][:, t] = m
        sent = now
    counts = {k: (v != 0).sum(axis=1) for k, v in out.items()}
    return SigmaDeltaResult(out, counts, n, steps, time.perf_counter() - t0,
                            notes=["Lava time: every layer from step 0, each synapse one step late (netx's run)"])


def _apply(syn, w: np.ndarray, exp: int, src: np.ndarray) -> np.ndarray:
    """Lava's fixed-point Dense (``(w s)`` then the weight exponent as a floor shift) or Conv on graded ``src``."""
    if syn.kind == "dense":
        y = src @ w
        return y << exp if exp >= 0 else y >> -exp
    c, h, wd = syn.conv_in_chw
    pad = ((syn.padding[0],) * 2, (syn.padding[1],) * 2)
    y = conv2d(src.reshape(-1, c, h, wd), w, syn.stride, pad, syn.dilation, syn.groups)     # int64: exact
    return y.reshape(src.shape[0], -1)
