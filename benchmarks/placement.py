"""Placement and per-core costing against the fast engine's run of the same split (issue 15).

For the digits MLP, a synth-kws conv1d and resnet1d student and a CIFAR-sized VGG, prints per chip
(loihi1, loihi2) and placer (pack, balance): cores, chips, placement time, costing time for the
split, the fast engine's time for the same split (fixed point, per-step spikes recorded; each the
best of ``--repeat`` runs, default 3, so that a busy moment of a shared machine does not decide), the ratio
(placement + costing) / fast engine (goal <= 2), latency per inference, energy per inference with
routing and the share of routing.

    .venv/bin/python benchmarks/placement.py [--digits RUN] [--skws RUN_OR_DATA_DIR] [--samples 256]
        [--vgg-width 0.25] [--vgg-samples 32] [--threads 1]

``--digits RUN`` / ``--skws RUN`` map trained run folders (their ``model.nir`` and test split); without
them the students are untrained (random weights: the spike rates are not those of a working network,
the placement is): digits inputs are the real test split, synth-kws and CIFAR inputs are random
graded frames of the right shape. Measured, not asserted. With the optional ``sanafe`` package,
SANA-FE runs ``--sanafe-samples`` samples of each network (as Bernoulli spikes where the input is
graded) on the ``loihi1-sanafe`` placement: its seconds per sample, extrapolated to the split, and
neurokd's energy and latency difference to it under the same figures.

``--loihi1-input`` / ``--loihi2-input`` choose how each chip takes the input (:mod:`neurokd.hardware.placement.inputs`):
``bias`` and ``spikes`` encode the inputs first (``neurokd.hardware.engines.encoding``), the fast engine then runs
on those spikes and is timed on them, and the encoding's seconds are added to placement + costing; ``host`` and
``graded`` cost the run on the values. The default on loihi1, ``graded*``, costs graded input by override, as
before input modes (Loihi 1 takes binary spikes only: those rows time placement and costing, they are not a
deployable cost).
"""

from __future__ import annotations

import argparse
import time
from pathlib import Path

import numpy as np
import torch

from neurokd.exporters.from_nir import read_nir
from neurokd.exporters.to_nir import student_to_nir
from neurokd.hardware.cost.counting import input_is_spiking
from neurokd.hardware.engines.encoding import bias_layer, rate_spikes
from neurokd.hardware.engines.fastsim import run_fast
from neurokd.hardware.network import ir
from neurokd.hardware.placement import place_and_cost
from neurokd.models import build_student


def _run_folder(run: Path):
    from neurokd.config import load_config
    from neurokd.data import load

    cfg = load_config(run / "config.toml")
    splits = load(cfg.dataset, cfg.data_dir, cfg.seed, **cfg.data_options)
    x = splits.test.tensors[0].numpy().astype(np.float64)
    return ir.from_nir(read_nir(run / "model.nir")), x, int(cfg.timesteps)


def networks(args):
    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    if args.digits:
        net, x, t = _run_folder(Path(args.digits))
        yield "digits mlp (trained)", net, x[: args.samples], t
    else:
        from neurokd.data import load

        x = load("digits", None, 0).test.tensors[0].numpy().astype(np.float64)
        st = build_student("mlp", (64,), 10, timesteps=8).eval()
        yield "digits mlp (untrained)", ir.from_nir(student_to_nir(st, dt=1e-4)), x[: args.samples], 8
    if args.skws and (Path(args.skws) / "model.nir").is_file():
        net, x, t = _run_folder(Path(args.skws))
        yield f"synth-kws {Path(args.skws).name} (trained)", net, x[: args.samples], t
    else:
        for model in ("conv1d", "resnet1d"):
            st = build_student(model, (10, 49), 12, timesteps=8).eval()
            x = np.abs(rng.normal(size=(args.samples, 10, 49)))
            yield f"synth-kws {model} (untrained)", ir.from_nir(student_to_nir(st, dt=1e-4)), x, 8
    st = build_student("vgg", (3, 32, 32), 10, timesteps=4, width=args.vgg_width).eval()
    x = rng.random((args.vgg_samples, 3, 32, 32))
    yield f"cifar vgg11 x{args.vgg_width:g} (untrained)", ir.from_nir(student_to_nir(st, dt=1e-4)), x, 4


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--digits", default=None)
    ap.add_argument("--skws", default=None)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--vgg-width", type=float, default=0.25)
    ap.add_argument("--vgg-samples", type=int, default=32)
    ap.add_argument("--chips", type=int, default=64, help="chips available (a VGG needs several Loihi chips)")
    ap.add_argument("--threads", type=int, default=None)
    ap.add_argument("--repeat", type=int, default=3,
                    help="time the fast engine and each placement + costing this many times, keep the best of each")
    ap.add_argument("--loihi1-input", default="graded*", choices=("graded*", "bias", "spikes", "host"),
                    help="input mode on loihi1 (graded*: graded input costed by override, as before input modes)")
    ap.add_argument("--loihi2-input", default="graded", choices=("graded", "bias", "spikes", "host"))
    ap.add_argument("--sanafe-samples", type=int, default=2,
                    help="samples SANA-FE runs per network (0: skip; needs the optional sanafe package)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    head = (f"{'network':<32} {'chip':<7} {'placer':<8} {'input':<7} {'cores':>6} {'chips':>5} {'place s':>8} {'cost s':>8} "
            f"{'fast s':>8} {'ratio':>6} {'us/inf':>9} {'uJ/inf':>9} {'routing':>8}  bottleneck")
    print(head)
    print("-" * len(head))
    for name, net, x, t in networks(args):
        fast_s = float("inf")
        for _ in range(args.repeat):                   # best of --repeat, as for placing and costing below
            t0 = time.perf_counter()
            res = run_fast(net, x, precision="fixed", timesteps=t, record_steps=True)
            fast_s = min(fast_s, time.perf_counter() - t0)
        sanafe_note = _sanafe_seconds(net, x, t, args.sanafe_samples, len(x))
        graded = not input_is_spiking(x)
        for chip in ("loihi1", "loihi2"):
            mode = args.loihi1_input if chip == "loihi1" else args.loihi2_input
            # Loihi 1 takes binary spikes only: graded* costs a graded input there by override, as before input
            # modes (this benchmark times placement and costing; `neurokd map --input-mode` gives deployable costs)
            over = {"input.graded_payload_bits": 16} if graded and mode == "graded*" else None
            mode = mode.rstrip("*")
            xin, layer, res_m, fast_m, enc_s = x, None, res, fast_s, 0.0
            if graded and mode in ("bias", "spikes"):
                t0 = time.perf_counter()
                frames = net.input_sequence(x, t)
                if mode == "bias":
                    layer = bias_layer(frames)
                    xin = layer.spikes
                else:
                    xin = rate_spikes(frames)
                enc_s = time.perf_counter() - t0
                fast_m = float("inf")
                for _ in range(args.repeat):
                    t0 = time.perf_counter()
                    res_m = run_fast(net, xin, precision="fixed", timesteps=t, record_steps=True)
                    fast_m = min(fast_m, time.perf_counter() - t0)
            for placer in ("pack", "balance"):
                try:
                    runs = [place_and_cost(net, chip, result=res_m, inputs=xin, placer=placer,
                                           max_chips=args.chips, overrides=over,
                                           input_mode=mode if graded else None, input_layer=layer)
                            for _ in range(args.repeat)]
                except Exception as exc:  # a refusal is a result too
                    print(f"{name:<32} {chip:<7} {placer:<8} {mode:<7} refused: {exc}")
                    continue
                m = min(runs, key=lambda r: r.seconds["place"] + r.seconds["cost"])
                c, b = m.cost, m.cost.bottleneck()
                ps, cs = m.seconds["place"], m.seconds["cost"] + enc_s
                print(f"{name:<32} {chip:<7} {placer:<8} {mode + ('*' if over else ''):<7} {m.placement.n_cores:>6} "
                      f"{m.placement.n_chips:>5} {ps:>8.2f} {cs:>8.2f} {fast_m:>8.2f} {(ps + cs) / fast_m:>6.1f} "
                      f"{c.latency_ns / 1e3:>9.2f} {c.energy_pj / 1e6:>9.4f} {c.routing_pj / c.energy_pj * 100:>7.1f}%  "
                      f"core {b['core']} ({b['layer']}, {b['bound']})")
        print(f"{'':<32} SANA-FE: {sanafe_note}")
    print("* graded input costed by override (input.graded_payload_bits = 16): Loihi 1 takes binary spikes "
          "only, so these rows time placement and costing, they are not a deployable cost (neurokd map --input-mode)")


def _sanafe_seconds(net, x, t, samples: int, n_split: int) -> str:
    """SANA-FE's wall time per sample on the loihi1-sanafe placement, and the split's extrapolated time."""
    if samples <= 0:
        return "skipped"
    from neurokd.hardware.placement import sanafe

    if not sanafe.available():
        return "not installed (pip install sanafe)"
    xs = np.asarray(x[:samples], dtype=np.float64)
    if xs.ndim == len(net.input_shape) + 1:
        xs = np.repeat(xs[:, None], t, axis=1)
    if not np.all((xs == 0) | (xs == 1)):
        p = np.clip(np.abs(xs) / max(float(np.abs(xs).max()), 1e-12), 0, 1)
        xs = (np.random.default_rng(0).random(xs.shape) < p).astype(np.float64)
    res = run_fast(net, xs, precision="fixed", record_steps=True, record_state=True)
    try:
        run_, same, _, rows = sanafe.cross_check(net, res, xs, samples=samples)
    except Exception as exc:  # a refusal is a result too
        return f"refused: {exc}"
    by = {r["metric"]: r for r in rows}
    per = run_.seconds / run_.samples
    return (f"{per:.2f} s/sample (whole split ~{per * n_split:.0f} s); energy {by['energy_uj']['diff_same_pct']:+.1f} %, "
            f"latency {by['latency_us']['diff_same_pct']:+.1f} % (neurokd with SANA-FE's figures vs SANA-FE)")


if __name__ == "__main__":
    main()
