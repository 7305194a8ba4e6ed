"""Write a quantised neurokd network as a lava-dl netx HDF5 file (``.net``), and run such a file in Lava.

``write_netx(fixed, path)`` writes the :class:`~neurokd.hardware.network.quantize.FixedNetwork` that the
Lava backend runs (``run_lava(network, x, precision="fixed", fixed=fixed)``) in the layout
``lava.lib.dl.netx.hdf5.Network`` loads (lava-dl 0.6.0, ``netx/hdf5.py``, ``netx/utils.py``,
``netx/blocks/process.py``; layout checked against the reference files shipped in the lava-dl
wheel, ``tests/lava/lib/dl/netx/gts/*/*.net``). No second converter: every number in the file is
read from the fixed-point form, and netx then builds the same Lava ``Dense``/``Conv`` and ``LIF``
processes as :mod:`neurokd.hardware.engines.lava_backend`, so both runs give identical spikes (tested).
``run_netx(path, x)`` loads the file with netx itself and runs it in ``Loihi2SimCfg(fixed_pt)``;
``check_netx(path, fixed, x)`` compares that run with the backend's (the agreement a user can trust).

How netx turns the file into Lava processes, and what neurokd writes for it::

    /layer/0        type "input", shape (C, H, W) ((C, 1, L) for (C, L); (n, 1, 1) for (n,)): no process
    /layer/i        type "dense": shape (n, 1, 1), weight (n_out, n_in), bias (n_out,), neuron/...
                    type "conv":  shape (C, H, W), weight (C_out, C_in/groups, kH, kW) (PyTorch
                                  layout; netx flips and transposes it to Lava's as the IR does),
                                  stride, padding, dilation as (H, W), groups, bias per channel
                    type "flatten": before a dense layer fed by a conv layer
    /simulation     Ts = 1, tSample = T
    /neurokd        attrs["json"]: layer names, scales, input encoding, how to load and read out

    netx neuron (CUBA)          Lava LIF (fixed_pt)       neurokd FixedNeuron
    iDecay                      du = iDecay - 1           du + 1
    vDecay                      dv = vDecay               dv
    vThMant                     vth = vThMant             vth
    bias (file)                 bias_mant, bias_exp = 6   bias_mant * 2^(bias_exp - 6)  (must be an integer)

Weights. netx stores integer weights and picks its own exponent (``netx.utils.optimize_weight_bits``):
it shifts the file's weights left by ``b`` to fill 8 bits and sets ``weight_exp = -b``, so Lava's
Dense computes ``(sum_j (W_j << b) s_j) >> b = sum_j W_j s_j`` exactly. A netx file therefore
holds weights as plain integers in the 8-bit synapse range ([-256, 254] mixed, [0, 255]
excitatory, [-255, 0] inhibitory) and cannot carry neurokd's weight exponents: a positive one
would overflow 8 bits, a negative one (``(sum mant s) >> e``, finer than an integer step) has no
integer form. netx's conv passes the file's integers through unchanged (no exponent either).
Biases are ``bias << 6``. So a :class:`FixedNetwork` is netx-expressible when every weight
exponent is 0 and every bias ``bias_mant * 2^bias_exp`` is a multiple of 64.
:func:`quantize_netx` produces such a network: :func:`~neurokd.hardware.network.quantize.quantize`'s
encoding and decays, with each layer's scale lowered so the largest weight is an 8-bit integer
at exponent 0 and the bias fits 13 bits at ``bias_exp = 6`` (the convention of lava-dl's own
exports: integer weights, ``vThMant`` in the same units). The Lava backend runs that network as
well, which is how the file is checked.

Input. neurokd students get real values directly (the same frame every step). netx's ``input``
layer with a neuron would re-encode the input as spikes of an LIF driven through its bias, which
is not the student. neurokd writes the ``input`` layer with a shape only (netx creates no process
for it) and the first dense/conv layer receives the graded integers ``round(x * S_x)`` as
``input_message_bits``-bit graded spikes: load with
``netx.hdf5.Network(net_config=path, input_message_bits=B, reset_interval=T, reset_offset=1)``
(``B``: ``/neurokd`` json ``input.message_bits``; 0 for binary spike input). netx resets layer
``k`` (1-based) at ``time_step % T == (k + 1) % T``, the phase neurokd's backend uses (a layer
``k`` hops deep gets sample step 0 at Lava step ``k + 1``), so samples stream back to back.
A dense first layer reads the input flattened in PyTorch (C, H, W) order; a conv first layer
reads Lava's (X, Y, C) layout.

Readout. neurokd's non-spiking readout (the last Dense's output averaged over time) becomes a
netx dense layer whose neuron integrates exactly and never spikes, as lava-dl's PilotNet
reference does for its regression output: ``iDecay = 4096`` (``du = 4095``: ``u[t] = a[t] << 6``),
``vDecay = 0`` (no leak), ``vThMant = 131071``, bias ``round(S b)``. At the end of a sample's
window ``v = 64 * sum_t (a[t] + bias)``, so ``logits = v / (64 S T)``, the same mean over time the
backend computes (its bias added in float on the host, netx's rounded to ``1/S``). It never
spikes while ``|sum_t (a[t] + bias)| <= 131071``; :func:`quantize_netx` lowers the readout scale
until the worst case over ``T`` steps fits.

What netx can express (:func:`netx_supports`): a feed-forward chain in which every layer has
exactly one incoming connection from the layer before it (or the input), dense into 1-D
layers, conv (stride, padding, dilation, groups) into (C, H, W) or (C, L) layers, LIF/IF/CubaLIF
neurons (any ``du``, ``dv``) with membrane biases, and exactly one output: the last layer, spiking
or neurokd's readout. neurokd's pooled-then-conv connections are convolutions and export; a pool
alone is a depthwise convolution (``groups = C``, kernel of ones) and exports as one, since netx's
own ``pool`` layer type raises NotImplementedError. Refused, with the reason: recurrent edges
(netx's ``dense_rec`` keeps the recurrent synapse's buffer across its neuron resets, so streamed
samples would leak into each other), branches and merges (netx connects layers in file order),
a dense connection into a multi-dimensional layer, non-spiking LI/CubaLI/I outputs (the backend
filters them on the host in float; no checked fixed-point form), synaptic-current biases (``du <
1`` with an Affine bias: Lava needs an always-on source netx cannot describe), all-zero weights,
and a dense matrix lava-dl 0.6.0's weight optimiser would alter (no positive weight but a zero:
it picks the exponent as for mixed signs, Lava then clips as inhibitory; :func:`netx_keeps_weights`
runs the loader's own steps on each matrix before writing).
"""

from __future__ import annotations

import json
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurokd import fileio
from neurokd.errors import NeurokdError
from neurokd.hardware.network.ir import Layer, Network, bias_routing, from_lava, lava_shape, to_lava
from neurokd.hardware.network.quantize import (FORMAT, FixedLayer, FixedNetwork, FixedNeuron, FixedSynapse, quantize,
                                               quantize_weights, threshold_int, weight_report)

#: What the netx format (lava-dl 0.6.0) fixes, in one place.
NETX = {
    "bias_exp": 6,                  # netx/hdf5.py get_neuron_params: 'bias_exp': 6
    "weight_max": 254,              # largest |integer weight| neurokd writes (mixed sign: [-256, 254], even)
    "bias_max": FORMAT["bias_mant"][1],
    "readout_vth": FORMAT["vth"][1],  # 17-bit maximum: the integrating readout never reaches it (bound below)
    "readout_iDecay": 4096,         # du = 4095: u = a << 6, nothing kept from the last step
    "readout_vDecay": 0,            # dv = 0: v integrates without leak
    "act_shift": FORMAT["act_shift"],
}
#: The largest |sum over a sample of readout input + bias| (integer units) the integrator holds below threshold.
READOUT_MAX_SUM = NETX["readout_vth"]
FORMAT_NAME = "lava-dl netx hdf5"


# --------------------------------------------------------------------------------------------------
# What netx can express
# --------------------------------------------------------------------------------------------------

def netx_supports(network: Network) -> tuple[bool, str]:
    """``(True, "")`` when netx can express ``network`` (module docstring), else ``(False, reason)``."""
    if not isinstance(network, Network):
        return False, f"expected a neurokd.hardware.network.ir.Network, got {type(network).__name__}"
    if network.recurrent:
        rec = [f"{s.source}->{l.name}" for l in network.layers for s in l.recurrent]
        return False, (f"recurrent edges {rec}: netx's dense_rec keeps the recurrent synapse's buffer across neuron "
                       "resets, so streamed samples would leak into each other")
    if len(network.outputs) != 1:
        return False, f"{len(network.outputs)} outputs {network.outputs}: a netx network has one output (its last layer)"
    if not network.layers:
        return False, "the network has no layers"
    if network.outputs[0] != network.layers[-1].name:
        return False, f"the output {network.outputs[0]!r} is not the last layer: netx connects layers in file order"
    for layer in network.layers:
        if len(layer.synapses) != 1:
            srcs = [s.source for s in layer.synapses]
            return False, (f"layer {layer.name!r} has {len(srcs)} incoming connections {srcs}: netx layers form a "
                           "single chain")
    prev = network.input_name
    for layer in network.layers:
        where = f"layer {layer.name!r}"
        syn = layer.synapses[0]
        if syn.source != prev:
            return False, (f"{where} reads {syn.source!r}, not the layer before it ({prev!r}), a branch: netx "
                           "connects each layer to the previous one only")
        if syn.kind == "dense" and len(layer.shape) != 1:
            return False, f"{where}: a dense connection into a {len(layer.shape)}-D layer {layer.shape}; netx dense layers are 1-D"
        if syn.kind == "conv" and len(layer.shape) not in (2, 3):
            return False, f"{where}: a conv connection into shape {layer.shape}"
        if not np.any(syn.weight):
            return False, f"{where}: all weights are zero (netx's weight optimiser divides by the largest weight)"
        kind = layer.neuron.kind
        if kind not in ("lif", "if", "cubalif", "none"):
            return False, (f"{where}: non-spiking {kind!r} output; neurokd's backend filters it on the host in float, "
                           "so it has no checked fixed-point netx form (a neurokd readout, Linear -> output, has)")
        _, syn_bias = bias_routing(network, layer)
        if kind != "none" and np.any(syn_bias != 0):
            return False, (f"{where}: a synaptic-current bias (du < 1 with an Affine bias) needs an always-on source, "
                           "which a netx file cannot describe")
        prev = layer.name
    return True, ""


def _require_supported(network: Network) -> None:
    ok, why = netx_supports(network)
    if not ok:
        raise NeurokdError(f"cannot export to netx: {why}")


# --------------------------------------------------------------------------------------------------
# Quantisation with netx's constraints
# --------------------------------------------------------------------------------------------------

def _row_bound(layer: Layer, max_in: float) -> np.ndarray:
    """Largest ``sum_j |W_ij| x_j`` per target neuron for inputs ``|x| <= max_in`` (float units)."""
    syn = layer.synapses[0]
    if syn.kind == "dense":
        return np.abs(syn.weight).sum(axis=1) * max_in
    return syn.apply(np.full((1, *syn.in_shape), max_in), np.abs(syn.weight)).reshape(-1)


def quantize_netx(network: Network, input_sample: np.ndarray | None = None, input_bits: int = 8,
                  input_range: float | None = None, timesteps: int | None = None) -> FixedNetwork:
    """``network`` in Loihi fixed point with netx's constraints (module docstring): a FixedNetwork
    that both :func:`write_netx` and the Lava backend run, with identical spikes.

    Per layer, the scale is the smallest of :func:`~neurokd.hardware.network.quantize.quantize`'s scale,
    ``254 S_src / max|W|`` (integer weights at exponent 0), ``4095 / max|b_v|`` (bias at
    ``bias_exp = 6``) and, for a readout, ``131071 / (T (max_i sum_j |W_ij| x_max + |b_i|))`` (the
    integrator stays below threshold). ``timesteps`` defaults to the graph's.
    """
    _require_supported(network)
    base = quantize(network, input_sample=input_sample, input_bits=input_bits, input_range=input_range)
    steps = int(timesteps or network.timesteps or 0)
    if steps < 1:
        raise NeurokdError("quantize_netx needs the number of time steps (the graph's metadata states none): pass timesteps")
    layers: dict[str, FixedLayer] = {}
    for layer in network.layers:
        fl = base.layers[layer.name]
        syn = layer.synapses[0]
        from_input = syn.source == network.input_name
        unit_in = base.input_scale if from_input else 1.0
        max_in = (input_range if input_range is not None else
                  (float(np.abs(input_sample).max()) if input_sample is not None and np.size(input_sample) else 1.0)
                  ) if from_input else 1.0
        n = layer.neuron
        lif_bias, _ = bias_routing(network, layer)
        limits = {f"quantize ({fl.report.get('limited_by', '')})": fl.scale,
                  f"integer weight <= {NETX['weight_max']} at exponent 0 ({syn.name})":
                      NETX["weight_max"] * unit_in / float(np.abs(syn.weight).max())}
        bias = n.b_u if n.kind == "none" else lif_bias
        if np.any(bias != 0):
            limits["bias 13 bit at bias_exp 6"] = NETX["bias_max"] / float(np.abs(bias).max())
        if n.kind == "none":
            worst = float((_row_bound(layer, max_in or 1.0) + np.abs(n.b_u)).max())
            if worst > 0:
                limits[f"readout integrator below threshold over {steps} steps"] = READOUT_MAX_SUM / (steps * worst)
        key = min(limits, key=limits.get)
        scale = limits[key]
        unit = scale / unit_in
        mant, exp, mode = quantize_weights(syn.weight, unit, allow_negative_exp=False)
        if exp != 0:
            raise NeurokdError(f"layer {layer.name!r}: weights need exponent {exp} at scale {scale:.4g} (internal error)")
        bits = base.layers[layer.name].synapses[syn.name].num_message_bits
        q = FixedSynapse(syn.name, syn.kind, mant, 0, mode, unit, bits)
        q.report = weight_report(syn.weight, q)
        rep = {k: v for k, v in fl.report.items() if k not in ("scale", "limited_by", "limits", "synapses", "bias", "vth")}
        rep.update(scale=scale, limited_by=f"netx: {key}", limits=limits, synapses={syn.name: q.report},
                   netx={"scale_quantize": fl.scale, "scale_ratio": scale / fl.scale})
        neuron = None
        if n.kind != "none":
            vth, rep["vth"] = threshold_int(layer.name, n.vth, scale, f"netx: {key}", "8-bit integer weights")
            bmant = np.rint(lif_bias * scale).astype(np.int32)
            if np.any(lif_bias != 0):
                err = np.abs(bmant / scale - lif_bias)
                rep["bias"] = {"bias_exp": NETX["bias_exp"], "max_abs_mant": int(np.abs(bmant).max()),
                               "max_abs_error": float(err.max())}
            # bias_mant << bias_exp ~= 64 S b_v: with bias_exp = 6 the mantissa is S b_v.
            neuron = FixedNeuron(fl.neuron.du, fl.neuron.dv, vth, bmant, NETX["bias_exp"])
        elif np.any(n.b_u != 0):
            rb = np.rint(n.b_u * scale)
            rep["bias"] = {"netx_integrator_bias": int(np.abs(rb).max()),
                           "max_abs_error": float(np.abs(rb / scale - n.b_u).max())}
        layers[layer.name] = FixedLayer(layer.name, scale, {syn.name: q}, neuron, None, rep)
    notes = list(base.notes) + [
        "netx profile: every weight an 8-bit integer at exponent 0, biases at bias_exp 6 (lava-dl netx's format); "
        "layer scales lowered from quantize()'s where needed (report: limits, netx.scale_ratio)"
    ]
    return FixedNetwork(network, layers, base.input_scale, base.input_bits, base.input_graded, base.input_signed, notes)


# --------------------------------------------------------------------------------------------------
# Writing
# --------------------------------------------------------------------------------------------------

def _chw(shape: tuple[int, ...]) -> list[int]:
    """An IR shape as netx's stored (C, H, W): ``(n,) -> (n, 1, 1)``, ``(C, L) -> (C, 1, L)``."""
    if len(shape) == 1:
        return [int(shape[0]), 1, 1]
    if len(shape) == 2:
        return [int(shape[0]), 1, int(shape[1])]
    return [int(s) for s in shape]


def _netx_bias(name: str, fl: FixedLayer) -> np.ndarray | None:
    """``bias_mant * 2^bias_exp / 64`` per neuron (netx adds ``bias << 6``), or None when all zero."""
    nrn = fl.neuron
    eff = nrn.bias_mant.astype(np.int64) * (2 ** int(nrn.bias_exp))
    if not np.any(eff):
        return None
    unit = 2 ** NETX["bias_exp"]
    if np.any(eff % unit):
        raise NeurokdError(
            f"layer {name!r}: bias mantissas at bias_exp {nrn.bias_exp} are not multiples of 2^{NETX['bias_exp']}; "
            "netx fixes bias_exp = 6: quantise with neurokd.hardware.formats.netx.quantize_netx"
        )
    b = eff // unit
    if np.abs(b).max() > NETX["bias_max"]:
        raise NeurokdError(f"layer {name!r}: bias {int(np.abs(b).max())} exceeds 13 bits at bias_exp 6")
    return b


def netx_keeps_weights(weight: np.ndarray) -> bool:
    """Whether netx's loader turns the integer matrix ``weight`` into a Lava Dense that computes
    ``sum_j weight_ij s_j`` exactly: lava-dl's ``optimize_weight_bits`` followed by Lava's
    ``clip_weights``/``truncate_weights``, run as they run at load time.

    False for one case neurokd meets: a matrix with no positive weight but a zero, where lava-dl
    0.6.0 picks its exponent as for mixed signs and Lava then clips and truncates as inhibitory.
    """
    from neurokd.hardware.lava_compat import import_netx

    import_netx()  # lava on Python 3.11, quietly
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    w = np.asarray(weight).astype(np.int64)
    if w.ndim == 1:
        w = w.reshape(1, -1)
    if not np.any(w) or w.max() > 255 or w.min() < -256 or (w.max() > 254 and w.min() < 0):
        return False
    with np.errstate(divide="ignore", invalid="ignore"):
        w2, bits, exp, _ = optimize_weight_bits(w)
    mode = determine_sign_mode(w2)
    lava_w = truncate_weights(clip_weights(w2, mode, num_bits=8), mode, bits).astype(np.int64)
    return bool(np.array_equal(lava_w, w * 2.0 ** -exp))


def _check_fixed(fixed: FixedNetwork, steps: int) -> None:
    net = fixed.network
    for layer in net.layers:
        fl = fixed.layers.get(layer.name)
        if fl is None:
            raise NeurokdError(f"the fixed-point network has no layer {layer.name!r}: quantise this network")
        syn = layer.synapses[0]
        q = fl.synapses[syn.name]
        if q.weight_exp != 0:
            raise NeurokdError(
                f"layer {layer.name!r}: weight exponent {q.weight_exp}; netx files hold 8-bit integer weights at "
                "exponent 0: quantise with neurokd.hardware.formats.netx.quantize_netx(network, ...)"
            )
        lo, hi = {"mixed": (-256, 254), "excitatory": (0, 255), "inhibitory": (-255, 0)}.get(q.sign_mode, (0, 0))
        if q.mant.min() < lo or q.mant.max() > hi:
            raise NeurokdError(f"layer {layer.name!r}: weights outside the 8-bit range [{lo}, {hi}]")
        if syn.kind == "dense" and not netx_keeps_weights(q.mant):
            raise NeurokdError(
                f"layer {layer.name!r}: netx's weight optimiser (lava-dl 0.6.0) would change these weights (no "
                "positive weight but a zero: it scales them as mixed-sign, Lava then clips them as inhibitory)"
            )
        if layer.neuron.kind == "none":
            worst = _readout_worst(fixed, layer, steps)
            if worst > READOUT_MAX_SUM:
                raise NeurokdError(
                    f"readout {layer.name!r}: over {steps} steps its integrator may reach {worst} > {READOUT_MAX_SUM} "
                    "and spike: quantise with neurokd.hardware.formats.netx.quantize_netx (it lowers the readout scale)"
                )


def _readout_bias(fixed: FixedNetwork, layer: Layer) -> np.ndarray:
    return np.rint(layer.neuron.b_u * fixed.layers[layer.name].scale).astype(np.int64)


def _readout_worst(fixed: FixedNetwork, layer: Layer, steps: int) -> int:
    """Largest ``|sum_t (a[t] + bias)|`` the readout integrator can see (integer units)."""
    syn = layer.synapses[0]
    mant = np.abs(fixed.layers[layer.name].synapses[syn.name].mant).astype(np.float64)
    net = fixed.network
    top = 1.0
    if syn.source == net.input_name and fixed.input_graded:
        top = float(2 ** (fixed.input_bits - int(fixed.input_signed)) - 1)
    if syn.kind == "dense":
        row = mant.sum(axis=1) * top
    else:
        row = syn.apply(np.full((1, *syn.in_shape), top), mant).reshape(-1)
    return int(steps * (row + np.abs(_readout_bias(fixed, layer))).max())


def write_netx(fixed: FixedNetwork, path: str | Path, timesteps: int | None = None) -> Path:
    """Write ``fixed`` as a netx HDF5 network file at ``path`` (atomically); returns the path.

    Refuses (:class:`NeurokdError`, with the reason) a network netx cannot express
    (:func:`netx_supports`) and a fixed-point form it cannot hold (weight exponents other than 0,
    biases that are not multiples of 64: use :func:`quantize_netx`).
    """
    import h5py

    if not isinstance(fixed, FixedNetwork):
        raise NeurokdError(f"write_netx needs a FixedNetwork (neurokd.hardware.formats.netx.quantize_netx), got {type(fixed).__name__}")
    net = fixed.network
    _require_supported(net)
    steps = int(timesteps or net.timesteps or 0)
    if steps < 1:
        raise NeurokdError("write_netx needs the number of time steps (the graph's metadata states none): pass timesteps")
    _check_fixed(fixed, steps)
    message_bits = int(fixed.input_bits) if fixed.input_graded else 0
    first = net.layers[0].synapses[0]
    meta = {
        "producer": "neurokd", "format": FORMAT_NAME, "timesteps": steps,
        "input": {"name": net.input_name, "shape": list(net.input_shape), "scale": fixed.input_scale,
                  "bits": fixed.input_bits, "graded": fixed.input_graded, "signed": fixed.input_signed,
                  "message_bits": message_bits,
                  "layout": "flat (C, H, W) order" if first.kind == "dense" else "Lava (X, Y, C)",
                  "encoding": "x_int = clip(round(x * scale)) every step (direct encoding)"},
        "load": f"netx.hdf5.Network(net_config=path, input_message_bits={message_bits}, reset_interval={steps}, "
                "reset_offset=1)",
        "layers": [], "notes": list(fixed.notes),
    }
    with fileio.atomic_path(path) as tmp:
        with h5py.File(tmp, "w") as h5:
            layers = h5.create_group("layer")
            idx = 0

            def group(kind: str, shape) -> "h5py.Group":
                nonlocal idx
                g = layers.create_group(str(idx))
                g.create_dataset("type", data=np.array([kind.encode()], dtype="S10"))
                g.create_dataset("shape", data=np.asarray(shape, dtype=np.int64))
                idx += 1
                return g

            group("input", _chw(net.input_shape))
            block = 0
            for layer in net.layers:
                syn = layer.synapses[0]
                fl = fixed.layers[layer.name]
                q = fl.synapses[syn.name]
                if syn.kind == "dense" and len(syn.in_shape) > 1 and syn.source != net.input_name:
                    group("flatten", [1, 1, int(math.prod(syn.in_shape))])
                if syn.kind == "dense":
                    g = group("dense", [layer.size, 1, 1])
                    g.create_dataset("inFeatures", data=np.int64(syn.n_in))
                    g.create_dataset("outFeatures", data=np.int64(layer.size))
                    g.create_dataset("weight", data=q.mant.astype(np.float32))
                else:
                    g = group("conv", _chw(layer.shape))
                    w = q.mant.astype(np.float32)
                    g.create_dataset("inChannels", data=np.int64(syn.conv_in_chw[0]))
                    g.create_dataset("outChannels", data=np.int64(w.shape[0]))
                    g.create_dataset("kernelSize", data=np.asarray(w.shape[2:], dtype=np.int64))
                    for key, val in (("stride", syn.stride), ("padding", syn.padding), ("dilation", syn.dilation)):
                        g.create_dataset(key, data=np.asarray(val, dtype=np.int64))
                    g.create_dataset("groups", data=np.int64(syn.groups))
                    g.create_dataset("weight", data=w)
                ng = g.create_group("neuron")
                ng.create_dataset("type", data=np.bytes_("CUBA"))
                if fl.neuron is not None:
                    du, dv, vth = fl.neuron.du + 1, fl.neuron.dv, fl.neuron.vth
                    bias = _netx_bias(layer.name, fl)
                    role = "spiking"
                else:
                    du, dv, vth = NETX["readout_iDecay"], NETX["readout_vDecay"], NETX["readout_vth"]
                    bias = _readout_bias(fixed, layer)
                    bias = bias if np.any(bias) else None
                    role = "readout"
                for key, val in (("iDecay", du), ("vDecay", dv), ("vThMant", vth), ("refDelay", 1), ("gradedSpike", 0)):
                    ng.create_dataset(key, data=np.int64(val))
                if bias is not None:
                    if syn.kind == "conv":
                        per = bias.reshape(layer.shape[0], -1)
                        if np.all(per == per[:, :1]):
                            bias = per[:, 0]
                        else:   # neuron-wise: netx wants Lava's (X, Y, C) shape
                            bias = to_lava(bias.reshape(layer.shape), layer.shape)
                    g.create_dataset("bias", data=np.asarray(bias, dtype=np.float32))
                block += 1
                meta["layers"].append({
                    "name": layer.name, "netx_block": block - 1, "group": str(idx - 1), "kind": syn.kind,
                    "role": role, "shape": list(layer.shape), "scale": fl.scale, "delay": block,
                    "neuron_kind": layer.neuron.kind,
                })
            out = net.layers[-1]
            if out.neuron.kind == "none":
                meta["readout"] = {
                    "name": out.name, "scale": fixed.layers[out.name].scale,
                    "logits": "v / (64 * scale * timesteps), v read from the last block's neuron at the end of "
                              "each sample's window (Lava step (n + 1) T + depth for sample n)",
                }
            sim = h5.create_group("simulation")
            sim.create_dataset("Ts", data=np.int64(1))
            sim.create_dataset("tSample", data=np.int64(steps))
            nk = h5.create_group("neurokd")
            nk.attrs["json"] = json.dumps(meta)
    return Path(path)


def read_netx_meta(path: str | Path) -> dict:
    """The ``/neurokd`` description :func:`write_netx` stores (layer names, scales, input encoding)."""
    import h5py

    path = Path(path)
    if not path.is_file():
        raise NeurokdError(f"netx file not found: {path}")
    try:
        with h5py.File(path, "r") as h5:
            if "neurokd" not in h5 or "json" not in h5["neurokd"].attrs:
                raise NeurokdError(f"{path}: not written by neurokd (no /neurokd description); run it with netx directly")
            return json.loads(h5["neurokd"].attrs["json"])
    except OSError as exc:
        raise NeurokdError(f"{path}: not an HDF5 file ({exc})") from exc


# --------------------------------------------------------------------------------------------------
# Running a netx file through netx itself
# --------------------------------------------------------------------------------------------------

@dataclass
class NetxResult:
    """A netx run: per-layer spike trains ``(N, T, size)`` (PyTorch flat order), the readout's
    integrated input ``readout_sum`` ``(N, size)`` (integer units, bias included), logits, predictions."""

    spikes: dict[str, np.ndarray]
    readout_sum: dict[str, np.ndarray]
    logits: np.ndarray
    predictions: np.ndarray
    build_seconds: float = 0.0
    run_seconds: float = 0.0
    notes: list[str] = field(default_factory=list)


def _quantize_input(meta: dict, frames: np.ndarray) -> np.ndarray:
    """``FixedNetwork.quantize_input`` from the file's description: ``clip(round(x * scale))``."""
    inp = meta["input"]
    q = np.rint(frames * float(inp["scale"]))
    bits = int(inp["bits"])
    hi = 2 ** (bits - 1) - 1 if inp["signed"] else 2 ** bits - 1
    return np.clip(q, -hi if inp["signed"] else 0, hi).astype(np.int32)


def run_netx(path: str | Path, x: np.ndarray, *, timesteps: int | None = None) -> NetxResult:
    """Load ``path`` with ``lava.lib.dl.netx.hdf5.Network`` and run ``x`` in ``Loihi2SimCfg(fixed_pt)``.

    ``x``: ``(N, *input_shape)`` float inputs (direct encoding over ``timesteps``, default the file's) or
    ``(N, T, *input_shape)``; quantised with the file's input scale. Samples stream back to back
    (netx's ``reset_interval``); every block's spikes are recorded; a readout's ``v`` is read at the
    end of each sample's window. The Lava processes are stopped in ``finally``.
    """
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg

    from neurokd.hardware.lava_compat import import_netx

    netx = import_netx()
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    meta = read_netx_meta(path)
    shape = tuple(meta["input"]["shape"])
    steps = int(timesteps or meta["timesteps"])
    seq = np.asarray(x, dtype=np.float64)
    if seq.ndim == len(shape) + 1 and tuple(seq.shape[1:]) == shape:
        seq = np.repeat(seq[:, None], steps, axis=1)
    elif not (seq.ndim == len(shape) + 2 and tuple(seq.shape[2:]) == shape and seq.shape[1] == steps):
        raise NeurokdError(f"inputs of shape {seq.shape}; {path} needs (N, {shape}) or (N, {steps}, {shape})")
    n = seq.shape[0]
    data = _quantize_input(meta, seq)
    layers = meta["layers"]
    depth = len(layers)
    total = n * steps + depth
    if meta["input"]["layout"].startswith("flat"):
        frames = data.reshape(n, steps, -1)
    else:
        frames = to_lava(data, shape)
    timeline = np.zeros((*frames.shape[2:], total), dtype=np.int32)
    timeline[..., : n * steps] = np.moveaxis(frames.reshape(n * steps, *frames.shape[2:]), 0, -1)

    t0 = time.perf_counter()
    net = netx.hdf5.Network(net_config=str(path), input_message_bits=int(meta["input"]["message_bits"]),
                            reset_interval=steps, reset_offset=1)
    if len(net.layers) != depth:
        raise NeurokdError(f"{path}: netx built {len(net.layers)} blocks, the description lists {depth}")
    src = Source(data=timeline)
    src.s_out.connect(net.inp)
    sinks = {}
    for info, block in zip(layers, net.layers):
        if info["role"] == "spiking":
            sink = Sink(shape=block.out.shape, buffer=total)
            block.out.connect(sink.a_in)
            sinks[info["name"]] = sink
    readout = layers[-1] if layers[-1]["role"] == "readout" else None
    cfg = Loihi2SimCfg(select_tag="fixed_pt")
    v_sums = []
    build = time.perf_counter() - t0
    t1 = time.perf_counter()
    try:
        if readout is None:
            src.run(condition=RunSteps(num_steps=total), run_cfg=cfg)
        else:
            v = net.layers[-1].neuron.v
            for i in range(n):
                src.run(condition=RunSteps(num_steps=steps + depth if i == 0 else steps), run_cfg=cfg)
                v_sums.append(np.array(v.get()))
        recorded = {name: np.array(s.data.get()) for name, s in sinks.items()}
    finally:
        src.stop()
    run_seconds = time.perf_counter() - t1

    spikes: dict[str, np.ndarray] = {}
    for info in layers:
        if info["name"] not in recorded:
            continue
        flat = recorded[info["name"]]
        d = info["delay"]
        idx = np.arange(n)[:, None] * steps + np.arange(steps)[None, :] + d
        trains = np.moveaxis(flat[..., idx], (-2, -1), (0, 1))          # (N, T, *lava shape)
        lshape = lava_shape(tuple(info["shape"])) if info["kind"] == "conv" else (int(np.prod(info["shape"])),)
        trains = trains.reshape(n, steps, *lshape)
        if info["kind"] == "conv":
            trains = from_lava(trains, tuple(info["shape"]))
        spikes[info["name"]] = (trains.reshape(n, steps, -1) != 0).astype(np.uint8)
    readout_sum: dict[str, np.ndarray] = {}
    if readout is not None:
        vs = np.stack(v_sums).reshape(n, -1)
        if readout["kind"] == "conv":
            vs = from_lava(vs.reshape(n, *lava_shape(tuple(readout["shape"]))), tuple(readout["shape"])).reshape(n, -1)
        readout_sum[readout["name"]] = vs // 2 ** NETX["act_shift"]
        logits = vs / (2 ** NETX["act_shift"] * float(readout["scale"]) * steps)
    else:
        logits = spikes[layers[-1]["name"]].sum(axis=1) / steps
    return NetxResult(spikes, readout_sum, logits, np.argmax(logits, axis=1), build, run_seconds)


def check_netx(path: str | Path, fixed: FixedNetwork, x: np.ndarray, *, labels: np.ndarray | None = None,
               timesteps: int | None = None) -> dict:
    """Run ``x`` through the netx file (:func:`run_netx`) and through neurokd's Lava backend on the same
    ``fixed`` network; return the agreement (the ``agreement*.json`` contract, ``"target": "netx"``).

    ``spike_agreement[layer]``: fraction of identical (sample, step, neuron) spikes; ``readout_agreement``:
    fraction of identical integrated readout sums ``sum_t (a[t] + bias)`` (netx's integrator against
    the backend's recorded input, rebuilt in integers); 1.0 everywhere when the file is exact.
    """
    from neurokd.hardware.engines.lava_backend import run_lava

    network = fixed.network
    steps = int(timesteps or network.timesteps or read_netx_meta(path)["timesteps"])
    got = run_netx(path, x, timesteps=steps)
    ref = run_lava(network, x, precision="fixed", timesteps=steps, fixed=fixed, record_steps=True)
    spikes = {name: float(np.mean(got.spikes[name] == ref.spikes[name])) for name in network.spiking_layers}
    agreement = {
        "target": "netx", "precision": "fixed", "samples": int(len(got.predictions)), "spike_agreement": spikes,
        "spike_agreement_basis": "spikes per step",
        "prediction_agreement": float(np.mean(got.predictions == ref.predictions)),
        "max_logit_difference": float(np.abs(got.logits - ref.logits).max()),
        "reference": "neurokd's Lava backend (fixed_pt) on the same FixedNetwork",
        "netx_build_seconds": got.build_seconds, "netx_run_seconds": got.run_seconds, "timesteps": steps,
    }
    out = network.layer(network.readout)
    if out.neuron.kind == "none":
        scale = fixed.layers[out.name].scale
        a = np.rint((ref.readout[out.name] - out.neuron.b_u) * scale).sum(axis=1)
        want = a + steps * _readout_bias(fixed, out)
        agreement["readout_agreement"] = float(np.mean(np.all(got.readout_sum[out.name] == want, axis=1)))
    if labels is not None:
        labels = np.asarray(labels)
        agreement["accuracy_lava"] = float(np.mean(got.predictions == labels))
        agreement["accuracy_backend"] = float(np.mean(ref.predictions == labels))
    return agreement


__all__ = ["NETX", "netx_supports", "netx_keeps_weights", "quantize_netx", "write_netx", "read_netx_meta", "run_netx", "check_netx", "NetxResult"]
