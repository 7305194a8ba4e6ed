"""Figures comparing runs, sized for a two-column paper: accuracy vs energy, activity and SynOps per layer,
and each mapped run's load on the chip's mesh.

Each figure is 3.5 in wide with 8 pt text and written as PNG (300 dpi) and PDF, drawn with
matplotlib's object API on the Agg canvas (no display needed, pyplot's backend left alone). Input:
:class:`~neurokd.hardware.reports.summary.RunRecord`; the mesh figure takes a placement's cost
(:func:`mesh_figure`, a :class:`~neurokd.hardware.placement.MapResult`) or a run's ``map/`` folder as
:func:`~neurokd.hardware.reports.summary.read_map` reads it (:func:`mesh_load_figure`).
"""

from __future__ import annotations

import io
import re
import statistics
from pathlib import Path
from typing import Sequence

from neurokd import fileio

WIDTH_IN = 3.5
RC = {
    "font.size": 8, "axes.labelsize": 8, "axes.titlesize": 8, "xtick.labelsize": 7, "ytick.labelsize": 7,
    "legend.fontsize": 7, "lines.markersize": 4, "axes.spines.top": False, "axes.spines.right": False,
    "savefig.bbox": "tight", "savefig.pad_inches": 0.02, "pdf.fonttype": 42,
}
MARKERS = "osD^vP*Xh"


def _figure(height_in: float):
    """A matplotlib Figure drawn by the Agg canvas, without pyplot (no global backend switch)."""
    from matplotlib.figure import Figure

    fig = Figure(figsize=(WIDTH_IN, height_in))
    return fig, fig.subplots()


def _cmap():
    import matplotlib

    return matplotlib.colormaps["tab10"]


def _rc():
    import matplotlib

    return matplotlib.rc_context(RC)


def _save(fig, out: Path, stem: str) -> dict[str, Path]:
    """Write ``stem.png`` and ``stem.pdf`` atomically; characters other than letters, digits, ``.``, ``-``
    and ``_`` in ``stem`` become ``_`` (a setting named by a --model FILE.py:FUNCTION path holds ``/``, ``:``)."""
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", stem)
    paths = {}
    for ext, kw in (("png", {"dpi": 300}), ("pdf", {})):
        buf = io.BytesIO()
        fig.savefig(buf, format=ext, **kw)
        path = out / f"{stem}.{ext}"
        fileio.write_bytes(path, buf.getvalue())
        paths[path.name] = path
    return paths


def _methods(runs) -> list[str]:
    return list(dict.fromkeys(r.method for r in runs))


def _mean_std(values: list[float]) -> tuple[float, float]:
    return statistics.fmean(values), (statistics.stdev(values) if len(values) > 1 else 0.0)


def accuracy_vs_energy(runs: Sequence, model: str, out: Path, stem: str) -> dict[str, Path]:
    """Test accuracy (%) against energy per inference (nJ, log scale), one point per run; teachers as stars."""
    with _rc():
        fig, ax = _figure(2.4)
        cmap = _cmap()
        for i, method in enumerate(_methods(runs)):
            rs = [r for r in runs if r.method == method]
            ax.scatter([float(r.total(model)["energy_pj_per_sample"]) / 1e3 for r in rs],
                       [100 * r.accuracy for r in rs], color=cmap(i % 10), marker=MARKERS[i % len(MARKERS)],
                       label=method, zorder=3)
        teachers = [(r.teacher_pj(model), r.teacher_accuracy) for r in runs]
        teachers = [(e, a) for e, a in teachers if e is not None and a is not None]
        if teachers:
            ax.scatter([e / 1e3 for e, _ in teachers], [100 * a for _, a in teachers], color="0.3", marker="*",
                       s=40, label="ANN teacher", zorder=3)
        xs = [float(r.total(model)["energy_pj_per_sample"]) / 1e3 for r in runs] + [e / 1e3 for e, _ in teachers]
        if min(xs) > 0 and max(xs) / min(xs) > 8:  # log scale only where the points span an order of magnitude
            ax.set_xscale("log")
            from matplotlib.ticker import NullFormatter

            ax.xaxis.set_minor_formatter(NullFormatter())
        ax.set_xlabel(f"Energy per inference (nJ, {model} model)")
        ax.set_ylabel("Test accuracy (%)")
        ax.grid(True, which="major", linewidth=0.3, alpha=0.5)
        ax.legend(frameon=False, loc="best", ncol=2 if len(_methods(runs)) > 3 else 1)
        paths = _save(fig, out, stem)
    return paths


def _grouped_bars(ax, layers: list[str], methods: list[str], values: dict, cmap, hatch_values: dict | None = None):
    """Bars per layer, one per method (mean over seeds, std as error bar)."""
    width = 0.8 / max(len(methods), 1)
    for i, method in enumerate(methods):
        xs, ms, ss = [], [], []
        for j, layer in enumerate(layers):
            vals = values.get((method, layer), [])
            if not vals:
                continue
            m, s = _mean_std(vals)
            xs.append(j - 0.4 + width * (i + 0.5))
            ms.append(m)
            ss.append(s)
        ax.bar(xs, ms, width, yerr=ss if any(ss) else None, color=cmap(i % 10), label=method,
               error_kw={"elinewidth": 0.6, "capsize": 1.5})
        if hatch_values:
            hx, hm = [], []
            for j, layer in enumerate(layers):
                vals = hatch_values.get((method, layer), [])
                if vals and any(vals):
                    hx.append(j - 0.4 + width * (i + 0.5))
                    hm.append(statistics.fmean(vals))
            if hx:
                ax.bar(hx, hm, width, fill=False, hatch="////", edgecolor="0.2", linewidth=0.0)
    ax.set_xticks(range(len(layers)))
    # a 3.5 in column holds about 40 characters of labels side by side; more are set at an angle
    crowded = sum(len(name) + 1 for name in layers) > 40
    ax.set_xticklabels(layers, rotation=45 if crowded else 0, ha="right" if crowded else "center",
                       rotation_mode="anchor")


def activity_per_layer(runs: Sequence, out: Path, stem: str) -> dict[str, Path]:
    """Spikes per neuron per time step of each spiking layer, bars per method (mean ± std over seeds)."""
    layers = list(dict.fromkeys(k for r in runs for k in r.activity_per_layer))
    methods = _methods(runs)
    values: dict = {}
    for r in runs:
        for k, v in r.activity_per_layer.items():
            values.setdefault((r.method, k), []).append(v)
    with _rc():
        fig, ax = _figure(2.2)
        _grouped_bars(ax, layers, methods, values, _cmap())
        ax.set_xlabel("Spiking layer")
        ax.set_ylabel("Activity (spikes / neuron / step)")
        ax.legend(frameon=False, ncol=min(len(methods), 4), loc="lower center", bbox_to_anchor=(0.5, 1.0))
        paths = _save(fig, out, stem)
    return paths


def synops_per_layer(runs: Sequence, out: Path, stem: str) -> dict[str, Path]:
    """Synaptic operations per inference of each connection layer, bars per method (log scale).

    The bar is SynOps + MACs; the hatched part is the MACs of graded input events (first layer).
    """
    methods = _methods(runs)
    layers: list[str] = []
    values: dict = {}
    macs: dict = {}
    for r in runs:
        for row in r.layer_rows():
            if not set(row["kind"].split("+")) & {"dense", "conv", "pool"}:
                continue
            if row["layer"] not in layers:
                layers.append(row["layer"])
            s = float(row["synops_per_sample"] or 0)
            m = float(row.get("macs_per_sample") or 0)
            values.setdefault((r.method, row["layer"]), []).append(s + m)
            macs.setdefault((r.method, row["layer"]), []).append(m)
    with _rc():
        fig, ax = _figure(2.2)
        _grouped_bars(ax, layers, methods, values, _cmap(), hatch_values=macs)
        ax.set_yscale("log")
        ax.set_xlabel("Connection layer (hatched: MACs of graded input)")
        ax.set_ylabel("Synaptic ops per inference")
        ax.legend(frameon=False, ncol=min(len(methods), 4), loc="lower center", bbox_to_anchor=(0.5, 1.0))
        paths = _save(fig, out, stem)
    return paths


def _mesh(cores: Sequence[dict], tiles_x: int, tiles_y: int, n_chips: int, bottleneck: int | None, title: str):
    """The mesh drawing: ``cores`` are dicts with ``core``, ``x``, ``y`` (global mesh position, chips side by
    side along x), ``layer`` and ``busy_ns`` (per inference). Each tile shows its busiest core's time."""
    import numpy as np
    from matplotlib.figure import Figure
    from matplotlib.patches import Rectangle

    width = tiles_x * n_chips
    grid = np.full((tiles_y, width), np.nan)
    for c in cores:
        x, y = int(c["x"]), int(c["y"])
        cur = grid[y, x]
        grid[y, x] = c["busy_ns"] if np.isnan(cur) else max(cur, c["busy_ns"])
    fig = Figure(figsize=(min(max(WIDTH_IN, 1.2 + 0.36 * width), 7.16), 0.9 + 0.36 * tiles_y))
    ax = fig.subplots()
    im = ax.imshow(grid / 1e3, origin="lower", cmap="viridis", aspect="equal", vmin=0.0)
    fig.colorbar(im, ax=ax, label="busiest core's busy time\nper inference (us)", shrink=0.9, pad=0.02)
    top = np.nanmax(grid) if np.isfinite(grid).any() else 0.0
    for y, x in zip(*np.nonzero(np.isfinite(grid))):           # each used tile's figure, readable without the bar
        ax.text(x, y, f"{grid[y, x] / 1e3:.3g}", ha="center", va="center", fontsize=5,
                color="black" if grid[y, x] > 0.6 * top else "white")
    where = next((c for c in cores if int(c["core"]) == bottleneck), None) if bottleneck is not None else None
    if where is not None:
        ax.add_patch(Rectangle((int(where["x"]) - 0.5, int(where["y"]) - 0.5), 1, 1, fill=False, edgecolor="red",
                               linewidth=1.5))
    for k in range(1, n_chips):
        ax.axvline(k * tiles_x - 0.5, color="white", linewidth=1.5)
    ax.set_xticks(range(width))
    ax.set_yticks(range(tiles_y))
    ax.tick_params(length=0)
    for side in ("top", "right"):
        ax.spines[side].set_visible(True)
    ax.set_xlabel("mesh x (tiles; chips side by side)")
    ax.set_ylabel("mesh y")
    note = f"; red: bottleneck core {where['core']} ({where['layer']})" if where is not None else ""
    ax.set_title(f"{title}\n{len(cores)} cores{note}", fontsize=7)
    return fig


def mesh_figure(mapped, path: str | Path) -> Path:
    """``mesh_load.png`` of a costed :class:`~neurokd.hardware.placement.MapResult`: each chip's tiles as a grid
    (x east, y north), coloured by the busy time per inference of the tile's busiest core, the bottleneck
    core's tile outlined in red; unused tiles blank. Written atomically; returns ``path``."""
    pl, c = mapped.placement, mapped.cost
    chip = pl.chip
    busy = c.core_ns.sum(axis=0).mean(axis=0)
    cores = [{"core": k.core, "x": k.x, "y": k.y, "layer": k.layer, "busy_ns": float(busy[k.core])} for k in pl.cores]
    with _rc():
        fig = _mesh(cores, chip["mesh.tiles_x"], chip["mesh.tiles_y"], pl.n_chips, c.bottleneck()["core"],
                    f"{chip.name}, placer {pl.placer}")
        buf = io.BytesIO()
        fig.savefig(buf, format="png", dpi=300)
    path = Path(path)
    fileio.write_bytes(path, buf.getvalue())
    return path


def mesh_load_figure(mapping, out: Path, stem: str, title: str = "") -> dict[str, Path]:
    """The mesh figure of a run's ``map/`` folder (:class:`~neurokd.hardware.reports.summary.MapSummary`),
    PNG and PDF; {} when the folder holds no per-core cost."""
    if not mapping.core_rows:
        return {}
    with _rc():
        fig = _mesh(mapping.core_rows, mapping.tiles_x, mapping.tiles_y, mapping.chips, mapping.bottleneck_core,
                    f"{title + ', ' if title else ''}{mapping.hardware}, {mapping.placer}")
        return _save(fig, out, stem)


def write_figures(runs: Sequence, out_dir: str | Path, models: Sequence[str]) -> dict[str, Path]:
    """All comparison figures, per dataset: ``accuracy_energy_<model>_<dataset>``,
    ``activity_layers_<dataset>``, ``synops_layers_<dataset>`` (PNG and PDF); and per run with a costed
    ``map/`` folder ``mesh_load_<run folder>`` (its per-core load on the mesh)."""
    out = Path(out_dir)
    paths: dict[str, Path] = {}
    for dataset in dict.fromkeys(r.dataset for r in runs):
        rs = [r for r in runs if r.dataset == dataset]
        for m in models:
            paths.update(accuracy_vs_energy(rs, m, out, f"accuracy_energy_{m}_{dataset}"))
        if any(r.activity_per_layer for r in rs):
            paths.update(activity_per_layer(rs, out, f"activity_layers_{dataset}"))
        paths.update(synops_per_layer(rs, out, f"synops_layers_{dataset}"))
    names = [r.path.name for r in runs]
    for r in runs:
        if getattr(r, "mapping", None) is None:
            continue
        # two run folders of one name (under different parents) keep their parent's name in the stem
        stem = r.path.name if names.count(r.path.name) == 1 else f"{r.path.parent.name}_{r.path.name}"
        paths.update(mesh_load_figure(r.mapping, out, f"mesh_load_{stem}", title=r.path.name))
    return paths


__all__ = ["accuracy_vs_energy", "activity_per_layer", "synops_per_layer", "mesh_figure", "mesh_load_figure",
           "write_figures"]
