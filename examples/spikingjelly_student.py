"""A SpikingJelly student for neurokd's own loop: ``neurokd train --model examples/spikingjelly_student.py:build``.

Multi-step LIF neurons as Louis et al. train them (tau = 2, threshold 1, hard reset to 0; PAPER.md),
with ``decay_input=False`` (``v = v - v/tau + I``: the input is not halved, so PyTorch's default
initialisation makes the layers fire; the same update as neurokd's LIF with beta = 1 - 1/tau), and a
non-spiking ``Linear`` readout, whose output neurokd averages over the ``T`` steps. neurokd calls
``functional.reset_net`` before each batch and the network once with the input repeated over ``T``
steps, ``(T, B, 8, 8)``::

    neurokd train --model examples/spikingjelly_student.py:build --method kd-ar-lr --out runs/sj-kd-ar-lr
    neurokd export runs/sj-kd-ar-lr --target lava --engine fast --model examples/spikingjelly_student.py:build

With no teacher returned, the run distils from neurokd's teacher of the dataset (the digits MLP).
"""

from __future__ import annotations

import math

from spikingjelly.activation_based import functional, layer, neuron
from torch import nn


def build(input_shape, num_classes, timesteps, hidden: int = 128, tau: float = 2.0):
    """Flatten -> Linear -> LIFNode -> Linear -> LIFNode -> Linear readout, multi-step."""
    net = nn.Sequential(
        layer.Flatten(),
        layer.Linear(math.prod(input_shape), hidden), neuron.LIFNode(tau=tau, decay_input=False, v_reset=0.0),
        layer.Linear(hidden, hidden // 2), neuron.LIFNode(tau=tau, decay_input=False, v_reset=0.0),
        layer.Linear(hidden // 2, num_classes),
    )
    functional.set_step_mode(net, "m")
    return net
