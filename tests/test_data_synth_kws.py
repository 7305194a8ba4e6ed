"""The espeak-ng keyword generator: Speech Commands layout, split by speaker, resumable, readable by the gsc loader."""

from __future__ import annotations

import json

import numpy as np
import pytest
import soundfile as sf

from neurokd.data import load
from neurokd.data.synth_kws import (COMMAND_WORDS, DEFAULT_ACCENTS, DEFAULT_VARIANTS, generate_synth_kws, interleave,
                                    speaker_id, split_speakers)
from neurokd.errors import NeurokdError

SMALL = dict(per_word=3, accents=("en-us",), variants=("m1", "f2", "croak"), noise_seconds=10, progress=False)


@pytest.fixture(scope="module")
def small_set(tmp_path_factory):
    out = tmp_path_factory.mktemp("skws") / "set"
    summary = generate_synth_kws(out, seed=0, **SMALL)
    return out, summary


def test_synth_kws_writes_the_speech_commands_layout(small_set):
    out, summary = small_set
    assert summary["created"] == 30 and summary["utterances"] == {"train": 10, "val": 10, "test": 10}
    for word in COMMAND_WORDS:
        wavs = sorted((out / word).glob("*.wav"))
        assert [p.name for p in wavs] == ["en-us-croak_nohash_0.wav", "en-us-f2_nohash_0.wav", "en-us-m1_nohash_0.wav"]
        for p in wavs:
            info = sf.info(str(p))
            assert (info.samplerate, info.channels, info.frames, info.subtype) == (16000, 1, 16000, "PCM_16")
        audio, _ = sf.read(wavs[0])
        assert np.abs(audio).max() > 0.02  # a spoken word, not silence
    noise = sorted(p.name for p in (out / "_background_noise_").glob("*.wav"))
    assert noise == ["brown_noise.wav", "fan_noise.wav", "hum_noise.wav", "pink_noise.wav", "white_noise.wav"]
    meta = json.loads((out / "synth_kws.json").read_text())
    assert meta["seed"] == 0 and meta["words"] == list(COMMAND_WORDS)


def test_synth_kws_lists_hold_whole_speakers(small_set):
    out, _ = small_set
    speakers = {}
    for name in ("validation_list.txt", "testing_list.txt"):
        rels = (out / name).read_text().split()
        assert len(rels) == 10 and all((out / r).is_file() for r in rels)
        speakers[name] = {r.split("/")[1].split("_nohash_")[0] for r in rels}
    assert len(speakers["validation_list.txt"]) == 1 and len(speakers["testing_list.txt"]) == 1
    assert not speakers["validation_list.txt"] & speakers["testing_list.txt"]


def test_synth_kws_loads_with_the_gsc_loader(small_set):
    out, _ = small_set
    splits = load("synth-kws", str(out), 0, progress=False)
    assert splits.name == "synth-kws" and splits.class_names == list(COMMAND_WORDS)
    assert splits.input_shape == (10, 49) and (len(splits.train), len(splits.val), len(splits.test)) == (10, 10, 10)
    assert splits.info["speakers"] == {"train": 1, "val": 1, "test": 1}


def test_synth_kws_resumes_rewriting_only_missing_or_broken_files(small_set, tmp_path):
    out, _ = small_set
    import shutil

    copy = tmp_path / "copy"
    shutil.copytree(out, copy)
    gone, cut = copy / "stop" / "en-us-f2_nohash_0.wav", copy / "go" / "en-us-m1_nohash_0.wav"
    original = {p: p.read_bytes() for p in (gone, cut)}
    gone.unlink()
    cut.write_bytes(cut.read_bytes()[:10000])
    summary = generate_synth_kws(copy, seed=0, **SMALL)
    assert (summary["created"], summary["skipped"]) == (2, 28)
    # Each utterance has its own seeded draws: the rewritten files are the same bytes as before.
    assert all(p.read_bytes() == data for p, data in original.items())


def test_synth_kws_refuses_a_folder_made_with_another_seed(small_set):
    out, _ = small_set
    with pytest.raises(NeurokdError, match="other settings"):
        generate_synth_kws(out, seed=1, **SMALL)


def test_synth_kws_without_espeak_names_the_package(tmp_path, monkeypatch):
    monkeypatch.setenv("PATH", str(tmp_path))
    with pytest.raises(NeurokdError, match="apt-get install espeak-ng"):
        generate_synth_kws(tmp_path / "out", **SMALL)


def test_default_voices_split_into_whole_speakers():
    speakers = sorted(speaker_id(a, v) for a in DEFAULT_ACCENTS for v in DEFAULT_VARIANTS)
    assert len(speakers) == 120 and all("_" not in s for s in speakers)
    split = split_speakers(speakers, seed=0)
    assert [len(split[s]) for s in ("train", "val", "test")] == [96, 12, 12]
    assert set(split["train"]) | set(split["val"]) | set(split["test"]) == set(speakers)
    assert not set(split["train"]) & set(split["test"])
    # Dealt in proportion: among the first ten speakers utterances go to, every split appears.
    first = interleave(split)[:10]
    assert {s for s in ("train", "val", "test") if set(first) & set(split[s])} == {"train", "val", "test"}


def test_data_synth_kws_command_reports_what_it_wrote(tmp_path):
    from click.testing import CliRunner

    from neurokd.cli import cli

    result = CliRunner().invoke(cli, ["data", "synth-kws", "--out", str(tmp_path / "kws"), "--per-word", "1",
                                      "--words", "yes,no", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "2 WAVs written, 0 kept" in result.output
    assert len(list((tmp_path / "kws" / "yes").glob("*.wav"))) == 1
