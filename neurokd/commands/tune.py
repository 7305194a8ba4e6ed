"""``neurokd tune``: parse options, call :func:`neurokd.tune` (work in :mod:`neurokd.tuning`), print.

Training settings are those of ``neurokd train`` (``--epochs``, ``--model-options``, ``--config FILE.toml``
...); the searched ones come from ``--space``.
"""

from __future__ import annotations

import click

from neurokd.commands.train import _knobs, _settings


@click.command()
@click.option("--dataset", default="digits", show_default=True)
@click.option("--method", default="kd-ar-lr", show_default=True, help="The method whose weights are searched.")
@click.option("--objectives", default=None,
              help="One to three of accuracy, activity, synops, energy:<chip> or latency:<chip> (placed on loihi1, "
                   "loihi2, loihi1-sanafe, loihi2-fitted or a chip .toml, as neurokd map does), energy:<model> "
                   "(counted: loihi-events, loihi-tile, 45nm, 45nm-int8), comma-separated, e.g. accuracy,energy:loihi1. "
                   "All on the validation split.")
@click.option("--space", default=None,
              help="Searched settings: 'lambda_logits=1e-3..1:log; lambda_act=1e-3..1:log; temperature=1..8' "
                   "(also alpha, T, beta, threshold, and lambda_input with --input-mode bias or spikes), or a TOML "
                   "file with a [space] table.")
@click.option("--trials", type=int, default=20, show_default=True, help="Trials in the study (all workers together).")
@click.option("--out", type=click.Path(file_okay=False), default=None,
              help="Study folder (default runs/tune-<dataset>-<method>).")
@click.option("--storage", default=None,
              help="Shared study storage: a journal file (one machine or a shared filesystem), sqlite:///PATH.db "
                   "(one machine) or a database URL (a cluster). Default: <out>/study.journal.")
@click.option("--study", "study_name", default=None, help="Study name in the storage (default: the --out folder's name).")
@click.option("--resume", is_flag=True, help="Continue an existing study with its own space and objectives.")
@click.option("--sampler", default="tpe", show_default=True, help="tpe (multi-objective TPE), nsga2 or random.")
@click.option("--sampler-seed", "seed", type=int, default=None,
              help="Seed of this worker's sampler (workers of one study must not share one).")
@click.option("--precision", default="fixed", show_default=True, help="Hardware model precision for energy: fixed or float.")
@click.option("--engine", default="fast", show_default=True, help="fast (neurokd's model of Loihi) or lava.")
@click.option("--verify", type=int, default=0, show_default=True,
              help="Front exports: re-run N random test samples in Lava against the fast model.")
@click.option("--place-samples", type=int, default=100, show_default=True,
              help="energy:<chip> / latency:<chip>: validation samples each trial's placed student is costed on.")
@click.option("--prune-margin", type=float, default=0.05, show_default=True,
              help="Stop a trial whose val accuracy trails the best finished trial's at the same epoch by more.")
@click.option("--no-prune", is_flag=True, help="Never prune.")
@click.option("--prune-warmup", type=int, default=None, help="First epoch pruning may act on (default half the epochs).")
@click.option("--heartbeat", type=int, default=30, show_default=True, help="Seconds between a running trial's heartbeats.")
@click.option("--grace", type=int, default=None, help="Seconds without heartbeat before a trial is failed and retried "
              "(default 4 x --heartbeat).")
@click.option("--no-references", is_flag=True, help="Do not train the baseline and the method's defaults.")
@click.option("--no-report", is_flag=True, help="Do not write the report of the front.")
@click.option("--no-figures", is_flag=True, help="The report's tables without its figures (front.png is always drawn).")
@_knobs
def tune(dataset, method, objectives, space, trials, out, storage, study_name, resume, sampler, seed, precision, engine,
         verify, place_samples, prune_margin, no_prune, prune_warmup, heartbeat, grace, no_references, no_report, no_figures,
         quiet, config_file,
         **kw) -> None:
    """Search a method's loss weights for the trade-off front (accuracy vs activity vs hardware energy).

    Several workers (processes or machines) started with the same --storage and --study share one study.
    """
    from neurokd import api

    result = api.tune(dataset, method, objectives=objectives, space=space, trials=trials, out=out, storage=storage,
                      study=study_name, resume=resume, config=config_file, progress=False,
                      echo=(lambda msg: None) if quiet else click.echo,
                      sampler=sampler, seed=seed, precision=precision, engine=engine, verify=verify,
                      place_samples=place_samples,
                      prune_margin=None if no_prune else prune_margin, prune_warmup=prune_warmup, heartbeat=heartbeat,
                      grace=grace, references=not no_references, report=not no_report, figures=not no_figures,
                      **_settings(kw))
    if result.knee is not None:
        click.echo(f"knee student: {result.knee}")
    click.echo(f"study folder: {result.out_dir} (pareto.csv, front.png/.pdf, tune.json, report/)")
