"""MODEL.md: the model card rendered from a run's artefacts (IR summary, quantisation report, metrics,
agreement, energy_report.csv rows, command), atomically, and still useful when pieces are missing."""

from __future__ import annotations

import csv

import numpy as np
import pytest
import torch

from neurokd import fileio
from neurokd.exporters.to_nir import student_to_nir
from neurokd.hardware.network import ir
from neurokd.hardware.reports.model_card import model_card, write_model_card
from neurokd.hardware.network.quantize import quantize
from neurokd.hardware.reports.energy_report import ENERGY_COLUMNS
from neurokd.models import build_student


@pytest.fixture
def run_pieces(tmp_path):
    """The pieces a digits export leaves: config, metrics, IR summary, quantisation report, agreements,
    energy_report.csv rows read back from disk (strings, as the lead's command reads them)."""
    torch.manual_seed(0)
    student = build_student("mlp", (64,), 10, timesteps=4, beta=0.75, hidden=(16, 8)).eval()
    network = ir.from_nir(student_to_nir(student, dt=1e-4))
    x = np.random.default_rng(0).random((20, 64))
    quant = quantize(network, input_sample=x).report()
    config = {"dataset": "digits", "model": "mlp", "method": "kd-lr", "timesteps": 4, "seed": 0,
              "model_options": {"hidden": [16, 8]}, "lambda_act": 0.05}
    metrics = {"dataset": "digits", "method": "kd-lr", "seed": 0, "timesteps": 4, "test_accuracy": 0.9611,
               "val_accuracy": 0.95, "teacher_test_accuracy": 0.975,
               "activity": {"total": 0.125, "per_layer": {"lif1": 0.2, "lif2": 0.05}}, "spikes_per_sample": 9.6}
    agreement = {
        "float": {"precision": "float", "samples": 360, "spike_agreement": {"lif1": 1.0, "lif2": 1.0},
                  "prediction_agreement": 1.0, "accuracy_torch": 0.9611, "accuracy_lava": 0.9611},
        "fixed": {"precision": "fixed", "samples": 360, "spike_agreement": {"lif1": 0.991, "lif2": 0.987},
                  "prediction_agreement": 0.994, "accuracy_torch": 0.9611, "accuracy_lava": 0.9583},
    }
    rows = []
    for model, synop_pj in (("loihi", 23.6), ("45nm", 0.9)):
        for layer, kind, spikes, synops in (("fc1", "dense", 0, 0), ("lif1", "lif", 12.8, 0), ("fc2", "dense", 0, 102.4),
                                            ("lif2", "lif", 1.6, 0), ("readout", "dense", 0, 16.0)):
            rows.append({"layer": layer, "kind": kind, "neurons": 16, "synapses": 128, "spikes_per_sample": spikes,
                         "synops_per_sample": synops, "neuron_updates_per_sample": 64, "energy_model": model,
                         "energy_pj_per_sample": synops * synop_pj, "samples": 360, "timesteps": 4})
        rows.append({"layer": "total", "kind": "", "spikes_per_sample": 14.4, "synops_per_sample": 118.4,
                     "neuron_updates_per_sample": 128, "energy_model": model,
                     "energy_pj_per_sample": 118.4 * synop_pj + 1000.0, "samples": 360, "timesteps": 4})
        rows.append({"layer": "teacher", "kind": "ann", "energy_model": model,
                     "energy_pj_per_sample": 5000.0 if model == "45nm" else ""})
    fileio.write_csv(tmp_path / "energy_report.csv", ENERGY_COLUMNS, rows)
    with open(tmp_path / "energy_report.csv", newline="") as fh:
        energy_rows = list(csv.DictReader(fh))
    return {"config": config, "metrics": metrics, "network_summary": network.to_dict(), "quant_report": quant,
            "agreement": agreement, "energy_rows": energy_rows,
            "command": "neurokd train --dataset digits --method kd-lr --seed 0 --out runs/digits-kdlr"}


def test_model_card_states_architecture_quantisation_accuracy_activity_energy_and_command(run_pieces, tmp_path):
    out = tmp_path / "run"
    path = write_model_card(out, **run_pieces)
    assert path == out / "MODEL.md" and sorted(p.name for p in out.iterdir()) == ["MODEL.md"]   # atomic: no temp left
    text = path.read_text()
    for heading in ("# Model card: digits / mlp / kd-lr", "## Architecture", "## Quantisation (Loihi fixed point)",
                    "## Accuracy and agreement", "## Activity", "## SynOps and energy per inference", "## Reproduce",
                    "## Settings"):
        assert heading in text, heading
    assert "| `lif1` | lif | (16,) | dense `fc1` from `input` | beta 0.75, threshold 1 | 1 |" in text   # no no-op Flatten
    assert "readout: summed input, mean over time" in text
    q = run_pieces["quant_report"]["layers"]
    for layer in ("lif1", "lif2", "readout"):
        (syn, s), = q[layer]["synapses"].items()
        assert f"| `{layer}` | `{syn}` | {s['weight_exp']} | 8 | {s['sign_mode']} |" in text
    assert f"| {q['lif1']['vth']['int']:,} |" in text                                   # integer threshold
    assert "| Lava floating_pt | 96.11 % | 360 | 100.00 % | 100.00 % |" in text
    assert "| Lava fixed_pt | 95.83 % | 360 | 99.40 % | 98.70 % |" in text
    assert "| netx file (Lava fixed_pt) | not run |" in text
    assert "| `lif2` | 0.05 |" in text and "spikes per sample: 9.6" in text
    assert "| `loihi` | 118.4 | 128 | 14.4 | 3.79 nJ | not available | not available |" in text
    assert "| `45nm` | 118.4 | 128 | 14.4 | 1.11 nJ | 5 nJ | 4.52 |" in text
    assert "| `fc2` | dense | 16 | 128 | 0 | 102.4 | 2.42 nJ | 92.2 pJ |" in text
    assert "```\nneurokd train --dataset digits --method kd-lr --seed 0 --out runs/digits-kdlr\n```" in text
    assert "| `model_options.hidden` | [16, 8] |" in text


def test_model_card_says_what_has_not_run_instead_of_failing(run_pieces, tmp_path):
    text = write_model_card(tmp_path, metrics=run_pieces["metrics"], config=run_pieces["config"]).read_text()
    assert "Fixed-point quantisation: not run." in text
    assert "| test accuracy (Lava fixed_pt) | not run |" in text
    assert "| Lava floating_pt | not run |" in text and "| Lava fixed_pt | not run |" in text
    assert "Energy report: not run" in text and "Command not recorded." in text
    assert "Network summary not available" in text
    bare = model_card()
    assert bare.startswith("# Model card: neurokd student") and "Spiking activity: not measured." in bare
    # A single agreement.json (float) is accepted as it is written by export.
    one = model_card(agreement=run_pieces["agreement"]["float"])
    assert "| Lava floating_pt | 96.11 % |" in one and "| Lava fixed_pt | not run |" in one


def test_model_card_names_the_shortcuts_that_wait_in_a_delay_synapse():
    torch.manual_seed(0)
    student = build_student("resnet1d", (3, 10), 4, timesteps=2, stem=4, channels=(4, 6)).eval()
    network = ir.from_nir(student_to_nir(student, dt=1e-4))
    text = model_card(network_summary=network.to_dict())
    row = next(line for line in text.splitlines() if line.startswith("| `lif5`"))
    assert "dense `sc5` from `lif3` waiting 1 step(s) in a DelayDense" in row
    assert "conv `conv5` from `lif4`;" not in row and "conv `conv5` from `lif4` waiting" not in row


def test_model_card_states_the_placement_its_cores_latency_energy_with_routing_and_bottleneck(run_pieces, tmp_path):
    """A run placed on a chip (RUN/map/placement.json, its figures under ``cost``): a short section and one
    summary row; a run without one has neither, and a placement without a cost says it was not costed."""
    placement = {"chip": "loihi1", "chip_title": "Intel Loihi 1", "placer": "pack", "cores": 3, "chips": 1, "tiles": 1,
                 "cost": {"latency_us_per_inference": 12.5, "inferences_per_s": 80000.0,
                          "energy_uj_per_inference": 0.0421, "routing_uj_per_inference": 0.0012,
                          "bottleneck": {"core": 0, "layer": "lif1", "neurons": "0-15", "bound": "synaptic ops",
                                         "shares": {"synaptic ops": 0.62, "neuron updates": 0.3,
                                                    "spikes and messages": 0.08}}}}
    text = model_card(**run_pieces, placement=placement)
    assert "| placement | loihi1: 3 cores, 1 chip(s), 12.5 us per inference |" in text
    section = text[text.index("## Placement on loihi1"):text.index("## Reproduce")]
    assert text.index("## SynOps and energy per inference") < text.index("## Placement on loihi1")
    for row in ("| chip | loihi1 (Intel Loihi 1) |", "| cores | 3 |", "| chips | 1 |", "| latency per inference | 12.5 us |",
                "| energy per inference, routing included | 42.1 nJ (routing 1.2 nJ) |",
                "| bottleneck core | core 0 (layer `lif1`, neurons 0-15), bound by synaptic ops (62 % of its time) |"):
        assert row in section, row
    assert "## Placement" not in model_card(**run_pieces) and "| placement |" not in model_card(**run_pieces)
    placed_only = {k: v for k, v in placement.items() if k != "cost"}
    assert "Placed only, not costed" in model_card(placement=placed_only)


def test_model_card_leads_with_the_placed_energy_and_names_what_each_counting_model_counts(run_pieces):
    """energy_report.csv of a placed run starts with its ``placed-<chip>`` block: the card's summary and energy
    table lead with it, the Loihi counting model says it counts events without a placement."""
    placed = [{"layer": "lif1", "kind": "lif", "neurons": 16, "spikes_per_sample": "12.8", "synops_per_sample": "0",
               "neuron_updates_per_sample": "112", "energy_model": "placed-loihi1", "energy_pj_per_sample": "9000"},
              {"layer": "total", "kind": "placed", "spikes_per_sample": "14.4", "synops_per_sample": "118.4",
               "neuron_updates_per_sample": "224", "energy_model": "placed-loihi1", "energy_pj_per_sample": "5210"}]
    text = model_card(**{**run_pieces, "energy_rows": placed + run_pieces["energy_rows"]})
    summary = [line for line in text.splitlines() if line.startswith("| energy per inference (")]
    assert summary[0] == ("| energy per inference (on loihi1, placed: cores, routing and host messages included) "
                          "| 5.21 nJ |")
    assert summary[1].startswith("| energy per inference (loihi, counted events without a placement) |")
    energy = text[text.index("## SynOps and energy per inference"):]
    assert energy.index("**placed on loihi1**") < energy.index("| `loihi` |")
    assert "| `lif1` | lif | 16 | 128 |" in energy          # per-layer rows from the counting block, not the placed one
