"""Benchmark: training throughput (samples/s) of baseline vs kd-lr for each dataset's model, on this machine.

Measured, not asserted. One "sample" is one input through a whole training step of
:mod:`neurokd.training` (the code real runs use: batch gather and augmentation, student forward over
T time steps, the method's loss, backward, optimizer step); the step is timed over whole epochs
after one warm-up epoch. Cases:

* ``mlp`` on the real digits training set (64 inputs, hidden 128-64, 10 classes);
* ``conv1d`` on random MFCC-shaped data ``(10, 49)``, 12 classes (the GSC recipe's shape);
* ``vgg`` (VGG-11) on random ``(3, 32, 32)`` images, 10 classes, with the CIFAR-10 crop + flip
  augmentation, at the recipe's width (1.0) and at width 0.25.

kd-lr distils from a ReLU teacher of the same topology (random weights: speed does not depend on
them). Without augmentation its logits are cached once before training, as ``neurokd train`` does
(not timed, like the one-off cache); with augmentation (vgg) the teacher runs on every batch,
which is why kd-lr costs more there. The kd-lr / baseline ratio compares machines whose absolute
speeds differ.

Besides samples/s it prints two machine-independent sizes of a step, for estimating other devices:
``MMAC/sample``, the multiply-accumulates of one student forward pass over all T steps (dense
count: Conv and Linear layers, every time step), and ``ops/step``, the number of ATen operators
one training step dispatches (forward + backward + optimizer; on a GPU each is about one kernel
launch).

Usage::

    python benchmarks/train_throughput.py                  # all cases, device auto (CUDA if present)
    python benchmarks/train_throughput.py --device cpu --cases mlp,conv1d
    python benchmarks/train_throughput.py --amp            # CUDA mixed precision
"""

from __future__ import annotations

import argparse
import math
import os
import platform
import statistics
import time
from dataclasses import dataclass, field

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import TensorDataset

from neurokd import distributed
from neurokd.config import make_config
from neurokd.data import Splits, load
from neurokd.data.cifar10 import random_crop_flip
from neurokd.losses import method_terms, total_loss
from neurokd.training import _Fit, build_models, deterministic, resolve_device, teacher_logits

METHODS = ("baseline", "kd-lr")


@dataclass
class Case:
    name: str
    dataset: str                 # whose defaults (lr, weight decay) the config takes
    model: str
    input_shape: tuple[int, ...]
    classes: int
    batch_size: int              # the recipe's batch size
    model_options: dict = field(default_factory=dict)
    augment: bool = False
    real_digits: bool = False
    cpu_steps: int = 20          # batches per timed epoch on CPU (random data; 20 on CUDA)


CASES = {
    "mlp": Case("mlp (digits)", "digits", "mlp", (64,), 10, 64, {"hidden": [128, 64]}, real_digits=True),
    "conv1d": Case("conv1d (10x49 MFCC)", "gsc", "conv1d", (10, 49), 12, 128, {"channels": [32, 64, 64], "hidden": 128}),
    "vgg": Case("vgg11 w1.0 (3x32x32)", "cifar10", "vgg", (3, 32, 32), 10, 128, {"width": 1.0}, augment=True,
                cpu_steps=2),
    "vgg-small": Case("vgg11 w0.25 (3x32x32)", "cifar10", "vgg", (3, 32, 32), 10, 128, {"width": 0.25}, augment=True,
                      cpu_steps=4),
}


def _splits(case: Case, n: int) -> Splits:
    """Training data for the case: the real digits, or ``n`` random samples of the case's shape."""
    if case.real_digits:
        return load("digits", None, 0)
    g = torch.Generator().manual_seed(0)
    x = torch.randn((n, *case.input_shape), generator=g)
    y = torch.randint(0, case.classes, (n,), generator=g)
    ds = TensorDataset(x, y)
    augment = (lambda b, gen: random_crop_flip(b, gen, padding=4)) if case.augment else None
    return Splits(case.name, ds, ds, ds, case.classes, case.input_shape, [str(c) for c in range(case.classes)],
                  augment=augment)


def macs_per_sample(model: nn.Module, input_shape: tuple[int, ...], timesteps: int) -> int:
    """Dense multiply-accumulates of Conv/Linear layers for one sample over ``timesteps`` steps."""
    total = 0

    def hook(mod, inp, out):
        nonlocal total
        if isinstance(mod, (nn.Conv1d, nn.Conv2d)):
            per_out = (mod.in_channels // mod.groups) * math.prod(mod.kernel_size)
            total += out[0].numel() * per_out
        elif isinstance(mod, nn.Linear):
            total += mod.in_features * mod.out_features

    handles = [m.register_forward_hook(hook) for m in model.modules() if isinstance(m, (nn.Conv1d, nn.Conv2d, nn.Linear))]
    try:
        with torch.no_grad():
            model.eval()(torch.zeros((1, *input_shape)))  # the ANN teacher: one step of the same layers
    finally:
        for h in handles:
            h.remove()
    return total * timesteps


class _CountOps(TorchDispatchMode):
    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        self.count += 1
        return func(*args, **(kwargs or {}))


def _fit(case: Case, method: str, device: torch.device, amp: bool, timesteps: int, batch: int, n: int):
    """A :class:`neurokd.training._Fit` for the case, its TrainingSet, and the student."""
    cfg = make_config(dataset=case.dataset, model=case.model, model_options=case.model_options, method=method,
                      timesteps=timesteps, batch_size=batch, device=str(device.type), amp=amp, epochs=1,
                      teacher="auto", out="runs/bench-unused")
    splits = _splits(case, n)
    teacher, student = build_models(cfg, case.input_shape, case.classes)
    teacher.to(device).eval()
    student.to(device)
    use_kd = method_terms(method)[0]
    x, y = splits.train.tensors
    cached = teacher_logits(teacher, x, device) if use_kd and splits.augment is None else None
    run = distributed.wrap(student, device, "run")

    def batch_loss(xb, yb, tb):  # as neurokd.training.train builds it
        logits, spikes, _ = run(xb)
        if use_kd and tb is None:
            with torch.no_grad():
                tb = teacher(xb).float()
        loss, _ = total_loss(method, logits, yb, spikes, tb, temperature=cfg.temperature, alpha=cfg.alpha,
                             lambda_act=cfg.lambda_act, lambda_logits=cfg.lambda_logits,
                             act_norm=cfg.act_norm, logits_norm=cfg.logits_norm)
        return loss, logits, spikes

    fit = _Fit(cfg, student, device, 1, "bench", batch_loss, splits, shuffle_seed=0, progress=False)
    data = distributed.TrainingSet(x, y, cached, device)
    return fit, data, teacher, cfg


def measure(case: Case, method: str, device: torch.device, amp: bool, timesteps: int, batch: int,
            steps: int, repeats: int) -> dict:
    """Samples/s of whole training epochs of ``steps`` batches (median of ``repeats``, after a warm-up)."""
    n = batch * steps
    fit, data, teacher, cfg = _fit(case, method, device, amp, timesteps, batch, n)
    if case.real_digits:
        steps = len(data) // batch
    sync = (lambda: torch.cuda.synchronize(device)) if device.type == "cuda" else (lambda: None)
    with deterministic(device):
        fit.train_epoch(data, None)  # warm-up (allocator, kernels)
        rates = []
        for _ in range(repeats):
            sync()
            t0 = time.perf_counter()
            fit.train_epoch(data, None)
            sync()
            rates.append(len(data) / (time.perf_counter() - t0))
        # operators of one step: a one-batch epoch under the counting mode
        one = distributed.TrainingSet(data.x[:batch].cpu(), data.y[:batch].cpu(),
                                      data.extra[:batch].cpu() if data.extra is not None else None, device)
        counter = _CountOps()
        with counter:
            fit.train_epoch(one, None)
    return {"samples_per_s": statistics.median(rates), "ops_per_step": counter.count,
            "mmac_per_sample": macs_per_sample(teacher.cpu(), case.input_shape, timesteps) / 1e6, "batch": batch,
            "steps": steps}


def main(argv: list[str] | None = None) -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--device", default="auto", help="auto (CUDA if present), cpu, cuda")
    ap.add_argument("--amp", action="store_true", help="CUDA mixed precision (float16 autocast + GradScaler)")
    ap.add_argument("--cases", default=",".join(CASES), help=f"comma-separated, from: {', '.join(CASES)}")
    ap.add_argument("--timesteps", "-T", type=int, default=4)
    ap.add_argument("--steps", type=int, default=None,
                    help="batches per timed epoch on random data (default: 20 on CUDA; on CPU 20, vgg 4, vgg w1.0 2)")
    ap.add_argument("--repeats", type=int, default=3, help="timed epochs per case (median reported)")
    ap.add_argument("--batch", type=int, default=None, help="batch size (default: each recipe's)")
    ap.add_argument("--threads", type=int, default=None,
                    help="CPU threads for torch (default: torch's); on a busy machine 1 avoids OpenMP oversubscription")
    args = ap.parse_args(argv)

    if args.threads:
        torch.set_num_threads(args.threads)
    device = resolve_device(args.device)
    torch.manual_seed(0)
    name = torch.cuda.get_device_name(device) if device.type == "cuda" else platform.processor() or platform.machine()
    print(f"device {device} ({name}), torch {torch.__version__}, {torch.get_num_threads()} CPU threads, "
          f"T={args.timesteps}, amp={'on' if args.amp and device.type == 'cuda' else 'off'}, "
          f"load average {os.getloadavg()[0]:.1f} on {os.cpu_count()} cores")
    header = f"{'model':24s} {'batch':>5s} {'MMAC/sample':>11s} {'method':>8s} {'ops/step':>8s} {'samples/s':>10s} {'kd-lr/base':>10s}"
    print(header)
    print("-" * len(header))
    for key in [c.strip() for c in args.cases.split(",") if c.strip()]:
        case = CASES[key]
        batch = args.batch or case.batch_size
        steps = args.steps or (20 if device.type == "cuda" else case.cpu_steps)
        base = None
        for method in METHODS:
            r = measure(case, method, device, args.amp, args.timesteps, batch, steps, args.repeats)
            base = r["samples_per_s"] if method == "baseline" else base
            ratio = f"{base / r['samples_per_s']:.2f}x" if method != "baseline" else ""
            print(f"{case.name:24s} {batch:5d} {r['mmac_per_sample']:11.2f} {method:>8s} {r['ops_per_step']:8d} "
                  f"{r['samples_per_s']:10.1f} {ratio:>10s}", flush=True)
    print("kd-lr/base = time per sample of kd-lr / time per sample of baseline (>1: kd-lr is slower)")


if __name__ == "__main__":
    main()
