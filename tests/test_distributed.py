"""Training in several processes (torchrun, DistributedDataParallel over gloo) equals training in one.

Two CPU processes with the same global batch as one process: same final weights up to the order
of floating-point sums (the all-reduce adds two half-batch gradients where one process sums the
whole batch), and exactly the same accuracy and spike counts. Tolerance: max |w_2proc - w_1proc|
< 1e-5 over every weight of teacher and student after 2 + 3 epochs (measured: ~3e-8).
Also here: the real-size recipes in examples/recipes load, and their data_options reach the loader.
"""

from __future__ import annotations

import gc
import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from neurokd import distributed, fileio
from neurokd.config import load_config, make_config
from neurokd.training import build_models, evaluate, load_run, load_splits, train

# digits has 1167 training samples: 23 global batches of 50 and a last one of 17, so the two
# processes take 25 + 25 samples and then 9 + 8 (unequal shares, weighted back to the batch mean).
SETTINGS = dict(model_options={"hidden": [32]}, teacher_epochs=2, epochs=3, batch_size=50, device="cpu")
ARGS = ["--device", "cpu", "--model-options", "hidden = [32]", "--teacher-epochs", "2", "--epochs", "3",
        "--batch-size", "50", "-q"]
WEIGHT_TOLERANCE = 1e-5
TIMEOUT_S = 180


def _torchrun(*args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "OMP_NUM_THREADS": "1"}
    cmd = [sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node", "2",
           "-m", "neurokd", "train", *args]
    return subprocess.run(cmd, capture_output=True, text=True, env=env, timeout=TIMEOUT_S)


def _max_diff(a: dict, b: dict) -> float:
    assert a.keys() == b.keys()
    return max(float((a[k].double() - b[k].double()).abs().max()) for k in a)


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    """The same kd-lr run on digits: two processes launched by torchrun, and one process."""
    root = tmp_path_factory.mktemp("ddp")
    two = _torchrun("--out", str(root / "two"), *ARGS)
    assert two.returncode == 0, two.stderr[-3000:]
    torch_threads = torch.get_num_threads()
    torch.set_num_threads(1)  # as torchrun's workers (OMP_NUM_THREADS=1)
    try:
        train(make_config(out=str(root / "one"), **SETTINGS), progress=False)
    finally:
        torch.set_num_threads(torch_threads)
    return root, two


def test_two_gloo_processes_train_the_weights_of_one_process_with_the_same_global_batch(runs):
    root, two = runs
    assert two.stdout.count("student (SNN)  test accuracy") == 1  # one summary, from rank 0
    for name in ("teacher.pt", "student.pt"):
        assert _max_diff(fileio.load_torch(root / "one" / name), fileio.load_torch(root / "two" / name)) < WEIGHT_TOLERANCE
    ck1, ck2 = fileio.load_torch(root / "one/checkpoint.pt"), fileio.load_torch(root / "two/checkpoint.pt")
    assert ck2["epoch"] == 3 and _max_diff(ck1["model"], ck2["model"]) < WEIGHT_TOLERANCE
    for r1, r2 in zip(ck1["history"], ck2["history"], strict=True):  # losses summed over ranks, accuracies counted
        assert r2["loss"] == pytest.approx(r1["loss"], rel=1e-6)
        assert (r2["train_acc"], r2["val_acc"]) == (r1["train_acc"], r1["val_acc"])
    m2 = json.loads((root / "two/metrics.json").read_text())
    assert m2["processes"] == 2 and m2["test_samples"] == 360


def test_two_process_test_metrics_equal_a_single_process_evaluation_of_the_same_weights(runs):
    root, _ = runs
    m2 = json.loads((root / "two/metrics.json").read_text())
    _, student, teacher, splits = load_run(root / "two")
    single = evaluate(student, splits.test)  # one process, the whole test set
    assert m2["test_accuracy"] == single["accuracy"]
    assert m2["activity"] == single["activity"]  # spike counts summed over the two shards
    assert m2["spikes_per_sample"] == single["spikes_per_sample"]
    assert m2["spikes_per_sample_per_layer"] == single["spikes_per_sample_per_layer"]
    assert m2["teacher_test_accuracy"] == evaluate(teacher, splits.test)["accuracy"]


def _interrupt_then_resume(rank: int, world: int, store: str, out: str) -> None:
    """One worker of a 2-process run stopped after its first student epoch, then resumed.

    The process group is opened here on a file store (no port to find); neurokd.distributed.setup
    finds it open and uses it, as it uses the one torchrun's environment opens.
    """
    torch.distributed.init_process_group("gloo", init_method=f"file://{store}", rank=rank, world_size=world)
    torch.set_num_threads(1)
    cfg = make_config(out=out, **SETTINGS)

    def stop(epoch, row):
        if epoch == 1:
            raise KeyboardInterrupt

    try:
        train(cfg, progress=False, on_epoch_end=stop)
    except KeyboardInterrupt:
        pass
    gc.collect()  # the interrupted run's DDP objects go now, on this thread (see distributed.shutdown)
    if rank == 0:  # stopped after epoch 1, nothing finished yet
        assert fileio.load_torch(f"{out}/checkpoint.pt")["epoch"] == 1 and not os.path.exists(f"{out}/metrics.json")
    train(cfg, progress=False, resume=True)
    distributed.shutdown()


def test_two_process_run_interrupted_and_resumed_ends_identical_to_the_uninterrupted_one(runs):
    root, _ = runs
    out = root / "resumed"
    torch.multiprocessing.spawn(_interrupt_then_resume, args=(2, str(root / "store"), str(out)), nprocs=2, join=True)
    for name in ("student.pt", "teacher.pt"):
        a, b = fileio.load_torch(root / "two" / name), fileio.load_torch(out / name)
        assert all(torch.equal(a[k], b[k]) for k in a)
    drop = ("train_seconds", "epoch_seconds_mean", "teacher_train_seconds")
    m_a = json.loads((root / "two/metrics.json").read_text())
    m_b = json.loads((out / "metrics.json").read_text())
    assert {k: v for k, v in m_a.items() if k not in drop} == {k: v for k, v in m_b.items() if k not in drop}


def test_a_refused_run_folder_stops_every_process_with_one_line(runs):
    root, _ = runs
    again = _torchrun("--out", str(root / "two"), *ARGS)  # finished run, no --resume/--overwrite
    assert again.returncode != 0  # and it returned: no rank was left waiting for the others
    # torchrun may stop rank 1 once rank 0 has exited, so one or two ranks print the line
    assert again.stderr.count("neurokd: error:") in (1, 2) and "already holds a finished run" in again.stderr
    assert "Traceback" not in again.stderr.split("neurokd: error:")[0]


@pytest.mark.parametrize("n, world", [(50, 2), (17, 2), (7, 3), (128, 16)])
def test_shards_of_a_batch_cover_it_once_in_order_and_weights_restore_the_batch_mean(monkeypatch, n, world):
    monkeypatch.setattr(distributed, "world_size", lambda: world)
    parts, weights = [], []
    for r in range(world):
        monkeypatch.setattr(distributed, "rank", lambda r=r: r)
        sl = distributed.shard_range(n)
        parts.append(list(range(n))[sl])
        weights.append(distributed.loss_weight(len(parts[-1]), n))
    assert sum(parts, []) == list(range(n))
    assert [len(p) for p in parts] == [len(t) for t in torch.arange(n).tensor_split(world)]
    # mean over ranks of w_r * (local mean) = global mean, for any per-sample losses l
    l = torch.arange(n, dtype=torch.float64) ** 2
    local_means = [l[p].mean() for p in parts]
    assert float(sum(w * m for w, m in zip(weights, local_means)) / world) == pytest.approx(float(l.mean()), rel=1e-12)


RECIPES = Path(__file__).resolve().parent.parent / "examples" / "recipes"
RECIPE_SHAPES = {"gsc-10": ((10, 49), 12), "gsc-35": ((10, 49), 35), "cifar10-vgg11": ((3, 32, 32), 10)}


@pytest.mark.parametrize("recipe", sorted(p.name for p in RECIPES.glob("*.toml")))
def test_recipes_load_round_trip_and_build_their_student(recipe, tmp_path):
    cfg = make_config(RECIPES / recipe)
    assert cfg.timesteps == 4 and cfg.method == ("baseline" if "baseline" in recipe else "kd-lr")
    cfg.save(tmp_path / "config.toml")
    assert load_config(tmp_path / "config.toml") == cfg
    shape, classes = next(v for k, v in RECIPE_SHAPES.items() if recipe.startswith(k))
    teacher, student = build_models(cfg, shape, classes)
    logits, spikes, _ = student.run(torch.zeros(2, *shape))
    assert logits.shape == (2, classes) and spikes


def test_recipe_data_options_reach_the_loader(speech_commands_dir, cifar10_dir):
    gsc = load_splits(make_config(RECIPES / "gsc-10-kd-lr.toml", data_dir=str(speech_commands_dir)))
    assert gsc.num_classes == 12 and gsc.class_names[-2:] == ["_unknown_", "_silence_"] and gsc.input_shape == (10, 49)
    cifar = load_splits(make_config(RECIPES / "cifar10-vgg11-kd-lr.toml", data_dir=str(cifar10_dir)))
    assert cifar.augment is not None and cifar.input_shape == (3, 32, 32)
