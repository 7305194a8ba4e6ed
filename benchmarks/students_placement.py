"""neurokd's own students placed on loihi1 and loihi2 through ``neurokd map``, one row per chip and input mode.

The digits MLP, synth-kws conv1d and resnet1d (trained run folders, or with ``--untrained`` the students
``benchmarks/placement.py`` builds) and the CIFAR-shaped VGG-11 that ``benchmarks/placement.py`` builds (untrained,
seed 0, random graded frames: the placement is what is measured, the spike rates are not a working network's) are
mapped with the ``pack`` placer, fixed point, on their whole test split (the VGG on ``--vgg-samples`` frames); the
table gives cores, chips, latency and energy per inference (routing included), the bottleneck core and what bounds
it, and the accuracy under the input mode where the run has labels.

    .venv/bin/python benchmarks/students_placement.py --digits RUN --conv1d RUN --resnet1d RUN --out DIR
        [--untrained conv1d,resnet1d] [--no-vgg] [--neurokd PATH] [--before]

``--neurokd`` runs another checkout's command (e.g. an older one's venv); ``--before`` is for a ``neurokd``
without ``--input-mode``: every network is mapped once per chip with its input as that version took it (graded
values, charged as multiply-accumulates on both chips). Measured, not asserted.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import torch

MODES = {"loihi1": ("bias", "spikes", "host"), "loihi2": ("graded", "bias")}


def write_untrained(out: Path, vgg_width: float, vgg_samples: int,
                    samples: int = 256) -> dict[str, tuple[Path, Path]]:
    """The untrained students and inputs of ``benchmarks/placement.py`` (same seeds, same draws in the same order:
    synth-kws conv1d and resnet1d on ``|N(0, 1)|`` frames, T = 8; the VGG on uniform frames, T = 4), each as a
    ``.nir`` and an ``(N, T, *shape)`` input ``.npy`` for ``neurokd map``."""
    import nir

    from neurokd.exporters.to_nir import student_to_nir
    from neurokd.models import build_student

    rng = np.random.default_rng(0)
    torch.manual_seed(0)
    build_student("mlp", (64,), 10, timesteps=8)          # placement.py builds it first: the same weights after
    nets = {}
    for model in ("conv1d", "resnet1d"):
        st = build_student(model, (10, 49), 12, timesteps=8).eval()
        nets[model] = (st, np.abs(rng.normal(size=(samples, 10, 49))), 8)
    st = build_student("vgg", (3, 32, 32), 10, timesteps=4, width=vgg_width).eval()
    nets["vgg"] = (st, rng.random((vgg_samples, 3, 32, 32)), 4)
    out.mkdir(parents=True, exist_ok=True)
    files = {}
    for name, (st, x, t) in nets.items():
        graph, data = out / f"{name}.nir", out / f"{name}_input.npy"
        nir.write(graph, student_to_nir(st, dt=1e-4))
        np.save(data, np.repeat(x[:, None], t, axis=1))
        files[name] = (graph, data)
    return files


def row(name: str, chip: str, mode: str, folder: Path) -> str:
    info = json.loads((folder / "placement.json").read_text())
    c = info["cost"]
    b = c["bottleneck"]
    share = max(b["shares"].values()) * 100
    acc = info.get("input", {}).get("accuracy")
    acc_s = f"{acc * 100:.2f} %" if acc is not None else ""
    return (f"| {name} | {chip} | {mode} | {info['cores']} | {info['chips']} | {c['latency_us_per_inference']:.1f} | "
            f"{c['energy_uj_per_inference']:.3f} | core {b['core']}, {b['layer']} ({b['bound']} {share:.0f} %) | "
            f"{acc_s} |")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--digits")
    ap.add_argument("--conv1d")
    ap.add_argument("--resnet1d")
    ap.add_argument("--vgg-width", type=float, default=0.25)
    ap.add_argument("--vgg-samples", type=int, default=32)
    ap.add_argument("--no-vgg", action="store_true", help="only the run folders given")
    ap.add_argument("--untrained", default="", help="comma-separated conv1d,resnet1d: placement.py's untrained "
                                                      "synth-kws students (random |N(0,1)| frames) for runs not given")
    ap.add_argument("--chips", type=int, default=16, help="chips available (the VGG needs several Loihi 1 chips)")
    ap.add_argument("--neurokd", default=str(Path(sys.executable).with_name("neurokd")))
    ap.add_argument("--before", action="store_true", help="the neurokd given has no --input-mode")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    targets = [(n, [r]) for n, r in (("digits MLP", args.digits), ("synth-kws conv1d", args.conv1d),
                                      ("synth-kws resnet1d", args.resnet1d)) if r]
    untrained = [m for m in args.untrained.split(",") if m]
    if untrained or not args.no_vgg:
        files = write_untrained(out / "untrained", args.vgg_width, args.vgg_samples)
        for m in untrained:
            targets.append((f"synth-kws {m} (untrained)", [str(files[m][0]), "--input", str(files[m][1])]))
        if not args.no_vgg:
            graph, data = files["vgg"]
            targets.append((f"CIFAR VGG-11 x{args.vgg_width:g} (untrained)", [str(graph), "--input", str(data)]))
    print("| network | chip | input mode | cores | chips | us / inference | uJ / inference | bottleneck | accuracy |")
    print("|---|---|---|---:|---:|---:|---:|---|---:|")
    for i, (name, target) in enumerate(targets):
        for chip in ("loihi1", "loihi2"):
            for mode in (("graded (before)",) if args.before else MODES[chip]):
                folder = out / f"{i}-{chip}-{mode.split()[0]}"
                cmd = [args.neurokd, "map", *target, "--hardware", chip, "--chips", str(args.chips),
                       "--out", str(folder)]
                if not args.before:
                    cmd += ["--input-mode", mode]
                done = subprocess.run(cmd, capture_output=True, text=True)
                if done.returncode != 0:
                    tail = (done.stderr or done.stdout).strip().splitlines()[-1:]
                    print(f"| {name} | {chip} | {mode} | refused: {' '.join(tail)} |||||")
                    continue
                print(row(name, chip, mode, folder), flush=True)


if __name__ == "__main__":
    main()
