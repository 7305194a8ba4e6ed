"""neurokd's Python API: the calls behind every ``neurokd`` command, for notebooks and scripts.

::

    import neurokd

    run = neurokd.train(dataset="digits", method="kd-lr", out="runs/digits-kd-lr-s0")
    print(run.test_accuracy, run.activity)
    exported = neurokd.export(run, target="lava", precision="both")     # model.nir, Lava, energy report
    print(exported.agreements["fixed"]["accuracy_lava"])
    neurokd.report([run.run_dir], out="reports")                        # summary.csv/.md/.tex, figures

Each call takes what its command takes (same names, underscores for dashes), writes the same files,
returns a plain result (a dataclass or a dict) and raises :class:`~neurokd.errors.NeurokdError` on bad
input (:class:`~neurokd.errors.CheckFailed` for a failed check, after its files are written). Progress
goes to ``echo`` (``print`` by default; ``None`` for silence). A run folder argument may be a path or
the :class:`RunResult` that :func:`train` returned.

Nothing heavy is imported here: torch, NIR and Lava load on the first call that needs them, so
``import neurokd`` is instant and the training side never pulls in Lava.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Sequence, Union

from neurokd.errors import NeurokdError

Echo = Union[Callable[[str], None], None]


def _echo(echo: Echo) -> Callable[[str], None]:
    return echo if echo is not None else (lambda msg: None)


# --------------------------------------------------------------------------------------------------
# Results
# --------------------------------------------------------------------------------------------------

@dataclass
class RunResult:
    """A finished training run: its folder, its settings and ``metrics.json``."""

    run_dir: Path
    metrics: dict
    config: dict = field(default_factory=dict)

    @property
    def test_accuracy(self) -> float:
        """Student accuracy on the test split (a fraction)."""
        return float(self.metrics["test_accuracy"])

    @property
    def activity(self) -> float:
        """Spikes per neuron per time step, all spiking layers pooled (test split)."""
        return float(self.metrics["activity"]["total"])

    def __fspath__(self) -> str:
        return str(self.run_dir)


@dataclass
class ExportResult:
    """What :func:`export` wrote: the run folder, the target, per precision the agreement checks, and the
    placement on a chip when ``hardware`` was given.

    ``placement`` (None without ``hardware``): the figures of ``RUN/map/`` as a dict, the same keys as
    :class:`SimulationResult`'s ``placement`` and ``MapResult.summary()``: ``chip``, ``placer``, ``cores``,
    ``chips``, ``tiles``, ``latency_us_per_inference``, ``latency_ns_per_step``, ``inferences_per_s``,
    ``energy_uj_per_inference`` (routing included), ``routing_uj_per_inference``, ``edp_j_s``,
    ``bottleneck`` (``core``, ``layer``, ``neurons``, ``bound``: what bounds it, ``shares``), ``seconds``,
    and ``dir``, the folder holding ``mapping.csv``, ``cost_report.csv`` and ``mesh_load.png``.
    """

    run_dir: Path
    target: str
    agreements: dict[str, dict]
    placement: dict | None = None

    def __fspath__(self) -> str:
        return str(self.run_dir)


@dataclass
class SimulationResult:
    """What :func:`simulate` wrote into ``out_dir`` (``spikes.npz``, ``simulation.json``, the energy report)."""

    out_dir: Path
    summary: dict

    @property
    def spikes_per_sample(self) -> dict[str, float]:
        """Spikes per sample of each spiking layer."""
        return dict(self.summary["spikes_per_sample"])

    @property
    def placement(self) -> dict | None:
        """With ``hardware``: the placement's figures (keys as :attr:`ExportResult.placement`'s, ``dir`` the
        ``out_dir/map`` folder); None without it."""
        placed = self.summary.get("placement")
        return None if placed is None else {**placed, "dir": self.out_dir / placed.get("dir", "map")}


RunLike = Union[str, Path, RunResult, ExportResult]


def _run_dir(run: RunLike) -> Path:
    if isinstance(run, (RunResult, ExportResult)):
        return run.run_dir
    if isinstance(run, (str, Path)):
        return Path(run)
    raise NeurokdError(f"a run folder must be a path or a neurokd.RunResult, got {type(run).__name__}")


# --------------------------------------------------------------------------------------------------
# Training
# --------------------------------------------------------------------------------------------------

def train(config=None, *, out: str | Path | None = None, overwrite: bool = False, resume: bool = False,
          progress: bool = True, echo: Echo = print, **settings: Any) -> RunResult:
    """Train a teacher, then an SNN student with distillation and activity/logits regularisation.

    ``config``: a :class:`~neurokd.config.TrainConfig`, or the path of a TOML config file (the keys of
    ``neurokd train --config``), or ``None`` for the defaults (the kd-lr student on digits).
    ``settings``: any :class:`~neurokd.config.TrainConfig` field, overriding the config (``dataset``,
    ``method``, ``epochs``, ``timesteps``, ``lambda_logits``, ``model_options={"hidden": [128]}`` ...;
    ``input_mode="spikes", lambda_input=0.2``: train the input gain against the input layer's spike rate).
    ``out``: the run folder (default ``runs/<dataset>-<method>-s<seed>``). ``resume=True`` continues
    the run in ``out`` from its last checkpoint with the run's own saved settings (given settings are
    checked against it); ``overwrite=True`` replaces a finished run.

    Returns a :class:`RunResult` (``run_dir``, ``metrics`` as in ``metrics.json``, ``config``).
    """
    from neurokd.config import TrainConfig, make_config, read_toml
    from neurokd.distributed import is_main
    from neurokd.training import summary_lines
    from neurokd.training import train as run_train

    if out is not None:
        settings["out"] = str(out)
    if isinstance(config, TrainConfig):
        cfg = TrainConfig(**{**config.to_dict(), **{k: v for k, v in settings.items() if v is not None}})
        cfg = cfg.validate().resolved().validate()
        config_file = None
    else:
        config_file = config
        cfg = make_config(config_file, **settings)
    saved = Path(cfg.out) / "config.toml"
    if resume and saved.is_file():
        # resume from the run's own settings; explicit ones (checked against the checkpoint) win
        values = read_toml(saved)
        if config_file is not None:
            values.update(read_toml(config_file))
        values.update({k: v for k, v in settings.items() if v is not None})
        cfg = TrainConfig(**values).validate().resolved().validate()
    # print goes through the progress bars' own writer (tqdm.write); any other echo gets the log lines
    from neurokd.models.user import trusted

    with trusted(settings.get("model")):    # user code runs only when named here, never from a saved config
        metrics = run_train(cfg, overwrite=overwrite, resume=resume, progress=progress,
                            log=None if echo is print else _echo(echo))
    if echo is not None and is_main():   # under torchrun: one summary, from rank 0
        echo("\n".join(summary_lines(metrics, cfg.out)))
    return RunResult(run_dir=Path(cfg.out), metrics=metrics, config=cfg.to_dict())


def evaluate(run: RunLike, device: str = "auto", echo: Echo = None, model: str | None = None) -> dict:
    """Re-evaluate a run's student (and teacher) on its test split; rewrite and return ``metrics.json``.

    ``device``: ``auto`` (CUDA when present), ``cpu``, ``cuda`` or ``cuda:N``. ``model``: the run's
    ``FILE.py:FUNCTION`` when its student came from user code (a run folder never runs code by itself).
    """
    from neurokd.config import DEVICES
    from neurokd.models.user import trusted
    from neurokd.training import eval_run, summary_lines

    if not (device in DEVICES or device.startswith("cuda:")):
        raise NeurokdError(f"unknown device {device!r}; choose auto, cpu, cuda or cuda:N")
    run_dir = _run_dir(run)
    with trusted(model):
        metrics = eval_run(run_dir, device)
    _echo(echo)("\n".join(summary_lines(metrics, run_dir)))
    return metrics


def study(dataset: str = "digits", methods: Sequence[str] = ("baseline", "kd", "ar", "lr", "kd-lr", "kd-ar-lr"),
          seeds: Sequence[int] = (0, 1, 2), out: str | Path | None = None, *, config: str | Path | None = None,
          progress: bool = True, echo: Echo = print, **settings: Any) -> list[dict]:
    """Train several methods over several seeds (one shared teacher per seed) into ``out``.

    Writes ``summary.csv``, ``summary_mean.csv`` and ``accuracy_vs_activity.png/.pdf``; finished runs
    are read, not retrained. ``settings`` are shared :class:`~neurokd.config.TrainConfig` fields
    (``epochs``, ``temperature``, ...). Returns the rows of ``summary.csv`` (one dict per run).
    """
    from neurokd.studies import run_study

    seeds = [int(s) for s in seeds]
    if any(s < 0 for s in seeds):
        raise NeurokdError(f"seeds must be integers >= 0, got {seeds}")
    from neurokd.models.user import trusted

    out = out if out is not None else f"runs/study-{dataset}"
    with trusted(settings.get("model")):    # a --model FILE.py:FUNCTION named for this study
        return run_study(dataset, list(methods), seeds, out, config_file=config, progress=progress, log=_echo(echo),
                         **{k: v for k, v in settings.items() if v is not None})


# --------------------------------------------------------------------------------------------------
# Export and the hardware model
# --------------------------------------------------------------------------------------------------

def export(run: RunLike, target: str = "lava", precision: str = "float", *, engine: str = "auto",
           samples: int | None = None, verify: int | None = None, dt: float = 1e-4, input_bits: int = 8,
           chunk_samples: int = 64, progress: bool = True, echo: Echo = print,
           model: str | None = None, for_peer: str | None = None, hardware: str | Path | None = None,
           placer: str = "pack", chips: int | None = None, input_mode: str | None = None,
           spike_encoding: str = "deterministic") -> ExportResult:
    """Export a run's student and check it on the hardware model.

    ``target``: ``nir`` (``model.nir`` only), ``lava`` (also run the test split on the Loihi model and
    compare with PyTorch spike for spike; energy report), ``netx`` (``model.net`` for lava-dl, checked
    in Lava) or ``onnx`` (teacher + one student step). ``precision``: ``float`` (must reproduce
    PyTorch exactly), ``fixed`` (Loihi's integers) or ``both``. ``engine``: ``lava`` (Lava's CPU
    simulation), ``fast`` (neurokd's bit-exact model of it, the whole split in seconds, with
    ``verify`` random samples re-run in Lava, 32 by default where Lava is installed) or ``auto`` (default:
    ``lava`` where Lava is installed, else ``fast`` with no Lava check, said in one line). ``samples``: only the first N test samples. ``model``:
    the run's ``FILE.py:FUNCTION`` when its student came from user code (snnTorch / SpikingJelly).
    ``for_peer="norse"``: also ``model.norse.nir``, the same network in the units Norse's importer
    assumes (snnTorch and SpikingJelly read ``model.nir`` as it is). ``hardware`` (``loihi1``, ``loihi2``
    or a chip ``.toml``; target ``lava``), ``placer`` (``pack`` or ``balance``), ``chips``: after the run,
    place the network on that chip's cores and cost every step from its spikes (``RUN/map/``, as
    :func:`map_network` writes it, and a section of ``energy_report.md``); a network that does not fit is
    refused before it runs. ``input_mode`` (``bias``, ``spikes``, ``graded``, ``host``; with ``hardware``): how the
    chip takes the input (:mod:`neurokd.hardware.placement.inputs`); default ``graded`` where the chip takes
    graded spikes, and graded input is refused (one line naming the modes that work) on a chip without them
    (loihi1). ``spike_encoding``: ``deterministic`` or ``bernoulli`` (the run's seed) for ``spikes``.

    A ``target="lava"`` export without ``hardware`` moves an earlier ``RUN/map/`` to ``RUN/map.stale/`` and
    says so (it placed an earlier export), so that :func:`report` and ``MODEL.md`` never show a placement
    beside an energy report it was not costed with.

    Returns an :class:`ExportResult`; ``agreements[precision]`` is the content of ``agreement.json``
    (``agreement_fixed.json``); ``placement`` the placement's figures (cores, chips, latency and energy with
    routing per inference, the bottleneck core, ``dir``), None without ``hardware``. Raises :class:`~neurokd.errors.CheckFailed` (files written first)
    when a float run differs from PyTorch or the fast model from Lava.
    """
    from neurokd.deploy import export_and_place
    from neurokd.models.user import trusted

    run_dir = _run_dir(run)
    with trusted(model):
        agreements, mapped = export_and_place(run_dir, target=target, precision=precision, samples=samples, dt=dt,
                                              input_bits=input_bits, chunk_samples=chunk_samples, progress=progress,
                                              echo=_echo(echo), engine=engine, verify=verify, for_peer=for_peer,
                                              hardware=hardware, placer=placer, chips=chips, input_mode=input_mode,
                                              spike_encoding=spike_encoding)
    placement = None if mapped is None else {**mapped.summary(), "dir": run_dir / "map"}
    return ExportResult(run_dir=run_dir, target=target, agreements=agreements, placement=placement)


def simulate(graph, out: str | Path, *, inputs=None, random_input: bool = False, steps: int | None = None,
             samples: int = 1, rate: float = 0.1, seed: int = 0, dt: float | None = None, precision: str = "float",
             input_bits: int = 8, progress: bool = True, echo: Echo = print, hardware: str | Path | None = None,
             placer: str = "pack", chips: int | None = None, input_mode: str | None = None,
             spike_encoding: str = "deterministic") -> SimulationResult:
    """Run any NIR graph (a ``.nir`` path or a ``nir.NIRGraph``, from any producer) on the Loihi model in Lava.

    A lava-dl netx ``.net`` file runs too, in fixed point with its own integers; its ``inputs`` as in
    :func:`map_network`.

    Input: ``inputs`` (a ``.npy`` path or an array of shape ``(T, *input_shape)`` or
    ``(N, T, *input_shape)``) or ``random_input=True`` (Bernoulli spikes at ``rate``, ``samples`` x
    ``steps``, seeded). ``dt``: the time step (default: the graph's metadata, producer or signature).
    Writes ``spikes.npz`` (one array per NIR node), ``simulation.json`` and the energy report into ``out``;
    returns a :class:`SimulationResult` (``summary`` is ``simulation.json``). ``hardware``, ``placer``,
    ``chips``: as in :func:`export`, the placement in ``out/map/``, ``summary["placement"]`` and the result's
    ``placement`` (None without ``hardware``; a simulation without it moves an earlier ``out/map/`` aside).
    ``input_mode``, ``spike_encoding``: as in :func:`export` (Bernoulli spikes seeded by ``seed``).
    """
    from neurokd.deploy import simulate_graph

    summary = simulate_graph(graph, out, inputs=inputs, random_input=random_input, steps=steps, samples=samples,
                             rate=rate, seed=seed, dt=dt, precision=precision, input_bits=input_bits,
                             progress=progress, echo=_echo(echo), hardware=hardware, placer=placer, chips=chips,
                             input_mode=input_mode, spike_encoding=spike_encoding)
    return SimulationResult(out_dir=Path(out), summary=summary)


def load_nir(graph, dt: float | None = None, timesteps: int | None = None):
    """A NIR graph (path or ``nir.NIRGraph``, any producer) as a PyTorch module that runs it over a sequence.

    ``module(x)`` takes ``x`` of shape ``(T, B, *input_shape)`` (or ``(B, *input_shape)`` repeated over
    ``timesteps``) and returns the Output node's values per step; ``module(x, record=True)`` returns
    every node's. The time step is ``dt``, else the graph's metadata, producer or export signature.
    """
    import nir

    from neurokd.exporters.from_nir import nir_to_torch, read_nir

    name = None
    if not isinstance(graph, nir.NIRGraph):
        name = Path(graph).name
        graph = read_nir(graph)
    return nir_to_torch(graph, dt=dt, timesteps=timesteps, name=name)


@dataclass
class ImportResult:
    """A NIR graph read and run on a seeded random input: the node summary and every node's output."""

    summary: dict
    outputs: dict


def import_nir(graph: str | Path, *, dt: float | None = None, steps: int | None = None, batch: int = 4,
               seed: int = 0, rate: float = 0.2, out: str | Path | None = None) -> ImportResult:
    """Read a NIR file from any framework, run it as a PyTorch module on Bernoulli spikes, summarise it.

    ``summary`` holds the file's NIR version, the time step and the rule that chose it, recurrent edges,
    warnings and, per node, type, shape, parameters and output statistics; ``outputs`` every node's
    output ``(T, B, *shape)``. With ``out``: ``summary.json`` and ``outputs.npz`` written there.
    """
    from neurokd.exporters.nir_inspect import import_graph, write_import

    summary, outputs = import_graph(graph, dt=dt, steps=steps, batch=batch, seed=seed, rate=rate)
    if out is not None:
        write_import(out, summary, outputs)
    return ImportResult(summary=summary, outputs=outputs)


def map_network(target, out: str | Path, *, hardware: str = "loihi1", placer: str = "pack", chips: int = 1,
                precision: str = "fixed", samples: int | None = None, inputs=None, random_input: bool = False,
                steps: int | None = None, rate: float = 0.1, seed: int = 0, overrides: dict[str, float] | None = None,
                cost: bool = True, sanafe: int = 0, echo: Echo = print, input_mode: str | None = None,
                spike_encoding: str = "deterministic"):
    """Place a student or any NIR graph on a neuromorphic chip's cores, check that it fits, cost every time step.

    ``target``: a run folder (its ``model.nir``, exported first with ``target="nir"`` when the run has
    none, saying so in one line), a ``.nir`` file, or a lava-dl
    netx ``.net`` file (every layer SLAYER's export writes; sigma-delta networks place with ``cost=False``
    only). A netx file's ``inputs`` follow its input layer: a bias-driven one takes the layer's bias in
    netx's (X, Y, C) layout, held ``steps`` steps (lava-dl's ``pilotnet_lif/image.npy``); otherwise the data
    in Lava's layout ``(*shape, T)`` (lava-dl's ``ntidigits/input.npy``).
    ``hardware``: ``loihi1`` (Davies et al. 2018), ``loihi2`` (published limits; unpublished figures named
    and overridable), ``loihi1-sanafe`` (SANA-FE's calibrated figures) or your chip ``.toml`` file;
    ``overrides={"energy.synop_pj": 35.5}`` changes single figures. ``placer``: ``pack`` (fewest cores)
    or ``balance`` (measured load spread over the chips ``pack`` needs). Spikes come from the fast engine
    (bit-exact with Lava's ``fixed_pt``; ``precision="float"`` for ``floating_pt``): a run's test split
    (``samples`` of it), or a graph's ``inputs`` (``.npy`` path or array) or ``random_input``; ``cost=False``
    places only. ``sanafe=N`` cross-checks N samples with SANA-FE (optional, GPL-3.0). ``input_mode``: how the
    chip takes the input, ``bias`` (an on-chip input layer, the value as bias), ``spikes`` (host rate coding,
    ``spike_encoding`` ``deterministic`` or ``bernoulli`` seeded by ``seed``), ``graded`` (Loihi 2 only) or
    ``host`` (the first layer computed off chip); default ``graded`` where the chip takes graded spikes,
    ``spikes`` for 0/1 input, and graded input on a chip without graded spikes (loihi1) is refused in one line
    naming the modes that work (:mod:`neurokd.hardware.placement.inputs`). A run folder's labels give the
    accuracy under the mode (``MapResult.input``).

    Writes ``mapping.csv`` (one row per core), ``placement.json`` and, with spikes, ``cost_report.csv``,
    ``cost_steps.csv``, ``cost_report.md`` and ``mesh_load.png`` into ``out``; returns the
    :class:`~neurokd.hardware.placement.MapResult` (``.summary()``: cores, chips, latency and energy per
    inference, bottleneck core). A network that does not fit raises :class:`~neurokd.errors.NeurokdError`
    naming the layer, the limit, the figure and the excess.
    """
    from neurokd.deploy import map_target

    return map_target(_run_dir(target) if isinstance(target, (RunResult, ExportResult)) else target, out,
                      hardware=hardware, placer=placer, chips=chips, precision=precision, samples=samples,
                      input_path=inputs, random_input=random_input, steps=steps, rate=rate, seed=seed,
                      overrides=overrides, no_cost=not cost, sanafe=sanafe, echo=_echo(echo), input_mode=input_mode,
                      spike_encoding=spike_encoding)


# --------------------------------------------------------------------------------------------------
# Comparing runs
# --------------------------------------------------------------------------------------------------

def report(runs: Iterable[RunLike] | RunLike, out: str | Path = "reports", *, baseline: str | None = None,
           energy_models: Sequence[str] | None = None, figures: bool = True) -> dict[str, Path]:
    """Compare finished runs: accuracy, activity, SynOps and energy, averaged over seeds per setting.

    ``runs``: run folders (each trained and exported with ``target="lava"``), or folders holding run
    folders. ``baseline``: the method the others are compared with (default ``baseline`` when present).
    ``energy_models``: which energy models to report (default: all in the runs' reports). Writes
    ``summary.csv``, ``summary.md``, ``summary.tex`` and, with ``figures``, PNG/PDF figures; returns
    ``{file name: path}``. A run placed on a chip (``RUN/map/``: ``export(..., hardware="loihi1")`` or
    :func:`map_network`) adds its cores, chips, latency and energy with routing per inference, and a
    figure of its per-tile load on the mesh (``mesh_load_<run>``).
    """
    from neurokd.hardware.reports.summary import summarize_runs

    if isinstance(runs, (str, Path, RunResult, ExportResult)):
        runs = [runs]
    return summarize_runs([_run_dir(r) for r in runs], out, models=list(energy_models) if energy_models else None,
                          baseline=baseline, figures=figures)


# --------------------------------------------------------------------------------------------------
# Searching the trade-off
# --------------------------------------------------------------------------------------------------

def tune(dataset: str = "digits", method: str = "kd-ar-lr", *, objectives: str | Sequence[str] | None = None,
         space: str | dict | None = None, trials: int = 20, out: str | Path | None = None, storage: str | None = None,
         study: str | None = None, resume: bool = False, config: str | Path | None = None, progress: bool = False,
         echo: Echo = print, **options: Any):
    """Search a method's loss weights for the front of accuracy vs activity vs hardware energy (Optuna).

    ``objectives``: one to three of ``accuracy``, ``activity``, ``synops``, ``energy:<model>`` (counted, e.g.
    ``"accuracy,energy:loihi-events"``), ``energy:<chip>`` / ``latency:<chip>`` (the student placed on a chip and
    costed as ``map`` does, on ``place_samples`` validation samples, e.g. ``"accuracy,energy:loihi1"`` with
    ``input_mode="spikes"``), all on the validation split. ``space``: ``"lambda_logits=1e-3..1:log;
    lambda_act=1e-3..1:log; temperature=1..8"`` (also ``alpha``, ``T``/``timesteps``, ``beta``,
    ``threshold``), a dict name -> ``"low..high[:log]"``, or a TOML file with a ``[space]`` table.
    ``trials``: the study's total. Every trial is a run folder under ``out/trials/``; ``out`` also gets
    ``pareto.csv``, ``front.png/.pdf`` (with the baseline and the method's defaults), ``tune.json`` (the
    knee student, counts) and ``report/`` (``neurokd report`` of the front). ``storage``/``study``: share
    one study between workers (a journal file path, ``sqlite:///x.db``, or a database URL); ``resume``:
    continue an existing study with its own space. ``options``: :func:`neurokd.tuning.tune`'s (``sampler``,
    ``precision``, ``engine``, ``prune_margin``, ``heartbeat``, ...) and any
    :class:`~neurokd.config.TrainConfig` setting (``epochs``, ``model_options``, ...).

    Returns a :class:`neurokd.tuning.TuneResult` (``rows``, ``front``, ``knee``, ``files``, ``summary``).
    """
    from neurokd.models.user import trusted
    from neurokd.tuning import tune as run_tune

    # a student from the user's own code (model="FILE.py:FUNCTION", named here) may be rebuilt by the trials
    with trusted(options.get("model") if ":" in str(options.get("model") or "") else None):
        return run_tune(dataset, method, objectives=objectives, space=space, trials=trials, out=out,
                        storage=storage, study_name=study, resume=resume, config_file=config, progress=progress,
                        echo=_echo(echo), **options)


__all__ = ["train", "evaluate", "study", "export", "simulate", "map_network", "load_nir", "import_nir", "report",
           "tune", "RunResult", "ExportResult", "SimulationResult", "ImportResult"]
