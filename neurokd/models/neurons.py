"""The student's spiking neuron: a discrete LIF whose forward pass is, step for step, Lava's LIF.

This module is the one neuron-model contract of neurokd. The exporters map it to NIR and the
hardware side maps NIR to Lava; both are tested against the equations below.
"""

from __future__ import annotations

import torch
from snntorch import surrogate
from torch import nn


RESETS = ("zero", "subtract")


class LIF(nn.Module):
    r"""Leaky integrate-and-fire neuron with reset to zero (or by subtraction), run over a whole sequence.

    For every neuron and time step ``t = 0 .. T-1`` (with ``v[-1] = 0``)::

        v[t] = beta * v[t-1] + I[t]        # I[t]: this step's synaptic input, the layer bias included
        s[t] = 1 if v[t] > theta else 0    # strict comparison
        v[t] = 0 where s[t] = 1            # reset to zero in the same step
        (reset="subtract": v[t] = v[t] - theta where s[t] = 1, in the same step)

    ``reset="subtract"`` (soft reset) keeps the charge above threshold, the reset SpikingJelly's
    LIF uses and the one Louis et al. train their CIFAR-10 VGG with; the subtracted threshold is
    decayed with the rest of ``v`` at the next step (snnTorch's ``reset_delay=True`` instead
    subtracts it undecayed one step later). It is a training-side model only: NIR neurons reset
    to ``v_reset`` and Lava's LIF (Loihi) resets to zero, so such a student has no exact hardware
    image and the exporters refuse it, naming the layer.

    Lava (``lava.proc.lif``, ``floating_pt``) computes ``u[t] = u[t-1](1 - du) + a_in[t]``,
    ``v[t] = v[t-1](1 - dv) + u[t] + bias``, fires on ``v > vth`` and sets ``v = 0``. With
    ``du = 1``, ``dv = 1 - beta``, ``vth = theta`` and ``bias`` = the preceding layer's bias, the
    two are the same update (Lava's Dense/Conv deliver ``a_in`` one step late: the exporter
    accounts for that delay, not the neuron).

    In NIR this is ``LIF(tau, r, v_leak=0, v_threshold=theta, v_reset=0)`` integrated with forward
    Euler at step ``dt``: ``tau = dt / (1 - beta)`` and ``r = tau / dt`` give
    ``v + dt/tau (-v + r I) = beta v + I``. ``beta = 1`` is the non-leaky ``IF(r=1)``.

    The spike is ``snntorch.surrogate`` Heaviside: exact forward (``v - theta > 0``), smooth
    surrogate gradient (arctan by default) backward. ``learn_beta`` / ``learn_threshold`` make
    ``beta`` (clamped to [0, 1]) and ``theta`` (kept > 0) trainable; both stay exportable.

    Input and output are ``(T, B, ...)`` tensors: the whole sequence at once.
    """

    def __init__(
        self,
        beta: float = 0.5,
        threshold: float = 1.0,
        learn_beta: bool = False,
        learn_threshold: bool = False,
        spike_grad=None,
        reset: str = "zero",
    ) -> None:
        super().__init__()
        if reset not in RESETS:
            raise ValueError(f"LIF reset must be one of {RESETS}, got {reset!r}")
        self.reset = reset
        if not 0.0 <= beta <= 1.0:
            raise ValueError(f"LIF beta must be in [0, 1], got {beta}")
        if threshold <= 0:
            raise ValueError(f"LIF threshold must be > 0, got {threshold}")
        self.beta = nn.Parameter(torch.tensor(float(beta)), requires_grad=learn_beta)
        self.threshold = nn.Parameter(torch.tensor(float(threshold)), requires_grad=learn_threshold)
        self.spike_grad = spike_grad if spike_grad is not None else surrogate.atan(alpha=2.0)

    def effective_beta(self) -> torch.Tensor:
        """The decay actually used, clamped to [0, 1]."""
        return self.beta.clamp(0.0, 1.0)

    def effective_threshold(self) -> torch.Tensor:
        """The threshold actually used, kept strictly positive."""
        return self.threshold.clamp_min(1e-3)

    def forward(self, current: torch.Tensor) -> torch.Tensor:
        beta = self.effective_beta()
        theta = self.effective_threshold()
        v = torch.zeros_like(current[0])
        spikes = []
        for t in range(current.shape[0]):
            v = beta * v + current[t]
            s = self.spike_grad(v - theta).to(v.dtype)  # snntorch surrogates return float32
            v = self.after_spike(v, s, theta)
            spikes.append(s)
        return torch.stack(spikes)

    def after_spike(self, v: torch.Tensor, s: torch.Tensor, theta: torch.Tensor) -> torch.Tensor:
        """The membrane after this step's reset (no gradient through the reset, as snnTorch does)."""
        if self.reset == "subtract":
            return v - s.detach() * theta
        return v * (1.0 - s.detach())

    def extra_repr(self) -> str:
        r = "" if self.reset == "zero" else f", reset={self.reset}"
        return f"beta={float(self.effective_beta()):.4g}, threshold={float(self.effective_threshold()):.4g}{r}"
