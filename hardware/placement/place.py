"""Put every neuron of a network on a core of a chip, and check that each core fits.

``place(network, chip, placer="pack" | "balance", geometry=None, max_chips=1, load=None)`` ->
:class:`Placement`. The unit of placement is the IR layer (one neuron population; a readout
without neuron is a population of accumulators); the input is not placed: it comes from the host
and enters the mesh at tile (0, 0) of chip 0 (an on-chip input layer, ``--input-mode bias``, is a stateful
population without incoming synapses and is placed like any layer: :mod:`.inputs`).

**Splitting.** A layer is cut into contiguous ranges of its flat (C, H, W) neuron order, one range
per core, no core holding two layers. Dense (1-D) layers are cut anywhere (neuron ranges); a
layer with channels is cut at channel boundaries (output channels), and only where one channel
does not fit a core at row boundaries, then at single positions ("space"). Cores are filled as far
as every limit of the chip allows:

* ``core.neurons``: neurons (compartments) on the core;
* ``core.fan_in_axons``: distinct source neurons with at least one non-zero synapse onto the core,
  summed over the layer's incoming connections (one input axon per source neuron and connection);
* ``core.synaptic_memory_bytes``: the synapse lists of those axons (below);
* ``core.synapses`` (where the chip states it): non-zero synapses onto the core;
* ``core.synmem_units`` (where the chip gives the vendor compiler's budget; it then replaces the byte
  budget): dense connections ``ceil(n / synapse.dense_per_unit)`` units per axon with a synapse onto the
  ``n`` neurons of the core, shared kernels below;
* ``core.delay_slots`` (where given): neurons x delay slots (the power of two above the largest delay of
  the layer's incoming synapses) for a layer whose synapses carry delays;
* ``core.fan_out_axons`` (once every layer is cut): for each neuron of the core and each connection
  leaving its layer, the number of destination cores holding one of its targets (one, whatever the cores,
  where ``core.fan_out_per_core`` is 0). A core over it is
  cut again into neuron ranges that fit (layers visited from the last to the first, since a layer's
  fan-out depends on how the layers it feeds were cut).

**The vendor compiler's cuts** (chip switches): ``core.conv_cut_w`` cuts a (C, H, W) layer fed by
convolutions along W into tiles of a power of two columns (not above W), the widest whose every channel
and row fit a core, one core per tile; the core holds the tile's own neurons, every channel and row of its
columns (not a range of the flat order: :attr:`Core.block`, ``neuron_range`` ``w x0-x1``), and its synapses, axons,
routes and messages are the tile's (a tile over ``core.fan_out_axons`` is cut into narrower tiles).
``core.conv_cut_tiles`` (Loihi 1, NxTF's partitioner) cuts a (C, H, W) layer fed by convolutions into boxes of
``ceil(C / n_c) x ceil(H / n_y) x ceil(W / n_x)`` channels, rows and columns: the candidates by number of cores,
equal counts in NxTF's order (a standard convolution's channel count varies slowest, a channel-wise layer's
fastest), the first whose every box fits a core (``neuron_range`` ``c c0-c1 y y0-y1 x x0-x1``; a box over
``core.fan_out_axons`` is halved along its longest side until it fits). ``core.ratio_split`` cuts a 1-D layer
into ``ceil(use / budget)`` equal parts (the largest ratio over the limits)
and multiplies the parts by a part's own ``ceil(ratio)`` while one is over. These apply to the ``pack`` placer;
``balance`` cuts by the generic rule above (keeping ``pack``'s cut where no finer one shortens the step).

**Synaptic memory** counts the real non-zero synapses of each axon into the core (the geometry's
weights: the fixed-point mantissas when the geometry was built with ``fixed``, so a weight
rounded to zero costs nothing). An axon's entries are stored in lists of at most
``synapse.list_max_entries`` entries, each list ``synapse.list_header_bits`` plus its entries,
rounded up to ``synapse.word_bits``; an entry is ``weight_bits`` (+ ``delay_bits`` for a
connection with synaptic delays) in the dense format, which stores every neuron of the core from
the axon's first to its last target, or that plus a compartment index of
``ceil(log2(neurons on the core))`` bits (clamped to ``index_bits_min..max``) in the sparse format,
which stores only the non-zero synapses. Each axon of a dense connection takes the cheaper
format; convolutions are stored sparse (an axon's targets in a core lie a channel apart).
``synapse.conv_storage`` changes how convolutions are stored: 1 (``shared``, Loihi 2's compiler) one kernel
per core, ``(C_in / groups) x kh x kw`` lists of ``ceil(C_out on the core x w / synapse.kernel_unit_bits)``
units (``w``: the kernel's signed width); 2 (``population``, nengo-loihi's Loihi 1 build) one input axon per
input position (all channels), and per distinct border pattern one weight set of ``(C_in / groups) x kh x
kw x C_out`` sparse entries. A connection from the host that hands each value to one neuron unchanged
(:func:`is_identity`, netx's input layer with a neuron) is input taken as bias: no synapse, axon or memory.

**Placers.** ``pack`` (default) fills each core as above, layer after layer: the fewest cores,
so the least routing and the fewest chips. ``balance`` uses measured activity (``load``: ns of
core time per neuron and step, :func:`neurokd.hardware.placement.cost.neuron_load`) and cuts
busy layers into more, smaller cores until the busiest core is as light as the cores of the
chips ``pack`` needs allow: it tries per-core load bounds on a geometric grid from ``pack``'s busiest
core down to the busiest single neuron and keeps the one whose busiest core plus the barrier
(which grows with the tiles used) is smallest. Shorter steps, at the price of more cores and
more messages. Either way cores are numbered in layer order and laid on tiles
in a snake (boustrophedon) order, so that consecutive layers sit on neighbouring tiles; chips are
side by side along x.

Refusals are :class:`~neurokd.errors.NeurokdError`, one line naming the layer, the limit and its
source, the figure and the excess.
"""

from __future__ import annotations

import functools
import math
from dataclasses import dataclass, field

import numpy as np
import scipy.sparse

from neurokd.errors import NeurokdError
from neurokd.hardware.cost.counting import Connection, Geometry, geometry_from_ir
from neurokd.hardware.network.ir import Network
from neurokd.hardware.placement.chips import Chip, load_chip

PLACERS = ("pack", "balance")


# --------------------------------------------------------------------------------------------------
# What one connection puts on one core
# --------------------------------------------------------------------------------------------------

def _conv_parts(conn: Connection):
    """A conv/pool connection as 2-D pieces: mask (Co, Cg, kh, kw), input (C, H, W), stride, pads, dilation."""
    mask = conn.kernel_mask().astype(np.float64)
    shape = tuple(conn.input_shape)
    stride, pads = conn.strides(), conn.pads()
    dil = conn.dilation if not isinstance(conn.dilation, int) else (conn.dilation,) * len(shape[1:])
    dil = tuple(dil) if len(tuple(dil)) == len(shape[1:]) else tuple(dil) * len(shape[1:])
    if len(shape) == 2:                       # (C, L) as (C, 1, L)
        mask = mask[:, :, None, :]
        shape = (shape[0], 1, shape[1])
        stride, pads, dil = (1, stride[0]), ((0, 0), pads[0]), (1, dil[0])
    out = conn.output_shape
    out_hw = (1, out[1]) if len(out) == 2 else tuple(out[1:])
    return mask, shape, tuple(stride), tuple(pads), tuple(dil), out_hw


def _rects(lo: int, hi: int, ho: int, wo: int) -> list[tuple[int, int, int, int, int, int]]:
    """Output neurons ``lo..hi-1`` (flat (C, H, W) order) as at most five blocks
    ``(c0, c1, r0, r1, x0, x1)``: channels ``c0..c1-1`` x rows ``r0..r1-1`` x columns ``x0..x1-1``."""
    plane, out, pos = ho * wo, [], lo
    while pos < hi:
        c, r = divmod(pos, plane)
        y, x = divmod(r, wo)
        if x or hi - pos < wo:                          # part of one row
            end = min(hi, pos - x + wo)
            out.append((c, c + 1, y, y + 1, x, end - pos + x))
        elif y or hi - pos < plane:                     # whole rows of one channel
            end = pos + min(ho - y, (hi - pos) // wo) * wo
            out.append((c, c + 1, y, y + (end - pos) // wo, 0, wo))
        else:                                           # whole channels
            end = pos + (hi - pos) // plane * plane
            out.append((c, c + (end - pos) // plane, 0, ho, 0, wo))
        pos = end
    return out


@functools.lru_cache(maxsize=4096)
def _hits(a: int, b: int, k: int, stride: int, dil: int, pad: int, n: int) -> tuple[np.ndarray, int]:
    """``(hit, first)``: ``hit[i, j]`` = 1 where kernel offset ``i`` of an output at ``a..b-1`` (one axis) reads
    input ``first + j`` (cropped to the inputs read: ``(k, read span)``)."""
    pos = np.arange(a, b)[None, :] * stride - pad + np.arange(k)[:, None] * dil
    i, t = np.nonzero((pos >= 0) & (pos < n))
    read = pos[i, t]
    first = int(read.min()) if read.size else 0
    hit = np.zeros((k, int(read.max()) + 1 - first if read.size else 0))
    hit[i, read - first] = 1.0
    hit.flags.writeable = False                     # cached: shared by every range with these rows
    return hit, first


@functools.lru_cache(maxsize=64)
def _flat_index(c: int, h: int, w: int) -> np.ndarray:
    """``(c, h, w)``: the flat index of each input position (cached, read-only)."""
    index = np.arange(c * h * w).reshape(c, h, w)
    index.flags.writeable = False
    return index


def _conv_per_source(parts, kernel_cum: np.ndarray, groups: int, lo: int, hi: int,
                     rects: list | None = None) -> tuple[np.ndarray, np.ndarray]:
    """Synapses from the input positions of a convolution onto output neurons ``lo..hi-1`` (flat C-order), as
    (flat source indices with synapses, ascending; their counts).

    Block by block (:func:`_rects`): the synapses of output channels ``c0..c1-1`` x rows ``R`` x columns ``X``
    onto input ``(ci, y, x)`` are ``sum_ij K[ci, i, j] hit_R[i, y] hit_X[j, x]``, with ``K`` the binarised
    kernels summed over those channels (a difference of ``kernel_cum``, their running sum over output
    channels) and ``hit_R[i, y]`` = 1 where kernel row ``i`` of an output row in ``R`` reads input row
    ``y`` (likewise columns): the convolution is separable per block, so a range costs two small
    matrix products per block whatever its size, on the inputs it reads only.
    """
    mask, (c, h, w), (sh, sw), ((ph0, _), (pw0, _)), (dh, dw), (ho, wo) = parts
    co, cg, kh, kw = mask.shape
    pg = co // groups
    blocks = []
    for c0, c1, r0, r1, x0, x1 in (rects if rects is not None else _rects(lo, hi, ho, wo)):
        rows, y0 = _hits(r0, r1, kh, sh, dh, ph0, h)         # (kh, input rows read)
        cols, z0 = _hits(x0, x1, kw, sw, dw, pw0, w)         # (kw, input columns read)
        g0, g1 = c0 // pg, -(-c1 // pg)                      # the groups of channels c0..c1-1
        if g1 - g0 == 1:
            k = kernel_cum[min(c1, g1 * pg)] - kernel_cum[max(c0, g0 * pg)]
        else:
            gs = np.arange(g0, g1)
            k = kernel_cum[np.minimum(c1, (gs + 1) * pg)] - kernel_cum[np.maximum(c0, gs * pg)]
        n, ny, nx = (g1 - g0) * cg, rows.shape[1], cols.shape[1]
        blocks.append((g0 * cg, y0, z0, np.matmul(rows.T, (k.reshape(n * kh, kw) @ cols).reshape(n, kh, nx))))
    if len(blocks) == 1:
        a0, y0, z0, out = blocks[0]
        a1, y1, z1 = a0 + out.shape[0], y0 + out.shape[1], z0 + out.shape[2]
    else:                                                    # the blocks' bounding box of inputs
        a0, y0, z0 = (min(bl[d] for bl in blocks) for d in range(3))
        a1, y1, z1 = (max(bl[d] + bl[3].shape[d] for bl in blocks) for d in range(3))
        out = np.zeros((a1 - a0, y1 - y0, z1 - z0))
        for b0, v0, u0, blk in blocks:
            out[b0 - a0:b0 - a0 + blk.shape[0], v0 - y0:v0 - y0 + blk.shape[1], u0 - z0:u0 - z0 + blk.shape[2]] += blk
    hit = out != 0
    index = _flat_index(c, h, w)[a0:a1, y0:y1, z0:z1]      # the box's flat source indices
    return index[hit], out[hit].astype(np.int64)   # whole numbers: float64 sums of products of small counts are exact


def _is_tile(part: tuple) -> bool:
    """A core's part is a range ``(lo, hi)`` of the flat (C, H, W) order, a W tile ``("w", x0, x1)`` or a box
    ``("t", c0, c1, y0, y1, x0, x1)`` (channels x rows x columns: ``core.conv_cut_tiles``)."""
    return isinstance(part[0], str)


def _box(part: tuple, c: int, h: int) -> tuple[int, int, int, int, int, int]:
    """``(c0, c1, y0, y1, x0, x1)`` of a W tile or a box of a (C, H, W) layer."""
    return (0, c, 0, h, part[1], part[2]) if part[0] == "w" else tuple(part[1:])


_DENSE_TABLES_MAX = 1 << 22     # dense masks up to this many synapses get per-row running tables (3 x int32)


@dataclass
class _Incoming:
    """Per-range synapse counts of one connection into a layer (cached helpers)."""

    conn: Connection
    n_src: int
    n_out: int
    delayed: bool
    storage: str = "connection"     # "connection", "shared" (one kernel per core), "population", "bias" (module docstring)
    max_delay: int = 0

    def __post_init__(self):
        self._sparse: dict[tuple[int, int], tuple[np.ndarray, np.ndarray]] = {}
        self._classes: int | None = None
        self._kbits: int | None = None          # the kernel's largest magnitude (-1: not whole numbers)
        if self.conn.kind == "dense":
            self.mask = np.asarray(self.conn.kernel_mask())          # (n_out, n_in) bool
            self.tables = None
            if self.mask.size <= _DENSE_TABLES_MAX:                   # per target row r and source:
                rows = np.arange(self.mask.shape[0], dtype=np.int32)[:, None]
                none = np.full((1, self.mask.shape[1]), self.mask.shape[0], dtype=np.int32)
                self.tables = (
                    np.concatenate([none * 0, np.cumsum(self.mask, axis=0, dtype=np.int32)]),   # synapses before r
                    np.concatenate([np.minimum.accumulate(np.where(self.mask, rows, none)[::-1])[::-1], none]),
                    np.maximum.accumulate(np.where(self.mask, rows, -1)))      # first target >= r, last <= r
        else:
            self.parts = _conv_parts(self.conn)
            mask = self.parts[0]
            self.kernel_cum = np.concatenate([np.zeros((1, *mask.shape[1:])), np.cumsum(mask, axis=0)])

    def kernel_weight_bits(self, chip: Chip) -> int:
        """Bits of one shared kernel weight: the kernel's signed width where its weights are whole numbers (netx
        and fixed-point kernels), else the chip's ``synapse.weight_bits``."""
        if self._kbits is None:
            w = np.asarray(self.conn.weight if self.conn.weight is not None else 1.0, dtype=np.float64)
            self._kbits = int(np.abs(w).max(initial=0)) if np.all(w == np.round(w)) else -1
        wbits = chip["synapse.weight_bits"]
        return wbits if self._kbits < 0 else int(min(wbits, max(1, self._kbits.bit_length()) + 1))

    def border_classes(self) -> int:
        """Distinct (row, column) kernel-tap patterns over the input positions: the weight sets nengo-loihi's
        ``conv2d_loihi_weights`` builds for a population-axon convolution (its 256-compartment offset split
        aside)."""
        if self._classes is None:
            _, (c, h, w), (sh, sw), ((ph0, _), (pw0, _)), (dh, dw), (ho, wo) = self.parts
            kh, kw = self.parts[0].shape[2:]
            rows, _ = _hits(0, ho, kh, sh, dh, ph0, h)
            cols, _ = _hits(0, wo, kw, sw, dw, pw0, w)
            self._classes = len({r.tobytes() for r in rows.T}) * len({k.tobytes() for k in cols.T})
        return self._classes

    def per_source(self, lo: int, hi: int) -> np.ndarray:
        """Non-zero synapses from each source neuron onto targets ``lo..hi-1`` (int64, flat source order)."""
        nz, per = self.sparse(lo, hi)
        out = np.zeros(math.prod(self.conn.input_shape), dtype=np.int64)
        out[nz] = per
        return out

    def sparse(self, lo: int, hi: int) -> tuple[np.ndarray, np.ndarray]:
        """(source indices with synapses onto targets ``lo..hi-1``, their synapse counts), cached per range."""
        key = (lo, hi)
        if key not in self._sparse:
            if self.conn.kind == "dense":
                per = (self.tables[0][hi] - self.tables[0][lo] if self.tables is not None
                       else np.count_nonzero(self.mask[lo:hi], axis=0))
                nz = np.flatnonzero(per != 0)
                self._sparse[key] = (nz, per[nz].astype(np.int64))
            else:
                self._sparse[key] = _conv_per_source(self.parts, self.kernel_cum, self.conn.conv_groups, lo, hi)
        return self._sparse[key]

    def sparse_part(self, part: tuple) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`sparse` of a core's part: a range ``(lo, hi)``, a W tile ``("w", x0, x1)`` (every channel and row
        of output columns ``x0..x1-1``) or a box ``("t", c0, c1, y0, y1, x0, x1)`` (a convolution's target only),
        cached per part."""
        if not _is_tile(part):
            return self.sparse(*part)
        if part not in self._sparse:
            _, _, _, _, _, (ho, _) = self.parts
            co = self.parts[0].shape[0]
            self._sparse[part] = _conv_per_source(self.parts, self.kernel_cum, self.conn.conv_groups, 0, 0,
                                                  [_box(part, co, ho)])
        return self._sparse[part]

    def dense_span(self, lo: int, hi: int) -> np.ndarray | None:
        """Dense connections: per source, targets from its first to its last non-zero synapse in ``lo..hi-1``."""
        if self.conn.kind != "dense":
            return None
        if self.tables is not None:
            first, last = self.tables[1][lo], self.tables[2][hi - 1]
            return np.where(first < hi, last - first + 1, 0)
        m = self.mask[lo:hi]
        any_ = m.any(axis=0)
        first = np.argmax(m, axis=0)
        last = m.shape[0] - 1 - np.argmax(m[::-1], axis=0)
        return np.where(any_, last - first + 1, 0)


def _list_bits_of(entries: np.ndarray, bits_per_entry: int, cap: int, head: int, word: int) -> np.ndarray:
    full, rem = entries // cap, entries % cap
    full_bits = -(-(cap * bits_per_entry + head) // word) * word
    rem_bits = np.where(rem > 0, -(-(rem * bits_per_entry + head) // word) * word, 0)
    return full * full_bits + rem_bits


_LIST_BITS: dict[tuple, np.ndarray] = {}     # (list format, entry bits) -> bits of a list of 0, 1, 2, ... entries


def _list_bits(entries: np.ndarray, bits_per_entry: int, chip: Chip) -> np.ndarray:
    """Bits of the synapse lists holding ``entries`` entries each (0 entries -> 0 bits).

    ``ceil((min(e, cap) x bits_per_entry + header) / word) x word`` per list of at most ``cap`` entries,
    looked up in a table of those bits per entry count (a core checks thousands of candidate ranges)."""
    entries = np.asarray(entries, dtype=np.int64)
    key = (chip["synapse.list_max_entries"], chip["synapse.list_header_bits"], chip["synapse.word_bits"], bits_per_entry)
    table = _LIST_BITS.get(key)
    top = int(entries.max(initial=0))
    if table is None or table.size <= top:
        table = _LIST_BITS[key] = _list_bits_of(np.arange(max(2 * top + 2, 1024)), bits_per_entry, *key[:3])
    return table[entries]


def index_bits(neurons: int, chip: Chip) -> int:
    need = max(1, math.ceil(math.log2(max(neurons, 1))))
    return int(min(max(need, chip["synapse.index_bits_min"]), chip["synapse.index_bits_max"]))


@dataclass(frozen=True)
class CoreUse:
    """What a range of one layer needs on one core (``units``: synaptic memory in the compiler's units, where the
    chip gives ``core.synmem_units``; ``delay_use``: neurons x delay slots, where its synapses carry delays)."""

    neurons: int
    synapses: int
    fan_in_axons: int
    memory_bytes: int
    units: int = 0
    delay_use: int = 0
    stored: int = -1        # synapse entries held (a shared kernel's, not its connections); -1: ``synapses``

    @property
    def stored_synapses(self) -> int:
        return self.synapses if self.stored < 0 else self.stored


def _delay_slots(max_delay: int) -> int:
    """Delay slots of a ring buffer holding delays 0..max_delay: the next power of two."""
    return 1 << max(0, math.ceil(math.log2(max_delay + 1)))


def core_use(incoming: list[_Incoming], lo: int, hi: int, chip: Chip,
             tile: tuple | None = None) -> tuple[CoreUse, list[np.ndarray] | None]:
    """Neurons, synapses, fan-in axons and synaptic memory of targets ``lo..hi-1``, and per connection
    ``(source neurons with synapses onto the range, their synapse counts)`` (the core's column of the
    routing table). ``tile=(C, H, x0, x1)``: instead, every channel and row of output columns ``x0..x1-1`` of a
    (C, H, W) layer (a W-cut core; no columns returned); ``tile=(C, H, part)`` with a box part
    ``("t", c0, c1, y0, y1, x0, x1)``: that box's neurons."""
    wbits = chip["synapse.weight_bits"]
    dpu = chip.get("synapse.dense_per_unit")
    ubits = chip.get("synapse.kernel_unit_bits", chip["synapse.word_bits"])
    syn = axons = bits = units = 0
    stored = 0
    max_delay = -1
    columns = [] if tile is None else None
    part = None if tile is None else (tile[2] if len(tile) == 3 else ("w", tile[2], tile[3]))
    if part is not None:
        c0, c1, y0, y1, x0, x1 = _box(part, tile[0], tile[1])
        n = (c1 - c0) * (y1 - y0) * (x1 - x0)
    else:
        n = hi - lo
    for inc in incoming:
        if part is not None:
            if inc.conn.kind == "dense":
                raise NeurokdError(f"connection {inc.conn.name!r}: a dense connection into a tile-cut layer")
            nz, per = inc.sparse_part(part)
            out_channels = c1 - c0
        else:
            nz, per = inc.sparse(lo, hi)
            columns.append((nz, per))
            if inc.conn.kind != "dense":
                plane = math.prod(inc.parts[-1])
                out_channels = (hi - 1) // plane - lo // plane + 1
            else:
                out_channels = n
        if inc.storage == "bias":                  # input taken as bias: no synapse, axon or memory
            continue
        dbits = chip["synapse.delay_bits"] if inc.delayed else 0
        if inc.delayed:
            max_delay = max(max_delay, inc.max_delay)
        syn += int(per.sum())
        ibits = index_bits(n, chip)
        cost = _list_bits(per, wbits + ibits + dbits, chip)
        if inc.storage in ("shared", "population"):
            in_c, in_h, in_w = inc.parts[1]
            mask = inc.parts[0]
            taps = mask.shape[1] * mask.shape[2] * mask.shape[3]  # (C_in / groups) x kh x kw
            if inc.storage == "shared":
                kbits = inc.kernel_weight_bits(chip)
                words = -(-(out_channels * kbits) // ubits)
                bits += taps * words * ubits
                units += taps * words
                stored += taps * out_channels
                axons += int(np.unique(nz % (in_h * in_w)).size)  # one axon per input position (all channels)
                continue
            entries = taps * out_channels
            pop_bits = inc.border_classes() * int(_list_bits(np.array([entries]), wbits + ibits + dbits, chip)[0])
            if pop_bits <= int(cost.sum()):                # else the builder falls back to one axon per source
                bits += pop_bits
                stored += inc.border_classes() * entries
                axons += int(np.unique(nz % (in_h * in_w)).size)
                continue
        stored += int(per.sum())
        span = inc.dense_span(lo, hi) if tile is None else None
        if span is not None:
            cost = np.minimum(cost, _list_bits(span[nz], wbits + dbits, chip))
        if dpu:                                    # every neuron of the core, per axon with a synapse onto it
            units += int(nz.size) * -(-n // dpu)
        axons += int(nz.size)
        bits += int(cost.sum())
    delay_use = n * _delay_slots(max_delay) if max_delay >= 0 else 0
    return CoreUse(n, syn, axons, -(-bits // 8), units, delay_use, stored), columns


# --------------------------------------------------------------------------------------------------
# The placement
# --------------------------------------------------------------------------------------------------

@dataclass
class Core:
    """One core of the placement: where it is and what it holds (one row of ``mapping.csv``)."""

    core: int
    chip: int
    tile: int            # tile index within its chip
    x: int               # global mesh column (chips side by side along x)
    y: int
    layer: str           # IR layer
    population: str      # the geometry's population (``<layer>.out`` for a readout without neuron)
    lo: int              # flat neuron range [lo, hi) (a W tile: its first and last neuron + 1, not all between)
    hi: int
    synapses: int
    memory_bytes: int
    fan_in_axons: int
    fan_out_axons: int = 0
    synmem_units: int = 0    # synaptic memory in the compiler's units, where the chip gives core.synmem_units
    # a W-cut core: (C, H, W, x0, x1), columns x0..x1-1; a box-cut core (core.conv_cut_tiles):
    # (C, H, W, c0, c1, y0, y1, x0, x1)
    block: tuple[int, ...] | None = None

    @property
    def neurons(self) -> int:
        if self.block is not None:
            c0, c1, y0, y1, x0, x1 = _box(self.part, *self.block[:2])
            return (c1 - c0) * (y1 - y0) * (x1 - x0)
        return self.hi - self.lo

    @property
    def part(self) -> tuple:
        """``(lo, hi)``, ``("w", x0, x1)`` for a W-cut core, ``("t", c0, c1, y0, y1, x0, x1)`` for a box."""
        if self.block is None:
            return (self.lo, self.hi)
        return ("w", self.block[3], self.block[4]) if len(self.block) == 5 else ("t", *self.block[3:])

    def indices(self) -> np.ndarray:
        """The core's neurons, flat (C, H, W) indices, ascending: a range, a W tile's (C, H, columns) block or a
        box's (channels, rows, columns)."""
        if self.block is None:
            return np.arange(self.lo, self.hi)
        c0, c1, y0, y1, x0, x1 = _box(self.part, *self.block[:2])
        return _flat_index(*self.block[:3])[c0:c1, y0:y1, x0:x1].reshape(-1)

    @property
    def neuron_range(self) -> str:
        """``lo-last`` for a range; ``w x0-x1`` (columns, every channel and row) for a W-cut core; ``c c0-c1 y y0-y1
        x x0-x1`` for a box."""
        if self.block is not None:
            if len(self.block) == 5:
                return f"w {self.block[3]}-{self.block[4] - 1}"
            c0, c1, y0, y1, x0, x1 = self.block[3:]
            return f"c {c0}-{c1 - 1} y {y0}-{y1 - 1} x {x0}-{x1 - 1}"
        return f"{self.lo}-{self.hi - 1}"

    def row(self) -> dict:
        return {"core": self.core, "chip": self.chip, "tile": self.tile, "x": self.x, "y": self.y,
                "layer": self.layer, "neuron_range": self.neuron_range, "neurons": self.neurons,
                "synapses": self.synapses, "synaptic_memory_bytes": self.memory_bytes,
                "fan_in_axons": self.fan_in_axons, "fan_out_axons": self.fan_out_axons}


MAPPING_COLUMNS = ("core", "chip", "tile", "x", "y", "layer", "neuron_range", "neurons", "synapses",
                   "synaptic_memory_bytes", "fan_in_axons", "fan_out_axons")


@dataclass
class Placement:
    """Cores of a network on a chip (module docstring).

    ``routes[conn]``: ``(n_src, cores of the target)`` sparse (CSR) int synapses from each source neuron onto each
    core of the connection's target (the routing table the cost model sends messages by);
    ``layer_cores[population]``: that population's core ids in neuron order; ``input_xy``: where the
    host's input enters the mesh.
    """

    chip: Chip
    placer: str
    options: dict
    geometry: Geometry
    cores: list[Core]
    layer_cores: dict[str, list[int]]
    routes: dict[str, "scipy.sparse.csr_matrix"]
    input_xy: tuple[int, int] = (0, 0)
    notes: list[str] = field(default_factory=list)

    @property
    def n_cores(self) -> int:
        return len(self.cores)

    @property
    def n_chips(self) -> int:
        return 1 + max((c.chip for c in self.cores), default=0)

    @property
    def tiles_used(self) -> int:
        return len({(c.chip, c.tile) for c in self.cores})

    def cores_of(self, population: str) -> list[Core]:
        return [self.cores[i] for i in self.layer_cores[population]]

    def rows(self) -> list[dict]:
        return [c.row() for c in self.cores]

    def to_dict(self) -> dict:
        lim = ("core.neurons", "core.synaptic_memory_bytes", "core.fan_in_axons", "core.fan_out_axons", "core.synapses",
               "core.synmem_units", "core.delay_slots")
        busiest = {k: max(self.cores, key=lambda c: getattr(c, a)).core if self.cores else None
                   for k, a in (("neurons", "neurons"), ("synaptic_memory_bytes", "memory_bytes"),
                                ("fan_in_axons", "fan_in_axons"), ("fan_out_axons", "fan_out_axons"))}
        return {
            "chip": self.chip.name, "chip_title": self.chip.title, "chip_file": self.chip.path,
            "placer": self.placer, "options": dict(self.options),
            "cores": self.n_cores, "chips": self.n_chips, "tiles": self.tiles_used,
            "cores_per_chip": self.chip.cores_per_chip,
            "mesh": {k.split(".", 1)[1]: self.chip[k] for k in ("mesh.cores_per_chip", "mesh.cores_per_tile",
                                                               "mesh.tiles_x", "mesh.tiles_y")},
            "layers": {pop: {"cores": len(ids), "first_core": ids[0], "last_core": ids[-1],
                             **({"max_synmem_units": max(self.cores[i].synmem_units for i in ids)}
                                if "core.synmem_units" in self.chip.figures else {})}
                       for pop, ids in self.layer_cores.items()},
            "fullest_core": busiest,
            "input": {"enters_at_xy": list(self.input_xy), "note": "the host's input enters the mesh at this tile"},
            "limits": {k: {"value": self.chip[k], "status": self.chip.fig(k).status, "source": self.chip.fig(k).source,
                           "reference": self.chip.sources[self.chip.fig(k).source], "note": self.chip.fig(k).note}
                       for k in lim if k in self.chip.figures},
            "synapse_format": {k: self.chip[k] for k in self.chip.figures if k.startswith("synapse.")},
            "stand_in_figures": [f.key for f in self.chip.stand_ins()],
            "fitted_figures": [f.key for f in self.chip.fitted()],
            "notes": list(self.notes),
        }


def _position(index: int, chip: Chip) -> tuple[int, int, int, int]:
    """Global core index -> (chip, tile within chip, mesh x, mesh y); tiles in snake order."""
    per_chip, per_tile, tx = chip.cores_per_chip, chip["mesh.cores_per_tile"], chip["mesh.tiles_x"]
    c, local = divmod(index, per_chip)
    tile = local // per_tile
    row, col = divmod(tile, tx)
    if row % 2:
        col = tx - 1 - col
    return c, tile, c * tx + col, row


def _granularities(shape: tuple[int, ...]) -> list[int]:
    """Cut sizes from coarse to fine: a channel, a row of a channel, one neuron."""
    out = []
    if len(shape) >= 2:
        out.append(math.prod(shape[1:]))
    if len(shape) == 3:
        out.append(shape[2])
    out.append(1)
    return sorted(set(out), reverse=True)


class _LayerSplitter:
    """Cuts one population into core-sized ranges (module docstring: Splitting)."""

    LIMITS = (("core.neurons", "neurons"), ("core.fan_in_axons", "fan_in_axons"),
              ("core.synaptic_memory_bytes", "memory_bytes"), ("core.synapses", "stored_synapses"),
              ("core.synmem_units", "units"), ("core.delay_slots", "delay_use"))

    def __init__(self, layer: str, population: str, shape: tuple[int, ...], incoming: list[_Incoming], chip: Chip):
        self.layer, self.population, self.shape, self.incoming, self.chip = layer, population, shape, incoming, chip
        self.size = math.prod(shape)
        self.levels = _granularities(shape)
        self._cache: dict[tuple[int, int], tuple[CoreUse, str | None]] = {}
        # the compiler's unit budget, where the chip gives one, bounds synaptic memory instead of bytes
        skip = {"core.synaptic_memory_bytes"} if "core.synmem_units" in chip.figures else set()
        self.limits = tuple((lim, attr, chip[lim]) for lim, attr in self.LIMITS if lim in chip.figures and lim not in skip)
        self.cut_w = bool(chip.opt("core.conv_cut_w")) and len(shape) == 3 and \
            all(inc.conn.kind != "dense" for inc in incoming)
        self.ratio_split = bool(chip.opt("core.ratio_split")) and len(shape) == 1
        convs = [inc for inc in incoming if inc.conn.kind != "dense" and inc.storage != "bias"]
        self.cut_tiles = bool(chip.opt("core.conv_cut_tiles")) and len(shape) == 3 and bool(convs) and \
            all(inc.conn.kind != "dense" for inc in incoming)
        # channel-wise (depthwise, pooling: each output channel reads one input channel) or a standard convolution
        self.channelwise = bool(convs) and all(inc.conn.conv_groups == inc.parts[1][0] > 1 for inc in convs)

    def _judge(self, use: CoreUse) -> str | None:
        for lim, attr, value in self.limits:
            if getattr(use, attr) > value:
                return lim
        return None

    def ratio(self, lo: int, hi: int) -> float:
        """The largest ``use / budget`` of the chip's limits on targets ``lo..hi-1``."""
        use = self.check(lo, hi)[0]
        return max(getattr(use, attr) / value for _, attr, value in self.limits)

    def use_of(self, part: tuple) -> tuple[CoreUse, str | None]:
        """:meth:`check` of a range ``(lo, hi)`` or a W tile ``("w", x0, x1)``."""
        if not _is_tile(part):
            return self.check(*part)
        if part not in self._cache:
            c, h, _ = self.shape
            tile = (c, h, part[1], part[2]) if part[0] == "w" else (c, h, part)
            use, _ = core_use(self.incoming, 0, 0, self.chip, tile=tile)
            self._cache[part] = (use, self._judge(use))
        return self._cache[part]

    def indices(self, part: tuple) -> "np.ndarray | slice":
        """The neurons of a part: a slice for a range, the flat indices of a W tile's block."""
        if not _is_tile(part):
            return slice(*part)
        c0, c1, y0, y1, x0, x1 = _box(part, *self.shape[:2])
        return _flat_index(*self.shape)[c0:c1, y0:y1, x0:x1].reshape(-1)

    def block(self, part: tuple) -> tuple[int, ...] | None:
        """A W tile's ``(C, H, W, x0, x1)`` or a box's ``(C, H, W, c0, c1, y0, y1, x0, x1)`` (:attr:`Core.block`),
        None for a range."""
        return (*self.shape, *part[1:]) if _is_tile(part) else None

    def bounds(self, part: tuple) -> tuple[int, int]:
        """``(first neuron, last + 1)`` of a part (:attr:`Core.lo`, :attr:`Core.hi`)."""
        if not _is_tile(part):
            return part
        _, h, w = self.shape
        c0, c1, y0, y1, x0, x1 = _box(part, *self.shape[:2])
        return (c0 * h + y0) * w + x0, ((c1 - 1) * h + y1 - 1) * w + x1

    def check(self, lo: int, hi: int) -> tuple[CoreUse, str | None]:
        """``(use, first limit key exceeded or None)``."""
        key = (lo, hi)
        if key not in self._cache:
            use, _ = core_use(self.incoming, lo, hi, self.chip)
            self._cache[key] = (use, self._judge(use))
        return self._cache[key]

    def split_w(self) -> list[tuple]:
        """The W-cut (``core.conv_cut_w``): the widest power-of-two tile of output columns (not above W) whose every
        channel and row fit a core; one core per tile, a part ``("w", x0, x1)`` holding the tile's own neurons (every
        channel and row of columns ``x0..x1-1``, not a range of the flat (C, H, W) order)."""
        w = self.shape[2]
        t = 1 << (w.bit_length() - 1)                 # the widest power of two not above W
        while t >= 1:
            parts = [("w", x0, min(x0 + t, w)) for x0 in range(0, w, t)]
            if all(self.use_of(part)[1] is None for part in parts):
                return parts
            t //= 2
        return []                                      # one column does not fit: the generic cut

    def split_tiles(self) -> list[tuple]:
        """The box cut (``core.conv_cut_tiles``, NxTF's partitioner): the layer's (C, H, W) volume in ``n_c x n_y x
        n_x`` boxes of ``ceil(C / n_c) x ceil(H / n_y) x ceil(W / n_x)`` (counts whose boxes leave none empty), the
        candidates in order of their number of cores, and among equal counts in NxTF's enumeration order: a
        standard convolution's channel count varies slowest (its channels are cut last: every channel of a
        position reads every input channel), a channel-wise layer's (depthwise, pooling) fastest; the first
        candidate whose every box fits a core. Parts ``("t", c0, c1, y0, y1, x0, x1)``."""
        c, h, w = self.shape
        cap = self.chip["core.neurons"]
        need = -(-self.size // cap)
        axes = (1, 2, 0) if self.channelwise else (0, 1, 2)          # (C, H, W) axes, slowest first
        counts = []
        for a in range(1, self.shape[axes[0]] + 1):
            for b in range(1, self.shape[axes[1]] + 1):
                for d in range(1, self.shape[axes[2]] + 1):
                    n = [0, 0, 0]
                    n[axes[0]], n[axes[1]], n[axes[2]] = a, b, d
                    if n[0] * n[1] * n[2] < need:
                        continue
                    box = [-(-dim // k) for dim, k in zip(self.shape, n)]
                    if box[0] * box[1] * box[2] > cap or any(-(-dim // t) != k for dim, t, k in zip(self.shape, box, n)):
                        continue
                    counts.append((n[0] * n[1] * n[2], len(counts), box))
        for _, _, (tc, ty, tx) in sorted(counts):
            parts = [("t", c0, min(c0 + tc, c), y0, min(y0 + ty, h), x0, min(x0 + tx, w))
                     for c0 in range(0, c, tc) for y0 in range(0, h, ty) for x0 in range(0, w, tx)]
            if all(self.use_of(part)[1] is None for part in parts):
                return parts
        return []                                      # no box fits: the generic cut

    def split_ratio(self) -> list[tuple[int, int]]:
        """The ratio cut (``core.ratio_split``): ``k = ceil(use / budget)`` equal parts of the whole layer; while a
        part is over a budget, ``k`` times that part's own ``ceil(ratio)``."""
        k = max(1, math.ceil(self.ratio(0, self.size)))
        while True:
            k = min(k, self.size)
            edges = np.linspace(0, self.size, k + 1).round().astype(int)
            ranges = [(int(a), int(b)) for a, b in zip(edges[:-1], edges[1:])]
            worst = max(self.ratio(a, b) for a, b in ranges)
            if worst <= 1:
                return ranges
            if k == self.size:
                self.refuse_single(next(a for a, b in ranges if self.check(a, b)[1] is not None))
            k *= math.ceil(worst)

    def refuse_single(self, lo: int) -> None:
        use, bad = self.check(lo, lo + 1)
        attr = dict(self.LIMITS)[bad]
        value = getattr(use, attr)
        what = {"core.neurons": "neurons", "core.fan_in_axons": "fan-in of", "core.synaptic_memory_bytes":
                "synaptic memory of", "core.synapses": "synapses of", "core.synmem_units": "synaptic memory of",
                "core.delay_slots": "delay buffer of"}[bad]
        unit = {"core.fan_in_axons": "axons", "core.synaptic_memory_bytes": "bytes", "core.synapses": "synapses",
                "core.neurons": "", "core.synmem_units": "units", "core.delay_slots": "neuron x delay slots"}[bad]
        raise NeurokdError(
            f"layer {self.layer!r}: neuron {lo} alone does not fit a core: its {what} {value:,} {unit} is above "
            f"{self.chip.limit_text(bad)} by {value - self.chip[bad]:,}".replace("  ", " ")
        )

    def split(self, cap=None) -> list[tuple]:
        """Ranges covering the layer; ``cap(lo, hi) -> bool`` is an extra bound (the balance placer's load).

        Each range is the largest fitting candidate end of the coarsest level at which one unit fits. Limits
        (and ``cap``) are monotone in ``hi``, so the search may start anywhere: it starts at the size of the
        previous core cut at that level (cores of a layer are mostly alike: two checks when it, or one unit
        less, is again the answer), steps down by 1, 2, 4, ... while that does not fit, then gallops up
        (1, 2, 4, ...) and bisects, so evaluations stay near the final core's size (their cost grows with
        the range). Chips with the compiler's cuts (``core.conv_cut_w``, ``core.ratio_split``) are cut that way
        under ``pack`` (no ``cap``)."""
        if cap is None and self.cut_w:
            ranges = self.split_w()
            if ranges:
                return ranges
        if cap is None and self.cut_tiles:
            ranges = self.split_tiles()
            if ranges:
                return ranges
        if cap is None and self.ratio_split:
            return self.split_ratio()
        ranges = []
        lo = 0
        last: dict[int, int] = {}                         # level -> candidate index the previous core took
        while lo < self.size:
            hi = None
            for g in self.levels:
                first = (lo // g + 1) * g                  # candidate ends: first, first + g, ..., the layer's end
                count = -(-(self.size - first) // g) + 1 if first < self.size else 1

                def cand(j: int, first=first, g=g) -> int:
                    return min(first + j * g, self.size)

                def fits(j: int) -> bool:
                    return self.check(lo, cand(j))[1] is None

                def ok(j: int) -> bool:                    # the load bound first: it costs no range check
                    return (cap is None or cap(lo, cand(j))) and fits(j)

                guess = min(last.get(g, 0), count - 1)
                good, bad = 0, count                       # ok(good) holds (or good == 0), ok(bad) does not
                j, step = guess, 1
                while j >= 1:                              # the previous core's size, then down by 1, 2, 4, ...
                    if ok(j):
                        good = j                           # (so one unit fits too)
                        break
                    bad, j, step = j, guess - step, step * 2
                if not good and not fits(0):
                    continue                               # not even one unit of this size fits
                good = _largest(ok, good, bad)
                end = cand(good)
                if cap is not None and not cap(lo, end) and g != 1:
                    continue                               # one unit is over the load bound: cut finer
                last[g] = good
                hi = end
                break
            if hi is None:
                self.refuse_single(lo)
            ranges.append((lo, hi))
            lo = hi
        return ranges


def _largest(ok, good: int, bad: int) -> int:
    """The largest ``j`` in ``good..bad-1`` with ``ok(j)``, for a monotone ``ok`` that holds at ``good`` (or
    ``good`` itself): gallop up from ``good`` (+1, +2, +4, ...), then bisect."""
    step, j = 1, good + 1
    while j < bad and ok(j):
        good, step = j, step * 2
        j = good + step
    a, b = good + 1, min(j, bad) - 1
    while a <= b:
        mid = (a + b) // 2
        if ok(mid):
            good, a = mid, mid + 1
        else:
            b = mid - 1
    return good


CONV_STORAGE = {0: "connection", 1: "shared", 2: "population"}


def is_identity(conn: Connection) -> bool:
    """A connection that hands each source value to one target unchanged: a 1x1 depthwise convolution of ones
    (stride 1, no padding) or a dense identity matrix (how a netx input layer with a neuron is fed)."""
    w = None if conn.weight is None else np.asarray(conn.weight)
    if w is None:
        return False
    if conn.kind == "dense":
        return w.shape[0] == w.shape[1] and np.array_equal(w, np.eye(w.shape[0]))
    c = conn.input_shape[0]
    return (conn.conv_groups == c and w.shape[:2] == (c, 1) and all(k == 1 for k in w.shape[2:]) and np.all(w == 1)
            and all(s == 1 for s in conn.strides()) and all(p == (0, 0) for p in conn.pads()))


def _storage(conn: Connection, source, chip: Chip) -> str:
    """How ``conn``'s synapses are stored on ``chip`` (module docstring: Synaptic memory)."""
    if not source.stateful and is_identity(conn):
        return "bias"                   # the host writes each value into its neuron: no synapse on chip
    if conn.kind == "dense":
        return "connection"
    return CONV_STORAGE.get(int(chip.opt("synapse.conv_storage")), "connection")


def _splitters(geometry: Geometry, network: Network | None, chip: Chip) -> list[_LayerSplitter]:
    pops = {p.name: p for p in geometry.populations}
    layer_of = {}
    if network is not None:
        for lay in network.layers:
            layer_of[lay.name if lay.name in pops else f"{lay.name}.out"] = lay.name
    out = []
    for p in geometry.populations:
        if not p.stateful:
            continue                                # the input comes from the host
        incoming = [_Incoming(c, pops[c.source].size, p.size, c.delays is not None and bool(np.any(c.delays)),
                              _storage(c, pops[c.source], chip),
                              int(np.max(c.delays)) if c.delays is not None and np.size(c.delays) else 0)
                    for c in geometry.incoming(p.name)]
        out.append(_LayerSplitter(layer_of.get(p.name, p.name), p.name, p.shape, incoming, chip))
    return out


def _assemble(splitters, ranges: dict[str, list[tuple[int, int]]], geometry: Geometry, chip: Chip,
              max_chips: int, placer: str, options: dict) -> Placement:
    total_cap = max_chips * chip.cores_per_chip
    cores: list[Core] = []
    layer_cores: dict[str, list[int]] = {}
    needed = sum(len(ranges[sp.population]) for sp in splitters)
    for sp in splitters:
        rs = ranges[sp.population]
        if len(cores) + len(rs) > total_cap:
            first = len(cores)
            raise NeurokdError(
                f"layer {sp.layer!r} needs cores {first}-{first + len(rs) - 1} ({len(rs)} cores for {sp.size:,} neurons), "
                f"past {chip.name}'s {chip.cores_per_chip} cores per chip x {max_chips} chip(s) = {total_cap} cores: "
                f"the network needs {needed} cores, {needed - total_cap} over (allow more chips: max_chips / --chips)"
            )
        ids = []
        for part in rs:
            use, bad = sp.use_of(part)
            assert bad is None
            idx = len(cores)
            c, tile, x, y = _position(idx, chip)
            cores.append(Core(idx, c, tile, x, y, sp.layer, sp.population, *sp.bounds(part), use.synapses,
                              use.memory_bytes, use.fan_in_axons, synmem_units=use.units, block=sp.block(part)))
            ids.append(idx)
        layer_cores[sp.population] = ids
    # routing tables and fan-out
    routes: dict[str, scipy.sparse.csr_matrix] = {}
    by_pop = {sp.population: sp for sp in splitters}
    src_core: dict[str, np.ndarray] = {}
    for pop, ids in layer_cores.items():
        owner = np.empty(by_pop[pop].size, dtype=np.int64)
        for i in ids:
            owner[by_pop[pop].indices(cores[i].part)] = i
        src_core[pop] = owner
    for sp in splitters:
        for inc in sp.incoming:
            column = [inc.sparse_part(cores[i].part) for i in layer_cores[sp.population]]
            table = scipy.sparse.csc_matrix(                # each core's column of sources, as it was counted
                (np.concatenate([per for _, per in column]).astype(np.int32), np.concatenate([nz for nz, _ in column]),
                 np.concatenate([[0], np.cumsum([nz.size for nz, _ in column])])),
                shape=(inc.n_src, len(column))).tocsr()
            routes[inc.conn.name] = table
            if inc.conn.source in src_core:            # fan-out of the source's cores (the host has no limit)
                dests = np.diff(table.indptr)
                if not chip.get("core.fan_out_per_core", 1):
                    dests = np.minimum(dests, 1)        # one output axon per neuron and connection (multicast)
                fan = np.bincount(src_core[inc.conn.source], weights=dests, minlength=len(cores))
                for i in np.nonzero(fan)[0]:
                    cores[i].fan_out_axons += int(fan[i])
    lim = chip["core.fan_out_axons"]
    for c in cores:
        if c.fan_out_axons > lim:
            raise NeurokdError(
                f"layer {c.layer!r}: core {c.core} (neurons {c.neuron_range}) sends to {c.fan_out_axons:,} "
                f"(neuron, destination core) pairs, above {chip.limit_text('core.fan_out_axons')} by {c.fan_out_axons - lim:,}"
            )
    notes = ["one layer per core; ranges of the flat (C, H, W) neuron order"
             + ("; a W-cut core holds every channel and row of a tile of columns (neuron_range `w x0-x1`)"
                if any(c.block is not None and len(c.block) == 5 for c in cores) else "")
             + ("; a box-cut core holds a box of channels, rows and columns (neuron_range `c c0-c1 y y0-y1 x x0-x1`)"
                if any(c.block is not None and len(c.block) == 9 for c in cores) else "")
             + "; cores numbered in layer order, tiles in snake order, chips side by side along x",
             "the input is sent by the host and enters the mesh at tile (0, 0) of chip 0"]
    return Placement(chip, placer, options, geometry, cores, layer_cores, routes, (0, 0), notes)


def _fanout_per_neuron(sp: "_LayerSplitter", splitters, ranges: dict[str, list[tuple[int, int]]]) -> np.ndarray:
    """Per neuron of ``sp``: (outgoing connection, destination core) pairs holding one of its non-zero targets."""
    f = np.zeros(sp.size, dtype=np.int64)
    per_core = bool(sp.chip.get("core.fan_out_per_core", 1))
    for tg in splitters:
        for inc in tg.incoming:
            if inc.conn.source != sp.population:
                continue
            if per_core:
                for part in ranges[tg.population]:
                    f[inc.sparse_part(part)[0]] += 1
            else:                                       # one per neuron and connection, whatever the cores
                hit = np.zeros(sp.size, dtype=bool)
                for part in ranges[tg.population]:
                    hit[inc.sparse_part(part)[0]] = True
                f += hit
    return f


def _split_tile_for_fanout(sp: "_LayerSplitter", part: tuple, f: np.ndarray, lim: int) -> list[tuple]:
    """A W tile over ``core.fan_out_axons`` cut into narrower tiles of whole columns, left to right; a box, in
    halves along its longest axis until each half fits."""
    if part[0] == "t":
        if int(f[sp.indices(part)].sum()) <= lim:
            return [part]
        c0, c1, y0, y1, x0, x1 = part[1:]
        lo, hi = [c0, y0, x0], [c1, y1, x1]
        a = max(range(3), key=lambda i: hi[i] - lo[i])          # one neuron alone fits: _split_for_fanout checks
        mid = (lo[a] + hi[a]) // 2
        left, right = list(zip(lo, hi)), list(zip(lo, hi))
        left[a], right[a] = (lo[a], mid), (mid, hi[a])
        return [q for half in (left, right) for q in
                _split_tile_for_fanout(sp, ("t", *[v for pair in half for v in pair]), f, lim)]
    cols = f.reshape(sp.shape).sum(axis=(0, 1))
    out, start, acc = [], part[1], 0
    for x in range(part[1], part[2]):
        if cols[x] > lim:
            raise NeurokdError(
                f"layer {sp.layer!r}: column {x} (every channel and row, the W-cut's unit) sends to {int(cols[x]):,} "
                f"(neuron, destination core) pairs, above {sp.chip.limit_text('core.fan_out_axons')} by "
                f"{int(cols[x]) - lim:,} (set core.conv_cut_w = 0 in a chip file to cut the layer by ranges)")
        if acc + cols[x] > lim:
            out.append(("w", start, x))
            start, acc = x, 0
        acc += int(cols[x])
    out.append(("w", start, part[2]))
    return out


def _split_for_fanout(splitters, ranges: dict[str, list[tuple[int, int]]], chip: Chip) -> dict[str, list[tuple[int, int]]]:
    """Cut cores whose fan-out axons exceed ``core.fan_out_axons`` into neuron ranges that fit.

    A layer's fan-out depends on the cores of the layers it feeds, so layers are visited from the last
    to the first (and again while a recurrent edge changes something)."""
    lim = chip["core.fan_out_axons"]
    ranges = {k: list(v) for k, v in ranges.items()}
    for _ in range(8):
        changed = False
        for sp in reversed(splitters):
            f = _fanout_per_neuron(sp, splitters, ranges)
            if int(f.max(initial=0)) > lim:
                i = int(f.argmax())
                raise NeurokdError(
                    f"layer {sp.layer!r}: neuron {i} alone sends to {int(f[i]):,} (connection, destination core) pairs, "
                    f"above {chip.limit_text('core.fan_out_axons')} by {int(f[i]) - lim:,}"
                )
            out = []
            for part in ranges[sp.population]:
                if int(f[sp.indices(part)].sum()) <= lim:
                    out.append(part)
                    continue
                if _is_tile(part):
                    out.extend(_split_tile_for_fanout(sp, part, f, lim))
                    changed = True
                    continue
                lo, hi = part
                start, acc = lo, 0
                for i in range(lo, hi):
                    if acc + f[i] > lim:
                        out.append((start, i))
                        start, acc = i, 0
                    acc += int(f[i])
                out.append((start, hi))
                changed = True
            ranges[sp.population] = out
        if not changed:
            return ranges
    return ranges


def place(network: Network | None, chip: "Chip | str", placer: str = "pack", geometry: Geometry | None = None,
          max_chips: int = 1, load: dict[str, np.ndarray] | None = None, max_cores: int | None = None) -> Placement:
    """Place ``network`` (or a counting ``geometry``) on ``chip`` (module docstring).

    ``max_chips``: chips available (the network is refused beyond them). ``load`` (balance only):
    ``{population: (neurons,) ns per step}``; ``max_cores`` (balance): the core budget, default the
    cores of the chips ``pack`` needs.
    """
    chip = load_chip(chip)
    if placer not in PLACERS:
        raise NeurokdError(f"placer must be one of {', '.join(PLACERS)}, got {placer!r}")
    if not isinstance(max_chips, int) or max_chips < 1:
        raise NeurokdError(f"max_chips must be a whole number >= 1, got {max_chips!r}")
    if geometry is None:
        if network is None:
            raise NeurokdError("place needs a network or a geometry")
        geometry = geometry_from_ir(network)
    splitters = _splitters(geometry, network, chip)
    packed = {sp.population: sp.split() for sp in splitters}
    options = {"max_chips": max_chips}
    if placer == "pack":
        return _assemble(splitters, _split_for_fanout(splitters, packed, chip), geometry, chip, max_chips, placer, options)
    if load is None:
        raise NeurokdError("the balance placer needs measured activity (load per neuron): run the network first")
    for sp in splitters:
        if sp.population not in load or np.asarray(load[sp.population]).size != sp.size:
            raise NeurokdError(f"load for population {sp.population!r} is missing or not one value per neuron")
    n_pack = sum(len(r) for r in packed.values())
    budget = max_cores or math.ceil(n_pack / chip.cores_per_chip) * chip.cores_per_chip
    budget = min(budget, max_chips * chip.cores_per_chip)
    if budget < n_pack:
        raise NeurokdError(f"max_cores {budget} is below the {n_pack} cores the network needs")
    prefix = {sp.population: np.concatenate([[0.0], np.cumsum(np.asarray(load[sp.population], dtype=np.float64))])
              for sp in splitters}

    def attempt(tau: float):
        out = {}
        total = 0
        for sp in splitters:
            p = prefix[sp.population]
            out[sp.population] = sp.split(cap=lambda lo, hi, p=p: p[hi] - p[lo] <= tau)
            total += len(out[sp.population])
            if total > budget:
                return None
        try:                                     # finer cuts of a layer's targets raise its fan-out: count those cores too
            out = _split_for_fanout(splitters, out, chip)
        except NeurokdError:                     # a neuron's fan-out past the limit at this cut: not a candidate
            return None
        return out if sum(len(rs) for rs in out.values()) <= budget else None

    by_pop = {sp.population: sp for sp in splitters}

    def part_load(pop: str, r: tuple) -> float:             # a range from the running sum, a W tile summed
        if _is_tile(r):
            return float(np.asarray(load[pop], dtype=np.float64)[by_pop[pop].indices(r)].sum())
        return prefix[pop][r[1]] - prefix[pop][r[0]]

    hi_tau = max(max(part_load(pop, r) for r in packed[pop]) for pop in prefix)
    lo_tau = max(float(np.max(np.asarray(load[sp.population]))) for sp in splitters)
    per_tile = chip["mesh.cores_per_tile"]

    def step_estimate(ranges) -> float:          # the busiest core's mean load + the barrier of the tiles used
        busiest = max(part_load(pop, r) for pop, rs in ranges.items() for r in rs)
        tiles = math.ceil(sum(len(rs) for rs in ranges.values()) / per_tile)
        return busiest + chip.barrier_ns(tiles)

    best, best_est, best_tau = packed, step_estimate(packed), hi_tau
    if hi_tau > lo_tau > 0:
        for k in range(1, 33):                   # load bounds on a geometric grid from pack's busiest core down
            tau = hi_tau * (lo_tau / hi_tau) ** (k / 32)
            got = attempt(tau)
            if got is None:
                break                            # fewer-load bounds need even more cores
            est = step_estimate(got)
            if est < best_est:
                best, best_est, best_tau = got, est, tau
    hi_tau = best_tau
    options.update({"max_cores": budget, "load_bound_ns_per_step": hi_tau,
                    "load": "ns of core time per neuron and step, measured (cost.neuron_load)"})
    return _assemble(splitters, _split_for_fanout(splitters, best, chip), geometry, chip, max_chips, placer, options)


__all__ = ["place", "Placement", "Core", "CoreUse", "core_use", "index_bits", "PLACERS", "MAPPING_COLUMNS"]
