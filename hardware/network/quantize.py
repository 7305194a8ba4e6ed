"""Loihi fixed-point formats for a :class:`~neurokd.hardware.network.ir.Network`: one integer scale per layer.

Lava's bit-accurate models (lava-nc 0.10.0; ANCHORS.md §3) compute, in integers::

    a[t]  = (sum_j w_j s_j[t-1]) << weight_exp                 Dense (PyDenseModelBitAcc); Conv: no shift
    u[t]  = sign(u) (|u (4096 - (du + 1))| >> 12) + (a << 6)     24-bit, wraps on overflow
    v[t]  = sign(v) (|v (4096 - dv)| >> 12) + u + (bias_mant << bias_exp)    clipped to +-(2^23 - 1)
    s[t]  = v > (vth << 6) ;  v = 0 where s

A float layer (``u = (1-du) u + W s + b_u``, ``v = (1-dv) v + u + b_v``, threshold ``vth``) maps onto
this with ONE scale ``S`` per layer: integer ``a`` = ``S`` x float input, integer ``v`` = ``64 S`` x float
``v``. Then ``vth_int = round(S vth)``, ``w_eff = mant * 2^weight_exp ~= S W / S_src`` (``S_src``: the
source's unit: 1 for spikes, the input scale for the graded first layer), ``bias_mant * 2^bias_exp
~= 64 S b_v``, ``du_int = round(4096 du) - 1``, ``dv_int = round(4096 dv)``.

How ``S`` is chosen (per layer, to use the ranges; :func:`layer_scale`): the largest ``S`` that keeps
``vth_int <= 131071``, the bias within ``4095 * 2^7``, the per-step input ``|a| <= 131071`` for any
input (so ``a << 6`` never wraps ``u``; with ``du < 1`` the bound is ``|a| / du``) and the weight
exponent ``<= 7``; then lowered to ``S = 254 * 2^e / max|W|`` with the largest integer ``e`` that
fits, so the largest weight uses the full 8-bit mantissa (weights, at 8 bits, are the scarce
resource; the threshold keeps what the other bounds leave, e.g. 14 bits on the digits MLP, where the
24-bit input bound binds). Each synapse then gets its own exponent.

Weights: Lava's Dense clips to 8 bits and, for mixed signs, drops the LSB (``truncate_weights``):
mantissas are even integers in [-256, 254] (mixed), [0, 255] (excitatory), [-255, 0] (inhibitory);
neurokd rounds to those values itself, so Lava's clip/truncate are no-ops (tested).
``PyConvModelFixed`` applies neither ``weight_exp`` nor the 8-bit clip (verified in
``tests/test_lava_backend.py``): a conv gets the integers ``mant << weight_exp`` (``weight_exp >= 0``),
which are exactly the values a Loihi synapse holds as 8-bit mantissa and exponent.

Graded input (direct encoding of real values): ``x_int = round(x * S_x)`` with ``S_x = (2^bits - 1) /
max|x|`` (``2^(bits-1) - 1`` for signed inputs; default 8 bits), sent as graded spikes (the first
Dense/Conv gets ``num_message_bits = bits``). Integer inputs that already fit are sent as they are
(``S_x = 1``); binary inputs are plain spikes.

Readout without neuron: the last Dense's integer output is read back and divided by its scale
(``S = 254 / max|W|``, exponent 0); its bias is added in float on the host.

Never silent: every layer's scale, what limited it, exponents, mantissa range used, fraction of
weights clipped (0 by construction) and rounded to zero, and max absolute errors of weights,
threshold, decays and biases are in :meth:`FixedNetwork.report` (written as
``quantization.json``). A value that cannot be represented at all (``vth`` rounding to 0, a
threshold <= 0) raises :class:`NeurokdError`; nothing is clipped.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field

import numpy as np

from neurokd.errors import NeurokdError
from neurokd.hardware.network.ir import Layer, Network, Synapse, bias_routing

#: Loihi fixed-point formats as Lava's bit-accurate models implement them (lava-nc 0.10.0:
#: lava/proc/lif/models.py ``AbstractPyLifModelFixed``/``PyLifModelBitAcc``, lava/proc/dense/models.py,
#: lava/utils/weightutils.py). ``WEIGHT_EXP`` is a 4-bit signed exponent: Lava itself does not bound it;
#: nengo-loihi's discretisation searches exponents down to -8 (nengo_loihi/discretize.py); +7 is the
#: symmetric upper end neurokd assumes.
FORMAT = {
    "weight_mixed": (-256, 254),     # clip_weights(num_bits=8) then truncate 1 LSB: even values
    "weight_excitatory": (0, 255),
    "weight_inhibitory": (-255, 0),
    "weight_exp": (-8, 7),
    "decay": (0, 4095),              # du, dv: unsigned 12 bit; du has an offset of 1 (ds_offset)
    "vth": (1, 131071),              # unsigned 17 bit, compared after << 6
    "bias_mant": (-4096, 4095),      # signed 13 bit
    "bias_exp": (0, 7),              # unsigned 3 bit
    "state": 2 ** 23 - 1,            # u, v: signed 24 bit
    "act_shift": 6,                  # synaptic input and threshold are shifted left by 6
}
MAX_STEP_INPUT = FORMAT["state"] >> FORMAT["act_shift"]           # 131071: |a| << 6 stays within 24 bits
BIAS_MAX = FORMAT["bias_mant"][1] * 2 ** FORMAT["bias_exp"][1]    # 4095 * 128


@dataclass
class FixedSynapse:
    """One connection in integers: ``mant`` (same layout as :attr:`Synapse.weight`), ``weight_exp``.

    The effective integer weight is ``mant * 2^weight_exp`` (units of the target's ``a``);
    ``unit = S_target / S_source`` maps float weights to it. ``num_weight_bits``: Lava Dense's
    weight precision (8 for what :func:`quantize` makes; netx files may use fewer, the low bits are
    then truncated). ``delays``: per-synapse delays ``(n_out, n_in)`` in steps (netx ``DelayDense``),
    None for none.
    """

    name: str
    kind: str
    mant: np.ndarray
    weight_exp: int
    sign_mode: str
    unit: float
    num_message_bits: int = 0
    report: dict = field(default_factory=dict)
    num_weight_bits: int = 8
    delays: np.ndarray | None = None

    @property
    def effective(self) -> np.ndarray:
        """``mant * 2^weight_exp`` as float64 (exact for the values involved)."""
        return self.mant.astype(np.float64) * 2.0 ** self.weight_exp

    def lava_weight(self, synapse: Synapse | None) -> np.ndarray:
        """The int32 array Lava's process gets (Lava layout): Dense the mantissas (Lava applies
        ``weight_exp``), Conv the mantissas shifted by ``weight_exp`` (``PyConvModelFixed`` ignores it)."""
        w = self.mant.astype(np.int64)
        if self.kind == "conv":
            w = w << self.weight_exp
        if synapse is not None:
            w = synapse.lava_weight(w)
        return np.ascontiguousarray(w.astype(np.int32))

    @property
    def lava_weight_exp(self) -> int:
        return self.weight_exp if self.kind == "dense" else 0


@dataclass
class FixedNeuron:
    """Integer LIF parameters (Lava ``LIF(du, dv, vth, bias_mant, bias_exp)``)."""

    du: int
    dv: int
    vth: int
    bias_mant: np.ndarray
    bias_exp: int


@dataclass
class FixedLayer:
    """One layer in integers: its scale ``S`` (float -> integer input units) and parameters."""

    name: str
    scale: float
    synapses: dict[str, FixedSynapse]
    neuron: FixedNeuron | None
    bias_synapse: FixedSynapse | None = None
    report: dict = field(default_factory=dict)


@dataclass
class FixedNetwork:
    """A :class:`Network` with every layer mapped to Loihi formats (module docstring)."""

    network: Network
    layers: dict[str, FixedLayer]
    input_scale: float
    input_bits: int
    input_graded: bool
    input_signed: bool
    notes: list[str] = field(default_factory=list)

    def quantize_input(self, x: np.ndarray) -> np.ndarray:
        """Float inputs -> the integers the source sends (``round(x * S_x)``, clipped to the bits)."""
        q = np.rint(np.asarray(x, dtype=np.float64) * self.input_scale)
        hi = 2 ** (self.input_bits - 1) - 1 if self.input_signed else 2 ** self.input_bits - 1
        lo = -hi if self.input_signed else 0
        return np.clip(q, lo, hi).astype(np.int32)

    def to_float(self, layer: str, a: np.ndarray) -> np.ndarray:
        """Integer synaptic input of ``layer`` -> float units (divide by the layer's scale)."""
        return np.asarray(a, dtype=np.float64) / self.layers[layer].scale

    def report(self) -> dict:
        """JSON-ready quantisation report: input, then one entry per layer."""
        return {
            "format": {k: list(v) if isinstance(v, tuple) else v for k, v in FORMAT.items()},
            "input": {"scale": self.input_scale, "bits": self.input_bits, "graded": self.input_graded,
                      "signed": self.input_signed},
            "layers": {name: fl.report for name, fl in self.layers.items()},
            "notes": list(self.notes),
        }


# --------------------------------------------------------------------------------------------------
# Building blocks
# --------------------------------------------------------------------------------------------------

def sign_mode(w: np.ndarray) -> str:
    """Lava's ``determine_sign_mode``: excitatory if all >= 0, inhibitory if all <= 0, else mixed."""
    if not np.any(w):
        return "null"
    if np.min(w) >= 0:
        return "excitatory"
    if np.max(w) <= 0:
        return "inhibitory"
    return "mixed"


def _mant_range(mode: str) -> tuple[int, int]:
    return {"mixed": FORMAT["weight_mixed"], "excitatory": FORMAT["weight_excitatory"],
            "inhibitory": FORMAT["weight_inhibitory"], "null": (0, 0)}[mode]


def quantize_weights(w: np.ndarray, unit: float, allow_negative_exp: bool = True) -> tuple[np.ndarray, int, str]:
    """``w * unit`` as ``mant * 2^exp`` with 8-bit mantissas (even for mixed signs), smallest exponent.

    Returns ``(mant int32, exp, sign_mode)``. The exponent is the smallest in ``FORMAT['weight_exp']``
    (from 0 with ``allow_negative_exp=False``) for which every rounded mantissa fits.
    """
    x = np.asarray(w, dtype=np.float64) * unit
    mode = sign_mode(x)
    lo, hi = _mant_range(mode)
    if mode == "null":
        return np.zeros(x.shape, dtype=np.int32), 0, mode
    step = 2 if mode == "mixed" else 1
    first = FORMAT["weight_exp"][0] if allow_negative_exp else 0
    for e in range(first, FORMAT["weight_exp"][1] + 1):
        mant = np.rint(x / (step * 2.0 ** e)) * step
        if mant.max() <= hi and mant.min() >= lo:
            return mant.astype(np.int32), e, mode
    raise NeurokdError(
        f"weights up to {np.abs(x).max():.4g} (integer units) exceed an 8-bit mantissa with exponent "
        f"{FORMAT['weight_exp'][1]}; lower the layer scale"
    )


def _synapse_bound(syn: Synapse, max_in: float) -> np.ndarray:
    """Largest |input per step| each target neuron can get through ``syn`` (float units), any sign."""
    w = syn.weight
    if syn.kind == "dense":
        pos = np.clip(w, 0, None).sum(axis=1)
        neg = -np.clip(w, None, 0).sum(axis=1)
    else:
        ones = np.ones((1, *syn.in_shape))
        pos = syn.apply(ones, np.clip(w, 0, None)).reshape(-1)
        neg = -syn.apply(ones, np.clip(w, None, 0)).reshape(-1)
    return np.maximum(pos, neg) * max_in


def layer_scale(layer: Layer, unit_in: dict[str, float], max_in: dict[str, float],
                lif_bias: np.ndarray, syn_bias: np.ndarray) -> tuple[float, str, dict]:
    """The layer's scale ``S`` and what limited it (rule: module docstring).

    ``unit_in[source]``: integer units per float unit of each source's output (1 for spikes);
    ``max_in[source]``: the largest |value| a source sends (float units).
    """
    limits: dict[str, float] = {}
    n = layer.neuron
    if n.spiking:
        if n.vth <= 0:
            raise NeurokdError(f"layer {layer.name!r}: threshold {n.vth:g} <= 0 has no Loihi form (vth is unsigned)")
        limits["vth 17 bit"] = FORMAT["vth"][1] / n.vth
    b = float(np.abs(lif_bias).max()) if lif_bias.size else 0.0
    if b > 0:
        limits["bias 13+3 bit"] = BIAS_MAX / (2 ** FORMAT["act_shift"] * b)
    bound = np.zeros(layer.size)
    wmax = 0.0
    for syn in layer.synapses:
        bound = bound + _synapse_bound(syn, max_in[syn.source])
        rel = float(np.abs(syn.weight).max()) / unit_in[syn.source] if syn.weight.size else 0.0
        if rel > 0:
            limits[f"weight exponent <= 7 ({syn.name})"] = FORMAT["weight_mixed"][1] * 2.0 ** FORMAT["weight_exp"][1] / rel
            wmax = max(wmax, rel)
    bound = bound + np.abs(syn_bias)
    if n.kind != "none":
        peak = float(bound.max()) / (n.du if n.du > 0 else 1.0)
        if peak > 0:
            limits["24-bit u (worst-case input)"] = MAX_STEP_INPUT / peak
    if n.kind == "none":
        if wmax == 0:
            return 1.0, "all weights zero", limits
        return FORMAT["weight_mixed"][1] / wmax, "readout: full 8-bit mantissa, exponent 0", limits
    if not limits:
        return 1.0, "nothing to scale", limits
    key = min(limits, key=limits.get)
    s0 = limits[key]
    if wmax > 0:
        e = math.floor(math.log2(s0 * wmax / FORMAT["weight_mixed"][1]))
        if e >= FORMAT["weight_exp"][0]:
            s = FORMAT["weight_mixed"][1] * 2.0 ** e / wmax     # largest weight -> full mantissa
            return s, f"{key}, aligned to the 8-bit weight mantissa (exp {e})", limits
    return s0, key, limits


def weight_report(w: np.ndarray, q: FixedSynapse) -> dict:
    """How well ``q`` holds the float weights ``w``: mantissa range used, zeros from rounding, errors."""
    eff = q.effective / q.unit
    nz = w != 0
    lo, hi = _mant_range(q.sign_mode)
    used = float(np.abs(q.mant).max()) / max(abs(lo), abs(hi)) if q.mant.size and (lo or hi) else 0.0
    err = np.abs(eff - w)
    return {
        "kind": q.kind, "weight_exp": q.weight_exp, "sign_mode": q.sign_mode, "unit": q.unit,
        "mantissa_range_used": used, "fraction_clipped": 0.0,
        "fraction_rounded_to_zero": float(np.mean((q.mant == 0) & nz)) if w.size else 0.0,
        "max_abs_weight": float(np.abs(w).max()) if w.size else 0.0,
        "max_abs_error": float(err.max()) if w.size else 0.0,
        "mean_abs_error": float(err.mean()) if w.size else 0.0,
    }


def threshold_int(layer: str, vth: float, scale: float, limited_by: str, formats: str = "Loihi's formats") -> tuple[int, dict]:
    """A float threshold at a layer's scale: ``(integer vth, its report entry)``; one that rounds below
    the format's minimum (weights too large for the threshold) is refused naming the layer and the scale's limit."""
    v = int(round(vth * scale))
    if v < FORMAT["vth"][0]:
        raise NeurokdError(f"layer {layer!r}: threshold {vth:g} rounds to {v} at scale {scale:.4g} (limited by "
                           f"{limited_by}); the weights are too large relative to the threshold for {formats}")
    return v, {"float": vth, "int": v, "abs_error": abs(v / scale - vth)}


def _decay_int(rate: float, offset: int) -> tuple[int, float]:
    """``rate`` (fraction lost per step) -> 12-bit integer (``4096 rate - offset``, clipped) and its error."""
    lo, hi = FORMAT["decay"]
    d = int(np.clip(round(rate * 4096) - offset, lo, hi))
    return d, abs((d + offset) / 4096 - rate)


def quantize(network: Network, input_sample: np.ndarray | None = None, input_bits: int = 8,
             input_range: float | None = None) -> FixedNetwork:
    """Map ``network`` to Loihi fixed point (module docstring); ``input_sample`` decides the input
    encoding (binary spikes, integers, or real values scaled to ``input_bits``)."""
    if not 1 <= int(input_bits) <= 24:
        raise NeurokdError(f"input_bits must be in 1..24, got {input_bits}")
    input_bits = int(input_bits)
    sample = None if input_sample is None else np.asarray(input_sample, dtype=np.float64)
    if sample is not None and not np.all(np.isfinite(sample)):
        raise NeurokdError("the input holds NaN or inf")
    peak = input_range if input_range is not None else (float(np.abs(sample).max()) if sample is not None and sample.size else 1.0)
    signed = bool(sample is not None and sample.size and sample.min() < 0)
    notes = []
    if sample is not None and np.all((sample == 0) | (sample == 1)):
        s_x, graded = 1.0, False
        notes.append("input: binary spikes (0/1), sent as plain spikes")
    elif sample is not None and np.all(np.mod(sample, 1) == 0) and peak <= (2 ** (input_bits - int(signed)) - 1):
        s_x, graded = 1.0, True
        notes.append(f"input: integers up to {peak:g}, sent unchanged as {input_bits}-bit graded spikes")
    else:
        top = 2 ** (input_bits - 1) - 1 if signed else 2 ** input_bits - 1
        s_x, graded = (top / peak if peak > 0 else 1.0), True
        notes.append(f"input: real values |x| <= {peak:g} scaled by {s_x:.6g} to {input_bits}-bit graded spikes")
    unit_in = {network.input_name: s_x}
    max_in = {network.input_name: peak if peak > 0 else 1.0}
    for layer in network.layers:
        unit_in[layer.name] = 1.0
        max_in[layer.name] = 1.0

    layers: dict[str, FixedLayer] = {}
    for layer in network.layers:
        lif_bias, syn_bias = bias_routing(network, layer)
        scale, why, limits = layer_scale(layer, unit_in, max_in, lif_bias, syn_bias)
        rep: dict = {"scale": scale, "limited_by": why, "limits": limits, "synapses": {}}
        fsyn: dict[str, FixedSynapse] = {}
        for syn in layer.synapses:
            unit = scale / unit_in[syn.source]
            mant, exp, mode = quantize_weights(syn.weight, unit, allow_negative_exp=syn.kind == "dense")
            bits = input_bits if (syn.source == network.input_name and graded) else 0
            q = FixedSynapse(syn.name, syn.kind, mant, exp, mode, unit, bits,
                             delays=None if syn.delays is None else syn.delays.copy())
            q.report = weight_report(syn.weight, q)
            fsyn[syn.name] = q
            rep["synapses"][syn.name] = q.report
        bias_syn = None
        if np.any(syn_bias != 0):
            mant, exp, mode = quantize_weights(syn_bias.reshape(-1, 1), scale)
            bias_syn = FixedSynapse(f"{layer.name}.bias", "dense", mant, exp, mode, scale)
            bias_syn.report = weight_report(syn_bias.reshape(-1, 1), bias_syn)
            rep["bias_synapse"] = bias_syn.report
        neuron = None
        n = layer.neuron
        if n.kind != "none":
            du, du_err = _decay_int(n.du, 1)
            dv, dv_err = _decay_int(n.dv, 0)
            rep["du"] = {"float": n.du, "int": du, "abs_error": du_err}
            rep["dv"] = {"float": n.dv, "int": dv, "abs_error": dv_err}
            if n.spiking:
                vth, rep["vth"] = threshold_int(layer.name, n.vth, scale, why)
            else:
                vth = FORMAT["vth"][1]
            target = lif_bias * scale * 2 ** FORMAT["act_shift"]       # bias is added to v unshifted
            peak_b = float(np.abs(target).max()) if target.size else 0.0
            bexp = 0
            while peak_b / 2 ** bexp > FORMAT["bias_mant"][1] and bexp < FORMAT["bias_exp"][1]:
                bexp += 1
            bmant = np.rint(target / 2 ** bexp).astype(np.int32)
            if peak_b:
                err = np.abs(bmant * 2.0 ** bexp / (scale * 2 ** FORMAT["act_shift"]) - lif_bias)
                rep["bias"] = {"bias_exp": bexp, "max_abs_mant": int(np.abs(bmant).max()), "max_abs_error": float(err.max())}
            neuron = FixedNeuron(du, dv, vth, bmant, bexp)
        layers[layer.name] = FixedLayer(layer.name, scale, fsyn, neuron, bias_syn, rep)
    notes.append("conv layers get integer weights mant << weight_exp: Lava's PyConvModelFixed ignores weight_exp")
    return FixedNetwork(network, layers, s_x, input_bits, graded, signed, notes)
