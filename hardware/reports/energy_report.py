"""One run's energy report: ``energy_report.csv`` and ``energy_report.md`` from a network's counts.

:func:`write_energy_report` turns one network's counts (:mod:`neurokd.hardware.cost.counting`)
into ``energy_report.csv`` (one block of rows per energy model of :mod:`neurokd.hardware.cost.energy`:
one row per layer, then ``total``, then ``teacher``) and a readable ``energy_report.md``; with a
Lava-verified subset (:class:`VerifiedSubset`) also ``energy_subset.csv``. Files are written atomically.

A run placed on a chip (``placed``: the placement's :class:`~neurokd.hardware.placement.cost.CostReport`) has one
energy on that chip, the placed cost: ``energy_report.md`` leads with it, and sets the counting models beside it
in one table, part by part, with what each counts and the difference (:func:`placed_markdown`);
``energy_report.csv`` adds its block, energy model ``placed-<chip>`` (one row per placed layer and ``total``).
Comparing several finished runs is :mod:`neurokd.hardware.reports.summary`.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Sequence

from neurokd import fileio
from neurokd.hardware.cost.counting import (
    Activity,
    Counts,
    Geometry,
    LayerCounts,
    activity_from_rasters,
    count,
    geometry_from_ir,
    input_is_spiking,
    neurobench_metrics,
    teacher_ops,
)
from neurokd.hardware.cost.energy import DEFAULT_MODELS, SOURCES, EnergyEstimate, energy, get_model

ENERGY_COLUMNS = (
    "layer", "kind", "neurons", "synapses", "spikes_per_sample", "synops_per_sample",
    "neuron_updates_per_sample", "energy_model", "energy_pj_per_sample",
    # additions to the contract of DESIGN.md
    "energy_pj_per_step", "graded_events_per_sample", "macs_per_sample", "dense_synops_per_sample",
    "active_neuron_updates_per_sample", "structural_synapses", "samples", "timesteps",
)


def _num(x):
    """A CSV cell: ints stay ints, floats keep 6 decimals, None is empty."""
    if x is None:
        return ""
    if isinstance(x, int) or (isinstance(x, float) and x.is_integer() and abs(x) < 2**53):
        return int(x)
    return round(float(x), 6)


def network_total(counts: Counts) -> LayerCounts:
    """The report's ``total`` row: :attr:`Counts.total` with ``spikes`` = the network's neurons' spikes only.

    A binary (spiking) input is counted as spikes in its own ``input`` row, but those are the events the
    host sends in, not spikes of the network's neurons: they are left out of the total's spikes (as a graded
    input's events are, being ``graded_events``). The input's events still count where they cost: as the
    first connection's SynOps (MACs when graded) and as routed events in the energy.
    """
    total = counts.total
    return replace(total, spikes=sum(r.spikes for r in counts.layers if not r.connection and r.kind != "input"))


def energy_rows(geometry: Geometry, counts: Counts, models: Sequence[str] = DEFAULT_MODELS) -> list[dict]:
    """The rows of ``energy_report.csv`` as dicts keyed by :data:`ENERGY_COLUMNS`.

    Per model: one row per layer, ``total`` (:func:`network_total`: spikes of the network's neurons, not
    the input's), and ``teacher`` (the ANN of the same graph: its
    MACs in ``macs_per_sample``, pooling additions in ``synops_per_sample``; energy empty where
    the model does not price an ANN).
    """
    teacher = teacher_ops(geometry)
    rows: list[dict] = []
    T = counts.steps
    for name in models:
        est = energy(counts, name, teacher)
        for r, e in zip((*counts.layers, network_total(counts)), (*est.layers, None)):
            pj = est.total_pj if e is None else e.pj
            rows.append({
                "layer": r.layer, "kind": r.kind, "neurons": r.neurons, "synapses": r.synapses,
                "spikes_per_sample": _num(r.spikes), "synops_per_sample": _num(r.synops),
                "neuron_updates_per_sample": _num(r.neuron_updates), "energy_model": est.model.name,
                "energy_pj_per_sample": _num(pj), "energy_pj_per_step": _num(pj / T if T else None),
                "graded_events_per_sample": _num(r.graded_events), "macs_per_sample": _num(r.macs),
                "dense_synops_per_sample": _num(r.dense_synops),
                "active_neuron_updates_per_sample": _num(r.active_updates),
                "structural_synapses": r.structural_synapses, "samples": counts.samples, "timesteps": T,
            })
        rows.append({
            "layer": "teacher", "kind": "ann", "neurons": sum(r.neurons for r in counts.layers if r.neuron_updates > 0),
            "synapses": teacher.total_macs + teacher.total_adds, "spikes_per_sample": "",
            "synops_per_sample": teacher.total_adds, "neuron_updates_per_sample": "",
            "energy_model": est.model.name, "energy_pj_per_sample": _num(est.teacher_pj),
            "energy_pj_per_step": "", "graded_events_per_sample": "", "macs_per_sample": teacher.total_macs,
            "dense_synops_per_sample": "", "active_neuron_updates_per_sample": "",
            "structural_synapses": teacher.total_macs + teacher.total_adds, "samples": counts.samples, "timesteps": 1,
        })
    return rows


def placed_model(cost) -> str:
    """The ``energy_model`` name of a placed cost's rows: ``placed-<chip>``."""
    return f"placed-{cost.chip.name}"


def _placed_parts(cost) -> dict[str, float]:
    """A placed cost's energy per inference (pJ) by part: the cores' events, routing on the mesh, host messages."""
    parts = {k: 0.0 for k in ("synops", "macs", "updates_active", "updates_inactive", "spikes")}
    for row in cost.energy.layers:
        for k, v in row.parts.items():
            parts[k] = parts.get(k, 0.0) + float(v)
    parts["routing"] = float(cost.routing_pj_per_core().sum())
    parts["host"] = float(cost.host_routing_pj)
    return parts


def placed_rows(cost) -> list[dict]:
    """``energy_report.csv`` rows of a placed cost (:data:`ENERGY_COLUMNS`): per placed layer (its cores' events,
    energy with the routing of their messages) and ``total`` (with the host's input messages)."""
    pl = cost.placement
    compute, routing = cost.compute_pj_per_core(), cost.routing_pj_per_core()
    T = cost.timesteps
    rows = []

    def row(name, kind, ids, extra_pj=0.0):
        q = {k: float(cost.per_core(k)[ids].sum()) for k in ("synops", "macs", "updates_active", "updates_inactive", "spikes")}
        pj = float(compute[ids].sum() + routing[ids].sum()) + extra_pj
        return {"layer": name, "kind": kind, "neurons": int(sum(pl.cores[i].neurons for i in ids)), "synapses": "",
                "spikes_per_sample": _num(q["spikes"]), "synops_per_sample": _num(q["synops"]),
                "neuron_updates_per_sample": _num(q["updates_active"] + q["updates_inactive"]),
                "energy_model": placed_model(cost), "energy_pj_per_sample": _num(pj),
                "energy_pj_per_step": _num(pj / T if T else None), "graded_events_per_sample": "",
                "macs_per_sample": _num(q["macs"]), "dense_synops_per_sample": "",
                "active_neuron_updates_per_sample": _num(q["updates_active"]), "structural_synapses": "",
                "samples": cost.samples, "timesteps": T}

    for pop, ids in pl.layer_cores.items():
        rows.append(row(pop, pl.geometry.population(pop).kind, list(ids)))
    rows.append(row("total", "placed", list(range(pl.n_cores)), float(cost.host_routing_pj)))
    return rows


def placed_markdown(cost, ests: Sequence[EnergyEstimate], counts: Counts) -> str:
    """The lead section of a placed run's ``energy_report.md``: its energy on the chip (the placed cost), and the
    counting models beside it part by part, each with what it counts and its difference from the placed cost."""
    chip, T = cost.chip.name, cost.timesteps
    placed = _placed_parts(cost)
    total = cost.energy_pj
    cols = [f"**placed on {chip}**"] + [f"`{e.model.name}`" for e in ests]
    sums = []
    for e in ests:
        p = {k: 0.0 for k in placed}
        for layer in e.layers:
            for k, v in layer.parts.items():
                p[k] = p.get(k, 0.0) + float(v)
        sums.append(p)
    why = {
        "synops": "binary spikes x fan-out; the same events (placed: on the costed samples)",
        "macs": "graded input x fan-out (direct input only)",
        "updates_active": f"placed: every placed population (an on-chip input layer included) over {cost.hardware_steps} "
                          f"hardware steps (T = {T} plus the pipeline); counting models: the network's layers over T",
        "updates_inactive": "as above",
        "spikes": "per emitted event, where the model prices one (loihi-tile: routed within one tile)",
        "routing": "placed only: each message and hop over the mesh between the cores it was placed on",
        "host": "placed only: the host's input messages (--input-mode spikes / host)",
    }
    names = {"synops": "SynOps", "macs": "MACs", "updates_active": "neuron updates, active",
             "updates_inactive": "neuron updates, inactive", "spikes": "spikes out", "routing": "routing on the mesh",
             "host": "host messages"}
    lines = [f"## Energy per inference on {chip}: {_energy_unit(total)} (placed)", "",
             f"This run is placed on {chip} (`map/`): its energy on that chip is the placed cost, "
             f"{_energy_unit(total)} per inference ({cost.latency_ns / 1e3:.3f} us, {cost.placement.n_cores} cores; "
             f"{cost.samples} sample(s)). The counting models of the tables below price the run's counted events without "
             "a placement; they stay for comparison across chips and papers, and differ from it as this table says "
             "(pJ per inference).", "",
             "| part | " + " | ".join(cols) + " | what differs |", "|---|" + "---:|" * len(cols) + "---|"]
    for k in ("synops", "macs", "updates_active", "updates_inactive", "spikes", "routing", "host"):
        vals = [placed.get(k, 0.0)] + [p.get(k, 0.0) for p in sums]
        if not any(vals):
            continue
        lines.append(f"| {names[k]} | " + " | ".join(_fmt(v) for v in vals) + f" | {why[k]} |")
    lines.append("| **total** | " + " | ".join([f"**{_fmt(total)}**"] + [_fmt(e.total_pj) for e in ests])
                 + " | |")
    lines.append("| difference from placed | — | " + " | ".join(
        f"{e.total_pj - total:+,.0f} ({(e.total_pj - total) / total * 100:+.1f} %)" if total else "n/a" for e in ests)
        + " | |")
    lines += ["", f"Samples: the placed cost on {cost.samples}, the counting models on {counts.samples}. Per core, per "
              "step and the bottleneck: the placement section below and `map/cost_report.md`.", ""]
    return "\n".join(lines)


def _fmt(x: float | None, digits: int = 3) -> str:
    """Readable number: thousands separators from 1000 up, ``digits`` significant digits below."""
    if x is None or (isinstance(x, float) and math.isnan(x)):
        return "n/a"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    if x == int(x):
        return f"{int(x)}"
    return f"{x:.{digits}g}"


def _energy_unit(pj: float | None) -> str:
    """pJ in the unit that reads best (pJ, nJ, uJ, mJ)."""
    if pj is None:
        return "n/a"
    for unit, scale in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if abs(pj) >= scale:
            return f"{pj / scale:.3g} {unit}"
    return f"{pj:.3g} pJ"


def energy_markdown(geometry: Geometry, counts: Counts, models: Sequence[str] = DEFAULT_MODELS, title: str = "") -> str:
    """The readable ``energy_report.md``: a table of counts and energies, teacher comparison, sources, caveats."""
    teacher = teacher_ops(geometry)
    ests: list[EnergyEstimate] = [energy(counts, m, teacher) for m in models]
    T = counts.steps
    lines = [f"# Energy report{': ' + title if title else ''}", ""]
    lines.append(
        f"Counts per inference (one sample, {T} time steps), averaged over {counts.samples} samples. "
        "SynOps = binary spikes x non-zero fan-out (borders exact); MACs = graded input events x non-zero fan-out "
        "(direct encoding repeats the input at every step, so the first layer's MACs are paid at each step); "
        "neuron updates = neurons x steps, active ones in brackets; energies in pJ per inference."
    )
    inputs = [p for p in geometry.populations if p.kind == "input"]
    if inputs:
        names = ", ".join(f"`{p.name}`" for p in inputs)
        if all(p.spiking for p in inputs):
            lines.append(f"Input {names}: spiking (every value in {{0, 1}} or {{-1, 0, 1}}): its events are counted "
                         "as spikes in its own row, their fan-out as SynOps; the **total** row's spikes are the "
                         "network's neurons' only (the input's are sent in by the host).")
        else:
            lines.append(f"Input {names}: graded (values outside {{0, 1}} and {{-1, 0, 1}}): its non-zero values are "
                         "counted as graded events, their fan-out as MACs.")
    lines.append("")
    head = ["layer", "kind", "neurons", "synapses", "spikes", "graded events", "SynOps", "MACs", "neuron updates (active)"]
    head += [f"{e.model.name} pJ" for e in ests]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
    for i, r in enumerate((*counts.layers, network_total(counts))):
        is_total = i == len(counts.layers)
        conn = r.connection or is_total
        pop = not r.connection or is_total
        updates = _fmt(r.neuron_updates)
        if r.neuron_updates:
            updates += f" ({_fmt(r.active_updates)})" if r.active_updates is not None else " (n/a)"
        spikes = _fmt(r.spikes) if (r.spiking or is_total) else ""
        cells = [r.layer if not is_total else "**total**", r.kind if not is_total else "",
                 _fmt(r.neurons) if pop else "", _fmt(r.synapses) if conn else "", spikes,
                 _fmt(r.graded_events) if (r.graded_events or is_total) else "",
                 _fmt(r.synops) if conn else "", _fmt(r.macs) if (r.macs or is_total) else "",
                 updates if (pop and r.kind != "input") else ""]
        for e in ests:
            cells.append(_fmt(e.total_pj if is_total else e.layers[i].pj))
        lines.append("| " + " | ".join(cells) + " |")
    lines += ["", "## Student vs ANN teacher, per inference", ""]
    for e in ests:
        if e.teacher_pj is not None:
            ratio = e.teacher_pj / e.total_pj if e.total_pj else float("inf")
            lines.append(
                f"- `{e.model.name}`: student {_energy_unit(e.total_pj)} vs teacher {_energy_unit(e.teacher_pj)} "
                f"({teacher.total_macs:,} MACs{f' + {teacher.total_adds:,} adds' if teacher.total_adds else ''}); "
                f"teacher / student = {ratio:.2f}"
            )
        else:
            lines.append(f"- `{e.model.name}`: student {_energy_unit(e.total_pj)}; no teacher figure "
                         "(this model prices neuromorphic events, not an ANN)")
    nb = neurobench_metrics(geometry, counts)
    so = nb["SynapticOperations"]
    lines += [
        "", "## NeuroBench-named quantities (definitions of NeuroBench 2.3.0)", "",
        f"- ActivationSparsity {nb['ActivationSparsity']:.4f} (zero outputs / all outputs of spiking layers, all steps)",
        f"- SynapticOperations: Effective_ACs {_fmt(so['Effective_ACs'])}, Effective_MACs {_fmt(so['Effective_MACs'])}, "
        f"Dense {_fmt(so['Dense'])} per sample (dense and conv layers only; pooling not counted)",
        f"- Footprint {nb['Footprint']:,} bytes (weights, biases and neuron parameters as stored)",
        f"- ConnectionSparsity {nb['ConnectionSparsity']:.4f} (zero weights / all weights, dense and conv layers)",
    ]
    lines += ["", "## Energy models and sources", ""]
    lines.append("| model | pJ per SynOp | pJ per MAC (graded input) | pJ per update, active / inactive "
                 "| pJ per event routed | teacher pJ per MAC / add |")
    lines.append("|---|---:|---:|---:|---:|---:|")
    for e in ests:
        m = e.model
        teacher_cell = "n/a" if m.teacher_mac is None else f"{m.teacher_mac.pj:g} / {m.teacher_add.pj:g}"
        lines.append(f"| `{m.name}` | {m.synop.pj:g} | {m.mac.pj:g} | {m.update_active.pj:g} / "
                     f"{m.update_inactive.pj:g} | {m.spike.pj:g} | {teacher_cell} |")
    lines.append("")
    used: dict[str, list[str]] = {}
    for e in ests:
        for key, cost in e.model.costs().items():
            used.setdefault(f"{cost.pj:g} pJ: {cost.cite()}", []).append(f"{e.model.name} {key}")
    lines += [f"- {text} ({', '.join(who)})" for text, who in used.items()]
    sources = {c.source for e in ests for c in e.model.costs().values() if c.source is not None}
    lines += ["", "References:", ""] + [f"- {SOURCES[k].full}" for k in SOURCES if k in sources]
    lines.append("")
    notes = []
    for e in ests:
        for n in e.model.notes:
            if n not in notes:
                notes.append(n)
    if any(e.updates_upper_bound for e in ests):
        notes.append("Active neuron updates were not counted (no per-step rasters): every update is charged "
                     "as active, an upper bound.")
    lines += ["## Caveats", ""] + [f"- {n}" for n in notes] + [""]
    return "\n".join(lines)


@dataclass(frozen=True)
class VerifiedSubset:
    """The samples of a fast-model run that were re-run in Lava, counted both ways.

    ``lava`` and ``fast``: :class:`Counts` of the same ``indices`` (samples of the split) from the
    Lava run and from the fast model; ``identical``: the spike-for-spike check passed.
    ``spike_rse``: relative standard error of an ``n``-sample mean of spikes per sample, from the
    whole split's per-sample spread (finite-population corrected); None when unknown.
    """

    lava: Counts
    fast: Counts
    indices: tuple[int, ...]
    precision: str
    identical: bool
    spike_rse: float | None = None


SUBSET_QUANTITIES = (
    ("spikes", "spikes"), ("synops", "synops"), ("macs", "macs"), ("neuron_updates", "neuron_updates"),
    ("active_neuron_updates", "active_updates"),
)
SUBSET_COLUMNS = (
    "layer", "kind", "energy_model", "samples_split", "samples_subset",
    *(f"{q}_{where}" for q, _ in SUBSET_QUANTITIES for where in ("split", "lava_subset", "fast_subset")),
    "energy_pj_split", "energy_pj_lava_subset", "energy_pj_fast_subset", "energy_subset_vs_split_pct",
)


def subset_rows(counts: Counts, subset: VerifiedSubset, models: Sequence[str] = DEFAULT_MODELS) -> list[dict]:
    """Rows of ``energy_subset.csv``: per model and layer (then ``total``), each quantity per inference for
    the whole split (fast model), the Lava-verified subset, and the fast model on that same subset."""
    rows: list[dict] = []
    runs = {"split": counts, "lava_subset": subset.lava, "fast_subset": subset.fast}
    for name in models:
        ests = {k: energy(c, name) for k, c in runs.items()}
        layer_sets = {k: (*c.layers, network_total(c)) for k, c in runs.items()}
        for i, r in enumerate(layer_sets["split"]):
            row = {"layer": r.layer, "kind": r.kind, "energy_model": ests["split"].model.name,
                   "samples_split": counts.samples, "samples_subset": subset.lava.samples}
            for q, attr in SUBSET_QUANTITIES:
                for where, layers in layer_sets.items():
                    row[f"{q}_{where}"] = _num(getattr(layers[i], attr))
            pj = {}
            for where, est in ests.items():
                pj[where] = est.total_pj if i == len(counts.layers) else est.layers[i].pj
                row[f"energy_pj_{where}"] = _num(pj[where])
            row["energy_subset_vs_split_pct"] = _num(100 * (pj["lava_subset"] / pj["split"] - 1)) if pj["split"] else ""
            rows.append(row)
    return rows


def subset_markdown(counts: Counts, subset: VerifiedSubset, models: Sequence[str] = DEFAULT_MODELS) -> str:
    """The section of ``energy_report.md`` that puts the Lava-verified subset beside the whole split."""
    n, N = subset.lava.samples, counts.samples
    engine = "Lava fixed_pt" if subset.precision == "fixed" else "Lava floating_pt"
    lines = [
        "## Whole split (fast model) beside the Lava-verified subset", "",
        f"The tables above count all {N:,} samples of the split in neurokd's fast model. {n} of them "
        f"(indices in `agreement{'_fixed' if subset.precision == 'fixed' else ''}.json`, `fast_vs_lava`) "
        f"were re-run in {engine}: the fast model's spikes on them were "
        + ("**identical** to Lava's, step for step, so the counts below agree exactly."
           if subset.identical else "**not identical** to Lava's (the export failed its check): do not use "
           "these figures before the difference is understood."),
        "",
    ]
    tot_split, tot_lava = network_total(counts), network_total(subset.lava)
    if tot_split.spikes:
        change = 100 * (tot_lava.spikes / tot_split.spikes - 1)
        rse = (f"; the standard error of a {n}-sample mean, from the split's per-sample spread, is "
               f"{100 * subset.spike_rse:.1f} %" if subset.spike_rse is not None else "")
        lines += [f"A report from the {n}-sample subset alone would put spikes per inference at "
                  f"{_fmt(tot_lava.spikes)} instead of {_fmt(tot_split.spikes)} ({change:+.1f} %{rse}).", ""]
    head = ["layer", "spikes: split", f"spikes: Lava {n}", "SynOps: split", f"SynOps: Lava {n}",
            "updates: split", f"updates: Lava {n}"]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|---|" + "|".join(["---:"] * (len(head) - 1)) + "|")
    for i, (r, lv) in enumerate(zip((*counts.layers, tot_split), (*subset.lava.layers, tot_lava))):
        is_total = i == len(counts.layers)
        name = "**total**" if is_total else r.layer
        if r.graded_events and not is_total:           # the input: non-zero graded values, not spikes
            spikes = (_fmt(r.graded_events) + " (graded)", _fmt(lv.graded_events) + " (graded)")
        else:
            spikes = (_fmt(r.spikes), _fmt(lv.spikes)) if (r.spiking or is_total) else ("", "")
        syn = (_fmt(r.synops + r.macs), _fmt(lv.synops + lv.macs)) if (r.connection or is_total) else ("", "")
        upd = (_fmt(r.neuron_updates), _fmt(lv.neuron_updates)) if r.neuron_updates else ("", "")
        lines.append("| " + " | ".join([name, *spikes, *syn, *upd]) + " |")
    lines += ["", "SynOps here include the input layer's MACs (graded events).", "",
              "| energy model | split, pJ per inference | " + f"Lava subset ({n}), pJ | fast subset ({n}), pJ | subset vs split |",
              "|---|---:|---:|---:|---:|"]
    for name in models:
        e_split, e_lava, e_fast = energy(counts, name), energy(subset.lava, name), energy(subset.fast, name)
        change = f"{100 * (e_lava.total_pj / e_split.total_pj - 1):+.1f} %" if e_split.total_pj else "n/a"
        lines.append(f"| `{e_split.model.name}` | {_fmt(e_split.total_pj)} | {_fmt(e_lava.total_pj)} | "
                     f"{_fmt(e_fast.total_pj)} | {change} |")
    if not counts.active_known and subset.lava.active_known:
        lines += ["", "The whole split was counted from per-sample spike counts (too large to keep per step), so "
                  "every neuron update is charged as active there; the subset's per-step rasters count active "
                  "updates exactly. Energy models that price inactive updates lower read lower on the subset "
                  "for that reason as well."]
    lines.append("")
    return "\n".join(lines)


def write_energy_report(
    out_dir: str | Path,
    geometry: Geometry,
    counts: Counts,
    models: Sequence[str] = DEFAULT_MODELS,
    title: str = "",
    subset: VerifiedSubset | None = None,
    sections: Sequence[str] = (),
    placed=None,
) -> tuple[Path, ...]:
    """Write ``energy_report.csv`` and ``energy_report.md`` into ``out_dir``; return their paths.

    With ``subset`` (a fast-model run of a whole split and the samples Lava re-ran) also
    ``energy_subset.csv``, and a section of the Markdown report, with the subset's counts beside the split's.
    ``sections``: further Markdown sections appended to ``energy_report.md`` in order, e.g. the placement's
    cost (:meth:`neurokd.hardware.placement.cost.CostReport.markdown`: cores, latency, energy with routing,
    the bottleneck core and what bounds it). ``placed``: that placement's
    :class:`~neurokd.hardware.placement.cost.CostReport`, the run's energy on its chip, which then leads both
    files (module docstring).
    """
    for m in models:
        get_model(m)
    if isinstance(sections, str):
        sections = (sections,)
    out = Path(out_dir)
    csv_path, md_path = out / "energy_report.csv", out / "energy_report.md"
    rows = energy_rows(geometry, counts, models)
    parts = [energy_markdown(geometry, counts, models, title)]
    if placed is not None:       # the run's energy on its chip leads; the counting models sit beside it
        rows = placed_rows(placed) + rows
        head, _, rest = parts[0].partition("\n\n")
        teacher = teacher_ops(geometry)
        lead = placed_markdown(placed, [energy(counts, m, teacher) for m in models], counts)
        parts = [head + "\n\n" + lead + "\n## Counted events and the counting models\n\n" + rest]
    fileio.write_csv(csv_path, ENERGY_COLUMNS, rows)
    sub_path = out / "energy_subset.csv"
    if subset is not None:
        fileio.write_csv(sub_path, SUBSET_COLUMNS, subset_rows(counts, subset, models))
        parts.append(subset_markdown(counts, subset, models))
    parts += [str(sec) for sec in sections if str(sec).strip()]
    fileio.write_text(md_path, "\n\n".join(part.strip("\n") for part in parts) + "\n")
    if subset is None:
        sub_path.unlink(missing_ok=True)        # a previous fast-engine run's table no longer describes this report
        return csv_path, md_path
    return csv_path, md_path, sub_path


def write_run_energy_report(
    out_dir: str | Path,
    network,
    spikes,
    models: Sequence[str] = DEFAULT_MODELS,
    title: str = "",
    input_spiking: bool | None = None,
    sections: Sequence[str] = (),
) -> tuple[Path, Path]:
    """One call for a run: ``network`` (an :class:`~neurokd.hardware.network.ir.Network` or a
    :class:`~neurokd.hardware.cost.counting.Geometry`) and ``spikes`` (rasters ``{population: (T, B, ...)}``
    with the input's values under the input's name, or an accumulated
    :class:`~neurokd.hardware.cost.counting.Activity`) -> ``energy_report.csv`` and ``.md`` in ``out_dir``.
    ``input_spiking`` (for a Network): by default decided from the input's raster
    (:func:`~neurokd.hardware.cost.counting.input_is_spiking`), else graded. ``sections``: as in
    :func:`write_energy_report`."""
    if not isinstance(network, Geometry) and input_spiking is None:
        raster = None if isinstance(spikes, Activity) else spikes.get(network.input_name)
        input_spiking = raster is not None and input_is_spiking(raster)
    geometry = network if isinstance(network, Geometry) else geometry_from_ir(network, input_spiking=input_spiking)
    activity = spikes if isinstance(spikes, Activity) else activity_from_rasters(geometry, spikes)
    return write_energy_report(out_dir, geometry, count(geometry, activity), models, title, sections=sections)


__all__ = ["ENERGY_COLUMNS", "VerifiedSubset", "network_total", "placed_model", "placed_rows", "placed_markdown", "energy_rows", "energy_markdown", "subset_rows", "subset_markdown",
           "write_energy_report", "write_run_energy_report"]
