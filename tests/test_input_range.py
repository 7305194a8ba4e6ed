"""The input encoder's range (``--input-clip``) and its training-time dither (``--input-dither``)."""

import pytest
import torch

from neurokd.config import ADDED_SETTINGS, make_config
from neurokd.errors import NeurokdError
from neurokd.models.encoders import InputEncoder


def _values():
    g = torch.Generator().manual_seed(0)
    return torch.randn(400, 10, generator=g, dtype=torch.float64)


def test_clip_takes_the_range_from_quantiles_and_zero_keeps_min_to_max():
    x = _values()
    enc = InputEncoder("spikes")
    enc.set_range(x)
    assert float(enc.offset) == float(x.min()) and float(enc.full_scale) == float(x.max() - x.min())
    enc.set_range(x, clip=0.05)
    lo, hi = torch.quantile(x.flatten(), 0.05).item(), torch.quantile(x.flatten(), 0.95).item()
    assert float(enc.offset) == pytest.approx(lo, abs=0) and float(enc.full_scale) == pytest.approx(hi - lo, abs=0)
    # values beyond the quantiles are clipped to the ends: none sends fewer than 0 or more than T spikes
    s = enc.eval()(x, 4)
    assert set(torch.unique(s).tolist()) <= {0.0, 1.0}
    assert torch.equal(s.sum(0)[x <= lo], torch.zeros_like(x[x <= lo]))
    assert torch.equal(s.sum(0)[x >= hi], torch.full_like(x[x >= hi], 4.0))


def test_non_negative_inputs_keep_offset_zero_under_clip():
    enc = InputEncoder("bias")
    enc.set_range(torch.arange(17.0).repeat(10), clip=0.05)
    assert float(enc.offset) == 0.0


@pytest.mark.parametrize("mode", ["spikes", "bias"])
def test_dither_changes_training_spikes_only_and_keeps_their_count_unbiased(mode):
    x = torch.rand(2000, 8, generator=torch.Generator().manual_seed(1))
    enc = InputEncoder(mode)
    enc.set_range(x)
    fixed = enc.eval()(x, 4)
    enc.dither = True
    assert torch.equal(enc.eval()(x, 4), fixed)            # evaluation and deployment: the fixed code
    torch.manual_seed(0)
    trained = enc.train()(x, 4)
    assert not torch.equal(trained, fixed)
    assert set(torch.unique(trained).tolist()) <= {0.0, 1.0}
    if mode == "spikes":
        # each value sends floor(T x') or ceil(T x') spikes, T x' on average over values and draws
        p = enc.normalised(x).float()
        n = trained.sum(0)
        assert torch.all(n >= torch.floor(4 * p)) and torch.all(n <= torch.ceil(4 * p))
        assert float((n - 4 * p).mean()) == pytest.approx(0.0, abs=0.02)
    else:
        # the bias layer's count from a random start is never below the fixed start's, at most one more
        d = trained.sum(0) - fixed.sum(0)
        assert torch.all((d == 0) | (d == 1)) and bool((d == 1).any())


def test_mfcc_datasets_default_to_clip_and_dither_for_spiking_input_only():
    kws = make_config(dataset="synth-kws", data_dir="/nowhere", input_mode="spikes")
    assert (kws.input_clip, kws.input_dither) == (0.05, True)
    graded = make_config(dataset="synth-kws", data_dir="/nowhere")
    assert (graded.input_clip, graded.input_dither) == (ADDED_SETTINGS["input_clip"], ADDED_SETTINGS["input_dither"])
    digits = make_config(dataset="digits", input_mode="bias")
    assert (digits.input_clip, digits.input_dither) == (0.0, False)
    with pytest.raises(NeurokdError, match="graded has no input layer"):
        make_config(dataset="digits", input_dither=True)
    with pytest.raises(NeurokdError, match=r"input-clip must be a fraction in \[0, 0.5\)"):
        make_config(dataset="digits", input_mode="spikes", input_clip=0.5)


def test_a_run_trained_with_clip_and_dither_exports_the_clipped_range(tmp_path):
    from neurokd.training import _tensors, load_run, load_splits, train

    cfg = make_config(out=str(tmp_path / "r"), model_options={"hidden": [16]}, teacher_epochs=1, epochs=1,
                      batch_size=128, device="cpu", input_mode="spikes", input_clip=0.2, input_dither=True)
    metrics = train(cfg, progress=False)
    x = _tensors(load_splits(cfg).train)[0].double().flatten()
    hi = torch.quantile(x[:: max(1, x.numel() // 2 ** 20)], 0.8).item()   # digits: no value below 0, offset 0
    assert metrics["input_encoder"]["input_offset"] == 0.0
    assert metrics["input_encoder"]["input_full_scale"] == hi < float(x.max())
    text = (tmp_path / "r" / "config.toml").read_text()
    assert "input_clip = 0.2" in text and "input_dither = true" in text
    _cfg, student, _teacher, _splits = load_run(tmp_path / "r")
    assert float(student.encoder.full_scale) == hi
