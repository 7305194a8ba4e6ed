"""Student -> NIR -> file -> NIR -> PyTorch replays the student's spikes bit for bit; NIR primitives step as documented."""

from __future__ import annotations

import math

import nir
import numpy as np
import pytest
import torch
from torch import nn

from neurokd.errors import NeurokdError
from neurokd.exporters.from_nir import nir_to_torch, read_nir
from neurokd.exporters.to_nir import fold_batchnorm, student_to_nir, write_nir
from neurokd.models import build_student
from neurokd.models.base import NEURON, Student, SumPool2d, Topology
from neurokd.models.neurons import LIF

DT = 1e-4


def _randomise(student: Student, seed: int) -> Student:
    """Random beta/threshold per LIF layer and random eval statistics per batch norm."""
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for layer in student.modules():           # the layers, then the residual branches
            if isinstance(layer, LIF):
                layer.beta.fill_(float(torch.rand((), generator=g)) * 0.9 + 0.05)
                layer.threshold.fill_(float(torch.rand((), generator=g)) * 0.8 + 0.2)
            elif isinstance(layer, nn.modules.batchnorm._BatchNorm):
                n = layer.num_features
                layer.running_mean.copy_(torch.randn(n, generator=g) * 0.3)
                layer.running_var.copy_(torch.rand(n, generator=g) + 0.5)
                layer.weight.copy_(torch.rand(n, generator=g) + 0.5)
                layer.bias.copy_(torch.randn(n, generator=g) * 0.2)
    return student.eval()


def _roundtrip(student: Student, tmp_path, name: str = "model.nir"):
    path = write_nir(student_to_nir(student, dt=DT), tmp_path / name)
    return nir_to_torch(read_nir(path))


def _assert_replays_exactly(student: Student, module, x: torch.Tensor) -> None:
    with torch.no_grad():
        logits, spikes, readout = fold_batchnorm(student).run(x)
        original_logits, original_spikes, _ = student.run(x)
        record = module(x, record=True)  # (B, *shape): direct encoding over the graph's timesteps
    for layer, s in spikes.items():
        assert 0.01 < float(s.mean()) < 0.9, f"{layer} rate {float(s.mean())}: the check needs real spiking"
        assert torch.equal(record[layer], s), f"{layer}: spikes differ from the folded student"
        assert torch.equal(record[layer], original_spikes[layer]), f"{layer}: spikes differ from the student"
    assert torch.equal(record["output"], readout)  # bitwise: the replay runs the folded student's ops on its (T*B, n) shapes
    torch.testing.assert_close(record["output"].mean(0), original_logits, atol=1e-6, rtol=0)  # vs the unfolded student: folding rounds


def test_mlp_student_roundtrip_through_nir_file_replays_spikes_bit_for_bit(tmp_path):
    torch.manual_seed(0)
    student = _randomise(build_student("mlp", (64,), 10, timesteps=48), seed=1)
    module = _roundtrip(student, tmp_path)
    _assert_replays_exactly(student, module, torch.rand(32, 64) * 3)


def test_a_flatten_that_leaves_the_shape_as_it_is_writes_no_node_and_the_graph_still_runs_everywhere(tmp_path):
    """An MLP on 1-D input starts with nn.Flatten (64 -> 64): no NIR node for it (issue 16: the no-op node
    alone broke snnTorch's and Norse's importers on batched input), yet the file replays the student
    bit for bit in PyTorch and the hardware model runs it spike for spike like the replay."""
    from neurokd.hardware.engines.fastsim import run_fast
    from neurokd.hardware.network import ir

    torch.manual_seed(3)
    student = _randomise(build_student("mlp", (64,), 10, timesteps=12, hidden=(32,)), seed=4)
    path = write_nir(student_to_nir(student, dt=DT), tmp_path / "model.nir")
    graph = read_nir(path)
    assert not any(isinstance(node, nir.Flatten) for node in graph.nodes.values())
    assert ("input", "fc1") in graph.edges
    module = nir_to_torch(graph)
    x = torch.rand(8, 64) * 3
    _assert_replays_exactly(student, module, x)
    with torch.no_grad():
        record = module(x.double(), record=True)
    fast = run_fast(ir.from_nir(graph), x.double().numpy(), record_steps=True)
    np.testing.assert_array_equal(fast.spikes["lif1"], record["lif1"].transpose(0, 1).numpy())
    # a Flatten that does change the shape is still written
    conv = build_student("mlp", (8, 8), 10, timesteps=2, hidden=(4,))
    assert isinstance(student_to_nir(conv, dt=DT).nodes["flatten"], nir.Flatten)


def test_conv1d_batchnorm_student_replays_spikes_exactly(tmp_path):
    torch.manual_seed(2)
    layers = [
        ("conv1", nn.Conv1d(4, 8, 3, stride=2, padding=1, bias=False)), ("bn1", nn.BatchNorm1d(8)), ("lif1", NEURON),
        ("pool1", nn.AvgPool1d(2)),
        ("conv2", nn.Conv1d(8, 8, 3, padding=2, dilation=2, groups=2)), ("lif2", NEURON),
        ("flatten", nn.Flatten()), ("fc3", nn.Linear(8 * 5, 16)), ("bn3", nn.BatchNorm1d(16)), ("lif3", NEURON),
        ("readout", nn.Linear(16, 5)),
    ]
    student = _randomise(Student(Topology(layers, (4, 20), 5), timesteps=12), seed=3)
    module = _roundtrip(student, tmp_path)
    assert not any(name.startswith("bn") for name in module.plan.nodes)
    _assert_replays_exactly(student, module, torch.rand(16, 4, 20) * 3)


def test_resnet1d_student_with_identity_and_conv_shortcuts_replays_spikes_exactly(tmp_path):
    torch.manual_seed(4)
    student = _randomise(build_student("resnet1d", (4, 20), 5, timesteps=10, stem=6, channels=(6, 8)), seed=5)
    graph = student_to_nir(student, dt=DT)
    assert {("lif1", "lif3"), ("lif3", "sc5"), ("sc5", "lif5"), ("conv5", "lif5")} <= set(graph.edges)
    assert "scbn5" not in graph.nodes                       # the branch's batch norm is folded into sc5
    module = _roundtrip(student, tmp_path)
    _assert_replays_exactly(student, module, torch.rand(16, 4, 20) * 3)


def test_conv2d_student_with_stride_padding_groups_and_pools_replays_spikes_exactly(tmp_path):
    torch.manual_seed(4)
    layers = [
        ("conv1", nn.Conv2d(3, 8, 3, stride=(2, 1), padding=(1, 2))), ("bn1", nn.BatchNorm2d(8)), ("lif1", NEURON),
        ("pool1", nn.AvgPool2d(2)),
        ("conv2", nn.Conv2d(8, 8, 3, padding=1, groups=4, bias=False)), ("lif2", NEURON), ("pool2", SumPool2d(2)),
        ("flatten", nn.Flatten()), ("fc3", nn.Linear(24, 16, bias=False)), ("lif3", NEURON),
        ("readout", nn.Linear(16, 5)),
    ]
    student = _randomise(Student(Topology(layers, (3, 10, 10), 5), timesteps=10), seed=5)
    module = _roundtrip(student, tmp_path)
    graph = read_nir(tmp_path / "model.nir")
    assert [type(graph.nodes[k]).__name__ for k in ("conv1", "pool1", "conv2", "pool2", "fc3", "readout")] == [
        "Conv2d", "AvgPool2d", "Conv2d", "SumPool2d", "Linear", "Affine"]
    assert graph.nodes["conv2"].metadata["neurokd_groups"] == 4
    _assert_replays_exactly(student, module, torch.rand(16, 3, 10, 10) * 3)


def test_exported_graph_carries_conventions_and_exact_parameters(tmp_path):
    torch.manual_seed(6)
    student = _randomise(build_student("mlp", (8, 8), 10, timesteps=5, hidden=(20,)), seed=7)
    write_nir(student_to_nir(student, dt=DT), tmp_path / "m.nir")
    graph = nir.read(tmp_path / "m.nir", type_check=True)
    assert set(graph.nodes) == {"input", "flatten", "fc1", "lif1", "readout", "output"}
    assert sorted(graph.edges) == sorted(
        [("input", "flatten"), ("flatten", "fc1"), ("fc1", "lif1"), ("lif1", "readout"), ("readout", "output")])
    meta = graph.metadata
    assert float(meta["dt"]) == DT and int(meta["timesteps"]) == 5 and meta["encoding"] == "direct"
    assert meta["readout"] == "mean over time steps"
    assert meta["neuron_contract"] == "forward Euler at dt; LIF reset to zero"
    assert meta["producer"].startswith("neurokd ")
    np.testing.assert_array_equal(graph.nodes["input"].input_type["input"], [8, 8])
    flatten = graph.nodes["flatten"]
    assert int(flatten.start_dim) == 0 and int(flatten.end_dim) == -1
    lif = graph.nodes["lif1"]
    beta = float(student.net.lif1.effective_beta())
    theta = float(student.net.lif1.effective_threshold())
    assert lif.tau.shape == (20,) and float(lif.metadata["dt"]) == DT
    np.testing.assert_array_equal(lif.tau, DT / (1 - beta))
    np.testing.assert_array_equal(lif.r, lif.tau / DT)
    np.testing.assert_array_equal(lif.v_leak, 0.0)
    np.testing.assert_array_equal(lif.v_reset, 0.0)
    np.testing.assert_array_equal(lif.v_threshold, theta)
    assert np.float32(1 - DT / lif.tau[0]) == np.float32(beta)  # the decay a reader computes is beta exactly
    np.testing.assert_array_equal(graph.nodes["fc1"].weight, student.net.fc1.weight.detach().numpy())
    np.testing.assert_array_equal(graph.nodes["readout"].bias, student.net.readout.bias.detach().numpy())
    np.testing.assert_array_equal(graph.nodes["output"].output_type["output"], [10])


def test_batchnorm_is_folded_with_running_statistics():
    torch.manual_seed(8)
    layers = [("conv1", nn.Conv1d(2, 3, 3, bias=False)), ("bn1", nn.BatchNorm1d(3)), ("lif1", NEURON),
              ("flatten", nn.Flatten()), ("readout", nn.Linear(3 * 4, 2))]
    student = _randomise(Student(Topology(layers, (2, 6), 2), timesteps=3), seed=9)
    graph = student_to_nir(student, dt=DT)
    bn = student.net.bn1
    scale = (bn.weight / torch.sqrt(bn.running_var + bn.eps)).double()
    expected_w = student.net.conv1.weight.double() * scale[:, None, None]
    expected_b = -bn.running_mean.double() * scale + bn.bias.double()
    assert "bn1" not in graph.nodes
    # the graph holds the student's float32 fold; the formula here runs in float64
    np.testing.assert_allclose(graph.nodes["conv1"].weight, expected_w.detach().numpy(), rtol=1e-6)
    np.testing.assert_allclose(graph.nodes["conv1"].bias, expected_b.detach().numpy(), rtol=1e-6, atol=1e-7)
    x = torch.rand(5, 2, 6)
    with torch.no_grad():
        torch.testing.assert_close(fold_batchnorm(student).net[:2](x), student.net[:2](x), atol=1e-5, rtol=0)  # folded conv vs conv then batch norm: float32 rounding


def test_non_leaky_neuron_exports_as_if_and_replays(tmp_path):
    student = build_student("mlp", (6,), 3, timesteps=8, beta=1.0, threshold=0.7, hidden=(5,))
    graph = student_to_nir(student, dt=DT)
    node = graph.nodes["lif1"]
    assert isinstance(node, nir.IF)
    np.testing.assert_array_equal(node.r, 1.0)
    np.testing.assert_array_equal(node.v_threshold, np.float32(0.7))
    module = _roundtrip(student, tmp_path)
    x = torch.rand(4, 6)
    with torch.no_grad():
        _, spikes, readout = student.run(x)
        record = module(x, record=True)
    assert torch.equal(record["lif1"], spikes["lif1"]) and torch.equal(record["output"], readout)  # same ops, same shapes


def test_write_nir_replaces_a_file_atomically_and_keeps_it_on_failure(tmp_path):
    student = build_student("mlp", (4,), 2, timesteps=2, hidden=(3,))
    path = tmp_path / "model.nir"
    write_nir(student_to_nir(student), path)
    before = path.read_bytes()
    with pytest.raises(NeurokdError):
        write_nir("not a graph", path)
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.nir"]


@pytest.mark.parametrize(
    "layers, culprit",
    [
        ([("flatten", nn.Flatten()), ("fc1", nn.Linear(4, 3)), ("act", nn.ReLU()), ("readout", nn.Linear(3, 2))], "act"),
        ([("fc1", nn.Linear(4, 3)), ("lif1", NEURON), ("bn1", nn.BatchNorm1d(3)), ("readout", nn.Linear(3, 2))], "bn1"),
        ([("fc1", nn.Linear(4, 3)), ("input", NEURON), ("readout", nn.Linear(3, 2))], "input"),
    ],
)
def test_unexportable_layer_is_refused_naming_it(layers, culprit):
    student = Student(Topology(layers, (4,), 2), timesteps=2)
    with pytest.raises(NeurokdError, match=repr(culprit)):
        student_to_nir(student)


def test_maxpool_is_refused():
    layers = [("conv1", nn.Conv2d(1, 2, 3)), ("lif1", NEURON), ("pool1", nn.MaxPool2d(2)), ("flatten", nn.Flatten()),
              ("readout", nn.Linear(2 * 3 * 3, 2))]
    with pytest.raises(NeurokdError, match="'pool1'"):
        student_to_nir(Student(Topology(layers, (1, 8, 8), 2), timesteps=2))


# ------------------------------------------------------------------------------------------------
# NIR primitives, hand-built graphs with answers computed by hand
# ------------------------------------------------------------------------------------------------

def _chain(*pairs, shape=(1,), metadata=None):
    nodes = {"input": nir.Input(input_type={"input": np.array(shape)})}
    edges, last = [], "input"
    for name, node in pairs:
        nodes[name] = node
        edges.append((last, name))
        last = name
    nodes["output"] = nir.Output(output_type={"output": np.array(shape)})
    edges.append((last, "output"))
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=metadata or {}, type_check=False)


def test_lif_step_response_matches_hand_computation():
    # tau = 1e-3, dt = 1e-4: decay 0.9; r = 5: gain dt r / tau = 0.5; constant input 1; threshold 1.2
    lif = nir.LIF(tau=np.array([1e-3]), r=np.array([5.0]), v_leak=np.array([0.0]), v_threshold=np.array([1.2]),
                  v_reset=np.array([0.0]))
    module = nir_to_torch(_chain(("lif", lif)), dt=1e-4)
    out, states = module(torch.ones(7, 1, 1), record_states=True)
    # v: 0.5, 0.95, 1.355 -> spike, reset 0; then again
    np.testing.assert_allclose(states["lif"]["v"][:, 0, 0].numpy(), [0.5, 0.95, 0.0, 0.5, 0.95, 0.0, 0.5], rtol=1e-6)  # float32 v vs decimals
    assert out[:, 0, 0].tolist() == [0, 0, 1, 0, 0, 1, 0]


def test_lif_leak_voltage_and_reset_value_are_used():
    # v_leak = 2, v_reset = 0.3, no input: v = 0.9 v + 0.1 * 2 -> 0.2, 0.38, 0.542 > 0.5 spikes, reset 0.3
    lif = nir.LIF(tau=np.array([1e-3]), r=np.array([1.0]), v_leak=np.array([2.0]), v_threshold=np.array([0.5]),
                  v_reset=np.array([0.3]))
    out, states = nir_to_torch(_chain(("lif", lif)), dt=1e-4)(torch.zeros(4, 1, 1), record_states=True)
    np.testing.assert_allclose(states["lif"]["v"][:, 0, 0].numpy(), [0.2, 0.38, 0.3, 0.47], rtol=1e-6)  # float32 v vs decimals
    assert out[:, 0, 0].tolist() == [0, 0, 1, 0]


def test_cubalif_with_snntorch_parameters_gives_alpha_beta_update():
    dt, alpha, beta = 1e-4, 0.6, 0.8
    tau_syn, tau_mem = dt / (1 - alpha), dt / (1 - beta)
    n = 5
    node = nir.CubaLIF(tau_syn=np.full(n, tau_syn), tau_mem=np.full(n, tau_mem), r=np.full(n, tau_mem / dt),
                       v_leak=np.zeros(n), v_threshold=np.full(n, 1.0), v_reset=np.zeros(n), w_in=np.full(n, tau_syn / dt))
    module = nir_to_torch(_chain(("cuba", node), shape=(n,)), dt=dt)
    x = torch.rand(30, 2, n, generator=torch.Generator().manual_seed(0)) * 0.6
    out = module(x)
    a, b = torch.tensor(alpha, dtype=torch.float32), torch.tensor(beta, dtype=torch.float32)
    i = v = torch.zeros(2, n)
    expected = []
    for t in range(30):
        i = a * i + x[t]          # i = alpha i + I
        v = b * v + i             # v = beta v + i
        s = (v > 1.0).float()
        v = v * (1 - s)
        expected.append(s)
    assert float(out.mean()) > 0.05
    assert torch.equal(out, torch.stack(expected))


def test_if_integrator_threshold_scale_and_delay_primitives():
    n = 3
    graph = _chain(
        ("scale", nir.Scale(scale=np.array([1.0, 2.0, 0.5]))),
        ("delay", nir.Delay(delay=np.array([0.0, 2e-3, 1e-3]))),
        ("if", nir.IF(r=np.full(n, 0.5), v_threshold=np.full(n, 0.9), v_reset=np.zeros(n))),
        shape=(n,),
    )
    module = nir_to_torch(graph, dt=1e-3)  # delays: 0, 2 and 1 steps
    rec = module(torch.ones(5, 1, n), record=True)
    delayed = rec["delay"][:, 0].numpy()
    np.testing.assert_array_equal(delayed[:, 0], [1, 1, 1, 1, 1])
    np.testing.assert_array_equal(delayed[:, 1], [0, 0, 2, 2, 2])
    np.testing.assert_array_equal(delayed[:, 2], [0, 0.5, 0.5, 0.5, 0.5])
    # IF adds r * I = 0.5 I per step, threshold 0.9: neuron 0: 0.5, 1.0 (spike), 0.5, 1.0 (spike), 0.5;
    # neuron 1: 0, 0, 1.0 (spike), 1.0 (spike), 1.0 (spike); neuron 2: 0, 0.25, 0.5, 0.75, 1.0 (spike)
    np.testing.assert_array_equal(rec["if"][:, 0].numpy(), [[0, 0, 0], [1, 0, 0], [0, 1, 0], [1, 1, 0], [0, 1, 1]])
    integ = nir_to_torch(_chain(("i", nir.I(r=np.array([2.0])))))          # I needs no dt
    np.testing.assert_array_equal(integ(torch.ones(3, 1, 1))[:, 0, 0].numpy(), [2, 4, 6])
    thr = nir_to_torch(_chain(("thr", nir.Threshold(threshold=np.array([0.5])))))
    np.testing.assert_array_equal(thr(torch.tensor([0.4, 0.5, 0.6]).reshape(3, 1, 1))[:, 0, 0].numpy(), [0, 0, 1])


def test_recurrent_edge_carries_previous_step_spikes_with_bias_from_the_start():
    torch.manual_seed(10)
    n_in, n = 3, 4
    w = np.random.default_rng(0).normal(size=(n, n_in)).astype(np.float32)
    w_rec = np.random.default_rng(1).normal(size=(n, n)).astype(np.float32)
    b_rec = np.random.default_rng(2).normal(size=n).astype(np.float32) * 0.3
    beta = 0.75
    nodes = {
        "input": nir.Input(input_type={"input": np.array([n_in])}),
        "fc": nir.Linear(weight=w),
        "lif": nir.LIF(tau=np.full(n, 1e-4 / (1 - beta)), r=np.full(n, 1 / (1 - beta)), v_leak=np.zeros(n),
                       v_threshold=np.full(n, 0.8), v_reset=np.zeros(n)),
        "rec": nir.Affine(weight=w_rec, bias=b_rec),
        "output": nir.Output(output_type={"output": np.array([n])}),
    }
    edges = [("rec", "lif"), ("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("lif", "output")]
    module = nir_to_torch(nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-4}))
    assert module.plan.delayed == {("lif", "rec")}
    x = torch.rand(25, 2, n_in)
    out = module(x)
    W, R, b = torch.tensor(w), torch.tensor(w_rec), torch.tensor(b_rec)
    v, s = torch.zeros(2, n), torch.zeros(2, n)
    expected = []
    for t in range(25):
        v = torch.tensor(beta, dtype=torch.float32) * v + (s @ R.T + b + x[t] @ W.T)   # W_rec s[t-1] + b + W x[t]
        s = (v > 0.8).float()
        v = v * (1 - s)
        expected.append(s)
    expected = torch.stack(expected)
    assert 0.05 < float(expected.mean()) < 0.95
    torch.testing.assert_close(out, expected)


def test_graph_metadata_dt_is_used_and_an_argument_overrides_it_with_a_warning():
    lif = nir.LIF(tau=np.array([1e-3]), r=np.array([10.0]), v_leak=np.array([0.0]), v_threshold=np.array([5.0]))
    graph = _chain(("lif", lif), metadata={"dt": 1e-4})
    module = nir_to_torch(graph)
    assert module.dt == 1e-4 and module.convention.source == "graph metadata"
    with pytest.warns(UserWarning, match="dt=0.0005"):
        other = nir_to_torch(graph, dt=5e-4)
    assert math.isclose(float(other.op("lif").decay), 0.5, rel_tol=1e-7)  # 1 - dt/tau held in float32


@pytest.mark.parametrize("dt", [1e-4, 1e-3, 1.0, 0.37])
def test_reader_decay_and_gain_equal_student_beta_and_one_for_any_float32_beta(dt):
    # tau = dt/(1-beta), r = tau/dt written in float64; the reader's 1 - dt/tau and dt r/tau,
    # rounded once to float32, must give back beta and 1 exactly: that is what makes the replay exact.
    rng = np.random.default_rng(0)
    edge = np.array([0.0, 1e-8, 0.5, 0.9, 0.99, np.nextafter(np.float32(1), np.float32(0))], dtype=np.float32)
    beta = np.concatenate([rng.random(100_000).astype(np.float32), edge]).astype(np.float64)
    tau = dt / (1.0 - beta)
    r = tau / dt
    np.testing.assert_array_equal((1.0 - dt / tau).astype(np.float32), beta.astype(np.float32))
    np.testing.assert_array_equal((dt * r / tau).astype(np.float32), np.float32(1.0))


def test_subgraph_node_is_expanded_and_runs_like_the_flat_graph(tmp_path):
    lif = dict(tau=np.full(2, 2e-4), r=np.full(2, 2.0), v_leak=np.zeros(2), v_threshold=np.full(2, 0.5), v_reset=np.zeros(2))
    sub = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2])}), "lif": nir.LIF(**lif),
               "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "lif"), ("lif", "output")], metadata={}, type_check=False)
    nested = nir.NIRGraph(
        nodes={"input": nir.Input(input_type={"input": np.array([2])}), "block": sub,
               "output": nir.Output(output_type={"output": np.array([2])})},
        edges=[("input", "block"), ("block", "output")], metadata={"dt": 1e-4}, type_check=False)
    flat = _chain(("lif", nir.LIF(**lif)), shape=(2,), metadata={"dt": 1e-4})
    module = nir_to_torch(nested)
    assert "block.lif" in module.plan.nodes
    x = torch.rand(20, 3, 2, generator=torch.Generator().manual_seed(3))
    assert torch.equal(module(x), nir_to_torch(flat)(x))


def test_import_command_runs_an_exported_student_with_its_own_dt_and_timesteps(tmp_path):
    from neurokd.exporters.nir_inspect import import_graph, write_import

    student = build_student("mlp", (6,), 3, timesteps=7, hidden=(5,))
    write_nir(student_to_nir(student, dt=1e-3), tmp_path / "model.nir")
    summary, outputs = import_graph(tmp_path / "model.nir", batch=2, seed=1)
    assert summary["dt"] == 1e-3 and summary["dt_source"] == "graph metadata" and summary["timesteps"] == 7
    assert [n["name"] for n in summary["nodes"]] == ["input", "fc1", "lif1", "readout", "output"]
    assert outputs["readout"].shape == (7, 2, 3)
    write_import(tmp_path / "out", summary, outputs)
    assert sorted(p.name for p in (tmp_path / "out").iterdir()) == ["outputs.npz", "summary.json"]


def test_the_norse_variant_is_the_same_network_and_a_residual_sum_is_refused_in_one_line():
    """for_norse moves each LIF's r into its input weights and rescales time to Norse's 1e-3 step: the
    replay is unchanged; a LIF fed by a residual sum has no single weight to take its r."""
    from neurokd.exporters.to_nir import NORSE_DT, for_norse

    torch.manual_seed(8)
    student = _randomise(build_student("conv1d", (3, 16), 4, timesteps=6), seed=9)
    graph = student_to_nir(student, dt=DT)
    variant = for_norse(graph)
    assert float(variant.metadata["dt"]) == NORSE_DT
    lifs = [k for k, n in variant.nodes.items() if isinstance(n, nir.LIF)]
    assert lifs and all(np.all(variant.nodes[k].r == 1) for k in lifs)
    for k in lifs:
        np.testing.assert_allclose(NORSE_DT / variant.nodes[k].tau, DT / graph.nodes[k].tau, rtol=1e-12)  # tau rescaled in float64
    x = torch.rand(4, 3, 16, dtype=torch.float64) * 3
    with torch.no_grad():
        a = nir_to_torch(graph)(x, record=True)
        b = nir_to_torch(variant)(x, record=True)
    for k in lifs:
        assert 0 < float(a[k].mean()) < 1 and torch.equal(a[k], b[k]), k
    resnet = build_student("resnet1d", (3, 10), 4, timesteps=2, stem=4, channels=(4, 6))
    with pytest.raises(NeurokdError, match=r"for_norse: LIF 'lif3' is fed by .*not by one linear node") as info:
        for_norse(student_to_nir(resnet, dt=DT))
    assert "\n" not in str(info.value)
