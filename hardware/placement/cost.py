"""Cost every time step of a placed network, core by core, from the spikes an engine produced.

``cost(placement, rasters)`` -> :class:`CostReport`. ``rasters`` are per-step events
``{population: (T, N, *shape)}`` in the network's own time (what :func:`neurokd.hardware.cost.counting.rasters_from_result`
builds from a Lava or fast-model result run with ``record_steps=True``): the input's values and
every spiking layer's spikes, as :func:`neurokd.hardware.cost.counting.activity_from_rasters` reads them.

Per core ``k``, hardware step ``t`` and sample (definitions of :mod:`neurokd.hardware.cost.counting`):

* ``synops`` / ``macs``: synaptic events onto the core's neurons from binary / graded sources
  (:func:`~neurokd.hardware.cost.counting.propagate_events`, summed over the core's range);
* ``updates_active`` / ``updates_inactive``: every neuron of a used core is serviced in every hardware
  step of the inference (its pipeline's fill and drain included); active when it received an event,
  spiked, has a bias, or kept state (``u`` or ``v`` non-zero) from the step before (``state``, from the
  fast model's traces: :func:`state_from_result`; without them, event, spike or bias);
* ``spikes``: spikes the core's neurons emit;
* ``msgs_sent``: one spike message per (spiking neuron, outgoing connection, destination core
  holding one of its non-zero targets); ``msgs_received`` likewise at the destination;
* ``hops_ew`` / ``hops_ns``: tile hops those messages travel (dimension-order routing on the
  mesh: ``|dx|`` east-west, ``|dy|`` north-south), ``chip_crossings`` chip boundaries crossed.
  The host's input messages are a row of their own (``host``), entering at ``placement.input_xy``; each
  is also charged the chip's optional ``input.host_message_pj`` and takes ``input.host_message_ns`` on the
  host link (a step lasts at least its host messages' time). How the input reaches the chip (graded
  values, host spikes, an on-chip input layer, the first layer on the host) is :mod:`.inputs`; a placed
  population without incoming synapses (a bias-driven input layer) updates and sends in the step the first
  layer receives its spikes, so it adds no pipeline stage.

Time (ns), per core and step: a receiving phase, ``synops * synop_ns + macs * synop_ns + msgs_received *
message_in_ns``, and a neuron phase, ``active * update_active_ns + inactive * update_inactive_ns +
msgs_sent * spike_ns + spikes * spike_out_ns`` (optional figures count 0 where the chip file leaves them
out), added, or overlapped (the longer of the two) where the chip says ``time.phases_overlap = 1``.
A layer receives in hardware step ``delay - 1 + t`` and updates on that input one step later (Loihi's
and SANA-FE's time-step buffer before the compartment), so one inference takes ``T + depth`` hardware
steps (depth: the deepest layer's delay). A step takes the slowest core, or the busiest tile's messages
at ``tile_bandwidth_spikes_per_s`` if that is longer, plus the longest route a message of that step
travels (``hops * hop_ns``; an upper bound: each sending core's farthest destination), plus the barrier
(:meth:`~neurokd.hardware.placement.chips.Chip.barrier_ns` of the tiles used, the input's tile
included). Latency per inference is the sum of its steps, and inferences per second its inverse (one
inference at a time).

Energy (pJ) per inference: the compute part by :func:`neurokd.hardware.cost.energy.energy` on per-core
counts with the chip's per-event figures (:func:`energy_model`; spikes at the optional
``spike_out_pj``), plus routing: ``msgs * spike_pj +
hops_ew * hop_ew_pj + hops_ns * hop_ns_pj + chip_crossings * chip_crossing_pj``. The synaptic ops and
spikes summed over cores equal :func:`neurokd.hardware.cost.counting.count` on the same rasters (tested);
the neuron updates do not: the energy report counts ``T`` per neuron (streamed inferences overlap the
pipeline), the placement every hardware step of one inference.
"""

from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
import scipy.sparse

from neurokd.errors import NeurokdError
from neurokd.hardware.cost import energy as energy_mod
from neurokd.hardware.cost.counting import Counts, Geometry, LayerCounts, _delay_parts, propagate_events
from neurokd.hardware.placement.chips import Chip
from neurokd.hardware.placement.place import Placement

#: Per-core quantities, in the order of cost_report.csv.
QUANTITIES = ("synops", "macs", "updates_active", "updates_inactive", "spikes", "msgs_sent", "msgs_received",
              "hops_ew", "hops_ns", "chip_crossings")


def energy_model(chip: Chip) -> "energy_mod.EnergyModel":
    """The chip's per-event energies as an :class:`~neurokd.hardware.cost.energy.EnergyModel`: ``spike`` is the
    optional ``energy.spike_out_pj`` (a neuron emitting a spike); routing is charged apart, per message and hop."""
    def cost(key: str, what: str) -> "energy_mod.Cost":
        f = chip.fig(key)
        return energy_mod.Cost(f.value, None, f"{chip.name} {key} ({f.status}, {f.source}: {f.note or what})")

    return energy_mod.EnergyModel(
        name=chip.name, title=f"{chip.title}: per-event energies of the chip file",
        synop=cost("energy.synop_pj", "per synaptic op"),
        mac=cost("energy.synop_pj", "per graded input event and synapse, charged as a synaptic op"),
        update_active=cost("energy.update_active_pj", "active update"),
        update_inactive=cost("energy.update_inactive_pj", "inactive update"),
        spike=(cost("energy.spike_out_pj", "per spike a neuron emits") if "energy.spike_out_pj" in chip.figures
               else energy_mod.NOT_CHARGED),
        notes=tuple(f"{f.key} = {f.value:g} is {f.status}: {f.note}" for f in chip.stand_ins()),
    )


def _received(geometry: Geometry, rasters: dict[str, np.ndarray], pop: str, T: int, B: int):
    """Per target neuron and step ``(T, B, size)`` int64: synaptic events from spiking sources, from graded
    sources (``None`` where no such source feeds the population), and both together."""
    p = geometry.population(pop)
    pops = {q.name: q for q in geometry.populations}
    got = {True: None, False: None}                      # spiking source? -> events received from such sources
    for conn in geometry.incoming(pop):
        for c in _delay_parts(conn):
            if c.delay >= T:
                continue
            src = (rasters[c.source] != 0)[: T - c.delay].reshape((T - c.delay) * B, *c.input_shape)
            recv = propagate_events(c, src).reshape(T - c.delay, B, -1)
            kind = bool(pops[c.source].spiking)
            if got[kind] is None and c.delay == 0:
                got[kind] = recv                           # a fresh array: taken as it is, no copy
                continue
            if got[kind] is None:
                got[kind] = np.zeros((T, B, p.size), dtype=np.int64)
            got[kind][c.delay:] += recv
    syn, mac = got[True], got[False]
    both = syn + mac if syn is not None and mac is not None else syn if syn is not None else mac
    return syn, mac, both if both is not None else np.zeros((T, B, p.size), dtype=np.int64)


@dataclass
class CostReport:
    """Per-core, per-step cost of one placement and one set of rasters (module docstring).

    ``steps[q]``: ``(T_hw, N, cores)`` of quantity ``q`` (:data:`QUANTITIES`); ``host[q]``: ``(T_hw, N)``
    for the host's input messages; ``core_ns``: ``(T_hw, N, cores)`` busy time; ``step_ns``: ``(T_hw, N)``
    step latency. Per-inference figures are means over the ``N`` samples.
    """

    placement: Placement
    samples: int
    timesteps: int
    steps: dict[str, np.ndarray]
    host: dict[str, np.ndarray]
    core_ns: np.ndarray
    tile_ns: np.ndarray
    route_ns: np.ndarray
    barrier_ns: float
    step_ns: np.ndarray
    energy: "energy_mod.EnergyEstimate"
    notes: list[str] = field(default_factory=list)
    input_charge: "object | None" = None     # the input mode and what it charges (:class:`.inputs.InputCharge`)
    neuron_at: "np.ndarray | None" = None    # per core: the hardware step of its first neuron phase

    # -- streamed inferences ----------------------------------------------------------------------
    def steady_state(self) -> dict:
        """Per hardware step when inferences are streamed back to back (pipelined: while the deeper layers finish
        one inference the first ones work on the next, as a chip runs a stream of frames; Intel's throughput
        figures are of this kind). Every core then works in every step on the inference of its own window: step
        ``h`` of the single inference above lands in steady-state phase ``h mod T``, each core's work folded onto
        the ``T`` phases; a neuron is updated once per step (its active updates those of its window, the rest
        inactive: the single inference's fill and drain updates are not counted again). A phase takes the slowest
        core (or busiest tile) + its longest route + the barrier. Returns ``step_ns`` (mean over phases and
        samples), ``energy_pj_per_step`` (dynamic, every event of a phase, routing and host messages included),
        ``step_ns_per_phase``, and the core on the critical path (``bottleneck_core``, ``bottleneck_layer``)."""
        T, Th, N = self.timesteps, self.hardware_steps, self.samples
        pl, c = self.placement, self.chip
        on = self.neuron_at if self.neuron_at is not None else np.zeros(pl.n_cores, dtype=np.int64)
        h = np.arange(Th)
        window = (h[:, None] >= on[None]) & (h[:, None] < on[None] + T)                 # (Th, cores)

        def fold(a, how=np.add):
            out = np.zeros((T,) + a.shape[1:])
            for k in range(Th):
                out[k % T] = how(out[k % T], a[k])
            return out

        steps = {q: fold(self.steps[q]) for q in QUANTITIES if q not in ("updates_active", "updates_inactive")}
        sizes = np.array([cc.neurons for cc in pl.cores], dtype=np.float64)
        steps["updates_active"] = fold(self.steps["updates_active"] * window[:, None, :])
        steps["updates_inactive"] = sizes - steps["updates_active"]
        host = {q: fold(v) for q, v in self.host.items()}
        route = fold(self.route_ns, np.maximum)
        core_ns, tile_ns = _core_and_tile_ns(pl, steps)
        host_ns = host["msgs_sent"] * c.opt("input.host_message_ns")
        step_ns = np.maximum(np.maximum(core_ns.max(axis=2), tile_ns.max(axis=2)), host_ns) + route + self.barrier_ns
        e_core = ((steps["synops"] + steps["macs"]) * c["energy.synop_pj"]
                  + steps["updates_active"] * c["energy.update_active_pj"]
                  + steps["updates_inactive"] * c["energy.update_inactive_pj"] + steps["spikes"] * c.opt("energy.spike_out_pj")
                  + steps["msgs_sent"] * c["energy.spike_pj"] + steps["hops_ew"] * c["energy.hop_ew_pj"]
                  + steps["hops_ns"] * c["energy.hop_ns_pj"] + steps["chip_crossings"] * c["energy.chip_crossing_pj"])
        e = e_core.sum(axis=2) + host["msgs_sent"] * (c["energy.spike_pj"] + c.opt("input.host_message_pj")) \
            + host["hops_ew"] * c["energy.hop_ew_pj"] + host["hops_ns"] * c["energy.hop_ns_pj"] \
            + host["chip_crossings"] * c["energy.chip_crossing_pj"]
        critical = np.bincount(core_ns.argmax(axis=2).reshape(-1), weights=core_ns.max(axis=2).reshape(-1),
                               minlength=pl.n_cores)
        core = int(critical.argmax())
        return {"step_ns": float(step_ns.mean()), "energy_pj_per_step": float(e.mean()),
                "core_ns_per_step": core_ns.mean(axis=(0, 1)), "core_ns_max_step": core_ns.max(axis=(0, 1)),
                "energy_pj_per_core_step": e_core.mean(axis=(0, 1)),
                "synop_ns_per_core_step": ((steps["synops"] + steps["macs"]) * c["time.synop_ns"]).mean(axis=(0, 1)),
                "step_ns_per_phase": step_ns.mean(axis=1), "energy_pj_per_phase": e.mean(axis=1),
                "slowest_core_ns": float(core_ns.max(axis=2).mean()), "barrier_ns": self.barrier_ns,
                "route_ns": float(route.mean()), "bottleneck_core": core, "bottleneck_layer": pl.cores[core].layer,
                "counts_per_step": {q: float(v.sum(axis=2).mean()) for q, v in steps.items()}}

    # -- per core, per inference ------------------------------------------------------------------
    def per_core(self, q: str) -> np.ndarray:
        return self.steps[q].sum(axis=0).mean(axis=0)

    def host_total(self, q: str) -> float:
        return float(self.host[q].sum(axis=0).mean()) if q in self.host else 0.0

    @property
    def chip(self) -> Chip:
        return self.placement.chip

    def routing_pj_per_core(self) -> np.ndarray:
        c = self.chip
        return (self.per_core("msgs_sent") * c["energy.spike_pj"] + self.per_core("hops_ew") * c["energy.hop_ew_pj"]
                + self.per_core("hops_ns") * c["energy.hop_ns_pj"] + self.per_core("chip_crossings") * c["energy.chip_crossing_pj"])

    @property
    def host_routing_pj(self) -> float:
        c = self.chip
        return (self.host_total("msgs_sent") * (c["energy.spike_pj"] + c.opt("input.host_message_pj"))
                + self.host_total("hops_ew") * c["energy.hop_ew_pj"]
                + self.host_total("hops_ns") * c["energy.hop_ns_pj"]
                + self.host_total("chip_crossings") * c["energy.chip_crossing_pj"])

    def compute_pj_per_core(self) -> np.ndarray:
        return np.array([row.pj for row in self.energy.layers])

    @property
    def energy_pj(self) -> float:
        return float(self.compute_pj_per_core().sum() + self.routing_pj_per_core().sum() + self.host_routing_pj)

    @property
    def routing_pj(self) -> float:
        return float(self.routing_pj_per_core().sum() + self.host_routing_pj)

    @property
    def hardware_steps(self) -> int:
        return int(self.step_ns.shape[0])

    @property
    def latency_ns(self) -> float:
        """Per inference: the sum of its hardware steps, mean over samples."""
        return float(self.step_ns.sum(axis=0).mean())

    @property
    def latency_ns_per_step(self) -> float:
        return self.latency_ns / self.hardware_steps

    @property
    def inferences_per_s(self) -> float:
        return 1e9 / self.latency_ns if self.latency_ns > 0 else float("inf")

    @property
    def edp(self) -> float:
        """Energy-delay product per inference, J * s."""
        return self.energy_pj * 1e-12 * self.latency_ns * 1e-9

    # -- what bounds a step ---------------------------------------------------------------------------
    def bottleneck(self) -> dict:
        """The core on the critical path: summed over steps and samples, the time it is the slowest core
        (it sets the step), and what its time is made of."""
        slowest = self.core_ns.argmax(axis=2)                     # (T_hw, N)
        active = self.core_ns.max(axis=2) > 0
        counts = np.bincount(slowest[active].reshape(-1), minlength=self.placement.n_cores)
        critical = np.bincount(slowest.reshape(-1), weights=self.core_ns.max(axis=2).reshape(-1),
                               minlength=self.placement.n_cores)
        core = int(critical.argmax()) if critical.sum() else int(self.core_ns.sum(axis=(0, 1)).argmax())
        c = self.chip
        parts = {
            "synaptic ops": (self.per_core("synops")[core] + self.per_core("macs")[core]) * c["time.synop_ns"],
            "neuron updates": (self.per_core("updates_active")[core] * c["time.update_active_ns"]
                               + self.per_core("updates_inactive")[core] * c["time.update_inactive_ns"]),
            "spikes and messages": (self.per_core("msgs_sent")[core] * c["time.spike_ns"]
                                    + self.per_core("spikes")[core] * c.opt("time.spike_out_ns")
                                    + self.per_core("msgs_received")[core] * c.opt("time.message_in_ns")),
        }
        total = sum(parts.values()) or 1.0
        bound = max(parts, key=parts.get)
        mean_core = float(self.core_ns.max(axis=2).mean())
        step = float(self.step_ns.mean())
        info = self.placement.cores[core]
        return {
            "core": core, "layer": info.layer, "neurons": info.neuron_range,
            "slowest_fraction": float(counts[core] / max(counts.sum(), 1)),
            "bound": bound, "shares": {k: v / total for k, v in parts.items()},
            "busy_ns_per_inference": float(self.core_ns[:, :, core].sum(axis=0).mean()),
            "share_of_step": {"slowest core": mean_core / step if step else 0.0,
                              "barrier": self.barrier_ns / step if step else 0.0,
                              "routes": float(self.route_ns.mean()) / step if step else 0.0},
            "tile_bound_steps": float(np.mean(self.tile_ns.max(axis=2) > self.core_ns.max(axis=2))),
        }

    # -- tables ----------------------------------------------------------------------------------------
    def rows(self) -> list[dict]:
        """cost_report.csv: one row per core, per layer, the host, the total, then summary rows."""
        pl = self.placement
        per = {q: self.per_core(q) for q in QUANTITIES}
        busy = self.core_ns.sum(axis=0).mean(axis=0)
        busy_max = self.core_ns.max(axis=(0, 1))
        comp, rout = self.compute_pj_per_core(), self.routing_pj_per_core()
        rows = []

        def row(scope, name, idx, **extra):
            r = {"scope": scope, "name": name, **extra}
            for q in QUANTITIES:
                r[q] = float(per[q][idx].sum())
            r["busy_ns"] = float(busy[idx].sum())
            r["busy_ns_max_step"] = float(busy_max[idx].max()) if np.size(idx) else 0.0
            r["energy_compute_pj"] = float(comp[idx].sum())
            r["energy_routing_pj"] = float(rout[idx].sum())
            r["energy_pj"] = r["energy_compute_pj"] + r["energy_routing_pj"]
            return r

        for c in pl.cores:
            rows.append(row("core", str(c.core), [c.core], chip=c.chip, tile=c.tile, x=c.x, y=c.y, layer=c.layer,
                            neuron_range=c.neuron_range, neurons=c.neurons, synapses=c.synapses,
                            synaptic_memory_bytes=c.memory_bytes))
        for pop, ids in pl.layer_cores.items():
            cs = [pl.cores[i] for i in ids]
            rows.append(row("layer", cs[0].layer, ids, layer=cs[0].layer, neurons=sum(c.neurons for c in cs),
                            synapses=sum(c.synapses for c in cs),
                            synaptic_memory_bytes=sum(c.memory_bytes for c in cs), cores=len(ids)))
        host = {"scope": "host", "name": "input", **{q: self.host_total(q) for q in QUANTITIES}}
        host.update(energy_compute_pj=0.0, energy_routing_pj=self.host_routing_pj, energy_pj=self.host_routing_pj)
        rows.append(host)
        allc = list(range(pl.n_cores))
        total = row("total", "total", allc, neurons=sum(c.neurons for c in pl.cores),
                    synapses=sum(c.synapses for c in pl.cores),
                    synaptic_memory_bytes=sum(c.memory_bytes for c in pl.cores), cores=pl.n_cores)
        for q in QUANTITIES:
            total[q] += host[q] if q in ("msgs_sent", "hops_ew", "hops_ns", "chip_crossings") else 0.0
        total["energy_routing_pj"] += self.host_routing_pj
        total["energy_pj"] += self.host_routing_pj
        rows.append(total)
        b = self.bottleneck()
        summary = {
            "cores": pl.n_cores, "chips": pl.n_chips, "tiles": pl.tiles_used,
            "timesteps": self.timesteps, "hardware_steps": self.hardware_steps,
            "latency_ns_per_step": self.latency_ns_per_step, "latency_us_per_inference": self.latency_ns / 1e3,
            "inferences_per_s": self.inferences_per_s, "energy_uj_per_inference": self.energy_pj / 1e6,
            "energy_routing_uj_per_inference": self.routing_pj / 1e6, "edp_uj_us": self.energy_pj / 1e6 * self.latency_ns / 1e3,
            "barrier_ns": self.barrier_ns, "bottleneck_core": b["core"],
        }
        if self.input_charge is not None:
            from neurokd.hardware.placement.inputs import charge_figures

            rows.append({"scope": "input", "name": self.input_charge.mode,
                         "value": "" if self.input_charge.accuracy is None else self.input_charge.accuracy})
            summary.update({f"input_{k}" if not k.startswith("input_") else k: v
                            for k, v in charge_figures(self.input_charge, self).items()})
            if self.input_charge.accuracy is not None:
                summary["input_mode_accuracy"] = self.input_charge.accuracy
        for k, v in summary.items():
            rows.append({"scope": "summary", "name": k, "value": v})
        return rows

    def step_rows(self) -> list[dict]:
        """cost_steps.csv: per hardware step (means over samples): latency and its parts, energy."""
        c = self.chip
        e_core = (self.steps["synops"] + self.steps["macs"]) * c["energy.synop_pj"] \
            + self.steps["updates_active"] * c["energy.update_active_pj"] \
            + self.steps["updates_inactive"] * c["energy.update_inactive_pj"] \
            + self.steps["spikes"] * c.opt("energy.spike_out_pj") \
            + self.steps["msgs_sent"] * c["energy.spike_pj"] + self.steps["hops_ew"] * c["energy.hop_ew_pj"] \
            + self.steps["hops_ns"] * c["energy.hop_ns_pj"] + self.steps["chip_crossings"] * c["energy.chip_crossing_pj"]
        e_host = self.host["msgs_sent"] * (c["energy.spike_pj"] + c.opt("input.host_message_pj")) \
            + self.host["hops_ew"] * c["energy.hop_ew_pj"] \
            + self.host["hops_ns"] * c["energy.hop_ns_pj"]
        out = []
        for t in range(self.hardware_steps):
            out.append({
                "step": t, "latency_ns": float(self.step_ns[t].mean()),
                "slowest_core_ns": float(self.core_ns[t].max(axis=1).mean()),
                "slowest_core": int(np.bincount(self.core_ns[t].argmax(axis=1)).argmax()),
                "busiest_tile_ns": float(self.tile_ns[t].max(axis=1).mean()),
                "route_ns": float(self.route_ns[t].mean()), "barrier_ns": self.barrier_ns,
                "energy_pj": float(e_core[t].sum(axis=1).mean() + e_host[t].mean()),
            })
        return out

    def markdown(self, title: str = "") -> str:
        """A section for energy_report.md: totals, the bottleneck core and what bounds it, stand-in figures."""
        pl, b, ss = self.placement, self.bottleneck(), self.steady_state()
        lines = [f"## Placement on {self.chip.name}{': ' + title if title else ''}", "",
                 f"{pl.n_cores} cores on {pl.n_chips} chip(s) ({pl.tiles_used} tiles), placer `{pl.placer}`; "
                 f"{self.samples} sample(s) x {self.timesteps} steps = {self.hardware_steps} hardware steps per inference "
                 f"(T plus the {self.hardware_steps - self.timesteps}-step pipeline).", "",
                 "| per inference | value |", "|---|---|",
                 f"| latency | {self.latency_ns / 1e3:.3f} us ({self.latency_ns_per_step:.1f} ns per step) |",
                 f"| inferences per second | {self.inferences_per_s:,.0f} |",
                 f"| energy with routing | {self.energy_pj / 1e6:.4f} uJ (routing {self.routing_pj / 1e6:.4f} uJ, "
                 f"{self.routing_pj / self.energy_pj * 100 if self.energy_pj else 0:.1f} %) |",
                 f"| energy-delay product | {self.edp:.3e} J s |",
                 f"| streamed (inferences pipelined, every core busy every step), per hardware step | "
                 f"{ss['step_ns'] / 1e3:.3f} us, {ss['energy_pj_per_step'] / 1e6:.4f} uJ |",
                 f"| barrier per step | {self.barrier_ns:.0f} ns ({pl.tiles_used} tiles) |", "",
                 f"**Bottleneck: core {b['core']}** (layer `{b['layer']}`, neurons {b['neurons']}) sets the most step time "
                 f"(the slowest core in {b['slowest_fraction'] * 100:.0f} % of the steps); its time is "
                 + ", ".join(f"{k} {v * 100:.0f} %" for k, v in b["shares"].items())
                 + f", so it is bound by **{b['bound']}**. Of a mean step, the slowest core takes "
                 f"{b['share_of_step']['slowest core'] * 100:.0f} %, the barrier {b['share_of_step']['barrier'] * 100:.0f} %, "
                 f"routes {b['share_of_step']['routes'] * 100:.0f} %"
                 + (f"; a tile's message bandwidth bounds {b['tile_bound_steps'] * 100:.0f} % of the steps" if b["tile_bound_steps"] else "")
                 + ".", "",
                 *(([*_input_lines(self), ""]) if self.input_charge is not None else []),
                 "| core | layer | neurons | synops | updates (active) | msgs sent | hops | busy ns/inference | energy pJ |",
                 "|---|---|---|---|---|---|---|---|---|"]
        for r in (r for r in self.rows() if r["scope"] == "core"):
            lines.append(f"| {r['name']} | {r['layer']} | {r['neuron_range']} | {r['synops'] + r['macs']:,.0f} | "
                         f"{r['updates_active'] + r['updates_inactive']:,.0f} ({r['updates_active']:,.0f}) | "
                         f"{r['msgs_sent']:,.0f} | {r['hops_ew'] + r['hops_ns']:,.0f} | {r['busy_ns']:,.0f} | {r['energy_pj']:,.0f} |")
        stand = [f for f in self.chip.stand_ins() if f.status != "fitted"]
        if stand:
            lines += ["", f"Figures of `{self.chip.name}` that are not published (they stand in; override them in a chip file): "
                      + ", ".join(f"`{f.key}` = {f.value:g} ({f.status})" for f in stand) + "."]
        fitted = self.chip.fitted()
        if fitted:
            lines += ["", f"Figures of `{self.chip.name}` **fitted** to measurements, not published and not validated "
                      f"beyond the measurements they were fitted to ({'; '.join(sorted({f.source for f in fitted}))}): "
                      + ", ".join(f"`{f.key}` = {f.value:g}" for f in fitted) + "."]
        lines += [""] + [f"- {n}" for n in self.notes]
        return "\n".join(lines) + "\n"


def _input_lines(report: CostReport) -> list[str]:
    from neurokd.hardware.placement.inputs import markdown

    return markdown(report.input_charge, report)


def _per_core_sum(pl: Placement, ids, nth: np.ndarray):
    """``f(a, axis, dtype)``: ``a`` summed over each core's neurons along ``axis`` (the layer's neuron axis), one
    entry per core of ``ids``. Cores of contiguous ranges in order: ``np.add.reduceat`` at their first neurons; W-cut
    cores (a tile's neurons are not contiguous): the neurons gathered core by core first."""
    cores = [pl.cores[i] for i in ids]
    if all(c.block is None for c in cores):
        bounds = [c.lo for c in cores]
        return lambda a, axis, dtype: np.add.reduceat(a, bounds, axis=axis, dtype=dtype)
    order = np.argsort(nth, kind="stable")
    bounds = np.searchsorted(nth[order], np.arange(len(cores)))
    return lambda a, axis, dtype: np.add.reduceat(np.take(a, order, axis=axis), bounds, axis=axis, dtype=dtype)


def _columns(ids) -> "slice | np.ndarray":
    """Core ids as a slice where they are consecutive (as a layer's are): adding into a slice of the per-core
    arrays is in place, adding into a list of columns gathers and scatters a copy."""
    ids = np.asarray(ids)
    if ids.size and np.array_equal(ids, np.arange(ids[0], ids[0] + ids.size)):
        return slice(int(ids[0]), int(ids[0]) + ids.size)
    return ids


def _chunk(geometry: Geometry, T: int, chunk: int | None) -> int:
    """Samples per pass: ``chunk``, or as many as keep one population's ``(T, B, size)`` array within
    :data:`CHUNK_VALUES` (a small network in one pass: the per-pass overhead is most of its cost)."""
    if chunk:
        return int(chunk)
    widest = max((p.size for p in geometry.populations), default=1)
    return max(1, CHUNK_VALUES // max(T * widest, 1))


#: values of one population's per-step array per pass (int64: 16 MiB)
CHUNK_VALUES = 2 ** 21


def cost(placement: Placement, rasters: dict[str, np.ndarray], network=None, chunk: int | None = None,
         state: dict[str, np.ndarray] | None = None, received: dict | None = None,
         drive: dict[str, np.ndarray] | None = None) -> CostReport:
    """Per-core, per-step cost of ``placement`` under ``rasters`` (module docstring). ``network`` (the IR)
    gives each layer's pipeline delay and biases; without it every layer works in the same step.
    ``state`` (:func:`state_from_result`): per population ``(T, N, *shape)``, non-zero where a neuron's
    ``u`` or ``v`` is non-zero after the step; without it a neuron counts active on input, spike or bias only.
    ``received``: the cache a :func:`neuron_load` of the same rasters filled (the events are not counted twice).
    ``drive``: ``{population: (N, size)}`` bool, per sample the neurons driven by a bias (a bias-driven input
    layer, whose bias is the sample's value), active in every step as a layer's own bias keeps them.
    A placed population without incoming synapses (such an input layer) updates and sends in the step its
    spikes are received: its neuron phase is one stage before the first layer's."""
    geom, chip, pl = placement.geometry, placement.chip, placement
    pops = {p.name: p for p in geom.populations}
    for name in {c.source for c in geom.connections}:
        if name not in rasters:
            raise NeurokdError(f"rasters missing for {name!r}: record every spiking layer and the input")
    T, N = next(iter(rasters.values())).shape[:2]
    for k, r in rasters.items():
        if r.shape[:2] != (T, N):
            raise NeurokdError(f"raster of {k!r} covers (T, N) = {r.shape[:2]}, others {(T, N)}")
    offset = {pop: 0 for pop in pl.layer_cores}      # hardware step of a layer's first receiving phase
    bias = {pop: np.zeros((1, pops[pop].size), dtype=bool) for pop in pl.layer_cores}
    if network is not None:
        for lay in network.layers:
            name = lay.name if lay.name in pl.layer_cores else f"{lay.name}.out"
            offset[name] = max(int(lay.delay) - 1, 0)
            if name in bias and lay.neuron.kind != "none":
                b = (np.asarray(lay.neuron.b_u) != 0) | (np.asarray(lay.neuron.b_v) != 0)
                bias[name] = np.broadcast_to(b.reshape(-1) if b.size > 1 else b, (1, pops[name].size)).copy()
    for pop in pl.layer_cores:
        if not geom.incoming(pop):                 # a bias-driven input layer: one stage before the first layer
            offset[pop] = -1
    for pop, d in (drive or {}).items():
        if pop in bias:
            bias[pop] = np.asarray(d, dtype=bool).reshape(N, pops[pop].size)
    shift = 1 if network is not None else 0        # a layer updates one step after it receives (time-step buffer)
    depth = max(offset.values(), default=0)
    Th = T + depth + shift
    if state is not None:
        for k, r in state.items():
            if r.shape[:2] != (T, N):
                raise NeurokdError(f"state raster of {k!r} covers (T, N) = {r.shape[:2]}, rasters {(T, N)}")
    ncores = pl.n_cores
    steps = {q: np.zeros((Th, N, ncores)) for q in QUANTITIES}
    host = {q: np.zeros((Th, N)) for q in ("msgs_sent", "hops_ew", "hops_ns", "chip_crossings")}
    route = np.zeros((Th, N))
    cx = np.array([c.x for c in pl.cores] + [pl.input_xy[0]])
    cy = np.array([c.y for c in pl.cores] + [pl.input_xy[1]])
    cchip = np.array([c.chip for c in pl.cores] + [0])
    host_idx = ncores
    owner, nth = {}, {}              # per neuron: its core, and that core's place among its layer's cores
    per_core = {}                    # per layer: how to sum a neuron axis per core (:func:`_per_core_sum`)
    for pop, ids in pl.layer_cores.items():
        o, k = np.empty(pops[pop].size, dtype=np.int64), np.empty(pops[pop].size, dtype=np.int64)
        for j, i in enumerate(ids):
            at = slice(pl.cores[i].lo, pl.cores[i].hi) if pl.cores[i].block is None else pl.cores[i].indices()
            o[at], k[at] = i, j
        owner[pop], nth[pop] = o, k
        per_core[pop] = _per_core_sum(pl, ids, k)
    hop_ew_ns, hop_ns_ns = chip["time.hop_ew_ns"], chip["time.hop_ns_ns"]
    links = []                       # per connection: what each source neuron's spike sends where
    for conn in geom.connections:
        if conn.target not in pl.layer_cores:
            continue
        reach = (pl.routes[conn.name] > 0).tocoo()          # (n_src, dest cores)
        dest = np.array(pl.layer_cores[conn.target])
        src_pop = conn.source
        src_core = owner[src_pop] if src_pop in owner else np.full(reach.shape[0], host_idx)
        sc, dc_ = src_core[reach.row], dest[reach.col]
        dx, dy, dc = np.abs(cx[sc] - cx[dc_]), np.abs(cy[sc] - cy[dc_]), np.abs(cchip[sc] - cchip[dc_])
        n_src = reach.shape[0]
        per_src = {"msgs_sent": np.bincount(reach.row, minlength=n_src).astype(np.float64),
                   "hops_ew": np.bincount(reach.row, weights=dx, minlength=n_src),
                   "hops_ns": np.bincount(reach.row, weights=dy, minlength=n_src),
                   "chip_crossings": np.bincount(reach.row, weights=dc, minlength=n_src)}
        far = np.zeros(n_src)
        np.maximum.at(far, reach.row, dx * hop_ew_ns + dy * hop_ns_ns)
        links.append((conn, reach.tocsr().astype(np.float64), _columns(dest), per_src, far))
    chunk = _chunk(geom, T, chunk)
    for s0 in range(0, N, chunk):
        sl = slice(s0, min(N, s0 + chunk))
        B = sl.stop - sl.start
        part = {k: v[:, sl] for k, v in rasters.items()}
        for pop, ids in pl.layer_cores.items():
            p = pops[pop]
            o = offset[pop]
            on = o + shift                             # the layer's neuron phase: update, spike, send
            syn, mac, both = _received_cached(received, geom, part, pop, T, B, s0)
            hit = both > 0
            if p.spiking:
                spk = part[pop].reshape(T, B, p.size) != 0
                hit |= spk
            bp = bias[pop] if bias[pop].shape[0] == 1 else bias[pop][sl]      # (1 or B, size)
            hit |= bp[None]
            st = None if state is None or pop not in state else state[pop][:, sl].reshape(T, B, p.size) != 0
            if st is not None:                         # state left by the previous step
                hit[1:] |= st[:-1]
            red = lambda a, s=per_core[pop]: s(a, 2, np.int64)   # per core (bools counted)
            cols = _columns(ids)
            sizes = np.array([pl.cores[i].neurons for i in ids])
            if p.kind == "spike_input":      # input compartments: each host spike one message in, one synaptic op
                n_in = red(spk)
                steps["synops"][on:on + T, sl][..., cols] += n_in
                steps["msgs_received"][on:on + T, sl][..., cols] += n_in
                host["msgs_sent"][on:on + T, sl] += n_in.sum(axis=2)
                dx, dy = np.abs(cx[owner[pop]] - cx[host_idx]), np.abs(cy[owner[pop]] - cy[host_idx])
                host["hops_ew"][on:on + T, sl] += (spk * dx).sum(axis=2)
                host["hops_ns"][on:on + T, sl] += (spk * dy).sum(axis=2)
                host["chip_crossings"][on:on + T, sl] += (spk * cchip[owner[pop]]).sum(axis=2)
                route[on:on + T, sl] = np.maximum(route[on:on + T, sl], (spk * (dx * hop_ew_ns + dy * hop_ns_ns)).max(axis=2))
            if syn is not None and geom.incoming(pop):
                steps["synops"][o:o + T, sl][..., cols] += red(syn)
            if mac is not None and geom.incoming(pop):
                steps["macs"][o:o + T, sl][..., cols] += red(mac)
            # every neuron of a core is serviced in every hardware step; active when it has input, a bias,
            # state to decay or a spike to send; outside its window only a bias (or leftover state) keeps it active
            act = np.zeros((Th, B, len(ids)))
            act[on:on + T] = red(hit)
            idle = bp[None] if st is None else bp[None] | st[-1][None]
            drain = red(np.broadcast_to(idle, (1, B, p.size)))
            act[:on] = red(np.broadcast_to(bp[None], (1, B, p.size)))
            act[on + T:] = drain
            steps["updates_active"][:, sl][..., cols] += act
            steps["updates_inactive"][:, sl][..., cols] += sizes - act
            if p.spiking:
                steps["spikes"][on:on + T, sl][..., cols] += red(spk)
        # messages along every connection: (step x sample, source neuron) of each spike; sparse events one by
        # one, dense ones (a graded input) as matrix products (whole numbers either way: the same sums)
        for conn, reach, dest, per_src, far in links:
            src_pop = conn.source
            ev = (part[src_pop] != 0).reshape(T * B, -1)
            o = offset[src_pop] + shift if src_pop in owner else 0
            o_t = offset[conn.target]
            if 8 * np.count_nonzero(ev) > ev.size:
                evf = ev.astype(np.float64)
                for q, vec in per_src.items():
                    if src_pop in owner:
                        flow = per_core[src_pop](evf * vec, 1, None)
                        steps[q][o:o + T, sl][..., _columns(pl.layer_cores[src_pop])] += flow.reshape(T, B, -1)
                    else:
                        host[q][o:o + T, sl] += (evf @ vec).reshape(T, B)
                route[o:o + T, sl] = np.maximum(route[o:o + T, sl], (evf * far).max(axis=1, initial=0.0).reshape(T, B))
                recv = np.asarray((reach.T @ evf.T).T)
            else:
                rows, srcs = np.nonzero(ev)
                if src_pop in owner:                       # summed per sending core
                    ids = pl.layer_cores[src_pop]
                    at, k = rows * len(ids) + nth[src_pop][srcs], _columns(ids)
                    for q, vec in per_src.items():
                        steps[q][o:o + T, sl][..., k] += np.bincount(at, vec[srcs], T * B * len(ids)).reshape(T, B, -1)
                else:
                    for q, vec in per_src.items():
                        host[q][o:o + T, sl] += np.bincount(rows, vec[srcs], T * B).reshape(T, B)
                if rows.size:                              # the farthest destination of a step's spikes
                    first = np.flatnonzero(np.r_[True, rows[1:] != rows[:-1]])
                    longest = np.zeros(T * B)
                    longest[rows[first]] = np.maximum.reduceat(far[srcs], first)
                    route[o:o + T, sl] = np.maximum(route[o:o + T, sl], longest.reshape(T, B))
                events = scipy.sparse.csr_matrix((np.ones(rows.size), srcs, np.searchsorted(rows, np.arange(T * B + 1))),
                                                 shape=(T * B, reach.shape[0]))
                recv = (events @ reach).toarray()
            steps["msgs_received"][o_t:o_t + T, sl][..., dest] += recv.reshape(T, B, -1)
    c = chip
    overlap = c.opt("time.phases_overlap") >= 0.5
    core_ns, tile_ns = _core_and_tile_ns(pl, steps)
    tiles_synced = pl.tiles_used
    if host["msgs_sent"].any() and (0, *pl.input_xy) not in {(cc.chip, cc.x, cc.y) for cc in pl.cores}:
        tiles_synced += 1                      # the input enters on a tile of its own, which joins the barrier
    bar = chip.barrier_ns(tiles_synced)
    host_ns = host["msgs_sent"] * c.opt("input.host_message_ns")     # the host link, where the chip file times it
    step_ns = np.maximum(np.maximum(core_ns.max(axis=2), tile_ns.max(axis=2)), host_ns) + route + bar
    # per-core counts per inference -> the energy tables
    total = {q: steps[q].sum(axis=(0, 1)) for q in ("spikes", "synops", "macs", "updates_active", "updates_inactive")}
    rows = []
    for cc in pl.cores:
        k = cc.core
        rows.append(LayerCounts(layer=f"core {k}", kind=cc.layer, neurons=cc.neurons,
                                spikes=float(total["spikes"][k] / N), synops=float(total["synops"][k] / N),
                                macs=float(total["macs"][k] / N),
                                neuron_updates=float((total["updates_active"][k] + total["updates_inactive"][k]) / N),
                                active_updates=float(total["updates_active"][k] / N)))
    est = energy_mod.energy(Counts(int(N), int(T), tuple(rows)), energy_model(chip))
    notes = [
        "time per core and step: receiving (synaptic ops x synop_ns + messages in x message_in_ns) "
        + ("overlapped with" if overlap else "then") + " the neuron phase (active/inactive updates x update_*_ns + "
        "spikes x spike_out_ns + messages sent x spike_ns)",
        "every neuron of a used core is updated in every hardware step; active when it has input, a bias, "
        + ("or state left by the previous step (the engine's record_state)" if state is not None else
           "or a spike to send (no state recorded: a neuron whose potential only decays counts inactive)"),
        "a step: the slowest core (or the busiest tile's messages at the tile bandwidth) + the longest route + the barrier",
        "energy: the chip's per-event figures for compute, plus spike_pj per message and hop_*_pj per tile hop",
        f"each layer receives its Lava pipeline delay after the input and updates one step later: {T} steps take "
        f"{Th} hardware steps per inference",
    ]
    if c["energy.chip_crossing_pj"] == 0 and steps["chip_crossings"].sum() + host["chip_crossings"].sum() > 0:
        notes.append("chip crossings are counted but not charged (no published figure)")
    neuron_at = np.array([offset[cc.population] + shift for cc in pl.cores], dtype=np.int64)
    return CostReport(pl, int(N), int(T), steps, host, core_ns, tile_ns, route, bar, step_ns, est, notes,
                      neuron_at=neuron_at)


def _core_and_tile_ns(pl: Placement, steps: dict[str, np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Per step, sample and core the busy time (module docstring: receiving phase and neuron phase, added or
    overlapped), and per tile the time its messages take at the tile bandwidth."""
    c = pl.chip
    receive_ns = (steps["synops"] + steps["macs"]) * c["time.synop_ns"] + steps["msgs_received"] * c.opt("time.message_in_ns")
    neuron_ns = (steps["updates_active"] * c["time.update_active_ns"] + steps["updates_inactive"] * c["time.update_inactive_ns"]
                 + steps["msgs_sent"] * c["time.spike_ns"] + steps["spikes"] * c.opt("time.spike_out_ns"))
    core_ns = np.maximum(receive_ns, neuron_ns) if c.opt("time.phases_overlap") >= 0.5 else receive_ns + neuron_ns
    # tile bandwidth: messages leaving and entering each tile in a step
    tiles = sorted({(cc.chip, cc.tile) for cc in pl.cores})
    tindex = {t: i for i, t in enumerate(tiles)}
    tile_of = np.array([tindex[(cc.chip, cc.tile)] for cc in pl.cores])
    traffic = steps["msgs_sent"] + steps["msgs_received"]
    by_tile = np.argsort(tile_of, kind="stable")     # cores grouped by tile, then summed per group
    tile_msgs = np.add.reduceat(traffic[..., by_tile], np.searchsorted(tile_of[by_tile], np.arange(len(tiles))), axis=2)
    return core_ns, tile_msgs / c["time.tile_bandwidth_spikes_per_s"] * 1e9


def state_from_result(geometry: Geometry, result) -> dict[str, np.ndarray] | None:
    """``{population: (T, N, size)}`` bool, True where a neuron keeps state into the next step (``v != 0`` after
    the step, or a synaptic current that does not fully decay): the fast model's ``record_state`` of the spiking
    layers, in the rasters' time-major order; None when the run kept none."""
    kept = getattr(result, "states", None) or {}
    out = {}
    for p in geometry.populations:
        if p.stateful and p.spiking:
            if p.name not in kept:
                return None
            out[p.name] = np.swapaxes(np.asarray(kept[p.name]), 0, 1)
    return out


#: received events kept between :func:`neuron_load` and :func:`cost` (int64 values, all populations and chunks)
RECEIVED_CACHE_VALUES = 16_000_000


def _received_cached(cache: dict | None, geometry: Geometry, rasters, pop: str, T: int, B: int, s0: int):
    """:func:`_received` of samples ``s0 .. s0 + B`` (``rasters`` already sliced to them), from ``cache`` when an
    earlier pass over the same chunks stored it; stores it while the cache holds fewer than
    :data:`RECEIVED_CACHE_VALUES` values."""
    key = (pop, s0, B)
    if cache is not None and key in cache:
        return cache[key]
    got = _received(geometry, rasters, pop, T, B)
    if cache is not None:
        size = sum(a.size for a in {id(a): a for a in got if a is not None}.values())
        if cache.get("_values", 0) + size <= RECEIVED_CACHE_VALUES:
            cache[key] = got
            cache["_values"] = cache.get("_values", 0) + size
    return got


def neuron_load(geometry: Geometry, rasters: dict[str, np.ndarray], chip: Chip, chunk: int | None = None,
                cache: dict | None = None) -> dict[str, np.ndarray]:
    """Mean ns of core time per neuron and step, per stateful population (the balance placer's input):
    received synaptic events x synop_ns + its update (active or inactive) + its spikes x outgoing
    connections x spike_ns (one message per connection: the destination cores are not known yet).
    ``cache`` (a dict) keeps the received events for a :func:`cost` of the same rasters and chunk."""
    T, N = next(iter(rasters.values())).shape[:2]
    out = {}
    fan_conns = {}
    for c in geometry.connections:
        fan_conns[c.source] = fan_conns.get(c.source, 0) + 1
    for p in geometry.populations:
        if not p.stateful:
            continue
        total = np.zeros(p.size)
        for s0 in range(0, N, _chunk(geometry, T, chunk)):
            sl = slice(s0, min(N, s0 + _chunk(geometry, T, chunk)))
            part = {k: v[:, sl] for k, v in rasters.items()}
            B = sl.stop - sl.start
            _, _, both = _received_cached(cache, geometry, part, p.name, T, B, s0)
            hit = both > 0
            spk = np.zeros_like(hit)
            if p.spiking and p.name in part:
                spk = part[p.name].reshape(T, B, p.size) != 0
                hit |= spk
            total += (both * chip["time.synop_ns"]).sum(axis=(0, 1))
            total += np.where(hit, chip["time.update_active_ns"], chip["time.update_inactive_ns"]).sum(axis=(0, 1))
            total += spk.sum(axis=(0, 1)) * (fan_conns.get(p.name, 0) * chip["time.spike_ns"] + chip.opt("time.spike_out_ns"))
            total += (both > 0).sum(axis=(0, 1)) * chip.opt("time.message_in_ns")   # about one message per event
        out[p.name] = total / (T * N)
    return out


__all__ = ["cost", "CostReport", "QUANTITIES", "energy_model", "neuron_load", "state_from_result"]
