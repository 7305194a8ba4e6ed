"""Fuzzing the NIR readers: corrupt files and generated graphs end in success or a NeurokdError.

Every outcome of ``read_nir`` -> ``nir_to_torch`` and ``read_nir`` -> ``hardware.network.ir.from_nir`` on
arbitrary input is either a working graph or a one-line :class:`NeurokdError`: never another
exception type, never a hang (hypothesis' deadline), never a child process left behind.
"""

from __future__ import annotations

import multiprocessing
import warnings

import nir
import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from neurokd.errors import NeurokdError
from neurokd.exporters.from_nir import nir_to_torch, read_nir
from neurokd.exporters.to_nir import student_to_nir, write_nir
from neurokd.hardware.network.ir import from_nir
from neurokd.models import build_student

FUZZ = settings(max_examples=100, deadline=5000, derandomize=True,
                suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow])


@pytest.fixture(scope="module")
def valid_nir_bytes(tmp_path_factory) -> bytes:
    torch.manual_seed(0)
    student = build_student("mlp", (64,), 10, timesteps=4, hidden=(16, 8))
    path = tmp_path_factory.mktemp("nir") / "student.nir"
    write_nir(student_to_nir(student), path)
    return path.read_bytes()


def _consume(path) -> str:
    """Read and build both runtimes; return 'ok' or 'refused' (NeurokdError); anything else propagates."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        try:
            graph = read_nir(path)
            module = nir_to_torch(graph, dt=1e-4)
            net = from_nir(graph, dt=1e-4)
        except NeurokdError as exc:
            assert "\n" not in str(exc), "errors must be one line"
            return "refused"
    shape = net.layers[0].synapses[0].in_shape if net.layers and net.layers[0].synapses else None
    if shape is not None:
        with torch.no_grad():
            module(torch.zeros(2, 1, *shape))
    return "ok"


@FUZZ
@given(data=st.data())
def test_corrupted_nir_bytes_end_in_success_or_neurokd_error(tmp_path, valid_nir_bytes, data):
    raw = bytearray(valid_nir_bytes)
    n_flips = data.draw(st.integers(1, 16), label="flips")
    for _ in range(n_flips):
        pos = data.draw(st.integers(0, len(raw) - 1), label="pos")
        raw[pos] = data.draw(st.integers(0, 255), label="byte")
    cut = data.draw(st.one_of(st.none(), st.integers(0, len(raw))), label="truncate")
    if cut is not None:
        raw = raw[:cut]
    path = tmp_path / "fuzzed.nir"
    path.write_bytes(bytes(raw))
    assert _consume(path) in ("ok", "refused")
    assert multiprocessing.active_children() == []


finite = st.floats(-4, 4, allow_nan=False, width=32)
param = st.one_of(finite, st.sampled_from([float("nan"), float("inf"), 0.0, -1.0]))


@FUZZ
@given(
    widths=st.lists(st.integers(1, 6), min_size=2, max_size=4),
    mismatch=st.booleans(),
    tau=param,
    vth=param,
    wscale=param,
    neuron=st.sampled_from(["LIF", "IF", "CubaLIF", "LI"]),
    dangling=st.booleans(),
)
def test_generated_nir_graphs_end_in_success_or_neurokd_error(tmp_path, widths, mismatch, tau, vth, wscale,
                                                              neuron, dangling):
    rng = np.random.default_rng(len(widths))
    nodes = {"input": nir.Input(input_type={"input": np.array([widths[0]])})}
    edges = []
    prev = "input"
    for i, (a, b) in enumerate(zip(widths[:-1], widths[1:])):
        n_in = a + 1 if (mismatch and i == 0) else a
        w = (rng.standard_normal((b, n_in)) * wscale).astype(np.float32)
        nodes[f"fc{i}"] = nir.Affine(weight=w, bias=np.zeros(b, np.float32))
        ones = np.ones(b)
        if neuron == "LIF":
            nodes[f"n{i}"] = nir.LIF(tau=ones * tau, r=ones, v_leak=0 * ones, v_threshold=ones * vth)
        elif neuron == "IF":
            nodes[f"n{i}"] = nir.IF(r=ones, v_threshold=ones * vth)
        elif neuron == "CubaLIF":
            nodes[f"n{i}"] = nir.CubaLIF(tau_syn=ones * tau, tau_mem=ones * 2e-4, r=ones, v_leak=0 * ones,
                                         v_threshold=ones * vth)
        else:
            nodes[f"n{i}"] = nir.LI(tau=ones * tau, r=ones, v_leak=0 * ones)
        edges += [(prev, f"fc{i}"), (f"fc{i}", f"n{i}")]
        prev = f"n{i}"
    nodes["output"] = nir.Output(output_type={"output": np.array([widths[-1]])})
    edges.append((prev, "output"))
    if dangling:
        edges.append((prev, "ghost"))
    try:
        graph = nir.NIRGraph(nodes=nodes, edges=edges, type_check=False)
        path = tmp_path / "gen.nir"
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            nir.write(path, graph)
    except Exception:  # the nir package itself refused to build or write it: nothing reaches neurokd
        return
    assert _consume(path) in ("ok", "refused")
    assert multiprocessing.active_children() == []
