"""The hardware IR: NIR graphs as Lava-ready layers (discretisation, composition, layouts, delays, refusals).

No Lava process runs here; ``reference_run`` (the IR's equations in float64) is checked against
PyTorch (the student itself and ``nir_to_torch``).
"""

from __future__ import annotations

import math

import nir
import numpy as np
import pytest
import torch
import torch.nn.functional as F

from neurokd.errors import NeurokdError
from neurokd.exporters.from_nir import nir_to_torch
from neurokd.exporters.to_nir import student_to_nir
from neurokd.hardware.network import ir
from neurokd.hardware.network.nir_semantics import discretise, reference_run
from neurokd.models import build_student


def mlp_student(beta=0.9, timesteps=6, seed=0):
    torch.manual_seed(seed)
    return build_student("mlp", (16,), 5, timesteps=timesteps, beta=beta, hidden=(12, 8)).eval()


def chain(*nodes, input_shape, output_shape=(1,), metadata=None) -> nir.NIRGraph:
    """input -> nodes (named n0, n1, ... unless given as (name, node)) -> output."""
    named = [(n if isinstance(n, tuple) else (f"n{i}", n)) for i, n in enumerate(nodes)]
    graph_nodes = {"input": nir.Input(np.array(input_shape))}
    graph_nodes.update(dict(named))
    graph_nodes["output"] = nir.Output(np.array(output_shape))
    names = ["input"] + [k for k, _ in named] + ["output"]
    return nir.NIRGraph(graph_nodes, list(zip(names[:-1], names[1:])), metadata=metadata or {}, type_check=False)


def lif(n, tau=2e-3, r=None, thr=1.0, dt=1e-4, **kw):
    r = tau / dt if r is None else r
    return nir.LIF(tau=np.full(n, tau), r=np.full(n, r), v_leak=np.zeros(n), v_threshold=np.full(n, thr),
                   v_reset=np.zeros(n), **kw)


def affine(w, b=None):
    return nir.Affine(weight=np.asarray(w, float), bias=np.zeros(len(w)) if b is None else np.asarray(b, float))


# --------------------------------------------------------------------------------------------------
# The student contract
# --------------------------------------------------------------------------------------------------

def test_student_graph_becomes_lava_lif_layers_with_exact_parameters():
    student = mlp_student(beta=0.9)
    net = ir.from_nir(student_to_nir(student, dt=1e-4))
    assert net.names == ["lif1", "lif2", "readout"]
    assert [l.delay for l in net.layers] == [1, 2, 3]          # one step per Lava Dense
    beta = float(student.net.lif1.beta)                         # float32 value
    for name in ("lif1", "lif2"):
        n = net.layer(name).neuron
        assert n.kind == "lif" and n.du == 1.0 and n.vth == 1.0
        assert 1.0 - n.dv == beta                               # bit for bit
    fc1 = net.layer("lif1").synapses[0]
    assert fc1.kind == "dense" and [s.kind for s in fc1.stages] == ["dense"]      # no-op Flatten not written
    assert np.array_equal(fc1.weight, student.net.fc1.weight.detach().double().numpy())   # gain exactly 1
    assert np.array_equal(net.layer("lif1").neuron.b_v, student.net.fc1.bias.detach().double().numpy())
    readout = net.layer("readout")
    assert readout.neuron.kind == "none" and readout.is_output and net.readout == "readout"
    assert net.timesteps == 6 and net.dt == 1e-4


def test_reference_equations_reproduce_the_student():
    student = mlp_student(beta=0.8, seed=3)
    net = ir.from_nir(student_to_nir(student, dt=1e-4))
    x = np.random.default_rng(0).random((20, 16))
    with torch.no_grad():
        logits, spikes, _ = student.run(torch.tensor(x, dtype=torch.float32))
    ref = reference_run(net, x)
    for name, s in spikes.items():
        assert np.array_equal(ref[name], s.numpy().swapaxes(0, 1))
    np.testing.assert_allclose(ref["readout"].mean(axis=1), logits.numpy(), atol=1e-5)  # the float64 IR vs the float32 student


def test_discretisation_rule_for_each_neuron_type():
    dt = 1e-3
    d = discretise("a", nir.LIF(tau=np.array([0.01]), r=np.array([2.0]), v_leak=np.array([0.5]),
                                v_threshold=np.array([0.3])), dt)
    assert d.kind == "lif" and d.du == 1.0
    assert math.isclose(d.dv, 0.1, rel_tol=1e-6) and math.isclose(float(d.gain[0]), 0.2, rel_tol=1e-6)
    assert math.isclose(float(d.b_v[0]), 0.05) and d.vth == pytest.approx(0.3)
    d = discretise("b", nir.CubaLIF(tau_syn=np.array([0.004]), tau_mem=np.array([0.01]), r=np.array([1.0]),
                                    v_leak=np.array([0.0]), v_threshold=np.array([1.0]), w_in=np.array([3.0])), dt)
    assert math.isclose(d.du, 0.25, rel_tol=1e-6) and math.isclose(d.dv, 0.1, rel_tol=1e-6)
    assert math.isclose(float(d.gain[0]), (dt * 3 / 0.004) * (dt / 0.01), rel_tol=1e-6)
    d = discretise("c", nir.IF(r=np.array([2.0]), v_threshold=np.array([1.0])), None)   # IF needs no dt
    assert (d.du, d.dv, float(d.gain[0]), d.dt) == (1.0, 0.0, 2.0, None)
    d = discretise("d", nir.LI(tau=np.array([0.01]), r=np.array([1.0]), v_leak=np.array([0.0])), dt)
    assert d.kind == "li" and math.isinf(d.vth)


# --------------------------------------------------------------------------------------------------
# Linear chains, layouts, conv
# --------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("hw, k_pool, conv", [
    ((8, 6), 2, dict(k=3, stride=1, pad=1, dil=1)),
    ((9, 6), 3, dict(k=2, stride=2, pad=0, dil=1)),
    ((8, 8), 2, dict(k=3, stride=1, pad=1, dil=2)),
    ((9, 7), 2, dict(k=3, stride=1, pad=1, dil=1)),      # partial window meets padding: dense fallback
])
def test_pool_then_conv_chain_is_one_exact_connection(hw, k_pool, conv):
    rng = np.random.default_rng(1)
    c_in, c_out = 3, 4
    w = rng.normal(size=(c_out, c_in, conv["k"], conv["k"]))
    pool = nir.SumPool2d(kernel_size=np.array([k_pool, k_pool]), stride=np.array([k_pool, k_pool]),
                         padding=np.array([0, 0]))
    pooled = (hw[0] // k_pool, hw[1] // k_pool)
    cv = nir.Conv2d(input_shape=pooled, weight=w, stride=conv["stride"], padding=conv["pad"],
                    dilation=conv["dil"], groups=1, bias=rng.normal(size=c_out))
    graph = chain(nir.IF(r=np.ones((c_in, *hw)), v_threshold=np.ones((c_in, *hw))), pool, cv,
                  input_shape=(c_in, *hw))
    net = ir.from_nir(graph)
    syn = net.layers[-1].synapses[0]
    assert [s.kind for s in syn.stages] == ["pool", "conv"]
    expected_kind = "dense" if hw == (9, 7) else "conv"
    assert syn.kind == expected_kind
    x = rng.integers(0, 2, size=(5, c_in, *hw)).astype(float)
    y_ref = torch.nn.functional.conv2d(
        torch.nn.functional.avg_pool2d(torch.tensor(x), k_pool) * k_pool ** 2, torch.tensor(w),
        stride=conv["stride"], padding=conv["pad"], dilation=conv["dil"]).numpy()
    np.testing.assert_allclose(syn.apply(x).reshape(y_ref.shape), y_ref, atol=1e-10)  # float64 sums, numpy vs torch order
    assert syn.bias.shape == (math.prod(y_ref.shape[1:]),)


def test_numpy_conv_matches_torch_and_fanout_counts_connected_pairs():
    rng = np.random.default_rng(2)
    x = rng.normal(size=(2, 4, 9, 7))
    w = rng.normal(size=(6, 2, 3, 2))
    w[0, 0, 1, 1] = 0.0
    kw = dict(stride=(2, 1), dilation=(1, 2), groups=2)
    ref = F.conv2d(torch.tensor(x), torch.tensor(w), padding=(1, 2), **kw).numpy()
    got = ir.conv2d(x, w, kw["stride"], ((1, 1), (2, 2)), kw["dilation"], kw["groups"])
    np.testing.assert_allclose(got, ref, atol=1e-10)  # float64 sums, numpy vs torch order
    syn = ir.Synapse("c", "a", "b", "conv", w, (4, 9, 7), tuple(ref.shape[1:]), stride=(2, 1), padding=(1, 2),
                     dilation=(1, 2), groups=2)
    dense = np.stack([syn.apply(np.eye(4 * 9 * 7)[i].reshape(1, 4, 9, 7)).reshape(-1) for i in range(4 * 9 * 7)], 1)
    np.testing.assert_array_equal(syn.fanout(), (dense != 0).sum(axis=0))
    assert syn.synapse_count == int((dense != 0).sum())


def test_lava_layout_helpers_are_inverse_and_consistent():
    for shape in [(5,), (3, 7), (2, 4, 5)]:
        x = np.arange(2 * math.prod(shape)).reshape(2, *shape)
        lx = ir.to_lava(x, shape)
        assert lx.shape == (2, *ir.lava_shape(shape))
        np.testing.assert_array_equal(ir.from_lava(lx, shape), x)
        p = ir.lava_order(shape)
        np.testing.assert_array_equal(lx[0].reshape(-1), x[0].reshape(-1)[p])
    assert ir.lava_shape((2, 34, 30)) == (30, 34, 2)          # (C, H, W) -> (X=W, Y=H, C)


def test_flatten_then_affine_columns_follow_lava_xyc_order():
    rng = np.random.default_rng(3)
    shape = (2, 3, 4)
    w = rng.normal(size=(5, 24))
    syn = ir.Synapse("fc", "a", "b", "dense", w, shape, (5,))
    x = rng.normal(size=shape)
    lava_in = ir.to_lava(x[None], shape)[0].reshape(-1)       # what Lava's flattened port carries
    np.testing.assert_allclose(syn.lava_weight() @ lava_in, w @ x.reshape(-1))  # float64, summed in Lava's permuted order


def test_conv_graph_reference_matches_nir_to_torch():
    rng = np.random.default_rng(4)
    graph = chain(
        ("conv1", nir.Conv2d(input_shape=(9, 7), weight=rng.normal(size=(4, 2, 3, 3)), stride=(2, 1), padding=(1, 0),
                             dilation=1, groups=1, bias=rng.normal(size=4) * 0.1)),
        ("lif1", lif((4, 5, 5), thr=0.5)),
        ("pool", nir.AvgPool2d(kernel_size=np.array([2, 2]), stride=np.array([1, 1]), padding=np.array([0, 0]))),
        ("flat", nir.Flatten(input_type={"input": np.array([4, 4, 4])}, start_dim=0)),
        ("fc", affine(rng.normal(size=(3, 64)), rng.normal(size=3))),
        input_shape=(2, 9, 7), output_shape=(3,), metadata={"dt": 1e-4},
    )
    net = ir.from_nir(graph)
    assert [s.kind for s in net.layer("fc").synapses[0].stages] == ["pool", "flatten", "dense"]
    x = (rng.random((3, 5, 2, 9, 7)) < 0.4).astype(float)
    ref = reference_run(net, x)
    with torch.no_grad():
        rec = nir_to_torch(graph).double()(torch.tensor(x.swapaxes(0, 1)), record=True)
    assert ref["lif1"].sum() > 0
    np.testing.assert_array_equal(ref["lif1"], rec["lif1"].numpy().swapaxes(0, 1).reshape(3, 5, -1))
    np.testing.assert_allclose(ref["fc"], rec["fc"].numpy().swapaxes(0, 1), atol=1e-9)  # float64 sums, IR vs PyTorch order


# --------------------------------------------------------------------------------------------------
# Refusals (all before any Lava process could exist: from_nir imports no Lava process)
# --------------------------------------------------------------------------------------------------

def _graph(nodes: dict, edges: list, shape=(3,), metadata=None) -> nir.NIRGraph:
    nodes = {"input": nir.Input(np.array(shape)), **nodes, "output": nir.Output(np.array([1]))}
    return nir.NIRGraph(nodes, edges, metadata=metadata or {"dt": 1e-4}, type_check=False)


W = np.ones((3, 3))


@pytest.mark.parametrize("nodes, edges, match", [
    ({"fc": affine(W), "th": nir.Threshold(threshold=np.ones(3))},
     [("input", "fc"), ("fc", "th"), ("th", "output")], "'th' is a Threshold"),
    ({"fc": affine(W), "loop": affine(W), "lif": lif(3)},
     [("input", "fc"), ("fc", "loop"), ("loop", "fc"), ("fc", "lif"), ("lif", "output")],
     r"\['fc', 'loop'\] form a cycle without a neuron"),
    ({"fc": affine(np.ones((3, 4))), "lif": lif(3)},
     [("input", "fc"), ("fc", "lif"), ("lif", "output")], "'fc'.*needs input \\(4,\\)"),
    ({"fc": affine(np.full((3, 3), np.nan)), "lif": lif(3)},
     [("input", "fc"), ("fc", "lif"), ("lif", "output")], "'fc'.*NaN"),
    ({"fc": affine(W), "lif": lif(3, tau=-1e-3, r=1.0)},
     [("input", "fc"), ("fc", "lif"), ("lif", "output")], "'lif'.*tau must be > 0"),
    ({"fc": affine(W), "lif": lif(3, tau=5e-5, r=1.0)},
     [("input", "fc"), ("fc", "lif"), ("lif", "output")], "'lif'.*dt/tau = 2 > 1"),
    ({"fc": affine(W), "lif": nir.LIF(tau=np.full(3, 1e-3), r=np.ones(3), v_leak=np.zeros(3),
                                      v_threshold=np.ones(3), v_reset=np.full(3, 0.2))},
     [("input", "fc"), ("fc", "lif"), ("lif", "output")], "'lif'.*resets to 0"),
    ({"fc": affine(W), "lif": nir.IF(r=np.ones(3), v_threshold=np.array([1.0, 2.0, 1.0]))},
     [("input", "fc"), ("fc", "lif"), ("lif", "output")], "'lif'.*one\\s+value per population"),
    ({"fc": affine(W), "li": nir.LI(tau=np.full(3, 1e-3), r=np.ones(3), v_leak=np.zeros(3)), "fc2": affine(W),
      "lif": lif(3)},
     [("input", "fc"), ("fc", "li"), ("li", "fc2"), ("fc2", "lif"), ("lif", "output")], "non-spiking node 'li'"),
    ({"fc1": affine(W), "a": lif(3), "fc2": affine(W), "b": lif(3), "back": affine(W)},
     [("input", "fc1"), ("fc1", "a"), ("a", "fc2"), ("fc2", "b"), ("b", "back"), ("back", "a"), ("b", "output")],
     "recurrent edge 'b' -> 'a'"),
])
def test_bad_graphs_are_refused_naming_the_node(nodes, edges, match):
    with pytest.raises(NeurokdError, match=match):
        ir.from_nir(_graph(nodes, edges))


def test_a_shortcut_from_a_shallower_source_waits_the_difference_in_a_delay_synapse():
    """input -> fc1 -> a -> fc2 -> b and input -> skip -> b: b sums step k of both paths, so in Lava
    the skip (one Dense) waits one extra step behind fc1 -> a -> fc2 (two)."""
    nodes = {"fc1": affine(W), "a": lif(3), "fc2": affine(W), "b": lif(3), "skip": affine(W * 0.5)}
    edges = [("input", "fc1"), ("fc1", "a"), ("a", "fc2"), ("fc2", "b"), ("input", "skip"), ("skip", "b"),
             ("b", "output")]
    net = ir.from_nir(_graph(nodes, edges))
    b = net.layer("b")
    assert [l.delay for l in net.layers] == [1, 2] and b.delay == 2
    assert {s.name: s.delay for s in b.synapses} == {"skip": 2, "fc2": 1}
    assert any("'skip' from 'input' waits 1 step(s) in a Lava DelayDense" in n for n in net.notes)


def test_a_delayed_convolution_shortcut_is_multiplied_out_keeping_its_structure():
    """A strided 1x1 Conv1d shortcut becomes a dense matrix equal to the convolution, with the
    convolution's connected pairs (not all pairs) as its structure."""
    rng = np.random.default_rng(0)
    c, n = 2, 6
    conv = lambda cin, cout, k, s, p: nir.Conv1d(input_shape=n, weight=rng.normal(size=(cout, cin, k)), stride=s,
                                                 padding=p, dilation=1, groups=1, bias=np.zeros(cout))
    nodes = {"c1": conv(1, c, 3, 1, 1), "a": lif((c, n)), "c2": conv(c, c, 3, 1, 1), "b": lif((c, n)),
             "c3": conv(c, 3, 3, 2, 1), "d": lif((3, 3)), "sc": conv(c, 3, 1, 2, 0)}
    nodes["input"] = nir.Input(np.array([1, n]))
    edges = [("input", "c1"), ("c1", "a"), ("a", "c2"), ("c2", "b"), ("b", "c3"), ("c3", "d"), ("a", "sc"),
             ("sc", "d"), ("d", "output")]
    graph = nir.NIRGraph({**nodes, "output": nir.Output(np.array([3, 3]))}, edges, metadata={"dt": 1e-4},
                         type_check=False)
    net = ir.from_nir(graph)
    (sc,) = [s for s in net.layer("d").synapses if s.name == "sc"]
    assert sc.kind == "dense" and sc.delay == 2 and sc.weight.shape == (9, 12)   # d: 3 steps deep, a: 1
    x = rng.random((4, c, n))
    expected = F.conv1d(torch.tensor(x), torch.tensor(nodes["sc"].weight), stride=2).numpy().reshape(4, -1)
    np.testing.assert_allclose(sc.apply(x).reshape(4, -1), expected, rtol=1e-12, atol=1e-12)  # float64: unrolled dense vs torch conv1d
    # each input channel position read by the stride-2 1x1 kernel reaches the 3 output channels; the rest none
    np.testing.assert_array_equal(sc.fanout(structural=True).reshape(c, n), np.tile([3, 0, 3, 0, 3, 0], (c, 1)))
    assert int(sc.structure.sum()) == 3 * c * 3 and sc.structure.size == 9 * 12


def test_a_shortcut_deeper_than_loihis_synaptic_delays_is_refused():
    n = ir.MAX_SYNAPSE_DELAY + 2
    nodes = {"skip": affine(W)}
    edges = [("input", "skip"), ("skip", f"l{n - 1}"), (f"l{n - 1}", "output")]
    prev = "input"
    for i in range(n):
        nodes[f"f{i}"], nodes[f"l{i}"] = affine(W), lif(3)
        edges += [(prev, f"f{i}"), (f"f{i}", f"l{i}")]
        prev = f"l{i}"
    with pytest.raises(NeurokdError, match=f"Loihi's synaptic delays reach {ir.MAX_SYNAPSE_DELAY} steps"):
        ir.from_nir(_graph(nodes, edges))


def test_recurrent_lif_is_accepted_with_a_one_step_recurrent_synapse():
    nodes = {"fc": affine(W), "lif": lif(3), "rec": affine(W * 0.1)}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")]
    net = ir.from_nir(_graph(nodes, edges))
    (layer,) = net.layers
    assert [s.recurrent for s in layer.synapses] == [False, True] and net.recurrent and layer.delay == 1


def test_inputs_of_the_wrong_shape_are_refused():
    net = ir.from_nir(student_to_nir(mlp_student(), dt=1e-4))
    with pytest.raises(NeurokdError, match=r"needs \(N, 16\) or \(N, T, 16\)"):
        net.input_sequence(np.zeros((4, 15)))
