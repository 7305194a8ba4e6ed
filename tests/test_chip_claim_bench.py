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


def test_placements_name_a_chip_an_input_mode_and_optionally_methods():
    b = _bench()
    got = b.parse_placements("loihi1=spikes,loihi2=graded,loihi1=bias:kd-lr+kd", ["baseline", "kd-lr"])
    assert got == [("loihi1", "spikes", ["baseline", "kd-lr"]), ("loihi2", "graded", ["baseline", "kd-lr"]),
                   ("loihi1", "bias", ["kd-lr", "kd"])]
    with pytest.raises(b.NeurokdError, match="chip=mode"):
        b.parse_placements("loihi1=analog", ["baseline"])


def test_baselines_pair_within_one_input_mode_and_placer_and_accuracy_compares_modes_seed_by_seed():
    b = _bench()
    rows = []
    for mode, placer, acc, energy in (("spikes", "pack", 0.95, 1.0), ("spikes", "balance", 0.95, 2.0),
                                      ("graded", "pack", 0.97, 4.0)):
        for method, scale in (("baseline", 1.0), ("kd-ar-lr", 0.5)):
            r = _row(method, 0, acc, energy * scale, 10.0)
            r.update(mode=mode, placer=placer, chip="loihi1" if mode != "graded" else "loihi2")
            rows.append(r)
    rows[-1]["torch_accuracy"] = 0.96           # graded kd-ar-lr
    d = {(x["mode"], x["placer"], x["method"]): x for x in b.deltas(rows)}
    # each table's own baseline: every kd-ar-lr is -50 % of the baseline beside it, never of another table's
    assert {k: v["d_energy_pct"] for k, v in d.items() if k[2] == "kd-ar-lr"} == {
        ("spikes", "pack", "kd-ar-lr"): pytest.approx(-50.0), ("spikes", "balance", "kd-ar-lr"): pytest.approx(-50.0),
        ("graded", "pack", "kd-ar-lr"): pytest.approx(-50.0)}
    table = b.accuracy_by_mode(rows)
    # spikes - graded: baseline 95 - 97 = -2 points, kd-ar-lr 95 - 96 = -1 point (balance rows are not counted twice)
    assert "| baseline | 97.00 | 95.00 | -2.00 |" in table
    assert "| kd-ar-lr | 96.00 | 95.00 | -1.00 |" in table


def test_input_reg_variants_name_their_weights():
    b = _bench()
    regs = b.parse_input_regs("0.2,0.36/0.125")
    assert regs == [(0.2, None), (0.36, 0.125)]
    assert [b.variant_name(*r) for r in regs] == ["kd-ar-lr+in0.2", "kd-ar-lr+in0.36+act0.125"]
    assert b.study_dir(Path("o"), "digits", "spikes", 0.36, 0.125) == Path("o/digits-spikes-in0.36-act0.125")
    with pytest.raises(b.NeurokdError, match="LAMBDA_INPUT"):
        b.parse_input_regs("0.2/x")
