"""The fast engine against Lava fixed_pt runs recorded on the Python 3.11 stack, so the bit-exactness holds
where Lava cannot run: the core environment (Python 3.13, numpy 2, whose integer promotion rules, NEP 50,
differ from numpy 1.26's).

``tests/data/lava_fixed/``: each network's NIR graph (``NAME.nir``), and ``recorded.npz``: its input and what
Lava 0.10.0 ``fixed_pt`` gave (``run_lava(..., record_steps=True)``: every spike of every layer at every
step, counts, readouts, predictions; membrane voltages for the wrap case). The fast engine quantises the
graph itself (neurokd's ``quantize``, numpy) and must reproduce every value exactly. The cases are
tests/test_fastsim.py's networks: an exported MLP student, a conv net (stride, padding, sum pool composed
into a conv, average pool, IF and LIF), CubaLIF recurrent and with a leaky readout, and the conv net
pushed into Lava's 24-bit conv wrap, u wrap and v saturation. Where Lava is installed a test re-records
every case and requires the recording to be unchanged (``python tests/test_fastsim_recorded.py`` rewrites
it).
"""

from __future__ import annotations

from pathlib import Path

import nir
import numpy as np
import pytest

from neurokd.exporters.from_nir import read_nir
from neurokd.hardware.engines.fastsim import run_fast
from neurokd.hardware.network import ir
from neurokd.hardware.network.quantize import quantize

DATA = Path(__file__).resolve().parent / "data" / "lava_fixed"
CASES = ("mlp", "conv", "cuba_recurrent", "cuba_leaky_readout", "conv_wraps")
GRAPH = {"conv_wraps": "conv"}          # the wrap case runs the conv graph with larger weight exponents
#: Weight-exponent increments that push the conv net into Lava's wraps and saturation (test_fastsim.py).
WRAP_EXP = {("lif1", "conv1"): 8, ("lif2", "conv2"): 5}


def _graphs() -> dict[str, nir.NIRGraph]:
    """The networks of tests/test_fastsim.py (built there; only needed to write the recording)."""
    import torch

    from neurokd.exporters.to_nir import student_to_nir
    from neurokd.models import build_student
    from test_fastsim import conv_graph, cuba_graph

    torch.manual_seed(0)
    student = build_student("mlp", (16,), 5, timesteps=6, beta=0.9, hidden=(24, 12)).eval()
    with torch.no_grad():
        student.net.fc1.weight.mul_(3.0)
        student.net.fc2.weight.mul_(3.0)
    return {"mlp": student_to_nir(student, dt=1e-4), "conv": conv_graph(), "cuba_recurrent": cuba_graph(True),
            "cuba_leaky_readout": cuba_graph(False)}


def _inputs() -> dict[str, np.ndarray]:
    conv_x = np.random.default_rng(3).random((4, 2, 12, 16))
    cuba_x = (np.random.default_rng(4).random((3, 10, 6)) < 0.5).astype(float)
    return {"mlp": np.random.default_rng(0).random((12, 16)), "conv": conv_x, "cuba_recurrent": cuba_x,
            "cuba_leaky_readout": cuba_x, "conv_wraps": conv_x}


def _setup(case: str, x: np.ndarray):
    """The case's network, its fixed-point form (quantised here, wraps applied) and run options."""
    network = ir.from_nir(read_nir(DATA / f"{GRAPH.get(case, case)}.nir"))
    fixed = quantize(network, input_sample=x)
    options = {"timesteps": 6} if x.ndim == len(network.input_shape) + 1 else {}
    if case == "conv_wraps":
        for (layer, syn), bump in WRAP_EXP.items():
            fixed.layers[layer].synapses[syn].weight_exp += bump
        options["record_voltage"] = ["lif1", "lif2"]
    return network, fixed, options


def _arrays(result) -> dict[str, np.ndarray]:
    out = {"predictions": np.asarray(result.predictions)}
    for kind, table in (("spikes", result.spikes), ("counts", result.counts), ("readout", result.readout),
                        ("voltages", result.voltages or {})):
        for name, value in table.items():
            out[f"{kind}/{name}"] = np.asarray(value)
    return out


def _record() -> dict[str, np.ndarray]:
    """Run every case in Lava fixed_pt: ``{CASE:x, CASE:KIND/LAYER: array}``."""
    from neurokd.hardware.engines.lava_backend import run_lava

    recorded = {}
    for case, x in _inputs().items():
        network, fixed, options = _setup(case, x)
        lava = run_lava(network, x, precision="fixed", fixed=fixed, record_steps=True, **options)
        recorded[f"{case}:x"] = x
        recorded.update({f"{case}:{k}": v for k, v in _arrays(lava).items()})
    return recorded


def _recording() -> dict[str, np.ndarray]:
    with np.load(DATA / "recorded.npz") as f:
        return {k: f[k] for k in f.files}


@pytest.mark.parametrize("case", CASES)
def test_fast_fixed_reproduces_every_recorded_lava_value(case):
    rec = _recording()
    x = rec[f"{case}:x"]
    network, fixed, options = _setup(case, x)
    fast = _arrays(run_fast(network, x, precision="fixed", fixed=fixed, record_steps=True, **options))
    expected = {k.split(":", 1)[1]: v for k, v in rec.items() if k.startswith(f"{case}:") and k != f"{case}:x"}
    assert sorted(fast) == sorted(expected)
    spikes = sum(int(v.sum()) for k, v in expected.items() if k.startswith("spikes/"))
    assert spikes > 0.02 * sum(v.size for k, v in expected.items() if k.startswith("spikes/"))   # a real check
    for key, want in expected.items():
        np.testing.assert_array_equal(fast[key], want, err_msg=f"{case}: {key}")
    if case == "conv_wraps":           # the recording holds what the case is about: v saturated at -(2^23 - 1)
        v = expected["voltages/lif1"] * fixed.layers["lif1"].scale * 64
        assert v.min() == -(2 ** 23 - 1)


@pytest.mark.lava
def test_the_recording_is_what_lava_gives_now():
    rec, now = _recording(), _record()
    assert sorted(rec) == sorted(now)
    for key in rec:
        np.testing.assert_array_equal(now[key], rec[key], err_msg=key)


if __name__ == "__main__":      # rewrite the recording (the Python 3.11 stack, with Lava)
    import sys

    sys.path.insert(0, str(Path(__file__).resolve().parent))
    DATA.mkdir(parents=True, exist_ok=True)
    for name, graph in _graphs().items():
        nir.write(DATA / f"{name}.nir", graph)
    np.savez_compressed(DATA / "recorded.npz", **_record())
    print(f"wrote {DATA}")
