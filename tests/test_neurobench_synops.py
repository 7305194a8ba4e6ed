"""Outside check: NeuroBench 2.3.0's SynOps, sparsity and footprint equal neurokd's counts on the same spikes.

How each side counts the directly encoded first layer: the student's first Linear receives the
graded pixels (values in [0, 1]) at every step. NeuroBench files a layer call under
``Effective_MACs`` when any input value is outside {0, 1, -1} (here the whole (T*B, 64) call,
pixels equal to exactly 1.0 included) and counts, like neurokd, non-zero inputs times non-zero
weights. neurokd counts each non-zero input value at each step as one graded event and its
non-zero fan-out as MACs, always (the input population is graded by construction). Spikes of
the LIF layers are binary, so both sides file them under ACs.
"""

from __future__ import annotations

import importlib.util

import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset

# Installed by make (pip install --no-deps neurobench==2.3.0: requirements/peers.txt).
pytest.importorskip("neurobench", reason="neurobench not installed (make installs it: requirements/peers.txt)")

from neurobench.benchmarks import Benchmark  # noqa: E402
from neurobench.metrics.static import ConnectionSparsity, Footprint  # noqa: E402
from neurobench.metrics.workload import ActivationSparsity, SynapticOperations  # noqa: E402
from neurobench.models import NeuroBenchModel, TorchModel  # noqa: E402

# Lava sets the multiprocessing start method when imported, which fails once tqdm (NeuroBench's
# progress bar) has created a lock: import it at collection, before any benchmark runs. Without Lava
# (the core environment) the test marked lava skips (conftest.py).
if importlib.util.find_spec("lava") is not None:
    from neurokd.hardware.engines.lava_backend import run_lava  # noqa: E402

from neurokd.data import load  # noqa: E402
from neurokd.exporters.to_nir import student_to_nir  # noqa: E402
from neurokd.hardware.network import ir  # noqa: E402
from neurokd.hardware.cost.counting import (  # noqa: E402
    Connection,
    Geometry,
    Population,
    activity_from_rasters,
    count,
    geometry_from_ir,
    neurobench_metrics,
    teacher_ops,
)
from neurokd.models import LIF, build_student, build_teacher  # noqa: E402

T = 4


class StudentModel(NeuroBenchModel):
    """NeuroBench wrapper of a neurokd Student: one call runs all T steps (Linear layers see (T*B, n))."""

    def __init__(self, net):
        super().__init__()
        self.net = net.eval()
        self.add_activation_module(LIF)  # NeuroBench hooks activation modules for ActivationSparsity

    def __call__(self, batch):
        with torch.no_grad():
            return self.net(batch).argmax(1)

    def __net__(self):
        return self.net


def pruned_student(seed: int = 0):
    """An MLP student (64-32-16-10) with 30 % of its weights zeroed and gains that make both layers spike."""
    torch.manual_seed(seed)
    student = build_student("mlp", (64,), 10, timesteps=T, hidden=(32, 16))
    g = torch.Generator().manual_seed(seed)
    with torch.no_grad():
        for name, gain in (("fc1", 4.0), ("fc2", 3.0), ("readout", 1.0)):
            layer = getattr(student.net, name)
            layer.weight.mul_(gain).mul_(torch.rand(layer.weight.shape, generator=g) > 0.3)
    return student.eval()


def student_network(student) -> Geometry:
    """The student's geometry for neurokd's counting, read from its parameters (MLP: fc/lif pairs)."""
    layers = [Population("input", "input", (64,), spiking=False, stateful=False)]
    source = "input"
    for name, module in student.net.named_children():
        if isinstance(module, torch.nn.Linear):
            target = None if name == "readout" else name.replace("fc", "lif")
            layers.append(Connection(name, "dense", source, target, (module.in_features,),
                                     weight=module.weight.detach().numpy().copy(),
                                     bias=module.bias.detach().numpy().copy()))
            if target is not None:
                layers.append(Population(target, "lif", (module.out_features,), parameter_bytes=8))
                source = target
    return Geometry(layers)


def digits_test(n: int = 64):
    test = load("digits", seed=0).test
    return TensorDataset(test.tensors[0][:n], test.tensors[1][:n])


def test_neurokd_counts_equal_neurobench_on_the_students_spikes():
    student = pruned_student()
    data = digits_test()
    results = Benchmark(StudentModel(student), DataLoader(data, batch_size=32), [], [],
                        [[Footprint, ConnectionSparsity], [SynapticOperations, ActivationSparsity]]).run(quiet=True)

    x = data.tensors[0]
    with torch.no_grad():
        _, spikes, _ = student.run(x)
    rasters = {"input": x.unsqueeze(0).expand(T, *x.shape).numpy(), **{k: v.numpy() for k, v in spikes.items()}}
    nb = results["SynapticOperations"]
    assert nb["Effective_ACs"] > 0 and nb["Effective_MACs"] > 0  # both layers spike; errors would read 0
    # the geometry read from the student's parameters, and the one of the network Lava runs
    # (student -> NIR -> hardware IR): both give NeuroBench's numbers on the same spikes
    for net in (student_network(student), geometry_from_ir(ir.from_nir(student_to_nir(student)))):
        counts = count(net, activity_from_rasters(net, rasters))
        ours = neurobench_metrics(net, counts)
        assert ours["SynapticOperations"]["Effective_ACs"] == pytest.approx(nb["Effective_ACs"], rel=1e-12)
        assert ours["SynapticOperations"]["Effective_MACs"] == pytest.approx(nb["Effective_MACs"], rel=1e-12)
        assert ours["SynapticOperations"]["Dense"] == pytest.approx(nb["Dense"], rel=1e-12)
        assert ours["ActivationSparsity"] == pytest.approx(results["ActivationSparsity"], rel=1e-9)
        assert ours["Footprint"] == results["Footprint"]
        assert round(ours["ConnectionSparsity"], 4) == results["ConnectionSparsity"]
    # neurokd's first-layer MACs are its graded events times non-zero fan-out
    fan = np.count_nonzero(student.net.fc1.weight.detach().numpy(), axis=0)
    assert counts.row("fc1").macs == pytest.approx(T * float(((x.numpy() != 0) * fan).sum()) / len(x))


def test_teacher_macs_equal_neurobench_dense_count_of_the_ann():
    teacher = build_teacher("mlp", (64,), 10, hidden=(32, 16))
    results = Benchmark(TorchModel(teacher), DataLoader(digits_test(8), batch_size=8), [], [],
                        [[], [SynapticOperations]]).run(quiet=True)
    net = student_network(pruned_student())  # same geometry
    assert teacher_ops(net).total_macs == results["SynapticOperations"]["Dense"] == 64 * 32 + 32 * 16 + 16 * 10


@pytest.mark.lava
def test_lava_float_spikes_give_the_same_counts_as_the_student_and_neurobench():
    from neurokd.hardware.cost.counting import activity_from_lava

    student = pruned_student()
    data = digits_test(32)
    x = data.tensors[0]
    nb = Benchmark(StudentModel(student), DataLoader(data, batch_size=32), [], [],
                   [[], [SynapticOperations]]).run(quiet=True)["SynapticOperations"]
    network = ir.from_nir(student_to_nir(student))
    geometry = geometry_from_ir(network)
    result = run_lava(network, x.numpy(), precision="float", record_steps=True)
    lava = count(geometry, activity_from_lava(geometry, result, x.numpy()))
    with torch.no_grad():
        _, spikes, _ = student.run(x)
    rasters = {"input": x.unsqueeze(0).expand(T, *x.shape).numpy(), **{k: v.numpy() for k, v in spikes.items()}}
    assert lava == count(geometry, activity_from_rasters(geometry, rasters))  # every row, active updates included
    ours = neurobench_metrics(geometry, lava)["SynapticOperations"]
    assert ours["Effective_ACs"] == pytest.approx(nb["Effective_ACs"], rel=1e-12)
    assert ours["Effective_MACs"] == pytest.approx(nb["Effective_MACs"], rel=1e-12)
