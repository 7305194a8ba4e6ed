"""Report writers: a run's ``energy_report.csv``/``.md``, and the comparison of several runs.

:func:`write_energy_report` turns one network's counts into ``energy_report.csv`` (one block of
rows per energy model: one row per layer, then ``total``, then ``teacher``) and a readable
``energy_report.md``. :func:`summarize_runs` reads run folders (``config.toml``,
``metrics.json``, ``energy_report.csv``, ``agreement.json`` when present) and writes
``summary.csv``, ``summary.md``, ``summary.tex`` and figures. All files are written atomically.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
import tomllib
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Iterable, Sequence

from neurokd import fileio
from neurokd.errors import NeurokdError
from neurokd.hardware.counting import (
    Activity,
    Counts,
    Geometry,
    activity_from_rasters,
    count,
    geometry_from_ir,
    neurobench_metrics,
    teacher_ops,
)
from neurokd.hardware.energy import DEFAULT_MODELS, SOURCES, EnergyEstimate, energy, get_model

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


def energy_rows(geometry: Geometry, counts: Counts, models: Sequence[str] = DEFAULT_MODELS) -> list[dict]:
    """The rows of ``energy_report.csv`` as dicts keyed by :data:`ENERGY_COLUMNS`.

    Per model: one row per layer, ``total``, and ``teacher`` (the ANN of the same graph: its
    MACs in ``macs_per_sample``, pooling additions in ``synops_per_sample``; energy empty where
    the model does not price an ANN).
    """
    teacher = teacher_ops(geometry)
    rows: list[dict] = []
    T = counts.steps
    for name in models:
        est = energy(counts, name, teacher)
        for r, e in zip((*counts.layers, counts.total), (*est.layers, None)):
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
    lines.append("")
    head = ["layer", "kind", "neurons", "synapses", "spikes", "graded events", "SynOps", "MACs", "neuron updates (active)"]
    head += [f"{e.model.name} pJ" for e in ests]
    lines.append("| " + " | ".join(head) + " |")
    lines.append("|" + "|".join(["---"] * 2 + ["---:"] * (len(head) - 2)) + "|")
    for i, r in enumerate((*counts.layers, counts.total)):
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
        layer_sets = {k: (*c.layers, c.total) for k, c in runs.items()}
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
    tot_split, tot_lava = counts.total, subset.lava.total
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
    for i, (r, lv) in enumerate(zip((*counts.layers, counts.total), (*subset.lava.layers, subset.lava.total))):
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
) -> tuple[Path, ...]:
    """Write ``energy_report.csv`` and ``energy_report.md`` into ``out_dir``; return their paths.

    With ``subset`` (a fast-model run of a whole split and the samples Lava re-ran) also
    ``energy_subset.csv``, and a section of the Markdown report, with the subset's counts beside the split's.
    """
    for m in models:
        get_model(m)
    out = Path(out_dir)
    csv_path, md_path = out / "energy_report.csv", out / "energy_report.md"
    fileio.write_csv(csv_path, ENERGY_COLUMNS, energy_rows(geometry, counts, models))
    text = energy_markdown(geometry, counts, models, title)
    sub_path = out / "energy_subset.csv"
    if subset is None:
        fileio.write_text(md_path, text)
        sub_path.unlink(missing_ok=True)        # a previous fast-engine run's table no longer describes this report
        return csv_path, md_path
    fileio.write_csv(sub_path, SUBSET_COLUMNS, subset_rows(counts, subset, models))
    fileio.write_text(md_path, text.rstrip("\n") + "\n\n" + subset_markdown(counts, subset, models))
    return csv_path, md_path, sub_path


def write_run_energy_report(
    out_dir: str | Path,
    network,
    spikes,
    models: Sequence[str] = DEFAULT_MODELS,
    title: str = "",
    input_spiking: bool = False,
) -> tuple[Path, Path]:
    """One call for a run: ``network`` (an :class:`~neurokd.hardware.ir.Network` or a
    :class:`~neurokd.hardware.counting.Geometry`) and ``spikes`` (rasters ``{population: (T, B, ...)}``
    with the input's values under the input's name, or an accumulated
    :class:`~neurokd.hardware.counting.Activity`) -> ``energy_report.csv`` and ``.md`` in ``out_dir``."""
    geometry = network if isinstance(network, Geometry) else geometry_from_ir(network, input_spiking=input_spiking)
    activity = spikes if isinstance(spikes, Activity) else activity_from_rasters(geometry, spikes)
    return write_energy_report(out_dir, geometry, count(geometry, activity), models, title)


# --------------------------------------------------------------------------------------------
# Comparing runs
# --------------------------------------------------------------------------------------------

REQUIRED = {
    "config.toml": "neurokd train --out {run}",
    "metrics.json": "neurokd train --out {run}",
    "energy_report.csv": "neurokd export {run} --target lava",
}


@dataclass
class RunRecord:
    """What the comparison needs from one run folder."""

    path: Path
    dataset: str
    method: str
    seed: int
    model: str | None
    timesteps: int | None
    accuracy: float
    teacher_accuracy: float | None
    accuracy_lava: dict[str, float]  # precision -> accuracy of the Lava run
    activity: float
    activity_per_layer: dict[str, float]
    spikes_per_sample: float | None
    energy_rows: list[dict]
    models: list[str] = field(default_factory=list)
    config: dict = field(default_factory=dict)

    def total(self, model: str) -> dict:
        return next(r for r in self.energy_rows if r["energy_model"] == model and r["layer"] == "total")

    def teacher_pj(self, model: str) -> float | None:
        for r in self.energy_rows:
            if r["energy_model"] == model and r["layer"] == "teacher":
                return _float(r.get("energy_pj_per_sample"))
        return None

    def layer_rows(self) -> list[dict]:
        """Layer rows of the first energy block (counts are the same in every block)."""
        first = self.models[0]
        return [r for r in self.energy_rows if r["energy_model"] == first and r["layer"] not in ("total", "teacher")]


def _float(v) -> float | None:
    if v is None or v == "":
        return None
    try:
        return float(v)
    except (TypeError, ValueError):
        return None


def _missing(run: Path, name: str) -> NeurokdError:
    cmd = REQUIRED[name].format(run=run)
    return NeurokdError(f"run folder {run} has no {name}: make it with `{cmd}`")


def read_run(run_dir: str | Path) -> RunRecord:
    """Read one run folder; a missing file raises NeurokdError naming the folder, the file and the command."""
    run = Path(run_dir)
    if not run.is_dir():
        raise NeurokdError(f"run folder not found: {run} (train one with `neurokd train --out {run}`)")
    for name in REQUIRED:
        if not (run / name).is_file():
            raise _missing(run, name)
    try:
        config = tomllib.loads((run / "config.toml").read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NeurokdError(f"cannot read {run / 'config.toml'}: {exc}") from exc
    try:
        metrics = json.loads((run / "metrics.json").read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise NeurokdError(f"cannot read {run / 'metrics.json'}: {exc} (rewrite it with `neurokd eval {run}`)") from exc
    for key in ("test_accuracy", "activity"):
        if key not in metrics:
            raise NeurokdError(f"{run / 'metrics.json'} has no {key!r} (rewrite it with `neurokd eval {run}`)")
    with open(run / "energy_report.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    need = {"layer", "kind", "synops_per_sample", "energy_model", "energy_pj_per_sample"}
    if not rows or not need <= set(rows[0]):
        raise NeurokdError(
            f"{run / 'energy_report.csv'} is empty or lacks columns {sorted(need)}: "
            f"remake it with `neurokd export {run} --target lava`"
        )
    models = list(dict.fromkeys(r["energy_model"] for r in rows))
    for m in models:
        if not any(r["energy_model"] == m and r["layer"] == "total" for r in rows):
            raise NeurokdError(f"{run / 'energy_report.csv'} has no total row for energy model {m!r}")
    accuracy_lava: dict[str, float] = {}
    for path in sorted([*run.glob("agreement*.json"), *run.glob("lava/agreement*.json")]):
        try:
            ag = json.loads(path.read_text(encoding="utf-8"))
        except (json.JSONDecodeError, UnicodeDecodeError) as exc:
            raise NeurokdError(f"cannot read {path}: {exc} (remake it with `neurokd export {run} --target lava`)") from exc
        if isinstance(ag, dict) and ag.get("accuracy_lava") is not None:
            accuracy_lava[str(ag.get("precision", path.stem))] = float(ag["accuracy_lava"])
    activity = metrics["activity"]
    act_total = activity["total"] if isinstance(activity, dict) else activity
    per_layer = activity.get("per_layer", {}) if isinstance(activity, dict) else {}
    return RunRecord(
        path=run,
        dataset=str(metrics.get("dataset", config.get("dataset", "?"))),
        method=str(metrics.get("method", config.get("method", "?"))),
        seed=int(metrics.get("seed", config.get("seed", 0))),
        model=metrics.get("model", config.get("model")),
        timesteps=metrics.get("timesteps", config.get("timesteps")),
        accuracy=float(metrics["test_accuracy"]),
        teacher_accuracy=_float(metrics.get("teacher_test_accuracy")),
        accuracy_lava=accuracy_lava,
        activity=float(act_total),
        activity_per_layer={k: float(v) for k, v in per_layer.items()},
        spikes_per_sample=_float(metrics.get("spikes_per_sample")),
        energy_rows=rows,
        models=models,
        config=config,
    )


def expand_run_dirs(paths: Iterable[str | Path]) -> list[Path]:
    """Run folders from the arguments: a folder without metrics.json but with run folders inside stands for them."""
    out: list[Path] = []
    for p in map(Path, paths):
        if p.is_dir() and not (p / "metrics.json").is_file():
            inner = sorted(d for d in p.iterdir() if d.is_dir() and (d / "metrics.json").is_file())
            if inner:
                out.extend(inner)
                continue
        out.append(p)
    return out


def summary_rows(runs: Sequence[RunRecord], models: Sequence[str]) -> tuple[list[str], list[dict]]:
    """Header and rows of ``summary.csv``: one row per run."""
    header = ["run", "dataset", "model", "method", "seed", "timesteps", "accuracy", "accuracy_lava_float",
              "accuracy_lava_fixed", "teacher_accuracy", "activity", "spikes_per_sample", "synops_per_sample",
              "macs_per_sample"]
    for m in models:
        header += [f"energy_pj_per_sample_{m}", f"teacher_energy_pj_per_sample_{m}"]
    rows = []
    for r in runs:
        first = r.total(r.models[0])
        row = {
            "run": str(r.path), "dataset": r.dataset, "model": r.model or "", "method": r.method, "seed": r.seed,
            "timesteps": r.timesteps if r.timesteps is not None else "", "accuracy": r.accuracy,
            "accuracy_lava_float": r.accuracy_lava.get("float", ""), "accuracy_lava_fixed": r.accuracy_lava.get("fixed", ""),
            "teacher_accuracy": "" if r.teacher_accuracy is None else r.teacher_accuracy,
            "activity": r.activity, "spikes_per_sample": "" if r.spikes_per_sample is None else r.spikes_per_sample,
            "synops_per_sample": first["synops_per_sample"], "macs_per_sample": first.get("macs_per_sample", ""),
        }
        for m in models:
            row[f"energy_pj_per_sample_{m}"] = r.total(m)["energy_pj_per_sample"] if m in r.models else ""
            t = r.teacher_pj(m) if m in r.models else None
            row[f"teacher_energy_pj_per_sample_{m}"] = "" if t is None else t
        rows.append(row)
    return header, rows


@dataclass
class Stat:
    """Mean and sample standard deviation over seeds (std None for one seed)."""

    values: list[float]

    @property
    def n(self) -> int:
        return len(self.values)

    @property
    def mean(self) -> float | None:
        return statistics.fmean(self.values) if self.values else None

    @property
    def std(self) -> float | None:
        return statistics.stdev(self.values) if len(self.values) > 1 else None


#: Config keys that do not make two runs different settings (seeds of one setting differ in these).
_NOT_A_SETTING = ("seed", "out", "teacher", "device", "amp", "data_dir", "dataset", "method", "model")


def separate_settings(runs: Sequence[RunRecord]) -> list[RunRecord]:
    """Relabel runs so that only seeds of one setting are averaged together (tables and figures).

    Runs of one dataset trained with different models get the dataset ``<dataset>-<model>`` (e.g.
    ``synth-kws-conv1d``, ``synth-kws-resnet1d``): each model has its own baseline. Runs of one method
    whose configs differ in anything but the seed (and paths, device) get the method
    ``<method> (key=value, ...)`` naming what differs, e.g. ``kd (temperature=4.0)``, still compared
    with the dataset's baseline."""
    used: dict[str, set] = {}
    for r in runs:
        used.setdefault(r.dataset, set()).add(r.model)
    runs = [replace(r, dataset=f"{r.dataset}-{r.model}") if len(used[r.dataset]) > 1 else r for r in runs]
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in runs:
        groups.setdefault((r.dataset, r.method), []).append(r)
    out = []
    for r in runs:
        rs = groups[(r.dataset, r.method)]
        keys = sorted({k for x in rs for k in x.config} - set(_NOT_A_SETTING))
        varying = [k for k in keys if len({repr(x.config.get(k)) for x in rs}) > 1]
        if varying:
            label = ", ".join(f"{k}={_setting_value(r.config.get(k))}" for k in varying)
            r = replace(r, method=f"{r.method} ({label})")
        out.append(r)
    return out


def _setting_value(v) -> str:
    if isinstance(v, dict):
        return "{" + ", ".join(f"{k}: {_setting_value(x)}" for k, x in v.items()) + "}"
    if isinstance(v, list):
        return "[" + ", ".join(_setting_value(x) for x in v) + "]"
    return "-" if v is None else str(v)


def group_stats(runs: Sequence[RunRecord], models: Sequence[str]) -> list[dict]:
    """Per (dataset, method), in order of appearance: n seeds and a :class:`Stat` per quantity."""
    groups: dict[tuple[str, str], list[RunRecord]] = {}
    for r in runs:
        groups.setdefault((r.dataset, r.method), []).append(r)
    out = []
    for (dataset, method), rs in groups.items():
        seen: dict[int, RunRecord] = {}
        for r in rs:
            if r.seed in seen:
                raise NeurokdError(
                    f"runs {seen[r.seed].path} and {r.path} are both {method} seed {r.seed} on {dataset} with the same "
                    "settings: the same run twice; report one of them"
                )
            seen[r.seed] = r
        g = {
            "dataset": dataset, "method": method, "seeds": len(rs),
            "accuracy": Stat([r.accuracy for r in rs]),
            "activity": Stat([r.activity for r in rs]),
            "synops": Stat([float(r.total(r.models[0])["synops_per_sample"]) for r in rs]),
        }
        for m in models:
            g[f"energy_{m}"] = Stat([float(r.total(m)["energy_pj_per_sample"]) for r in rs if m in r.models])
        out.append(g)
    return out


def pick_baseline(groups: Sequence[dict], dataset: str, baseline: str | None) -> dict | None:
    """The baseline group of a dataset: the named method, else ``baseline``, else the first method."""
    same = [g for g in groups if g["dataset"] == dataset]
    for name in ([baseline] if baseline else []) + ["baseline"]:
        for g in same:
            if g["method"] == name:
                return g
    if baseline:
        raise NeurokdError(f"baseline method {baseline!r} has no run for dataset {dataset!r}; "
                           f"methods present: {', '.join(g['method'] for g in same)}")
    return same[0] if same else None


def order_groups(groups: Sequence[dict], baseline: str | None) -> list[dict]:
    """Groups by dataset (order of appearance), each dataset's baseline method first."""
    out: list[dict] = []
    for dataset in dict.fromkeys(g["dataset"] for g in groups):
        base = pick_baseline(groups, dataset, baseline)
        out += [base] + [g for g in groups if g["dataset"] == dataset and g is not base]
    return out


def _change(value: float | None, base: float | None) -> float | None:
    if value is None or base is None or base == 0:
        return None
    return 100.0 * (value - base) / base


def _pm(stat: Stat, scale: float = 1.0, digits: int = 3, tex: bool = False) -> str:
    """``mean ± std`` with ``digits`` significant digits on the mean and the std to the same decimal place."""
    if stat.mean is None:
        return "n/a"
    mean = stat.mean * scale
    decimals = max(0, digits - 1 - math.floor(math.log10(abs(mean)))) if mean else 0
    txt = f"{mean:,.{decimals}f}"
    if stat.std is not None:
        txt += (r" $\pm$ " if tex else " ± ") + f"{stat.std * scale:,.{decimals}f}"
    return txt


def _tex_escape(s: str) -> str:
    for a, b in (("\\", r"\textbackslash{}"), ("&", r"\&"), ("%", r"\%"), ("_", r"\_"), ("#", r"\#"), ("$", r"\$")):
        s = s.replace(a, b)
    return s


def _signed(x: float | None, unit: str, tex: bool) -> str:
    """``+1.2 %`` / ``−3.4 pp`` (LaTeX: ``+1.2\\,\\%``, ``$-$3.4\\,pp``); empty when undefined."""
    if x is None:
        return ""
    num = f"{x:+.1f}" if unit == "%" else f"{x:+.2f}"
    if tex:
        return num.replace("-", "$-$") + ("\\,\\%" if unit == "%" else "\\,pp")
    return num.replace("-", "\u2212") + (" %" if unit == "%" else " pp")


def summary_table(groups: Sequence[dict], models: Sequence[str], baseline: str | None, tex: bool) -> list[list[str]]:
    """Cells of the grouped table (header first): mean ± std over seeds, change vs the dataset's baseline."""
    e_unit = "nJ"
    header = ["Dataset", "Method", "Seeds", "Accuracy (%)", "Activity (spikes/neuron/step)", "SynOps / inference"]
    header += [f"Energy {m} ({e_unit})" for m in models]
    rows = [header]
    for g in groups:
        base = pick_baseline(groups, g["dataset"], baseline)
        is_base = base is g

        def cell(key: str, scale: float, digits: int, pp: bool = False) -> str:
            txt = _pm(g[key], scale, digits, tex)
            if base is not None and not is_base and g[key].mean is not None and base[key].mean is not None:
                if pp:
                    delta = _signed(100.0 * (g[key].mean - base[key].mean), "pp", tex)
                else:
                    delta = _signed(_change(g[key].mean, base[key].mean), "%", tex)
                if delta:
                    txt += f" ({delta})"
            return txt

        several = len([x for x in groups if x["dataset"] == g["dataset"]]) > 1
        name = g["method"] + (" (baseline)" if is_base and several and g["method"] != "baseline" else "")
        row = [g["dataset"], name, str(g["seeds"]), cell("accuracy", 100.0, 4, pp=True), cell("activity", 1.0, 3),
               cell("synops", 1.0, 3)]
        row += [cell(f"energy_{m}", 1e-3, 3) for m in models]
        rows.append([_tex_escape(c) if tex and "$" not in c and "\\" not in c else c for c in row])
    return rows


def summary_markdown(runs: Sequence[RunRecord], groups: Sequence[dict], models: Sequence[str], baseline: str | None) -> str:
    table = summary_table(groups, models, baseline, tex=False)
    lines = ["# neurokd summary", "",
             f"{len(runs)} run(s). Mean ± sample standard deviation over seeds; in brackets the change vs the "
             "dataset's baseline method (accuracy in percentage points, the rest in percent). Energy per inference "
             "(one sample, all time steps), from each run's energy_report.csv.", ""]
    lines.append("| " + " | ".join(table[0]) + " |")
    lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(table[0]) - 2)) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in table[1:]]
    lines += ["", "## Runs", "", "| run | dataset | method | seed | accuracy | Lava float | Lava fixed | activity | SynOps |"
              + "".join(f" {m} pJ |" for m in models), "|" + "---|" * (9 + len(models))]
    for r in runs:
        cells = [str(r.path), r.dataset, r.method, str(r.seed), f"{100 * r.accuracy:.2f} %",
                 f"{100 * r.accuracy_lava['float']:.2f} %" if "float" in r.accuracy_lava else "n/a",
                 f"{100 * r.accuracy_lava['fixed']:.2f} %" if "fixed" in r.accuracy_lava else "n/a",
                 f"{r.activity:.4f}", _fmt(float(r.total(r.models[0])["synops_per_sample"]))]
        cells += [_fmt(float(r.total(m)["energy_pj_per_sample"])) if m in r.models else "n/a" for m in models]
        lines.append("| " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"


def summary_tex(groups: Sequence[dict], models: Sequence[str], baseline: str | None) -> str:
    """A booktabs table (needs ``\\usepackage{booktabs}``) of the grouped summary."""
    table = summary_table(groups, models, baseline, tex=True)
    header = [_tex_escape(h) for h in table[0]]
    cols = "ll" + "r" * (len(header) - 2)
    lines = [
        "% neurokd summary: mean $\\pm$ std over seeds; in brackets the change vs the baseline method",
        "% (accuracy in percentage points, the rest in percent). Needs \\usepackage{booktabs}.",
        f"\\begin{{tabular}}{{{cols}}}", "\\toprule", " & ".join(header) + r" \\", "\\midrule",
    ]
    last = None
    for r in table[1:]:
        if last is not None and r[0] != last:
            lines.append("\\midrule")
        last = r[0]
        lines.append(" & ".join(r) + r" \\")
    lines += ["\\bottomrule", "\\end{tabular}", ""]
    return "\n".join(lines)


def summarize_runs(
    run_dirs: Sequence[str | Path],
    out_dir: str | Path,
    models: Sequence[str] | None = None,
    baseline: str | None = None,
    figures: bool = True,
) -> dict[str, Path]:
    """Read run folders and write ``summary.csv``, ``summary.md``, ``summary.tex`` and figures into ``out_dir``.

    ``models``: energy models to report (default: every model in the first run's
    energy_report.csv). Returns ``{name: path}`` of the files written.
    """
    dirs = expand_run_dirs(run_dirs)
    if not dirs:
        raise NeurokdError("no run folders given: pass one or more folders made by `neurokd train`")
    runs = [read_run(d) for d in dirs]
    models = list(models) if models else list(runs[0].models)
    for m in models:
        for r in runs:
            if m not in r.models:
                raise NeurokdError(f"{r.path / 'energy_report.csv'} has no rows for energy model {m!r} "
                                   f"(it has {', '.join(r.models)})")
    out = Path(out_dir)
    header, rows = summary_rows(runs, models)
    runs = separate_settings(runs)
    groups = order_groups(group_stats(runs, models), baseline)
    paths = {"summary.csv": out / "summary.csv", "summary.md": out / "summary.md", "summary.tex": out / "summary.tex"}
    fileio.write_csv(paths["summary.csv"], header, rows)
    fileio.write_text(paths["summary.md"], summary_markdown(runs, groups, models, baseline))
    fileio.write_text(paths["summary.tex"], summary_tex(groups, models, baseline))
    if figures:
        from neurokd.hardware.figures import write_figures

        paths.update(write_figures(runs, out, models))
    return paths


__all__ = ["ENERGY_COLUMNS", "energy_rows", "energy_markdown", "write_energy_report", "write_run_energy_report", "RunRecord", "read_run",
           "expand_run_dirs", "summary_rows", "separate_settings", "group_stats", "order_groups", "summary_markdown", "summary_tex", "summarize_runs"]
