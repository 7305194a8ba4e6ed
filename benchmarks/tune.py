"""Benchmark: ``neurokd tune`` on digits with one and with two workers: wall time, pruning, and whether the
front beats the method's hand-set defaults.

Measured, not asserted. For each worker count ``W`` (default 1 and 2) a fresh study
``OUT/w<W>`` is run by ``W`` processes of ``neurokd tune`` started together on one journal storage
(``OUT/w<W>/study.journal``), each process with one torch thread (``--threads``) so that the
workers share the machine instead of oversubscribing it. The wall time runs from the start of the
processes to the exit of the last one, so it includes the shared teacher, the two reference runs
(baseline, the method's defaults), the trials and the outputs (front exports and report).

Reported per study: trials complete / pruned / failed, the size of the front, the fraction of the
front that dominates the hand defaults on the validation split (at least as accurate and at most as
much energy, better in one), and, at the baseline's validation accuracy, the least energy on the
front against the defaults and the baseline. The front's test-split numbers (read only for the front
and the references) are printed beside.

Usage::

    python benchmarks/tune.py                                   # 40 trials, 30 epochs, workers 1 and 2
    python benchmarks/tune.py --trials 20 --epochs 10 --workers 2
    python benchmarks/tune.py --dataset synth-kws --data-dir DIR --trials 20 --epochs 20 --workers 2
"""

from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def run_study(out: Path, workers: int, args) -> dict:
    if out.exists():
        shutil.rmtree(out)
    out.mkdir(parents=True)
    threads = args.threads or max(1, (os.cpu_count() or 2) // workers)
    env = {**os.environ, "OMP_NUM_THREADS": str(threads), "MKL_NUM_THREADS": str(threads)}
    cmd = [sys.executable, "-m", "neurokd", "tune", "--dataset", args.dataset, "--method", args.method,
           "--objectives", args.objectives, "--space", args.space, "--trials", str(args.trials),
           "--epochs", str(args.epochs), "--out", str(out), "--storage", str(out / "study.journal"),
           "--study", out.name, "--device", "cpu"]
    if args.data_dir:
        cmd += ["--data-dir", str(args.data_dir)]
    if args.teacher_epochs:
        cmd += ["--teacher-epochs", str(args.teacher_epochs)]
    t0 = time.perf_counter()
    procs = []
    for i in range(workers):
        seed = ["--sampler-seed", str(args.seed + i)]
        log = open(out / f"worker{i}.log", "w")
        procs.append((subprocess.Popen(cmd + seed, cwd=ROOT, env=env, stdout=log, stderr=subprocess.STDOUT), log))
    codes = []
    for p, log in procs:
        codes.append(p.wait())
        log.close()
    wall = time.perf_counter() - t0
    if any(codes):
        raise SystemExit(f"a worker failed ({codes}); see {out}/worker*.log")
    summary = json.loads((out / "tune.json").read_text())
    with open(out / "pareto.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    return {"workers": workers, "wall_seconds": wall, "summary": summary, "rows": rows}


def describe(result: dict, objectives: list[str]) -> dict:
    s, rows = result["summary"], result["rows"]
    acc_col = "val_accuracy"
    cost = next(o for o in objectives if o != "accuracy")
    cost_col = "val_" + cost.replace(":", "_") + ("_pj" if cost.startswith("energy:") else "")
    front = [r for r in rows if r["on_front"] == "1"]
    refs = {r["worker"]: r for r in rows if r["state"] == "REFERENCE"}
    base = refs.get("baseline")
    defaults = next((r for k, r in refs.items() if k != "baseline"), None)
    out = {"workers": result["workers"], "wall_s": round(result["wall_seconds"], 1), **s["trials"],
           "retries": s["retries"], "front": len(front),
           "front_dominating_defaults": s["front_dominating_defaults"]["fraction"],
           "knee": s["knee"]["run_dir"] if s["knee"] else None}
    if base is not None and defaults is not None and front:
        b_acc = float(base[acc_col])
        at_base = [r for r in front if float(r[acc_col]) >= b_acc]
        out["baseline_val"] = {"accuracy": b_acc, cost: float(base[cost_col])}
        out["defaults_val"] = {"accuracy": float(defaults[acc_col]), cost: float(defaults[cost_col])}
        if at_base:
            best = min(at_base, key=lambda r: float(r[cost_col]))
            out["front_at_baseline_accuracy_val"] = {
                "trial": best["trial"], "accuracy": float(best[acc_col]), cost: float(best[cost_col]),
                "vs_baseline_pct": 100 * (float(best[cost_col]) / float(base[cost_col]) - 1),
                "vs_defaults_pct": 100 * (float(best[cost_col]) / float(defaults[cost_col]) - 1)}
        test_cost = "test_" + cost.replace(":", "_") + ("_pj" if cost.startswith("energy:") else "")
        if test_cost in front[0]:
            out["test"] = {
                "baseline": {"accuracy": float(base["test_accuracy"]), cost: float(base[test_cost])},
                "defaults": {"accuracy": float(defaults["test_accuracy"]), cost: float(defaults[test_cost])},
                "front": [{"trial": r["trial"], "accuracy": float(r["test_accuracy"]), cost: float(r[test_cost])}
                          for r in sorted(front, key=lambda r: float(r[cost_col]))]}
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--dataset", default="digits")
    ap.add_argument("--data-dir", default=None, help="Dataset folder (synth-kws: from `neurokd data synth-kws`).")
    ap.add_argument("--method", default="kd-ar-lr")
    ap.add_argument("--objectives", default="accuracy,energy:loihi")
    ap.add_argument("--space", default="lambda_logits=1e-3..1:log; lambda_act=1e-3..1:log")
    ap.add_argument("--trials", type=int, default=40)
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--teacher-epochs", type=int, default=None)
    ap.add_argument("--workers", default="1,2")
    ap.add_argument("--threads", type=int, default=1,
                    help="Torch threads per worker (0: cores / workers). 1 by default: the digits MLP gains nothing "
                         "from a second thread, and two OpenMP threads on a shared, loaded machine stall each other.")
    ap.add_argument("--seed", type=int, default=0, help="Sampler seed of worker 0 (worker i gets seed + i).")
    ap.add_argument("--out", type=Path, default=Path("runs/bench-tune"))
    args = ap.parse_args()
    objectives = [o.strip() for o in args.objectives.split(",")]
    results = []
    for w in [int(x) for x in args.workers.split(",")]:
        r = describe(run_study(args.out / f"w{w}", w, args), objectives)
        results.append(r)
        print(json.dumps(r, indent=2), flush=True)
    (args.out / "benchmark.json").write_text(json.dumps(results, indent=2) + "\n")
    print(f"\n| workers | wall (s) | complete | pruned | failed | front | front dominating defaults |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for r in results:
        frac = r["front_dominating_defaults"]
        print(f"| {r['workers']} | {r['wall_s']:.0f} | {r['COMPLETE']} | {r['PRUNED']} | {r['FAIL']} | {r['front']} | "
              f"{'n/a' if frac is None else f'{100 * frac:.0f} %'} |")


if __name__ == "__main__":
    main()
