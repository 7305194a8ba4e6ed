"""``neurokd import GRAPH.nir``: parse options, call :func:`neurokd.import_nir`, print the node table.

What it computes and writes: :mod:`neurokd.exporters.nir_inspect`.
"""

from __future__ import annotations

from pathlib import Path

import click

from neurokd.exporters.nir_inspect import DEFAULT_STEPS


def format_summary(summary: dict) -> str:
    """The human-readable table the command prints."""
    lines = [f"{summary['graph']}  (NIR file version {summary['nir_file_version']})"]
    dt = summary["dt"]
    lines.append(f"dt: {dt if dt is not None else 'not needed'}  ({summary['dt_source']})")
    if summary["recurrent_edges"]:
        lines.append("recurrent edges (carry the previous step): " + ", ".join(f"{a} -> {b}" for a, b in summary["recurrent_edges"]))
    for note in summary["warnings"]:
        lines.append(f"warning: {note}")
    lines.append(f"run: {summary['timesteps']} steps x batch {summary['batch']}, Bernoulli input rate {summary['input']['rate']}, seed {summary['seed']}")
    width = max(len(n["name"]) for n in summary["nodes"])
    for n in summary["nodes"]:
        params = ", ".join(
            f"{k}={v:.4g}" if isinstance(v, float) else f"{k}={v.get('all'):.4g}" if isinstance(v, dict) and "all" in v
            else f"{k}{tuple(v['shape'])}" if isinstance(v, dict) else f"{k}={v}"
            for k, v in n["params"].items()
        )
        stat = f"spike rate {n['spike_rate']:.4f}" if "spike_rate" in n else f"mean {n['output_mean']:.4g}"
        lines.append(f"  {n['name']:<{width}}  {n['type']:<9} {str(tuple(n['shape'])):<14} {stat:<18} {params}")
    return "\n".join(lines)


@click.command("import")
@click.argument("graph", type=click.Path(path_type=Path))
@click.option("--dt", type=float, default=None, help="Time step in seconds (default: from the graph, see exporters.conventions).")
@click.option("--steps", type=int, default=None, help=f"Time steps of the random input (default: graph metadata, else {DEFAULT_STEPS}).")
@click.option("--batch", type=int, default=4, show_default=True, help="Random input samples.")
@click.option("--rate", type=float, default=0.2, show_default=True, help="Input spike probability per element and step.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), default=None, help="Write summary.json and outputs.npz here.")
def import_cmd(graph: Path, dt, steps, batch, rate, seed, out) -> None:
    """Wrap a NIR graph (any producer) as a PyTorch module, print its nodes, run it on a seeded input."""
    from neurokd import api

    result = api.import_nir(graph, dt=dt, steps=steps, batch=batch, seed=seed, rate=rate, out=out)
    click.echo(format_summary(result.summary))
    if out is not None:
        click.echo(f"wrote {Path(out) / 'summary.json'} and {Path(out) / 'outputs.npz'}")
