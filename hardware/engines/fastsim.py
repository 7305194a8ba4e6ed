"""A fast model of the hardware Lava simulates: the IR run for a whole batch at once, bit-exact in fixed point.

``run_fast(network, x, precision="float"|"fixed")`` takes the network :func:`~neurokd.hardware.engines.lava_backend.run_lava`
builds (the IR :class:`~neurokd.hardware.network.ir.Network`; in fixed point its
:class:`~neurokd.hardware.network.quantize.FixedNetwork`, one intermediate form for both) and returns a
:class:`FastResult` with the fields of the Lava backend's ``LavaResult`` (per-layer spike counts, per-step
spike trains on request, readout per step, logits, predictions), so reports and energy code take either.
It loops over layers and time steps only; samples, neurons and synapses are tensor axes (torch).

Alignment: every Lava ``Dense``/``Conv`` delivers one step late, and the backend removes that delay
(``LavaResult`` is delay-corrected, sample ``n`` step ``k`` of every layer is that layer's response to
input step ``k``, each sample starting from zeroed state). This model computes the delay-corrected
trains directly: a layer at step ``k`` integrates its sources' output of step ``k``; a recurrent synapse
brings the step ``k - 1`` spikes (Lava's one-step ``Dense`` buffer, NIR's ``W_rec s[t-1]``); a synapse
with delay ``d`` (lava-dl netx ``DelayDense``, a NIR ``Delay`` node) brings step ``k - d``.

What it reproduces, rule by rule (lava-nc 0.10.0 sources; ANCHORS.md section 3):

==================================  ==========================================================================
Lava process model                  computed here (fixed point; integers held exactly, see below)
==================================  ==========================================================================
``PyDenseModelBitAcc``              weights ``clip_weights`` to 8 bits (``[-256, 255]`` mixed, ``[0, 255]``
(lava/proc/dense/models.py)         excitatory, ``[-255, 0]`` inhibitory), then ``truncate_weights``: the
                                    ``8 - num_weight_bits + mixed`` LSBs dropped (floor), sign mode from the
                                    whole matrix; ``a = (W s) << weight_exp`` (``>>``, i.e. floor, when
                                    negative); graded input (``num_message_bits > 0``): ``W . x`` in int32
                                    (wraps) before the shift; binary input: ``x != 0``. ``a_out`` is int32.
``PyDelayDenseModelBitAcc``         as Dense, per delay group ``k``: ``a[t + k] += (W_k s[t]) << weight_exp``
``PyConvModelFixed``                no clipping, no ``weight_exp`` (the backend sends ``mant << exp``);
(lava/proc/conv/{models,utils}.py)  the sum cast to int32 then ``signed_clamp(bits=24)``: a wrap to
                                    ``[-2^23, 2^23)``, not a saturation
``PyLifModelBitAcc``                ``u = trunc(u (4096 - du - 1) / 4096) + (a << 6)``, then Lava's single
(lava/proc/lif/models.py)           24-bit wrap (``u > 2^23: u - 2^24``; else ``<= -2^23: u + 2^24``, on the
                                    unwrapped value); ``v = trunc(v (4096 - dv) / 4096) + u +
                                    (int16(bias_mant) << bias_exp)`` (int32 sums) clipped to ``+-(2^23 - 1)``;
                                    ``s = v > (vth << 6)``; ``v = 0`` where ``s``. ``u`` is never reset.
``PyLifResetModelBitAcc``           the same, with ``u = v = 0`` at each sample's first step (the backend's
                                    ``reset_offset``): here every sample simply starts from zero
neurokd's ``SampleSource``          ``FixedNetwork.quantize_input`` (graded, int32)
==================================  ==========================================================================

Floating point (``floating_pt``, ``PyLifModelFloat``/``PyDenseModelFloat``/``PyConvModelFloat``): float64,
in Lava's order of operations: ``u = u (1 - du) + a``; ``v = (v (1 - dv) + u) + bias``; ``s = v > vth``;
``v = 0`` where ``s``; ``a`` summed over connections in the order the backend connects them
(feed-forward, recurrent, bias synapse). Lava sums a ``Dense`` as ``W[:, s].sum(axis=1)`` and a ``Conv``
with ``scipy.signal.convolve2d``; here they are a matrix product and a convolution, so sums of many
float weights may differ in the last bit (a spike can flip only when ``v`` lands within that rounding of
``vth``; the float trains of neurokd students agree spike for spike in the tests). Fixed point has no
such freedom: every value is an integer, and is held exactly.

Exactness of fixed point: states, inputs and products are integers below ``2^53`` and are held in
float64 (a decay multiplies by an integer below 4096 and divides by 4096, both exact, then truncates
towards zero as Lava's ``sign(x) (|x| >> 12)`` does); a matrix product
or convolution runs in float32 when its worst case ``sum |w| max|x|`` is below ``2^24`` (every partial sum
is then an exact float32 integer, whatever the summation order), else in float64 (below ``2^53``); a float32
convolution whose sums come out non-integer (a fast algorithm such as Winograd, e.g. NNPACK where oneDNN
is missing) is recomputed in float64. The int32 and 24-bit wraps are emulated where they can happen (per
connection from its worst case; per layer from the run's own largest synaptic input and the growth of ``u``
under its decay over ``T`` steps) and skipped where they provably cannot: the plain sums are then the same
numbers.

Readouts (a layer without neuron, or LI/CubaLI/I) are computed as the backend does: the synaptic input
per step (fixed point: divided by the layer's scale), plus the bias on the host, filtered on the host in
float64 for a non-spiking neuron; logits are the mean over time (spike counts / T for a spiking output).

:func:`verify` (:func:`check` to keep both runs) runs a random subset of samples in Lava through the
backend's public ``run_lava`` and raises :class:`~neurokd.errors.CheckFailed` naming layer, sample, step
and neuron of the first difference.
:func:`run_split_fast` is what ``neurokd export --engine fast [--verify N]`` calls: a whole split in this
model, then ``verify`` on ``N`` samples.
"""

from __future__ import annotations

import math
import time
from dataclasses import dataclass
from typing import Callable

import numpy as np
import torch
import torch.nn.functional as F

from neurokd.errors import CheckFailed, NeurokdError
from neurokd.hardware.network.ir import Layer, Network, bias_routing, host_readout
from neurokd.hardware.network.quantize import FORMAT, FixedNetwork, quantize
from neurokd.hardware.engines.result import FastResult, HardwareResult

PRECISIONS = ("float", "fixed")

#: Integer formats of Lava's bit-accurate models that this module reproduces (lava-nc 0.10.0).
LOIHI = {
    "decay_unity": 4096,          # 12-bit decays: x (4096 - d) >> 12   (lava/proc/lif/models.py)
    "u_offset": 1,                # ds_offset: u decays by (du + 1) / 4096
    "state_half": 2 ** 23,        # u, v are 24-bit: max_uv_val
    "conv_bits": 24,              # PyConvModelFixed: signed_clamp(bits=24)
    "channel_bits": 32,           # a_out, a_in, u, v are int32 arrays in the Python models
    "bias_mant_bits": 16,         # LIF bias_mant Var is int16 in the Python model
    "weight_bits": 8,             # clip_weights(num_bits=8)
}
_F32_EXACT = float(2 ** 24)
_F64_EXACT = float(2 ** 53)
_I32 = float(2 ** 31)
#: Samples x steps x neurons (float64 values) held at once; larger runs go in chunks of samples.
CHUNK_VALUES = 24_000_000


# --------------------------------------------------------------------------------------------------
# Integer helpers (values are integers held in float64 tensors)
# --------------------------------------------------------------------------------------------------

def _wrap(x: torch.Tensor, bits: int) -> torch.Tensor:
    """Two's complement wrap of integer values to ``bits`` bits: ``((x + 2^(b-1)) mod 2^b) - 2^(b-1)``."""
    half = float(2 ** (bits - 1))
    return torch.remainder(x + half, 2 * half) - half


def _shift(x: torch.Tensor, exp: int) -> torch.Tensor:
    """``x << exp`` (``exp >= 0``) or ``x >> -exp`` (arithmetic, i.e. floor) on integer values."""
    if exp >= 0:
        return x * float(2 ** exp) if exp else x
    return torch.floor(x * float(2.0 ** exp))


def lava_dense_weights(mant: np.ndarray, num_weight_bits: int = 8, sign_mode: str | None = None) -> np.ndarray:
    """The integer weights ``PyDenseModelBitAcc`` uses: ``clip_weights(8 bits)`` then ``truncate_weights``.

    Sign mode (``lava.utils.weightutils.determine_sign_mode``): excitatory if all >= 0, inhibitory if all
    <= 0, else mixed. Mixed: clip to ``[-256, 255]``; excitatory ``[0, 255]``; inhibitory ``[-255, 0]``
    (negated, clipped, negated back). Truncation drops ``8 - num_weight_bits + mixed`` LSBs with an
    arithmetic shift of the (negated, for inhibitory) value.
    """
    w = np.asarray(mant)
    if w.dtype.kind == "f":
        w = np.trunc(w)                       # Lava's int32 weights Var truncates floats
    w = _wrap_np(w.astype(np.int64), 32)
    if sign_mode is None:
        sign_mode = "excitatory" if w.min(initial=0) >= 0 else ("inhibitory" if w.max(initial=0) <= 0 else "mixed")
    mixed = int(sign_mode == "mixed")
    top = 2 ** LOIHI["weight_bits"]
    if sign_mode == "inhibitory":
        w = -w
    w = np.clip(w, -top * mixed, top - 1)
    cut = LOIHI["weight_bits"] - int(num_weight_bits) + mixed
    if cut < 0:
        raise NeurokdError(f"num_weight_bits {num_weight_bits} > 8 (+ sign): Lava's truncate_weights cannot run it")
    w = (w >> cut) << cut
    if sign_mode == "inhibitory":
        w = -w
    return w


def _wrap_np(x: np.ndarray, bits: int) -> np.ndarray:
    half = 1 << (bits - 1)
    return ((x + half) % (2 * half)) - half


# --------------------------------------------------------------------------------------------------
# The compiled network
# --------------------------------------------------------------------------------------------------

@dataclass
class _Conn:
    """One incoming connection, ready to apply to a tensor of source values ``(M, *in_shape)``."""

    name: str
    source: str
    recurrent: bool
    kind: str                       # dense | conv
    weight: torch.Tensor            # dense: (n_in, n_out) transposed; conv: (Co, Ci/g, kh, kw)
    dtype: torch.dtype
    in_chw: tuple[int, ...]
    n_out: int
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    binarize: bool = False          # num_message_bits == 0: Lava sends s_in.astype(bool)
    exp: int = 0                    # fixed dense: weight_exp
    graded_wrap: bool = False       # fixed graded dense: the int32 dot may wrap before the shift
    conv_wrap: bool = False         # fixed conv: the 24-bit signed_clamp may act
    int32_cast: bool = False        # fixed conv: the sum may leave int32 before the clamp
    channel_wrap: bool = False      # fixed: the int32 a_out may wrap
    delay: int = 0                  # netx DelayDense: this group's delay
    row_delay: torch.Tensor | None = None   # netx DelayDense: one delay per target neuron
    bound: float = 0.0              # max |output| per step (integer units)


@dataclass
class _Unit:
    """One layer: its connections and neuron constants (float units, or integers in fixed point)."""

    layer: Layer
    ff: list[_Conn]
    rec: list[_Conn]
    bias_a: torch.Tensor | None     # constant synaptic input from the bias synapse, (n,)
    kind: str                       # spiking | none | nonspiking
    # float
    cu: float = 0.0
    cv: float = 0.0
    vth: float = math.inf
    bias_v: torch.Tensor | None = None
    # fixed
    fu: int = 0
    fv: int = 0
    vth64: float = 0.0
    wraps: bool = False             # emulate int32 / 24-bit wraps of u and v whatever the data
    sum_wrap: bool = False          # the int32 sum of the connections (Lava's InPort) may wrap
    growth: float = 1.0             # |u| <= growth * 64 * max|a| over a run (decay of u, T steps)
    a_extra: float = 0.0            # bound of the recurrent and bias inputs, added to the data's max|a|
    scale_v: float = 1.0            # fixed: float v = v_int / scale_v


def _delay_groups(delays: np.ndarray | None, w: np.ndarray) -> tuple[np.ndarray | None, list]:
    """``(row_delay, [(delay, weights), ...])`` of a connection with per-synapse ``delays`` (steps).

    One delay per target neuron (netx's axonal delays, a Delay node after the weights): its whole sum
    arrives ``d`` steps late, so one product, then a shift in time per target (the exponent acts on the
    same sum). Otherwise one connection per distinct delay, as Lava's DelayDense sums them."""
    if delays is None or not np.any(delays):
        return None, [(0, w)]
    if np.all(delays == delays[:, :1]):
        return delays[:, 0].astype(np.int64), [(0, w)]
    return None, [(int(k), np.where(delays == k, w, 0)) for k in np.unique(delays)]


class _Compiled:
    """The network as tensors for one precision and one input range."""

    def __init__(self, network: Network, fixed: FixedNetwork | None, steps: int, xmax: float) -> None:
        self.net, self.fixed, self.steps = network, fixed, steps
        self.is_fixed = fixed is not None
        self.units: list[_Unit] = []
        for layer in network.layers:
            self.units.append(self._unit(layer, xmax))

    # -- connections -----------------------------------------------------------------------------------
    def _conn(self, syn, fsyn, xmax_src: float) -> list[_Conn]:
        """The connection(s) of one synapse: one, or one per delay value of a netx ``DelayDense``."""
        in_chw = tuple(syn.conv_in_chw) if syn.kind == "conv" else (syn.n_in,)
        base = dict(name=syn.name, source=syn.source, recurrent=syn.recurrent, kind=syn.kind, in_chw=in_chw,
                    n_out=syn.n_out, stride=tuple(syn.stride), padding=tuple(syn.padding),
                    dilation=tuple(syn.dilation), groups=int(syn.groups))
        if not self.is_fixed:
            row_delay, groups = _delay_groups(syn.delays, syn.weight.astype(np.float64))
            base["row_delay"] = None if row_delay is None else torch.from_numpy(row_delay)
            return [_Conn(weight=torch.from_numpy(np.ascontiguousarray(wk.T if syn.kind == "dense" else wk)),
                          dtype=torch.float64, delay=k, **base) for k, wk in groups]
        bits = int(getattr(fsyn, "num_message_bits", 0))
        binarize = bits == 0
        xmax = 1.0 if binarize else xmax_src
        if syn.kind == "dense":
            w = lava_dense_weights(fsyn.mant, int(fsyn.num_weight_bits),
                                   getattr(fsyn, "lava_sign_mode", None))
            exp = int(fsyn.weight_exp)
        else:
            w = np.asarray(fsyn.mant).astype(np.int64) << int(fsyn.weight_exp)   # FixedSynapse.lava_weight
            w = _wrap_np(w, 32)
            exp = 0
        row_delay, groups = _delay_groups(fsyn.delays, w)
        base["row_delay"] = None if row_delay is None else torch.from_numpy(row_delay)
        out = []
        for k, wk in groups:
            absw = np.abs(wk).astype(np.float64)
            if syn.kind == "dense":
                raw = float(absw.sum(axis=1).max(initial=0.0)) * xmax
            else:
                raw = float(absw.reshape(absw.shape[0], -1).sum(axis=1).max(initial=0.0)) * xmax
            if raw >= _F64_EXACT:
                raise NeurokdError(f"connection {syn.name!r}: integer sums up to {raw:.3g} exceed float64's exact range")
            dtype = torch.float32 if raw < _F32_EXACT else torch.float64
            after = raw * 2.0 ** exp if exp >= 0 else raw
            wt = np.ascontiguousarray(wk.T if syn.kind == "dense" else wk).astype(np.float64)
            c = _Conn(weight=torch.from_numpy(wt).to(dtype), dtype=dtype, binarize=binarize, exp=exp,
                      graded_wrap=syn.kind == "dense" and not binarize and raw >= _I32,
                      conv_wrap=syn.kind == "conv" and raw >= 2 ** 23, int32_cast=syn.kind == "conv" and raw >= _I32,
                      channel_wrap=after >= _I32, delay=k, bound=min(after, _I32) if syn.kind == "dense" else
                      min(raw, float(2 ** 23)), **base)
            out.append(c)
        return out

    def _unit(self, layer: Layer, xmax: float) -> _Unit:
        net, n = self.net, layer.neuron
        lif_bias, syn_bias = bias_routing(net, layer)
        fl = self.fixed.layers[layer.name] if self.is_fixed else None
        ff, rec = [], []
        for syn in layer.synapses:
            source_max = xmax if syn.source == net.input_name else 1.0
            conns = self._conn(syn, fl.synapses[syn.name] if fl else None, source_max)
            (rec if syn.recurrent else ff).extend(conns)
        kind = "spiking" if n.spiking else ("none" if n.kind == "none" else "nonspiking")
        bias_a = None
        if np.any(syn_bias != 0) and kind != "none":
            if self.is_fixed:
                bs = fl.bias_synapse
                if bs is None:
                    raise NeurokdError(f"layer {layer.name!r}: its bias must enter through a synapse here (a network with "
                                       "recurrence or delays runs one sample at a time) and has no exact 8-bit form")
                col = lava_dense_weights(bs.mant.reshape(-1, 1), int(bs.num_weight_bits))
                a = _wrap_np(_shift_np(col.reshape(-1), int(bs.weight_exp)), 32)
                bias_a = torch.from_numpy(a.astype(np.float64))
            else:
                bias_a = torch.from_numpy(syn_bias.astype(np.float64).copy())
        unit = _Unit(layer, ff, rec, bias_a, kind)
        a_max = sum(c.bound for c in ff + rec) + (float(bias_a.abs().max()) if bias_a is not None else 0.0)
        unit.sum_wrap = self.is_fixed and a_max >= _I32
        if kind != "spiking":
            return unit
        if not self.is_fixed:
            unit.cu, unit.cv, unit.vth = 1.0 - float(n.du), 1.0 - float(n.dv), float(n.vth)
            unit.bias_v = torch.from_numpy(lif_bias.astype(np.float64).copy())
            return unit
        fn = fl.neuron
        unity = LOIHI["decay_unity"]
        unit.fu = unity - (int(fn.du) + LOIHI["u_offset"])
        unit.fv = unity - int(fn.dv)
        unit.vth64 = float(int(fn.vth) << FORMAT["act_shift"])
        mant = _wrap_np(np.asarray(fn.bias_mant).astype(np.int64).reshape(-1), LOIHI["bias_mant_bits"])
        bexp = np.asarray(fn.bias_exp).astype(np.int64)
        eff = np.where(bexp >= 0, mant << np.maximum(bexp, 0), mant >> np.maximum(-bexp, 0))
        unit.bias_v = torch.from_numpy(np.broadcast_to(eff, (layer.size,)).astype(np.float64).copy())
        unit.scale_v = float(fl.scale) * 2 ** FORMAT["act_shift"]
        # |u[t]| <= 64 max|a| (1 + f + f^2 + ...) with f = fu / 4096, over at most T steps: the run checks
        # this bound on its own data (_scan) and emulates the wraps only when it can reach 2^23.
        if unit.fu <= 0:
            unit.growth = 1.0
        elif unit.fu < unity:
            unit.growth = min(unity / (unity - unit.fu), float(self.steps))
        else:
            unit.growth = float(self.steps)
        unit.a_extra = sum(c.bound for c in rec) + (float(bias_a.abs().max()) if bias_a is not None else 0.0)
        unit.wraps = unit.fu < 0 or unit.fu > unity or unit.fv < 0 or unit.fv > unity or unit.sum_wrap
        return unit


def _peak(x: torch.Tensor) -> float:
    """``max |x|`` in one pass (0 for an empty tensor)."""
    if not x.numel():
        return 0.0
    lo, hi = torch.aminmax(x)
    return max(-float(lo), float(hi))


def _shift_np(x: np.ndarray, exp: int) -> np.ndarray:
    return x << exp if exp >= 0 else x >> -exp


# --------------------------------------------------------------------------------------------------
# Applying a connection
# --------------------------------------------------------------------------------------------------

def _apply(c: _Conn, x: torch.Tensor, fixed: bool) -> torch.Tensor:
    """``x (M, *in)`` -> ``(M, n_out)``: the connection's output per step (module docstring); float64, or
    exact float32 integers for a fixed-point connection that cannot wrap."""
    m = x.shape[0]
    if c.binarize and x.dtype != torch.bool:
        x = (x != 0)
    x = x.to(c.dtype)
    if c.kind == "dense":
        y = x.reshape(m, -1) @ c.weight
    else:
        args = dict(stride=c.stride, padding=c.padding, dilation=c.dilation, groups=c.groups)
        y = F.conv2d(x.reshape(m, *c.in_chw), c.weight, **args)
        if fixed and c.dtype == torch.float32 and not torch.equal(y, torch.round(y)):
            # A fast convolution algorithm (Winograd/FFT, e.g. NNPACK where oneDNN is missing) is not exact on
            # integers; the float64 path (im2col + matrix product) is.
            y = F.conv2d(x.reshape(m, *c.in_chw).to(torch.float64), c.weight.to(torch.float64), **args)
        y = y.reshape(m, -1)
    if not fixed:
        return y
    if c.dtype == torch.float32 and not (c.graded_wrap or c.conv_wrap or c.int32_cast or c.channel_wrap):
        # No wrap possible: |sum| < 2^24, and a power-of-two shift (with floor) keeps it an exact float32.
        return _shift(y, c.exp) if c.kind == "dense" else y
    y = y.to(torch.float64)
    if c.kind == "dense":
        if c.graded_wrap:
            y = _wrap(y, 32)
        y = _shift(y, c.exp)
    else:
        if c.conv_wrap or c.int32_cast:      # possible in the worst case: act only if this data reaches it
            peak = _peak(y)
            if c.int32_cast and peak >= _I32:    # numpy float64 -> int32 out of range gives INT_MIN on x86
                y = torch.where(y.abs() >= _I32, torch.full_like(y, -_I32), y)
            if peak >= LOIHI["state_half"]:
                y = _wrap(y, LOIHI["conv_bits"])
    if c.channel_wrap:
        y = _wrap(y, LOIHI["channel_bits"])
    return y


# --------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------

def _frames(network: Network, x, timesteps: int | None) -> tuple[np.ndarray, int]:
    """``x`` -> ``(N, T_in, *input_shape)`` float64 with ``T_in`` 1 (direct encoding) or T, and T (as run_lava)."""
    seq = np.asarray(x, dtype=np.float64)
    k = len(network.input_shape)
    if seq.ndim == k + 1 and tuple(seq.shape[1:]) == tuple(network.input_shape):
        steps = int(timesteps or network.timesteps or 0)
        if steps < 1:
            raise NeurokdError("inputs are one frame per sample: pass timesteps (the graph's metadata states none)")
        frames = seq[:, None]
    else:
        frames = network.input_sequence(seq, timesteps)
        steps = frames.shape[1]
    if not np.all(np.isfinite(frames)):
        raise NeurokdError("the input holds NaN or inf")
    if frames.shape[0] < 1:
        raise NeurokdError("no samples to run")
    return frames, steps


def _wanted(record, name: str) -> bool:
    return record is True or (isinstance(record, (list, tuple, set)) and name in record)


def run_fast(
    network: Network,
    x: np.ndarray,
    *,
    precision: str = "float",
    timesteps: int | None = None,
    fixed: FixedNetwork | None = None,
    input_bits: int = 8,
    record_steps: bool | list[str] = False,
    record_voltage: tuple[str, ...] | list[str] = (),
    record_current: tuple[str, ...] | list[str] = (),
    record_state: bool | list[str] = False,
    batch_size: int | None = None,
    progress: bool = False,
    chunk_samples: int | None = None,
    on_chunk: Callable[[int], None] | None = None,
) -> FastResult:
    """Run ``x`` through ``network`` in the fast model (module docstring); arguments as ``run_lava``.

    ``x``: ``(N, *input_shape)`` (direct encoding over ``timesteps``) or ``(N, T, *input_shape)``.
    ``precision``: ``float`` (Lava ``floating_pt``) or ``fixed`` (``fixed_pt``; ``fixed`` defaults to
    ``quantize(network, input_sample=x, input_bits)``, exactly what ``run_lava`` builds). ``record_steps``:
    True or layer names whose per-step spikes to keep; ``record_voltage`` / ``record_current``: layers whose
    membrane ``v`` / current ``u`` (after the step, ``v`` after reset) to keep; ``record_state``: True or spiking
    layers whose per-step "state kept into the next step" (``v != 0``, or a ``u`` that does not fully decay)
    to keep as bool, what the placement's cost reads (:func:`neurokd.hardware.placement.cost.state_from_result`).
    ``batch_size``: samples per chunk (default: as many as fit in ``CHUNK_VALUES`` values; ``run_lava``'s
    ``chunk_samples`` is accepted and ignored, chunks here are sized by memory). ``on_chunk(done_samples)``
    is called after each chunk, as ``run_lava`` does.
    """
    if precision not in PRECISIONS:
        raise NeurokdError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if not isinstance(network, Network):
        raise NeurokdError(f"run_fast needs an ir.Network, got {type(network).__name__}")
    network.check_simulated("run")
    frames, steps = _frames(network, x, timesteps)
    unknown = [v for v in list(record_voltage) + list(record_current)
               + (list(record_steps) if isinstance(record_steps, (list, tuple)) else [])
               + (list(record_state) if isinstance(record_state, (list, tuple)) else []) if v not in network.names]
    if unknown:
        raise NeurokdError(f"cannot record unknown layer(s) {unknown}; layers: {', '.join(network.names)}")
    t0 = time.perf_counter()
    if precision == "fixed":
        fixed = fixed or quantize(network, input_sample=frames, input_bits=input_bits)
        if fixed.network is not network and [l.name for l in fixed.network.layers] != network.names:
            raise NeurokdError("the FixedNetwork given was quantised from another network")
        data = fixed.quantize_input(frames).astype(np.float64)
    else:
        fixed = None
        data = frames
    samples = data.shape[0]
    xmax = float(np.abs(data).max(initial=0.0))
    plan = _Compiled(network, fixed, steps, xmax)
    build_seconds = time.perf_counter() - t0

    widest = max([network.input_size] + [layer.size for layer in network.layers])
    chunk = int(batch_size) if batch_size else max(1, CHUNK_VALUES // max(1, steps * widest * 3))
    counts = {l.name: np.zeros((samples, l.size), dtype=np.int32) for l in network.layers if l.neuron.spiking}
    spikes = {l.name: np.zeros((samples, steps, l.size), dtype=np.uint8) for l in network.layers
              if l.neuron.spiking and _wanted(record_steps, l.name)}
    voltages = {name: np.zeros((samples, steps, network.layer(name).size)) for name in record_voltage}
    states = {l.name: np.zeros((samples, steps, l.size), dtype=bool) for l in network.layers
              if l.neuron.spiking and _wanted(record_state, l.name)}
    currents = {name: np.zeros((samples, steps, network.layer(name).size)) for name in record_current}
    readout = {l.name: np.zeros((samples, steps, l.size)) for l in network.layers if not l.neuron.spiking}
    out_spikes = {l.name: np.zeros((samples, steps, l.size), dtype=np.uint8) for l in network.layers
                  if l.neuron.spiking and l.is_output and l.name not in spikes}

    t1 = time.perf_counter()
    bar = _progress(samples, progress)
    try:
        with torch.inference_mode():
            for start in range(0, samples, chunk):
                stop = min(samples, start + chunk)
                _run_chunk(plan, data[start:stop], steps, start, counts, spikes, out_spikes, voltages, currents,
                           readout, states)
                bar.update(stop - start)
                if on_chunk is not None:
                    on_chunk(stop)
    finally:
        bar.close()
    run_seconds = time.perf_counter() - t1
    result = _result(network, fixed, precision, samples, steps, counts, spikes, out_spikes, voltages, readout,
                     build_seconds, run_seconds)
    result.currents = currents or None
    result.states = states or None
    return result


def _progress(total: int, enabled: bool):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc="fast model", unit="sample", leave=False)


def _current_carries(plan: _Compiled, layer) -> bool:
    """Whether a layer's synaptic current survives into the next step (fixed ``du < 4095``, float ``du < 1``):
    a current cleared every step, as in every neurokd student, is no state."""
    if plan.is_fixed:
        neuron = plan.fixed.layers[layer.name].neuron
        return neuron is not None and int(neuron.du) < 4095
    return float(layer.neuron.du) < 1.0


def _run_chunk(plan: _Compiled, data: np.ndarray, steps: int, offset: int, counts, spikes, out_spikes, voltages,
               currents, readout, states=None) -> None:
    """One chunk of samples through every layer: ``data (B, T_in, *input_shape)``."""
    net, fixed = plan.net, plan.is_fixed
    b = data.shape[0]
    # Source values as (T_src, B, *shape) tensors; T_src = 1 for a directly encoded input.
    values: dict[str, torch.Tensor] = {net.input_name: torch.from_numpy(np.ascontiguousarray(np.swapaxes(data, 0, 1)))}
    sl = slice(offset, offset + b)
    for unit in plan.units:
        layer = unit.layer
        a_ff = _feedforward(unit, values, steps, b, fixed)          # (T or 1, B, n) or None
        if unit.kind == "spiking":
            want_state = states is not None and layer.name in states
            carries = want_state and _current_carries(plan, layer)
            s, v_rec, u_rec = _scan(plan, unit, a_ff, values, steps, b,
                                    voltages_wanted=layer.name in voltages or want_state,
                                    currents_wanted=layer.name in currents or carries)
            values[layer.name] = s
            counts[layer.name][sl] = s.sum(dim=0, dtype=torch.int32).numpy()
            keep = spikes if layer.name in spikes else (out_spikes if layer.name in out_spikes else None)
            if keep is not None:
                keep[layer.name][sl] = s.numpy().swapaxes(0, 1)            # bool -> uint8 on assignment
            if v_rec is not None and layer.name in voltages:
                voltages[layer.name][sl] = v_rec.numpy().swapaxes(0, 1)
            if u_rec is not None and layer.name in currents:
                currents[layer.name][sl] = u_rec.numpy().swapaxes(0, 1)
            if want_state:                                             # state carried into the next step
                kept = v_rec != 0
                if carries:
                    kept |= u_rec != 0
                states[layer.name][sl] = kept.numpy().swapaxes(0, 1)
        else:
            a = _readout_input(unit, a_ff, values, steps, b, fixed)
            a_np = a.numpy().swapaxes(0, 1)                           # (B, T, n)
            if fixed:
                a_np = plan.fixed.to_float(layer.name, a_np)
            readout[layer.name][sl] = host_readout(layer, a_np)


def _feedforward(unit: _Unit, values, steps: int, b: int, fixed: bool) -> torch.Tensor | None:
    """Sum of the feed-forward connections, in connection order: ``(T or 1, B, n)``; float64, or float32
    in fixed point where one connection's exact integers stay below ``2^24``."""
    total = None
    for c in unit.ff:
        src = values[c.source]
        ts = src.shape[0]
        delayed = c.delay or c.row_delay is not None
        if delayed and ts == 1:
            src = src.expand(steps, *src.shape[1:])
            ts = steps
        y = _apply(c, src.reshape(ts * b, *src.shape[2:]), fixed).reshape(ts, b, -1)
        if c.delay:                          # y[t - d]; zero before the sample starts (and all of it for d >= T)
            d = min(c.delay, steps)
            y = torch.cat([torch.zeros(d, b, y.shape[2], dtype=y.dtype), y[: steps - d]], 0)
        if c.row_delay is not None:          # y[t - d_o] for target o; zero before the sample starts
            d = int(c.row_delay.max())
            padded = torch.cat([torch.zeros(d, b, y.shape[2], dtype=y.dtype), y], 0)
            index = (torch.arange(steps).view(-1, 1, 1) + d - c.row_delay.view(1, 1, -1)).expand(steps, b, -1)
            y = torch.gather(padded, 0, index)
        if len(unit.ff) > 1:                 # sums of several float32 connections may leave 2^24
            y = y.to(torch.float64)
        if total is None:
            total = y
        elif total.shape[0] == y.shape[0]:
            total = total + y
        else:
            total = total.expand(steps, b, -1) + y.expand(steps, b, -1)
    if fixed and total is not None and unit.sum_wrap:
        total = _wrap(total.to(torch.float64), LOIHI["channel_bits"])
    return total


def _readout_input(unit: _Unit, a_ff, values, steps: int, b: int, fixed: bool) -> torch.Tensor:
    """What the backend's recorder receives for a layer without a LIF: connections (+ bias synapse)."""
    n = unit.layer.size
    a = torch.zeros(1, b, n, dtype=torch.float64) if a_ff is None else a_ff
    if unit.rec:
        raise NeurokdError(f"layer {unit.layer.name!r}: a recurrent synapse into a non-spiking layer")
    if unit.bias_a is not None:
        a = a + unit.bias_a
        if fixed:
            a = _wrap(a, LOIHI["channel_bits"])
    return a.expand(steps, b, n).contiguous()


def _growth(factor: int, steps: int) -> float:
    """How far ``|x|`` can grow over ``steps`` steps of ``x = trunc(x f / 4096) + w``, in units of ``max|w|``."""
    unity = LOIHI["decay_unity"]
    if factor <= 0:
        return 1.0
    if factor < unity:
        return min(unity / (unity - factor), float(steps))
    return float(steps)


def _scan(plan: _Compiled, unit: _Unit, a_ff, values, steps: int, b: int, voltages_wanted: bool,
          currents_wanted: bool = False):
    """The neuron over time: spikes ``(T, B, n)`` bool and, if wanted, ``v`` after reset and ``u`` (float units).

    Three paths compute the same equations (module docstring): fixed point without recurrence, ``du = 1``
    and no reachable wrap (``u + bias`` formed for all steps at once, exact integers, in-place updates);
    floating point without recurrence; and the general step (recurrent synapses, decaying ``u``, wraps).
    """
    fixed = plan.is_fixed
    n = unit.layer.size
    if a_ff is None:
        a_ff = torch.zeros(1, b, n, dtype=torch.float64)
    const = a_ff.shape[0] == 1
    s_all = torch.empty(steps, b, n, dtype=torch.bool)
    v_all = torch.empty(steps, b, n, dtype=torch.float64) if voltages_wanted else None
    u_all = torch.empty(steps, b, n, dtype=torch.float64) if currents_wanted else None
    bias_v = unit.bias_v
    has_bias_v = bias_v is not None and bool(torch.any(bias_v != 0))
    act = float(2 ** FORMAT["act_shift"])
    half, top = float(LOIHI["state_half"]), float(LOIHI["state_half"] - 1)
    unity = LOIHI["decay_unity"]
    wraps = unit.wraps
    a_dyn = 0.0
    if fixed and not wraps:
        a_dyn = _peak(a_ff) + unit.a_extra
        wraps = act * a_dyn * unit.growth >= half
    v = torch.zeros(b, n, dtype=torch.float64)
    buf = torch.empty(b, n, dtype=torch.float64)
    keep = torch.empty(b, n, dtype=torch.float64)

    if fixed and not wraps and not unit.rec and unit.fu == 0:
        ub = a_ff * act                                   # u[t] = a[t] << 6 exactly (du = 4095)
        if unit.bias_a is not None:
            ub = ub + unit.bias_a * act
        if has_bias_v:
            ub = ub + bias_v                              # exact integers: (vd + u) + b == vd + (u + b)
        peak = act * a_dyn + (float(bias_v.abs().max()) if has_bias_v else 0.0)
        clamp = peak * _growth(unit.fv, steps) >= top
        for t in range(steps):
            ut = ub[0 if const else t]
            if unit.fv == unity:
                torch.add(v, ut, out=buf)
            elif unit.fv == 0:
                buf.copy_(ut)
            else:                            # trunc(v fv / 4096): v fv < 2^35 is exact, / 4096 too
                torch.mul(v, float(unit.fv), out=buf).div_(float(unity), rounding_mode="trunc").add_(ut)
            if clamp:
                buf.clamp_(-top, top)
            torch.gt(buf, unit.vth64, out=s_all[t])
            buf.mul_(torch.le(buf, unit.vth64, out=keep))                # v = 0 where it spiked
            v, buf = buf, v
            if v_all is not None:
                torch.div(v, unit.scale_v, out=v_all[t])
            if u_all is not None:
                torch.div(ub[0 if const else t] - (bias_v if has_bias_v else 0.0), unit.scale_v, out=u_all[t])
        return s_all, v_all, u_all

    if not fixed and not unit.rec:
        a_all = a_ff if unit.bias_a is None else a_ff + unit.bias_a        # Lava: (sum of connections) + bias
        u = torch.zeros(b, n, dtype=torch.float64)
        ubuf = torch.empty(b, n, dtype=torch.float64)
        for t in range(steps):
            at = a_all[0 if const else t]
            if unit.cu == 0.0:
                u = at                                                    # u (1 - du) + a with du = 1
            else:
                torch.mul(u, unit.cu, out=ubuf).add_(at)
                u, ubuf = ubuf, u
            torch.mul(v, unit.cv, out=buf).add_(u)                       # (v (1 - dv) + u) + bias
            if has_bias_v:
                buf.add_(bias_v)
            torch.gt(buf, unit.vth, out=s_all[t])
            buf.mul_(torch.le(buf, unit.vth, out=keep))                  # v = 0 where it spiked (v > vth > 0)
            v, buf = buf, v
            if v_all is not None:
                v_all[t].copy_(v)
            if u_all is not None:
                u_all[t].copy_(u)
        return s_all, v_all, u_all

    a_ff = a_ff.to(torch.float64)
    u = torch.zeros(b, n, dtype=torch.float64)
    s_prev = torch.zeros(b, n, dtype=torch.bool)
    for t in range(steps):
        a = a_ff[0 if const else t]
        for c in unit.rec:
            src = s_prev if c.source == unit.layer.name else (values[c.source][t - 1] if t else None)
            if src is not None:
                a = a + _apply(c, src, fixed)
        if unit.bias_a is not None:
            a = a + unit.bias_a
        if fixed:
            if wraps:
                a = _wrap(a, LOIHI["channel_bits"])
            if unit.fu == 0:
                ud = 0.0
            elif unit.fu == unity:
                ud = u
            else:
                ud = torch.div(u * float(unit.fu), float(unity), rounding_mode="trunc")
            if wraps:                        # Lava's int32 sums, then its single 24-bit wrap of u
                dc = _wrap(ud + _wrap(a * act, 32), 32)
                w = torch.where(dc > half, dc - 2 * half, dc)
                u = torch.where(w <= -half, dc + 2 * half, w)
            else:
                u = ud + a * act
            if unit.fv == unity:
                vd = v
            elif unit.fv == 0:
                vd = torch.zeros_like(v)
            else:
                vd = torch.div(v * float(unit.fv), float(unity), rounding_mode="trunc")
            if wraps:
                vn = _wrap(_wrap(vd + u, 32) + bias_v, 32)
            else:
                vn = vd + u + bias_v
            vn = vn.clamp(-top, top)
            s = vn > unit.vth64
        else:
            u = a if unit.cu == 0.0 else u * unit.cu + a
            vn = v * unit.cv + u
            if has_bias_v:
                vn = vn + bias_v
            s = vn > unit.vth
        v = vn.masked_fill_(s, 0.0)
        s_all[t] = s
        s_prev = s
        if v_all is not None:
            v_all[t] = v / unit.scale_v if fixed else v
        if u_all is not None:
            u_all[t] = u / unit.scale_v if fixed else u
    return s_all, v_all, u_all


def _result(network, fixed, precision, samples, steps, counts, spikes, out_spikes, voltages, readout,
            build_seconds, run_seconds) -> FastResult:
    outputs = {}
    for layer in network.layers:
        if not layer.is_output:
            continue
        if layer.neuron.spiking:
            trains = spikes.get(layer.name, out_spikes.get(layer.name))
            outputs[layer.name] = trains.astype(np.float64)
        else:
            outputs[layer.name] = readout[layer.name]
    first = network.layer(network.readout)
    if first.neuron.spiking:
        logits = counts[first.name] / steps
    else:
        logits = outputs[first.name].mean(axis=1)
    return FastResult(
        precision=precision, samples=samples, timesteps=steps, mode="batch", counts=counts, readout=outputs,
        logits=logits, predictions=np.argmax(logits, axis=1), spikes=spikes or None, voltages=voltages or None,
        delays={l.name: l.delay for l in network.layers}, lava_steps=0, build_seconds=build_seconds,
        run_seconds=run_seconds, fixed=fixed,
    )


# --------------------------------------------------------------------------------------------------
# Agreement with Lava
# --------------------------------------------------------------------------------------------------

def _default_runner():
    from neurokd.hardware.engines.lava_backend import run_lava

    return run_lava


def first_difference(network: Network, fast, lava, indices=None) -> dict | None:
    """The first (earliest step, then earliest layer, then sample, then neuron) spike that differs
    between two results on the same samples, or None. ``indices`` maps result rows to sample numbers."""
    best = None
    order = {name: i for i, name in enumerate(network.names)}
    for name in network.spiking_layers:
        fs = fast.spikes.get(name) if fast.spikes else None
        ls = lava.spikes.get(name) if lava.spikes else None
        if fs is None or ls is None:
            fc, lc = fast.counts[name], lava.counts[name]
            diff = np.argwhere(fc != lc)
            if diff.size:
                i, j = diff[0]
                cand = (math.inf, order[name], int(i), int(j), int(fc[i, j]), int(lc[i, j]), "count")
                best = cand if best is None or cand[:4] < best[:4] else best
            continue
        diff = np.argwhere(fs != ls)
        if diff.size:
            k = np.lexsort((diff[:, 2], diff[:, 0], diff[:, 1]))[0]
            i, t, j = (int(v) for v in diff[k])
            cand = (t, order[name], i, j, int(fs[i, t, j]), int(ls[i, t, j]), "spike")
            best = cand if best is None or cand[:4] < best[:4] else best
    if best is None:
        return None
    t, li, i, j, fv, lv, what = best
    sample = int(indices[i]) if indices is not None else i
    return {"layer": network.names[li], "sample": sample, "step": None if t == math.inf else int(t), "neuron": j,
            "fast": fv, "lava": lv, "what": what}


@dataclass
class Verification:
    """A fast-vs-Lava check (:func:`check`): the JSON-ready ``report`` and both runs on the same samples.

    Row ``i`` of ``lava`` and ``fast`` is sample ``indices[i]`` of the checked input; both were run with
    ``record_steps=True``, so their energy counts include active neuron updates.
    """

    report: dict
    indices: np.ndarray
    lava: HardwareResult
    fast: FastResult

    @property
    def identical(self) -> bool:
        return bool(self.report["identical"])


def verify(network_or_fixed: Network | FixedNetwork, x: np.ndarray, lava=None, n: int = 32, **options) -> dict:
    """:func:`check`'s JSON-ready report (same arguments, same exceptions)."""
    return check(network_or_fixed, x, lava, n, **options).report


def check(
    network_or_fixed: Network | FixedNetwork,
    x: np.ndarray,
    lava=None,
    n: int = 32,
    *,
    precision: str | None = None,
    timesteps: int | None = None,
    seed: int = 0,
    input_bits: int = 8,
    indices=None,
    progress: bool = False,
    strict: bool = True,
) -> Verification:
    """Run ``n`` random samples of ``x`` in Lava and in the fast model; every spike must be identical.

    ``network_or_fixed``: an ``ir.Network`` (float, unless ``precision="fixed"``: then quantised from
    all of ``x`` as ``run_lava`` would) or a ``FixedNetwork`` (fixed; Lava gets the same one, so both
    runs use one quantisation). ``lava``: None (``neurokd.hardware.engines.lava_backend.run_lava``), a callable
    with ``run_lava``'s signature, or a result already computed on ``x`` (all its rows are compared;
    ``n`` is then ignored). ``indices``: which samples to run instead of a random draw.

    Raises :class:`CheckFailed` naming layer, sample (index into ``x``), step and neuron of the first
    difference (and on any readout/prediction difference); with ``strict=False`` returns instead, with
    ``identical`` False and the messages in ``problems``. Returns a :class:`Verification` (report and
    both runs).
    """
    if isinstance(network_or_fixed, FixedNetwork):
        fixed, network = network_or_fixed, network_or_fixed.network
        if precision not in (None, "fixed"):
            raise NeurokdError(f"verify got a FixedNetwork but precision={precision!r}")
        precision = "fixed"
    elif isinstance(network_or_fixed, Network):
        network, fixed = network_or_fixed, None
        precision = precision or "float"
    else:
        raise NeurokdError(f"verify needs an ir.Network or a FixedNetwork, got {type(network_or_fixed).__name__}")
    if precision not in PRECISIONS:
        raise NeurokdError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    frames, steps = _frames(network, x, timesteps)
    xs = np.asarray(x, dtype=np.float64)
    if precision == "fixed" and fixed is None:
        fixed = quantize(network, input_sample=frames, input_bits=input_bits)
    total = frames.shape[0]
    given = lava is not None and not callable(lava)
    if given:
        idx = np.arange(total) if indices is None else np.asarray(indices)
        if lava.samples != len(idx):
            raise NeurokdError(f"the Lava result holds {lava.samples} samples, x gives {len(idx)}")
        if getattr(lava, "precision", precision) != precision:
            raise NeurokdError(f"the Lava result is {lava.precision!r} precision, the check is {precision!r}")
        lava_res, lava_seconds = lava, float(getattr(lava, "run_seconds", 0.0))
    else:
        if indices is not None:
            idx = np.asarray(indices, dtype=np.int64)
        else:
            if n < 1:
                raise NeurokdError(f"verify needs n >= 1 samples, got {n}")
            rng = np.random.default_rng(seed)
            idx = np.sort(rng.choice(total, size=min(int(n), total), replace=False))
        runner = lava or _default_runner()
        t0 = time.perf_counter()
        lava_res = runner(network, xs[idx], precision=precision, timesteps=steps, fixed=fixed,
                          record_steps=True, progress=progress)
        lava_seconds = time.perf_counter() - t0
    fast_res = run_fast(network, xs[idx], precision=precision, timesteps=steps, fixed=fixed, record_steps=True)
    report = {"precision": precision, "samples": int(len(idx)), "indices": [int(i) for i in idx],
              "timesteps": steps, "lava_seconds": lava_seconds, "fast_seconds": fast_res.run_seconds,
              "layers": {}}
    diff = first_difference(network, fast_res, lava_res, idx)
    for name in network.spiking_layers:
        if lava_res.spikes is not None and name in lava_res.spikes:
            same = float(np.mean(fast_res.spikes[name] == lava_res.spikes[name]))
            report["layers"][name] = {"compared": "spikes per step", "identical": same}
        else:
            same = float(np.mean(fast_res.counts[name] == lava_res.counts[name]))
            report["layers"][name] = {"compared": "spike counts per sample", "identical": same}
    problems: list[str] = []
    if diff is not None:
        where = (f"layer {diff['layer']!r}, sample {diff['sample']}, "
                 + (f"step {diff['step']}, " if diff["step"] is not None else "") + f"neuron {diff['neuron']}")
        problems.append(
            f"fast model differs from Lava {'fixed_pt' if precision == 'fixed' else 'floating_pt'} at {where}: "
            f"fast {diff['what']} {diff['fast']}, Lava {diff['lava']} (first of "
            f"{sum(int(np.sum(fast_res.counts[k] != lava_res.counts[k])) for k in network.spiking_layers)} differing "
            f"counts; {len(idx)} samples compared)"
        )
    worst = 0.0
    for name, ro in lava_res.readout.items():
        fr = fast_res.readout.get(name)
        if fr is None or fr.shape != ro.shape:
            continue
        d = float(np.max(np.abs(fr - ro), initial=0.0))
        worst = max(worst, d)
        tol = 0.0 if precision == "fixed" else 1e-9 * max(1.0, float(np.max(np.abs(ro), initial=0.0)))
        if d > tol:
            i, t, j = np.unravel_index(int(np.argmax(np.abs(fr - ro))), fr.shape)
            problems.append(f"fast model readout differs from Lava at layer {name!r}, sample {int(idx[i])}, step {t}, "
                            f"unit {j}: fast {fr[i, t, j]!r}, Lava {ro[i, t, j]!r}")
    agree = float(np.mean(fast_res.predictions == lava_res.predictions))
    if agree < 1.0:
        i = int(np.argmax(fast_res.predictions != lava_res.predictions))
        problems.append(f"fast model predicts {int(fast_res.predictions[i])}, Lava {int(lava_res.predictions[i])} "
                        f"for sample {int(idx[i])}")
    report.update(readout_max_abs_difference=worst, prediction_agreement=agree, identical=not problems,
                  first_difference=diff, problems=problems)
    if problems and strict:
        raise CheckFailed(problems[0])
    return Verification(report=report, indices=np.asarray(idx, dtype=np.int64), lava=lava_res, fast=fast_res)


def run_split_fast(
    network: Network,
    x: np.ndarray,
    *,
    precision: str = "float",
    timesteps: int | None = None,
    fixed: FixedNetwork | None = None,
    input_bits: int = 8,
    record_steps: bool | list[str] = False,
    verify_samples: int = 32,
    seed: int = 0,
    runner: Callable | None = None,
    progress: bool = False,
    strict: bool = True,
) -> tuple[FastResult, Verification | None]:
    """A whole split in the fast model, then :func:`check` on ``verify_samples`` random samples in Lava.

    The call behind ``neurokd export RUN --engine fast [--verify N]``: same arguments as ``run_lava``
    (``fixed`` defaults to the quantisation ``run_lava`` would build from ``x``; Lava's check run gets the
    same ``FixedNetwork``). ``verify_samples=0`` skips Lava. Returns ``(result, verification)``
    (``verification.report`` JSON-ready, ``.lava``/``.fast`` the subset's runs, for the energy report
    beside the whole split's); raises :class:`CheckFailed` (exit 1) on the first spike that differs, or
    with ``strict=False`` reports it (``report["identical"]`` False, ``report["problems"]``) so that a
    caller can write its files first.
    """
    frames, steps = _frames(network, x, timesteps)
    if precision == "fixed" and fixed is None:
        fixed = quantize(network, input_sample=frames, input_bits=input_bits)
    result = run_fast(network, x, precision=precision, timesteps=steps, fixed=fixed, input_bits=input_bits,
                      record_steps=record_steps, progress=progress)
    verification = None
    if verify_samples and verify_samples > 0:
        verification = check(fixed if precision == "fixed" else network, x, runner, n=verify_samples,
                             precision=precision, timesteps=steps, seed=seed, progress=progress, strict=strict)
    return result, verification
