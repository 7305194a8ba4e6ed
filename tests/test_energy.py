"""Energy per inference: counted events times the cost table of each energy model."""

from __future__ import annotations

import numpy as np
import pytest

from neurokd.errors import NeurokdError
from neurokd.hardware.cost.counting import Connection, Geometry, Population, activity_from_counts, activity_from_rasters, count, teacher_ops
from neurokd.hardware.cost.energy import ENERGY_MODELS, SOURCES, Cost, EnergyModel, energy, get_model


def tiny_network() -> Geometry:
    """input(3) -> fc (2 of 6 weights zero) -> lif(2) -> readout (2x2, one zero) -> output."""
    return Geometry([
        Population("input", "input", (3,), spiking=False, stateful=False),
        Connection("fc", "dense", "input", "lif", (3,), weight=np.array([[0.5, 0.0, -1.0], [0.2, 0.0, 0.3]])),
        Population("lif", "lif", (2,)),
        Connection("readout", "dense", "lif", None, (2,), weight=np.array([[1.0, 0.0], [2.0, 3.0]])),
    ])


def tiny_counts():
    net = tiny_network()
    T = 2
    x = np.array([[0.5, 0.7, 0.0]])  # one sample, direct encoding
    spikes = np.array([[[1, 0]], [[1, 1]]])  # (T, B, 2)
    return net, count(net, activity_from_rasters(net, {"input": np.stack([x] * T), "lif": spikes}))


def test_counts_of_the_tiny_network_by_hand():
    net, c = tiny_counts()
    # graded events: input 0 (fan-out 2) and input 1 (fan-out 0), each at 2 steps -> 4 MACs
    assert c.row("input").graded_events == 4 and c.row("fc").macs == 4
    # lif spikes: neuron 0 twice (fan-out 2), neuron 1 once (fan-out 1) -> 5 SynOps
    assert c.row("lif").spikes == 3 and c.row("readout").synops == 5
    # lif updates: 2 neurons x 2 steps; both receive input from input 0 at both steps -> all active
    assert c.row("lif").neuron_updates == 4 and c.row("lif").active_updates == 4


def test_loihi_energy_is_synops_and_updates_times_table_2():
    net, c = tiny_counts()
    e = energy(c, "loihi", teacher_ops(net))
    assert e.layer("readout").pj == pytest.approx(5 * 23.6)
    assert e.layer("fc").pj == pytest.approx(4 * 23.6)  # graded events charged as synaptic ops (stated)
    assert e.layer("lif").pj == pytest.approx(4 * 81.0)
    assert e.total_pj == pytest.approx(9 * 23.6 + 4 * 81.0)
    assert e.total_pj_per_step == pytest.approx(e.total_pj / 2)
    assert e.teacher_pj is None  # Loihi does not price the ANN teacher
    # with routing inside one tile, every emitted event (3 spikes + 4 graded) pays 1.7 pJ
    tile = energy(c, "loihi-tile", teacher_ops(net))
    assert tile.total_pj - e.total_pj == pytest.approx(7 * 1.7)


def test_inactive_updates_cost_less_and_unknown_activity_is_an_upper_bound():
    net = tiny_network()
    spikes = np.zeros((3, 1, 2))
    x = np.zeros((3, 1, 3))  # nothing happens: every update inactive
    c = count(net, activity_from_rasters(net, {"input": x, "lif": spikes}))
    e = energy(c, "loihi")
    assert e.total_pj == pytest.approx(6 * 52.0) and not e.updates_upper_bound
    c_sum = count(net, activity_from_counts(net, {"input": [0, 0, 0], "lif": [0, 0]}, samples=1, steps=3))
    e_sum = energy(c_sum, "loihi")
    assert e_sum.total_pj == pytest.approx(6 * 81.0) and e_sum.updates_upper_bound


def test_45nm_student_vs_teacher_uses_ac_and_mac_energies():
    net, c = tiny_counts()
    t = teacher_ops(net)
    assert t.total_macs == 3 * 2 + 2 * 2  # every weight of the same graph, zeros included
    e = energy(c, "45nm", t)
    assert e.total_pj == pytest.approx(5 * 0.9 + 4 * 4.6)  # neuron updates not charged
    assert e.teacher_pj == pytest.approx(10 * 4.6)
    e8 = energy(c, "45nm-int8", t)
    assert e8.total_pj == pytest.approx(5 * 0.03 + 4 * 0.23) and e8.teacher_pj == pytest.approx(10 * 0.23)


def test_every_cost_names_its_source_and_a_model_is_one_table_entry():
    for m in ENERGY_MODELS.values():
        for name, cost in m.costs().items():
            assert cost.source is None or cost.source in SOURCES, (m.name, name)
            if cost.pj:
                assert cost.source is not None and ("row" in cost.cite() or "entr" in cost.cite()), (m.name, name)
    assert "Table 2" in get_model("loihi").synop.cite() and "IEEE Micro" in SOURCES["davies2018"].full
    assert get_model("loihi").update_active.pj == 81.0 and get_model("loihi").update_inactive.pj == 52.0
    assert "ISSCC 2014" in SOURCES[get_model("45nm").mac.source].full
    custom = EnergyModel("toy", "toy", Cost(1, None, "test"), Cost(2, None, "test"), Cost(0, None, "t"), Cost(0, None, "t"))
    net, c = tiny_counts()
    assert energy(c, custom).total_pj == pytest.approx(5 * 1 + 4 * 2)
    with pytest.raises(NeurokdError, match="unknown energy model"):
        get_model("truenorth")
