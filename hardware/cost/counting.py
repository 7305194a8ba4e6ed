"""Count what a spiking network does per inference: spikes, synaptic operations, neuron updates.

Everything here is plain numpy on a small geometry description (:class:`Geometry`: populations
of neurons and the connections between them) and on event counts (:class:`Activity`). It never
imports torch: spike rasters may come from the PyTorch student, from Lava, or from the fast
hardware model, and are counted the same way.

Definitions (per inference = per sample, over the ``steps`` time steps of one inference):

* **event**: a binary spike of a spiking population, or a non-zero value of a graded
  (non-spiking) population such as the directly encoded input (each non-zero input value at each
  step is one graded event).
* **fan-out** ``f_i`` of presynaptic neuron ``i`` through a connection: the number of synapses
  ``i -> j`` whose weight is non-zero. Dense: ``f_i = nnz(W[:, i])``. Conv: the exact count of
  (output channel, output position) pairs that read input position ``i`` through a non-zero
  kernel tap, with borders, stride, padding, dilation and groups taken into account
  (:func:`conv_fanout`). Pooling is counted as the synapses it is built from (a depthwise kernel
  of ones). The *structural* fan-out counts the same pairs with every weight taken as non-zero.
* **SynOps** (synaptic operations, accumulates, ACs) of a connection:
  ``sum_i spikes_i * f_i`` over the binary spikes of its source population.
* **MACs** of a connection: ``sum_i graded_events_i * f_i`` when its source is graded (the first
  layer under direct encoding). Reported apart from SynOps (column ``graded``/``macs``).
* **Dense** operations (NeuroBench's ``Dense``): every source neuron at every step times its
  structural fan-out, ``steps * sum_i f_i^struct``, i.e. the work of hardware that skips nothing.
* **neuron updates**: every neuron of a stateful population at every step, ``neurons * steps``.
  An update at step ``t`` is **active** when the neuron received at least one synaptic event at
  ``t`` (an event of a source neuron, emitted at ``t - delay``, crossing a non-zero synapse to it;
  biases do not count as input) or emitted a spike at ``t``; otherwise it is **inactive**.
  Active updates need per-step rasters (:func:`activity_from_rasters`); from summed counts alone
  they are unknown (``None``).

All counts are summed over samples and steps in :class:`Activity` and divided by the number of
samples in :class:`Counts` (so ``*_per_sample`` is per inference).
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field, replace
from typing import Mapping, Sequence, Union

import numpy as np

from neurokd.errors import NeurokdError

CONNECTION_KINDS = ("dense", "conv", "pool")


# --------------------------------------------------------------------------------------------
# Geometry
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Population:
    """A group of neurons (or the input) whose output is events.

    ``kind`` names the NIR node (``input``, ``lif``, ``if``, ``cubalif``, ``li`` ...).
    ``spiking`` is False for graded sources (the directly encoded input) and for non-spiking
    integrators (a leaky-integrator readout). ``stateful`` says whether the population has a
    state updated every step (neurons do; the input does not). ``parameter_bytes`` is the size of
    the neuron parameters (e.g. decay and threshold), used for the footprint.
    """

    name: str
    kind: str
    shape: tuple[int, ...]
    spiking: bool = True
    stateful: bool = True
    parameter_bytes: int = 0

    @property
    def size(self) -> int:
        return int(math.prod(self.shape))


@dataclass(frozen=True)
class Connection:
    """Synapses from population ``source`` to population ``target`` (``None``: a plain output).

    ``input_shape`` is the per-sample shape the connection reads: ``(n_in,)`` for dense,
    ``(C_in, *spatial)`` for conv and pool (the source's events are reshaped to it, as a NIR
    ``Flatten`` would). ``weight`` is ``(n_out, n_in)`` for dense, ``(C_out, C_in / groups, *k)``
    for conv, ``None`` for pool (``kernel_size`` then gives the window). ``stride``, ``padding``
    (ints per spatial dim, or ``"same"`` / ``"valid"``), ``dilation`` and ``groups`` follow
    PyTorch and NIR; ``stride=None`` means 1 for conv and the window for pool. ``delay`` is the
    connection's delay in steps in the time frame of the rasters.
    """

    name: str
    kind: str
    source: str
    target: str | None
    input_shape: tuple[int, ...]
    weight: np.ndarray | None = None
    bias: np.ndarray | None = None
    kernel_size: tuple[int, ...] = ()
    stride: tuple[int, ...] | int | None = None
    padding: tuple[int, ...] | int | str = 0
    dilation: tuple[int, ...] | int = 1
    groups: int = 1
    delay: int = 0
    label: str | None = None  # the row's kind in reports when it differs from ``kind`` (e.g. "pool+conv")
    structure: np.ndarray | None = None  # dense: which pairs are connected (a convolution multiplied out); None: all
    delays: np.ndarray | None = None     # dense: extra whole-step delay per synapse (NIR Delay nodes), on top of ``delay``

    def __post_init__(self) -> None:
        if self.kind not in CONNECTION_KINDS:
            raise NeurokdError(f"connection {self.name!r}: kind {self.kind!r} is not one of {CONNECTION_KINDS}")
        if self.kind in ("dense", "conv") and self.weight is None:
            raise NeurokdError(f"connection {self.name!r} ({self.kind}) has no weight")
        if self.kind == "dense":
            w = np.asarray(self.weight)
            if w.ndim != 2 or w.shape[1] != math.prod(self.input_shape):
                raise NeurokdError(
                    f"dense connection {self.name!r}: weight {w.shape} does not read {math.prod(self.input_shape)} inputs"
                )

    # geometry helpers -------------------------------------------------------------------
    @property
    def spatial(self) -> tuple[int, ...]:
        return tuple(self.input_shape[1:])

    def kernel_mask(self, structural: bool = False) -> np.ndarray:
        """Boolean kernel ``(C_out, C_in / groups, *k)`` (conv, pool) or ``(n_out, n_in)`` (dense)."""
        if self.kind == "pool":
            c = self.input_shape[0]
            return np.ones((c, 1, *_tuple(self.kernel_size, len(self.spatial))), dtype=bool)
        w = np.asarray(self.weight)
        if structural:
            return np.ones(w.shape, dtype=bool) if self.structure is None else np.asarray(self.structure, dtype=bool)
        return w != 0

    def strides(self) -> tuple[int, ...]:
        """Stride per spatial dim (default: 1 for conv, the window size for pool)."""
        nd = len(self.spatial)
        if self.stride is None:
            return _tuple(self.kernel_size, nd) if self.kind == "pool" else (1,) * nd
        return _tuple(self.stride, nd)

    @property
    def conv_groups(self) -> int:
        return self.input_shape[0] if self.kind == "pool" else int(self.groups)

    def pads(self) -> tuple[tuple[int, int], ...]:
        """(low, high) zero padding per spatial dim; ``"same"`` pads like PyTorch (extra on the high side)."""
        nd = len(self.spatial)
        ksize = self.kernel_mask(structural=True).shape[2:]
        dil = _tuple(self.dilation, nd)
        if isinstance(self.padding, str):
            if self.padding == "valid":
                return tuple((0, 0) for _ in range(nd))
            if self.padding == "same":
                total = [dil[d] * (ksize[d] - 1) for d in range(nd)]
                return tuple((t // 2, t - t // 2) for t in total)
            raise NeurokdError(f"connection {self.name!r}: padding {self.padding!r} is not an int, a tuple, 'same' or 'valid'")
        return tuple((p, p) for p in _tuple(self.padding, nd))

    @property
    def output_shape(self) -> tuple[int, ...]:
        """Dense ``(n_out,)``; conv/pool ``(C_out, *out)`` with ``out = floor((n + lo + hi - d (k - 1) - 1) / s) + 1``."""
        if self.kind == "dense":
            return (int(np.asarray(self.weight).shape[0]),)
        nd = len(self.spatial)
        mask = self.kernel_mask(structural=True)
        ksize, stride, dil = mask.shape[2:], self.strides(), _tuple(self.dilation, nd)
        out = []
        for d, (lo, hi) in enumerate(self.pads()):
            out.append((self.spatial[d] + lo + hi - dil[d] * (ksize[d] - 1) - 1) // stride[d] + 1)
        return (int(mask.shape[0]), *out)

    @property
    def synapses(self) -> int:
        """Non-zero synapses: the sum of the non-zero fan-out over all presynaptic neurons."""
        return int(fanout(self).sum())

    @property
    def structural_synapses(self) -> int:
        """All synapses, zero weights included (pairs of connected neurons)."""
        return int(fanout(self, structural=True).sum())


Layer = Union[Population, Connection]


@dataclass(frozen=True)
class Geometry:
    """Populations and connections in graph order (the order of the report's rows).

    ``teacher`` and ``footprint_bytes`` override what :func:`teacher_ops` and :func:`footprint`
    would derive from the connections (e.g. :func:`geometry_from_ir` takes them from the original
    NIR nodes, before Lava's composition of pooling and convolution).
    """

    layers: tuple[Layer, ...]
    teacher: "TeacherCounts | None" = None  # the ANN teacher's operations, when known from the original graph
    footprint_bytes: int | None = None  # parameter bytes as the trained model stores them, when known

    def __post_init__(self) -> None:
        object.__setattr__(self, "layers", tuple(self.layers))
        names = [layer.name for layer in self.layers]
        dupes = sorted({n for n in names if names.count(n) > 1})
        if dupes:
            raise NeurokdError(f"duplicate layer names: {', '.join(dupes)}")
        pops = {p.name: p for p in self.populations}
        for c in self.connections:
            if c.source not in pops:
                raise NeurokdError(f"connection {c.name!r} reads from {c.source!r}, which is not a population of the geometry")
            if pops[c.source].size != math.prod(c.input_shape):
                raise NeurokdError(
                    f"connection {c.name!r} reads {math.prod(c.input_shape)} values but {c.source!r} has {pops[c.source].size}"
                )
            if c.target is not None and c.target not in pops:
                raise NeurokdError(f"connection {c.name!r} writes to {c.target!r}, which is not a population of the geometry")

    @property
    def populations(self) -> tuple[Population, ...]:
        return tuple(x for x in self.layers if isinstance(x, Population))

    @property
    def connections(self) -> tuple[Connection, ...]:
        return tuple(x for x in self.layers if isinstance(x, Connection))

    def population(self, name: str) -> Population:
        for p in self.populations:
            if p.name == name:
                return p
        raise NeurokdError(f"no population named {name!r} in the geometry")

    def incoming(self, name: str) -> tuple[Connection, ...]:
        return tuple(c for c in self.connections if c.target == name)


def _tuple(value, n: int) -> tuple[int, ...]:
    if isinstance(value, (int, np.integer)):
        return (int(value),) * n
    value = tuple(int(v) for v in value)
    if len(value) == 1 and n > 1:
        return value * n
    if len(value) != n:
        raise NeurokdError(f"expected {n} values (one per spatial dimension), got {value}")
    return value


# --------------------------------------------------------------------------------------------
# Fan-out
# --------------------------------------------------------------------------------------------


def dense_fanout(weight: np.ndarray, structural: bool = False) -> np.ndarray:
    """Fan-out of each input of a dense layer ``W (n_out, n_in)``: ``f_i = nnz(W[:, i])`` (or ``n_out``)."""
    weight = np.asarray(weight)
    if structural:
        return np.full(weight.shape[1], weight.shape[0], dtype=np.int64)
    return np.count_nonzero(weight, axis=0).astype(np.int64)


def conv_fanout(
    kernel_mask: np.ndarray,
    input_shape: Sequence[int],
    stride=1,
    padding=0,
    dilation=1,
    groups: int = 1,
) -> np.ndarray:
    """Exact fan-out map ``(C_in, *spatial)`` of a convolution with a boolean kernel.

    ``f[c, y] = sum_{o in group(c)} sum_k [mask[o, c mod C_in/g, k]] * #{q : y = q s - lo + k d, 0 <= q < n_out}``:
    the number of non-zero kernel taps that read input position ``y`` of channel ``c``, over all
    output positions ``q``. This is the transposed convolution of the binarised kernel over an
    all-ones output map, computed kernel offset by kernel offset. ``padding`` is an int per
    spatial dim or ``((lo, hi), ...)`` pairs.
    """
    mask = np.asarray(kernel_mask).astype(np.int64)
    c_in, spatial = int(input_shape[0]), tuple(int(s) for s in input_shape[1:])
    nd = len(spatial)
    if mask.ndim != nd + 2:
        raise NeurokdError(f"kernel of shape {mask.shape} does not match input {tuple(input_shape)}")
    c_out, cin_g, ksize = mask.shape[0], mask.shape[1], mask.shape[2:]
    if c_in != cin_g * groups or c_out % groups:
        raise NeurokdError(f"kernel {mask.shape} with groups={groups} does not fit {c_in} input channels")
    stride, dil = _tuple(stride, nd), _tuple(dilation, nd)
    if isinstance(padding, (int, np.integer)) or all(isinstance(p, (int, np.integer)) for p in padding):
        pads = tuple((p, p) for p in _tuple(padding, nd))
    else:
        pads = tuple((int(lo), int(hi)) for lo, hi in padding)
    out = [(spatial[d] + pads[d][0] + pads[d][1] - dil[d] * (ksize[d] - 1) - 1) // stride[d] + 1 for d in range(nd)]
    # non-zero taps per (input channel, kernel offset), summed over that group's output channels
    per_in = mask.reshape(groups, c_out // groups, cin_g, *ksize).sum(axis=1).reshape(c_in, *ksize)
    fan = np.zeros((c_in, *spatial), dtype=np.int64)
    if min(out, default=1) <= 0:
        return fan
    for off in np.ndindex(*ksize):
        hits = []
        for d in range(nd):
            pos = np.arange(out[d]) * stride[d] - pads[d][0] + off[d] * dil[d]
            hits.append(pos[(pos >= 0) & (pos < spatial[d])])
        if any(h.size == 0 for h in hits):
            continue
        # distinct output positions hit distinct input positions for one offset: plain += is exact
        fan[(slice(None), *np.ix_(*hits))] += per_in[(slice(None), *off)].reshape(c_in, *([1] * nd))
    return fan


def fanout(conn: Connection, structural: bool = False) -> np.ndarray:
    """Fan-out of every presynaptic position of ``conn``, shaped like ``conn.input_shape``."""
    if conn.kind == "dense":
        if structural and conn.structure is not None:
            return dense_fanout(conn.structure).reshape(conn.input_shape)
        return dense_fanout(conn.weight, structural).reshape(conn.input_shape)
    return conv_fanout(
        conn.kernel_mask(structural),
        conn.input_shape,
        stride=conn.strides(),
        padding=conn.pads(),
        dilation=conn.dilation,
        groups=conn.conv_groups,
    )


#: what one scattered synaptic event costs in synapses of a BLAS product (im2col conv, dense), measured:
#: the break-even lies at 60-300 for convolutions, 400-500 for dense layers
_SCATTER_COST = (150, 400)


def _propagate_scattered(conn: Connection, x: np.ndarray, mask: np.ndarray) -> np.ndarray:
    """:func:`propagate_events` for whole-number events ``x`` ``(N, *input_shape)``, event by event: each
    non-zero source adds its value to every target of a non-zero synapse (dense: a row of ``mask.T``; conv/pool:
    per kernel offset, the output position it lands on, if on the stride grid and inside the output, for the
    output channels of its group whose tap is non-zero). Exact integer counts, the same as the matrix products."""
    n = x.shape[0]
    out_shape = tuple(conn.output_shape)
    n_out = int(np.prod(out_shape))
    flat = x.reshape(n, -1)
    rows, cols = np.nonzero(flat)
    vals = flat[rows, cols]
    if conn.kind == "dense":
        src, dst = np.nonzero(mask.T)                       # synapses in source order
        start = np.searchsorted(src, np.arange(mask.shape[1] + 1))
        k = start[cols + 1] - start[cols]                  # fan-out of each event's source
        ev = np.repeat(np.arange(cols.size), k)
        first = np.repeat(start[cols] - np.cumsum(k) + k, k) + np.arange(ev.size)
        target = rows[ev] * n_out + dst[first]
        weight = None if np.all(vals == 1) else vals[ev].astype(np.float64)
    else:
        nd = len(conn.spatial)
        stride, pads, groups = conn.strides(), conn.pads(), conn.conv_groups
        dil = _tuple(conn.dilation, nd)
        c_out, cin_g = mask.shape[0], mask.shape[1]
        cout_g = c_out // groups
        where = np.unravel_index(cols, tuple(conn.input_shape))
        ci, pos = where[0], where[1:]
        grp, cil = ci // cin_g, ci % cin_g
        taps = mask.reshape(groups, cout_g, cin_g, -1)      # (G, Cout/G, Cin/G, offsets)
        targets, weights = [], []
        for k, off in enumerate(np.ndindex(*mask.shape[2:])):
            ok = np.ones(cols.size, dtype=bool)
            at = np.zeros(cols.size, dtype=np.int64)
            for d in range(nd):                             # output position along each spatial axis
                o = pos[d] + pads[d][0] - off[d] * dil[d]
                ok &= (o >= 0) & (o % stride[d] == 0) & (o // stride[d] < out_shape[1 + d])
                at = at * out_shape[1 + d] + o // stride[d]
            e = np.flatnonzero(ok)
            hit_e, hit_c = np.nonzero(taps[grp[e], :, cil[e], k])   # (event, output channel in its group)
            e = e[hit_e]
            targets.append((rows[e] * c_out + grp[e] * cout_g + hit_c) * (n_out // c_out) + at[e])
            weights.append(vals[e])
        target = np.concatenate(targets)
        vals_all = np.concatenate(weights)
        weight = None if np.all(vals_all == 1) else vals_all.astype(np.float64)
    counts = np.bincount(target, weights=weight, minlength=n * n_out)
    return np.rint(counts).astype(np.int64).reshape(n, *out_shape) if weight is not None \
        else counts.reshape(n, *out_shape)


def propagate_events(conn: Connection, events: np.ndarray) -> np.ndarray:
    """Number of synaptic events each target neuron receives: ``(N, *input_shape) -> (N, *output_shape)``.

    Binary events through the binarised weights (``mask``): dense ``x @ mask.T``; conv/pool the
    convolution of ``x`` with ``mask`` (zero padding). Summed over targets this equals
    ``sum_i x_i f_i``, the SynOps of those events.
    """
    # Event counts are small integers, at most a target's fan-in per step: float32 holds them exactly below
    # 2^24 (float64 beyond) and takes BLAS's matrix products, which integer arrays do not (numpy multiplies
    # int64 without BLAS, ~10x slower here). Whole-number events that are sparse (spikes mostly are) go
    # event by event instead: the work is then the synaptic events themselves, not every synapse at every step.
    x = np.asarray(events)
    n = x.shape[0]
    if x.dtype == bool and x.size and np.count_nonzero(x) * 2 > x.size:
        # mostly events (a graded input: every non-zero value is one): what every position would receive,
        # less what the few positions without an event do not send, the same whole numbers
        full = propagate_events(conn, np.ones((1, *x.shape[1:]), dtype=np.float32))   # float: the product path
        return full - propagate_events(conn, ~x)
    mask = conn.kernel_mask()
    fan_in = int(np.prod(mask.shape[1:])) if conn.kind != "dense" else int(mask.shape[1])
    if x.dtype == bool or np.issubdtype(x.dtype, np.integer):
        n_in, n_out = int(np.prod(conn.input_shape)), int(np.prod(conn.output_shape))
        synapses = int(np.count_nonzero(mask)) * (n_out // int(mask.shape[0]) if conn.kind != "dense" else 1)
        # scattered: ~ the synaptic events (events x mean fan-out); BLAS: every sample x target x fan-in
        if np.count_nonzero(x) * synapses * _SCATTER_COST[conn.kind == "dense"] < n * n_out * fan_in * n_in:
            return _propagate_scattered(conn, x.reshape(n, *conn.input_shape), mask)
    dtype = np.float32 if fan_in < 2 ** 24 else np.float64
    x = x.reshape(n, *conn.input_shape).astype(dtype)
    mask = mask.astype(dtype)
    if conn.kind == "dense":
        return np.rint(x.reshape(n, -1) @ mask.T).astype(np.int64)
    nd = len(conn.spatial)
    stride = conn.strides()
    dil, pads, groups = _tuple(conn.dilation, nd), conn.pads(), conn.conv_groups
    out_shape = conn.output_shape
    c_out, cin_g, ksize = mask.shape[0], mask.shape[1], mask.shape[2:]
    cout_g, offsets = c_out // groups, list(np.ndindex(*ksize))
    positions = int(np.prod(out_shape[1:], dtype=np.int64))
    xp = np.pad(x, [(0, 0), (0, 0), *pads]).reshape(n, groups, cin_g, *[s + a + b for s, (a, b) in
                                                                         zip(x.shape[2:], pads)])
    # the kernel as (G, offsets x Cin/G, Cout/G), rows in the order the columns are filled below
    kg = mask.reshape(groups, cout_g, cin_g, len(offsets)).transpose(0, 3, 2, 1).reshape(groups, -1, cout_g)
    y = np.empty((n, groups, cout_g, positions), dtype=dtype)
    # im2col over chunks of samples (~64 MB of columns at a time): one matrix product per group and chunk
    chunk = max(1, int(64e6 // (np.dtype(dtype).itemsize * groups * positions * len(offsets) * cin_g)))
    for lo in range(0, n, chunk):
        hi = min(n, lo + chunk)
        cols = np.empty((groups, hi - lo, positions, len(offsets), cin_g), dtype=dtype)
        for k, off in enumerate(offsets):
            window = tuple(slice(off[d] * dil[d], off[d] * dil[d] + (out_shape[1 + d] - 1) * stride[d] + 1, stride[d])
                           for d in range(nd))
            patch = xp[(slice(lo, hi), slice(None), slice(None), *window)].reshape(hi - lo, groups, cin_g, positions)
            cols[:, :, :, k, :] = patch.transpose(1, 0, 3, 2)
        prod = cols.reshape(groups, (hi - lo) * positions, -1) @ kg          # (G, chunk x positions, Cout/G)
        y[lo:hi] = prod.reshape(groups, hi - lo, positions, cout_g).transpose(1, 0, 3, 2)
    return np.rint(y).astype(np.int64).reshape(n, c_out, *out_shape[1:])


# --------------------------------------------------------------------------------------------
# Activity: events summed over steps and samples
# --------------------------------------------------------------------------------------------


@dataclass
class Activity:
    """Events per neuron summed over ``steps`` time steps and ``samples`` samples.

    ``events[name]`` has the population's shape: spikes for a spiking population, non-zero values
    for a graded one (the input). ``active_updates[name]`` is the number of active neuron updates
    of a stateful population (see the module docstring) when per-step rasters were available.
    Activities of successive batches add up with ``+``.
    """

    samples: int
    steps: int
    events: dict[str, np.ndarray]
    active_updates: dict[str, int] = field(default_factory=dict)

    def __add__(self, other: "Activity") -> "Activity":
        if self.steps != other.steps or set(self.events) != set(other.events):
            raise NeurokdError("cannot add activities of different step counts or populations")
        active = {k: self.active_updates[k] + other.active_updates[k] for k in self.active_updates if k in other.active_updates}
        return Activity(
            self.samples + other.samples,
            self.steps,
            {k: self.events[k] + other.events[k] for k in self.events},
            active,
        )


def _as_numpy(x) -> np.ndarray:
    if hasattr(x, "detach"):  # a torch tensor, without importing torch
        x = x.detach().cpu().numpy()
    return np.asarray(x)


def activity_from_rasters(geometry: Geometry, rasters: Mapping[str, object], count_active: bool = True) -> Activity:
    """Sum per-step rasters ``{population: (T, B, *shape)}`` into an :class:`Activity`.

    Every population of the geometry that is the source of a connection, or is stateful, needs a
    raster (the graded input: its values; spiking populations: 0/1 spikes). A stateless,
    non-spiking population fed only by pooling (a pool followed directly by a conv or dense
    layer, as in Sinabs graphs) may be left out: its raster is the pooled sum of its sources'
    events, whose non-zero pattern is exact (non-negative spikes through a kernel of ones). With
    ``count_active``, active updates of each stateful population are counted from the rasters of
    its sources (events delivered ``delay`` steps later through non-zero synapses) and its own
    spikes.
    """
    arrays = {k: _as_numpy(v) for k, v in rasters.items()}
    _derive_pool_outputs(geometry, arrays)
    needed = {c.source for c in geometry.connections} | {p.name for p in geometry.populations if p.stateful and p.spiking}
    missing = sorted(n for n in needed if n not in arrays)
    if missing:
        raise NeurokdError(f"rasters missing for population(s) {', '.join(missing)}: record every spiking layer and the input")
    T, B = None, None
    events: dict[str, np.ndarray] = {}
    for p in geometry.populations:
        if p.name not in arrays:
            continue
        r = arrays[p.name]
        if r.ndim < 2 or math.prod(r.shape[2:]) != p.size:
            raise NeurokdError(f"raster of {p.name!r} has shape {r.shape}; expected (T, B, {', '.join(map(str, p.shape))})")
        if T is None:
            T, B = r.shape[0], r.shape[1]
        elif r.shape[:2] != (T, B):
            raise NeurokdError(f"raster of {p.name!r} covers (T, B) = {r.shape[:2]}, others {(T, B)}")
        events[p.name] = (r != 0).sum(axis=(0, 1)).reshape(p.shape).astype(np.int64)
    active: dict[str, int] = {}
    if count_active:
        for p in geometry.populations:
            if not p.stateful:
                continue
            incoming = geometry.incoming(p.name)
            if any(c.source not in arrays for c in incoming):
                continue
            hit = np.zeros((T, B, p.size), dtype=bool)
            for c in (part for conn in incoming for part in _delay_parts(conn)):
                src = arrays[c.source] != 0
                if c.delay >= T:
                    continue
                shifted = src[: T - c.delay].reshape((T - c.delay) * B, *c.input_shape)
                recv = propagate_events(c, shifted).reshape(T - c.delay, B, -1)
                if recv.shape[-1] != p.size:
                    raise NeurokdError(f"connection {c.name!r} delivers {recv.shape[-1]} values to {p.name!r} of {p.size} neurons")
                hit[c.delay :] |= recv > 0
            if p.name in arrays and p.spiking:
                hit |= arrays[p.name].reshape(T, B, p.size) != 0
            active[p.name] = int(hit.sum())
    return Activity(int(B), int(T), events, active)


def _delay_parts(conn: Connection) -> list[Connection]:
    """A connection with per-synapse ``delays`` as one connection per distinct delay (weights masked)."""
    if conn.delays is None or not np.any(conn.delays):
        return [conn]
    d = np.asarray(conn.delays)
    return [replace(conn, weight=np.where(d == k, conn.weight, 0), delays=None, delay=conn.delay + int(k))
            for k in np.unique(d)]


def _derive_pool_outputs(geometry: Geometry, arrays: dict[str, np.ndarray]) -> None:
    """Fill in rasters of stateless populations whose only inputs are pools (counts of events per window)."""
    for p in geometry.populations:
        incoming = geometry.incoming(p.name)
        if p.name in arrays or p.stateful or p.spiking or not incoming or any(c.kind != "pool" for c in incoming):
            continue
        if any(c.source not in arrays for c in incoming):
            continue
        total = None
        for c in incoming:
            src = arrays[c.source] != 0
            T, B = src.shape[:2]
            out = propagate_events(c, src.reshape(T * B, *c.input_shape)).reshape(T, B, *c.output_shape)
            if c.delay:
                out = np.concatenate([np.zeros_like(out[: c.delay]), out[: T - c.delay]])[:T]
            total = out if total is None else total + out
        arrays[p.name] = total


def activity_from_counts(
    geometry: Geometry, spike_counts: Mapping[str, object], samples: int, steps: int
) -> Activity:
    """An :class:`Activity` from per-neuron event counts already summed over steps and samples.

    Active neuron updates are unknown from such counts (energy models then charge every update
    as active: an upper bound, said so in the report).
    """
    events = {}
    for p in geometry.populations:
        if p.name in spike_counts:
            c = _as_numpy(spike_counts[p.name])
            if c.size != p.size:
                raise NeurokdError(f"spike counts of {p.name!r} have {c.size} values; the population has {p.size} neurons")
            events[p.name] = c.reshape(p.shape).astype(np.int64)
    missing = sorted(c.source for c in geometry.connections if c.source not in events)
    if missing:
        raise NeurokdError(f"spike counts missing for population(s) {', '.join(missing)}")
    return Activity(int(samples), int(steps), events)


# --------------------------------------------------------------------------------------------
# Counts per layer, per inference
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class LayerCounts:
    """One report row: what one population or connection does per inference (per sample).

    Populations carry ``neurons``, ``spikes`` (or ``graded_events``) and neuron updates;
    connections (``connection=True``) carry ``synapses`` (non-zero), ``structural_synapses``, ``synops`` (ACs from
    binary spikes), ``macs`` (graded events times fan-out) and ``dense_synops`` (NeuroBench
    ``Dense``). ``active_updates`` is None where unknown.
    """

    layer: str
    kind: str
    connection: bool = False
    spiking: bool = False
    neurons: int = 0
    synapses: int = 0
    structural_synapses: int = 0
    spikes: float = 0.0
    graded_events: float = 0.0
    synops: float = 0.0
    macs: float = 0.0
    dense_synops: float = 0.0
    neuron_updates: float = 0.0
    active_updates: float | None = 0.0

    @property
    def inactive_updates(self) -> float | None:
        return None if self.active_updates is None else self.neuron_updates - self.active_updates


@dataclass(frozen=True)
class Counts:
    """Per-layer counts per inference for a geometry and an activity."""

    samples: int
    steps: int
    layers: tuple[LayerCounts, ...]

    @property
    def active_known(self) -> bool:
        return all(r.active_updates is not None for r in self.layers)

    @property
    def total(self) -> LayerCounts:
        """Sum over rows (``neurons`` counts updated neurons only, not the input; ``active_updates``
        is None if any row's is)."""
        rows = self.layers
        active = None if not self.active_known else sum(r.active_updates for r in rows)
        return LayerCounts(
            layer="total",
            kind="total",
            neurons=sum(r.neurons for r in rows if r.neuron_updates > 0),
            synapses=sum(r.synapses for r in rows),
            structural_synapses=sum(r.structural_synapses for r in rows),
            spikes=sum(r.spikes for r in rows),
            graded_events=sum(r.graded_events for r in rows),
            synops=sum(r.synops for r in rows),
            macs=sum(r.macs for r in rows),
            dense_synops=sum(r.dense_synops for r in rows),
            neuron_updates=sum(r.neuron_updates for r in rows),
            active_updates=active,
        )

    def row(self, name: str) -> LayerCounts:
        for r in self.layers:
            if r.layer == name:
                return r
        raise NeurokdError(f"no layer named {name!r} in the counts")


def count(geometry: Geometry, activity: Activity) -> Counts:
    """Spikes, SynOps, MACs and neuron updates per layer per inference (see the module docstring).

    ``synops_c = sum_i spikes_i f_i`` for a connection whose source spikes, ``macs_c`` likewise
    for a graded source; ``dense_c = steps * sum_i f_i^struct``; population updates
    ``neurons * steps``. Everything is divided by ``activity.samples``.
    """
    if activity.samples <= 0:
        raise NeurokdError("no samples were counted (activity.samples = 0)")
    n, steps = activity.samples, activity.steps
    rows: list[LayerCounts] = []
    pops = {p.name: p for p in geometry.populations}
    for layer in geometry.layers:
        if isinstance(layer, Population):
            ev = activity.events.get(layer.name)
            total_events = float(ev.sum()) if ev is not None else 0.0
            updates = float(layer.size * steps) if layer.stateful else 0.0
            if not layer.stateful:
                active = 0.0
            elif layer.name in activity.active_updates:
                active = activity.active_updates[layer.name] / n
            else:
                active = None
            rows.append(
                LayerCounts(
                    layer=layer.name,
                    kind=layer.kind,
                    spiking=layer.spiking,
                    neurons=layer.size,
                    spikes=total_events / n if layer.spiking else 0.0,
                    graded_events=0.0 if layer.spiking else total_events / n,
                    neuron_updates=updates,
                    active_updates=active,
                )
            )
        else:
            src = pops[layer.source]
            ev = activity.events.get(layer.source)
            if ev is None:
                raise NeurokdError(f"no events recorded for {layer.source!r}, the source of {layer.name!r}")
            f = fanout(layer)
            f_struct = fanout(layer, structural=True)
            ops = float((ev.reshape(layer.input_shape).astype(np.float64) * f).sum()) / n
            rows.append(
                LayerCounts(
                    layer=layer.name,
                    kind=layer.label or layer.kind,
                    connection=True,
                    synapses=int(f.sum()),
                    structural_synapses=int(f_struct.sum()),
                    synops=ops if src.spiking else 0.0,
                    macs=0.0 if src.spiking else ops,
                    dense_synops=float(steps * f_struct.sum()),
                )
            )
    return Counts(n, steps, tuple(rows))


# --------------------------------------------------------------------------------------------
# The ANN teacher of the same graph, and NeuroBench-named quantities
# --------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class TeacherCounts:
    """Operations of the ANN teacher of the same topology for one sample (one pass, no time steps).

    ``macs[layer]`` for dense and conv layers = their structural synapses (every weight times
    every input position it reads, borders exact: dense hardware skips no zero); ``adds[layer]``
    for pooling = its structural synapses, and ``adds["<layer>:sum"]`` for a layer that sums
    several branches (a residual shortcut) = ``(branches - 1) * neurons``. Activation functions and
    biases are not charged.
    """

    macs: dict[str, int]
    adds: dict[str, int]

    @property
    def total_macs(self) -> int:
        return sum(self.macs.values())

    @property
    def total_adds(self) -> int:
        return sum(self.adds.values())


def teacher_ops(geometry: Geometry) -> TeacherCounts:
    """MACs (dense, conv) and adds (pool) of the ANN with the same geometry, per sample."""
    if geometry.teacher is not None:
        return geometry.teacher
    macs, adds = {}, {}
    for c in geometry.connections:
        (adds if c.kind == "pool" else macs)[c.name] = c.structural_synapses
    return TeacherCounts(macs, adds)


def activation_sparsity(geometry: Geometry, counts: Counts) -> float:
    """NeuroBench ``ActivationSparsity``: ``1 - spikes / (neurons * steps)`` over all spiking populations.

    NeuroBench 2.3.0 counts zero outputs over all activation (spiking) layers, all time steps and
    all samples; the non-spiking readout and the input are not activation layers.
    """
    spiking = [p.name for p in geometry.populations if p.spiking and p.stateful]
    total = sum(counts.row(n).neuron_updates for n in spiking)
    spikes = sum(counts.row(n).spikes for n in spiking)
    return 0.0 if total == 0 else 1.0 - spikes / total


def _neurobench_layers(geometry: Geometry) -> list[Connection]:
    """The connections NeuroBench hooks: dense and conv, not pooling (a pool alone, whatever runs it)."""
    return [c for c in geometry.connections if c.kind in ("dense", "conv") and (c.label or c.kind) != "pool"]


def effective_synops(geometry: Geometry, counts: Counts) -> dict[str, float]:
    """NeuroBench ``SynapticOperations`` per sample: ``Effective_ACs``, ``Effective_MACs``, ``Dense``.

    NeuroBench hooks Linear and Conv layers only (pooling is not counted), binarises the layer's
    input and weights and sums the outputs: events times non-zero fan-out, the same as
    ``synops``/``macs`` here. It files a layer call under MACs when any input value is outside
    {0, 1, -1}; neurokd files a graded population's operations under MACs and spikes under ACs,
    and decides whether the graph input is spiking from its data by the same rule
    (:func:`input_is_spiking`). A pool composed with the following conv into one connection (as Lava
    runs it, :func:`geometry_from_ir`) is counted here as that one connection, with spikes as ACs.
    """
    rows = [counts.row(c.name) for c in _neurobench_layers(geometry)]
    return {
        "Effective_MACs": sum(r.macs for r in rows),
        "Effective_ACs": sum(r.synops for r in rows),
        "Dense": sum(r.dense_synops for r in rows),
    }


def connection_sparsity(geometry: Geometry) -> float:
    """NeuroBench ``ConnectionSparsity``: zero weights / all weights over dense and conv layers."""
    weights = [np.asarray(c.weight) for c in _neurobench_layers(geometry)]
    total = sum(w.size for w in weights)
    return 0.0 if total == 0 else sum(int((w == 0).sum()) for w in weights) / total


def footprint(geometry: Geometry) -> int:
    """NeuroBench ``Footprint``: bytes of all parameters (weights and biases as stored, zeros
    included, plus neuron parameters ``Population.parameter_bytes``)."""
    if geometry.footprint_bytes is not None:
        return int(geometry.footprint_bytes)
    size = sum(p.parameter_bytes for p in geometry.populations)
    for c in geometry.connections:
        for arr in (c.weight, c.bias):
            if arr is not None:
                size += np.asarray(arr).nbytes
    return int(size)


def neurobench_metrics(geometry: Geometry, counts: Counts) -> dict[str, object]:
    """All NeuroBench-named quantities of one geometry and activity, under NeuroBench's names."""
    return {
        "Footprint": footprint(geometry),
        "ConnectionSparsity": connection_sparsity(geometry),
        "ActivationSparsity": activation_sparsity(geometry, counts),
        "SynapticOperations": effective_synops(geometry, counts),
    }


def _input_frames(geometry: Geometry, result, x) -> tuple[Population, np.ndarray]:
    """The input population and the run's input as ``(N, T, *shape)``: what the source sent (a fixed-point
    run's integers, ``result.fixed.quantize_input``)."""
    inputs = [p for p in geometry.populations if p.kind == "input"]
    if len(inputs) != 1:
        raise NeurokdError("the geometry has no single input population")
    inp = inputs[0]
    T, N = int(result.timesteps), int(result.samples)
    frames = _as_numpy(x).astype(np.float64)
    if frames.shape == (N, *inp.shape):
        frames = np.repeat(frames[:, None], T, axis=1)
    if frames.shape != (N, T, *inp.shape):
        raise NeurokdError(f"input of shape {frames.shape} does not match the run: {N} samples x {T} steps of {inp.shape}")
    if getattr(result, "fixed", None) is not None:
        frames = result.fixed.quantize_input(frames)
    return inp, frames


def rasters_from_result(geometry: Geometry, result, x) -> dict[str, np.ndarray]:
    """``{population: (T, N, *shape)}`` from an engine result run with ``record_steps=True`` (Lava's or the fast
    model's) and its input ``x`` (``(N, *input_shape)`` repeated over the run's ``T`` steps, or ``(N, T, ...)``)."""
    inp, frames = _input_frames(geometry, result, x)
    steps = getattr(result, "spikes", None) or {}
    out = {inp.name: np.swapaxes(frames, 0, 1)}
    for p in geometry.populations:
        if p.spiking and p.stateful:
            if p.name not in steps:
                raise NeurokdError(f"the run kept no per-step spikes of {p.name!r}: run the engine with record_steps=True")
            out[p.name] = np.swapaxes(np.asarray(steps[p.name]), 0, 1)
    return out


def activity_from_lava(geometry: Geometry, result, x) -> Activity:
    """An :class:`Activity` from an engine run (:class:`neurokd.hardware.engines.result.HardwareResult`).

    ``x`` is the input given to the engine (``(N, *input_shape)`` repeated over the run's ``T``
    steps, or ``(N, T, *input_shape)``); a fixed-point run's graded events are counted on the
    integers Lava received (``result.fixed.quantize_input``). With per-step spikes
    (``record_steps=True``) active updates are counted too; from per-sample counts they are unknown.
    """
    spiking = [p.name for p in geometry.populations if p.spiking and p.stateful]
    steps = getattr(result, "spikes", None) or {}
    if all(name in steps for name in spiking):
        return activity_from_rasters(geometry, rasters_from_result(geometry, result, x))
    inp, frames = _input_frames(geometry, result, x)
    counts = {inp.name: (frames != 0).sum(axis=(0, 1)), **{n: np.asarray(result.counts[n]).sum(axis=0) for n in spiking}}
    return activity_from_counts(geometry, counts, samples=int(result.samples), steps=int(result.timesteps))


# --------------------------------------------------------------------------------------------
# From the hardware intermediate form (neurokd.hardware.network.ir)
# --------------------------------------------------------------------------------------------


def _chw(shape: tuple[int, ...]) -> tuple[int, ...]:
    return (shape[0], 1, shape[1]) if len(shape) == 2 else tuple(shape)


def _stage_structure(stage) -> tuple[str, int]:
    """``("mac" | "add" | "", structural synapses)`` of one original NIR linear node (an ir.Stage)."""
    p = stage.params
    if stage.kind == "dense":
        return "mac", int(np.asarray(p["weight"]).size)
    if stage.kind == "conv":
        f = conv_fanout(np.ones(np.asarray(p["weight4"]).shape, dtype=bool), _chw(stage.in_shape), p["stride"],
                        p["padding"], p["dilation"], p["groups"])
        return "mac", int(f.sum())
    if stage.kind == "pool":
        c = stage.in_shape[0]
        f = conv_fanout(np.ones((c, 1, *p["kernel_size"]), dtype=bool), stage.in_shape, p["stride"], p["padding"], 1, c)
        return "add", int(f.sum())
    return "", 0


def input_is_spiking(x) -> bool:
    """Whether input data is spikes: every value in {0, 1}, or in {-1, 0, 1} (signed events, e.g. an
    event camera's ON/OFF polarity). Anything else (real values, integers beyond 1) is graded.

    This is NeuroBench's rule (its ``SynapticOperations`` files a layer call under MACs when an input
    value lies outside {0, 1, -1}, else under ACs), and neurokd decides the graph input's counting
    population with it from the run's own input data, the same way in floating and fixed point
    and for both engines: a spiking input's events times fan-out are SynOps (accumulates, a signed
    spike adds or subtracts its weight), a graded input's are MACs. An empty input is spiking (it
    sends nothing either way).
    """
    a = _as_numpy(x)
    if a.size == 0:
        return True
    a = np.asarray(a, dtype=np.float64)
    return bool(np.all((a == 0) | (a == 1)) or np.all((a == 0) | (a == 1) | (a == -1)))


def geometry_from_ir(network, input_spiking: bool | None = None, weight_bytes: int | None = None,
                     fixed=None) -> Geometry:
    """The counting geometry of an :class:`neurokd.hardware.network.ir.Network` (the network Lava runs).

    Rows: the graph input (a graded population unless ``input_spiking``), then per IR layer its
    incoming synapses (one connection each, as Lava runs it: a pool followed by a conv is one
    composed convolution, a pool alone a depthwise convolution of ones; row ``kind`` names the
    NIR nodes, e.g. ``pool+conv``) and its population (``kind`` = the neuron; a readout without
    neuron is a population ``<name>.out`` of kind ``readout``: non-spiking accumulators, updated
    every step). Rasters are expected in the network's own time (the backends align Lava's
    per-layer delay), so feed-forward connections have delay 0 and recurrent ones delay 1
    (NIR's ``W_rec s[t-1]``). The ANN teacher and the footprint come from the original NIR nodes
    (``Synapse.stages``): dense and conv MACs and pooling adds of each node; weights and biases
    at ``weight_bytes`` each plus two parameters (decay, threshold) of 4 bytes per spiking
    population, which is how neurokd's PyTorch student stores them.

    ``fixed`` (a :class:`neurokd.hardware.network.quantize.FixedNetwork`): count the fixed-point network
    Lava's ``fixed_pt`` run executes: its integer weights (a weight rounded to zero is no synapse),
    binary input when the quantiser sends plain spikes, 1-byte weights in the footprint.
    ``input_spiking``: give :func:`input_is_spiking` of the run's input, so that one input is counted
    alike in both precisions (the energy report hook does). Defaults without it: False (graded,
    neurokd's direct encoding) or ``not fixed.input_graded`` (the quantiser sends 0/1 input as plain
    spikes; it sends {-1, 0, 1} as graded integers, which :func:`input_is_spiking` still counts as
    spikes); ``weight_bytes`` 4 (float32), 1 with ``fixed``.
    """
    if input_spiking is None:
        input_spiking = bool(fixed is not None and not fixed.input_graded)
    if weight_bytes is None:
        weight_bytes = 1 if fixed is not None else 4
    layers: list[Layer] = [Population(network.input_name, "input", tuple(network.input_shape),
                                      spiking=input_spiking, stateful=False)]
    pop_name = {lay.name: (f"{lay.name}.out" if lay.neuron.kind == "none" else lay.name) for lay in network.layers}
    used = {network.input_name} | set(pop_name.values())
    macs: dict[str, int] = {}
    adds: dict[str, int] = {}
    footprint_bytes = 0
    for lay in network.layers:
        for syn in lay.synapses:
            name = syn.name if syn.name not in used else f"{syn.name}->{lay.name}"
            used.add(name)
            stage_kinds = [st.kind for st in syn.stages if st.kind not in ("flatten", "scale")]
            kind = "+".join(stage_kinds) if stage_kinds else syn.kind
            common = dict(name=name, kind="dense" if syn.kind == "dense" else "conv",
                          source=pop_name.get(syn.source, syn.source), target=pop_name[lay.name],
                          delay=1 if syn.recurrent else 0)
            weight = syn.weight if fixed is None else fixed.layers[lay.name].synapses[syn.name].mant
            if syn.kind == "dense":
                conn = Connection(input_shape=(syn.n_in,), weight=weight, structure=syn.structure, delays=syn.delays,
                                  **common)
            else:
                conn = Connection(input_shape=_chw(tuple(syn.in_shape)), weight=weight, stride=tuple(syn.stride),
                                  padding=tuple(syn.padding), dilation=tuple(syn.dilation), groups=syn.groups, **common)
            layers.append(replace(conn, label=kind))
            for st in syn.stages:
                what, n = _stage_structure(st)
                if what == "mac":
                    macs[st.name] = n
                    footprint_bytes += weight_bytes * (np.asarray(st.params["weight"]).size + np.asarray(st.params["bias"]).size)
                elif what == "add":
                    adds[st.name] = n
        if len(lay.feedforward) > 1:            # the ANN adds its branches (residual sum) before the ReLU
            adds[f"{lay.name}:sum"] = (len(lay.feedforward) - 1) * lay.size
        neuron = lay.neuron
        layers.append(Population(pop_name[lay.name], "readout" if neuron.kind == "none" else neuron.kind,
                                 tuple(lay.shape), spiking=bool(neuron.spiking), stateful=True))
        if neuron.spiking:
            footprint_bytes += 2 * 4
    return Geometry(tuple(layers), teacher=TeacherCounts(macs, adds), footprint_bytes=footprint_bytes)


__all__ = [
    "Population", "Connection", "Geometry", "Activity", "LayerCounts", "Counts", "TeacherCounts",
    "dense_fanout", "conv_fanout", "fanout", "propagate_events",
    "activity_from_rasters", "activity_from_counts", "count", "teacher_ops",
    "activation_sparsity", "effective_synops", "connection_sparsity", "footprint", "neurobench_metrics",
    "input_is_spiking", "geometry_from_ir", "activity_from_lava",
]

