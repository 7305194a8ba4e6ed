"""Graphs the peer frameworks write themselves run in neurokd as they run at home.

Each test builds a small seeded network in a peer (snnTorch 1.0.0, Norse 1.1.0, Sinabs 3.1.3,
SpikingJelly 2.0.0, Rockpool 3.1.0; pinned in requirements/peers.txt), scales its weights so that
every layer fires, runs the peer's own simulation on one fixed Bernoulli spike input, exports
with the peer's own NIR writer and compares every spiking layer spike for spike with neurokd's
two readers: the PyTorch replay (``nir_to_torch``, float64) and the hardware model Lava runs
(``ir.from_nir`` + ``run_fast`` in floating point; its trains are aligned to the network's own
time, so the step offset is 0 everywhere), and for one graph per peer Lava's own floating_pt
simulation (``run_lava``, what ``neurokd simulate`` runs; delay-corrected the same way), where Lava is
installed (the Python 3.11 stack; in the core environment without it the peers are compared with the
other readers only: that Lava's floating_pt equals ``run_fast`` is tests/test_fastsim.py's). Fixed point (``run_fast(precision="fixed")``) is held to
a stated agreement instead. Fix-ups a peer's writer needs are applied here and named.

Where the peer's neuron means what NIR cannot say (snnTorch's subtractive reset, Sinabs'
multi-spike IAF, Rockpool's LIF) the reader warns once, naming the nodes (``conventions.semantics_warnings``),
and the tests pin that down with the peer's default neuron.

The other way, a neurokd student's ``model.nir`` read by snnTorch's and SpikingJelly's importers gives
the student's readout at every step, to float32 rounding (``READOUT_ATOL``). Norse 1.1.0's ``from_nir`` ignores ``r`` (it warns "r is
expected to be set to 1") and the graph's dt, so it reads ``to_nir.for_norse(graph)``: the same network
with ``r`` moved into the weights at Norse's step. Sinabs 3.1.3's reads ``tau`` in steps, decays
exponentially and resets by subtraction, so no neurokd LIF graph runs there as the student.
"""

from __future__ import annotations

import os
import warnings
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from conftest import LAVA_MISSING
from neurokd.exporters.from_nir import nir_to_torch
from neurokd.hardware.engines.fastsim import run_fast
from neurokd.hardware.network import ir

T = 40
# Fixed point (8-bit weights, 12-bit decays): share of (step, neuron) spike decisions equal to the peer's;
# measured 0.908 (the 3-neuron last layer of the snnTorch conv net, where rounding upstream accumulates:
# 11 of 120 decisions) to 1.0; most layers >= 0.99.
FIXED_AGREEMENT = 0.90
# A peer's importer runs the student's readout one step at a time, (B, n) rows per matmul; the student runs all
# T steps as one (T*B, n) matmul. BLAS picks its kernel (and so its summation order) by matrix shape and CPU:
# the float32 values agree to a few ulp, not bitwise (1 ulp on 7 % of the values with MKL on AVX-512).
READOUT_ATOL = 1e-5


def _spike_input(shape, rate=0.3, seed=0) -> torch.Tensor:
    """(T, 1, *shape) Bernoulli spikes, seeded."""
    return (torch.rand(T, 1, *shape, generator=torch.Generator().manual_seed(seed)) < rate).float()


def _scale(net: torch.nn.Module, gain: float) -> None:
    with torch.no_grad():
        for m in net.modules():
            if isinstance(m, (torch.nn.Linear, torch.nn.Conv2d)):
                m.weight.mul_(gain)


def _record(modules: dict[str, torch.nn.Module]):
    """Forward hooks keeping each module's outputs; returns (store, remove)."""
    store: dict[str, list[torch.Tensor]] = {k: [] for k in modules}
    hooks = [m.register_forward_hook(lambda mod, i, o, k=k: store[k].append((o[0] if isinstance(o, tuple) else o)
                                                                           .detach().clone()))
             for k, m in modules.items()]
    return store, lambda: [h.remove() for h in hooks]


def _neurokd(graph: nir.NIRGraph, x: torch.Tensor, lava: bool = False, **reader) -> dict[str, dict[str, np.ndarray]]:
    """Spikes ``{reader: {node: (T, size)}}`` of the PyTorch replay and the float and fixed hardware model;
    with ``lava`` also of Lava's own floating_pt simulation (what ``neurokd simulate`` runs) where Lava is installed."""
    module = nir_to_torch(graph, **reader).double()
    with torch.no_grad():
        rec = module(x.double(), record=True)
    network = ir.from_nir(graph, **reader)
    xs = x.double().numpy().swapaxes(0, 1)                     # (N=1, T, *shape)
    out = {"torch": {k: v[:, 0].reshape(T, -1).numpy() for k, v in rec.items()}}
    for precision in ("float", "fixed"):
        res = run_fast(network, xs, precision=precision, record_steps=True)
        out[precision] = {k: np.asarray(v[0], dtype=np.float64) for k, v in res.spikes.items()}
    if lava and LAVA_MISSING is None:
        from neurokd.hardware.engines.lava_backend import run_lava

        res = run_lava(network, xs, precision="float", record_steps=True)
        out["lava"] = {k: np.asarray(v[0], dtype=np.float64) for k, v in res.spikes.items()}
    return out


ROWS: list[dict] = []       # what every test measured: the docs' conformance table (see _write_table)
HEADER = """# Peer conformance (generated)

Written by `NEUROKD_CONFORMANCE_TABLE=docs/peer_conformance.md python -m pytest tests/test_peer_conformance.py`
from what that suite measures; edit the suite, not this page. Each peer builds a small seeded network,
runs it on one fixed Bernoulli spike input (p = 0.3, T = 40), and exports it with its own NIR writer;
neurokd runs the file in its PyTorch replay (`nir_to_torch`, float64), the float hardware model Lava
runs (`ir.from_nir` + `run_fast`) and fixed point (8-bit weights). Agreement: the share of (step,
neuron) spike decisions equal to the peer's (step offset 0: both engines align to the network's own
time). Fix-ups a peer's writer needs are named in the note. Where the peer's neuron means what NIR
cannot say, the reader warns once naming the nodes (`neurokd.exporters.conventions.semantics_warnings`).

What differs and why:
- snnTorch: `Leaky`/`Synaptic` default to subtractive reset; `export_to_nir` writes `v_reset = 0`. Their
  'zero' reset with the default `reset_delay=True` clears the whole next step of `RLeaky`/`Synaptic`
  (that step's input too); `reset_delay=False` is NIR's reset.
- Norse: `to_nir` writes `tau = dt / tau_mem_inv` (tau times its dt 1e-3), so its graphs run at
  dt = 1e-6; `LIFCell` adds input to the current unscaled while the file keeps `w_in = 1`.
- Sinabs: the default `IAF` fires several spikes per step and subtracts; NIR's `IF` cannot say so.
- SpikingJelly: `IFNode` is written `IF(r = 1/dt)`; other writers and neurokd mean `r = 1` per step.
- Rockpool: `LIFTorch` decays exponentially, adds input unscaled, fires floor(v/threshold) spikes at
  v >= threshold and subtracts: no NIR parameters say that, so it fires far less in neurokd.
- Read the other way: snnTorch's and SpikingJelly's importers give a neurokd student's readout (to float32
  rounding: they run it a step at a time, the student all steps in one matmul; the agreement of these rows
  is the share of readout values within 1e-5 of the student's).
  Norse 1.1.0's `from_nir` ignores `r` and the graph's dt: `neurokd.exporters.to_nir.for_norse(graph)`
  writes the same network with r = 1 (moved into the weights) at Norse's dt 1e-3, which Norse runs as the
  student. Sinabs 3.1.3's `from_nir` reads `tau` in steps, decays exponentially and subtracts at reset:
  it cannot run a neurokd LIF graph (not reproduced)."""


def _measure(peer_name: str, network: str, peer: dict[str, np.ndarray], ours: dict[str, dict[str, np.ndarray]],
             note: str) -> None:
    """One table row per layer: spikes in the peer and in neurokd, agreement of each reader with the peer."""
    for node, ref in peer.items():
        ref = ref.reshape(T, -1)
        ROWS.append({"peer": peer_name, "network": network, "layer": node, "peer spikes": int(ref.sum()),
                     "neurokd spikes": int(ours["torch"][node].sum()),
                     **{f"agreement {r}": float(np.mean(ours[r][node] == ref)) for r in ("torch", "float", "fixed")},
                     "note": note})


@pytest.fixture(scope="module", autouse=True)
def _write_table():
    """With ``NEUROKD_CONFORMANCE_TABLE=path.md`` the suite writes its measurements as a Markdown table."""
    yield
    target = os.environ.get("NEUROKD_CONFORMANCE_TABLE")
    if not target or not ROWS:
        return
    cols = list(ROWS[0])
    lines = [HEADER, "", "| " + " | ".join(cols) + " |", "|" + "|".join("---:" if c.startswith(("agreement", "peer s", "neurokd s"))
                                                          else "---" for c in cols) + "|"]
    for row in ROWS:
        lines.append("| " + " | ".join(f"{v:.4f}" if isinstance(v, float) else str(v) for v in row.values()) + " |")
    Path(target).write_text("\n".join(lines) + "\n", encoding="utf-8")


def _assert_conforms(peer: dict[str, np.ndarray], ours: dict[str, dict[str, np.ndarray]], min_spikes: int = 5,
                     table: tuple[str, str, str] | None = None) -> None:
    if table is not None:
        _measure(*table[:2], peer, ours, table[2])
    for node, ref in peer.items():
        ref = ref.reshape(T, -1)
        assert ref.sum() >= min_spikes, f"{node}: {ref.sum():.0f} spikes in the peer; the check needs firing"
        for reader in ("torch", "float", "lava"):
            if reader not in ours:
                continue
            got = ours[reader][node]
            assert np.array_equal(got, ref), (
                f"{node} ({reader}): {int(np.sum(got != ref))} of {ref.size} spike decisions differ "
                f"({got.sum():.0f} spikes vs the peer's {ref.sum():.0f})")
        agreement = float(np.mean(ours["fixed"][node] == ref))
        assert agreement >= FIXED_AGREEMENT, f"{node} (fixed): agreement {agreement:.3f}"


def _read_warnings(graph: nir.NIRGraph, **reader) -> list[str]:
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        nir_to_torch(graph, **reader)
    return [str(w.message) for w in caught]


# --------------------------------------------------------------------------------------------------
# snnTorch 1.0.0
# --------------------------------------------------------------------------------------------------

def _snntorch_mlp(reset: str):
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(1)
    # Fix-up: per-neuron beta and threshold tensors. With scalars, export_to_nir writes 0-d arrays,
    # which nir 1.0.8's type inference rejects ("0.output: [[8]] -> 1.input: []").
    net = torch.nn.Sequential(
        torch.nn.Linear(6, 8), snn.Leaky(beta=torch.full((8,), 0.9), threshold=torch.ones(8), init_hidden=True,
                                         reset_mechanism=reset),
        torch.nn.Linear(8, 4), snn.Leaky(beta=torch.full((4,), 0.8), threshold=torch.ones(4), init_hidden=True,
                                         reset_mechanism=reset))
    _scale(net, 2.5)
    return net


def _run_snntorch(net, x, layers=(1, 3)):
    """snnTorch's own loop over the T steps; spikes ``{str(index): (T, size)}`` of the modules at ``layers``
    (the first output of RLeaky/Synaptic)."""
    store, remove = _record({str(i): net[i] for i in layers})
    with torch.no_grad():
        for m in net:
            if hasattr(m, "reset_hidden"):
                m.reset_hidden()
        for t in range(T):
            net(x[t])
    remove()
    return {k: torch.stack(v)[:, 0].reshape(T, -1).numpy() for k, v in store.items()}


def _snntorch_graph(net, x):
    from snntorch.export_nir import export_to_nir

    # Fix-up: ignore_dims=[0], or the batch axis of the sample enters the Input type.
    return export_to_nir(net, x[0], ignore_dims=[0])


def test_snntorch_leaky_with_zero_reset_runs_spike_for_spike():
    x = _spike_input((6,))
    net = _snntorch_mlp("zero")
    peer = _run_snntorch(net, x)
    graph = _snntorch_graph(net, x)
    _assert_conforms(peer, _neurokd(graph, x, lava=True),     # dt: snnTorch's export signature (r = tau / 1e-4)
                     table=("snnTorch 1.0.0", "Linear-Leaky x2, reset 'zero'", "fix-up: per-neuron beta, ignore_dims=[0]"))


def test_snntorch_conv_net_with_average_pooling_runs_spike_for_spike():
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(1)

    def leaky(shape):
        return snn.Leaky(beta=torch.full(shape, 0.9), threshold=torch.ones(shape), init_hidden=True,
                         reset_mechanism="zero")

    net = torch.nn.Sequential(torch.nn.Conv2d(2, 4, 3, padding=1), leaky((4, 8, 8)), torch.nn.AvgPool2d(2),
                              torch.nn.Conv2d(4, 4, 3), leaky((4, 2, 2)), torch.nn.Flatten(), torch.nn.Linear(16, 3),
                              leaky((3,)))
    _scale(net, 3.0)
    x = _spike_input((2, 8, 8))
    peer = _run_snntorch(net, x, layers=(1, 4, 7))
    graph = _snntorch_graph(net, x)
    assert "AvgPool2d" in {type(n).__name__ for n in graph.nodes.values()}
    _assert_conforms(peer, _neurokd(graph, x), table=("snnTorch 1.0.0", "Conv-Leaky-AvgPool-Conv-Leaky-Flatten-Linear-Leaky",
                                                       "fix-up: per-neuron beta, ignore_dims=[0]"))


@pytest.mark.parametrize("kind", ["rleaky", "synaptic"])
def test_snntorch_recurrent_and_current_based_layers_run_spike_for_spike(kind):
    """RLeaky (all-to-all recurrence: LIF + w_rec Affine in a subgraph) and Synaptic (CubaLIF), reset to zero
    right after the spike (reset_delay=False). With snnTorch's default reset_delay=True, RLeaky's and
    Synaptic's 'zero' reset clears the whole next step's membrane, that step's input included, which is
    neither NIR's reset nor snnTorch's own Leaky."""
    snn = pytest.importorskip("snntorch")
    torch.manual_seed(1)
    common = dict(threshold=torch.ones(8), init_hidden=True, reset_mechanism="zero", reset_delay=False)
    first = (snn.RLeaky(beta=torch.full((8,), 0.9), linear_features=8, **common) if kind == "rleaky"
             else snn.Synaptic(alpha=torch.full((8,), 0.8), beta=torch.full((8,), 0.9), **common))
    net = torch.nn.Sequential(torch.nn.Linear(6, 8), first, torch.nn.Linear(8, 4),
                              snn.Leaky(beta=torch.full((4,), 0.8), threshold=torch.ones(4), init_hidden=True,
                                        reset_mechanism="zero"))
    _scale(net, 2.5)                                 # the recurrent weights too
    x = _spike_input((6,))
    peer = _run_snntorch(net, x)
    graph = _snntorch_graph(net, x)
    first_node = "1.lif" if kind == "rleaky" else "1"
    assert type(graph.nodes[first_node]).__name__ == ("LIF" if kind == "rleaky" else "CubaLIF")
    peer = {first_node: peer["1"], "3": peer["3"]}
    _assert_conforms(peer, _neurokd(graph, x), table=("snnTorch 1.0.0", f"Linear-{'RLeaky' if kind == 'rleaky' else 'Synaptic'}-"
                                                       "Linear-Leaky, reset 'zero', reset_delay=False",
                                                       "fix-up: per-neuron beta, ignore_dims=[0]"))


def test_snntorch_default_leaky_subtracts_at_reset_and_the_reader_says_so():
    x = _spike_input((6,))
    net = _snntorch_mlp("subtract")                # snn.Leaky's default reset_mechanism
    peer = _run_snntorch(net, x)
    graph = _snntorch_graph(net, x)
    messages = _read_warnings(graph)
    assert len(messages) == 1 and "'1', '3'" in messages[0] and "reset_mechanism='subtract'" in messages[0], messages
    ours = _neurokd(graph, x)
    _measure("snnTorch 1.0.0", "Linear-Leaky x2, default reset 'subtract'", peer, ours,
             "warned: NIR has no subtractive reset; runs with reset to 0")
    assert any(not np.array_equal(ours["torch"][k], peer[k]) for k in peer)    # what the warning is about


# --------------------------------------------------------------------------------------------------
# Norse 1.1.0
# --------------------------------------------------------------------------------------------------

def _norse_mlp(kind: str):
    norse = pytest.importorskip("norse.torch")
    torch.manual_seed(2)
    if kind == "box":
        cell = lambda: norse.LIFBoxCell(norse.LIFBoxParameters(tau_mem_inv=torch.tensor(100.0), v_th=torch.tensor(0.5)))
    else:
        cell = lambda: norse.LIFCell(norse.LIFParameters(tau_mem_inv=torch.tensor(100.0), tau_syn_inv=torch.tensor(200.0),
                                                         v_th=torch.tensor(0.3)))
    net = norse.SequentialState(torch.nn.Linear(6, 8), cell(), torch.nn.Linear(8, 4), cell())
    _scale(net, 10.0)
    return norse, net


def _run_norse(net, x):
    spikes = {"1": [], "3": []}
    states = [None] * len(net)
    with torch.no_grad():
        for t in range(T):
            h = x[t]
            for i, m in enumerate(net):
                if isinstance(m, torch.nn.Linear):
                    h = m(h)
                else:
                    h, states[i] = m(h, states[i])
                    spikes[str(i)].append(h.clone())
    return {k: torch.stack(v)[:, 0].numpy() for k, v in spikes.items()}


def test_norse_lifbox_graph_runs_spike_for_spike_at_norses_own_step():
    """Norse's to_nir writes tau = dt / tau_mem_inv: the producer step is dt^2 = 1e-6 (PRODUCER_DT)."""
    x = _spike_input((6,))
    norse, net = _norse_mlp("box")
    peer = _run_norse(net, x)
    graph = norse.to_nir(net, x[0, 0])     # fix-up: one unbatched sample, or the batch axis enters the Input type
    assert _read_warnings(graph, producer="norse") == []
    _assert_conforms(peer, _neurokd(graph, x, lava=True, producer="norse"),
                     table=("Norse 1.1.0", "Linear-LIFBoxCell x2", "producer norse: dt 1e-6; fix-up: unbatched sample"))


def test_norse_lifcell_graph_needs_w_in_and_then_runs_spike_for_spike():
    """Norse's LIFCell adds its input to the current unscaled; its writer leaves CubaLIF's w_in = 1.
    The reader says so; with w_in = tau_syn / dt written in (the fix-up it names) the graph is exact."""
    x = _spike_input((6,))
    norse, net = _norse_mlp("cuba")
    peer = _run_norse(net, x)
    graph = norse.to_nir(net, x[0, 0])
    messages = _read_warnings(graph, producer="norse")
    assert len(messages) == 1 and "CubaLIF nodes '1', '3'" in messages[0] and "w_in" in messages[0], messages
    raw = _neurokd(graph, x, producer="norse")
    _measure("Norse 1.1.0", "Linear-LIFCell x2, as written (w_in = 1)", peer, raw,
             "warned: Norse adds input to the current unscaled")
    assert raw["torch"]["1"].sum() < peer["1"].sum()          # the half-agreement of issue 16: too little current
    for node in graph.nodes.values():
        if isinstance(node, nir.CubaLIF):
            node.w_in = np.asarray(node.tau_syn, dtype=np.float64) / 1e-6
    _assert_conforms(peer, _neurokd(graph, x, producer="norse"),
                     table=("Norse 1.1.0", "Linear-LIFCell x2, w_in = tau_syn/dt", "fix-up: w_in (the warning's)"))


# --------------------------------------------------------------------------------------------------
# Sinabs 3.1.3
# --------------------------------------------------------------------------------------------------

def _sinabs_cnn(default: bool):
    sinabs = pytest.importorskip("sinabs")
    import sinabs.layers as sl
    from sinabs.activation import MembraneReset, SingleSpike

    kw = {} if default else dict(spike_fn=SingleSpike, reset_fn=MembraneReset())
    torch.manual_seed(3)
    net = torch.nn.Sequential(
        torch.nn.Conv2d(2, 4, 3, padding=1, bias=False), sl.IAFSqueeze(batch_size=1, **kw), sl.SumPool2d(2),
        torch.nn.Conv2d(4, 4, 3, bias=False), sl.IAFSqueeze(batch_size=1, **kw),
        torch.nn.Flatten(), torch.nn.Linear(16, 3, bias=False), sl.IAFSqueeze(batch_size=1, **kw))
    _scale(net, 3.0)
    _scale(net[6], 2.0)
    return sinabs, net


def _run_sinabs(sinabs, net, x):
    store, remove = _record({str(i): m for i, m in enumerate(net) if type(m).__name__ == "IAFSqueeze"})
    with torch.no_grad():
        net(x[:, 0])                         # IAFSqueeze, batch 1: the time steps are the leading axis
    remove()
    graph = sinabs.to_nir(net, x[:1, 0])     # after the run: to_nir runs the network on its sample
    return {k: v[0].reshape(T, -1).numpy() for k, v in store.items()}, graph


def test_sinabs_single_spike_cnn_with_sum_pooling_runs_spike_for_spike():
    x = _spike_input((2, 8, 8))
    sinabs, net = _sinabs_cnn(default=False)
    peer, graph = _run_sinabs(sinabs, net, x)
    assert {type(n).__name__ for n in graph.nodes.values()} >= {"Conv2d", "SumPool2d", "Flatten", "Affine", "IF"}
    _assert_conforms(peer, _neurokd(graph, x, lava=True),       # IF only: no dt needed (one step per time bin)
                     table=("Sinabs 3.1.3", "Conv-IAF-SumPool-Conv-IAF-Flatten-Linear-IAF, SingleSpike, MembraneReset",
                            "as written"))


def test_sinabs_default_iaf_fires_several_spikes_per_step_and_the_reader_says_so():
    x = _spike_input((2, 8, 8))
    sinabs, net = _sinabs_cnn(default=True)          # IAF's defaults: MultiSpike, MembraneSubtract
    peer, graph = _run_sinabs(sinabs, net, x)
    assert max(float(v.max()) for v in peer.values()) > 1     # more than one spike in one step
    messages = _read_warnings(graph)
    assert len(messages) == 1 and "IF nodes '1', '4', '7'" in messages[0] and "MultiSpike" in messages[0], messages
    ours = _neurokd(graph, x)
    _measure("Sinabs 3.1.3", "the same CNN, default IAF (MultiSpike, MembraneSubtract)", peer, ours,
             "warned: NIR's IF fires once per step and resets to 0")
    assert sum(ours["torch"][k].sum() for k in peer) < sum(v.sum() for v in peer.values())


# --------------------------------------------------------------------------------------------------
# SpikingJelly 2.0.0
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("kind", ["lif", "cubalif", "if"])
def test_spikingjelly_lif_cubalif_and_if_graphs_run_spike_for_spike(kind):
    """LIF and CubaLIF are exact as written. IFNode is written IF(r = 1/dt) (v += dt r I), where every other
    writer and neurokd mean r I per step: the reader says so, and with r = 1 (the fix-up it names) it is exact."""
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based import functional, layer, neuron
    from spikingjelly.activation_based.nir_exchange import export_to_nir

    x = _spike_input((6,))
    make = {"lif": lambda: neuron.LIFNode(tau=2.0), "cubalif": lambda: neuron.CUBALIFNode(c_decay=0.5, v_decay=0.75),
            "if": lambda: neuron.IFNode()}[kind]
    torch.manual_seed(4)
    net = torch.nn.Sequential(layer.Linear(6, 8), make(), layer.Linear(8, 4), make())
    _scale(net, 4.0)
    store, remove = _record({"_1": net[1], "_3": net[3]})
    with torch.no_grad():
        functional.reset_net(net)
        for t in range(T):
            net(x[t])
    remove()
    functional.reset_net(net)
    peer = {k: torch.stack(v)[:, 0].numpy() for k, v in store.items()}
    graph = export_to_nir(net, x[0], dt=1e-4)
    messages = _read_warnings(graph, producer="spikingjelly")
    if kind == "if":
        assert len(messages) == 1 and "IF nodes '_1', '_3'" in messages[0] and "r = 1/dt" in messages[0], messages
        unnamed = _read_warnings(graph)                              # recognised without being named, too
        assert len(unnamed) == 1 and "SpikingJelly's signature (r = 1/1e-4)" in unnamed[0], unnamed
        for node in graph.nodes.values():
            if isinstance(node, nir.IF):
                node.r = np.ones_like(np.asarray(node.r))
    else:
        assert messages == []
    _assert_conforms(peer, _neurokd(graph, x, lava=kind == "lif", producer="spikingjelly"),
                     table=("SpikingJelly 2.0.0", f"Linear-{kind} x2", "fix-up: r = 1 (the warning's)" if kind == "if"
                            else "producer spikingjelly: dt 1e-4"))


# --------------------------------------------------------------------------------------------------
# Rockpool 3.1.0
# --------------------------------------------------------------------------------------------------

def test_rockpool_lif_graph_is_recognised_and_the_reader_says_why_it_fires_far_less():
    """Rockpool's LIFTorch decays exponentially, adds input unscaled and fires floor(v/threshold) spikes
    at v >= threshold: no NIR file says that, so neurokd warns (issue 16's 'Rockpool runs silent')."""
    pytest.importorskip("rockpool")
    from rockpool.nn.combinators import Sequential
    from rockpool.nn.modules import LIFTorch, LinearTorch
    from rockpool.nn.modules.torch.nir import to_nir

    x = _spike_input((6,))
    torch.manual_seed(5)
    net = Sequential(LinearTorch((6, 8)), LIFTorch(8), LinearTorch((8, 4)), LIFTorch(4))
    with torch.no_grad():
        _, _, rec = net(x[:, 0][None], record=True)
    peer = {k: rec[f"{k}_output"][0].numpy() for k in ("1_LIFTorch", "3_LIFTorch")}
    graph = to_nir(net, x[0, 0])
    # Fix-up: Rockpool's writer declares the Output as (T, 1, 4); nir 1.0.8 and neurokd refuse the mismatch.
    graph.nodes["output"] = nir.Output(output_type={"output": np.array([4])})
    messages = _read_warnings(graph, dt=1e-3)
    assert len(messages) == 1 and "Rockpool's signature" in messages[0] and "dt 0.001" in messages[0], messages
    ours = _neurokd(graph, x, dt=1e-3)
    _measure("Rockpool 3.1.0", "LinearTorch-LIFTorch x2 (defaults)", peer, ours,
             "warned: exponential, multi-spike, subtracting LIF; fix-up: Output shape")
    for k, ref in peer.items():
        assert ours["torch"][k].sum() * 5 < ref.sum(), (k, ours["torch"][k].sum(), ref.sum())


# --------------------------------------------------------------------------------------------------
# The other way: neurokd's exported student read by the peers' importers
# --------------------------------------------------------------------------------------------------

def _student_graph(tmp_path):
    """A neurokd MLP student (weights scaled so its LIF layer fires), its readout per step and model.nir."""
    from neurokd.exporters.to_nir import student_to_nir, write_nir
    from neurokd.models import build_student

    torch.manual_seed(6)
    student = build_student("mlp", (8,), 3, timesteps=10, hidden=(12,)).eval()
    _scale(student, 3.0)
    x = torch.rand(5, 8, generator=torch.Generator().manual_seed(7))
    with torch.no_grad():
        _, spikes, readout = student.run(x)
    assert 0.05 < float(spikes["lif1"].mean()) < 0.9
    path = write_nir(student_to_nir(student, dt=1e-4), tmp_path / "model.nir")
    return x[None].expand(10, 5, 8), readout, path


def _readout_row(peer_name: str, out: torch.Tensor, readout: torch.Tensor) -> None:
    same = float(((out - readout).abs() <= READOUT_ATOL).double().mean())     # agreement within READOUT_ATOL
    ROWS.append({"peer": peer_name, "network": "reads neurokd's MLP student 8-12-3 (5 samples, T = 10)",
                 "layer": "readout per step", "peer spikes": "", "neurokd spikes": "", "agreement torch": same,
                 "agreement float": "", "agreement fixed": "",
                 "note": f"predictions equal: {bool(torch.equal(out.mean(0).argmax(1), readout.mean(0).argmax(1)))}"})


def test_snntorch_reads_a_neurokd_student_and_gives_its_readout(tmp_path):
    """Batched: since the MLP export writes no no-op Flatten, snnTorch's importer takes (B, 8) input."""
    pytest.importorskip("snntorch")
    from snntorch.import_nir import import_from_nir

    xs, readout, path = _student_graph(tmp_path)
    net = import_from_nir(nir.read(path))
    state, outs = None, []
    with torch.no_grad():
        for t in range(xs.shape[0]):
            step, state = net(xs[t], state)      # (output, state); snnTorch's Leaky keeps its own state
            outs.append(step)
    out = torch.stack(outs)
    _readout_row("snnTorch 1.0.0", out, readout)
    torch.testing.assert_close(out, readout, atol=READOUT_ATOL, rtol=0)     # step-wise vs one matmul: a few ulp
    assert torch.equal(out.mean(0).argmax(1), readout.mean(0).argmax(1))


def test_spikingjelly_reads_a_neurokd_student_and_gives_its_readout(tmp_path):
    """SpikingJelly's module returns (output, state): the state goes back in at every step."""
    pytest.importorskip("spikingjelly")
    from spikingjelly.activation_based.nir_exchange import import_from_nir

    xs, readout, path = _student_graph(tmp_path)
    net = import_from_nir(nir.read(path), dt=1e-4)
    state, outs = None, []
    with torch.no_grad():
        for t in range(xs.shape[0]):
            out, state = net(xs[t], state)
            outs.append(out)
    _readout_row("SpikingJelly 2.0.0", torch.stack(outs), readout)
    torch.testing.assert_close(torch.stack(outs), readout, atol=READOUT_ATOL, rtol=0)   # step-wise vs one matmul
    assert torch.equal(torch.stack(outs).mean(0).argmax(1), readout.mean(0).argmax(1))


def test_norse_reads_a_neurokd_student_written_for_it_and_gives_its_readout(tmp_path):
    """Norse 1.1.0's from_nir ignores r and the graph's dt: as written, a neurokd student runs wrong there;
    for_norse moves r into the weights and rescales time to Norse's 1e-3 step, and Norse's readout is then
    the student's (float32 rounding of r W aside), while neurokd still reads the same network."""
    norse = pytest.importorskip("norse.torch")
    from neurokd.exporters.to_nir import NORSE_DT, for_norse

    xs, readout, path = _student_graph(tmp_path)

    def norse_readout(graph):
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            net = norse.from_nir(graph, ignore_warnings=True)      # Norse's defaults: dt = 1e-3
        state, outs = None, []
        with torch.no_grad():
            for t in range(xs.shape[0]):
                out, state = net(xs[t], state)
                outs.append(out)
        return torch.stack(outs)

    as_written = norse_readout(nir.read(path))
    assert (as_written - readout).abs().max() > 0.1                # Norse's reading of the file as written
    variant = for_norse(nir.read(path))
    assert float(variant.metadata["dt"]) == NORSE_DT
    assert all(np.all(np.asarray(n.r) == 1) for n in variant.nodes.values() if isinstance(n, nir.LIF))
    out = norse_readout(variant)
    _readout_row("Norse 1.1.0 (for_norse)", out, readout)
    torch.testing.assert_close(out, readout, atol=READOUT_ATOL, rtol=0)     # float32 r W, step-wise matmuls
    assert torch.equal(out.mean(0).argmax(1), readout.mean(0).argmax(1))
    with torch.no_grad():                                           # and neurokd reads the variant as the student
        ours = nir_to_torch(variant)(xs.double(), record=True)["output"]
    torch.testing.assert_close(ours.float(), readout, atol=1e-5, rtol=0)  # float64 replay of the variant vs the float32 student
