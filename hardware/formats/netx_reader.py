"""Read a lava-dl netx network (``.net`` HDF5) into neurokd's IR and fixed-point form, for the fast model
and neurokd's own Lava build (``run_lava(net.network, x, precision="fixed", fixed=net.fixed)``).

``read_netx(path)`` returns a :class:`NetxNetwork`: the :class:`~neurokd.hardware.network.ir.Network` and its
:class:`~neurokd.hardware.network.quantize.FixedNetwork` holding exactly the integers that
``lava.lib.dl.netx.hdf5.Network`` (lava-dl 0.6.0) gives Lava's ``fixed_pt`` processes, so
:func:`~neurokd.hardware.engines.fastsim.run_fast` reproduces a netx run. The file is read with h5py only
(layout: ANCHORS.md section 3.6); nothing of lava-dl is imported. :class:`NetxBuilder` builds the same
form from arrays (what lava-dl's block tests do), :func:`gts_folder` finds the reference networks with
recorded outputs that the lava-dl wheel ships (``tests/lava/lib/dl/netx/gts``).

How netx maps a file, and what this reader makes of it (netx/hdf5.py, netx/utils.py, netx/blocks):

=========================  ===================================================  ==============================
``/layer/i``               netx -> Lava (fixed_pt)                               neurokd (IR / FixedNetwork)
=========================  ===================================================  ==============================
``input`` with ``neuron``  ``LIF`` fed directly (no synapse) by ``net.inp``;      LIF layer ``i`` with an identity
                           ``bias``/``weight`` in the file are an unused           synapse from the input (graded,
                           ``transform``; ``bias_mant`` only if set by the user   so ``a = x``); ``input_bias``
``input`` without neuron   no process: ``net.inp`` is the next layer's synapse    the graph input's shape
``flatten``                next dense reads ``out.transpose([2, 1, 0])``:          nothing (the IR's dense columns
                           PyTorch (C, H, W) flat order                           are already in that order)
``conv``                   ``Conv`` with the file's integer weights (flipped to   conv synapse, weight as stored
                           Lava's layout), no exponent; stride/padding/dilation   ((C_out, C_in/g, kH, kW), PyTorch
                           stored (H, W); bias per channel                       cross-correlation), exp 0
``dense`` / ``dense_rec``  ``optimize_weight_bits``: ``w << b`` with ``b``          mantissas ``w << b``,
                           filling 8 bits, ``weight_exp = -b``, ``num_weight_     ``weight_exp = -b``,
                           bits``; ``delay`` -> ``DelayDense`` (clipped to 62;     ``num_weight_bits``, ``delays``
                           per row, per column or per synapse)                    (:class:`FixedSynapse`)
``neuron`` CUBA / LOIHI    ``LIF(vth = vThMant, du = iDecay - 1, dv = vDecay,     ``FixedNeuron`` with the same
                           bias_mant = bias, bias_exp = 6)``; a dense without     integers
                           ``neuron``: iDecay 0, vDecay 4096, vThMant 1 << 17
``neuron`` SDNN            ``Delta`` (input layer), ``Sigma`` (``sigma_output``),  neuron kinds ``delta``,
                           else ``SigmaDelta``; ``vth = vThMant``, state_exp 6,   ``sigma``, ``sigma_delta``: read,
                           16-bit graded messages unless ``messageBits``          placed, counted; not simulated
``pool`` (SLAYER)          netx refuses it. SLAYER: one kernel (``(1, 1, kH,      depthwise conv (``groups = C``);
                           kW)``) for every channel, the end padded by            dense where SLAYER's end padding
                           ``size % k`` zeros                                     changes the output size
``average`` (SLAYER)       netx refuses it. SLAYER: mean over ``shape[0]``        :class:`HostLayer` (host, no
                           equal groups of the previous layer's neurons           core); last layer only
``delay`` (SLAYER)         axonal delay per output neuron, ``floor``-ed; netx     dense: as netx; conv/pool: the
                           runs a dense's on its own input rows (DelayDense),     same rule on the layer's synapse
                           ignores a conv's                                       multiplied out (DelayDense)
=========================  ===================================================  ==============================

``optimize_weight_bits`` (netx/utils.py), as this reader computes it: clip to ``[-256, 254]`` when mixed
sign and out of range; sign mode; ``scale = min(127 / max, -128 / min)`` (mixed), ``-256 / min``
(inhibitory), ``255 / max`` (excitatory); ``b = floor(log2 scale) + mixed``; ``n`` = the largest
``n <= 8`` with every weight a multiple of ``2^n`` (0 if none), minus ``mixed``; ``num_weight_bits =
8 - b - n``. Lava's ``Dense`` then clips and truncates (:func:`~neurokd.hardware.engines.fastsim.lava_dense_weights`).

Not read (``NeurokdError`` naming the layer): resonate-and-fire (``RF*``) neurons, complex dense, and
``convT``, ``unpool``, ``concat`` (pass ``num_layers`` to stop before them). Sigma-delta layers are read
for placement; running or costing such a network is refused in one line
(:meth:`~neurokd.hardware.network.ir.Network.check_simulated`).
The float form of the IR is the integer network in float units (scale 1: ``W`` = integer weights,
``vth = vThMant``, ``b_v = bias 2^6 / 64``): run netx networks with ``precision="fixed"``.
``reset_interval`` has no argument here: the fast model starts every sample from zero, which is a
netx run with ``reset_interval = T`` whose samples are cut at the layers' reset phases.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from importlib import metadata
from pathlib import Path

import numpy as np

from neurokd.errors import NeurokdError
from neurokd.hardware.network.ir import (MAX_DENSE_ENTRIES, HostLayer, Layer, Network, Neuron, Synapse, bias_routing,
                                         from_lava, lava_shape)
from neurokd.hardware.network.quantize import FixedLayer, FixedNetwork, FixedNeuron, FixedSynapse, quantize_weights

#: The netx conventions (lava-dl 0.6.0 netx/hdf5.py, netx/utils.py) in one place.
NETX = {
    "bias_exp": 6,                 # get_neuron_params: 'bias_exp': 6
    "max_delay": 62,               # create_dense clips delays to 62
    "default_neuron": {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17},  # '1 << 18 - 1' in Python
    "weight_mixed_max": 254,       # optimize_weight_bits clips mixed weights to [-256, 254]
    "weight_mixed_min": -256,
    "graded_bits": 24,             # an identity synapse passes graded values unchanged
    "sdnn_message_bits": 16,       # get_neuron_params: SDNN num_message_bits default 16 (LIF: 0, binary)
    "sdnn_state_exp": 6,           # get_neuron_params: SDNN 'state_exp': 6
}
LIF_TYPES = ("CUBA", "LOIHI")
SDNN_TYPES = ("SDNN",)


@dataclass
class NetxNetwork:
    """A netx network in neurokd's form: ``network`` (IR) and ``fixed`` (the integers Lava runs)."""

    network: Network
    fixed: FixedNetwork
    source: str = ""
    layer_types: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    input_neuron: str | None = None
    input_message_bits: int = 0

    @property
    def input_kind(self) -> str:
        """What the data is, from the file's input layer: ``bias`` (an ``input`` layer with a LIF neuron:
        netx feeds it no synapse, the data is that layer's ``bias``, held every step: PilotNet LIF's frame),
        ``graded`` (a sigma-delta ``Delta`` input layer, or no input neuron with ``input_message_bits > 0``)
        or ``spikes`` (no input neuron, binary: N-TIDIGITS). This is the input mode a netx file defaults to
        on the chip (bias -> an on-chip input layer driven by its bias; spikes / graded -> sent by the host
        into the first synapses)."""
        if self.input_neuron in ("lif", "cubalif"):
            return "bias"
        if self.input_neuron is not None or self.input_message_bits > 0:
            return "graded"
        return "spikes"

    def host_outputs(self, result) -> dict[str, np.ndarray]:
        """The host layers (``average``) computed from a run with ``record_steps``: ``{name: (N, T, size)}``."""
        out = {}
        for h in self.network.host_layers:
            trains = result.spikes.get(h.source) if result.spikes else None
            if trains is None:
                raise NeurokdError(f"host layer {h.name} reads layer {h.source}'s per-step output: run with record_steps")
            out[h.name] = h.apply(np.asarray(trains).reshape(trains.shape[0], trains.shape[1], -1))
        return out

    def input_from_lava(self, data: np.ndarray) -> np.ndarray:
        """One sample in Lava's layout ``(*lava_shape, T)`` (a ``RingBuffer``'s data) -> ``(1, T, *shape)``."""
        data = np.asarray(data, dtype=np.float64)
        shape = self.network.input_shape
        x = np.moveaxis(data, -1, 0)
        if len(shape) > 1 and x.ndim == 1 + len(shape):
            x = from_lava(x, shape)
        return x.reshape(1, x.shape[0], *shape)

    def run(self, x: np.ndarray, **kwargs):
        """:func:`~neurokd.hardware.engines.fastsim.run_fast` in fixed point with this network's integers."""
        from neurokd.hardware.engines.fastsim import run_fast

        return run_fast(self.network, x, precision="fixed", fixed=self.fixed, **kwargs)


# --------------------------------------------------------------------------------------------------
# netx's weight optimisation
# --------------------------------------------------------------------------------------------------

def optimize_weight_bits(weight: np.ndarray) -> tuple[np.ndarray, int, int]:
    """netx's ``optimize_weight_bits`` rule (module docstring): ``(weights << b, num_weight_bits, -b)``."""
    w = np.asarray(weight).astype(np.int64)
    if w.size == 0:
        return w, 8, 0
    hi, lo = int(w.max()), int(w.min())
    if (hi > NETX["weight_mixed_max"] and lo < 0) or (lo < NETX["weight_mixed_min"] and hi > 0):
        w = np.clip(w, NETX["weight_mixed_min"], NETX["weight_mixed_max"])
        hi, lo = int(w.max()), int(w.min())
    if hi < 0:
        mixed, scale = 0, -256 / lo
    elif lo >= 0:
        if hi == 0:
            return w, 8, 0             # all zero: nothing to scale (netx would divide by zero)
        mixed, scale = 0, 255 / hi
    else:
        mixed, scale = 1, min(127 / hi if hi else math.inf, -128 / lo)   # netx: 127 / 0 = inf (numpy)
    b = int(math.floor(math.log2(scale))) + mixed
    n = 8
    while n > 0 and np.any(w % (1 << n)):
        n -= 1
    n -= mixed
    if b < 0:
        raise NeurokdError(f"weights up to {max(hi, -lo)} do not fit netx's 8-bit synapse (shift {b})")
    return w << b, 8 - b - n, -b


# --------------------------------------------------------------------------------------------------
# Building the IR + fixed form
# --------------------------------------------------------------------------------------------------

class NetxBuilder:
    """Adds netx layers one after another (each fed by the previous one) and builds a :class:`NetxNetwork`.

    ``input_shape``: the data's shape in PyTorch order ((C, H, W) or (n,)); ``input_message_bits``: 0 for
    binary spikes (Lava's ``s_in.astype(bool)``), else graded.
    """

    def __init__(self, input_shape: tuple[int, ...], input_message_bits: int = 0, name: str = "netx") -> None:
        self.name = name
        self.input_name = "input"
        self.input_shape = tuple(int(s) for s in input_shape)
        self.input_bits = int(input_message_bits)
        self.layers: list[Layer] = []
        self.fixed: dict[str, FixedLayer] = {}
        self.types: dict[str, str] = {}
        self.notes: list[str] = []
        self._bits = self.input_bits          # message bits of what the next synapse receives
        self._graded_input = self.input_bits > 0
        self.input_neuron: str | None = None  # the neuron kind of a netx ``input`` layer with a neuron
        self.host_layers: list[HostLayer] = []

    # -- helpers -----------------------------------------------------------------------------------------
    @property
    def _source(self) -> tuple[str, tuple[int, ...], int]:
        if not self.layers:
            return self.input_name, self.input_shape, 0
        last = self.layers[-1]
        return last.name, last.shape, last.delay

    def _neuron(self, name: str, cfg: dict, shape: tuple[int, ...], bias: np.ndarray | None,
                is_input: bool = False) -> tuple[Neuron, FixedNeuron]:
        ntype = str(cfg.get("type", "CUBA"))
        if ntype not in LIF_TYPES and ntype not in SDNN_TYPES:
            what = "resonate-and-fire" if "RF" in ntype else ntype
            raise NeurokdError(f"{self.name}: layer {name}: {what} neurons are not modelled by neurokd "
                               "(CUBA/LOIHI LIF and sigma-delta SDNN only)")
        size = math.prod(shape)
        mant = np.zeros(size, dtype=np.int64) if bias is None else np.asarray(bias).astype(np.int64)
        if ntype in SDNN_TYPES:
            return self._sigma_delta(name, cfg, shape, mant, is_input)
        du, dv, vth = int(cfg["iDecay"]) - 1, int(cfg["vDecay"]), int(cfg["vThMant"])
        if mant.size not in (1, size) and not (len(shape) == 3 and mant.size == shape[0]):
            raise NeurokdError(f"{self.name}: layer {name}: bias of {mant.size} values does not fit shape {shape}")
        if len(shape) == 3 and mant.size == shape[0] and size != shape[0]:
            mant = np.repeat(mant.reshape(-1), size // shape[0])           # per channel, (C, H, W) order
        mant = np.broadcast_to(mant.reshape(-1), (size,)).copy()
        kind = "lif" if du + 1 >= 4096 else "cubalif"
        eff = mant.astype(np.float64) * 2 ** NETX["bias_exp"]
        neuron = Neuron(kind, (du + 1) / 4096, dv / 4096, float(vth), np.zeros(size), eff / 64.0, node=name)
        return neuron, FixedNeuron(du, dv, vth, mant, NETX["bias_exp"])

    def _sigma_delta(self, name: str, cfg: dict, shape: tuple[int, ...], mant: np.ndarray,
                     is_input: bool) -> tuple[Neuron, FixedNeuron]:
        """An ``SDNN`` neuron as netx builds it (``get_neuron_params``): ``Delta`` for an input layer,
        ``Sigma`` where ``sigma_output`` is set, else ``SigmaDelta``; ``vth = vThMant``, ``state_exp 6``.
        Held for placement and counting only (:data:`~neurokd.hardware.network.ir.UNSIMULATED_KINDS`)."""
        size = math.prod(shape)
        if len(shape) == 3 and mant.size == shape[0] and size != shape[0]:
            mant = np.repeat(mant, size // shape[0])
        mant = np.broadcast_to(mant.reshape(-1), (size,)).copy() if mant.size in (1, size) else np.zeros(size, np.int64)
        kind = "delta" if is_input else ("sigma" if "sigma_output" in cfg else "sigma_delta")
        vth = int(cfg.get("vThMant", 0))
        info = {"type": "SDNN", "activation": str(cfg.get("activation", "")), "state_exp": NETX["sdnn_state_exp"]}
        neuron = Neuron(kind, 0.0, 0.0, float(vth), np.zeros(size), mant * 2.0 ** NETX["bias_exp"] / 64.0, node=name,
                        nir=info)
        self.notes.append(f"layer {name}: {kind.replace('_', '-')} neurons (SDNN, {info['activation'] or 'no'} "
                          "activation): placed and counted, not simulated")
        return neuron, FixedNeuron(0, 0, vth, mant, NETX["bias_exp"])

    def _add(self, name: str, kind: str, shape, neuron: Neuron, fneuron: FixedNeuron, syns: list[tuple[Synapse, FixedSynapse]],
             out_bits: int) -> None:
        src_delay = self._source[2]
        layer = Layer(name, tuple(int(s) for s in shape), neuron, [s for s, _ in syns], delay=src_delay + 1)
        self.layers.append(layer)
        self.fixed[name] = FixedLayer(name, 1.0, {s.name: f for s, f in syns}, fneuron)
        self.types[name] = kind
        self._bits = out_bits

    # -- layers ----------------------------------------------------------------------------------------
    def input(self, name: str, neuron: dict, shape: tuple[int, ...] | None = None, bias: np.ndarray | None = None,
              message_bits: int = 0) -> None:
        """netx ``input`` with a neuron: a LIF fed directly by the data (``a = x``), ``bias`` per neuron
        (PyTorch order, or per channel)."""
        shape = tuple(self.input_shape if shape is None else shape)
        if math.prod(shape) != math.prod(self.input_shape):
            raise NeurokdError(f"{self.name}: input layer {name} of shape {shape} does not fit the data {self.input_shape}")
        n, fn = self._neuron(name, neuron, shape, bias, is_input=True)
        self.input_neuron = n.kind
        size = math.prod(shape)
        if len(shape) == 3:            # identity as a 1x1 depthwise convolution (no n x n matrix)
            c = shape[0]
            w = np.ones((c, 1, 1, 1))
            syn = Synapse(f"{name}.in", self.input_name, name, "conv", w, self.input_shape, shape, groups=c)
        else:
            w = np.eye(size)
            syn = Synapse(f"{name}.in", self.input_name, name, "dense", w, self.input_shape, shape)
        fs = FixedSynapse(syn.name, syn.kind, w.astype(np.int32), 0, "excitatory", 1.0, NETX["graded_bits"])
        self._add(name, "input", shape, n, fn, [(syn, fs)], message_bits)
        self.notes.append(f"layer {name}: input neuron driven directly by the data (identity synapse)")

    def conv(self, name: str, weight: np.ndarray, neuron: dict, shape: tuple[int, ...], stride=(1, 1), padding=(0, 0),
             dilation=(1, 1), groups: int = 1, bias: np.ndarray | None = None, message_bits: int = 0,
             delay: np.ndarray | None = None) -> None:
        """netx ``conv``: ``weight (C_out, C_in/groups, kH, kW)`` integers as stored; pairs in (H, W) order."""
        src, in_shape, _ = self._source
        if len(in_shape) != 3:
            raise NeurokdError(f"{self.name}: conv layer {name} needs a (C, H, W) input, gets {in_shape}")
        w = np.asarray(weight).astype(np.int64)
        w = w.reshape(w.shape[:4])
        syn = Synapse(f"{name}.conv", src, name, "conv", w.astype(np.float64), in_shape, tuple(shape),
                      stride=_pair(stride), padding=_pair(padding), dilation=_pair(dilation), groups=int(groups))
        expect = _conv_out(in_shape, w.shape, syn)
        if tuple(expect) != tuple(shape):
            raise NeurokdError(f"{self.name}: conv layer {name}: output {tuple(expect)} != stored shape {tuple(shape)}")
        self._add_conv(name, "conv", syn, w, neuron, bias, delay, message_bits)

    def pool(self, name: str, weight: np.ndarray, neuron: dict, shape: tuple[int, ...], kernel_size, stride=None,
             padding=(0, 0), dilation=(1, 1), delay: np.ndarray | None = None, message_bits: int = 0) -> None:
        """SLAYER ``pool`` (netx itself refuses it): one kernel ``weight`` (``(1, 1, kH, kW)``, integers as
        stored) applied to every channel alone, i.e. a depthwise convolution (``groups = C``). SLAYER's
        ``Pool`` first pads a spatial size that is not a multiple of the kernel with ``size % k`` zero rows
        (columns) at the end; a pool whose output needs that padding is built as the dense matrix of the
        same sums (one row per output neuron), since a Lava ``Conv`` pads both sides alike."""
        src, in_shape, _ = self._source
        if len(in_shape) != 3:
            raise NeurokdError(f"{self.name}: pool layer {name} needs a (C, H, W) input, gets {in_shape}")
        k = _pair(kernel_size)
        kern = np.asarray(weight).astype(np.int64).reshape(-1)
        if kern.size == 1:
            kern = np.full(k[0] * k[1], int(kern[0]))
        if kern.size != k[0] * k[1]:
            raise NeurokdError(f"{self.name}: pool layer {name}: weight of {kern.size} values for a {k} kernel")
        c = in_shape[0]
        w = np.broadcast_to(kern.reshape(1, 1, *k), (c, 1, *k)).copy()
        syn = Synapse(f"{name}.pool", src, name, "conv", w.astype(np.float64), in_shape, tuple(shape),
                      stride=_pair(k if stride is None else stride), padding=_pair(padding), dilation=_pair(dilation),
                      groups=c)
        if tuple(_conv_out(in_shape, w.shape, syn)) != tuple(shape):
            ext = (in_shape[1] + in_shape[1] % k[0], in_shape[2] + in_shape[2] % k[1])
            if tuple(_conv_out((c, *ext), w.shape, syn)) != tuple(shape):
                raise NeurokdError(f"{self.name}: pool layer {name}: output {_conv_out(in_shape, w.shape, syn)} != "
                                   f"stored shape {tuple(shape)}")
            self.notes.append(f"layer {name}: pool over a size not a multiple of its kernel (SLAYER pads the end): "
                              "built as a dense matrix")
            dense = _conv_dense(w, in_shape, tuple(shape), syn, f"{self.name}: pool layer {name}")
            syn = Synapse(f"{name}.pool", src, name, "dense", dense.astype(np.float64), in_shape, tuple(shape))
            w = dense
        self._add_conv(name, "pool", syn, w, neuron, None, delay, message_bits)

    def _add_conv(self, name: str, kind: str, syn: Synapse, w: np.ndarray, neuron: dict, bias, delay,
                  message_bits: int) -> None:
        """A conv or pool layer; axonal ``delay`` (per output neuron, as SLAYER stores it) as netx runs a
        dense layer's: on the layer's own synapse, which then is dense (a Lava ``Conv`` holds no delays)."""
        shape = syn.out_shape
        delays = None if delay is None else _delays(delay, syn.n_out, syn.n_in, f"{self.name}: {kind} layer {name}")
        if delays is not None:
            if syn.kind == "conv":
                w = _conv_dense(w, syn.in_shape, shape, syn, f"{self.name}: {kind} layer {name} with delays")
            syn = Synapse(syn.name, syn.source, name, "dense", w.astype(np.float64), syn.in_shape, shape, delays=delays)
            self.notes.append(f"layer {name}: axonal delays up to {int(delays.max())} steps on a {kind} "
                              "(a dense DelayDense; netx ignores a conv's delays)")
        if syn.kind == "dense":        # Lava's Dense truncates 8-bit weights: netx's optimisation keeps them exact
            mant, bits, exp = optimize_weight_bits(w)
            fs = FixedSynapse(syn.name, "dense", mant.astype(np.int32), exp, "mixed", 1.0, self._bits,
                              num_weight_bits=bits, delays=delays)
        else:
            fs = FixedSynapse(syn.name, "conv", w.astype(np.int32), 0, "mixed", 1.0, self._bits)
        n, fn = self._neuron(name, neuron, tuple(shape), bias)
        self._add(name, kind, shape, n, fn, [(syn, fs)], message_bits)

    def average(self, name: str, shape: tuple[int, ...]) -> None:
        """SLAYER ``average`` (netx refuses it): the host's mean over groups of the last layer's neurons
        (:class:`~neurokd.hardware.network.ir.HostLayer`); it must be the network's last layer."""
        if not self.layers:
            raise NeurokdError(f"{self.name}: average layer {name} has no layer before it to average")
        src = self.layers[-1]
        outputs = math.prod(shape)
        if outputs < 1 or src.size % outputs:
            raise NeurokdError(f"{self.name}: average layer {name}: {src.size} neurons of layer {src.name} do not "
                               f"split into {outputs} equal groups")
        self.host_layers.append(HostLayer(name, "average", src.name, (outputs,)))
        self.types[name] = "average"
        self.notes.append(f"layer {name}: average of {outputs} groups of {src.size // outputs} neurons of layer "
                          f"{src.name}, computed by the host (no core)")

    def dense(self, name: str, weight: np.ndarray, neuron: dict | None = None, bias: np.ndarray | None = None,
              delay: np.ndarray | None = None, weight_rec: np.ndarray | None = None, optimize: bool = True,
              num_weight_bits: int = 8, weight_exp: int = 0, message_bits: int = 0) -> None:
        """netx ``dense`` (``dense_rec`` with ``weight_rec``): ``optimize`` applies netx's
        ``optimize_weight_bits`` (as ``hdf5.Network`` does); else ``num_weight_bits``/``weight_exp`` as given
        (as lava-dl's ``Dense`` block does)."""
        src, in_shape, _ = self._source
        w = np.asarray(weight).astype(np.int64)
        n_in = math.prod(in_shape)
        w = w.reshape(-1, n_in) if w.ndim == 1 else w
        if w.shape[1] != n_in:
            raise NeurokdError(f"{self.name}: dense layer {name}: weight {w.shape} does not fit {n_in} inputs")
        n_out = w.shape[0]
        w_rec = None if weight_rec is None else np.asarray(weight_rec).astype(np.int64).reshape(n_out, n_out)
        if optimize:
            both = w if w_rec is None else np.hstack([w, w_rec])
            both, num_weight_bits, weight_exp = optimize_weight_bits(both)
            w, w_rec = (both, None) if w_rec is None else (both[:, :n_in], both[:, n_in:])
        delays = None if delay is None else _delays(delay, n_out, n_in, f"{self.name}: dense layer {name}")
        cfg = neuron if neuron is not None else NETX["default_neuron"]
        syn = Synapse(f"{name}.dense", src, name, "dense", w.astype(np.float64) * 2.0 ** weight_exp, in_shape, (n_out,),
                      delays=delays)
        fs = FixedSynapse(syn.name, "dense", w.astype(np.int32), int(weight_exp), "mixed", 1.0, self._bits,
                         num_weight_bits=int(num_weight_bits), delays=delays)
        syns = [(syn, fs)]
        if w_rec is not None:
            if delays is not None:
                raise NeurokdError(f"{self.name}: layer {name}: recurrent dense with delays is not modelled")
            rec = Synapse(f"{name}.rec", name, name, "dense", w_rec.astype(np.float64) * 2.0 ** weight_exp, (n_out,),
                          (n_out,), recurrent=True)
            syns.append((rec, FixedSynapse(rec.name, "dense", w_rec.astype(np.int32), int(weight_exp), "mixed", 1.0,
                                          0, num_weight_bits=int(num_weight_bits))))
        if delays is not None:
            self.notes.append(f"layer {name}: synaptic delays up to {int(delays.max())} steps (DelayDense)")
        n, fn = self._neuron(name, cfg, (n_out,), bias)
        self._add(name, "dense_rec" if w_rec is not None else "dense", (n_out,), n, fn, syns, message_bits)

    def _bias_synapses(self, net: Network) -> None:
        """A network with recurrence or delays runs one sample at a time, its biases through a synapse open
        from each layer's window (:func:`~neurokd.hardware.network.ir.bias_routing`): the same
        delay-corrected steps as a bias on the neuron (``du = 1``, ``u = a + b``)."""
        for layer in net.layers:
            try:
                _, syn_bias = bias_routing(net, layer)
            except NeurokdError:
                continue               # refused by the engines in one line when run; placement needs no bias
            if np.any(syn_bias != 0):
                fl = self.fixed[layer.name]
                fl.bias_synapse = _bias_synapse(layer.name, syn_bias)
                fl.neuron.bias_mant = np.zeros_like(fl.neuron.bias_mant)    # moved, not added twice

    def build(self, source: str = "") -> NetxNetwork:
        if not self.layers:
            raise NeurokdError(f"{self.name}: no layer to run")
        self.layers[-1].is_output = True
        net = Network(list(self.layers), self.input_name, self.input_shape, [self.layers[-1].name], None,
                      "netx integers (no dt)", metadata={"source": source or self.name, "format": "lava-dl netx"},
                      notes=list(self.notes), host_layers=list(self.host_layers))
        if net.per_sample:
            self._bias_synapses(net)
        signed = True
        fixed = FixedNetwork(net, dict(self.fixed), 1.0, NETX["graded_bits"], self._graded_input, signed,
                             notes=["read from a netx file: integers as netx gives them to Lava"])
        out = NetxNetwork(net, fixed, source, dict(self.types), list(self.notes), self.input_neuron, self.input_bits)
        if out.input_kind == "bias":     # the placement's input mode reads this (placement.inputs.has_bias_input_layer)
            net.metadata["input_layer"] = "bias"
        return out


def _bias_synapse(name: str, bias: np.ndarray) -> FixedSynapse | None:
    """A layer's bias (integer units) as the windowed bias synapse neurokd's engines give a network that runs one
    sample at a time (:func:`~neurokd.hardware.network.ir.bias_routing`), or None where 8-bit mantissas with an
    exponent cannot hold it exactly (the engines then refuse the run in one line)."""
    try:
        mant, exp, mode = quantize_weights(bias.reshape(-1, 1), 1.0)
    except NeurokdError:
        return None
    if not np.array_equal(mant.astype(np.float64) * 2.0 ** exp, bias.reshape(-1, 1)):
        return None
    return FixedSynapse(f"{name}.bias", "dense", mant, exp, mode, 1.0)


def _delays(delay, n_out: int, n_in: int, where: str) -> np.ndarray | None:
    """A stored ``delay`` as whole steps per synapse ``(n_out, n_in)``, netx's rule (``create_dense``): one
    value for all; ``n_out`` values, one per output neuron (SLAYER's axonal delays of the layer, which netx
    runs on the layer's own input rows: the same spikes for a neuron at rest without bias, since a
    time-invariant neuron whose every input is ``d`` steps late fires ``d`` steps late); ``n_in`` values,
    one per input; or one per synapse. Clipped to ``[0, 62]`` as netx does; None when all are zero."""
    d = np.clip(np.floor(np.asarray(delay, dtype=np.float64)).astype(np.int64), 0, NETX["max_delay"])
    if d.ndim == 0 or d.size == 1:
        delays = np.full((n_out, n_in), int(d.reshape(-1)[0]))
    elif d.ndim == 1 and d.size == n_out:
        delays = np.repeat(d.reshape(-1, 1), n_in, axis=1)
    elif d.ndim == 1 and d.size == n_in:
        delays = np.repeat(d.reshape(1, -1), n_out, axis=0)
    elif d.shape == (n_out, n_in):
        delays = d
    else:
        raise NeurokdError(f"{where}: delay of shape {d.shape} fits neither {n_out} outputs nor {n_in} inputs")
    return delays if np.any(delays) else None


def _conv_dense(w: np.ndarray, in_shape, out_shape, syn: Synapse, where: str) -> np.ndarray:
    """The convolution ``w`` (cross-correlation, ``syn``'s stride/padding/dilation/groups, inputs past the
    end read as zeros) as a dense integer matrix ``(n_out, n_in)`` in flat (C, H, W) order."""
    c, h, wd = in_shape
    co, ho, wo = out_shape
    n_in, n_out = c * h * wd, co * ho * wo
    if n_in * n_out > MAX_DENSE_ENTRIES:
        raise NeurokdError(f"{where}: as a dense matrix it is {n_out:,} x {n_in:,}, over neurokd's "
                           f"{MAX_DENSE_ENTRIES:,} entries")
    cg, kh, kw = w.shape[1:]
    dense = np.zeros((n_out, n_in), dtype=np.int64)
    per_group = co // syn.groups
    oc, oy, ox = np.meshgrid(np.arange(co), np.arange(ho), np.arange(wo), indexing="ij")
    rows = (oc * ho + oy) * wo + ox
    for j in range(cg):
        ci = (oc // per_group) * cg + j
        for a in range(kh):
            iy = oy * syn.stride[0] - syn.padding[0] + a * syn.dilation[0]
            for b in range(kw):
                ix = ox * syn.stride[1] - syn.padding[1] + b * syn.dilation[1]
                ok = (iy >= 0) & (iy < h) & (ix >= 0) & (ix < wd)
                dense[rows[ok], ((ci * h + iy) * wd + ix)[ok]] += w[oc[ok], j, a, b]
    return dense


def _pair(v) -> tuple[int, int]:
    a = np.asarray(v).reshape(-1)
    return (int(a[0]), int(a[0])) if a.size == 1 else (int(a[0]), int(a[1]))


def _conv_out(in_shape, wshape, syn: Synapse) -> tuple[int, int, int]:
    _, h, w = in_shape
    out = []
    for d, n in enumerate((h, w)):
        k = (wshape[2 + d] - 1) * syn.dilation[d] + 1
        out.append((n + 2 * syn.padding[d] - k) // syn.stride[d] + 1)
    return (wshape[0], *out)


# --------------------------------------------------------------------------------------------------
# Reading a file
# --------------------------------------------------------------------------------------------------

def _value(ds):
    v = ds[()]
    if isinstance(v, np.ndarray) and v.dtype.kind == "S":
        v = v.reshape(-1)[0]
    if isinstance(v, bytes):
        return v.decode("ascii")
    return v


def _group(g) -> dict:
    return {k: _value(g[k]) for k in g.keys() if not hasattr(g[k], "keys")}


def read_netx(path: str | Path, *, num_layers: int | None = None, input_message_bits: int = 0,
              input_bias: np.ndarray | None = None, input_shape: tuple[int, ...] | None = None) -> NetxNetwork:
    """Read a netx ``.net`` file (module docstring); arguments as ``netx.hdf5.Network``'s.

    ``num_layers``: only the first ``num_layers`` entries of ``/layer``. ``input_message_bits``: bits of
    the data sent to the first synapse (0: binary spikes). ``input_bias``: ``bias_mant`` of the input
    layer's neuron in Lava's (X, Y, C) layout (what lava-dl's tests set), converted to PyTorch order.
    ``input_shape``: PyTorch-order input shape when the file has no ``input`` layer.
    """
    import h5py

    path = Path(path)
    if not path.is_file():
        raise NeurokdError(f"netx file not found: {path}")
    try:
        f = h5py.File(path, "r")
    except OSError as exc:
        raise NeurokdError(f"{path}: not an HDF5 file ({exc})") from None
    with f:
        if "layer" not in f:
            raise NeurokdError(f"{path}: no /layer group; not a netx network")
        groups = f["layer"]
        count = len(groups)
        if num_layers is not None:
            count = min(count, int(num_layers))
        builder = None
        shape = tuple(input_shape) if input_shape is not None else None
        for i in range(count):
            name = str(i)
            if name not in groups:
                raise NeurokdError(f"{path}: /layer/{name} missing")
            try:
                builder, shape = _read_layer(path, groups[name], name, i, builder, shape, input_message_bits,
                                             input_bias)
            except (KeyError, TypeError, ValueError) as exc:
                raise NeurokdError(f"{path}: /layer/{name} is malformed ({exc}); not a netx layer neurokd can read") from None
        if builder is None:
            raise NeurokdError(f"{path}: no layer with neurons in the first {count} entries")
        return builder.build(str(path))


def _read_layer(path: Path, g, name: str, i: int, builder: NetxBuilder | None, shape, input_message_bits: int,
                input_bias) -> tuple[NetxBuilder | None, tuple[int, ...] | None]:
    """One ``/layer/i`` group into ``builder`` (created by the first layer that has a process)."""
    import h5py

    ltype = _value(g["type"])
    if "weight" in g and isinstance(g["weight"], h5py.Group) or ltype == "dense_comp":
        raise NeurokdError(f"{path}: layer {name}: complex dense (resonate-and-fire) is not modelled")
    stored = tuple(int(s) for s in np.asarray(g["shape"][()]).reshape(-1)) if "shape" in g else None
    neuron = _group(g["neuron"]) if "neuron" in g else None
    bits = 0
    if neuron:
        default_bits = NETX["sdnn_message_bits"] if str(neuron.get("type", "")) in SDNN_TYPES else 0
        bits = int(neuron.get("messageBits", default_bits))
    if builder is not None and builder.host_layers:
        raise NeurokdError(f"{path}: layer {name} ({ltype}) follows the average layer {builder.host_layers[-1].name}, "
                           "which the host computes from the chip's output: an average must be the last layer")
    delay = g["delay"][()] if "delay" in g else None
    if ltype in ("conv", "pool"):
        if neuron is None:
            raise NeurokdError(f"{path}: {ltype} layer {name} has no neuron group")
        if builder is None:
            if shape is None:
                raise NeurokdError(f"{path}: {ltype} layer {name} without an input shape; pass input_shape")
            builder = NetxBuilder(shape, input_message_bits, path.name)
    if ltype == "input":
        shape = _ir_shape(stored)
        if neuron is None:
            return builder, shape
        builder = builder or NetxBuilder(shape, input_message_bits, path.name)
        bias = None
        if input_bias is not None:
            bias = _lava_to_torch(np.asarray(input_bias), shape)
        builder.input(name, neuron, shape, bias, bits)
    elif ltype == "flatten":
        pass                # the next dense reads (C, H, W) flat order, which is the IR's order
    elif ltype == "conv":
        builder.conv(name, g["weight"][()].astype(np.int64), neuron, _ir_shape(stored, conv=True), g["stride"][()],
                     g["padding"][()], g["dilation"][()], int(np.asarray(g["groups"][()]).reshape(-1)[0]),
                     g["bias"][()].astype(np.int64) if "bias" in g else None, bits, delay)
    elif ltype == "pool":
        builder.pool(name, g["weight"][()] if "weight" in g else 1, neuron, _ir_shape(stored, conv=True),
                     g["kernelSize"][()], g["stride"][()] if "stride" in g else None,
                     g["padding"][()] if "padding" in g else (0, 0), g["dilation"][()] if "dilation" in g else (1, 1),
                     delay, bits)
    elif ltype == "average":
        if builder is None:
            raise NeurokdError(f"{path}: average layer {name} has no layer before it to average")
        builder.average(name, stored)
    elif ltype in ("dense", "dense_rec"):
        w = g["weight"][()]
        if builder is None:          # the data goes straight into this dense synapse: (n_in,)
            n_in = w.shape[-1] if w.ndim == 2 else int(np.asarray(g["inFeatures"][()]))
            builder = NetxBuilder((n_in,), input_message_bits, path.name)
        builder.dense(name, w.astype(np.int64), neuron, g["bias"][()].astype(np.int64) if "bias" in g else None,
                      delay, g["weight_rec"][()].astype(np.int64) if ltype == "dense_rec" else None,
                      message_bits=bits)
    else:
        raise NeurokdError(f"{path}: layer {name} has type {ltype!r}, which neurokd does not read (it reads input, "
                           f"flatten, conv, pool, dense, dense_rec, average); read the first {i} layers with num_layers={i}")
    return builder, shape


def _ir_shape(stored: tuple[int, ...] | None, conv: bool = False) -> tuple[int, ...]:
    """netx's stored (C, H, W) -> IR shape: ``(n, 1, 1)`` and ``(n,)`` are 1-D (not for a conv), else (C, H, W)."""
    if stored is None:
        raise NeurokdError("a netx layer without shape")
    if len(stored) == 1 or (not conv and len(stored) == 3 and stored[1] == 1 and stored[2] == 1):
        return (int(stored[0]),)
    return tuple(stored)


def _lava_to_torch(arr: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """A per-neuron array in Lava's (X, Y, C) layout (or flat, or per channel) -> flat PyTorch order."""
    if len(shape) == 3 and arr.shape == (shape[2], shape[1], shape[0]):
        return from_lava(arr, shape).reshape(-1)
    return arr.reshape(-1)


def is_netx(path: str | Path) -> bool:
    """True for an HDF5 file holding a top-level ``/layer`` group (a netx network; a NIR file holds ``/node``)."""
    path = Path(path)
    if not path.is_file():
        return False
    with open(path, "rb") as f:
        if f.read(8) != b"\x89HDF\r\n\x1a\n":
            return False
    import h5py

    try:
        with h5py.File(path, "r") as f:
            return "layer" in f and "node" not in f
    except OSError:
        return False


def load_netx(path: str | Path, inputs=None, steps: int | None = None) -> tuple[NetxNetwork, np.ndarray | None]:
    """Read a netx file and its input as the command line gives them: ``(network, x (N, T, *input_shape) or None)``.

    What ``inputs`` (a ``.npy`` path or an array) is depends on the file's input layer
    (:attr:`NetxNetwork.input_kind`): ``bias``: the input layer's bias in netx's own layout, Lava's (X, Y, C)
    = (W, H, C) (lava-dl's ``gts/pilotnet_lif/image.npy``, (200, 66, 3)) or flat, integers, held for
    ``steps`` steps (the data fed to the layer is zero); ``spikes`` / ``graded``: the data in Lava's layout,
    ``(*lava_shape, T)`` as netx's ``RingBuffer`` takes it (lava-dl's ``gts/ntidigits/input.npy``, (64,
    3000); ``gts/pilotnet_sdnn/input.npy``, (100, 33, 3, 1)) or ``(N, *lava_shape, T)``; ``steps`` (if given)
    runs that many steps, the data repeated cyclically past its ``T`` as Lava's ``RingBuffer`` source sends it.
    """
    path = Path(path)
    net = read_netx(path)
    if inputs is None:
        return net, None
    what = str(inputs) if isinstance(inputs, (str, Path)) else "the input array"
    data = _load_array(inputs)
    shape = net.network.input_shape
    lava = tuple(lava_shape(shape))
    if net.input_kind == "bias":
        size = math.prod(shape)
        if tuple(data.shape) not in (lava, (size,)):
            raise NeurokdError(f"{what}: shape {data.shape}; {path.name}'s input layer takes the data as its bias: give "
                               f"{lava} (Lava's X, Y, C, as lava-dl's pilotnet_lif/image.npy) or ({size},)")
        if not np.all(data == np.round(data)):
            raise NeurokdError(f"{what}: the input layer's bias is an integer (bias_mant); the array holds fractions")
        if steps is None or steps < 1:
            raise NeurokdError(f"{path.name}'s input layer is driven by its bias: give --steps N, how many steps to hold it")
        # default input mode on the chip: an on-chip input layer driven by this bias (netx's input LIF)
        net = read_netx(path, input_bias=data.astype(np.int64).reshape(lava) if data.shape == lava else
                        data.astype(np.int64))
        return net, np.zeros((1, int(steps), *shape))
    # default input mode on the chip: sent by the host into the first synapses, as binary spikes
    # (input_kind "spikes", input_message_bits 0) or graded values ("graded")
    if data.ndim == len(lava) + 1 and tuple(data.shape[:-1]) == lava:
        data = data[None]
    if data.ndim != len(lava) + 2 or tuple(data.shape[1:-1]) != lava:
        dims = ", ".join(str(d) for d in lava)
        raise NeurokdError(f"{what}: shape {data.shape}; {path.name}'s input takes Lava's layout ({dims}, T) or "
                           f"(N, {dims}, T), as lava-dl's ntidigits/input.npy")
    if steps is not None:
        if steps < 1:
            raise NeurokdError(f"--steps must be >= 1, got {steps}")
        data = np.take(data, np.arange(steps) % data.shape[-1], axis=-1)    # cyclic, as Lava's RingBuffer source
    x = np.concatenate([net.input_from_lava(d) for d in data])
    if net.input_kind == "spikes" and not np.all((x == 0) | (x == 1)):
        raise NeurokdError(f"{what}: {path.name} takes binary spikes (input_message_bits 0); the array holds other values")
    if not np.all(x == np.round(x)):
        raise NeurokdError(f"{what}: {path.name} takes graded integers (Lava's fixed point); the array holds fractions")
    return net, x


def _load_array(source) -> np.ndarray:
    if isinstance(source, (str, Path)):
        from neurokd.fileio import load_npy

        data = load_npy(source)
    else:
        data = np.asarray(source)
    if data.dtype.kind not in "biuf" or not np.all(np.isfinite(data)):
        raise NeurokdError(f"{source if isinstance(source, (str, Path)) else 'the input array'}: expected finite numbers")
    return data.astype(np.float64)


def gts_folder() -> Path | None:
    """The lava-dl wheel's reference networks (``<site-packages>/tests/lava/lib/dl/netx/gts``), or None."""
    try:
        found = Path(metadata.distribution("lava-dl").locate_file("tests/lava/lib/dl/netx/gts"))
        if found.is_dir():
            return found
    except metadata.PackageNotFoundError:
        pass
    import importlib.util

    import neurokd.hardware  # noqa: F401  (lava imports on Python 3.11)

    try:
        spec = importlib.util.find_spec("lava.lib.dl.netx")
    except (ImportError, ValueError):
        return None
    if spec is None or not spec.submodule_search_locations:
        return None
    site = Path(list(spec.submodule_search_locations)[0]).parents[3]
    found = site / "tests" / "lava" / "lib" / "dl" / "netx" / "gts"
    return found if found.is_dir() else None
