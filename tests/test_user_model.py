"""`neurokd train --model FILE.py:FUNCTION`: a user's snnTorch or SpikingJelly student in neurokd's loop, the
usual run folder, and eval/export on it only when the same --model is given again."""

from __future__ import annotations

import json

import pytest
import snntorch as snn
import torch
from torch import nn

import neurokd
from neurokd.cli import main
from neurokd.errors import NeurokdError
from neurokd.models.user import UserStudent, build_user_models
from neurokd.training import load_run

SNNTORCH_FILE = '''
import snntorch as snn
from torch import nn


def build(input_shape, num_classes, timesteps, hidden=32):
    return nn.Sequential(
        nn.Flatten(), nn.Linear(64, hidden), snn.Leaky(beta=0.5, init_hidden=True, reset_mechanism="zero"),
        nn.Linear(hidden, num_classes), snn.Leaky(beta=0.5, init_hidden=True, output=True, reset_mechanism="zero"))


def not_a_model(input_shape, num_classes, timesteps):
    return 3


def no_hidden(input_shape, num_classes, timesteps):
    return nn.Sequential(nn.Flatten(), nn.Linear(64, num_classes), snn.Leaky(beta=0.5))
'''

SPIKINGJELLY_FILE = '''
from spikingjelly.activation_based import functional, layer, neuron
from torch import nn


def build(input_shape, num_classes, timesteps):
    student = nn.Sequential(layer.Flatten(), layer.Linear(64, 32), neuron.LIFNode(tau=2.0),
                            layer.Linear(32, num_classes))
    functional.set_step_mode(student, "m")
    teacher = nn.Sequential(nn.Flatten(), nn.Linear(64, 32), nn.ReLU(), nn.Linear(32, num_classes))
    return student, teacher
'''


def _cli(args, capsys) -> tuple[int, str]:
    try:
        main([str(a) for a in args])
        code = 0
    except SystemExit as exc:
        code = int(exc.code or 0)
    out = capsys.readouterr()
    return code, out.out + out.err


@pytest.fixture()
def model_files(tmp_path):
    (tmp_path / "snn_student.py").write_text(SNNTORCH_FILE)
    (tmp_path / "sj_student.py").write_text(SPIKINGJELLY_FILE)
    return tmp_path


def test_snntorch_student_trains_in_neurokds_loop_and_reloads_only_with_the_same_model(model_files, tmp_path, capsys):
    spec = f"{model_files / 'snn_student.py'}:build"
    out = tmp_path / "run"
    run = neurokd.train(model=spec, epochs=2, teacher_epochs=2, out=out, progress=False, echo=None)
    cfg = (out / "config.toml").read_text()
    assert f'model = "{spec}"' in cfg
    metrics = json.loads((out / "metrics.json").read_text())
    assert set(metrics["activity"]["per_layer"]) == {"2", "4"}            # both snn.Leaky layers counted
    assert 0.0 < metrics["activity"]["total"] < 1.0
    assert metrics["test_accuracy"] == run.test_accuracy

    with pytest.raises(NeurokdError, match="never runs code by itself") as err:
        load_run(out)
    assert "\n" not in str(err.value) and spec in str(err.value)
    with pytest.raises(NeurokdError, match="never runs code by itself"):   # resuming reads config.toml only
        neurokd.train(out=out, resume=True, progress=False, echo=None)
    moved = tmp_path / "elsewhere" / "snn_student.py"         # the run folder read on another machine
    moved.parent.mkdir()
    moved.write_text(SNNTORCH_FILE)
    cfg_moved, *_ = _load(out, f"{moved}:build")
    assert cfg_moved.model == f"{moved}:build"
    with pytest.raises(NeurokdError, match="never runs code by itself"):
        _load(out, f"{moved}:no_hidden")                      # another function is not the run's
    again = neurokd.evaluate(out, device="cpu", model=spec)
    assert again["test_accuracy"] == pytest.approx(run.test_accuracy)

    code, text = _cli(["eval", out, "--device", "cpu"], capsys)
    assert code != 0 and "never runs code by itself" in text
    code, text = _cli(["export", out, "--target", "lava", "--engine", "fast", "--verify", "0", "--model", spec,
                       "--no-progress"], capsys)
    assert code == 0, text
    agreement = json.loads((out / "agreement.json").read_text())
    assert agreement["spike_agreement"] == {"2": 1.0, "4": 1.0}
    assert agreement["prediction_agreement"] == 1.0
    assert agreement["accuracy_student"] == pytest.approx(run.test_accuracy)
    code, text = _cli(["export", out, "--target", "onnx", "--model", spec], capsys)
    assert code != 0 and "--target onnx writes neurokd's own students only" in text
    files = neurokd.report([out], out=tmp_path / "report")
    assert "snn_student.py:build" in files["summary.csv"].read_text()
    assert all(p.parent == tmp_path / "report" and p.is_file() for p in files.values())   # no '/' from the spec


def test_a_study_of_a_user_student_runs_each_method(model_files, tmp_path):
    spec = f"{model_files / 'snn_student.py'}:build"
    rows = neurokd.study(methods=["baseline", "kd-lr"], seeds=[0], out=tmp_path / "study", model=spec, epochs=1,
                         teacher_epochs=1, progress=False, echo=None)
    assert [r["method"] for r in rows] == ["baseline", "kd-lr"]
    again = neurokd.study(methods=["baseline", "kd-lr"], seeds=[0], out=tmp_path / "study", model=spec, epochs=1,
                          teacher_epochs=1, progress=False, echo=None)          # finished runs are read back
    assert [r["test_accuracy"] for r in again] == [r["test_accuracy"] for r in rows]


def test_spikingjelly_student_with_its_own_teacher_in_multi_step_mode(model_files, tmp_path):
    spec = f"{model_files / 'sj_student.py'}:build"
    student, teacher = build_user_models(spec, (8, 8), 10, 4)
    assert student.library == "spikingjelly" and student.sequence and isinstance(teacher, nn.Sequential)
    out = tmp_path / "sj"
    run = neurokd.train(model=spec, epochs=2, teacher_epochs=2, method="kd-ar-lr", out=out, progress=False,
                        echo=None)
    assert set(run.metrics["activity"]["per_layer"]) == {"2"}
    cfg, student, teacher, _ = _load(out, spec)
    assert isinstance(student, UserStudent) and isinstance(teacher, nn.Sequential)
    assert student.resolved_readout is None or student.resolved_readout == "mean"


def _load(out, spec):
    from neurokd.models.user import trusted

    with trusted(spec):
        return load_run(out)


def test_readout_conventions_spike_count_membrane_and_linear():
    torch.manual_seed(0)
    T, x = 5, torch.rand(3, 6) * 3

    def net(output):
        return nn.Sequential(nn.Linear(6, 4), snn.Leaky(beta=0.5, init_hidden=True, output=output, reset_mechanism="zero"))

    a = net(True)
    s = UserStudent(a, T, (6,), 4)                      # (spk, mem) output: spike count by default
    logits, spikes, readout = s.run(x)
    assert s.resolved_readout == "spikes" and torch.equal(logits, spikes["1"].sum(0))
    m = UserStudent(a, T, (6,), 4, readout="membrane")
    logits_m, _, readout_m = m.run(x)
    assert m.resolved_readout == "membrane" and not torch.equal(logits_m, logits)
    assert torch.allclose(logits_m, readout_m.mean(0))
    lin = UserStudent(nn.Sequential(nn.Linear(6, 8), snn.Leaky(beta=0.5, init_hidden=True), nn.Linear(8, 4)), T, (6,), 4)
    logits_l, spikes_l, readout_l = lin.run(x)
    assert lin.resolved_readout == "mean" and torch.allclose(logits_l, readout_l.mean(0))
    with pytest.raises(NeurokdError, match="8 values per sample and step, the dataset 4 classes"):
        UserStudent(nn.Sequential(nn.Linear(6, 8), snn.Leaky(beta=0.5, init_hidden=True)), T, (6,), 4).run(x)
    with pytest.raises(NeurokdError, match="readout membrane needs"):
        UserStudent(net(False), T, (6,), 4, readout="membrane").run(x)


def test_bad_model_specs_fail_in_one_line(model_files, monkeypatch, capsys):
    f = model_files / "snn_student.py"
    cases = [
        (f"{model_files / 'missing.py'}:build", "not found"),
        (f"{f}:nothing", "has no function 'nothing'"),
        (f"{f}:not_a_model", "returned a int"),
        (f"{f}:no_hidden", "init_hidden=False"),
        ("no_such_package.mod:build", "cannot import module"),
        (f"{f}:", "FILE.py:FUNCTION"),
    ]
    for spec, expected in cases:
        with pytest.raises(NeurokdError) as err:
            build_user_models(spec, (8, 8), 10, 4)
        assert expected in str(err.value) and "\n" not in str(err.value), spec
    with pytest.raises(NeurokdError, match="--beta, --reset set the neurons of neurokd's own students"):
        neurokd.train(model=f"{f}:build", beta=0.9, reset="subtract", epochs=1, out=model_files / "b", echo=None,
                      progress=False)
    monkeypatch.syspath_prepend(str(model_files))      # package.module:FUNCTION form
    student, teacher = build_user_models("snn_student:build", (8, 8), 10, 4, {"hidden": 16})
    assert student.net[1].out_features == 16 and teacher is None
    code, text = _cli(["train", "--model", f"{f}:nothing", "--epochs", "1", "--out", model_files / "bad", "-q"], capsys)
    assert code == 2 and "has no function 'nothing'" in text and len(text.strip().splitlines()) == 1


def test_report_names_a_user_student_by_its_file_and_function():
    from neurokd.hardware.reports.summary import _model_label

    models = {"mlp", "/a/x/student.py:build", "/a/y/other.py:build"}
    assert _model_label("/a/x/student.py:build", models) == "student.py:build"
    assert _model_label("mlp", models) == "mlp"
    clash = {"/a/x/student.py:build", "/a/y/student.py:build"}    # same short name: the full spec
    assert _model_label("/a/x/student.py:build", clash) == "/a/x/student.py:build"


def test_tune_searches_a_user_student_named_by_model(model_files, tmp_path):
    """``neurokd tune --model FILE.py:FUNCTION``: the trials (and the front's exports) rebuild the user's
    snnTorch student from the spec the caller named, instead of refusing the run folders it wrote."""
    spec = f"{model_files / 'snn_student.py'}:build"
    result = neurokd.tune("digits", "kd-lr", objectives="accuracy,energy:loihi", space="lambda_logits=1e-3..1:log",
                          trials=1, out=tmp_path / "tune", sampler="random", seed=0, figures=False, report=False,
                          echo=None, model=spec, epochs=2, teacher_epochs=2, batch_size=128, device="cpu")
    done = [r for r in result.rows if r.get("state") == "COMPLETE"]
    assert done and all(float(r["val_accuracy"]) > 0 for r in done)
    assert all(float(r["val_energy_loihi_pj"]) > 0 for r in done)
