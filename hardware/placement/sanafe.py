"""Cross-check a placed, costed network with SANA-FE (optional: ``pip install sanafe``, GPL-3.0).

SANA-FE (Boyle et al., IEEE TCAD 2025, doi 10.1109/TCAD.2025.3537971; PyPI ``sanafe``) simulates a
network already mapped onto the cores of an architecture and reports energy and latency per time
step; its shipped ``examples/loihi.yaml`` is a Loihi 1 model calibrated against the chip. This
module is the only place neurokd imports it (and only when called), so neurokd itself stays
BSD-licensed: SANA-FE is GPL-3.0 and an optional extra.

:func:`run` writes neurokd's placement into SANA-FE: the fixed-point network Lava's ``fixed_pt``
runs (:class:`~neurokd.hardware.network.quantize.FixedNetwork`), one SANA-FE neuron group per
layer, every neuron on the core the placement chose (neurokd core ``(x, y)`` -> SANA-FE tile
``x * tiles_y + y``, SANA-FE's column-major tile order, measured with one-message probes: tile 1 is
one north-south hop from tile 0, tile 4 one east-west hop), only the non-zero synapses, on SANA-FE's
Loihi architecture; the input neurons sit on the core after the network's last (the host's entry
point: neurokd's cost model is pointed there for the comparison). Units: SANA-FE's potential is
Lava's ``v / 64``, so weights are ``mant * 2^weight_exp``, thresholds ``vth``, biases
``bias_mant * 2^bias_exp / 64``, ``leak_decay = (4096 - dv) / 4096`` and ``input_decay = (4096 -
(du + 1)) / 4096``.

Where SANA-FE's Loihi model differs from Lava's (lava-nc 0.10 ``PyLifModelBitAcc``), and what it changes:

* membrane: SANA-FE multiplies by ``leak_decay`` and truncates to 1/64 (toward zero), Lava computes
  ``sign(v) (|v (4096 - dv)| >> 12)``: the same integer for ``|v| < 2^23`` (exact in float64), so
  spikes agree; Lava clips ``v`` to 24 bits, SANA-FE does not (no effect below the clip);
* synaptic current: SANA-FE decays it by ``input_decay`` without rounding, Lava rounds
  ``u (4096 - (du + 1)) >> 12``: identical for ``du = 4095`` (current cleared each step, every
  neurokd student), different in the low bits otherwise;
* weights: Lava applies a negative ``weight_exp`` to the summed input with a floor shift, SANA-FE sums
  ``mant * 2^weight_exp`` exactly: spikes can differ where a sum is not a multiple of ``2^-weight_exp``
  (reported as the measured spike agreement, never assumed);
* start: neurokd's engines (as Lava with ``LIFReset`` aligned to each layer's delay) start a layer
  from zero when its first input arrives; SANA-FE 2.2.9 integrates a neuron's constant ``bias`` from
  its first step, so a biased layer would enter its first input with ``layer.delay`` steps of decayed
  bias on its membrane, and keep integrating (and spiking) after its window. :func:`run` therefore
  (``aligned=True``, the default) sets each biased neuron's bias on the mapped neuron only for SANA-FE
  steps ``delay .. delay + T - 1`` and forces its update outside them (``force_update``: charged as an
  update, the potential untouched), stepping SANA-FE one step at a time. Measured on trained students
  (digits MLP, synth-kws conv1d): every spike identical; ``aligned=False`` (SANA-FE's own behaviour)
  gives 89-97 % agreement and up to 1,160 spikes per inference outside the window;
* readouts without neuron are a LIF that never fires (threshold 1e30, no leak): SANA-FE updates them
  every step as neurokd's cost model does;
* SANA-FE charges every synapse at one figure per synapse type; neurokd's placement uses
  ``loihi_dense_synapse`` for every connection (SANA-FE's conv synapse, 24.0 pJ, would need a
  conv-aware mapping);
* updates: SANA-FE accesses every neuron of a core in every step it simulates (``energy_access_neuron``)
  and adds ``energy_update_neuron`` when the neuron is *updated*: a non-zero potential, an input, a
  bias or a forced update; neurokd's cost model (:mod:`neurokd.hardware.placement.cost`) services every
  neuron in every hardware step of the inference and counts it active on the same conditions, from the
  fast model's per-step state (``record_state``; a current cleared each step is not state); SANA-FE's
  ``neurons_updated`` is compared with neurokd's active updates;
* time: SANA-FE's ``simple`` and ``detailed`` timing models take, per core and step, the longer of its
  neuron processing (updates, spikes out, messages sent) and its message receiving (messages in,
  synaptic ops: the time-step buffer sits before the soma, so a layer updates one step after it
  receives), plus its ``latency_sync`` table; neurokd's ``loihi1-sanafe`` file says the same
  (``time.phases_overlap = 1``), and neurokd adds the longest route and a barrier interpolated linearly
  in tiles (SANA-FE steps through its table: 686 against 1,000 ns at 3 tiles, the -1 to -3 % latency
  difference on the conv students).

Inputs must be binary spikes (SANA-FE's input neurons send spikes, not graded values).
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field

import numpy as np

from neurokd.errors import NeurokdError
from neurokd.hardware.placement.place import Placement, _position

SANAFE_HINT = "pip install sanafe (GPL-3.0, an optional extra of neurokd: pip install 'neurokd[sanafe]')"


def available() -> bool:
    try:
        import sanafe  # noqa: F401
    except ImportError:
        return False
    return True


def _sanafe():
    try:
        import sanafe
    except ImportError:
        raise NeurokdError(f"the SANA-FE cross-check needs the sanafe package: {SANAFE_HINT}") from None
    return sanafe


@dataclass
class SanafeRun:
    """SANA-FE's results per sample: ``energy[part]`` (J, parts total/synapse/soma/network),
    ``sim_time`` (s), ``spikes[layer]`` ``(N, steps, size)`` uint8 in SANA-FE's time, counters, and its
    per-step perf trace."""

    samples: int
    steps: int
    energy: dict[str, np.ndarray]
    sim_time: np.ndarray
    spikes: dict[str, np.ndarray]
    synaptic_events: np.ndarray
    packets: np.ndarray
    hops: np.ndarray
    neurons_updated: np.ndarray
    seconds: float
    input_core: int
    notes: list[str] = field(default_factory=list)
    perf: list[dict[str, np.ndarray]] = field(default_factory=list)   # SANA-FE's perf trace per sample


def _tile_of(x: int, y: int, tiles_y: int) -> int:
    return x * tiles_y + y


def run(placement: Placement, network, fixed, x: np.ndarray, timing_model: str = "detailed",
        extra_steps: int | None = None, aligned: bool = True) -> SanafeRun:
    """Run ``x`` (``(N, T, *input_shape)`` binary) through SANA-FE on ``placement`` (module docstring).

    ``fixed``: the quantised network (``result.fixed`` of a fixed-point run on the same ``x``).
    ``extra_steps``: steps after the input for the pipeline to drain (default: the network's depth).
    ``aligned``: gate each biased layer's bias to its window (SANA-FE steps ``delay .. delay + T - 1``, set
    on the mapped neurons between steps) and force its update outside it, as Lava's reset-aligned run
    does; False gives SANA-FE's own behaviour (the bias from the first step on, the layer free-running).
    """
    sanafe = _sanafe()
    chip = placement.chip
    if fixed is None:
        raise NeurokdError("the SANA-FE cross-check needs a fixed-point run (precision fixed)")
    x = np.asarray(x)
    if x.ndim < 3 or not np.all((x == 0) | (x == 1)):
        raise NeurokdError("the SANA-FE cross-check needs binary input spikes (N, T, ...): SANA-FE's inputs send "
                           "spikes, not graded values")
    n, T = x.shape[:2]
    flat = x.reshape(n, T, -1)
    steps = T + (network.max_delay if extra_steps is None else extra_steps)
    per_tile, ty = chip["mesh.cores_per_tile"], chip["mesh.tiles_y"]
    input_core = placement.n_cores
    if input_core >= chip.cores_per_chip * placement.n_chips:
        raise NeurokdError("the SANA-FE cross-check needs one free core for the input neurons")
    n_in = flat.shape[2]
    if n_in > 1024:
        raise NeurokdError(f"the SANA-FE cross-check puts the {n_in} input neurons on one core (1,024 at most)")
    if placement.n_chips > 1:
        raise NeurokdError("the SANA-FE cross-check maps one chip (SANA-FE's Loihi architecture is one chip)")
    for layer in network.layers:
        fl = fixed.layers[layer.name]
        for syn in layer.synapses:
            if syn.delay > 1 or (syn.delays is not None and np.any(syn.delays)):
                raise NeurokdError(f"layer {layer.name!r}: synapse {syn.name!r} from {syn.source!r} waits "
                                   f"{syn.delay - 1 + (0 if syn.delays is None else int(np.max(syn.delays)))} step(s) (a residual "
                                   "shortcut or the graph's own delays); the SANA-FE cross-check maps no synaptic delays: "
                                   "compare a network whose paths are equally deep")
        if fl.bias_synapse is not None:
            raise NeurokdError(f"layer {layer.name!r}: a current bias through a synapse has no SANA-FE form here")
    energy = {k: np.zeros(n) for k in ("total", "synapse", "soma", "network")}
    sim_time, syn_events, packets, hops, updated = (np.zeros(n) for _ in range(5))
    spikes = {l.name: np.zeros((n, steps, l.size), dtype=np.uint8) for l in network.layers if l.neuron.spiking}
    perf = []
    # which placement core holds each neuron
    owner = {}
    for pop, ids in placement.layer_cores.items():
        for i in ids:
            owner.setdefault(placement.cores[i].layer, []).append(placement.cores[i])
    # synapse lists (the same for every sample)
    edges = []
    for layer in network.layers:
        for syn in layer.synapses:
            fs = fixed.layers[layer.name].synapses[syn.name]
            eff = fs.effective
            if syn.kind == "dense":
                w = eff
            else:
                eye = np.eye(syn.n_in).reshape(syn.n_in, *syn.in_shape)
                w = syn.apply(eye, weight=eff).reshape(syn.n_in, -1).T
            nz = np.argwhere(w != 0)                                  # (target, source)
            edges.append((syn.source, layer.name, [(int(s), int(t)) for t, s in nz],
                          [float(w[t, s]) for t, s in nz]))
    t0 = time.perf_counter()
    arch = sanafe.load_arch(str(_arch_path(sanafe)))
    sim = sanafe.SpikingChip(arch)              # built once (seconds); each sample reloads a network into it
    for k in range(n):
        snn = sanafe.Network()
        cores = arch.cores()
        groups, biased = {}, {}
        inp = snn.create_neuron_group("input", n_in, log_spikes=False)
        groups[network.input_name] = inp
        icore = cores[_tile_of(*_position(input_core, chip)[2:], ty) * per_tile + input_core % per_tile]
        for i in range(n_in):
            inp.neurons[i].set_attributes(soma_hw_name=f"loihi_inputs[{i}]",
                                          model_attributes={"spikes": [bool(v) for v in flat[k, :, i]]})
            inp.neurons[i].map_to_core(icore)
        for layer in network.layers:
            fl = fixed.layers[layer.name]
            fn = fl.neuron
            if fn is None or not layer.neuron.spiking:
                attrs = {"threshold": 1e30, "leak_decay": 0.0, "input_decay": 0.0, "reset": 0.0, "reset_mode": "hard"}
                bias = np.zeros(layer.size)
            else:
                attrs = {"threshold": float(fn.vth), "leak_decay": (4096 - fn.dv) / 4096.0,
                         "input_decay": (4096 - (fn.du + 1)) / 4096.0, "reset": 0.0, "reset_mode": "hard"}
                bias = np.asarray(fn.bias_mant, dtype=np.float64) * 2.0 ** fn.bias_exp / 64.0
            g = snn.create_neuron_group(layer.name, layer.size, model_attributes=attrs, soma_hw_name="loihi_lif",
                                        default_synapse_hw_name="loihi_dense_synapse", log_spikes=layer.neuron.spiking)
            groups[layer.name] = g
            bias = np.broadcast_to(bias, (layer.size,))
            biased[layer.name] = (layer.delay, [(int(i), float(bias[i])) for i in np.nonzero(bias)[0]])
            for i, b in biased[layer.name][1]:
                g.neurons[i].set_attributes(model_attributes={"bias": 0.0, "force_update": True} if aligned
                                            else {"bias": b})
            for c in owner[layer.name]:
                sc = cores[_tile_of(c.x - c.chip * chip["mesh.tiles_x"], c.y, ty) * per_tile + c.core % per_tile]
                for i in (range(c.lo, c.hi) if c.block is None else c.indices().tolist()):
                    g.neurons[i].map_to_core(sc)
        for src, dst, pairs, weights in edges:
            if pairs:
                groups[src].connect_neurons_sparse(groups[dst], {"weight": weights}, pairs)
        sim.reset()
        sim.load(snn)
        mapped = sim.mapped_neuron_groups if aligned else {}
        changes = {}                              # SANA-FE step -> [(group, neuron, attributes)]
        for name, (delay, items) in biased.items():
            if aligned and items:
                changes.setdefault(delay, []).extend((name, i, {"bias": b}) for i, b in items)
                changes.setdefault(delay + T, []).extend((name, i, {"bias": 0.0, "force_update": True})
                                                         for i, _ in items)
        outs = []
        if aligned:
            for t in range(steps):
                for name, i, attrs in changes.get(t, ()):
                    mapped[name][i].set_attributes(model_attributes=attrs)
                outs.append(sim.sim(1, timing_model=timing_model, spike_trace=True, perf_trace=True))
        else:
            outs.append(sim.sim(steps, timing_model=timing_model, spike_trace=True, perf_trace=True))
        for part in energy:
            energy[part][k] = sum(float(o["energy"].get(part, 0.0)) for o in outs)
        sim_time[k] = sum(float(o["sim_time"]) for o in outs)
        syn_events[k] = sum(float(o["spikes"]) for o in outs)
        packets[k] = sum(float(o["packets_sent"]) for o in outs)
        hops[k] = sum(float(np.sum(o["perf_trace"]["hops"])) for o in outs)
        perf.append({key: np.concatenate([np.asarray(o["perf_trace"][key], dtype=np.float64) for o in outs])
                     for key, v in outs[0]["perf_trace"].items() if np.asarray(v).dtype.kind in "fiu"})
        # SANA-FE counts an input neuron as updated in each step it spikes (at no cost): not a network neuron
        updated[k] = sum(float(o["neurons_updated"]) for o in outs) - float(flat[k].sum())
        trace = [step for o in outs for step in o["spike_trace"]]
        for t, step in enumerate(trace[:steps]):
            for a in step:
                if a.group_name in spikes:
                    spikes[a.group_name][k, t, a.neuron_offset] = 1
    notes = [f"SANA-FE {getattr(sanafe, '__version__', '')} timing model {timing_model!r}, "
             f"architecture {_arch_path(sanafe).name}, {steps} steps per sample (T = {T} plus the pipeline)"]
    return SanafeRun(n, steps, energy, sim_time, spikes, syn_events, packets, hops, updated,
                     time.perf_counter() - t0, input_core, notes, perf)


def _arch_path(sanafe):
    from pathlib import Path

    return Path(sanafe.__file__).parent / "examples" / "loihi.yaml"


def spike_agreement(network, result, run_: SanafeRun) -> dict[str, dict]:
    """Per spiking layer: spikes in neurokd's run and SANA-FE's (SANA-FE's step ``t + layer.delay`` is
    neurokd's step ``t``), and the fraction of (sample, step, neuron) that agree."""
    out = {}
    T = result.timesteps
    for layer in network.layers:
        if not layer.neuron.spiking:
            continue
        ours = np.asarray(result.spikes[layer.name][: run_.samples]).astype(np.uint8)
        theirs = run_.spikes[layer.name][:, layer.delay:layer.delay + T]
        theirs = np.pad(theirs, ((0, 0), (0, T - theirs.shape[1]), (0, 0)))
        out[layer.name] = {"neurokd": int(ours.sum()), "sanafe": int(theirs.sum()),
                           "agreement": float(np.mean(ours == theirs)), "identical": bool(np.array_equal(ours, theirs))}
    return out


def _outside_window(network, result, run_: SanafeRun, geometry) -> dict:
    """SANA-FE's spikes outside neurokd's window (before a layer's first input, after the input ends: its
    biased layers keep integrating while the pipeline fills and drains), per inference, and the synaptic
    events they cause (spikes x non-zero fan-out of each outgoing connection)."""
    from neurokd.hardware.cost.counting import fanout

    T = result.timesteps
    spikes, events = {}, 0.0
    for layer in network.layers:
        if not layer.neuron.spiking:
            continue
        sp = run_.spikes[layer.name].astype(np.float64)
        inside = np.zeros(sp.shape[1], dtype=bool)
        inside[layer.delay:layer.delay + T] = True
        out_counts = sp[:, ~inside].sum(axis=(0, 1)) / run_.samples          # per neuron, per inference
        spikes[layer.name] = float(out_counts.sum())
        for conn in geometry.connections:
            if conn.source == layer.name:
                events += float((out_counts * fanout(conn).reshape(-1)).sum())
    return {"spikes": spikes, "events": events}


def comparison_rows(network, result, run_: SanafeRun, same, cited, replay=None) -> list[dict]:
    """``sanafe_comparison.csv``: per inference (mean over samples), SANA-FE against neurokd with SANA-FE's
    figures (``same``, a :class:`~neurokd.hardware.placement.MapResult` on ``loihi1-sanafe``) and with
    neurokd's cited defaults (``cited``, on ``loihi1``), with the relative difference to SANA-FE; with
    ``replay`` (neurokd's cost model, SANA-FE's figures, on SANA-FE's own spikes inside neurokd's window)
    also that column, which separates the cost model from the neuron models' differences. Spike rows are
    per inference; their ``diff_cited_pct`` column holds the spike agreement minus 100 (0: identical).
    ``synaptic_events_outside_window`` counts what SANA-FE's layers do outside neurokd's T-step window."""
    def parts(m):
        c = m.cost
        ch = c.chip
        syn = (c.per_core("synops").sum() + c.per_core("macs").sum()) * ch["energy.synop_pj"]
        soma = (c.per_core("updates_active").sum() * ch["energy.update_active_pj"]
                + c.per_core("updates_inactive").sum() * ch["energy.update_inactive_pj"]
                + c.per_core("spikes").sum() * ch.opt("energy.spike_out_pj"))
        return {"energy_uj": c.energy_pj / 1e6, "synapse_uj": syn / 1e6, "soma_uj": soma / 1e6,
                "network_uj": c.routing_pj / 1e6, "latency_us": c.latency_ns / 1e3,
                "synaptic_events": c.per_core("synops").sum() + c.per_core("macs").sum(),
                "messages": c.per_core("msgs_sent").sum() + c.host_total("msgs_sent"),
                "hops": c.per_core("hops_ew").sum() + c.per_core("hops_ns").sum() + c.host_total("hops_ew")
                + c.host_total("hops_ns"),
                "neuron_updates": c.per_core("updates_active").sum()}          # SANA-FE's "updated": active

    s = {"energy_uj": run_.energy["total"].mean() * 1e6, "synapse_uj": run_.energy["synapse"].mean() * 1e6,
         "soma_uj": run_.energy["soma"].mean() * 1e6, "network_uj": run_.energy["network"].mean() * 1e6,
         "latency_us": run_.sim_time.mean() * 1e6, "synaptic_events": run_.synaptic_events.mean(),
         "messages": run_.packets.mean(), "hops": run_.hops.mean(), "neuron_updates": run_.neurons_updated.mean()}
    a, b = parts(same), parts(cited)
    r = parts(replay) if replay is not None else None
    rows = []
    for key, value in s.items():
        row = {"metric": key, "sanafe": value, "neurokd_same_figures": a[key],
               "diff_same_pct": (a[key] - value) / value * 100 if value else float("nan"),
               "neurokd_cited_defaults": b[key],
               "diff_cited_pct": (b[key] - value) / value * 100 if value else float("nan")}
        if r is not None:
            row["neurokd_on_sanafe_spikes"] = r[key]
            row["diff_on_sanafe_spikes_pct"] = (r[key] - value) / value * 100 if value else float("nan")
        rows.append(row)
    outside = _outside_window(network, result, run_, same.placement.geometry)
    rows.append({"metric": "synaptic_events_outside_window", "sanafe": outside["events"], "neurokd_same_figures": 0.0,
                 "diff_same_pct": float("nan"), "neurokd_cited_defaults": 0.0, "diff_cited_pct": float("nan")})
    for name, n_out in outside["spikes"].items():
        rows.append({"metric": f"spikes {name} outside window", "sanafe": n_out, "neurokd_same_figures": 0.0,
                     "diff_same_pct": float("nan"), "neurokd_cited_defaults": 0.0, "diff_cited_pct": float("nan")})
    for name, info in spike_agreement(network, result, run_).items():
        n = run_.samples                          # per inference, like every other row
        rows.append({"metric": f"spikes {name}", "sanafe": info["sanafe"] / n, "neurokd_same_figures": info["neurokd"] / n,
                     "diff_same_pct": (info["neurokd"] - info["sanafe"]) / info["sanafe"] * 100 if info["sanafe"] else 0.0,
                     "neurokd_cited_defaults": info["neurokd"] / n, "diff_cited_pct": info["agreement"] * 100 - 100})
    return rows


def cross_check(network, result, x: np.ndarray, samples: int = 8, placer: str = "pack",
                timing_model: str = "detailed", overrides: dict[str, float] | None = None, aligned: bool = True):
    # ``result``: a fast-model fixed-point run with ``record_steps`` and ``record_state``: neuron updates are
    # counted from the state the neurons keep
    """Place ``network`` on ``loihi1-sanafe`` (the limits of ``loihi1``), cost the first ``samples`` of a
    fixed-point ``result`` (run on binary input ``x``) with SANA-FE's figures and with neurokd's cited
    Loihi 1 defaults, run the same samples in SANA-FE. ``overrides`` (e.g. ``{"core.neurons": 8}`` to
    spread a small network over tiles) apply to both chips. Returns ``(run, same, cited, rows)``."""
    from dataclasses import replace

    from neurokd.hardware.cost.counting import geometry_from_ir
    from neurokd.hardware.placement import MapResult
    from neurokd.hardware.placement.chips import load_chip
    from neurokd.hardware.cost.counting import rasters_from_result
    from neurokd.hardware.placement.cost import cost, neuron_load, state_from_result
    from neurokd.hardware.placement.place import place

    if result.spikes is None:
        raise NeurokdError("the SANA-FE cross-check needs per-step spikes (record_steps=True)")
    k = min(samples, result.samples)
    chip = load_chip("loihi1-sanafe", overrides)
    geometry = geometry_from_ir(network, fixed=result.fixed)
    rasters = {name: r[:, :k] for name, r in rasters_from_result(geometry, result, x).items()}
    state = state_from_result(geometry, result)
    if state is None:
        raise NeurokdError("the SANA-FE cross-check needs the fast model's per-step state (run it with record_state=True; "
                           "SANA-FE updates a neuron while its potential is non-zero)")
    state = None if state is None else {name: r[:, :k] for name, r in state.items()}
    load = neuron_load(geometry, rasters, chip) if placer == "balance" else None
    pl = place(network, chip, placer=placer, geometry=geometry, load=load)
    pl.input_xy = tuple(_position(pl.n_cores, chip)[2:])
    pl.notes.append(f"for the SANA-FE comparison the input enters at core {pl.n_cores}'s tile {pl.input_xy}, "
                    "where SANA-FE's input neurons sit")
    run_ = run(pl, network, result.fixed, np.asarray(x)[:k], timing_model=timing_model, aligned=aligned)
    same = MapResult(chip, pl, cost(pl, rasters, network=network, state=state))
    pl_cited = replace(pl, chip=load_chip("loihi1", overrides))
    cited = MapResult(pl_cited.chip, pl_cited, cost(pl_cited, rasters, network=network, state=state))

    class _Sub:                                   # the first k samples of the result, for the spike comparison
        timesteps = result.timesteps
        spikes = {name: v[:k] for name, v in result.spikes.items()}

    replay_rasters = {network.input_name if network.input_name in rasters else next(iter(rasters)):
                      rasters[network.input_name]}
    T = result.timesteps
    for layer in network.layers:
        if layer.neuron.spiking:                  # SANA-FE's step t + delay is neurokd's step t
            sp = run_.spikes[layer.name][:, layer.delay:layer.delay + T]
            sp = np.pad(sp, ((0, 0), (0, T - sp.shape[1]), (0, 0)))
            replay_rasters[layer.name] = np.swapaxes(sp, 0, 1).reshape(T, k, *layer.shape)
    replay = MapResult(chip, pl, cost(pl, replay_rasters, network=network))
    rows = comparison_rows(network, _Sub, run_, same, cited, replay)
    return run_, same, cited, rows


COMPARISON_COLUMNS = ("metric", "sanafe", "neurokd_same_figures", "diff_same_pct", "neurokd_on_sanafe_spikes",
                      "diff_on_sanafe_spikes_pct", "neurokd_cited_defaults", "diff_cited_pct")

__all__ = ["available", "run", "cross_check", "SanafeRun", "spike_agreement", "comparison_rows", "COMPARISON_COLUMNS", "SANAFE_HINT"]
