"""How a placed network takes its input (--input-mode bias|spikes|graded|host): the encoders, each mode's
counts on a network small enough to count by hand, the refusal of graded input on Loihi 1, the defaults and
the report fields. Hand counts are worked out in the comments."""

from __future__ import annotations

import csv
import json

import nir
import numpy as np
import pytest

from neurokd.errors import NeurokdError
from neurokd.hardware.engines.encoding import bias_layer, rate_spikes
from neurokd.hardware.engines.fastsim import run_fast
from neurokd.hardware.network import ir
from neurokd.hardware.placement import place_and_cost, write_outputs
from neurokd.hardware.placement.chips import load_chip
from neurokd.hardware.placement.inputs import chip_modes, default_input_mode, resolve_input_mode

from conftest import cli


def _lif(n, thr=1.0):
    return nir.LIF(tau=np.full(n, 5e-4), r=np.full(n, 5.0), v_leak=np.zeros(n), v_threshold=np.full(n, thr),
                   v_reset=np.zeros(n))


def two_layer_graph() -> nir.NIRGraph:
    """input (2) -> Affine 3x2 (every weight non-zero) -> LIF (3) -> Affine 2x3 (every weight non-zero) -> LIF (2)."""
    nodes = {"input": nir.Input(np.array([2])),
             "fc1": nir.Affine(weight=np.array([[0.9, 0.6], [0.7, 0.8], [1.2, 0.5]]), bias=np.zeros(3)),
             "lif1": _lif(3, 0.5),
             "fc2": nir.Affine(weight=np.array([[0.8, 0.7, 0.9], [0.6, 1.1, 0.4]]), bias=np.zeros(2)),
             "lif2": _lif(2, 0.5), "output": nir.Output(np.array([2]))}
    names = list(nodes)
    return nir.NIRGraph(nodes, list(zip(names[:-1], names[1:])), metadata={"dt": 1e-4}, type_check=False)


X = np.array([[1.0, 0.5]])          # one sample; full scale 1
T = 4


def _placed(mode, hardware="loihi2"):
    """The two-layer network placed and costed under ``mode`` on one sample ``X`` held for ``T`` steps, the way
    deploy does it: encode, run the fast engine on what the chip receives, place and cost."""
    from neurokd.deploy import _encode_input

    net = ir.from_nir(two_layer_graph())
    chip = load_chip(hardware)
    x_run, layer, charge = _encode_input(net, X, mode, chip, T)
    res = run_fast(net, x_run, precision="fixed", timesteps=None if x_run is not X else T, record_steps=True,
                   record_state=True)
    return net, res, place_and_cost(net, chip, result=res, inputs=x_run, input_charge=charge, input_layer=layer)


# ------------------------------------------------------------------------------------------------
# Encoders
# ------------------------------------------------------------------------------------------------

def test_bias_layer_by_hand():
    """8 bits: q = round(x * 255); vth = 254, so a neuron fires once k q >= 255, then resets to 0.
    q = 255 fires every step; 128: every 2nd (v = 128, 256 > 254); 85: every 3rd (85, 170, 255); 0 never."""
    frames = np.repeat(np.array([[1.0, 128 / 255, 85 / 255, 0.0]])[:, None], 6, axis=1)
    run = bias_layer(frames, bits=8)
    assert run.bias_mant.tolist() == [[255, 128, 85, 0]] and run.vth == 254 and run.bias_exp == 6
    assert run.spikes[0].T.astype(int).tolist() == [[1, 1, 1, 1, 1, 1], [0, 1, 0, 1, 0, 1], [0, 0, 1, 0, 0, 1],
                                                    [0, 0, 0, 0, 0, 0]]
    # v != 0 after the step: never for the every-step neuron (it resets each step) nor the silent one
    assert run.state[0].T.astype(int).tolist() == [[0] * 6, [1, 0, 1, 0, 1, 0], [1, 1, 0, 1, 1, 0], [0] * 6]
    assert run.drive.tolist() == [[True, True, True, False]]
    with pytest.raises(NeurokdError, match="negative values"):
        bias_layer(-frames)


def test_host_spikes_deterministic_by_hand_and_bernoulli_is_sanafes_rule():
    """Deterministic: an accumulator starts at 0.5, adds x per step, spikes and subtracts 1 at 1: x = 0.5 over 4 steps
    spikes at steps 0 and 2; x = 0.25 once, at step 1; x = 1 every step."""
    frames = np.repeat(np.array([[1.0, 0.5, 0.25, 0.0]])[:, None], 4, axis=1)
    out = rate_spikes(frames)
    assert out[0].T.astype(int).tolist() == [[1, 1, 1, 1], [1, 0, 1, 0], [0, 1, 0, 0], [0, 0, 0, 0]]
    assert np.array_equal(rate_spikes(frames), out)                       # no seed: the same spikes every run
    # Bernoulli with a seed is what `neurokd map --sanafe` always sent SANA-FE (p = |x| / max|x|, default_rng(seed))
    x = np.random.default_rng(5).random((3, 7, 5)) * 3
    p = np.clip(np.abs(x) / np.abs(x).max(), 0, 1)
    assert np.array_equal(rate_spikes(x, "bernoulli", 11), (np.random.default_rng(11).random(x.shape) < p).astype(float))
    spikes = (x > 1.5).astype(float)
    assert np.array_equal(rate_spikes(spikes, "bernoulli", 3), spikes)   # 0/1 input is sent as it is


@pytest.mark.lava
def test_bias_layer_is_lavas_fixed_point_lif_bit_for_bit():
    """The same neurons in Lava fixed_pt: LIF(du=0, dv=0, bias_mant=q, bias_exp=6, vth=254) run alone."""
    import neurokd.hardware  # noqa: F401  (makes lava importable on Python 3.11)
    from lava.magma.core.run_conditions import RunSteps
    from lava.magma.core.run_configs import Loihi2SimCfg
    from lava.proc.io.sink import RingBuffer as Sink
    from lava.proc.lif.process import LIF as LavaLIF

    rng = np.random.default_rng(0)
    values = np.concatenate([[0.0, 1.0, 0.5, 1 / 255], rng.random(20)])
    steps = 40
    run = bias_layer(np.repeat(values[None, None], steps, axis=1), bits=8)
    n = values.size
    lif = LavaLIF(shape=(n,), du=0, dv=0, vth=run.vth, bias_mant=run.bias_mant[0].astype(np.int32),
                  bias_exp=np.full(n, run.bias_exp))
    sink = Sink(shape=(n,), buffer=steps)
    lif.s_out.connect(sink.a_in)
    try:
        lif.run(condition=RunSteps(num_steps=steps), run_cfg=Loihi2SimCfg(select_tag="fixed_pt"))
        lava = sink.data.get().copy()
    finally:
        lif.stop()
    assert 0.1 < lava.mean() < 0.9
    np.testing.assert_array_equal(lava, run.spikes[0].T)


# ------------------------------------------------------------------------------------------------
# Each mode's counts, by hand
# ------------------------------------------------------------------------------------------------

def test_graded_mode_charges_macs_on_loihi2():
    """x = (1, 0.5): both values non-zero at each of 4 steps, 3 synapses each: 2 x 4 x 3 = 24 MACs, no synops on
    lif1; 8 host messages (one per value and step, one destination core)."""
    net, res, mapped = _placed("graded")
    c, pl = mapped.cost, mapped.placement
    lif1 = pl.layer_cores["lif1"][0]
    assert mapped.input.mode == "graded" and mapped.input.payload_bits == 16 and pl.n_cores == 2
    assert c.per_core("macs")[lif1] == 24 and c.per_core("synops")[lif1] == 0
    assert c.host_total("msgs_sent") == 8


def test_spikes_mode_accumulates_host_spikes():
    """Deterministic spikes: x = 1 every step (4), x = 0.5 at steps 0 and 2 (2): 6 spikes x 3 synapses = 18 synops,
    no MACs, 6 host messages. On loihi2 and loihi1-sanafe the host's spikes enter lif1's synapses directly."""
    for hardware in ("loihi2", "loihi1-sanafe"):
        net, res, mapped = _placed("spikes", hardware)
        c, pl = mapped.cost, mapped.placement
        lif1 = pl.layer_cores["lif1"][0]
        assert pl.n_cores == 2 and c.per_core("synops")[lif1] == 18 and c.per_core("macs").sum() == 0
        assert c.host_total("msgs_sent") == 6 and mapped.input.encoding == "deterministic"


def test_spikes_mode_on_loihi1_enters_through_input_compartments():
    """loihi1 (input.spike_input_layer, as NxSDK): the 2 input values get compartments on a core of their own; each
    of the 6 host spikes is one host message and one synaptic op into its compartment, which relays it (6 spikes,
    6 messages to lif1's core) in the step lif1 receives it: no pipeline stage added, lif1's 18 synops unchanged."""
    net, res, mapped = _placed("spikes", "loihi1")
    c, pl = mapped.cost, mapped.placement
    assert pl.n_cores == 3 and list(pl.layer_cores)[0] == "input"
    inp, lif1 = pl.layer_cores["input"][0], pl.layer_cores["lif1"][0]
    assert pl.cores[inp].neurons == 2 and pl.cores[inp].memory_bytes == 0
    assert c.host_total("msgs_sent") == 6 and c.per_core("msgs_received")[inp] == 6 and c.per_core("synops")[inp] == 6
    assert c.per_core("spikes")[inp] == 6 and c.per_core("msgs_sent")[inp] == 6 and c.per_core("synops")[lif1] == 18
    assert c.hardware_steps == _placed("spikes", "loihi2")[2].cost.hardware_steps
    assert np.array_equal(c.steps["msgs_sent"][:, 0, inp], c.steps["msgs_received"][:, 0, lif1])
    assert any("input compartments" in n for n in mapped.input.notes)


def test_bias_mode_places_the_input_layer_and_charges_its_updates_and_spikes():
    """q = (255, 128): the input neurons fire at steps 1-4 and 2, 4 (1-based): 6 spikes, 18 synops into lif1, no
    MACs, no host messages; one more core (2 neurons), both driven by a bias, so active in every hardware step;
    each spike is one message (one destination core)."""
    net, res, mapped = _placed("bias", "loihi1")
    c, pl = mapped.cost, mapped.placement
    assert pl.n_cores == 3 and list(pl.layer_cores)[0] == "input"
    inp, lif1 = pl.layer_cores["input"][0], pl.layer_cores["lif1"][0]
    assert pl.cores[inp].neurons == 2 and pl.cores[inp].synapses == 0 and pl.cores[inp].memory_bytes == 0
    assert c.per_core("spikes")[inp] == 6 and c.per_core("msgs_sent")[inp] == 6
    assert c.per_core("synops")[lif1] == 18 and c.per_core("macs").sum() == 0 and c.host_total("msgs_sent") == 0
    assert c.per_core("updates_active")[inp] == 2 * c.hardware_steps and c.per_core("updates_inactive")[inp] == 0
    # its spikes are sent in the step the first layer receives them: no pipeline stage added
    graded = _placed("graded")[2].cost
    assert c.hardware_steps == graded.hardware_steps
    assert np.array_equal(c.steps["msgs_sent"][:, 0, inp], c.steps["msgs_received"][:, 0, lif1])


def test_host_mode_leaves_the_first_layer_off_chip():
    """lif1 is computed on the host: not placed, nothing of it charged; each of its spikes is a host message to
    lif2's core, 2 synops each; the chip's pipeline is one stage shorter."""
    net, res, mapped = _placed("host", "loihi1")
    c, pl = mapped.cost, mapped.placement
    lif1_spikes = int(np.asarray(res.spikes["lif1"]).sum())
    assert lif1_spikes > 0 and pl.n_cores == 1 and list(pl.layer_cores) == ["lif2"]
    assert c.host_total("msgs_sent") == lif1_spikes and c.per_core("synops").sum() == 2 * lif1_spikes
    assert c.per_core("macs").sum() == 0 and mapped.input.host_layers == ["lif1"]
    assert c.hardware_steps == _placed("graded")[2].cost.hardware_steps - 1


# ------------------------------------------------------------------------------------------------
# Refusal and defaults
# ------------------------------------------------------------------------------------------------

def test_graded_on_loihi1_is_refused_in_one_line_naming_the_modes_that_work(tmp_path, capsys):
    loihi1 = load_chip("loihi1")
    assert chip_modes(loihi1) == ("bias", "spikes", "host") and chip_modes(load_chip("loihi2")) == (
        "bias", "spikes", "graded", "host")
    for mode in ("graded", None):                           # asked for, or the default on graded data
        with pytest.raises(NeurokdError, match="binary spikes only.*give --input-mode bias, spikes or host"):
            resolve_input_mode(mode, loihi1, inputs=X)
    graph = tmp_path / "g.nir"
    nir.write(graph, two_layer_graph())
    np.save(tmp_path / "x.npy", np.repeat(X[:, None], T, axis=1))
    for extra in ([], ["--input-mode", "graded"]):
        code = cli(["map", str(graph), "--hardware", "loihi1", "--input", str(tmp_path / "x.npy"),
                    "--out", str(tmp_path / "m"), *extra])
        err = capsys.readouterr().err.strip()
        assert code == 2 and err.count("\n") == 0 and "loihi1 receives binary spikes only" in err, err
        assert "bias, spikes or host" in err and "Traceback" not in err
    # a chip file may say it takes graded spikes: today's graded charge, reproduced on loihi1 by override
    assert resolve_input_mode(None, load_chip("loihi1", {"input.graded_payload_bits": 16}), inputs=X) == "graded"


def test_defaults():
    loihi1, loihi2 = load_chip("loihi1"), load_chip("loihi2")
    spikes = (np.random.default_rng(0).random((2, 3, 4)) < 0.3).astype(float)
    assert default_input_mode(None, loihi2, X) == "graded"           # today's figures on Loihi 2
    assert default_input_mode(None, loihi1, spikes) == "spikes"       # 0/1 data: sent as it is, any chip
    assert default_input_mode(None, loihi2, spikes) == "spikes"
    assert default_input_mode(None, loihi1, None) == "spikes"         # placing only: nothing charged
    assert default_input_mode(None, loihi2, None) == "graded"
    net = ir.from_nir(two_layer_graph())
    assert default_input_mode(net, loihi2, X) == "graded"
    net.metadata["input_layer"] = "bias"                               # a netx file's bias-driven input layer
    assert default_input_mode(net, loihi1, X) == "bias" and default_input_mode(net, loihi2, None) == "bias"
    with pytest.raises(NeurokdError, match="--input-mode must be one of"):
        resolve_input_mode("analog", loihi2)


# ------------------------------------------------------------------------------------------------
# Reports
# ------------------------------------------------------------------------------------------------

def test_reports_say_which_mode_and_what_it_charges(tmp_path):
    from neurokd.hardware.reports.model_card import model_card

    net, res, mapped = _placed("bias", "loihi1")
    write_outputs(mapped, tmp_path)
    info = json.loads((tmp_path / "placement.json").read_text())
    assert info["options"]["input_mode"] == "bias" and info["input"]["mode"] == "bias"
    assert info["input"]["charged"]["input_layer_cores"] == 1 and info["input"]["charged"]["input_layer_spikes"] == 6
    assert info["input"]["charged"]["host_messages"] == 0 and "on-chip" in info["input"]["description"]
    with open(tmp_path / "cost_report.csv", newline="") as fh:
        rows = list(csv.DictReader(fh))
    assert [r["name"] for r in rows if r["scope"] == "input"] == ["bias"]
    summary = {r["name"]: float(r["value"]) for r in rows if r["scope"] == "summary"}
    assert summary["input_layer_spikes"] == 6 and summary["input_layer_cores"] == 1
    md = (tmp_path / "cost_report.md").read_text()
    assert "**Input mode `bias`**" in md and "The input layer: 1 core(s)" in md
    card = model_card(placement=info)
    assert "| input mode | `bias`: an on-chip" in card and "input layer 1 core(s)" in card
    # graded: the MACs; spikes: the host messages
    md = _placed("graded")[2].cost.markdown()
    assert "Multiply-accumulates on graded input: 24 per inference, 16-bit payloads" in md
    md = _placed("spikes", "loihi1")[2].cost.markdown()
    assert "Host-to-chip messages: 6 per inference" in md


@pytest.mark.lava
def test_simulate_on_loihi1_costs_the_spikes_the_mode_sends(tmp_path):
    """`simulate --hardware loihi1 --input-mode spikes` on graded input: the 6 host spikes of the hand count above
    (6 messages, 18 synops into lif1), whatever Lava ran on the graded values."""
    import neurokd

    graph = tmp_path / "g.nir"
    nir.write(graph, two_layer_graph())
    x = np.repeat(X[:, None], T, axis=1)
    with pytest.raises(NeurokdError, match="binary spikes only"):
        neurokd.simulate(graph, tmp_path / "no", inputs=x, progress=False, echo=None, hardware="loihi1")
    assert not (tmp_path / "no" / "spikes.npz").exists()
    sim = neurokd.simulate(graph, tmp_path / "sim", inputs=x, progress=False, echo=None, hardware="loihi1",
                           input_mode="spikes")
    charged = sim.placement["input"]["charged"]
    assert sim.placement["input_mode"] == "spikes" and charged["host_messages"] == 6
    with open(tmp_path / "sim" / "map" / "cost_report.csv", newline="") as fh:
        lif1 = next(r for r in csv.DictReader(fh) if r["scope"] == "layer" and r["name"] == "lif1")
    assert float(lif1["synops"]) == 18 and float(lif1["macs"]) == 0
