"""Input as a chip takes it: graded input values turned into the binary spikes a chip's first synapses receive.

Two encoders, both numpy, both whole-number exact (what :mod:`neurokd.hardware.placement.inputs` places and
costs, and what a student can be trained with):

* :func:`bias_layer` -- an **on-chip input layer** (Intel's PilotNet LIF and NxTF way, Rueckauer et al.,
  ACM JETC 2022): one non-leaky integrate-and-fire neuron per input value, fed the value as its bias every
  step, in the fixed-point arithmetic of Lava's LIF (``lava/proc/lif/models.py``,
  ``AbstractPyLifModelFixed``: ``v <- v * (4096 - dv) >> 12 + u + (bias_mant << bias_exp)``, a spike where
  ``v > vth << 6``, then ``v = 0``) with ``du = dv = 0`` (no input current, no leak), ``bias_exp = 6`` (the
  bias MSB-aligned as the threshold is) and **the threshold one below full scale**: the value is quantised to
  ``q = round(x / full_scale * (2**bits - 1))`` (as the graded input is, :class:`~neurokd.hardware.network.quantize.FixedNetwork`)
  and ``vth = 2**bits - 2``, so a neuron spikes once ``k q >= 2**bits - 1``. With Lava's reset to zero the
  interval between spikes is ``ceil((2**bits - 1) / q)`` steps: the rate is ``1 / ceil(1 / x)`` of the value
  ``x = q / (2**bits - 1)``, full scale fires every step and the rate never exceeds the value (0.5 for
  values in [0.5, 1), 1/3 for [1/3, 1/2), ...). That is the rate that tracks the value best with reset to
  zero *and* no weight rescaling: a threshold at full scale keeps the first synapses' drive, rate x weight,
  at most the graded drive x x weight, with equality at full scale and at 1/k. Lava's LIF
  cannot reset by subtraction; a host encoder can (below).
* :func:`rate_spikes` -- **spikes from the host**: ``deterministic`` (default), the host's error-feedback
  (sigma-delta) encoder: an accumulator adds ``x / full_scale`` each step and sends a spike, subtracting 1,
  whenever it reaches 1 (starting at 0.5, so counts round): spike count ``round(T x)``-exact rate, no seed,
  the same spikes on every run and so the same cost and accuracy; ``bernoulli``: a spike with probability
  ``x / full_scale`` each step from ``numpy.random.default_rng(seed)``, the usual rate code, noisy (its
  accuracy and cost vary with the seed).

Values below zero cannot be sent as binary spikes (a spike has no sign) and are refused: shift or rectify
the input, or train with an input mode (signed inputs need an on/off pair of neurons per value).
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from neurokd.errors import NeurokdError

SPIKE_ENCODINGS = ("deterministic", "bernoulli")
#: Lava's fixed-point LIF: threshold and synaptic input are MSB-aligned by 6 bits, v and u are 24 bits wide
VTH_SHIFT = 6
V_MAX = 2 ** 23 - 1


def full_scale(x: np.ndarray) -> float:
    """The value that fires every step (bias) or is a spike every step (host): the input's peak, 1 when it
    is all zeros (as the quantiser scales a graded input)."""
    peak = float(np.abs(np.asarray(x, dtype=np.float64)).max(initial=0.0))
    return peak if peak > 0 else 1.0


def _check_unsigned(x: np.ndarray, what: str) -> None:
    if np.asarray(x).size and float(np.min(x)) < 0:
        raise NeurokdError(f"--input-mode {what}: the input holds negative values ({float(np.min(x)):g}), which binary "
                           f"spikes cannot carry: shift or rectify the input, or use --input-mode graded (Loihi 2) or host")


@dataclass
class BiasLayer:
    """An on-chip bias-driven input layer's run: ``spikes`` ``(N, T, *shape)`` 0/1 float64, ``state`` ``(N, T, size)``
    bool (``v != 0`` after the step), ``bias_mant`` ``(N, size)`` int (the value as bias mantissa), and its
    parameters (``vth`` mantissa, ``bias_exp``, ``bits``, ``full_scale``)."""

    spikes: np.ndarray
    state: np.ndarray
    bias_mant: np.ndarray
    vth: int
    bias_exp: int
    bits: int
    full_scale: float

    @property
    def drive(self) -> np.ndarray:
        """``(N, size)`` bool: neurons whose bias is non-zero (updated actively every step)."""
        return self.bias_mant != 0


def bias_quantize(x: np.ndarray, bits: int = 8, scale: float | None = None) -> np.ndarray:
    """Input values ``(N, ...)`` -> bias mantissas ``round(x / scale * (2**bits - 1))`` (int64), ``scale`` the full
    scale (default :func:`full_scale`)."""
    if not 1 <= int(bits) <= 12:
        raise NeurokdError(f"bias input bits must be in 1..12 (Loihi's 13-bit signed bias mantissa), got {bits}")
    x = np.asarray(x, dtype=np.float64)
    _check_unsigned(x, "bias")
    top = 2 ** int(bits) - 1
    s = full_scale(x) if scale is None else float(scale)
    return np.clip(np.rint(x / s * top), 0, top).astype(np.int64)


def bias_layer(frames: np.ndarray, bits: int = 8, scale: float | None = None) -> BiasLayer:
    """Run the bias-driven input layer (module docstring) on input frames ``(N, T, *shape)`` (the value of each
    step is that step's bias: a held input is the same every step). Integer arithmetic of Lava's fixed-point
    LIF, bit for bit (tested against Lava)."""
    frames = np.asarray(frames, dtype=np.float64)
    if frames.ndim < 3:
        raise NeurokdError(f"bias_layer needs frames (N, T, *shape), got shape {frames.shape}")
    top = 2 ** int(bits) - 1
    s = full_scale(frames) if scale is None else float(scale)
    q = bias_quantize(frames, bits, s)
    n, steps, shape = q.shape[0], q.shape[1], q.shape[2:]
    qs = q.reshape(n, steps, -1)
    vth, bias_exp = top - 1, VTH_SHIFT
    eff_vth = vth << VTH_SHIFT
    v = np.zeros((n, qs.shape[2]), dtype=np.int64)
    spikes = np.zeros(qs.shape, dtype=np.float64)
    state = np.zeros(qs.shape, dtype=bool)
    for t in range(steps):
        v = np.clip(v + (qs[:, t] << bias_exp), -V_MAX, V_MAX)      # no leak (dv = 0), no current (u = 0)
        fired = v > eff_vth
        v[fired] = 0
        spikes[:, t] = fired
        state[:, t] = v != 0
    return BiasLayer(spikes.reshape(n, steps, *shape), state, qs.max(axis=1), vth, bias_exp, int(bits), s)


def rate_spikes(frames: np.ndarray, encoding: str = "deterministic", seed: int = 0,
                scale: float | None = None) -> np.ndarray:
    """Host spikes ``(N, T, *shape)`` 0/1 float64 of input frames ``(N, T, *shape)`` at rate ``x / scale``
    (module docstring); an input already 0/1 is sent as it is (unless a ``scale`` is given)."""
    if encoding not in SPIKE_ENCODINGS:
        raise NeurokdError(f"--spike-encoding must be one of {', '.join(SPIKE_ENCODINGS)}, got {encoding!r}")
    x = np.asarray(frames, dtype=np.float64)
    _check_unsigned(x, "spikes")
    if scale is None and np.all((x == 0) | (x == 1)):
        return x.copy()
    s = full_scale(x) if scale is None else float(scale)
    p = np.clip(x / s, 0.0, 1.0)
    if encoding == "bernoulli":
        return (np.random.default_rng(seed).random(p.shape) < p).astype(np.float64)
    acc = np.full((p.shape[0], *p.shape[2:]), 0.5)
    out = np.zeros(p.shape, dtype=np.float64)
    for t in range(p.shape[1]):
        acc = acc + p[:, t]
        fired = acc >= 1.0
        acc[fired] -= 1.0
        out[:, t] = fired
    return out


__all__ = ["SPIKE_ENCODINGS", "BiasLayer", "bias_layer", "bias_quantize", "rate_spikes", "full_scale"]
