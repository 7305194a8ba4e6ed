"""neurokd in the user's own loop: SpikeRecorder finds snnTorch / SpikingJelly / neurokd spiking modules by
type, records their spikes as (T, B, ...), and neurokd's losses and ActivityCounter work on them."""

from __future__ import annotations

import pytest
import snntorch as snn
import torch
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn

from neurokd.activity import ActivityCounter, SpikeRecorder
from neurokd.errors import NeurokdError
from neurokd.losses import total_loss
from neurokd.models.neurons import LIF

T, B, N = 5, 3, 6


def _snntorch_net() -> nn.Sequential:
    torch.manual_seed(0)
    return nn.Sequential(
        nn.Linear(4, N), snn.Leaky(beta=0.8, init_hidden=True),
        nn.Linear(N, N), snn.Synaptic(alpha=0.7, beta=0.8, init_hidden=True),
        nn.Linear(N, N), snn.RLeaky(beta=0.8, linear_features=N, init_hidden=True),
        nn.Linear(N, N), snn.RSynaptic(alpha=0.7, beta=0.8, linear_features=N, init_hidden=True),
        nn.Linear(N, N), snn.Lapicque(beta=0.8, init_hidden=True),
        nn.Linear(N, 3), snn.Leaky(beta=0.8, init_hidden=True, output=True),
    )


def test_recorder_finds_every_snntorch_neuron_and_stacks_its_steps():
    net = _snntorch_net()
    rec = SpikeRecorder(net)
    assert rec.names == ["1", "3", "5", "7", "9", "11"]
    seen = {name: [] for name in rec.names}
    hooks = [m.register_forward_hook(lambda m, i, o, n=n: seen[n].append(o[0] if isinstance(o, tuple) else o))
             for n, m in rec.layers]
    x = 3 * torch.rand(B, 4)
    for _ in range(T):                                  # the user's own time loop
        net(x)
    spikes = rec.pop()
    for h in hooks:
        h.remove()
    assert set(spikes) == set(rec.names)
    for name, s in spikes.items():
        assert s.shape == (T, B, N if name != "11" else 3)
        assert torch.equal(s, torch.stack(seen[name]))
    assert sum(float(s.detach().sum()) for s in spikes.values()) > 0
    assert rec.pop() == {}                              # pop cleared the batch


@pytest.mark.parametrize("step_mode", ["s", "m"])
def test_recorder_reads_spikingjelly_nodes_in_single_and_multi_step_mode(step_mode):
    torch.manual_seed(0)
    net = nn.Sequential(layer.Linear(4, N), neuron.LIFNode(tau=2.0), layer.Linear(N, N), neuron.IFNode(),
                        layer.Linear(N, 3), neuron.ParametricLIFNode())
    functional.set_step_mode(net, step_mode)
    rec = SpikeRecorder(net)
    assert rec.names == ["1", "3", "5"]
    x = 3 * torch.rand(T, B, 4)
    if step_mode == "m":
        out = net(x)
    else:
        out = torch.stack([net(x[t]) for t in range(T)])
    spikes = rec.pop()
    assert all(s.shape[:2] == (T, B) for s in spikes.values())
    assert torch.equal(spikes["5"], out)
    assert float(spikes["1"].sum()) > 0
    functional.reset_net(net)


def test_recorder_reads_neurokd_lif_whole_sequences():
    lif = LIF(beta=0.5)
    net = nn.Sequential(nn.Identity(), lif)
    rec = SpikeRecorder(net)
    x = 2 * torch.rand(T, B, N)
    out = net(x)
    assert torch.equal(rec.pop()["1"], out)


def test_recorder_refuses_a_model_without_spiking_modules():
    with pytest.raises(NeurokdError, match="no spiking module"):
        SpikeRecorder(nn.Sequential(nn.Linear(2, 2), nn.ReLU()))


def test_counter_counts_recorded_spikes():
    net = _snntorch_net()
    rec, counter = SpikeRecorder(net, detach=True), ActivityCounter()
    x = 3 * torch.rand(B, 4)
    with torch.no_grad():
        for _ in range(T):
            net(x)
    spikes = rec.pop()
    counter.update(spikes)
    assert counter.samples == B and counter.timesteps == T
    assert counter.spikes == {k: float(v.sum()) for k, v in spikes.items()}
    rec.remove()
    net(x)
    assert rec.spikes() == {}                           # hooks are gone


def test_activation_penalty_through_recorded_snntorch_spikes_lowers_activity():
    """kd-ar-lr on an snnTorch network's own loop: the surrogate gradient of the recorded spikes reaches
    the user's weights, and a strong activity penalty makes the network fire less."""
    torch.manual_seed(0)
    net = nn.Sequential(nn.Linear(8, 16), snn.Leaky(beta=0.9, init_hidden=True),
                        nn.Linear(16, 4), snn.Leaky(beta=0.9, init_hidden=True, output=True))
    rec = SpikeRecorder(net)
    x, y = 2 * torch.rand(32, 8), torch.randint(0, 4, (32,))
    teacher_logits = torch.randn(32, 4)
    opt = torch.optim.Adam(net.parameters(), lr=1e-2)

    def forward():
        for m in net:
            if hasattr(m, "reset_mem"):
                m.reset_mem()
        spk = torch.stack([net(x)[0] for _ in range(T)])
        return spk.sum(0), rec.pop()

    _, spikes = forward()
    before = sum(float(s.sum()) for s in spikes.values())
    for _ in range(30):
        logits, spikes = forward()
        loss, parts = total_loss("kd-ar-lr", logits, y, spikes, teacher_logits=teacher_logits, lambda_act=20.0,
                                 lambda_logits=0.01)
        opt.zero_grad()
        loss.backward()
        assert net[0].weight.grad is not None and float(net[0].weight.grad.abs().sum()) > 0
        opt.step()
    assert set(parts) == {"task", "act", "logits"}
    _, spikes = forward()
    after = sum(float(s.sum()) for s in spikes.values())
    assert after < 0.5 * before


def test_the_snntorch_own_loop_example_trains_with_three_added_lines():
    import importlib.util
    from pathlib import Path

    path = Path(__file__).resolve().parents[1] / "examples" / "own_loop_snntorch.py"
    spec = importlib.util.spec_from_file_location("own_loop_snntorch_example", path)
    example = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(example)
    text = path.read_text()
    assert sum(line.rstrip().endswith("# + neurokd") for line in text.splitlines()) == 3
    accuracy, activity = example.main(method="kd-lr", epochs=3, teacher_epochs=5)
    assert accuracy > 0.3 and 0.0 < activity < 1.0          # 10 classes: chance is 0.1
