"""The discretisation rule: each NIR neuron as the discrete update that Lava's LIF computes.

NIR neurons are continuous-time ODEs without a ``dt`` (ANCHORS.md §2.2). neurokd runs every graph
with one rule, the same one :mod:`neurokd.exporters.from_nir` states for PyTorch: forward Euler at
step ``dt``, with the time step chosen by :func:`neurokd.exporters.conventions.resolve_dt`
(argument, node or graph metadata, producer, export signature; ``IF``/``I`` need none).
The hardware side writes every neuron in Lava's two-state form (``lava.proc.lif``)::

    u[t] = (1 - du) u[t-1] + sum_synapses W s[t] + b_u       # synaptic current
    v[t] = (1 - dv) v[t-1] + u[t] + b_v                      # membrane, integrates this step's u
    s[t] = v[t] > vth ;  v[t] = 0 where s[t]                  # strict threshold, reset to zero

and folds each node's input gain into the weights of its incoming synapses (``W = gain * W_nir``):

=========  ===========  ================  ==============================  =========================
NIR node   du           dv                gain (into W and b)             b_v (per step)
=========  ===========  ================  ==============================  =========================
LIF        1            dt/tau            dt r / tau                      dt v_leak / tau
CubaLIF    dt/tau_syn   dt/tau_mem        (dt w_in/tau_syn)(dt r/tau_mem) dt v_leak / tau_mem
IF         1            0                 r   (one step per bin, no dt)   0
LI         1            dt/tau            dt r / tau                      dt v_leak / tau   (vth = inf)
CubaLI     dt/tau_syn   dt/tau_mem        as CubaLIF                      as CubaLIF        (vth = inf)
I          1            0                 r                               0                 (vth = inf)
=========  ===========  ================  ==============================  =========================

Why each line (``I[t]`` = the node's summed input):

* LIF, ``tau v' = v_leak - v + r I``: ``v[t] = (1 - dt/tau) v[t-1] + (dt r/tau) I[t] + (dt/tau) v_leak``.
  With ``du = 1``, ``u[t] = gain I[t]`` exactly. The neurokd student contract (``tau = dt/(1-beta)``,
  ``r = tau/dt``) gives ``dv = 1 - beta`` and ``gain = 1``: ``v = beta v + I``.
* CubaLIF, ``tau_syn i' = -i + w_in S``: ``i[t] = (1 - dt/tau_syn) i[t-1] + (dt w_in/tau_syn) I[t]``,
  ``v[t] = (1 - dt/tau_mem) v[t-1] + (dt r/tau_mem) i[t] + ...`` (the new ``i``, as snnTorch's
  ``Synaptic`` and Lava do). Lava's ``u`` is ``(dt r/tau_mem) i``; the scaling commutes with the
  decay, so both gains go into the weights. An Affine bias feeding a CubaLIF is filtered by the
  synapse: it stays a current bias ``b_u`` (Lava realises it as a synapse from an always-on source).
* IF / I (``v' = r I``): the frameworks that write them (Sinabs' IAF, Norse's IAFCell, snnTorch's
  ``beta = 1``, neurokd) add ``r I`` once per step with ``r = 1``, so ``dt`` is not used. Sinabs graphs
  (``cnn_sinabs.nir``) therefore need no dt; snnTorch ``Leaky`` exports need ``dt = 1e-4``; Norse's
  LIF uses the same Euler step, at ``dt = 1e-6`` for its writer (which multiplies tau by its own dt,
  ``conventions.PRODUCER_DT``; the NIR paper's LIF trace used 1e-4). SpikingJelly 2.0.0 is the
  exception: it writes ``IF(r = 1/dt)``, which the reader warns about
  (``conventions.semantics_warnings``).

Rounding: ``1 - du``, ``1 - dv`` and ``gain`` are computed in float64 and rounded once to float32,
as ``from_nir`` does; so a student's float32 ``beta`` comes back bit for bit
(``1 - dv == beta`` in float64) and ``gain`` is exactly 1.

Refused (:class:`NeurokdError` naming the node): ``tau <= 0``; ``dt/tau > 1`` (Euler would flip the
sign of the state every step); ``v_reset != 0`` (Lava resets to zero); a parameter that differs
between the neurons of one node where Lava has one value per population (``du``, ``dv``, ``vth``;
per-neuron ``gain`` and ``v_leak`` are fine); NaN or inf anywhere.

:func:`reference_run` steps these equations plainly in float64 over a :class:`~.ir.Network`: the
oracle the Lava ``floating_pt`` run is compared with.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import nir
import numpy as np

from neurokd.errors import NeurokdError

#: NIR node types that are neurons, by the name neurokd uses for them (``Neuron.kind``).
NEURON_KINDS: dict[type, str] = {
    nir.LIF: "lif", nir.CubaLIF: "cubalif", nir.IF: "if", nir.LI: "li", nir.CubaLI: "cubali", nir.I: "i",
}
SPIKING_KINDS = ("lif", "cubalif", "if")


@dataclass(frozen=True)
class Discrete:
    """One neuron node in Lava's form (module docstring): scalars per population, arrays per neuron."""

    kind: str
    du: float                 # current decay per step (1: no current state)
    dv: float                 # voltage decay per step
    vth: float                # threshold; inf for non-spiking nodes
    gain: np.ndarray          # per neuron (or scalar array): multiplies the incoming weights and biases
    b_v: np.ndarray           # per neuron (or scalar array): constant added to v each step
    dt: float | None          # the step used (None for IF / I)


class PassThrough:
    """An Input/Output node of an expanded subgraph, or ``nir.Identity``: passes its input on."""


def flatten(graph: nir.NIRGraph, prefix: str = "") -> tuple[dict, list, list, list]:
    """Expand subgraph nodes: ``(nodes, edges, inputs, outputs)`` with ``<graph>.<node>`` names.

    A subgraph's own Input/Output nodes and ``nir.Identity`` become :class:`PassThrough`; every edge
    must name nodes of its graph. Both NIR readers of neurokd (the IR and ``nir_to_torch``) start here.
    """
    nodes: dict[str, object] = {}
    edges: list[tuple[str, str]] = []
    entry: dict[str, list[str]] = {}
    exit_: dict[str, list[str]] = {}
    ins, outs = [], []
    for name, node in graph.nodes.items():
        full = prefix + str(name)
        if isinstance(node, nir.NIRGraph):
            sub_nodes, sub_edges, sub_in, sub_out = flatten(node, full + ".")
            for k in sub_in + sub_out:
                sub_nodes[k] = PassThrough()
            nodes.update(sub_nodes)
            edges += sub_edges
            entry[str(name)], exit_[str(name)] = sub_in, sub_out
        else:
            nodes[full] = PassThrough() if type(node).__name__ == "Identity" else node
            if isinstance(node, nir.Input):
                ins.append(full)
            elif isinstance(node, nir.Output):
                outs.append(full)
    for edge in graph.edges:
        if len(edge) != 2:
            raise NeurokdError(f"NIR edge {edge!r} does not have two ends")
        a, b = (e.decode() if isinstance(e, bytes) else str(e) for e in edge)
        for end in (a, b):
            if end not in graph.nodes and prefix + end not in nodes:
                raise NeurokdError(f"NIR edge ({a!r}, {b!r}) names node {end!r}, which is not in the graph")
        edges += [(s, d) for s in exit_.get(a, [prefix + a]) for d in entry.get(b, [prefix + b])]
    return nodes, edges, ins, outs


def param_array(node, name: str, field_: str, default=None) -> np.ndarray:
    """A NIR node's parameter as finite float64, or one clear error naming node, type and field.

    The one validation every NIR reader of neurokd applies (``neurokd.hardware.network.ir``,
    ``neurokd.exporters.from_nir``); ``default`` stands in for a missing (None) field.
    """
    value = getattr(node, field_, default)
    if value is None:
        if default is None:
            raise NeurokdError(f"NIR node {name!r} ({type(node).__name__}) has no {field_}")
        value = default
    try:
        arr = np.asarray(value, dtype=np.float64)
    except (TypeError, ValueError) as exc:
        raise NeurokdError(f"NIR node {name!r}: {field_} is not numeric") from exc
    if not np.all(np.isfinite(arr)):
        raise NeurokdError(f"NIR node {name!r} ({type(node).__name__}): {field_} holds NaN or inf")
    return arr


def positive_array(node, name: str, field_: str) -> np.ndarray:
    """:func:`param_array` for a field that must be > 0 everywhere (time constants, resistances)."""
    arr = param_array(node, name, field_)
    if np.any(arr <= 0):
        raise NeurokdError(f"NIR node {name!r} ({type(node).__name__}): {field_} must be > 0, min is {arr.min():.4g}")
    return arr


def int_tuple(value, n: int, name: str, what: str, minimum: int) -> tuple[int, ...]:
    """A NIR conv/pool geometry field (stride, padding, dilation, kernel) as ``n`` integers >= ``minimum``;
    a single value is repeated ``n`` times."""
    arr = np.asarray(value).reshape(-1)
    if arr.size == 1:
        arr = np.repeat(arr, n)
    if arr.size != n or not np.all(np.mod(arr.astype(np.float64), 1) == 0):
        raise NeurokdError(f"NIR node {name!r}: {what} {value!r} must be {n} integer(s)")
    out = tuple(int(v) for v in arr)
    if min(out) < minimum:
        raise NeurokdError(f"NIR node {name!r}: {what} {out} must be >= {minimum}")
    return out


def delay_steps(delay: np.ndarray, dt: float | None, name: str) -> np.ndarray:
    """A NIR ``Delay`` node's delays (seconds) as whole steps of ``dt`` (int64, same shape), the rule
    both readers (PyTorch and the hardware IR) use: ``d = delay / dt``, which must be whole."""
    delay = np.asarray(delay, dtype=np.float64)
    if not np.any(delay):
        return np.zeros(delay.shape, dtype=np.int64)
    if dt is None:
        raise NeurokdError(f"NIR node {name!r} (Delay) needs a time step dt")
    steps = delay / dt
    whole = np.round(steps)
    if np.any(np.abs(steps - whole) > 1e-6 * np.maximum(1.0, whole)):
        raise NeurokdError(f"NIR node {name!r} (Delay): delays {np.unique(delay)[:4]} s are not whole multiples "
                           f"of dt = {dt} s")
    return whole.astype(np.int64)


def _one_value(arr: np.ndarray, name: str, what: str) -> float:
    """Lava keeps ``du``, ``dv`` and ``vth`` once per population: all neurons must agree."""
    values = np.unique(arr)
    if values.size != 1:
        raise NeurokdError(
            f"NIR node {name!r}: {what} takes {values.size} different values ({values[:3]}...); Lava's LIF has one "
            "value per population; split the node or give its neurons one value"
        )
    return float(values[0])


def _f32(x: np.ndarray | float) -> np.ndarray:
    """Round once to float32 and back (the rounding ``from_nir`` applies to every coefficient)."""
    return np.asarray(x, dtype=np.float64).astype(np.float32).astype(np.float64)


def _decay(dt: float, tau: np.ndarray, name: str, what: str) -> float:
    if np.any(tau <= 0):
        raise NeurokdError(f"NIR node {name!r}: {what} must be > 0, min is {tau.min():.4g}")
    rate = dt / tau
    if np.any(rate > 1):
        raise NeurokdError(
            f"NIR node {name!r}: dt/{what} = {rate.max():.4g} > 1 at dt = {dt:g}: forward Euler would flip the sign "
            "of the state each step; run with a smaller dt"
        )
    keep = _one_value(_f32(1.0 - rate), name, f"1 - dt/{what}")   # decay factor, rounded like from_nir
    return 1.0 - keep


def discretise(name: str, node, dt: float | None) -> Discrete:
    """The Lava form of one NIR neuron node at step ``dt`` (formulas: module docstring)."""
    kind = NEURON_KINDS.get(type(node))
    if kind is None:
        raise NeurokdError(f"NIR node {name!r}: {type(node).__name__} is not a neuron")
    if kind in ("lif", "li", "cubalif", "cubali") and (dt is None or not math.isfinite(dt) or dt <= 0):
        raise NeurokdError(f"NIR node {name!r} ({type(node).__name__}) needs a time step dt > 0; pass dt")
    spiking = kind in SPIKING_KINDS
    if spiking:
        v_reset = getattr(node, "v_reset", None)
        if v_reset is not None and np.any(param_array(node, name, "v_reset") != 0):
            raise NeurokdError(
                f"NIR node {name!r}: v_reset = {np.unique(param_array(node, name, 'v_reset'))[:3]}; Lava's LIF resets to 0 only"
            )
        vth = _one_value(param_array(node, name, "v_threshold"), name, "v_threshold")
    else:
        vth = math.inf
    r = param_array(node, name, "r")
    if kind in ("if", "i"):
        return Discrete(kind, 1.0, 0.0, vth, _f32(r), np.zeros(1), None)   # v = v + r I
    tau = param_array(node, name, "tau_mem" if kind.startswith("cuba") else "tau")
    dv = _decay(dt, tau, name, "tau_mem" if kind.startswith("cuba") else "tau")
    gain = dt * r / tau                                           # dt r / tau
    b_v = dt / tau * param_array(node, name, "v_leak")                   # (dt / tau) v_leak
    du = 1.0
    if kind.startswith("cuba"):
        tau_syn = param_array(node, name, "tau_syn")
        du = _decay(dt, tau_syn, name, "tau_syn")
        gain = gain * (dt * param_array(node, name, "w_in", 1.0) / tau_syn)   # (dt w_in / tau_syn)(dt r / tau_mem)
    return Discrete(kind, du, dv, vth, _f32(gain), b_v, float(dt))


# --------------------------------------------------------------------------------------------------
# Reference: the equations above, stepped plainly in float64
# --------------------------------------------------------------------------------------------------

def reference_run(network, x: np.ndarray, timesteps: int | None = None) -> dict[str, np.ndarray]:
    """Step a :class:`~neurokd.hardware.network.ir.Network` in float64 without any hardware delay.

    ``x``: ``(N, *input_shape)`` (direct encoding, repeated for ``timesteps`` steps) or
    ``(N, T, *input_shape)``. Returns ``{layer: (N, T, size)}``: spikes (0/1) of spiking layers,
    the per-step value (``u`` for a readout without neuron, ``v`` for a non-spiking neuron) of the
    others, flattened in PyTorch (C, H, W) order. Slow and obvious on purpose: tests use it as the
    oracle for the Lava runs.
    """
    seq = network.input_sequence(x, timesteps)                # (N, T, *input_shape)
    n, steps = seq.shape[:2]
    out = {layer.name: np.zeros((n, steps, layer.size)) for layer in network.layers}
    state = {layer.name: (np.zeros((n, layer.size)), np.zeros((n, layer.size))) for layer in network.layers}
    for t in range(steps):
        now = {"__input__": seq[:, t].reshape(n, -1)}
        for layer in network.layers:
            a = np.zeros((n, layer.size))
            for syn in layer.synapses:
                if syn.recurrent:
                    src = out[syn.source][:, t - 1] if t > 0 else np.zeros((n, network.size_of(syn.source)))
                else:
                    src = now["__input__" if syn.source == network.input_name else syn.source]
                a += syn.apply(src.reshape(n, *syn.in_shape)).reshape(n, -1)
            neuron = layer.neuron
            u, v = state[layer.name]
            u = (1.0 - neuron.du) * u + a + neuron.b_u
            if neuron.kind == "none":
                value = u
            else:
                v = (1.0 - neuron.dv) * v + u + neuron.b_v
                if neuron.spiking:
                    value = (v > neuron.vth).astype(np.float64)
                    v = np.where(value > 0, 0.0, v)
                else:
                    value = v.copy()
            state[layer.name] = (u, v)
            out[layer.name][:, t] = value
            now[layer.name] = value
    return out
