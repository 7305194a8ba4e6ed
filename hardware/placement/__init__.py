"""Deploy onto the chip: place a network's neurons on cores, check that it fits, cost every step.

One file per step:

- :mod:`.chips`: chips as data (``chips/loihi1.toml``, ``chips/loihi2.toml`` or a user's file), every
  figure with its source and status: ``load_chip(spec, overrides)``;
- :mod:`.place`: ``place(network, chip, placer)`` -> :class:`~.place.Placement` (cores, their ranges,
  synaptic memory, fan-in/fan-out axons, routing tables); ``pack`` and ``balance`` placers;
- :mod:`.inputs`: how the input reaches the chip (``input_mode``: ``bias``, ``spikes``, ``graded``, ``host``),
  the default per chip and network, and what each mode charges;
- :mod:`.cost`: ``cost(placement, rasters)`` -> :class:`~.cost.CostReport` (per core and step:
  synops, updates, spikes, messages, hops; latency, energy with routing);
- this module: ``place_and_cost(...)`` -> :class:`MapResult`, and ``write_outputs`` (``mapping.csv``,
  ``placement.json``, ``cost_report.csv``, ``cost_steps.csv``, ``cost_report.md``).

Which placer wins when: ``pack`` uses the fewest cores, so it spends the least on routing and
inactive neighbours' barriers and wins energy (and chips); ``balance`` spreads busy layers over the
idle cores of the same chips and wins latency (and energy-delay product) whenever one core's
synaptic work dominates a step, as in a dense first layer fed by graded input. When the barrier
dominates the step already (tiny, very sparse networks), ``balance`` keeps ``pack``'s cut.

Imports the network form and the cost modules only: never an engine, never a report.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurokd import fileio
from neurokd.errors import NeurokdError
from neurokd.hardware.cost.counting import Geometry, geometry_from_ir
from neurokd.hardware.placement.chips import Chip, load_chip
from neurokd.hardware.cost.counting import rasters_from_result
from neurokd.hardware.placement.cost import CostReport, cost, neuron_load, state_from_result
from neurokd.hardware.cost.counting import input_is_spiking
from neurokd.hardware.placement.inputs import (INPUT_MODES, InputCharge, charge_figures, default_input_mode,
                                              has_bias_input_layer, host_network, mode_geometry, resolve_input_mode)
from neurokd.hardware.placement.place import MAPPING_COLUMNS, PLACERS, Placement, place

COST_COLUMNS = ("scope", "name", "chip", "tile", "x", "y", "layer", "neuron_range", "cores", "neurons", "synapses",
                "synaptic_memory_bytes", "synops", "macs", "updates_active", "updates_inactive", "spikes", "msgs_sent",
                "msgs_received", "hops_ew", "hops_ns", "chip_crossings", "busy_ns", "busy_ns_max_step",
                "energy_compute_pj", "energy_routing_pj", "energy_pj", "value")
STEP_COLUMNS = ("step", "latency_ns", "slowest_core_ns", "slowest_core", "busiest_tile_ns", "route_ns", "barrier_ns",
                "energy_pj")


@dataclass
class MapResult:
    """A placement and, when spikes were given, its cost. ``seconds``: placement and costing wall time."""

    chip: Chip
    placement: Placement
    cost: CostReport | None = None
    seconds: dict[str, float] = field(default_factory=dict)
    input: InputCharge | None = None

    def summary(self) -> dict:
        out = {"chip": self.chip.name, "placer": self.placement.placer, "cores": self.placement.n_cores,
               "chips": self.placement.n_chips, "tiles": self.placement.tiles_used, "seconds": dict(self.seconds)}
        if self.input is not None:
            out["input_mode"] = self.input.mode
            out["input"] = self.input.to_dict()
            if self.cost is not None:
                out["input"]["charged"] = charge_figures(self.input, self.cost)
        if self.cost is not None:
            c, b = self.cost, self.cost.bottleneck()
            out.update(latency_us_per_inference=c.latency_ns / 1e3, latency_ns_per_step=c.latency_ns_per_step,
                       inferences_per_s=c.inferences_per_s, energy_uj_per_inference=c.energy_pj / 1e6,
                       routing_uj_per_inference=c.routing_pj / 1e6, edp_j_s=c.edp,
                       bottleneck={k: b[k] for k in ("core", "layer", "neurons", "bound", "shares")})
        return out


def place_and_cost(network, hardware: "str | Path | Chip" = "loihi1", result=None, inputs=None, placer: str = "pack",
                   max_chips: int = 1, overrides: dict[str, float] | None = None, geometry: Geometry | None = None,
                   rasters: dict[str, np.ndarray] | None = None, state: dict[str, np.ndarray] | None = None,
                   input_mode: str | None = None, input_layer=None, input_charge: InputCharge | None = None) -> MapResult:
    """Place ``network`` (an :class:`~neurokd.hardware.network.ir.Network`) on ``hardware`` and cost it.

    Spikes come either as ``result`` (a Lava or fast-model result run with ``record_steps=True``) with
    its ``inputs``, or as ``rasters`` (``{population: (T, N, *shape)}``) with a matching ``geometry``.
    Without spikes only the placement is made (``placer="balance"`` needs them). A fixed-point
    result's integer weights define the synapses (a weight rounded to zero is none). A fast-model result
    run with ``record_state`` (or ``state``) also tells which neurons keep state from one step to the next,
    so their updates count active (:mod:`.cost`).

    ``input_mode`` (:mod:`.inputs`; default :func:`~.inputs.default_input_mode`, which refuses graded input on a
    chip without graded spikes): ``graded`` and ``host`` take a result run on the input values; ``spikes`` and
    ``bias`` one run on the binary spikes the first synapses receive (``inputs``: those spikes), and ``bias``
    also the input layer's own run (``input_layer``: :func:`neurokd.hardware.engines.encoding.bias_layer`'s
    :class:`~neurokd.hardware.engines.encoding.BiasLayer`, for its active updates; without it the layer's
    spikes come from ``inputs`` and its neurons count active when they spike). ``input_charge``: the
    :class:`~.inputs.InputCharge` to report (its mode wins), e.g. with the encoding and accuracy.
    """
    chip = load_chip(hardware, overrides)
    if input_charge is not None:
        input_mode = input_charge.mode
    values = inputs if rasters is None else rasters.get(getattr(network, "input_name", None))
    mode = resolve_input_mode(input_mode, chip, network, values)
    if mode in ("spikes", "bias") and values is not None and not input_is_spiking(values) \
            and not has_bias_input_layer(network):
        raise NeurokdError(f"input mode {mode}: the run's input is graded values; encode it first "
                           f"(neurokd.hardware.engines.encoding.{'rate_spikes' if mode == 'spikes' else 'bias_layer'}) "
                           f"and run the network on those spikes")
    charge = input_charge or InputCharge(mode, chip.name)
    charge.chip = chip.name
    if mode == "graded":
        charge.payload_bits = chip.get("input.graded_payload_bits_default", chip.get("input.graded_payload_bits"))
    if placer not in PLACERS:
        raise NeurokdError(f"placer must be one of {', '.join(PLACERS)}, got {placer!r}")
    if geometry is None:
        geometry = geometry_from_ir(network, fixed=getattr(result, "fixed", None))
    if rasters is not None or result is not None:
        network.check_simulated("cost")        # a cost needs activity an engine ran
    if rasters is None and result is not None:
        if inputs is None:
            raise NeurokdError("place_and_cost: give the inputs the result was run on")
        rasters = rasters_from_result(geometry, result, inputs)
    if state is None and result is not None:
        state = state_from_result(geometry, result)
    base_geometry = geometry
    geometry, hosted = mode_geometry(mode, geometry, network, chip)
    if any(p.kind == "spike_input" for p in geometry.populations):
        charge.notes.append(f"{chip.name} takes host spikes through on-chip input compartments (input.spike_input_layer, "
                            f"{chip.fig('input.spike_input_layer').status}): the input is placed as a layer, each spike one "
                            f"host message and one synaptic op into its compartment, relayed in the same step")
    charge.host_layers = hosted
    drive = None
    if mode == "bias" and geometry is not base_geometry:
        inp = next(p.name for p in geometry.populations if p.kind == "bias_input")
        if input_layer is not None:
            if state is not None:
                state = {**state, inp: np.swapaxes(np.asarray(input_layer.state), 0, 1)}
            drive = {inp: input_layer.drive}
        elif state is not None and rasters is not None:
            state = {**state, inp: np.zeros(rasters[inp].shape[:2] + (geometry.population(inp).size,), dtype=bool)}
    if hosted and rasters is not None:
        rasters = {k: v for k, v in rasters.items() if k in {p.name for p in geometry.populations}}
    if hosted and state is not None:
        state = {k: v for k, v in state.items() if k not in hosted}
    seconds = {}
    t0 = time.perf_counter()
    received = {} if placer == "balance" else None        # the load's received events, reused by the cost
    load = neuron_load(geometry, rasters, chip, cache=received) if placer == "balance" and rasters is not None else None
    if placer == "balance" and load is None:
        raise NeurokdError("the balance placer needs measured activity: give a result (or rasters) to place_and_cost")
    placement = place(network, chip, placer=placer, geometry=geometry, max_chips=max_chips, load=load)
    seconds["place"] = time.perf_counter() - t0
    report = None
    if rasters is not None:
        t0 = time.perf_counter()
        report = cost(placement, rasters, network=host_network(network) if hosted and network is not None else network,
                      state=state, received=received, drive=drive)
        report.input_charge = charge
        seconds["cost"] = time.perf_counter() - t0
    placement.options["input_mode"] = mode
    placement.notes.append(f"input mode {mode}: {charge.describe()}")
    return MapResult(chip, placement, report, seconds, charge)


def write_outputs(result: MapResult, out_dir: str | Path, title: str = "") -> list[Path]:
    """``mapping.csv`` and ``placement.json``; with a cost also ``cost_report.csv``, ``cost_steps.csv`` and
    ``cost_report.md`` (the section for energy_report.md), without one an earlier cost's files are removed
    (they would be read as this placement's). Returns the written paths."""
    out = Path(out_dir)
    pl = result.placement
    paths = [out / "mapping.csv", out / "placement.json"]
    fileio.write_csv(paths[0], MAPPING_COLUMNS, pl.rows())
    info = pl.to_dict()
    info["seconds"] = dict(result.seconds)
    if result.input is not None:
        info["input"] = {**info.get("input", {}), **result.summary()["input"]}
    if result.cost is not None:
        info["cost"] = {k: v for k, v in result.summary().items() if k not in ("chip", "placer", "cores", "chips", "tiles")}
    fileio.write_json(paths[1], info)
    cost_paths = [out / "cost_report.csv", out / "cost_steps.csv", out / "cost_report.md"]
    if result.cost is None:
        for p in cost_paths:
            p.unlink(missing_ok=True)
        return paths
    fileio.write_csv(cost_paths[0], COST_COLUMNS, result.cost.rows())
    fileio.write_csv(cost_paths[1], STEP_COLUMNS, result.cost.step_rows())
    fileio.write_text(cost_paths[2], result.cost.markdown(title))
    return paths + cost_paths


__all__ = ["MapResult", "place_and_cost", "INPUT_MODES", "InputCharge", "default_input_mode", "write_outputs", "load_chip", "place", "cost", "Placement", "CostReport",
           "PLACERS", "COST_COLUMNS", "MAPPING_COLUMNS"]
