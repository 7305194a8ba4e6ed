"""The zoo's topologies: teacher and student share one, shapes are right, only exportable pieces are used."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from neurokd.errors import NeurokdError
from neurokd.models import LIF, MODELS, SumPool2d, build_student, build_teacher

EXPORTABLE = (nn.Linear, nn.Conv1d, nn.Conv2d, nn.AvgPool1d, nn.AvgPool2d, SumPool2d, nn.Flatten,
              nn.BatchNorm1d, nn.BatchNorm2d, LIF, nn.ReLU)


def _pair(name, shape, classes=5, T=3, **sizes):
    torch.manual_seed(0)
    teacher = build_teacher(name, shape, classes, **sizes)
    torch.manual_seed(0)
    student = build_student(name, shape, classes, T, **sizes)
    return teacher, student


CASES = [
    ("mlp", (64,), {"hidden": (16, 8)}),
    ("conv1d", (10, 49), {"channels": (4, 8, 8), "kernel": 3, "hidden": 16}),
    ("conv1d", (10, 49), {"channels": (4, 6), "hidden": 0}),
    ("vgg", (3, 32, 32), {"width": 0.125}),
    ("vgg", (3, 8, 8), {"cfg": (8, "P", 16, "P"), "hidden": 12}),
    ("resnet1d", (10, 49), {"stem": 4, "channels": (4, 8), "kernel": 3}),
]


@pytest.mark.parametrize("name,shape,sizes", CASES)
def test_teacher_and_student_share_topology_and_weights_when_seeded_alike(name, shape, sizes):
    teacher, student = _pair(name, shape, **sizes)
    t_layers = list(teacher.net.named_children())
    s_layers = list(student.net.named_children())
    assert [n for n, _ in t_layers] == [n for n, _ in s_layers]
    for (n, t), (_, s) in zip(t_layers, s_layers):
        assert isinstance(t, EXPORTABLE) and isinstance(s, EXPORTABLE), n
        if isinstance(s, LIF):
            assert isinstance(t, nn.ReLU) and n.startswith("lif")
        else:
            assert type(t) is type(s)
    t_state = teacher.state_dict()
    s_state = {k: v for k, v in student.state_dict().items() if not k.endswith((".beta", ".threshold"))}
    assert t_state.keys() == s_state.keys()
    assert all(torch.equal(t_state[k], s_state[k]) for k in t_state)
    assert [n for n, _ in s_layers][-1] == "readout"


@pytest.mark.parametrize("name,shape,sizes", CASES)
def test_forward_shapes_of_teacher_logits_and_student_spikes(name, shape, sizes):
    teacher, student = _pair(name, shape, T=3, **sizes)
    x = torch.rand(2, *shape)
    assert teacher(x).shape == (2, 5)
    logits, spikes, readout = student.run(x)
    assert logits.shape == (2, 5) and readout.shape == (3, 2, 5)
    assert list(spikes) == student.spiking_layers()
    for name_, s in spikes.items():
        assert s.shape[:2] == (3, 2), name_
        assert set(s.unique().tolist()) <= {0.0, 1.0}


def test_conv1d_names_and_strided_downsampling():
    _, student = _pair("conv1d", (10, 49), channels=(4, 8, 8), hidden=16)
    names = [n for n, _ in student.net.named_children()]
    assert names == ["conv1", "bn1", "lif1", "conv2", "bn2", "lif2", "conv3", "bn3", "lif3",
                     "flatten", "fc4", "lif4", "readout"]
    _, spikes, _ = student.run(torch.rand(2, 10, 49))
    assert spikes["lif1"].shape == (3, 2, 4, 49) and spikes["lif2"].shape == (3, 2, 8, 25)
    assert spikes["lif3"].shape == (3, 2, 8, 13) and spikes["lif4"].shape == (3, 2, 16)


def test_resnet1d_blocks_add_their_shortcut_before_the_second_neuron():
    """Identity shortcut when a block keeps the shape, a strided 1x1 conv + batch norm when it does not;
    the student's lif3 input is bn3(conv3(s2)) + s1, checked against the layers applied by hand."""
    teacher, student = _pair("resnet1d", (10, 49), stem=4, channels=(4, 8), kernel=3)
    assert student.shortcut_from == {"lif3": "lif1", "lif5": "lif3"}
    assert len(student.shortcuts["lif3"]) == 0
    assert [n for n, _ in student.shortcuts["lif5"].named_children()] == ["sc5", "scbn5"]
    assert student.shortcuts["lif5"].sc5.stride == (2,) and student.shortcuts["lif5"].sc5.kernel_size == (1,)
    student.eval()
    net, x = student.net, torch.rand(2, 10, 49) * 3
    with torch.no_grad():
        for lif in student.spiking_layers():
            getattr(net, lif).threshold.fill_(0.3)          # so that every layer spikes
        _, spikes, _ = student.run(x)
        T = student.timesteps
        flat = lambda s: s.reshape(T * 2, *s.shape[2:])
        current = net.bn3(net.conv3(flat(spikes["lif2"]))) + flat(spikes["lif1"])
        assert torch.equal(net.lif3(current.reshape(T, 2, *current.shape[1:])), spikes["lif3"])
        sc = student.shortcuts["lif5"]
        current = net.bn5(net.conv5(flat(spikes["lif4"]))) + sc(flat(spikes["lif3"]))
        assert torch.equal(net.lif5(current.reshape(T, 2, *current.shape[1:])), spikes["lif5"])
        teacher.eval()
        h1 = torch.relu(teacher.net.bn1(teacher.net.conv1(x)))
        h2 = torch.relu(teacher.net.bn2(teacher.net.conv2(h1)))
        h3 = torch.relu(teacher.net.bn3(teacher.net.conv3(h2)) + h1)
        h4 = torch.relu(teacher.net.bn4(teacher.net.conv4(h3)))
        h5 = torch.relu(teacher.net.bn5(teacher.net.conv5(h4)) + teacher.shortcuts["lif5"](h3))
        torch.testing.assert_close(teacher(x), teacher.net.readout(h5.flatten(1)), rtol=0, atol=0)  # the forward's own ops and shapes
    assert float(spikes["lif3"].mean()) > 0 and float(spikes["lif5"].mean()) > 0


@pytest.mark.parametrize("beta", [0.5, 1.0])
def test_soft_reset_lif_subtracts_the_threshold_in_the_same_step(beta):
    """v[t] = beta v[t-1] + I[t]; spike if v > theta; then v -= theta (zero reset: v = 0), checked
    step by step against a plain loop, with an input that crosses threshold twice in one step."""
    current = torch.tensor([[0.7], [0.9], [2.5], [0.3], [0.3], [-0.4]])
    for reset in ("zero", "subtract"):
        lif = LIF(beta=beta, threshold=1.0, reset=reset)
        v, expected = 0.0, []
        for i in current[:, 0].tolist():
            v = beta * v + i
            s = float(v > 1.0)
            v = (v - s) if reset == "subtract" else v * (1 - s)
            expected.append(s)
        assert lif(current)[:, 0].tolist() == expected
    soft = LIF(beta=beta, reset="subtract")(current)[:, 0].tolist()
    hard = LIF(beta=beta, reset="zero")(current)[:, 0].tolist()
    assert sum(soft) > sum(hard)          # the charge kept above threshold fires again
    with pytest.raises(ValueError, match="reset"):
        LIF(reset="soft")


def test_vgg11_default_cfg_has_eight_convs_five_avg_pools():
    teacher = build_teacher("vgg", (3, 32, 32), 10, width=0.0625)
    convs = [m for m in teacher.net if isinstance(m, nn.Conv2d)]
    pools = [m for m in teacher.net if isinstance(m, nn.AvgPool2d)]
    assert len(convs) == 8 and len(pools) == 5
    assert [c.out_channels for c in convs] == [4, 8, 16, 16, 32, 32, 32, 32]
    assert teacher.net.readout.in_features == 32  # 32x32 pooled five times -> 1x1


def test_bad_sizes_are_neurokd_errors():
    assert {"mlp", "conv1d", "resnet1d", "vgg"} <= set(MODELS)
    with pytest.raises(NeurokdError, match="odd kernel"):
        build_teacher("resnet1d", (10, 49), 10, kernel=2)
    with pytest.raises(NeurokdError, match="one per block"):
        build_teacher("resnet1d", (10, 49), 10, channels=(4, 4), strides=(1,))
    with pytest.raises(NeurokdError):
        build_teacher("conv1d", (64,), 10)
    with pytest.raises(NeurokdError):
        build_teacher("vgg", (3, 8, 8), 10)  # five pools do not fit 8x8
    with pytest.raises(NeurokdError):
        build_teacher("nope", (64,), 10)


def test_the_custom_model_example_registers_a_residual_topology_that_exports():
    """examples/custom_model.py: a user's own topology with a shortcut builds a teacher and a student,
    and its NIR graph reaches the IR with the shortcut delayed one step."""
    import importlib.util
    from pathlib import Path

    from neurokd.exporters.to_nir import student_to_nir
    from neurokd.hardware.network import ir

    path = Path(__file__).resolve().parents[1] / "examples" / "custom_model.py"
    spec = importlib.util.spec_from_file_location("neurokd_example_custom_model", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    try:
        assert "resmlp" in MODELS
        teacher, student = _pair("resmlp", (64,), width=16)
        assert teacher(torch.rand(2, 64)).shape == (2, 5)
        network = ir.from_nir(student_to_nir(student.eval()))
        assert {s.name: s.delay for s in network.layer("lif3").synapses} == {"lif3.identity": 2, "fc3": 1}
    finally:
        MODELS.pop("resmlp", None)
