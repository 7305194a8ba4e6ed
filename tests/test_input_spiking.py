"""The graph input is counted as spikes or as graded values from the input data, alike in both precisions
and both engines (issue 16: binary input was MACs in floating point and SynOps in fixed point)."""

from __future__ import annotations

import csv
from pathlib import Path

import nir
import numpy as np
import pytest

from neurokd.cli import main
from neurokd.hardware.cost.counting import input_is_spiking

pytestmark = pytest.mark.lava

COUNTED = ("spikes_per_sample", "synops_per_sample", "macs_per_sample", "graded_events_per_sample",
           "dense_synops_per_sample", "energy_pj_per_sample")


@pytest.mark.parametrize("values, spiking", [
    ([0, 1, 1, 0], True), ([0, 0], True), ([-1, 0, 1], True), ([-1, 1], True), ([], True),
    ([0, 2], False), ([0, 0.5, 1], False), ([-1, 0, 1, 2], False), ([0.999], False),
])
def test_input_is_spiking_when_every_value_is_in_0_1_or_minus1_0_1(values, spiking):
    assert input_is_spiking(np.array(values, dtype=np.float32)) is spiking


def _graph(path: Path) -> Path:
    """Two IF layers with weights in quarters and thresholds of 1.125: exact in fixed point (no ties), so
    float and fixed spike alike and every count below can be compared exactly."""
    rng = np.random.default_rng(0)
    w1, w2 = rng.integers(-2, 5, size=(6, 8)) / 4, rng.integers(-2, 5, size=(4, 6)) / 4
    nodes = {"input": nir.Input(np.array([8])),
             "fc1": nir.Affine(weight=w1, bias=np.zeros(6)), "if1": nir.IF(r=np.ones(6), v_threshold=np.full(6, 1.125)),
             "fc2": nir.Affine(weight=w2, bias=np.zeros(4)), "if2": nir.IF(r=np.ones(4), v_threshold=np.full(4, 1.125)),
             "output": nir.Output(np.array([4]))}
    edges = [("input", "fc1"), ("fc1", "if1"), ("if1", "fc2"), ("fc2", "if2"), ("if2", "output")]
    nir.write(path, nir.NIRGraph(nodes, edges, metadata={"dt": 1e-3}, type_check=False))
    return path


def _simulate(tmp_path: Path, x: np.ndarray, precision: str) -> tuple[dict, str]:
    graph = tmp_path / "g.nir"
    if not graph.exists():
        _graph(graph)
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / precision
    try:
        main(["simulate", str(graph), "--input", str(tmp_path / "x.npy"), "--precision", precision,
              "--out", str(out), "--no-progress"])
    except SystemExit as exc:
        assert not exc.code
    with open(out / "energy_report.csv", newline="") as fh:
        rows = {(r["energy_model"], r["layer"]): r for r in csv.DictReader(fh)}
    return rows, (out / "energy_report.md").read_text()


def test_a_binary_input_graph_has_the_same_synops_and_macs_in_float_and_fixed(tmp_path):
    x = (np.random.default_rng(1).random((3, 20, 8)) < 0.4).astype(np.float32)
    fl, fl_md = _simulate(tmp_path, x, "float")
    fx, fx_md = _simulate(tmp_path, x, "fixed")
    assert fl.keys() == fx.keys()
    for key in fl:
        for col in COUNTED:
            assert fl[key][col] == fx[key][col], (key, col, fl[key][col], fx[key][col])
    models = {m for m, _ in fl}
    for m in models:
        first = fl[(m, "fc1")]
        assert float(first["synops_per_sample"]) > 0 and float(first["macs_per_sample"]) == 0       # spikes: ACs
        assert float(fl[(m, "input")]["spikes_per_sample"]) == pytest.approx(x.sum() / 3)
        assert float(fl[(m, "total")]["macs_per_sample"]) == 0
    for md in (fl_md, fx_md):
        assert "Input `input`: spiking" in md


def test_a_graded_input_is_counted_as_macs_in_both_precisions(tmp_path):
    x = np.random.default_rng(2).random((2, 10, 8)).astype(np.float32) * 0.8
    for precision in ("float", "fixed"):
        rows, md = _simulate(tmp_path, x, precision)
        first = next(r for (m, layer), r in rows.items() if layer == "fc1")
        assert float(first["macs_per_sample"]) > 0 and float(first["synops_per_sample"]) == 0, precision
        assert "Input `input`: graded" in md


def test_signed_events_are_spikes_in_both_precisions_although_fixed_point_sends_them_graded(tmp_path):
    """{-1, 0, 1} (ON/OFF events): Lava gets them as graded integers in fixed point, but each is one
    accumulate of +-w, counted as SynOps in both precisions (NeuroBench's rule)."""
    rng = np.random.default_rng(3)
    x = (rng.integers(-1, 2, size=(2, 12, 8)) * (rng.random((2, 12, 8)) < 0.5)).astype(np.float32)
    assert x.min() == -1 and x.max() == 1
    for precision in ("float", "fixed"):
        rows, _ = _simulate(tmp_path, x, precision)
        first = next(r for (m, layer), r in rows.items() if layer == "fc1")
        assert float(first["synops_per_sample"]) > 0 and float(first["macs_per_sample"]) == 0, precision


def test_the_fast_engine_counts_the_same_binary_input_as_lava(tmp_path):
    from neurokd.deploy import energy_report_hook
    from neurokd.hardware.engines.fastsim import run_fast
    from neurokd.hardware.engines.lava_backend import run_lava
    from neurokd.hardware.network import ir

    network = ir.from_nir(nir.read(_graph(tmp_path / "g.nir")))
    x = (np.random.default_rng(4).random((2, 15, 8)) < 0.4).astype(np.float64)
    tables = {}
    for precision in ("float", "fixed"):
        for engine, run in (("lava", run_lava), ("fast", run_fast)):
            out = tmp_path / f"{engine}-{precision}"
            res = run(network, x, precision=precision, record_steps=True, progress=False)
            energy_report_hook(out, network, res, x)
            with open(out / "energy_report.csv", newline="") as fh:
                tables[engine, precision] = [{c: r[c] for c in ("energy_model", "layer", *COUNTED)}
                                             for r in csv.DictReader(fh)]
    reference = tables["lava", "float"]
    assert next(r for r in reference if r["layer"] == "fc1")["macs_per_sample"] == "0"
    for key, table in tables.items():
        assert table == reference, key
