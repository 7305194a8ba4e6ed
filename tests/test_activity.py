"""The activity counter: spikes per neuron per time step per layer, pooled total and per sample, on hand-made spikes."""

from __future__ import annotations

import pytest
import torch

from neurokd.activity import ActivityCounter


def _batch(fill_a: float, fill_b: float, B: int = 2):
    a = torch.zeros(3, B, 4)          # T=3, 4 neurons
    a[0, 0, :2] = fill_a              # 2 spikes at t=0 in sample 0 (if fill 1)
    b = torch.zeros(3, B, 2, 5)       # T=3, 10 neurons (2x5)
    b[:, -1, 0, :] = fill_b           # 5 neurons x 3 steps in the last sample
    return {"lif1": a, "lif2": b}


def test_counts_rates_per_layer_pooled_total_and_spikes_per_sample_over_batches():
    c = ActivityCounter()
    c.update(_batch(1.0, 1.0, B=2))   # lif1: 2 spikes / (3*2*4=24); lif2: 15 / (3*2*10=60)
    c.update(_batch(1.0, 0.0, B=3))   # lif1: 2 / 36;                lif2: 0 / 90
    assert c.spikes == {"lif1": 4.0, "lif2": 15.0}
    assert c.neuron_steps == {"lif1": 60, "lif2": 150}
    assert c.samples == 5 and c.timesteps == 3
    assert c.per_layer() == pytest.approx({"lif1": 4 / 60, "lif2": 15 / 150})
    assert c.total() == pytest.approx((4 + 15) / (60 + 150))  # pooled, not the mean of the rates
    assert c.total() != pytest.approx((4 / 60 + 15 / 150) / 2)
    assert c.spikes_per_sample() == pytest.approx(19 / 5)
    assert c.spikes_per_sample_per_layer() == pytest.approx({"lif1": 4 / 5, "lif2": 3.0})
    assert c.as_dict() == {"total": c.total(), "per_layer": c.per_layer()}
    rep = c.report()
    assert rep["neurons_per_layer"] == {"lif1": 4, "lif2": 10} and rep["samples"] == 5


def test_counter_keeps_no_graph_and_counts_in_float64():
    s = torch.ones(2, 3, 4, requires_grad=True) * 1.0
    c = ActivityCounter()
    c.update({"lif1": s})
    stored = c._spikes["lif1"]
    assert not stored.requires_grad and stored.dtype == torch.float64
    assert c.spikes["lif1"] == 24.0


def test_counter_refuses_layers_with_different_time_or_batch():
    c = ActivityCounter()
    with pytest.raises(ValueError):
        c.update({"a": torch.zeros(2, 3, 4), "b": torch.zeros(2, 2, 4)})
    c.update({"a": torch.zeros(2, 3, 4)})
    with pytest.raises(ValueError):
        c.update({"a": torch.zeros(3, 3, 4)})


def test_empty_counter_reports_zero_and_merge_adds_counts():
    assert ActivityCounter().total() == 0.0 and ActivityCounter().spikes_per_sample() == 0.0
    a, b = ActivityCounter(), ActivityCounter()
    a.update(_batch(1.0, 1.0))
    b.update(_batch(1.0, 0.0, B=3))
    a.merge(b)
    assert a.spikes == {"lif1": 4.0, "lif2": 15.0} and a.samples == 5
    assert a.total() == pytest.approx(19 / 210)


def test_numpy_spikes_count_like_torch_spikes():
    a, b = ActivityCounter(), ActivityCounter()
    batch = _batch(1.0, 1.0)
    a.update(batch)
    b.update({k: v.numpy().astype(bool) for k, v in batch.items()})
    assert a.report() == b.report()
