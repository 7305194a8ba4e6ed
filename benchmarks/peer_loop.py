"""Benchmark: seconds per training epoch of an snnTorch student in neurokd's loop vs the same loop written by hand.

Measured, not asserted (issue 17's goal: neurokd's loop within 1.1x of the hand loop). The student
is ``examples/own_loop_snntorch.py:build`` (64-128-10 snnTorch MLP, ``init_hidden=True``, T = 4) on
the digits training split, batch 64, Adam, method ``baseline`` (CE on the spike count) in both:

* **hand**: snnTorch's tutorial loop: ``utils.reset(net)``, ``for step in range(T): net(x)``, the
  spike count as logits, CE, backward, step; batches drawn as neurokd draws them (shuffled index
  batches of the tensors, no DataLoader), so only the loops differ;
* **neurokd**: :func:`neurokd.training.train` with ``model=...:build`` (UserStudent, SpikeRecorder
  hooks, the method's loss, activity counted every batch), its ``train_pass_seconds`` column of
  ``history.csv`` (the training pass alone, validation excluded).

The two alternate ``--rounds`` times (``--epochs`` each) so that a busy machine slows both alike;
the median epoch of each is reported, and the ratio. ``OMP_NUM_THREADS`` is left to the caller::

    OMP_NUM_THREADS=1 python benchmarks/peer_loop.py --epochs 5 --rounds 3
"""

from __future__ import annotations

import argparse
import csv
import importlib.util
import statistics
import tempfile
import time
from pathlib import Path

import torch
from snntorch import utils
from torch import nn

ROOT = Path(__file__).resolve().parents[1]
EXAMPLE = ROOT / "examples" / "own_loop_snntorch.py"


def _example():
    spec = importlib.util.spec_from_file_location("own_loop_snntorch_bench", EXAMPLE)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def hand_epochs(x, y, epochs: int, timesteps: int, batch: int, seed: int) -> list[float]:
    example = _example()
    torch.manual_seed(seed)
    net = example.build(tuple(x.shape[1:]), int(y.max()) + 1, timesteps)
    opt = torch.optim.Adam(net.parameters(), lr=1e-3, weight_decay=1e-4)
    g = torch.Generator().manual_seed(seed)
    times = []
    for _ in range(epochs):
        t0 = time.perf_counter()
        for idx in torch.randperm(len(x), generator=g).split(batch):
            xb, yb = x[idx], y[idx]
            utils.reset(net)
            spk = torch.stack([net(xb)[0] for _ in range(timesteps)])
            loss = nn.functional.cross_entropy(spk.sum(0), yb)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
        times.append(time.perf_counter() - t0)
    return times


def neurokd_epochs(epochs: int, timesteps: int, batch: int, seed: int) -> list[float]:
    import neurokd

    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "run"
        neurokd.train(model=f"{EXAMPLE}:build", method="baseline", teacher="none", epochs=epochs,
                      timesteps=timesteps, batch_size=batch, seed=seed, out=out, device="cpu", progress=False,
                      echo=None)
        with open(out / "history.csv", newline="") as fh:
            return [float(r["train_pass_seconds"]) for r in csv.DictReader(fh)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--epochs", type=int, default=5)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--timesteps", type=int, default=4)
    ap.add_argument("--batch", type=int, default=64)
    args = ap.parse_args()
    from neurokd.data import load

    x, y = load("digits", seed=0).train.tensors
    hand, ours = [], []
    for r in range(args.rounds):
        hand += hand_epochs(x, y, args.epochs, args.timesteps, args.batch, seed=r)
        ours += neurokd_epochs(args.epochs, args.timesteps, args.batch, seed=r)
    h, o = statistics.median(hand), statistics.median(ours)
    print(f"threads {torch.get_num_threads()}, {len(x)} samples, batch {args.batch}, T {args.timesteps}, "
          f"{args.rounds} rounds x {args.epochs} epochs")
    print(f"hand loop     median {1000 * h:7.1f} ms/epoch")
    print(f"neurokd loop  median {1000 * o:7.1f} ms/epoch  ({o / h:.2f}x the hand loop)")


if __name__ == "__main__":
    main()
