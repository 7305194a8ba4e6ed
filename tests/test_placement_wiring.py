"""``--hardware`` on ``neurokd export`` and ``neurokd simulate``: the run's network placed on a chip and costed
from the run's own spikes (RUN/map/, the cost section of energy_report.md), and ``neurokd report`` showing it."""

from __future__ import annotations

import csv
import json
import shutil
from pathlib import Path

import nir
import numpy as np
import pytest

import neurokd
from conftest import cli


TINY = dict(model_options={"hidden": [16]}, epochs=2, teacher_epochs=2, batch_size=128, device="cpu")


def read_csv(path: Path) -> list[dict]:
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


@pytest.fixture(scope="module")
def trained(tmp_path_factory) -> Path:
    out = tmp_path_factory.mktemp("wiring") / "digits-kd-lr"
    return neurokd.train(out=out, method="kd-lr", progress=False, echo=None, **TINY).run_dir


def _copy(run: Path, tmp_path: Path) -> Path:
    dst = tmp_path / run.name
    shutil.copytree(run, dst)
    return dst


def _graph(path: Path, n_in: int, n_out: int, weight: float) -> Path:
    """input (n_in) -> Affine -> LIF (n_out), every weight ``weight``."""
    shape = (n_out,)
    nodes = {"input": nir.Input(np.array([n_in])),
             "fc": nir.Affine(weight=np.full((n_out, n_in), weight), bias=np.zeros(n_out)),
             "lif": nir.LIF(tau=np.full(shape, 5e-4), r=np.full(shape, 5.0), v_leak=np.zeros(shape),
                            v_threshold=np.full(shape, 1.0), v_reset=np.zeros(shape)),
             "output": nir.Output(np.array([n_out]))}
    names = list(nodes)
    nir.write(path, nir.NIRGraph(nodes, list(zip(names[:-1], names[1:])), metadata={"dt": 1e-4}, type_check=False))
    return path


def test_export_hardware_writes_map_whose_per_core_synops_sum_to_the_energy_report_and_report_shows_it(
        trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    assert cli(["export", str(run), "--target", "lava", "--precision", "fixed", "--engine", "fast", "--verify", "0",
                "--no-progress", "--hardware", "loihi2"]) == 0
    out = capsys.readouterr().out
    for name in ("mapping.csv", "placement.json", "cost_report.csv", "cost_steps.csv", "cost_report.md",
                 "mesh_load.png"):
        assert (run / "map" / name).stat().st_size > 0, name
    assert "on loihi2: 2 cores, 1 chip(s)" in out and "bottleneck core" in out
    rows = read_csv(run / "map" / "cost_report.csv")
    cores = [r for r in rows if r["scope"] == "core"]
    total = next(r for r in read_csv(run / "energy_report.csv") if r["layer"] == "total")
    for q in ("synops", "macs"):                      # the same 360 samples and spikes as the energy report
        assert sum(float(r[q]) for r in cores) == pytest.approx(float(total[f"{q}_per_sample"]), rel=1e-6), q  # float sums over cores vs the report's CSV (6 decimals)
    assert float(total["synops_per_sample"]) > 0 and float(total["macs_per_sample"]) > 0
    summary = {r["name"]: float(r["value"]) for r in rows if r["scope"] == "summary"}
    assert summary["cores"] == len(cores) == 2 and summary["energy_routing_uj_per_inference"] > 0
    md = (run / "energy_report.md").read_text()
    assert md.index("**total**") < md.index("## Placement on loihi2") and "**Bottleneck: core" in md
    assert "360 sample(s) x" in md
    # neurokd report puts the placement beside the energy columns and draws its mesh
    rep = tmp_path / "rep"
    assert cli(["report", str(run), "--out", str(rep)]) == 0
    row = read_csv(rep / "summary.csv")[0]
    assert row["cores"] == "2" and row["map_hardware"] == "loihi2"
    assert float(row["latency_us_per_inference"]) == pytest.approx(summary["latency_us_per_inference"])
    assert float(row["energy_with_routing_uj_per_inference"]) == pytest.approx(summary["energy_uj_per_inference"])
    assert "| Cores | Chips |" in (rep / "summary.md").read_text()
    assert (rep / f"mesh_load_{run.name}.png").read_bytes()[:4] == b"\x89PNG"


def test_export_too_large_for_per_step_spikes_costs_the_first_samples_that_fit(trained, tmp_path, monkeypatch, capsys):
    import neurokd.deploy as deploy

    run = _copy(trained, tmp_path)
    spiking = 16                                      # lif1 (the readout does not spike)
    steps = json.loads((run / "metrics.json").read_text())["timesteps"]
    monkeypatch.setattr(deploy, "MAX_STEP_RECORD", 25 * steps * spiking)
    assert cli(["export", str(run), "--target", "lava", "--precision", "fixed", "--engine", "fast", "--verify", "0",
                "--no-progress", "--hardware", "loihi2", "--placer", "balance"]) == 0
    out = capsys.readouterr().out
    assert "Costed on the first 25 of the run's 360 samples" in out
    md = (run / "map" / "cost_report.md").read_text()
    assert "25 sample(s) x" in md and "Costed on the first 25" in md
    assert json.loads((run / "map" / "placement.json").read_text())["placer"] == "balance"
    assert "Costed on the first 25" in (run / "energy_report.md").read_text()
    # a single sample over the limit: one line, before anything runs
    monkeypatch.setattr(deploy, "MAX_STEP_RECORD", steps)
    fresh = _copy(trained, tmp_path / "again")
    assert cli(["export", str(fresh), "--target", "lava", "--precision", "fixed", "--engine", "fast",
                "--no-progress", "--hardware", "loihi1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "per-step spikes" in err and "Traceback" not in err
    assert not (fresh / "agreement_fixed.json").exists() and not (fresh / "map").exists()


@pytest.mark.parametrize("argv, fragment", [
    (["--target", "nir", "--hardware", "loihi1"], "use --target lava"),
    (["--placer", "balance"], "give --hardware"),
    (["--hardware", "nochip"], "unknown hardware"),
    (["--hardware", "loihi1", "--chips", "0"], "--chips must be >= 1"),
])
def test_export_bad_hardware_options_are_one_line(trained, tmp_path, capsys, argv, fragment):
    run = _copy(trained, tmp_path)
    assert cli(["export", str(run), *argv]) == 2
    err = capsys.readouterr().err.strip()
    assert fragment in err and err.count("\n") == 0 and "Traceback" not in err
    assert not (run / "model.nir").exists()          # refused before anything was written


@pytest.mark.lava
def test_simulate_hardware_places_the_graph_and_refuses_one_that_does_not_fit(tmp_path, capsys):
    graph = _graph(tmp_path / "g.nir", 12, 30, 0.2)
    out = tmp_path / "sim"
    assert cli(["simulate", str(graph), "--random-input", "--steps", "6", "--samples", "3", "--rate", "0.5",
                "--precision", "fixed", "--no-progress", "--out", str(out), "--hardware", "loihi1"]) == 0
    assert (out / "map" / "cost_report.csv").is_file() and (out / "map" / "mesh_load.png").is_file()
    sim = json.loads((out / "simulation.json").read_text())
    # the layer's core and loihi1's input compartments (host spikes enter through them: input.spike_input_layer)
    assert sim["placement"]["cores"] == 2 and sim["placement"]["dir"] == "map"
    cores = [r for r in read_csv(out / "map" / "cost_report.csv") if r["scope"] == "core" and r["layer"] == "lif"]
    energy = read_csv(out / "energy_report.csv")
    lif = next(r for r in energy if r["layer"] == "lif")
    # the counting model's total: the placed block (first) also charges the input compartments' received spikes
    total = next(r for r in energy if r["layer"] == "total" and r["energy_model"] == "loihi-events")
    spikes = np.load(out / "spikes.npz")["lif"]                      # (T, N, 30), Lava's spikes
    assert 0 < spikes.mean() < 1
    assert float(cores[0]["spikes"]) == pytest.approx(spikes.sum() / 3)
    assert float(lif["spikes_per_sample"]) == pytest.approx(spikes.sum() / 3)
    assert float(cores[0]["synops"]) == pytest.approx(float(total["synops_per_sample"]))
    assert float(total["synops_per_sample"]) > 0                     # binary input: SynOps, not MACs
    assert "## Placement on loihi1" in (out / "energy_report.md").read_text()
    capsys.readouterr()
    # 4,100 inputs onto one neuron: over loihi1's 4,096 fan-in axons per core
    big = _graph(tmp_path / "big.nir", 4100, 2, 0.1)
    assert cli(["simulate", str(big), "--random-input", "--steps", "3", "--no-progress", "--out", str(tmp_path / "b"),
                "--hardware", "loihi1"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "fan-in" in err and "by 4" in err and "Traceback" not in err
    assert not (tmp_path / "b" / "spikes.npz").exists()               # refused before Lava ran


def test_export_result_carries_the_placement_and_model_md_states_it(trained, tmp_path):
    """neurokd.export(run, hardware=...) returns the placement's figures (no reading RUN/map by hand), the same as
    placement.json's, and MODEL.md gets a placement section; without hardware the field is None."""
    run = _copy(trained, tmp_path)
    exported = neurokd.export(run, target="lava", precision="fixed", engine="fast", verify=0, progress=False,
                              echo=None, hardware="loihi2")
    placed = exported.placement
    assert placed["dir"] == run / "map" and (placed["dir"] / "cost_report.csv").is_file()
    on_disk = json.loads((run / "map" / "placement.json").read_text())
    assert placed["chip"] == "loihi2" and placed["cores"] == on_disk["cores"] == 2 and placed["chips"] == 1
    for key in ("latency_us_per_inference", "energy_uj_per_inference", "routing_uj_per_inference"):
        assert placed[key] == pytest.approx(on_disk["cost"][key]) and placed[key] > 0, key
    assert placed["bottleneck"]["core"] == on_disk["cost"]["bottleneck"]["core"]
    assert placed["bottleneck"]["bound"] in ("synaptic ops", "neuron updates", "spikes and messages")
    card = (run / "MODEL.md").read_text()
    assert "## Placement on loihi2" in card and f"| bottleneck core | core {placed['bottleneck']['core']} (" in card
    assert f"| placement | loihi2: 2 cores, 1 chip(s), {placed['latency_us_per_inference']:.4g} us per inference |" in card
    assert neurokd.export(run, target="nir", echo=None).placement is None


def test_a_later_export_without_hardware_moves_the_old_placement_aside_and_report_no_longer_shows_it(
        trained, tmp_path, capsys):
    run = _copy(trained, tmp_path)
    assert cli(["export", str(run), "--target", "lava", "--precision", "fixed", "--engine", "fast", "--verify", "0",
                "--no-progress", "--hardware", "loihi1", "--input-mode", "spikes"]) == 0
    capsys.readouterr()
    assert cli(["export", str(run), "--target", "lava", "--precision", "float", "--engine", "fast", "--verify", "0",
                "--no-progress"]) == 0
    moved = [line for line in capsys.readouterr().out.splitlines() if "map.stale" in line]
    assert len(moved) == 1 and "placed an earlier run" in moved[0]       # said once, and kept
    assert not (run / "map").exists() and (run / "map.stale" / "cost_report.csv").is_file()
    assert "## Placement" not in (run / "MODEL.md").read_text()
    assert "## Placement" not in (run / "energy_report.md").read_text()
    rep = tmp_path / "rep"
    assert cli(["report", str(run), "--out", str(rep)]) == 0
    assert read_csv(rep / "summary.csv")[0].get("cores", "") == ""
    assert "| Cores |" not in (rep / "summary.md").read_text()
    # placed again: a fresh map/; the older stale one is replaced, and the line says so
    assert cli(["export", str(run), "--target", "lava", "--precision", "fixed", "--engine", "fast", "--verify", "0",
                "--no-progress", "--hardware", "loihi1", "--input-mode", "spikes"]) == 0
    assert "map.stale" not in capsys.readouterr().out
    assert cli(["export", str(run), "--target", "lava", "--engine", "fast", "--verify", "0", "--no-progress"]) == 0
    assert "(replacing an older one)" in capsys.readouterr().out


def test_a_placement_rewritten_into_a_folder_leaves_no_earlier_files_read_as_its_own(trained, tmp_path, capsys):
    """`neurokd map --no-cost` over a costed map/ removes the earlier cost files and mesh figure (report would
    read them as this placement's); `export --hardware` over a map/ holding a SANA-FE comparison moves it aside."""
    run = _copy(trained, tmp_path)
    assert cli(["export", str(run), "--target", "lava", "--precision", "fixed", "--engine", "fast", "--verify", "0",
                "--no-progress", "--hardware", "loihi1", "--input-mode", "host"]) == 0
    assert cli(["map", str(run), "--out", str(run / "map"), "--no-cost"]) == 0
    assert sorted(p.name for p in (run / "map").iterdir()) == ["mapping.csv", "placement.json"]
    rep = tmp_path / "rep"
    assert cli(["report", str(run), "--out", str(rep), "--no-figures"]) == 0
    row = read_csv(rep / "summary.csv")[0]
    # placed, not costed: no old latency; 3 cores: lif1, readout and loihi1's input compartments (spikes mode)
    assert row["cores"] == "3" and row["latency_us_per_inference"] == ""
    (run / "map" / "sanafe_comparison.csv").write_text("metric,sanafe\n")
    capsys.readouterr()
    assert cli(["export", str(run), "--target", "lava", "--precision", "fixed", "--engine", "fast", "--verify", "0",
                "--no-progress", "--hardware", "loihi1", "--input-mode", "bias"]) == 0
    assert "holds sanafe_comparison.csv" in capsys.readouterr().out
    assert (run / "map.stale" / "sanafe_comparison.csv").is_file() and not (run / "map" / "sanafe_comparison.csv").exists()
    assert (run / "map" / "cost_report.csv").is_file()


def test_map_into_a_folder_removes_an_earlier_sanafe_comparison(tmp_path, capsys):
    graph = _graph(tmp_path / "g.nir", 4, 3, 0.5)
    out = tmp_path / "m"
    out.mkdir()
    (out / "sanafe_comparison.csv").write_text("metric,sanafe\n")
    assert cli(["map", str(graph), "--out", str(out), "--no-cost"]) == 0
    assert not (out / "sanafe_comparison.csv").exists()
    assert "removed" in capsys.readouterr().out


def test_map_sanafe_writes_the_comparison_with_the_same_figures_agreeing(tmp_path, capsys):
    pytest.importorskip("sanafe")
    graph = _graph(tmp_path / "g.nir", 6, 4, 0.5)
    out = tmp_path / "m"
    assert cli(["map", str(graph), "--out", str(out), "--random-input", "--steps", "6", "--samples", "2",
                "--rate", "0.4", "--sanafe", "2"]) == 0
    rows = {r["metric"]: r for r in read_csv(out / "sanafe_comparison.csv")}
    assert float(rows["spikes lif"]["sanafe"]) > 0 and float(rows["spikes lif"]["diff_cited_pct"]) == 0.0
    assert abs(float(rows["energy_uj"]["diff_same_pct"])) < 1e-6
    assert abs(float(rows["latency_us"]["diff_same_pct"])) < 5
    assert "SANA-FE" in capsys.readouterr().out


def test_export_on_loihi1_with_an_input_mode_reports_it_everywhere(trained, tmp_path, capsys):
    """`export --hardware loihi1`: graded input refused before anything runs (one line, the modes that work);
    `--input-mode bias` places an input layer (one core more), costs the spikes it sends, and the cost report,
    placement.json, energy_report.md and MODEL.md say so, with the accuracy under the mode beside the graded one."""
    run = _copy(trained, tmp_path)
    base = ["export", str(run), "--target", "lava", "--precision", "fixed", "--engine", "fast", "--verify", "0",
            "--no-progress", "--hardware", "loihi1"]
    assert cli(base) == 2
    err = capsys.readouterr().err.strip()
    assert err.count("\n") == 0 and "binary spikes only" in err and "bias, spikes or host" in err
    assert not (run / "agreement_fixed.json").exists()                  # refused before the run
    assert cli(base + ["--input-mode", "bias"]) == 0
    out = capsys.readouterr().out
    assert "on loihi1: 3 cores" in out and "input mode bias" in out and "fed graded, as trained" in out
    info = json.loads((run / "map" / "placement.json").read_text())
    agreement = json.loads((run / "agreement_fixed.json").read_text())
    assert info["options"]["input_mode"] == "bias" and info["layers"]["input"]["cores"] == 1
    assert info["input"]["accuracy_graded"] == pytest.approx(agreement["accuracy_lava"])   # the same samples, graded
    assert 0 < info["input"]["accuracy"] <= 1 and info["input"]["charged"]["first_synapse_macs"] == 0
    assert info["input"]["charged"]["input_layer_spikes"] > 0 and info["input"]["charged"]["host_messages"] == 0
    assert "**Input mode `bias`**" in (run / "energy_report.md").read_text()
    card = (run / "MODEL.md").read_text()
    assert "| input mode | `bias`: an on-chip" in card and "--input-mode bias" in card
    assert [r["name"] for r in read_csv(run / "map" / "cost_report.csv") if r["scope"] == "input"] == ["bias"]


def test_map_of_a_trained_run_without_model_nir_exports_it_first_and_says_so(trained, tmp_path, capsys):
    """`neurokd map RUN` on a trained run that was never exported writes the model.nir (and MODEL.md) that
    `neurokd export RUN --target nir` writes, says so in one line, then places and costs it; a folder that is
    no run, or a run whose student is user code (map takes no --model), is refused in one line."""
    run, exported = _copy(trained, tmp_path / "a"), _copy(trained, tmp_path / "b")
    for r in (run, exported):
        (r / "model.nir").unlink(missing_ok=True)
    assert cli(["export", str(exported), "--target", "nir"]) == 0
    capsys.readouterr()
    assert cli(["map", str(run), "--out", str(tmp_path / "m"), "--samples", "20", "--hardware", "loihi2"]) == 0
    said = [line for line in capsys.readouterr().out.splitlines() if "export" in line]
    assert said == [f"neurokd: {run} had no model.nir: exported it first, as `neurokd export {run} --target nir` "
                    f"does ({run / 'model.nir'}, MODEL.md)"]
    ours, theirs = nir.read(run / "model.nir"), nir.read(exported / "model.nir")
    assert ours.nodes.keys() == theirs.nodes.keys() and ours.edges == theirs.edges
    for name, node in theirs.nodes.items():                  # the same writer on the same weights: the same file
        for key, value in node.to_dict().items():
            assert np.array_equal(np.asarray(ours.nodes[name].to_dict()[key]), np.asarray(value)), (name, key)
    assert (run / "MODEL.md").is_file() and (tmp_path / "m" / "cost_report.csv").is_file()
    assert cli(["map", str(run), "--out", str(tmp_path / "m2"), "--no-cost"]) == 0      # now it has one: silent
    assert "had no model.nir" not in capsys.readouterr().out

    nothing = tmp_path / "empty"
    nothing.mkdir()
    assert cli(["map", str(nothing), "--out", str(tmp_path / "m3")]) == 2
    err = capsys.readouterr().err.strip()
    assert "not a neurokd run folder" in err and "\n" not in err
    user = _copy(trained, tmp_path / "c")
    (user / "model.nir").unlink(missing_ok=True)
    config = (user / "config.toml").read_text()
    (user / "config.toml").write_text(config.replace('model = "mlp"', 'model = "my_net.py:build"', 1))
    assert cli(["map", str(user), "--out", str(tmp_path / "m4")]) == 2
    err = capsys.readouterr().err.strip()
    assert "comes from user code" in err and "--target nir --model" in err and "\n" not in err
    assert not (user / "model.nir").exists()
