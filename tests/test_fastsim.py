"""The fast hardware model: bit for bit Lava fixed_pt, spike for spike Lava floating_pt, on the same IR.

Networks: an exported MLP student, an exported conv1d student (batch norm folded, strided 1-D convs),
a conv graph (stride, padding, a sum pool composed into a conv, an average pool alone, IF and LIF), a
CubaLIF graph (recurrent, or with an LI readout), and a fixed-point network pushed into Lava's 24-bit wraps and saturation.
``verify`` must name layer, sample and step of the first difference on a deliberately perturbed network.
"""

from __future__ import annotations

import copy
import re

import nir
import numpy as np
import pytest
import torch

from neurokd.errors import CheckFailed, NeurokdError
from neurokd.exporters.to_nir import student_to_nir
from neurokd.hardware.engines import fastsim
from neurokd.hardware.network import ir
from neurokd.hardware.engines.fastsim import first_difference, lava_dense_weights, run_fast, run_split_fast, verify
from neurokd.hardware.network.nir_semantics import reference_run
from neurokd.hardware.network.quantize import quantize
from neurokd.models import build_student


# --------------------------------------------------------------------------------------------------
# Small networks
# --------------------------------------------------------------------------------------------------

def _lif(shape, tau, thr):
    return nir.LIF(tau=np.full(shape, tau), r=np.full(shape, tau / 1e-4), v_leak=np.zeros(shape),
                   v_threshold=np.full(shape, thr), v_reset=np.zeros(shape))


def conv_graph(seed: int = 1) -> nir.NIRGraph:
    """Conv (stride 2, padding 1) -> LIF -> SumPool2d -> Conv (composed into one conv) -> IF ->
    AvgPool2d (a depthwise conv) -> LIF -> Flatten -> Affine readout."""
    rng = np.random.default_rng(seed)
    s1, s2, s3 = (4, 6, 8), (6, 3, 4), (6, 3, 2)
    nodes = {
        "input": nir.Input(np.array([2, 12, 16])),
        "conv1": nir.Conv2d(input_shape=(12, 16), weight=rng.normal(size=(4, 2, 3, 3)) * 0.6, stride=(2, 2),
                            padding=(1, 1), dilation=1, groups=1, bias=rng.normal(size=4) * 0.05),
        "lif1": _lif(s1, 5e-4, 1.0),
        "pool1": nir.SumPool2d(kernel_size=np.array([2, 2]), stride=np.array([2, 2]), padding=np.array([0, 0])),
        "conv2": nir.Conv2d(input_shape=(3, 4), weight=rng.normal(size=(6, 4, 3, 3)) * 0.35, stride=1,
                            padding=(1, 1), dilation=1, groups=1, bias=np.full(6, 0.1)),
        "lif2": nir.IF(r=np.ones(s2), v_threshold=np.full(s2, 1.5), v_reset=np.zeros(s2)),
        "pool2": nir.AvgPool2d(kernel_size=np.array([1, 2]), stride=np.array([1, 2]), padding=np.array([0, 0])),
        "lif3": _lif(s3, 2e-4, 0.3),
        "flat": nir.Flatten(input_type={"input": np.array(s3)}, start_dim=0, end_dim=-1),
        "fc": nir.Affine(weight=rng.normal(size=(3, 36)), bias=rng.normal(size=3) * 0.1),
        "output": nir.Output(np.array([3])),
    }
    names = list(nodes)
    return nir.NIRGraph(nodes, list(zip(names[:-1], names[1:])), metadata={"dt": 1e-4}, type_check=False)


def cuba_graph(recurrent: bool, seed: int = 2) -> nir.NIRGraph:
    """A CubaLIF (synaptic current, current bias) with a recurrent Affine and a LIF output, or without
    the recurrent edge and with a leaky-integrator (LI) output read on the host."""
    rng = np.random.default_rng(seed)
    n = 10
    nodes = {"input": nir.Input(np.array([6])),
             "fc": nir.Affine(weight=rng.normal(size=(n, 6)) * 1.5, bias=np.full(n, 0.2)),
             "cuba": nir.CubaLIF(tau_syn=np.full(n, 3e-4), tau_mem=np.full(n, 8e-4), r=np.full(n, 8.0),
                                 v_leak=np.zeros(n), v_threshold=np.ones(n), v_reset=np.zeros(n), w_in=np.full(n, 3.0)),
             "rec": nir.Affine(weight=rng.normal(size=(n, n)) * 0.6, bias=np.zeros(n)),
             "fc2": nir.Affine(weight=rng.normal(size=(4, n)) * 1.2, bias=rng.normal(size=4) * 0.1),
             "out": _lif(4, 3e-4, 0.5) if recurrent else nir.LI(tau=np.full(4, 3e-4), r=np.full(4, 3.0),
                                                                 v_leak=np.zeros(4)),
             "output": nir.Output(np.array([4]))}
    edges = [("input", "fc"), ("fc", "cuba"), ("cuba", "fc2"), ("fc2", "out"), ("out", "output")]
    if recurrent:
        edges += [("cuba", "rec"), ("rec", "cuba")]
    else:
        del nodes["rec"]
    return nir.NIRGraph(nodes, edges, metadata={"dt": 1e-4}, type_check=False)


@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    student = build_student("mlp", (16,), 5, timesteps=6, beta=0.9, hidden=(24, 12)).eval()
    with torch.no_grad():                      # stronger weights so that both layers spike
        student.net.fc1.weight.mul_(3.0)
        student.net.fc2.weight.mul_(3.0)
    x = np.random.default_rng(0).random((12, 16))
    return ir.from_nir(student_to_nir(student, dt=1e-4)), x


@pytest.fixture(scope="module")
def conv_net():
    return ir.from_nir(conv_graph()), np.random.default_rng(3).random((4, 2, 12, 16))


@pytest.fixture(scope="module")
def rec_net():
    return ir.from_nir(cuba_graph(recurrent=True)), (np.random.default_rng(4).random((3, 10, 6)) < 0.5).astype(float)


def _spiking_everywhere(result, network, low=0.02, high=0.9):
    for name in network.spiking_layers:
        rate = result.counts[name].mean() / result.timesteps
        assert low < rate < high, f"{name} spikes at rate {rate:.3f}: the comparison would prove little"


def assert_same(network, fast, lava, exact_readout: bool) -> None:
    """Every spike of every layer at every step, counts, readouts, logits and predictions."""
    assert first_difference(network, fast, lava) is None
    for name in network.spiking_layers:
        np.testing.assert_array_equal(fast.spikes[name], lava.spikes[name])
        np.testing.assert_array_equal(fast.counts[name], lava.counts[name])
    for name, ro in lava.readout.items():
        if exact_readout:
            np.testing.assert_array_equal(fast.readout[name], ro)
        else:
            np.testing.assert_allclose(fast.readout[name], ro, rtol=0, atol=1e-12)  # float64: a matrix product here, W[:, s].sum in Lava (fastsim docstring)
    np.testing.assert_array_equal(fast.predictions, lava.predictions)
    assert fast.delays == lava.delays and fast.samples == lava.samples and fast.timesteps == lava.timesteps


# --------------------------------------------------------------------------------------------------
# Without Lava: the IR's own equations, batching, input forms, errors
# --------------------------------------------------------------------------------------------------

def test_fast_float_equals_the_ir_equations_on_mlp_conv_pool_and_recurrent_networks(mlp, conv_net, rec_net):
    for network, x, steps in ((*mlp, None), (*conv_net, 6), (*rec_net, None)):
        res = run_fast(network, x, precision="float", timesteps=steps, record_steps=True)
        ref = reference_run(network, x, steps)
        _spiking_everywhere(res, network)
        for name in network.spiking_layers:
            np.testing.assert_array_equal(res.spikes[name], ref[name])
        for name, ro in res.readout.items():
            np.testing.assert_allclose(ro, ref[name], atol=1e-9)  # float64 sums in another order than the reference's


def test_chunks_and_repeated_frames_give_the_same_result_as_one_batch(conv_net):
    network, x = conv_net
    one = run_fast(network, x, precision="fixed", timesteps=6, record_steps=True)
    chunked = run_fast(network, x, precision="fixed", timesteps=6, record_steps=True, fixed=one.fixed, batch_size=3)
    frames = run_fast(network, np.repeat(x[:, None], 6, axis=1), precision="fixed", record_steps=True, fixed=one.fixed)
    for other in (chunked, frames):
        for name in network.spiking_layers:
            np.testing.assert_array_equal(other.spikes[name], one.spikes[name])
        np.testing.assert_array_equal(other.readout["fc"], one.readout["fc"])
    assert one.engine == "fast" and one.mode == "batch" and one.samples_per_second > 0


@pytest.mark.filterwarnings("ignore:TF32 acceleration")
def test_fixed_conv_stays_exact_when_torch_picks_an_inexact_convolution_algorithm():
    """Without oneDNN, torch may convolve float32 with a fast algorithm (NNPACK) that is not exact on
    integers: the fast model detects the non-integer sums and recomputes in float64."""
    import torch.nn.functional as F

    rng = np.random.default_rng(0)
    shape = (16, 40)
    nodes = {"input": nir.Input(np.array([8, 40])),
             "c1": nir.Conv1d(input_shape=40, weight=rng.normal(size=(16, 8, 3)), stride=1, padding=1, dilation=1,
                              groups=1, bias=np.zeros(16)),
             "l1": _lif(shape, 5e-4, 1.0),
             "c2": nir.Conv1d(input_shape=40, weight=rng.normal(size=(16, 16, 3)) * 0.5, stride=1, padding=1,
                              dilation=1, groups=1, bias=np.zeros(16)),
             "l2": _lif(shape, 5e-4, 1.0),
             "output": nir.Output(np.array(shape))}
    names = list(nodes)
    network = ir.from_nir(nir.NIRGraph(nodes, list(zip(names[:-1], names[1:])), metadata={"dt": 1e-4},
                                       type_check=False))
    x = rng.normal(size=(64, 8, 40))
    ref = run_fast(network, x, precision="fixed", timesteps=4, record_steps=True)
    _spiking_everywhere(ref, network)
    with torch.backends.mkldnn.flags(enabled=False):          # torch's own fallback (NNPACK where built in)
        native = run_fast(network, x, precision="fixed", timesteps=4, record_steps=True, fixed=ref.fixed)

    conv2d = F.conv2d

    def sloppy(inp, weight, **kw):                              # an inexact float32 algorithm, made explicit
        y = conv2d(inp, weight, **kw)
        return y + 0.25 if y.dtype == torch.float32 else y

    with pytest.MonkeyPatch.context() as mp:
        mp.setattr(fastsim.F, "conv2d", sloppy)
        patched = run_fast(network, x, precision="fixed", timesteps=4, record_steps=True, fixed=ref.fixed)
    for other in (native, patched):
        for name in network.spiking_layers:
            np.testing.assert_array_equal(other.spikes[name], ref.spikes[name])


def test_verify_names_layer_sample_step_and_neuron_of_the_first_difference(mlp):
    """A result standing in for Lava's, with one spike moved: the message points at it."""
    network, x = mlp
    fixed = quantize(network, input_sample=x)
    good = run_fast(network, x, precision="fixed", fixed=fixed, record_steps=True)
    report = verify(fixed, x, good)
    assert report["identical"] and report["samples"] == len(x)
    bad = copy.deepcopy(good)
    bad.spikes["lif2"][7, 3, 5] ^= 1
    bad.counts["lif2"][7, 5] += 1 if bad.spikes["lif2"][7, 3, 5] else -1
    with pytest.raises(CheckFailed, match=r"layer 'lif2', sample 7, step 3, neuron 5"):
        verify(fixed, x, bad)
    soft = verify(fixed, x, bad, strict=False)                 # for callers that write their files first
    assert not soft["identical"] and soft["first_difference"]["step"] == 3 and soft["layers"]["lif2"]["identical"] < 1


def test_bad_inputs_are_refused_with_a_one_line_error(mlp):
    network, x = mlp
    with pytest.raises(NeurokdError, match="precision"):
        run_fast(network, x, precision="double")
    with pytest.raises(NeurokdError, match="shape"):
        run_fast(network, x[:, :5])
    with pytest.raises(NeurokdError, match="NaN"):
        run_fast(network, np.full_like(x, np.nan))
    with pytest.raises(NeurokdError, match="unknown layer"):
        run_fast(network, x, record_steps=["nope"])
    with pytest.raises(NeurokdError, match="Network or a FixedNetwork"):
        verify("model.nir", x)


# --------------------------------------------------------------------------------------------------
# Against Lava
# --------------------------------------------------------------------------------------------------

@pytest.mark.lava
def test_dense_weight_clip_and_truncate_are_lavas():
    from neurokd.hardware import lava_compat

    lava_compat.install()
    from lava.utils.weightutils import SignMode, clip_weights, determine_sign_mode, truncate_weights

    rng = np.random.default_rng(0)
    cases = [rng.integers(-400, 400, (7, 9)), rng.integers(0, 300, (5, 4)), -rng.integers(0, 300, (5, 4)),
             rng.integers(-256, 255, (6, 6)), np.zeros((3, 3), dtype=int)]
    for w in cases:
        for bits in (8, 7, 5, 3):
            mode = determine_sign_mode(w)
            expect = truncate_weights(clip_weights(w, mode, num_bits=8), mode, bits)
            np.testing.assert_array_equal(lava_dense_weights(w, bits), expect)
    assert SignMode.MIXED == determine_sign_mode(cases[0])


@pytest.mark.lava
@pytest.mark.parametrize("precision", ["float", "fixed"])
def test_fast_model_matches_lava_on_an_exported_mlp_student(mlp, precision):
    from neurokd.hardware.engines.lava_backend import run_lava

    network, x = mlp
    lava = run_lava(network, x, precision=precision, record_steps=True)
    fast = run_fast(network, x, precision=precision, record_steps=True, fixed=lava.fixed)
    _spiking_everywhere(fast, network)
    assert_same(network, fast, lava, exact_readout=precision == "fixed")


@pytest.mark.lava
@pytest.mark.parametrize("precision", ["float", "fixed"])
def test_fast_model_matches_lava_on_conv_stride_padding_and_pooling(conv_net, precision):
    from neurokd.hardware.engines.lava_backend import run_lava

    network, x = conv_net
    fixed = quantize(network, input_sample=x) if precision == "fixed" else None
    lava = run_lava(network, x, precision=precision, timesteps=6, fixed=fixed, record_steps=True)
    fast = run_fast(network, x, precision=precision, timesteps=6, fixed=fixed, record_steps=True)
    _spiking_everywhere(fast, network)
    assert [s.kind for l in network.layers for s in l.synapses] == ["conv", "conv", "conv", "dense"]
    assert_same(network, fast, lava, exact_readout=precision == "fixed")


@pytest.mark.lava
@pytest.mark.parametrize("precision", ["float", "fixed"])
@pytest.mark.parametrize("recurrent", [True, False])
def test_fast_model_matches_lava_on_cubalif_networks_recurrent_or_with_a_leaky_readout(precision, recurrent):
    """Recurrent: Lava runs one sample per run, biases through windowed synapses. Feed-forward: the
    CubaLIF's current bias through an always-on synapse, an LI output filtered on the host."""
    from neurokd.hardware.engines.lava_backend import run_lava

    network = ir.from_nir(cuba_graph(recurrent))
    x = (np.random.default_rng(4).random((3, 10, 6)) < 0.5).astype(float)
    lava = run_lava(network, x, precision=precision, record_steps=True)
    fast = run_fast(network, x, precision=precision, record_steps=True, fixed=lava.fixed)
    assert lava.mode == ("per-sample" if recurrent else "stream") and network.layer("cuba").neuron.du < 1
    _spiking_everywhere(fast, network)
    assert_same(network, fast, lava, exact_readout=precision == "fixed")


@pytest.mark.lava
def test_fast_model_matches_lava_on_an_exported_conv1d_student_in_both_precisions():
    from neurokd.hardware.engines.lava_backend import run_lava

    torch.manual_seed(3)
    student = build_student("conv1d", (4, 20), 3, timesteps=5, channels=(6, 8), hidden=10).eval()
    with torch.no_grad():
        for m in student.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.5, 1.5)
    network = ir.from_nir(student_to_nir(student, dt=1e-4))
    x = np.random.default_rng(5).normal(size=(4, 4, 20))
    for precision in ("float", "fixed"):
        lava = run_lava(network, x, precision=precision, record_steps=True)
        fast = run_fast(network, x, precision=precision, record_steps=True, fixed=lava.fixed)
        assert sum(fast.counts[k].sum() for k in network.spiking_layers) > 50
        assert_same(network, fast, lava, exact_readout=precision == "fixed")


@pytest.mark.lava
def test_resnet_shortcuts_wait_in_lava_delay_synapses_and_the_fast_model_agrees():
    """A resnet1d student (identity shortcut, strided 1x1-conv shortcut): Lava floating_pt gives the
    student's own spikes in float64 (so the DelayDense delays the shortcuts by exactly the right step),
    and the fast model equals Lava in both precisions."""
    from neurokd.hardware.engines.lava_backend import run_lava

    torch.manual_seed(3)
    student = build_student("resnet1d", (4, 20), 3, timesteps=5, threshold=0.6, stem=6, channels=(6, 8)).eval()
    with torch.no_grad():
        for m in student.modules():
            if isinstance(m, torch.nn.BatchNorm1d):
                m.running_mean.uniform_(-0.2, 0.2)
                m.running_var.uniform_(0.3, 1.0)
                m.weight.uniform_(0.8, 1.6)
    network = ir.from_nir(student_to_nir(student, dt=1e-4))
    assert {s.name: s.delay for s in network.layer("lif5").synapses} == {"sc5": 2, "conv5": 1}
    x = np.random.default_rng(5).normal(size=(4, 4, 20))
    with torch.no_grad():
        _, spikes, _ = student.double().run(torch.tensor(x))
    for precision in ("float", "fixed"):
        lava = run_lava(network, x, precision=precision, record_steps=True)
        fast = run_fast(network, x, precision=precision, record_steps=True, fixed=lava.fixed)
        _spiking_everywhere(fast, network, low=0.005)
        assert_same(network, fast, lava, exact_readout=precision == "fixed")
        if precision == "float":
            for name in network.spiking_layers:
                np.testing.assert_array_equal(lava.spikes[name], spikes[name].numpy().swapaxes(0, 1).reshape(
                    lava.spikes[name].shape), err_msg=name)


@pytest.mark.lava
@pytest.mark.parametrize("precision", ["float", "fixed"])
def test_a_shortcut_into_a_recurrent_network_is_delayed_in_per_sample_runs_too(precision):
    """A recurrent layer makes Lava run one sample per run (T + max delay steps, buffers zeroed in
    between, biases through windowed synapses); a graded-input shortcut (input -> skip -> b, beside
    input -> fc1 -> a -> fc2 -> b) must still reach b on the step of its sibling: Lava equals the IR's
    delay-free equations and the fast model."""
    from neurokd.hardware.engines.lava_backend import run_lava

    rng = np.random.default_rng(7)
    nodes = {"input": nir.Input(np.array([5])),
             "fc1": nir.Affine(weight=rng.normal(size=(8, 5)) * 2.5, bias=np.full(8, 0.3)),
             "a": _lif(8, 3e-4, 0.6), "rec": nir.Affine(weight=rng.normal(size=(8, 8)) * 0.5, bias=np.zeros(8)),
             "fc2": nir.Affine(weight=rng.normal(size=(6, 8)) * 1.0, bias=np.zeros(6)),
             "skip": nir.Affine(weight=rng.normal(size=(6, 5)) * 0.8, bias=np.full(6, 0.1)),
             "b": _lif(6, 3e-4, 0.5), "output": nir.Output(np.array([6]))}
    edges = [("input", "fc1"), ("fc1", "a"), ("a", "rec"), ("rec", "a"), ("a", "fc2"), ("fc2", "b"),
             ("input", "skip"), ("skip", "b"), ("b", "output")]
    network = ir.from_nir(nir.NIRGraph(nodes, edges, metadata={"dt": 1e-4}, type_check=False))
    assert network.recurrent and {s.name: s.delay for s in network.layer("b").feedforward} == {"fc2": 1, "skip": 2}
    x = rng.random((4, 7, 5)) * 1.5
    lava = run_lava(network, x, precision=precision, record_steps=True)
    fast = run_fast(network, x, precision=precision, record_steps=True, fixed=lava.fixed)
    assert lava.mode == "per-sample"
    _spiking_everywhere(fast, network)
    assert_same(network, fast, lava, exact_readout=precision == "fixed")
    if precision == "float":
        ref = reference_run(network, x)
        for name in network.spiking_layers:
            np.testing.assert_array_equal(lava.spikes[name], ref[name], err_msg=name)


def delay_graph(seed: int = 8) -> nir.NIRGraph:
    """NIR Delay nodes on both sides of the weights: input -> fc1 -> Delay (per target neuron, 0-3 steps)
    -> a -> Delay (per source neuron) -> fc2 -> b, plus a uniform 2-step Delay on a graded shortcut
    input -> skip -> Delay -> b."""
    rng = np.random.default_rng(seed)
    dt = 1e-4
    nodes = {"input": nir.Input(np.array([6])),
             "fc1": nir.Affine(weight=rng.normal(size=(10, 6)) * 1.5, bias=np.full(10, 0.2)),
             "d1": nir.Delay(delay=rng.integers(0, 4, 10) * dt), "a": _lif(10, 3e-4, 0.6),
             "d2": nir.Delay(delay=rng.integers(0, 3, 10) * dt),
             "fc2": nir.Affine(weight=rng.normal(size=(4, 10)) * 1.2, bias=np.zeros(4)),
             "skip": nir.Affine(weight=rng.normal(size=(4, 6)) * 0.6, bias=np.zeros(4)),
             "d3": nir.Delay(delay=np.full(4, 2 * dt)), "b": _lif(4, 3e-4, 0.4), "output": nir.Output(np.array([4]))}
    edges = [("input", "fc1"), ("fc1", "d1"), ("d1", "a"), ("a", "d2"), ("d2", "fc2"), ("fc2", "b"),
             ("input", "skip"), ("skip", "d3"), ("d3", "b"), ("b", "output")]
    return nir.NIRGraph(nodes, edges, metadata={"dt": dt}, type_check=False)


def test_nir_delay_nodes_become_synaptic_delays_that_the_fast_model_follows():
    """The fast model (float64) gives nir_to_torch's spikes (its Delay is the reference) on every layer."""
    from neurokd.exporters.from_nir import nir_to_torch

    graph = delay_graph()
    network = ir.from_nir(graph)
    assert network.per_sample and not network.recurrent
    b = {s.name: s for s in network.layer("b").synapses}
    a = network.layer("a").synapses[0]
    np.testing.assert_array_equal(a.delays, np.repeat(np.round(graph.nodes["d1"].delay / 1e-4)[:, None], 6, 1))
    np.testing.assert_array_equal(b["fc2"].delays, np.repeat(np.round(graph.nodes["d2"].delay / 1e-4)[None, :], 4, 0))
    assert np.all(b["d3"].delays == 2) and b["d3"].delay == 2             # shortcut: one step behind the deeper path
    x = np.random.default_rng(1).random((5, 9, 6)) * 1.5
    fast = run_fast(network, x, precision="float", record_steps=True)
    with torch.no_grad():
        rec = nir_to_torch(graph).double()(torch.tensor(x.swapaxes(0, 1)), record=True)
    _spiking_everywhere(fast, network)
    for name in ("a", "b"):
        np.testing.assert_array_equal(fast.spikes[name], rec[name].numpy().swapaxes(0, 1).astype(bool), err_msg=name)
    without = run_fast(ir.from_nir(delay_graph_without_delays()), x, precision="float", record_steps=True)
    assert not np.array_equal(without.spikes["b"], fast.spikes["b"])         # the delays change the result


def delay_graph_without_delays() -> nir.NIRGraph:
    g = delay_graph()
    for n in ("d1", "d2", "d3"):
        g.nodes[n] = nir.Delay(delay=np.zeros_like(g.nodes[n].delay))
    return g


def test_a_per_neuron_delay_between_two_weight_nodes_or_off_the_step_grid_is_refused():
    rng = np.random.default_rng(0)
    nodes = {"input": nir.Input(np.array([4])), "f1": nir.Linear(weight=rng.normal(size=(5, 4))),
             "d": nir.Delay(delay=np.arange(5) * 1e-4), "f2": nir.Linear(weight=rng.normal(size=(3, 5))),
             "l": _lif(3, 3e-4, 1.0), "output": nir.Output(np.array([3]))}
    edges = [("input", "f1"), ("f1", "d"), ("d", "f2"), ("f2", "l"), ("l", "output")]
    with pytest.raises(NeurokdError, match="between two weight nodes"):
        ir.from_nir(nir.NIRGraph(nodes, edges, metadata={"dt": 1e-4}, type_check=False))
    nodes["d"] = nir.Delay(delay=np.full(5, 1.5e-4))
    with pytest.raises(NeurokdError, match="not whole multiples of dt"):
        ir.from_nir(nir.NIRGraph(nodes, edges, metadata={"dt": 1e-4}, type_check=False))


@pytest.mark.lava
@pytest.mark.parametrize("precision", ["float", "fixed"])
def test_lava_runs_nir_delays_in_delay_dense_one_sample_per_run_like_the_fast_model(precision):
    from neurokd.hardware.engines.lava_backend import run_lava

    network = ir.from_nir(delay_graph())
    x = np.random.default_rng(1).random((5, 9, 6)) * 1.5
    lava = run_lava(network, x, precision=precision, record_steps=True)
    fast = run_fast(network, x, precision=precision, record_steps=True, fixed=lava.fixed)
    assert lava.mode == "per-sample"
    _spiking_everywhere(fast, network)
    assert_same(network, fast, lava, exact_readout=precision == "fixed")


@pytest.mark.lava
def test_fast_fixed_reproduces_lavas_conv_wrap_u_wrap_and_v_saturation(conv_net):
    """Weight exponents pushed up until the 24-bit conv clamp wraps, u wraps and v saturates at
    -(2^23 - 1): spikes and membrane voltages stay identical to Lava's."""
    from neurokd.hardware.engines.lava_backend import run_lava

    network, x = conv_net
    fixed = quantize(network, input_sample=x)
    fixed.layers["lif1"].synapses["conv1"].weight_exp += 8
    fixed.layers["lif2"].synapses["conv2"].weight_exp += 5
    syn, fs = network.layer("lif1").synapses[0], fixed.layers["lif1"].synapses["conv1"]
    raw = syn.apply(fixed.quantize_input(x).astype(float), (fs.mant.astype(np.int64) << fs.weight_exp).astype(float))
    assert np.abs(raw).max() >= 2 ** 23                      # the conv output leaves 24 bits: Lava wraps it
    layers = ["lif1", "lif2"]
    lava = run_lava(network, x, precision="fixed", timesteps=6, fixed=fixed, record_steps=True, record_voltage=layers)
    fast = run_fast(network, x, precision="fixed", timesteps=6, fixed=fixed, record_steps=True, record_voltage=layers)
    assert_same(network, fast, lava, exact_readout=True)
    for name in layers:
        v_int = fast.voltages[name] * fixed.layers[name].scale * 64
        assert v_int.min() == -(2 ** 23 - 1)                  # saturated, not wrapped
        np.testing.assert_array_equal(fast.voltages[name], lava.voltages[name])


@pytest.mark.lava
def test_verify_raises_on_a_perturbed_network_naming_layer_sample_and_step(mlp):
    """One target neuron's weights changed after Lava ran: verify compares every spike and stops at the first."""
    from neurokd.hardware.engines.lava_backend import run_lava

    network, x = mlp
    fixed = quantize(network, input_sample=x)
    lava = run_lava(network, x, precision="fixed", fixed=fixed, record_steps=True)
    assert verify(fixed, x, lava)["identical"]
    perturbed = copy.deepcopy(fixed)
    perturbed.layers["lif2"].synapses["fc2"].mant[4] = 254
    perturbed.network = network
    with pytest.raises(CheckFailed) as err:
        verify(perturbed, x, lava)
    found = re.search(r"layer '(\w+)', sample (\d+), step (\d+), neuron (\d+)", str(err.value))
    assert found and found.group(1) == "lif2" and found.group(4) == "4"
    fast = run_fast(network, x, precision="fixed", fixed=perturbed, record_steps=True)
    diff = np.argwhere(fast.spikes["lif2"] != lava.spikes["lif2"])
    first = diff[np.lexsort((diff[:, 2], diff[:, 0], diff[:, 1]))[0]]
    assert (int(found.group(2)), int(found.group(3))) == (int(first[0]), int(first[1]))


@pytest.mark.lava
def test_run_split_fast_runs_everything_fast_and_checks_a_random_subset_in_lava(conv_net):
    network, x = conv_net
    x = np.concatenate([x, x[::-1] * 0.5])
    result, checked = run_split_fast(network, x, precision="fixed", timesteps=6, verify_samples=3, seed=1,
                                     record_steps=True)
    report = checked.report
    assert checked.lava.engine == "lava" and checked.fast.engine == "fast" and checked.lava.samples == 3
    for name, counts in result.counts.items():               # the subset's fast rows are the split's rows
        assert np.array_equal(checked.fast.counts[name], counts[checked.indices])
        assert np.array_equal(checked.lava.counts[name], counts[checked.indices])
    assert result.samples == 8 and report["samples"] == 3 and report["identical"]
    assert all(v["identical"] == 1.0 and v["compared"] == "spikes per step" for v in report["layers"].values())
    assert len(set(report["indices"])) == 3 and max(report["indices"]) < 8
    _, none = run_split_fast(network, x, precision="float", timesteps=6, verify_samples=0)
    assert none is None
