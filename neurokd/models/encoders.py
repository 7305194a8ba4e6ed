"""The student's input as the chip will take it (``--input-mode``), computed exactly as deployment computes it.

Three training-time input modes (the deploy-time modes of :mod:`neurokd.hardware.placement.inputs`):

* ``graded`` -- direct encoding: the input values themselves enter the first synapses at every step (graded
  spikes from the host; Loihi 2 only, Loihi 1 receives binary spikes: ``../shared/research/SILICON.md``
  section 4).
* ``bias`` -- an **on-chip input layer**, part of the student: one non-leaky integrate-and-fire neuron per input
  value, driven by the value as its bias (Intel's PilotNet LIF and NxTF way, Rueckauer et al., ACM JETC 2022),
  binary spikes into the first synapses. Its neuron is the one :func:`neurokd.hardware.engines.encoding.bias_layer`
  runs in Lava's fixed-point LIF arithmetic: the value quantised to the bias mantissa ``q = round(x' (2**bits -
  1))`` (``x'`` below), ``v <- v + q``, a spike where ``v > 2**bits - 2``, then ``v = 0``. Here that runs in
  float on whole numbers (exact in float32 below 2**24, so the training spikes are the deployed spikes, bit for
  bit). The layer has no weight of its own to learn: the network behind it is trained end to end on its spikes
  (the surrogate gradient runs through every LIF behind it); the teacher sees the raw input.
* ``spikes`` -- **binary spikes from the host**, deterministic error-feedback rate code
  (:func:`neurokd.hardware.engines.encoding.rate_spikes` ``deterministic``): an accumulator starting at 0.5 adds
  ``x'`` each step and sends a spike, less 1, on reaching 1, so a value sends ``round(T x')`` spikes in ``T``
  steps with no noise and no seed. Chosen over Bernoulli spikes for every dataset: with the few steps neurokd's
  students run (T = 4 on digits and synth-kws) a Bernoulli count has a standard deviation of up to 1 spike in 4,
  noise the chip would add to every inference and that makes accuracy and cost vary run to run.

``x' = (x - offset) / full_scale`` clipped to [0, 1]: ``offset`` is the training set's minimum where it is below
zero (else 0) and ``full_scale`` its range (``--input-clip c``: the ``c`` and ``1 - c`` quantiles instead, the
values beyond clipped), both measured on the training split before training and kept in the
student's state (``encoder.offset``, ``encoder.full_scale``) and in the exported graph's metadata, so deployment
encodes with the same numbers. Signed inputs (MFCC features of synth-kws and GSC) are shifted rather than split
into on/off pairs of neurons: a spike has no sign, and the shift keeps one neuron per value (an on/off pair
doubles the input layer's neurons and the first synapses' fan-in, and so their cores) at the price of a resting
rate for the value 0. Digits (pixel intensities, 0 and up) are not shifted.

**Few levels, and what keeps accuracy.** At ``T`` steps a value becomes one of ``T + 1`` spike counts (5 at
``T = 4``). Digits' pixels take 17 values, so little is lost. Standardised MFCCs (synth-kws, GSC) run from about
-6 to +5 standard deviations, so the range from minimum to maximum leaves about 3 standard deviations per
level, and most values fall on the middle count. Two defaults of those datasets help (``neurokd/config.py``),
measured on synth-kws (kd-lr, seed 0, 60 epochs, ``spikes``; the graded student scores 94.3 %):

* ``--input-clip 0.05`` takes the range from the 5 % and 95 % quantiles: 77.0 % -> 84.3 % test accuracy (0.01:
  78.3 %; 0.1: 86.3 %).
* ``--input-dither`` starts each value's accumulator (``spikes``) or potential (``bias``) at a random phase in
  training only. A value ``x'`` then sends ``floor(T x')`` or ``ceil(T x')`` spikes, ``T x'`` on average, rather
  than always ``round(T x')``. This is dithered quantisation, used as augmentation: the network does not fit the
  rounding of the fixed code. With 0.05 it gave 84.3 % -> 90.7 %. The student reached 100 % on the training split
  without it. Validation, test, export and the chip use the fixed phase, so the reported accuracy is the
  deployed encoding's.

**A trainable input gain** (``neurokd train --lambda-input L``). The input layer's spikes set the first synapses'
work (on Loihi 1 the core holding the first layer is the bottleneck: its synaptic operations are input spikes x
the first layer's fan-out), yet the encoder above has no weight to regularise. ``log_gain``, one scalar, scales the
full scale: the effective full scale is ``fs = full_scale * exp(log_gain)``, computed as one float64 number, and
``x' = clamp((x - offset) / fs, 0, 1)``; a larger ``fs`` sends fewer spikes for the same value. The spikes keep
their exact 0/1 values; their gradient is a straight-through estimate (Bengio, Leonard and Courville,
arXiv:1308.3432), ``d s_t / d x' = 1`` per step: the rate code sends ``round(T x')`` spikes in ``T`` steps (slope
``T``, 1 per step) and the bias layer's rate is about ``q / (2**bits - 1) = x'`` per step (exactly so at full scale
and at ``1/k``; the staircase ``1 / ceil(1 / x')`` in between). The gain is learned only when ``lambda_input > 0``
(the loss then holds ``lambda_input * r_in``, :func:`neurokd.losses.input_rate`), driven by that penalty and by the
task loss through the network behind the encoder; with ``lambda_input = 0`` it stays 0 and ``fs = full_scale``
exactly, today's encoder bit for bit. :meth:`InputEncoder.metadata` exports the effective ``fs`` as
``input_full_scale``, so deployment (:mod:`neurokd.hardware.engines.encoding`) encodes with the learnt scale and
sends the training spikes bit for bit. A state saved before the gain existed loads with ``log_gain = 0``.
"""

from __future__ import annotations

import torch
from torch import nn

INPUT_MODES = ("graded", "bias", "spikes")
#: bits of the bias mantissa / rate resolution (deploy's ``input_bits`` default, the 8-bit graded payload's width)
INPUT_BITS = 8


class InputEncoder(nn.Module):
    """``bias`` or ``spikes`` input (module docstring): ``forward(x, T)`` -> ``(T, B, ...)`` 0/1 spikes."""

    def __init__(self, mode: str, bits: int = INPUT_BITS) -> None:
        super().__init__()
        if mode not in ("bias", "spikes"):
            raise ValueError(f"InputEncoder mode must be bias or spikes, got {mode!r}")
        self.mode = mode
        self.bits = int(bits)
        self.register_buffer("offset", torch.zeros((), dtype=torch.float64))
        self.register_buffer("full_scale", torch.ones((), dtype=torch.float64))
        #: training only: start each value's accumulator (``spikes``) or potential (``bias``) at a random phase
        #: (module docstring); evaluation and deployment always start at the fixed phase
        self.dither = False
        #: the learnable input gain (module docstring): learned only when switched on by ``learn_gain``
        self.log_gain = nn.Parameter(torch.zeros(()), requires_grad=False)

    def learn_gain(self, on: bool = True) -> None:
        """Train ``log_gain`` (``neurokd train --lambda-input`` > 0) or hold it."""
        self.log_gain.requires_grad_(bool(on))

    def _load_from_state_dict(self, state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                              error_msgs):
        # a state saved before the input gain existed: gain 1 (log_gain 0), the encoder it was trained with
        if prefix + "offset" in state_dict and prefix + "log_gain" not in state_dict:
            state_dict[prefix + "log_gain"] = torch.zeros((), dtype=self.log_gain.dtype)
        super()._load_from_state_dict(state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys,
                                      error_msgs)

    @torch.no_grad()
    def set_range(self, x: torch.Tensor, clip: float = 0.0) -> None:
        """Take ``offset`` and ``full_scale`` from the training inputs ``x`` (module docstring): their minimum (if
        below 0) and maximum, or with ``clip > 0`` their ``clip`` and ``1 - clip`` quantiles (values beyond are
        clipped), taken on at most 2**20 values picked at a fixed stride, so the same data give the same range."""
        x = x.detach().double().flatten()
        if not x.numel():
            lo, hi = 0.0, 1.0
        elif clip > 0:
            sample = x[:: max(1, x.numel() // 2 ** 20)]
            lo = min(float(torch.quantile(sample, clip)), 0.0)
            hi = float(torch.quantile(sample, 1.0 - clip))
        else:
            lo, hi = min(float(x.min()), 0.0), float(x.max())
        self.offset.fill_(lo)
        self.full_scale.fill_(hi - lo if hi > lo else 1.0)

    def effective_full_scale(self) -> torch.Tensor:
        """``fs = full_scale * exp(log_gain)``, one float64 number (differentiable in ``log_gain``)."""
        return self.full_scale * torch.exp(self.log_gain.double())

    def normalised(self, x: torch.Tensor) -> torch.Tensor:
        """``x'`` in float64 (the host's arithmetic in :mod:`~neurokd.hardware.engines.encoding`)."""
        return ((x.double() - self.offset) / self.effective_full_scale()).clamp(0.0, 1.0)

    @property
    def vth(self) -> int:
        """The bias layer's threshold mantissa (one below full scale, as ``bias_layer``)."""
        return 2 ** self.bits - 2

    def forward(self, x: torch.Tensor, timesteps: int) -> torch.Tensor:
        p = self.normalised(x)
        hard = p.detach()                              # the spikes themselves: whole-number arithmetic, no gradient
        out = []
        if self.mode == "bias":
            q = torch.round(hard * (2 ** self.bits - 1))      # round half to even, as numpy.rint
            v = torch.zeros_like(q)
            if self.dither and self.training:              # a whole-number start in [0, threshold]
                v = torch.floor(torch.rand_like(q) * (self.vth + 1))
            for _ in range(timesteps):
                v = v + q
                s = (v > self.vth).double()
                v = v * (1.0 - s)
                out.append(s)
        else:
            acc = torch.rand_like(hard) if self.dither and self.training else torch.full_like(hard, 0.5)
            for _ in range(timesteps):
                acc = acc + hard
                s = (acc >= 1.0).double()
                acc = acc - s
                out.append(s)
        spikes = torch.stack(out)
        if p.requires_grad:     # straight-through: exact 0/1 forward, d s_t / d x' = 1 per step backward
            spikes = spikes + (p - p.detach())       # p - p is exactly 0.0: the values stay 0 and 1
        return spikes.to(x.dtype if x.is_floating_point() else torch.float32)

    def metadata(self) -> dict:
        """What deployment needs to encode the same way (the exported graph's metadata)."""
        return {"input_mode": self.mode, "input_offset": float(self.offset),
                "input_full_scale": float(self.effective_full_scale().detach()), "input_bits": self.bits}

    def extra_repr(self) -> str:
        return (f"mode={self.mode}, bits={self.bits}, offset={float(self.offset):g}, "
                f"full_scale={float(self.effective_full_scale().detach()):g}")


__all__ = ["INPUT_MODES", "INPUT_BITS", "InputEncoder"]
