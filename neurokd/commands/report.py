"""``neurokd report``: parse options, call :func:`neurokd.report` (work in :mod:`neurokd.hardware.reports.summary`), print."""

from __future__ import annotations

from pathlib import Path

import click


@click.command("report")
@click.argument("runs", nargs=-1, required=True, type=click.Path(path_type=Path))
@click.option("--out", type=click.Path(path_type=Path), default=Path("reports"), show_default=True,
              help="Folder for summary.csv, summary.md, summary.tex and the figures (mesh_load_RUN for placed runs).")
@click.option("--baseline", default=None,
              help="Method the others are compared with (default: 'baseline' if present, else the first method).")
@click.option("--energy-model", "energy_models", multiple=True,
              help="Energy model(s) to report (repeatable; default: all in the runs' energy_report.csv).")
@click.option("--no-figures", is_flag=True, help="Write the tables only.")
def report(runs: tuple[Path, ...], out: Path, baseline: str | None, energy_models: tuple[str, ...], no_figures: bool) -> None:
    """Compare RUNS (run folders, or folders of run folders): accuracy, activity, SynOps, energy; runs placed on
    a chip (RUN/map/) also cores, chips, latency and energy with routing, and their load on the mesh."""
    from neurokd import api

    paths = api.report(list(runs), out, energy_models=energy_models or None, baseline=baseline, figures=not no_figures)
    click.echo(f"neurokd: wrote {len(paths)} files to {out}: " + ", ".join(sorted(paths)))
