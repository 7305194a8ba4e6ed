"""Benchmark: the distillation claim in chip terms. Does activity regularisation buy energy *and* latency on Loihi?

For each dataset (digits; synth-kws when ``--data-dir`` is given) it trains the methods over the seeds with
:func:`neurokd.studies.run_study` in the input mode Loihi 1 can take (``--input-mode``; default ``spikes``:
the host's deterministic rate code, see the README's training-with-input-mode section), then places every
student with :func:`neurokd.api.map_network` on each chip (``loihi1``, ``loihi2``; the run's own input mode)
and costs every time step from its spikes on the test split (fast engine, fixed point, bit-exact with Lava).

Per run: PyTorch and on-chip (fixed point) test accuracy, hidden activity (spikes per neuron per step, pooled
over the hidden layers), the input layer's spikes per inference (apart), SynOps per inference on the chip,
cores, latency and energy per inference (routing included), and the bottleneck core (the core on the
critical path: its layer, what bounds it and its share, its SynOps). Then, per method, the change against the
baseline of the same seed (mean ± std over seeds) and the goal: kd-ar-lr against baseline at <= 0.5 point
accuracy loss, energy -40 % or better and latency -20 % or better on loihi1.

Usage::

    python benchmarks/chip_claim.py                                   # digits, 5 methods x 3 seeds
    python benchmarks/chip_claim.py --data-dir /path/to/skws --kws-seeds 0 --kws-epochs 3 --kws-teacher-epochs 15
    python benchmarks/chip_claim.py --quick                           # smoke run: 1 seed, 3 epochs

Runs and placements are kept under ``--out`` (default ``runs/bench-chip-claim``) and reused by a rerun with
the same settings. Writes ``chip_claim.csv`` (one row per run and chip), ``chip_claim_deltas.csv`` and
``chip_claim.md`` there.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from neurokd import api
from neurokd.fileio import write_csv as _write_csv, write_json, write_text
from neurokd.studies import parse_list, run_study

METHODS = "baseline,kd,lr,kd-lr,kd-ar-lr"
GOAL = {"acc_pts": -0.5, "energy_pct": -40.0, "latency_pct": -20.0}


def place(run_dir: Path, chip: str, samples: int | None) -> dict:
    """Place and cost one trained run on ``chip`` (the run's own input mode); cached in ``run_dir/claim-<chip>``."""
    out = run_dir / f"claim-{chip}"
    cached = out / "claim.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    r = api.map_network(run_dir, out, hardware=chip, samples=samples, echo=lambda msg: None)
    s, c = r.summary(), r.cost
    b = c.bottleneck()
    synops = c.per_core("synops") + c.per_core("macs")
    charged = s.get("input", {}).get("charged", {})
    row = {
        "chip": chip, "input_mode": s.get("input_mode"), "chip_accuracy": s.get("input", {}).get("accuracy"),
        "cores": s["cores"], "synops": float(synops.sum()),
        "input_spikes": charged.get("input_layer_spikes", charged.get("host_messages")), "input_layer_cores": charged.get("input_layer_cores"),
        "latency_us": s["latency_us_per_inference"], "energy_uj": s["energy_uj_per_inference"],
        "routing_uj": s["routing_uj_per_inference"],
        "bottleneck_core": b["core"], "bottleneck_layer": b["layer"], "bottleneck_bound": b["bound"],
        "bottleneck_share": b["shares"][b["bound"]], "bottleneck_synops": float(synops[b["core"]]),
        "bottleneck_busy_ns": b["busy_ns_per_inference"],
    }
    write_json(cached, row)
    return row


def measure(dataset: str, data_dir: str | None, methods: list[str], seeds: list[int], out: Path, chips: list[str],
            knobs: dict, samples: int | None, train: bool = True) -> list[dict]:
    extra = {"data_dir": data_dir} if data_dir else {}
    t0 = time.perf_counter()
    if train:
        run_study(dataset, methods, seeds, out, progress=False, log=lambda msg: None, **extra, **knobs)
        print(f"{dataset}: trained/read {len(methods) * len(seeds)} runs in {time.perf_counter() - t0:.0f} s",
              flush=True)
    rows = []
    for seed in seeds:
        for method in methods:
            run_dir = out / f"{method}-s{seed}"
            if not (run_dir / "metrics.json").is_file():
                print(f"{dataset}: {method} seed {seed} not trained in {run_dir}: left out (--no-train)")
                continue
            m = json.loads((run_dir / "metrics.json").read_text())
            for chip in chips:
                p = place(run_dir, chip, samples)
                rows.append({"dataset": dataset, "method": method, "seed": seed, "epochs": m["epochs"],
                             "torch_accuracy": m["test_accuracy"], "hidden_activity": m["activity"]["total"], **p})
    return rows


def deltas(rows: list[dict]) -> list[dict]:
    """Per (dataset, chip, method): the change against the same seed's baseline, mean and std over seeds."""
    base = {(r["dataset"], r["chip"], r["seed"]): r for r in rows if r["method"] == "baseline"}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((r["dataset"], r["chip"], r["method"]), []).append(r)
    out = []
    for (ds, chip, method), rs in groups.items():
        d = {"dataset": ds, "chip": chip, "method": method, "seeds": len(rs)}
        for key in ("torch_accuracy", "chip_accuracy", "hidden_activity", "input_spikes", "synops", "cores",
                    "latency_us", "energy_uj", "bottleneck_synops"):
            vals = [float(r[key]) for r in rs if r[key] is not None]
            d[key] = statistics.fmean(vals) if vals else None
            d[key + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        d["bottleneck"] = sorted({f"{r['bottleneck_layer']} ({r['bottleneck_bound']}, "
                                  f"{100 * r['bottleneck_share']:.0f} %)" for r in rs})
        pairs = [(r, base[(ds, chip, r["seed"])]) for r in rs if (ds, chip, r["seed"]) in base]
        for key, name, rel in (("torch_accuracy", "d_acc_pts", False), ("chip_accuracy", "d_chip_acc_pts", False),
                               ("hidden_activity", "d_activity_pct", True), ("synops", "d_synops_pct", True),
                               ("latency_us", "d_latency_pct", True), ("energy_uj", "d_energy_pct", True),
                               ("bottleneck_synops", "d_bottleneck_synops_pct", True)):
            v = [100 * (r[key] / b[key] - 1) if rel else 100 * (r[key] - b[key]) for r, b in pairs
                 if r[key] is not None and b[key]]
            d[name] = statistics.fmean(v) if v else None
            d[name + "_std"] = statistics.stdev(v) if len(v) > 1 else 0.0
        out.append(d)
    return out


def _pm(x, s, fmt="{:.2f}"):
    return "" if x is None else (fmt.format(x) + (" ± " + fmt.replace("+", "").format(s) if s else ""))


def markdown(drows: list[dict], notes: dict[str, str]) -> str:
    lines = []
    for ds in dict.fromkeys(d["dataset"] for d in drows):
        for chip in dict.fromkeys(d["chip"] for d in drows if d["dataset"] == ds):
            rs = [d for d in drows if d["dataset"] == ds and d["chip"] == chip]
            lines += [f"**{ds} on {chip}** ({notes.get(ds, '')}; mean ± std over seeds, deltas against the same "
                      "seed's baseline)", "",
                      "| method | acc PyTorch % | acc chip % | hidden activity | input spikes/inf | SynOps/inf | cores "
                      "| latency us | energy uJ | d acc pts | d SynOps % | d latency % | d energy % | bottleneck "
                      "(bound, share) | d bottleneck SynOps % |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
            for d in rs:
                acc = lambda k: _pm(None if d[k] is None else 100 * d[k], 100 * d[k + "_std"])  # noqa: E731
                lines.append(
                    f"| {d['method']} | {acc('torch_accuracy')} | {acc('chip_accuracy')} "
                    f"| {_pm(d['hidden_activity'], d['hidden_activity_std'], '{:.3f}')} "
                    f"| {_pm(d['input_spikes'], d['input_spikes_std'], '{:.1f}')} "
                    f"| {_pm(d['synops'], d['synops_std'], '{:.0f}')} | {_pm(d['cores'], d['cores_std'], '{:.0f}')} "
                    f"| {_pm(d['latency_us'], d['latency_us_std'], '{:.1f}')} "
                    f"| {_pm(d['energy_uj'], d['energy_uj_std'], '{:.3f}')} "
                    f"| {_pm(d['d_acc_pts'], d['d_acc_pts_std'])} | {_pm(d['d_synops_pct'], d['d_synops_pct_std'], '{:+.1f}')} "
                    f"| {_pm(d['d_latency_pct'], d['d_latency_pct_std'], '{:+.1f}')} "
                    f"| {_pm(d['d_energy_pct'], d['d_energy_pct_std'], '{:+.1f}')} | {'; '.join(d['bottleneck'])} "
                    f"| {_pm(d['d_bottleneck_synops_pct'], d['d_bottleneck_synops_pct_std'], '{:+.1f}')} |")
            lines.append("")
    for d in drows:
        if d["method"] == "kd-ar-lr" and d["chip"] == "loihi1" and d["d_energy_pct"] is not None:
            ok = (d["d_acc_pts"] >= GOAL["acc_pts"], d["d_energy_pct"] <= GOAL["energy_pct"],
                  d["d_latency_pct"] <= GOAL["latency_pct"])
            lines.append(f"goal on {d['dataset']}/loihi1 (kd-ar-lr vs baseline: >= {GOAL['acc_pts']} pt, energy <= "
                         f"{GOAL['energy_pct']:+.0f} %, latency <= {GOAL['latency_pct']:+.0f} %): accuracy "
                         f"{d['d_acc_pts']:+.2f} pt {'ok' if ok[0] else 'MISSED'}, energy {d['d_energy_pct']:+.1f} % "
                         f"{'ok' if ok[1] else 'MISSED'}, latency {d['d_latency_pct']:+.1f} % "
                         f"{'ok' if ok[2] else 'MISSED'}: {'MET' if all(ok) else 'NOT MET'}")
    return "\n".join(lines) + "\n"


def write_csv(path: Path, rows: list[dict]) -> None:
    keys = list(dict.fromkeys(k for r in rows for k in r))
    _write_csv(path, keys, [{k: ("; ".join(v) if isinstance(v, list) else v) for k, v in r.items()} for r in rows])


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--out", default="runs/bench-chip-claim")
    p.add_argument("--methods", default=METHODS)
    p.add_argument("--seeds", default="0,1,2")
    p.add_argument("--chips", default="loihi1,loihi2")
    p.add_argument("--input-mode", default="spikes", help="digits' training input mode (deployable on loihi1)")
    p.add_argument("--epochs", type=int, default=None, help="digits student epochs (default: the dataset's)")
    p.add_argument("--teacher-epochs", type=int, default=None, help="digits teacher epochs (default: the dataset's)")
    p.add_argument("--data-dir", default=None, help="synth-kws folder (`neurokd data synth-kws`); omitted: digits only")
    p.add_argument("--kws-input-mode", default="spikes")
    p.add_argument("--kws-seeds", default=None, help="synth-kws seeds (default: --seeds)")
    p.add_argument("--kws-epochs", type=int, default=None, help="synth-kws student epochs (default: the dataset's)")
    p.add_argument("--kws-teacher-epochs", type=int, default=None, help="synth-kws teacher epochs (default: the dataset's)")
    p.add_argument("--skip-digits", action="store_true")
    p.add_argument("--samples", type=int, default=None, help="test samples placed per run (default: all)")
    p.add_argument("--kws-methods", default=None, help="synth-kws methods (default: --methods)")
    p.add_argument("--no-train", action="store_true",
                   help="place and tabulate the runs already finished under --out; train nothing")
    p.add_argument("--quick", action="store_true", help="smoke run: seed 0, 3 epochs, 32 samples")
    args = p.parse_args(argv)
    methods = parse_list(args.methods, "methods")
    seeds = parse_list(args.seeds, "seeds", int)
    chips = parse_list(args.chips, "chips")
    out = Path(args.out)
    if args.quick:
        seeds, args.epochs, args.teacher_epochs, args.kws_epochs, args.kws_teacher_epochs = [0], 3, 3, 3, 3
        args.samples = args.samples or 32
        out = out.with_name(out.name + "-quick")
    rows, notes = [], {}
    if not args.skip_digits:
        knobs = {"input_mode": args.input_mode, **({"epochs": args.epochs} if args.epochs else {}),
                 **({"teacher_epochs": args.teacher_epochs} if args.teacher_epochs else {})}
        rows += measure("digits", None, methods, seeds, out / "digits", chips, knobs, args.samples, not args.no_train)
        notes["digits"] = (f"MLP, input {args.input_mode}, {rows[-1]['epochs']} student epochs, seeds "
                           f"{','.join(str(r['seed']) for r in rows if r['method'] == 'baseline' and r['chip'] == chips[0])}")
    if args.data_dir:
        kseeds = parse_list(args.kws_seeds, "seeds", int) if args.kws_seeds else seeds
        knobs = {"input_mode": args.kws_input_mode, **({"epochs": args.kws_epochs} if args.kws_epochs else {}),
                 **({"teacher_epochs": args.kws_teacher_epochs} if args.kws_teacher_epochs else {})}
        kmethods = parse_list(args.kws_methods, "methods") if args.kws_methods else methods
        krows = measure("synth-kws", args.data_dir, kmethods, kseeds, out / "synth-kws", chips, knobs, args.samples,
                        not args.no_train)
        rows += krows
        notes["synth-kws"] = (f"conv1d, input {args.kws_input_mode} (MFCC shifted by the training minimum), "
                              f"{krows[-1]['epochs']} epochs, seeds {','.join(map(str, kseeds))}")
    drows = deltas(rows)
    md = markdown(drows, notes)
    write_csv(out / "chip_claim.csv", rows)
    write_csv(out / "chip_claim_deltas.csv", drows)
    write_text(out / "chip_claim.md", md)
    print(md)
    print(f"written: {out / 'chip_claim.csv'}, {out / 'chip_claim_deltas.csv'}, {out / 'chip_claim.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
