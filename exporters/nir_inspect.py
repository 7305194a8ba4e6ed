"""Inspect any NIR graph: read it, run it as a PyTorch module on a seeded input, summarise every node.

The work behind ``neurokd import GRAPH.nir`` and :func:`neurokd.import_nir`.

The graph is read and validated by :func:`neurokd.exporters.from_nir.read_nir` and run by
:func:`neurokd.exporters.from_nir.nir_to_torch` (the runnable PyTorch module, for use from
Python). The input is random: Bernoulli spikes with probability ``rate`` per element and step
(most NIR graphs take events), ``steps x batch`` of them, from ``seed``. With ``--out DIR``:

- ``DIR/summary.json``: file, dt and the rule that chose it, recurrent edges, warnings, and per
  node its type, shape, parameter summary and output statistics (mean; spike rate for spiking nodes);
- ``DIR/outputs.npz``: every node's output, ``(T, B, *shape)`` float32, keyed by node name.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np

from neurokd.errors import NeurokdError

DEFAULT_STEPS = 100
SPIKING = ("LIF", "CubaLIF", "IF", "Threshold")


def _param_summary(node) -> dict:
    """Each parameter of a node: its value if constant, else shape and range."""
    out = {}
    for key, value in vars(node).items():
        if key in ("input_type", "output_type", "metadata") or value is None:
            continue
        if isinstance(value, (str, bytes)):
            out[key] = value if isinstance(value, str) else value.decode()
            continue
        arr = np.asarray(value)
        if arr.dtype.kind not in "biuf":
            continue
        if arr.size == 0:
            out[key] = {"shape": list(arr.shape)}
        elif np.all(arr == arr.reshape(-1)[0]):
            out[key] = float(arr.reshape(-1)[0]) if arr.size == 1 else {"shape": list(arr.shape), "all": float(arr.reshape(-1)[0])}
        else:
            out[key] = {"shape": list(arr.shape), "min": float(arr.min()), "max": float(arr.max())}
    return out


def import_graph(
    path: str | Path,
    dt: float | None = None,
    steps: int | None = None,
    batch: int = 4,
    seed: int = 0,
    rate: float = 0.2,
) -> tuple[dict, dict[str, np.ndarray]]:
    """Read, wrap and run a NIR graph on a seeded random input; return ``(summary, outputs)``."""
    import nir
    import torch

    from neurokd.exporters.from_nir import nir_to_torch, read_nir

    if not 0.0 <= rate <= 1.0:
        raise NeurokdError(f"--rate must be in [0, 1], got {rate}")
    if batch < 1:
        raise NeurokdError(f"--batch must be >= 1, got {batch}")
    path = Path(path)
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        graph = read_nir(path)
        module = nir_to_torch(graph, dt=dt, name=path.name)
    notes = list(dict.fromkeys(str(w.message) for w in caught))
    meta = module.metadata
    T = int(steps) if steps is not None else int(meta.get("timesteps", DEFAULT_STEPS))
    if T < 1:
        raise NeurokdError(f"--steps must be >= 1, got {T}")
    gen = torch.Generator().manual_seed(int(seed))
    x = {
        n: (torch.rand(T, batch, *module.plan.shapes[n], generator=gen) < rate).float() for n in module.plan.inputs
    }
    with torch.no_grad():
        record = module(x, record=True)
    outputs = {n: v.numpy().astype(np.float32) for n, v in record.items()}
    nodes = []
    for name in [n for group in module.plan.groups for n in group]:   # execution order
        node = module.plan.nodes[name]
        kind = type(node).__name__ if not type(node).__name__.startswith("_") else "Identity"
        entry = {"name": name, "type": kind, "shape": list(module.plan.shapes[name]), "params": _param_summary(node)}
        entry["output_mean"] = float(outputs[name].mean())
        if kind in SPIKING:
            entry["spike_rate"] = entry["output_mean"]
        nodes.append(entry)
    try:
        version = nir.serialization.read_version(path)
    except (OSError, KeyError):
        version = None
    summary = {
        "graph": str(path),
        "nir_file_version": version,
        "dt": module.convention.dt,
        "dt_source": module.convention.source,
        "metadata": {k: (v if isinstance(v, (int, float, str, bool)) or v is None else str(v)) for k, v in meta.items()},
        "timesteps": T,
        "batch": batch,
        "seed": seed,
        "input": {"kind": "bernoulli spikes", "rate": rate, "shapes": {n: list(module.plan.shapes[n]) for n in module.plan.inputs}},
        "outputs": module.plan.outputs,
        "recurrent_edges": sorted([list(e) for e in module.plan.delayed]),
        "warnings": notes,
        "nodes": nodes,
    }
    return summary, outputs


def write_import(out: str | Path, summary: dict, outputs: dict[str, np.ndarray]) -> None:
    """Write ``summary.json`` and ``outputs.npz`` into ``out``, atomically."""
    from neurokd.fileio import atomic_path, write_json

    out = Path(out)
    write_json(out / "summary.json", summary)
    with atomic_path(out / "outputs.npz") as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **outputs)
