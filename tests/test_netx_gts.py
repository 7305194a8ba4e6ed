"""lava-dl's own reference networks (shipped in its wheel, ``tests/lava/lib/dl/netx/gts``) read into
neurokd's IR and run in the fast model: the recorded outputs are reproduced exactly.

Alignment. The fast model's trains are delay-corrected (layer ``k`` at step ``j`` integrates its
source's step ``j``); each recording is shifted by a fixed number of steps, stated per network:
``ntidigits`` (a Lava run of netx, recorded one step after Lava's own sink): 4 steps for the output,
three DelayDense hops + 1 (a netx run in Lava here gives the same trains 3 steps late, 144 s for the
3,000 steps); ``tinynet`` and the ``dense`` block (slayer / Lava block recordings): 1 step;
``pilotnet_lif`` (Loihi 2 hardware, ``reset_interval = 16``): layer ``k`` ``k`` steps, compared over
the first reset window.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from neurokd.errors import NeurokdError
from neurokd.hardware.engines.fastsim import run_fast
from neurokd.hardware.network.ir import from_lava
from conftest import cli
from neurokd.hardware.formats.netx_reader import NetxBuilder, gts_folder, load_netx, optimize_weight_bits, read_netx

pytestmark = pytest.mark.lava


@pytest.fixture(scope="module")
def gts():
    folder = gts_folder()
    assert folder is not None and folder.is_dir(), "lava-dl's wheel ships tests/lava/lib/dl/netx/gts; reinstall lava-dl"
    return folder


def _slayer(arr: np.ndarray) -> np.ndarray:
    """slayer's ``(1, C, H, W, T)`` -> ``(T, C*H*W)`` in PyTorch flat order."""
    a = np.asarray(arr, dtype=np.float64)[0]
    return np.moveaxis(a, -1, 0).reshape(a.shape[-1], -1)


def _lava(arr: np.ndarray, shape) -> np.ndarray:
    """Lava's ``(X, Y, C, T)`` (or ``(n, T)``) -> ``(T, size)`` in PyTorch flat order."""
    a = np.moveaxis(np.asarray(arr, dtype=np.float64), -1, 0)
    if a.ndim == 4:
        a = from_lava(a, tuple(shape))
    return a.reshape(a.shape[0], -1)


def test_ntidigits_gts_every_output_spike_of_3000_steps_with_axonal_delays(gts):
    """The whole file as `neurokd map/simulate --input input.npy` read it (load_netx): the sample's 64 x 3000
    spikes in Lava's layout, the three dense layers with SLAYER's axonal delays (stored per output neuron),
    and the average over 11 groups of 22 output neurons, computed by the host from the reproduced spikes."""
    net, x = load_netx(gts / "ntidigits" / "ntidigits.net", gts / "ntidigits" / "input.npy")
    assert net.layer_types == {"2": "dense", "3": "dense", "4": "dense", "5": "average"}
    assert net.input_kind == "spikes" and x.shape == (1, 3000, 64)
    delays = [getattr(net.fixed.layers[k].synapses[f"{k}.dense"], "delays", None) for k in ("2", "3", "4")]
    assert delays[0].max() == 62 and delays[1].max() > 0 and delays[2] is None
    out = np.load(gts / "ntidigits" / "output.npy")
    res = net.run(x, record_steps=True)
    mine = res.spikes["4"][0].T                                    # (242, 3000)
    assert mine.sum() == out.sum() > 20_000
    np.testing.assert_array_equal(mine[:, :-4], out[:, 4:])
    assert not out[:, :4].any() and not mine[:, -4:].any()
    assert res.run_seconds < 20
    average = net.host_outputs(res)["5"][0]                        # (3000, 11)
    np.testing.assert_array_equal(average[:-4], out[:, 4:].T.reshape(-1, 11, 22).sum(axis=2) / 22)
    assert average.sum(axis=0).argmax() == out.reshape(11, 22, -1).sum(axis=(1, 2)).argmax()


@pytest.mark.lava
def test_ntidigits_axonal_delays_run_in_neurokds_lava_backend_like_the_recording(gts):
    """The same network through neurokd's own Lava build (DelayDense for the delays, one sample per
    run): its first 500 steps equal the fast model's spikes in every layer and lava-dl's recording."""
    from neurokd.hardware.engines.lava_backend import run_lava

    net = read_netx(gts / "ntidigits" / "ntidigits.net", num_layers=5)
    assert net.network.per_sample
    inp, out = np.load(gts / "ntidigits" / "input.npy"), np.load(gts / "ntidigits" / "output.npy")
    x = net.input_from_lava(inp)[:, :500]
    lava = run_lava(net.network, x, precision="fixed", fixed=net.fixed, record_steps=True)
    fast = net.run(x, record_steps=True)
    for name in ("2", "3", "4"):
        np.testing.assert_array_equal(lava.spikes[name], fast.spikes[name], err_msg=name)
    mine = lava.spikes["4"][0].T                                   # (242, 500)
    assert mine.sum() > 1000
    np.testing.assert_array_equal(mine[:, :-4], out[:, 4:500])


def test_tinynet_gts_input_conv_conv_spikes_and_currents(gts):
    """tiny.net: an input LIF driven by its bias (the image), two strided convs with channel biases."""
    net = read_netx(gts.parent / "tiny.net", input_bias=np.load(gts / "tinynet" / "input_bias.npy"))
    steps = 16
    res = net.run(np.zeros((1, steps, 3, 16, 16)), record_steps=True, record_current=["1"])
    for name, file in (("0", "input.npy"), ("1", "layer1.npy"), ("2", "output.npy")):
        ref = _slayer(np.load(gts / "tinynet" / file))
        assert ref.sum() > 50
        np.testing.assert_array_equal(res.spikes[name][0][: steps - 1], ref[1:])
    current = _slayer(np.load(gts / "tinynet" / "current.npy")) * 64          # slayer's u, in Lava's units
    np.testing.assert_array_equal(res.currents["1"][0][: steps - 1] * 64, current[1:])


def test_dense_block_gts_2000_steps(gts):
    """lava-dl's Dense block test: 200 -> 256 CUBA, raw 8-bit weights (no netx optimisation)."""
    weight = np.load(gts / "dense" / "weight.npy")
    b = NetxBuilder((200,))
    b.dense("dense", weight, {"type": "CUBA", "iDecay": 4096, "vDecay": 415, "vThMant": 6}, optimize=False)
    net = b.build()
    inp, out = np.load(gts / "dense" / "in.npy"), np.load(gts / "dense" / "out.npy")
    res = net.run(net.input_from_lava(inp), record_steps=True)
    mine = res.spikes["dense"][0].T
    assert out.sum() > 1000
    np.testing.assert_array_equal(mine[:, :-1], out[:, 1:])
    assert not out[:, 0].any()


def test_pilotnet_lif_loihi2_hardware_gts_spikes_currents_and_voltages(gts):
    """PilotNet LIF recorded on Loihi 2 (image as the input layer's bias, 5 convs, 4 dense): every spike,
    ``u`` and ``v`` of the 10 spiking layers over the first 16-step reset window. The hardware records
    ``v = 128`` for a neuron that just spiked where Lava resets it to 0: the only difference."""
    folder = gts / "pilotnet_lif"
    steps = 16
    net, x = load_netx(folder / "network.net", folder / "image.npy", steps=steps)    # as `--input image.npy --steps 16`
    assert net.input_kind == "bias" and x.shape == (1, steps, 3, 66, 200) and not x.any()
    names = net.network.names
    res = net.run(x, record_steps=True, record_voltage=names, record_current=names)
    files = ["input"] + [f"conv-{i}" for i in range(5)] + [f"fc-{i}" for i in range(3)]
    checked = 0
    for k, (name, file) in enumerate(zip(names, files)):
        layer = net.network.layer(name)
        n = steps - k
        spikes = _lava(np.load(folder / f"{file}.npy"), layer.shape)
        mine = res.spikes[name][0].astype(np.float64)
        np.testing.assert_array_equal(mine[:n], spikes[k:k + n], err_msg=f"spikes of {file}")
        if (folder / f"{file}-u.npy").exists():
            u = _lava(np.load(folder / f"{file}-u.npy"), layer.shape)
            np.testing.assert_array_equal(res.currents[name][0][:n] * 64, u[k:k + n], err_msg=f"u of {file}")
            v = _lava(np.load(folder / f"{file}-v.npy"), layer.shape)[k:k + n]
            mine_v = res.voltages[name][0][:n] * 64
            fired = mine[:n] > 0
            np.testing.assert_array_equal(mine_v[~fired], v[~fired], err_msg=f"v of {file}")
            assert np.all(v[fired] == 128) and np.all(mine_v[fired] == 0)
            checked += 1
    assert checked == 8 and sum(res.counts[n].sum() for n in names) > 100_000


def test_netx_weight_optimisation_keeps_the_files_integers_after_lavas_clip_and_truncate():
    from neurokd.hardware.engines.fastsim import lava_dense_weights

    rng = np.random.default_rng(0)
    for w in (rng.integers(-40, 40, (8, 6)) * 2, rng.integers(-256, 255, (5, 5)), rng.integers(0, 200, (4, 3)),
              -rng.integers(1, 256, (4, 3)), rng.integers(-9, 9, (3, 7))):
        mant, bits, exp = optimize_weight_bits(w)
        eff = lava_dense_weights(mant, bits).astype(np.float64) * 2.0 ** exp
        np.testing.assert_array_equal(eff, w)


def test_pilotnet_sdnn_is_placed_and_its_recorded_output_reproduced_from_the_command_line(gts, tmp_path, capsys):
    """PilotNet SDNN (sigma-delta throughout): `neurokd map --no-cost` places every layer; `neurokd simulate
    --input input.npy --steps 9` (the frame held, as lava-dl's test runs it: a RingBuffer of one step, 9 steps)
    gives netx's recorded output exactly, every step; the spiking engines refuse it in one line."""
    path = gts / "pilotnet_sdnn" / "network.net"
    net = read_netx(path)
    kinds = [l.neuron.kind for l in net.network.layers]
    assert kinds == ["delta"] + ["sigma_delta"] * 7 + ["sigma"] and net.input_kind == "graded"
    assert cli(["map", str(path), "--hardware", "loihi2", "--no-cost", "--chips", "32", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    placed = [line.split(":")[0].strip() for line in out.splitlines() if "core(s)" in line]
    assert placed == [l.name for l in net.network.layers]
    with pytest.raises(NeurokdError, match=r"sigma-delta \(Delta, SigmaDelta, Sigma\) neurons.*`neurokd map --no-cost`"):
        net.run(np.zeros((1, 2, 3, 33, 100)))
    folder = gts / "pilotnet_sdnn"
    assert cli(["simulate", str(path), "--input", str(folder / "input.npy"), "--steps", "9", "--out",
                str(tmp_path / "sim")]) == 0
    out = np.load(tmp_path / "sim" / "spikes.npz")["9"][:, 0, 0]          # (T, N, 1) -> (9,)
    recorded = np.load(folder / "output.npy")[0]
    assert np.count_nonzero(recorded) == 8
    np.testing.assert_array_equal(out, recorded)


def test_ntidigits_is_placed_from_the_command_line_with_its_average_on_the_host(gts, tmp_path, capsys):
    path = gts / "ntidigits" / "ntidigits.net"
    assert cli(["map", str(path), "--hardware", "loihi1", "--no-cost", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "5:    0 core(s),      11 outputs, average of layer 4 computed by the host" in out
    for name, neurons in (("2", 256), ("3", 256), ("4", 242)):
        assert f"{name}:" in out and f"{neurons:7d} neurons" in out


def test_layers_neurokd_does_not_read_are_refused_with_the_reason(gts, tmp_path):
    import h5py

    with h5py.File(tmp_path / "convt.net", "w") as f:
        f.create_dataset("layer/0/type", data=np.array([b"input"]))
        f.create_dataset("layer/0/shape", data=np.array([2, 4, 4]))
        f.create_dataset("layer/1/type", data=np.array([b"convT"]))
        f.create_dataset("layer/1/shape", data=np.array([2, 8, 8]))
    with pytest.raises(NeurokdError, match=r"'convT', which neurokd does not read.*num_layers=1"):
        read_netx(tmp_path / "convt.net")
    with pytest.raises(NeurokdError, match="not found"):
        read_netx(gts / "nope.net")


def test_malformed_netx_files_are_refused_with_one_line(tmp_path):
    import h5py

    (tmp_path / "text.net").write_text("not hdf5")
    with pytest.raises(NeurokdError, match="not an HDF5 file"):
        read_netx(tmp_path / "text.net")
    with h5py.File(tmp_path / "broken.net", "w") as f:
        g = f.create_group("layer/0")
        g.create_dataset("type", data=np.array([b"dense"]))
        g.create_dataset("shape", data=np.array([4, 1, 1]))
    with pytest.raises(NeurokdError, match=r"/layer/0 is malformed"):
        read_netx(tmp_path / "broken.net")
    with h5py.File(tmp_path / "empty.net", "w") as f:
        f.create_group("other")
    with pytest.raises(NeurokdError, match="no /layer group"):
        read_netx(tmp_path / "empty.net")


def test_a_netx_file_written_by_neurokd_reads_back_to_the_same_network(tmp_path):
    """neurokd's netx writer and this reader agree: the file read back runs spike for spike like the
    FixedNetwork it was written from (hidden layers; the readout becomes netx's integrating neuron)."""
    from neurokd.exporters.to_nir import student_to_nir
    from neurokd.hardware.network import ir
    from neurokd.hardware.formats.netx import quantize_netx, read_netx_meta, write_netx
    from neurokd.models import build_student

    torch.manual_seed(1)
    student = build_student("mlp", (12,), 4, timesteps=6, beta=0.8, hidden=(20, 10)).eval()
    with torch.no_grad():
        student.net.fc1.weight.mul_(3.0)
        student.net.fc2.weight.mul_(3.0)
    network = ir.from_nir(student_to_nir(student, dt=1e-4))
    x = np.random.default_rng(2).random((6, 12))
    fixed = quantize_netx(network, input_sample=x)
    path = write_netx(fixed, tmp_path / "mlp.net", timesteps=6)
    meta = read_netx_meta(path)
    back = read_netx(path, input_message_bits=int(meta["input"]["message_bits"]))
    ref = run_fast(network, x, precision="fixed", fixed=fixed, timesteps=6, record_steps=True)
    x_int = fixed.quantize_input(np.repeat(x[:, None], 6, axis=1))
    got = back.run(x_int, record_steps=True)
    hidden = [l.name for l in network.layers if l.neuron.spiking]
    for i, name in enumerate(hidden):
        mine = got.spikes[back.network.layers[i].name]
        assert ref.spikes[name].sum() > 20
        np.testing.assert_array_equal(mine, ref.spikes[name])
    assert math.prod(back.network.input_shape) == 12
