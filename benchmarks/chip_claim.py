"""Benchmark: the distillation claim in chip terms. Does activity regularisation buy energy *and* latency on Loihi?

For each dataset (digits; synth-kws when ``--data-dir`` is given) and each placement ``chip=mode`` of
``--placements`` (default ``loihi1=spikes,loihi2=graded``: each chip with an input its cores can take, trained
that way) it trains the methods over the seeds with :func:`neurokd.studies.run_study` in that input mode, then
places every student with :func:`neurokd.api.map_network` on the chip and costs every time step from its spikes
on the test split (fast engine, fixed point, bit-exact with Lava).

Per run: PyTorch and on-chip (fixed point) test accuracy, hidden activity (spikes per neuron per step, pooled
over the hidden layers), the input layer's spikes per inference (apart), SynOps per inference on the chip,
cores, latency and energy per inference (routing included), and the bottleneck core (the core on the
critical path: its layer, what bounds it and its share, its SynOps). Then, per method, the change against the
baseline of the same seed and placement (mean ± std over seeds), and the goal: kd-ar-lr against baseline at
<= 0.5 point accuracy loss, energy -40 % or better and latency -20 % or better on loihi1.

Two more questions it answers:

* ``--input-reg L`` adds the method ``kd-ar-lr+inL``: kd-ar-lr with the input layer's own spikes regularised too
  (``lambda_input = L``, the encoder's full scale learned; ``L/A`` also sets ``lambda_act = A``, e.g. a point of
  ``neurokd tune``'s front), in every placement whose input is spikes or bias and
  whose methods include kd-ar-lr.
* The deployable student's accuracy against the graded one: PyTorch test accuracy per method and input mode,
  over the seeds (a placement such as ``loihi1=bias:kd-lr`` trains only the methods after the colon).

Usage::

    python benchmarks/chip_claim.py                                   # digits, 5 methods x 3 seeds
    python benchmarks/chip_claim.py --data-dir /path/to/skws          # and synth-kws
    python benchmarks/chip_claim.py --placements loihi1=spikes,loihi2=graded,loihi1=bias:kd-lr --input-reg 0.2,0.36/0.125
    python benchmarks/chip_claim.py --quick                           # smoke run: 1 seed, 3 epochs

Runs and placements are kept under ``--out`` (default ``runs/bench-chip-claim``), one study folder per dataset
and input mode (``digits-spikes``, ``digits-spikes-in0.2`` ...), and reused by a rerun with the same settings.
Writes ``chip_claim.csv`` (one row per run and placement), ``chip_claim_deltas.csv`` and ``chip_claim.md``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
import time
from pathlib import Path

from neurokd import api
from neurokd.config import read_toml
from neurokd.errors import NeurokdError
from neurokd.fileio import write_csv as _write_csv, write_json, write_text
from neurokd.studies import parse_list, run_study

METHODS = "baseline,kd,lr,kd-lr,kd-ar-lr"
PLACEMENTS = "loihi1=spikes,loihi2=graded"
INPUT_REG = "kd-ar-lr+in"


def parse_input_regs(text: str | None) -> list[tuple[float, float | None]]:
    """``'0.2,0.36/0.125'`` -> ``[(lambda_input, lambda_act or None), ...]`` (``--input-reg``)."""
    out = []
    for part in parse_list(text, "input-reg") if text else []:
        li, _, la = part.partition("/")
        try:
            out.append((float(li), float(la) if la else None))
        except ValueError:
            raise NeurokdError(f"--input-reg: {part!r} is not LAMBDA_INPUT or LAMBDA_INPUT/LAMBDA_ACT "
                               "(e.g. 0.2 or 0.36/0.125)") from None
    return out


def variant_name(lambda_input: float, lambda_act: float | None) -> str:
    return f"{INPUT_REG}{lambda_input:g}" + (f"+act{lambda_act:g}" if lambda_act is not None else "")
GOAL = {"acc_pts": -0.5, "energy_pct": -40.0, "latency_pct": -20.0}


def parse_placements(text: str, methods: list[str]) -> list[tuple[str, str, list[str]]]:
    """``'loihi1=spikes,loihi2=graded,loihi1=bias:kd-lr+kd'`` -> ``[(chip, mode, methods), ...]``."""
    out = []
    for part in parse_list(text, "placements"):
        chip, sep, rest = part.partition("=")
        mode, _, only = rest.partition(":")
        if not sep or mode not in ("spikes", "bias", "graded"):
            raise NeurokdError(f"--placements: {part!r} is not chip=mode[:method+method] with mode spikes, bias or "
                               "graded (e.g. loihi1=spikes)")
        out.append((chip.strip(), mode.strip(), only.split("+") if only else list(methods)))
    return out


def place(run_dir: Path, chip: str, samples: int | None, placer: str = "pack") -> dict:
    """Place and cost one trained run on ``chip`` (the run's own input mode); cached in ``run_dir/claim-<chip>``
    (``claim-<chip>-balance`` for the ``balance`` placer)."""
    out = run_dir / (f"claim-{chip}" + ("" if placer == "pack" else f"-{placer}"))
    cached = out / "claim.json"
    if cached.is_file():
        return json.loads(cached.read_text())
    r = api.map_network(run_dir, out, hardware=chip, samples=samples, placer=placer, echo=lambda msg: None)
    s, c = r.summary(), r.cost
    b = c.bottleneck()
    synops = c.per_core("synops") + c.per_core("macs")
    charged = s.get("input", {}).get("charged", {})
    row = {
        "chip": chip, "placer": placer, "input_mode": s.get("input_mode"), "chip_accuracy": s.get("input", {}).get("accuracy"),
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


def study_dir(out: Path, dataset: str, mode: str, lambda_input: float | None = None,
              lambda_act: float | None = None) -> Path:
    return out / (f"{dataset}-{mode}" + (f"-in{lambda_input:g}" if lambda_input else "")
                  + (f"-act{lambda_act:g}" if lambda_act is not None else ""))


def train_all(dataset: str, data_dir: str | None, placements, seeds: list[int], out: Path, knobs: dict,
              input_regs: list[tuple[float, float | None]]) -> None:
    """Train what the placements need, one study per input mode (and one for the input-regularised variant)."""
    extra = {"data_dir": data_dir} if data_dir else {}
    per_mode: dict[str, list[str]] = {}
    for _, mode, methods in placements:
        per_mode.setdefault(mode, [])
        per_mode[mode] += [m for m in methods if m != INPUT_REG and m not in per_mode[mode]]
    for mode, methods in per_mode.items():
        t0 = time.perf_counter()
        run_study(dataset, methods, seeds, study_dir(out, dataset, mode), progress=False, log=lambda msg: None,
                  input_mode=mode, **extra, **knobs)
        print(f"{dataset} ({mode}): trained/read {len(methods) * len(seeds)} runs in {time.perf_counter() - t0:.0f} s",
              flush=True)
        for li, la in (input_regs if mode != "graded" and "kd-ar-lr" in methods else []):
            act = {} if la is None else {"lambda_act": la}
            run_study(dataset, ["kd-ar-lr"], seeds, study_dir(out, dataset, mode, li, la), progress=False,
                      log=lambda msg: None, input_mode=mode, lambda_input=li, **extra, **{**knobs, **act})
            print(f"{dataset} ({mode}, {variant_name(li, la)}): trained/read {len(seeds)} runs", flush=True)


def measure(dataset: str, placements, seeds: list[int], out: Path, samples: int | None,
            input_regs: list[tuple[float, float | None]], placers: list[str] = ("pack",)) -> list[dict]:
    rows = []
    for (chip, mode, methods), placer in ((pl, pr) for pl in placements for pr in placers):
        variants = [(m, study_dir(out, dataset, mode), m) for m in methods]
        for li, la in (input_regs if mode != "graded" and "kd-ar-lr" in methods else []):
            variants.append((variant_name(li, la), study_dir(out, dataset, mode, li, la), "kd-ar-lr"))
        for seed in seeds:
            for name, folder, method in variants:
                run_dir = folder / f"{method}-s{seed}"
                if not (run_dir / "metrics.json").is_file():
                    print(f"{dataset}: {name} seed {seed} ({mode}) not trained in {run_dir}: left out")
                    continue
                m = json.loads((run_dir / "metrics.json").read_text())
                p = place(run_dir, chip, samples, placer)
                rows.append({"dataset": dataset, "method": name, "seed": seed, "mode": mode, "epochs": m["epochs"],
                             "lambda_input": read_toml(run_dir / "config.toml").get("lambda_input", 0.0),
                             "input_full_scale": (m.get("input_encoder") or {}).get("input_full_scale"),
                             "torch_accuracy": m["test_accuracy"], "hidden_activity": m["activity"]["total"], **p})
    return rows


def _key(r: dict) -> tuple:
    """A table: dataset, chip, training input mode and placer."""
    return r["dataset"], r["chip"], r.get("mode", r.get("input_mode")), r.get("placer", "pack")


def deltas(rows: list[dict]) -> list[dict]:
    """Per (dataset, chip, mode, placer, method): the change against the same seed's baseline, mean and std over seeds."""
    base = {(*_key(r), r["seed"]): r for r in rows if r["method"] == "baseline"}
    groups: dict[tuple, list[dict]] = {}
    for r in rows:
        groups.setdefault((*_key(r), r["method"]), []).append(r)
    out = []
    for (ds, chip, mode, placer, method), rs in groups.items():
        d = {"dataset": ds, "chip": chip, "mode": mode, "placer": placer, "method": method, "seeds": len(rs)}
        for key in ("torch_accuracy", "chip_accuracy", "hidden_activity", "input_spikes", "synops", "cores",
                    "latency_us", "energy_uj", "bottleneck_synops"):
            vals = [float(r[key]) for r in rs if r.get(key) is not None]
            d[key] = statistics.fmean(vals) if vals else None
            d[key + "_std"] = statistics.stdev(vals) if len(vals) > 1 else 0.0
        d["bottleneck"] = sorted({f"{r['bottleneck_layer']} ({r['bottleneck_bound']}, "
                                  f"{100 * r['bottleneck_share']:.0f} %)" for r in rs})
        pairs = [(r, base[(ds, chip, mode, placer, r["seed"])]) for r in rs if (ds, chip, mode, placer, r["seed"]) in base]
        for key, name, rel in (("torch_accuracy", "d_acc_pts", False), ("chip_accuracy", "d_chip_acc_pts", False),
                               ("hidden_activity", "d_activity_pct", True), ("input_spikes", "d_input_spikes_pct", True),
                               ("synops", "d_synops_pct", True),
                               ("latency_us", "d_latency_pct", True), ("energy_uj", "d_energy_pct", True),
                               ("bottleneck_synops", "d_bottleneck_synops_pct", True)):
            v = [100 * (r[key] / b[key] - 1) if rel else 100 * (r[key] - b[key]) for r, b in pairs
                 if r.get(key) is not None and b.get(key)]
            d[name] = statistics.fmean(v) if v else None
            d[name + "_std"] = statistics.stdev(v) if len(v) > 1 else 0.0
        out.append(d)
    return out


def _pm(x, s, fmt="{:.2f}"):
    return "" if x is None else (fmt.format(x) + (" ± " + fmt.replace("+", "").format(s) if s else ""))


def accuracy_by_mode(rows: list[dict]) -> str:
    """PyTorch test accuracy per dataset, method and training input mode; the deployable modes against graded."""
    acc: dict[tuple, dict[int, float]] = {}
    for r in rows:
        if r.get("placer", "pack") != "pack":
            continue
        acc.setdefault((r["dataset"], r["method"], r.get("mode", r.get("input_mode"))), {})[r["seed"]] = r["torch_accuracy"]
    lines = []
    for ds in dict.fromkeys(r["dataset"] for r in rows):
        modes = [m for m in ("graded", "spikes", "bias") if any(k[0] == ds and k[2] == m for k in acc)]
        if "graded" not in modes or len(modes) < 2:
            continue
        lines += [f"**{ds}: PyTorch test accuracy by training input mode** (mean ± std over seeds; change against "
                  "the graded student of the same method, seed by seed)", "",
                  "| method | " + " | ".join(f"{m} %" for m in modes) + " | "
                  + " | ".join(f"{m} - graded pts" for m in modes if m != "graded") + " |",
                  "|---|" + "---:|" * (2 * len(modes) - 1)]
        for method in dict.fromkeys(k[1] for k in acc if k[0] == ds):
            cells, diffs = [], []
            for m in modes:
                v = list(acc.get((ds, method, m), {}).values())
                cells.append(_pm(100 * statistics.fmean(v), 100 * statistics.stdev(v) if len(v) > 1 else 0.0) if v else "")
            g = acc.get((ds, method, "graded"), {})
            for m in modes[1:]:
                o = acc.get((ds, method, m), {})
                v = [100 * (o[s] - g[s]) for s in o if s in g]
                diffs.append(_pm(statistics.fmean(v), statistics.stdev(v) if len(v) > 1 else 0.0, "{:+.2f}") if v else "")
            lines.append(f"| {method} | " + " | ".join(cells) + " | " + " | ".join(diffs) + " |")
        lines.append("")
    return "\n".join(lines)


def markdown(drows: list[dict], notes: dict[str, str], rows: list[dict] | None = None) -> str:
    lines = []
    for ds in dict.fromkeys(d["dataset"] for d in drows):
        for chip, mode, placer in dict.fromkeys((d["chip"], d.get("mode"), d.get("placer", "pack")) for d in drows
                                                if d["dataset"] == ds):
            rs = [d for d in drows if d["dataset"] == ds and d["chip"] == chip and d.get("mode") == mode
                  and d.get("placer", "pack") == placer]
            lines += [f"**{ds} on {chip}, input {mode}, placer {placer}** ({notes.get(ds, '')}; mean ± std over seeds, deltas against "
                      "the same seed's baseline; input events: the input layer's spikes, or under graded input the "
                      "host's graded messages)", "",
                      "| method | acc PyTorch % | acc chip % | hidden activity | input events/inf | SynOps/inf | cores "
                      "| latency us | energy uJ | d acc pts | d input events % | d SynOps % | d latency % | d energy % "
                      "| bottleneck (bound, share) | d bottleneck SynOps % |",
                      "|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---|---:|"]
            for d in rs:
                acc = lambda k: _pm(None if d[k] is None else 100 * d[k], 100 * d[k + "_std"])  # noqa: E731
                lines.append(
                    f"| {d['method']} | {acc('torch_accuracy')} | {acc('chip_accuracy')} "
                    f"| {_pm(d['hidden_activity'], d['hidden_activity_std'], '{:.3f}')} "
                    f"| {_pm(d['input_spikes'], d['input_spikes_std'], '{:.1f}')} "
                    f"| {_pm(d['synops'], d['synops_std'], '{:.0f}')} | {_pm(d['cores'], d['cores_std'], '{:.0f}')} "
                    f"| {_pm(d['latency_us'], d['latency_us_std'], '{:.1f}')} "
                    f"| {_pm(d['energy_uj'], d['energy_uj_std'], '{:.3f}')} "
                    f"| {_pm(d['d_acc_pts'], d['d_acc_pts_std'])} "
                    f"| {_pm(d.get('d_input_spikes_pct'), d.get('d_input_spikes_pct_std', 0.0), '{:+.1f}')} "
                    f"| {_pm(d['d_synops_pct'], d['d_synops_pct_std'], '{:+.1f}')} "
                    f"| {_pm(d['d_latency_pct'], d['d_latency_pct_std'], '{:+.1f}')} "
                    f"| {_pm(d['d_energy_pct'], d['d_energy_pct_std'], '{:+.1f}')} | {'; '.join(d['bottleneck'])} "
                    f"| {_pm(d['d_bottleneck_synops_pct'], d['d_bottleneck_synops_pct_std'], '{:+.1f}')} |")
            lines.append("")
    if rows:
        lines.append(accuracy_by_mode(rows))
    for d in drows:
        if d["method"].startswith("kd-ar-lr") and d["chip"] == "loihi1" and d["d_energy_pct"] is not None:
            ok = (d["d_acc_pts"] >= GOAL["acc_pts"], d["d_energy_pct"] <= GOAL["energy_pct"],
                  d["d_latency_pct"] <= GOAL["latency_pct"])
            lines.append(f"goal on {d['dataset']}/loihi1 ({d['method']} vs baseline, input {d.get('mode')}, placer "
                         f"{d.get('placer', 'pack')}: >= "
                         f"{GOAL['acc_pts']} pt, energy <= "
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
    p.add_argument("--placements", default=PLACEMENTS,
                   help="chip=mode[:method+method], comma-separated: each chip with the input mode its students are "
                        f"trained in (default {PLACEMENTS}; bias or spikes on loihi1, any mode on loihi2)")
    p.add_argument("--placers", default="pack", help="placers, comma-separated: pack (fewest cores) and/or balance "
                   "(busy layers cut over more cores: shorter steps)")
    p.add_argument("--input-reg", default=None,
                   help=f"add {INPUT_REG}L: kd-ar-lr with the input layer's spikes regularised (lambda_input L), "
                        "comma-separated; L/A also sets lambda_act A (e.g. 0.2,0.36/0.125)")
    p.add_argument("--epochs", type=int, default=None, help="digits student epochs (default: the dataset's)")
    p.add_argument("--teacher-epochs", type=int, default=None, help="digits teacher epochs (default: the dataset's)")
    p.add_argument("--kws-input-reg", default=None, help="synth-kws' --input-reg (default: --input-reg)")
    p.add_argument("--data-dir", default=None, help="synth-kws folder (`neurokd data synth-kws`); omitted: digits only")
    p.add_argument("--kws-seeds", default=None, help="synth-kws seeds (default: --seeds)")
    p.add_argument("--kws-epochs", type=int, default=None, help="synth-kws student epochs (default: the dataset's)")
    p.add_argument("--kws-teacher-epochs", type=int, default=None, help="synth-kws teacher epochs (default: the dataset's)")
    p.add_argument("--skip-digits", action="store_true")
    p.add_argument("--samples", type=int, default=None, help="test samples placed per run (default: all)")
    p.add_argument("--no-train", action="store_true",
                   help="place and tabulate the runs already finished under --out; train nothing")
    p.add_argument("--quick", action="store_true", help="smoke run: seed 0, 3 epochs, 32 samples")
    args = p.parse_args(argv)
    try:
        methods = parse_list(args.methods, "methods")
        seeds = parse_list(args.seeds, "seeds", int)
        placements = parse_placements(args.placements, methods)
        placers = parse_list(args.placers, "placers")
        input_regs = parse_input_regs(args.input_reg)
        kws_input_regs = parse_input_regs(args.kws_input_reg) if args.kws_input_reg else input_regs
        kseeds = parse_list(args.kws_seeds, "seeds", int) if args.kws_seeds else seeds
    except NeurokdError as exc:
        p.error(str(exc))
    out = Path(args.out)
    if args.quick:
        seeds, kseeds = [0], [0]
        args.epochs, args.teacher_epochs, args.kws_epochs, args.kws_teacher_epochs = 3, 3, 3, 3
        args.samples = args.samples or 32
        out = out.with_name(out.name + "-quick")
    jobs = []
    if not args.skip_digits:
        jobs.append(("digits", None, seeds, args.epochs, args.teacher_epochs, "MLP", input_regs))
    if args.data_dir:
        jobs.append(("synth-kws", args.data_dir, kseeds, args.kws_epochs, args.kws_teacher_epochs,
                     "conv1d, MFCC shifted by the training minimum for spikes and bias", kws_input_regs))
    rows, notes = [], {}
    for dataset, data_dir, sds, epochs, teacher_epochs, what, regs in jobs:
        knobs = {**({"epochs": epochs} if epochs else {}), **({"teacher_epochs": teacher_epochs} if teacher_epochs else {})}
        if not args.no_train:
            train_all(dataset, data_dir, placements, sds, out, knobs, regs)
        drows = measure(dataset, placements, sds, out, args.samples, regs, placers)
        rows += drows
        if drows:
            notes[dataset] = f"{what}, {drows[-1]['epochs']} student epochs, seeds {','.join(map(str, sds))}"
    drows = deltas(rows)
    md = markdown(drows, notes, rows)
    write_csv(out / "chip_claim.csv", rows)
    write_csv(out / "chip_claim_deltas.csv", drows)
    write_text(out / "chip_claim.md", md)
    print(md)
    print(f"written: {out / 'chip_claim.csv'}, {out / 'chip_claim_deltas.csv'}, {out / 'chip_claim.md'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
