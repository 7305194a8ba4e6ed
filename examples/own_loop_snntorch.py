"""An snnTorch network in its own training loop, with neurokd's distillation and logits penalty added.

The network and the loop are written the way snnTorch's tutorials write them (``nn.Sequential`` of
``snn.Leaky(init_hidden=True)``, the last one ``output=True``, ``utils.reset`` and its own
``for step in range(num_steps)``, loss on the output spike count). The three lines marked
``+ neurokd`` are all that kd-lr adds: a spike recorder (forward hooks), the teacher's soft targets
cached once beside the training set (``soft_targets``: ``softmax(z_t / T)`` and its entropy), and
neurokd's loss in place of the cross-entropy (its ``p, h`` columns come from the loader)::

    .venv/bin/python examples/own_loop_snntorch.py --method baseline
    .venv/bin/python examples/own_loop_snntorch.py --method kd-lr          # 20-30 s each on 2 CPU cores

The same network trains in neurokd's own loop, from the function :func:`build` of this file::

    neurokd train --model examples/own_loop_snntorch.py:build --method kd-lr --out runs/snntorch-kd-lr
"""

from __future__ import annotations

import argparse

import snntorch as snn
import torch
from snntorch import utils
from torch import nn
from torch.utils.data import DataLoader, TensorDataset

from neurokd.activity import ActivityCounter, SpikeRecorder
from neurokd.data import load
from neurokd.losses import soft_targets, total_loss


def build(input_shape, num_classes, timesteps, hidden: int = 128, beta: float = 0.5):
    """The student: one time step of an snnTorch MLP (neurokd's loop calls it ``timesteps`` times)."""
    n_in = 1
    for d in input_shape:
        n_in *= int(d)
    return nn.Sequential(
        nn.Flatten(),
        nn.Linear(n_in, hidden), snn.Leaky(beta=beta, init_hidden=True, reset_mechanism="zero"),
        nn.Linear(hidden, num_classes), snn.Leaky(beta=beta, init_hidden=True, output=True, reset_mechanism="zero"),
    )


def forward_pass(net, num_steps, data):
    """snnTorch's tutorial loop: reset the hidden states, step the network, stack the output spikes."""
    spk_rec = []
    utils.reset(net)
    for _step in range(num_steps):
        spk_out, _mem_out = net(data)
        spk_rec.append(spk_out)
    return torch.stack(spk_rec)


def train_teacher(x, y, num_classes, epochs=20):
    """The user's ANN teacher (any model that gives logits will do)."""
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(x[0].numel(), 128), nn.ReLU(), nn.Linear(128, num_classes))
    opt = torch.optim.Adam(teacher.parameters(), lr=1e-3)
    for _ in range(epochs):
        for xb, yb in DataLoader(TensorDataset(x, y), batch_size=64, shuffle=True):
            opt.zero_grad()
            nn.functional.cross_entropy(teacher(xb), yb).backward()
            opt.step()
    return teacher.eval()


def main(method: str = "kd-lr", epochs: int = 30, num_steps: int = 4, seed: int = 0, lambda_logits: float = 0.1,
         teacher_epochs: int = 20):
    torch.manual_seed(seed)
    splits = load("digits", seed=seed)                      # neurokd's digits loader: train/val/test tensors
    x_train, y_train = splits.train.tensors
    x_test, y_test = splits.test.tensors
    teacher = train_teacher(x_train, y_train, splits.num_classes, teacher_epochs)

    torch.manual_seed(seed)
    net = build(splits.input_shape, splits.num_classes, num_steps)
    optimizer = torch.optim.Adam(net.parameters(), lr=1e-3)
    recorder = SpikeRecorder(net)                                                                  # + neurokd
    train_set = TensorDataset(x_train, y_train, *soft_targets(teacher(x_train).detach(), 1.0))     # + neurokd

    for _epoch in range(epochs):
        for data, targets, p, h in DataLoader(train_set, batch_size=64, shuffle=True):
            spk_rec = forward_pass(net, num_steps, data)
            logits = spk_rec.sum(0)                                                     # spike count
            loss, _ = total_loss(method, logits, targets, recorder.pop(), teacher_soft=(p, h),  # + neurokd
                                 temperature=1.0, alpha=0.5, lambda_logits=lambda_logits, lambda_act=0.05)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()

    counter = ActivityCounter()                     # test accuracy and activity, every spiking layer pooled
    with torch.no_grad():
        recorder.clear()
        logits = forward_pass(net, num_steps, x_test).sum(0)
        counter.update(recorder.pop())
    accuracy = float((logits.argmax(1) == y_test).float().mean())
    print(f"{method}: test accuracy {100 * accuracy:.2f} %, activity {counter.total():.4f} spikes per neuron "
          f"per step (per layer {', '.join(f'{k} {v:.4f}' for k, v in counter.per_layer().items())})")
    return accuracy, counter.total()


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--method", default="kd-lr", help="baseline, kd, ar, lr, kd-ar, kd-lr, kd-ar-lr")
    ap.add_argument("--epochs", type=int, default=30)
    ap.add_argument("--steps", type=int, default=4)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--lambda-logits", type=float, default=0.1,
                    help="logits penalty; on spike counts (0..T) it weighs T^2 more than on time-averaged logits")
    args = ap.parse_args()
    main(args.method, args.epochs, args.steps, args.seed, args.lambda_logits)
