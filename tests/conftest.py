"""Shared pytest fixtures: tiny datasets written in the real on-disk layouts (Speech Commands, CIFAR-10),
the recorded third-party graphs of ``shared/interop`` where that folder exists, and ``cli`` (the
command line in-process, returning its exit code).

Tests marked ``lava`` run Lava (lava-nc, and lava-dl's netx): the reference backend, installed only on the
Python 3.11 stack (``make test``). Where it is absent (the core environment on Python 3.12/3.13 with
numpy 2, ``make test-core``) they skip with that reason; where it is installed none of them skips."""

from __future__ import annotations

import importlib.util
import os
import pickle
from pathlib import Path

import numpy as np
import pytest

# Third-party NIR graphs and the NIR paper's recorded traces (Loihi 2 among them) live beside the
# repository in shared/interop; a clone without it skips the tests that read them.
# NEUROKD_INTEROP points elsewhere (a missing path makes those tests skip).
INTEROP_DIR = Path(os.environ.get("NEUROKD_INTEROP") or Path(__file__).resolve().parents[2] / "shared" / "interop")


def _lava_missing() -> str | None:
    """Why the Lava reference backend cannot run here, or None when lava-nc and lava-dl are installed."""
    missing = [name for name, module in (("lava-nc", "lava.magma"), ("lava-dl", "lava.lib.dl"))
               if importlib.util.find_spec(module.split(".")[0]) is None or importlib.util.find_spec(module) is None]
    if not missing:
        return None
    return (f"{' and '.join(missing)} not installed: the Lava reference backend runs on the Python 3.11 stack "
            "(`make test`); this environment is the core (`make test-core`)")


LAVA_MISSING = _lava_missing()


def require_lava() -> None:
    """For a test module that imports Lava at its top: skip the whole module, with the reason, without it."""
    if LAVA_MISSING is not None:
        pytest.skip(LAVA_MISSING, allow_module_level=True)


def pytest_collection_modifyitems(config, items) -> None:
    reason = LAVA_MISSING
    if reason is None:
        return
    for item in items:
        if item.get_closest_marker("lava") is not None:
            item.add_marker(pytest.mark.skip(reason=reason))


def cli(argv: list[str]) -> int:
    """``neurokd ARGV`` in this process; its exit code (0 when it returns)."""
    from neurokd.cli import main

    try:
        main(argv)
    except SystemExit as exc:
        return int(exc.code or 0)
    return 0


@pytest.fixture(scope="session")
def interop_dir() -> Path:
    """``shared/interop`` (or ``$NEUROKD_INTEROP``); the test skips with one line when it is absent."""
    if not INTEROP_DIR.is_dir():
        pytest.skip(f"recorded interop graphs not found at {INTEROP_DIR} (shared/interop beside the repository, "
                    "or set NEUROKD_INTEROP)")
    return INTEROP_DIR

GSC_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")


def write_speech_commands(root: Path, words=GSC_WORDS + ("bed", "cat"), speakers=("aa01", "bb02", "cc03", "dd04"),
                          val_speakers=("cc03",), test_speakers=("dd04",), noise_seconds: float = 5.0,
                          seed: int = 0) -> Path:
    """A Speech Commands v0.02 folder: one 16 kHz mono 16-bit WAV per word and speaker (a word-specific
    tone in noise, 0.6-1.0 s long), split lists by speaker, two background-noise files."""
    import soundfile as sf

    rng = np.random.default_rng(seed)
    val, test = [], []
    for w_idx, word in enumerate(words):
        (root / word).mkdir(parents=True, exist_ok=True)
        for s_idx, spk in enumerate(speakers):
            n = int(16000 * (0.6 + 0.1 * ((w_idx + s_idx) % 5)))
            t = np.arange(n) / 16000
            audio = 0.3 * np.sin(2 * np.pi * (200 + 150 * w_idx) * t) + 0.02 * rng.standard_normal(n)
            rel = f"{word}/{spk}_nohash_0.wav"
            sf.write(root / rel, audio.astype(np.float32), 16000, subtype="PCM_16")
            if spk in val_speakers:
                val.append(rel)
            elif spk in test_speakers:
                test.append(rel)
    (root / "validation_list.txt").write_text("".join(f"{r}\n" for r in val))
    (root / "testing_list.txt").write_text("".join(f"{r}\n" for r in test))
    noise_dir = root / "_background_noise_"
    noise_dir.mkdir(exist_ok=True)
    for name in ("white_noise", "pink_noise"):
        sf.write(noise_dir / f"{name}.wav", (0.1 * rng.standard_normal(int(16000 * noise_seconds))).astype(np.float32),
                 16000, subtype="PCM_16")
    return root


def write_cifar10(root: Path, per_class_batch: int = 2, per_class_test: int = 2, protocols=(2, 3, 4, 5, 2),
                  seed: int = 0) -> Path:
    """``root/cifar-10-batches-py`` with data_batch_1..5, test_batch, batches.meta: pickled dicts of bytes keys
    (b'data' uint8 (N, 3072), b'labels' list), as the official archive holds; random images."""
    rng = np.random.default_rng(seed)
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True, exist_ok=True)

    def batch(per_class: int, label: str, protocol: int, name: str) -> None:
        labels = [c for c in range(10) for _ in range(per_class)]
        data = rng.integers(0, 256, size=(len(labels), 3072), dtype=np.uint8)
        d = {b"batch_label": label.encode(), b"labels": labels, b"data": data,
             b"filenames": [f"img_{i}.png".encode() for i in range(len(labels))]}
        (folder / name).write_bytes(pickle.dumps(d, protocol=protocol))

    for i, protocol in enumerate(protocols, start=1):
        batch(per_class_batch, f"training batch {i} of 5", protocol, f"data_batch_{i}")
    batch(per_class_test, "testing batch 1 of 1", 2, "test_batch")
    names = ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    meta = {b"num_cases_per_batch": 10 * per_class_batch, b"label_names": [n.encode() for n in names], b"num_vis": 3072}
    (folder / "batches.meta").write_bytes(pickle.dumps(meta, protocol=2))
    return root


@pytest.fixture
def speech_commands_dir(tmp_path: Path) -> Path:
    """A tiny Speech Commands folder: 12 words x 4 speakers (val: cc03, test: dd04), background noise."""
    return write_speech_commands(tmp_path / "speech_commands")


@pytest.fixture
def cifar10_dir(tmp_path: Path) -> Path:
    """A tiny CIFAR-10 folder: 5 train batches of 20 images, a test batch of 20, batches.meta."""
    return write_cifar10(tmp_path / "cifar")


def write_untrained_digits_run(run: Path, input_mode: str = "graded") -> Path:
    """A digits run folder as `neurokd train --input-mode MODE` leaves it (config.toml, student.pt, metrics.json),
    with untrained weights scaled up so that every layer spikes."""
    import torch

    from neurokd import fileio
    from neurokd.config import TrainConfig
    from neurokd.training import build_models

    run.mkdir(parents=True)
    cfg = TrainConfig(out=str(run), model_options={"hidden": [32, 16]}, timesteps=4, teacher="none",
                      method="baseline", input_mode=input_mode).resolved()
    cfg.save(run / "config.toml")
    torch.manual_seed(0)
    _teacher, student = build_models(cfg, (64,), 10)
    if student.encoder is not None:
        student.encoder.set_range(torch.tensor([0.0, 1.0]))
    with torch.no_grad():
        student.net.fc1.weight.mul_(4.0)
        student.net.fc2.weight.mul_(4.0)
    fileio.save_torch(run / "student.pt", student.state_dict())
    fileio.write_json(run / "metrics.json", {"dataset": "digits", "input_shape": [64], "num_classes": 10})
    return run
