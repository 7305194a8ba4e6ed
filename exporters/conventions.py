"""Time-step conventions of NIR graphs: which ``dt`` a graph is run with, and why.

NIR neurons are continuous-time ODEs and NIR has no ``dt`` field, so every framework picks its own
step when it writes or reads a graph (ANCHORS.md §2.3). neurokd runs a graph with the first of
these rules that applies (:func:`resolve_dt`):

1. the ``dt`` the caller passes (``nir_to_torch(graph, dt=...)``, ``neurokd import --dt``);
2. ``dt`` in a node's metadata (that node only), else ``dt`` in the graph's metadata: neurokd
   writes both (see :data:`GRAPH_METADATA_KEYS`);
3. a producer named by the caller or in the graph metadata (``"producer"``), looked up in
   :data:`PRODUCER_DT`;
4. the snnTorch / SpikingJelly export signature: every leaky node has ``r = tau_mem / dt`` (and
   every CubaLIF/CubaLI ``w_in = tau_syn / dt``) for ``dt = 1e-4``, the step both libraries
   hard-code (snnTorch) or default to (SpikingJelly) when they export. Such a graph has input
   gain ``dt * r / tau = 1`` only at that ``dt``, which is how it was trained;
5. a graph whose only dynamics are ``IF`` / ``I`` / ``Threshold`` / stateless nodes needs no
   ``dt`` at all (those neurons integrate ``r * I`` once per step, see ``from_nir``);
6. otherwise the graph is refused with a message asking for ``dt``.

Producer time steps (used by rule 3; sources are the released packages, ANCHORS.md §2.3):

=============  ========  ==========================================================================
producer       dt (s)    source
=============  ========  ==========================================================================
neurokd        metadata  written by :func:`neurokd.exporters.to_nir.student_to_nir` (default 1e-4)
snntorch       1e-4      snntorch 1.0.0 ``export_nir.py``: dt hard-coded to 1e-4
spikingjelly   1e-4      spikingjelly 2.0.0 ``export_to_nir(..., dt=1e-4)`` default
norse          1e-6      norse 1.1.0 ``to_nir(dt=0.001)`` writes ``tau = dt / tau_mem_inv``, i.e. its
                         time constant already multiplied by its own ``dt`` (``export_nir.py``); NIR's
                         Euler step ``dt_nir / tau`` equals Norse's ``dt * tau_mem_inv`` only at
                         ``dt_nir = dt^2 = 1e-6`` (measured: LIFBoxCell graphs spike for spike)
sinabs         1.0       Sinabs steps once per time bin; its graphs hold only IF/stateless nodes
rockpool       1e-3      rockpool 3.1.0 ``LIFTorch(dt=1e-3)`` default
=============  ========  ==========================================================================

The third-party graphs of ``shared/interop`` (NIR paper, ``github.com/neuromorphs/NIR/paper``):

=================================  =====  =========================================================
graph                              dt     why
=================================  =====  =========================================================
braille_noDelay_bias_zero.nir      1e-4   rule 4: snnTorch export, r = tau_mem/1e-4, w_in = tau_syn/1e-4
braille_noDelay_noBias_subtract    1e-4   rule 4 (same); trained with subtractive reset, which NIR
                                          cannot state: the file says v_reset = 0 and runs so
cnn_sinabs.nir                     none   rule 5: IF and stateless nodes only (Sinabs: one step/bin)
lif_norse.nir                      1e-4   pass it (rule 1): the NIR paper's LIF experiment uses
                                          dt = 0.0001 (paper/01_lif/README.md); Norse's own
                                          import default (1e-3) would be wrong for this file
lif_rockpool.nir                   1e-4   pass it (rule 1): written by ``LIFNeuronTorch(dt=0.0001)``
                                          in the same experiment (paper/01_lif/lif_sim_rockpool)
=================================  =====  =========================================================
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import nir
import numpy as np

from neurokd.errors import NeurokdError

#: Keys neurokd writes into the graph metadata of an exported student (values: see ``to_nir``).
GRAPH_METADATA_KEYS = ("dt", "timesteps", "encoding", "readout", "neuron_contract", "producer")

#: Time step each known producer runs its NIR graphs with (table above).
PRODUCER_DT: dict[str, float] = {
    "snntorch": 1e-4,
    "spikingjelly": 1e-4,
    "norse": 1e-6,          # (Norse's default dt 1e-3)^2: its writer multiplies tau by dt (table above)
    "sinabs": 1.0,
    "rockpool": 1e-3,
}

#: The step snnTorch hard-codes and SpikingJelly defaults to when exporting (rule 4).
EXPORT_SIGNATURE_DT = 1e-4

#: Node types whose discretisation depends on dt (Delay converts its delay from seconds to steps).
DT_DEPENDENT = (nir.LIF, nir.LI, nir.CubaLIF, nir.CubaLI, nir.Delay)


@dataclass(frozen=True)
class StepConvention:
    """The time step a graph runs with: ``dt`` per node (None where not needed) and the rule used."""

    dt: float | None
    source: str
    per_node: dict[str, float | None]


def _metadata_dt(metadata, where: str) -> float | None:
    if not isinstance(metadata, dict) or "dt" not in metadata:
        return None
    try:
        value = float(np.asarray(metadata["dt"]).reshape(()))
    except (TypeError, ValueError) as exc:
        raise NeurokdError(f"{where}: metadata dt {metadata['dt']!r} is not a number; fix the file or pass dt") from exc
    return _check_dt(value, where)


def _check_dt(value: float, where: str) -> float:
    if not math.isfinite(value) or value <= 0:
        raise NeurokdError(f"{where}: dt must be a finite number > 0, got {value!r}")
    return float(value)


def producer_of(graph: nir.NIRGraph) -> str | None:
    """The producer named in the graph metadata (``"neurokd 0.1.0"`` -> ``"neurokd"``), if any."""
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    value = meta.get("producer")
    if value is None:
        return None
    text = value.decode() if isinstance(value, bytes) else str(value)
    return text.strip().split()[0].lower() if text.strip() else None


def _follows_export_signature(nodes: dict, dt: float, rtol: float = 1e-5) -> bool:
    """True if every leaky node has r = tau_mem/dt (and CubaLIF/CubaLI w_in = tau_syn/dt)."""
    leaky = [n for n in nodes.values() if isinstance(n, (nir.LIF, nir.LI, nir.CubaLIF, nir.CubaLI))]
    if not leaky:
        return False
    for node in leaky:
        tau = np.asarray(node.tau_mem if hasattr(node, "tau_mem") else node.tau, dtype=np.float64)
        if not np.allclose(np.asarray(node.r, dtype=np.float64) * dt, tau, rtol=rtol, atol=0):
            return False
        if hasattr(node, "tau_syn"):
            w_in = np.asarray(node.w_in, dtype=np.float64)
            if not np.allclose(w_in * dt, np.asarray(node.tau_syn, dtype=np.float64), rtol=rtol, atol=0):
                return False
    return True


def _names(keys: list[str]) -> str:
    return ", ".join(repr(k) for k in keys[:6]) + (f" and {len(keys) - 6} more" if len(keys) > 6 else "")


def _all_zero(node, attr: str) -> bool:
    value = getattr(node, attr, None)
    return value is None or not np.any(np.asarray(value, dtype=np.float64))


def _rockpool_dt(nodes: dict, rtol: float = 1e-4) -> float | None:
    """The step of Rockpool's export signature, if every LIF/CubaLIF node has it, else None.

    Rockpool 3.1.0's ``to_nir`` writes ``r = tau_mem * exp(-dt/tau_mem) / dt`` (``nir.py``), i.e.
    ``dt r / tau = exp(-dt/tau)``; the ``dt`` solving that for the first node must be a round
    step (``m * 10^k``, ``m`` in 1..9) that every other node shares.
    """
    leaky = [n for n in nodes.values() if isinstance(n, (nir.LIF, nir.CubaLIF))]
    if not leaky:
        return None
    pairs = []
    for n in leaky:
        tau = np.asarray(n.tau_mem if hasattr(n, "tau_mem") else n.tau, dtype=np.float64).reshape(-1)
        r = np.asarray(n.r, dtype=np.float64).reshape(-1)
        if tau.size == 0 or r.size == 0 or np.any(tau <= 0) or np.any(r <= 0) or not np.all(np.isfinite(r)):
            return None
        pairs.append((np.broadcast_to(tau, np.broadcast(tau, r).shape), np.broadcast_to(r, np.broadcast(tau, r).shape)))
    tau0, r0 = float(pairs[0][0][0]), float(pairs[0][1][0])
    lo, hi = math.log(1e-12), math.log(tau0 * 50)      # ln(dt r/tau) + dt/tau rises with dt: bisect
    for _ in range(200):
        mid = (lo + hi) / 2
        dt = math.exp(mid)
        if math.log(dt * r0 / tau0) + dt / tau0 > 0:
            hi = mid
        else:
            lo = mid
    dt = math.exp((lo + hi) / 2)
    k = math.floor(math.log10(dt))
    m = round(dt / 10.0**k)
    if m == 10:                                         # 9.99999e-5 is 1e-4
        m, k = 1, k + 1
    if not 1 <= m <= 9 or not math.isclose(dt, m * 10.0**k, rel_tol=rtol):
        return None
    dt = m * 10.0**k
    for tau, r in pairs:
        if not np.allclose(r * dt / tau, np.exp(-dt / tau), rtol=rtol, atol=0):
            return None
    return dt


def semantics_warnings(graph: nir.NIRGraph, nodes: dict, producer: str | None = None,
                       name: str = "graph") -> list[str]:
    """What a known producer's neurons do that the graph cannot say: one message per rule that applies.

    NIR has no subtractive reset and no multi-spike neuron, so such a graph runs in neurokd as NIR
    defines it (one spike per step, reset to ``v_reset``), which changes its meaning without any
    error. The producer is the one named (argument or metadata ``"producer"``) or recognised by its
    writer's signature; the rules (measured with snnTorch 1.0.0, Sinabs 3.1.3, Norse 1.1.0):

    * **snnTorch** (named, or the export signature ``r = tau/1e-4`` of rule 4 in a graph without
      metadata): ``snn.Leaky`` / ``snn.Synaptic`` default to ``reset_mechanism="subtract"``, but
      ``export_to_nir`` writes ``v_reset = 0`` whatever the reset: LIF / CubaLIF nodes reset to zero
      here. Their ``"zero"`` reset with the default ``reset_delay=True`` clears the whole next step of
      ``RLeaky`` / ``Synaptic`` (that step's input too), which is not NIR's reset either;
      ``reset_delay=False`` is. SpikingJelly writes the same signature and refuses soft reset, so its
      graphs are exact.
    * **Sinabs** (named, or ``IF`` nodes with ``SumPool2d`` in a graph without metadata: Sinabs'
      ``to_nir`` writes both, no other known writer does): ``IAF`` defaults to
      ``spike_fn=MultiSpike`` (several spikes in one step) and ``reset_fn=MembraneSubtract``; its
      ``to_nir`` writes a plain ``IF``, which fires once per step and resets to zero here.
    * **Norse** (named): ``LIFCell`` adds its input to the synaptic current unscaled
      (``i <- i + x``), NIR's CubaLIF adds ``dt/tau_syn * w_in * x``; Norse's writer leaves
      ``w_in = 1``, so the current is ``dt/tau_syn`` times Norse's. ``w_in = tau_syn / dt`` in the
      file reproduces Norse (measured spike for spike).
    * **SpikingJelly** (named, or every IF node with ``r = 1/1e-4`` in a graph without metadata):
      2.0.0's ``export_to_nir`` writes ``IFNode`` as ``IF(r = 1/dt)``, meaning ``v += dt r I``; neurokd's
      IF adds ``r I`` per step (the convention of every other writer, ``nir_semantics``), so the input
      is ``1/dt`` times too large. Its LIF and CubaLIF nodes are exact (measured).
    * **Rockpool** (named, or its signature ``r = tau exp(-dt/tau) / dt`` at a round ``dt``, Rockpool
      3.1.0 ``nir.py``): ``LIFTorch`` / ``LIFNeuronTorch`` decay by ``exp(-dt/tau)``, add input and
      current unscaled, fire ``floor(v/threshold)`` spikes at ``v >= threshold`` (``StepPWL``, up to
      2^16 per step) and subtract them; measured on a 6-8-4 LIFTorch net: 2,559 and 12,747 spikes in
      Rockpool, 93 and 16 here. No ``dt`` or ``w_in`` makes the file say Rockpool's neuron.
    """
    meta = graph.metadata if isinstance(graph.metadata, dict) else {}
    who = (producer or producer_of(graph) or "").lower() or None
    unstated = who is None and "dt" not in meta and not any(
        isinstance(getattr(n, "metadata", None), dict) and "dt" in n.metadata for n in nodes.values())
    out = []
    lif = [k for k, n in nodes.items() if isinstance(n, (nir.LIF, nir.CubaLIF)) and _all_zero(n, "v_reset")]
    if lif and (who == "snntorch" or (unstated and _follows_export_signature(nodes, EXPORT_SIGNATURE_DT))):
        how = "from snnTorch" if who == "snntorch" else "with snnTorch's export signature (r = tau/1e-4)"
        out.append(
            f"{name}: nodes {_names(lif)} come {how}: snnTorch's default Leaky/Synaptic reset subtracts the "
            "threshold (reset_mechanism='subtract'), which NIR cannot state; they run here resetting to v_reset = 0 "
            "as written, so spikes differ from snnTorch's unless it used reset_mechanism='zero' (and, for RLeaky "
            "and Synaptic, reset_delay=False: their delayed zero reset also clears the next step's input)"
        )
    ifs = [k for k, n in nodes.items() if isinstance(n, nir.IF)]
    pools = any(isinstance(n, nir.SumPool2d) for n in nodes.values())
    if ifs and (who == "sinabs" or (unstated and pools)):
        how = "from Sinabs" if who == "sinabs" else "with Sinabs' signature (IF and SumPool2d, no metadata)"
        out.append(
            f"{name}: IF nodes {_names(ifs)} come {how}: Sinabs' default IAF fires several spikes per step "
            "(MultiSpike) and subtracts the threshold (MembraneSubtract), which NIR cannot state; they run here "
            "with one spike per step and reset to zero, as Sinabs' IAF(spike_fn=SingleSpike, "
            "reset_fn=MembraneReset()) does"
        )
    rock_dt = _rockpool_dt(nodes) if (who == "rockpool" or unstated) else None
    if lif and (who == "rockpool" or rock_dt is not None):
        how = "from Rockpool" if who == "rockpool" else f"with Rockpool's signature (r = tau exp(-dt/tau)/dt, dt {rock_dt:g})"
        out.append(
            f"{name}: nodes {_names(lif)} come {how}: Rockpool's neurons decay exponentially, fire "
            "floor(v/threshold) spikes per step at v >= threshold and subtract them, and its LIFTorch (written as "
            "CubaLIF with w_in = 1) adds its input to the synaptic current unscaled where NIR adds dt/tau_syn of it; "
            "NIR can state none of this, so they run here as forward-Euler NIR neurons with one spike per step and "
            "reset to zero, and fire far less than in Rockpool"
        )
    sj_if = [k for k in ifs if np.allclose(np.asarray(nodes[k].r, dtype=np.float64), 1 / EXPORT_SIGNATURE_DT, rtol=1e-6)]
    if sj_if and (who == "spikingjelly" or (unstated and len(sj_if) == len(ifs))):
        how = "from SpikingJelly" if who == "spikingjelly" else "with SpikingJelly's signature (r = 1/1e-4)"
        out.append(
            f"{name}: IF nodes {_names(sj_if)} come {how}: SpikingJelly writes IFNode as r = 1/dt (v += dt r I); "
            "neurokd adds r I once per step, as Sinabs, snnTorch, Norse and neurokd itself write IF (r = 1), so the "
            "input here is 1/dt times SpikingJelly's; write r = 1 to reproduce SpikingJelly"
        )
    cuba = [k for k, n in nodes.items() if isinstance(n, nir.CubaLIF)
            and np.all(np.asarray(getattr(n, "w_in", 1.0), dtype=np.float64) == 1.0)]
    if cuba and who == "norse":
        out.append(
            f"{name}: CubaLIF nodes {_names(cuba)} come from Norse with w_in = 1: Norse's LIFCell adds its input "
            "to the current unscaled, NIR's CubaLIF adds dt/tau_syn * w_in of it, so the current here is dt/tau_syn "
            "times Norse's; write w_in = tau_syn/dt (dt the graph's step, 1e-6 for Norse's default) to reproduce Norse"
        )
    return out


def resolve_dt(
    graph: nir.NIRGraph, nodes: dict, dt: float | None = None, producer: str | None = None, name: str = "graph"
) -> StepConvention:
    """Pick the time step for each node of ``graph`` by the rules of this module's docstring.

    ``nodes`` is the flat ``{name: node}`` dict that will run (subgraphs already expanded).
    Raises :class:`NeurokdError` when a node needs a ``dt`` that no rule provides.
    """
    needing = [k for k, n in nodes.items() if isinstance(n, DT_DEPENDENT)]
    graph_dt = _metadata_dt(graph.metadata, f"{name} metadata")
    node_dt = {k: _metadata_dt(getattr(n, "metadata", None), f"{name} node {k!r}") for k, n in nodes.items()}
    if dt is not None:
        value = _check_dt(float(dt), "dt argument")
        return StepConvention(value, "argument", {k: value for k in nodes})
    if graph_dt is not None or any(v is not None for v in node_dt.values()):
        per_node = {k: (node_dt[k] if node_dt[k] is not None else graph_dt) for k in nodes}
        missing = [k for k in needing if per_node[k] is None]
        if missing:
            raise NeurokdError(
                f"{name}: nodes {missing} state no dt in their metadata and the graph states none; pass dt"
            )
        values = {v for k, v in per_node.items() if k in needing and v is not None}
        common = values.pop() if len(values) == 1 else graph_dt
        return StepConvention(common, "graph metadata" if graph_dt is not None else "node metadata", per_node)
    who = (producer or producer_of(graph) or "").lower() or None
    if who is not None:
        if who not in PRODUCER_DT:
            raise NeurokdError(
                f"{name}: unknown producer {who!r}; known: {', '.join(sorted(PRODUCER_DT))}; or pass dt"
            )
        value = PRODUCER_DT[who]
        return StepConvention(value, f"producer {who}", {k: value for k in nodes})
    if _follows_export_signature(nodes, EXPORT_SIGNATURE_DT):
        value = EXPORT_SIGNATURE_DT
        return StepConvention(value, "snnTorch/SpikingJelly export signature (r = tau/1e-4)", {k: value for k in nodes})
    if not needing:
        return StepConvention(None, "not needed (no time constants in the graph)", {k: None for k in nodes})
    kinds = sorted({type(nodes[k]).__name__ for k in needing})
    raise NeurokdError(
        f"{name}: nodes {needing[:5]}{' ...' if len(needing) > 5 else ''} ({', '.join(kinds)}) need a time step "
        "and the graph states none (no dt in its metadata, no known producer); pass dt (--dt), e.g. 1e-4 "
        "(snnTorch, and the NIR paper's LIF experiment) or 1e-6 (a graph from Norse's to_nir at its default dt 1e-3)"
    )
