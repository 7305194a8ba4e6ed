"""The training losses: cross-entropy, distillation, activation and logits regularisation, and their sums.

Notation: ``z_s`` student logits ``(B, C)`` (readout averaged over the ``T`` steps), ``z_t``
teacher ANN logits ``(B, C)``, ``y`` labels ``(B,)``, ``s^l`` the spikes of LIF layer ``l``
``(T, B, ...)``. Every loss is a batch mean.

A *method* names which terms are added (Louis et al., ICANN 2024, as read in PAPER.md):

============  ===========================================================================
method        loss
============  ===========================================================================
baseline      CE(z_s, y)
kd            KD(z_s, z_t, y)
ar            CE + lambda_act * AR(s)
lr            CE + lambda_logits * LR(z_s)
kd-ar         KD + lambda_act * AR(s)
kd-lr         KD + lambda_logits * LR(z_s)
kd-ar-lr      KD + lambda_act * AR(s) + lambda_logits * LR(z_s)
============  ===========================================================================

Any method may add ``lambda_input * r_in`` (:func:`input_rate`), the spike rate of a student's input layer /
host encoder (``--input-mode bias|spikes``, :mod:`neurokd.models.encoders`): its spikes set the first synapses'
work, and the encoder's trainable gain is what the term moves.
"""

from __future__ import annotations

from typing import Mapping

import torch
import torch.nn.functional as F

from neurokd.errors import NeurokdError

METHODS: tuple[str, ...] = ("baseline", "kd", "ar", "lr", "kd-ar", "kd-lr", "kd-ar-lr")


def method_terms(method: str) -> tuple[bool, bool, bool]:
    """``(uses_kd, uses_activation_reg, uses_logits_reg)`` for a method name of :data:`METHODS`."""
    if method not in METHODS:
        raise NeurokdError(f"unknown method {method!r}; choose one of: {', '.join(METHODS)}")
    parts = method.split("-")
    return "kd" in parts, "ar" in parts, "lr" in parts


def cross_entropy(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    r"""Cross-entropy, batch mean: ``CE = -1/B sum_b log softmax(z_b)[y_b]``."""
    return F.cross_entropy(logits.float(), labels)


def soft_targets(teacher_logits: torch.Tensor, temperature: float) -> tuple[torch.Tensor, torch.Tensor]:
    r"""The teacher's soft targets ``p = softmax(z_t / T)`` ``(B, C)`` and their entropies
    ``H(p_b) = -sum_c p_b,c log p_b,c`` ``(B,)``, without gradient.

    Training computes them once per dataset when the teacher logits are cached.
    """
    with torch.no_grad():
        log_p = F.log_softmax(teacher_logits.float() / float(temperature), dim=-1)
        p = log_p.exp()
        return p, -(p * log_p).sum(-1)


def kd_loss(
    student_logits: torch.Tensor,
    teacher_logits: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    r"""Hinton's distillation loss, batch mean::

        KD = (1 - alpha) * CE(z_s, y)
             + alpha * T^2 * 1/B sum_b KL( softmax(z_t,b / T) || softmax(z_s,b / T) )
        KL(p || q) = sum_c p_c (log p_c - log q_c)

    ``T^2`` keeps the soft term's gradient scale independent of the temperature. The teacher
    logits carry no gradient. See :func:`kd_loss_from_targets` for how it is computed.
    """
    p, entropy = soft_targets(teacher_logits, temperature)
    return kd_loss_from_targets(student_logits, p, entropy, labels, temperature, alpha)


def kd_loss_from_targets(
    student_logits: torch.Tensor,
    p: torch.Tensor,
    entropy: torch.Tensor,
    labels: torch.Tensor,
    temperature: float,
    alpha: float,
) -> torch.Tensor:
    r""":func:`kd_loss` from precomputed soft targets (:func:`soft_targets`), as cross-entropies
    with soft targets (one fused op each)::

        KL(p || q) = CE(z_s / T, p) - H(p),   CE(z, p) = -sum_c p_c log softmax(z)_c

    ``H(p)`` is a constant: it changes the loss value, not its gradient. At ``T = 1`` both terms
    are one cross-entropy with the mixed target ``(1 - alpha) onehot(y) + alpha p``.
    """
    T = float(temperature)
    zs = student_logits.float()
    if T == 1.0 and 0.0 < alpha < 1.0:
        with torch.no_grad():
            target = torch.lerp(F.one_hot(labels, zs.shape[-1]).to(p.dtype), p, alpha)
        return F.cross_entropy(zs, target) - alpha * entropy.mean()
    loss = None
    if alpha > 0.0:
        soft = F.cross_entropy(zs if T == 1.0 else zs / T, p) - entropy.mean()
        loss = (alpha * T * T) * soft
    if alpha < 1.0:
        hard = (1.0 - alpha) * F.cross_entropy(zs, labels)
        loss = hard if loss is None else loss + hard
    return loss


def layer_rates(spikes: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    r"""Per-sample spike rate of each layer, ``(B,)``, differentiable::

        r^l_b = 1 / (T * N_l) * sum_t sum_n s^l[t, b, n]

    i.e. spikes per neuron per time step of sample ``b`` in layer ``l`` (``N_l`` neurons).
    """
    out = {}
    for name, s in spikes.items():
        B = s.shape[1]
        out[name] = s.float().transpose(0, 1).reshape(B, -1).mean(1)
    return out


def activation_reg(spikes: Mapping[str, torch.Tensor], p: int = 1) -> torch.Tensor:
    r"""Activation regularisation: mean over spiking layers of the L1 or L2 norm of the spike rate::

        AR = 1/L sum_l 1/B sum_b |r^l_b|^p          (p = 1 or 2)

    with ``r^l_b`` of :func:`layer_rates` (spikes per neuron per time step of sample ``b`` in
    layer ``l``, in [0, 1]). ``p = 1`` is the mean rate itself; ``p = 2`` squares each sample's
    rate, so dense samples are penalised more. Each layer weighs the same, whatever its size.
    """
    if p not in (1, 2):
        raise NeurokdError(f"activation regularisation norm must be 1 or 2, got {p}")
    if not spikes:
        raise NeurokdError("activation regularisation needs at least one spiking layer")
    terms = [r.abs().pow(p).mean() for r in layer_rates(spikes).values()]
    return torch.stack(terms).mean()


def input_rate(input_spikes: torch.Tensor) -> torch.Tensor:
    r"""The input layer's mean spike rate, batch mean, differentiable (through the encoder's straight-through
    gradient, :mod:`neurokd.models.encoders`)::

        r_in = 1 / (B * T * N_in) * sum_b sum_t sum_n s_in[t, b, n]

    spikes per input neuron per time step, in [0, 1], for the input spikes ``s_in`` ``(T, B, ...)``.
    """
    return input_spikes.float().mean()


def logits_reg(logits: torch.Tensor, p: int = 2) -> torch.Tensor:
    r"""Logits regularisation: ``LR = 1/B sum_b ||z_b||_p^p = 1/B sum_b sum_c |z_b,c|^p`` (L2 default).

    The best public guess for Louis et al.'s "logits regularisation" is this L2 penalty with
    ``lambda_logits = 0.01`` (PAPER.md).
    """
    if p not in (1, 2):
        raise NeurokdError(f"logits regularisation norm must be 1 or 2, got {p}")
    z = logits.float()
    return (z.square() if p == 2 else z.abs()).sum() / z.shape[0]


def total_loss(
    method: str,
    student_logits: torch.Tensor,
    labels: torch.Tensor,
    spikes: Mapping[str, torch.Tensor] | None = None,
    teacher_logits: torch.Tensor | None = None,
    *,
    teacher_soft: tuple[torch.Tensor, torch.Tensor] | None = None,
    temperature: float = 4.0,
    alpha: float = 0.5,
    lambda_act: float = 0.0,
    lambda_logits: float = 0.0,
    act_norm: int = 1,
    logits_norm: int = 2,
    input_spikes: torch.Tensor | None = None,
    lambda_input: float = 0.0,
) -> tuple[torch.Tensor, dict[str, torch.Tensor]]:
    """The loss of ``method`` (see the table above) and its parts, detached (for logging).

    Returns ``(loss, {"task": CE or KD, "act": AR, "logits": LR, "input": r_in})``; a term the method does not
    use is absent from the dict and not computed. KD methods take either ``teacher_logits`` or
    ``teacher_soft = soft_targets(teacher_logits, temperature)`` (precomputed, same result).
    ``lambda_input > 0`` adds ``lambda_input * r_in`` (:func:`input_rate` of ``input_spikes``) to any method.
    """
    use_kd, use_ar, use_lr = method_terms(method)
    parts: dict[str, torch.Tensor] = {}
    if use_kd:
        if teacher_soft is None:
            if teacher_logits is None:
                raise NeurokdError(f"method {method!r} needs teacher logits")
            teacher_soft = soft_targets(teacher_logits, temperature)
        loss = kd_loss_from_targets(student_logits, *teacher_soft, labels, temperature, alpha)
    else:
        loss = cross_entropy(student_logits, labels)
    parts["task"] = loss.detach()
    if use_ar:
        if spikes is None:
            raise NeurokdError(f"method {method!r} needs the student's spikes")
        ar = activation_reg(spikes, act_norm)
        parts["act"] = ar.detach()
        loss = loss + lambda_act * ar
    if use_lr:
        lr = logits_reg(student_logits, logits_norm)
        parts["logits"] = lr.detach()
        loss = loss + lambda_logits * lr
    if lambda_input > 0:
        if input_spikes is None:
            raise NeurokdError("lambda_input regularises the input layer's spikes: the student has no input layer "
                               "(train with --input-mode bias or spikes)")
        r_in = input_rate(input_spikes)
        parts["input"] = r_in.detach()
        loss = loss + lambda_input * r_in
    return loss, parts
