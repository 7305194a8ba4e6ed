"""The chips' compiler rules (storage, budgets, cuts) on small hand-checked layers, and Intel's allocations of
public networks (../shared/research/SILICON.md) that they reproduce.

Networks are built with the netx builder (integer weights, as netx files hold them). Unit and bit counts are
worked out in the comments from the rules each chip file states.
"""

from __future__ import annotations

import numpy as np
import pytest

from neurokd.errors import NeurokdError
from neurokd.hardware.formats.netx_reader import NetxBuilder, gts_folder, read_netx
from neurokd.hardware.placement.chips import load_chip
from neurokd.hardware.placement.place import core_use, place

LIF = {"type": "CUBA", "iDecay": 1024, "vDecay": 128, "vThMant": 80}


def dense_layer(n_in: int, n_out: int, weight: int = 3, delay=None, zero_inputs: int = 0):
    b = NetxBuilder((n_in,), 0, "dense")
    w = np.full((n_out, n_in), weight)
    w[:, :zero_inputs] = 0
    b.dense("d", w, LIF, delay=delay, optimize=False)
    return b.build().network


def conv_layer(c_in: int, h: int, w: int, c_out: int, weight: int, stride=1, padding=0):
    b = NetxBuilder((c_in, h, w), 0, "conv")
    k = np.full((c_out, c_in, 3, 3), weight)
    oh, ow = (h + 2 * padding - 3) // stride + 1, (w + 2 * padding - 3) // stride + 1
    b.conv("c", k, LIF, (c_out, oh, ow), (stride, stride), (padding, padding))
    return b.build().network


def test_loihi2_stores_dense_at_four_synapses_per_unit_per_axon_with_a_synapse():
    # 10 axons -> 50 neurons, every weight non-zero: ceil(50 / 4) = 13 units per axon, 130 in all (Intel's
    # compiler printed 1,300 for PilotNet's 100 -> 50 layer); 3 axons without any synapse take nothing: 7 x 13
    pl = place(dense_layer(10, 50), "loihi2")
    use, _ = core_use(_incoming(pl), 0, 50, pl.chip)
    assert (use.units, use.fan_in_axons, use.synapses) == (130, 10, 500)
    pl = place(dense_layer(10, 50, zero_inputs=3), "loihi2")
    assert core_use(_incoming(pl), 0, 50, pl.chip)[0].units == 91


def test_loihi2_shares_a_conv_kernel_per_core():
    # 2 -> 8 channels, 3x3, weights 7 (signed width 4 bits): per (input channel, kernel row, column) one list of
    # 8 x 4 = 32 bits -> ceil(32 / 64) = 1 unit: 2 x 9 = 18 units, whatever the positions the core holds.
    # With weights 20 (6 bits): 8 x 6 = 48 -> 1 unit; 24 output channels at 6 bits -> 144 bits -> 3 units:
    # 27 x 3 = 81, the SynMem Intel's compiler printed for PilotNet's first conv (3 -> 24 channels, |w| <= 20).
    for c_in, c_out, weight, expect in ((2, 8, 7, 18), (2, 8, 20, 18), (3, 24, 20, 81)):
        pl = place(conv_layer(c_in, 6, 10, c_out, weight), "loihi2")
        for core in pl.cores:
            assert core.memory_bytes * 8 == expect * 64               # units of 64 bits


def test_loihi1_takes_a_convolution_through_population_axons():
    # input (2, 4, 4), 2 output channels 3x3, padding 1: one input axon per input position (16, not one per
    # source neuron: 32). Weight sets: input row 0 is read by kernel rows {0, 1}, rows 1-2 by {0, 1, 2}, row 3
    # by {1, 2}: 3 row patterns x 3 column patterns = 9 sets, each (2 x 3 x 3 taps) x 2 channels = 36 sparse
    # entries of 8 weight bits + 6 index bits (32 neurons: 5 bits, at least 6): 36 x 14 + 10 = 514 -> 576
    # bits; 9 x 576 = 5,184 bits = 648 bytes. Synapses: per input and output channel 4 corners x 4 taps +
    # 8 edges x 6 + 4 inside x 9 = 100, so 2 x 2 x 100.
    net = conv_layer(2, 4, 4, 2, 5, padding=1)
    (core,) = place(net, "loihi1").cores
    assert (core.neurons, core.fan_in_axons, core.memory_bytes, core.synapses) == (32, 16, 648, 400)
    # stored per connection (the SANA-FE cross-check's chip): one axon per source neuron with a synapse
    assert place(net, "loihi1-sanafe").cores[0].fan_in_axons == 32


def test_loihi1_bounds_neurons_times_delay_slots():
    # 4 axons -> 300 neurons with delays up to 62 steps: 64 delay slots, 8,192 / 64 = 128 neurons per core
    # (NxSDK's N-TIDIGITS allocation); delays up to 5 -> 8 slots -> 1,024 per core, the compartment bound
    pl = place(dense_layer(4, 300, delay=np.arange(300) % 63), "loihi1")
    assert [c.neurons for c in pl.cores] == [128, 128, 44]
    pl = place(dense_layer(4, 300, delay=np.arange(300) % 6), "loihi1")
    assert [c.neurons for c in pl.cores] == [300]


def test_a_layer_fed_by_the_host_through_an_identity_takes_it_as_bias():
    # netx's input layer with a neuron: no synapse, no axon, no memory on chip; cut by neurons only
    b = NetxBuilder((3, 8, 8), 0, "in")
    b.input("inp", LIF)
    net = b.build().network
    # loihi1 cuts by channel (64 neurons each); loihi2 along W: 8 columns (192) and 4 (96) are over 64, 2 fit
    for chip, cut in (("loihi1", [64, 64, 64]), ("loihi2", [48] * 4)):
        pl = place(net, load_chip(chip, {"core.neurons": 64}))
        assert [c.neurons for c in pl.cores] == cut
        assert all((c.synapses, c.fan_in_axons, c.memory_bytes) == (0, 0, 0) for c in pl.cores)


def test_loihi2_cuts_conv_layers_along_w_in_power_of_two_tiles():
    # output (4, 3, 20), at most 60 neurons per core: one column is 12 neurons; tiles of 16 (192) and 8 (96)
    # columns do not fit, 4 (48) do: ceil(20 / 4) = 5 cores of 48 neurons (5 columns, 60, would fit but is
    # not a power of two, as Intel's compiler never cuts)
    net = conv_layer(2, 5, 22, 4, 1)
    pl = place(net, load_chip("loihi2", {"core.neurons": 60}))
    assert [c.neurons for c in pl.cores] == [48] * 5
    # a layer narrower than a power of two: W = 20 takes 16-column tiles (2 cores) even where all 20 fit
    pl = place(net, load_chip("loihi2", {"core.neurons": 1000}))
    assert [c.neurons for c in pl.cores] == [4 * 3 * 16, 4 * 3 * 4]


def test_loihi2_divides_a_dense_layer_by_the_compilers_ratio():
    # 100 axons -> 40 neurons, a 250-unit budget: the whole layer takes 100 x ceil(40 / 4) = 1,000 units, ratio
    # 4 -> 4 parts of 10 neurons, each 100 x 3 = 300 > 250 (ratio 1.2) -> 8 parts of 5 neurons (100 x 2 = 200).
    # Filling cores to the budget would give 5 cores (8 neurons: 200 units).
    pl = place(dense_layer(100, 40), load_chip("loihi2", {"core.synmem_units": 250}))
    assert [c.neurons for c in pl.cores] == [5] * 8
    with pytest.raises(NeurokdError, match="synaptic memory of .* units"):
        place(dense_layer(100, 40), load_chip("loihi2", {"core.synmem_units": 50}))


needs_gts = pytest.mark.skipif(gts_folder() is None, reason="lava-dl's wheel (its gts networks) is not installed")


@needs_gts
def test_pilotnet_lif_on_loihi2_meets_intels_allocation():
    # SILICON.md section 1: Intel's compiler, per layer (input first) and 74 in all
    intel = {"0": 13, "1": 25, "2": 13, "3": 3, "4": 3, "5": 2, "7": 12, "8": 1, "9": 1, "10": 1}
    net = read_netx(gts_folder() / "pilotnet_lif" / "network.net")
    pl = place(net.network, "loihi2", max_chips=32)
    ours = {layer: len(ids) for layer, ids in pl.layer_cores.items()}
    assert set(ours) == set(intel)
    for layer, theirs in intel.items():
        assert abs(ours[layer] - theirs) <= max(1, 0.25 * theirs), (layer, ours[layer], theirs)
    assert 0.8 <= pl.n_cores / 74 <= 1.25
    # the W-cut: every conv/input core holds whole columns (all channels and rows) of a power-of-two tile
    tiles = {"0": 16, "1": 4, "2": 4, "3": 8, "4": 8, "5": 16}
    for layer, t in tiles.items():
        c, h, _ = net.network.layer(layer).shape
        assert max(core.neurons for core in pl.cores_of(layer)) == c * h * t


@needs_gts
def test_ntidigits_dense_layers_on_loihi1_as_nxsdk():
    net = read_netx(gts_folder() / "ntidigits" / "ntidigits.net", num_layers=5)
    pl = place(net.network, "loihi1")
    assert {layer: [c.neurons for c in pl.cores_of(layer)] for layer in pl.layer_cores} == {
        "2": [128, 128], "3": [128, 128], "4": [242]}


def _incoming(pl):
    from neurokd.hardware.placement.place import _splitters

    (sp,) = _splitters(pl.geometry, None, pl.chip)
    return sp.incoming



def test_population_axons_fall_back_to_per_connection_where_that_is_smaller():
    # a wide strided kernel (6x6, stride 2) has many border patterns, each a weight set of the whole
    # (8 x 6 x 6) x C_out kernel: where those outgrow the per-connection lists the core keeps the lists, so
    # per core the memory is never above the per-connection storage of the same neurons
    b = NetxBuilder((8, 12, 12), 0, "wide")
    b.conv("c", np.full((16, 8, 6, 6), 3), LIF, (16, 6, 6), (2, 2), (2, 2))
    net = b.build().network
    # the same cut on both chips (loihi1's NxTF box cut off: loihi1-sanafe cuts by ranges), only the storage differs
    pop = place(net, load_chip("loihi1", {"core.neurons": 36, "core.conv_cut_tiles": 0}))
    per_conn = place(net, load_chip("loihi1-sanafe", {"core.neurons": 36}))
    assert [(c.lo, c.hi) for c in pop.cores] == [(c.lo, c.hi) for c in per_conn.cores]
    assert all(a.memory_bytes <= b.memory_bytes for a, b in zip(pop.cores, per_conn.cores))
    assert [c.synapses for c in pop.cores] == [c.synapses for c in per_conn.cores]


def test_loihi2_w_cut_tiles_store_one_kernel_each():
    # 64 -> 64 channels 3x3, padding 1, 16 columns of 4 rows: a column is 256 neurons, so 1,024 neurons take
    # 4-column tiles (4 cores); every tile, border or inside, stores the same shared kernel
    net = conv_layer(64, 4, 16, 64, 2, padding=1)
    pl = place(net, load_chip("loihi2", {"core.neurons": 1024}))
    assert [c.neurons for c in pl.cores] == [64 * 4 * 4] * 4
    assert len({c.memory_bytes for c in pl.cores}) == 1


def two_w_cut_convs(**overrides):
    """input (2, 4, 16) -> conv a (4, 4, 16) -> conv b (4, 4, 16), 3x3, padding 1, on loihi2 with 64 neurons a core: a
    column is 4 x 4 = 16 neurons, so each layer takes 4 tiles of 4 columns (cores 0-3 and 4-7, 4 cores a tile)."""
    b = NetxBuilder((2, 4, 16), 0, "two")
    b.conv("a", np.full((4, 2, 3, 3), 3), LIF, (4, 4, 16), (1, 1), (1, 1))
    b.conv("b", np.full((4, 4, 3, 3), 3), LIF, (4, 4, 16), (1, 1), (1, 1))
    net = b.build().network
    return net, place(net, load_chip("loihi2", {"core.neurons": 64, **overrides}))


def test_a_w_cut_core_holds_its_tiles_channels_and_rows():
    # the cores' neurons are the column blocks (every channel and row of columns 4k..4k+3), not flat ranges
    _, pl = two_w_cut_convs()
    index = np.arange(4 * 4 * 16).reshape(4, 4, 16)
    for layer in ("a", "b"):
        cores = pl.cores_of(layer)
        assert [c.neuron_range for c in cores] == ["w 0-3", "w 4-7", "w 8-11", "w 12-15"]
        for k, core in enumerate(cores):
            assert np.array_equal(core.indices(), np.sort(index[:, :, 4 * k:4 * k + 4].reshape(-1)))
            assert core.neurons == 64
    assert [r["neuron_range"] for r in pl.rows()][:2] == ["w 0-3", "w 4-7"]
    # fan-in: one axon per input position a tile reads (shared kernel), rows x receptive columns: tile 0 reads
    # columns 0-4 (padding), inner tiles 6 columns, the last 5 -> 4 x (5, 6, 6, 5)
    assert [c.fan_in_axons for c in pl.cores] == [20, 24, 24, 20] * 2
    # b's synapses: 4 x 4 channels x (valid kernel rows summed over the 4 rows: 2 + 3 + 3 + 2 = 10) x (valid kernel
    # columns over the tile's columns: 2 + 3 + 3 + 3 = 11 at the border, 12 inside)
    assert [c.synapses for c in pl.cores_of("b")] == [1760, 1920, 1920, 1760]


def test_a_spike_of_a_w_cut_core_goes_to_the_tiles_that_read_it():
    from neurokd.hardware.placement.cost import cost

    _, pl = two_w_cut_convs()
    r = {"input": np.zeros((1, 1, 2, 4, 16)), "a": np.zeros((1, 1, 4, 4, 16)), "b": np.zeros((1, 1, 4, 4, 16))}
    r["a"][0, 0, 3, 0, 1] = 1       # column 1 (a's core 0; flat 193: a flat range of 64 would put it on core 3)
    r["a"][0, 0, 1, 2, 4] = 1       # column 4 (core 1): read by b's columns 3-5, tiles 0 and 1
    c = cost(pl, r)
    assert list(c.per_core("spikes")) == [1, 1, 0, 0, 0, 0, 0, 0]
    assert list(c.per_core("msgs_sent")) == [1, 2, 0, 0, 0, 0, 0, 0]
    assert list(c.per_core("msgs_received")) == [0, 0, 0, 0, 2, 1, 0, 0]
    assert list(c.per_core("hops_ew")) == [1, 2, 0, 0, 0, 0, 0, 0]          # tile 0 (x 0) -> tile 1 (x 1)
    assert c.per_core("hops_ns").sum() == 0
    # synaptic ops: (3, 0, 1) reaches 4 channels x rows 0-1 x columns 0-2 = 24 on tile 0; (1, 2, 4) 4 x rows 1-3 x
    # columns 3-5: column 3 on tile 0 (12), columns 4-5 on tile 1 (24)
    assert list(c.per_core("synops")) == [0, 0, 0, 0, 36, 24, 0, 0]
    # every neuron of a spiking (the dense path): a column at a tile's edge is read by two tiles
    r["a"][:] = 1
    c = cost(pl, r)
    assert list(c.per_core("spikes")[:4]) == [64] * 4
    assert list(c.per_core("msgs_sent")) == [80, 96, 96, 80, 0, 0, 0, 0]
    assert list(c.per_core("msgs_received")) == [0, 0, 0, 0, 80, 96, 96, 80]
    assert list(c.per_core("synops")[4:]) == [c.synapses for c in pl.cores_of("b")]


def test_a_w_tile_over_its_output_axons_is_cut_into_narrower_tiles():
    # an output axon per destination core, 60 at most: a's tile 0 sends 16 x 3 (columns 0-2, to b's tile 0) + 32
    # (column 3, to tiles 0 and 1) = 80 -> columns 0-2 and 3; inner tiles 32 + 16 + 16 + 32 = 96 -> two halves
    _, pl = two_w_cut_convs(**{"core.fan_out_per_core": 1, "core.fan_out_axons": 60})
    assert [c.neuron_range for c in pl.cores_of("a")] == ["w 0-2", "w 3-3", "w 4-5", "w 6-7", "w 8-9", "w 10-11",
                                                          "w 12-13", "w 14-15"]
    assert [c.fan_out_axons for c in pl.cores_of("a")] == [48, 32, 48, 48, 48, 48, 48, 32]


def test_placement_json_reports_the_compilers_units_per_layer():
    pl = place(dense_layer(10, 50), "loihi2")
    info = pl.to_dict()
    assert info["layers"]["d"]["max_synmem_units"] == 130 == pl.cores[0].synmem_units
    assert info["limits"]["core.synmem_units"]["value"] == 12000
    assert "max_synmem_units" not in place(dense_layer(10, 50), "loihi1").to_dict()["layers"]["d"]


def test_loihi1_places_host_spikes_on_input_compartments_as_nxsdk():
    # a netx file fed spikes (no input neuron): on loihi1 the 300 inputs take compartments on cores of their own
    # (input.spike_input_layer, inferred from NxSDK's N-TIDIGITS and N-MNIST partitions), cut by the compartment
    # budget like any layer: 256 per core -> 2 cores; none on loihi1-sanafe (SANA-FE's own input neurons) or loihi2
    from neurokd.hardware.placement import place_and_cost

    net = dense_layer(300, 20)
    mapped = place_and_cost(net, load_chip("loihi1", {"core.neurons": 256}), input_mode="spikes")
    assert [(c.layer, c.neurons, c.synapses, c.memory_bytes) for c in mapped.placement.cores] == [
        ("input", 256, 0, 0), ("input", 44, 0, 0), ("d", 20, 6000, mapped.placement.cores[2].memory_bytes)]
    for chip in ("loihi1-sanafe", "loihi2"):
        assert [c.layer for c in place_and_cost(net, chip, input_mode="spikes").placement.cores] == ["d"]
    assert load_chip("loihi1").fig("input.spike_input_layer").status == "inferred"


@needs_gts
def test_ntidigits_takes_six_cores_on_loihi1_from_the_command_line(tmp_path, capsys):
    # NxSDK: input 64 on 1 core, dense 256 (delays) 2 + 2, dense 242 1, the average on the host: 6
    from conftest import cli

    path = gts_folder() / "ntidigits" / "ntidigits.net"
    assert cli(["map", str(path), "--hardware", "loihi1", "--no-cost", "--out", str(tmp_path)]) == 0
    out = capsys.readouterr().out
    assert "ntidigits.net on loihi1: 6 cores" in out
    cores = {line.split(":")[0].strip(): int(line.split(":")[1].split("core")[0]) for line in out.splitlines()
             if "core(s)" in line}
    assert cores == {"input": 1, "2": 2, "3": 2, "4": 1, "5": 0}


@needs_gts
def test_a_bias_driven_input_layers_identity_synapse_is_never_charged(tmp_path):
    # lava-dl's tiny.net: an input LIF driven by its bias (the image), read by netx as a layer fed through an
    # identity synapse. On chip the value is the neuron's bias: no synaptic op, no MAC, no message into the input
    # core and no host message; the layer's own spikes and updates are charged, and its messages reach conv 1
    from neurokd.deploy import map_target

    g = gts_folder()
    mapped = map_target(g.parent / "tiny.net", tmp_path, hardware="loihi2", input_path=g / "tinynet" / "input_bias.npy",
                        steps=16, echo=lambda *a: None)
    c, pl = mapped.cost, mapped.placement
    assert mapped.input.mode == "bias"
    inp, conv1 = pl.layer_cores["0"], pl.layer_cores["1"]
    for q in ("synops", "macs", "msgs_received"):
        assert c.per_core(q)[inp].sum() == 0, q
    assert c.host_total("msgs_sent") == 0 and c.per_core("macs").sum() == 0
    assert all(pl.cores[i].synapses == 0 and pl.cores[i].memory_bytes == 0 for i in inp)
    assert c.per_core("spikes")[inp].sum() > 1000 and c.per_core("updates_active")[inp].sum() > 0
    assert c.per_core("msgs_sent")[inp].sum() == c.per_core("msgs_received")[conv1].sum() > 0


@needs_gts
def test_steady_state_folds_one_inference_onto_t_pipelined_steps(tmp_path):
    # streamed inferences: every event of the inference lands in one of the T steps, and each neuron is updated
    # once per step, so the single inference's fill and drain updates (outside a core's window) drop out
    from neurokd.deploy import map_target

    g = gts_folder()
    c = map_target(g.parent / "tiny.net", tmp_path, hardware="loihi2", input_path=g / "tinynet" / "input_bias.npy",
                   steps=16, echo=lambda *a: None).cost
    ss, T, chip = c.steady_state(), c.timesteps, c.chip
    for q in ("synops", "spikes", "msgs_sent", "hops_ew", "hops_ns"):
        assert ss["counts_per_step"][q] * T == pytest.approx(c.per_core(q).sum(), rel=1e-12), q   # sums of integers
    neurons = sum(core.neurons for core in c.placement.cores)
    assert ss["counts_per_step"]["updates_active"] + ss["counts_per_step"]["updates_inactive"] == neurons
    h = np.arange(c.hardware_steps)[:, None]
    outside = (h < c.neuron_at[None]) | (h >= c.neuron_at[None] + T)
    fill_drain = ((c.steps["updates_active"][:, 0] * chip["energy.update_active_pj"]
                   + c.steps["updates_inactive"][:, 0] * chip["energy.update_inactive_pj"]) * outside).sum()
    # the same products summed in another order: float rounding only
    assert ss["energy_pj_per_step"] * T == pytest.approx(c.energy_pj - fill_drain, rel=1e-9)
    assert len(ss["step_ns_per_phase"]) == T and ss["step_ns"] > ss["barrier_ns"]


@needs_gts
def test_the_fitted_loihi2_profile_is_marked_fitted_in_every_report(tmp_path):
    # loihi2-fitted: loihi2's rules, two scales (time 0.482, energy 0.856) on the per-event figures, status fitted
    from neurokd.deploy import map_target

    fitted, base = load_chip("loihi2-fitted"), load_chip("loihi2")
    keys = {f.key for f in fitted.fitted()}
    assert keys == {"time.synop_ns", "time.update_active_ns", "time.update_inactive_ns", "time.spike_ns",
                    "energy.synop_pj", "energy.update_active_pj", "energy.update_inactive_pj", "energy.spike_pj",
                    "energy.hop_ew_pj", "energy.hop_ns_pj"}
    assert all(f.source == "fit_pilotnet" and "unvalidated" in fitted.title for f in fitted.fitted())
    for k in keys:      # the figures are rounded to 4 digits
        assert fitted[k] / base[k] == pytest.approx(0.482 if k.startswith("time") else 0.856, rel=2e-3), k
    assert {k: f.value for k, f in fitted.figures.items() if k not in keys} == \
        {k: f.value for k, f in base.figures.items() if k not in keys}
    g = gts_folder()
    runs = {}
    for chip in ("loihi2", "loihi2-fitted"):
        runs[chip] = map_target(g.parent / "tiny.net", tmp_path / chip, hardware=chip, echo=lambda *a: None,
                                input_path=g / "tinynet" / "input_bias.npy", steps=16)
    assert runs["loihi2-fitted"].cost.energy_pj / runs["loihi2"].cost.energy_pj == pytest.approx(0.856, rel=2e-3)
    md = (tmp_path / "loihi2-fitted" / "cost_report.md").read_text()
    assert "**fitted** to measurements" in md and "`time.synop_ns` = 1.687" in md
    assert "fitted" not in (tmp_path / "loihi2" / "cost_report.md").read_text()
    import json
    info = json.loads((tmp_path / "loihi2-fitted" / "placement.json").read_text())
    assert set(info["fitted_figures"]) == keys


def test_relay_cores_of_the_measured_ntidigits_board_as_nxslayers_multichipnetwork_builds_them():
    # MultiChipNetwork.create: the input source is a relay core; a new one before copy i for i % 3 == 0
    # (i = 1 .. copies - 1); one copy uses none. 20 copies per chip: source + copies 3, 6, 9, 12, 15, 18 = 7,
    # and 20 x 6 + 7 = 127 cores, within the chip's 128 (as floor(128 / (6 + 1/3)) = 20 copies says)
    import importlib.util
    import sys
    from pathlib import Path

    spec = importlib.util.spec_from_file_location(
        "silicon_bench", Path(__file__).resolve().parents[1] / "benchmarks" / "silicon.py")
    silicon = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = silicon  # its dataclasses look their module up there
    spec.loader.exec_module(silicon)
    assert [silicon.relay_cores_per_chip(c) for c in (1, 2, 3, 4, 6, 7, 20)] == [0, 1, 1, 2, 2, 3, 7]
    assert silicon.NTIDIGITS_COPIES_PER_CHIP * 6 + silicon.relay_cores_per_chip(silicon.NTIDIGITS_COPIES_PER_CHIP) == 127
