"""Third-party NIR graphs (NIR paper: Norse, Rockpool, Sinabs, snnTorch) read, run and match their traces; bad files are refused."""

from __future__ import annotations

import json
import shutil
import warnings
from pathlib import Path

import h5py
import nir
import numpy as np
import pytest
import torch

from neurokd.cli import main as cli_main
from neurokd.errors import NeurokdError
from neurokd.exporters.from_nir import nir_to_torch, read_nir

# The interop suite lives in shared/ beside the repository (its README lists the files); conftest's
# ``interop_dir`` finds it, and the tests that read it skip where it is absent.
GRAPHS = {
    "braille_noDelay_bias_zero.nir": None,        # dt from the snnTorch export signature
    "braille_noDelay_noBias_subtract.nir": None,
    "cnn_sinabs.nir": None,                      # IF only: no dt needed
    "lif_norse.nir": 1e-4,                       # NIR paper LIF experiment: dt = 0.0001
    "lif_rockpool.nir": 1e-4,
}


@pytest.fixture
def interop(tmp_path, interop_dir) -> Path:
    dest = tmp_path / "interop"
    shutil.copytree(interop_dir, dest)
    return dest


def _trace(folder: Path, name: str) -> np.ndarray:
    return np.loadtxt(folder / f"lif_{name}.csv", delimiter=",")   # columns: input, voltage, output spike


@pytest.mark.parametrize("filename", sorted(GRAPHS))
def test_every_interop_graph_loads_and_runs(interop, filename):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = read_nir(interop / filename)
        module = nir_to_torch(graph, dt=GRAPHS[filename], name=filename)
    # Rockpool's file is inconsistent (its declared Output shape); snnTorch's and Sinabs' graphs are told
    # to reset to zero and fire once per step where their producers' defaults do not (NIR cannot say so)
    count, expected = {"lif_rockpool.nir": (3, "Rockpool's signature"),
                       "cnn_sinabs.nir": (1, "Sinabs' default IAF"),
                       "braille_noDelay_bias_zero.nir": (1, "snnTorch's default Leaky"),
                       "braille_noDelay_noBias_subtract.nir": (1, "snnTorch's default Leaky")}.get(filename, (0, ""))
    messages = [str(w.message) for w in caught]
    assert len(messages) == count and any(expected in m for m in messages) == bool(count), messages
    (inp,) = module.plan.inputs
    x = (torch.rand(12, 2, *module.plan.shapes[inp], generator=torch.Generator().manual_seed(0)) < 0.3).float()
    with torch.no_grad():
        record = module(x, record=True)
    (out,) = module.plan.outputs
    assert record[out].shape == (12, 2, *module.plan.shapes[out])
    assert all(torch.isfinite(v).all() for v in record.values())


def test_lif_norse_reproduces_the_nir_paper_traces(interop):
    norse, exact, lava = _trace(interop, "norse"), _trace(interop, "exact"), _trace(interop, "lava_cpu_float")
    module = nir_to_torch(read_nir(interop / "lif_norse.nir"), dt=1e-4)
    x = torch.tensor(norse[:, 0], dtype=torch.float32).reshape(-1, 1, 1)
    with torch.no_grad():
        spikes, states = module(x, record_states=True)
    spikes = spikes[:, 0, 0].numpy()
    v = states["1"]["v"][:, 0, 0].double().numpy()
    assert np.flatnonzero(spikes).tolist() == [460, 510, 710, 760]
    np.testing.assert_array_equal(spikes, norse[:, 2])          # Norse's spike train, step for step
    np.testing.assert_array_equal(spikes, exact[:, 2])          # and the exact ODE solution's
    np.testing.assert_allclose(v, norse[:, 1], atol=1e-6, rtol=0)
    # Lava CPU float: the same trace one step later (its Dense delivers input one step late).
    np.testing.assert_allclose(v[:-1], lava[1:, 1], atol=1e-6, rtol=0)
    # Exact solution (reset by subtraction after a spike): Euler at dt = tau/25 is within 1 % of threshold before it.
    assert np.abs(v[:460] - exact[:460, 1]).max() < 1e-3


def test_rockpool_graph_is_read_with_a_warning_naming_the_mismatch(interop):
    path = interop / "lif_rockpool.nir"
    with pytest.raises(ValueError):
        nir.read(path)  # nir's own type check rejects the declared Output shape
    with pytest.warns(UserWarning, match=r"type check rejected.*\[\[1 1 1\]\]"):
        graph = read_nir(path)
    with pytest.warns(UserWarning, match=r"declares shape \(1, 1, 1\) for \(1,\)"):
        module = nir_to_torch(graph, dt=1e-4)
    assert module.plan.shapes["output"] == (1,)
    x = torch.tensor(_trace(interop, "norse")[:, 0], dtype=torch.float32).reshape(-1, 1, 1)
    with torch.no_grad():
        spikes, states = module(x, record_states=True)
    v = states["1_LIFNeuronTorch"]["v"][:, 0, 0]
    # Euler at dt: one input event adds w * dt r / tau = 0.04 * 0.04 * 24.02 (Rockpool's r) to v
    assert float(v[60]) == pytest.approx(0.04 * 0.04 * 24.019737, rel=1e-6)
    assert np.flatnonzero(spikes[:, 0, 0].numpy())[0] == 460


def test_lif_graph_without_any_dt_is_refused_with_a_hint(interop):
    with pytest.raises(NeurokdError, match=r"need a time step.*--dt"):
        nir_to_torch(read_nir(interop / "lif_norse.nir"))


@pytest.mark.parametrize("filename", ["braille_noDelay_bias_zero.nir", "braille_noDelay_noBias_subtract.nir"])
def test_braille_recurrent_graph_follows_snntorch_synaptic_update(interop, filename):
    graph = read_nir(interop / filename)
    module = nir_to_torch(graph)
    assert module.dt == 1e-4 and "snnTorch" in module.convention.source
    assert module.plan.delayed == {("lif1.lif", "lif1.w_rec")}
    nodes = graph.nodes
    x = (torch.rand(60, 3, 12, generator=torch.Generator().manual_seed(1)) < 0.3).float()
    with torch.no_grad():
        record = module(x, record=True)

    def affine(name):
        node = nodes[name]
        w = torch.tensor(node.weight)
        b = torch.tensor(node.bias) if isinstance(node, nir.Affine) else torch.zeros(w.shape[0])
        return lambda h: h @ w.T + b

    def decays(node):   # snnTorch export: tau_syn = dt/(1-alpha), tau_mem = dt/(1-beta)
        a = torch.tensor(np.float32(1 - 1e-4 / node.tau_syn[0]))
        return a, torch.tensor(np.float32(1 - 1e-4 / node.tau_mem[0]))

    fc1, rec, fc2 = affine("fc1"), affine("lif1.w_rec"), affine("fc2")
    (a1, b1), (a2, b2) = decays(nodes["lif1.lif"]), decays(nodes["lif2"])
    n1 = nodes["lif1.lif"].tau_syn.shape[0]
    s1, i1, v1 = torch.zeros(3, n1), torch.zeros(3, n1), torch.zeros(3, n1)
    i2, v2 = torch.zeros(3, 7), torch.zeros(3, 7)
    out1, out2 = [], []
    for t in range(60):
        i1 = a1 * i1 + (rec(s1) + fc1(x[t]))    # recurrent weights see last step's spikes
        v1 = b1 * v1 + i1
        s1 = (v1 > 1.0).float()
        v1 = v1 * (1 - s1)
        i2 = a2 * i2 + fc2(s1)
        v2 = b2 * v2 + i2
        s2 = (v2 > 1.0).float()
        v2 = v2 * (1 - s2)
        out1.append(s1)
        out2.append(s2)
    assert float(torch.stack(out1).mean()) > 0.001
    torch.testing.assert_close(record["lif1.lif"], torch.stack(out1))
    torch.testing.assert_close(record["output"], torch.stack(out2))


def test_sinabs_cnn_needs_no_dt_and_its_if_neurons_add_the_input_each_step(interop):
    module = nir_to_torch(read_nir(interop / "cnn_sinabs.nir"))
    assert module.dt is None and "not needed" in module.convention.source
    x = (torch.rand(8, 2, 2, 34, 34, generator=torch.Generator().manual_seed(2)) < 0.3).float()
    with torch.no_grad():
        record = module(x, record=True)
    current = record["0"]                       # conv output feeding IF node "1" (r = 1, threshold 1)
    v = torch.zeros_like(current[0])
    expected = []
    for t in range(8):
        v = v + current[t]
        s = (v > 1.0).float()
        v = v * (1 - s)
        expected.append(s)
    assert torch.equal(record["1"], torch.stack(expected))
    assert float(record["1"].mean()) > 0.01
    assert record["output"].shape == (8, 2, 10)


# ------------------------------------------------------------------------------------------------
# Files neurokd must refuse, each with one line naming the problem
# ------------------------------------------------------------------------------------------------

def _lif_graph(**changes) -> nir.NIRGraph:
    params = dict(tau=np.array([2e-3]), r=np.array([1.0]), v_leak=np.array([0.0]), v_threshold=np.array([1.0]),
                  v_reset=np.array([0.0]))
    params.update(changes.pop("lif", {}))
    nodes = {
        "input": nir.Input(input_type={"input": np.array([2])}),
        "fc": nir.Affine(weight=changes.pop("weight", np.ones((1, 2), dtype=np.float32)), bias=np.zeros(1, np.float32)),
        "lif": nir.LIF(**params),
        "output": nir.Output(output_type={"output": np.array([1])}),
    }
    edges = changes.pop("edges", [("input", "fc"), ("fc", "lif"), ("lif", "output")])
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata={"dt": 1e-4}, type_check=False)


def _truncated(path: Path) -> None:
    """A real NIR file cut after its first 3000 bytes (an interrupted copy)."""
    nir.write(path, _lif_graph())
    path.write_bytes(path.read_bytes()[:3000])


@pytest.mark.parametrize(
    "make, message",
    [
        (lambda p: p.write_bytes(b"this is not hdf5"), "not a NIR file"),
        (lambda p: _truncated(p), "not a NIR file|cannot read"),
        (lambda p: nir.write(p, _lif_graph(lif={"tau": np.array([np.nan])})), r"'lif'.*tau.*NaN"),
        (lambda p: nir.write(p, _lif_graph(lif={"tau": np.array([0.0])})), r"'lif'.*tau must be > 0"),
        (lambda p: nir.write(p, _lif_graph(lif={"v_threshold": np.array([np.inf])})), r"'lif'.*v_threshold.*inf"),
        (lambda p: nir.write(p, _lif_graph(weight=np.ones((1, 3), np.float32))), r"'fc'.*needs input \(3,\)"),
        (lambda p: nir.write(p, _lif_graph(edges=[("input", "fc"), ("fc", "lif"), ("lif", "ghost")])), "'ghost'"),
        (lambda p: nir.write(p, _lif_graph(edges=[("input", "fc"), ("fc", "lif")])), "'output'.*no incoming edge"),
    ],
    ids=["not-hdf5", "truncated", "nan-tau", "zero-tau", "inf-threshold", "shape-mismatch", "dangling-edge",
         "disconnected-output"],
)
def test_bad_graph_files_are_refused_naming_the_problem(tmp_path, make, message):
    path = tmp_path / "bad.nir"
    make(path)
    with pytest.raises(NeurokdError, match=message) as info:
        read_nir(path)
    assert "\n" not in str(info.value)


def test_file_missing_a_node_field_is_refused(interop, tmp_path):
    path = tmp_path / "broken.nir"
    shutil.copy(interop / "lif_norse.nir", path)
    with h5py.File(path, "r+") as f:
        del f["node/nodes/1/tau"]
    with pytest.raises(NeurokdError, match="cannot read the NIR graph"):
        read_nir(path)


def test_import_command_prints_nodes_and_writes_summary_and_outputs(interop, tmp_path, capsys):
    out = tmp_path / "imported"
    with pytest.raises(SystemExit) as done:
        cli_main(["import", str(interop / "braille_noDelay_bias_zero.nir"), "--steps", "15", "--batch", "2", "--out", str(out)])
    assert done.value.code == 0
    printed = capsys.readouterr().out
    assert "lif1.lif" in printed and "CubaLIF" in printed and "lif1.lif -> lif1.w_rec" in printed
    summary = json.loads((out / "summary.json").read_text())
    assert summary["dt"] == 1e-4 and summary["timesteps"] == 15
    assert {n["name"] for n in summary["nodes"]} == {"input", "fc1", "lif1.lif", "lif1.w_rec", "fc2", "lif2", "output"}
    with np.load(out / "outputs.npz") as arrays:
        assert arrays["lif2"].shape == (15, 2, 7) and arrays["input"].shape == (15, 2, 12)


def test_import_command_refuses_a_graph_without_dt_in_one_line(interop, capsys):
    with pytest.raises(SystemExit) as done:
        cli_main(["import", str(interop / "lif_norse.nir")])
    assert done.value.code == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("neurokd: error:") and "--dt" in err and "\n" not in err
