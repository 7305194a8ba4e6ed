"""A trained neurokd student as a NIR graph: exact parameters, batch norm folded, conventions in metadata.

``student_to_nir(student, dt)`` maps ``Student.net`` layer by layer. Node names are the student's
layer names, plus ``input`` and ``output``; the edges form a chain ``input -> ... -> output``, plus
for each residual branch (``Student.shortcuts``) a path ``source -> branch layers -> neuron`` (an
identity branch is one edge ``source -> neuron``), summed at that neuron's input as NIR defines.
The graph carries no batch dimension; every shape is one sample's.

=====================================  ======================================================================
student layer (eval mode)              NIR node (parameters copied bit for bit unless stated)
=====================================  ======================================================================
``Linear`` with bias                   ``Affine(weight, bias)``; without bias ``Linear(weight)``
``Conv1d`` / ``Conv2d``                ``Conv1d`` / ``Conv2d(input_shape, weight, stride, padding, dilation,
                                       groups=1, bias)``; ``bias`` = zeros when the layer has none; a
                                       grouped conv is written as the equal dense conv (zero weights
                                       between groups, ``metadata["neurokd_groups"] = g``) because nir
                                       1.0.8's type check ignores ``groups``
``BatchNorm1d`` / ``BatchNorm2d``      no node: folded into the preceding Linear/Conv (running statistics),
                                       ``s = gamma / sqrt(running_var + eps)``, ``W' = W * s`` (per output
                                       channel), ``b' = (b - running_mean) * s + beta``, in float64, then
                                       rounded once to float32 (:func:`fold_batchnorm`)
``AvgPool2d``                          ``AvgPool2d(kernel_size, stride, padding)`` (zero padding counted)
``SumPool2d`` (neurokd)                ``SumPool2d(kernel_size, stride, padding)``
``AvgPool1d``                          ``Conv1d`` with weight ``1/k`` from each channel to itself (zero
                                       elsewhere), zero bias, ``metadata["neurokd_layer"] = "AvgPool1d"``
                                       (NIR has no 1-D pooling)
``Flatten(start_dim, end_dim)``        ``Flatten(input_type={"input": shape}, start_dim - 1, end_dim - 1)``
                                       (``start_dim=0`` in NIR for the default ``nn.Flatten()``); no node
                                       when it leaves the shape as it is (e.g. an MLP's ``Flatten`` on 1-D
                                       input): legal NIR, but snnTorch's and Norse's importers then fail
                                       on batched input and Rockpool refuses the graph (issue 16)
``LIF(beta, theta)``, ``beta < 1``     ``LIF(tau = dt/(1-beta), r = tau/dt, v_leak = 0, v_threshold = theta,
                                       v_reset = 0)``, float64 arrays shaped like the layer's output
``LIF`` with ``beta = 1``              ``IF(r = 1, v_threshold = theta, v_reset = 0)``
``LIF(reset="subtract")``              refused (no NIR or Lava form; see :class:`~neurokd.models.neurons.LIF`)
``Dropout`` / ``Identity``             no node (identity at inference)
=====================================  ======================================================================

The last layer (the readout ``Linear``) feeds the ``output`` node. Anything else raises
:class:`NeurokdError` naming the layer. A student from user code (snnTorch / SpikingJelly,
:class:`neurokd.models.user.UserStudent`) is written by :mod:`neurokd.exporters.peers_to_nir`. Weights and biases are float32 arrays (the student's own
values, or the folded ones); neuron parameters are float64 arrays (``tau``, ``r`` must not be
rounded to float32, see below); ``beta`` and ``theta`` are the values the student's forward uses
(``LIF.effective_beta()``, ``LIF.effective_threshold()``).

Metadata (the contract a reader needs, since NIR has no ``dt``)::

    graph.metadata = {"dt": dt, "timesteps": T, "encoding": "direct",
                      "readout": "mean over time steps",
                      "neuron_contract": "forward Euler at dt; LIF reset to zero",
                      "producer": "neurokd <version>"}
    node.metadata  = {"dt": dt}            # every LIF / IF node

A student trained with ``--input-mode bias`` or ``spikes`` (:mod:`neurokd.models.encoders`) is exported as the
network behind its input layer / host encoder: the graph's input is the binary spikes the chip's first synapses
receive, one frame per step, and the metadata says how they are made from the data (``encoding`` ``"bias"`` or
``"spikes"``, and ``input_mode``, ``input_offset``, ``input_full_scale``, ``input_bits``, ``input_layer_rule``).
The bias-driven input layer is not written as NIR nodes: NIR has no way to say "the value is this neuron's bias"
(an ``IF`` fed through an identity ``Affine`` would make every consumer deliver the value through a synapse, one
step late on Lava and quantised as a graded spike, which is not what the chip runs); the placement puts it on
cores from the metadata (``neurokd map``: ``input mode bias``, its neurons placed and updated every step, no
synapses into them). A graded student's metadata says ``input_mode = "graded"``.

:func:`for_norse` rewrites such a graph for Norse 1.1.0's reader (which ignores ``r`` and ``dt``): the
same network with ``r = 1`` (moved into the weights) at Norse's ``dt = 1e-3``.

Read back with forward Euler at ``dt`` (:mod:`neurokd.exporters.from_nir`), ``LIF`` gives
``v <- (1 - dt/tau) v + (dt r / tau) I = beta v + I`` with ``dt r/tau = 1`` exactly: the student's
update. ``1 - dt/tau`` computed in float64 and rounded to float32 equals the student's float32
``beta`` exactly, so the replay is bit for bit (tested on random networks).
"""

from __future__ import annotations

import copy
import math
from importlib import metadata as _metadata
from pathlib import Path

import nir
import numpy as np
import torch
from torch import nn

from neurokd.errors import NeurokdError
from neurokd.fileio import atomic_path
from neurokd.models.base import Student, SumPool2d
from neurokd.models.neurons import LIF

NEURON_CONTRACT = "forward Euler at dt; LIF reset to zero"
READOUT = "mean over time steps"
ENCODING = "direct"


def _version() -> str:
    try:
        return _metadata.version("neurokd")
    except _metadata.PackageNotFoundError:  # running from a source tree without install
        return "unknown"


def _np32(t: torch.Tensor) -> np.ndarray:
    return t.detach().cpu().to(torch.float32).numpy().copy()


# --------------------------------------------------------------------------------------------------
# Batch-norm folding
# --------------------------------------------------------------------------------------------------

_FOLD_TARGET = {nn.BatchNorm1d: (nn.Linear, nn.Conv1d), nn.BatchNorm2d: (nn.Conv2d,)}


def _folded_layer(prev: nn.Module, bn: nn.modules.batchnorm._BatchNorm, name: str, bn_name: str) -> nn.Module:
    """``prev`` followed by ``bn`` (eval statistics) as one layer with bias (formula: module docstring)."""
    if bn.running_mean is None or bn.running_var is None:
        raise NeurokdError(
            f"layer {bn_name!r}: BatchNorm without running statistics (track_running_stats=False) cannot be "
            "folded for export; train with running statistics"
        )
    out_channels = prev.out_features if isinstance(prev, nn.Linear) else prev.out_channels
    if bn.num_features != out_channels:
        raise NeurokdError(f"layer {bn_name!r}: {bn.num_features} features after {name!r} with {out_channels} outputs")
    var = bn.running_var.detach().double()
    mean = bn.running_mean.detach().double()
    gamma = bn.weight.detach().double() if bn.weight is not None else torch.ones_like(var)
    shift = bn.bias.detach().double() if bn.bias is not None else torch.zeros_like(var)
    scale = gamma / torch.sqrt(var + bn.eps)                       # s = gamma / sqrt(var + eps)
    weight = prev.weight.detach().double()
    weight = weight * scale.reshape(-1, *([1] * (weight.dim() - 1)))  # W' = W * s
    bias = prev.bias.detach().double() if prev.bias is not None else torch.zeros_like(var)
    bias = (bias - mean) * scale + shift                            # b' = (b - mean) * s + beta
    layer = copy.deepcopy(prev)
    layer.weight = nn.Parameter(weight.to(prev.weight.dtype), requires_grad=prev.weight.requires_grad)
    layer.bias = nn.Parameter(bias.to(prev.weight.dtype))
    return layer


def fold_batchnorm(student: Student) -> Student:
    """A copy of ``student`` (eval mode) whose batch norms are folded into the preceding layer.

    Each ``BatchNorm`` becomes ``nn.Identity`` and the Linear/Conv before it gets the folded
    weight and bias (float64 arithmetic, one rounding to float32). This folded student is the
    network the NIR graph describes: :func:`student_to_nir` exports exactly its parameters.
    """
    folded = copy.deepcopy(student).eval()
    for seq in (folded.net, *folded.shortcuts.values()):
        _fold_sequential(seq)
    return folded


def _fold_sequential(seq: nn.Sequential) -> None:
    """Fold every batch norm of ``seq`` into the layer before it, in place (see :func:`fold_batchnorm`)."""
    layers = list(seq.named_children())
    for i, (name, layer) in enumerate(layers):
        if not isinstance(layer, nn.modules.batchnorm._BatchNorm):
            continue
        targets = _FOLD_TARGET.get(type(layer))
        if targets is None:
            raise NeurokdError(f"layer {name!r}: {type(layer).__name__} cannot be exported to NIR (only BatchNorm1d/2d)")
        if i == 0 or not isinstance(layers[i - 1][1], targets):
            before = "nothing" if i == 0 else f"{layers[i - 1][0]!r} ({type(layers[i - 1][1]).__name__})"
            raise NeurokdError(
                f"layer {name!r}: {type(layer).__name__} follows {before}; it can only be folded into a directly "
                f"preceding {' or '.join(t.__name__ for t in targets)}"
            )
        prev_name, prev = layers[i - 1]
        setattr(seq, prev_name, _folded_layer(prev, layer, prev_name, name))
        setattr(seq, name, nn.Identity())
        layers = list(seq.named_children())


# --------------------------------------------------------------------------------------------------
# Layer -> node
# --------------------------------------------------------------------------------------------------

def _pair(v) -> tuple[int, int]:
    return (int(v), int(v)) if isinstance(v, int) else (int(v[0]), int(v[1]))


def _conv_padding(layer, name: str):
    if layer.padding_mode != "zeros":
        raise NeurokdError(f"layer {name!r}: padding_mode={layer.padding_mode!r} has no NIR form; use zero padding")
    return layer.padding if isinstance(layer.padding, str) else tuple(int(p) for p in layer.padding)


def _ungrouped(weight: np.ndarray, groups: int) -> np.ndarray:
    """A grouped conv weight ``(C_out, C_in/g, *k)`` as the equal dense one ``(C_out, C_in, *k)`` (zeros
    between groups). nir 1.0.8's type inference takes a Conv's input channels from ``weight.shape[1]``
    and ignores ``groups``, so a grouped conv would not read back with ``type_check=True``."""
    if groups == 1:
        return weight
    c_out, c_in_g = weight.shape[:2]
    dense = np.zeros((c_out, c_in_g * groups, *weight.shape[2:]), dtype=weight.dtype)
    per_group = c_out // groups
    for g in range(groups):
        rows = slice(g * per_group, (g + 1) * per_group)
        dense[rows, g * c_in_g:(g + 1) * c_in_g] = weight[rows]
    return dense


def _conv_bias(layer) -> np.ndarray:
    if layer.bias is None:
        return np.zeros(layer.out_channels, dtype=np.float32)
    return _np32(layer.bias)


def lif_node(beta: float, theta: float, gain: float, shape, dt: float, label: str,
              meta: dict | None = None) -> nir.NIRNode:
    """``v = beta v + gain I`` with a reset to zero on ``v > theta``, as NIR LIF/IF at step ``dt`` (``tau =
    dt/(1-beta)``, ``r = gain tau/dt``; ``beta = 1`` is an IF with ``r = gain``): neurokd's LIF (gain 1) and
    the peers' neurons (:mod:`neurokd.exporters.peers_to_nir`) alike."""
    if not 0.0 <= beta <= 1.0:
        raise NeurokdError(f"{label}: decay {beta} is outside [0, 1]")
    if not theta > 0:
        raise NeurokdError(f"{label}: threshold {theta} must be > 0 for Loihi's LIF")
    full = lambda v: np.full(tuple(shape), v, dtype=np.float64)  # noqa: E731
    meta = {"dt": float(dt), **(meta or {})}
    if beta >= 1.0:
        return nir.IF(r=full(gain), v_threshold=full(theta), v_reset=full(0.0), metadata=meta)
    tau = dt / (1.0 - beta)                                    # 1 - dt/tau = beta
    return nir.LIF(tau=full(tau), r=full(gain * tau / dt), v_leak=full(0.0), v_threshold=full(theta),
                   v_reset=full(0.0), metadata=meta)


def _neuron_node(layer: LIF, shape: tuple[int, ...], dt: float) -> nir.NIRNode:
    # float32 values, exact in float64; effective_* keep beta in [0, 1] and theta > 0
    return lif_node(float(layer.effective_beta()), float(layer.effective_threshold()), 1.0, shape, dt, "LIF")


def _layer_node(name: str, layer: nn.Module, in_shape: tuple[int, ...], dt: float) -> nir.NIRNode | None:
    """The NIR node for one (already folded) layer, or None for a layer that vanishes at inference."""
    if isinstance(layer, (nn.Identity, nn.Dropout)):
        return None
    if isinstance(layer, LIF):
        if layer.reset != "zero":
            raise NeurokdError(
                f"layer {name!r}: reset by subtraction has no NIR form (NIR neurons reset to v_reset) and Loihi's LIF "
                "in Lava resets to zero; retrain with --reset zero to export this student"
            )
        return _neuron_node(layer, in_shape, dt)
    if isinstance(layer, nn.Linear):
        if len(in_shape) != 1:
            raise NeurokdError(f"layer {name!r}: Linear on a {len(in_shape)}-D input {in_shape}; flatten first")
        if layer.bias is None:
            return nir.Linear(weight=_np32(layer.weight))
        return nir.Affine(weight=_np32(layer.weight), bias=_np32(layer.bias))
    if isinstance(layer, (nn.Conv1d, nn.Conv2d)):
        meta = {"neurokd_groups": int(layer.groups)} if layer.groups > 1 else {}
        weight = _ungrouped(_np32(layer.weight), int(layer.groups))
        if isinstance(layer, nn.Conv1d):
            padding = _conv_padding(layer, name)
            return nir.Conv1d(
                input_shape=int(in_shape[1]),
                weight=weight,
                stride=int(layer.stride[0]),
                padding=padding if isinstance(padding, str) else int(padding[0]),
                dilation=int(layer.dilation[0]),
                groups=1,
                bias=_conv_bias(layer),
                metadata=meta,
            )
        return nir.Conv2d(
            input_shape=(int(in_shape[1]), int(in_shape[2])),
            weight=weight,
            stride=_pair(layer.stride),
            padding=_conv_padding(layer, name),
            dilation=_pair(layer.dilation),
            groups=1,
            bias=_conv_bias(layer),
            metadata=meta,
        )
    if isinstance(layer, nn.AvgPool2d):
        padding = _pair(layer.padding)
        if layer.ceil_mode or layer.divisor_override is not None or (not layer.count_include_pad and any(padding)):
            raise NeurokdError(
                f"layer {name!r}: AvgPool2d with ceil_mode, divisor_override or count_include_pad=False has no NIR form"
            )
        kernel = _pair(layer.kernel_size)
        stride = _pair(layer.stride if layer.stride is not None else layer.kernel_size)
        return nir.AvgPool2d(kernel_size=np.array(kernel), stride=np.array(stride), padding=np.array(padding))
    if isinstance(layer, SumPool2d):
        return nir.SumPool2d(
            kernel_size=np.array(_pair(layer.kernel_size)),
            stride=np.array(_pair(layer.stride)),
            padding=np.array(_pair(layer.padding)),
        )
    if isinstance(layer, nn.AvgPool1d):
        k, s, p = int(layer.kernel_size[0]), int(layer.stride[0]), int(layer.padding[0])
        if layer.ceil_mode or (not layer.count_include_pad and p):
            raise NeurokdError(f"layer {name!r}: AvgPool1d with ceil_mode or count_include_pad=False has no NIR form")
        channels = int(in_shape[0])
        return nir.Conv1d(
            input_shape=int(in_shape[1]),
            weight=_ungrouped(np.full((channels, 1, k), 1.0 / k, dtype=np.float32), channels),
            stride=s,
            padding=p,
            dilation=1,
            groups=1,
            bias=np.zeros(channels, dtype=np.float32),
            metadata={"neurokd_layer": "AvgPool1d"},
        )
    if isinstance(layer, nn.Flatten):
        if layer.start_dim == 0 or layer.end_dim == 0:
            raise NeurokdError(f"layer {name!r}: Flatten over the batch dimension cannot be exported")
        start = layer.start_dim - 1 if layer.start_dim > 0 else layer.start_dim
        end = layer.end_dim - 1 if layer.end_dim > 0 else layer.end_dim
        out_shape = tuple(torch.flatten(torch.zeros(1, *in_shape), layer.start_dim, layer.end_dim).shape[1:])
        if out_shape == tuple(in_shape):
            return None         # already flat (an MLP on 1-D input): a node that does nothing is not written
        return nir.Flatten(input_type={"input": np.array(in_shape)}, start_dim=start, end_dim=end)
    raise NeurokdError(
        f"layer {name!r} ({type(layer).__name__}) cannot be exported to NIR; exportable layers: Linear, Conv1d, "
        "Conv2d, BatchNorm1d/2d (folded), AvgPool1d/2d, SumPool2d, Flatten, LIF, Dropout"
    )


def student_to_nir(student: Student, dt: float = 1e-4) -> nir.NIRGraph:
    """The student as a type-checked NIR graph (mapping and metadata: module docstring).

    ``dt`` is the time step the LIF time constants are expressed in (seconds); any positive value
    gives the same discrete network, 1e-4 matches snnTorch's and the NIR paper's convention.
    """
    from neurokd.models.user import UserStudent

    if isinstance(student, UserStudent):       # an snnTorch / SpikingJelly student: exporters/peers_to_nir.py
        from neurokd.exporters.peers_to_nir import user_student_to_nir

        return user_student_to_nir(student, dt=dt)
    if not isinstance(student, Student):
        raise NeurokdError(f"student_to_nir needs a neurokd Student, got {type(student).__name__}")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise NeurokdError(f"dt must be a finite number > 0 (seconds), got {dt!r}")
    dt = float(dt)
    folded = fold_batchnorm(student)
    net = folded.net
    names = [name for name, _ in net.named_children()]
    names += [name for seq in folded.shortcuts.values() for name, _ in seq.named_children()]
    for reserved in ("input", "output"):
        if reserved in names:
            raise NeurokdError(f"layer name {reserved!r} is reserved for the NIR graph's {reserved} node; rename the layer")

    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(student.input_shape)})}
    edges: list[tuple[str, str]] = []

    def chain(seq, x: torch.Tensor, last: str) -> tuple[torch.Tensor, str]:
        """Nodes and edges for the layers of ``seq`` from node ``last``; returns the output and last node."""
        for name, layer in seq:
            in_shape = tuple(int(d) for d in x.shape[1:])
            node = _layer_node(name, layer, in_shape, dt)
            if not isinstance(layer, LIF):
                try:
                    x = layer(x)
                except RuntimeError as exc:
                    raise NeurokdError(f"layer {name!r} does not accept input of shape {in_shape}: {exc}") from exc
            if node is None:
                continue
            nodes[name] = node
            edges.append((last, name))
            last = name
        return x, last

    device = next(net.parameters(), torch.zeros(())).device
    x = torch.zeros(1, *student.input_shape, device=device)
    seen = {"input": (x, "input")}           # layer -> (its output, the node that carries it)
    last = "input"
    with torch.no_grad():
        for name, layer in net.named_children():
            if name in folded.shortcuts:              # a residual branch summed at this neuron's input
                src_x, src_node = seen[folded.shortcut_from[name]]
                y, branch_end = chain(folded.shortcuts[name].named_children(), src_x, src_node)
                if tuple(y.shape) != tuple(x.shape):
                    raise NeurokdError(f"shortcut into {name!r} gives shape {tuple(y.shape[1:])}, the layer "
                                       f"receives {tuple(x.shape[1:])}")
                edges.append((branch_end, name))
            x, last = chain([(name, layer)], x, last)
            seen[name] = (x, last)
    if last == "input":
        raise NeurokdError("the student has no exportable layer")
    out_shape = np.array([int(d) for d in x.shape[1:]])
    nodes["output"] = nir.Output(output_type={"output": out_shape})
    edges.append((last, "output"))
    meta = {
        "dt": dt,
        "timesteps": int(student.timesteps),
        "encoding": ENCODING,
        "readout": READOUT,
        "neuron_contract": NEURON_CONTRACT,
        "producer": f"neurokd {_version()}",
        "input_mode": "graded",
    }
    encoder = getattr(student, "encoder", None)
    if encoder is not None:
        meta.update(encoder.metadata(), encoding=encoder.mode, input_layer_rule=(
            f"non-leaky IF per value, bias round((x - offset) / full_scale * {2 ** encoder.bits - 1}), threshold "
            f"{encoder.vth}, reset to 0 (Lava's fixed-point LIF, neurokd.hardware.engines.encoding.bias_layer)"
            if encoder.mode == "bias" else
            "deterministic error-feedback rate code of (x - offset) / full_scale (accumulator from 0.5, a spike "
            "on reaching 1; neurokd.hardware.engines.encoding.rate_spikes)"))
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)
    except (ValueError, AssertionError) as exc:
        raise NeurokdError(f"the exported NIR graph fails nir's type check: {exc}") from exc


#: The step Norse 1.1.0's ``from_nir`` runs a graph with unless told otherwise (its ``dt=0.001``).
NORSE_DT = 1e-3


def for_norse(graph: nir.NIRGraph) -> nir.NIRGraph:
    """The same network written so that Norse 1.1.0's ``norse.torch.from_nir(graph)`` runs it exactly.

    Norse's reader takes a LIF's ``tau`` and ignores both ``r`` (it warns "r is expected to be set to
    1") and the graph's ``dt`` (it runs at its own ``dt = 1e-3``). Both are a change of units NIR
    allows without changing the network: every LIF's ``r`` moves into the weights and bias of the
    linear node that feeds it (``dt r/tau * (W s + b) = dt/tau * (r W s + r b)``), leaving ``r = 1``,
    and time is rescaled to Norse's step (``tau`` and ``dt`` times ``1e-3/dt``, so ``dt/tau`` stays).
    neurokd reads the result as the same network (up to the float32 rounding of ``r W``); measured:
    Norse's readout equals the student's at every step (tests/test_peer_conformance.py). A LIF fed
    by anything but one Affine/Linear/Conv node of its own (a residual sum, a pool) is refused.
    """
    if not isinstance(graph, nir.NIRGraph):
        raise NeurokdError(f"for_norse needs a nir.NIRGraph, got {type(graph).__name__}")
    meta = dict(graph.metadata) if isinstance(graph.metadata, dict) else {}
    if "dt" not in meta:
        raise NeurokdError("for_norse needs the graph's dt in its metadata (a graph written by student_to_nir)")
    scale = NORSE_DT / float(meta["dt"])
    nodes = dict(graph.nodes)
    feeds = {n: [a for a, b in graph.edges if b == n] for n in nodes}
    users = {n: [b for a, b in graph.edges if a == n] for n in nodes}
    for name, node in graph.nodes.items():
        if not isinstance(node, nir.LIF):
            continue
        (src,) = feeds[name] if len(feeds[name]) == 1 else (None,)
        lin = nodes.get(src)
        if not isinstance(lin, (nir.Affine, nir.Linear, nir.Conv1d, nir.Conv2d)) or users[src] != [name]:
            raise NeurokdError(f"for_norse: LIF {name!r} is fed by {feeds[name]}, not by one linear node of its own; "
                               "Norse's reader cannot take its r")
        r = np.asarray(node.r, dtype=np.float64)
        if isinstance(lin, (nir.Affine, nir.Linear)):
            gain = r.reshape(-1, 1)
        else:                                           # one gain per output channel
            per_channel = r.reshape(r.shape[0], -1)
            if not np.all(per_channel == per_channel[:, :1]):
                raise NeurokdError(f"for_norse: LIF {name!r} after a convolution has r varying within a channel")
            gain = per_channel[:, 0].reshape(-1, *([1] * (np.ndim(lin.weight) - 1)))
        weight = (np.asarray(lin.weight, dtype=np.float64) * gain).astype(np.float32)
        if isinstance(lin, nir.Linear):
            nodes[src] = nir.Linear(weight=weight)
        elif isinstance(lin, nir.Affine):
            nodes[src] = nir.Affine(weight=weight, bias=(np.asarray(lin.bias, np.float64) * r.reshape(-1)).astype(np.float32))
        else:
            bias = (np.asarray(lin.bias, np.float64) * per_channel[:, 0]).astype(np.float32)
            kw = dict(weight=weight, stride=lin.stride, padding=lin.padding, dilation=lin.dilation, groups=lin.groups,
                      bias=bias, input_shape=lin.input_shape)
            nodes[src] = (nir.Conv1d if isinstance(lin, nir.Conv1d) else nir.Conv2d)(**kw)
            nodes[src].metadata = dict(getattr(lin, "metadata", {}) or {})
        node_meta = dict(getattr(node, "metadata", {}) or {})
        if "dt" in node_meta:
            node_meta["dt"] = NORSE_DT
        nodes[name] = nir.LIF(tau=np.asarray(node.tau, np.float64) * scale, r=np.ones_like(r), v_leak=node.v_leak,
                              v_threshold=node.v_threshold, v_reset=node.v_reset, metadata=node_meta)
    meta.update(dt=NORSE_DT, written_for="norse 1.1.0 from_nir (r = 1, dt = 1e-3)")
    try:
        return nir.NIRGraph(nodes=nodes, edges=list(graph.edges), metadata=meta, type_check=True)
    except (ValueError, AssertionError) as exc:
        raise NeurokdError(f"for_norse: the rewritten graph fails nir's type check: {exc}") from exc


def write_nir(graph: nir.NIRGraph, path: str | Path) -> Path:
    """Write ``graph`` to ``path`` atomically (temporary file, read back with nir's type check, rename)."""
    if not isinstance(graph, nir.NIRGraph):
        raise NeurokdError(f"write_nir needs a nir.NIRGraph, got {type(graph).__name__}; nothing written to {path}")
    path = Path(path)
    with atomic_path(path) as tmp:
        try:
            nir.write(tmp, graph)
        except (TypeError, ValueError) as exc:
            raise NeurokdError(f"cannot write the NIR graph to {path}: {exc}") from exc
        try:
            nir.read(tmp, type_check=True)
        except Exception as exc:  # a graph that does not read back must never replace a good file
            first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
            raise NeurokdError(f"the NIR graph written for {path} does not read back: {first}") from exc
    return path
