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
=========================  ===================================================  ==============================

``optimize_weight_bits`` (netx/utils.py), as this reader computes it: clip to ``[-256, 254]`` when mixed
sign and out of range; sign mode; ``scale = min(127 / max, -128 / min)`` (mixed), ``-256 / min``
(inhibitory), ``255 / max`` (excitatory); ``b = floor(log2 scale) + mixed``; ``n`` = the largest
``n <= 8`` with every weight a multiple of ``2^n`` (0 if none), minus ``mixed``; ``num_weight_bits =
8 - b - n``. Lava's ``Dense`` then clips and truncates (:func:`~neurokd.hardware.engines.fastsim.lava_dense_weights`).

Not modelled (``NeurokdError`` naming the layer): sigma-delta (``SDNN``) and resonate-and-fire (``RF*``)
neurons, complex dense, and the layer types netx itself refuses (``pool``, ``convT``, ``unpool``,
``average``, ``concat``; pass ``num_layers`` to stop before them, as lava-dl's own tests do).
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
from neurokd.hardware.network.ir import Layer, Network, Neuron, Synapse, from_lava
from neurokd.hardware.network.quantize import FixedLayer, FixedNetwork, FixedNeuron, FixedSynapse

#: The netx conventions (lava-dl 0.6.0 netx/hdf5.py, netx/utils.py) in one place.
NETX = {
    "bias_exp": 6,                 # get_neuron_params: 'bias_exp': 6
    "max_delay": 62,               # create_dense clips delays to 62
    "default_neuron": {"type": "CUBA", "iDecay": 0, "vDecay": 4096, "vThMant": 1 << 17},  # '1 << 18 - 1' in Python
    "weight_mixed_max": 254,       # optimize_weight_bits clips mixed weights to [-256, 254]
    "weight_mixed_min": -256,
    "graded_bits": 24,             # an identity synapse passes graded values unchanged
}
LIF_TYPES = ("CUBA", "LOIHI")


@dataclass
class NetxNetwork:
    """A netx network in neurokd's form: ``network`` (IR) and ``fixed`` (the integers Lava runs)."""

    network: Network
    fixed: FixedNetwork
    source: str = ""
    layer_types: dict[str, str] = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)

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

    # -- helpers -----------------------------------------------------------------------------------------
    @property
    def _source(self) -> tuple[str, tuple[int, ...], int]:
        if not self.layers:
            return self.input_name, self.input_shape, 0
        last = self.layers[-1]
        return last.name, last.shape, last.delay

    def _neuron(self, name: str, cfg: dict, shape: tuple[int, ...], bias: np.ndarray | None) -> tuple[Neuron, FixedNeuron]:
        ntype = str(cfg.get("type", "CUBA"))
        if ntype not in LIF_TYPES:
            what = {"SDNN": "sigma-delta (SDNN)"}.get(ntype, "resonate-and-fire" if "RF" in ntype else ntype)
            raise NeurokdError(f"{self.name}: layer {name}: {what} neurons are not modelled by neurokd's fast model "
                               "(CUBA/LOIHI LIF only)")
        du, dv, vth = int(cfg["iDecay"]) - 1, int(cfg["vDecay"]), int(cfg["vThMant"])
        size = math.prod(shape)
        mant = np.zeros(size, dtype=np.int64) if bias is None else np.asarray(bias).astype(np.int64)
        if mant.size not in (1, size) and not (len(shape) == 3 and mant.size == shape[0]):
            raise NeurokdError(f"{self.name}: layer {name}: bias of {mant.size} values does not fit shape {shape}")
        if len(shape) == 3 and mant.size == shape[0] and size != shape[0]:
            mant = np.repeat(mant.reshape(-1), size // shape[0])           # per channel, (C, H, W) order
        mant = np.broadcast_to(mant.reshape(-1), (size,)).copy()
        kind = "lif" if du + 1 >= 4096 else "cubalif"
        eff = mant.astype(np.float64) * 2 ** NETX["bias_exp"]
        neuron = Neuron(kind, (du + 1) / 4096, dv / 4096, float(vth), np.zeros(size), eff / 64.0, node=name)
        return neuron, FixedNeuron(du, dv, vth, mant, NETX["bias_exp"])

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
        n, fn = self._neuron(name, neuron, shape, bias)
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
             dilation=(1, 1), groups: int = 1, bias: np.ndarray | None = None, message_bits: int = 0) -> None:
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
        fs = FixedSynapse(syn.name, "conv", w.astype(np.int32), 0, "mixed", 1.0, self._bits)
        n, fn = self._neuron(name, neuron, tuple(shape), bias)
        self._add(name, "conv", shape, n, fn, [(syn, fs)], message_bits)

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
        delays = None
        if delay is not None:
            d = np.clip(np.asarray(delay).astype(np.int64), 0, NETX["max_delay"])
            if d.ndim == 0 or d.size == 1:
                delays = np.full(w.shape, int(d.reshape(-1)[0]))
            elif d.ndim == 1 and d.size == n_out:
                delays = np.repeat(d.reshape(-1, 1), n_in, axis=1)
            elif d.ndim == 1 and d.size == n_in:
                delays = np.repeat(d.reshape(1, -1), n_out, axis=0)
            elif d.shape == w.shape:
                delays = d
            else:
                raise NeurokdError(f"{self.name}: dense layer {name}: delay of shape {d.shape} fits neither "
                                   f"{n_out} outputs nor {n_in} inputs")
            if not np.any(delays):
                delays = None
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

    def build(self, source: str = "") -> NetxNetwork:
        if not self.layers:
            raise NeurokdError(f"{self.name}: no layer to run")
        self.layers[-1].is_output = True
        net = Network(list(self.layers), self.input_name, self.input_shape, [self.layers[-1].name], None,
                      "netx integers (no dt)", metadata={"source": source or self.name, "format": "lava-dl netx"},
                      notes=list(self.notes))
        signed = True
        fixed = FixedNetwork(net, dict(self.fixed), 1.0, NETX["graded_bits"], self._graded_input, signed,
                             notes=["read from a netx file: integers as netx gives them to Lava"])
        return NetxNetwork(net, fixed, source, dict(self.types), list(self.notes))


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
    bits = int(neuron.get("messageBits", 0)) if neuron else 0
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
        if neuron is None:
            raise NeurokdError(f"{path}: conv layer {name} has no neuron group")
        if builder is None:
            if shape is None:
                raise NeurokdError(f"{path}: conv layer {name} without an input shape; pass input_shape")
            builder = NetxBuilder(shape, input_message_bits, path.name)
        builder.conv(name, g["weight"][()].astype(np.int64), neuron, _ir_shape(stored, conv=True), g["stride"][()],
                     g["padding"][()], g["dilation"][()], int(np.asarray(g["groups"][()]).reshape(-1)[0]),
                     g["bias"][()].astype(np.int64) if "bias" in g else None, bits)
    elif ltype in ("dense", "dense_rec"):
        w = g["weight"][()]
        if builder is None:          # the data goes straight into this dense synapse: (n_in,)
            n_in = w.shape[-1] if w.ndim == 2 else int(np.asarray(g["inFeatures"][()]))
            builder = NetxBuilder((n_in,), input_message_bits, path.name)
        builder.dense(name, w.astype(np.int64), neuron, g["bias"][()].astype(np.int64) if "bias" in g else None,
                      g["delay"][()] if "delay" in g else None,
                      g["weight_rec"][()].astype(np.int64) if ltype == "dense_rec" else None,
                      message_bits=bits)
    else:
        raise NeurokdError(f"{path}: layer {name} has type {ltype!r}, which netx itself does not implement; "
                           f"read the first {i} layers with num_layers={i}")
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
