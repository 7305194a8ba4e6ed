"""Lava on Python 3.11: neurokd's compatibility finder makes lava-nc and lava-dl importable and runnable."""

from __future__ import annotations

import sys

import numpy as np
import pytest

from neurokd.hardware import lava_compat


def test_patch_rewrites_mutable_bytencoder_defaults_only():
    src = (
        "from __future__ import annotations\n"
        "@dataclass\nclass C:\n"
        "    x: ByteEncoder = ByteEncoder()\n"
        "    name: str = 'ByteEncoder()'\n"
    )
    patched, count = lava_compat.patch_source(src)
    assert count == 1
    assert "x: ByteEncoder = __import__('dataclasses').field(default_factory=ByteEncoder)" in patched
    assert "name: str = 'ByteEncoder()'" in patched
    assert patched.startswith("from __future__ import annotations\n")  # header untouched
    assert patched.count("\n") == src.count("\n")  # line numbers preserved for tracebacks


@pytest.mark.lava
def test_finder_is_installed_on_311_and_var_model_imports():
    import neurokd.hardware  # noqa: F401  (installs the finder)

    assert lava_compat.install() is (sys.version_info >= (3, 11))
    from lava.magma.compiler import var_model

    enc_a, enc_b = var_model.CoreEncoder(), var_model.CoreEncoder()
    assert enc_a.x is not enc_b.x  # one ByteEncoder per instance, as default_factory gives


def _run_lif_dense(tag: str, weights, bias, vth, dv, steps: int):
    import neurokd.hardware  # noqa: F401
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.dense.process import Dense
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.io.source import RingBuffer as Source
    from lava.proc.lif.process import LIF

    n_out, n_in = weights.shape
    rng = np.random.default_rng(0)
    spikes_in = (rng.random((n_in, steps)) < 0.5).astype(float)
    src = Source(data=spikes_in)
    dense = Dense(weights=weights)
    lif = LIF(shape=(n_out,), du=4095 if tag == "fixed_pt" else 1.0, dv=dv, vth=vth, bias_mant=bias)
    sink = Sink(shape=(n_out,), buffer=steps)
    src.s_out.connect(dense.s_in)
    dense.a_out.connect(lif.a_in)
    lif.s_out.connect(sink.a_in)
    try:
        lif.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag=tag))
        out = sink.data.get().copy()
    finally:
        lif.stop()
    return spikes_in, out


@pytest.mark.lava
def test_lif_dense_runs_in_floating_pt_and_matches_numpy():
    w = np.array([[0.6, -0.2, 0.5], [0.3, 0.3, 0.3]])
    steps = 20
    s_in, out = _run_lif_dense("floating_pt", w, bias=np.zeros(2), vth=1.0, dv=0.5, steps=steps)
    # Reference: Dense delivers W s[t-1] at step t; u = a_in (du=1); v = 0.5 v + u; spike v > 1; reset 0.
    v = np.zeros(2)
    ref = np.zeros((2, steps))
    for t in range(steps):
        a = w @ s_in[:, t - 1] if t >= 1 else np.zeros(2)
        v = 0.5 * v + a
        ref[:, t] = v > 1.0
        v[ref[:, t] > 0] = 0.0
    assert ref.sum() > 0
    np.testing.assert_array_equal(out, ref)


@pytest.mark.lava
def test_lif_dense_runs_in_fixed_pt():
    w = np.array([[200, -64, 100], [90, 90, 90]], dtype=np.int32)
    steps = 20
    s_in, out = _run_lif_dense("fixed_pt", w, bias=np.zeros(2, dtype=np.int32), vth=200, dv=2048, steps=steps)
    # Bit-accurate reference (lava fixed_pt): u cleared each step (du=4095), u = a_in << 6;
    # v = (v * (4096 - dv)) >> 12 (sign-magnitude) + u; spike v > vth << 6; reset to 0.
    v = np.zeros(2, dtype=np.int64)
    ref = np.zeros((2, steps))
    for t in range(steps):
        a = (w.astype(np.int64) @ s_in[:, t - 1].astype(np.int64)) if t >= 1 else np.zeros(2, np.int64)
        v = np.sign(v) * ((np.abs(v) * (4096 - 2048)) >> 12) + (a << 6)
        ref[:, t] = v > (200 << 6)
        v[ref[:, t] > 0] = 0
    assert ref.sum() > 0
    np.testing.assert_array_equal(out, ref)


@pytest.mark.lava
def test_lava_dl_netx_imports():
    import neurokd.hardware  # noqa: F401
    from lava.lib.dl import netx

    assert hasattr(netx, "hdf5") and hasattr(netx.hdf5, "Network")


@pytest.mark.lava
def test_lava_imports_after_a_progress_bar_set_the_multiprocessing_context():
    import subprocess

    code = (
        "from tqdm import tqdm\n"
        "for _ in tqdm(range(2), disable=False): pass\n"
        "import multiprocessing as mp; mp.get_context()\n"
        "import neurokd.hardware\n"
        "import lava.magma.runtime.message_infrastructure.multiprocessing\n"
        "print(mp.get_start_method())\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr.splitlines()[-1:]
    assert out.stdout.strip() == "fork"
