"""Nothing lost: a training run killed with SIGKILL mid-epoch resumes to the same final metrics and
weights as an uninterrupted run with the same seed."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import torch

ARGS = ["train", "--method", "baseline", "--teacher", "none", "--epochs", "8", "--batch-size", "16",
        "--model-options", "hidden = [96, 48]", "-T", "6", "--seed", "3", "--quiet"]


def _neurokd(*argv: str) -> list[str]:
    return [sys.executable, "-m", "neurokd", *argv]


def _epochs_done(run: Path) -> int:
    history = run / "history.csv"
    if not history.is_file():
        return 0
    return max(0, len(history.read_text().strip().splitlines()) - 1)


def test_sigkill_mid_epoch_then_resume_gives_the_uninterrupted_result(tmp_path):
    straight, killed = tmp_path / "straight", tmp_path / "killed"
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    subprocess.run(_neurokd(*ARGS, "--out", str(straight)), check=True, env=env, timeout=300,
                   capture_output=True)

    proc = subprocess.Popen(_neurokd(*ARGS, "--out", str(killed)), env=env, stdout=subprocess.DEVNULL,
                            stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 240
        while _epochs_done(killed) < 3 and proc.poll() is None and time.monotonic() < deadline:
            time.sleep(0.02)
        assert proc.poll() is None, "the run finished before it could be killed: make it longer"
        time.sleep(0.05)  # into the next epoch
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait(timeout=30)
    done_at_kill = _epochs_done(killed)
    assert 3 <= done_at_kill < 8
    assert not (killed / "metrics.json").exists()
    assert (killed / "checkpoint.pt").is_file()  # the last finished epoch survived the kill

    subprocess.run(_neurokd(*ARGS, "--out", str(killed), "--resume"), check=True, env=env, timeout=300,
                   capture_output=True)

    m_straight = json.loads((straight / "metrics.json").read_text())
    m_killed = json.loads((killed / "metrics.json").read_text())
    for key in ("test_accuracy", "val_accuracy", "activity", "spikes_per_sample", "best_epoch"):
        assert m_killed[key] == m_straight[key], key
    w_straight = torch.load(straight / "student.pt", weights_only=True)
    w_killed = torch.load(killed / "student.pt", weights_only=True)
    assert w_straight.keys() == w_killed.keys()
    for name in w_straight:
        assert torch.equal(w_straight[name], w_killed[name]), name
    print(f"killed after {done_at_kill} epochs; test accuracy {m_killed['test_accuracy']:.4f} both ways")
