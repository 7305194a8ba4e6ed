"""energy_report.csv/.md of one run, and `neurokd report` over several run folders."""

from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from neurokd import fileio
from neurokd.cli import main
from neurokd.errors import NeurokdError
from neurokd.hardware.cost.counting import Connection, Geometry, Population, activity_from_counts, activity_from_rasters, count
from neurokd.hardware.cost.energy import ENERGY_MODELS
from neurokd.hardware.reports.energy_report import ENERGY_COLUMNS, SUBSET_COLUMNS, VerifiedSubset, write_energy_report
from neurokd.hardware.reports.summary import read_run, summarize_runs

CONTRACT = ["layer", "kind", "neurons", "synapses", "spikes_per_sample", "synops_per_sample",
            "neuron_updates_per_sample", "energy_model", "energy_pj_per_sample"]


def geometry() -> Geometry:
    return Geometry([
        Population("input", "input", (4,), spiking=False, stateful=False),
        Connection("fc1", "dense", "input", "lif1", (4,), weight=np.array([[1.0, 0, 2, 0], [0, 0, 1, 1], [1, 1, 1, 1]])),
        Population("lif1", "lif", (3,)),
        Connection("readout", "dense", "lif1", None, (3,), weight=np.array([[1.0, 0, 1], [0, 1, 1]])),
    ])


def counts_for(rate: float, seed: int):
    rng = np.random.default_rng(seed)
    net = geometry()
    x = rng.random((1, 10, 4)) * (rng.random((1, 10, 4)) < 0.7)
    rasters = {"input": np.repeat(x, 4, axis=0), "lif1": rng.random((4, 10, 3)) < rate}
    return net, count(net, activity_from_rasters(net, rasters))


def read_csv(path):
    with open(path, newline="") as fh:
        return list(csv.DictReader(fh))


def test_energy_report_csv_has_the_contract_columns_and_one_block_per_model(tmp_path):
    net, c = counts_for(0.3, 0)
    csv_path, md_path = write_energy_report(tmp_path, net, c, title="tiny")
    with open(csv_path, newline="") as fh:
        header = next(csv.reader(fh))
    assert header[: len(CONTRACT)] == CONTRACT and header == list(ENERGY_COLUMNS)
    rows = read_csv(csv_path)
    layer_names = ["input", "fc1", "lif1", "readout", "total", "teacher"]
    assert [r["layer"] for r in rows] == layer_names * len(ENERGY_MODELS)
    assert [r["energy_model"] for r in rows[:: len(layer_names)]] == list(ENERGY_MODELS)
    for model in ENERGY_MODELS:
        block = [r for r in rows if r["energy_model"] == model]
        total = block[4]
        for col in ("synops_per_sample", "macs_per_sample", "spikes_per_sample", "energy_pj_per_sample"):
            assert float(total[col]) == pytest.approx(sum(float(r[col]) for r in block[:4]))
        assert float(total["energy_pj_per_step"]) == pytest.approx(float(total["energy_pj_per_sample"]) / 4)
    fc1 = rows[1]
    assert fc1["kind"] == "dense" and int(fc1["synapses"]) == 8 and float(fc1["synops_per_sample"]) == 0
    assert float(fc1["macs_per_sample"]) == pytest.approx(c.row("fc1").macs)
    teacher = [r for r in rows if r["layer"] == "teacher"]
    assert {r["macs_per_sample"] for r in teacher} == {str(12 + 6)}  # every weight of the graph, zeros included
    assert float(next(r for r in teacher if r["energy_model"] == "45nm")["energy_pj_per_sample"]) == pytest.approx(18 * 4.6)
    assert next(r for r in teacher if r["energy_model"] == "loihi-events")["energy_pj_per_sample"] == ""
    md = md_path.read_text()
    assert "| layer | kind |" in md and "**total**" in md
    assert "Davies" in md and "IEEE Micro 38(1)" in md and "Horowitz" in md and "Loihi 2" in md
    assert "student" in md and "teacher" in md and "Effective_ACs" in md


def test_energy_report_says_when_active_updates_are_an_upper_bound(tmp_path):
    net = geometry()
    c = count(net, activity_from_counts(net, {"input": [4, 4, 0, 4], "lif1": [1, 2, 0]}, samples=1, steps=4))
    _, md_path = write_energy_report(tmp_path, net, c)
    assert "upper bound" in md_path.read_text()
    assert next(r for r in read_csv(tmp_path / "energy_report.csv") if r["layer"] == "lif1")[
        "active_neuron_updates_per_sample"] == ""


def test_total_spikes_of_a_binary_input_graph_are_the_network_neurons_spikes_only(tmp_path):
    """A spiking input's events stay in its own row (and in the first connection's SynOps and the energy);
    the total row's spikes are those of the network's neurons, as for a graded input."""
    net = Geometry([
        Population("input", "input", (4,), spiking=True, stateful=False),
        Connection("fc1", "dense", "input", "lif1", (4,), weight=np.array([[1.0, 0, 2, 0], [0, 0, 1, 1], [1, 1, 1, 1]])),
        Population("lif1", "lif", (3,)),
        Connection("readout", "dense", "lif1", None, (3,), weight=np.array([[1.0, 0, 1], [0, 1, 1]])),
    ])
    c = count(net, activity_from_counts(net, {"input": [4, 4, 0, 4], "lif1": [1, 2, 0]}, samples=1, steps=4))
    _, md_path = write_energy_report(tmp_path, net, c, models=["loihi"])
    rows = {r["layer"]: r for r in read_csv(tmp_path / "energy_report.csv")}
    assert float(rows["input"]["spikes_per_sample"]) == 12 and float(rows["lif1"]["spikes_per_sample"]) == 3
    assert float(rows["total"]["spikes_per_sample"]) == 3                      # not 15
    assert float(rows["total"]["synops_per_sample"]) == c.row("fc1").synops + c.row("readout").synops
    assert float(rows["total"]["energy_pj_per_sample"]) == pytest.approx(sum(
        float(rows[k]["energy_pj_per_sample"]) for k in ("input", "fc1", "lif1", "readout")))   # input still routed
    assert "**total** row's spikes are the network's neurons' only" in md_path.read_text()


def test_subset_beside_the_split_gives_each_quantity_three_ways_and_says_when_the_check_failed(tmp_path):
    net, split = counts_for(0.3, 0)
    _, lava = counts_for(0.6, 1)                     # a subset twice as active as the split
    subset = VerifiedSubset(lava=lava, fast=split, indices=(0, 3), precision="fixed", identical=False, spike_rse=0.05)
    paths = write_energy_report(tmp_path, net, split, subset=subset)
    assert [p.name for p in paths] == ["energy_report.csv", "energy_report.md", "energy_subset.csv"]
    rows = read_csv(tmp_path / "energy_subset.csv")
    assert list(rows[0]) == list(SUBSET_COLUMNS)
    assert [r["layer"] for r in rows] == ["input", "fc1", "lif1", "readout", "total"] * len(ENERGY_MODELS)
    report = {(r["energy_model"], r["layer"]): r for r in read_csv(tmp_path / "energy_report.csv")}
    for r in rows:
        full = report[r["energy_model"], r["layer"]]
        assert float(r["spikes_split"]) == pytest.approx(float(full["spikes_per_sample"]))
        assert float(r["spikes_fast_subset"]) == pytest.approx(float(full["spikes_per_sample"]))   # fast = split here
        assert float(r["energy_pj_split"]) == pytest.approx(float(full["energy_pj_per_sample"]))
        if r["layer"] == "lif1":
            assert float(r["spikes_lava_subset"]) == pytest.approx(lava.row("lif1").spikes)
        if float(r["energy_pj_split"]):
            change = 100 * (float(r["energy_pj_lava_subset"]) / float(r["energy_pj_split"]) - 1)
            assert float(r["energy_subset_vs_split_pct"]) == pytest.approx(change, abs=1e-5)
    md = (tmp_path / "energy_report.md").read_text()
    assert "**not identical**" in md and "`agreement_fixed.json`" in md and "standard error" in md and "5.0 %" in md
    # rewritten without a subset: the side table goes, the section too
    write_energy_report(tmp_path, net, split)
    assert not (tmp_path / "energy_subset.csv").exists()
    assert "Lava-verified subset" not in (tmp_path / "energy_report.md").read_text()


def make_run(root, method: str, seed: int, rate: float, accuracy: float, agreement: bool = True, model: str = "mlp"):
    run = root / f"digits-{model}-{method}-s{seed}"
    net, c = counts_for(rate, seed)
    write_energy_report(run, net, c)
    fileio.write_text(run / "config.toml", f'dataset = "digits"\nmodel = "{model}"\nmethod = "{method}"\n'
                                           f'seed = {seed}\ntimesteps = 4\n')
    lif_rate = c.row("lif1").spikes / c.row("lif1").neuron_updates
    fileio.write_json(run / "metrics.json", {
        "dataset": "digits", "method": method, "seed": seed, "timesteps": 4, "test_accuracy": accuracy,
        "val_accuracy": accuracy, "teacher_test_accuracy": 0.99,
        "activity": {"total": lif_rate, "per_layer": {"lif1": lif_rate}},
        "spikes_per_sample": c.row("lif1").spikes, "epochs": 1, "train_seconds": 1.0})
    if agreement:
        for precision, acc in (("float", accuracy), ("fixed", accuracy - 0.01)):
            fileio.write_json(run / "lava" / f"agreement_{precision}.json", {
                "precision": precision, "samples": 10, "spike_agreement": {"lif1": 1.0},
                "prediction_agreement": 1.0, "accuracy_torch": accuracy, "accuracy_lava": acc})
    return run


def test_report_command_writes_summary_tables_and_figures(tmp_path, capsys):
    runs = tmp_path / "runs"
    for seed in (0, 1):
        make_run(runs, "baseline", seed, 0.5, 0.90 + 0.01 * seed)
        make_run(runs, "kd-lr", seed, 0.2, 0.91 + 0.01 * seed, agreement=seed == 0)
    out = tmp_path / "report"
    with pytest.raises(SystemExit) as exc:
        main(["report", *(str(p) for p in sorted(runs.iterdir())), "--out", str(out)])
    assert exc.value.code == 0
    rows = read_csv(out / "summary.csv")
    assert len(rows) == 4 and {r["method"] for r in rows} == {"baseline", "kd-lr"}
    first = rows[0]
    assert first["accuracy_lava_float"] == "0.9" and float(first["accuracy_lava_fixed"]) == pytest.approx(0.89)
    for m in ENERGY_MODELS:
        assert float(first[f"energy_pj_per_sample_{m}"]) > 0
    # the model's former name stays a column (loihi-events was loihi): a script reading it still works
    assert first["energy_pj_per_sample_loihi"] == first["energy_pj_per_sample_loihi-events"]
    assert rows[-1]["accuracy_lava_fixed"] == ""  # no agreement file: left empty, not an error
    tex = (out / "summary.tex").read_text()
    assert "\\toprule" in tex and "\\midrule" in tex and "\\bottomrule" in tex and "$\\pm$" in tex
    kd_line = next(line for line in tex.splitlines() if line.startswith("digits & kd-lr"))
    assert "\\,\\%" in kd_line and "$-$" in kd_line  # activity and energy fall vs the baseline
    md = (out / "summary.md").read_text()
    assert "baseline" in md and "±" in md
    for stem in ("accuracy_energy_loihi-events_digits", "activity_layers_digits", "synops_layers_digits"):
        for ext in ("png", "pdf"):
            assert (out / f"{stem}.{ext}").stat().st_size > 1000
    assert (out / "accuracy_energy_loihi-events_digits.png").read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"


def test_runs_of_two_models_on_one_dataset_are_not_averaged_as_seeds(tmp_path):
    """conv1d and resnet1d runs of one dataset: two settings, each with its own baseline, not one
    group of 'seeds'."""
    runs = tmp_path / "runs"
    for model, shift in (("conv1d", 0.0), ("resnet1d", 0.02)):
        make_run(runs, "baseline", 0, 0.5, 0.90 + shift, model=model)
        make_run(runs, "kd-lr", 0, 0.2 + shift, 0.91 + shift, model=model)
    paths = summarize_runs([runs], tmp_path / "out", models=["45nm"], figures=True)
    md = (tmp_path / "out" / "summary.md").read_text()
    table = [line for line in md.splitlines() if line.startswith("| digits-")]
    assert [line.split(" | ")[:3] for line in table] == [
        ["| digits-conv1d", "baseline", "1"], ["| digits-conv1d", "kd-lr", "1"],
        ["| digits-resnet1d", "baseline", "1"], ["| digits-resnet1d", "kd-lr", "1"]]
    assert {r["dataset"] for r in read_csv(paths["summary.csv"])} == {"digits"}     # the CSV keeps the run's own
    assert (tmp_path / "out" / "synops_layers_digits-resnet1d.png").is_file()


def test_runs_of_one_method_with_other_settings_are_separate_rows_named_by_what_differs(tmp_path):
    """kd-lr at two temperatures (seeds 0 and 1 each) plus a baseline: two kd-lr rows, each averaging its
    two seeds and compared with the one baseline; the same run twice is refused in one line."""
    for seed in (0, 1):
        make_run(tmp_path / "base", "baseline", seed, 0.5, 0.90)
        for temp in (1.0, 4.0):
            run = make_run(tmp_path / f"t{temp:g}", "kd-lr", seed, 0.2 * temp, 0.91)
            (run / "config.toml").write_text((run / "config.toml").read_text() + f"temperature = {temp}\n")
    summarize_runs([tmp_path / "base", tmp_path / "t1", tmp_path / "t4"], tmp_path / "out", models=["45nm"],
                   figures=False)
    rows = [line.split(" | ")[:3] for line in (tmp_path / "out" / "summary.md").read_text().splitlines()
            if line.startswith("| digits |")]
    assert rows == [["| digits", "baseline", "2"], ["| digits", "kd-lr (temperature=1.0)", "2"],
                    ["| digits", "kd-lr (temperature=4.0)", "2"]]
    twice = tmp_path / "twice"
    make_run(twice / "a", "kd-lr", 0, 0.2, 0.91)
    make_run(twice / "b", "kd-lr", 0, 0.2, 0.91)
    with pytest.raises(NeurokdError, match="both kd-lr seed 0 on digits with the same settings"):
        summarize_runs([twice / "a", twice / "b"], tmp_path / "out2", models=["45nm"], figures=False)


def test_a_folder_of_runs_stands_for_its_runs_and_tables_only_skip_figures(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "baseline", 0, 0.5, 0.9)
    make_run(runs, "kd", 0, 0.4, 0.9)
    paths = summarize_runs([runs], tmp_path / "out", models=["45nm"], figures=False)
    assert sorted(paths) == ["summary.csv", "summary.md", "summary.tex"]
    header = next(csv.reader(open(paths["summary.csv"], newline="")))
    assert "energy_pj_per_sample_45nm" in header and "energy_pj_per_sample_loihi" not in header


def test_missing_files_name_the_folder_the_file_and_the_command(tmp_path, capsys):
    run = make_run(tmp_path, "baseline", 0, 0.5, 0.9)
    (run / "energy_report.csv").unlink()
    with pytest.raises(NeurokdError, match=r"energy_report.csv: make it with `neurokd export .* --target lava`"):
        read_run(run)
    with pytest.raises(SystemExit) as exc:
        main(["report", str(run), "--out", str(tmp_path / "out")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert str(run) in err and "energy_report.csv" in err and "Traceback" not in err
    (run / "metrics.json").unlink()
    with pytest.raises(NeurokdError, match="metrics.json: make it with `neurokd train --out"):
        read_run(run)
    with pytest.raises(NeurokdError, match="run folder not found"):
        read_run(tmp_path / "nope")
    json.loads((run / "lava" / "agreement_float.json").read_text())  # untouched


def test_run_energy_report_from_the_exported_student_names_its_layers(tmp_path):
    import torch

    from neurokd.exporters.to_nir import student_to_nir
    from neurokd.hardware.network import ir
    from neurokd.hardware.reports.energy_report import write_run_energy_report
    from neurokd.models import build_student

    torch.manual_seed(0)
    student = build_student("mlp", (8,), 3, timesteps=3, hidden=(6, 5)).eval()
    x = torch.rand(4, 8)
    with torch.no_grad():
        _, spikes, _ = student.run(x)
    rasters = {"input": x.expand(3, 4, 8).numpy(), **{k: v.numpy() for k, v in spikes.items()}}
    csv_path, _ = write_run_energy_report(tmp_path, ir.from_nir(student_to_nir(student)), rasters, models=["45nm"])
    rows = read_csv(csv_path)
    assert [r["layer"] for r in rows] == ["input", "fc1", "lif1", "fc2", "lif2", "readout", "readout.out", "total", "teacher"]
    assert rows[-1]["macs_per_sample"] == str(8 * 6 + 6 * 5 + 5 * 3)
    assert float(rows[1]["macs_per_sample"]) == pytest.approx(3 * 6 * float((x != 0).sum()) / 4)  # dense, no zero weights


def test_per_layer_bars_set_crowded_layer_names_at_an_angle():
    """Eleven connection names side by side overlap in a 3.5 in column: they are rotated; three are not."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from neurokd.hardware.reports.figures import _cmap, _grouped_bars

    for layers, angle in ((["fc1", "fc2", "readout"], 0.0),
                          (["conv1", "conv2", "lif3.identity", "conv3", "conv4", "sc5", "conv5", "conv6", "sc7",
                            "conv7", "readout"], 45.0)):
        fig, ax = plt.subplots(figsize=(3.5, 2.5))
        values = {("kd-lr", name): [float(i + 1)] for i, name in enumerate(layers)}
        _grouped_bars(ax, layers, ["kd-lr"], values, _cmap())
        labels = ax.get_xticklabels()
        assert [t.get_text() for t in labels] == layers
        assert {t.get_rotation() for t in labels} == {angle}
        plt.close(fig)


# --------------------------------------------------------------------------------------------------
# Runs placed on a chip (RUN/map/): cores, chips, latency and energy with routing, the mesh figure
# --------------------------------------------------------------------------------------------------

def _placed(run, rate: float, seed: int, hardware: str = "loihi1", core_neurons: int | None = None):
    """Place a small 16-24-12 spiking net on ``hardware`` and cost it on Bernoulli input at ``rate``;
    writes ``run/map`` as ``neurokd map`` / ``export --hardware`` do. Returns the MapResult."""
    import nir

    from neurokd.hardware.engines.fastsim import run_fast
    from neurokd.hardware.network import ir
    from neurokd.hardware.placement import place_and_cost, write_outputs

    def lif(n):
        return nir.LIF(tau=np.full(n, 5e-4), r=np.full(n, 5.0), v_leak=np.zeros(n), v_threshold=np.full(n, 1.0),
                       v_reset=np.zeros(n))

    rng = np.random.default_rng(1)
    nodes = {"input": nir.Input(np.array([16])), "fc1": nir.Affine(weight=rng.normal(size=(24, 16)), bias=np.zeros(24)),
             "lif1": lif(24), "fc2": nir.Affine(weight=rng.normal(size=(12, 24)), bias=np.zeros(12)), "lif2": lif(12),
             "output": nir.Output(np.array([12]))}
    names = list(nodes)
    net = ir.from_nir(nir.NIRGraph(nodes, list(zip(names[:-1], names[1:])), metadata={"dt": 1e-4}, type_check=False))
    x = (np.random.default_rng(seed).random((3, 6, 16)) < rate).astype(np.float64)
    res = run_fast(net, x, precision="fixed", record_steps=True)
    overrides = {"core.neurons": core_neurons} if core_neurons else {}
    if hardware == "loihi1":    # the host's spikes straight into fc1 (not through input compartments): the layers' sums
        overrides["input.spike_input_layer"] = 0
    mapped = place_and_cost(net, hardware, result=res, inputs=x, overrides=overrides or None)
    if run is not None:
        write_outputs(mapped, run / "map")
    mapped.run = (net, res, x)
    return mapped


def test_energy_report_md_takes_the_placement_cost_section(tmp_path):
    """write_energy_report(sections=[cost.markdown(title)]): the cost section, naming the bottleneck core and
    what bounds it, follows the energy tables; the per-core SynOps and MACs add up to the report's total."""
    from neurokd.hardware.cost.counting import geometry_from_ir
    from neurokd.hardware.cost.counting import rasters_from_result

    mapped = _placed(None, 0.3, 0, core_neurons=8)
    net, res, x = mapped.run
    geom = geometry_from_ir(net, fixed=res.fixed)
    counts = count(geom, activity_from_rasters(geom, rasters_from_result(geom, res, x)))
    write_energy_report(tmp_path, geom, counts, models=["loihi"], title="tiny",
                        sections=[mapped.cost.markdown("tiny")])
    md = (tmp_path / "energy_report.md").read_text()
    b = mapped.cost.bottleneck()
    assert md.index("**total**") < md.index("## Placement on loihi1: tiny")
    assert f"**Bottleneck: core {b['core']}** (layer `{b['layer']}`" in md and f"bound by **{b['bound']}**" in md
    total = next(r for r in read_csv(tmp_path / "energy_report.csv") if r["layer"] == "total")
    per_core = [r for r in mapped.cost.rows() if r["scope"] == "core"]
    assert sum(r["synops"] + r["macs"] for r in per_core) == pytest.approx(
        float(total["synops_per_sample"]) + float(total["macs_per_sample"]))
    write_energy_report(tmp_path, geom, counts, models=["loihi"])        # rewritten without it: the section goes
    assert "## Placement" not in (tmp_path / "energy_report.md").read_text()


def test_report_puts_cores_latency_and_energy_with_routing_beside_the_energy_columns(tmp_path):
    runs = tmp_path / "runs"
    placed = {}
    for seed in (0, 1):
        make_run(runs, "baseline", seed, 0.5, 0.90)
        run = make_run(runs, "kd-lr", seed, 0.2, 0.91)
        placed[seed] = _placed(run, 0.2 + 0.2 * seed, seed, core_neurons=8)   # 24 + 12 neurons -> 3 + 2 cores
    out = tmp_path / "report"
    paths = summarize_runs([runs], out, models=["loihi"])
    rows = {(r["method"], r["seed"]): r for r in read_csv(out / "summary.csv")}
    for seed, mapped in placed.items():
        r = rows[("kd-lr", str(seed))]
        assert r["map_hardware"] == "loihi1" and r["map_placer"] == "pack"
        assert int(r["cores"]) == mapped.placement.n_cores == 5 and int(r["chips"]) == 1
        assert float(r["latency_us_per_inference"]) == pytest.approx(mapped.cost.latency_ns / 1e3)
        assert float(r["energy_with_routing_uj_per_inference"]) == pytest.approx(mapped.cost.energy_pj / 1e6)
        assert 0 < float(r["routing_energy_uj_per_inference"]) < float(r["energy_with_routing_uj_per_inference"])
    base = rows[("baseline", "0")]
    assert all(base[k] == "" for k in ("map_hardware", "cores", "latency_us_per_inference"))   # not placed: empty
    md = (out / "summary.md").read_text()
    header = next(line for line in md.splitlines() if line.startswith("| Dataset"))
    # the placed cost leads, the counting model beside it
    assert ("| Energy placed, with routing (nJ) | Cores | Chips | Latency / inference (us) | Energy loihi-events, "
            "counted (nJ) |") in header
    kd = next(line for line in md.splitlines() if line.startswith("| digits | kd-lr |")).split(" | ")
    lat = [placed[s].cost.latency_ns / 1e3 for s in (0, 1)]
    mean, std = np.mean(lat), np.std(lat, ddof=1)
    assert kd[-4] == "5" and kd[-3] == "1"
    assert kd[-2].startswith(f"{mean:.3g}".rstrip("0").rstrip(".")[:4]) and "±" in kd[-2]
    assert float(kd[-2].split(" ± ")[1].replace(",", "")) == pytest.approx(std, rel=0.05, abs=0.002)
    baseline_line = next(line for line in md.splitlines() if line.startswith("| digits | baseline |"))
    assert baseline_line.split(" | ")[-5:-1] == [""] * 4                 # the baseline was not placed
    assert "loihi1 (pack, spikes input)" in md
    tex = (out / "summary.tex").read_text()
    assert "Energy placed, with routing (nJ) & Cores & Chips & Latency / inference (us)" in tex
    for seed in (0, 1):
        png = out / f"mesh_load_digits-mlp-kd-lr-s{seed}.png"
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and (out / png.name.replace(".png", ".pdf")).is_file()
        assert png.name in paths
    assert not (out / "mesh_load_digits-mlp-baseline-s0.png").exists()


def test_report_without_map_folders_shows_no_placement_columns_and_mixed_chips_are_not_averaged(tmp_path):
    runs = tmp_path / "runs"
    make_run(runs, "baseline", 0, 0.5, 0.9)
    make_run(runs, "kd", 0, 0.4, 0.9)
    summarize_runs([runs], tmp_path / "out", models=["45nm"], figures=False)
    assert "Cores" not in (tmp_path / "out" / "summary.md").read_text()
    assert read_csv(tmp_path / "out" / "summary.csv")[0]["cores"] == ""
    mixed = tmp_path / "mixed"
    for seed, hw in ((0, "loihi1"), (1, "loihi2")):
        _placed(make_run(mixed, "kd", seed, 0.4, 0.9), 0.3, seed, hardware=hw)
    summarize_runs([mixed], tmp_path / "out2", models=["45nm"], figures=False)
    line = next(x for x in (tmp_path / "out2" / "summary.md").read_text().splitlines() if x.startswith("| digits | kd"))
    assert line.count("mixed hardware") == 4


def test_a_broken_map_folder_is_one_line_naming_the_file(tmp_path):
    run = make_run(tmp_path, "kd", 0, 0.4, 0.9)
    _placed(run, 0.3, 0)
    text = (run / "map" / "cost_report.csv").read_text()
    (run / "map" / "cost_report.csv").write_text("\n".join(l for l in text.splitlines() if ",summary," not in l
                                                           and not l.startswith("summary")))
    with pytest.raises(NeurokdError, match=r"cost_report.csv lacks the summary rows .*neurokd export"):
        read_run(run)


def test_a_placement_without_cost_shows_its_cores_and_an_older_placement_json_finds_its_mesh(tmp_path):
    """`neurokd map --no-cost` leaves placement.json only: cores and chips, no latency; a placement.json
    written before it named the mesh reads the mesh from its chip file."""
    from neurokd.hardware.reports.summary import read_map

    run = make_run(tmp_path / "runs", "kd", 0, 0.4, 0.9)
    _placed(run, 0.3, 0, core_neurons=8)
    for name in ("cost_report.csv", "cost_steps.csv", "cost_report.md"):
        (run / "map" / name).unlink()
    info = json.loads((run / "map" / "placement.json").read_text())
    assert info["mesh"] == {"cores_per_chip": 128, "cores_per_tile": 4, "tiles_x": 8, "tiles_y": 4}
    del info["mesh"]
    (run / "map" / "placement.json").write_text(json.dumps(info))
    m = read_map(run)
    assert (m.cores, m.chips, m.tiles_x, m.tiles_y, m.latency_us, m.core_rows) == (5, 1, 8, 4, None, [])
    paths = summarize_runs([run], tmp_path / "out", models=["45nm"])
    row = read_csv(tmp_path / "out" / "summary.csv")[0]
    assert row["cores"] == "5" and row["latency_us_per_inference"] == "" and row["energy_with_routing_uj_per_inference"] == ""
    assert not any(name.startswith("mesh_load") for name in paths)        # nothing to draw without a cost


def test_setting_names_round_long_floats_only():
    """A searched weight (neurokd tune) names its row with 6 significant digits; short values stay as written."""
    from neurokd.hardware.reports.summary import _setting_value

    assert _setting_value(0.13981961408994045) == "0.13982"
    assert _setting_value(4.0) == "4.0" and _setting_value(1e-3) == "0.001"
    assert _setting_value({"hidden": [128, 64]}) == "{hidden: [128, 64]}"
