"""Throughput and agreement of the fast hardware model against Lava fixed_pt and a plain PyTorch forward.

For the digits MLP student, a synth-kws conv1d student and a synth-kws resnet1d student (residual
shortcuts, run in Lava through DelayDense) (briefly trained here with cross-entropy, so
spike rates are those of a working network), prints one table: samples/s in Lava ``fixed_pt`` (a subset
of the test split, one compile), in the fast model (the whole test split), their ratio, the spike
agreement of the fast model with Lava on that subset (every spike of every layer, per step), and
samples/s of the student's own batched float32 PyTorch forward, with the ratio fast / PyTorch.

    .venv/bin/python benchmarks/fastsim.py [--lava-samples 48] [--epochs 4] [--skws /tmp/skws]
        [--cifar CIFAR10_DIR] [--cifar-width 0.25] [--cifar-lava-samples 2]

A third row runs a CIFAR-10-sized student (VGG-11 layout, a quarter of its channels by default,
3 x 32 x 32 input, T = 4) on a 10,000-sample test split: CIFAR-10's own with ``--cifar``, else
CIFAR-shaped stand-in data; Lava runs only ``--cifar-lava-samples`` of it.

Measured, not asserted. Timings are the best of ``--repeats`` runs (fast model, PyTorch); Lava runs once.
On a machine shared with other jobs use ``--threads 1``: torch's OpenMP threads wait for each other when
another process holds a core, which slows small batches (both the fast model and PyTorch) by 10-100x.
"""

from __future__ import annotations

import argparse
import sys
import time
from types import SimpleNamespace

import numpy as np
import torch
from torch.utils.data import TensorDataset

import neurokd.hardware  # noqa: F401  (lava on Python 3.11)
from neurokd.data import load
from neurokd.exporters.to_nir import student_to_nir
from neurokd.hardware.network import ir
from neurokd.hardware.engines.fastsim import run_fast
from neurokd.hardware.network.quantize import quantize
from neurokd.models import build_student


#: Samples per PyTorch forward (the fast model picks its own chunks by memory).
TORCH_BATCH = 1000


def train_briefly(student, splits, epochs: int, lr: float, seed: int) -> float:
    """Plain cross-entropy with Adam for a few epochs (surrogate gradients); returns test accuracy."""
    torch.manual_seed(seed)
    x, y = splits.train.tensors
    opt = torch.optim.Adam(student.parameters(), lr=lr)
    student.train()
    gen = torch.Generator().manual_seed(seed)
    for _ in range(epochs):
        for idx in torch.randperm(len(x), generator=gen).split(64):
            opt.zero_grad()
            loss = torch.nn.functional.cross_entropy(student(x[idx]), y[idx])
            loss.backward()
            opt.step()
    student.eval()
    xt, yt = splits.test.tensors
    with torch.no_grad():
        return float((forward(student, xt).argmax(1) == yt).float().mean())


def forward(student, x: torch.Tensor, batch: int = TORCH_BATCH) -> torch.Tensor:
    """The student's float32 logits, ``batch`` samples at a time (a 10,000-image split at once would not fit)."""
    return torch.cat([student(x[i:i + batch]) for i in range(0, len(x), batch)])


def cifar_shaped(seed: int, n_train: int = 2000, n_test: int = 10_000) -> SimpleNamespace:
    """CIFAR-10-shaped stand-in data (3 x 32 x 32, 10 classes, a 10,000-sample test split) when no CIFAR-10
    folder is given: each class a smooth random colour field (8 x 8 noise upsampled), each sample its class
    field plus pixel noise, so that a briefly trained student spikes like a working network."""
    gen = torch.Generator().manual_seed(seed)
    fields = torch.nn.functional.interpolate(torch.randn(10, 3, 8, 8, generator=gen), size=(32, 32),
                                             mode="bilinear", align_corners=False)

    def split(n: int) -> TensorDataset:
        y = torch.randint(0, 10, (n,), generator=gen)
        return TensorDataset(fields[y] + 0.8 * torch.randn(n, 3, 32, 32, generator=gen), y)

    return SimpleNamespace(train=split(n_train), test=split(n_test), input_shape=(3, 32, 32), num_classes=10)


def best_of(fn, repeats: int) -> float:
    times = []
    for _ in range(repeats):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)


def bench(name: str, student, splits, lava_samples: int, repeats: int, dt: float = 1e-4) -> dict:
    from neurokd.hardware.engines.lava_backend import run_lava

    x_test = splits.test.tensors[0].numpy().astype(np.float64)
    x_train = splits.train.tensors[0].numpy().astype(np.float64)
    steps = student.timesteps
    network = ir.from_nir(student_to_nir(student, dt=dt))
    fixed = quantize(network, input_sample=np.concatenate([x_train, x_test]))
    n_lava = min(lava_samples, len(x_test))

    lava = run_lava(network, x_test[:n_lava], precision="fixed", timesteps=steps, fixed=fixed, record_steps=True)
    sub = run_fast(network, x_test[:n_lava], precision="fixed", timesteps=steps, fixed=fixed, record_steps=True)
    agree = {k: float(np.mean(sub.spikes[k] == lava.spikes[k])) for k in network.spiking_layers}
    same_pred = float(np.mean(sub.predictions == lava.predictions))

    run_fast(network, x_test, precision="fixed", timesteps=steps, fixed=fixed)          # warm-up
    holder = {}

    def fast_split():
        holder["r"] = run_fast(network, x_test, precision="fixed", timesteps=steps, fixed=fixed)

    t_fast = best_of(fast_split, repeats)
    full = holder["r"]
    xt = torch.as_tensor(x_test, dtype=torch.float32)
    with torch.inference_mode():
        forward(student, xt[:TORCH_BATCH])
        t_torch = best_of(lambda: forward(student, xt), repeats)
    neurons = sum(network.layer(k).size for k in network.spiking_layers)
    rate = sum(full.counts[k].sum() for k in network.spiking_layers) / (len(x_test) * steps * neurons)
    rates = {k: round(float(full.counts[k].mean()) / steps, 3) for k in network.spiking_layers}
    y = splits.test.tensors[1].numpy()
    return {
        "model": name, "test_samples": len(x_test), "steps": steps,
        "lava_samples": n_lava, "lava_sps": n_lava / lava.run_seconds, "lava_build_s": lava.build_seconds,
        "fast_sps": len(x_test) / t_fast, "fast_split_s": t_fast, "torch_sps": len(x_test) / t_torch,
        "agreement": min(agree.values()), "agreement_per_layer": agree, "prediction_agreement": same_pred,
        "spike_rate": float(rate), "rates": rates, "acc_fast_fixed": float(np.mean(full.predictions == y)),
    }


def _seconds(s: float) -> str:
    return f"{s * 1e3:.1f} ms" if s < 1 else f"{s:.2f} s"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--lava-samples", type=int, default=48)
    ap.add_argument("--epochs", type=int, default=4)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--skws", default="/tmp/skws", help="synth-kws data folder (neurokd data synth-kws)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's own choice)")
    ap.add_argument("--cifar", default=None, help="CIFAR-10 python batches folder (default: CIFAR-shaped stand-in data)")
    ap.add_argument("--cifar-width", type=float, default=0.25, help="VGG-11 channel multiplier of the image student")
    ap.add_argument("--cifar-train", type=int, default=2000, help="training samples for the image student's one epoch")
    ap.add_argument("--cifar-lava-samples", type=int, default=2, help="Lava samples of the image row (0: no image row)")
    ap.add_argument("--no-resnet", action="store_true", help="leave out the synth-kws resnet1d row")
    args = ap.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    rows, accs, sources = [], {}, {}

    digits = load("digits", None, seed=args.seed)
    mlp = build_student("mlp", digits.input_shape, digits.num_classes, timesteps=8)
    accs["digits mlp"] = train_briefly(mlp, digits, args.epochs, 2e-3, args.seed)
    rows.append(bench("digits mlp", mlp, digits, args.lava_samples, args.repeats))

    try:
        kws = load("synth-kws", args.skws, seed=args.seed)
    except Exception as exc:                      # noqa: BLE001 (a benchmark reports and goes on)
        print(f"synth-kws not available at {args.skws}: {exc}", file=sys.stderr)
        kws = None
    if kws is not None:
        conv = build_student("conv1d", kws.input_shape, kws.num_classes, timesteps=8)
        accs["synth-kws conv1d"] = train_briefly(conv, kws, args.epochs, 2e-3, args.seed)
        rows.append(bench("synth-kws conv1d", conv, kws, max(8, args.lava_samples // 3), args.repeats))
        if not args.no_resnet:                    # residual shortcuts: Lava DelayDense, one step behind
            res = build_student("resnet1d", kws.input_shape, kws.num_classes, timesteps=8)
            accs["synth-kws resnet1d"] = train_briefly(res, kws, args.epochs, 2e-3, args.seed)
            rows.append(bench("synth-kws resnet1d", res, kws, max(8, args.lava_samples // 3), args.repeats))

    if args.cifar_lava_samples > 0:
        if args.cifar:
            full, source = load("cifar10", args.cifar, seed=args.seed), "CIFAR-10"
            cifar = SimpleNamespace(train=TensorDataset(*(t[:args.cifar_train] for t in full.train.tensors)),
                                    test=full.test, input_shape=full.input_shape, num_classes=full.num_classes)
        else:
            cifar, source = cifar_shaped(args.seed, n_train=args.cifar_train), "CIFAR-10-shaped stand-in"
        vgg = build_student("vgg", cifar.input_shape, cifar.num_classes, timesteps=4, width=args.cifar_width)
        name = f"{'cifar10' if args.cifar else 'cifar-shaped'} vgg11/{round(1 / args.cifar_width)}"
        accs[name] = train_briefly(vgg, cifar, 1, 2e-3, args.seed)
        sources[name] = f"{source}, {len(cifar.train.tensors[0])} training samples, 1 epoch"
        rows.append(bench(name, vgg, cifar, args.cifar_lava_samples, max(1, args.repeats // 5)))

    print(f"\nfast hardware model vs Lava fixed_pt vs PyTorch (torch threads: {torch.get_num_threads()})")
    head = (f"{'model':<22} {'T':>2} {'rate':>5} {'Lava sps':>9} {'fast sps':>10} {'fast/Lava':>10} {'agree':>7} "
            f"{'torch sps':>10} {'fast/torch':>10} {'split (N)':>17}")
    print(head)
    print("-" * len(head))
    for r in rows:
        print(f"{r['model']:<22} {r['steps']:>2} {r['spike_rate']:>5.2f} {r['lava_sps']:>9.1f} {r['fast_sps']:>10.0f} "
              f"{r['fast_sps'] / r['lava_sps']:>9.0f}x {100 * r['agreement']:>6.1f}% {r['torch_sps']:>10.0f} "
              f"{r['fast_sps'] / r['torch_sps']:>9.2f}x {_seconds(r['fast_split_s']):>8} ({r['test_samples']})")
    print()
    for r in rows:
        trained = sources.get(r["model"], f"trained {args.epochs} epochs")
        print(f"{r['model']}: student float32 test accuracy {accs[r['model']]:.3f} ({trained}, CE); "
              f"fast fixed_pt accuracy {r['acc_fast_fixed']:.3f}; Lava subset {r['lava_samples']} samples "
              f"(build {r['lava_build_s']:.1f} s), predictions agree {100 * r['prediction_agreement']:.0f}%; "
              f"identical spikes per layer {r['agreement_per_layer']}; spikes per neuron per step {r['rates']}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
