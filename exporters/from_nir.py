"""Any NIR graph as a PyTorch module that runs it over a sequence, with one written discretisation.

``read_nir(path)`` reads and validates a file; ``nir_to_torch(graph, dt)`` returns a
:class:`NIRModule` whose ``forward(x)`` takes ``x`` of shape ``(T, B, *input_shape)`` and returns
the Output node's ``(T, B, *shape)`` (a dict for several outputs; ``record=True`` returns every
node's output). The time step ``dt`` is chosen by :func:`neurokd.exporters.conventions.resolve_dt`
(argument, metadata, producer, export signature), which also lists the dt of each interop graph.

Discretisation (the only one in neurokd; ``I[t]`` is the sum of a node's inputs at step ``t``,
every state starts at zero, coefficients are computed in float64 and rounded once to float32)::

    LIF      v[t] = (1 - dt/tau) v[t-1] + (dt r/tau) I[t] + (dt/tau) v_leak      forward Euler of
                                                                                  tau v' = v_leak - v + r I
             s[t] = v[t] > v_threshold  (strict);  v[t] = v_reset where s[t]      (same step)
    LI       v[t] as LIF, no spike; output v
    CubaLIF  i[t] = (1 - dt/tau_syn) i[t-1] + (dt w_in/tau_syn) I[t]             Euler of tau_syn i' = -i + w_in S
             v[t] = (1 - dt/tau_mem) v[t-1] + (dt r/tau_mem) i[t] + (dt/tau_mem) v_leak   (the new i)
             spike and reset of v as LIF (i is not reset)
    CubaLI   i[t], v[t] as CubaLIF, no spike; output v
    IF       v[t] = v[t-1] + r I[t]; spike and reset as LIF
    I        v[t] = v[t-1] + r I[t]; output v
    Threshold  s[t] = I[t] > threshold
    Delay    y[t] = I[t - d], d = delay / dt steps (an integer; zero before the start)
    Affine, Linear, Scale, Conv1d, Conv2d, AvgPool2d, SumPool2d, Flatten: applied at every step

``IF`` and ``I`` have no time constant, and the frameworks that run them integrate once per
step: Sinabs' IAF adds its input each time bin, snnTorch imports IF as a non-leaky ``Leaky``
(``v = v + I``; ``beta = 1`` since its fix #452), neurokd exports its ``beta = 1`` neuron as
``IF(r = 1)``. So neurokd reads ``IF``/``I`` as ``v += r I`` per step (Euler with ``dt`` counted in
steps), and a graph whose only dynamics are IF/I needs no dt.

What these formulas reproduce:

- a neurokd student exported with ``dt``: ``1 - dt/tau = beta`` and ``dt r/tau = 1`` exactly in
  float32, so ``v = beta v + I`` and its spikes come out bit for bit (``to_nir``);
- snnTorch's ``Synaptic`` (exported with ``tau_syn = dt/(1-alpha)``, ``w_in = tau_syn/dt``,
  ``tau_mem = dt/(1-beta)``, ``r = tau_mem/dt``): ``i = alpha i + I``, ``v = beta v + i``;
- Norse's LIF trace of the NIR paper (``lif_norse.csv``) at ``dt = 1e-4``.

SumPool2d is computed as ``avg_pool2d(x) * kh * kw`` (zero padding counted), as
:class:`neurokd.models.base.SumPool2d` does, so neurokd graphs replay bit for bit; for spike
inputs it is the exact sum.

Edges are identities; several edges into one node are summed. Recurrent graphs: a cycle needs a
one-step delay somewhere. neurokd puts it on the edge that leaves the last neuron before the
cycle closes (found by depth-first search from the cycle's entry), so a recurrent weight sees the
neuron's spikes of the previous step, ``W_rec s[t-1] + b`` (``b`` included from ``t = 0``), as in
snnTorch's ``RLeaky``/``RSynaptic``. A cycle without any neuron gets its delay on the edge that
closes it. Nodes outside cycles run a layer at a time over the whole sequence; nodes of a cycle
run step by step together.

Subgraphs (a ``NIRGraph`` node) are expanded: their nodes are named ``<graph>.<node>`` and their
Input/Output nodes become identities.
"""

from __future__ import annotations

import math
import warnings
from dataclasses import dataclass, field
from pathlib import Path

import h5py
import nir
import numpy as np
import torch
from torch import nn
from torch.nn import functional as F

from neurokd.errors import NeurokdError
from neurokd.exporters.conventions import StepConvention, resolve_dt, semantics_warnings
from neurokd.hardware.network.nir_semantics import PassThrough, delay_steps, flatten, int_tuple, param_array, positive_array

SUPPORTED = (
    "Input", "Output", "Affine", "Linear", "Scale", "Conv1d", "Conv2d", "AvgPool2d", "SumPool2d", "Flatten",
    "LIF", "LI", "CubaLIF", "CubaLI", "IF", "I", "Threshold", "Delay", "NIRGraph",
)
NEURON_TYPES = (nir.LIF, nir.LI, nir.CubaLIF, nir.CubaLI, nir.IF, nir.I)


# --------------------------------------------------------------------------------------------------
# Reading and validation
# --------------------------------------------------------------------------------------------------

def _first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__


def read_nir(path: str | Path) -> nir.NIRGraph:
    """Read a NIR file, validate it for :func:`nir_to_torch`, and return the graph.

    The file is read as written (``type_check=False``) and judged by neurokd's own validation,
    which derives every node's shape from its parameters: files that are not HDF5, truncated,
    miss nodes or fields, hold unknown node types, dangling edges, NaN/inf parameters, time
    constants <= 0, or shapes that do not fit raise :class:`NeurokdError` naming the node and the
    reason. Then ``nir.read`` with nir's own type inference is tried, and its graph (types filled
    in) is returned. Some real files fail that check although their nodes are consistent:
    ``lif_rockpool.nir`` (NIR paper) declares its Output as ``(1, 1, 1)`` (batch and time
    included) after a one-neuron LIF; the graph as written is returned then, with a warning
    naming what nir rejected. If nir's inference adds nodes (an Input before a node without
    inputs, an Output after a dangling node), the graph as written is returned too, with a warning.
    """
    path = Path(path)
    if not path.is_file():
        raise NeurokdError(f"NIR file not found: {path}")
    if not h5py.is_hdf5(path):
        raise NeurokdError(f"{path} is not a NIR file (not HDF5; truncated or another format?)")
    try:
        raw = nir.read(path, type_check=False)
    except Exception as exc:  # noqa: BLE001 - KeyError/TypeError/AssertionError/OSError from a broken file
        raise NeurokdError(f"{path}: cannot read the NIR graph ({type(exc).__name__}: {_first_line(exc)})") from exc
    if not isinstance(raw, nir.NIRGraph):
        raise NeurokdError(f"{path}: the file holds a single {type(raw).__name__} node, not a NIR graph")
    analyse_graph(raw, name=path.name)  # raises on anything that cannot run
    try:
        checked = nir.read(path)
    except (ValueError, NotImplementedError, AssertionError) as exc:  # nir's type inference/check
        warnings.warn(
            f"{path.name}: nir's type check rejected the file ({_first_line(exc)}); read without it: every node's "
            "shape, re-derived from its parameters, is consistent",
            stacklevel=2,
        )
        return raw
    added = sorted(set(checked.nodes) - set(raw.nodes))
    if added:
        warnings.warn(f"{path.name}: nir's type inference would add nodes {added}; using the graph as written", stacklevel=2)
        return raw
    return checked


@dataclass
class GraphPlan:
    """A validated, flattened graph: nodes, edges, shapes and the execution schedule."""

    nodes: dict[str, object]
    edges: list[tuple[str, str]]
    preds: dict[str, list[str]]
    shapes: dict[str, tuple[int, ...]]
    inputs: list[str]
    outputs: list[str]
    groups: list[list[str]]                       # execution order: a group of 1 runs layer-wise
    cyclic: list[bool]                            # per group: run step by step
    delayed: set[tuple[str, str]] = field(default_factory=set)
    notes: list[str] = field(default_factory=list)


def _neuron_params(node, name: str) -> list[np.ndarray]:
    """Validate a neuron node's parameters; return the arrays that must fit the node's shape."""
    if isinstance(node, (nir.LIF, nir.LI)):
        arrays = [positive_array(node, name, "tau"), param_array(node, name, "r"), param_array(node, name, "v_leak")]
    elif isinstance(node, (nir.CubaLIF, nir.CubaLI)):
        arrays = [positive_array(node, name, "tau_syn"), positive_array(node, name, "tau_mem"), param_array(node, name, "r"),
                  param_array(node, name, "v_leak"), param_array(node, name, "w_in")]
    else:  # IF, I
        arrays = [param_array(node, name, "r")]
    if isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF)):
        arrays.append(param_array(node, name, "v_threshold"))
        if getattr(node, "v_reset", None) is not None:
            arrays.append(param_array(node, name, "v_reset"))
    return arrays


def _fits(arr: np.ndarray, shape: tuple[int, ...]) -> bool:
    try:
        return np.broadcast_shapes(arr.shape, shape) == tuple(shape)
    except ValueError:
        return False


def _node_output_shape(name: str, node, in_shape: tuple[int, ...], plan_notes: list[str]) -> tuple[int, ...]:
    """Validate ``node`` on ``in_shape`` and return its output shape (one sample, no batch/time)."""
    kind = type(node).__name__
    if isinstance(node, (PassThrough,)):
        return in_shape
    if isinstance(node, nir.Output):
        declared = node.output_type.get("output") if isinstance(node.output_type, dict) else None
        if declared is not None and tuple(int(d) for d in np.asarray(declared).reshape(-1)) != in_shape:
            declared_t = tuple(int(d) for d in np.asarray(declared).reshape(-1))
            if math.prod(declared_t) != math.prod(in_shape):
                raise NeurokdError(
                    f"node {name!r} (Output) declares shape {declared_t} but receives {in_shape}"
                )
            plan_notes.append(
                f"Output {name!r} declares shape {declared_t} for {in_shape} (same size): using {in_shape}"
            )
        return in_shape
    if isinstance(node, (nir.Affine, nir.Linear)):
        weight = param_array(node, name, "weight")
        if weight.ndim != 2:
            raise NeurokdError(f"node {name!r} ({kind}): weight must be 2-D (out, in), got shape {weight.shape}")
        if in_shape != (weight.shape[1],):
            raise NeurokdError(f"node {name!r} ({kind}): weight {weight.shape} needs input ({weight.shape[1]},), gets {in_shape}")
        if isinstance(node, nir.Affine):
            bias = param_array(node, name, "bias")
            if bias.shape != (weight.shape[0],):
                raise NeurokdError(f"node {name!r} (Affine): bias shape {bias.shape} != ({weight.shape[0]},)")
        return (int(weight.shape[0]),)
    if isinstance(node, nir.Scale):
        if not _fits(param_array(node, name, "scale"), in_shape):
            raise NeurokdError(f"node {name!r} (Scale): scale shape {np.shape(node.scale)} does not fit input {in_shape}")
        return in_shape
    if isinstance(node, NEURON_TYPES):
        for arr in _neuron_params(node, name):
            if not _fits(arr, in_shape):
                raise NeurokdError(f"node {name!r} ({kind}): parameter shape {arr.shape} does not fit its input {in_shape}")
        return in_shape
    if isinstance(node, nir.Threshold):
        if not _fits(param_array(node, name, "threshold"), in_shape):
            raise NeurokdError(f"node {name!r} (Threshold): threshold shape does not fit its input {in_shape}")
        return in_shape
    if isinstance(node, nir.Delay):
        delay = param_array(node, name, "delay")
        if np.any(delay < 0) or not _fits(delay, in_shape):
            raise NeurokdError(f"node {name!r} (Delay): delays must be >= 0 and fit the input {in_shape}")
        return in_shape
    if isinstance(node, nir.Flatten):
        declared = node.input_type.get("input") if isinstance(node.input_type, dict) else None
        if declared is not None and tuple(int(d) for d in np.asarray(declared).reshape(-1)) != in_shape:
            raise NeurokdError(
                f"node {name!r} (Flatten): declared input {tuple(np.asarray(declared).reshape(-1))} but receives {in_shape}"
            )
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        param_array(node, name, "weight")
        param_array(node, name, "bias")
        declared = getattr(node, "input_shape", None)
        spatial = in_shape[1:]
        if declared is not None and tuple(int(d) for d in np.asarray(declared).reshape(-1)) != tuple(spatial):
            raise NeurokdError(
                f"node {name!r} ({kind}): declared input_shape {tuple(np.asarray(declared).reshape(-1))} "
                f"but receives {in_shape}"
            )
    op = _stateless_op(name, node)
    try:
        with torch.no_grad():
            out = op(torch.zeros(1, *in_shape))
    except (RuntimeError, ValueError) as exc:
        raise NeurokdError(f"node {name!r} ({kind}) cannot take input of shape {in_shape}: {_first_line(exc)}") from exc
    return tuple(int(d) for d in out.shape[1:])


def _sccs(names: list[str], succ: dict[str, list[str]]) -> list[list[str]]:
    """Strongly connected components (Tarjan), each in node order."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    on_stack: set[str] = set()
    stack: list[str] = []
    out: list[list[str]] = []
    order = {n: i for i, n in enumerate(names)}

    def visit(v: str) -> None:
        index[v] = low[v] = len(index)
        stack.append(v)
        on_stack.add(v)
        for w in succ[v]:
            if w not in index:
                visit(w)
                low[v] = min(low[v], low[w])
            elif w in on_stack:
                low[v] = min(low[v], index[w])
        if low[v] == index[v]:
            comp = []
            while True:
                w = stack.pop()
                on_stack.discard(w)
                comp.append(w)
                if w == v:
                    break
            out.append(sorted(comp, key=order.get))

    for n in names:
        if n not in index:
            visit(n)
    return out


def _kahn(members: list[str], edges: list[tuple[str, str]], name: str) -> list[str]:
    """Topological order of ``members`` under ``edges`` (ties: node order)."""
    order = {n: i for i, n in enumerate(members)}
    indeg = {n: 0 for n in members}
    succ: dict[str, list[str]] = {n: [] for n in members}
    for a, b in edges:
        succ[a].append(b)
        indeg[b] += 1
    ready = sorted((n for n in members if indeg[n] == 0), key=order.get)
    out = []
    while ready:
        n = ready.pop(0)
        out.append(n)
        for m in succ[n]:
            indeg[m] -= 1
            if indeg[m] == 0:
                ready.append(m)
                ready.sort(key=order.get)
    if len(out) != len(members):
        raise NeurokdError(f"{name}: could not order nodes {sorted(set(members) - set(out))} (cycle left)")
    return out


def _delayed_edges(members: list[str], edges: list[tuple[str, str]], entries: list[str], nodes: dict) -> set:
    """Edges of one cycle group that carry the previous step's value (rule: module docstring)."""
    delayed: set[tuple[str, str]] = set()
    while True:
        succ: dict[str, list[str]] = {n: [] for n in members}
        for a, b in edges:
            if (a, b) not in delayed:
                succ[a].append(b)
        state = {n: 0 for n in members}
        path: list[str] = []
        back: list[tuple[str, str, list[str]]] = []

        def dfs(n: str) -> None:
            state[n] = 1
            path.append(n)
            for m in succ[n]:
                if state[m] == 1:
                    back.append((n, m, list(path)))
                elif state[m] == 0:
                    dfs(m)
            path.pop()
            state[n] = 2

        for root in entries + members:
            if state[root] == 0:
                dfs(root)
        if not back:
            return delayed
        for u, v, stack in back:
            cycle = stack[stack.index(v):]          # v -> ... -> u, then u -> v closes it
            chosen = (u, v)
            for j in range(len(cycle) - 1, -1, -1):
                if isinstance(nodes[cycle[j]], NEURON_TYPES):
                    chosen = (cycle[j], cycle[j + 1]) if j + 1 < len(cycle) else (u, v)
                    break
            delayed.add(chosen)


def analyse_graph(graph: nir.NIRGraph, name: str = "graph") -> GraphPlan:
    """Validate ``graph`` (types, parameters, shapes, edges) and plan its execution."""
    if not isinstance(graph, nir.NIRGraph):
        raise NeurokdError(f"{name}: expected a nir.NIRGraph, got {type(graph).__name__}")
    nodes, edges, inputs, outputs = flatten(graph)
    for node_name, node in nodes.items():
        if not isinstance(node, PassThrough) and type(node).__name__ not in SUPPORTED:
            raise NeurokdError(
                f"{name}: node {node_name!r} has type {type(node).__name__}, which neurokd cannot run "
                f"(supported: {', '.join(SUPPORTED)})"
            )
    if not inputs:
        raise NeurokdError(f"{name}: the graph has no Input node")
    if not outputs:
        raise NeurokdError(f"{name}: the graph has no Output node")
    if len(set(edges)) != len(edges):
        dup = next(e for e in edges if edges.count(e) > 1)
        raise NeurokdError(f"{name}: duplicate edge {dup}")
    names = list(nodes)
    preds: dict[str, list[str]] = {n: [] for n in names}
    succ: dict[str, list[str]] = {n: [] for n in names}
    for a, b in edges:
        if isinstance(nodes[b], nir.Input):
            raise NeurokdError(f"{name}: edge ({a!r}, {b!r}) leads into Input node {b!r}")
        if isinstance(nodes[a], nir.Output):
            raise NeurokdError(f"{name}: edge ({a!r}, {b!r}) leaves Output node {a!r}")
        preds[b].append(a)
        succ[a].append(b)
    for n in names:
        if not preds[n] and not isinstance(nodes[n], nir.Input):
            raise NeurokdError(f"{name}: node {n!r} ({type(nodes[n]).__name__}) has no incoming edge")

    # Shapes: Input nodes declare theirs; propagate until nothing changes, then check every edge.
    notes: list[str] = []
    shapes: dict[str, tuple[int, ...]] = {}
    for n in inputs:
        declared = nodes[n].input_type.get("input") if isinstance(nodes[n].input_type, dict) else None
        if declared is None:
            raise NeurokdError(f"{name}: Input node {n!r} declares no shape")
        shapes[n] = tuple(int(d) for d in np.asarray(declared).reshape(-1))
        if min(shapes[n], default=1) < 1:
            raise NeurokdError(f"{name}: Input node {n!r} has shape {shapes[n]}")
    changed = True
    while changed:
        changed = False
        for n in names:
            if n in shapes:
                continue
            known = [p for p in preds[n] if p in shapes]
            if known:
                shapes[n] = _node_output_shape(n, nodes[n], shapes[known[0]], notes)
                changed = True
    unreached = [n for n in names if n not in shapes]
    if unreached:
        raise NeurokdError(f"{name}: nodes {unreached} cannot be reached from any Input node")
    for a, b in edges:
        in_b = shapes[preds[b][0]]
        if shapes[a] != in_b:
            raise NeurokdError(f"{name}: node {b!r} receives shape {shapes[a]} from {a!r} but {in_b} from {preds[b][0]!r}")

    # Schedule: strongly connected components in topological order.
    comps = _sccs(names, succ)
    comp_of = {n: i for i, comp in enumerate(comps) for n in comp}
    comp_edges = sorted({(comp_of[a], comp_of[b]) for a, b in edges if comp_of[a] != comp_of[b]})
    first = {i: min(names.index(n) for n in comp) for i, comp in enumerate(comps)}
    comp_ids = sorted(range(len(comps)), key=first.get)
    order = _kahn([str(i) for i in comp_ids], [(str(a), str(b)) for a, b in comp_edges], name)
    groups, cyclic = [], []
    delayed: set[tuple[str, str]] = set()
    for key in order:
        comp = comps[int(key)]
        loop = len(comp) > 1 or (comp[0], comp[0]) in edges
        if loop:
            members = set(comp)
            internal = [(a, b) for a, b in edges if a in members and b in members]
            for n in comp:
                if isinstance(nodes[n], nir.Delay):
                    raise NeurokdError(f"{name}: Delay node {n!r} inside a recurrent loop is not supported")
            entries = [n for n in comp if any(p not in members for p in preds[n])]
            d = _delayed_edges(comp, internal, entries, nodes)
            delayed |= d
            comp = _kahn(comp, [e for e in internal if e not in d], name)
        groups.append(comp)
        cyclic.append(loop)
    return GraphPlan(nodes, edges, preds, shapes, inputs, outputs, groups, cyclic, delayed, notes)


# --------------------------------------------------------------------------------------------------
# Operations
# --------------------------------------------------------------------------------------------------

def _t(arr, shape=None) -> torch.Tensor:
    """float64 array -> float32 tensor (one rounding), broadcast to ``shape`` if given."""
    a = np.asarray(arr, dtype=np.float64)
    if shape is not None:
        a = np.broadcast_to(a, shape)
    return torch.tensor(np.ascontiguousarray(a), dtype=torch.float32)


class _Stateless(nn.Module):
    """A node applied independently at every step to ``(N, *shape)``."""

    def __init__(self, fn, **tensors) -> None:
        super().__init__()
        self.fn = fn
        for k, v in tensors.items():
            self.register_buffer(k, v)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fn(self, x)


def _stateless_op(name: str, node) -> _Stateless:
    if isinstance(node, (nir.Input, nir.Output, PassThrough)):
        return _Stateless(lambda m, x: x)
    if isinstance(node, (nir.Affine, nir.Linear)):
        bias = _t(node.bias) if isinstance(node, nir.Affine) and np.any(np.asarray(node.bias) != 0) else None
        return _Stateless(lambda m, x: F.linear(x, m.weight, m.bias), weight=_t(node.weight), bias=bias)
    if isinstance(node, nir.Scale):
        return _Stateless(lambda m, x: x * m.scale, scale=_t(node.scale))
    if isinstance(node, (nir.Conv1d, nir.Conv2d)):
        n = 1 if isinstance(node, nir.Conv1d) else 2
        weight = np.asarray(node.weight)
        if weight.ndim != n + 2:
            raise NeurokdError(f"node {name!r}: {type(node).__name__} weight must be {n + 2}-D, got {weight.shape}")
        groups = int(np.asarray(node.groups).reshape(()))
        stride = int_tuple(node.stride, n, name, "stride", 1)
        dilation = int_tuple(node.dilation, n, name, "dilation", 1)
        padding = node.padding
        if isinstance(padding, bytes):
            padding = padding.decode()
        if isinstance(padding, str):
            if padding not in ("same", "valid"):
                raise NeurokdError(f"node {name!r}: padding {padding!r} must be 'same', 'valid' or integers")
        else:
            padding = int_tuple(padding, n, name, "padding", 0)
        if groups < 1 or weight.shape[0] % groups:
            raise NeurokdError(f"node {name!r}: groups={groups} does not divide {weight.shape[0]} output channels")
        conv = F.conv1d if n == 1 else F.conv2d
        bias = _t(node.bias) if np.any(np.asarray(node.bias) != 0) else None
        if bias is not None and bias.shape != (weight.shape[0],):
            raise NeurokdError(f"node {name!r}: bias shape {tuple(bias.shape)} != ({weight.shape[0]},)")
        return _Stateless(
            lambda m, x: conv(x, m.weight, m.bias, stride, padding, dilation, groups), weight=_t(weight), bias=bias
        )
    if isinstance(node, (nir.AvgPool2d, nir.SumPool2d)):
        kernel = int_tuple(node.kernel_size, 2, name, "kernel_size", 1)
        stride = int_tuple(node.stride, 2, name, "stride", 1)
        padding = int_tuple(node.padding, 2, name, "padding", 0)
        if isinstance(node, nir.AvgPool2d):
            return _Stateless(lambda m, x: F.avg_pool2d(x, kernel, stride, padding, count_include_pad=True))
        area = kernel[0] * kernel[1]   # sum = average * kernel area, as neurokd.models.base.SumPool2d
        return _Stateless(lambda m, x: F.avg_pool2d(x, kernel, stride, padding, count_include_pad=True) * area)
    if isinstance(node, nir.Flatten):
        start, end = int(np.asarray(node.start_dim)), int(np.asarray(node.end_dim))
        start = start + 1 if start >= 0 else start   # NIR dims exclude the batch dimension
        end = end + 1 if end >= 0 else end
        return _Stateless(lambda m, x: x.flatten(start, end))
    if isinstance(node, nir.Threshold):
        return _Stateless(lambda m, x: (x > m.threshold).to(x.dtype), threshold=_t(node.threshold))
    raise NeurokdError(f"node {name!r}: {type(node).__name__} is not a stateless node")


class _Neuron(nn.Module):
    """LIF, LI, CubaLIF, CubaLI, IF and I, stepped with the module docstring's formulas."""

    def __init__(self, name: str, node, shape: tuple[int, ...], dt: float | None) -> None:
        super().__init__()
        self.spiking = isinstance(node, (nir.LIF, nir.CubaLIF, nir.IF))
        self.synaptic = isinstance(node, (nir.CubaLIF, nir.CubaLI))
        f64 = lambda field_: np.asarray(getattr(node, field_), dtype=np.float64)  # noqa: E731
        if isinstance(node, (nir.IF, nir.I)):
            decay, gain, leak = np.ones(1), f64("r"), np.zeros(1)      # v = v + r I
        else:
            if dt is None:
                raise NeurokdError(f"node {name!r} ({type(node).__name__}) needs a time step dt")
            tau = f64("tau_mem") if self.synaptic else f64("tau")
            decay = 1.0 - dt / tau                                      # 1 - dt/tau
            gain = dt * f64("r") / tau                                  # dt r / tau
            leak = dt / tau * f64("v_leak")                             # (dt/tau) v_leak
        if self.synaptic:
            tau_syn = f64("tau_syn")
            self.register_buffer("syn_decay", _t(1.0 - dt / tau_syn, shape))     # 1 - dt/tau_syn
            self.register_buffer("syn_gain", _t(dt * f64("w_in") / tau_syn, shape))  # dt w_in / tau_syn
        self.register_buffer("decay", _t(decay, shape))
        self.register_buffer("gain", _t(gain, shape))
        self.register_buffer("leak", _t(leak, shape))
        # Skipping a multiplication by exactly 1 or an addition of exactly 0 changes no bit.
        self.leaky = bool(torch.any(self.decay != 1.0))
        self.unit_gain = bool(torch.all(self.gain == 1.0))
        self.has_leak = bool(torch.any(self.leak != 0.0))
        if self.spiking:
            v_reset = getattr(node, "v_reset", None)
            self.register_buffer("v_threshold", _t(f64("v_threshold"), shape))
            self.register_buffer("v_reset", _t(np.zeros(1) if v_reset is None else v_reset, shape))

    def init_state(self, batch: int, shape: tuple[int, ...]) -> list[torch.Tensor]:
        zeros = torch.zeros(batch, *shape, dtype=self.decay.dtype, device=self.decay.device)
        return [zeros, zeros.clone()] if self.synaptic else [zeros]

    def step(self, state: list[torch.Tensor], current: torch.Tensor) -> torch.Tensor:
        if self.synaptic:
            syn = self.syn_decay * state[1] + self.syn_gain * current   # i = (1 - dt/tau_syn) i + (dt w_in/tau_syn) I
            state[1] = syn
            current = syn
        v = self.decay * state[0] if self.leaky else state[0]
        v = v + (current if self.unit_gain else self.gain * current)    # + (dt r/tau) I
        if self.has_leak:
            v = v + self.leak                                           # + (dt/tau) v_leak
        if not self.spiking:
            state[0] = v
            return v
        spikes = v > self.v_threshold                                   # strict threshold
        state[0] = torch.where(spikes, self.v_reset, v)                 # reset in the same step
        return spikes.to(v.dtype)


class _Delay(nn.Module):
    """``y[t] = x[t - d]`` with ``d = delay / dt`` whole steps per element."""

    def __init__(self, name: str, node, shape: tuple[int, ...], dt: float | None) -> None:
        super().__init__()
        delay = np.broadcast_to(np.asarray(node.delay, dtype=np.float64), shape)
        self.register_buffer("steps", torch.tensor(delay_steps(delay, dt, name)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:        # x: (T, B, *shape)
        T = x.shape[0]
        pad = torch.cat([torch.zeros_like(x), x], 0)           # index T + t - d
        t = torch.arange(T, device=x.device).reshape(T, *([1] * (x.dim() - 1)))
        idx = (T + t - self.steps.unsqueeze(0).unsqueeze(0)).clamp(0, 2 * T - 1)
        idx = idx.expand_as(x)
        return torch.gather(pad, 0, idx)


# --------------------------------------------------------------------------------------------------
# The module
# --------------------------------------------------------------------------------------------------

class NIRModule(nn.Module):
    """A NIR graph run over sequences ``(T, B, *input_shape)`` (semantics: module docstring).

    Attributes: ``plan`` (:class:`GraphPlan`: nodes, shapes, schedule, recurrent edges),
    ``convention`` (:class:`~neurokd.exporters.conventions.StepConvention`: dt and why),
    ``timesteps`` (for direct encoding of a ``(B, *input_shape)`` input; None if unknown).
    """

    def __init__(self, plan: GraphPlan, convention: StepConvention, timesteps: int | None = None,
                 metadata: dict | None = None) -> None:
        super().__init__()
        self.plan = plan
        self.convention = convention
        self.timesteps = timesteps
        self.metadata = dict(metadata or {})
        self._index: dict[str, int] = {}
        ops = []
        for name, node in plan.nodes.items():
            shape = plan.shapes[name]
            dt = convention.per_node.get(name)
            if isinstance(node, NEURON_TYPES):
                op = _Neuron(name, node, shape, dt)
            elif isinstance(node, nir.Delay):
                op = _Delay(name, node, shape, dt)
            else:
                op = _stateless_op(name, node)
            self._index[name] = len(ops)
            ops.append(op)
        self.ops = nn.ModuleList(ops)

    @property
    def dt(self) -> float | None:
        return self.convention.dt

    def op(self, name: str) -> nn.Module:
        return self.ops[self._index[name]]

    def _inputs(self, x) -> dict[str, torch.Tensor]:
        names = self.plan.inputs
        if not isinstance(x, dict):
            if len(names) != 1:
                raise NeurokdError(f"the graph has inputs {names}: pass a dict {{name: tensor}}")
            x = {names[0]: x}
        missing = [n for n in names if n not in x]
        if missing:
            raise NeurokdError(f"missing input(s) {missing}; the graph's inputs are {names}")
        ref = next((b for b in self.buffers() if b.is_floating_point()), torch.zeros(()))
        dtype, device = ref.dtype, ref.device
        out = {}
        for n in names:
            value = torch.as_tensor(x[n]).to(device=device, dtype=dtype)
            shape = self.plan.shapes[n]
            if value.dim() == len(shape) + 1 and self.timesteps:        # (B, *shape): direct encoding
                value = value.unsqueeze(0).expand(self.timesteps, *value.shape)
            if value.dim() != len(shape) + 2 or tuple(value.shape[2:]) != shape:
                raise NeurokdError(f"input {n!r} must have shape (T, B, {', '.join(map(str, shape))}), got {tuple(value.shape)}")
            out[n] = value
        return out

    def forward(self, x, record: bool = False, record_states: bool = False):
        """Run the graph; ``x``: ``(T, B, *input_shape)`` (or a dict per Input node).

        Returns the Output node's ``(T, B, *shape)`` (a dict when there are several), or with
        ``record=True`` a dict ``{node: (T, B, *shape)}`` of every node's output. With
        ``record_states=True`` returns ``(result, states)``, ``states[node]`` = ``{"v": (T, B, ...)}``
        (membrane after reset) plus ``"i"`` (synaptic current) for CubaLIF/CubaLI nodes.
        """
        seqs: dict[str, torch.Tensor] = dict(self._inputs(x))
        T, B = next(iter(seqs.values())).shape[:2]
        preds = self.plan.preds
        states: dict[str, dict[str, list[torch.Tensor]]] = {}
        for group, loop in zip(self.plan.groups, self.plan.cyclic):
            if not loop:
                (name,) = group
                if name in seqs:
                    continue
                current = seqs[preds[name][0]]
                for p in preds[name][1:]:
                    current = current + seqs[p]
                seqs[name] = self._run_layer(name, current, T, B, states if record_states else None)
            else:
                seqs.update(self._run_loop(group, seqs, T, B, states if record_states else None))
        if record:
            result = {n: seqs[n] for n in self.plan.nodes}
        elif len(self.plan.outputs) == 1:
            result = seqs[self.plan.outputs[0]]
        else:
            result = {n: seqs[n] for n in self.plan.outputs}
        if record_states:
            return result, {n: {k: torch.stack(v) for k, v in d.items()} for n, d in states.items()}
        return result

    @staticmethod
    def _keep(states, name: str, op, state: list[torch.Tensor]) -> None:
        if states is None:
            return
        d = states.setdefault(name, {"v": []} if not op.synaptic else {"v": [], "i": []})
        d["v"].append(state[0])
        if op.synaptic:
            d["i"].append(state[1])

    def _run_layer(self, name: str, current: torch.Tensor, T: int, B: int, states=None) -> torch.Tensor:
        op = self.op(name)
        shape = self.plan.shapes[name]
        if isinstance(op, _Neuron):
            state = op.init_state(B, shape)
            out = []
            for t in range(T):
                out.append(op.step(state, current[t]))
                self._keep(states, name, op, state)
            return torch.stack(out)
        if isinstance(op, _Delay):
            return op(current)
        flat = current.reshape(T * B, *current.shape[2:])
        return op(flat).reshape(T, B, *shape)

    def _run_loop(self, group: list[str], seqs: dict, T: int, B: int, states=None) -> dict[str, torch.Tensor]:
        members = set(group)
        delayed = self.plan.delayed
        preds = self.plan.preds
        neuron_state = {
            n: self.op(n).init_state(B, self.plan.shapes[n]) for n in group if isinstance(self.op(n), _Neuron)
        }
        ref = next(iter(seqs.values()))
        previous = {n: torch.zeros(B, *self.plan.shapes[n], dtype=ref.dtype, device=ref.device) for n in group}
        steps: dict[str, list[torch.Tensor]] = {n: [] for n in group}
        for t in range(T):
            now: dict[str, torch.Tensor] = {}
            for n in group:
                current = None
                for p in preds[n]:
                    if (p, n) in delayed:
                        value = previous[p]
                    elif p in members:
                        value = now[p]
                    else:
                        value = seqs[p][t]
                    current = value if current is None else current + value
                op = self.op(n)
                if isinstance(op, _Neuron):
                    now[n] = op.step(neuron_state[n], current)
                    self._keep(states, n, op, neuron_state[n])
                else:
                    now[n] = op(current)
            for n in group:
                steps[n].append(now[n])
            previous = now
        return {n: torch.stack(v) for n, v in steps.items()}


def nir_to_torch(
    graph: nir.NIRGraph,
    dt: float | None = None,
    timesteps: int | None = None,
    *,
    producer: str | None = None,
    name: str = "graph",
) -> NIRModule:
    """Wrap ``graph`` as a :class:`NIRModule` (validated; dt by ``conventions.resolve_dt``).

    ``dt``: the time step in seconds (overrides the graph's metadata, with a warning if they
    differ). ``timesteps``: steps used when ``forward`` gets one sample per batch entry
    ``(B, *input_shape)`` (direct encoding); defaults to the graph metadata's ``timesteps``.
    ``producer``: name a known producer (``conventions.PRODUCER_DT``) when the graph does not.
    """
    plan = analyse_graph(graph, name)
    for note in plan.notes:
        warnings.warn(f"{name}: {note}", stacklevel=2)
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    if dt is not None and "dt" in meta:
        stated = float(np.asarray(meta["dt"]).reshape(()))
        if not math.isclose(stated, float(dt), rel_tol=1e-9):
            warnings.warn(f"{name}: running with dt={dt} although the graph states dt={stated}", stacklevel=2)
    convention = resolve_dt(graph, plan.nodes, dt=dt, producer=producer, name=name)
    for message in semantics_warnings(graph, plan.nodes, producer=producer, name=name):
        warnings.warn(message, stacklevel=2)
    if timesteps is None and "timesteps" in meta:
        timesteps = int(np.asarray(meta["timesteps"]).reshape(()))
    if timesteps is not None and int(timesteps) < 1:
        raise NeurokdError(f"timesteps must be >= 1, got {timesteps}")
    clean_meta = {k: (v.item() if isinstance(v, np.generic) else v) for k, v in meta.items()}
    return NIRModule(plan, convention, int(timesteps) if timesteps is not None else None, clean_meta).eval()
