"""``neurokd tune``: a multi-objective study over the loss weights whose trials are run folders, judged on
the validation split, written as pareto.csv + front figure + knee + report, shared by workers through
Optuna's storage (two workers, a killed worker), with one-line errors for bad input."""

from __future__ import annotations

import ast
import csv
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest

import neurokd
from neurokd.errors import NeurokdError
from neurokd.tuning import (dominates, knee, non_dominated, parse_objectives, parse_space, read_space_file,
                            should_prune)

ROOT = Path(__file__).resolve().parents[1]
TINY = dict(model_options={"hidden": [16]}, epochs=2, teacher_epochs=2, batch_size=128, device="cpu", lr=1e-2)
SPACE = "lambda_logits=1e-3..1:log; lambda_act=1e-3..1:log"
CLI_TINY = ["--epochs", "2", "--teacher-epochs", "2", "--batch-size", "128", "--device", "cpu", "--lr", "0.01",
            "--model-options", "hidden = [16]"]


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny networks on a shared machine: one thread, as each worker subprocess gets (OMP_NUM_THREADS=1)."""
    import torch

    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def _rows(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


ENV = {**os.environ, "OMP_NUM_THREADS": "1"}   # tiny networks: one thread per worker, no oversubscription


def _cli(args: list[str], timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "neurokd", "tune", *args], capture_output=True, text=True,
                          timeout=timeout, cwd=ROOT, env=ENV)


# --------------------------------------------------------------------------------------------------
# The space, the objectives, the front, the knee and the pruning rule (plain functions)
# --------------------------------------------------------------------------------------------------

def test_space_text_becomes_ranges_and_bad_spaces_are_one_line_errors(tmp_path):
    space = parse_space("lambda_logits=1e-3..1:log; lambda_act=1e-3..1:log; temperature=1..8; T=2..6", "kd-ar-lr")
    assert list(space) == ["lambda_logits", "lambda_act", "temperature", "timesteps"]
    assert space["lambda_act"].log and space["lambda_act"].low == 1e-3 and space["lambda_act"].high == 1.0
    assert space["timesteps"].integer and space["timesteps"].spec() == "2..6"
    assert parse_space({"alpha": "0..1"}, "kd")["alpha"].spec() == "0.0..1.0"
    bad = {
        "bogus=1..2": "unknown parameter 'bogus'",
        "lambda_act=1..1": "empty range",
        "lambda_act=1..0.5": "empty range",
        "lambda_act=0..1:log": "needs low > 0",
        "lambda_act=a..b": "is not a number",
        "lambda_act=0.1": "write a range",
        "alpha=0..2": "alpha must be in [0, 1]",
        "T=2..6.5": "whole numbers",
        "lambda_act=0.1..1; lambda_act=0.2..1": "twice",
    }
    for text, message in bad.items():
        with pytest.raises(NeurokdError, match=message.replace("[", r"\[").replace("]", r"\]")) as info:
            parse_space(text, "kd-ar-lr")
        assert "\n" not in str(info.value)
    file = tmp_path / "space.toml"
    file.write_text('objectives = ["accuracy", "activity"]\n[space]\nlambda_act = "1e-3..1:log"\nT = "2..8"\n')
    names, objectives = read_space_file(file)
    assert objectives == ["accuracy", "activity"] and list(parse_space(names, "ar")) == ["lambda_act", "timesteps"]
    file.write_text('[space]\nlambda_act = "1e-3..1:log"\n[train]\nepochs = 3\n')
    with pytest.raises(NeurokdError, match="expected a \\[space\\] table"):
        read_space_file(file)
    with pytest.raises(NeurokdError, match="has no 'kd' term"):
        parse_space("temperature=1..8", "ar")          # a weight the method does not use changes nothing
    assert [o.direction for o in parse_objectives("accuracy,energy:loihi,activity")] == ["maximize", "minimize",
                                                                                         "minimize"]
    for text in ("accuracy,latency", "accuracy,energy", "accuracy,energy:tpu", "accuracy,accuracy"):
        with pytest.raises(NeurokdError, match="--objectives"):
            parse_objectives(text)


def test_front_knee_and_pruning_rules():
    directions = ["maximize", "minimize"]               # accuracy up, energy down
    points = [(0.9, 10.0), (0.8, 5.0), (0.85, 12.0), (0.5, 1.0), (0.9, 10.0)]
    assert dominates((0.9, 10.0), (0.85, 12.0), directions) and not dominates((0.9, 10.0), (0.9, 10.0), directions)
    assert non_dominated(points, directions) == [True, True, False, True, True]
    # an L-shaped front: the corner is nearest the ideal point once both axes are scaled to [0, 1]
    assert knee([(1.0, 10.0), (0.95, 2.0), (0.5, 1.0)], directions) == 1
    # pruning: from epoch warmup on, a curve trailing the best finished one by more than the margin
    finished = [[0.5, 0.7, 0.8], [0.4, 0.6]]
    assert should_prune([0.3, 0.55], finished, 0.1, warmup=1, min_trials=1, epochs=3)      # 0.55 < 0.7 - 0.1
    assert not should_prune([0.3, 0.65], finished, 0.1, warmup=1, min_trials=1, epochs=3)
    assert not should_prune([0.1], finished, 0.1, warmup=2, min_trials=1, epochs=3)        # before warmup
    assert not should_prune([0.1, 0.1, 0.1], finished, 0.1, warmup=1, min_trials=1, epochs=3)  # last epoch
    assert not should_prune([0.3, 0.55], finished[:1], 0.1, warmup=1, min_trials=2, epochs=3)  # too few finished
    assert not should_prune([0.0, 0.0], finished, None, warmup=1, min_trials=1, epochs=3)


# --------------------------------------------------------------------------------------------------
# One study, start to end
# --------------------------------------------------------------------------------------------------

@pytest.fixture(scope="module")
def study(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune") / "digits"
    messages: list[str] = []
    result = neurokd.tune("digits", "kd-ar-lr", objectives="accuracy,energy:loihi", space=SPACE, trials=5, out=out,
                          sampler="random", seed=0, prune_margin=0.0, prune_warmup=1, prune_min_trials=1,
                          figures=False, echo=messages.append, **TINY)
    return result, messages


def test_every_trial_is_a_run_folder_judged_on_validation_and_pareto_csv_marks_the_front(study):
    result, _ = study
    out = result.out_dir
    rows = _rows(out / "pareto.csv")
    trials = [r for r in rows if r["state"] != "REFERENCE"]
    assert [int(r["trial"]) for r in trials] == list(range(5))
    assert {r["run_dir"] for r in rows if r["state"] == "REFERENCE"} == {"reference-baseline", "reference-kd-ar-lr"}
    complete = [r for r in trials if r["state"] == "COMPLETE"]
    assert len(complete) >= 2 and {r["state"] for r in trials} <= {"COMPLETE", "PRUNED"}
    for r in trials:
        run = out / r["run_dir"]
        config = (run / "config.toml").read_text()
        assert f"lambda_act = {float(r['lambda_act'])!r}" in config, "the trial's own setting trained its run"
        assert f"teacher = \"{(out / 'teacher').resolve()}\"" in config, "one teacher shared by every trial"
        if r["state"] == "COMPLETE":
            metrics = json.loads((run / "metrics.json").read_text())
            assert float(r["val_accuracy"]) == pytest.approx(metrics["val_accuracy"])   # validation, best epoch
        else:
            assert not (run / "metrics.json").exists() and int(r["epochs_run"]) < TINY["epochs"]
    # the front, recomputed here from the CSV's validation objectives
    values = [(float(r["val_accuracy"]), float(r["val_energy_loihi_pj"])) for r in complete]
    expected = [not any(b[0] >= a[0] and b[1] <= a[1] and b != a for b in values) for a in values]
    assert [r["on_front"] == "1" for r in complete] == expected
    # test-split figures only for the front and the references, never for the others
    for r in rows:
        shown = r["state"] == "REFERENCE" or r["on_front"] == "1"
        assert (r["test_accuracy"] != "") == shown and (r["test_energy_loihi_pj"] != "") == shown
    knees = [r for r in rows if r["knee"] == "1"]
    assert len(knees) == 1 and knees[0]["on_front"] == "1"
    assert result.knee == out / knees[0]["run_dir"]
    summary = json.loads((out / "tune.json").read_text())
    assert summary["knee"]["trial"] == int(knees[0]["trial"])
    assert summary["trials"]["COMPLETE"] + summary["trials"]["PRUNED"] == 5


def test_pruning_stopped_exactly_the_trials_behind_the_best_finished_one(study):
    result, messages = study
    trials = [r for r in _rows(result.out_dir / "pareto.csv") if r["state"] != "REFERENCE"]
    best = None   # one worker: a trial is compared with those that finished before it started
    for r in trials:
        first_epoch = float(r["val_accuracy_last_epoch"]) if r["state"] == "PRUNED" else None
        history = _rows(result.out_dir / r["run_dir"] / "history.csv")
        acc1 = float(history[0]["val_acc"])
        if first_epoch is not None:
            assert acc1 == first_epoch
        assert (r["state"] == "PRUNED") == (best is not None and acc1 < best), r
        if r["state"] == "COMPLETE":
            best = acc1 if best is None else max(best, acc1)
    assert sum("pruned after epoch 1" in m for m in messages) == sum(r["state"] == "PRUNED" for r in trials)


def test_energy_objective_counts_the_whole_validation_split_as_export_does(study, tmp_path):
    import numpy as np

    from neurokd.deploy import energy_report_hook
    from neurokd.exporters.to_nir import student_to_nir
    from neurokd.hardware.engines.fastsim import run_fast
    from neurokd.hardware.network import ir
    from neurokd.hardware.network.quantize import quantize
    from neurokd.training import load_run

    result, _ = study
    row = next(r for r in _rows(result.out_dir / "pareto.csv") if r["state"] == "COMPLETE")
    _, student, _, splits = load_run(result.out_dir / row["run_dir"])
    network = ir.from_nir(student_to_nir(student))
    x_val = splits.val.tensors[0].numpy().astype(np.float64)
    x_train = splits.train.tensors[0].numpy().astype(np.float64)
    fixed = quantize(network, input_sample=np.concatenate([x_train, x_val]))
    res = run_fast(network, x_val, precision="fixed", timesteps=4, fixed=fixed, record_steps=True)
    energy_report_hook(tmp_path, network, res, x_val)           # the export's own energy report, on validation
    total = next(r for r in _rows(tmp_path / "energy_report.csv") if r["layer"] == "total" and r["energy_model"] == "loihi-events")
    assert int(total["samples"]) == len(x_val) == 270
    assert float(row["val_energy_loihi_pj"]) == pytest.approx(float(total["energy_pj_per_sample"]), rel=1e-5)  # energy_report.csv keeps 6 decimals


def test_front_figure_and_report_of_the_front_with_the_references(study):
    result, _ = study
    out = result.out_dir
    for name in ("front.png", "front.pdf"):
        assert (out / name).stat().st_size > 5000
    md = (out / "report" / "summary.md").read_text()
    for run in result.front + [out / "reference-baseline", out / "reference-kd-ar-lr"]:
        assert str(run) in md
        assert (run / "energy_report.csv").is_file()
    not_front = [r for r in _rows(out / "pareto.csv") if r["state"] == "COMPLETE" and r["on_front"] == "0"]
    for r in not_front:
        assert str(out / r["run_dir"]) not in md and not (out / r["run_dir"] / "energy_report.csv").exists()


def test_rerun_resumes_the_study_and_another_space_is_refused_unless_resumed(study):
    result, _ = study
    out = result.out_dir
    before = _rows(out / "pareto.csv")
    again = neurokd.tune("digits", "kd-ar-lr", objectives="accuracy,energy:loihi", space=SPACE, trials=5, out=out,
                         report=False, echo=None, **TINY)
    assert [str(r["trial"]) for r in again.rows] == [r["trial"] for r in before]   # nothing trained twice
    with pytest.raises(NeurokdError, match="already exists with another definition.*space.*--resume") as info:
        neurokd.tune("digits", "kd-ar-lr", objectives="accuracy,energy:loihi", space="lambda_act=1e-2..1", trials=6,
                     out=out, echo=None, **TINY)
    assert "\n" not in str(info.value)
    with pytest.raises(NeurokdError, match="--resume continues"):
        neurokd.tune(space="lambda_act=1e-2..1", trials=6, out=out, resume=True, echo=None, device="cpu")
    resumed = neurokd.tune(trials=6, out=out, resume=True, echo=None, device="cpu", prune_margin=None, report=False)
    new = [r for r in resumed.rows if r["trial"] == 5]
    assert len(new) == 1 and new[0]["state"] == "COMPLETE"
    assert 1e-3 <= new[0]["lambda_logits"] <= 1 and 1e-3 <= new[0]["lambda_act"] <= 1   # the stored space


# --------------------------------------------------------------------------------------------------
# Several workers
# --------------------------------------------------------------------------------------------------

def test_two_workers_share_one_study_without_losing_or_repeating_a_trial(tmp_path):
    import optuna

    url = f"sqlite:///{tmp_path / 'study.db'}"
    args = ["--objectives", "accuracy,activity", "--space", SPACE, "--trials", "6", "--out", str(tmp_path / "s"),
            "--storage", url, "--study", "shared", "--no-report", "--no-prune", *CLI_TINY]
    workers = [subprocess.Popen([sys.executable, "-m", "neurokd", "tune", *args], cwd=ROOT, stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True, env=ENV) for _ in range(2)]
    outputs = [w.communicate(timeout=180) for w in workers]
    assert [w.returncode for w in workers] == [0, 0], [e[-2000:] for _, e in outputs]
    started = [[int(line.split()[2]) for line in o.splitlines() if " started " in line] for o, _ in outputs]
    references = [[line.split()[4] for line in o.splitlines() if "training the reference" in line] for o, _ in outputs]
    assert all(s or r for s, r in zip(started, references)), f"both workers worked: {started}, {references}"
    assert sorted(started[0] + started[1]) == list(range(6)), "every trial run once, by one worker"
    assert sorted(references[0] + references[1]) == ["baseline", "kd-ar-lr"], "each reference trained once"
    trials = optuna.load_study(study_name="shared", storage=url).get_trials()
    assert [t.state.name for t in trials] == ["COMPLETE"] * 6
    assert len({t.user_attrs["run_dir"] for t in trials}) == 6
    rows = _rows(tmp_path / "s" / "pareto.csv")
    assert [r["state"] for r in rows] == ["COMPLETE"] * 6 + ["REFERENCE"] * 2 and any(r["on_front"] == "1" for r in rows)


def test_a_killed_worker_leaves_its_trial_failed_and_retried_from_its_checkpoint(tmp_path):
    out = tmp_path / "k"
    args = ["--objectives", "accuracy,activity", "--space", SPACE, "--trials", "1", "--out", str(out),
            "--heartbeat", "1", "--grace", "3", "--no-references", "--no-report", "--no-prune",
            *CLI_TINY[2:], "--epochs", "12"]
    first = subprocess.Popen([sys.executable, "-m", "neurokd", "tune", *args], cwd=ROOT, stdout=subprocess.DEVNULL,
                             stderr=subprocess.DEVNULL, start_new_session=True, env=ENV)
    history = out / "trials" / "trial-0000" / "history.csv"
    deadline = time.time() + 120
    while time.time() < deadline and not (history.is_file() and len(_rows(history)) >= 2):
        time.sleep(0.1)
    os.killpg(first.pid, signal.SIGKILL)                       # the worker dies mid-trial
    first.wait(timeout=30)
    done_before = len(_rows(history))
    assert 2 <= done_before < 12, "killed after some epochs, before the last"
    second = _cli(args, timeout=180)
    assert second.returncode == 0, second.stderr[-2000:]
    assert "resuming trial 0" in second.stdout
    summary = json.loads((out / "tune.json").read_text())
    assert summary["trials"]["FAIL"] == 1 and summary["trials"]["COMPLETE"] == 1 and summary["retries"] == 1
    rows = {r["trial"]: r for r in _rows(out / "pareto.csv")}
    assert rows["0"]["state"] == "FAIL" and rows["1"]["state"] == "COMPLETE" and rows["1"]["retry_of"] == "0"
    assert rows["1"]["run_dir"] == "trials/trial-0000"         # the retry continued the same run folder
    epochs = [int(r["epoch"]) for r in _rows(history)]
    assert epochs == list(range(1, 13)), "resumed from its checkpoint: every epoch once"


def test_an_interrupted_trial_is_retried_from_its_checkpoint_when_the_study_restarts(tmp_path, monkeypatch):
    import neurokd.training

    real_train = neurokd.training.train

    def interrupted_after_one_epoch(cfg, **kw):
        def stop(epoch, row):
            kw_callback(epoch, row)
            raise KeyboardInterrupt
        kw_callback = kw.pop("on_epoch_end")
        return real_train(cfg, on_epoch_end=stop, **kw)

    args = dict(objectives="accuracy,activity", space=SPACE, trials=1, out=tmp_path / "i", references=False,
                report=False, prune_margin=None, echo=None, **TINY)
    monkeypatch.setattr(neurokd.training, "train", interrupted_after_one_epoch)
    with pytest.raises(KeyboardInterrupt):
        neurokd.tune(**args)
    history = tmp_path / "i" / "trials" / "trial-0000" / "history.csv"
    first_epoch = _rows(history)
    assert len(first_epoch) == 1
    monkeypatch.setattr(neurokd.training, "train", real_train)
    messages: list[str] = []
    result = neurokd.tune(**{**args, "echo": messages.append})
    assert [(r["trial"], r["state"], r["run_dir"]) for r in result.rows] == [
        (0, "FAIL", "trials/trial-0000"), (1, "COMPLETE", "trials/trial-0000")]
    assert any("trial 0 was interrupted; queued again" in m for m in messages)
    after = _rows(history)
    assert [int(r["epoch"]) for r in after] == [1, 2] and after[0] == first_epoch[0], "epoch 1 kept, not retrained"



# --------------------------------------------------------------------------------------------------
# Bad input
# --------------------------------------------------------------------------------------------------

def test_bad_input_is_one_line_and_exit_2(tmp_path, capsys):
    from neurokd.cli import main

    cases = {
        ("--space", "bogus=1..2"): "unknown parameter 'bogus'",
        ("--space", "lambda_act=1..1"): "empty range",
        ("--space", SPACE, "--storage", f"sqlite:///{tmp_path}/missing/x.db"): "cannot open the study storage",
        ("--space", SPACE, "--storage", str(tmp_path / "missing" / "study.journal")): "does not exist",
        ("--space", SPACE, "--storage", "postgresql://u:secret@127.0.0.1:1/db"): "--storage postgresql://u:***@",
    }
    for extra, message in cases.items():
        with pytest.raises(SystemExit) as info:
            main(["tune", "--objectives", "accuracy,energy:loihi", "--out", str(tmp_path / "o"), *extra])
        err = capsys.readouterr().err.strip()
        assert info.value.code == 2 and len(err.splitlines()) == 1 and message in err, (extra, err)
        assert "secret" not in err
    real = _cli(["--objectives", "accuracy,speed", "--space", SPACE, "--out", str(tmp_path / "o")])
    assert real.returncode == 2 and real.stderr.strip().startswith("neurokd: error: --objectives")
    assert len(real.stderr.strip().splitlines()) == 1


def test_an_objective_needing_lava_is_refused_when_lava_is_absent(tmp_path, monkeypatch):
    import neurokd.tuning

    monkeypatch.setattr(neurokd.tuning, "lava_available", lambda: False)
    with pytest.raises(NeurokdError, match="energy:loihi with --engine lava needs Lava"):
        neurokd.tune(objectives="accuracy,energy:loihi", space=SPACE, engine="lava", out=tmp_path, echo=None)
    with pytest.raises(NeurokdError, match="--verify 4 needs Lava"):
        neurokd.tune(objectives="accuracy,energy:loihi", space=SPACE, verify=4, out=tmp_path, echo=None)
    assert not (tmp_path / "study.journal").exists(), "refused before the study was made"


def test_the_tune_command_only_parses_options_and_calls_the_api():
    path = ROOT / "neurokd" / "commands" / "tune.py"
    tree = ast.parse(path.read_text(encoding="utf-8"))
    imported = {n.module for n in ast.walk(tree) if isinstance(n, ast.ImportFrom)}
    assert "neurokd" in imported and not any(m.startswith(("neurokd.tuning", "neurokd.training", "neurokd.hardware"))
                                              for m in imported if m)
    assert "api.tune(" in path.read_text()


def test_workers_opening_a_new_sqlite_study_at_once_all_get_it(tmp_path):
    # several workers creating one SQLite schema at the same moment race on its tables and version stamp
    code = ("from pathlib import Path\nfrom neurokd.tuning import open_storage\n"
            f"open_storage('sqlite:///{tmp_path / 's.db'}', Path({str(tmp_path)!r}))")
    for _ in range(3):
        (tmp_path / "s.db").unlink(missing_ok=True)
        procs = [subprocess.Popen([sys.executable, "-c", code], cwd=ROOT, stderr=subprocess.PIPE, text=True, env=ENV)
                 for _ in range(6)]
        results = [(p.wait(timeout=120), p.stderr.read()) for p in procs]
        assert all(rc == 0 for rc, _ in results), [err[-300:] for rc, err in results if rc]


# --------------------------------------------------------------------------------------------------
# Objectives on a chip: each trial's student placed and costed as `neurokd map` does
# --------------------------------------------------------------------------------------------------

def test_chip_objectives_are_named_apart_from_the_counting_models():
    from neurokd.tuning import PLACE_SAMPLES

    energy, latency, counted, old = parse_objectives("energy:loihi1,latency:loihi2,energy:loihi-events") + \
        parse_objectives("energy:loihi")
    assert (energy.chip, energy.energy_model, energy.column) == ("loihi1", None, "val_energy_loihi1_pj")
    assert (latency.chip, latency.direction, latency.column) == ("loihi2", "minimize", "val_latency_loihi2_us")
    assert (counted.chip, counted.energy_model) == (None, "loihi-events")        # the counting model, as before
    assert (old.chip, old.energy_model, old.column) == (None, "loihi", "val_energy_loihi_pj")
    assert energy.hardware is False and counted.hardware is True and PLACE_SAMPLES >= 1
    for text, message in {"accuracy,latency:loihi": "name a chip", "accuracy,energy:nope.toml": "chip file not found",
                          "accuracy,energy:tpu": "name a chip"}.items():
        with pytest.raises(NeurokdError, match=message) as info:
            parse_objectives(text)
        assert "\n" not in str(info.value)


@pytest.fixture(scope="module")
def chip_study(tmp_path_factory):
    out = tmp_path_factory.mktemp("tune-chip") / "digits"
    result = neurokd.tune("digits", "kd-ar-lr", objectives="accuracy,energy:loihi1", space="lambda_act=1e-3..1:log",
                          trials=2, out=out, sampler="random", seed=0, prune_margin=None, report=False, figures=False,
                          place_samples=40, input_mode="spikes", echo=None, **TINY)
    return result


def test_the_chip_energy_of_a_trial_is_what_neurokd_map_gives_for_its_run_on_the_same_samples(chip_study, tmp_path):
    import numpy as np

    from neurokd.training import load_run

    out = chip_study.out_dir
    rows = _rows(out / "pareto.csv")
    assert {"val_energy_loihi1_pj", "placed_loihi1_cores", "placed_loihi1_latency_us",
            "placed_loihi1_energy_pj"} <= set(rows[0])
    assert [r["state"] for r in rows] == ["COMPLETE"] * 2 + ["REFERENCE"] * 2
    for r in rows:      # every trial and both references: placed on loihi1, in the mode they were trained in
        assert r["placed_loihi1_input_mode"] == "spikes" and int(r["placed_loihi1_samples"]) == 40
        assert int(r["placed_loihi1_cores"]) >= 2 and float(r["placed_loihi1_latency_us"]) > 0
        assert float(r["val_energy_loihi1_pj"]) == float(r["placed_loihi1_energy_pj"]) > 0
    row = rows[0]
    run = out / row["run_dir"]
    neurokd.export(run, target="nir", echo=None)
    cfg, _, _, splits = load_run(run)
    x = splits.val.tensors[0].numpy()[:40].astype(np.float64)
    held = np.repeat(x[:, None], int(cfg.timesteps), axis=1)          # (N, T, F): the values held every step
    mapped = neurokd.map_network(run / "model.nir", tmp_path / "map", hardware="loihi1", inputs=held, echo=None)
    assert mapped.input.mode == "spikes" and mapped.cost.samples == 40
    # the same integers, spikes and placement: the same sums in the same order (exact up to float printing)
    assert float(row["placed_loihi1_energy_pj"]) == pytest.approx(mapped.cost.energy_pj, rel=1e-12)
    assert float(row["placed_loihi1_latency_us"]) == pytest.approx(mapped.cost.latency_ns / 1e3, rel=1e-12)
    assert int(row["placed_loihi1_cores"]) == mapped.placement.n_cores
    trial = json.loads((run / "tune_trial.json").read_text())["validation"]
    # the placement and its costing stay cheap next to the engine run that makes the spikes
    assert trial["placed_loihi1_place_s"] < 60


def test_a_graded_study_costed_on_loihi1_is_refused_before_anything_trains(tmp_path, capsys):
    from neurokd.cli import main

    with pytest.raises(SystemExit) as info:
        main(["tune", "--objectives", "accuracy,energy:loihi1", "--space", "lambda_act=1e-3..1:log",
              "--out", str(tmp_path / "o")])
    err = capsys.readouterr().err.strip()
    assert info.value.code == 2 and len(err.splitlines()) == 1
    assert "loihi1 receives binary spikes only" in err and "--input-mode spikes or bias" in err
    assert not (tmp_path / "o").exists(), "refused before the study was made"
