"""Benchmark: does distillation (and its regularisers) lower spiking activity at the same accuracy?

Measured, not asserted. For each dataset (digits always; synth-kws when ``--data-dir`` is given)
it runs :func:`neurokd.studies.run_study` over the methods and seeds with one schedule, and prints
the mean/std table of test accuracy and pooled activity (spikes per neuron per time step) with
the change vs the baseline of the same seed. The bar: a method at <= 60 % of the baseline's
activity whose mean accuracy is at most 0.5 points below the baseline's.

Then, on digits:
* epoch time of kd-lr vs baseline with cached teacher logits (training pass alone, median over
  epochs, alternating runs), which should stay below 1.1x;
* with ``--sweep``: what decides whether KD *alone* lowers activity: temperature, alpha, and the
  teacher's strength (a teacher trained for few epochs vs a full one).

Usage::

    python benchmarks/kd_activity.py                              # digits, 6 methods x 3 seeds
    python benchmarks/kd_activity.py --data-dir /path/to/skws      # + synth-kws
    python benchmarks/kd_activity.py --sweep                      # + the KD-alone sweep on digits
    python benchmarks/kd_activity.py --data-dir /path/to/skws --kws-model resnet1d --skip-digits --no-timing
                                                                  # the spiking ResNet on synth-kws only

Runs are kept under ``--out`` (default ``runs/bench-kd-activity``) and reused by a rerun with the
same settings; a rerun with other settings needs another ``--out``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

import torch

from neurokd.config import make_config
from neurokd.studies import ACT_UNIT, format_mean_table, parse_list, run_study

METHODS = "baseline,kd,ar,lr,kd-lr,kd-ar-lr"
KNOBS = ("epochs", "teacher_epochs", "timesteps", "temperature", "alpha", "lambda_act", "lambda_logits", "lr")


def _knobs(args) -> dict:
    return {k: getattr(args, k) for k in KNOBS if getattr(args, k) is not None}


def run_tables(args) -> dict[str, list[dict]]:
    datasets = [] if args.skip_digits else [("digits", None)]
    if args.data_dir:
        datasets.append(("synth-kws", args.data_dir))
    else:
        print("synth-kws: skipped (give --data-dir, a folder made by `neurokd data synth-kws`)")
    tables = {}
    for name, data_dir in datasets:
        out = Path(args.out) / name
        print(f"\n== {name}: methods {args.methods}, seeds {args.seeds} -> {out}", flush=True)
        t0 = time.perf_counter()
        extra = {"data_dir": data_dir} if data_dir else {}
        if data_dir and args.kws_model:
            extra["model"] = args.kws_model
        rows = run_study(name, parse_list(args.methods, "methods"), parse_list(args.seeds, "seeds", int), out,
                         progress=False, log=lambda msg: None, device=args.device, **extra, **_knobs(args))
        from neurokd.studies import summary_mean

        mean = summary_mean(rows)
        tables[name] = mean
        print(format_mean_table(mean))
        teacher = [r["teacher_test_accuracy_mean_pct"] for r in mean if r["teacher_test_accuracy_mean_pct"]]
        if teacher:
            print(f"teacher (ReLU ANN, same topology) test accuracy: {teacher[0]:.2f} % (mean over seeds)")
        met = [r["method"] for r in mean if r["meets_bar"]]
        print(f"methods meeting the bar: {', '.join(met) if met else 'none'}   ({time.perf_counter() - t0:.0f} s)")
    return tables


def epoch_timing(args, repeats: int = 3) -> dict:
    """Median training-pass seconds per epoch of baseline and kd-lr on digits (cached teacher logits)."""
    from neurokd.training import train, train_teacher_run

    from neurokd.data import load

    out = Path(args.out) / "timing"
    splits = load("digits", None, 0)
    base = make_config(dataset="digits", seed=0, epochs=args.timing_epochs, device=args.device)
    teacher_dir = out / "teacher"
    train_teacher_run(base.replace(out=str(teacher_dir)), teacher_dir, progress=False, splits=splits)
    secs: dict[str, list[float]] = {"baseline": [], "kd-lr": []}
    for r in range(repeats):
        for method in secs:  # alternate, so a change of machine load hits both
            cfg = base.replace(method=method, teacher=str(teacher_dir), out=str(out / f"{method}-r{r}"))
            train(cfg, overwrite=True, progress=False, splits=splits)
            ck = torch.load(out / f"{method}-r{r}" / "checkpoint.pt", weights_only=True)
            secs[method] += [row["train_pass_seconds"] for row in ck["history"][1:]]  # first epoch = warm-up
    med = {m: statistics.median(v) for m, v in secs.items()}
    ratio = med["kd-lr"] / med["baseline"]
    print(f"\n== epoch time on digits ({args.timing_epochs} epochs x {repeats} runs each, training pass, "
          f"cached teacher logits, {torch.get_num_threads()} threads, device {base.device})")
    print(f"baseline {1000 * med['baseline']:.1f} ms/epoch   kd-lr {1000 * med['kd-lr']:.1f} ms/epoch   "
          f"ratio {ratio:.3f}x  ({'< 1.1x' if ratio < 1.1 else '>= 1.1x'})")
    return {"baseline_s": med["baseline"], "kd_lr_s": med["kd-lr"], "ratio": ratio}


def kd_sweep(args) -> list[dict]:
    """KD alone vs baseline for temperatures, alphas and two teacher strengths (digits, or synth-kws
    with ``--sweep-dataset synth-kws``)."""
    from neurokd.data import load
    from neurokd.training import train, train_teacher_run

    dataset = args.sweep_dataset
    data_dir = args.data_dir if dataset == "synth-kws" else None
    if dataset == "synth-kws" and not data_dir:
        raise SystemExit("--sweep-dataset synth-kws needs --data-dir")
    out = Path(args.out) / ("sweep" if dataset == "digits" else f"sweep-{dataset}")
    seeds = parse_list(args.seeds, "seeds", int)
    temps, alphas = parse_list(args.sweep_temps, "temperatures", float), parse_list(args.sweep_alphas, "alphas", float)
    teacher_epochs = {"weak": args.weak_teacher_epochs, "full": None}
    extra = {"data_dir": data_dir, **({"model": args.kws_model} if data_dir and args.kws_model else {})}
    results = []
    for seed in seeds:
        splits = load(dataset, data_dir, seed)
        base = make_config(dataset=dataset, seed=seed, device=args.device, **{k: v for k, v in extra.items() if v},
                           **_knobs(args))
        runs = {}
        b_dir = out / f"baseline-s{seed}"
        runs["baseline"] = _run_or_read(train, base.replace(method="baseline", teacher="none", out=str(b_dir)),
                                        splits)
        for tname, te in teacher_epochs.items():
            tcfg = base.replace(teacher_epochs=te or base.teacher_epochs)
            t_dir = out / f"teacher-{tname}-s{seed}"
            tm = train_teacher_run(tcfg.replace(out=str(t_dir)), t_dir, progress=False, splits=splits)
            for T in temps:
                for a in alphas:
                    r_dir = out / f"kd-{tname}-T{T:g}-a{a:g}-s{seed}"
                    m = _run_or_read(train, tcfg.replace(method="kd", teacher=str(t_dir.resolve()), temperature=T,
                                                         alpha=a, out=str(r_dir)), splits)
                    results.append({"teacher": tname, "teacher_acc": tm["teacher_test_accuracy"], "T": T,
                                    "alpha": a, "seed": seed, "acc": m["test_accuracy"],
                                    "act": m["activity"]["total"], "base_acc": runs["baseline"]["test_accuracy"],
                                    "base_act": runs["baseline"]["activity"]["total"]})
    print(f"\n== KD alone vs baseline on {dataset} (mean over seeds): what decides whether KD lowers activity")
    print(f"{'teacher':<8} {'teacher acc %':>13} {'T':>4} {'alpha':>5} {'acc %':>7} {'d acc pts':>9} "
          f"{'activity':>8} {'d activity %':>12}")
    keys = dict.fromkeys((r["teacher"], r["T"], r["alpha"]) for r in results)
    for tname, T, a in keys:
        rs = [r for r in results if (r["teacher"], r["T"], r["alpha"]) == (tname, T, a)]
        mean = lambda k: statistics.fmean(r[k] for r in rs)  # noqa: E731
        dacc = statistics.fmean(100 * (r["acc"] - r["base_acc"]) for r in rs)
        dact = statistics.fmean(100 * (r["act"] / r["base_act"] - 1) for r in rs)
        print(f"{tname:<8} {100 * mean('teacher_acc'):>13.2f} {T:>4g} {a:>5g} {100 * mean('acc'):>7.2f} "
              f"{dacc:>+9.2f} {mean('act'):>8.4f} {dact:>+12.1f}")
    return results


def _run_or_read(train, cfg, splits) -> dict:
    path = Path(cfg.out) / "metrics.json"
    if path.is_file():
        return json.loads(path.read_text())
    return train(cfg, resume=True, progress=False, splits=splits)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    p.add_argument("--data-dir", help="synth-kws folder (from `neurokd data synth-kws`); omit to run digits only")
    p.add_argument("--methods", default=METHODS)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--out", default="runs/bench-kd-activity")
    p.add_argument("--device", default="auto")
    p.add_argument("--timing-epochs", type=int, default=15)
    p.add_argument("--sweep", action="store_true", help="also sweep KD alone over temperature, alpha, teacher")
    p.add_argument("--no-timing", action="store_true")
    p.add_argument("--kws-model", help="model of the synth-kws runs (default: the dataset's, conv1d), e.g. resnet1d")
    p.add_argument("--skip-digits", action="store_true", help="run only the synth-kws table")
    p.add_argument("--sweep-dataset", default="digits", choices=["digits", "synth-kws"], help="dataset of --sweep")
    p.add_argument("--sweep-temps", default="1,2,4,8", help="KD temperatures of --sweep")
    p.add_argument("--sweep-alphas", default="0.5,0.9", help="KD alphas of --sweep")
    p.add_argument("--weak-teacher-epochs", type=int, default=5, help="epochs of the under-trained teacher")
    p.add_argument("--skip-tables", action="store_true", help="no method tables (e.g. only --sweep)")
    for k in KNOBS:
        p.add_argument("--" + k.replace("_", "-"), type=int if k in ("epochs", "teacher_epochs", "timesteps") else float)
    args = p.parse_args(argv)
    print(f"neurokd benchmark kd_activity: torch {torch.__version__}, {torch.get_num_threads()} threads; "
          f"activity unit: {ACT_UNIT.replace('_', ' ')}")
    if not args.skip_tables:
        run_tables(args)
    if not args.no_timing:
        epoch_timing(args)
    if args.sweep:
        kd_sweep(args)
    return 0


if __name__ == "__main__":
    sys.exit(main())
