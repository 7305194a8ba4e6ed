"""The Speech Commands loader: official splits, MFCC features, classes, cache, and errors on broken folders."""

from __future__ import annotations

import numpy as np
import pytest
import soundfile as sf
import torch

import neurokd.data.gsc as gsc
from neurokd.data import load
from neurokd.data.audio import MfccParams, fit_clip, mfcc, read_wav
from neurokd.errors import NeurokdError

from conftest import GSC_WORDS, write_speech_commands


def test_mfcc_defaults_give_49_frames_of_10_coefficients():
    params = MfccParams()
    assert params.frames == 49
    clips = np.random.default_rng(0).standard_normal((3, 16000)).astype(np.float32)
    feats = mfcc(clips, params)
    assert feats.shape == (3, 10, 49) and feats.dtype == np.float32
    # A clip's features do not depend on the other clips of its batch.
    np.testing.assert_allclose(mfcc(clips[1:2], params)[0], feats[1], rtol=1e-5, atol=1e-4)  # float32 FFTs of another batch shape
    assert mfcc(clips, MfccParams(n_mfcc=40)).shape == (3, 40, 49)


def test_mfcc_frame_t_sees_only_its_window():
    """Frame t windows samples [t*320, t*320 + 640): an impulse at sample 5000 changes frames 15 and 16 only."""
    clip = np.zeros((1, 16000), dtype=np.float32)
    base = mfcc(clip)[0]
    clip[0, 5000] = 1.0
    changed = np.where(np.abs(mfcc(clip)[0] - base).max(axis=0) > 1e-3)[0]
    assert changed.tolist() == [t for t in range(49) if t * 320 <= 5000 < t * 320 + 640]


def test_mfcc_options_out_of_range_are_refused():
    with pytest.raises(NeurokdError, match="n_mfcc"):
        MfccParams(n_mfcc=50)
    with pytest.raises(NeurokdError, match="win_length"):
        MfccParams(win_length=2048)


def test_gsc_loads_official_splits_as_standardised_mfcc(speech_commands_dir):
    splits = load("gsc", str(speech_commands_dir), 0, progress=False)
    assert splits.class_names == list(GSC_WORDS) and splits.num_classes == 10
    assert splits.input_shape == (10, 49)
    assert (len(splits.train), len(splits.val), len(splits.test)) == (20, 10, 10)
    x, y = splits.train.tensors
    assert x.shape == (20, 10, 49) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert torch.bincount(y).tolist() == [2] * 10
    # Standardised with train statistics: per coefficient, mean 0 and std 1 over train clips and frames.
    torch.testing.assert_close(x.mean(dim=(0, 2)), torch.zeros(10), atol=1e-4, rtol=0)
    torch.testing.assert_close(x.std(dim=(0, 2), unbiased=False), torch.ones(10), atol=1e-3, rtol=0)
    assert splits.info["speakers"] == {"train": 2, "val": 1, "test": 1}
    assert splits.info["counts"]["test"]["stop"] == 1


def test_gsc_val_split_holds_exactly_the_listed_files(speech_commands_dir):
    splits = load("gsc", str(speech_commands_dir), 0, progress=False)
    listed = [rel for rel in (speech_commands_dir / "validation_list.txt").read_text().split()
              if rel.split("/")[0] in GSC_WORDS]
    assert len(listed) == 10
    clips = np.stack([fit_clip(read_wav(speech_commands_dir / rel)) for rel in listed])
    expected = mfcc(clips)
    mean = np.array(splits.info["normalisation"]["mean"], dtype=np.float32)[None, :, None]
    std = np.array(splits.info["normalisation"]["std"], dtype=np.float32)[None, :, None]
    expected = (expected - mean) / std
    x, y = splits.val.tensors
    order = [GSC_WORDS.index(rel.split("/")[0]) for rel in listed]
    # float32 MFCCs and normalisation computed here in another batch
    np.testing.assert_allclose(x.numpy()[np.argsort(y.numpy())], expected[np.argsort(order)], rtol=1e-4, atol=1e-4)


def test_gsc_unknown_silence_adds_two_classes_from_other_words_and_noise(speech_commands_dir):
    splits = load("gsc", str(speech_commands_dir), 0, progress=False, unknown_silence=True)
    assert splits.class_names == list(GSC_WORDS) + ["_unknown_", "_silence_"]
    assert splits.num_classes == 12
    # unknown: ceil(0.1 * known) of the other words' files of the split; silence: ceil(0.1 * known) crops.
    train_counts = torch.bincount(splits.train.tensors[1], minlength=12).tolist()
    assert train_counts == [2] * 10 + [2, 2]
    test_counts = torch.bincount(splits.test.tensors[1], minlength=12).tolist()
    assert test_counts == [1] * 10 + [1, 1]
    # The draw uses split_seed, never the training seed: every seed sees the same test set.
    other = load("gsc", str(speech_commands_dir), 5, progress=False, unknown_silence=True)
    torch.testing.assert_close(other.test.tensors[0], splits.test.tensors[0])


def test_gsc_word_selection_all_and_35(speech_commands_dir):
    splits = load("gsc", str(speech_commands_dir), 0, progress=False, words="all")
    assert splits.class_names == sorted(GSC_WORDS + ("bed", "cat"))
    with pytest.raises(NeurokdError, match="no folder for word"):
        load("gsc", str(speech_commands_dir), 0, progress=False, words="35")
    two = load("gsc", str(speech_commands_dir), 0, progress=False, words="yes,no")
    assert two.class_names == ["yes", "no"] and len(two.train) == 4


def test_gsc_second_load_reuses_the_feature_cache(speech_commands_dir, monkeypatch):
    calls = []
    real = gsc.mfcc
    monkeypatch.setattr(gsc, "mfcc", lambda clips, params: calls.append(len(clips)) or real(clips, params))
    first = load("gsc", str(speech_commands_dir), 0, progress=False)
    assert sum(calls) == 40 and first.info["cache"]["hit"] is False
    cache_file = speech_commands_dir / ".neurokd_cache"
    assert len(list(cache_file.glob("gsc-*.npz"))) == 1
    calls.clear()
    second = load("gsc", str(speech_commands_dir), 0, progress=False)
    assert calls == [] and second.info["cache"]["hit"] is True
    torch.testing.assert_close(first.train.tensors[0], second.train.tensors[0])
    # A damaged cache entry is rebuilt, not trusted.
    entry = next(cache_file.glob("gsc-*.npz"))
    entry.write_bytes(b"not a zip file")
    third = load("gsc", str(speech_commands_dir), 0, progress=False)
    assert sum(calls) == 40 and third.info["cache"]["hit"] is False
    torch.testing.assert_close(first.train.tensors[0], third.train.tensors[0])
    # Other feature options are another cache entry.
    assert load("gsc", str(speech_commands_dir), 0, progress=False, n_mfcc=20).input_shape == (20, 49)
    assert len(list(cache_file.glob("gsc-*.npz"))) == 2


def test_gsc_cache_notices_a_changed_file(speech_commands_dir):
    first = load("gsc", str(speech_commands_dir), 0, progress=False)
    sf.write(speech_commands_dir / "yes" / "aa01_nohash_0.wav", np.zeros(12000, dtype=np.float32), 16000,
             subtype="PCM_16")
    second = load("gsc", str(speech_commands_dir), 0, progress=False)
    assert second.info["cache"]["hit"] is False
    assert not torch.equal(first.train.tensors[0], second.train.tensors[0])


def test_read_wav_resamples_and_mixes_to_mono(tmp_path):
    t = np.arange(4000) / 8000
    left, right = np.sin(2 * np.pi * 440 * t), 0.5 * np.sin(2 * np.pi * 440 * t)
    path = tmp_path / "stereo_8k.wav"
    sf.write(path, np.stack([left, right], axis=1).astype(np.float32), 8000, subtype="PCM_16")
    audio = read_wav(path)
    assert audio.shape == (8000,) and audio.dtype == np.float32
    # Mono = mean of the channels (0.75 sin); the resampled tone keeps its amplitude.
    assert abs(np.abs(audio[1000:7000]).max() - 0.75) < 0.02


def test_gsc_loads_a_folder_with_an_8khz_stereo_file(speech_commands_dir):
    t = np.arange(8000) / 8000
    tone = np.sin(2 * np.pi * 300 * t).astype(np.float32)
    sf.write(speech_commands_dir / "yes" / "aa01_nohash_0.wav", np.stack([tone, tone], 1), 8000, subtype="PCM_16")
    assert len(load("gsc", str(speech_commands_dir), 0, progress=False).train) == 20


def test_gsc_missing_folder_is_reported(tmp_path):
    with pytest.raises(NeurokdError, match="does not exist.*speech_commands_v0.02"):
        load("gsc", str(tmp_path / "nowhere"), 0)
    with pytest.raises(NeurokdError, match="needs --data-dir"):
        load("gsc", None, 0)


def test_gsc_empty_folder_is_reported(tmp_path):
    with pytest.raises(NeurokdError, match="no word folders"):
        load("gsc", str(tmp_path), 0)


def test_gsc_missing_split_list_is_reported(speech_commands_dir):
    (speech_commands_dir / "testing_list.txt").unlink()
    with pytest.raises(NeurokdError, match="testing_list.txt is missing"):
        load("gsc", str(speech_commands_dir), 0)


def test_gsc_listed_file_that_is_absent_is_reported(speech_commands_dir):
    (speech_commands_dir / "go" / "cc03_nohash_0.wav").unlink()
    with pytest.raises(NeurokdError, match=r"go/cc03_nohash_0\.wav is listed in validation_list\.txt but missing"):
        load("gsc", str(speech_commands_dir), 0)


def test_gsc_truncated_wav_is_reported_by_name(speech_commands_dir):
    path = speech_commands_dir / "left" / "bb02_nohash_0.wav"
    path.write_bytes(path.read_bytes()[:5000])
    with pytest.raises(NeurokdError, match=r"left/bb02_nohash_0\.wav is truncated"):
        load("gsc", str(speech_commands_dir), 0, progress=False)


def test_gsc_corrupt_wav_is_reported_by_name(speech_commands_dir):
    (speech_commands_dir / "up" / "aa01_nohash_0.wav").write_bytes(b"\x00garbage" * 100)
    with pytest.raises(NeurokdError, match=r"cannot read WAV file .*up/aa01_nohash_0\.wav"):
        load("gsc", str(speech_commands_dir), 0, progress=False)


def test_gsc_unknown_silence_without_noise_folder_is_reported(tmp_path):
    root = write_speech_commands(tmp_path / "sc")
    for p in (root / "_background_noise_").iterdir():
        p.unlink()
    with pytest.raises(NeurokdError, match="_background_noise_"):
        load("gsc", str(root), 0, progress=False, unknown_silence=True)


def test_synth_kws_loader_without_a_generated_folder_says_how_to_make_one(tmp_path, monkeypatch):
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    with pytest.raises(NeurokdError, match="neurokd data synth-kws --out"):
        load("synth-kws", None, 0)


def test_data_info_command_prints_counts_per_class(speech_commands_dir):
    from click.testing import CliRunner

    from neurokd.cli import cli

    result = CliRunner().invoke(cli, ["data", "info", "gsc", "--data-dir", str(speech_commands_dir),
                                      "-o", "unknown_silence=true", "-o", "progress=false"])
    assert result.exit_code == 0, result.output
    assert "train 24, val 12, test 12 samples; input 10x49; 12 classes" in result.output
    assert any(line.split() == ["_silence_", "2", "1", "1"] for line in result.output.splitlines())


def test_data_info_with_a_bad_folder_exits_2_with_one_line(tmp_path, capsys):
    from neurokd.cli import main

    with pytest.raises(SystemExit) as exc:
        main(["data", "info", "gsc", "--data-dir", str(tmp_path / "missing")])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("neurokd: error: dataset folder") and err.count("\n") == 1
