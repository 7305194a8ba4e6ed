"""``neurokd map RUN_DIR|GRAPH.nir|NETWORK.net --hardware loihi1|loihi2|FILE --out DIR``: parse options, call
:func:`neurokd.map_network` (work in :func:`neurokd.deploy.map_target`), which prints as it goes.

Places a network on a chip's cores, checks that it fits, and costs every time step from simulated spikes.

The network is the run's ``model.nir`` (written by ``neurokd export RUN --target nir``, which ``map``
does first, saying so, when the run has none), any NIR
file, or a lava-dl netx file (``.net``: :mod:`neurokd.hardware.formats.netx_reader`; its ``--input`` is
the input layer's bias, held ``--steps`` steps, when that layer is bias-driven, else Lava-layout data). Spikes come from neurokd's fast engine (bit-exact with Lava's ``fixed_pt``; ``--precision
float`` for Lava's ``floating_pt``): a run's test split (``--samples N`` of it), a graph's
``--input X.npy`` or ``--random-input``. Writes ``DIR/mapping.csv``, ``DIR/placement.json`` and,
with spikes, ``DIR/cost_report.csv``, ``DIR/cost_steps.csv``, ``DIR/cost_report.md``
(:mod:`neurokd.hardware.placement`) and ``DIR/mesh_load.png`` (the per-core load on the mesh).
``--no-cost`` places only. ``--input-mode bias|spikes|graded|host`` says how the chip takes the input
(:mod:`neurokd.hardware.placement.inputs`; graded input on loihi1 exits 2 naming the modes that work).
A network that does not fit exits 2
with one line naming the layer, the limit, the figure and the excess. ``--sanafe N`` runs the
first N samples (as binary spikes: SANA-FE's inputs send spikes) through SANA-FE on the same
placement and writes ``DIR/sanafe_comparison.csv`` (:mod:`neurokd.hardware.placement.sanafe`;
SANA-FE is GPL-3.0, an optional extra).
"""

from __future__ import annotations

from pathlib import Path

import click

from neurokd.errors import NeurokdError


def _overrides(items: tuple[str, ...]) -> dict[str, float]:
    out = {}
    for item in items:
        key, sep, value = item.partition("=")
        if not sep:
            raise NeurokdError(f"--set {item!r}: expected SECTION.NAME=VALUE, e.g. energy.synop_pj=35.5")
        try:
            out[key.strip()] = float(value)
        except ValueError:
            raise NeurokdError(f"--set {item!r}: {value!r} is not a number") from None
    return out


@click.command("map")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--hardware", default="loihi1", show_default=True,
              help="loihi1, loihi2, loihi2-fitted (time and energy fitted to PilotNet LIF, unvalidated), "
                   "loihi1-sanafe, or a chip .toml file.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for mapping.csv and the cost report.")
@click.option("--placer", type=click.Choice(["pack", "balance"]), default="pack", show_default=True,
              help="pack: fewest cores; balance: spread measured load over the chips' cores.")
@click.option("--chips", type=int, default=1, show_default=True, help="Chips available.")
@click.option("--precision", type=click.Choice(["fixed", "float"]), default="fixed", show_default=True)
@click.option("--samples", type=int, default=None, help="Samples to cost (default: the whole test split / input).")
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None,
              help="NIR files: .npy input (T, *input_shape) or (N, T, *input_shape). netx files: the input layer's "
                   "bias in Lava's (X, Y, C) layout when it is bias-driven, else data (*lava_shape, T).")
@click.option("--random-input", is_flag=True, help="NIR files: Bernoulli input spikes (--rate, --steps, --samples, --seed).")
@click.option("--steps", type=int, default=None)
@click.option("--rate", type=float, default=0.1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--set", "sets", multiple=True, metavar="SECTION.NAME=VALUE",
              help="Override one figure of the chip file, e.g. --set energy.synop_pj=35.5 (repeatable).")
@click.option("--no-cost", is_flag=True, help="Place only; do not run the network.")
@click.option("--input-mode", type=click.Choice(["bias", "spikes", "graded", "host"]), default=None,
              help="How the chip takes the input: bias (an on-chip input layer driven by the value), spikes (host rate "
                   "coding), graded (graded spikes, Loihi 2 only), host (first layer off chip). Default: graded where "
                   "the chip takes it, spikes for 0/1 input; graded input on loihi1 needs a mode.")
@click.option("--spike-encoding", type=click.Choice(["deterministic", "bernoulli"]), default="deterministic",
              show_default=True, help="--input-mode spikes: deterministic rate code, or Bernoulli spikes seeded by --seed.")
@click.option("--sanafe", type=int, default=0, metavar="N",
              help="Cross-check N samples with SANA-FE (optional package `sanafe`, GPL-3.0): sanafe_comparison.csv.")
def map_cmd(target: Path, hardware: str, out: Path, placer: str, chips: int, precision: str, samples: int | None,
            input_path: Path | None, random_input: bool, steps: int | None, rate: float, seed: int,
            sets: tuple[str, ...], no_cost: bool, input_mode: str | None, spike_encoding: str, sanafe: int) -> None:
    """Place TARGET (a run folder, a .nir file or a lava-dl netx .net file) on a chip's cores and cost every time step."""
    from neurokd import api

    api.map_network(target, out, hardware=hardware, placer=placer, chips=chips, precision=precision, samples=samples,
                    inputs=input_path, random_input=random_input, steps=steps, rate=rate, seed=seed,
                    overrides=_overrides(sets), cost=not no_cost, sanafe=sanafe, echo=click.echo, input_mode=input_mode,
                    spike_encoding=spike_encoding)
