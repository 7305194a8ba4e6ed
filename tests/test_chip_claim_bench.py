"""benchmarks/chip_claim.py's arithmetic: changes against the same seed's baseline, and the goal line."""

import importlib.util
from pathlib import Path

import pytest


def _bench():
    spec = importlib.util.spec_from_file_location(
        "chip_claim_bench", Path(__file__).resolve().parents[1] / "benchmarks" / "chip_claim.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def _row(method, seed, acc, energy, latency):
    return {"dataset": "digits", "chip": "loihi1", "method": method, "seed": seed, "torch_accuracy": acc,
            "chip_accuracy": acc, "hidden_activity": 0.2, "input_spikes": 80.0, "synops": 1000.0, "cores": 3,
            "latency_us": latency, "energy_uj": energy, "bottleneck_synops": 500.0, "bottleneck_layer": "lif1",
            "bottleneck_bound": "synaptic ops", "bottleneck_share": 0.78}


def test_deltas_pair_each_seed_with_its_own_baseline():
    b = _bench()
    rows = [_row("baseline", 0, 0.90, 1.0, 40.0), _row("baseline", 1, 0.96, 2.0, 50.0),
            _row("kd-ar-lr", 0, 0.90, 0.5, 30.0), _row("kd-ar-lr", 1, 0.95, 1.5, 40.0)]
    d = {r["method"]: r for r in b.deltas(rows)}["kd-ar-lr"]
    # seed 0: -50 % energy, -25 % latency; seed 1: -25 %, -20 % (pairing across seeds would give other figures)
    assert d["d_energy_pct"] == pytest.approx(-37.5)
    assert d["d_latency_pct"] == pytest.approx(-22.5)
    assert d["d_acc_pts"] == pytest.approx(-0.5)
    assert d["seeds"] == 2
    md = b.markdown(b.deltas(rows), {"digits": "test"})
    # -22.5 % latency meets the goal (<= -20 %), -37.5 % energy does not (<= -40 %)
    assert "energy -37.5 % MISSED" in md and "latency -22.5 % ok" in md and "NOT MET" in md
