"""SynOps, fan-out and neuron-update counting on tiny networks counted by hand."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurokd.errors import NeurokdError
from neurokd.hardware.cost.counting import (
    Activity,
    Connection,
    Geometry,
    Population,
    activation_sparsity,
    footprint,
    activity_from_counts,
    activity_from_rasters,
    conv_fanout,
    count,
    dense_fanout,
    effective_synops,
    fanout,
    propagate_events,
    teacher_ops,
)

# 2 outputs x 3 inputs: input 0 reaches both outputs, input 1 none, input 2 one.
W32 = np.array([[0.5, 0.0, -1.0],
                [0.2, 0.0, 0.0]])


def dense_net(weight=W32) -> Geometry:
    return Geometry([
        Population("in", "lif", (3,)),
        Connection("fc", "dense", "in", "out", (3,), weight=weight),
        Population("out", "lif", (2,)),
    ])


def test_dense_fanout_counts_nonzero_weights_per_input():
    assert dense_fanout(W32).tolist() == [2, 0, 1]
    assert dense_fanout(W32, structural=True).tolist() == [2, 2, 2]


def test_dense_synops_are_spikes_times_nonzero_fanout():
    net = dense_net()
    # 2 samples x 4 steps; input 0 spiked 3 times, input 1 five times, input 2 twice (summed)
    act = activity_from_counts(net, {"in": [3, 5, 2], "out": [1, 0]}, samples=2, steps=4)
    c = count(net, act)
    fc = c.row("fc")
    assert fc.synops == (3 * 2 + 5 * 0 + 2 * 1) / 2  # 4 per sample
    assert fc.synapses == 3 and fc.structural_synapses == 6
    assert fc.dense_synops == 4 * 6  # every input, every step, every synapse
    assert fc.macs == 0
    out = c.row("out")
    assert out.spikes == 0.5 and out.neuron_updates == 2 * 4
    assert out.active_updates is None  # unknown from summed counts
    assert c.total.synops == 4 and c.total.spikes == (10 + 1) / 2


def test_graded_input_events_are_macs_not_synops():
    net = Geometry([
        Population("input", "input", (3,), spiking=False, stateful=False),
        Connection("fc", "dense", "input", "out", (3,), weight=W32),
        Population("out", "lif", (2,)),
    ])
    x = np.array([[0.3, 1.0, 0.0]])  # one sample, direct encoding over 2 steps
    rasters = {"input": np.stack([x, x]), "out": np.zeros((2, 1, 2))}
    c = count(net, activity_from_rasters(net, rasters))
    assert c.row("input").graded_events == 4  # 2 non-zero values x 2 steps
    assert c.row("input").neuron_updates == 0 and c.row("input").spikes == 0
    assert c.row("fc").macs == 2 * (2 + 0)  # steps x (fan-out of input 0 + fan-out of input 1)
    assert c.row("fc").synops == 0
    assert effective_synops(net, c) == {"Effective_MACs": 4.0, "Effective_ACs": 0.0, "Dense": 12.0}


def test_conv_border_fanout_with_padding_and_stride_counted_by_hand():
    # 3x3 input, 3x3 kernel, stride 2, padding 1 -> 2x2 output. Along one axis output q reads
    # rows 2q-1 .. 2q+1: row 0 is read once (q=0), row 1 twice (q=0, q=1), row 2 once (q=1).
    kernel = np.ones((1, 1, 3, 3))
    f = conv_fanout(kernel != 0, (1, 3, 3), stride=2, padding=1)
    assert f[0].tolist() == [[1, 2, 1], [2, 4, 2], [1, 2, 1]]
    # zero the centre tap: it was the only tap reading the four corners (2q, 2q')
    kernel[0, 0, 1, 1] = 0.0
    f = conv_fanout(kernel != 0, (1, 3, 3), stride=2, padding=1)
    assert f[0].tolist() == [[0, 2, 0], [2, 4, 2], [0, 2, 0]]
    conn = Connection("conv", "conv", "a", "b", (1, 3, 3), weight=kernel, stride=2, padding=1)
    assert conn.output_shape == (1, 2, 2)
    assert conn.synapses == 12 and conn.structural_synapses == 16


def test_conv_fanout_with_groups_and_dilation_counted_by_hand():
    # 1-D, 2 channels, groups=2 (channel c feeds output c only), kernel 2 taps, dilation 2, length 5
    # output q reads positions q and q+2 (q = 0..2): position 0 -> 1, 1 -> 1, 2 -> 2, 3 -> 1, 4 -> 1
    kernel = np.ones((2, 1, 2))
    kernel[1, 0, 1] = 0.0  # channel 1 loses its second tap (positions 2..4 read through it)
    f = conv_fanout(kernel != 0, (2, 5), dilation=2, groups=2)
    assert f[0].tolist() == [1, 1, 2, 1, 1]
    assert f[1].tolist() == [1, 1, 1, 0, 0]


def test_sum_pool_counts_the_synapses_it_is_built_from():
    pool = Connection("pool", "pool", "a", "b", (2, 5, 5), kernel_size=(3, 3), stride=2)
    assert pool.output_shape == (2, 2, 2)
    # along one axis windows [0..2] and [2..4]: position 2 is in both
    row = [1, 1, 2, 1, 1]
    assert fanout(pool)[1].tolist() == np.outer(row, row).tolist()
    assert Connection("p", "pool", "a", "b", (1, 4, 4), kernel_size=(2, 2)).synapses == 16  # stride = window


def test_conv_fanout_matches_onehot_convolution_on_random_geometries():
    rng = np.random.default_rng(0)
    checked = 0
    while checked < 60:
        nd = int(rng.integers(1, 3))
        g = int(rng.choice([1, 2]))
        cin, cout = g * int(rng.integers(1, 3)), g * int(rng.integers(1, 3))
        spatial = tuple(int(v) for v in rng.integers(3, 8, size=nd))
        k, s, d, p = (tuple(int(v) for v in rng.integers(lo, hi, size=nd)) for lo, hi in ((1, 4), (1, 4), (1, 3), (0, 3)))
        w = rng.normal(size=(cout, cin // g, *k))
        w[rng.random(w.shape) < 0.4] = 0.0
        conn = Connection("c", "conv", "a", "b", (cin, *spatial), weight=w, stride=s, padding=p, dilation=d, groups=g)
        if min(conn.output_shape[1:]) <= 0:
            continue
        conv = F.conv1d if nd == 1 else F.conv2d
        mask = torch.tensor((w != 0).astype(np.float64))
        n_in = int(np.prod((cin, *spatial)))
        onehot = torch.eye(n_in, dtype=torch.float64).reshape(n_in, cin, *spatial)
        y = conv(onehot, mask, stride=s, padding=p, dilation=d, groups=g)
        assert tuple(y.shape[1:]) == conn.output_shape
        assert np.array_equal(y.reshape(n_in, -1).sum(1).reshape(cin, *spatial).numpy(), fanout(conn))
        events = rng.integers(0, 2, size=(3, cin, *spatial))
        ref = conv(torch.tensor(events, dtype=torch.float64), mask, stride=s, padding=p, dilation=d, groups=g)
        assert np.array_equal(propagate_events(conn, events), ref.numpy())
        checked += 1


@pytest.mark.filterwarnings("ignore:Using padding='same'")
def test_same_padding_keeps_the_spatial_size():
    conn = Connection("c", "conv", "a", "b", (1, 6), weight=np.ones((1, 1, 4)), padding="same")
    assert conn.output_shape == (1, 6)
    ref = F.conv1d(torch.eye(6).reshape(6, 1, 6), torch.ones(1, 1, 4), padding="same").sum((1, 2))
    assert fanout(conn)[0].tolist() == ref.tolist()


def test_active_updates_count_neurons_that_received_input_or_spiked():
    # in(2) -> out(2); only in0 -> out0 is a synapse. One sample, 3 steps.
    net = Geometry([
        Population("in", "lif", (2,)),
        Connection("fc", "dense", "in", "out", (2,), weight=np.array([[1.0, 0.0], [0.0, 0.0]])),
        Population("out", "lif", (2,)),
    ])
    s_in = np.array([[1, 1], [0, 1], [1, 0]])[:, None, :]  # (T, B, 2)
    s_out = np.array([[0, 0], [0, 1], [0, 0]])[:, None, :]
    act = activity_from_rasters(net, {"in": s_in, "out": s_out})
    # out0 receives at t=0 and t=2; out1 receives nothing (zero weight) but spikes at t=1
    assert act.active_updates["out"] == 3
    # in has no incoming connection: it is active only when it spikes
    assert act.active_updates["in"] == 4
    c = count(net, act)
    assert c.row("out").active_updates == 3 and c.row("out").inactive_updates == 3
    assert c.row("fc").synops == 2  # in0 spiked twice, fan-out 1; in1's spikes reach no synapse
    # with a one-step delay, the spike at t=2 arrives after the window: only t=1 receives
    delayed = Geometry([net.layers[0], Connection("fc", "dense", "in", "out", (2,), weight=net.layers[1].weight, delay=1),
                       net.layers[2]])
    assert activity_from_rasters(delayed, {"in": s_in, "out": s_out}).active_updates["out"] == 2


def test_activities_of_batches_add_up_to_the_whole():
    net = dense_net()
    rng = np.random.default_rng(1)
    s_in, s_out = rng.integers(0, 2, size=(4, 6, 3)), rng.integers(0, 2, size=(4, 6, 2))
    whole = activity_from_rasters(net, {"in": s_in, "out": s_out})
    parts = activity_from_rasters(net, {"in": s_in[:, :2], "out": s_out[:, :2]}) + \
        activity_from_rasters(net, {"in": s_in[:, 2:], "out": s_out[:, 2:]})
    assert parts.samples == 6 and parts.active_updates == whole.active_updates
    assert all(np.array_equal(parts.events[k], whole.events[k]) for k in whole.events)
    assert isinstance(parts, Activity)


def test_activation_sparsity_and_teacher_macs_follow_neurobench_and_geometry():
    net = Geometry([
        Population("input", "input", (1, 3, 3), spiking=False, stateful=False),
        Connection("conv", "conv", "input", "lif1", (1, 3, 3), weight=np.ones((1, 1, 3, 3)), stride=2, padding=1),
        Population("lif1", "lif", (1, 2, 2)),
        Connection("pool", "pool", "lif1", "lif2", (1, 2, 2), kernel_size=(2, 2)),
        Population("lif2", "lif", (1, 1, 1)),
    ])
    rasters = {"input": np.ones((2, 1, 1, 3, 3)), "lif1": np.zeros((2, 1, 1, 2, 2)), "lif2": np.ones((2, 1, 1, 1, 1))}
    rasters["lif1"][0, 0, 0, 0, 0] = 1
    c = count(net, activity_from_rasters(net, rasters))
    # spiking populations: lif1 4 neurons, lif2 1 neuron, 2 steps -> 10 outputs, 3 spikes
    assert activation_sparsity(net, c) == pytest.approx(1 - 3 / 10)
    t = teacher_ops(net)
    assert t.macs == {"conv": 16} and t.adds == {"pool": 4}
    assert c.row("pool").synops == 1  # one lif1 spike, fan-out 1
    assert effective_synops(net, c)["Effective_ACs"] == 0  # NeuroBench does not count pooling


def test_geometry_errors_name_the_layer():
    with pytest.raises(NeurokdError, match="fc"):
        Connection("fc", "dense", "a", "b", (4,), weight=np.ones((2, 3)))
    with pytest.raises(NeurokdError, match="nowhere"):
        Geometry([Population("a", "lif", (3,)), Connection("fc", "dense", "nowhere", None, (3,), weight=W32)])
    with pytest.raises(NeurokdError, match="rasters missing"):
        activity_from_rasters(dense_net(), {"out": np.zeros((1, 1, 2))})


def test_a_pool_feeding_a_conv_directly_passes_graded_window_counts():
    # lif(1x4x4) -> sum pool 2x2 -> (no neurons) -> conv 1x1 -> lif2: the conv reads window sums
    geometry = Geometry([
        Population("lif", "lif", (1, 4, 4)),
        Connection("pool", "pool", "lif", "pooled", (1, 4, 4), kernel_size=(2, 2)),
        Population("pooled", "sumpool", (1, 2, 2), spiking=False, stateful=False),
        Connection("conv", "conv", "pooled", "lif2", (1, 2, 2), weight=np.full((3, 1, 1, 1), 0.5)),
        Population("lif2", "lif", (3, 2, 2)),
    ])
    s = np.zeros((1, 1, 1, 4, 4))
    s[0, 0, 0, :2, :2] = 1  # 4 spikes in the top-left window, one in the bottom-right
    s[0, 0, 0, 3, 3] = 1
    c = count(geometry, activity_from_rasters(geometry, {"lif": s, "lif2": np.zeros((1, 1, 3, 2, 2))}))
    assert c.row("pool").synops == 5
    assert c.row("pooled").graded_events == 2  # two non-zero window sums (4 and 1)
    assert c.row("conv").macs == 2 * 3 and c.row("conv").synops == 0  # graded: MACs, as NeuroBench files them


def conv_pool_nir_graph():
    """input (2, 8, 8) -> conv 3x3 s2 p1 -> IF -> sum pool 2 -> conv 3x3 p1 -> IF -> flatten -> affine -> output."""
    import nir

    rng = np.random.default_rng(0)
    w1, w2 = rng.normal(size=(4, 2, 3, 3)), rng.normal(size=(3, 4, 3, 3))
    w1[rng.random(w1.shape) < 0.3] = 0.0
    w2[rng.random(w2.shape) < 0.3] = 0.0
    nodes = {
        "input": nir.Input(input_type=np.array([2, 8, 8])),
        "conv1": nir.Conv2d(input_shape=(8, 8), weight=w1, stride=2, padding=1, dilation=1, groups=1, bias=np.zeros(4)),
        "if1": nir.IF(r=np.ones((4, 4, 4)), v_threshold=np.ones((4, 4, 4))),
        "pool": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "conv2": nir.Conv2d(input_shape=(2, 2), weight=w2, stride=1, padding=1, dilation=1, groups=1, bias=np.zeros(3)),
        "if2": nir.IF(r=np.ones((3, 2, 2)), v_threshold=np.ones((3, 2, 2))),
        "flat": nir.Flatten(input_type={"input": np.array([3, 2, 2])}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(size=(5, 12)), bias=np.zeros(5)),
        "output": nir.Output(output_type=np.array([5])),
    }
    edges = [("input", "conv1"), ("conv1", "if1"), ("if1", "pool"), ("pool", "conv2"), ("conv2", "if2"),
             ("if2", "flat"), ("flat", "fc"), ("fc", "output")]
    return nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)


def test_geometry_from_ir_counts_the_connections_lava_runs():
    from neurokd.hardware.network import ir
    from neurokd.hardware.cost.counting import geometry_from_ir

    network = ir.from_nir(conv_pool_nir_graph())
    geometry = geometry_from_ir(network)
    rows = [(x.name, x.label if isinstance(x, Connection) else x.kind) for x in geometry.layers]
    assert rows == [("input", "input"), ("conv1", "conv"), ("if1", "if"), ("conv2", "pool+conv"), ("if2", "if"),
                    ("fc", "dense"), ("fc.out", "readout")]
    # the IR's own fan-out (adjoint convolution) and neurokd's (per-offset count) agree on every synapse
    for layer in network.layers:
        for syn in layer.synapses:
            conn = next(c for c in geometry.connections if c.name == syn.name)
            assert np.array_equal(fanout(conn).reshape(-1), syn.fanout())
            assert np.array_equal(fanout(conn, structural=True).reshape(-1), syn.fanout(structural=True))
    # the ANN teacher from the original nodes: conv1 reads 11 of 12 padded positions per axis
    # (4 outputs x taps 2+3+3+3), conv2 4 per axis (2+2), pool one add per input, fc every weight
    t = teacher_ops(geometry)
    assert t.macs == {"conv1": 11 * 11 * 4 * 2, "conv2": 4 * 4 * 3 * 4, "fc": 60} and t.adds == {"pool": 64}
    rng = np.random.default_rng(1)
    rasters = {"input": rng.random((3, 2, 2, 8, 8)), "if1": rng.integers(0, 2, (3, 2, 4, 4, 4)),
               "if2": rng.integers(0, 2, (3, 2, 3, 2, 2))}
    c = count(geometry, activity_from_rasters(geometry, rasters))
    assert c.row("fc.out").neuron_updates == 5 * 3 and c.row("fc.out").spikes == 0
    assert c.row("conv2").synops == pytest.approx(float((rasters["if1"].sum((0, 1)) * fanout(geometry.connections[1])).sum()) / 2)


def test_a_fixed_point_network_is_counted_with_its_integer_weights():
    import torch

    from neurokd.exporters.to_nir import student_to_nir
    from neurokd.hardware.network import ir
    from neurokd.hardware.cost.counting import geometry_from_ir
    from neurokd.hardware.network.quantize import quantize
    from neurokd.models import build_student

    torch.manual_seed(0)
    student = build_student("mlp", (8,), 3, timesteps=2, hidden=(6,))
    with torch.no_grad():
        student.net.fc1.weight[0, 0] = 1e-6  # rounds to a zero mantissa at 8 bits
    network = ir.from_nir(student_to_nir(student))
    fixed = quantize(network, input_sample=np.random.default_rng(0).random((4, 8)))
    float_geo, fixed_geo = geometry_from_ir(network), geometry_from_ir(network, fixed=fixed)
    assert fixed_geo.connections[0].synapses == np.count_nonzero(fixed.layers["lif1"].synapses["fc1"].mant)
    assert fixed_geo.connections[0].synapses < float_geo.connections[0].synapses
    assert footprint(fixed_geo) < footprint(float_geo)  # 1-byte weights


def test_a_delayed_conv_shortcut_counts_the_convolutions_synapses_not_a_full_dense_matrix():
    """The IR runs a resnet's 1x1-conv shortcut as a dense DelayDense; its structural synapses stay the
    convolution's (one per input channel x output channel x output position), not n_in x n_out."""
    from neurokd.exporters.to_nir import student_to_nir
    from neurokd.hardware.network import ir
    from neurokd.hardware.cost.counting import geometry_from_ir
    from neurokd.models import build_student

    torch.manual_seed(0)
    student = build_student("resnet1d", (3, 10), 4, timesteps=2, stem=4, channels=(4, 6)).eval()
    network = ir.from_nir(student_to_nir(student))
    conn = next(c for c in geometry_from_ir(network).connections if c.name == "sc5")
    assert conn.kind == "dense" and conn.weight.shape == (6 * 5, 4 * 10)
    assert conn.structural_synapses == 6 * 4 * 5
    assert conn.synapses == int(np.count_nonzero(student.shortcuts["lif5"].sc5.weight.detach().numpy())) * 5
    # the ReLU teacher adds each shortcut to its block's output: one add per neuron of lif3 and lif5
    assert teacher_ops(geometry_from_ir(network)).adds == {"lif3:sum": 4 * 10, "lif5:sum": 6 * 5}


def test_active_updates_follow_per_synapse_delays():
    """Two inputs into two neurons, synapse delays [[0, 2], [1, 0]]: a spike of input 0 at t = 0 reaches
    neuron 0 at t = 0 and neuron 1 at t = 1; a spike of input 1 at t = 1 reaches neuron 0 at t = 3 and
    neuron 1 at t = 1. SynOps count every spike x fan-out (the work happens at the spike)."""
    from neurokd.hardware.cost.counting import activity_from_rasters, count

    conn = Connection("fc", "dense", "in", "out", (2,), weight=np.ones((2, 2)), delays=np.array([[0, 2], [1, 0]]))
    geometry = Geometry((Population("in", "lif", (2,), spiking=True, stateful=False), conn,
                         Population("out", "lif", (2,), spiking=True, stateful=True)))
    spikes_in = np.zeros((5, 1, 2))
    spikes_in[0, 0, 0] = spikes_in[1, 0, 1] = 1
    act = activity_from_rasters(geometry, {"in": spikes_in, "out": np.zeros((5, 1, 2))})
    assert act.active_updates["out"] == 3    # (t0, n0), (t1, n1) hit twice counts once, (t3, n0)
    assert count(geometry, act).row("fc").synops == 4
