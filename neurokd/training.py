"""The training loop: teacher first, then the SNN student with its method's loss, into one run folder.

``train(config)`` does a whole run and returns its metrics. A run folder holds (DESIGN.md)::

    config.toml      the resolved settings (enough to rerun)
    teacher.pt       teacher state_dict (absent with --teacher none)
    student.pt       student state_dict of the best epoch (highest val accuracy; later epoch on ties)
    checkpoint.pt    last finished epoch: model, optimizer, scheduler, RNG states, best-so-far, history
    metrics.json     test accuracy, activity per layer and pooled, spikes per sample, timings
    history.csv      one row per epoch

Determinism: the teacher and the student are each initialised right after ``torch.manual_seed``
of the run's seed, and each draws its batch order from its own ``torch.Generator``; so a student
is the same whether its teacher was trained in the same process or loaded from a folder, and the
same seed gives the same weights on the same machine and device. The checkpoint stores every
RNG state, so an interrupted run resumed with ``resume=True`` ends bit-identical to a run that was
never interrupted.

Teacher logits are computed once for the whole training set when the dataset has no
augmentation (``Splits.augment is None``), else per batch on the augmented inputs, without grad.

Devices and processes (:mod:`neurokd.distributed`): ``device`` auto/cpu/cuda, mixed precision
with ``amp`` on CUDA, the training split kept on the GPU (or gathered into pinned memory), and
``torchrun --nproc_per_node N -m neurokd train ...`` for DistributedDataParallel: each rank takes
its share of the same global batches, metrics and spike counts are summed over ranks, only rank 0
writes the run folder, and rank 0 computes the teacher-logit cache and broadcasts it.
"""

from __future__ import annotations

import contextlib
import copy
import os
import random
import time
import shutil
from pathlib import Path
from typing import Callable

import numpy as np
import torch
from torch import nn
from torch.utils.data import TensorDataset
from tqdm.auto import tqdm

from neurokd import distributed, fileio
from neurokd.activity import ActivityCounter
from neurokd.config import ADDED_SETTINGS, TrainConfig, load_config
from neurokd.errors import NeurokdError
from neurokd.losses import method_terms, soft_targets, total_loss

RUN_FILES = ("config.toml", "teacher.pt", "student.pt", "checkpoint.pt", "metrics.json", "history.csv")
# what exports write into a run folder: describes the student it was made from, so --overwrite removes it too
EXPORT_FILES = ("model.nir", "model.norse.nir", "model.net", "quantization_netx.json", "agreement.json",
                "agreement_fixed.json", "agreement_netx.json", "energy_report.csv", "energy_report.md",
                "energy_subset.csv", "MODEL.md", "teacher.onnx", "student_step.onnx", "onnx_check.json")
EXPORT_DIRS = ("lava", "map", "map.stale")
# seconds: the whole epoch (training pass + validation); train_pass_seconds: the training pass alone
HISTORY_COLUMNS = ["epoch", "loss", "train_acc", "val_acc", "val_activity", "lr", "seconds", "train_activity",
                   "train_pass_seconds"]
CHECKPOINT_FORMAT = 1
EVAL_BATCH = 512


# ---- devices, seeds, determinism ---------------------------------------------------------------
def resolve_device(name: str = "auto") -> torch.device:
    """``auto`` = CUDA if available, else CPU; asking for CUDA without one is an error."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if name.startswith("cuda") and not torch.cuda.is_available():
        raise NeurokdError(f"device {name!r} requested but no CUDA device is available; use --device cpu")
    return torch.device(name)


@contextlib.contextmanager
def deterministic(device: torch.device):
    """Use deterministic algorithms where PyTorch has them (warn, not fail, where it has none)."""
    if device.type == "cuda":
        os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")
    was, was_warn = torch.are_deterministic_algorithms_enabled(), torch.is_deterministic_algorithms_warn_only_enabled()
    cudnn_det, cudnn_bench = torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark
    torch.use_deterministic_algorithms(True, warn_only=True)
    torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = True, False
    try:
        yield
    finally:
        torch.use_deterministic_algorithms(was, warn_only=was_warn)
        torch.backends.cudnn.deterministic, torch.backends.cudnn.benchmark = cudnn_det, cudnn_bench


def _rng_state(generators: dict[str, torch.Generator]) -> dict:
    """Every RNG state as plain tensors/ints (loadable with weights_only=True)."""
    np_state = np.random.get_state()
    py_state = random.getstate()
    state = {
        "torch": torch.get_rng_state(),
        "numpy": {"keys": torch.from_numpy(np_state[1].astype(np.int64)), "pos": int(np_state[2]),
                  "has_gauss": int(np_state[3]), "gauss": float(np_state[4])},
        "python": {"version": py_state[0], "state": list(py_state[1]), "gauss": py_state[2]},
        "generators": {name: g.get_state() for name, g in generators.items()},
    }
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def _set_rng_state(state: dict, generators: dict[str, torch.Generator]) -> None:
    torch.set_rng_state(state["torch"])
    n = state["numpy"]
    np.random.set_state(("MT19937", n["keys"].numpy().astype(np.uint32), n["pos"], n["has_gauss"], n["gauss"]))
    p = state["python"]
    random.setstate((p["version"], tuple(p["state"]), p["gauss"]))
    for name, g in generators.items():
        g.set_state(state["generators"][name])
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


def _seed_everything(seed: int) -> None:
    torch.manual_seed(seed)
    np.random.seed(seed)
    random.seed(seed)


# ---- models ------------------------------------------------------------------------------------
def build_models(cfg: TrainConfig, input_shape, num_classes: int, which: str = "both"):
    """Build ``(teacher, student)`` of ``cfg.model``, each initialised right after seeding with ``cfg.seed``.

    ``which`` = ``"teacher"`` / ``"student"`` builds only one (the other is None).
    """
    from neurokd.models import build_student, build_teacher
    from neurokd.models.user import is_user_model

    if is_user_model(cfg.model):
        return _build_user_models(cfg, input_shape, num_classes, which)
    opts = dict(cfg.model_options)
    teacher = student = None
    try:
        if which in ("both", "teacher"):
            torch.manual_seed(cfg.seed)
            teacher = build_teacher(cfg.model, input_shape, num_classes, **opts)
        if which in ("both", "student"):
            torch.manual_seed(cfg.seed)
            student = build_student(cfg.model, input_shape, num_classes, cfg.timesteps, beta=cfg.beta,
                                    threshold=cfg.threshold, learn_beta=cfg.learn_beta,
                                    learn_threshold=cfg.learn_threshold, reset=cfg.reset,
                                    input_mode=cfg.input_mode, **opts)
    except TypeError as exc:
        raise NeurokdError(f"model {cfg.model!r} does not take model_options {opts}: {exc}") from exc
    except (ValueError, RuntimeError) as exc:
        raise NeurokdError(f"model {cfg.model!r} cannot be built for input {tuple(input_shape)} with {opts}: {exc}") from exc
    return teacher, student


def _build_user_models(cfg: TrainConfig, input_shape, num_classes: int, which: str = "both"):
    """:func:`build_models` for a student from user code (:mod:`neurokd.models.user`): the user's function
    is called right after seeding; its teacher, or else neurokd's teacher of the dataset's default model."""
    from neurokd.models import DEFAULT_MODEL, build_teacher
    from neurokd.models.user import build_user_models

    defaults = TrainConfig()
    changed = [k for k in ("beta", "threshold", "learn_beta", "learn_threshold", "reset")
               if getattr(cfg, k) != getattr(defaults, k)]
    if changed:
        raise NeurokdError(f"--model {cfg.model}: {', '.join('--' + k.replace('_', '-') for k in changed)} set the "
                           "neurons of neurokd's own students; a user student's neurons are its own (set them in the "
                           "function, or pass them as --model-options)")
    torch.manual_seed(cfg.seed)
    student, teacher = build_user_models(cfg.model, input_shape, num_classes, cfg.timesteps, cfg.model_options)
    student.own_teacher = teacher is not None
    if which in ("both", "teacher") and teacher is None:
        torch.manual_seed(cfg.seed)
        teacher = build_teacher(DEFAULT_MODEL.get(cfg.dataset, "mlp"), input_shape, num_classes)
    return (teacher if which != "student" else None), (student if which != "teacher" else None)


def _load_state(model: nn.Module, state: dict, where: str) -> None:
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as exc:
        first = str(exc).strip().splitlines()[0]
        raise NeurokdError(f"{where} does not fit this model (classes or topology differ): {first}") from exc


# ---- data --------------------------------------------------------------------------------------
def load_splits(cfg: TrainConfig):
    """The run's dataset: ``neurokd.data.load(dataset, data_dir, seed, **data_options)``."""
    from neurokd.data import load

    try:
        return load(cfg.dataset, cfg.data_dir, cfg.seed, **cfg.data_options)
    except TypeError as exc:
        if "keyword argument" not in str(exc):
            raise
        raise NeurokdError(f"dataset {cfg.dataset!r} does not take data_options {cfg.data_options}: {exc}") from exc


def _tensors(dataset) -> tuple[torch.Tensor, torch.Tensor]:
    if isinstance(dataset, TensorDataset):
        return dataset.tensors[0], dataset.tensors[1]
    if isinstance(dataset, (tuple, list)) and len(dataset) == 2:
        return dataset[0], dataset[1]
    raise TypeError(f"expected a TensorDataset or (inputs, labels), got {type(dataset).__name__}")


def _batches(n: int, batch_size: int, generator: torch.Generator | None) -> list[torch.Tensor]:
    """Index batches of one epoch, shuffled with ``generator`` (None: in order). A last batch of a
    single sample is dropped when shuffling (BatchNorm needs two values per channel)."""
    order = torch.randperm(n, generator=generator) if generator is not None else torch.arange(n)
    out = list(order.split(batch_size))
    if generator is not None and len(out) > 1 and len(out[-1]) == 1:
        out.pop()
    return out


# ---- evaluation --------------------------------------------------------------------------------
@torch.no_grad()
def predict(model: nn.Module, x: torch.Tensor, device: torch.device | str = "cpu",
            batch_size: int = EVAL_BATCH, counter: ActivityCounter | None = None) -> torch.Tensor:
    """Logits of ``model`` (eval mode) for inputs ``x``, on CPU; a student's spikes go to ``counter``."""
    device = torch.device(device)
    was_training = model.training
    model.eval()
    out = []
    try:
        for i in range(0, len(x), batch_size):
            xb = x[i:i + batch_size].to(device)
            if hasattr(model, "run"):
                logits, spikes, _ = model.run(xb)
                if counter is not None:
                    counter.update(spikes)
            else:
                logits = model(xb)
            out.append(logits.float().cpu())
    finally:
        model.train(was_training)
    return torch.cat(out) if out else torch.empty(0)


def evaluate(model: nn.Module, dataset, device: torch.device | str = "cpu", batch_size: int = EVAL_BATCH) -> dict:
    """Accuracy of ``model`` on ``dataset`` (a ``TensorDataset`` or ``(inputs, labels)``) and, for a
    student, its activity (one :class:`ActivityCounter` over the whole set).

    Returns ``{"accuracy", "samples"}`` plus, for a student, ``"activity": {"total", "per_layer"}``,
    ``"spikes_per_sample"``, ``"spikes_per_sample_per_layer"``, ``"neurons_per_layer"``.
    """
    x, y = distributed.eval_shard(*_tensors(dataset))  # with W processes: this rank's 1/W, summed below
    counter = ActivityCounter() if hasattr(model, "run") else None
    logits = predict(model, x, device, batch_size, counter)
    correct, samples = int((logits.argmax(1) == y).sum()), len(y)
    if distributed.world_size() > 1:
        correct, samples = (int(v) for v in distributed.sum_over_ranks(correct, samples))
        distributed.reduce_counter(counter)
    result = {"accuracy": correct / samples if samples else 0.0, "samples": samples}
    if counter is not None:
        rep = counter.report()
        result.update({k: rep[k] for k in ("activity", "spikes_per_sample", "spikes_per_sample_per_layer",
                                           "neurons_per_layer")})
    return result


@torch.no_grad()
def input_report(student: nn.Module, dataset, device: torch.device | str = "cpu") -> dict | None:
    """A ``bias`` / ``spikes`` student's input layer / host encoder on ``dataset``: its deploy metadata (the
    effective full scale among it), the learnt gain ``input_gain = exp(log_gain)``, and its spikes: per sample
    (``spikes_per_sample``, the first synapses' input events) and per input value and step (``rate``). None for a
    student without one (graded input)."""
    enc = getattr(student, "encoder", None)
    if enc is None:
        return None
    x = _tensors(dataset)[0]
    steps, total = int(student.timesteps), 0.0
    for i in range(0, len(x), EVAL_BATCH):
        total += float(enc(x[i:i + EVAL_BATCH].to(device), steps).double().sum())
    per_sample = total / len(x) if len(x) else 0.0
    values = int(torch.tensor(x.shape[1:]).prod()) if x.dim() > 1 else 1
    return {**enc.metadata(), "input_gain": float(torch.exp(enc.log_gain.detach().double())),
            "spikes_per_sample": per_sample, "rate": per_sample / (values * steps)}


# ---- optimisation ------------------------------------------------------------------------------
def make_optimizer(cfg: TrainConfig, model: nn.Module, lr: float | None = None) -> torch.optim.Optimizer:
    params = [p for p in model.parameters() if p.requires_grad]
    lr = cfg.lr if lr is None else lr
    if cfg.optimizer == "sgd":
        return torch.optim.SGD(params, lr=lr, momentum=0.9, weight_decay=cfg.weight_decay)
    return torch.optim.Adam(params, lr=lr, weight_decay=cfg.weight_decay)


def make_scheduler(cfg: TrainConfig, opt: torch.optim.Optimizer, epochs: int):
    """Per-epoch schedule: cosine to 0 over ``epochs``, step (x0.1 every third of the run), or none."""
    if cfg.schedule == "cosine":
        return torch.optim.lr_scheduler.CosineAnnealingLR(opt, T_max=epochs)
    if cfg.schedule == "step":
        return torch.optim.lr_scheduler.StepLR(opt, step_size=max(1, epochs // 3), gamma=0.1)
    return None


class _Fit:
    """What one training loop needs: the model, its loss on a batch, and the settings of the loop."""

    def __init__(self, cfg: TrainConfig, model: nn.Module, device: torch.device, epochs: int, label: str,
                 batch_loss: Callable, splits, shuffle_seed: int, progress: bool) -> None:
        self.cfg, self.model, self.device, self.epochs, self.label = cfg, model, device, epochs, label
        self.batch_loss, self.splits, self.progress = batch_loss, splits, progress and distributed.is_main()
        self.opt = make_optimizer(cfg, model)
        self.sched = make_scheduler(cfg, self.opt, epochs)
        self.amp = bool(cfg.amp and device.type == "cuda")
        self.scaler = torch.amp.GradScaler(device.type, enabled=self.amp)
        self.generators = {"shuffle": torch.Generator().manual_seed(shuffle_seed),
                           "augment": torch.Generator().manual_seed(shuffle_seed + 1)}
        self.history: list[dict] = []
        self.best = {"epoch": 0, "val_accuracy": -1.0, "val_activity": None, "state": None}
        self.start_epoch = 1
        self.train_seconds = 0.0

    # checkpoint -------------------------------------------------------------------------------
    def state(self, epoch: int) -> dict:
        return {"format": CHECKPOINT_FORMAT, "epoch": epoch, "model": self.model.state_dict(),
                "optimizer": self.opt.state_dict(), "scheduler": self.sched.state_dict() if self.sched else {},
                "scaler": self.scaler.state_dict(), "rng": _rng_state(self.generators), "best": self.best,
                "history": self.history, "train_seconds": self.train_seconds, "config": self.cfg.to_dict()}

    def restore(self, ckpt: dict) -> None:
        self.model.load_state_dict(ckpt["model"])
        self.opt.load_state_dict(ckpt["optimizer"])
        if self.sched is not None:
            self.sched.load_state_dict(ckpt["scheduler"])
        if ckpt.get("scaler"):
            self.scaler.load_state_dict(ckpt["scaler"])
        _set_rng_state(ckpt["rng"], self.generators)
        self.best = ckpt["best"]
        self.history = list(ckpt["history"])
        self.train_seconds = float(ckpt["train_seconds"])
        self.start_epoch = int(ckpt["epoch"]) + 1

    # one epoch --------------------------------------------------------------------------------
    def train_epoch(self, data: distributed.TrainingSet, bar) -> dict:
        model, device = self.model, self.device
        model.train()
        counter = ActivityCounter() if hasattr(model, "run") else None
        total_loss_sum = torch.zeros((), dtype=torch.float64, device=device)
        correct = torch.zeros((), dtype=torch.int64, device=device)
        seen = 0
        last_refresh = time.monotonic()
        batches = distributed.usable_batches(_batches(len(data), self.cfg.batch_size, self.generators["shuffle"]))
        for k, idx in enumerate(batches):
            # this process's share of the global batch (all of it with one process), on the device
            xb, yb, eb, n_global = data.batch(idx, self.splits.augment, self.generators["augment"])
            with torch.autocast(device.type, dtype=torch.float16, enabled=self.amp):
                loss, logits, spikes = self.batch_loss(xb, yb, eb)
            self.opt.zero_grad(set_to_none=True)
            weight = distributed.loss_weight(len(yb), n_global)  # None with one process
            self.scaler.scale(loss if weight is None else loss * weight).backward()
            self.scaler.step(self.opt)
            self.scaler.update()
            with torch.no_grad():
                total_loss_sum += loss.detach().double() * len(yb)
                correct += (logits.detach().argmax(1) == yb).sum()
                if counter is not None:
                    counter.update(spikes)
            seen += len(yb)
            if bar is not None and time.monotonic() - last_refresh > 1.0:  # long epochs: show progress within
                last_refresh = time.monotonic()
                post = {"loss": f"{float(total_loss_sum) / seen:.4f}", "acc": f"{int(correct) / seen:.3f}"}
                if counter is not None:
                    post["act"] = f"{counter.total():.3f}"
                bar.set_postfix(post, refresh=False)
                bar.set_description(f"{self.label} [{k + 1}/{len(batches)}]", refresh=True)
        if distributed.world_size() > 1:
            total, hits, seen = distributed.sum_over_ranks(total_loss_sum, correct, seen)
            total_loss_sum, correct, seen = torch.tensor(total, dtype=torch.float64), int(hits), int(seen)
            distributed.reduce_counter(counter)
        return {"loss": float(total_loss_sum) / max(seen, 1), "train_acc": int(correct) / max(seen, 1),
                "train_activity": counter.total() if counter is not None else None}

    def run(self, extra: torch.Tensor | None = None, checkpoint: Path | None = None,
            history_csv: Path | None = None, on_epoch_end: Callable[[int, dict], None] | None = None) -> None:
        """Train from ``start_epoch`` to ``epochs``; keep the best val-accuracy weights in ``self.best``."""
        data = distributed.TrainingSet(*_tensors(self.splits.train), extra, self.device)
        if not distributed.is_main():  # only rank 0 writes the run folder
            checkpoint = history_csv = None
        bar = tqdm(total=self.epochs, initial=self.start_epoch - 1, desc=self.label, disable=not self.progress,
                   leave=False, dynamic_ncols=True)
        try:
            for epoch in range(self.start_epoch, self.epochs + 1):
                t0 = time.perf_counter()
                lr = self.opt.param_groups[0]["lr"]
                row = self.train_epoch(data, bar if self.progress else None)
                if self.device.type == "cuda":
                    torch.cuda.synchronize(self.device)
                row["train_pass_seconds"] = time.perf_counter() - t0
                if self.sched is not None:
                    self.sched.step()
                val = evaluate(self.model, self.splits.val, self.device)
                seconds = time.perf_counter() - t0
                self.train_seconds += seconds
                row = {"epoch": epoch, **row, "val_acc": val["accuracy"],
                       "val_activity": val["activity"]["total"] if "activity" in val else None,
                       "lr": lr, "seconds": seconds}
                self.history.append(row)
                if val["accuracy"] >= self.best["val_accuracy"]:
                    self.best = {"epoch": epoch, "val_accuracy": val["accuracy"], "val_activity": row["val_activity"],
                                 "state": copy.deepcopy(self.model.state_dict())}
                if checkpoint is not None:
                    fileio.save_torch(checkpoint, self.state(epoch))
                if history_csv is not None:
                    write_history(history_csv, self.history)
                bar.set_description(self.label, refresh=False)
                post = {"loss": f"{row['loss']:.4f}", "acc": f"{row['train_acc']:.3f}", "val": f"{val['accuracy']:.3f}"}
                if row["val_activity"] is not None:
                    post["act"] = f"{row['val_activity']:.3f}"
                bar.set_postfix(post, refresh=False)
                bar.update(1)
                if on_epoch_end is not None:
                    on_epoch_end(epoch, row)
        finally:
            bar.close()


def write_history(path: Path, rows: list[dict]) -> None:
    fileio.write_csv(path, HISTORY_COLUMNS, [{k: ("" if r.get(k) is None else r.get(k)) for k in HISTORY_COLUMNS}
                                             for r in rows])


# ---- teacher -----------------------------------------------------------------------------------
def _teacher_loss(teacher: nn.Module):
    def batch_loss(xb, yb, _):
        logits = teacher(xb)
        return nn.functional.cross_entropy(logits.float(), yb), logits, None

    return batch_loss


def fit_teacher(cfg: TrainConfig, splits, device: torch.device, progress: bool = True) -> tuple[nn.Module, dict]:
    """Train the ReLU teacher of ``cfg.model`` with cross-entropy for ``cfg.teacher_epochs``; return it
    with its best-val-epoch weights and ``{"val_accuracy", "best_epoch", "train_seconds"}``."""
    teacher, _ = build_models(cfg, splits.input_shape, splits.num_classes, which="teacher")
    teacher.to(device)
    fit = _Fit(cfg, teacher, device, cfg.teacher_epochs, "teacher", _teacher_loss(distributed.wrap(teacher, device)),
               splits, shuffle_seed=cfg.seed + 7919, progress=progress)
    fit.run()
    teacher.load_state_dict(fit.best["state"])
    teacher.eval()
    return teacher, {"val_accuracy": fit.best["val_accuracy"], "best_epoch": fit.best["epoch"],
                     "train_seconds": fit.train_seconds}


def _teacher_file(source: str | Path) -> tuple[Path, Path | None]:
    """``(teacher.pt, config.toml or None)`` for a run folder or a .pt file."""
    p = Path(source)
    if p.is_dir():
        pt = p / "teacher.pt"
        if not pt.is_file():
            raise NeurokdError(f"--teacher {source}: no teacher.pt in that folder (train a run with a teacher first)")
        cfg = p / "config.toml"
        return pt, cfg if cfg.is_file() else None
    if p.is_file():
        cfg = p.parent / "config.toml"
        return p, cfg if cfg.is_file() else None
    raise NeurokdError(f"--teacher {source}: not found; give 'auto', 'none', or a run folder holding teacher.pt")


def load_teacher(cfg: TrainConfig, splits, source: str | Path, device: torch.device) -> nn.Module:
    """Load a teacher from a run folder, refusing one of another dataset, model, sizes or classes."""
    pt, cfg_file = _teacher_file(source)
    if cfg_file is not None:
        other = load_config(cfg_file)
        for key in ("dataset", "data_options", "model", "model_options"):
            if getattr(other, key) != getattr(cfg, key):
                raise NeurokdError(f"--teacher {source}: its {key} is {getattr(other, key)!r}, this run's is "
                                   f"{getattr(cfg, key)!r}; use a teacher of the same dataset and topology")
        if other.seed != cfg.seed and distributed.is_main():
            tqdm.write(f"neurokd: warning: teacher {source} was trained with seed {other.seed}, this run uses "
                       f"{cfg.seed}; if the split depends on the seed the teacher has seen test samples")
    teacher, _ = build_models(cfg, splits.input_shape, splits.num_classes, which="teacher")
    _load_state(teacher, fileio.load_torch(pt), f"teacher {pt}")
    return teacher.to(device).eval()


def teacher_logits(teacher: nn.Module, x: torch.Tensor, device: torch.device) -> torch.Tensor:
    """The teacher's logits for every input, computed once (eval mode, no grad), on CPU."""
    return predict(teacher, x, device)


def train_teacher_run(cfg: TrainConfig, out: str | Path, progress: bool = True, splits=None) -> dict:
    """A teacher-only run folder (config.toml, teacher.pt, teacher_metrics.json) that students can
    share with ``--teacher <out>``. Skipped if ``teacher.pt`` is already there."""
    import json

    out = Path(out)
    metrics_path = out / "teacher_metrics.json"
    device = distributed.setup(resolve_device(cfg.device))
    done = distributed.on_rank0(lambda: json.loads(metrics_path.read_text())
                                if (out / "teacher.pt").is_file() and metrics_path.is_file() else None)
    if done is not None:
        return done
    if splits is None:
        with distributed.local_leaders_first():
            splits = load_splits(cfg)
    with deterministic(device):
        teacher, info = fit_teacher(cfg, splits, device, progress)
    test = evaluate(teacher, splits.test, device)
    main = distributed.is_main()
    if main:
        cfg.replace(out=str(out), teacher="auto").save(out / "config.toml")
        fileio.save_torch(out / "teacher.pt", teacher.state_dict())
    metrics = {"dataset": cfg.dataset, "model": cfg.model, "seed": cfg.seed,
               "teacher_test_accuracy": test["accuracy"], "teacher_val_accuracy": info["val_accuracy"],
               "teacher_best_epoch": info["best_epoch"], "teacher_epochs": cfg.teacher_epochs,
               "teacher_train_seconds": info["train_seconds"]}
    if main:
        fileio.write_json(metrics_path, metrics)
    distributed.barrier()  # students on every rank read teacher.pt next
    return metrics


# ---- the whole run -----------------------------------------------------------------------------
def _prepare_out(cfg: TrainConfig, overwrite: bool, resume: bool) -> Path:
    out = Path(cfg.out)
    if out.exists() and not out.is_dir():
        raise NeurokdError(f"--out {out} is a file; give a folder for the run")
    finished = (out / "metrics.json").is_file()
    started = (out / "checkpoint.pt").is_file()
    if (finished or started) and not (overwrite or resume):
        state = "a finished run" if finished else "an unfinished run"
        raise NeurokdError(f"{out} already holds {state}; use --resume to continue it, --overwrite to replace it, "
                           "or another --out")
    if overwrite:
        for name in RUN_FILES + ("teacher_metrics.json",) + EXPORT_FILES:
            (out / name).unlink(missing_ok=True)
        for name in EXPORT_DIRS:            # an older student's Lava run and placement: report would show them
            if (out / name).is_dir():
                shutil.rmtree(out / name)
    out.mkdir(parents=True, exist_ok=True)
    return out


def _check_same_settings(saved: dict, cfg: TrainConfig, out: Path) -> None:
    """A resumed run must keep every setting that changes the result (device/amp/out may change)."""
    now = cfg.to_dict()
    for key in sorted(set(saved) | set(now)):
        if key in ("device", "amp", "out"):
            continue
        # checkpoints older than data_options / a setting of ADDED_SETTINGS: the value they were trained with
        was = saved.get(key, {} if key == "data_options" else ADDED_SETTINGS.get(key))
        if was != now.get(key):
            raise NeurokdError(f"cannot resume {out}: {key} was {was!r}, now {now.get(key)!r}; "
                               "resume with the run's settings (its config.toml) or start a new --out")


def train(cfg: TrainConfig, *, overwrite: bool = False, resume: bool = False, progress: bool = True,
          splits=None, on_epoch_end: Callable[[int, dict], None] | None = None,
          log: Callable[[str], None] | None = None) -> dict:
    """Run ``cfg`` (a resolved, validated :class:`TrainConfig`) into ``cfg.out``; return metrics.json's dict.

    ``resume=True`` continues from ``checkpoint.pt`` (or returns the metrics of a finished run);
    ``overwrite=True`` replaces a run's files. ``splits`` may be passed to avoid reloading data.
    ``on_epoch_end(epoch, history_row)`` is called after each student epoch's checkpoint is written.
    """
    log = log or (lambda msg: tqdm.write(msg))
    cfg = cfg.resolved().validate()
    if cfg.data_dir:
        cfg = cfg.replace(data_dir=str(Path(cfg.data_dir).expanduser().resolve()))
    if cfg.teacher not in ("auto", "none"):
        cfg = cfg.replace(teacher=str(Path(cfg.teacher).expanduser().resolve()))
    from neurokd.models.user import canonical, is_user_model

    if is_user_model(cfg.model):
        cfg = cfg.replace(model=canonical(cfg.model))   # config.toml records the file's absolute path
        if resume:
            from neurokd.models.user import check_trusted

            check_trusted(cfg.model, cfg.out)              # named again, not only read from config.toml
    device = distributed.setup(resolve_device(cfg.device))  # under torchrun: this rank's device, process group open
    if cfg.amp and device.type != "cuda":
        raise NeurokdError(f"--amp needs a CUDA device, and this run's device is {device}; drop --amp")
    main = distributed.is_main()
    if not main:
        log, progress = (lambda msg: None), False
    # rank 0 checks and prepares the folder (its error reaches every rank); then every rank reads it
    out = Path(distributed.on_rank0(lambda: str(_prepare_out(cfg, overwrite, resume))))
    ckpt_path = out / "checkpoint.pt"
    ckpt = None
    if resume and ckpt_path.is_file():
        ckpt = fileio.load_torch(ckpt_path)
        if not isinstance(ckpt, dict) or ckpt.get("format") != CHECKPOINT_FORMAT:
            raise NeurokdError(f"{ckpt_path} is not a neurokd checkpoint of format {CHECKPOINT_FORMAT}")
        _check_same_settings(ckpt["config"], cfg, out)
        if int(ckpt["epoch"]) >= cfg.epochs and (out / "metrics.json").is_file():
            import json

            log(f"neurokd: {out} is already finished ({cfg.epochs} epochs); nothing to resume")
            return json.loads((out / "metrics.json").read_text())

    if splits is None:
        with distributed.local_leaders_first():  # one process per machine fills a feature cache first
            splits = load_splits(cfg)
    if main:
        cfg.save(out / "config.toml")
    use_kd = method_terms(cfg.method)[0]

    with deterministic(device):
        _seed_everything(cfg.seed)
        # teacher: trained here, reused from this folder on resume, or loaded from another run
        teacher, teacher_info = None, {}
        if cfg.teacher == "auto":
            if resume and (out / "teacher.pt").is_file():
                teacher = load_teacher(cfg, splits, out, device)
            else:
                teacher, teacher_info = fit_teacher(cfg, splits, device, progress)
                if main:
                    fileio.save_torch(out / "teacher.pt", teacher.state_dict())
        elif cfg.teacher != "none":
            teacher = load_teacher(cfg, splits, cfg.teacher, device)
            if main:
                fileio.save_torch(out / "teacher.pt", teacher.state_dict())
            teacher_info = {"source": cfg.teacher}

        cached = None
        if use_kd and splits.augment is None:  # computed on rank 0, broadcast to the others
            x_train = _tensors(splits.train)[0]
            logits_t = distributed.broadcast_from_rank0(lambda: teacher_logits(teacher, x_train, device),
                                                        (len(x_train), splits.num_classes), torch.float32)
            # cache per training sample the teacher's soft targets p (C columns) and their entropy H(p)
            p, entropy = soft_targets(logits_t, cfg.temperature)
            cached = torch.cat([p, entropy[:, None]], 1)

        _seed_everything(cfg.seed)  # the student starts the same whatever happened to the teacher
        _, student = build_models(cfg, splits.input_shape, splits.num_classes, which="student")
        if getattr(student, "encoder", None) is not None:   # the input layer's range, from the training split
            student.encoder.set_range(_tensors(splits.train)[0], clip=cfg.input_clip)
            student.encoder.dither = bool(cfg.input_dither)
        student.to(device)
        if is_user_model(cfg.model):
            log(f"neurokd: {student.describe()}")
            if use_kd and cfg.teacher == "auto" and not student.own_teacher:
                from neurokd.models import DEFAULT_MODEL

                log(f"neurokd: the --model function returned no teacher: distilling from neurokd's "
                    f"{DEFAULT_MODEL.get(cfg.dataset, 'mlp')} teacher of {cfg.dataset}")
        if cfg.lambda_input > 0:        # the input gain learns (neurokd.models.encoders), moved by lambda_input * r_in;
            student.encoder.learn_gain()    # before the DDP wrap, which syncs only the parameters it finds trainable
        student_run = distributed.wrap(student, device, "run")  # student.run, or its DDP with W processes

        def batch_loss(xb, yb, cached_b):
            if cfg.lambda_input > 0:
                logits, spikes, _, input_spikes = student_run(xb, with_input=True)
            else:
                (logits, spikes, _), input_spikes = student_run(xb), None
            soft = None
            if use_kd:
                if cached_b is None:  # augmented data: the teacher sees the same augmented batch
                    with torch.no_grad():
                        soft = soft_targets(teacher(xb).float(), cfg.temperature)
                else:
                    soft = (cached_b[:, :-1], cached_b[:, -1])
            loss, _ = total_loss(cfg.method, logits, yb, spikes, teacher_soft=soft, temperature=cfg.temperature,
                                 alpha=cfg.alpha, lambda_act=cfg.lambda_act, lambda_logits=cfg.lambda_logits,
                                 act_norm=cfg.act_norm, logits_norm=cfg.logits_norm,
                                 input_spikes=input_spikes, lambda_input=cfg.lambda_input)
            return loss, logits, spikes

        fit = _Fit(cfg, student, device, cfg.epochs, "student", batch_loss, splits, shuffle_seed=cfg.seed,
                   progress=progress)
        if ckpt is not None:
            fit.restore(ckpt)
            log(f"neurokd: resuming {out} after epoch {fit.start_epoch - 1}/{cfg.epochs}")
        fit.run(cached, ckpt_path, out / "history.csv", on_epoch_end)

        student.load_state_dict(fit.best["state"])
        if main:
            fileio.save_torch(out / "student.pt", student.state_dict())
        test = evaluate(student, splits.test, device)
        teacher_test = evaluate(teacher, splits.test, device)["accuracy"] if teacher is not None else None
        teacher_val = evaluate(teacher, splits.val, device)["accuracy"] if teacher is not None else None

    hist = fit.history
    metrics = {
        "dataset": cfg.dataset, "method": cfg.method, "seed": cfg.seed, "timesteps": cfg.timesteps,
        "test_accuracy": test["accuracy"], "val_accuracy": fit.best["val_accuracy"],
        "teacher_test_accuracy": teacher_test,
        "activity": test["activity"], "spikes_per_sample": test["spikes_per_sample"],
        "epochs": cfg.epochs, "train_seconds": fit.train_seconds,
        # additions to the contract
        "model": cfg.model, "best_epoch": fit.best["epoch"], "teacher_val_accuracy": teacher_val,
        "teacher_train_seconds": teacher_info.get("train_seconds"),
        "epoch_seconds_mean": (sum(r["seconds"] for r in hist) / len(hist)) if hist else None,
        "spikes_per_sample_per_layer": test["spikes_per_sample_per_layer"],
        "neurons_per_layer": test["neurons_per_layer"], "test_samples": test["samples"],
        "device": str(device), "teacher": cfg.teacher,
        "input_shape": list(splits.input_shape), "num_classes": splits.num_classes,
        "input_mode": cfg.input_mode,
    }
    if getattr(student, "encoder", None) is not None:       # on the test split, as the LIF layers' activity
        metrics["input_encoder"] = input_report(student, splits.test, device)
    if distributed.world_size() > 1:
        metrics["processes"] = distributed.world_size()
    if main:
        fileio.write_json(out / "metrics.json", metrics)
    distributed.barrier()  # the run folder is complete before any rank goes on
    return metrics


# ---- reading a run back ------------------------------------------------------------------------
def load_run(run_dir: str | Path, with_data: bool = True, device: str | torch.device = "cpu"):
    """Rebuild a trained run: ``(config, student, teacher, splits)``.

    ``config`` is the run's :class:`TrainConfig` (from ``config.toml``); ``student`` the
    :class:`~neurokd.models.base.Student` with ``student.pt`` loaded (best epoch), in eval mode;
    ``teacher`` the :class:`~neurokd.models.base.Teacher` with ``teacher.pt`` or ``None`` if the run
    has none; ``splits`` the dataset exactly as split for training (``None`` with
    ``with_data=False``). Everything is on ``device`` (CPU by default). Errors name the missing file.
    """
    run = Path(run_dir)
    if not run.is_dir():
        raise NeurokdError(f"run folder not found: {run} (train one with `neurokd train --out {run}`)")
    if not (run / "config.toml").is_file():
        raise NeurokdError(f"{run} is not a neurokd run folder: config.toml is missing")
    if not (run / "student.pt").is_file():
        raise NeurokdError(f"{run} has no student.pt: the run did not finish (use `neurokd train --out {run} --resume`)")
    cfg = load_config(run / "config.toml")
    from neurokd.models.user import check_trusted, is_user_model

    if is_user_model(cfg.model):
        cfg = cfg.replace(model=check_trusted(cfg.model, run))    # a run folder never runs code by itself
    splits = load_splits(cfg) if with_data else None
    if splits is not None:
        input_shape, num_classes = splits.input_shape, splits.num_classes
    else:
        input_shape, num_classes = _shapes_from_metrics(run)
    teacher, student = build_models(cfg, input_shape, num_classes)
    _load_state(student, fileio.load_torch(run / "student.pt"), f"{run / 'student.pt'}")
    student.to(device).eval()
    if (run / "teacher.pt").is_file():
        _load_state(teacher, fileio.load_torch(run / "teacher.pt"), f"{run / 'teacher.pt'}")
        teacher.to(device).eval()
    else:
        teacher = None
    return cfg, student, teacher, splits


def _shapes_from_metrics(run: Path) -> tuple[tuple[int, ...], int]:
    """Input shape and classes recorded in metrics.json (for rebuilding a model without its data)."""
    import json

    path = run / "metrics.json"
    metrics = json.loads(path.read_text()) if path.is_file() else {}
    if "input_shape" not in metrics or "num_classes" not in metrics:
        raise NeurokdError(f"{path} does not record input_shape/num_classes; load the run with its data "
                           "(with_data=True)")
    return tuple(int(d) for d in metrics["input_shape"]), int(metrics["num_classes"])


def eval_run(run_dir: str | Path, device: str = "auto") -> dict:
    """Re-evaluate a run's student (and teacher) on the test split; rewrite metrics.json's test numbers."""
    import json

    run = Path(run_dir)
    dev = resolve_device(device)
    cfg, student, teacher, splits = load_run(run, device=dev)
    test = evaluate(student, splits.test, dev)
    metrics_path = run / "metrics.json"
    metrics = json.loads(metrics_path.read_text()) if metrics_path.is_file() else {
        "dataset": cfg.dataset, "method": cfg.method, "seed": cfg.seed, "timesteps": cfg.timesteps,
        "epochs": cfg.epochs, "model": cfg.model}
    metrics.update({
        "test_accuracy": test["accuracy"], "activity": test["activity"], "spikes_per_sample": test["spikes_per_sample"],
        "spikes_per_sample_per_layer": test["spikes_per_sample_per_layer"],
        "neurons_per_layer": test["neurons_per_layer"], "test_samples": test["samples"],
        "input_shape": list(splits.input_shape), "num_classes": splits.num_classes,
        "teacher_test_accuracy": evaluate(teacher, splits.test, dev)["accuracy"] if teacher is not None else None,
    })
    if getattr(student, "encoder", None) is not None:
        metrics["input_encoder"] = input_report(student, splits.test, dev)
    metrics.setdefault("val_accuracy", None)
    metrics.setdefault("train_seconds", None)
    fileio.write_json(metrics_path, metrics)
    return metrics


def summary_lines(metrics: dict, out: str | Path) -> list[str]:
    """A short human summary of a run's metrics."""
    pct = lambda v: "n/a" if v is None else f"{100 * v:.2f} %"  # noqa: E731
    act = metrics["activity"]
    layers = ", ".join(f"{k} {v:.4f}" for k, v in act["per_layer"].items())
    lines = [
        f"run            {out}",
        f"dataset        {metrics['dataset']}  model {metrics.get('model')}  method {metrics['method']}  "
        f"seed {metrics['seed']}  T {metrics['timesteps']}",
        f"teacher (ANN)  test accuracy {pct(metrics.get('teacher_test_accuracy'))}",
        f"student (SNN)  test accuracy {pct(metrics['test_accuracy'])}  (val {pct(metrics.get('val_accuracy'))}, "
        f"best epoch {metrics.get('best_epoch')}/{metrics.get('epochs')})",
        f"activity       {act['total']:.4f} spikes per neuron per time step (pooled); per layer: {layers}",
        f"spikes         {metrics['spikes_per_sample']:.1f} per sample",
    ]
    enc = metrics.get("input_encoder") or {}
    if "spikes_per_sample" in enc:
        lines.append(f"input          {enc['input_mode']}: {enc['spikes_per_sample']:.1f} spikes per sample "
                     f"({enc['rate']:.4f} per input per step), full scale {enc['input_full_scale']:.6g} "
                     f"(gain {enc['input_gain']:.4g})")
    if metrics.get("train_seconds") is not None:
        t = metrics.get("teacher_train_seconds")
        lines.append(f"time           student {metrics['train_seconds']:.1f} s" + (f", teacher {t:.1f} s" if t else ""))
    lines.append(f"files          {out}/{{config.toml, teacher.pt, student.pt, metrics.json, history.csv}}")
    return lines


__all__ = ["train", "evaluate", "load_run", "load_splits", "eval_run", "fit_teacher", "load_teacher", "train_teacher_run",
           "build_models", "resolve_device", "predict", "teacher_logits", "summary_lines", "input_report"]
