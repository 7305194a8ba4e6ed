"""``neurokd train``, ``neurokd eval`` and ``neurokd study``: parse options, call :func:`neurokd.train`, :func:`neurokd.evaluate`, :func:`neurokd.study`.

Every setting defaults to "not given" so that a ``--config FILE.toml`` (same keys, underscores)
fills it, and the dataset default fills what neither gives. Values are checked by
:class:`neurokd.config.TrainConfig` (one-line errors, exit 2).
"""

from __future__ import annotations

import tomllib

import click

from neurokd.errors import NeurokdError


def _model_options(text: str | None, flag: str = "--model-options", example: str = "hidden = [256, 128]") -> dict | None:
    if text is None:
        return None
    try:
        return tomllib.loads(text.replace(";", "\n"))
    except tomllib.TOMLDecodeError as exc:
        raise NeurokdError(f"{flag} {text!r} is not TOML key = value pairs (e.g. '{example}'): {exc}") from exc


# Settings shared by `train` and `study` (all default None = from the config file or the dataset).
_KNOBS = [
    click.option("--data-dir", type=click.Path(file_okay=False), default=None,
                 help="Dataset folder (not needed for digits)."),
    click.option("--data-options", default=None,
                 help="Dataset loader options as TOML pairs separated by ';', e.g. 'words = \"35\"; unknown_silence = true'."),
    click.option("--model", default=None, help="Model name: mlp, conv1d, resnet1d, vgg (default: the dataset's), or "
                 "your own snnTorch/SpikingJelly student: FILE.py:FUNCTION or package.module:FUNCTION, called with "
                 "input_shape, num_classes, timesteps (and --model-options); it returns the student or "
                 "(student, teacher). model_options key readout: auto, spikes, membrane or mean."),
    click.option("--model-options", default=None,
                 help="Model sizes as TOML pairs separated by ';', e.g. 'hidden = [256, 128]'."),
    click.option("--timesteps", "-T", type=int, default=None, help="SNN time steps T."),
    click.option("--epochs", type=int, default=None, help="Student epochs."),
    click.option("--batch-size", type=int, default=None),
    click.option("--lr", type=float, default=None, help="Learning rate (teacher and student)."),
    click.option("--weight-decay", type=float, default=None),
    click.option("--temperature", type=float, default=None, help="KD temperature (> 0)."),
    click.option("--alpha", type=float, default=None, help="KD weight of the soft term, in [0, 1]."),
    click.option("--lambda-act", type=float, default=None, help="Weight of the activation regulariser (>= 0)."),
    click.option("--lambda-logits", type=float, default=None, help="Weight of the logits regulariser (>= 0)."),
    click.option("--act-norm", type=int, default=None, help="Activation regulariser norm: 1 or 2."),
    click.option("--logits-norm", type=int, default=None, help="Logits regulariser norm: 1 or 2."),
    click.option("--beta", type=float, default=None, help="LIF decay beta in [0, 1]."),
    click.option("--threshold", type=float, default=None, help="LIF threshold (> 0)."),
    click.option("--learn-beta/--fixed-beta", default=None, help="Train the LIF decay."),
    click.option("--learn-threshold/--fixed-threshold", default=None, help="Train the LIF threshold."),
    click.option("--reset", default=None, help="LIF reset: zero (default; Loihi's, exportable) or subtract (soft "
                 "reset, as SpikingJelly; training and PyTorch reports only, no NIR/Lava form)."),
    click.option("--input-mode", default=None, help="How the chip takes the input, trained as deployed: graded (default; "
                 "the values into the first synapses, Loihi 2 only), bias (an on-chip input layer of IF neurons driven "
                 "by the value as bias, part of the student) or spikes (deterministic rate code on the host)."),
    click.option("--lambda-input", type=float, default=None, help="Weight (>= 0, default 0) of the input layer's spike "
                 "rate in the loss, any method; > 0 trains the input gain (the encoder's full scale) so the input "
                 "sends fewer spikes: fewer synaptic ops in the first layer (--input-mode bias or spikes only)."),
    click.option("--input-clip", type=float, default=None, help="bias/spikes input: the fraction of training values "
                 "clipped at each end of the encoder's range (its full scale from the clip and 1 - clip quantiles; "
                 "default 0.05 on synth-kws and gsc, 0 = min..max elsewhere)."),
    click.option("--input-dither/--no-input-dither", default=None, help="bias/spikes input: start the encoder at a "
                 "random phase in training (augmentation; evaluation and deployment use the fixed code; default on "
                 "for synth-kws and gsc)."),
    click.option("--optimizer", default=None, help="adam (default) or sgd."),
    click.option("--schedule", default=None, help="cosine (default), step or none."),
    click.option("--teacher-epochs", type=int, default=None),
    click.option("--device", default=None, help="auto (default: CUDA if available), cpu, cuda."),
    click.option("--amp/--no-amp", default=None, help="Mixed precision (CUDA only)."),
    click.option("--config", "config_file", type=click.Path(dir_okay=False), default=None,
                 help="A TOML file with the same keys (underscores); the command line overrides it."),
    click.option("--quiet", "-q", is_flag=True, help="No progress bars."),
]


def _knobs(fn):
    for opt in reversed(_KNOBS):
        fn = opt(fn)
    return fn


def _settings(kw: dict) -> dict:
    kw = dict(kw)
    kw["model_options"] = _model_options(kw.get("model_options"))
    kw["data_options"] = _model_options(kw.get("data_options"), "--data-options", 'words = "35"; unknown_silence = true')
    return kw


@click.command()
@click.option("--dataset", default=None, help="digits (default), synth-kws, gsc, cifar10.")
@click.option("--method", default=None,
              help="baseline, kd, ar, lr, kd-ar, kd-lr (default), kd-ar-lr.")
@click.option("--teacher", default=None,
              help="auto (train one, default), none (methods without KD), or a run folder with teacher.pt.")
@click.option("--seed", type=int, default=None)
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Run folder (default runs/<dataset>-<method>-s<seed>).")
@click.option("--overwrite", is_flag=True, help="Replace a finished run in --out, with what exports made of it (lava/, map/, model.nir, energy report, MODEL.md).")
@click.option("--resume", is_flag=True, help="Continue the run in --out from its last checkpoint.")
@_knobs
def train(overwrite: bool, resume: bool, quiet: bool, config_file: str | None, **kw) -> None:
    """Train a teacher, then an SNN student with distillation and activity/logits regularisation.

    With no options: the kd-lr student on digits (well under a minute on 2 CPU cores).
    """
    from neurokd import api

    api.train(config_file, overwrite=overwrite, resume=resume, progress=not quiet, echo=click.echo, **_settings(kw))


@click.command("eval")
@click.argument("run_dir", type=click.Path(file_okay=False))
@click.option("--device", default="auto", help="auto (default), cpu, cuda.")
@click.option("--model", default=None, help="The run's FILE.py:FUNCTION when its student came from your code "
              "(a run folder never runs code by itself).")
def eval_cmd(run_dir: str, device: str, model: str | None) -> None:
    """Re-evaluate a run's student (and teacher) on the test split; rewrite metrics.json's test numbers."""
    from neurokd import api

    api.evaluate(run_dir, device, echo=click.echo, model=model)


@click.command()
@click.option("--dataset", default="digits", show_default=True)
@click.option("--methods", default="baseline,kd,ar,lr,kd-lr,kd-ar-lr", show_default=True,
              help="Comma-separated methods.")
@click.option("--seeds", default="0,1,2", show_default=True, help="Comma-separated seeds.")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Study folder (default runs/study-<dataset>).")
@_knobs
def study(dataset: str, methods: str, seeds: str, out: str | None, quiet: bool, config_file: str | None,
          **kw) -> None:
    """Train several methods over several seeds (one shared teacher per seed); write summary.csv,
    summary_mean.csv and accuracy_vs_activity.png/.pdf. Finished runs are skipped."""
    from neurokd import api
    from neurokd.studies import parse_list

    method_list = parse_list(methods, "methods")
    seed_list = parse_list(seeds, "seeds", int)
    if any(s < 0 for s in seed_list):
        raise NeurokdError(f"--seeds must be integers >= 0, got {seeds!r}")
    out = out or f"runs/study-{dataset}"
    api.study(dataset, method_list, seed_list, out, config=config_file, progress=not quiet, echo=click.echo,
              **_settings(kw))
    click.echo(f"study folder: {out} (summary.csv, summary_mean.csv, accuracy_vs_activity.png/.pdf)")
