"""The public Python API (``import neurokd``): documented calls, plain results, NeurokdError on bad input,
and the notebook route train -> export -> simulate -> report on a tiny digits student."""

from __future__ import annotations

import json
import pydoc

import numpy as np
import pytest

from conftest import LAVA_MISSING

import neurokd
from neurokd.errors import CheckFailed, NeurokdError

TINY = dict(model_options={"hidden": [16]}, epochs=2, teacher_epochs=2, batch_size=128, device="cpu")


def test_help_lists_every_call_and_each_has_a_docstring():
    text = pydoc.render_doc(neurokd, renderer=pydoc.plaintext)
    for name in ("train", "evaluate", "study", "export", "simulate", "map_network", "load_nir", "import_nir",
                 "report", "tune"):
        fn = getattr(neurokd, name)
        assert callable(fn) and name in neurokd.__all__
        assert fn.__doc__ and len(fn.__doc__.split()) > 20, f"neurokd.{name} needs a docstring a notebook user can read"
        assert f"{name}(" in text
    assert issubclass(CheckFailed, NeurokdError) and neurokd.NeurokdError is NeurokdError
    for name in neurokd.__all__:
        assert hasattr(neurokd, name), name


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    out = tmp_path_factory.mktemp("api") / "digits-kd-lr"
    return neurokd.train(out=out, progress=False, echo=None, **TINY)


def test_train_returns_the_run_and_its_metrics(trained):
    assert isinstance(trained, neurokd.RunResult)
    on_disk = json.loads((trained.run_dir / "metrics.json").read_text())
    assert trained.metrics["test_accuracy"] == on_disk["test_accuracy"] == trained.test_accuracy
    assert trained.activity == on_disk["activity"]["total"] > 0
    assert trained.config["method"] == "kd-lr" and trained.config["epochs"] == 2
    # a TrainConfig works as the config, with keyword settings on top; a finished run is read back on resume
    again = neurokd.train(neurokd.TrainConfig(out=str(trained.run_dir), **TINY), resume=True, progress=False,
                          echo=None)
    assert again.metrics["test_accuracy"] == trained.test_accuracy


def test_evaluate_export_and_report_chain_from_the_run_result(trained, tmp_path):
    metrics = neurokd.evaluate(trained, device="cpu")
    assert metrics["test_accuracy"] == trained.test_accuracy
    messages = []
    verify = 2 if LAVA_MISSING is None else 0       # checked against Lava where Lava is installed (3.11 stack)
    exported = neurokd.export(trained, target="lava", precision="fixed", engine="fast", verify=verify, progress=False,
                              echo=messages.append)
    assert isinstance(exported, neurokd.ExportResult) and exported.target == "lava"
    ag = exported.agreements["fixed"]
    assert ag == json.loads((trained.run_dir / "agreement_fixed.json").read_text())
    assert ag["samples"] == 360
    assert exported.placement is None                          # no hardware given: not placed
    if verify:
        assert ag["fast_vs_lava"]["identical"]
        assert any("fast model vs Lava" in m for m in messages)
    paths = neurokd.report(exported, out=tmp_path / "reports", figures=False)
    assert {"summary.csv", "summary.md", "summary.tex"} <= set(paths)
    assert "kd-lr" in paths["summary.md"].read_text()


@pytest.mark.lava
def test_simulate_takes_a_graph_object_and_an_array_and_matches_load_nir(trained, tmp_path):
    import nir
    import torch

    neurokd.export(trained, target="nir", echo=None)
    graph = nir.read(trained.run_dir / "model.nir")
    rng = np.random.default_rng(0)
    x = (rng.random((3, 8, 64)) < 0.3).astype(np.float64)        # 3 samples x 8 steps of binary input
    sim = neurokd.simulate(graph, tmp_path / "sim", inputs=x, progress=False, echo=None)
    assert isinstance(sim, neurokd.SimulationResult)
    assert sim.summary["samples"] == 3 and sim.summary["timesteps"] == 8
    spikes = np.load(tmp_path / "sim" / "spikes.npz")
    module = neurokd.load_nir(trained.run_dir / "model.nir").double()
    with torch.no_grad():
        rec = module(torch.as_tensor(np.swapaxes(x, 0, 1)), record=True)
    for layer, per_sample in sim.spikes_per_sample.items():
        ref = rec[layer].numpy()
        assert np.array_equal(spikes[layer], ref.reshape(spikes[layer].shape)), layer
        assert per_sample == pytest.approx(ref.sum() / 3)
    assert sim.placement is None
    # on a chip: the placement's figures on the result, its files under out/map; a later run without moves it aside
    placed = neurokd.simulate(graph, tmp_path / "sim", inputs=x, progress=False, echo=None, hardware="loihi1")
    assert placed.placement["dir"] == tmp_path / "sim" / "map" and (placed.placement["dir"] / "mapping.csv").is_file()
    assert placed.placement["cores"] == placed.summary["placement"]["cores"] >= 1
    assert placed.placement["energy_uj_per_inference"] > 0 and "bound" in placed.placement["bottleneck"]
    messages = []
    again = neurokd.simulate(graph, tmp_path / "sim", inputs=x, progress=False, echo=messages.append)
    assert again.placement is None and not (tmp_path / "sim" / "map").exists()
    assert (tmp_path / "sim" / "map.stale" / "placement.json").is_file() and any("map.stale" in m for m in messages)


def test_map_network_places_the_run_and_its_cost_sums_to_the_energy_report(trained, tmp_path):
    """The placement call on a run folder: every neuron on a core, and per-core SynOps over the test split add
    up to the whole-network count of the energy report written from the same fast-engine spikes."""
    import csv

    neurokd.export(trained, target="lava", precision="fixed", engine="fast", verify=0, progress=False, echo=None)
    mapped = neurokd.map_network(trained, tmp_path / "map", hardware="loihi2", echo=None)
    summary = mapped.summary()
    assert summary["chips"] == 1 and summary["cores"] == 2                      # lif1 (16 neurons) and the readout
    with open(tmp_path / "map" / "mapping.csv", newline="") as fh:
        cores = list(csv.DictReader(fh))
    assert len(cores) == summary["cores"]
    from neurokd.exporters.from_nir import read_nir
    from neurokd.hardware.network import ir

    network = ir.from_nir(read_nir(trained.run_dir / "model.nir"))
    assert sum(int(c["neurons"]) for c in cores) == sum(layer.size for layer in network.layers)
    with open(trained.run_dir / "energy_report.csv", newline="") as fh:
        total = next(r for r in csv.DictReader(fh) if r["layer"] == "total")
    for q in ("synops", "macs"):
        assert mapped.cost.per_core(q).sum() == pytest.approx(float(total[f"{q}_per_sample"]), rel=1e-6), q  # per-core float sums vs the report's CSV (6 decimals)
    with pytest.raises(NeurokdError, match="model.nir|not found"):
        neurokd.map_network(tmp_path / "nothing-here", tmp_path / "m2", echo=None)


@pytest.mark.parametrize("call, fragment", [
    (lambda tmp: neurokd.train(method="kd-nope", out=tmp / "r", echo=None), "method"),
    (lambda tmp: neurokd.export(tmp / "missing", echo=None), "run folder not found"),
    (lambda tmp: neurokd.export(42, echo=None), "run folder must be a path"),
    (lambda tmp: neurokd.evaluate(tmp, device="tpu"), "unknown device"),
    (lambda tmp: neurokd.report([tmp], out=tmp / "rep"), "config.toml"),
    (lambda tmp: neurokd.simulate(tmp / "none.nir", tmp / "o", random_input=True, echo=None), "none.nir"),
])
def test_bad_input_raises_one_line_neurokd_error(call, fragment, tmp_path):
    with pytest.raises(NeurokdError) as err:
        call(tmp_path)
    msg = str(err.value)
    assert fragment in msg and "\n" not in msg


def test_export_on_the_fast_engine_without_verification_needs_no_lava(trained, tmp_path):
    """``export(..., engine="fast", verify=0)`` imports no Lava (what tune does where Lava is absent)."""
    import shutil
    import subprocess
    import sys

    run = tmp_path / "run"
    shutil.copytree(trained.run_dir, run)
    code = (
        "import importlib.abc, sys\n"
        "class Block(importlib.abc.MetaPathFinder):\n"
        "    def find_spec(self, name, path, target=None):\n"
        "        if name == 'lava' or name.startswith('lava.'):\n"
        "            raise ImportError('lava blocked by the test')\n"
        "sys.meta_path.insert(0, Block())\n"
        "import neurokd\n"
        f"ex = neurokd.export({str(run)!r}, precision='fixed', engine='fast', verify=0, progress=False, echo=None)\n"
        "print(ex.agreements['fixed']['samples'])\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr[-2000:]
    assert out.stdout.strip() == "360" and (run / "energy_report.csv").is_file()


def test_a_zoo_model_named_by_name_trains(tmp_path):
    """`model="mlp"` (as `--model conv1d` / `resnet1d` on the command line) names a built-in student, not user
    code: it trains, and the run records it."""
    run = neurokd.train(out=tmp_path / "zoo", model="mlp", progress=False, echo=None, **TINY)
    assert run.config["model"] == "mlp" and (run.run_dir / "student.pt").is_file()
