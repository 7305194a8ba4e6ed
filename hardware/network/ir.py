"""The one intermediate form of neurokd's hardware side: a NIR graph as layers that Lava can run.

``from_nir(graph, dt)`` validates a NIR graph and returns a :class:`Network`; the Lava backend
(floating and fixed point), the quantiser, the fast hardware model and the netx exporter all
read this form and nothing else. A :class:`Network` is a list of :class:`Layer` in topological
order (recurrent edges excluded); each layer is one neuron population (a NIR neuron node, or a
readout: the linear nodes that feed an Output node without a neuron) with

* ``neuron`` (:class:`Neuron`): ``kind`` (``lif``, ``if``, ``cubalif``, ``li``, ``cubali``, ``i``,
  or ``none`` for a readout), ``du``, ``dv``, ``vth``, per-neuron biases ``b_u`` (current) and
  ``b_v`` (membrane), reset to zero. The discrete equations and the rule that maps each NIR node
  to them are in :mod:`neurokd.hardware.network.nir_semantics`::

      u[t] = (1 - du) u[t-1] + sum_syn W s[t] + b_u ;  v[t] = (1 - dv) v[t-1] + u[t] + b_v
      s[t] = v[t] > vth ; v[t] = 0 where s[t]                (readout ``none``: output u[t])

* ``synapses`` (:class:`Synapse`): each incoming connection as ONE Lava connection process,
  ``kind`` ``dense`` or ``conv``, from a ``source`` layer (or the graph input), flagged
  ``recurrent`` for edges that close a cycle. Weights are float64 and already carry the
  discretisation gain, so ``u`` adds ``W s`` with no further factor.
* ``delay``: the steps between the input source sending sample step ``k`` and this layer
  integrating step ``k`` in Lava. Every Lava ``Dense``/``Conv`` delivers one step late (its
  buffered ``a_out``), so ``delay = 1 + delay(feedforward source)``, the input being 0. Computed
  here once; the backends align spike trains, readouts and ``LIFReset`` phases with it. A
  recurrent synapse arrives one step late in Lava, which is exactly NIR's ``W_rec s[t-1]``.
  Branches that merge at a neuron after paths of different depth (a residual shortcut): the
  layer's delay is one more than its deepest source's, and each shallower synapse waits the
  difference in a Lava ``DelayDense`` (:attr:`Synapse.delay`). NIR ``Delay`` nodes in a chain are
  the graph's own synaptic delays (:attr:`Synapse.delays`), also run in a ``DelayDense``.

Layouts (PyTorch is the reference; Lava's is derived on demand):

=====================  ======================================  ========================================
what                   stored in the IR (PyTorch / NIR)        Lava (``lava_*`` properties)
=====================  ======================================  ========================================
layer shape            ``(n,)``, ``(C, L)``, ``(C, H, W)``     ``(n,)``, ``(L, 1, C)``, ``(W, H, C)`` (X, Y, C)
dense weight           ``(n_out, n_in)``, columns in the       rows/columns permuted to the XYC flat
                       source's C-order (C, H, W) flat index   order of source/target
conv weight            ``(C_out, C_in/groups, kH, kW)``        ``(C_out, kW, kH, C_in/groups)``, spatially
                       (cross-correlation, as torch)           flipped (Lava convolves: scipy.convolve2d)
stride/padding/dil.    ``(H, W)`` pairs                        ``(X, Y)`` = ``(W, H)`` pairs
spike arrays           flat C-order (C, H, W) per neuron       flat XYC; ``lava_order`` maps one to other
=====================  ======================================  ========================================

Chains of linear NIR nodes between two neurons (``Flatten -> Affine``, Sinabs' ``SumPool2d ->
Conv2d``, ``SumPool2d -> Flatten -> Affine``) become one connection, because Lava only sums at a
neuron's input: ``Flatten`` is a re-indexing (no cost); a ``SumPool2d``/``AvgPool2d`` followed by a
``Conv2d`` is composed into one convolution (kernel ``k_conv * k_pool``, stride ``s_conv *
k_pool``, padding ``p_conv * k_pool``) when the pool's stride equals its window and no partial
window meets the conv padding; a pool alone is a depthwise convolution with a kernel of ones
(``1/k^2`` for average); anything else is multiplied out into one dense matrix. ``stages``
keeps every original node (kind, parameters, shapes) so reports can name them. SynOps counted
on a synapse see the composed connection, i.e. pooling is counted as the synapses it is built
from: a spike reaches every neuron the composed kernel connects it to
(:meth:`Synapse.fanout`).

Everything is validated before any Lava process exists: unsupported node types, cycles that
do not pass through a spiking neuron, recurrent edges spanning layers of different delays,
mismatched shapes, NaN/inf, ``tau <= 0``, ``dt/tau > 1``,
``v_reset != 0``, non-spiking neurons that feed other layers -> :class:`NeurokdError` naming the
node and the reason.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field

import nir
import numpy as np

from neurokd.errors import NeurokdError
from neurokd.hardware.network import nir_semantics as sem

LINEAR_TYPES = (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d, nir.SumPool2d, nir.AvgPool2d, nir.Flatten,
                nir.Scale, nir.Delay)
#: Largest dense matrix (entries) neurokd builds when it multiplies out a chain of linear nodes.
MAX_DENSE_ENTRIES = 1 << 25
#: Longest extra synaptic delay (steps) a Loihi 2 ``DelayDense`` holds (6 bits; lava-nc's fixed-point model
#: refuses more than 63, and lava-dl's netx clips to 62).
MAX_SYNAPSE_DELAY = 62


# --------------------------------------------------------------------------------------------------
# Layout helpers
# --------------------------------------------------------------------------------------------------

def lava_shape(shape: tuple[int, ...]) -> tuple[int, ...]:
    """PyTorch/NIR shape -> Lava shape: ``(n,)``, ``(C, L) -> (L, 1, C)``, ``(C, H, W) -> (W, H, C)``."""
    shape = tuple(int(s) for s in shape)
    if len(shape) == 1:
        return shape
    if len(shape) == 2:
        return (shape[1], 1, shape[0])
    if len(shape) == 3:
        return (shape[2], shape[1], shape[0])
    raise NeurokdError(f"shape {shape}: Lava populations are 1-D or (X, Y, C); neurokd maps up to 3-D NIR shapes")


def to_lava(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(..., *shape)`` in PyTorch layout -> ``(..., *lava_shape(shape))``."""
    lead = x.shape[: x.ndim - len(shape)]
    k = len(lead)
    if len(shape) == 1:
        return x
    if len(shape) == 2:
        return np.expand_dims(np.swapaxes(x, k, k + 1), k + 1)
    return np.transpose(x, (*range(k), k + 2, k + 1, k))


def from_lava(x: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """``(..., *lava_shape(shape))`` -> ``(..., *shape)`` in PyTorch layout."""
    lshape = lava_shape(shape)
    k = x.ndim - len(lshape)
    if len(shape) == 1:
        return x
    if len(shape) == 2:
        return np.swapaxes(np.squeeze(x, axis=k + 1), k, k + 1)
    return np.transpose(x, (*range(k), k + 2, k + 1, k))


def lava_order(shape: tuple[int, ...]) -> np.ndarray:
    """``p`` with ``lava_flat[i] = torch_flat[p[i]]`` (so ``torch_flat[p] = lava_flat``)."""
    size = math.prod(shape)
    return to_lava(np.arange(size).reshape(shape), shape).reshape(-1)


def _chw(shape: tuple[int, ...], what: str) -> tuple[int, int, int]:
    """A shape seen as (C, H, W) for convolution and pooling: ``(C, L)`` is ``(C, 1, L)``."""
    if len(shape) == 3:
        return tuple(shape)  # type: ignore[return-value]
    if len(shape) == 2:
        return (shape[0], 1, shape[1])
    raise NeurokdError(f"{what}: needs a (C, L) or (C, H, W) input, gets {shape}")


# --------------------------------------------------------------------------------------------------
# numpy linear operators (float64), the definitions every backend reproduces
# --------------------------------------------------------------------------------------------------

def conv2d(x: np.ndarray, w: np.ndarray, stride, padding, dilation, groups: int) -> np.ndarray:
    """Cross-correlation as ``torch.nn.functional.conv2d``: ``x (B, C, H, W)``, ``w (Co, C/g, kh, kw)``.

    ``padding`` is ``((lo_h, hi_h), (lo_w, hi_w))`` zero padding.
    """
    b, c, h, wd = x.shape
    co, cg, kh, kw = w.shape
    (ph0, ph1), (pw0, pw1) = padding
    sh, sw = stride
    dh, dw = dilation
    xp = np.pad(x, ((0, 0), (0, 0), (ph0, ph1), (pw0, pw1)))
    eh, ew = (kh - 1) * dh + 1, (kw - 1) * dw + 1
    ho = (h + ph0 + ph1 - eh) // sh + 1
    wo = (wd + pw0 + pw1 - ew) // sw + 1
    win = np.lib.stride_tricks.sliding_window_view(xp, (eh, ew), axis=(2, 3))
    win = win[:, :, : (ho - 1) * sh + 1 : sh, : (wo - 1) * sw + 1 : sw, ::dh, ::dw]   # (B, C, Ho, Wo, kh, kw)
    win = win.reshape(b, groups, c // groups, ho, wo, kh, kw)
    wg = w.reshape(groups, co // groups, cg, kh, kw)
    out = np.einsum("bgchwij,gocij->bgohw", win, wg, optimize=True)
    return out.reshape(b, co, ho, wo)


def conv2d_adjoint(y: np.ndarray, w: np.ndarray, in_hw, stride, padding, dilation, groups: int) -> np.ndarray:
    """The transpose of :func:`conv2d` applied to ``y (B, Co, Ho, Wo)``: returns ``(B, C, H, W)``."""
    b, co, ho, wo = y.shape
    _, cg, kh, kw = w.shape
    (ph0, ph1), (pw0, pw1) = padding
    sh, sw = stride
    dh, dw = dilation
    h, wd = in_hw
    xp = np.zeros((b, groups, cg, h + ph0 + ph1, wd + pw0 + pw1))
    yg = y.reshape(b, groups, co // groups, ho, wo)
    wg = w.reshape(groups, co // groups, cg, kh, kw)
    for i in range(kh):
        for j in range(kw):
            contrib = np.einsum("bgohw,goc->bgchw", yg, wg[:, :, :, i, j])
            xp[:, :, :, i * dh : i * dh + (ho - 1) * sh + 1 : sh, j * dw : j * dw + (wo - 1) * sw + 1 : sw] += contrib
    return xp[:, :, :, ph0 : ph0 + h, pw0 : pw0 + wd].reshape(b, groups * cg, h, wd)


# --------------------------------------------------------------------------------------------------
# The intermediate form
# --------------------------------------------------------------------------------------------------

@dataclass
class Stage:
    """One NIR linear node inside a synapse, kept as the file states it (for reports and SynOps).

    ``kind``: ``dense`` (Affine/Linear), ``conv`` (Conv1d/Conv2d), ``pool`` (SumPool2d/AvgPool2d),
    ``flatten``, ``scale``, ``delay`` (NIR Delay: ``params["delay"]`` in seconds per element; it moves
    values in time, not in space, so :meth:`apply` passes them through). ``params`` holds the node's parameters as float64 arrays / int tuples:
    ``weight``, ``bias`` (dense, conv); ``kernel_size``, ``stride``, ``padding`` (``((lo, hi), (lo, hi))``),
    ``dilation``, ``groups``; ``mode`` (``sum``/``avg``) for pool; ``scale``. Shapes are PyTorch/NIR.
    """

    name: str
    kind: str
    nir_type: str
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    params: dict = field(default_factory=dict)

    def apply(self, x: np.ndarray, bias: bool = True) -> np.ndarray:
        """``x (B, *in_shape)`` -> ``(B, *out_shape)`` in float64."""
        b = x.shape[0]
        p = self.params
        if self.kind in ("flatten", "delay"):
            return x.reshape(b, *self.out_shape)
        if self.kind == "scale":
            return x * p["scale"]
        if self.kind == "dense":
            y = x.reshape(b, -1) @ p["weight"].T
            return y + p["bias"] if bias else y
        c, h, w = _chw(self.in_shape, self.name)
        xc = x.reshape(b, c, h, w)
        if self.kind == "conv":
            y = conv2d(xc, p["weight4"], p["stride"], p["padding"], p["dilation"], p["groups"])
            if bias:
                y = y + p["bias"][None, :, None, None]
        else:  # pool: a depthwise convolution
            kh, kw = p["kernel_size"]
            ones = np.full((c, 1, kh, kw), 1.0 if p["mode"] == "sum" else 1.0 / (kh * kw))
            y = conv2d(xc, ones, p["stride"], p["padding"], (1, 1), c)
        return y.reshape(b, *self.out_shape)


@dataclass
class Synapse:
    """One Lava connection process into a layer (``kind`` ``dense`` or ``conv``).

    ``weight``: dense ``(n_out, n_in)`` with columns in the source's flat (C, H, W) order and rows
    in the target's; conv ``(C_out, C_in/groups, kH, kW)`` cross-correlation on the source seen as
    ``(C, H, W)`` (``(C, L)`` as ``(C, 1, L)``). ``stride``, ``padding``, ``dilation``: ``(H, W)``
    pairs (padding symmetric). Float64, discretisation gain included. ``bias`` is the chain's
    bias as it reaches the target (per target neuron); the layer adds it to ``b_u`` or ``b_v``.

    ``delay``: Lava steps from a source spike to its arrival, 1 for a ``Dense``/``Conv``. A
    feed-forward synapse whose source is shallower than the layer's other sources (a residual
    shortcut) gets ``delay = layer.delay - source.delay > 1`` and is run as a Lava ``DelayDense``
    (``delays = delay - 1``), so that every input of step ``k`` arrives together, as in NIR where a
    neuron sums its inputs of the same step. Such a synapse is always ``dense``: a convolution is
    multiplied out, and ``structure`` (bool, like ``weight``) keeps which pairs the convolution
    connects, for structural counts.

    ``delays``: the graph's own synaptic delays (NIR ``Delay`` nodes in the chain), whole steps per
    synapse ``(n_out, n_in)``, or None. Unlike ``delay`` they change what the network computes: the
    target integrates at step ``k`` what the source sent at ``k - delays``. Such a synapse is dense
    (a ``DelayDense`` holding ``delay - 1 + delays``), and the network runs one sample per Lava run
    (:attr:`Network.per_sample`), since a streamed delay line would carry one sample into the next.
    """

    name: str
    source: str
    target: str
    kind: str
    weight: np.ndarray
    in_shape: tuple[int, ...]
    out_shape: tuple[int, ...]
    stride: tuple[int, int] = (1, 1)
    padding: tuple[int, int] = (0, 0)
    dilation: tuple[int, int] = (1, 1)
    groups: int = 1
    recurrent: bool = False
    stages: list[Stage] = field(default_factory=list)
    bias: np.ndarray | None = None
    gain: np.ndarray | float = 1.0
    delay: int = 1
    structure: np.ndarray | None = None
    delays: np.ndarray | None = None

    # -- sizes and layouts ------------------------------------------------------------------------
    @property
    def n_in(self) -> int:
        return math.prod(self.in_shape)

    @property
    def n_out(self) -> int:
        return math.prod(self.out_shape)

    @property
    def lava_in_shape(self) -> tuple[int, ...]:
        return lava_shape(self.in_shape) if self.kind == "conv" else (self.n_in,)

    @property
    def lava_out_shape(self) -> tuple[int, ...]:
        return lava_shape(self.out_shape) if self.kind == "conv" else (self.n_out,)

    @property
    def conv_in_chw(self) -> tuple[int, int, int]:
        return _chw(self.in_shape, self.name)

    def lava_weight(self, weight: np.ndarray | None = None) -> np.ndarray:
        """``weight`` (default: the float weights) in Lava's layout (table in the module docstring)."""
        w = self.weight if weight is None else weight
        if self.kind == "dense":
            rows = lava_order(self.out_shape) if len(self.out_shape) > 1 else slice(None)
            cols = lava_order(self.in_shape) if len(self.in_shape) > 1 else slice(None)
            return np.ascontiguousarray(w[rows][:, cols])
        return np.ascontiguousarray(w[:, :, ::-1, ::-1].transpose(0, 3, 2, 1))

    @property
    def lava_stride(self) -> tuple[int, int]:
        return (self.stride[1], self.stride[0])

    @property
    def lava_padding(self) -> tuple[int, int]:
        return (self.padding[1], self.padding[0])

    @property
    def lava_dilation(self) -> tuple[int, int]:
        return (self.dilation[1], self.dilation[0])

    # -- what it computes --------------------------------------------------------------------------
    def apply(self, x: np.ndarray, weight: np.ndarray | None = None) -> np.ndarray:
        """``x (B, *in_shape)`` -> ``(B, *out_shape)``: ``W x`` without bias, float64 (or ``weight``'s dtype)."""
        w = self.weight if weight is None else weight
        b = x.shape[0]
        if self.kind == "dense":
            return (x.reshape(b, -1) @ w.T).reshape(b, *self.out_shape)
        c, h, wd = self.conv_in_chw
        pad = ((self.padding[0],) * 2, (self.padding[1],) * 2)
        y = conv2d(x.reshape(b, c, h, wd), w, self.stride, pad, self.dilation, self.groups)
        return y.reshape(b, *self.out_shape)

    def fanout(self, structural: bool = False) -> np.ndarray:
        """Synapses leaving each source neuron (flat (C, H, W) order): non-zero weights, or all
        connected pairs with ``structural=True`` (borders, stride, padding and groups exact)."""
        if structural:
            mask = np.ones_like(self.weight) if self.structure is None else self.structure.astype(np.float64)
        else:
            mask = (self.weight != 0).astype(np.float64)
        if self.kind == "dense":
            return mask.sum(axis=0).astype(np.int64)
        c, h, wd = self.conv_in_chw
        ho, wo = _chw(self.out_shape, self.name)[1:]
        pad = ((self.padding[0],) * 2, (self.padding[1],) * 2)
        ones = np.ones((1, self.weight.shape[0], ho, wo))
        f = conv2d_adjoint(ones, mask, (h, wd), self.stride, pad, self.dilation, self.groups)
        return np.rint(f).reshape(-1).astype(np.int64)

    @property
    def synapse_count(self) -> int:
        """Non-zero synapses of the composed connection (sum of :meth:`fanout`)."""
        return int(self.fanout().sum())


#: Neuron models neurokd reads and places but that neither the fast engine nor the Lava backend runs, and that
#: the placement cost does not charge: kind -> (family, Lava process). Sigma-delta neurons (lava-dl SDNN: Lava
#: ``lava.proc.sdn`` ``Delta``, ``SigmaDelta``, ``Sigma``) send graded messages: ``delta`` encodes the data it
#: is fed directly (an input layer), ``sigma_delta`` integrates its synaptic input, applies its activation and
#: sends the change since its last message when it reaches ``vth``, ``sigma`` integrates and sends its state
#: (an output). A network of them runs in :mod:`neurokd.hardware.engines.sigma_delta` (``neurokd simulate``).
UNSIMULATED_KINDS = {
    "delta": ("sigma-delta", "Delta"),
    "sigma_delta": ("sigma-delta", "SigmaDelta"),
    "sigma": ("sigma-delta", "Sigma"),
}


@dataclass
class Neuron:
    """A population's neuron model in Lava's form (equations: module docstring).

    ``kind``: ``lif``, ``if``, ``cubalif`` (spiking), ``li``, ``cubali``, ``i`` (non-spiking, read
    out as ``v``) or ``none`` (a readout without neuron: its output is the summed synaptic input
    ``u``); or one of :data:`UNSIMULATED_KINDS` (sigma-delta), which a network can hold to be
    placed but which no engine runs (:meth:`Network.check_simulated`). ``du``, ``dv``, ``vth`` are one
    value per population; ``b_u`` and ``b_v`` one per neuron (flat (C, H, W) order). ``nir`` keeps
    the node's own parameters for reports.
    """

    kind: str
    du: float
    dv: float
    vth: float
    b_u: np.ndarray
    b_v: np.ndarray
    node: str | None = None
    dt: float | None = None
    reset: str = "zero"
    nir: dict = field(default_factory=dict)

    @property
    def spiking(self) -> bool:
        return self.kind in sem.SPIKING_KINDS

    @property
    def simulated(self) -> bool:
        """False for a neuron model the spiking engines do not run and the cost does not charge
        (:data:`UNSIMULATED_KINDS`)."""
        return self.kind not in UNSIMULATED_KINDS


@dataclass
class Layer:
    """One population: its neuron, its incoming synapses (feed-forward first), its Lava delay."""

    name: str
    shape: tuple[int, ...]
    neuron: Neuron
    synapses: list[Synapse]
    delay: int = 0
    is_output: bool = False

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    @property
    def lava_shape(self) -> tuple[int, ...]:
        """Shape of the Lava population (X, Y, C) or (n,) (:func:`lava_shape`)."""
        return lava_shape(self.shape)

    @property
    def is_readout(self) -> bool:
        return self.neuron.kind == "none"

    @property
    def feedforward(self) -> list[Synapse]:
        return [s for s in self.synapses if not s.recurrent]

    @property
    def recurrent(self) -> list[Synapse]:
        return [s for s in self.synapses if s.recurrent]


@dataclass
class HostLayer:
    """A layer the host computes from a chip layer's recorded output after the run: never placed on
    cores. ``kind`` ``average`` (lava-dl SLAYER's ``Average`` block, written by its netx export as
    ``/layer/i/type = average``): ``shape[0]`` outputs, output ``k`` at each step the mean of the
    source's neurons ``k g .. (k + 1) g - 1`` (``g = source size / outputs``), as SLAYER's
    ``mean(x.reshape(N, outputs, -1, T), dim=2)``. NxSDK compiled it to no core (SILICON.md section 2:
    N-TIDIGITS' ``average 11`` on 0 cores): the class is read from the output spikes off chip.
    """

    name: str
    kind: str
    source: str
    shape: tuple[int, ...]

    @property
    def size(self) -> int:
        return math.prod(self.shape)

    def apply(self, trains: np.ndarray) -> np.ndarray:
        """``trains (N, T, source size)`` -> ``(N, T, size)`` float64."""
        a = np.asarray(trains, dtype=np.float64)
        n, t = a.shape[:2]
        return a.reshape(n, t, self.size, -1).mean(axis=3)


@dataclass
class Network:
    """A validated NIR graph as layers in topological order (see the module docstring).

    ``host_layers``: what the host computes from the layers' output after the run (:class:`HostLayer`),
    not placed on cores; empty for a NIR graph."""

    layers: list[Layer]
    input_name: str
    input_shape: tuple[int, ...]
    outputs: list[str]
    dt: float | None
    dt_source: str
    timesteps: int | None = None
    metadata: dict = field(default_factory=dict)
    notes: list[str] = field(default_factory=list)
    host_layers: list[HostLayer] = field(default_factory=list)

    def layer(self, name: str) -> Layer:
        for layer in self.layers:
            if layer.name == name:
                return layer
        raise NeurokdError(f"no layer named {name!r}; layers: {', '.join(l.name for l in self.layers)}")

    @property
    def names(self) -> list[str]:
        return [layer.name for layer in self.layers]

    @property
    def input_size(self) -> int:
        return math.prod(self.input_shape)

    def size_of(self, name: str) -> int:
        return self.input_size if name == self.input_name else self.layer(name).size

    def shape_of(self, name: str) -> tuple[int, ...]:
        return self.input_shape if name == self.input_name else self.layer(name).shape

    @property
    def recurrent(self) -> bool:
        return any(s.recurrent for layer in self.layers for s in layer.synapses)

    @property
    def per_sample(self) -> bool:
        """Lava must run one sample per run from zeroed state: recurrent edges or the graph's own delays
        would otherwise carry one sample's activity into the next."""
        return self.recurrent or any(s.delays is not None for l in self.layers for s in l.synapses)

    @property
    def max_delay(self) -> int:
        return max((layer.delay for layer in self.layers), default=0)

    @property
    def readout(self) -> str:
        """The (first) output layer: its logits are the predictions."""
        return self.outputs[0]

    @property
    def spiking_layers(self) -> list[str]:
        return [layer.name for layer in self.layers if layer.neuron.spiking]

    def check_simulated(self, what: str = "run") -> None:
        """Raise :class:`NeurokdError` (one line) if a layer's neuron model is one neurokd does not simulate."""
        bad = [l for l in self.layers if not l.neuron.simulated]
        if bad:
            kinds: dict[str, list[str]] = {}
            for l in bad:
                family, process = UNSIMULATED_KINDS[l.neuron.kind]
                if process not in kinds.setdefault(family, []):
                    kinds[family].append(process)
            what_kind = " and ".join(f"{f} ({', '.join(p)})" for f, p in kinds.items())
            names = ", ".join(l.name for l in bad[:6]) + (", ..." if len(bad) > 6 else "")
            why = ("neurokd's placement cost does not charge yet" if what == "cost" else
                   "the fast engine and the Lava backend do not run")
            raise NeurokdError(f"cannot {what} this network: layer(s) {names} have {what_kind} neurons, which {why}; "
                               "place it without a cost (`neurokd map --no-cost`), run it with `neurokd simulate`")

    def input_sequence(self, x: np.ndarray, timesteps: int | None = None) -> np.ndarray:
        """``(N, *input_shape)`` (direct encoding over ``timesteps``) or ``(N, T, *input_shape)``
        -> float64 ``(N, T, *input_shape)``; anything else raises :class:`NeurokdError`."""
        x = np.asarray(x, dtype=np.float64)
        k = len(self.input_shape)
        if x.ndim == k + 1 and tuple(x.shape[1:]) == self.input_shape:
            steps = timesteps or self.timesteps
            if not steps:
                raise NeurokdError(
                    f"inputs of shape {x.shape} are one frame per sample: give the number of time steps "
                    "(the graph's metadata states none)"
                )
            return np.repeat(x[:, None], int(steps), axis=1)
        if x.ndim == k + 2 and tuple(x.shape[2:]) == self.input_shape:
            if timesteps is not None and int(timesteps) != x.shape[1]:
                raise NeurokdError(f"inputs have {x.shape[1]} time steps but {timesteps} were asked for")
            return x
        raise NeurokdError(
            f"inputs have shape {x.shape}; the graph's input {self.input_name!r} needs (N, {_fmt(self.input_shape)}) "
            f"or (N, T, {_fmt(self.input_shape)})"
        )

    def summary(self) -> str:
        """A plain-text table: layer, neuron, shape, Lava shape, delay, synapses."""
        rows = [f"input {self.input_name!r} shape {self.input_shape}; dt {self.dt} ({self.dt_source})"]
        for layer in self.layers:
            n = layer.neuron
            syn = "; ".join(
                f"{s.kind} {s.name} <- {s.source}{' (recurrent)' if s.recurrent else ''}"
                f" [{'+'.join(st.kind for st in s.stages) or 'identity'}]" for s in layer.synapses
            )
            rows.append(
                f"{layer.name:>12}  {n.kind:<8} {str(layer.shape):<14} lava {str(layer.lava_shape):<14} delay "
                f"{layer.delay}  du {n.du:.4g} dv {n.dv:.4g} vth {n.vth:.4g}  {syn}"
            )
        for h in self.host_layers:
            rows.append(f"{h.name:>12}  {h.kind:<8} {str(h.shape):<14} on the host, from layer {h.source}")
        return "\n".join(rows)

    def to_dict(self) -> dict:
        """JSON-ready description (no weights)."""
        return {
            "input": {"name": self.input_name, "shape": list(self.input_shape)},
            "dt": self.dt, "dt_source": self.dt_source, "timesteps": self.timesteps, "outputs": self.outputs,
            "notes": list(self.notes),
            "layers": [
                {
                    "name": l.name, "shape": list(l.shape), "lava_shape": list(l.lava_shape), "delay": l.delay,
                    "neuron": {"kind": l.neuron.kind, "node": l.neuron.node, "du": l.neuron.du, "dv": l.neuron.dv,
                               "vth": None if math.isinf(l.neuron.vth) else l.neuron.vth},
                    "synapses": [
                        {"name": s.name, "kind": s.kind, "source": s.source, "recurrent": s.recurrent,
                         "weight_shape": list(s.weight.shape), "stages": [st.name for st in s.stages],
                         "stride": list(s.stride), "padding": list(s.padding), "dilation": list(s.dilation),
                         "groups": s.groups, "delay": s.delay}
                        for s in l.synapses
                    ],
                }
                for l in self.layers
            ],
            **({"host_layers": [{"name": h.name, "kind": h.kind, "source": h.source, "shape": list(h.shape)}
                                for h in self.host_layers]} if self.host_layers else {}),
        }


def _fmt(shape) -> str:
    return ", ".join(str(s) for s in shape)


# --------------------------------------------------------------------------------------------------
# Reading a NIR graph
# --------------------------------------------------------------------------------------------------

def _stage(name: str, node, in_shape: tuple[int, ...]) -> Stage:
    """Validate a linear node on its input shape and describe it as a :class:`Stage`."""
    t = type(node).__name__
    if isinstance(node, (nir.Affine, nir.Linear)):
        w = sem.param_array(node, name, "weight")
        if w.ndim != 2:
            raise NeurokdError(f"NIR node {name!r} ({t}): weight must be 2-D (out, in), got {w.shape}")
        if in_shape != (w.shape[1],):
            raise NeurokdError(f"NIR node {name!r} ({t}): weight {w.shape} needs input ({w.shape[1]},), gets {in_shape}")
        b = sem.param_array(node, name, "bias") if isinstance(node, nir.Affine) else np.zeros(w.shape[0])
        if b.shape != (w.shape[0],):
            raise NeurokdError(f"NIR node {name!r} ({t}): bias shape {b.shape} != ({w.shape[0]},)")
        return Stage(name, "dense", t, in_shape, (w.shape[0],), {"weight": w, "bias": b})
    if isinstance(node, nir.Flatten):
        start, end = int(np.asarray(node.start_dim)), int(np.asarray(node.end_dim))
        nd = len(in_shape)
        s, e = (start + nd if start < 0 else start), (end + nd if end < 0 else end)
        if not 0 <= s <= e < nd:
            raise NeurokdError(f"NIR node {name!r} (Flatten): dims {start}..{end} do not fit input {in_shape}")
        out = (*in_shape[:s], math.prod(in_shape[s : e + 1]), *in_shape[e + 1 :])
        return Stage(name, "flatten", t, in_shape, out, {"start_dim": start, "end_dim": end})
    if isinstance(node, nir.Delay):
        d = sem.param_array(node, name, "delay")
        try:
            d = np.broadcast_to(d, in_shape).astype(np.float64)
        except ValueError:
            raise NeurokdError(f"NIR node {name!r} (Delay): delay shape {d.shape} does not fit input {in_shape}") from None
        if np.any(d < 0):
            raise NeurokdError(f"NIR node {name!r} (Delay): delays must be >= 0")
        return Stage(name, "delay", t, in_shape, in_shape, {"delay": d})
    if isinstance(node, nir.Scale):
        sc = sem.param_array(node, name, "scale")
        try:
            np.broadcast_to(sc, in_shape)
        except ValueError:
            raise NeurokdError(f"NIR node {name!r} (Scale): scale shape {sc.shape} does not fit input {in_shape}") from None
        return Stage(name, "scale", t, in_shape, in_shape, {"scale": sc})
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        one_d = isinstance(node, nir.Conv1d)
        w = sem.param_array(node, name, "weight")
        if w.ndim != (3 if one_d else 4):
            raise NeurokdError(f"NIR node {name!r} ({t}): weight must be {3 if one_d else 4}-D, got {w.shape}")
        if len(in_shape) != (2 if one_d else 3):
            raise NeurokdError(f"NIR node {name!r} ({t}): input must be {'(C, L)' if one_d else '(C, H, W)'}, gets {in_shape}")
        declared = getattr(node, "input_shape", None)
        if declared is not None and tuple(int(d) for d in np.asarray(declared).reshape(-1)) != tuple(in_shape[1:]):
            raise NeurokdError(
                f"NIR node {name!r} ({t}): declares input_shape {tuple(np.asarray(declared).reshape(-1))} "
                f"but receives {in_shape}"
            )
        w4 = w[:, :, None, :] if one_d else w
        n = 1 if one_d else 2
        groups = int(np.asarray(node.groups).reshape(()))
        c = in_shape[0]
        if groups < 1 or c % groups or w.shape[0] % groups or w.shape[1] != c // groups:
            raise NeurokdError(
                f"NIR node {name!r} ({t}): weight {w.shape} with groups={groups} does not fit {c} input channels"
            )
        stride = sem.int_tuple(node.stride, n, name, "stride", 1)
        dilation = sem.int_tuple(node.dilation, n, name, "dilation", 1)
        k = w.shape[2:]
        padding = node.padding.decode() if isinstance(node.padding, bytes) else node.padding
        if isinstance(padding, str):
            if padding == "valid":
                pads = tuple((0, 0) for _ in range(n))
            elif padding == "same":
                if max(stride) != 1:
                    raise NeurokdError(f"NIR node {name!r} ({t}): padding 'same' needs stride 1")
                tot = [dilation[d] * (k[d] - 1) for d in range(n)]
                pads = tuple((tt // 2, tt - tt // 2) for tt in tot)
            else:
                raise NeurokdError(f"NIR node {name!r} ({t}): padding {padding!r} must be 'same', 'valid' or integers")
        else:
            pads = tuple((p, p) for p in sem.int_tuple(padding, n, name, "padding", 0))
        b = sem.param_array(node, name, "bias")
        if b.size == 1 and w.shape[0] != 1:
            b = np.full(w.shape[0], float(b.reshape(())))
        if b.shape != (w.shape[0],):
            raise NeurokdError(f"NIR node {name!r} ({t}): bias shape {b.shape} != ({w.shape[0]},)")
        if one_d:
            stride, dilation, pads = (1, *stride), (1, *dilation), ((0, 0), *pads)
        spatial = in_shape[1:] if not one_d else (1, in_shape[1])
        out = []
        for d in range(2):
            eff = dilation[d] * (w4.shape[2 + d] - 1) + 1
            size = (spatial[d] + pads[d][0] + pads[d][1] - eff) // stride[d] + 1
            if size < 1:
                raise NeurokdError(f"NIR node {name!r} ({t}): kernel {w4.shape[2:]} does not fit input {in_shape}")
            out.append(size)
        out_shape = (w.shape[0], out[1]) if one_d else (w.shape[0], *out)
        params = {"weight": w, "weight4": w4, "bias": b, "stride": stride, "padding": pads, "dilation": dilation,
                  "groups": groups, "kernel_size": tuple(w4.shape[2:])}
        return Stage(name, "conv", t, in_shape, out_shape, params)
    if isinstance(node, (nir.SumPool2d, nir.AvgPool2d)):
        if len(in_shape) != 3:
            raise NeurokdError(f"NIR node {name!r} ({t}): input must be (C, H, W), gets {in_shape}")
        k = sem.int_tuple(node.kernel_size, 2, name, "kernel_size", 1)
        s = sem.int_tuple(node.stride if node.stride is not None else node.kernel_size, 2, name, "stride", 1)
        p = sem.int_tuple(node.padding, 2, name, "padding", 0)
        out = tuple((in_shape[1 + d] + 2 * p[d] - k[d]) // s[d] + 1 for d in range(2))
        if min(out) < 1:
            raise NeurokdError(f"NIR node {name!r} ({t}): window {k} does not fit input {in_shape}")
        params = {"kernel_size": k, "stride": s, "padding": ((p[0], p[0]), (p[1], p[1])),
                  "mode": "sum" if isinstance(node, nir.SumPool2d) else "avg"}
        return Stage(name, "pool", t, in_shape, (in_shape[0], *out), params)
    raise NeurokdError(f"NIR node {name!r}: {t} is not a linear node")


def _symmetric(pads) -> bool:
    return all(lo == hi for lo, hi in pads)


def _compose(stages: list[Stage], in_shape: tuple[int, ...], out_shape: tuple[int, ...], where: str) -> dict:
    """The chain ``stages`` as one Lava connection: ``{kind, weight, stride, padding, dilation, groups}``."""
    ops = [s for s in stages if s.kind not in ("flatten", "delay")]
    size_in, size_out = math.prod(in_shape), math.prod(out_shape)
    if len(ops) == 1 and ops[0].kind == "dense":
        return {"kind": "dense", "weight": ops[0].params["weight"].copy()}
    if len(ops) == 1 and ops[0].kind == "conv" and _symmetric(ops[0].params["padding"]):
        p = ops[0].params
        return {"kind": "conv", "weight": p["weight4"].copy(), "stride": p["stride"],
                "padding": tuple(lo for lo, _ in p["padding"]), "dilation": p["dilation"], "groups": p["groups"]}
    if len(ops) == 1 and ops[0].kind == "pool" and _symmetric(ops[0].params["padding"]):
        p = ops[0].params
        c = ops[0].in_shape[0]
        kh, kw = p["kernel_size"]
        w = np.full((c, 1, kh, kw), 1.0 if p["mode"] == "sum" else 1.0 / (kh * kw))
        return {"kind": "conv", "weight": w, "stride": p["stride"], "padding": tuple(lo for lo, _ in p["padding"]),
                "dilation": (1, 1), "groups": c}
    if not ops and len(in_shape) == 3 and in_shape == out_shape:          # a pass-through into a 3-D layer
        c = in_shape[0]
        return {"kind": "conv", "weight": np.ones((c, 1, 1, 1)), "stride": (1, 1), "padding": (0, 0),
                "dilation": (1, 1), "groups": c}
    if len(ops) == 2 and ops[0].kind == "pool" and ops[1].kind == "conv":
        composed = _pool_then_conv(ops[0], ops[1])
        if composed is not None:
            return composed
    # General case: multiply the chain out into one dense matrix (columns: inputs, rows: outputs).
    if size_in * size_out > MAX_DENSE_ENTRIES:
        kinds = " -> ".join(f"{s.nir_type} {s.name!r}" for s in stages)
        raise NeurokdError(
            f"{where}: the chain {kinds} has no single Lava connection and is too large ({size_in} x {size_out}) "
            "to multiply out into a dense matrix"
        )
    cols = []
    for start in range(0, size_in, 1024):
        stop = min(size_in, start + 1024)
        x = np.zeros((stop - start, size_in))
        x[np.arange(stop - start), np.arange(start, stop)] = 1.0
        y = x.reshape(stop - start, *in_shape)
        for s in stages:
            y = s.apply(y, bias=False)
        cols.append(y.reshape(stop - start, -1))
    return {"kind": "dense", "weight": np.concatenate(cols, 0).T.copy()}


def _pool_then_conv(pool: Stage, conv: Stage) -> dict | None:
    """``SumPool2d/AvgPool2d`` (stride = window, no padding) then ``Conv2d`` as one convolution.

    ``y[o, i] = sum_j w[o, j] pool[i s_c + j d - p]`` and ``pool[q] = sum_{m < k} x[q k + m]`` give a
    kernel ``K[o, j d k + m] = w[o, j]`` (``/ k^2`` for average), stride ``s_c k``, padding ``p k``,
    dilation 1; exact when every padded pool cell is a whole window of padding, i.e. the input
    size is a multiple of ``k`` or the conv has no padding.
    """
    pp, cp = pool.params, conv.params
    k = pp["kernel_size"]
    if tuple(pp["stride"]) != tuple(k) or any(lo or hi for lo, hi in pp["padding"]) or not _symmetric(cp["padding"]):
        return None
    _, h, w = pool.in_shape
    pads = tuple(lo for lo, _ in cp["padding"])
    for d, n in enumerate((h, w)):
        if n % k[d] and pads[d]:
            return None
    w4 = cp["weight4"]
    co, cg, kh, kw = w4.shape
    dil = cp["dilation"]
    big = np.zeros((co, cg, ((kh - 1) * dil[0] + 1) * k[0], ((kw - 1) * dil[1] + 1) * k[1]))
    scale = 1.0 if pp["mode"] == "sum" else 1.0 / (k[0] * k[1])
    for j in range(kh):
        for l in range(kw):
            r, c = j * dil[0] * k[0], l * dil[1] * k[1]
            big[:, :, r : r + k[0], c : c + k[1]] = w4[:, :, j : j + 1, l : l + 1] * scale
    return {"kind": "conv", "weight": big, "stride": (cp["stride"][0] * k[0], cp["stride"][1] * k[1]),
            "padding": (pads[0] * k[0], pads[1] * k[1]), "dilation": (1, 1), "groups": cp["groups"]}


def _scale_rows(syn: dict, gain: np.ndarray, out_shape: tuple[int, ...], where: str) -> dict:
    """Multiply a composed connection's outputs by a per-neuron ``gain`` (broadcast to ``out_shape``)."""
    g = np.broadcast_to(gain, out_shape).reshape(-1)
    if np.all(g == 1.0):
        return syn
    if np.all(g == g[0]):
        syn["weight"] = syn["weight"] * g[0]
        return syn
    if syn["kind"] == "dense":
        syn["weight"] = syn["weight"] * g[:, None]
        return syn
    per_channel = g.reshape(out_shape[0], -1)
    if np.all(per_channel == per_channel[:, :1]):
        syn["weight"] = syn["weight"] * per_channel[:, 0].reshape(-1, 1, 1, 1)
        return syn
    raise NeurokdError(f"{where}: the neuron's input gain varies within a channel; a convolution cannot carry it")


def from_nir(graph: nir.NIRGraph, dt: float | None = None, *, producer: str | None = None,
             name: str = "graph") -> Network:
    """Validate ``graph`` and build its :class:`Network` (module docstring; rule: ``nir_semantics``).

    ``dt``: time step in seconds; when None, :func:`neurokd.exporters.conventions.resolve_dt`
    picks it (node/graph metadata, ``producer``, the snnTorch export signature; IF-only graphs need none).
    """
    from neurokd.exporters.conventions import resolve_dt, semantics_warnings

    if not isinstance(graph, nir.NIRGraph):
        raise NeurokdError(f"{name}: expected a nir.NIRGraph, got {type(graph).__name__}")
    nodes, edges, inputs, outputs = sem.flatten(graph)
    for n, node in nodes.items():
        ok = isinstance(node, (sem.PassThrough, nir.Input, nir.Output, *LINEAR_TYPES, *sem.NEURON_KINDS))
        if isinstance(node, nir.Delay) and np.all(sem.param_array(node, n, "delay") == 0):
            nodes[n] = sem.PassThrough()
        if not ok:
            raise NeurokdError(
                f"{name}: node {n!r} is a {type(node).__name__}, which neurokd cannot map to Lava (supported: Affine, "
                "Linear, Scale, Conv1d, Conv2d, SumPool2d, AvgPool2d, Flatten, Delay, LIF, IF, CubaLIF, LI, CubaLI, I)"
            )
    if len(inputs) != 1:
        raise NeurokdError(f"{name}: the graph has {len(inputs)} Input nodes; neurokd runs graphs with exactly one")
    if not outputs:
        raise NeurokdError(f"{name}: the graph has no Output node")
    (input_name,) = inputs
    preds: dict[str, list[str]] = {n: [] for n in nodes}
    succs: dict[str, list[str]] = {n: [] for n in nodes}
    for a, b in dict.fromkeys(edges):
        if isinstance(nodes[b], nir.Input) or isinstance(nodes[a], nir.Output):
            raise NeurokdError(f"{name}: edge ({a!r}, {b!r}) enters an Input or leaves an Output node")
        preds[b].append(a)
        succs[a].append(b)

    # Shapes: from the Input node, propagated through every node; every edge must agree.
    declared = nodes[input_name].input_type.get("input") if isinstance(nodes[input_name].input_type, dict) else None
    if declared is None:
        raise NeurokdError(f"{name}: Input node {input_name!r} declares no shape")
    in_shape = tuple(int(d) for d in np.asarray(declared).reshape(-1))
    shapes: dict[str, tuple[int, ...]] = {input_name: in_shape}
    stage_of: dict[str, Stage] = {}
    changed = True
    while changed:
        changed = False
        for n, node in nodes.items():
            if n in shapes:
                continue
            known = [p for p in preds[n] if p in shapes]
            if not known:
                continue
            s_in = shapes[known[0]]
            if isinstance(node, LINEAR_TYPES):
                stage_of[n] = _stage(n, node, s_in)
                shapes[n] = stage_of[n].out_shape
            else:
                shapes[n] = s_in
            changed = True
    missing = [n for n in nodes if n not in shapes]
    if missing:
        raise NeurokdError(f"{name}: nodes {missing} are not connected to the input {input_name!r}")
    for a, b in edges:
        ref = shapes[preds[b][0]] if not isinstance(nodes[b], LINEAR_TYPES) else stage_of[b].in_shape
        if shapes[a] != ref:
            raise NeurokdError(f"{name}: node {b!r} receives shape {shapes[a]} from {a!r} but expects {ref}")

    _refuse_linear_cycles(nodes, succs, name)
    running = {k: v for k, v in nodes.items() if not isinstance(v, sem.PassThrough)}
    convention = resolve_dt(graph, running, dt=dt, producer=producer, name=name)
    for message in semantics_warnings(graph, running, producer=producer, name=name):
        warnings.warn(message, stacklevel=2)
    neurons = [n for n, node in nodes.items() if isinstance(node, tuple(sem.NEURON_KINDS))]

    # Trace each neuron's (and each Output's) incoming chains of linear nodes back to a neuron or the input.
    def chains_into(target: str) -> list[tuple[str, list[str]]]:
        found = []
        for p in preds[target]:
            chain: list[str] = []
            seen = set()
            while not (p == input_name or p in neurons):
                if p in seen:
                    raise NeurokdError(f"{name}: nodes {sorted(seen)} form a cycle without a neuron; Lava cannot run it")
                seen.add(p)
                if isinstance(nodes[p], LINEAR_TYPES):
                    chain.insert(0, p)
                if len(preds[p]) != 1:
                    raise NeurokdError(
                        f"{name}: node {p!r} ({type(nodes[p]).__name__}) sums {len(preds[p])} inputs; neurokd maps "
                        "chains of linear nodes with one input each (sums happen at neurons)"
                    )
                p = preds[p][0]
            found.append((p, chain))
        return found

    layers: dict[str, Layer] = {}
    order_hint = list(nodes)
    for n in neurons:
        disc = sem.discretise(n, nodes[n], convention.per_node.get(n, convention.dt))
        layers[n] = _make_layer(n, shapes[n], disc, chains_into(n), stage_of, shapes, name, convention.dt)
    out_layers: list[str] = []
    for o in outputs:
        for src, chain in chains_into(o):
            if not chain:
                if src == input_name:
                    raise NeurokdError(f"{name}: Output {o!r} reads the input directly; nothing to run")
                out_layers.append(src)
                continue
            rname = chain[-1]
            zero = sem.Discrete("none", 1.0, 0.0, math.inf, np.ones(1), np.zeros(1), None)
            layers[rname] = _make_layer(rname, shapes[rname], zero, [(src, chain)], stage_of, shapes, name,
                                        convention.dt)
            out_layers.append(rname)
            order_hint.append(rname)
    for lname in out_layers:
        layers[lname].is_output = True
    for layer in layers.values():
        for syn in layer.synapses:
            if syn.source != input_name and not layers[syn.source].neuron.spiking:
                raise NeurokdError(
                    f"{name}: non-spiking node {syn.source!r} ({layers[syn.source].neuron.kind}) feeds {layer.name!r}; "
                    "Lava sends spikes between populations, so a non-spiking neuron can only be an output"
                )

    ordered = _order_layers(layers, input_name, order_hint, name)
    notes = [f"dt {convention.dt} ({convention.source})"]
    for layer in ordered:
        for syn in layer.synapses:
            ops = [st for st in syn.stages if st.kind not in ("flatten", "delay")]
            if len(ops) > 1 or (ops and ops[0].kind == "pool"):
                notes.append(f"layer {layer.name!r}: NIR nodes {' -> '.join(st.name for st in syn.stages)} run as one "
                             f"Lava {'Conv' if syn.kind == 'conv' else 'Dense'} {tuple(syn.weight.shape)}")
            if syn.delays is not None:
                notes.append(f"layer {layer.name!r}: {syn.name!r} carries the graph's delays of "
                             f"{int(syn.delays.min())}-{int(syn.delays.max())} steps (Lava DelayDense; one sample per run)")
            if syn.delay > 1:
                notes.append(f"layer {layer.name!r}: {syn.name!r} from {syn.source!r} waits {syn.delay - 1} step(s) "
                             f"in a Lava DelayDense {tuple(syn.weight.shape)} to meet the deeper path")
    if isinstance(graph.metadata, dict) and "timesteps" in graph.metadata:
        timesteps = int(np.asarray(graph.metadata["timesteps"]).reshape(()))
    else:
        timesteps = None
    meta = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in (graph.metadata or {}).items()}
    return Network(ordered, input_name, in_shape, out_layers, convention.dt, convention.source, timesteps, meta, notes)


def _refuse_linear_cycles(nodes: dict, succs: dict, gname: str) -> None:
    """A cycle must pass through a neuron (Lava's connections sum only at a neuron's input)."""
    linear = [n for n, node in nodes.items() if not isinstance(node, tuple(sem.NEURON_KINDS))]
    state: dict[str, int] = {}

    def visit(v: str, path: list[str]) -> None:
        state[v] = 1
        path.append(v)
        for w in succs[v]:
            if isinstance(nodes[w], tuple(sem.NEURON_KINDS)):
                continue
            if state.get(w) == 1:
                cycle = path[path.index(w):]
                raise NeurokdError(
                    f"{gname}: nodes {cycle} form a cycle without a neuron; Lava cannot run it (a recurrent edge "
                    "must pass through a spiking neuron)"
                )
            if w not in state:
                visit(w, path)
        path.pop()
        state[v] = 2

    for n in linear:
        if n not in state:
            visit(n, [])


def _delay_steps(stages: list[Stage], n_in: int, n_out: int, dt: float | None, where: str) -> np.ndarray | None:
    """The chain's NIR Delay nodes as whole steps per synapse ``(n_out, n_in)``, or None without any.

    A Delay before every weight node delays each source neuron (a column), after them each target
    neuron (a row); between two weight nodes only a uniform delay has a per-synapse form."""
    delays = None
    for i, st in enumerate(stages):
        if st.kind != "delay":
            continue
        whole = sem.delay_steps(st.params["delay"], dt, st.name).reshape(-1)
        if not np.any(whole):
            continue
        before = any(x.kind not in ("flatten", "delay", "scale") for x in stages[:i])
        after = any(x.kind not in ("flatten", "delay", "scale") for x in stages[i + 1:])
        if np.all(whole == whole[0]):
            term = np.full((n_out, n_in), whole[0])
        elif not before and whole.size == n_in:
            term = np.broadcast_to(whole[None, :], (n_out, n_in))
        elif not after and whole.size == n_out:
            term = np.broadcast_to(whole[:, None], (n_out, n_in))
        else:
            raise NeurokdError(f"{where}: Delay {st.name!r} with per-neuron delays sits between two weight nodes; "
                               "neurokd maps per-neuron delays on a chain's source or target side")
        delays = term.copy() if delays is None else delays + term
    return delays


def _make_layer(lname: str, shape, disc: "sem.Discrete", chains, stage_of, shapes, gname: str,
                dt: float | None = None) -> Layer:
    where = f"{gname}: layer {lname!r}"
    for what, arr in (("input gain", disc.gain), ("v_leak", disc.b_v)):
        try:
            np.broadcast_to(arr, shape)
        except ValueError:
            raise NeurokdError(f"{where}: {what} of shape {np.shape(arr)} does not fit the layer {shape}") from None
    synapses = []
    b_syn = np.zeros(math.prod(shape))
    for src, chain in chains:
        stages = [stage_of[c] for c in chain]
        src_shape = shapes[src]
        composed = _compose(stages, src_shape, tuple(shape), where)
        composed = _scale_rows(composed, disc.gain, tuple(shape), where)
        bias = np.zeros((1, *src_shape))
        for s in stages:
            bias = s.apply(bias, bias=True)
        bias = bias.reshape(-1) * np.broadcast_to(disc.gain, shape).reshape(-1)
        b_syn = b_syn + bias
        kind = composed["kind"]
        if not chain and math.prod(src_shape) != math.prod(shape):
            raise NeurokdError(f"{where}: receives {src_shape} directly from {src!r}")
        syn = Synapse(
            name=chain[-1] if chain else f"{lname}.identity", source=src, target=lname, kind=kind,
            weight=np.asarray(composed["weight"], dtype=np.float64), in_shape=tuple(src_shape), out_shape=tuple(shape),
            stages=stages, bias=bias, gain=disc.gain,
        )
        if kind == "conv":
            syn.stride = tuple(int(v) for v in composed["stride"])
            syn.padding = tuple(int(v) for v in composed["padding"])
            syn.dilation = tuple(int(v) for v in composed["dilation"])
            syn.groups = int(composed["groups"])
        syn.delays = _delay_steps(stages, syn.n_in, syn.n_out, dt, where)
        synapses.append(syn)
    b_v = np.broadcast_to(disc.b_v, shape).reshape(-1).astype(np.float64)
    if disc.du == 1.0:               # u[t] = a[t] + b_u exactly: the bias can sit on v
        b_u, b_v = np.zeros_like(b_syn), b_v + b_syn
    else:                            # a current bias is filtered by the synapse: it stays on u
        b_u = b_syn
    if disc.kind == "none":
        b_u, b_v = b_syn, np.zeros_like(b_syn)
    neuron = Neuron(disc.kind, disc.du, disc.dv, disc.vth, b_u, b_v, node=lname if disc.kind != "none" else None,
                    dt=disc.dt)
    return Layer(lname, tuple(int(s) for s in shape), neuron, synapses)


def _order_layers(layers: dict[str, Layer], input_name: str, hint: list[str], gname: str) -> list[Layer]:
    """Topological order, recurrent flags (DFS back edges from the input), delays; checks alignment."""
    succ: dict[str, list[str]] = {input_name: []}
    for lname in layers:
        succ.setdefault(lname, [])
    for layer in layers.values():
        for syn in layer.synapses:
            succ[syn.source].append(layer.name)
    pos = {n: i for i, n in enumerate(hint)}
    state: dict[str, int] = {}
    back: set[tuple[str, str]] = set()
    post: list[str] = []

    def dfs(v: str) -> None:
        state[v] = 1
        for w in sorted(succ[v], key=lambda x: pos.get(x, 0)):
            if state.get(w) == 1:
                back.add((v, w))
            elif w not in state:
                dfs(w)
        state[v] = 2
        post.append(v)

    dfs(input_name)
    unreached = [n for n in layers if n not in state]
    if unreached:
        raise NeurokdError(f"{gname}: layers {unreached} are not reached from the input")
    order = [n for n in reversed(post) if n != input_name]
    delay = {input_name: 0}
    for lname in order:
        layer = layers[lname]
        for syn in layer.synapses:
            syn.recurrent = (syn.source, lname) in back
        layer.synapses.sort(key=lambda s: s.recurrent)          # feed-forward first (stable)
        ff = layer.feedforward
        if not ff:
            raise NeurokdError(f"{gname}: layer {lname!r} has only recurrent inputs")
        delay[lname] = max(delay[syn.source] for syn in ff) + 1
        layer.delay = delay[lname]
        for syn in ff:                      # a shallower source waits in a DelayDense (Synapse docstring)
            syn.delay = delay[lname] - delay[syn.source]
            own = 0 if syn.delays is None else int(syn.delays.max())
            if syn.delay - 1 + own > MAX_SYNAPSE_DELAY:
                raise NeurokdError(
                    f"{gname}: layer {lname!r}: {syn.name!r} from {syn.source!r} would wait {syn.delay - 1 + own} steps "
                    f"({syn.delay - 1} to meet deeper sources, {own} of the graph's own delays); Loihi's synaptic "
                    f"delays reach {MAX_SYNAPSE_DELAY} steps"
                )
            if (syn.delay > 1 or syn.delays is not None) and syn.kind != "dense":
                _as_dense(syn, f"{gname}: layer {lname!r}")
    for lname in order:
        for syn in layers[lname].recurrent:
            if delay[syn.source] != delay[lname]:
                raise NeurokdError(
                    f"{gname}: recurrent edge {syn.source!r} -> {lname!r} spans layers {delay[syn.source]} and "
                    f"{delay[lname]} steps deep: in Lava it would arrive {delay[syn.source] - delay[lname] + 1} steps "
                    "late, NIR means 1; neurokd maps recurrent edges within one layer depth"
                )
            if not layers[syn.source].neuron.spiking:
                raise NeurokdError(f"{gname}: recurrent edge from non-spiking {syn.source!r}")
    return [layers[n] for n in order]


def _as_dense(syn: Synapse, where: str) -> None:
    """Multiply a convolution synapse out into its dense matrix (rows: outputs), in place, keeping
    which pairs it connects in ``syn.structure``."""
    if syn.n_in * syn.n_out > MAX_DENSE_ENTRIES:
        raise NeurokdError(
            f"{where}: the delayed synapse {syn.name!r} ({syn.n_in} -> {syn.n_out}) is too large to run as a dense "
            "DelayDense matrix; shorten the shortcut or make both paths equally deep"
        )
    eye = np.eye(syn.n_in).reshape(syn.n_in, *syn.in_shape)
    weight = syn.apply(eye).reshape(syn.n_in, -1).T
    structure = syn.apply(eye, np.ones_like(syn.weight)).reshape(syn.n_in, -1).T != 0
    syn.kind, syn.weight, syn.structure = "dense", np.ascontiguousarray(weight), np.ascontiguousarray(structure)
    syn.stride, syn.padding, syn.dilation, syn.groups = (1, 1), (0, 0), (1, 1), 1


def bias_routing(network: Network, layer: Layer) -> tuple[np.ndarray, np.ndarray]:
    """Where Lava puts a layer's constant input: ``(lif_bias, synapse_bias)`` per neuron, float units.

    ``lif_bias`` goes to the LIF's ``bias_mant`` (added to ``v`` every step); ``synapse_bias`` enters
    ``u`` through a Dense from an always-on source that is on only inside each sample's window.
    Feed-forward networks: ``b_v`` on the LIF, the current bias ``b_u`` (``du < 1``) on a synapse.
    Recurrent networks run one sample per Lava run from a zeroed state, so nothing may drive a
    layer before its window opens: every bias goes through the windowed synapse (exact for
    ``du = 1``, where ``u = a + b``); ``du < 1`` with a membrane bias (``v_leak``) is refused.
    Readouts (no neuron, or a non-spiking LI/CubaLI/I neuron) are integrated on the host from their
    recorded synaptic input, biases included (:func:`host_readout`): ``(0, 0)``, so that no bias
    reaches them twice.
    """
    n = layer.neuron
    zeros = np.zeros(layer.size)
    if not n.spiking:
        return zeros, zeros
    if not network.per_sample:
        return n.b_v.copy(), n.b_u.copy()
    if np.any(n.b_v != 0) and n.du != 1.0:
        raise NeurokdError(
            f"layer {layer.name!r}: a membrane bias (v_leak) on a neuron with synaptic current (du < 1) in a "
            "recurrent graph has no exact Lava form in neurokd's one-sample-per-run mode"
        )
    return zeros, n.b_u + n.b_v


def host_readout(layer: Layer, a: np.ndarray) -> np.ndarray:
    """A readout's value per step from its summed synaptic input ``a (N, T, size)`` (float units).

    No neuron: ``a + b_u``. A non-spiking neuron (LI, CubaLI, I): ``u = (1-du) u + a + b_u``, then
    ``v = (1-dv) v + u + b_v`` per step from zero, in float64; the value is ``v``. Both engines (Lava,
    the fast model) record ``a`` on the chip and finish readouts here, so they finish them the same way.
    """
    n = layer.neuron
    if n.kind == "none":
        return a + n.b_u
    u = np.zeros(a[:, 0].shape)
    v = np.zeros(a[:, 0].shape)
    out = np.zeros_like(a)
    for t in range(a.shape[1]):
        u = (1.0 - n.du) * u + a[:, t] + n.b_u
        v = (1.0 - n.dv) * v + u + n.b_v
        out[:, t] = v
    return out
