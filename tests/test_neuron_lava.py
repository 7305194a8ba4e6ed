"""The student's LIF and Lava's LIF (floating_pt) give identical spike trains for the same input currents."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from neurokd.models.neurons import LIF


def _lava_lif_spikes(currents: np.ndarray, beta: float, theta: float) -> np.ndarray:
    """Currents (n, steps) -> RingBuffer -> Dense(identity, graded) -> LIF(du=1, dv=1-beta, vth=theta) -> sink."""
    import neurokd.hardware  # noqa: F401  (makes lava importable on Python 3.11)
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF as LavaLIF

    n, steps = currents.shape
    # Dense delivers its input one step late: one extra step at the end lets the last current through
    data = np.concatenate([currents, np.zeros((n, 1))], axis=1)
    src = Source(data=data)
    dense = Dense(weights=np.eye(n), num_message_bits=24)  # graded input: a_out = W @ s_in
    lif = LavaLIF(shape=(n,), du=1.0, dv=1.0 - beta, vth=theta, bias_mant=np.zeros(n))
    sink = Sink(shape=(n,), buffer=steps + 1)
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    try:
        lif.run(condition=RunSteps(num_steps=steps + 1), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
        out = sink.data.get().copy()
    finally:
        lif.stop()
    return out[:, 1:]  # drop the Dense delay step


@pytest.mark.lava
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_lava_float_lif_matches_student_lif_spikes(seed):
    rng = np.random.default_rng(seed)
    n, steps = 24, 50
    beta = rng.integers(50, 1000) / 1024  # dyadic: 1 - (1 - beta) == beta exactly in float64
    neuron = LIF(beta=beta, threshold=float(rng.uniform(0.5, 1.5))).double()
    theta = float(neuron.effective_threshold())
    currents = rng.normal(0.35, 0.6, size=(n, steps)) * theta
    with torch.no_grad():
        student = neuron(torch.from_numpy(currents.T.copy()).unsqueeze(1)).squeeze(1).numpy().T  # (n, steps)
    lava = _lava_lif_spikes(currents, float(neuron.effective_beta()), theta)
    assert 0.05 < student.mean() < 0.6  # a real test: many spikes, many silences
    np.testing.assert_array_equal(lava, student)
