"""``neurokd map RUN_DIR|GRAPH.nir --hardware loihi1|loihi2|FILE --out DIR``: place a network on a chip's
cores, check that it fits, and cost every time step from simulated spikes.

The network is the run's ``model.nir`` (written by ``neurokd export RUN --target nir``) or any NIR
file. Spikes come from neurokd's fast engine (bit-exact with Lava's ``fixed_pt``; ``--precision
float`` for Lava's ``floating_pt``): a run's test split (``--samples N`` of it), a graph's
``--input X.npy`` or ``--random-input``. Writes ``DIR/mapping.csv``, ``DIR/placement.json`` and,
with spikes, ``DIR/cost_report.csv``, ``DIR/cost_steps.csv``, ``DIR/cost_report.md``
(:mod:`neurokd.hardware.placement`) and ``DIR/mesh_load.png`` (the per-core load on the mesh).
``--no-cost`` places only. A network that does not fit exits 2
with one line naming the layer, the limit, the figure and the excess. ``--sanafe N`` runs the
first N samples (as binary spikes: SANA-FE's inputs send spikes) through SANA-FE on the same
placement and writes ``DIR/sanafe_comparison.csv`` (:mod:`neurokd.hardware.placement.sanafe`;
SANA-FE is GPL-3.0, an optional extra).
"""

from __future__ import annotations

from pathlib import Path

import click
import numpy as np

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


def _load_npy(path: Path, input_shape: tuple[int, ...]) -> np.ndarray:
    if not path.is_file():
        raise NeurokdError(f"input file not found: {path}")
    try:
        x = np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise NeurokdError(f"{path}: not a numpy .npy array ({exc})") from exc
    k = len(input_shape)
    if x.ndim == k + 1 and tuple(x.shape[1:]) == tuple(input_shape):
        x = x[None]
    if x.ndim != k + 2 or tuple(x.shape[2:]) != tuple(input_shape) or x.dtype.kind not in "biuf":
        dims = ", ".join(str(d) for d in input_shape)
        raise NeurokdError(f"{path}: shape {x.shape} ({x.dtype}); the graph's input needs numbers of shape (T, {dims}) "
                           f"or (N, T, {dims})")
    if not np.all(np.isfinite(x)):
        raise NeurokdError(f"{path}: holds NaN or inf")
    return x.astype(np.float64)


def _run_inputs(run: Path, samples: int | None):
    """A run folder's test inputs and time steps (from its config, as training split them)."""
    from neurokd.config import load_config
    from neurokd.data import load

    cfg = load_config(run / "config.toml")
    splits = load(cfg.dataset, cfg.data_dir, cfg.seed, **cfg.data_options)
    x = splits.test.tensors[0].numpy().astype(np.float64)
    if samples is not None:
        x = x[:samples]
    return x, int(cfg.timesteps)


def map_target(target: str | Path, out: str | Path, hardware: str = "loihi1", placer: str = "pack",
               chips: int = 1, precision: str = "fixed", samples: int | None = None,
               input_path: str | Path | None = None, random_input: bool = False, steps: int | None = None,
               rate: float = 0.1, seed: int = 0, overrides: dict[str, float] | None = None, no_cost: bool = False,
               sanafe: int = 0, echo=print):
    """The work of ``neurokd map`` (module docstring); returns the :class:`~neurokd.hardware.placement.MapResult`."""
    from neurokd.exporters.from_nir import read_nir
    from neurokd.hardware.network import ir
    from neurokd.hardware.placement import place_and_cost, write_outputs

    if precision not in ("fixed", "float"):
        raise NeurokdError(f"--precision must be fixed or float, got {precision!r}")
    if samples is not None and samples < 1:
        raise NeurokdError(f"--samples must be >= 1, got {samples}")
    target = Path(target)
    if target.is_dir():
        graph_path = target / "model.nir"
        if not graph_path.is_file():
            raise NeurokdError(f"{target} has no model.nir: run `neurokd export {target} --target nir` first")
        if input_path is not None or random_input:
            raise NeurokdError("a run folder is mapped on its own test split: --input and --random-input are for NIR files")
    elif target.is_file():
        graph_path = target
    else:
        raise NeurokdError(f"not found: {target} (give a run folder or a .nir file)")
    network = ir.from_nir(read_nir(graph_path), name=graph_path.name)
    x, timesteps = None, None
    if not no_cost:
        if target.is_dir():
            x, timesteps = _run_inputs(target, samples)
        elif input_path is not None:
            if random_input:
                raise NeurokdError("give at most one of --input and --random-input")
            x = _load_npy(Path(input_path), network.input_shape)
            if samples is not None:
                x = x[:samples]
        elif random_input:
            if not 0 <= rate <= 1:
                raise NeurokdError(f"--rate must be in [0, 1], got {rate}")
            n = samples or 1
            t = steps or network.timesteps or 100
            x = (np.random.default_rng(seed).random((n, t, *network.input_shape)) < rate).astype(np.float64)
    result, inputs = None, None
    if x is not None:
        from neurokd.hardware.engines.fastsim import run_fast

        result = run_fast(network, x, precision=precision, timesteps=timesteps if x.ndim == len(network.input_shape) + 1
                          else None, record_steps=True)
        inputs = x
    elif placer == "balance":
        raise NeurokdError("--placer balance needs spikes: map a run folder, or give --input / --random-input")
    mapped = place_and_cost(network, hardware, result=result, inputs=inputs, placer=placer, max_chips=chips,
                            overrides=overrides)
    paths = write_outputs(mapped, out, title=graph_path.parent.name if target.is_dir() else graph_path.name)
    pl = mapped.placement
    echo(f"neurokd: {graph_path.name} on {mapped.chip.name}: {pl.n_cores} cores, {pl.n_chips} chip(s), "
         f"{pl.tiles_used} tiles (placer {pl.placer}, {mapped.seconds.get('place', 0):.2f} s)")
    for pop, ids in pl.layer_cores.items():
        cs = [pl.cores[i] for i in ids]
        echo(f"  {cs[0].layer:>16}: {len(ids):4d} core(s), {sum(c.neurons for c in cs):7d} neurons, "
             f"max {max(c.memory_bytes for c in cs):,} B synaptic memory, max fan-in {max(c.fan_in_axons for c in cs):,}")
    if mapped.cost is not None:
        c, b = mapped.cost, mapped.cost.bottleneck()
        echo(f"neurokd: {c.samples} sample(s): {c.latency_ns / 1e3:.3f} us and {c.energy_pj / 1e6:.4f} uJ per inference "
             f"(routing {c.routing_pj / 1e6:.4f} uJ); {c.inferences_per_s:,.0f} inferences/s; bottleneck core "
             f"{b['core']} ({b['layer']}), bound by {b['bound']}")
    if mapped.cost is not None:
        paths.append(mesh_figure(mapped, Path(out) / "mesh_load.png"))
    if sanafe:
        paths.append(_sanafe_check(network, x, timesteps, sanafe, seed, Path(out), echo))
    echo(f"neurokd: wrote {', '.join(str(p) for p in paths)}")
    return mapped


def mesh_figure(mapped, path: Path) -> Path:
    """``mesh_load.png``: each chip's tiles as a grid (x east, y north), coloured by the busy time per
    inference of the tile's busiest core, the bottleneck core's tile outlined; unused tiles blank."""
    import io

    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    from neurokd import fileio

    pl, c = mapped.placement, mapped.cost
    chip = pl.chip
    tx, ty = chip["mesh.tiles_x"], chip["mesh.tiles_y"]
    busy = c.core_ns.sum(axis=0).mean(axis=0)
    grid = np.full((ty, tx * pl.n_chips), np.nan)
    for core in pl.cores:
        cur = grid[core.y, core.x]
        grid[core.y, core.x] = busy[core.core] if np.isnan(cur) else max(cur, busy[core.core])
    fig = Figure(figsize=(min(2 + 0.5 * tx * pl.n_chips, 14), 1.2 + 0.5 * ty))
    ax = fig.subplots()
    im = ax.imshow(grid / 1e3, origin="lower", cmap="viridis", aspect="equal")
    fig.colorbar(im, ax=ax, label="busiest core's busy time per inference (us)", shrink=0.8)
    b = pl.cores[c.bottleneck()["core"]]
    ax.add_patch(Rectangle((b.x - 0.5, b.y - 0.5), 1, 1, fill=False, edgecolor="red", linewidth=2))
    for k in range(1, pl.n_chips):
        ax.axvline(k * tx - 0.5, color="white", linewidth=2)
    ax.set_xticks(range(tx * pl.n_chips))
    ax.set_yticks(range(ty))
    ax.set_xlabel("mesh x (tiles; chips side by side)")
    ax.set_ylabel("mesh y")
    ax.set_title(f"{chip.name}, placer {pl.placer}: {pl.n_cores} cores; red: bottleneck core {b.core} ({b.layer})",
                 fontsize=8)
    buf = io.BytesIO()
    fig.savefig(buf, format="png", dpi=150, bbox_inches="tight")
    fileio.write_bytes(path, buf.getvalue())
    return path


def _sanafe_check(network, x, timesteps, samples: int, seed: int, out: Path, echo) -> Path:
    """``--sanafe N``: the first N samples as binary spikes through neurokd and SANA-FE -> sanafe_comparison.csv."""
    from neurokd import fileio
    from neurokd.hardware.engines.fastsim import run_fast
    from neurokd.hardware.placement.sanafe import COMPARISON_COLUMNS, cross_check

    if x is None:
        raise NeurokdError("--sanafe needs spikes to run: map a run folder, or give --input / --random-input")
    x = np.asarray(x[:samples], dtype=np.float64)
    if x.ndim == len(network.input_shape) + 1:
        x = np.repeat(x[:, None], timesteps or network.timesteps or 1, axis=1)
    if not np.all((x == 0) | (x == 1)):       # graded input: Bernoulli spikes of probability x / max|x|
        p = np.clip(np.abs(x) / max(float(np.abs(x).max()), 1e-12), 0.0, 1.0)
        x = (np.random.default_rng(seed).random(x.shape) < p).astype(np.float64)
        echo("neurokd: SANA-FE's inputs are spikes: the graded input is sent as Bernoulli spikes (p = |x| / max|x|) "
             "to both neurokd and SANA-FE")
    res = run_fast(network, x, precision="fixed", record_steps=True)
    run_, same, cited, rows = cross_check(network, res, x, samples=samples)
    path = out / "sanafe_comparison.csv"
    fileio.write_csv(path, COMPARISON_COLUMNS, rows)
    by = {r["metric"]: r for r in rows}
    echo(f"neurokd: SANA-FE ({run_.samples} sample(s), {run_.seconds:.1f} s): energy {by['energy_uj']['sanafe']:.4f} uJ, "
         f"neurokd {by['energy_uj']['neurokd_same_figures']:.4f} uJ with the same figures "
         f"({by['energy_uj']['diff_same_pct']:+.1f} %), {by['energy_uj']['neurokd_cited_defaults']:.4f} uJ with its cited "
         f"defaults; latency {by['latency_us']['sanafe']:.2f} us vs {by['latency_us']['neurokd_same_figures']:.2f} us "
         f"({by['latency_us']['diff_same_pct']:+.1f} %)")
    echo(f"  synaptic events per inference: SANA-FE {by['synaptic_events']['sanafe']:,.0f} "
         f"({by['synaptic_events_outside_window']['sanafe']:,.0f} outside neurokd's {x.shape[1]}-step window), neurokd "
         f"{by['synaptic_events']['neurokd_same_figures']:,.0f}, neurokd's cost model on SANA-FE's spikes "
         f"{by['synaptic_events']['neurokd_on_sanafe_spikes']:,.0f}")
    for key in (k for k in by if k.startswith("spikes ") and not k.endswith("outside window")):
        echo(f"  {key} per inference: SANA-FE {by[key]['sanafe']:.1f}, neurokd {by[key]['neurokd_same_figures']:.1f} "
             f"({100 + by[key]['diff_cited_pct']:.3f} % of (sample, step, neuron) agree)")
    return path


@click.command("map")
@click.argument("target", type=click.Path(path_type=Path))
@click.option("--hardware", default="loihi1", show_default=True, help="loihi1, loihi2, or a chip .toml file.")
@click.option("--out", type=click.Path(path_type=Path), required=True, help="Folder for mapping.csv and the cost report.")
@click.option("--placer", type=click.Choice(["pack", "balance"]), default="pack", show_default=True,
              help="pack: fewest cores; balance: spread measured load over the chips' cores.")
@click.option("--chips", type=int, default=1, show_default=True, help="Chips available.")
@click.option("--precision", type=click.Choice(["fixed", "float"]), default="fixed", show_default=True)
@click.option("--samples", type=int, default=None, help="Samples to cost (default: the whole test split / input).")
@click.option("--input", "input_path", type=click.Path(path_type=Path), default=None,
              help="NIR files: .npy input (T, *input_shape) or (N, T, *input_shape).")
@click.option("--random-input", is_flag=True, help="NIR files: Bernoulli input spikes (--rate, --steps, --samples, --seed).")
@click.option("--steps", type=int, default=None)
@click.option("--rate", type=float, default=0.1, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--set", "sets", multiple=True, metavar="SECTION.NAME=VALUE",
              help="Override one figure of the chip file, e.g. --set energy.synop_pj=35.5 (repeatable).")
@click.option("--no-cost", is_flag=True, help="Place only; do not run the network.")
@click.option("--sanafe", type=int, default=0, metavar="N",
              help="Cross-check N samples with SANA-FE (optional package `sanafe`, GPL-3.0): sanafe_comparison.csv.")
def map_cmd(target: Path, hardware: str, out: Path, placer: str, chips: int, precision: str, samples: int | None,
            input_path: Path | None, random_input: bool, steps: int | None, rate: float, seed: int,
            sets: tuple[str, ...], no_cost: bool, sanafe: int) -> None:
    """Place TARGET (a run folder or a .nir file) on a chip's cores and cost every time step."""
    map_target(target, out, hardware=hardware, placer=placer, chips=chips, precision=precision, samples=samples,
               input_path=input_path, random_input=random_input, steps=steps, rate=rate, seed=seed,
               overrides=_overrides(sets), no_cost=no_cost, sanafe=sanafe, echo=click.echo)
