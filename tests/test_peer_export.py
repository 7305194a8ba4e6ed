"""snnTorch and SpikingJelly students exported to NIR by neurokd: the user's PyTorch model, the NIR replay
(nir_to_torch) and the float hardware model (fast engine = Lava floating_pt; Lava itself on a few samples)
spike identically in every layer; what NIR/Loihi cannot express is refused in one line, and the refused
settings really do change the spikes."""

from __future__ import annotations

import numpy as np
import pytest
import snntorch as snn
import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

from neurokd.errors import NeurokdError
from neurokd.exporters.from_nir import nir_to_torch
from neurokd.exporters.to_nir import student_to_nir
from neurokd.hardware.engines.fastsim import run_fast
from neurokd.hardware.network import ir
from neurokd.models.user import UserStudent

T, B, N_IN = 8, 16, 10


def _strong(net: nn.Module) -> nn.Module:
    """Weights that make every layer fire (a fixture, not training)."""
    torch.manual_seed(1)
    for m in net.modules():
        if isinstance(m, nn.Linear) and m.in_features != m.out_features or isinstance(m, layer.Linear):
            nn.init.uniform_(m.weight, -0.3, 0.9)
            if m.bias is not None:
                nn.init.uniform_(m.bias, -0.1, 0.3)
    return net


def snntorch_net(delay: bool = False) -> nn.Module:
    """Leaky, Synaptic, RLeaky and an IF-like Leaky. (RSynaptic is left out: snnTorch 1.0.0's RSynaptic
    raises a TypeError with reset_delay=False, and with reset_delay=True neurokd refuses it.)"""
    zero = dict(init_hidden=True, reset_mechanism="zero")
    return _strong(nn.Sequential(
        nn.Linear(N_IN, 12), snn.Leaky(beta=0.7, reset_delay=delay, **zero),
        nn.Linear(12, 12), snn.Synaptic(alpha=0.6, beta=0.8, reset_delay=False, **zero),
        nn.Linear(12, 10), snn.RLeaky(beta=0.8, linear_features=10, reset_delay=False, **zero),
        nn.Linear(10, 6), snn.Leaky(beta=1.0, reset_delay=delay, **zero),          # beta = 1: NIR IF
        nn.Linear(6, 4), snn.Leaky(beta=0.9, output=True, reset_delay=delay, **zero),
    ))


def spikingjelly_net(step_mode: str) -> nn.Module:
    net = _strong(nn.Sequential(
        layer.Flatten(), layer.Linear(N_IN, 12), neuron.LIFNode(tau=2.0),
        layer.Linear(12, 10), neuron.LIFNode(tau=3.0, decay_input=False),
        layer.Linear(10, 8), neuron.ParametricLIFNode(init_tau=2.5),
        layer.Linear(8, 6), neuron.IFNode(),
        layer.Linear(6, 4),
    ))
    functional.set_step_mode(net, step_mode)
    return net


def snntorch_one_to_one() -> nn.Module:
    """RLeaky with a one-to-one recurrence (all_to_all=False: each neuron's own spike times V)."""
    zero = dict(init_hidden=True, reset_mechanism="zero", reset_delay=False)
    return _strong(nn.Sequential(nn.Linear(N_IN, 8), snn.RLeaky(beta=0.6, V=-0.4, all_to_all=False, **zero),
                                 nn.Linear(8, 4), snn.Leaky(beta=0.8, **zero)))


CASES = {
    "snntorch RLeaky one-to-one": snntorch_one_to_one,
    "snntorch, reset_delay=False": lambda: snntorch_net(False),
    "snntorch Leaky, reset_delay=True": lambda: snntorch_net(True),
    "spikingjelly single-step": lambda: spikingjelly_net("s"),
    "spikingjelly multi-step": lambda: spikingjelly_net("m"),
}


def _replay_and_fast(student: UserStudent, x: torch.Tensor):
    with torch.no_grad():
        logits, spikes, readout = student.run(x)
    graph = student_to_nir(student)
    rec = nir_to_torch(graph, timesteps=T).double()(x.double(), record=True)
    network = ir.from_nir(graph)
    fast = run_fast(network, x.numpy().astype(np.float64), precision="float", timesteps=T, record_steps=True)
    return graph, network, logits, spikes, rec, fast


@pytest.mark.parametrize("case", list(CASES))
def test_peer_student_pytorch_nir_replay_and_float_hardware_spike_identically(case):
    student = UserStudent(CASES[case](), T, (N_IN,), 4)
    torch.manual_seed(2)
    x = torch.rand(B, N_IN)
    graph, network, logits, spikes, rec, fast = _replay_and_fast(student, x)
    assert set(network.spiking_layers) == set(spikes)
    for name, s in spikes.items():
        s = s.double()
        assert float(s.mean()) > 0.02, f"{name} barely fires: the fixture tests nothing"
        replay = rec[name].reshape(s.shape)
        assert torch.equal(replay, s), f"{case}: {name} differs between PyTorch and the NIR replay"
        hw = torch.as_tensor(fast.spikes[name]).double().transpose(0, 1).reshape(s.shape)
        assert torch.equal(hw, s), f"{case}: {name} differs between PyTorch and the float hardware model"
    out = rec[graph.edges[-1][0]].reshape(T, B, -1)
    expected = out.sum(0) if student.resolved_readout == "spikes" else out.mean(0)
    assert torch.allclose(expected.float(), logits, atol=1e-5)  # float64 replay vs the float32 student
    assert np.array_equal(fast.predictions, logits.argmax(1).numpy())


@pytest.mark.lava
def test_lava_floating_pt_matches_an_snntorch_student_spike_for_spike():
    pytest.importorskip("lava")
    from neurokd.hardware.engines.lava_backend import run_lava

    student = UserStudent(snntorch_net(False), T, (N_IN,), 4)
    x = torch.rand(3, N_IN)
    with torch.no_grad():
        _, spikes, _ = student.run(x)
    network = ir.from_nir(student_to_nir(student))
    res = run_lava(network, x.numpy().astype(np.float64), precision="float", timesteps=T, record_steps=True,
                   progress=False)
    for name, s in spikes.items():
        assert np.array_equal(res.spikes[name], s.transpose(0, 1).reshape(3, T, -1).numpy()), name


def _export_error(net: nn.Module, **kw) -> str:
    with pytest.raises(NeurokdError) as err:
        student_to_nir(UserStudent(net, T, (N_IN,), 4, **kw))
    msg = str(err.value)
    assert "\n" not in msg
    return msg


def test_settings_nir_or_loihi_cannot_express_are_refused_in_one_line():
    lk = dict(init_hidden=True)
    assert "reset_mechanism='subtract'" in _export_error(
        nn.Sequential(nn.Linear(N_IN, 4), snn.Leaky(beta=0.5, **lk)))          # snnTorch's default reset
    msg = _export_error(nn.Sequential(nn.Linear(N_IN, 4), snn.Synaptic(alpha=0.5, beta=0.5, reset_mechanism="zero", **lk)))
    assert "Synaptic '1'" in msg and "reset_delay=True" in msg and "reset_delay=False" in msg
    assert "Lapicque '1'" in _export_error(nn.Sequential(nn.Linear(N_IN, 4), snn.Lapicque(beta=0.5, **lk)))

    class Residual(nn.Module):                      # an addition in forward: not a chain of layers
        def __init__(self):
            super().__init__()
            self.fc, self.lif = nn.Linear(N_IN, N_IN), snn.Leaky(beta=0.5, reset_mechanism="zero", **lk)

        def forward(self, x):
            return self.lif(self.fc(x) + x)

    assert "'lif'" in _export_error(Residual()) and "chain of layers" in _export_error(Residual())
    assert "per neuron" in _export_error(
        nn.Sequential(nn.Linear(N_IN, 4), snn.Leaky(beta=torch.rand(4), reset_mechanism="zero", **lk)))
    assert "readout membrane" in _export_error(
        nn.Sequential(nn.Linear(N_IN, 4), snn.Leaky(beta=0.5, reset_mechanism="zero", output=True, **lk)),
        readout="membrane")
    msg = _export_error(nn.Sequential(layer.Linear(N_IN, 4), neuron.LIFNode(v_reset=None)))
    assert "LIFNode '1'" in msg and "v_reset=None" in msg and "v_reset=0.0" in msg
    assert "resets to 0" in _export_error(nn.Sequential(layer.Linear(N_IN, 4), neuron.IFNode(v_reset=0.5)))


def _spikes(net: nn.Module, x: torch.Tensor) -> dict:
    with torch.no_grad():
        return UserStudent(net, T, (N_IN,), 12).run(x)[1]         # the fixtures below end in 12 neurons


def test_the_refused_settings_really_change_the_spikes():
    """What the refusals protect: snnTorch's subtractive reset, Synaptic's delayed zero reset and
    SpikingJelly's soft reset each give other spikes than the same weights with Lava's reset."""
    x = torch.rand(B, N_IN)

    def pair(make):
        a, b = make(True), make(False)
        b.load_state_dict(a.state_dict())
        sa, sb = _spikes(a, x), _spikes(b, x)
        return any(not torch.equal(sa[k], sb[k]) for k in sa)

    lk = dict(init_hidden=True)
    assert pair(lambda sub: _strong(nn.Sequential(
        nn.Linear(N_IN, 12), snn.Leaky(beta=0.9, reset_mechanism="subtract" if sub else "zero", **lk))))
    assert pair(lambda late: _strong(nn.Sequential(
        nn.Linear(N_IN, 12), snn.Synaptic(alpha=0.5, beta=0.9, reset_mechanism="zero", reset_delay=late, **lk))))
    assert pair(lambda soft: _strong(nn.Sequential(
        layer.Linear(N_IN, 12), neuron.LIFNode(tau=4.0, v_reset=None if soft else 0.0))))


def _conv_strong(net: nn.Module) -> nn.Module:
    torch.manual_seed(3)
    for m in net.modules():
        if isinstance(m, (nn.Conv2d, nn.Linear)):
            nn.init.uniform_(m.weight, -0.2, 0.6)
        if isinstance(m, nn.BatchNorm2d):        # eval statistics that are not the identity: folding is tested
            m.running_mean.uniform_(-0.2, 0.2)
            m.running_var.uniform_(0.5, 1.5)
            nn.init.uniform_(m.weight, 0.8, 1.2)
    return net.eval()


@pytest.mark.parametrize("library", ["snntorch", "spikingjelly"])
def test_conv_students_with_batchnorm_and_pooling_spike_identically(library):
    z = dict(init_hidden=True, reset_mechanism="zero")
    if library == "snntorch":
        net = nn.Sequential(nn.Conv2d(1, 4, 3, padding=1), nn.BatchNorm2d(4), snn.Leaky(beta=0.7, **z), nn.AvgPool2d(2),
                            nn.Flatten(), nn.Linear(64, 5), snn.Leaky(beta=0.8, output=True, **z))
    else:
        net = nn.Sequential(layer.Conv2d(1, 4, 3, padding=1), layer.BatchNorm2d(4), neuron.LIFNode(tau=2.0),
                            layer.AvgPool2d(2), layer.Flatten(), layer.Linear(64, 5))
        functional.set_step_mode(net, "m")
    student = UserStudent(_conv_strong(net), T, (1, 8, 8), 5)
    x = torch.rand(6, 1, 8, 8)
    graph, network, logits, spikes, rec, fast = _replay_and_fast(student, x)
    assert not any(isinstance(n, type(None)) for n in graph.nodes.values())
    assert "1" not in graph.nodes                                   # the batch norm is folded into the conv
    for name, s in spikes.items():
        s = s.double()
        assert float(s.mean()) > 0.02, f"{name} barely fires: the fixture tests nothing"
        assert torch.equal(rec[name].reshape(s.shape), s), name
        assert torch.equal(torch.as_tensor(fast.spikes[name]).double().transpose(0, 1).reshape(s.shape), s), name
    assert np.array_equal(fast.predictions, logits.argmax(1).numpy())


@pytest.mark.parametrize("step_mode", ["s", "m"])
def test_spikingjelly_membranes_exactly_at_threshold_fire_in_the_graph_too(step_mode):
    """SpikingJelly fires on v >= v_threshold, NIR and Lava on v > v_threshold: with binary input and
    weights in quarters, membranes land exactly on the threshold, and the exported graph still agrees."""
    torch.manual_seed(4)
    net = nn.Sequential(layer.Linear(N_IN, 12, bias=False), neuron.IFNode(), layer.Linear(12, 8, bias=False),
                        neuron.LIFNode(tau=2.0, decay_input=False), layer.Linear(8, 4))
    for m in net.modules():
        if isinstance(m, nn.Linear):
            m.weight.data = torch.randint(-1, 4, m.weight.shape).float() * 0.25
    functional.set_step_mode(net, step_mode)
    student = UserStudent(net, T, (N_IN,), 4)
    x = (torch.rand(B, N_IN) < 0.5).float()
    graph, network, logits, spikes, rec, fast = _replay_and_fast(student, x)
    with torch.no_grad():
        v1 = net[0](x)                                  # the first layer's input at step 0: many exact 1.0s
    assert bool((v1 == 1.0).any())
    for name, s in spikes.items():
        s = s.double()
        assert torch.equal(rec[name].reshape(s.shape), s), name
        assert torch.equal(torch.as_tensor(fast.spikes[name]).double().transpose(0, 1).reshape(s.shape), s), name
    assert "v >= 1.0" in graph.nodes["1"].metadata["neurokd_fires_on"]
