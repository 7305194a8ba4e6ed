"""neurokd's placement cost against SANA-FE on trained students (issue 15's cross-check).

For each run folder (default: the digits demo run and the synth-kws conv1d references of the tune
benchmark, where they exist), encodes the first ``--samples`` test samples as Bernoulli spikes (SANA-FE's
inputs send spikes; the rate is the graded value over the split's largest), runs the fixed-point fast
model with per-step spikes, per-step state (record_state), places the student on ``loihi1-sanafe`` and runs
the same samples through SANA-FE (``sanafe`` 2.2.x, optional, GPL-3.0). Prints per network: energy and
latency per inference of SANA-FE, of neurokd with SANA-FE's figures and of neurokd with its cited
Loihi 1 defaults, the differences, the spike agreement per layer and SANA-FE's spikes outside
neurokd's window (biased layers integrating while the pipeline fills and drains).

    .venv/bin/python benchmarks/sanafe_crosscheck.py [RUN ...] [--samples 4] [--csv OUT.csv]

Measured, not asserted (the test suite checks the counting on small networks).
"""

from __future__ import annotations

import argparse
import csv
import sys
import time
from pathlib import Path

import numpy as np

from neurokd.exporters.from_nir import read_nir
from neurokd.hardware.engines.encoding import rate_spikes
from neurokd.hardware.engines.fastsim import run_fast
from neurokd.hardware.network import ir
from neurokd.hardware.placement import sanafe

DEFAULT_RUNS = ("runs/demo", "runs/bench-tune-kws/w2/reference-baseline", "runs/bench-tune-kws/w2/reference-kd-ar-lr")


def _inputs(run: Path, samples: int, T: int) -> np.ndarray:
    from neurokd.config import load_config
    from neurokd.data import load

    cfg = load_config(run / "config.toml")
    x = load(cfg.dataset, cfg.data_dir, cfg.seed, **cfg.data_options).test.tensors[0].numpy().astype(np.float64)
    scale = max(float(np.abs(x).max()), 1e-12)
    xs = x[:samples]
    if xs.ndim == 2 or (xs.ndim >= 2 and T and xs.shape[1] != T):
        xs = np.repeat(xs[:, None], T, axis=1)
    # --input-mode spikes --spike-encoding bernoulli (seed 0), full scale the split's largest value
    return rate_spikes(np.abs(xs), "bernoulli", 0, scale=scale)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("runs", nargs="*", default=None)
    ap.add_argument("--samples", type=int, default=4)
    ap.add_argument("--csv", default=None, help="write every comparison row of every network here")
    args = ap.parse_args()
    if not sanafe.available():
        print(f"SANA-FE is not installed: {sanafe.SANAFE_HINT}")
        return 1
    runs = [Path(r) for r in (args.runs or DEFAULT_RUNS) if (Path(r) / "model.nir").is_file()]
    head = (f"{'run':<44} {'T':>3} {'cores':>5} {'E sanafe uJ':>11} {'E same':>8} {'E cited':>8} "
            f"{'L sanafe us':>11} {'L same':>8} {'L cited':>8} {'spikes':>8} {'outside':>8} {'s/sample':>8}")
    print(head)
    print("-" * len(head))
    out_rows = []
    for run in runs:
        from neurokd.config import load_config

        T = int(load_config(run / "config.toml").timesteps)
        net = ir.from_nir(read_nir(run / "model.nir"))
        xs = _inputs(run, args.samples, T)
        res = run_fast(net, xs, precision="fixed", record_steps=True, record_state=True)
        t0 = time.perf_counter()
        try:
            run_, same, cited, rows = sanafe.cross_check(net, res, xs, samples=args.samples)
        except Exception as exc:  # a refusal is a result too
            print(f"{str(run):<44} refused: {exc}")
            continue
        per = (time.perf_counter() - t0) / args.samples
        by = {r["metric"]: r for r in rows}
        agree = [r for r in rows if r["metric"].startswith("spikes ") and not r["metric"].endswith("window")]
        worst = min((100 + r["diff_cited_pct"] for r in agree), default=100.0)
        outside = sum(r["sanafe"] for r in rows if r["metric"].endswith("outside window"))
        print(f"{str(run):<44} {T:>3} {same.placement.n_cores:>5} {by['energy_uj']['sanafe']:>11.4f} "
              f"{by['energy_uj']['diff_same_pct']:>+7.1f}% {by['energy_uj']['diff_cited_pct']:>+7.1f}% "
              f"{by['latency_us']['sanafe']:>11.2f} {by['latency_us']['diff_same_pct']:>+7.1f}% "
              f"{by['latency_us']['diff_cited_pct']:>+7.1f}% {worst:>7.2f}% {outside:>8.1f} {per:>8.2f}")
        for r in rows:
            out_rows.append({"run": str(run), **r})
    print("\nE/L same: neurokd with SANA-FE's figures (loihi1-sanafe) vs SANA-FE; cited: neurokd's loihi1 "
          "defaults vs SANA-FE.\nspikes: the lowest per-layer agreement over (sample, step, neuron); outside: "
          "SANA-FE's spikes per inference outside neurokd's T-step window.")
    if args.csv and out_rows:
        keys = list(dict.fromkeys(k for r in out_rows for k in r))
        with open(args.csv, "w", newline="") as fh:
            w = csv.DictWriter(fh, fieldnames=keys)
            w.writeheader()
            w.writerows(out_rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
