"""A training run's settings: one dataclass, its defaults per dataset, validation, and its TOML file.

Precedence: the dataclass defaults, then the dataset's defaults (:data:`DATASET_DEFAULTS`, for
every setting left ``None``), then a ``--config FILE.toml``, then the command line.
``config.toml`` in a run folder is the resolved config: every value spelled out, enough to rerun.
"""

from __future__ import annotations

import dataclasses
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import tomli_w

from neurokd.errors import NeurokdError

OPTIMIZERS = ("adam", "sgd")
SCHEDULES = ("cosine", "none", "step")
DEVICES = ("auto", "cpu", "cuda")

# Settings left None take these per-dataset values, chosen by benchmarks/kd_activity.py (its
# entry in benchmarks/README.md has the measured tables). digits: `neurokd train` with no
# arguments runs in well under a minute on 2 CPU cores at ~97-98 % test accuracy.
# - temperature 1: with a fully trained teacher a higher temperature made the digits student copy
#   the teacher's wide logit range and fire MORE (KD alone: +1 % activity at T = 1, +13 % at 4,
#   +25 % at 8); only an under-trained teacher's soft targets lowered it (-2 to -4 %);
# - lambda_logits: PAPER.md's 0.01 lowered digits activity by only ~11 %; 0.5 halves it (kd-lr)
#   at the baseline's accuracy. On the conv nets the first conv layers hold most neurons and the
#   logits penalty mostly quiets the last hidden layer (-9 % pooled on synth-kws at 0.2), so
#   there the activation penalty (lambda_act 0.5, kd-ar-lr) does the work.
METHOD_DEFAULTS: dict[str, Any] = {"temperature": 1.0, "alpha": 0.5, "lambda_act": 0.05, "lambda_logits": 0.2}
# bias / spikes input of standardised MFCCs: the range from the 5-95 % quantiles and a dithered phase in training
# (neurokd/models/encoders.py's docstring has the synth-kws measurements); other inputs keep min..max, no dither
MFCC_INPUT: dict[str, Any] = {"input_clip": 0.05, "input_dither": True}
INPUT_DEFAULTS: dict[str, Any] = {"input_clip": 0.0, "input_dither": False}
DATASET_DEFAULTS: dict[str, dict[str, Any]] = {
    "digits": {"model": "mlp", "timesteps": 4, "epochs": 100, "batch_size": 64, "lr": 1e-3,
               "weight_decay": 1e-4, "teacher_epochs": 100, **METHOD_DEFAULTS, "lambda_logits": 0.5},
    "synth-kws": {"model": "conv1d", "timesteps": 4, "epochs": 60, "batch_size": 64, "lr": 2e-3,
                  "weight_decay": 1e-4, "teacher_epochs": 30, **METHOD_DEFAULTS, "lambda_act": 0.5, **MFCC_INPUT},
    "gsc": {"model": "conv1d", "timesteps": 4, "epochs": 40, "batch_size": 128, "lr": 1e-3,
            "weight_decay": 1e-4, "teacher_epochs": 40, **METHOD_DEFAULTS, "lambda_act": 0.5, **MFCC_INPUT},
    "cifar10": {"model": "vgg", "timesteps": 4, "epochs": 100, "batch_size": 128, "lr": 1e-3,
                "weight_decay": 5e-4, "teacher_epochs": 60, **METHOD_DEFAULTS},
}
#: settings added after run folders were first written: the value a config.toml without them was trained with
ADDED_SETTINGS: dict[str, Any] = {"lambda_input": 0.0, **INPUT_DEFAULTS}
FALLBACK_DEFAULTS = {"model": "mlp", "timesteps": 4, "epochs": 30, "batch_size": 64, "lr": 1e-3,
                     "weight_decay": 0.0, "teacher_epochs": 30, **METHOD_DEFAULTS}


@dataclass
class TrainConfig:
    """Every setting of a run. ``None`` means "the dataset's default" until :meth:`resolved`."""

    dataset: str = "digits"
    data_dir: str | None = None
    data_options: dict = field(default_factory=dict)  # keyword options of the dataset loader, e.g. words = "35"
    model: str | None = None  # a registry name, or the user's FILE.py:FUNCTION / package.module:FUNCTION
    model_options: dict = field(default_factory=dict)  # keyword sizes for the zoo builder, e.g. hidden = [128, 64]
    method: str = "kd-lr"
    timesteps: int | None = None
    epochs: int | None = None
    batch_size: int | None = None
    lr: float | None = None
    weight_decay: float | None = None
    optimizer: str = "adam"
    schedule: str = "cosine"
    temperature: float | None = None
    alpha: float | None = None
    lambda_act: float | None = None
    lambda_logits: float | None = None
    lambda_input: float = 0.0  # weight of the input layer's spike rate in the loss (neurokd.losses.input_rate)
    act_norm: int = 1
    logits_norm: int = 2
    beta: float = 0.5
    threshold: float = 1.0
    learn_beta: bool = False
    learn_threshold: bool = False
    reset: str = "zero"  # LIF reset: "zero" (Loihi's, exportable) or "subtract" (soft reset, training only)
    input_mode: str = "graded"  # how the chip takes the input: graded (Loihi 2 only), bias, spikes (neurokd.models.encoders)
    input_clip: float | None = None  # bias/spikes: fraction of training values clipped at each end of the input range
    input_dither: bool | None = None  # bias/spikes: a random encoder phase in training (augmentation; deploy is fixed)
    teacher: str = "auto"  # "auto" (train one), "none" (methods without KD only), or a run folder with teacher.pt
    teacher_epochs: int | None = None
    seed: int = 0
    device: str = "auto"
    amp: bool = False
    out: str | None = None

    def __post_init__(self) -> None:
        # tuples become lists, as they come back from TOML, so configs compare equal after a round trip
        def plain(v):
            return [plain(x) for x in v] if isinstance(v, (list, tuple)) else v

        for name in ("model_options", "data_options"):
            if isinstance(getattr(self, name), dict):
                setattr(self, name, {str(k): plain(v) for k, v in getattr(self, name).items()})

    # ---- construction -------------------------------------------------------------------------
    @classmethod
    def keys(cls) -> list[str]:
        return [f.name for f in dataclasses.fields(cls)]

    def replace(self, **changes) -> "TrainConfig":
        return dataclasses.replace(self, **changes)

    def resolved(self) -> "TrainConfig":
        """A copy with every ``None`` filled from the dataset defaults, the run folder included."""
        defaults = {**INPUT_DEFAULTS, **DATASET_DEFAULTS.get(self.dataset, FALLBACK_DEFAULTS)}
        if self.input_mode == "graded":     # no input layer: the input settings do not apply
            defaults.update(INPUT_DEFAULTS)
        changes = {k: v for k, v in defaults.items() if getattr(self, k) is None}
        cfg = self.replace(**changes)
        from neurokd.models.user import canonical, is_user_model

        if is_user_model(cfg.model):
            cfg = cfg.replace(model=canonical(cfg.model))   # a user's FILE.py:FUNCTION, its path made absolute
        if cfg.out is None:
            cfg = cfg.replace(out=str(default_out(cfg)))
        return cfg

    # ---- checks -------------------------------------------------------------------------------
    def validate(self) -> "TrainConfig":
        """Raise :class:`NeurokdError` (one line) for any value out of range; return self."""
        from neurokd.data import LOADERS
        from neurokd.losses import METHODS, method_terms
        from neurokd.models import MODELS

        def bad(what: str) -> None:
            raise NeurokdError(what)

        if self.dataset not in LOADERS:
            bad(f"unknown dataset {self.dataset!r}; choose one of: {', '.join(LOADERS)}")
        if self.method not in METHODS:
            bad(f"unknown method {self.method!r}; choose one of: {', '.join(METHODS)}")
        from neurokd.models.user import canonical, is_user_model

        if is_user_model(self.model):
            canonical(self.model)  # FILE.py:FUNCTION or package.module:FUNCTION (imported when the run builds it)
        elif self.model is not None and self.model not in MODELS:
            bad(f"unknown model {self.model!r}; choose one of: {', '.join(sorted(MODELS))}, or your own "
                "FILE.py:FUNCTION / package.module:FUNCTION")
        for name in ("timesteps", "epochs", "batch_size", "teacher_epochs"):
            v = getattr(self, name)
            if v is not None and (isinstance(v, bool) or not isinstance(v, int) or v < 1):
                bad(f"{name.replace('_', '-')} must be an integer >= 1, got {v!r}")
        if self.lr is not None and not self.lr > 0:
            bad(f"lr must be > 0, got {self.lr}")
        if self.weight_decay is not None and self.weight_decay < 0:
            bad(f"weight-decay must be >= 0, got {self.weight_decay}")
        if self.temperature is not None and not self.temperature > 0:
            bad(f"temperature must be > 0, got {self.temperature}")
        if self.alpha is not None and not 0.0 <= self.alpha <= 1.0:
            bad(f"alpha must be in [0, 1], got {self.alpha}")
        for name in ("lambda_act", "lambda_logits"):
            if getattr(self, name) is not None and not getattr(self, name) >= 0:
                bad(f"{name.replace('_', '-')} must be >= 0, got {getattr(self, name)}")
        for name in ("act_norm", "logits_norm"):
            if getattr(self, name) not in (1, 2):
                bad(f"{name.replace('_', '-')} must be 1 or 2, got {getattr(self, name)!r}")
        if not 0.0 <= self.beta <= 1.0:
            bad(f"beta (LIF decay) must be in [0, 1], got {self.beta}")
        if not self.threshold > 0:
            bad(f"threshold must be > 0, got {self.threshold}")
        if self.reset not in ("zero", "subtract"):
            bad(f"reset must be zero or subtract, got {self.reset!r}")
        from neurokd.models.encoders import INPUT_MODES

        if self.input_mode not in INPUT_MODES:
            bad(f"input-mode must be one of {', '.join(INPUT_MODES)}, got {self.input_mode!r}")
        if not (isinstance(self.lambda_input, (int, float)) and not isinstance(self.lambda_input, bool)
                and self.lambda_input >= 0):
            bad(f"lambda-input must be a number >= 0, got {self.lambda_input!r}")
        if self.lambda_input > 0 and self.input_mode == "graded":
            bad(f"--lambda-input {self.lambda_input:g} regularises the input layer's spikes, and --input-mode graded "
                "has no input layer: train with --input-mode bias or spikes, or drop --lambda-input")
        if self.input_clip is not None and not (isinstance(self.input_clip, (int, float))
                                                and not isinstance(self.input_clip, bool) and 0 <= self.input_clip < 0.5):
            bad(f"input-clip must be a fraction in [0, 0.5), got {self.input_clip!r}")
        if self.input_dither is not None and not isinstance(self.input_dither, bool):
            bad(f"input-dither must be true or false, got {self.input_dither!r}")
        if self.input_mode == "graded" and (self.input_clip or self.input_dither):
            bad("--input-clip and --input-dither shape the input layer's spikes, and --input-mode graded has no input "
                "layer: train with --input-mode bias or spikes, or drop them")
        if self.input_mode != "graded" and is_user_model(self.model):
            bad(f"--input-mode {self.input_mode} builds the input layer into one of neurokd's own students; a --model "
                "function's student takes its input as it is written: train it with --input-mode graded")
        if self.optimizer not in OPTIMIZERS:
            bad(f"unknown optimizer {self.optimizer!r}; choose one of: {', '.join(OPTIMIZERS)}")
        if self.schedule not in SCHEDULES:
            bad(f"unknown schedule {self.schedule!r}; choose one of: {', '.join(SCHEDULES)}")
        if not (self.device in DEVICES or str(self.device).startswith("cuda:")):
            bad(f"unknown device {self.device!r}; choose auto, cpu, cuda or cuda:N")
        if self.amp and self.device == "cpu":
            bad("--amp needs a CUDA device (mixed precision is CUDA only); drop --amp or use --device cuda")
        if not isinstance(self.model_options, dict):
            bad(f"model_options must be a table of model sizes, got {self.model_options!r}")
        if not isinstance(self.data_options, dict):
            bad(f"data_options must be a table of dataset options (e.g. words = \"35\"), got {self.data_options!r}")
        if self.teacher == "none" and method_terms(self.method)[0]:
            bad(f"method {self.method!r} distils from a teacher: use --teacher auto or a run folder, not none")
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            bad(f"seed must be an integer >= 0, got {self.seed!r}")
        return self

    # ---- TOML ---------------------------------------------------------------------------------
    def to_dict(self) -> dict[str, Any]:
        """Plain data for TOML/JSON; ``None`` values are left out (TOML has no null)."""
        return {k: v for k, v in dataclasses.asdict(self).items() if v is not None}

    def save(self, path: str | Path) -> None:
        from neurokd.fileio import write_text

        write_text(path, tomli_w.dumps(self.to_dict()))


def _field_types() -> dict[str, tuple[type, ...]]:
    """The value types a TOML key may hold (ints are accepted where floats are expected)."""
    out: dict[str, tuple[type, ...]] = {}
    for f in dataclasses.fields(TrainConfig):
        t = str(f.type)
        if t.startswith("int"):
            out[f.name] = (int,)
        elif t.startswith("float"):
            out[f.name] = (int, float)
        elif t.startswith("bool"):
            out[f.name] = (bool,)
        elif t.startswith("dict"):
            out[f.name] = (dict,)
        else:
            out[f.name] = (str,)
    return out


def read_toml(path: str | Path) -> dict[str, Any]:
    """Read a config file: only keys of :class:`TrainConfig`, each of the right type (else NeurokdError)."""
    path = Path(path)
    if not path.is_file():
        raise NeurokdError(f"config file not found: {path}")
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NeurokdError(f"config file {path} is not valid TOML: {exc}") from exc
    types = _field_types()
    for key, value in data.items():
        if key not in types:
            raise NeurokdError(
                f"config file {path}: unknown key {key!r}; known keys: {', '.join(TrainConfig.keys())}"
            )
        ok = isinstance(value, types[key]) and not (isinstance(value, bool) and bool not in types[key])
        if not ok:
            raise NeurokdError(f"config file {path}: key {key!r} has value {value!r} of the wrong type")
        if types[key] == (int, float):
            data[key] = float(value)
    return data


def make_config(config_file: str | Path | None = None, **overrides) -> TrainConfig:
    """Defaults < ``config_file`` < ``overrides`` (``None`` overrides are ignored); resolved and validated."""
    values: dict[str, Any] = {}
    if config_file is not None:
        values.update(read_toml(config_file))
    unknown = set(overrides) - set(TrainConfig.keys())
    if unknown:
        raise NeurokdError(f"unknown setting(s): {', '.join(sorted(unknown))}")
    values.update({k: v for k, v in overrides.items() if v is not None})
    cfg = TrainConfig(**values)
    cfg.validate()
    return cfg.resolved().validate()


def load_config(path: str | Path) -> TrainConfig:
    """Read a run folder's ``config.toml`` (or any config file) into a resolved :class:`TrainConfig`."""
    return TrainConfig(**read_toml(path)).resolved().validate()


def default_out(cfg: TrainConfig) -> Path:
    """``runs/<dataset>-<method>-s<seed>``."""
    return Path("runs") / f"{cfg.dataset}-{cfg.method}-s{cfg.seed}"
