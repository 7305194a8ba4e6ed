"""``neurokd export`` and ``neurokd simulate``: parse options, call :mod:`neurokd.deploy`, print.

What they write is described in :mod:`neurokd.deploy`.
"""

from __future__ import annotations

from pathlib import Path

import click

from neurokd import api
from neurokd.deploy import PEER_VARIANTS, TARGETS


def _hardware_options(command):
    """``--hardware``, ``--placer``, ``--chips``, ``--input-mode``, ``--spike-encoding``: place the run's network on a
    chip and cost it (RUN/map/)."""
    command = click.option("--spike-encoding", type=click.Choice(["deterministic", "bernoulli"]), default="deterministic",
                           show_default=True, help="With --input-mode spikes: deterministic rate code, or Bernoulli "
                                                   "spikes (seeded).")(command)
    command = click.option("--input-mode", type=click.Choice(["bias", "spikes", "graded", "host"]), default=None,
                           help="With --hardware: how the chip takes the input: bias (on-chip input layer), spikes "
                                "(host rate coding), graded (Loihi 2 only), host (first layer off chip). Default: "
                                "graded where the chip takes it; graded input on loihi1 needs a mode.")(command)
    command = click.option("--chips", type=int, default=None, help="With --hardware: chips available (default 1).")(command)
    command = click.option("--placer", type=click.Choice(["pack", "balance"]), default="pack", show_default=True,
                           help="With --hardware: pack (fewest cores) or balance (spread the measured load).")(command)
    return click.option("--hardware", default=None, metavar="PRESET|FILE",
                        help="After the run, place the network on loihi1, loihi2 or a chip .toml and cost every "
                             "step: map/ (mapping.csv, cost_report.csv, ...) and a section of energy_report.md.")(command)


@click.command("export")
@click.argument("run_dir", type=click.Path(path_type=Path))
@click.option("--target", type=click.Choice(TARGETS), default="lava", show_default=True,
              help="nir: model.nir only; lava: also run the test split in Lava and check it against PyTorch; "
                   "netx: model.net for Loihi 2 via lava-dl, checked in Lava; onnx: teacher + student step.")
@click.option("--precision", type=click.Choice(["float", "fixed", "both"]), default="float", show_default=True,
              help="Lava floating_pt (must match PyTorch exactly), fixed_pt (Loihi formats), or both.")
@click.option("--samples", type=int, default=None, help="Run only the first N test samples (default: all).")
@click.option("--dt", type=float, default=1e-4, show_default=True, help="Time step written into model.nir.")
@click.option("--input-bits", type=int, default=8, show_default=True, help="Graded input bits in fixed point.")
@click.option("--chunk", "chunk_samples", type=int, default=64, show_default=True,
              help="Samples per Lava run call (progress granularity; one compile).")
@click.option("--engine", type=click.Choice(["auto", "lava", "fast"]), default="auto", show_default=True,
              help="lava: Lava's CPU simulation; fast: neurokd's vectorised bit-exact model of it (whole splits "
                   "in seconds), checked against Lava on --verify random samples; auto: lava where Lava is "
                   "installed, else fast (said in one line).")
@click.option("--verify", type=int, default=None,
              help="With --engine fast: samples re-run in Lava and compared spike for spike (0: none; default 32 "
                   "where Lava is installed, else 0).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@click.option("--model", default=None, help="The run's FILE.py:FUNCTION when its student came from your code "
              "(a run folder never runs code by itself).")
@click.option("--for", "for_peer", type=click.Choice(sorted(PEER_VARIANTS)), default=None,
              help="Also write the graph in the units a peer's importer assumes: norse -> model.norse.nir "
                   "(snnTorch and SpikingJelly read model.nir as it is).")
@_hardware_options
def export(run_dir: Path, target: str, precision: str, samples: int | None, dt: float, input_bits: int,
           chunk_samples: int, engine: str, verify: int, no_progress: bool, model: str | None,
           for_peer: str | None, hardware: str | None, placer: str, chips: int | None, input_mode: str | None,
           spike_encoding: str) -> None:
    """Export RUN_DIR's student to NIR and run it in Lava (CPU), checked against PyTorch."""
    api.export(run_dir, target=target, precision=precision, samples=samples, dt=dt, input_bits=input_bits,
               chunk_samples=chunk_samples, progress=not no_progress, echo=click.echo, engine=engine, verify=verify,
               model=model, for_peer=for_peer, hardware=hardware, placer=placer, chips=chips, input_mode=input_mode,
               spike_encoding=spike_encoding)


@click.command("simulate")
@click.argument("graph", type=click.Path(path_type=Path))
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None,
              help=".npy input: (T, *input_shape) or (N, T, *input_shape), in the graph's own input layout.")
@click.option("--random-input", is_flag=True, help="Bernoulli spikes (see --rate, --samples, --steps, --seed).")
@click.option("--steps", type=int, default=None, help="Time steps (random input; default: graph metadata, else 100).")
@click.option("--samples", type=int, default=1, show_default=True, help="Random input samples.")
@click.option("--rate", type=float, default=0.1, show_default=True, help="Random input spike probability per step.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--target", type=click.Choice(["lava"]), default="lava", show_default=True)
@click.option("--dt", type=float, default=None,
              help="Time step in seconds (default: graph metadata, producer, or the snnTorch signature).")
@click.option("--precision", type=click.Choice(["float", "fixed"]), default="float", show_default=True)
@click.option("--input-bits", type=int, default=8, show_default=True)
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for spikes.npz and reports.")
@click.option("--no-progress", is_flag=True)
@_hardware_options
def simulate(graph: Path, input_path: Path | None, random_input: bool, steps: int | None, samples: int, rate: float,
             seed: int, target: str, dt: float | None, precision: str, input_bits: int, out: Path,
             no_progress: bool, hardware: str | None, placer: str, chips: int | None, input_mode: str | None,
             spike_encoding: str) -> None:
    """Run the NIR file GRAPH (any producer) or a lava-dl netx .net file in the Lava CPU simulation; write spikes.npz per node."""
    api.simulate(graph, out, inputs=input_path, random_input=random_input, steps=steps, samples=samples,
                   rate=rate, seed=seed, dt=dt, precision=precision, input_bits=input_bits,
                   progress=not no_progress, echo=click.echo, hardware=hardware, placer=placer, chips=chips,
                   input_mode=input_mode, spike_encoding=spike_encoding)
