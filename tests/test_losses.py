"""The training losses equal their docstring formulas, checked against hand computations."""

from __future__ import annotations

import math

import pytest
import torch

from neurokd.errors import NeurokdError
from neurokd.losses import (METHODS, activation_reg, cross_entropy, kd_loss, layer_rates, logits_reg,
                            method_terms, soft_targets, total_loss)


def _softmax(z):
    m = max(z)
    e = [math.exp(v - m) for v in z]
    return [v / sum(e) for v in e]


def test_cross_entropy_is_mean_negative_log_softmax_of_the_label():
    z = torch.tensor([[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]])
    y = torch.tensor([1, 0])
    hand = -(math.log(_softmax([1, 2, 0])[1]) + math.log(_softmax([0.5, -1, 3])[0])) / 2
    assert cross_entropy(z, y).item() == pytest.approx(hand, rel=1e-6)  # float32 vs float64 by hand


@pytest.mark.parametrize("T,alpha", [(2.0, 0.3), (1.0, 0.3), (1.0, 0.0), (1.0, 1.0), (4.0, 1.0), (0.5, 0.7)])
def test_kd_loss_matches_hand_computation(T, alpha):
    zs = [[1.0, 2.0, 0.0], [0.5, -1.0, 3.0]]
    zt = [[3.0, 0.0, -1.0], [0.0, 0.0, 2.0]]
    y = [1, 2]
    ce = -sum(math.log(_softmax(zs[b])[y[b]]) for b in range(2)) / 2
    kl = 0.0
    for b in range(2):
        p = _softmax([v / T for v in zt[b]])
        q = _softmax([v / T for v in zs[b]])
        kl += sum(pc * (math.log(pc) - math.log(qc)) for pc, qc in zip(p, q))
    kl /= 2
    hand = (1 - alpha) * ce + alpha * T * T * kl
    got = kd_loss(torch.tensor(zs), torch.tensor(zt), torch.tensor(y), T, alpha)
    assert got.item() == pytest.approx(hand, rel=1e-5)  # float32
    # precomputed soft targets (as training caches them) give the same loss
    soft = soft_targets(torch.tensor(zt), T)
    cached, _ = total_loss("kd", torch.tensor(zs), torch.tensor(y), teacher_soft=soft, temperature=T, alpha=alpha)
    assert cached.item() == pytest.approx(hand, rel=1e-5)  # float32


def test_kd_loss_limits_alpha_zero_is_ce_and_equal_logits_leave_only_ce():
    zs = torch.tensor([[1.0, -2.0, 0.5]])
    y = torch.tensor([0])
    assert kd_loss(zs, torch.randn(1, 3), y, 4.0, 0.0).item() == pytest.approx(cross_entropy(zs, y).item())
    assert kd_loss(zs, zs.clone(), y, 3.0, 1.0).item() == pytest.approx(0.0, abs=1e-7)


@pytest.mark.parametrize("T", [1.0, 2.0])
def test_kd_loss_gradient_is_the_hinton_gradient_and_none_reaches_the_teacher(T):
    torch.manual_seed(0)
    zs = torch.randn(4, 5, requires_grad=True)
    zt = torch.randn(4, 5, requires_grad=True)
    y = torch.tensor([0, 1, 2, 3])
    alpha = 0.4
    kd_loss(zs, zt, y, T, alpha).backward()
    assert zt.grad is None
    # d/dz_s = [(1 - alpha) (softmax(z_s) - onehot) + alpha T (softmax(z_s/T) - softmax(z_t/T))] / B
    with torch.no_grad():
        hand = ((1 - alpha) * (zs.softmax(1) - torch.nn.functional.one_hot(y, 5))
                + alpha * T * ((zs / T).softmax(1) - (zt / T).softmax(1))) / 4
    assert torch.allclose(zs.grad, hand, atol=1e-6)  # autograd vs the formula: float32 rounding


def _spikes():
    # layer a: T=2, B=2, 3 neurons; sample 0 fires 3 of 6 neuron-steps, sample 1 fires 1 of 6
    a = torch.tensor([[[1.0, 0, 1], [0, 0, 0]],
                      [[1.0, 0, 0], [0, 1, 0]]])
    # layer b: T=2, B=2, 2x2 neurons; sample 0 fires 8 of 8, sample 1 fires 0
    b = torch.zeros(2, 2, 2, 2)
    b[:, 0] = 1.0
    return {"lif1": a, "lif2": b}


def test_layer_rates_are_spikes_per_neuron_per_step_of_each_sample():
    r = layer_rates(_spikes())
    assert r["lif1"].tolist() == pytest.approx([3 / 6, 1 / 6])
    assert r["lif2"].tolist() == pytest.approx([1.0, 0.0])


def test_activation_reg_l1_and_l2_match_hand_computation():
    s = _spikes()
    l1 = ((3 / 6 + 1 / 6) / 2 + (1.0 + 0.0) / 2) / 2
    l2 = (((3 / 6) ** 2 + (1 / 6) ** 2) / 2 + (1.0 + 0.0) / 2) / 2
    assert activation_reg(s, 1).item() == pytest.approx(l1)
    assert activation_reg(s, 2).item() == pytest.approx(l2)
    with pytest.raises(NeurokdError):
        activation_reg(s, 3)


def test_logits_reg_is_batch_mean_of_the_p_norm_to_the_p():
    z = torch.tensor([[1.0, -2.0, 0.5], [0.0, 3.0, -1.0]])
    assert logits_reg(z).item() == pytest.approx(((1 + 4 + 0.25) + (0 + 9 + 1)) / 2)
    assert logits_reg(z, 1).item() == pytest.approx(((1 + 2 + 0.5) + (0 + 3 + 1)) / 2)


def test_total_loss_adds_exactly_the_terms_of_each_method():
    torch.manual_seed(0)
    zs, zt, y, s = torch.randn(3, 4), torch.randn(3, 4), torch.tensor([0, 3, 1]), _spikes()
    s = {k: torch.cat([v, v[:, :1]], 1) for k, v in s.items()}  # batch of 3
    kw = dict(temperature=2.0, alpha=0.4, lambda_act=0.7, lambda_logits=0.05, act_norm=1, logits_norm=2)
    ce, kd = cross_entropy(zs, y).item(), kd_loss(zs, zt, y, 2.0, 0.4).item()
    ar, lr = activation_reg(s, 1).item(), logits_reg(zs, 2).item()
    expected = {"baseline": ce, "kd": kd, "ar": ce + 0.7 * ar, "lr": ce + 0.05 * lr, "kd-ar": kd + 0.7 * ar,
                "kd-lr": kd + 0.05 * lr, "kd-ar-lr": kd + 0.7 * ar + 0.05 * lr}
    assert set(expected) == set(METHODS)
    for method, value in expected.items():
        loss, parts = total_loss(method, zs, y, s, zt, **kw)
        assert loss.item() == pytest.approx(value, rel=1e-6), method  # float32 terms summed in another order
        assert ("act" in parts) == method_terms(method)[1] and ("logits" in parts) == method_terms(method)[2]


def test_unknown_method_and_missing_teacher_are_one_line_errors():
    with pytest.raises(NeurokdError, match="unknown method"):
        method_terms("kd-xx")
    with pytest.raises(NeurokdError, match="teacher"):
        total_loss("kd", torch.zeros(1, 2), torch.tensor([0]))
