"""netx export: a quantised student written as a lava-dl netx ``.net`` file, loaded by netx itself, runs
in Lava fixed_pt with exactly the spikes of neurokd's own Lava backend on the same fixed-point network;
networks netx cannot express are refused with the reason."""

from __future__ import annotations

import h5py
import nir
import numpy as np
import pytest
import torch
from torch import nn

from neurokd.data import load
from neurokd.errors import NeurokdError
from neurokd.exporters.to_nir import student_to_nir
from neurokd.hardware.network import ir
from neurokd.hardware.network.quantize import quantize
from neurokd.models import NEURON, LIF, Student, SumPool2d, Topology, build_student

pytestmark = pytest.mark.lava


@pytest.fixture(scope="module")
def digits_mlp():
    """A digits MLP student (64-128-64-10, T = 8), trained 3 epochs (~90 % test accuracy), as IR."""
    splits = load("digits", seed=0)
    torch.manual_seed(0)
    student = build_student("mlp", (64,), 10, timesteps=8)
    x, y = splits.train.tensors
    opt = torch.optim.Adam(student.parameters(), lr=1e-2)
    for _ in range(3):
        for idx in torch.randperm(len(y)).split(128):
            loss = nn.functional.cross_entropy(student(x[idx]), y[idx])
            opt.zero_grad()
            loss.backward()
            opt.step()
    student.eval()
    network = ir.from_nir(student_to_nir(student, dt=1e-4))
    x_test, y_test = (t.numpy() for t in splits.test.tensors)
    return network, x.numpy().astype(np.float64), x_test.astype(np.float64), y_test


def _same_spikes_as_backend(network, fixed, path, x):
    """Run ``x`` through the netx file and through neurokd's backend; assert identical spikes; return both."""
    from neurokd.hardware.engines.lava_backend import run_lava
    from neurokd.hardware.formats.netx import run_netx

    got = run_netx(path, x)
    ref = run_lava(network, x, precision="fixed", fixed=fixed, record_steps=True)
    assert set(got.spikes) == set(network.spiking_layers)
    for name in network.spiking_layers:
        np.testing.assert_array_equal(got.spikes[name], ref.spikes[name], err_msg=f"layer {name}")
    return got, ref


def test_netx_mlp_student_runs_with_the_backends_exact_spikes_and_readout(digits_mlp, tmp_path):
    from neurokd.hardware.formats.netx import check_netx, netx_supports, quantize_netx, read_netx_meta, write_netx

    network, x_train, x_test, labels = digits_mlp
    assert netx_supports(network) == (True, "")
    fixed = quantize_netx(network, input_sample=x_train, input_bits=8)
    path = write_netx(fixed, tmp_path / "model.net")
    meta = read_netx_meta(path)
    assert meta["input"]["message_bits"] == 8 and [l["name"] for l in meta["layers"]] == ["lif1", "lif2", "readout"]

    x = x_test[:8]
    got, ref = _same_spikes_as_backend(network, fixed, path, x)
    rates = {k: float(v.mean()) for k, v in got.spikes.items()}
    assert all(0.02 < r < 0.8 for r in rates.values()), rates

    # Readout: netx's integrator holds 64 * sum_t (a[t] + bias); the backend recorded a[t] / S + b per step.
    out = network.layer("readout")
    scale = fixed.layers["readout"].scale
    a = np.rint((ref.readout["readout"] - out.neuron.b_u) * scale)
    bias = np.rint(out.neuron.b_u * scale)
    np.testing.assert_array_equal(got.readout_sum["readout"], a.sum(axis=1) + 8 * bias)
    np.testing.assert_array_equal(got.predictions, ref.predictions)
    assert np.abs(got.logits - ref.logits).max() <= 0.5 / scale + 1e-12   # only the bias is rounded differently

    agreement = check_netx(path, fixed, x_test[8:12], labels=labels[8:12])
    assert agreement["spike_agreement"] == {"lif1": 1.0, "lif2": 1.0}
    assert agreement["readout_agreement"] == 1.0 and agreement["prediction_agreement"] == 1.0
    assert agreement["accuracy_lava"] == agreement["accuracy_backend"]


def test_netx_conv_student_with_pooling_runs_with_the_backends_exact_spikes(tmp_path):
    """conv -> LIF -> SumPool+conv (one composed conv) -> LIF -> SumPool alone (depthwise conv) -> LIF -> flatten -> readout."""
    from neurokd.hardware.formats.netx import quantize_netx, write_netx

    torch.manual_seed(0)
    topo = Topology([("conv1", nn.Conv2d(1, 4, 3, padding=1)), ("lif1", NEURON), ("pool1", SumPool2d(2)),
                     ("conv2", nn.Conv2d(4, 6, 3, padding=1)), ("lif2", NEURON), ("pool2", SumPool2d(2)),
                     ("lif3", NEURON), ("flatten", nn.Flatten()), ("readout", nn.Linear(24, 10))], (1, 8, 8), 10)
    student = Student(topo, 6, lambda: LIF(beta=0.75, threshold=1.0)).eval()
    with torch.no_grad():
        student.net.conv1.weight.mul_(3.0)
    network = ir.from_nir(student_to_nir(student, dt=1e-4))
    assert [l.synapses[0].kind for l in network.layers] == ["conv", "conv", "conv", "dense"]
    x = load("digits", seed=0).test.tensors[0][:4].reshape(-1, 1, 8, 8).numpy().astype(np.float64)
    fixed = quantize_netx(network, input_sample=x)
    path = write_netx(fixed, tmp_path / "conv.net")
    with h5py.File(path) as h5:
        assert [h5[f"layer/{i}/type"][0].decode() for i in range(len(h5["layer"]))] == \
            ["input", "conv", "conv", "conv", "flatten", "dense"]
        assert int(h5["layer/3/groups"][()]) == 6                  # the lone pool: a depthwise convolution
    got, ref = _same_spikes_as_backend(network, fixed, path, x)
    assert all(v.sum() > 0 for v in got.spikes.values())
    np.testing.assert_array_equal(got.predictions, ref.predictions)


def test_netx_weight_optimiser_keeps_the_files_integer_weights_exactly():
    """netx shifts file weights by b and sets weight_exp = -b; after Lava's clip and truncation the
    Dense computes sum W s exactly, for every 8-bit integer range neurokd writes; the one lava-dl
    quirk (no positive weight but a zero) is detected, and write_netx refuses it."""
    from lava.lib.dl.netx.utils import optimize_weight_bits
    from lava.utils.weightutils import clip_weights, determine_sign_mode, truncate_weights

    from neurokd.hardware.formats.netx import netx_keeps_weights

    rng = np.random.default_rng(0)
    s = rng.integers(0, 2, (30, 50))

    def lava_sums(w):
        with np.errstate(divide="ignore"):
            w2, bits, exp, _ = optimize_weight_bits(w)
        mode = determine_sign_mode(w2)
        sums = truncate_weights(clip_weights(w2, mode, num_bits=8), mode, bits) @ s[: w.shape[1]]
        return np.left_shift(sums, exp) if exp > 0 else np.right_shift(sums, -exp)

    kept = [2 * rng.integers(-128, 128, (20, 30)), rng.integers(0, 256, (20, 30)), -rng.integers(1, 256, (20, 30)),
            2 * rng.integers(-3, 4, (20, 30)), np.array([[254, -256], [2, 0]]), np.array([[255, 1]]),
            np.array([[-255, -1]])]
    for w in kept:
        assert netx_keeps_weights(w)
        np.testing.assert_array_equal(lava_sums(w), w @ s[: w.shape[1]], err_msg=str(w.max()))
    quirk = -rng.integers(0, 256, (20, 30))                      # all <= 0, with zeros and odd values
    assert not netx_keeps_weights(quirk)
    assert not np.array_equal(lava_sums(quirk), quirk @ s[:30])


def _graph(nodes: dict, edges: list, shape=(3,)) -> nir.NIRGraph:
    outs = [b for _, b in edges if b.startswith("output")]
    nodes = {"input": nir.Input(np.array(shape)), **nodes, **{o: nir.Output(np.array([3])) for o in outs}}
    return nir.NIRGraph(nodes, edges, metadata={"dt": 1e-4, "timesteps": 4}, type_check=False)


def _lif(n=3):
    return nir.LIF(tau=np.full(n, 2e-3), r=np.full(n, 20.0), v_leak=np.zeros(n), v_threshold=np.ones(n),
                   v_reset=np.zeros(n))


def _fc(b=0.0):
    return nir.Affine(weight=np.eye(3) + 0.1, bias=np.full(3, b))


@pytest.mark.parametrize("nodes, edges, match", [
    ({"fc": _fc(), "lif": _lif(), "rec": _fc()},
     [("input", "fc"), ("fc", "lif"), ("lif", "rec"), ("rec", "lif"), ("lif", "output")], "recurrent edges"),
    ({"fc": _fc(), "lif": _lif(), "fc2": _fc(), "li": nir.LI(tau=np.full(3, 2e-3), r=np.ones(3), v_leak=np.zeros(3))},
     [("input", "fc"), ("fc", "lif"), ("lif", "fc2"), ("fc2", "li"), ("li", "output")], "non-spiking 'li' output"),
    ({"fc": _fc(0.5), "cuba": nir.CubaLIF(tau_syn=np.full(3, 5e-4), tau_mem=np.full(3, 2e-3), r=np.ones(3),
                                          v_leak=np.zeros(3), v_threshold=np.ones(3), v_reset=np.zeros(3))},
     [("input", "fc"), ("fc", "cuba"), ("cuba", "output")], "synaptic-current bias"),
    ({"fa": _fc(), "a": _lif(), "fb": _fc(), "b": _lif(), "fc": _fc(), "fd": _fc(), "c": _lif()},
     [("input", "fa"), ("fa", "a"), ("input", "fb"), ("fb", "b"), ("a", "fc"), ("b", "fd"), ("fc", "c"), ("fd", "c"),
      ("c", "output")], "2 incoming connections"),
    ({"fc": _fc(), "a": _lif(), "fc2": _fc(), "b": _lif()},
     [("input", "fc"), ("fc", "a"), ("a", "output1"), ("a", "fc2"), ("fc2", "b"), ("b", "output2")], "2 outputs"),
])
def test_networks_netx_cannot_express_are_refused_with_the_reason(nodes, edges, match, tmp_path):
    from neurokd.hardware.formats.netx import netx_supports, quantize_netx, write_netx

    network = ir.from_nir(_graph(nodes, edges))
    ok, why = netx_supports(network)
    assert not ok and why
    assert pytest.raises(NeurokdError, quantize_netx, network).match(match)
    with pytest.raises(NeurokdError, match=match):
        write_netx(quantize(network), tmp_path / "x.net", timesteps=4)
    assert not (tmp_path / "x.net").exists()


def test_a_fixed_network_with_weight_exponents_is_refused_pointing_to_quantize_netx(digits_mlp, tmp_path):
    from neurokd.hardware.formats.netx import write_netx

    network, x_train, _, _ = digits_mlp
    fixed = quantize(network, input_sample=x_train)              # Loihi formats with exponents != 0
    assert any(q.weight_exp != 0 for fl in fixed.layers.values() for q in fl.synapses.values())
    with pytest.raises(NeurokdError, match="weight exponent .*quantize_netx"):
        write_netx(fixed, tmp_path / "model.net")
    assert not (tmp_path / "model.net").exists()
