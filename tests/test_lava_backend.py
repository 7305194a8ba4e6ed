"""The Lava backend: floating_pt reproduces PyTorch spike for spike, fixed_pt reproduces an integer
re-implementation of Lava's bit-accurate equations, streaming many samples equals one run per sample,
and Lava's own semantics the backend relies on (LIFReset phase, Conv fixed point) are pinned down.
"""

from __future__ import annotations

import multiprocessing
import time

import nir
import numpy as np
import pytest
import torch

from conftest import require_lava

require_lava()  # the module imports Lava: it skips, saying why, where Lava is absent

from neurokd.errors import NeurokdError
from neurokd.exporters.to_nir import student_to_nir
from neurokd.hardware.network import ir
from neurokd.hardware.engines.lava_backend import run_lava
from neurokd.hardware.network.nir_semantics import reference_run
from neurokd.hardware.network.quantize import FORMAT, quantize, quantize_weights
from neurokd.models import build_student

pytestmark = pytest.mark.lava


# --------------------------------------------------------------------------------------------------
# Fixtures: small networks and their runs, shared by several assertions
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def mlp():
    torch.manual_seed(0)
    student = build_student("mlp", (16,), 5, timesteps=6, beta=0.9, hidden=(24, 12)).eval()
    with torch.no_grad():                      # a stronger first layer so that both layers spike
        student.net.fc1.weight.mul_(3.0)
        student.net.fc2.weight.mul_(3.0)
    graph = student_to_nir(student, dt=1e-4)
    x = np.random.default_rng(0).random((10, 16))
    return student, ir.from_nir(graph), x


@pytest.fixture(scope="module")
def mlp_float(mlp):
    _, net, x = mlp
    return run_lava(net, x, precision="float", record_steps=True, chunk_samples=4)


@pytest.fixture(scope="module")
def mlp_fixed(mlp):
    _, net, x = mlp
    fixed = quantize(net, input_sample=x)
    return run_lava(net, x, precision="fixed", fixed=fixed, record_steps=True, chunk_samples=4)


def conv_graph(seed=4) -> nir.NIRGraph:
    """Non-square input, stride, padding, a pool chained into a conv, a flatten into an affine readout."""
    rng = np.random.default_rng(seed)
    n1 = (4, 5, 6)
    nodes = {
        "input": nir.Input(np.array([2, 9, 11])),
        "conv1": nir.Conv2d(input_shape=(9, 11), weight=rng.normal(size=(4, 2, 3, 3)), stride=(2, 2), padding=(1, 1),
                            dilation=1, groups=1, bias=rng.normal(size=4) * 0.1),
        "lif1": nir.LIF(tau=np.full(n1, 1e-3), r=np.full(n1, 10.0), v_leak=np.zeros(n1), v_threshold=np.full(n1, 0.8),
                        v_reset=np.zeros(n1)),
        "conv2": nir.Conv2d(input_shape=(5, 6), weight=rng.normal(size=(6, 2, 3, 2)), stride=(1, 2), padding=(1, 0),
                            dilation=1, groups=2, bias=np.zeros(6)),
        "lif2": nir.IF(r=np.ones((6, 5, 3)), v_threshold=np.ones((6, 5, 3))),
        "flat": nir.Flatten(input_type={"input": np.array([6, 5, 3])}, start_dim=0),
        "fc": nir.Affine(weight=rng.normal(size=(3, 90)), bias=rng.normal(size=3)),
        "output": nir.Output(np.array([3])),
    }
    names = list(nodes)
    return nir.NIRGraph(nodes, list(zip(names[:-1], names[1:])), metadata={"dt": 1e-4}, type_check=False)


# --------------------------------------------------------------------------------------------------
# An integer re-implementation of Lava's fixed-point models (lava/proc/lif, dense, conv models.py)
# --------------------------------------------------------------------------------------------------

def _decay(x: np.ndarray, keep: int) -> np.ndarray:
    """sign(x) * (|x * keep| >> 12), as AbstractPyLifModelFixed."""
    return np.sign(x) * ((np.abs(x) * keep) >> 12)


def fixed_reference(net: ir.Network, fx, x_int: np.ndarray) -> dict[str, np.ndarray]:
    """Feed-forward networks: per layer (N, T, size) spikes, or integer synaptic input for a readout."""
    n, steps = x_int.shape[:2]
    state = {l.name: (np.zeros((n, l.size), np.int64), np.zeros((n, l.size), np.int64)) for l in net.layers}
    out = {l.name: np.zeros((n, steps, l.size), np.int64) for l in net.layers}
    top = FORMAT["state"]
    for t in range(steps):
        now = {net.input_name: x_int[:, t].reshape(n, -1).astype(np.int64)}
        for layer in net.layers:
            fl = fx.layers[layer.name]
            a = np.zeros((n, layer.size), np.int64)
            for syn in layer.synapses:
                q = fl.synapses[syn.name]
                src = now[syn.source].reshape(n, *syn.in_shape).astype(np.float64)
                if syn.kind == "dense":
                    acc = np.rint(syn.apply(src, q.mant.astype(np.float64))).astype(np.int64).reshape(n, -1)
                    acc = acc << q.weight_exp if q.weight_exp >= 0 else acc >> -q.weight_exp
                else:                                    # Conv: integer weights, no exponent, 24-bit clamp
                    w = (q.mant.astype(np.int64) << q.weight_exp).astype(np.float64)
                    acc = np.rint(syn.apply(src, w)).astype(np.int64).reshape(n, -1)
                    acc = (acc + 2 ** 23) % 2 ** 24 - 2 ** 23
                a += acc
            if layer.neuron.kind == "none":
                out[layer.name][:, t] = a
                continue
            u, v = state[layer.name]
            nf = fl.neuron
            u = _decay(u, 4096 - (nf.du + 1)) + (a << 6)
            u = np.where(u > 2 ** 23, u - 2 ** 24, np.where(u <= -(2 ** 23), u + 2 ** 24, u))
            v = _decay(v, 4096 - nf.dv) + u + (nf.bias_mant.astype(np.int64) << nf.bias_exp)
            v = np.clip(v, -top, top)
            s = v > (nf.vth << 6)
            v = np.where(s, 0, v)
            state[layer.name] = (u, v)
            out[layer.name][:, t] = s
            now[layer.name] = s.astype(np.int64)
    return out


# --------------------------------------------------------------------------------------------------
# Lava semantics neurokd relies on
# --------------------------------------------------------------------------------------------------

def test_lifreset_zeroes_state_before_integrating_when_time_step_mod_interval_is_offset():
    import neurokd.hardware  # noqa: F401
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.lif.process import LIFReset
    from lava.proc.monitor.process import Monitor

    lif = LIFReset(shape=(1,), du=1.0, dv=0.0, bias_mant=0.25, vth=100.0, reset_interval=4, reset_offset=2)
    mon = Monitor()
    mon.probe(lif.v, 10)
    try:
        lif.run(condition=RunSteps(num_steps=10), run_cfg=Loihi2SimCfg(select_tag="floating_pt"))
        v = mon.get_data()[lif.name]["v"].reshape(-1)
    finally:
        lif.stop()
    # time steps 1..10; zeroed at time_step % 4 == 2 (steps 2, 6, 10), then the bias is integrated
    np.testing.assert_allclose(v, [0.25, 0.25, 0.5, 0.75, 1.0, 0.25, 0.5, 0.75, 1.0, 0.25])


def test_lava_conv_fixed_ignores_weight_exp_and_8bit_clip_while_dense_applies_both():
    import neurokd.hardware  # noqa: F401
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.conv.process import Conv
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source

    src = Source(data=np.ones((2, 2, 1, 2), dtype=np.int32))
    conv = Conv(weight=np.full((1, 1, 1, 1), 1000, dtype=np.int32), weight_exp=3, input_shape=(2, 2, 1),
                num_message_bits=8)
    dense = Dense(weights=np.array([[300, -301, 7, 0]]), weight_exp=2, num_message_bits=8)
    sink_c, sink_d = Sink(shape=(2, 2, 1), buffer=2), Sink(shape=(1,), buffer=2)
    src.s_out.connect(conv.s_in)
    conv.a_out.connect(sink_c.a_in)
    src.s_out.flatten().connect(dense.s_in)
    dense.a_out.connect(sink_d.a_in)
    try:
        src.run(condition=RunSteps(num_steps=2), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        c, d = sink_c.data.get(), sink_d.data.get()
    finally:
        src.stop()
    assert np.all(c[..., 1] == 1000)                            # neither << 3 nor clipped to 255
    assert d[0, 1] == (254 - 256 + 6) * 4                       # clip to [-256, 255], even (LSB dropped), << 2


def test_neurokd_mantissas_pass_lavas_clip_and_truncate_unchanged():
    import neurokd.hardware  # noqa: F401
    from lava.utils.weightutils import SignMode, clip_weights, truncate_weights

    w = np.random.default_rng(0).normal(size=(40, 30))
    for sign, mode in ((1, SignMode.MIXED), (np.abs, SignMode.EXCITATORY), (lambda a: -np.abs(a), SignMode.INHIBITORY)):
        ww = w * sign if not callable(sign) else sign(w)
        mant, exp, name = quantize_weights(ww, 1000.0)
        assert name == mode.name.lower()
        lava = truncate_weights(clip_weights(mant, mode, num_bits=8), mode, num_weight_bits=8)
        np.testing.assert_array_equal(lava, mant)
        assert np.abs(mant).max() >= 128                         # the largest weight uses the mantissa's range
        np.testing.assert_allclose(mant * 2.0 ** exp / 1000.0, ww, atol=2.0 ** exp / 1000.0 * (1 + (name == "mixed")))


# --------------------------------------------------------------------------------------------------
# floating_pt == PyTorch
# --------------------------------------------------------------------------------------------------

def test_lava_float_matches_student_spikes(mlp, mlp_float):
    student, net, x = mlp
    with torch.no_grad():
        logits, spikes, _ = student.run(torch.tensor(x, dtype=torch.float32))
    for name, s in spikes.items():
        ref = s.numpy().swapaxes(0, 1)
        assert ref.sum() > 20, f"{name} hardly spikes: the test would prove little"
        np.testing.assert_array_equal(mlp_float.spikes[name], ref)
        np.testing.assert_array_equal(mlp_float.counts[name], ref.sum(axis=1))
    np.testing.assert_allclose(mlp_float.logits, logits.numpy(), atol=1e-5)  # Lava's float64 vs the float32 student
    np.testing.assert_array_equal(mlp_float.predictions, logits.numpy().argmax(axis=1))
    assert mlp_float.delays == {"lif1": 1, "lif2": 2, "readout": 3} and mlp_float.mode == "stream"


def test_lava_float_conv_layout_stride_padding_groups_match_reference():
    net = ir.from_nir(conv_graph())
    x = (np.random.default_rng(5).random((3, 5, 2, 9, 11)) < 0.5).astype(float)
    res = run_lava(net, x, precision="float", record_steps=True)
    ref = reference_run(net, x)
    for name in ("lif1", "lif2"):
        assert ref[name].sum() > 5
        np.testing.assert_array_equal(res.spikes[name], ref[name])
    np.testing.assert_allclose(res.readout["fc"], ref["fc"], atol=1e-9)  # float64: Lava's sums in its own order
    fx = quantize(net, input_sample=x)
    res_fixed = run_lava(net, x, precision="fixed", fixed=fx, record_steps=True)
    ref_fixed = fixed_reference(net, fx, fx.quantize_input(x))
    for name in ("lif1", "lif2"):
        np.testing.assert_array_equal(res_fixed.spikes[name], ref_fixed[name])
    np.testing.assert_allclose(res_fixed.readout["fc"], ref_fixed["fc"] / fx.layers["fc"].scale + net.layer("fc").neuron.b_u)


@pytest.mark.parametrize("recurrent", [True, False])
def test_lava_float_recurrent_and_cubalif_biases_match_reference(recurrent):
    """A recurrent LIF (one Lava run per sample, state zeroed, windowed bias synapses) and a CubaLIF with a
    current bias (streamed, bias through a synapse): spikes identical to the IR's equations."""
    rng = np.random.default_rng(6)
    n = 6
    if recurrent:
        neuron = nir.LIF(tau=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.full(n, 0.5), v_threshold=np.ones(n))
    else:
        neuron = nir.CubaLIF(tau_syn=np.full(n, 4e-4), tau_mem=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.zeros(n),
                             v_threshold=np.ones(n), w_in=np.full(n, 4.0))
    nodes = {"input": nir.Input(np.array([4])), "fc": nir.Affine(weight=rng.normal(size=(n, 4)), bias=np.full(n, 0.3)),
             "lif": neuron, "fc2": nir.Affine(weight=rng.normal(size=(3, n)), bias=rng.normal(size=3)),
             "out": nir.LIF(tau=np.full(3, 2e-3), r=np.full(3, 20.0), v_leak=np.zeros(3), v_threshold=np.full(3, 0.5)),
             "output": nir.Output(np.array([3]))}
    edges = [("input", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "out"), ("out", "output")]
    if recurrent:
        nodes["rec"] = nir.Affine(weight=rng.normal(size=(n, n)) * 0.8, bias=np.full(n, -0.1))
        edges += [("lif", "rec"), ("rec", "lif")]
    net = ir.from_nir(nir.NIRGraph(nodes, edges, metadata={"dt": 1e-4}, type_check=False))
    assert net.recurrent == recurrent
    x = (rng.random((3, 12, 4)) < 0.5).astype(float)
    res = run_lava(net, x, precision="float", record_steps=True)
    ref = reference_run(net, x)
    assert res.mode == ("per-sample" if recurrent else "stream")
    for name in ("lif", "out"):
        assert 5 < ref[name].sum() < ref[name].size - 5
        np.testing.assert_array_equal(res.spikes[name], ref[name])


@pytest.mark.parametrize("readout", ["li", "cubali"])
def test_non_spiking_readout_gets_its_affine_bias_once(readout):
    """An Affine with a bias into an LI / CubaLI output: Lava float and the fast model equal the IR's
    equations (a bias synapse into the recorded input plus the host's own ``b_u`` would count it twice)."""
    from neurokd.hardware.engines.fastsim import run_fast

    rng = np.random.default_rng(8)
    out = (nir.LI(tau=np.full(3, 3e-4), r=np.full(3, 3.0), v_leak=np.zeros(3)) if readout == "li" else
           nir.CubaLI(tau_syn=np.full(3, 4e-4), tau_mem=np.full(3, 2e-4), r=np.full(3, 2.0), v_leak=np.zeros(3)))
    nodes = {"input": nir.Input(np.array([4])), "fc1": nir.Affine(rng.normal(size=(6, 4)), rng.normal(0, 0.3, 6)),
             "lif1": nir.LIF(tau=np.full(6, 2e-4), r=np.full(6, 2.0), v_leak=np.zeros(6), v_threshold=np.ones(6)),
             "fc2": nir.Affine(rng.normal(size=(3, 6)), np.array([0.5, -0.25, 1.0])), "out": out,
             "output": nir.Output(np.array([3]))}
    edges = [("input", "fc1"), ("fc1", "lif1"), ("lif1", "fc2"), ("fc2", "out"), ("out", "output")]
    net = ir.from_nir(nir.NIRGraph(nodes, edges, metadata={"dt": 1e-4}))
    assert np.any(net.layer("out").neuron.b_u != 0) or np.any(net.layer("out").neuron.b_v != 0)
    x = rng.random((4, 4)) * 2
    ref = reference_run(net, x, timesteps=6)
    assert 0 < ref["lif1"].sum() < ref["lif1"].size
    lava = run_lava(net, x, precision="float", timesteps=6)
    fast = run_fast(net, x, precision="float", timesteps=6)
    # float64 in each engine's order of sums vs the reference's
    np.testing.assert_allclose(lava.readout["out"], ref["out"], rtol=0, atol=1e-9)
    np.testing.assert_allclose(fast.readout["out"], ref["out"], rtol=0, atol=1e-9)


# --------------------------------------------------------------------------------------------------
# fixed_pt == integer re-implementation; quantisation reported
# --------------------------------------------------------------------------------------------------

def test_lava_fixed_matches_integer_reimplementation_of_lava_equations(mlp, mlp_fixed, mlp_float):
    _, net, x = mlp
    fx = mlp_fixed.fixed
    ref = fixed_reference(net, fx, fx.quantize_input(np.repeat(x[:, None], 6, axis=1)))
    for name in ("lif1", "lif2"):
        np.testing.assert_array_equal(mlp_fixed.spikes[name], ref[name])
    readout = ref["readout"] / fx.layers["readout"].scale + net.layer("readout").neuron.b_u
    np.testing.assert_allclose(mlp_fixed.readout["readout"], readout)
    report = fx.report()
    for name in ("lif1", "lif2"):
        lay = report["layers"][name]
        assert 1 <= lay["vth"]["int"] <= FORMAT["vth"][1] and lay["synapses"]
        syn = next(iter(lay["synapses"].values()))
        assert syn["fraction_clipped"] == 0.0 and syn["mantissa_range_used"] > 0.9
    assert report["input"]["graded"] and report["input"]["bits"] == 8
    # quantisation changes few spikes and (here) no prediction: measured, reported, not hidden
    agree = np.mean(mlp_fixed.spikes["lif1"] == mlp_float.spikes["lif1"])
    assert agree > 0.95
    print(f"fixed vs float: identical lif1 spikes {agree:.4f}, predictions "
          f"{np.mean(mlp_fixed.predictions == mlp_float.predictions):.2f}")


def test_quantizer_refuses_a_threshold_it_cannot_represent():
    nodes = {"input": nir.Input(np.array([2])), "fc": nir.Affine(weight=np.array([[1e6, -1e6]]), bias=np.zeros(1)),
             "lif": nir.IF(r=np.ones(1), v_threshold=np.array([1e-3])), "output": nir.Output(np.array([1]))}
    net = ir.from_nir(nir.NIRGraph(nodes, [("input", "fc"), ("fc", "lif"), ("lif", "output")], type_check=False))
    with pytest.raises(NeurokdError, match="'lif': threshold 0.001 rounds to 0"):
        quantize(net, input_sample=np.ones((1, 2)))


# --------------------------------------------------------------------------------------------------
# Streaming, I/O and process hygiene
# --------------------------------------------------------------------------------------------------

def test_many_samples_in_one_run_equal_one_run_per_sample(mlp, mlp_fixed):
    _, net, x = mlp
    fx = mlp_fixed.fixed                       # the same quantisation for every run
    for i in (0, 4, 9):
        single = run_lava(net, x[i:i + 1], precision="fixed", fixed=fx, record_steps=True)
        for name in ("lif1", "lif2"):
            np.testing.assert_array_equal(single.spikes[name][0], mlp_fixed.spikes[name][i])
        np.testing.assert_array_equal(single.readout["readout"][0], mlp_fixed.readout["readout"][i])


def test_lava_ringbuffer_io_sees_the_same_spikes_as_neurokd_recorders(mlp, mlp_float):
    _, net, x = mlp
    res = run_lava(net, x[:4], precision="float", record_steps=True, io="ringbuffer")
    for name in ("lif1", "lif2"):
        np.testing.assert_array_equal(res.spikes[name], mlp_float.spikes[name][:4])
    np.testing.assert_allclose(res.readout["readout"], mlp_float.readout["readout"][:4])


def _no_lava_children(timeout: float = 5.0) -> bool:
    end = time.time() + timeout
    while time.time() < end:
        if not multiprocessing.active_children():
            return True
        time.sleep(0.1)
    return False


def test_interrupt_stops_every_lava_process(mlp):
    _, net, x = mlp

    def interrupt(done):
        raise KeyboardInterrupt

    with pytest.raises(KeyboardInterrupt):
        run_lava(net, x, chunk_samples=2, on_chunk=interrupt)
    assert _no_lava_children()


def test_bad_inputs_are_refused_before_any_lava_process_starts(mlp):
    _, net, x = mlp
    with pytest.raises(NeurokdError, match=r"needs \(N, 16\)"):
        run_lava(net, x[:, :15])
    with pytest.raises(NeurokdError, match="NaN"):
        run_lava(net, np.full_like(x, np.nan))
    with pytest.raises(NeurokdError, match="precision"):
        run_lava(net, x, precision="double")
    assert not multiprocessing.active_children()


def test_fixed_delays_that_the_network_lacks_are_refused_not_dropped(mlp, mlp_fixed):
    """A FixedSynapse given delays its network's synapse does not have: the backend says so rather than
    running either."""
    import copy

    _, net, x = mlp
    fx = copy.deepcopy(mlp_fixed.fixed)
    syn = next(iter(fx.layers[net.spiking_layers[0]].synapses.values()))
    syn.delays = np.ones_like(syn.mant, dtype=np.int64)
    with pytest.raises(NeurokdError, match="per-synapse delays differ from the network's"):
        run_lava(net, x[:2], precision="fixed", fixed=fx)
    assert not multiprocessing.active_children()
