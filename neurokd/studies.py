"""A study: several methods over several seeds with one schedule, summarised against the baseline.

Layout of a study folder::

    teacher-s<seed>/         one teacher per seed, trained once, shared by every method of that seed
    <method>-s<seed>/        a normal run folder (see neurokd.training)
    summary.csv              one row per run
    summary_mean.csv         one row per method: mean and sample std (ddof=1) over seeds
    accuracy_vs_activity.png / .pdf

Changes vs the baseline are taken seed by seed (same data split, same teacher), then averaged::

    accuracy_change_pts  = 100 * (acc_method - acc_baseline)           percentage points
    activity_change_pct  = 100 * (act_method / act_baseline - 1)       percent of the baseline

A study is resumable: finished runs (metrics.json present, same settings) are read back, not retrained.
"""

from __future__ import annotations

import json
import math
import statistics
from pathlib import Path
from typing import Callable, Sequence

from neurokd import fileio
from neurokd.config import ADDED_SETTINGS, TrainConfig, make_config, read_toml
from neurokd.errors import NeurokdError
from neurokd.losses import METHODS

ACT_UNIT = "spikes_per_neuron_step"
# The bar of benchmarks/kd_activity.py: a method at <= 60 % of the baseline's activity whose mean
# accuracy is at most 0.5 points below the baseline's.
BAR_ACTIVITY_RATIO = 0.60
BAR_ACCURACY_DROP_PTS = 0.5


def parse_list(text: str, what: str, cast=str) -> list:
    items = [t.strip() for t in str(text).split(",") if t.strip()]
    if not items:
        raise NeurokdError(f"--{what}: give a comma-separated list, got {text!r}")
    try:
        return [cast(t) for t in items]
    except ValueError as exc:
        raise NeurokdError(f"--{what}: cannot read {text!r} ({exc})") from exc


def _same_settings(a: dict, b: dict) -> list[str]:
    # a config.toml older than a setting of ADDED_SETTINGS: the value it ran with
    return [k for k in sorted(set(a) | set(b))
            if k not in ("device", "amp", "out") and a.get(k, ADDED_SETTINGS.get(k)) != b.get(k, ADDED_SETTINGS.get(k))]


def run_study(
    dataset: str,
    methods: Sequence[str],
    seeds: Sequence[int],
    out: str | Path,
    *,
    config_file: str | Path | None = None,
    progress: bool = True,
    log: Callable[[str], None] = print,
    **knobs,
) -> list[dict]:
    """Train every (method, seed) not yet finished into ``out``; write the summaries and the plot.

    ``knobs`` are :class:`~neurokd.config.TrainConfig` settings shared by all runs (epochs,
    temperature, lambdas ...). Returns the rows of summary.csv.
    """
    from neurokd.training import load_splits
    from neurokd.training import train, train_teacher_run

    methods = list(dict.fromkeys(methods))
    for m in methods:
        if m not in METHODS:
            raise NeurokdError(f"unknown method {m!r} in --methods; choose from: {', '.join(METHODS)}")
    for key in ("method", "seed", "out", "teacher", "dataset"):
        if knobs.get(key) is not None:
            raise NeurokdError(f"a study sets {key} itself; do not pass it as a shared setting")
    out = Path(out)
    out.mkdir(parents=True, exist_ok=True)
    results: list[dict] = []
    for seed in seeds:
        base = make_config(config_file, dataset=dataset, seed=int(seed), method="baseline", out=str(out), **knobs)
        if base.data_dir:
            base = base.replace(data_dir=str(Path(base.data_dir).expanduser().resolve()))
        splits = None
        teacher_dir = out / f"teacher-s{seed}"
        if (teacher_dir / "config.toml").is_file():
            diff = _same_settings(read_toml(teacher_dir / "config.toml"),
                                  base.replace(out=str(teacher_dir), teacher="auto").to_dict())
            diff = [k for k in diff if k in ("dataset", "data_dir", "model", "model_options", "seed", "lr",
                                             "weight_decay", "optimizer", "schedule", "batch_size", "teacher_epochs")]
            if diff:
                raise NeurokdError(f"{teacher_dir} was trained with other settings ({', '.join(diff)}); "
                                   "use another --out for a study with new settings")
        if not (teacher_dir / "teacher_metrics.json").is_file():
            splits = splits or load_splits(base)
            log(f"study: teacher for seed {seed} -> {teacher_dir}")
        teacher_metrics = train_teacher_run(base, teacher_dir, progress=progress, splits=splits)
        for method in methods:
            run_dir = out / f"{method}-s{seed}"
            cfg = base.replace(method=method, out=str(run_dir), teacher=str(teacher_dir.resolve()))
            metrics_path = run_dir / "metrics.json"
            if metrics_path.is_file():
                diff = _same_settings(read_toml(run_dir / "config.toml"), cfg.to_dict()) \
                    if (run_dir / "config.toml").is_file() else ["config.toml missing"]
                if diff:
                    raise NeurokdError(f"{run_dir} is finished but with other settings ({', '.join(diff)}); "
                                       "use another --out for a study with new settings")
                log(f"study: {method} seed {seed}: finished, read from {metrics_path}")
                metrics = json.loads(metrics_path.read_text())
            else:
                splits = splits or load_splits(base)
                log(f"study: {method} seed {seed} -> {run_dir}")
                metrics = train(cfg, resume=True, progress=progress, splits=splits, log=log)
            metrics = dict(metrics)
            metrics["run"] = str(run_dir)
            metrics.setdefault("teacher_test_accuracy", teacher_metrics.get("teacher_test_accuracy"))
            metrics["epoch_seconds_median"] = _median_epoch_seconds(run_dir)
            results.append(metrics)
    rows = summary_rows(results)
    mean_rows = summary_mean(rows)
    write_summaries(out, rows, mean_rows)
    plot_accuracy_vs_activity(rows, out / "accuracy_vs_activity", dataset)
    log(format_mean_table(mean_rows))
    return rows


def _median_epoch_seconds(run_dir: Path) -> float | None:
    import csv

    path = run_dir / "history.csv"
    if not path.is_file():
        return None
    with open(path, newline="", encoding="utf-8") as fh:
        secs = [float(r["seconds"]) for r in csv.DictReader(fh) if r.get("seconds")]
    return statistics.median(secs) if secs else None


def summary_rows(results: list[dict]) -> list[dict]:
    """One row per run, with the change vs the baseline of the same seed (None without a baseline)."""
    base = {m["seed"]: m for m in results if m["method"] == "baseline"}
    layers: list[str] = []
    for m in results:
        for name in m["activity"]["per_layer"]:
            if name not in layers:
                layers.append(name)
    rows = []
    for m in results:
        b = base.get(m["seed"])
        act = m["activity"]["total"]
        row = {
            "method": m["method"], "seed": m["seed"], "test_accuracy": m["test_accuracy"],
            f"activity_total_{ACT_UNIT}": act,
            **{f"activity_{name}_{ACT_UNIT}": m["activity"]["per_layer"].get(name) for name in layers},
            "spikes_per_sample": m["spikes_per_sample"],
            # the input layer's / host encoder's spikes (bias, spikes input), apart from the LIF layers'; None if graded
            "input_spikes_per_sample": (m.get("input_encoder") or {}).get("spikes_per_sample"),
            "teacher_test_accuracy": m.get("teacher_test_accuracy"),
            "accuracy_change_pts": 100 * (m["test_accuracy"] - b["test_accuracy"]) if b else None,
            "activity_change_pct": (100 * (act / b["activity"]["total"] - 1)
                                    if b and b["activity"]["total"] > 0 else None),
            "train_seconds": m.get("train_seconds"),
            "epoch_seconds_median": m.get("epoch_seconds_median"),
            "run": m.get("run", ""),
        }
        rows.append(row)
    return rows


def _mean_std(values: list) -> tuple[float | None, float | None]:
    vals = [float(v) for v in values if v is not None]
    if not vals:
        return None, None
    return statistics.fmean(vals), (statistics.stdev(vals) if len(vals) > 1 else 0.0)


def summary_mean(rows: list[dict]) -> list[dict]:
    """One row per method (in the order first seen): mean and sample std over its seeds."""
    out = []
    for method in dict.fromkeys(r["method"] for r in rows):
        rs = [r for r in rows if r["method"] == method]
        acc_m, acc_s = _mean_std([100 * r["test_accuracy"] for r in rs])
        act_m, act_s = _mean_std([r[f"activity_total_{ACT_UNIT}"] for r in rs])
        dacc_m, dacc_s = _mean_std([r["accuracy_change_pts"] for r in rs])
        dact_m, dact_s = _mean_std([r["activity_change_pct"] for r in rs])
        sps_m, _ = _mean_std([r["spikes_per_sample"] for r in rs])
        isps_m, _ = _mean_std([r.get("input_spikes_per_sample") for r in rs])
        ep_m, _ = _mean_std([r["epoch_seconds_median"] for r in rs])
        t_m, _ = _mean_std([None if r["teacher_test_accuracy"] is None else 100 * r["teacher_test_accuracy"]
                            for r in rs])
        out.append({
            "method": method, "runs": len(rs),
            "test_accuracy_mean_pct": acc_m, "test_accuracy_std_pct": acc_s,
            f"activity_mean_{ACT_UNIT}": act_m, f"activity_std_{ACT_UNIT}": act_s,
            "accuracy_change_mean_pts": dacc_m, "accuracy_change_std_pts": dacc_s,
            "activity_change_mean_pct": dact_m, "activity_change_std_pct": dact_s,
            "spikes_per_sample_mean": sps_m, "input_spikes_per_sample_mean": isps_m,
            "teacher_test_accuracy_mean_pct": t_m,
            "epoch_seconds_median_mean": ep_m,
        })
    base = next((r for r in out if r["method"] == "baseline"), None)
    for r in out:
        ok = None
        if base is not None and base[f"activity_mean_{ACT_UNIT}"]:
            ratio = r[f"activity_mean_{ACT_UNIT}"] / base[f"activity_mean_{ACT_UNIT}"]
            drop = base["test_accuracy_mean_pct"] - r["test_accuracy_mean_pct"]
            r["activity_ratio_vs_baseline"] = ratio
            ok = r["method"] != "baseline" and ratio <= BAR_ACTIVITY_RATIO and drop <= BAR_ACCURACY_DROP_PTS
        else:
            r["activity_ratio_vs_baseline"] = None
        r["meets_bar"] = ok
    return out


def write_summaries(out: Path, rows: list[dict], mean_rows: list[dict]) -> None:
    def fmt(v):
        return "" if v is None else (f"{v:.6g}" if isinstance(v, float) else v)

    if rows:
        fileio.write_csv(out / "summary.csv", list(rows[0]), [{k: fmt(v) for k, v in r.items()} for r in rows])
    if mean_rows:
        fileio.write_csv(out / "summary_mean.csv", list(mean_rows[0]),
                         [{k: fmt(v) for k, v in r.items()} for r in mean_rows])


def format_mean_table(mean_rows: list[dict]) -> str:
    """The mean/std table as fixed-width text."""
    def f(v, spec):
        return "-" if v is None or (isinstance(v, float) and math.isnan(v)) else format(v, spec)

    head = (f"{'method':<10} {'runs':>4} {'test acc %':>15} {'activity':>17} {'d acc pts':>14} "
            f"{'d activity %':>15} {'spikes/sample':>13} {'bar':>4}")
    lines = [head, "-" * len(head)]
    for r in mean_rows:
        lines.append(
            f"{r['method']:<10} {r['runs']:>4} "
            f"{f(r['test_accuracy_mean_pct'], '.2f'):>7} ± {f(r['test_accuracy_std_pct'], '.2f'):<5} "
            f"{f(r[f'activity_mean_{ACT_UNIT}'], '.4f'):>8} ± {f(r[f'activity_std_{ACT_UNIT}'], '.4f'):<6} "
            f"{f(r['accuracy_change_mean_pts'], '+.2f'):>6} ± {f(r['accuracy_change_std_pts'], '.2f'):<5} "
            f"{f(r['activity_change_mean_pct'], '+.1f'):>6} ± {f(r['activity_change_std_pct'], '.1f'):<6} "
            f"{f(r['spikes_per_sample_mean'], '.1f'):>13} "
            f"{'yes' if r['meets_bar'] else ('-' if r['meets_bar'] is None else 'no'):>4}")
    lines.append("activity: spikes per neuron per time step, all LIF layers pooled; changes vs the baseline of "
                 f"the same seed; bar: activity <= {100 * BAR_ACTIVITY_RATIO:.0f} % of the baseline's at a mean "
                 f"accuracy <= {BAR_ACCURACY_DROP_PTS} pts below it")
    return "\n".join(lines)


def plot_accuracy_vs_activity(rows: list[dict], stem: Path, title: str = "") -> list[Path]:
    """Scatter of test accuracy vs activity, one point per run, one colour per method; writes .png and .pdf."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(6.4, 4.4))
    colours = plt.get_cmap("tab10")
    for i, method in enumerate(dict.fromkeys(r["method"] for r in rows)):
        rs = [r for r in rows if r["method"] == method]
        ax.scatter([r[f"activity_total_{ACT_UNIT}"] for r in rs], [100 * r["test_accuracy"] for r in rs],
                   color=colours(i % 10), label=method, s=36, alpha=0.85, edgecolors="none")
    ax.set_xlabel("activity (spikes per neuron per time step, LIF layers pooled)")
    ax.set_ylabel("test accuracy (%)")
    if title:
        ax.set_title(f"{title}: accuracy vs activity, one point per run")
    ax.grid(alpha=0.3)
    ax.legend(title="method", fontsize=8)
    fig.tight_layout()
    paths = []
    for ext in ("png", "pdf"):
        path = Path(f"{stem}.{ext}")
        with fileio.atomic_path(path) as tmp:
            fig.savefig(tmp, format=ext, dpi=150)
        paths.append(path)
    plt.close(fig)
    return paths


__all__ = ["run_study", "summary_rows", "summary_mean", "write_summaries", "format_mean_table",
           "plot_accuracy_vs_activity", "parse_list", "TrainConfig"]
