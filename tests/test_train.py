"""Training runs: deterministic, resumable to the bit, a complete run folder, and one-line errors for bad input."""

from __future__ import annotations

import json

import pytest
import torch

from neurokd import fileio
from neurokd.cli import main
from neurokd.config import make_config
from neurokd.data import load
from neurokd.errors import NeurokdError
from neurokd.training import evaluate, load_run, train

TINY = dict(model_options={"hidden": [16]}, teacher_epochs=2, batch_size=128, device="cpu")
CONTRACT_KEYS = {"dataset", "method", "seed", "timesteps", "test_accuracy", "val_accuracy", "teacher_test_accuracy",
                 "activity", "spikes_per_sample", "epochs", "train_seconds"}


@pytest.fixture(scope="module")
def digits():
    return load("digits", None, 0)


def _cfg(tmp_path, name, **kw):
    return make_config(out=str(tmp_path / name), **{**TINY, "epochs": 2, **kw})


def _same_state(a: dict, b: dict) -> bool:
    return a.keys() == b.keys() and all(torch.equal(a[k], b[k]) for k in a)


def test_same_seed_gives_identical_weights_and_metrics(tmp_path, digits):
    m1 = train(_cfg(tmp_path, "a"), progress=False, splits=digits)
    m2 = train(_cfg(tmp_path, "b"), progress=False, splits=digits)
    assert _same_state(fileio.load_torch(tmp_path / "a/student.pt"), fileio.load_torch(tmp_path / "b/student.pt"))
    assert _same_state(fileio.load_torch(tmp_path / "a/teacher.pt"), fileio.load_torch(tmp_path / "b/teacher.pt"))
    assert (m1["test_accuracy"], m1["activity"]) == (m2["test_accuracy"], m2["activity"])
    m3 = train(_cfg(tmp_path, "c", seed=1), progress=False, splits=load("digits", None, 1))
    assert not _same_state(fileio.load_torch(tmp_path / "a/student.pt"), fileio.load_torch(tmp_path / "c/student.pt"))
    assert m3["seed"] == 1


def test_interrupted_run_resumed_ends_identical_to_an_uninterrupted_one(tmp_path, digits):
    straight = train(_cfg(tmp_path, "straight", epochs=4, method="kd-ar-lr", lambda_act=0.1), progress=False,
                     splits=digits)

    def stop_after_two(epoch, row):
        if epoch == 2:
            raise KeyboardInterrupt

    cfg = _cfg(tmp_path, "resumed", epochs=4, method="kd-ar-lr", lambda_act=0.1)
    with pytest.raises(KeyboardInterrupt):
        train(cfg, progress=False, splits=digits, on_epoch_end=stop_after_two)
    assert not (tmp_path / "resumed/metrics.json").exists()
    assert fileio.load_torch(tmp_path / "resumed/checkpoint.pt")["epoch"] == 2
    with pytest.raises(NeurokdError, match="--resume"):
        train(cfg, progress=False, splits=digits)  # neither --resume nor --overwrite
    resumed = train(cfg, resume=True, progress=False, splits=digits)
    for name in ("student.pt", "teacher.pt"):
        assert _same_state(fileio.load_torch(tmp_path / "straight" / name), fileio.load_torch(tmp_path / "resumed" / name))
    ck_a = fileio.load_torch(tmp_path / "straight/checkpoint.pt")
    ck_b = fileio.load_torch(tmp_path / "resumed/checkpoint.pt")
    assert _same_state(ck_a["model"], ck_b["model"])
    drop = ("train_seconds", "epoch_seconds_mean", "teacher_train_seconds")
    assert {k: v for k, v in straight.items() if k not in drop} == {k: v for k, v in resumed.items() if k not in drop}
    rows_a = [{k: v for k, v in r.items() if "seconds" not in k} for r in ck_a["history"]]
    rows_b = [{k: v for k, v in r.items() if "seconds" not in k} for r in ck_b["history"]]
    assert rows_a == rows_b and len(rows_a) == 4
    with pytest.raises(NeurokdError, match="cannot resume"):
        train(cfg.replace(lr=0.5), resume=True, progress=False, splits=digits)


def test_run_folder_loads_back_and_teacher_is_shared_only_when_it_fits(tmp_path, digits):
    metrics = train(_cfg(tmp_path, "run"), progress=False, splits=digits)
    cfg, student, teacher, splits = load_run(tmp_path / "run")
    assert cfg.method == "kd-lr" and cfg.model_options == {"hidden": [16]}
    assert not student.training and teacher is not None
    again = evaluate(student, splits.test)
    assert again["accuracy"] == metrics["test_accuracy"] and again["activity"] == metrics["activity"]
    assert evaluate(teacher, splits.test)["accuracy"] == metrics["teacher_test_accuracy"]
    _, bare, _, no_data = load_run(tmp_path / "run", with_data=False)  # exporters need no dataset
    assert no_data is None and _same_state(bare.state_dict(), student.state_dict())
    # a student distilled from this run's teacher
    shared = train(_cfg(tmp_path, "shared", teacher=str(tmp_path / "run")), progress=False, splits=digits)
    assert shared["teacher_test_accuracy"] == metrics["teacher_test_accuracy"]
    with pytest.raises(NeurokdError, match="model_options"):
        train(_cfg(tmp_path, "other", teacher=str(tmp_path / "run"), model_options={"hidden": [8]}),
              progress=False, splits=digits)
    # a bare teacher.pt of 5 classes (no config.toml beside it)
    from neurokd.models import build_teacher

    fileio.save_torch(tmp_path / "foreign/teacher.pt", build_teacher("mlp", (64,), 5, hidden=[16]).state_dict())
    with pytest.raises(NeurokdError, match="classes or topology differ"):
        train(_cfg(tmp_path, "five", teacher=str(tmp_path / "foreign/teacher.pt")), progress=False, splits=digits)


def _cli(args, capsys):
    with pytest.raises(SystemExit) as exc:
        main(args)
    out, err = capsys.readouterr()
    return exc.value.code, out, err


@pytest.mark.parametrize("args,fragment", [
    (["--lambda-act", "-1"], "lambda-act"),
    (["--lambda-logits", "-0.1"], "lambda-logits"),
    (["--timesteps", "0"], "timesteps"),
    (["--dataset", "mnist"], "unknown dataset"),
    (["--method", "kd-xx"], "unknown method"),
    (["--model", "resnet"], "unknown model"),
    (["--alpha", "1.5"], "alpha"),
    (["--temperature", "0"], "temperature"),
    (["--temperature", "-2"], "temperature"),
    (["--act-norm", "3"], "act-norm"),
    (["--method", "kd", "--teacher", "none"], "teacher"),
    (["--teacher", "/nonexistent/run"], "not found"),
    (["--model-options", "hidden = [16"], "model-options"),
    (["--amp", "--device", "cpu"], "amp"),
])
def test_cli_bad_values_exit_2_with_one_line(args, fragment, capsys, tmp_path):
    code, out, err = _cli(["train", "--out", str(tmp_path / "r"), *args], capsys)
    assert code == 2
    assert err.startswith("neurokd: error:") and fragment in err and len(err.strip().splitlines()) == 1
    assert not (tmp_path / "r" / "metrics.json").exists()


def test_cli_config_file_with_unknown_key_is_refused(capsys, tmp_path):
    (tmp_path / "c.toml").write_text('epochs = 2\nlambda_activity = 0.1\n')
    code, _, err = _cli(["train", "--config", str(tmp_path / "c.toml"), "--out", str(tmp_path / "r")], capsys)
    assert code == 2 and "lambda_activity" in err and len(err.strip().splitlines()) == 1


def test_cli_train_writes_the_run_folder_and_eval_rewrites_test_numbers(capsys, tmp_path):
    (tmp_path / "c.toml").write_text('epochs = 5\nteacher_epochs = 2\nbatch_size = 128\n[model_options]\nhidden = [16]\n')
    out = tmp_path / "run"
    code, stdout, _ = _cli(["train", "--config", str(tmp_path / "c.toml"), "--epochs", "2", "--out", str(out), "-q"],
                           capsys)
    assert code == 0 and "test accuracy" in stdout and str(out) in stdout
    for name in ("config.toml", "teacher.pt", "student.pt", "checkpoint.pt", "metrics.json", "history.csv"):
        assert (out / name).is_file(), name
    metrics = json.loads((out / "metrics.json").read_text())
    assert CONTRACT_KEYS <= set(metrics)
    assert metrics["epochs"] == 2 and metrics["method"] == "kd-lr" and metrics["model"] == "mlp"
    assert set(metrics["activity"]) == {"total", "per_layer"} and list(metrics["activity"]["per_layer"]) == ["lif1"]
    assert 0.0 <= metrics["activity"]["total"] <= 1.0 and 0.0 <= metrics["test_accuracy"] <= 1.0
    assert "epochs = 2" in (out / "config.toml").read_text()  # command line beat the file
    history = (out / "history.csv").read_text().splitlines()
    assert history[0].startswith("epoch,loss,train_acc,val_acc,val_activity,lr,seconds") and len(history) == 3
    state = torch.load(out / "student.pt", weights_only=True)
    assert "net.fc1.weight" in state
    # config.toml holds everything to rerun: the same weights again
    code, _, _ = _cli(["train", "--config", str(out / "config.toml"), "--out", str(tmp_path / "again"), "-q"], capsys)
    assert code == 0
    assert torch.equal(torch.load(tmp_path / "again/student.pt", weights_only=True)["net.fc1.weight"],
                       state["net.fc1.weight"])
    # a finished run is not overwritten without --overwrite
    code, _, err = _cli(["train", "--out", str(out), "--epochs", "2", "-q"], capsys)
    assert code == 2 and "--overwrite" in err
    # eval rewrites the test numbers with the same values
    metrics["test_accuracy"] = -1.0
    fileio.write_json(out / "metrics.json", metrics)
    code, stdout, _ = _cli(["eval", str(out), "--device", "cpu"], capsys)
    again = json.loads((out / "metrics.json").read_text())
    assert code == 0 and 0.0 <= again["test_accuracy"] <= 1.0 and again["train_seconds"] == metrics["train_seconds"]


def test_study_trains_methods_side_by_side_and_skips_finished_runs(capsys, tmp_path):
    out = tmp_path / "study"
    args = ["study", "--methods", "baseline,kd-lr", "--seeds", "0", "--epochs", "1", "--teacher-epochs", "1",
            "--batch-size", "256", "--model-options", "hidden = [8]", "--out", str(out), "-q"]
    code, stdout, _ = _cli(args, capsys)
    assert code == 0 and "kd-lr" in stdout
    for name in ("summary.csv", "summary_mean.csv", "accuracy_vs_activity.png", "accuracy_vs_activity.pdf",
                 "teacher-s0/teacher.pt", "baseline-s0/metrics.json", "kd-lr-s0/metrics.json"):
        assert (out / name).is_file(), name
    rows = (out / "summary.csv").read_text().splitlines()
    assert rows[0].startswith("method,seed,test_accuracy,activity_total_spikes_per_neuron_step") and len(rows) == 3
    baseline_row = rows[1].split(",")
    assert baseline_row[0] == "baseline" and "accuracy_change_pts" in rows[0]
    before = (out / "kd-lr-s0/student.pt").stat().st_mtime_ns
    code, stdout, _ = _cli(args, capsys)
    assert code == 0 and "finished" in stdout
    assert (out / "kd-lr-s0/student.pt").stat().st_mtime_ns == before


def test_overwrite_removes_what_exports_made_of_the_old_student(tmp_path, digits):
    cfg = _cfg(tmp_path, "run", epochs=1)
    train(cfg, progress=False, splits=digits)
    out = tmp_path / "run"
    for name in ("model.nir", "energy_report.md", "MODEL.md", "agreement_fixed.json"):
        (out / name).write_text("old student\n")
    for name in ("lava", "map", "map.stale"):
        (out / name).mkdir()
        (out / name / "placement.json").write_text("{}")
    (out / "notes.txt").write_text("the user's own file\n")
    train(cfg, overwrite=True, progress=False, splits=digits)
    left = {p.name for p in out.iterdir()}
    assert not left & {"model.nir", "energy_report.md", "MODEL.md", "agreement_fixed.json", "lava", "map", "map.stale"}
    assert {"notes.txt", "student.pt", "metrics.json"} <= left


def test_study_summaries_report_the_input_layers_spikes_apart():
    from neurokd.studies import summary_mean, summary_rows

    def metrics(method, seed, acc, act, inp):
        m = {"method": method, "seed": seed, "test_accuracy": acc, "spikes_per_sample": 100.0 * act,
             "activity": {"total": act, "per_layer": {"lif1": act}}}
        if inp is not None:
            m["input_encoder"] = {"input_mode": "spikes", "spikes_per_sample": inp}
        return m

    rows = summary_rows([metrics("baseline", 0, 0.9, 0.3, 80.0), metrics("baseline", 1, 0.9, 0.3, 82.0),
                         metrics("kd", 0, 0.9, 0.2, None)])
    assert [r["input_spikes_per_sample"] for r in rows] == [80.0, 82.0, None]
    mean = {r["method"]: r for r in summary_mean(rows)}
    assert mean["baseline"]["input_spikes_per_sample_mean"] == 81.0
    assert mean["kd"]["input_spikes_per_sample_mean"] is None   # graded: no input layer
