"""The input layer's trainable gain and ``--lambda-input`` (neurokd.models.encoders, neurokd.losses.input_rate):
the spikes stay exactly 0/1 (and today's with the gain at 1), the straight-through gradient reaches the gain and a
positive weight lowers the input rate, the exported graph's full scale is the learnt one and deployment's numpy
encoder sends the training spikes bit for bit with it, graded input is refused in one line, and a state saved
before the gain existed loads."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from conftest import cli
from neurokd.config import TrainConfig, load_config, make_config
from neurokd.errors import NeurokdError
from neurokd.losses import input_rate, total_loss
from neurokd.models.encoders import InputEncoder
from neurokd.training import build_models


def _today(enc: InputEncoder, x: torch.Tensor, steps: int) -> torch.Tensor:
    """The encoder as it was before the gain (full scale = the training range), written out: ``(T, B, ...)``."""
    p = ((x.double() - enc.offset) / enc.full_scale).clamp(0.0, 1.0)
    out = []
    q, v = torch.round(p * (2 ** enc.bits - 1)), torch.zeros_like(p)      # bias: the IF neuron's integers
    acc = torch.full_like(p, 0.5)                                          # spikes: the error-feedback accumulator
    for _ in range(steps):
        if enc.mode == "bias":
            v = v + q
            s = (v > enc.vth).double()
            v = v * (1.0 - s)
        else:
            acc = acc + p
            s = (acc >= 1.0).double()
            acc = acc - s
        out.append(s)
    return torch.stack(out).float()


def _data(n: int = 96, size: int = 12, classes: int = 3, seed: int = 0):
    """Values in [0, 2) whose class is which third of the input is brightest (learnable from spike counts)."""
    g = torch.Generator().manual_seed(seed)
    y = torch.randint(0, classes, (n,), generator=g)
    x = torch.rand(n, size, generator=g)
    x.view(n, classes, -1)[torch.arange(n), y] += 1.0
    return x, y


def _student(mode: str, x: torch.Tensor):
    cfg = TrainConfig(model_options={"hidden": [16]}, timesteps=4, teacher="none", method="baseline",
                      input_mode=mode).resolved()
    torch.manual_seed(0)
    _teacher, student = build_models(cfg, tuple(x.shape[1:]), 3)
    student.encoder.set_range(x)
    return student


def _fit(student, x, y, lambda_input: float, steps: int = 25) -> list[float]:
    """``steps`` Adam steps of CE + lambda_input * r_in; the input rate before each step."""
    student.encoder.learn_gain(lambda_input > 0)
    opt = torch.optim.Adam([p for p in student.parameters() if p.requires_grad], lr=0.05)
    rates = []
    for _ in range(steps):
        logits, spikes, _, s_in = student.run(x, with_input=True)
        rates.append(float(input_rate(s_in.detach())))
        loss, _parts = total_loss("baseline", logits, y, spikes, input_spikes=s_in, lambda_input=lambda_input)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return rates


@pytest.mark.parametrize("mode", ["bias", "spikes"])
def test_spikes_are_exactly_binary_and_todays_at_gain_one_with_the_gain_learning_or_not(mode):
    x, _ = _data()
    enc = InputEncoder(mode)
    enc.set_range(x)
    assert float(enc.log_gain) == 0.0 and not enc.log_gain.requires_grad      # held unless switched on
    held = enc(x, 6)
    assert torch.equal(held, _today(enc, x, 6)) and not held.requires_grad
    enc.learn_gain()
    learnt = enc(x, 6)
    assert learnt.requires_grad and torch.equal(learnt.detach(), held)       # the STE term adds exactly 0.0
    assert set(learnt.detach().unique().tolist()) == {0.0, 1.0}
    with torch.no_grad():
        enc.log_gain.fill_(0.4)
    scaled = enc(x, 6).detach()
    assert set(scaled.unique().tolist()) == {0.0, 1.0} and scaled.sum() < held.sum()   # fewer spikes at fs x e^0.4
    assert enc.metadata()["input_full_scale"] == float(enc.full_scale) * float(np.exp(np.float64(np.float32(0.4))))


@pytest.mark.parametrize("mode", ["bias", "spikes"])
def test_the_gradient_reaches_the_gain_and_lambda_input_lowers_the_input_rate(mode):
    x, y = _data()
    student = _student(mode, x)
    student.encoder.learn_gain()
    logits, spikes, _, s_in = student.run(x, with_input=True)
    input_rate(s_in).backward()
    g = student.encoder.log_gain.grad
    # straight-through: d r_in / d log_gain = -1/(B N) sum of x' over the values inside (0, 1) (x' = x / fs shrinks
    # as fs grows; torch's clamp passes no gradient at its bounds, so the training maximum, x' = 1, adds none)
    p = (x.double() / student.encoder.full_scale).clamp(0, 1)
    assert (p == 1).sum() == 1
    inside = torch.where(p < 1, p, 0.0)
    assert g is not None and float(g) == pytest.approx(-float(inside.mean()), rel=1e-5)   # float32 sums vs float64
    assert "input" not in total_loss("baseline", logits, y, spikes, input_spikes=s_in)[1]   # lambda 0: no term

    free = _fit(_student(mode, x), x, y, 0.0)
    assert free[0] == free[-1]                       # no penalty: the gain is held, the input rate too
    pressed = _fit(reg := _student(mode, x), x, y, 1.0)
    assert pressed[0] == free[0] and pressed[-1] < 0.7 * pressed[0]
    assert float(reg.encoder.log_gain.detach()) > 0.2
    with pytest.raises(NeurokdError, match="no input layer"):
        total_loss("baseline", logits, y, spikes, lambda_input=0.5)


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    """A digits spikes student trained one epoch with --lambda-input (its gain learnt, != 1)."""
    out = tmp_path_factory.mktemp("inreg") / "r"
    assert cli(["train", "--input-mode", "spikes", "--method", "kd-ar-lr", "--lambda-input", "0.5", "--epochs", "1",
                "--teacher-epochs", "1", "--model-options", "hidden = [16]", "--device", "cpu", "--quiet",
                "--out", str(out)]) == 0
    return out


def test_a_run_records_the_learnt_scale_and_its_input_spikes_and_keeps_lambda_input(run):
    from neurokd.training import load_run

    metrics = json.loads((run / "metrics.json").read_text())
    enc = metrics["input_encoder"]
    cfg, student, _teacher, splits = load_run(run)
    assert cfg.lambda_input == 0.5 and "lambda_input = 0.5" in (run / "config.toml").read_text()
    assert load_config(run / "config.toml").lambda_input == 0.5
    assert enc["input_gain"] != 1.0 and enc["input_full_scale"] == float(student.encoder.effective_full_scale())
    x = splits.test.tensors[0]
    spikes = student.encoder(x, cfg.timesteps)
    assert enc["spikes_per_sample"] == pytest.approx(float(spikes.double().sum()) / len(x), rel=1e-12)
    assert enc["rate"] == pytest.approx(float(spikes.double().mean()), rel=1e-12)


def test_the_exported_full_scale_is_the_learnt_one_and_deployment_sends_the_training_spikes(run, tmp_path):
    import nir

    from neurokd.deploy import _encode_input
    from neurokd.exporters.to_nir import student_to_nir, write_nir
    from neurokd.hardware.network import ir
    from neurokd.hardware.placement import load_chip
    from neurokd.training import load_run

    cfg, student, _teacher, splits = load_run(run)
    write_nir(student_to_nir(student), tmp_path / "m.nir")
    graph = nir.read(tmp_path / "m.nir")
    fs = float(np.asarray(graph.metadata["input_full_scale"]))
    assert fs == float(student.encoder.effective_full_scale()) and fs != float(student.encoder.full_scale)
    x = splits.test.tensors[0][:200]
    ours = student.encoder(x, cfg.timesteps).numpy().swapaxes(0, 1).astype(np.float64)       # (N, T, ...)
    deployed = _encode_input(ir.from_nir(graph), x.numpy().astype(np.float64), "spikes", load_chip("loihi1"),
                             cfg.timesteps)[0]
    assert np.array_equal(deployed, ours) and 0 < ours.mean() < 1                 # spikes: bit for bit


@pytest.mark.parametrize("mode", ["bias", "spikes"])
def test_the_numpy_encoders_given_a_learnt_scale_send_the_torch_spikes(mode):
    """The gain not 1 (an arbitrary float32 log_gain, as Adam leaves it), signed values shifted by the offset."""
    from neurokd.hardware.engines.encoding import bias_layer, rate_spikes

    g = torch.Generator().manual_seed(3)
    x = torch.rand(80, 9, generator=g) * 3.0 - 1.0
    enc = InputEncoder(mode)
    enc.set_range(x)
    with torch.no_grad():
        enc.log_gain.fill_(0.3137)
    meta, steps = enc.metadata(), 7
    ours = enc(x, steps).numpy().swapaxes(0, 1)
    frames = np.repeat(np.clip(x.double().numpy() - meta["input_offset"], 0, None)[:, None], steps, axis=1)
    ref = (bias_layer(frames, bits=meta["input_bits"], scale=meta["input_full_scale"]).spikes if mode == "bias"
           else rate_spikes(frames, "deterministic", scale=meta["input_full_scale"]))
    assert np.array_equal(ours, ref) and 0 < ours.mean() < 1


def test_lambda_input_with_graded_input_or_below_zero_is_refused_in_one_line(tmp_path, capsys):
    assert cli(["train", "--lambda-input", "0.1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "--input-mode graded has no input layer" in err and "--input-mode bias or spikes" in err and "\n" not in err
    assert cli(["train", "--input-mode", "spikes", "--lambda-input", "-1", "--out", str(tmp_path / "r")]) == 2
    err = capsys.readouterr().err.strip()
    assert "lambda-input must be a number >= 0" in err and "\n" not in err
    assert not (tmp_path / "r").exists()
    assert make_config(lambda_input=0.0).lambda_input == 0.0                     # 0 with graded: nothing to refuse


def test_a_state_saved_before_the_gain_loads_with_gain_one():
    x, _ = _data()
    student = _student("bias", x)
    old = {k: v for k, v in student.state_dict().items() if k != "encoder.log_gain"}
    with torch.no_grad():
        student.encoder.log_gain.fill_(0.5)
    student.load_state_dict(old, strict=True)
    assert float(student.encoder.log_gain) == 0.0
    assert "encoder.log_gain" not in old                                         # the caller's dict is left as it was


def test_tune_searches_lambda_input_only_with_an_input_layer():
    from neurokd.tuning import parse_space

    space = parse_space("lambda_input=1e-3..1:log", "kd", "spikes")
    assert space["lambda_input"].log and space["lambda_input"].high == 1.0
    with pytest.raises(NeurokdError, match="--input-mode graded has no input layer"):
        parse_space("lambda_input=1e-3..1:log", "kd", "graded")
    with pytest.raises(NeurokdError, match="lambda-input must be a number >= 0"):
        parse_space("lambda_input=-1..1", "kd", "bias")


def test_lambda_input_survives_the_config_files_round_trip(tmp_path):
    cfg = make_config(input_mode="bias", lambda_input=0.25, out=str(tmp_path / "r"))
    cfg.save(tmp_path / "c.toml")
    assert "lambda_input = 0.25" in (tmp_path / "c.toml").read_text() and load_config(tmp_path / "c.toml") == cfg
    assert make_config(tmp_path / "c.toml").lambda_input == 0.25


def test_settings_saved_before_lambda_input_count_as_zero_on_resume_and_in_a_study(tmp_path):
    from neurokd.studies import _same_settings
    from neurokd.training import _check_same_settings

    cfg = make_config(input_mode="spikes", out=str(tmp_path / "r"))
    old = {k: v for k, v in cfg.to_dict().items() if k != "lambda_input"}        # a config.toml from before
    _check_same_settings(old, cfg, tmp_path / "r")
    assert _same_settings(old, cfg.to_dict()) == []
    with pytest.raises(NeurokdError, match="lambda_input was 0.0, now 0.2"):
        _check_same_settings(old, cfg.replace(lambda_input=0.2), tmp_path / "r")
    assert _same_settings(old, cfg.replace(lambda_input=0.2).to_dict()) == ["lambda_input"]
