"""``neurokd export`` and ``neurokd simulate``: files written per DESIGN.md's contract, exit codes 0/1/2."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import nir
import numpy as np
import pytest
import torch

from conftest import cli, write_untrained_digits_run


AGREEMENT_KEYS = {"precision", "samples", "spike_agreement", "prediction_agreement", "accuracy_torch", "accuracy_lava"}


def _read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def run_dir(tmp_path_factory) -> Path:
    """A digits run folder as `neurokd train` leaves it (config.toml, student.pt), with untrained weights
    scaled up so that every layer spikes."""
    return write_untrained_digits_run(tmp_path_factory.mktemp("runs") / "digits-tiny")


def test_export_nir_target_writes_model_nir_only(run_dir, tmp_path):
    run = tmp_path / "r"
    run.mkdir()
    for f in ("config.toml", "student.pt", "metrics.json"):
        (run / f).write_bytes((run_dir / f).read_bytes())
    assert cli(["export", str(run), "--target", "nir"]) == 0
    graph = nir.read(run / "model.nir")
    assert {"lif1", "lif2", "readout"} <= set(graph.nodes)
    assert not (run / "lava").exists() and not (run / "agreement.json").exists()


def test_export_for_norse_writes_a_variant_that_norse_and_neurokd_run_as_the_student(run_dir, tmp_path, capsys):
    """``--for norse``: model.norse.nir beside model.nir; Norse's own importer and neurokd's replay of the
    variant give model.nir's readout (Norse reads tau at its dt 1e-3 and ignores r: to_nir.for_norse)."""
    norse = pytest.importorskip("norse.torch")
    from neurokd.exporters.from_nir import nir_to_torch

    assert cli(["export", str(run_dir), "--target", "nir", "--for", "norse"]) == 0
    assert "model.norse.nir (for norse)" in capsys.readouterr().out
    plain, variant = nir.read(run_dir / "model.nir"), nir.read(run_dir / "model.norse.nir")
    x = (torch.rand(8, 3, 64, generator=torch.Generator().manual_seed(0)) < 0.5).float()
    with torch.no_grad():
        ref = nir_to_torch(plain, timesteps=8)(x)
        ours = nir_to_torch(variant, timesteps=8)(x)
        net, state, theirs = norse.from_nir(variant), None, []
        for step in x:
            out, state = net(step, state)
            theirs.append(out)
    # float32 r W in the variant's weights, Norse's step-wise matmuls: rounding, not bitwise
    assert torch.allclose(ours, ref, atol=1e-4)
    assert torch.allclose(torch.stack(theirs), ref, atol=1e-4)
    assert cli(["export", str(run_dir), "--target", "nir", "--for", "sinabs"]) == 2


@pytest.mark.lava
def test_export_lava_both_precisions_writes_the_file_contract(run_dir, capsys):
    assert cli(["export", str(run_dir), "--target", "lava", "--precision", "both", "--samples", "40",
                "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Lava float accuracy" in out and "samples/s" in out
    ag = json.loads((run_dir / "agreement.json").read_text())
    assert AGREEMENT_KEYS <= set(ag) and ag["precision"] == "float" and ag["samples"] == 40
    assert ag["spike_agreement"] == {"lif1": 1.0, "lif2": 1.0} and ag["prediction_agreement"] == 1.0
    assert ag["accuracy_torch"] == ag["accuracy_lava"]
    fx = json.loads((run_dir / "agreement_fixed.json").read_text())
    assert AGREEMENT_KEYS <= set(fx) and fx["precision"] == "fixed"
    assert 0.9 < min(fx["spike_agreement"].values()) <= 1.0
    lava = run_dir / "lava"
    q = json.loads((lava / "quantization.json").read_text())
    assert set(q["layers"]) == {"lif1", "lif2", "readout"} and q["input"]["bits"] == 8
    counts = np.load(lava / "spike_counts_float.npz")
    assert counts["lif1"].shape == (40, 32) and counts["predictions"].shape == (40,)
    assert json.loads((lava / "network.json").read_text())["layers"][0]["delay"] == 1
    assert (lava / "predictions_fixed.csv").read_text().startswith("index,label,torch,lava")
    report = (run_dir / "energy_report.csv").read_text().splitlines()
    assert report[0].startswith("layer,kind,neurons,synapses,spikes_per_sample,synops_per_sample")
    assert any(line.startswith("lif1,lif,32,") for line in report)


@pytest.mark.lava
def test_export_float_mismatch_exits_1_after_writing_files(run_dir, monkeypatch, capsys):
    import neurokd.hardware.engines.lava_backend as backend

    real = backend.run_lava

    def flip_one_spike(*args, **kwargs):
        res = real(*args, **kwargs)
        res.spikes["lif2"][0, 0, 0] ^= 1
        return res

    monkeypatch.setattr(backend, "run_lava", flip_one_spike)
    (run_dir / "agreement.json").unlink(missing_ok=True)
    assert cli(["export", str(run_dir), "--samples", "8", "--no-progress"]) == 1
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neurokd: error: Lava floating_pt differs from PyTorch")
    ag = json.loads((run_dir / "agreement.json").read_text())
    assert ag["spike_agreement"]["lif2"] < 1.0 and ag["spike_agreement"]["lif1"] == 1.0


def _write_graph(path: Path, threshold_node: bool = False) -> Path:
    rng = np.random.default_rng(0)
    n = 5
    neuron = (nir.Threshold(threshold=np.ones(n)) if threshold_node else
              nir.LIF(tau=np.full(n, 1e-3), r=np.full(n, 10.0), v_leak=np.zeros(n), v_threshold=np.full(n, 0.5)))
    nodes = {"input": nir.Input(np.array([3])), "fc": nir.Affine(weight=rng.normal(size=(n, 3)), bias=np.zeros(n)),
             "lif": neuron, "output": nir.Output(np.array([n]))}
    nir.write(path, nir.NIRGraph(nodes, [("input", "fc"), ("fc", "lif"), ("lif", "output")], metadata={"dt": 1e-4},
                                 type_check=False))
    return path


@pytest.mark.lava
def test_simulate_writes_one_array_per_nir_node(tmp_path):
    from neurokd.hardware.network import ir
    from neurokd.hardware.network.nir_semantics import reference_run

    graph_path = _write_graph(tmp_path / "g.nir")
    x = (np.random.default_rng(1).random((30, 3)) < 0.5).astype(np.float32)        # time x features
    np.save(tmp_path / "x.npy", x)
    out = tmp_path / "sim"
    assert cli(["simulate", str(graph_path), "--input", str(tmp_path / "x.npy"), "--out", str(out),
                "--no-progress"]) == 0
    spikes = np.load(out / "spikes.npz")
    assert set(spikes.files) == {"input", "lif"}
    assert spikes["lif"].shape == (30, 1, 5)
    ref = reference_run(ir.from_nir(nir.read(graph_path)), x[None].astype(float))
    np.testing.assert_array_equal(spikes["lif"][:, 0], ref["lif"][0])
    summary = json.loads((out / "simulation.json").read_text())
    assert summary["timesteps"] == 30 and summary["delays"] == {"lif": 1}
    assert (out / "energy_report.csv").is_file()
    assert cli(["simulate", str(graph_path), "--random-input", "--steps", "12", "--samples", "2", "--precision",
                "fixed", "--out", str(tmp_path / "sim2"), "--no-progress"]) == 0
    assert np.load(tmp_path / "sim2" / "spikes.npz")["lif"].shape == (12, 2, 5)
    assert (tmp_path / "sim2" / "quantization.json").is_file()


@pytest.mark.parametrize("case", ["threshold node", "input shape", "no input"])
def test_simulate_bad_input_exits_2_with_one_line(tmp_path, capsys, case):
    graph_path = _write_graph(tmp_path / "g.nir", threshold_node=case == "threshold node")
    np.save(tmp_path / "x.npy", np.zeros((10, 4)))
    args = ["simulate", str(graph_path), "--out", str(tmp_path / "o"), "--no-progress"]
    if case == "input shape":
        args += ["--input", str(tmp_path / "x.npy")]
    elif case == "threshold node":
        args += ["--random-input"]
    assert cli(args) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("neurokd: error:")
    assert not (tmp_path / "o" / "spikes.npz").exists()


@pytest.mark.lava
def test_export_netx_target_writes_model_net_checked_in_lava_and_a_model_card(run_dir, tmp_path, capsys):
    run = tmp_path / "netx"
    run.mkdir()
    for f in ("config.toml", "student.pt", "metrics.json"):
        (run / f).write_bytes((run_dir / f).read_bytes())
    assert cli(["export", str(run), "--target", "netx", "--samples", "12"]) == 0
    out = capsys.readouterr().out
    assert "Prophesee" not in out  # lava-dl's import-time print is kept out of neurokd's output
    ag = json.loads((run / "agreement_netx.json").read_text())
    assert ag["spike_agreement"] == {"lif1": 1.0, "lif2": 1.0} and ag["readout_agreement"] == 1.0
    assert (run / "model.net").is_file() and (run / "model.nir").is_file()
    card = (run / "MODEL.md").read_text()
    assert "neurokd export" in card and "lif1" in card


def test_export_onnx_target_checks_the_student_step(run_dir, tmp_path):
    run = tmp_path / "onnx"
    run.mkdir()
    for f in ("config.toml", "student.pt", "metrics.json"):
        (run / f).write_bytes((run_dir / f).read_bytes())
    assert cli(["export", str(run), "--target", "onnx"]) == 0
    report = json.loads((run / "onnx_check.json").read_text())
    step = report["student_step"]
    assert step["checker"] == "passed" and step["onnxruntime"] and step["max_abs_diff"] < 1e-5
    assert "teacher" not in report  # this run has no teacher
    assert (run / "student_step.onnx").is_file() and (run / "MODEL.md").is_file()


@pytest.mark.lava
def test_export_engine_fast_runs_the_split_and_verifies_a_subset_in_lava(run_dir, tmp_path, capsys):
    run = tmp_path / "fast"
    run.mkdir()
    for f in ("config.toml", "student.pt", "metrics.json"):
        (run / f).write_bytes((run_dir / f).read_bytes())
    assert cli(["export", str(run), "--engine", "fast", "--precision", "both", "--samples", "60", "--verify", "8",
                "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert out.count("fast model vs Lava") == 2 and "DIFFERENT" not in out
    for name in ("agreement.json", "agreement_fixed.json"):
        ag = json.loads((run / name).read_text())
        assert ag["engine"] == "fast" and ag["samples"] == 60
        assert ag["fast_vs_lava"]["identical"] is True
        assert ag["fast_samples_per_second"] > 0 and not any(k.startswith("lava_sample") for k in ag)
    assert json.loads((run / "agreement.json").read_text())["spike_agreement"] == {"lif1": 1.0, "lif2": 1.0}

    # energy: the whole split from the fast model, the Lava-verified subset beside it
    report = {(r["energy_model"], r["layer"]): r for r in _read_csv(run / "energy_report.csv")}
    subset = {(r["energy_model"], r["layer"]): r for r in _read_csv(run / "energy_subset.csv")}
    assert set(subset) == {k for k in report if k[1] != "teacher"}
    counts = np.load(run / "lava" / "spike_counts_fixed.npz")
    indices = json.loads((run / "agreement_fixed.json").read_text())["fast_vs_lava"]["indices"]
    assert len(indices) == 8
    for (model, layer), row in subset.items():
        assert int(row["samples_split"]) == 60 and int(row["samples_subset"]) == 8
        assert float(row["spikes_split"]) == pytest.approx(float(report[model, layer]["spikes_per_sample"]))
        assert float(row["energy_pj_split"]) == pytest.approx(float(report[model, layer]["energy_pj_per_sample"]))
        for q in ("spikes", "synops", "macs", "neuron_updates", "active_neuron_updates", "energy_pj"):
            assert row[f"{q}_lava_subset"] == row[f"{q}_fast_subset"], (q, layer)
        if layer in ("lif1", "lif2"):          # the subset's spikes are the split's rows at the checked indices
            assert float(row["spikes_lava_subset"]) == pytest.approx(counts[layer][indices].sum() / 8)
    md = (run / "energy_report.md").read_text()
    assert "fast model, whole split" in md and "beside the Lava-verified subset" in md and "**identical**" in md

    # a later Lava-engine export rewrites the report without a subset: the old table goes
    assert cli(["export", str(run), "--precision", "float", "--samples", "20", "--no-progress"]) == 0
    assert not (run / "energy_subset.csv").exists()
    assert "Lava-verified subset" not in (run / "energy_report.md").read_text()


def test_export_without_lava_runs_the_fast_model_by_default_and_says_so(run_dir, tmp_path, capsys, monkeypatch):
    import neurokd.deploy

    monkeypatch.setattr(neurokd.deploy, "lava_available", lambda: False)   # as on Python 3.13 / numpy 2
    run = tmp_path / "nolava"
    run.mkdir()
    for f in run_dir.iterdir():
        if f.is_file():
            (run / f.name).write_bytes(f.read_bytes())
    assert cli(["export", str(run), "--precision", "fixed", "--samples", "16", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert "Lava (lava-nc) is not installed here: the split runs on neurokd's fast model" in out
    ag = json.loads((run / "agreement_fixed.json").read_text())
    assert ag["engine"] == "fast" and ag["samples"] == 16 and "fast_vs_lava" not in ag   # no Lava to check against
