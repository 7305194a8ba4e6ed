"""Third-party NIR graphs (shared/interop, written by Sinabs, snnTorch, Norse, Rockpool) run in Lava.

Float runs are compared spike for spike with ``nir_to_torch`` (in float64, Lava's arithmetic);
fixed-point runs report how close they stay. The single-LIF traces of the NIR paper are reproduced
with its step-current input (the first CSV column) and compared with the recorded Lava traces.
"""

from __future__ import annotations

import shutil
import warnings
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import require_lava

require_lava()  # the module imports Lava: it skips, saying why, where Lava is absent

from neurokd.exporters.from_nir import nir_to_torch, read_nir
from neurokd.hardware.network import ir
from neurokd.hardware.engines.lava_backend import run_lava

pytestmark = pytest.mark.lava

@pytest.fixture(scope="module")
def interop(tmp_path_factory, interop_dir) -> Path:
    """A copy of shared/interop (conftest's ``interop_dir``: the test skips where it is absent)."""
    dest = tmp_path_factory.mktemp("interop")
    for f in interop_dir.iterdir():
        if f.suffix in (".nir", ".csv"):
            shutil.copy(f, dest / f.name)
    return dest


def _torch_spikes(graph, x: np.ndarray, dt=None) -> dict[str, np.ndarray]:
    """nir_to_torch in float64: ``{node: (N, T, size)}`` from ``x (N, T, *shape)``."""
    module = nir_to_torch(graph, dt=dt).double()
    with torch.no_grad():
        rec = module(torch.tensor(x.swapaxes(0, 1)), record=True)
    return {k: v.numpy().swapaxes(0, 1).reshape(x.shape[0], x.shape[1], -1) for k, v in rec.items()}


def test_sinabs_cnn_runs_in_lava_like_nir_to_torch(interop):
    graph = read_nir(interop / "cnn_sinabs.nir")
    net = ir.from_nir(graph)
    assert net.dt is None                                     # IF only: no time step needed
    kinds = {l.name: [s.kind for s in l.synapses[0].stages] for l in net.layers}
    assert kinds["6"] == ["pool", "conv"] and kinds["10"] == ["pool", "flatten", "dense"]
    assert net.layer("6").synapses[0].kind == "conv"         # SumPool2d -> Conv2d composed into one conv
    x = (np.random.default_rng(0).random((2, 8, 2, 34, 34)) < 0.15).astype(float)
    ref = _torch_spikes(graph, x)
    res = run_lava(net, x, precision="float", record_steps=True)
    for layer in net.layers:
        assert ref[layer.name].sum() > 0
        np.testing.assert_array_equal(res.spikes[layer.name], ref[layer.name], err_msg=layer.name)
    fixed = run_lava(net, x, precision="fixed", record_steps=True)
    agree = {l.name: float(np.mean(fixed.spikes[l.name] == ref[l.name])) for l in net.layers}
    print("cnn_sinabs fixed_pt identical spikes per layer:", agree)
    assert min(agree.values()) > 0.85


@pytest.mark.parametrize("name", ["braille_noDelay_bias_zero", "braille_noDelay_noBias_subtract"])
def test_braille_recurrent_cubalif_matches_nir_to_torch(interop, name):
    graph = read_nir(interop / f"{name}.nir")
    net = ir.from_nir(graph)
    assert net.dt == 1e-4 and net.recurrent
    lif1 = net.layer("lif1.lif")
    assert lif1.neuron.kind == "cubalif" and [s.recurrent for s in lif1.synapses] == [False, True]
    x = (np.random.default_rng(1).random((2, 30, 12)) < 0.3).astype(float)
    ref = _torch_spikes(graph, x)
    res = run_lava(net, x, precision="float", record_steps=True)
    assert res.mode == "per-sample"
    for layer in ("lif1.lif", "lif2"):
        assert ref[layer].sum() > 0
        np.testing.assert_array_equal(res.spikes[layer], ref[layer], err_msg=layer)
    fixed = run_lava(net, x, precision="fixed", record_steps=True)
    agree = {k: float(np.mean(fixed.spikes[k] == ref[k])) for k in ("lif1.lif", "lif2")}
    print(f"{name} fixed_pt identical spikes per layer:", agree)
    assert min(agree.values()) > 0.8


@pytest.mark.filterwarnings("ignore:graph. Output 'output' declares shape")
def test_rockpool_lif_is_read_tolerantly_and_runs(interop):
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = read_nir(interop / "lif_rockpool.nir")
    assert any("type check" in str(w.message) for w in caught)
    net = ir.from_nir(graph, dt=1e-4)
    x = (np.random.default_rng(2).random((1, 200, 1)) < 0.3).astype(float)
    res = run_lava(net, x, precision="float", record_steps=True)
    ref = _torch_spikes(graph, x, dt=1e-4)
    layer = net.layers[0].name
    np.testing.assert_array_equal(res.spikes[layer], ref[layer])


def _trace(folder: Path, which: str) -> np.ndarray:
    """NIR paper CSV columns: input spike, membrane v, output spike (1000 steps)."""
    return np.loadtxt(folder / f"lif_{which}.csv", delimiter=",")


def test_lif_norse_traces_match_the_nir_paper_recordings(interop):
    graph = read_nir(interop / "lif_norse.nir")
    net = ir.from_nir(graph, dt=1e-4)                         # the paper's step (conventions.py)
    csv = {k: _trace(interop, k) for k in ("exact", "norse", "lava_cpu_float", "lava_cpu_fixed", "lava_loihi_fixed")}
    stim = csv["norse"][:, 0]                                 # the paper's input spike train
    for k, c in csv.items():
        np.testing.assert_array_equal(c[:, 0], stim, err_msg=k)
    x = stim.reshape(1, -1, 1)
    layer = net.layers[0].name
    out = {}
    for precision in ("float", "fixed"):
        r = run_lava(net, x, precision=precision, record_steps=True, record_voltage=[layer])
        out[precision] = (r.voltages[layer][0, :, 0], r.spikes[layer][0, :, 0], r)
    # Lava's recorded CSVs carry the Dense's one-step delay: row t+1 there is step t here.
    lava_v = {k: csv[k][1:, 1] / (16000.0 if "fixed" in k else 1.0) for k in csv if k.startswith("lava")}
    lava_s = {k: csv[k][1:, 2] for k in csv if k.startswith("lava")}
    v, s, _ = out["float"]
    np.testing.assert_allclose(v[:-1], lava_v["lava_cpu_float"], rtol=0, atol=1e-12)   # Lava float, exactly
    np.testing.assert_allclose(v, csv["norse"][:, 1], atol=1e-6)                       # Norse (float32)
    spike_steps = np.flatnonzero(s)
    np.testing.assert_array_equal(spike_steps, np.flatnonzero(csv["norse"][:, 2]))
    np.testing.assert_array_equal(spike_steps, np.flatnonzero(csv["exact"][:, 2]))
    for k in lava_s:
        np.testing.assert_array_equal(s[:-1], lava_s[k], err_msg=k)
    vf, sf, rf = out["fixed"]
    np.testing.assert_array_equal(np.flatnonzero(sf), spike_steps)
    # The paper's fixed run used scale 250 (w = 10 -> 640 = 0.04 * 16000); neurokd's scale is finer.
    diffs = {k: float(np.abs(vf[:-1] - lava_v[k]).max()) for k in lava_v}
    print(f"lif_norse: neurokd fixed scale {rf.fixed.layers[layer].scale:.1f}; max |v - recorded| {diffs}; "
          f"max |v_fixed - v_float| {np.abs(vf - v).max():.2e}")
    assert diffs["lava_cpu_fixed"] < 2e-3 and np.abs(vf - v).max() < 1e-4
