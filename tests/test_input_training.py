"""Students trained with the input their chip takes (``neurokd train --input-mode bias|spikes|graded``): the
training-time input layer / encoder is the deployed one spike for spike, the run records its mode, export and map
place it in that mode (and refuse another), Lava float replays PyTorch and the fast model Lava fixed, and a graded
student is refused on Loihi 1 in one line naming the way to a deployable one."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import numpy as np
import pytest
import torch

from conftest import cli, write_untrained_digits_run
from neurokd.config import make_config
from neurokd.errors import NeurokdError
from neurokd.hardware.engines.encoding import bias_layer, rate_spikes
from neurokd.models.encoders import InputEncoder
from neurokd.training import load_run, train


@pytest.mark.parametrize("mode", ["bias", "spikes"])
@pytest.mark.parametrize("signed", [False, True])
def test_training_encoder_sends_the_deployed_spikes_bit_for_bit(mode, signed):
    """The student's input layer (bias) / host encoder (spikes) against the deploy-time encoders of
    neurokd.hardware.engines.encoding (bias_layer: Lava's fixed-point LIF integers, tested against Lava there),
    on values shifted by the training range's offset (signed data: MFCC-like)."""
    g = torch.Generator().manual_seed(1)
    x = torch.rand(50, 2, 7, generator=g) * 3.0 - (1.5 if signed else 0.0)
    x[0, 0, :4] = torch.tensor([0.0, 1.5, 3.0, 0.75]) - (1.5 if signed else 0.0)   # full scale, half, zero
    enc = InputEncoder(mode)
    enc.set_range(x)
    assert float(enc.offset) == (pytest.approx(float(x.min())) if signed else 0.0)
    steps = 9
    ours = enc(x, steps).numpy().swapaxes(0, 1)                     # (N, T, ...)
    frames = np.repeat(np.clip(x.double().numpy() - float(enc.offset), 0, None)[:, None], steps, axis=1)
    if mode == "bias":
        ref = bias_layer(frames, bits=8, scale=float(enc.full_scale)).spikes
    else:
        ref = rate_spikes(frames, "deterministic", scale=float(enc.full_scale))
    assert np.array_equal(ours, ref)
    assert set(np.unique(ours)) <= {0.0, 1.0} and 0 < ours.mean() < 1


def test_bad_input_mode_and_user_model_with_input_layer_are_refused_in_one_line(tmp_path, capsys):
    assert cli(["train", "--input-mode", "rate", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "input-mode must be one of graded, bias, spikes" in err and "\n" not in err
    (tmp_path / "m.py").write_text("def build(input_shape, num_classes, timesteps):\n    raise SystemExit\n")
    with pytest.raises(NeurokdError, match="a --model function's student takes its input as it is written"):
        make_config(model=f"{tmp_path / 'm.py'}:build", input_mode="bias")


def test_a_trained_spikes_run_records_its_mode_and_reloads_its_encoder(tmp_path):
    cfg = make_config(out=str(tmp_path / "r"), model_options={"hidden": [16]}, teacher_epochs=1, epochs=1,
                      batch_size=128, device="cpu", input_mode="spikes")
    metrics = train(cfg, progress=False)
    assert metrics["input_mode"] == "spikes"
    enc = metrics["input_encoder"]
    assert {k: enc[k] for k in ("input_mode", "input_offset", "input_full_scale", "input_bits", "input_gain")} == {
        "input_mode": "spikes", "input_offset": 0.0, "input_full_scale": 1.0, "input_bits": 8, "input_gain": 1.0}
    assert enc["spikes_per_sample"] == pytest.approx(enc["rate"] * 64 * cfg.timesteps)   # 64 pixels, T steps
    assert 'input_mode = "spikes"' in (tmp_path / "r" / "config.toml").read_text()
    _cfg, student, teacher, splits = load_run(tmp_path / "r")
    assert student.encoder is not None and student.encoder.mode == "spikes"
    assert float(student.encoder.full_scale) == 1.0        # digits: pixel values in [0, 1]
    x = splits.test.tensors[0][:5]
    _, spikes, _ = student.run(x)
    assert teacher(x).shape == (5, 10)                     # the teacher sees the raw input


def _run(tmp: Path, mode: str) -> Path:
    """A digits run folder as `neurokd train --input-mode MODE` leaves it, untrained weights scaled up so that
    every layer spikes."""
    return write_untrained_digits_run(tmp / f"digits-{mode}", mode)


@pytest.fixture(scope="module")
def runs(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("runs")
    for mode in ("bias", "spikes", "graded"):
        _run(tmp, mode)
    return tmp


@pytest.mark.lava
def test_bias_student_lava_float_is_pytorch_and_fast_model_is_lava_fixed_and_loihi1_places_its_input_layer(
        runs, capsys):
    run = runs / "digits-bias"
    assert cli(["export", str(run), "--engine", "fast", "--precision", "both", "--samples", "40", "--verify", "8",
                "--no-progress", "--hardware", "loihi1"]) == 0
    out = capsys.readouterr().out
    assert "input mode bias (trained)" in out
    for name in ("agreement.json", "agreement_fixed.json"):
        ag = json.loads((run / name).read_text())
        assert ag["fast_vs_lava"]["identical"] is True, name          # integers / spikes: exact
        if name == "agreement.json":
            assert min(ag["spike_agreement"].values()) == 1.0 and ag["prediction_agreement"] == 1.0
            assert ag["accuracy_student"] == ag["accuracy_torch"]    # the student's own encoder = the replayed spikes
    import nir

    meta = nir.read(run / "model.nir").metadata
    assert meta["input_mode"] == "bias" and meta["encoding"] == "bias" and float(meta["input_full_scale"]) == 1.0
    placement = json.loads((run / "map" / "placement.json").read_text())
    assert placement["input"]["mode"] == "bias" and placement["layers"]["input"]["cores"] == 1
    charged = placement["input"]["charged"]
    assert charged["input_layer_cores"] == 1 and charged["first_synapse_macs"] == 0.0   # binary spikes: no MACs
    # all 64 neurons updated at every step the cost runs (the 4 steps and the pipeline's drain)
    assert charged["input_layer_updates"] % 64 == 0 and charged["input_layer_updates"] >= 64 * 4
    report = (run / "map" / "cost_report.md").read_text()
    assert "Input mode `bias`" in report and "The input layer:" in report
    # one energy per chip: the report leads with the placed cost, the counting models beside it part by part
    md = (run / "energy_report.md").read_text()
    lead = md.split("\n## ")[1]
    assert lead.startswith("Energy per inference on loihi1:") and "(placed)" in lead.splitlines()[0]
    assert "| **total** |" in lead and "| difference from placed |" in lead and "`loihi-events`" in lead
    rows = list(csv.DictReader(open(run / "energy_report.csv", newline="")))
    placed = next(r for r in rows if r["energy_model"] == "placed-loihi1" and r["layer"] == "total")
    cost = {r["name"]: float(r["value"]) for r in csv.DictReader(open(run / "map" / "cost_report.csv", newline=""))
            if r["scope"] == "summary"}
    # the same figure through two writers: csv keeps 6 decimals of pJ, cost_report 8 of uJ
    assert float(placed["energy_pj_per_sample"]) == pytest.approx(cost["energy_uj_per_inference"] * 1e6, abs=0.01)
    assert rows[0]["energy_model"] == "placed-loihi1" and {"loihi-events", "loihi-tile"} <= {r["energy_model"] for r in rows}
    events = next(r for r in rows if r["energy_model"] == "loihi-events" and r["layer"] == "total")
    assert float(events["energy_pj_per_sample"]) < float(placed["energy_pj_per_sample"])   # no routing, no input layer
    # the run's mode is the placement's; another one is refused in one line
    assert cli(["map", str(run), "--hardware", "loihi1", "--input-mode", "spikes", "--samples", "5",
                "--out", str(runs / "m")]) == 2
    err = capsys.readouterr().err.strip()
    assert "trained with --input-mode bias" in err and "\n" not in err


@pytest.mark.lava
@pytest.mark.parametrize("command", ["map", "export"])
def test_graded_run_on_loihi1_is_refused_naming_the_deployable_training(runs, command, capsys, tmp_path):
    run = runs / "digits-graded"
    argv = (["map", str(run), "--hardware", "loihi1", "--samples", "5", "--out", str(tmp_path / "m")]
            if command == "map" else
            ["export", str(run), "--engine", "fast", "--samples", "5", "--verify", "0", "--no-progress",
             "--hardware", "loihi1"])
    assert cli(argv) == 2
    err = capsys.readouterr().err.strip()
    assert "\n" not in err and "binary spikes only" in err
    assert "give --input-mode bias, spikes or host" in err and "neurokd train --input-mode bias" in err
    assert cli(argv[:2] + ["--input-mode", "graded"] + argv[2:]) == 2
    assert "neurokd train --input-mode bias" in capsys.readouterr().err


def test_tune_counts_a_bias_student_on_its_input_layers_spikes(runs):
    """``neurokd tune``'s hardware objectives run the network behind the input layer on its spikes, as export does:
    the fast model in float predicts what the student predicts (float64 vs float32 on whole-number spikes and
    the same weights: no prediction flips on this fixture), and the old model name still works."""
    from neurokd import tuning

    out = tuning.evaluate_run(runs / "digits-bias", tuning.parse_objectives("accuracy,energy:loihi"), precision="float")
    assert out["val_accuracy_hw"] == out["val_accuracy"] and out["val_energy_loihi_pj"] > 0


@pytest.mark.lava
def test_spikes_student_runs_on_its_rate_code_in_lava_float_spike_for_spike_and_places_with_host_messages(runs, capsys):
    run = runs / "digits-spikes"
    assert cli(["export", str(run), "--engine", "fast", "--precision", "float", "--samples", "30", "--verify", "6",
                "--no-progress", "--hardware", "loihi2"]) == 0
    assert "input mode spikes (trained)" in capsys.readouterr().out
    ag = json.loads((run / "agreement.json").read_text())
    assert ag["fast_vs_lava"]["identical"] is True and min(ag["spike_agreement"].values()) == 1.0
    assert ag["accuracy_student"] == ag["accuracy_torch"]
    placement = json.loads((run / "map" / "placement.json").read_text())
    assert placement["input"]["mode"] == "spikes" and placement["input"]["charged"]["host_messages"] > 0
    assert "input" not in placement["layers"]              # no on-chip input layer: the host sends the spikes
