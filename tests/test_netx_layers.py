"""Every layer type lava-dl's netx files hold (as SLAYER's ``export_hdf5`` writes them), read into neurokd's
IR from small files the tests write: what each layer computes, how ``map`` and ``simulate`` take the file
and its input, and the one-line refusals. The reference networks of lava-dl's wheel are in
``test_netx_gts.py``."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pytest

from conftest import cli
from neurokd.errors import NeurokdError
from neurokd.hardware.formats.netx_reader import NetxBuilder, is_netx, load_netx, read_netx

#: A CUBA neuron that keeps no current from one step to the next and never fires: ``u`` is the step's input.
PASS = {"type": "CUBA", "iDecay": 4096, "vDecay": 4096, "vThMant": 1 << 16}
#: A CUBA neuron that fires on a step's input above 3 (vThMant, in weight units: Lava shifts both by 6) and
#: forgets it at once.
FIRE = {"type": "CUBA", "iDecay": 4096, "vDecay": 4096, "vThMant": 3}
SDNN = {"type": "SDNN", "activation": "relu", "vThMant": 4}


def write_net(path: Path, layers: list[dict]) -> Path:
    """A netx file as SLAYER's export writes it: ``/layer/i/{type, shape, neuron/..., datasets}``."""
    import h5py

    with h5py.File(path, "w") as f:
        for i, spec in enumerate(layers):
            g = f.create_group(f"layer/{i}")
            spec = dict(spec)
            g.create_dataset("type", (1,), "S10", [spec.pop("type").encode("ascii")])
            for key, value in spec.pop("neuron", {}).items():
                g.create_dataset(f"neuron/{key}", data=value.encode("ascii") if isinstance(value, str) else value)
            for key, value in spec.items():
                g.create_dataset(key, data=np.asarray(value))
    return path


def _pool_reference(x: np.ndarray, k: int, w: int) -> np.ndarray:
    """SLAYER's pool: each channel alone, the end padded with ``size % k`` zeros, windows of ``k`` at stride ``k``."""
    n, t, c, h, wd = x.shape
    ph, pw = h + h % k, wd + wd % k
    pad = np.zeros((n, t, c, ph, pw))
    pad[..., :h, :wd] = x
    ho, wo = (ph - k) // k + 1, (pw - k) // k + 1
    return w * pad[..., : ho * k, : wo * k].reshape(n, t, c, ho, k, wo, k).sum(axis=(4, 6))


@pytest.mark.parametrize("size", [4, 5])
def test_pool_sums_each_channels_window_with_slayers_end_padding(size):
    """A 2x2 pool of weight 3 on 2 channels: the even input as a depthwise conv, the odd one (SLAYER pads one
    zero row and column at the end: 3x3 out of 5x5) as a dense matrix of the same sums; exact integers."""
    out = (size + size % 2) // 2
    b = NetxBuilder((2, size, size))
    b.pool("p", np.full((1, 1, 2, 2), 3), PASS, (2, out, out), (2, 2), (2, 2))
    net = b.build()
    syn = net.network.layers[0].synapses[0]
    assert syn.kind == ("conv" if size % 2 == 0 else "dense") and net.layer_types == {"p": "pool"}
    x = (np.random.default_rng(size).random((2, 6, 2, size, size)) < 0.5).astype(np.float64)
    res = net.run(x, record_steps=True, record_current=["p"])
    ref = _pool_reference(x, 2, 3).reshape(2, 6, -1)
    assert ref.sum() > 100
    np.testing.assert_array_equal(res.currents["p"], ref)


def test_pool_with_another_output_size_is_refused():
    b = NetxBuilder((1, 4, 4))
    with pytest.raises(NeurokdError, match=r"pool layer p: output .* != stored shape \(1, 3, 3\)"):
        b.pool("p", np.ones((1, 1, 2, 2)), PASS, (1, 3, 3), (2, 2), (2, 2))


def test_average_is_a_host_layer_on_no_core_that_means_groups_of_the_last_layer(tmp_path, capsys):
    """SLAYER's average (N-TIDIGITS' last layer): 4 neurons in 2 groups, computed by the host from the output
    spikes; the placement puts it on no core (NxSDK compiled it to none) and says so."""
    w = np.array([[1, 0, 0], [0, 1, 0], [0, 0, 1], [1, 1, 0]]) * 4
    path = write_net(tmp_path / "avg.net", [
        {"type": "input", "shape": [3, 1, 1]},
        {"type": "dense", "shape": [4, 1, 1], "weight": w, "neuron": FIRE},
        {"type": "average", "shape": [2, 1, 1]},
    ])
    net = read_netx(path)
    assert net.layer_types == {"1": "dense", "2": "average"} and net.input_kind == "spikes"
    (host,) = net.network.host_layers
    assert (host.kind, host.source, host.shape) == ("average", "1", (2,))
    x = (np.random.default_rng(0).random((3, 12, 3)) < 0.5).astype(np.float64)
    res = net.run(x, record_steps=True)
    spikes = res.spikes["1"]
    assert spikes.sum() > 20
    np.testing.assert_array_equal(net.host_outputs(res)["2"], spikes.reshape(3, 12, 2, 2).mean(axis=3))
    assert cli(["map", str(path), "--hardware", "loihi1", "--no-cost", "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "2:    0 core(s),       2 outputs, average of layer 1 computed by the host" in out
    assert "2 cores" in out              # layer 1 and loihi1's input compartments (spikes: input.spike_input_layer)
    placement = json.loads((tmp_path / "m" / "placement.json").read_text())
    assert "layer 2 (average of layer 1, 2 outputs) is computed by the host: no core" in placement["notes"]


@pytest.mark.parametrize("layers, match", [
    ([{"type": "input", "shape": [3, 1, 1]}, {"type": "average", "shape": [2, 1, 1]}], "no layer before it"),
    ([{"type": "input", "shape": [3, 1, 1]}, {"type": "dense", "shape": [4, 1, 1], "weight": np.ones((4, 3)),
                                              "neuron": FIRE}, {"type": "average", "shape": [3, 1, 1]}],
     "4 neurons of layer 1 do not split into 3 equal groups"),
    ([{"type": "input", "shape": [3, 1, 1]}, {"type": "dense", "shape": [4, 1, 1], "weight": np.ones((4, 3)),
                                              "neuron": FIRE}, {"type": "average", "shape": [2, 1, 1]},
      {"type": "dense", "shape": [2, 1, 1], "weight": np.ones((2, 2)), "neuron": FIRE}],
     "an average must be the last layer"),
    ([{"type": "input", "shape": [3, 1, 1]}, {"type": "convT", "shape": [3, 1, 1]}],
     "type 'convT', which neurokd does not read"),
])
def test_average_and_unknown_layers_are_refused_with_one_line(tmp_path, layers, match):
    with pytest.raises(NeurokdError, match=match):
        read_netx(write_net(tmp_path / "bad.net", layers))


def _shifted(spikes: np.ndarray, delays: np.ndarray) -> np.ndarray:
    """``spikes (N, T, n)`` with neuron ``j``'s train ``delays[j]`` steps later."""
    out = np.zeros_like(spikes)
    t = spikes.shape[1]
    for j, d in enumerate(delays):
        out[:, d:, j] = spikes[:, : t - d, j]
    return out


def test_axonal_delays_of_a_dense_layer_delay_each_neurons_spikes(tmp_path):
    """SLAYER stores a layer's axonal delays per output neuron (floats, floored); netx runs them on the
    layer's own input rows: a neuron at rest without bias then fires exactly ``delay`` steps later."""
    w = np.random.default_rng(1).integers(-3, 8, (5, 4)) * 8
    common = [{"type": "input", "shape": [4, 1, 1]}]
    delays = np.array([0.0, 1.0, 2.7, 5.0, 3.2])
    plain = read_netx(write_net(tmp_path / "plain.net", common + [
        {"type": "dense", "shape": [5, 1, 1], "weight": w, "neuron": FIRE}]))
    late = read_netx(write_net(tmp_path / "late.net", common + [
        {"type": "dense", "shape": [5, 1, 1], "weight": w, "neuron": FIRE, "delay": delays}]))
    syn = late.network.layers[0].synapses[0]
    np.testing.assert_array_equal(syn.delays[:, 0], [0, 1, 2, 5, 3])
    x = (np.random.default_rng(2).random((2, 30, 4)) < 0.4).astype(np.float64)
    a, b = plain.run(x, record_steps=True).spikes["1"], late.run(x, record_steps=True).spikes["1"]
    assert a.sum() > 30
    np.testing.assert_array_equal(b, _shifted(a, [0, 1, 2, 5, 3]))


def test_axonal_delays_of_a_conv_layer_run_as_a_dense_delay_line():
    """A conv with delays (netx drops them; SLAYER stores them): the same rule, on the convolution
    multiplied out into a DelayDense; each output neuron fires its delay later than the plain conv."""
    rng = np.random.default_rng(3)
    w = rng.integers(-2, 6, (2, 1, 2, 2))
    delays = rng.integers(0, 4, 2 * 3 * 3)

    def build(delay):
        b = NetxBuilder((1, 4, 4))
        b.conv("c", w, FIRE, (2, 3, 3), delay=delay)
        return b.build()

    plain, late = build(None), build(delays)
    assert plain.network.layers[0].synapses[0].kind == "conv"
    syn = late.network.layers[0].synapses[0]
    assert syn.kind == "dense" and syn.delays.max() == delays.max()
    x = (rng.random((2, 25, 1, 4, 4)) < 0.5).astype(np.float64)
    a, b = plain.run(x, record_steps=True).spikes["c"], late.run(x, record_steps=True).spikes["c"]
    assert a.sum() > 30
    np.testing.assert_array_equal(b, _shifted(a, delays))


def _sdnn_file(tmp_path: Path) -> Path:
    rng = np.random.default_rng(4)
    return write_net(tmp_path / "sdnn.net", [
        {"type": "input", "shape": [2, 6, 6], "neuron": SDNN},
        {"type": "conv", "shape": [4, 4, 4], "weight": rng.integers(-20, 20, (4, 2, 3, 3)), "bias": np.zeros(4),
         "stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1, "neuron": SDNN},
        {"type": "flatten", "shape": [64, 1, 1]},
        {"type": "dense", "shape": [3], "weight": rng.integers(-20, 20, (3, 64)),
         "neuron": {**SDNN, "sigma_output": True}},
    ])


def test_a_sigma_delta_network_is_placed_and_simulated_but_not_costed(tmp_path, capsys):
    """SDNN (PilotNet SDNN's kind): Delta input, SigmaDelta conv, Sigma output, all graded (16-bit messages);
    `map --no-cost` places it and `simulate` runs it (neurokd's sigma-delta model); a cost, or the spiking
    engines, are refused in one line (exit 2)."""
    path = _sdnn_file(tmp_path)
    net = read_netx(path)
    assert [l.neuron.kind for l in net.network.layers] == ["delta", "sigma_delta", "sigma"]
    assert not any(l.neuron.spiking or l.neuron.simulated for l in net.network.layers)
    assert net.input_kind == "graded"
    with pytest.raises(NeurokdError, match=r"layer\(s\) 0, 1, 3 have sigma-delta \(Delta, SigmaDelta, Sigma\) neurons.*`neurokd map --no-cost`"):
        net.run(np.zeros((1, 2, 2, 6, 6)))
    assert cli(["map", str(path), "--hardware", "loihi2", "--no-cost", "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    # loihi2 cuts an input or conv layer along W in power-of-two column tiles (here 4 + 2 of W = 6), as Intel's
    # compiler cut PilotNet's (SILICON.md section 1; chips/loihi2.toml core.conv_cut_w)
    for name, cores, neurons in (("0", 2, 72), ("1", 1, 64), ("3", 1, 3)):
        assert f"{name}:    {cores} core(s), {neurons:7d} neurons" in out
    np.save(tmp_path / "x.npy", np.random.default_rng(8).integers(-9, 9, (6, 6, 2, 4)))
    for argv in (["map", str(path), "--hardware", "loihi2", "--input", str(tmp_path / "x.npy"), "--out",
                  str(tmp_path / "m2")],
                 ["simulate", str(path), "--input", str(tmp_path / "x.npy"), "--hardware", "loihi2", "--out",
                  str(tmp_path / "s")]):
        assert cli(argv) == 2
        err = capsys.readouterr().err
        assert "placement cost does not charge yet" in err and "--no-cost" in err and "Traceback" not in err
    assert cli(["simulate", str(path), "--input", str(tmp_path / "x.npy"), "--steps", "6", "--out",
                str(tmp_path / "s")]) == 0
    messages = np.load(tmp_path / "s" / "spikes.npz")
    assert messages["0"].shape == (6, 1, 2, 6, 6) and messages["3"].shape == (6, 1, 3)
    assert np.count_nonzero(messages["1"]) > 10 and np.count_nonzero(messages["3"]) > 3


def test_the_sigma_delta_model_sends_changes_above_threshold_and_sums_them_in_sigma():
    """By hand (lava.proc.sdn fixed_pt, netx's exponents 6 + 6): a Delta input held for 4 steps sends
    ``x << 6`` once where ``|x| >= vth`` (never where below: the residue stays under threshold), then the
    changes of a new value; a Sigma output adds ``W m`` of the previous step's messages."""
    from neurokd.hardware.engines.sigma_delta import run_sigma_delta

    b = NetxBuilder((3,), 16)
    b.input("in", {"type": "SDNN", "vThMant": 4}, (3,))
    b.dense("out", np.array([[1, 2, -3]]), {"type": "SDNN", "vThMant": 0, "sigma_output": True})
    net = b.build()
    x = np.array([[5.0, 3.0, -6.0]] * 4 + [[7.0, 3.0, -6.0]] * 2)[None]          # (1, 6, 3)
    res = run_sigma_delta(net.network, net.fixed, x)
    sent = res.messages["in"][0]
    np.testing.assert_array_equal(sent, [[5 << 6, 0, -6 << 6], [0, 0, 0], [0, 0, 0], [0, 0, 0],
                                         [0, 0, 0], [0, 0, 0]])           # the change 5 -> 7 is below vth 4
    expect = np.concatenate([[0], np.cumsum(sent[:-1] @ np.array([1, 2, -3]))])
    np.testing.assert_array_equal(res.messages["out"][0, :, 0], expect)
    x[0, 4:, 0] = 10                                                      # a change of 5 >= vth: sent
    res = run_sigma_delta(net.network, net.fixed, x)
    np.testing.assert_array_equal(res.messages["in"][0, :, 0], [5 << 6, 0, 0, 0, 5 << 6, 0])


def _bias_file(tmp_path: Path) -> Path:
    """An input LIF layer of shape (C, H, W) = (2, 3, 4), driven by its bias, then a dense readout."""
    return write_net(tmp_path / "bias.net", [
        {"type": "input", "shape": [2, 3, 4], "neuron": {"type": "CUBA", "iDecay": 4096, "vDecay": 0,
                                                          "vThMant": 4}},
        {"type": "flatten", "shape": [24, 1, 1]},
        {"type": "dense", "shape": [2, 1, 1], "weight": np.ones((2, 24)), "neuron": FIRE},
    ])


def test_a_bias_driven_input_layer_takes_its_bias_in_netx_layout_held_for_steps(tmp_path, capsys):
    """As lava-dl's pilotnet_lif/image.npy: the bias in Lava's (X, Y, C) = (W, H, C) layout. A bias at
    (x=3, y=1, c=0) makes exactly neuron (c=0, y=1, x=3) of the input layer fire, every step."""
    path = _bias_file(tmp_path)
    assert read_netx(path).input_kind == "bias"
    bias = np.zeros((4, 3, 2), dtype=np.int32)
    bias[3, 1, 0] = 5                       # v = 5 > vth 4 each step (bias_mant and vth both << 6): fires every step
    np.save(tmp_path / "bias.npy", bias)
    net, x = load_netx(path, tmp_path / "bias.npy", steps=8)
    assert x.shape == (1, 8, 2, 3, 4) and not x.any()
    assert cli(["map", str(path), "--hardware", "loihi2", "--input", str(tmp_path / "bias.npy"), "--steps", "8",
                "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "is the bias of input layer 0, held 8 steps" in out and "bound by" in out


@pytest.mark.lava
def test_a_bias_driven_input_layer_fires_in_lava_where_its_bias_says(tmp_path, capsys):
    """`neurokd simulate` runs the bias-driven netx file in Lava: exactly neuron (c=0, y=1, x=3) fires, every step."""
    path = _bias_file(tmp_path)
    bias = np.zeros((4, 3, 2), dtype=np.int32)
    bias[3, 1, 0] = 5
    np.save(tmp_path / "bias.npy", bias)
    assert cli(["simulate", str(path), "--input", str(tmp_path / "bias.npy"), "--steps", "8", "--out",
                str(tmp_path / "s")]) == 0
    assert "is the bias of input layer 0, held 8 steps" in capsys.readouterr().out
    spikes = np.load(tmp_path / "s" / "spikes.npz")["0"]           # (T, N, C, H, W)
    assert spikes.shape == (8, 1, 2, 3, 4)
    assert spikes[:, 0, 0, 1, 3].sum() == 8 and spikes.sum() == 8


@pytest.mark.parametrize("argv_tail, match", [
    (["--steps", "8", "--input", "{wrong}"], r"shape \(2, 3, 4\); bias.net's input layer takes the data as its bias"),
    (["--input", "{bias}"], "give --steps N"),
    (["--steps", "8", "--input", "{frac}"], "bias is an integer"),
    (["--random-input"], "driven by its bias: give --input BIAS.npy and --steps, not --random-input"),
])
def test_a_bias_input_given_wrongly_is_refused_in_one_line(tmp_path, capsys, argv_tail, match):
    path = _bias_file(tmp_path)
    files = {"wrong": np.zeros((2, 3, 4)), "bias": np.zeros((4, 3, 2)), "frac": np.full((4, 3, 2), 0.5)}
    for k, v in files.items():
        np.save(tmp_path / f"{k}.npy", v)
    tail = [a.format(**{k: str(tmp_path / f"{k}.npy") for k in files}) for a in argv_tail]
    assert cli(["map", str(path), "--hardware", "loihi2", "--out", str(tmp_path / "m"), *tail]) == 2
    err = capsys.readouterr().err
    assert len(err.strip().splitlines()) == 1 and re.search(match, err), err


def test_spike_input_takes_lavas_layout_and_steps_cut_it(tmp_path, capsys):
    """An input layer without neuron: the data in Lava's (n, T) layout (lava-dl's ntidigits/input.npy); it
    runs as the same array in neurokd's (N, T, n); --steps keeps the first steps; non-binary is refused."""
    w = np.eye(5)[[0, 2, 4]] * 4
    path = write_net(tmp_path / "spk.net", [{"type": "input", "shape": [5, 1, 1]},
                                             {"type": "dense", "shape": [3, 1, 1], "weight": w, "neuron": FIRE}])
    data = (np.random.default_rng(5).random((5, 20)) < 0.5).astype(np.float64)
    np.save(tmp_path / "in.npy", data)
    net, x = load_netx(path, tmp_path / "in.npy", steps=15)
    np.testing.assert_array_equal(x[0], data[:, :15].T)
    res = net.run(x, record_steps=True)
    np.testing.assert_array_equal(res.spikes["1"][0], data[[0, 2, 4], :15].T)
    np.save(tmp_path / "graded.npy", data * 3)
    assert cli(["map", str(path), "--input", str(tmp_path / "graded.npy"), "--out", str(tmp_path / "m")]) == 2
    assert "takes binary spikes" in capsys.readouterr().err


def test_netx_files_are_told_from_nir_files(tmp_path):
    import nir

    assert is_netx(_bias_file(tmp_path))
    graph = nir.NIRGraph.from_list(nir.Affine(np.eye(2, dtype=np.float32), np.zeros(2, dtype=np.float32)))
    nir.write(tmp_path / "g.nir", graph)
    assert not is_netx(tmp_path / "g.nir")
    (tmp_path / "t.net").write_text("text")
    assert not is_netx(tmp_path / "t.net") and not is_netx(tmp_path / "missing.net")


def _every_layer_file(tmp_path: Path, conv_i_decay: int = 4096) -> Path:
    """Every layer kind in one file. The delays make it a network that runs one sample at a time, whose biases
    enter through a synapse: exact for the conv's ``iDecay 4096`` (``u = a + b``), refused for a decaying current."""
    rng = np.random.default_rng(6)
    lif = {"type": "CUBA", "iDecay": 1024, "vDecay": 256, "vThMant": 120}
    return write_net(tmp_path / "all.net", [
        {"type": "input", "shape": [2, 8, 8], "neuron": {"type": "CUBA", "iDecay": 4096, "vDecay": 512,
                                                          "vThMant": 12}},
        {"type": "conv", "shape": [4, 6, 6], "weight": rng.integers(-10, 30, (4, 2, 3, 3)), "bias": np.arange(4),
         "stride": [1, 1], "padding": [0, 0], "dilation": [1, 1], "groups": 1,
         "neuron": {**lif, "iDecay": conv_i_decay}},
        {"type": "pool", "shape": [4, 3, 3], "weight": np.full((1, 1, 2, 2), 40), "kernelSize": [2, 2],
         "stride": [2, 2], "padding": [0, 0], "dilation": [1, 1], "neuron": lif},
        {"type": "flatten", "shape": [36, 1, 1]},
        {"type": "dense", "shape": [10, 1, 1], "weight": rng.integers(-20, 60, (10, 36)), "neuron": lif,
         "delay": rng.integers(0, 4, 10).astype(np.float32)},
        {"type": "dense_rec", "shape": [6, 1, 1], "weight": rng.integers(-20, 80, (6, 10)),
         "weight_rec": rng.integers(-30, 30, (6, 6)), "neuron": lif},
        {"type": "average", "shape": [2, 1, 1]},
    ])


def test_every_layer_type_in_one_file_is_read_and_placed(tmp_path, capsys):
    path = _every_layer_file(tmp_path)
    net = read_netx(path)
    assert net.layer_types == {"0": "input", "1": "conv", "2": "pool", "4": "dense", "5": "dense_rec",
                               "6": "average"}
    assert net.network.recurrent and net.network.layers[3].synapses[0].delays is not None
    np.save(tmp_path / "bias.npy", np.random.default_rng(7).integers(0, 8, (8, 8, 2)))
    assert cli(["map", str(path), "--hardware", "loihi1", "--input", str(tmp_path / "bias.npy"), "--steps", "12",
                "--out", str(tmp_path / "m")]) == 0
    out = capsys.readouterr().out
    assert "6:    0 core(s)" in out and "bound by" in out
    path = _every_layer_file(tmp_path, conv_i_decay=1024)
    argv = ["map", str(path), "--hardware", "loihi1", "--out", str(tmp_path / "m")]
    assert cli(argv + ["--input", str(tmp_path / "bias.npy"), "--steps", "12"]) == 2
    assert "layer '1': a membrane bias (v_leak) on a neuron with synaptic current" in capsys.readouterr().err
    assert cli(argv + ["--no-cost"]) == 0


@pytest.mark.lava
def test_every_layer_type_runs_alike_in_lava_and_the_fast_engine(tmp_path):
    """Bias-driven input, conv with channel biases, pool, flatten, dense with axonal delays, dense_rec: every
    spike of neurokd's Lava build (fixed_pt, DelayDense) equals the fast engine's."""
    from neurokd.hardware.engines.lava_backend import run_lava

    path = _every_layer_file(tmp_path)
    net, x = load_netx(path, np.random.default_rng(7).integers(0, 8, (8, 8, 2)), steps=14)
    fast = net.run(x, record_steps=True)
    lava = run_lava(net.network, x, precision="fixed", fixed=net.fixed, record_steps=True)
    for name in net.network.names:
        assert fast.spikes[name].sum() > 0, name
        np.testing.assert_array_equal(lava.spikes[name], fast.spikes[name], err_msg=name)
