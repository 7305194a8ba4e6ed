"""Comparing finished runs: ``summary.csv``, ``summary.md``, ``summary.tex`` and figures.

:func:`summarize_runs` reads run folders (``config.toml``, ``metrics.json``, ``energy_report.csv``,
``agreement.json`` when present), groups them by dataset, model and setting, averages each group over
its seeds against the dataset's baseline, and writes the tables and (:mod:`neurokd.hardware.reports.figures`)
the figures. All files are written atomically.

A run placed on a chip (``RUN/map/``, written by ``neurokd export RUN --hardware PRESET`` or ``neurokd
map RUN --out RUN/map``) adds its cores, chips, latency per inference and energy per inference with
routing (:func:`read_map`: the ``summary`` rows of ``map/cost_report.csv``, the chip and placer of
``map/placement.json``) and a figure of its per-core load on the mesh. A run without one leaves
those cells empty; the Markdown and LaTeX tables show the columns only when some run has them.
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
from neurokd.hardware.reports.energy_report import _fmt


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
    mapping: "MapSummary | None" = None

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


@dataclass
class MapSummary:
    """What a run's ``map/`` folder says: the chip and placer, cores and chips used, and (with a cost) the
    per-inference figures of ``cost_report.csv``'s ``summary`` rows and its per-core rows (for the mesh figure)."""

    path: Path
    hardware: str
    placer: str
    cores: int
    chips: int
    tiles_x: int
    tiles_y: int
    latency_us: float | None = None
    energy_uj: float | None = None          # per inference, routing included
    routing_uj: float | None = None
    edp_uj_us: float | None = None
    bottleneck_core: int | None = None
    core_rows: list[dict] = field(default_factory=list)
    input_mode: str | None = None           # how the chip took the input (placement.json's options.input_mode)

    @property
    def label(self) -> str:
        mode = f", {self.input_mode} input" if self.input_mode else ""
        return f"{self.hardware} ({self.placer}{mode})"


def _remake_map(run: Path) -> str:
    return f"remake it with `neurokd export {run} --target lava --hardware loihi1` or `neurokd map {run} --out {run / 'map'}`"


def read_map(run_dir: str | Path) -> MapSummary | None:
    """``RUN/map/`` as a :class:`MapSummary`; None when the run has no ``map/placement.json``. A file there that
    cannot be read raises :class:`NeurokdError` naming it and the command that remakes it."""
    run = Path(run_dir)
    folder = run / "map"
    info_path, cost_path = folder / "placement.json", folder / "cost_report.csv"
    if not info_path.is_file():
        return None
    try:
        info = json.loads(info_path.read_text(encoding="utf-8"))
        cores, chips = int(info["cores"]), int(info["chips"])
        mesh = info.get("mesh")
        if mesh is None:        # written before placement.json named the mesh: the chip file's
            from neurokd.hardware.placement.chips import load_chip

            chip = load_chip(info.get("chip_file") or info["chip"])
            mesh = {"tiles_x": chip["mesh.tiles_x"], "tiles_y": chip["mesh.tiles_y"]}
        out = MapSummary(folder, str(info["chip"]), str(info.get("placer", "?")), cores, chips,
                         int(mesh["tiles_x"]), int(mesh["tiles_y"]),
                         input_mode=(info.get("options") or {}).get("input_mode"))
    except (json.JSONDecodeError, UnicodeDecodeError, KeyError, TypeError, ValueError, NeurokdError) as exc:
        raise NeurokdError(f"cannot read {info_path}: {exc}; {_remake_map(run)}") from exc
    if not cost_path.is_file():
        return out                       # placed only (`neurokd map --no-cost`)
    with open(cost_path, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    summary = {r.get("name"): _float(r.get("value")) for r in rows if r.get("scope") == "summary"}
    need = ("latency_us_per_inference", "energy_uj_per_inference", "energy_routing_uj_per_inference")
    if any(summary.get(k) is None for k in need):
        raise NeurokdError(f"{cost_path} lacks the summary rows {', '.join(need)}; {_remake_map(run)}")
    out.latency_us, out.energy_uj = summary["latency_us_per_inference"], summary["energy_uj_per_inference"]
    out.routing_uj, out.edp_uj_us = summary["energy_routing_uj_per_inference"], summary.get("edp_uj_us")
    b = summary.get("bottleneck_core")
    out.bottleneck_core = None if b is None else int(b)
    try:
        out.core_rows = [{"core": int(r["name"]), "x": int(r["x"]), "y": int(r["y"]), "layer": r["layer"],
                          "busy_ns": float(r["busy_ns"])} for r in rows if r.get("scope") == "core"]
    except (KeyError, TypeError, ValueError) as exc:
        raise NeurokdError(f"{cost_path}: a core row is malformed ({exc}); {_remake_map(run)}") from exc
    return out


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
    from neurokd.hardware.cost.energy import canonical_model

    with open(run / "energy_report.csv", newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:                 # a file written before a model's rename: today's name (energy.ALIASES)
        if r.get("energy_model") is not None:
            r["energy_model"] = canonical_model(r["energy_model"])
    need = {"layer", "kind", "synops_per_sample", "energy_model", "energy_pj_per_sample"}
    if not rows or not need <= set(rows[0]):
        raise NeurokdError(
            f"{run / 'energy_report.csv'} is empty or lacks columns {sorted(need)}: "
            f"remake it with `neurokd export {run} --target lava`"
        )
    # the counting models; a placed run's own block (``placed-<chip>``) is its map/ summary (cores, latency, energy)
    models = list(dict.fromkeys(r["energy_model"] for r in rows if not r["energy_model"].startswith("placed-")))
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
        mapping=read_map(run),
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
    from neurokd.hardware.cost.energy import ALIASES

    legacy = {old: new for old, new in ALIASES.items() if new in models}    # columns under a model's former name
    for m in models:
        header += [f"energy_pj_per_sample_{m}", f"teacher_energy_pj_per_sample_{m}"]
    header += list(MAP_COLUMNS)
    header += [c for old in legacy for c in (f"energy_pj_per_sample_{old}", f"teacher_energy_pj_per_sample_{old}")]
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
        row.update(_map_cells(r.mapping))
        for old, new in legacy.items():
            row[f"energy_pj_per_sample_{old}"] = row[f"energy_pj_per_sample_{new}"]
            row[f"teacher_energy_pj_per_sample_{old}"] = row[f"teacher_energy_pj_per_sample_{new}"]
        rows.append(row)
    return header, rows


#: summary.csv's columns from a run's map/ folder (empty for a run without one).
MAP_COLUMNS = ("map_hardware", "map_placer", "cores", "chips", "latency_us_per_inference",
               "energy_with_routing_uj_per_inference", "routing_energy_uj_per_inference", "edp_uj_us")


def _map_cells(m: MapSummary | None) -> dict:
    if m is None:
        return {k: "" for k in MAP_COLUMNS}
    values = (m.hardware, m.placer, m.cores, m.chips, m.latency_us, m.energy_uj, m.routing_uj, m.edp_uj_us)
    return {k: "" if v is None else v for k, v in zip(MAP_COLUMNS, values)}


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


def _model_label(model, models: set) -> str:
    """A student from user code (``--model /abs/path/FILE.py:FUNCTION``) by ``FILE.py:FUNCTION`` alone,
    unless another of ``models`` shortens to the same; registry names as they are."""
    def short(m):
        if not isinstance(m, str) or ":" not in m:
            return m
        target, _, fn = m.rpartition(":")
        return f"{Path(target).name}:{fn}"

    mine = short(model)
    return mine if sum(short(m) == mine for m in models) == 1 else str(model)


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
    runs = [replace(r, dataset=f"{r.dataset}-{_model_label(r.model, used[r.dataset])}") if len(used[r.dataset]) > 1
            else r for r in runs]
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
    if isinstance(v, float) and len(repr(v)) > 8:
        return f"{v:.6g}"          # a searched weight (neurokd tune) reads 0.13982, not 0.13981961408994045
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
        # placed seeds: averaged only when they were placed alike (one chip, one placer)
        mapped = [r.mapping for r in rs if r.mapping is not None]
        g["map_hardware"] = sorted({m.label for m in mapped})
        alike = len(g["map_hardware"]) == 1
        for key, attr in (("cores", "cores"), ("chips", "chips"), ("latency", "latency_us"), ("energy_routed", "energy_uj")):
            g[key] = Stat([float(getattr(m, attr)) for m in mapped if alike and getattr(m, attr) is not None])
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


def _with_map(groups: Sequence[dict]) -> bool:
    return any(g.get("map_hardware") for g in groups)


def _map_hardware(groups: Sequence[dict]) -> str:
    labels = sorted({h for g in groups for h in g.get("map_hardware", [])})
    return ", ".join(labels)


def _whole(stat: Stat) -> str:
    """A count every seed agrees on (cores, chips) as the bare integer; '' otherwise."""
    vals = set(stat.values)
    return str(int(stat.values[0])) if len(vals) == 1 and float(stat.values[0]).is_integer() else ""


def summary_table(groups: Sequence[dict], models: Sequence[str], baseline: str | None, tex: bool) -> list[list[str]]:
    """Cells of the grouped table (header first): mean ± std over seeds, change vs the dataset's baseline.
    With a placed run in any group, also cores, chips, latency and energy with routing per inference
    (empty for a group with no placed run; "mixed hardware" where its seeds were placed on different chips)."""
    e_unit = "nJ"
    header = ["Dataset", "Method", "Seeds", "Accuracy (%)", "Activity (spikes/neuron/step)", "SynOps / inference"]
    with_map = _with_map(groups)
    if with_map:        # the placed cost leads: the runs' energy on their chip, then the counting models
        header += [f"Energy placed, with routing ({e_unit})", "Cores", "Chips", "Latency / inference (us)"]
    header += [f"Energy {m}{', counted' if with_map else ''} ({e_unit})" for m in models]
    rows = [header]
    for g in groups:
        base = pick_baseline(groups, g["dataset"], baseline)
        is_base = base is g

        def cell(key: str, scale: float, digits: int, pp: bool = False, whole: bool = False) -> str:
            txt = (whole and _whole(g[key])) or _pm(g[key], scale, digits, tex)
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
        if with_map:
            if len(g["map_hardware"]) > 1:
                row += ["mixed hardware"] * 4
            else:
                placed = g["cores"].n
                part = f" [{placed} of {g['seeds']} seeds]" if 0 < placed < g["seeds"] else ""
                row += [cell(key, scale, 3, whole=whole) + part if placed else "" for key, scale, whole in
                        (("energy_routed", 1e3, False), ("cores", 1.0, True), ("chips", 1.0, True), ("latency", 1.0, False))]
        row += [cell(f"energy_{m}", 1e-3, 3) for m in models]
        rows.append([_tex_escape(c) if tex and "$" not in c and "\\" not in c else c for c in row])
    return rows


def summary_markdown(runs: Sequence[RunRecord], groups: Sequence[dict], models: Sequence[str], baseline: str | None) -> str:
    table = summary_table(groups, models, baseline, tex=False)
    lines = ["# neurokd summary", "",
             f"{len(runs)} run(s). Mean ± sample standard deviation over seeds; in brackets the change vs the "
             "dataset's baseline method (accuracy in percentage points, the rest in percent). Energy per inference "
             "(one sample, all time steps), from each run's energy_report.csv."
             + (f" A run placed on a chip ({_map_hardware(groups)}; its map/cost_report.csv) has one energy there, "
                "the placed one (with routing, host messages and the pipeline's steps), which leads with its cores, "
                "chips and latency, empty where a run was not placed; the counting models beside it price the counted "
                "events without a placement (each run's energy_report.md sets them side by side, part by part)."
                if _with_map(groups) else ""), ""]
    lines.append("| " + " | ".join(table[0]) + " |")
    lines.append("|" + "|".join(["---", "---"] + ["---:"] * (len(table[0]) - 2)) + "|")
    lines += ["| " + " | ".join(r) + " |" for r in table[1:]]
    lines += ["", "## Runs", "", "| run | dataset | method | seed | accuracy | Lava float | Lava fixed | activity | SynOps |"
              + "".join(f" {m} pJ |" for m in models) + (" cores | latency us | with routing nJ |" if _with_map(groups) else ""),
              "|" + "---|" * (9 + len(models) + (3 if _with_map(groups) else 0))]
    for r in runs:
        cells = [str(r.path), r.dataset, r.method, str(r.seed), f"{100 * r.accuracy:.2f} %",
                 f"{100 * r.accuracy_lava['float']:.2f} %" if "float" in r.accuracy_lava else "n/a",
                 f"{100 * r.accuracy_lava['fixed']:.2f} %" if "fixed" in r.accuracy_lava else "n/a",
                 f"{r.activity:.4f}", _fmt(float(r.total(r.models[0])["synops_per_sample"]))]
        cells += [_fmt(float(r.total(m)["energy_pj_per_sample"])) if m in r.models else "n/a" for m in models]
        if _with_map(groups):
            mp = r.mapping
            cells += ["" if mp is None else str(mp.cores),
                      "" if mp is None or mp.latency_us is None else f"{mp.latency_us:.3f}",
                      "" if mp is None or mp.energy_uj is None else _fmt(mp.energy_uj * 1e3)]
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
        *([f"% Cores, chips, latency and energy with routing per inference: placed on {_map_hardware(groups)}."]
          if _with_map(groups) else []),
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
    from neurokd.hardware.cost.energy import canonical_model

    models = [canonical_model(m) for m in models] if models else list(runs[0].models)
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
        from neurokd.hardware.reports.figures import write_figures

        paths.update(write_figures(runs, out, models))
    return paths


__all__ = ["RunRecord", "MapSummary", "read_map", "MAP_COLUMNS", "read_run", "expand_run_dirs", "summary_rows", "separate_settings", "group_stats",
           "order_groups", "summary_markdown", "summary_tex", "summarize_runs"]
