"""A multi-objective search over a method's loss weights: the accuracy/activity/energy front, shared by workers.

``tune(dataset, method, objectives, space, trials, out)`` is an Optuna study (multi-objective TPE by
default, NSGA-II or random on request) in which every trial is an ordinary neurokd run folder, trained
with :func:`neurokd.training.train` and judged on the **validation split** only::

    out/teacher/                 one teacher for every trial (methods with KD), trained once
    out/trials/trial-0007/       a normal run folder (config.toml, student.pt, metrics.json, history.csv)
                                 + tune_trial.json (the trial's parameters and validation objectives)
    out/reference-baseline/      the baseline (no KD, no regulariser), same schedule
    out/reference-<method>/      the method at its default settings (the hand-set point)
    out/study.journal            the default storage (Optuna journal file) when --storage is not given
    out/pareto.csv               every trial: parameters, objectives, state, on the front or not
    out/front.png / front.pdf    the front with the baseline and the defaults as reference points
    out/tune.json                the study in numbers: trials per state, retries, the front, the knee
    out/report/                  ``neurokd report`` of the front's runs and the references

Objectives (names as given to ``--objectives``; each computed on the whole validation split):

- ``accuracy``: the student's validation accuracy (maximised; the best epoch's weights);
- ``activity``: spikes per neuron per time step, all spiking layers pooled (minimised);
- ``synops``: synaptic operations per inference on the hardware model (minimised);
- ``energy:<model>``: energy per inference (pJ) under an energy model of
  :mod:`neurokd.hardware.cost.energy` (``loihi-events``, formerly ``loihi``, ``loihi-tile``, ``45nm``, ``45nm-int8``; minimised),
  from the events of the network Loihi runs: the student exported to NIR
  (:func:`neurokd.exporters.to_nir.student_to_nir`), read into the hardware IR, quantised for fixed point
  (scales from the training and validation inputs, never the test split) and run by the fast model
  (:func:`neurokd.hardware.engines.fastsim.run_fast`, or Lava with ``engine="lava"``), then counted by
  :mod:`neurokd.hardware.cost.counting` exactly as ``neurokd export`` counts the test split;
- ``energy:<chip>`` / ``latency:<chip>``: energy (pJ, routing included) / latency (us) per inference of the
  student **placed on a chip** (``loihi1``, ``loihi2``, ``loihi1-sanafe``, ``loihi2-fitted`` or a chip ``.toml``;
  minimised), as ``neurokd map`` places and costs a network (:func:`placed_figures`): the input mode the run
  was trained with (``--input-mode``), the pack placer on one chip, the fast engine's per-step spikes and kept
  state on the first ``place_samples`` validation samples (default :data:`PLACE_SAMPLES`; a bounded number, so
  that placing costs little next to training). ``pareto.csv`` gets each trial's ``placed_<chip>_*`` figures
  (cores, latency, energy, accuracy under the mode, samples, mode, bottleneck layer). A name is a chip when it
  is a chip preset or a ``.toml`` file, else a counting model: ``energy:loihi`` and ``energy:loihi-events`` stay
  the counting model (no placement, no routing), ``energy:loihi1`` is the placed energy on chip file loihi1.
  A study whose students take graded input (``--input-mode graded``, the default) with an objective on a chip
  that receives binary spikes only (loihi1) is refused before anything trains: train ``--input-mode spikes``
  or ``bias``, which each trial's student then is on the chip.

Test-set figures are read only for the front and the references, after the search (``test_*``
columns of ``pareto.csv``, the report): the test split never chooses.

The front is the set of finished trials no other finished trial dominates (at least as good in every
objective, better in one). The knee: with each objective scaled to [0, 1] over the front (0 = best
value on the front), the front point nearest the ideal point (0, ..., 0) in Euclidean distance.

Pruning (on validation accuracy, per epoch; Optuna's pruners serve single-objective studies only):
from epoch ``prune_warmup`` on (default: half the epochs; early epochs are noisy), a trial whose
validation accuracy at epoch ``e`` trails the best finished trial's accuracy at epoch ``e`` by more than
``prune_margin`` (a fraction, 0.05 = 5 points) is stopped, once ``prune_min_trials`` trials have
finished. ``prune_margin=None`` never prunes. Pruning on accuracy trims the cheap, inaccurate end of
the front on purpose: students far behind the best are not what a user picks.

Several workers (processes or machines) share one study through its storage (``storage``):

- a journal file (a path, or ``journal:PATH``; the default is ``out/study.journal``): many processes on
  one machine, or on machines that share a filesystem (NFS); Optuna's file lock, no database needed;
- ``sqlite:///PATH.db``: one machine (SQLite's file locking is not safe on network filesystems);
- ``postgresql://...`` / ``mysql+pymysql://...``: a cluster, every worker reaching one database server
  (needs that database's Python driver).

Every worker runs trials until the study holds ``trials`` finished or running ones (``--trials`` is the
study's total, not each worker's). A worker that dies mid-trial stops its heartbeat (every ``heartbeat``
seconds, in the storage); after ``grace`` seconds any worker marks the trial failed and queues a retry
of the same parameters (Optuna's ``RetryHeartbeatStaleTrialCallback``), which resumes the same run folder
from its last epoch checkpoint. Optuna's database storage has the heartbeat built in; for the journal
file neurokd keeps it as a trial attribute (:class:`HeartbeatJournalStorage`).
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import socket
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Callable, Mapping, Sequence

if TYPE_CHECKING:
    import numpy as np

from neurokd import fileio
from neurokd.errors import NeurokdError

#: Settings a space may search: name -> (type, the method term it needs or None; "input": an input layer,
#: ``--input-mode bias`` or ``spikes``, whatever the method).
SPACE_PARAMS: dict[str, tuple[type, str | None]] = {
    "lambda_logits": (float, "lr"), "lambda_act": (float, "ar"), "temperature": (float, "kd"),
    "alpha": (float, "kd"), "timesteps": (int, None), "beta": (float, None), "threshold": (float, None),
    "lambda_input": (float, "input"),
}
ALIASES = {"T": "timesteps", "lambda_logit": "lambda_logits"}
OBJECTIVES = ("accuracy", "activity", "synops", "energy:<model>", "energy:<chip>", "latency:<chip>")
#: validation samples a trial's placed cost (energy:<chip>, latency:<chip>) runs by default
PLACE_SAMPLES = 100
SAMPLERS = ("tpe", "nsga2", "random")
STATE_NAMES = ("COMPLETE", "PRUNED", "FAIL", "RUNNING", "WAITING")
HEARTBEAT_ATTR = "neurokd:heartbeat"
STUDY_ATTR = "neurokd"


# --------------------------------------------------------------------------------------------------
# The search space
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Param:
    """One searched setting: a range ``low..high`` (log-uniform with ``log``; integers for ``timesteps``)."""

    name: str
    low: float
    high: float
    log: bool = False

    @property
    def integer(self) -> bool:
        return SPACE_PARAMS[self.name][0] is int

    def spec(self) -> str:
        """The canonical text, e.g. ``1e-3..1:log`` (what the study stores and compares)."""
        lo, hi = (int(self.low), int(self.high)) if self.integer else (self.low, self.high)
        return f"{lo!r}..{hi!r}" + (":log" if self.log else "")

    def distribution(self):
        from optuna.distributions import FloatDistribution, IntDistribution

        if self.integer:
            return IntDistribution(int(self.low), int(self.high), log=self.log)
        return FloatDistribution(float(self.low), float(self.high), log=self.log)


def _number(text: str, where: str) -> float:
    try:
        value = float(text)
    except ValueError:
        raise NeurokdError(f"{where}: {text!r} is not a number") from None
    if not math.isfinite(value):
        raise NeurokdError(f"{where}: {text!r} is not a finite number")
    return value


def parse_param(name: str, spec: str, method: str | None = None, input_mode: str | None = None) -> Param:
    """``name`` and ``low..high[:log]`` -> :class:`Param`, checked against the settings, the method and (for
    ``lambda_input``) the input mode."""
    from neurokd.config import TrainConfig
    from neurokd.losses import method_terms

    raw = name.strip()
    name = ALIASES.get(raw, raw)
    where = f"--space {raw}"
    if name not in SPACE_PARAMS:
        raise NeurokdError(f"--space: unknown parameter {raw!r}; searchable: {', '.join(SPACE_PARAMS)} (T = timesteps)")
    text = str(spec).strip()
    log = text.endswith(":log")
    if log:
        text = text[: -len(":log")].strip()
    if text.count("..") != 1:
        raise NeurokdError(f"{where}={spec!r}: write a range low..high, optionally :log (e.g. 1e-3..1:log)")
    lo, hi = (_number(t.strip(), where) for t in text.split(".."))
    integer = SPACE_PARAMS[name][0] is int
    if integer and not (lo.is_integer() and hi.is_integer()):
        raise NeurokdError(f"{where}={spec!r}: {name} takes whole numbers")
    if not lo < hi:
        raise NeurokdError(f"{where}={spec!r}: empty range (low must be below high)")
    if log and lo <= 0:
        raise NeurokdError(f"{where}={spec!r}: a :log range needs low > 0")
    needs = SPACE_PARAMS[name][1]
    if needs == "input" and input_mode == "graded":
        raise NeurokdError(f"--space {raw}: {name} regularises the input layer's spikes, and --input-mode graded has "
                           "no input layer: give --input-mode bias or spikes")
    mode = {"input_mode": "spikes"} if needs == "input" else {}    # the number itself, whatever the mode
    for value in (lo, hi):  # the range's ends must be valid settings (alpha and beta in [0, 1], ...)
        try:
            TrainConfig(**{name: int(value) if integer else value}, **mode).validate()
        except NeurokdError as exc:
            raise NeurokdError(f"{where}={spec!r}: {exc}") from None
    if method is not None and needs not in (None, "input"):
        kd, ar, lr = method_terms(method)
        if not {"kd": kd, "ar": ar, "lr": lr}[needs]:
            raise NeurokdError(f"--space {raw}: method {method!r} has no {needs!r} term, so {name} would change nothing; "
                               f"search it with a method that has it (e.g. kd-ar-lr)")
    return Param(name, lo, hi, log)


def parse_space(space: str | Mapping[str, str], method: str | None = None,
                input_mode: str | None = None) -> dict[str, Param]:
    """A space as text (``'lambda_act=1e-3..1:log; temperature=1..8'``) or a mapping name -> spec."""
    if isinstance(space, Mapping):
        items = [(str(k), str(v)) for k, v in space.items()]
    else:
        items = []
        for part in str(space).replace("\n", ";").split(";"):
            if not part.strip():
                continue
            if "=" not in part:
                raise NeurokdError(f"--space: {part.strip()!r} is not name=low..high (e.g. lambda_act=1e-3..1:log)")
            k, v = part.split("=", 1)
            items.append((k, v))
    if not items:
        raise NeurokdError("--space is empty; give e.g. 'lambda_logits=1e-3..1:log; lambda_act=1e-3..1:log'")
    out: dict[str, Param] = {}
    for k, v in items:
        p = parse_param(k, v, method, input_mode)
        if p.name in out:
            raise NeurokdError(f"--space names {p.name} twice")
        out[p.name] = p
    return out


def read_space_file(path: str | Path) -> tuple[dict[str, str], list[str] | None]:
    """A TOML file with a ``[space]`` table (name = "low..high[:log]") and optionally ``objectives``."""
    import tomllib

    path = Path(path)
    try:
        data = tomllib.loads(path.read_text(encoding="utf-8"))
    except (OSError, tomllib.TOMLDecodeError, UnicodeDecodeError) as exc:
        raise NeurokdError(f"--space {path}: cannot read it as TOML ({exc})") from None
    unknown = set(data) - {"space", "objectives"}
    if unknown or not isinstance(data.get("space"), dict):
        raise NeurokdError(f"--space {path}: expected a [space] table (name = \"low..high\") and optionally "
                           f"objectives = [...]; found keys {sorted(data)}")
    objectives = data.get("objectives")
    if objectives is not None and not (isinstance(objectives, list) and all(isinstance(o, str) for o in objectives)):
        raise NeurokdError(f"--space {path}: objectives must be a list of names, got {objectives!r}")
    return {str(k): str(v) for k, v in data["space"].items()}, objectives


# --------------------------------------------------------------------------------------------------
# Objectives
# --------------------------------------------------------------------------------------------------

@dataclass(frozen=True)
class Objective:
    """One objective: ``accuracy`` (maximised), ``activity``, ``synops``, ``energy:<model>`` (counted),
    ``energy:<chip>`` or ``latency:<chip>`` (placed on the chip; all minimised)."""

    name: str

    @property
    def direction(self) -> str:
        return "maximize" if self.name == "accuracy" else "minimize"

    @property
    def chip(self) -> str | None:
        """``energy:<chip>`` / ``latency:<chip>``: the chip preset or ``.toml`` file the student is placed on."""
        kind, _, what = self.name.partition(":")
        if kind == "latency" or (kind == "energy" and is_chip(what)):
            return what
        return None

    @property
    def energy_model(self) -> str | None:
        """``energy:<model>``: the counting energy model (:mod:`neurokd.hardware.cost.energy`); None for a chip."""
        return self.name.split(":", 1)[1] if self.name.startswith("energy:") and self.chip is None else None

    @property
    def hardware(self) -> bool:
        """Needs the network's events counted on the hardware model (counted energy, SynOps)."""
        return self.name == "synops" or self.energy_model is not None

    @property
    def is_energy(self) -> bool:
        return self.name.startswith("energy:")

    @property
    def column(self) -> str:
        if self.chip is not None:
            kind = self.name.split(":", 1)[0]
            return f"val_{kind}_{chip_key(self.chip)}_" + ("pj" if kind == "energy" else "us")
        return "val_" + self.name.replace(":", "_") + ("_pj" if self.energy_model else "")

    @property
    def label(self) -> str:
        if self.name == "accuracy":
            return "Validation accuracy (%)"
        if self.name == "activity":
            return "Validation activity (spikes / neuron / step)"
        if self.name == "synops":
            return "SynOps per inference (validation)"
        if self.chip is not None:
            what = "Energy (nJ)" if self.is_energy else "Latency (us)"
            return f"{what} per inference on {chip_key(self.chip)} (placed, validation)"
        return f"Energy per inference (nJ, {self.energy_model} model, validation)"


def is_chip(name: str) -> bool:
    """Whether ``name`` names a chip (a preset of :mod:`neurokd.hardware.placement.chips` or a ``.toml`` file)
    rather than a counting energy model."""
    from neurokd.hardware.placement.chips import preset_names

    return name in preset_names() or name.endswith(".toml")


def chip_key(chip: str) -> str:
    """A chip's name in column names: the preset name, or the chip file's stem."""
    return Path(chip).stem if chip.endswith(".toml") else chip


def parse_objectives(text: str | Sequence[str]) -> list[Objective]:
    """``'accuracy,energy:loihi1'`` -> objectives (one to three, each once). ``energy:<name>`` is the placed
    energy on a chip when ``name`` is a chip (``loihi1``, ``loihi2``, ``loihi1-sanafe``, ``loihi2-fitted`` or a
    chip ``.toml``), else a counting model (``loihi-events``, its former name ``loihi``, ...)."""
    from neurokd.hardware.cost.energy import ALIASES, ENERGY_MODELS
    from neurokd.hardware.placement import load_chip
    from neurokd.hardware.placement.chips import preset_names

    names = [t.strip() for t in (text.split(",") if isinstance(text, str) else text) if t.strip()]
    if not 1 <= len(names) <= 3:
        raise NeurokdError(f"--objectives: give one to three of {', '.join(OBJECTIVES)}, got {text!r}")
    out = []
    for name in names:
        kind, _, what = name.partition(":")
        if kind in ("energy", "latency") and is_chip(what):
            try:
                load_chip(what)
            except NeurokdError as exc:
                raise NeurokdError(f"--objectives {name}: {exc}") from None
        elif kind == "energy":
            if ALIASES.get(what, what) not in ENERGY_MODELS:
                raise NeurokdError(f"--objectives {name}: name a chip (energy:<chip>, placed: "
                                   + ", ".join(preset_names()) + " or a chip .toml) or a counting energy model ("
                                   + ", ".join(ENERGY_MODELS) + ")")
        elif kind == "latency":
            raise NeurokdError(f"--objectives {name}: name a chip, latency:<chip> with chip one of "
                               + ", ".join(preset_names()) + " or a chip .toml")
        elif name not in ("accuracy", "activity", "synops"):
            raise NeurokdError(f"--objectives: unknown objective {name!r}; choose from {', '.join(OBJECTIVES)}")
        if any(o.name == name for o in out):
            raise NeurokdError(f"--objectives names {name} twice")
        out.append(Objective(name))
    return out


def lava_available() -> bool:
    """Whether Lava (lava-nc) can be imported here (:func:`neurokd.hardware.lava_compat.missing`)."""
    from neurokd.hardware.lava_compat import missing

    return missing("lava.magma") is None


# --------------------------------------------------------------------------------------------------
# Storage: a journal file (with neurokd's heartbeat), SQLite, or a database server
# --------------------------------------------------------------------------------------------------

def _heartbeat_journal_class():
    """:class:`HeartbeatJournalStorage`, built on first use (Optuna is imported lazily)."""
    from optuna.storages import JournalStorage
    from optuna.storages._heartbeat import BaseHeartbeat  # the interface Optuna's own RDBStorage implements
    from optuna.trial import TrialState

    class HeartbeatJournalStorage(JournalStorage, BaseHeartbeat):
        """Optuna's journal storage with a heartbeat: the trial's worker writes the time into the trial
        every ``heartbeat_interval`` seconds; a RUNNING trial whose last beat is older than
        ``grace_period`` seconds is stale (its worker died), as in Optuna's RDBStorage."""

        def __init__(self, backend, heartbeat_interval: int, grace_period: int, stale_callback=None) -> None:
            super().__init__(backend)
            self.heartbeat_interval = int(heartbeat_interval)
            self.grace_period = int(grace_period)
            self._stale_callback = stale_callback

        def record_heartbeat(self, trial_id: int) -> None:
            self.set_trial_system_attr(trial_id, HEARTBEAT_ATTR, time.time())

        def _get_stale_trial_ids(self, study_id: int) -> list[int]:
            now = time.time()
            return [t._trial_id for t in self.get_all_trials(study_id, deepcopy=False, states=(TrialState.RUNNING,))
                    if HEARTBEAT_ATTR in t.system_attrs and now - float(t.system_attrs[HEARTBEAT_ATTR]) > self.grace_period]

        def get_heartbeat_interval(self) -> int | None:
            return self.heartbeat_interval

        def get_heartbeat_stale_trial_callback(self):
            return self._stale_callback

    return HeartbeatJournalStorage


#: what a database says when two workers create one study's schema at the same moment (retried)
_SCHEMA_RACE = ("already exists", "UNIQUE constraint failed", "database is locked", "duplicate key")


def open_storage(url: str | None, out: Path, heartbeat: int = 30, grace: int | None = None, max_retry: int = 3):
    """The study's storage: ``None`` (``out/study.journal``), a journal file path (or ``journal:PATH``),
    or an SQLAlchemy database URL (``sqlite:///x.db``, ``postgresql://...``). Unreachable: NeurokdError."""
    from optuna.exceptions import ExperimentalWarning
    from optuna.storages import RDBStorage, RetryHeartbeatStaleTrialCallback
    from optuna.storages.journal import JournalFileBackend

    if not (isinstance(heartbeat, int) and heartbeat >= 1):
        raise NeurokdError(f"--heartbeat must be a whole number of seconds >= 1, got {heartbeat!r}")
    grace = int(grace) if grace is not None else 4 * heartbeat
    if grace <= heartbeat:
        raise NeurokdError(f"--grace ({grace} s) must be longer than --heartbeat ({heartbeat} s)")
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", ExperimentalWarning)
        retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
        if url is None or url.startswith("journal:") or "://" not in url:
            path = Path(url[len("journal:"):] if url and url.startswith("journal:") else (url or out / "study.journal"))
            if not path.parent.is_dir():
                raise NeurokdError(f"--storage {url or path}: folder {path.parent} does not exist")
            try:
                backend = JournalFileBackend(str(path))
            except OSError as exc:
                raise NeurokdError(f"--storage {url or path}: cannot open the journal file ({exc.strerror or exc})") from None
            return _heartbeat_journal_class()(backend, heartbeat, grace, retry)
        for attempt in range(5):
            try:
                return RDBStorage(url, heartbeat_interval=heartbeat, grace_period=grace,
                                  heartbeat_stale_trial_callback=retry,
                                  engine_kwargs={"pool_pre_ping": True} if not url.startswith("sqlite") else None)
            except ModuleNotFoundError as exc:
                raise NeurokdError(f"--storage {_safe_url(url)}: needs the database driver {exc.name!r} "
                                   f"(pip install it), or use a journal file / sqlite:///PATH.db") from None
            except Exception as exc:  # noqa: BLE001  (SQLAlchemy raises many kinds: all mean "cannot reach it")
                reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
                # workers starting together both create the tables and stamp the schema version (SQLite:
                # "already exists", "UNIQUE constraint failed: alembic_version", "database is locked")
                if attempt < 4 and any(m in reason for m in _SCHEMA_RACE):
                    time.sleep(0.5 * (attempt + 1))
                    continue
                raise NeurokdError(f"--storage {_safe_url(url)}: cannot open the study storage ({reason[:200]})") from None


def _safe_url(url: str) -> str:
    """The URL without its password, for messages."""
    if "@" in url and "://" in url:
        scheme, rest = url.split("://", 1)
        creds, host = rest.rsplit("@", 1)
        return f"{scheme}://{creds.split(':', 1)[0]}:***@{host}" if ":" in creds else url
    return url


# --------------------------------------------------------------------------------------------------
# Fronts, the knee, pruning (plain functions of numbers)
# --------------------------------------------------------------------------------------------------

def _as_min(values: Sequence[float], directions: Sequence[str]) -> list[float]:
    return [-v if d == "maximize" else v for v, d in zip(values, directions)]


def dominates(a: Sequence[float], b: Sequence[float], directions: Sequence[str]) -> bool:
    """``a`` is at least as good as ``b`` in every objective and better in one."""
    a, b = _as_min(a, directions), _as_min(b, directions)
    return all(x <= y for x, y in zip(a, b)) and any(x < y for x, y in zip(a, b))


def non_dominated(points: Sequence[Sequence[float]], directions: Sequence[str]) -> list[bool]:
    """For each point: True when no other point dominates it (the front)."""
    return [not any(dominates(q, p, directions) for j, q in enumerate(points) if j != i) for i, p in enumerate(points)]


def knee(points: Sequence[Sequence[float]], directions: Sequence[str]) -> int:
    """Index of the front point nearest the ideal point after scaling each objective to [0, 1] over the
    front (0 = the front's best value): ``argmin_i sqrt(sum_k ((f_ik - best_k) / (worst_k - best_k))^2)``."""
    if not points:
        raise ValueError("no points")
    m = [_as_min(p, directions) for p in points]
    lo = [min(col) for col in zip(*m)]
    hi = [max(col) for col in zip(*m)]
    dist = [math.sqrt(sum(((v - l) / (h - l) if h > l else 0.0) ** 2 for v, l, h in zip(p, lo, hi))) for p in m]
    return min(range(len(points)), key=lambda i: (dist[i], i))


def should_prune(curve: Sequence[float], finished: Sequence[Sequence[float]], margin: float | None,
                 warmup: int, min_trials: int, epochs: int) -> bool:
    """Stop a trial after epoch ``e = len(curve)`` when ``curve[e-1] < max_f f[e-1] - margin`` over the
    finished trials' validation-accuracy curves ``f`` that reached epoch ``e``; never before epoch
    ``warmup``, at the last epoch, or with fewer than ``min_trials`` such curves."""
    e = len(curve)
    if margin is None or e < max(1, warmup) or e >= epochs:
        return False
    ref = [float(f[e - 1]) for f in finished if len(f) >= e]
    return len(ref) >= max(1, min_trials) and float(curve[-1]) < max(ref) - margin


# --------------------------------------------------------------------------------------------------
# Judging one run on the validation split (and, for the front, on the test split)
# --------------------------------------------------------------------------------------------------

PLACED_FIGURES = ("cores", "latency_us", "energy_pj", "accuracy", "samples", "input_mode", "bottleneck")


def placed_figures(network, x: np.ndarray, y, timesteps: int, chips: Sequence[str], *, precision: str = "fixed",
                   ) -> dict[str, Any]:
    """``network`` placed on each chip and costed as ``neurokd map`` does
    (:func:`neurokd.deploy.map_target`): the input mode the student was trained with (a graded student on a
    chip without graded spikes is refused), the pack placer on one chip, the fast engine's per-step spikes
    and kept state on the samples ``x`` (fixed-point scales from those inputs, as ``map`` takes them from its
    samples). Per chip ``placed_<chip>_<figure>`` for :data:`PLACED_FIGURES`, and the seconds the engine and
    the placement with its costing took (``..._engine_s``, ``..._place_s``)."""
    from neurokd.deploy import _encode_input, _input_mode, _mode_accuracy
    from neurokd.hardware.engines.fastsim import run_fast
    from neurokd.hardware.placement import load_chip, place_and_cost

    out: dict[str, Any] = {}
    for spec in chips:
        chip = load_chip(spec)
        mode = _input_mode(None, chip, network, x)
        inputs, layer, charge = _encode_input(network, x, mode, chip, timesteps)
        t0 = time.perf_counter()
        result = run_fast(network, inputs, precision=precision, timesteps=None if inputs is not x else timesteps,
                          record_steps=True, record_state=True)
        t1 = time.perf_counter()
        _mode_accuracy(charge, result, y)
        mapped = place_and_cost(network, chip, result=result, inputs=inputs, placer="pack", max_chips=1,
                                input_charge=charge, input_layer=layer)
        t2 = time.perf_counter()
        c, b = mapped.cost, mapped.cost.bottleneck()
        key = f"placed_{chip_key(spec)}_"
        out.update({key + "cores": int(mapped.placement.n_cores), key + "latency_us": float(c.latency_ns / 1e3),
                    key + "energy_pj": float(c.energy_pj), key + "accuracy": charge.accuracy,
                    key + "samples": int(c.samples), key + "input_mode": charge.mode,
                    key + "bottleneck": f"{b['layer']} ({b['bound']})", key + "engine_s": t1 - t0,
                    key + "place_s": t2 - t1})
    return out


def evaluate_run(run_dir: str | Path, objectives: Sequence[Objective], *, precision: str = "fixed",
                 engine: str = "fast", input_bits: int = 8, dt: float = 1e-4,
                 place_samples: int = PLACE_SAMPLES) -> dict[str, float]:
    """The objectives of a finished run on its **validation** split, plus ``val_samples`` and, when the
    hardware model ran, ``val_accuracy_hw`` (the hardware model's own validation accuracy). Objectives on a
    chip (``energy:<chip>``, ``latency:<chip>``) place the student on it and cost the first ``place_samples``
    validation samples (:func:`placed_figures`; always the fast engine), and add the placement's figures."""
    import numpy as np

    from neurokd.training import evaluate, load_run

    cfg, student, _, splits = load_run(run_dir)
    val = evaluate(student, splits.val)
    out = {"val_samples": int(val["samples"]), "val_accuracy": float(val["accuracy"]),
           "val_activity": float(val["activity"]["total"])}
    chips = list(dict.fromkeys(o.chip for o in objectives if o.chip is not None))
    if chips:
        from neurokd.exporters.to_nir import student_to_nir
        from neurokd.hardware.network import ir

        x_val, y_val = (t.numpy() for t in splits.val.tensors)
        network = ir.from_nir(student_to_nir(student, dt=dt))
        out.update(placed_figures(network, x_val[:place_samples].astype(np.float64), y_val[:place_samples],
                                  int(cfg.timesteps), chips, precision=precision))
        for o in objectives:
            if o.chip is not None:
                out[o.column] = out[f"placed_{chip_key(o.chip)}_" + ("energy_pj" if o.is_energy else "latency_us")]
    if not any(o.hardware for o in objectives):
        return out
    from neurokd.deploy import MAX_STEP_RECORD, run_geometry
    from neurokd.exporters.to_nir import student_to_nir
    from neurokd.hardware.cost.counting import activity_from_lava, count
    from neurokd.hardware.cost.energy import energy
    from neurokd.hardware.network import ir
    from neurokd.hardware.network.quantize import quantize

    network = ir.from_nir(student_to_nir(student, dt=dt))
    x_val, y_val = (t.numpy() for t in splits.val.tensors)
    x_val = x_val.astype(np.float64)
    steps = int(cfg.timesteps)
    from neurokd.deploy import _encode_input, trained_input_mode

    trained = trained_input_mode(network)
    if trained is not None:     # --input-mode bias|spikes: the network behind the input layer, on its spikes (as export)
        from neurokd.hardware.placement import load_chip

        x_val = _encode_input(network, x_val, trained, load_chip("loihi2"), steps)[0]
    fixed = None
    if precision == "fixed":  # scales from training + validation inputs, as export takes training + test
        x_train = splits.train.tensors[0].numpy().astype(np.float64)
        sample = x_val if trained is not None else np.concatenate([x_train, x_val])
        fixed = quantize(network, input_sample=sample, input_bits=input_bits)
    neurons = sum(layer.size for layer in network.layers if layer.neuron.spiking)
    per_step = len(x_val) * steps * neurons <= MAX_STEP_RECORD   # per-step trains count active updates
    if engine == "lava":
        from neurokd.hardware.engines.lava_backend import run_lava

        res = run_lava(network, x_val, precision=precision, timesteps=steps, fixed=fixed, record_steps=per_step,
                       progress=False)
    else:
        from neurokd.hardware.engines.fastsim import run_fast

        res = run_fast(network, x_val, precision=precision, timesteps=steps, fixed=fixed, record_steps=per_step)
    # counted as neurokd.deploy.energy_report_hook counts an export's split
    geometry = run_geometry(network, x_val, res.fixed)
    counts = count(geometry, activity_from_lava(geometry, res, x_val))
    out["val_accuracy_hw"] = float(np.mean(res.predictions == y_val))
    out["val_synops"] = float(counts.total.synops)   # binary-spike SynOps, as the energy report's column
    for o in objectives:
        if o.energy_model is not None:
            out[o.column] = float(energy(counts, o.energy_model).total_pj)
    return out


def objective_values(measured: Mapping[str, float], objectives: Sequence[Objective]) -> list[float]:
    return [float(measured[o.column]) for o in objectives]


def _test_figures(run: Path, objectives: Sequence[Objective]) -> dict[str, float]:
    """Test-split accuracy, activity and energy of an exported run (metrics.json, energy_report.csv)."""
    metrics = json.loads((run / "metrics.json").read_text())
    out = {"test_accuracy": float(metrics["test_accuracy"]), "test_activity": float(metrics["activity"]["total"])}
    report = run / "energy_report.csv"
    if report.is_file():
        with open(report, newline="", encoding="utf-8") as fh:
            rows = [r for r in csv.DictReader(fh) if r["layer"] == "total" and not r["energy_model"].startswith("placed-")]
        from neurokd.hardware.cost.energy import canonical_model

        for o in objectives:
            row = next((r for r in rows if canonical_model(r["energy_model"]) == canonical_model(o.energy_model)), None)
            if row is not None:
                out[f"test_energy_{o.energy_model}_pj"] = float(row["energy_pj_per_sample"])
        if rows:
            out["test_synops"] = float(rows[0]["synops_per_sample"])
    return out


def _export_for_report(run: Path, precision: str, verify: int, echo: Callable[[str], None]) -> None:
    """``neurokd export RUN --target lava --engine fast`` (test split, energy report) unless already done."""
    done = run / ("agreement_fixed.json" if precision == "fixed" else "agreement.json")
    if done.is_file() and (run / "energy_report.csv").is_file() \
            and done.stat().st_mtime >= (run / "student.pt").stat().st_mtime:
        return
    from neurokd.deploy import export_run

    # without Lava, _check_lava has required --verify 0: then the fast engine runs alone (no Lava import)
    export_run(run, target="lava", precision=precision, engine="fast", verify=verify, progress=False,
               echo=lambda msg: None)


# --------------------------------------------------------------------------------------------------
# The study
# --------------------------------------------------------------------------------------------------

@dataclass
class TuneResult:
    """What :func:`tune` left in ``out_dir``: the study, every trial's row, the front and its knee."""

    out_dir: Path
    study_name: str
    storage: str
    rows: list[dict]
    front: list[Path]
    knee: Path | None
    files: dict[str, Path] = field(default_factory=dict)
    summary: dict = field(default_factory=dict)

    def __fspath__(self) -> str:
        return str(self.out_dir)


@contextlib.contextmanager
def _file_lock(path: Path, wait: bool = True):
    """An exclusive lock on ``path`` (fcntl; also across machines on filesystems that support it); yields
    whether it is held (always True with ``wait``; False at once when another process holds it)."""
    import fcntl

    path.parent.mkdir(parents=True, exist_ok=True)
    with open(path, "a") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:
            yield False
            return
        try:
            yield True
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _quiet_optuna() -> None:
    import optuna

    optuna.logging.set_verbosity(optuna.logging.WARNING)
    from optuna.exceptions import ExperimentalWarning

    warnings.filterwarnings("ignore", category=ExperimentalWarning)


def _sampler(name: str, seed: int | None, n_params: int, trials: int):
    import optuna

    if name == "tpe":
        return optuna.samplers.TPESampler(seed=seed, n_startup_trials=max(4, min(10, trials // 4)), multivariate=True)
    if name == "nsga2":
        return optuna.samplers.NSGAIISampler(seed=seed, population_size=max(4, min(50, trials // 4)))
    if name == "random":
        return optuna.samplers.RandomSampler(seed=seed)
    raise NeurokdError(f"--sampler must be one of {', '.join(SAMPLERS)}, got {name!r}")


def _definition(dataset: str, method: str, space: Mapping[str, Param], objectives: Sequence[Objective],
                base: dict, precision: str, engine: str) -> dict:
    """What makes two studies the same study (stored in the study, compared on every join)."""
    fixed = {k: v for k, v in base.items() if k not in ("out", "device", "amp", "teacher", "data_dir")}
    return {"dataset": dataset, "method": method, "space": {k: p.spec() for k, p in space.items()},
            "objectives": [o.name for o in objectives], "precision": precision, "engine": engine,
            "settings": json.loads(json.dumps(fixed))}


def _open_study(storage, name: str, definition: dict | None, directions: list[str] | None, sampler, resume: bool):
    """Create the study, or join it when its stored definition is the same; with ``resume`` take the stored one."""
    import optuna

    try:
        study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    except KeyError:
        if resume:
            raise NeurokdError(f"--resume: no study named {name!r} in the storage; start it without --resume") from None
        if definition is None:
            raise NeurokdError("give --space and --objectives to start a study")
        try:
            study = optuna.create_study(study_name=name, storage=storage, directions=directions, sampler=sampler)
            study.set_user_attr(STUDY_ATTR, definition)
        except optuna.exceptions.DuplicatedStudyError:   # another worker created it a moment ago
            study = optuna.load_study(study_name=name, storage=storage, sampler=sampler)
    stored = None
    for _ in range(50):   # the creating worker writes the definition right after creating the study
        stored = study.user_attrs.get(STUDY_ATTR)
        if stored is not None:
            break
        time.sleep(0.1)
    if stored is None:
        raise NeurokdError(f"study {name!r} in this storage was not made by neurokd tune (no definition); "
                           "give another --study")
    if definition is not None and stored != definition:
        differ = [k for k in sorted(set(stored) | set(definition)) if stored.get(k) != definition.get(k)]
        detail = "; ".join(f"{k}: study has {stored.get(k)!r}, now {definition.get(k)!r}" for k in differ)
        raise NeurokdError(f"study {name!r} already exists with another definition ({detail[:400]}); "
                           "use --resume without --space to continue it as it is, or another --study / --out")
    return study, stored


def _trial_dir(out: Path, number: int) -> Path:
    return out / "trials" / f"trial-{number:04d}"


def _curve_from_history(run: Path) -> list[float]:
    path = run / "history.csv"
    if not path.is_file():
        return []
    with open(path, newline="", encoding="utf-8") as fh:
        return [float(r["val_acc"]) for r in csv.DictReader(fh) if r.get("val_acc") not in (None, "")]


def tune(dataset: str = "digits", method: str = "kd-ar-lr", *, objectives: str | Sequence[str] | None = None,
         space: str | Mapping[str, str] | None = None, trials: int = 20, out: str | Path | None = None,
         storage: str | None = None, study_name: str | None = None, resume: bool = False, sampler: str = "tpe",
         seed: int | None = None, precision: str = "fixed", engine: str = "fast", verify: int = 0,
         prune_margin: float | None = 0.05, prune_warmup: int | None = None, prune_min_trials: int = 2,
         heartbeat: int = 30, grace: int | None = None, max_retry: int = 3, references: bool = True,
         report: bool = True, figures: bool = True, config_file: str | Path | None = None, progress: bool = False,
         echo: Callable[[str], None] = print, place_samples: int = PLACE_SAMPLES, **settings: Any) -> TuneResult:
    """Run (or join, or resume) a study and write its outputs; the work behind ``neurokd tune``."""
    from neurokd.config import TrainConfig, make_config

    t0 = time.perf_counter()
    if isinstance(trials, bool) or not isinstance(trials, int) or trials < 0:
        raise NeurokdError(f"--trials must be an integer >= 0, got {trials!r}")
    if precision not in ("float", "fixed"):
        raise NeurokdError(f"--precision must be float or fixed, got {precision!r}")
    if engine not in ("fast", "lava"):
        raise NeurokdError(f"--engine must be fast or lava, got {engine!r}")
    if not isinstance(verify, int) or verify < 0:
        raise NeurokdError(f"--verify must be an integer >= 0, got {verify!r}")
    if isinstance(place_samples, bool) or not isinstance(place_samples, int) or place_samples < 1:
        raise NeurokdError(f"--place-samples must be an integer >= 1, got {place_samples!r}")
    if prune_margin is not None and not 0 <= prune_margin <= 1:
        raise NeurokdError(f"--prune-margin must be a fraction in [0, 1], got {prune_margin}")
    for key in ("method", "dataset", "out", "teacher", "seed"):
        if settings.get(key) is not None:
            raise NeurokdError(f"tune sets {key} of its runs itself; do not pass it as a training setting")
    settings = {k: v for k, v in settings.items() if v is not None}
    if isinstance(space, (str, Path)) and str(space).strip().endswith(".toml"):
        if not Path(space).is_file():
            raise NeurokdError(f"--space {space}: file not found")
        space, file_objectives = read_space_file(space)
        objectives = objectives or file_objectives
    base_cfg = make_config(config_file, dataset=dataset, method=method, **settings)
    params = parse_space(space, base_cfg.method, base_cfg.input_mode) if space is not None else None
    for name in (params or {}):
        if name in settings:
            raise NeurokdError(f"{name} is both searched (--space) and set (--{name.replace('_', '-')}); choose one")
    objs = parse_objectives(objectives) if objectives is not None else None
    if objs is not None:
        _check_lava(objs, engine, verify)
        _check_deployable(objs, base_cfg)
    if not resume and (params is None or objs is None):
        raise NeurokdError("give --space and --objectives (or --resume to continue an existing study)")

    out = Path(out if out is not None else f"runs/tune-{base_cfg.dataset}-{base_cfg.method}")
    if out.exists() and not out.is_dir():
        raise NeurokdError(f"--out {out} is a file; give a folder for the study")
    out.mkdir(parents=True, exist_ok=True)
    study_name = study_name or out.resolve().name
    _quiet_optuna()
    store = open_storage(storage, out, heartbeat=heartbeat, grace=grace, max_retry=max_retry)
    base = base_cfg.to_dict()
    definition = None
    if params is not None and objs is not None:
        definition = _definition(base_cfg.dataset, base_cfg.method, params, objs, base, precision, engine)
        if any(o.chip is not None for o in objs):
            definition["place_samples"] = place_samples
    smp = _sampler(sampler, seed, len(params or {}), trials)
    study, stored = _open_study(store, study_name, definition, [o.direction for o in objs] if objs else None, smp,
                                resume)
    if definition is None:   # --resume: continue with the study's own definition
        given = {"space": None if params is None else {k: p.spec() for k, p in params.items()},
                 "objectives": None if objs is None else [o.name for o in objs]}
        clash = [k for k, v in given.items() if v is not None and v != stored[k]]
        clash += [k for k, v in settings.items() if k not in ("device", "amp", "data_dir") and stored["settings"].get(k) != v]
        if clash:
            raise NeurokdError(f"--resume continues study {study_name!r} as it was defined, but "
                               + "; ".join(f"{k}: study has {stored.get(k, stored['settings'].get(k))!r}" for k in clash)
                               + "; drop those options, or start another --study")
        params = {k: parse_param(k, v) for k, v in stored["space"].items()}
        objs = parse_objectives(stored["objectives"])
        base_cfg = TrainConfig(**{**stored["settings"], "dataset": stored["dataset"], "method": stored["method"],
                                  **{k: v for k, v in settings.items() if k in ("device", "amp", "data_dir")}})
        base_cfg = base_cfg.validate().resolved().validate()
        precision, engine = stored["precision"], stored["engine"]
        place_samples = int(stored.get("place_samples", place_samples))
        _check_lava(objs, engine, verify)
    fileio.write_json(out / "tune_definition.json", stored)
    who = f"{socket.gethostname()}:{os.getpid()}"
    storage_text = storage or str(out / "study.journal")
    echo(f"neurokd: study {study_name!r} in {_safe_url(storage_text)}: {trials} trials of {base_cfg.method} on "
         f"{base_cfg.dataset}, objectives {', '.join(o.name for o in objs)}, space "
         + "; ".join(f"{k}={p.spec()}" for k, p in params.items()) + f" (worker {who})")

    teacher_dir = _shared_teacher(base_cfg, out, progress)
    if references:   # first, so that workers train them side by side; finalize waits for any still running
        _reference_runs(base_cfg, out, teacher_dir, progress, wait=False, echo=echo)
    epochs = int(base_cfg.epochs)
    warmup = prune_warmup if prune_warmup is not None else max(1, epochs // 2)   # early epochs are noisy

    def objective(trial) -> list[float]:
        import optuna

        frozen = trial.study._storage.get_trial(trial._trial_id)
        origin = int(frozen.system_attrs.get("failed_trial", trial.number))
        values = {}
        for name, p in params.items():
            if p.integer:
                values[name] = trial.suggest_int(name, int(p.low), int(p.high), log=p.log)
            else:
                values[name] = trial.suggest_float(name, p.low, p.high, log=p.log)
        run = _trial_dir(out, origin)
        trial.set_user_attr("run_dir", str(run.relative_to(out)))
        trial.set_user_attr("worker", who)
        cfg = base_cfg.replace(**values, out=str(run), teacher=teacher_dir or "none")
        record = run / "tune_trial.json"
        resume_run = False
        if record.is_file():
            previous = json.loads(record.read_text())
            resume_run = previous.get("params") == values and previous.get("study") == study_name
        fileio.write_json(record, {"study": study_name, "trial": origin, "params": values, "worker": who})
        curve = _curve_from_history(run) if resume_run else []

        def on_epoch_end(epoch: int, row: dict) -> None:
            curve.append(float(row["val_acc"]))
            trial.set_user_attr("val_accuracy_curve", list(curve))
            if prune_margin is None:
                return
            finished = [t.user_attrs.get("val_accuracy_curve", [])
                        for t in trial.study.get_trials(deepcopy=False, states=(optuna.trial.TrialState.COMPLETE,))]
            if should_prune(curve, finished, prune_margin, warmup, prune_min_trials, epochs):
                raise optuna.TrialPruned(f"validation accuracy {curve[-1]:.3f} at epoch {epoch} trails the best "
                                         f"finished trial by more than {prune_margin:.3f}")

        from neurokd.training import train as run_train

        echo(f"neurokd: trial {trial.number} started ({_fmt_params(values)}) in {run}"
             + (f", resuming trial {origin}" if origin != trial.number else "") + f" [worker {who}]")
        try:
            run_train(cfg, resume=resume_run, overwrite=not resume_run, progress=progress, on_epoch_end=on_epoch_end,
                      log=lambda msg: None)
        except optuna.TrialPruned:
            echo(f"neurokd: trial {trial.number} pruned after epoch {len(curve)} (val accuracy {curve[-1]:.3f})")
            raise
        except KeyboardInterrupt:   # Optuna marks it failed; the next start of the study retries it
            trial.set_user_attr("interrupted", True)
            raise
        measured = evaluate_run(run, objs, precision=precision, engine=engine, input_bits=8,
                                place_samples=place_samples)
        for k, v in measured.items():
            trial.set_user_attr(k, v)
        fileio.write_json(record, {"study": study_name, "trial": origin, "params": values, "worker": who,
                                   "validation": measured})
        result = objective_values(measured, objs)
        echo(f"neurokd: trial {trial.number} done: " + ", ".join(f"{o.name} {_fmt_value(o, v)}"
                                                                   for o, v in zip(objs, result)))
        return result

    with _file_lock(out / ".retry.lock"):
        _requeue_interrupted(study, max_retry, echo)
    _work(study, objective, trials, min(float(heartbeat), 5.0), echo)
    with _file_lock(out / ".finalize.lock"):
        result = finalize(study, out, objs, params, base_cfg, precision=precision, engine=engine, verify=verify,
                          teacher_dir=teacher_dir, references=references, report=report, figures=figures,
                          progress=progress, echo=echo, place_samples=place_samples)
    result.storage = storage_text
    result.summary["worker_seconds"] = time.perf_counter() - t0
    return result


def _check_lava(objs: Sequence[Objective], engine: str, verify: int) -> None:
    if (engine == "lava" or verify) and not lava_available():
        need = [o.name for o in objs if o.hardware]
        what = f"objective(s) {', '.join(need)} with --engine lava" if engine == "lava" and need else f"--verify {verify}"
        raise NeurokdError(f"{what} needs Lava (lava-nc), which is not installed: use --engine fast --verify 0, "
                           "or install it (make install)")


def _check_deployable(objs: Sequence[Objective], cfg) -> None:
    """A study whose students are trained with graded input, costed on a chip that receives binary spikes only
    (loihi1), is refused before anything trains: its students could not run there."""
    from neurokd.hardware.placement import load_chip
    from neurokd.hardware.placement.inputs import takes_graded

    if cfg.input_mode != "graded":
        return
    for o in objs:
        if o.chip is not None and not takes_graded(load_chip(o.chip)):
            raise NeurokdError(f"--objectives {o.name}: {chip_key(o.chip)} receives binary spikes only, and this study "
                               "trains its students with graded input (--input-mode graded, the default), which "
                               f"cannot be placed there: give --input-mode spikes or bias")


def _fmt_params(values: Mapping[str, Any]) -> str:
    return ", ".join(f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v}" for k, v in values.items())


def _fmt_value(o: Objective, v: float) -> str:
    if o.name == "accuracy":
        return f"{100 * v:.2f} %"
    if o.is_energy:
        return f"{v / 1e3:.2f} nJ"
    if o.chip is not None:
        return f"{v:.3f} us"
    return f"{v:.4g}"


def _requeue_interrupted(study, max_retry: int, echo) -> None:
    """Queue a retry (same parameters, same run folder) of each trial a Ctrl-C stopped and nobody retried yet."""
    import copy

    from optuna.storages import RetryHeartbeatStaleTrialCallback
    from optuna.trial import TrialState

    trials = study.get_trials(deepcopy=False)
    retried = {n for t in trials for n in t.system_attrs.get("retry_history", [])}
    retry = RetryHeartbeatStaleTrialCallback(max_retry=max_retry)
    for t in trials:
        if t.state == TrialState.FAIL and t.user_attrs.get("interrupted") and t.number not in retried:
            retry(study, copy.deepcopy(t))
            echo(f"neurokd: trial {t.number} was interrupted; queued again (it resumes its run folder)")


def _work(study, objective, trials: int, poll: float, echo) -> None:
    """Run trials until the study holds ``trials`` finished or running ones (queued retries always run);
    then wait while other workers' trials run, so that a trial whose worker dies is retried here, and
    every worker's outputs describe the whole study."""
    import optuna
    from optuna.trial import TrialState

    said = False
    while True:
        optuna.storages.fail_stale_trials(study)   # a dead worker's trial: FAIL, and its retry queued
        states = [t.state for t in study.get_trials(deepcopy=False)]
        waiting = states.count(TrialState.WAITING)
        taken = sum(states.count(s) for s in (TrialState.COMPLETE, TrialState.PRUNED, TrialState.RUNNING))
        if waiting or taken < trials:
            study.optimize(objective, n_trials=1, gc_after_trial=False)
            continue
        running = states.count(TrialState.RUNNING)
        if not running:
            return
        if not said:
            echo(f"neurokd: waiting for {running} trial(s) of other workers (a dead worker's trial is retried here)")
            said = True
        time.sleep(poll)


def _shared_teacher(cfg, out: Path, progress: bool) -> str | None:
    """``out/teacher`` trained once (under a lock, so that workers do not train it twice); None without KD."""
    from neurokd.losses import method_terms
    from neurokd.training import train_teacher_run

    if not method_terms(cfg.method)[0]:
        return None
    folder = out / "teacher"
    with _file_lock(out / ".teacher.lock"):
        train_teacher_run(cfg.replace(out=str(folder)), folder, progress=progress)
    return str(folder.resolve())


def _reference_runs(base_cfg, out: Path, teacher_dir: str | None, progress: bool, wait: bool = True,
                    echo: Callable[[str], None] = lambda msg: None) -> list[tuple[str, Path]]:
    """The baseline and the method at its defaults, same schedule, trained once each. ``wait=False``
    (at a worker's start): train those no other worker is training, skip the others."""
    from neurokd.training import train as run_train

    refs = [("baseline", base_cfg.replace(method="baseline", teacher="none"))]
    if base_cfg.method != "baseline":
        refs.append((f"{base_cfg.method} defaults", base_cfg.replace(teacher=teacher_dir or "none")))
    done = []
    for label, cfg in refs:
        folder = out / f"reference-{cfg.method}"
        cfg = cfg.replace(out=str(folder))
        with _file_lock(out / f".{folder.name}.lock", wait=wait) as held:
            if held and not (folder / "metrics.json").is_file():
                echo(f"neurokd: training the reference {label} in {folder}")
                run_train(cfg, overwrite=True, progress=progress, log=lambda msg: None)
        done.append((label, folder))
    return done


def finalize(study, out: Path, objs: Sequence[Objective], params: Mapping[str, Param], base_cfg, *,
             precision: str = "fixed", engine: str = "fast", verify: int = 0, teacher_dir: str | None = None,
             references: bool = True, report: bool = True, figures: bool = True, progress: bool = False,
             echo: Callable[[str], None] = print, place_samples: int = PLACE_SAMPLES) -> TuneResult:
    """pareto.csv, the front figure, the knee, tune.json and the report of the front, from the study as it is
    (``figures=False``: the report's tables without its figures)."""
    from optuna.trial import TrialState

    directions = [o.direction for o in objs]
    trials = study.get_trials(deepcopy=False)
    complete = [t for t in trials if t.state == TrialState.COMPLETE and t.values is not None]
    on_front = dict(zip((t.number for t in complete), non_dominated([t.values for t in complete], directions)))
    front = [t for t in complete if on_front[t.number]]
    knee_trial = front[knee([t.values for t in front], directions)] if front else None

    refs = []
    if references:
        for label, folder in _reference_runs(base_cfg, out, teacher_dir, progress):
            record = folder / "tune_reference.json"
            measured = json.loads(record.read_text()).get("validation") if record.is_file() else None
            if measured is None or any(o.column not in measured for o in objs) \
                    or any(measured.get(f"placed_{chip_key(c)}_samples")
                           not in (None, min(place_samples, measured["val_samples"]))
                           for c in {o.chip for o in objs if o.chip is not None}):
                measured = evaluate_run(folder, objs, precision=precision, engine=engine, place_samples=place_samples)
                fileio.write_json(record, {"reference": label, "validation": measured})
            refs.append((label, folder, measured))

    test: dict[Path, dict] = {}
    for run in [out / t.user_attrs["run_dir"] for t in front] + [folder for _, folder, _ in refs]:
        _export_for_report(run, precision, verify, echo)
        test[run] = _test_figures(run, objs)

    test_cols = ["test_accuracy", "test_activity"] + [f"test_energy_{o.energy_model}_pj" for o in objs if o.energy_model]
    placed_cols = [f"placed_{chip_key(c)}_{f}" for c in dict.fromkeys(o.chip for o in objs if o.chip is not None)
                   for f in PLACED_FIGURES]
    header = (["trial", "state", "run_dir", "retry_of", "on_front", "knee"] + list(params)
              + [o.column for o in objs] + ["val_accuracy_hw", "val_accuracy_last_epoch", "epochs_run", "worker"]
              + placed_cols + test_cols)
    rows = []
    for t in trials:
        run_rel = t.user_attrs.get("run_dir", "")
        curve = t.user_attrs.get("val_accuracy_curve", [])
        row = {"trial": t.number, "state": t.state.name, "run_dir": run_rel,
               "retry_of": t.system_attrs.get("failed_trial", ""), "on_front": int(bool(on_front.get(t.number))),
               "knee": int(knee_trial is not None and t.number == knee_trial.number),
               **{k: t.params.get(k, "") for k in params},
               "val_accuracy_hw": t.user_attrs.get("val_accuracy_hw", ""),
               "val_accuracy_last_epoch": curve[-1] if curve else "", "epochs_run": len(curve),
               "worker": t.user_attrs.get("worker", ""), **{k: t.user_attrs.get(k, "") for k in placed_cols}}
        if t.state == TrialState.COMPLETE and t.values is not None:
            row.update({o.column: v for o, v in zip(objs, t.values)})
        if on_front.get(t.number):
            row.update(test.get(out / run_rel, {}))
        rows.append(row)
    for label, folder, measured in refs:
        row = {"trial": "", "state": "REFERENCE", "run_dir": folder.name, "retry_of": "", "on_front": "", "knee": "",
               **{k: getattr(base_cfg, k) if label != "baseline" else "" for k in params},
               "val_accuracy_hw": measured.get("val_accuracy_hw", ""), "worker": label,
               **{k: measured.get(k, "") for k in placed_cols},
               **{o.column: measured[o.column] for o in objs}, **test.get(folder, {})}
        rows.append(row)
    files = {}
    fileio.write_csv(out / "pareto.csv", header, rows)
    files["pareto.csv"] = out / "pareto.csv"
    files.update(front_figure(out, objs, complete, on_front, knee_trial, refs))

    report_files = {}
    front_dirs = [out / t.user_attrs["run_dir"] for t in front]
    if report and front_dirs:
        from neurokd.hardware.reports.summary import summarize_runs

        report_files = summarize_runs(front_dirs + [folder for _, folder, _ in refs], out / "report",
                                      baseline="baseline" if refs else None, figures=figures)
        files.update({f"report/{k}": v for k, v in report_files.items()})
    counts = {s: sum(t.state.name == s for t in trials) for s in STATE_NAMES}
    dominating = 0
    defaults = next((m for label, _, m in refs if label != "baseline"), None)
    if defaults is not None and front:
        dvals = objective_values(defaults, objs)
        dominating = sum(dominates(t.values, dvals, directions) for t in front)
    summary = {
        "study": study.study_name, "objectives": [o.name for o in objs], "directions": directions,
        "space": {k: p.spec() for k, p in params.items()}, "trials": counts,
        "retries": sum("failed_trial" in t.system_attrs for t in trials),
        "front": [{"trial": t.number, "run_dir": t.user_attrs["run_dir"], "params": t.params,
                   "values": dict(zip((o.name for o in objs), t.values)), **test.get(out / t.user_attrs["run_dir"], {})}
                  for t in front],
        "knee": None if knee_trial is None else {"trial": knee_trial.number, "run_dir": knee_trial.user_attrs["run_dir"],
                                                 "params": knee_trial.params},
        "references": {label: {"run_dir": folder.name, "validation": m, **test.get(folder, {})}
                       for label, folder, m in refs},
        "front_dominating_defaults": {"count": dominating, "of": len(front),
                                      "fraction": dominating / len(front) if front and defaults is not None else None},
        "written": datetime.now().isoformat(timespec="seconds"),
    }
    fileio.write_json(out / "tune.json", summary)
    files["tune.json"] = out / "tune.json"
    echo(f"neurokd: {counts['COMPLETE']} trials complete, {counts['PRUNED']} pruned, {counts['FAIL']} failed "
         f"({summary['retries']} retried); front of {len(front)}"
         + (f", knee: trial {knee_trial.number} ({knee_trial.user_attrs['run_dir']}: {_fmt_params(knee_trial.params)})"
            if knee_trial is not None else ""))
    if defaults is not None and front:
        echo(f"neurokd: {dominating} of {len(front)} front students dominate the {base_cfg.method} defaults on validation")
    echo(f"neurokd: wrote {', '.join(sorted(files))} in {out}")
    return TuneResult(out_dir=out, study_name=study.study_name, storage="", rows=rows, front=front_dirs,
                      knee=None if knee_trial is None else out / knee_trial.user_attrs["run_dir"], files=files,
                      summary=summary)


def front_figure(out: Path, objs: Sequence[Objective], complete, on_front: Mapping[int, bool], knee_trial,
                 refs) -> dict[str, Path]:
    """``front.png`` / ``.pdf``: every finished trial, the front as a line, the references and the knee.

    Axes: a cost objective (x) against accuracy (y) when accuracy is an objective, else the first two;
    with three objectives the front is the three-dimensional one, drawn in the two plotted.
    """
    from neurokd.hardware.reports.figures import _figure, _rc, _save

    if not complete:
        return {}
    names = [o.name for o in objs]
    if "accuracy" in names and len(objs) > 1:
        yi = names.index("accuracy")
        xi = next(i for i in range(len(objs)) if i != yi)
    else:
        xi, yi = 0, min(1, len(objs) - 1)
    xo, yo = objs[xi], objs[yi]

    def scale(o: Objective, v: float) -> float:
        return 100 * v if o.name == "accuracy" else v / 1e3 if o.is_energy else v

    with _rc():
        fig, ax = _figure(2.6)
        others = [t for t in complete if not on_front[t.number]]
        ax.scatter([scale(xo, t.values[xi]) for t in others], [scale(yo, t.values[yi]) for t in others],
                   color="0.75", s=10, label="trials", zorder=2)
        front = sorted((t for t in complete if on_front[t.number]), key=lambda t: t.values[xi])
        ax.plot([scale(xo, t.values[xi]) for t in front], [scale(yo, t.values[yi]) for t in front], color="C0",
                marker="o", linewidth=1, label="front" + (" (3 objectives)" if len(objs) == 3 else ""), zorder=3)
        for (label, _, m), marker, color in zip(refs, ("s", "D"), ("0.1", "C3")):
            ax.scatter([scale(xo, m[xo.column])], [scale(yo, m[yo.column])], marker=marker, color=color, s=28,
                       label=label, zorder=4)
        if knee_trial is not None:
            kx, ky = scale(xo, knee_trial.values[xi]), scale(yo, knee_trial.values[yi])
            ax.scatter([kx], [ky], s=90, facecolors="none", edgecolors="C1", linewidths=1.2, zorder=5,
                       label=f"knee (trial {knee_trial.number})")
        xs = [scale(xo, t.values[xi]) for t in complete] + [scale(xo, m[xo.column]) for _, _, m in refs]
        if min(xs) > 0 and max(xs) / min(xs) > 8:
            ax.set_xscale("log")
        ax.set_xlabel(xo.label)
        ax.set_ylabel(yo.label)
        ax.grid(True, linewidth=0.3, alpha=0.5)
        ax.legend(frameon=False, loc="upper left", bbox_to_anchor=(1.01, 1.0))   # beside the axes: points stay visible
        return _save(fig, out, "front")


__all__ = ["tune", "finalize", "TuneResult", "Param", "Objective", "parse_space", "parse_param", "parse_objectives",
           "read_space_file", "open_storage", "evaluate_run", "dominates", "non_dominated", "knee", "should_prune",
           "front_figure", "lava_available", "SPACE_PARAMS", "OBJECTIVES"]
