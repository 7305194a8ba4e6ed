"""How a placed network takes its input: ``bias``, ``spikes``, ``graded`` or ``host`` (``--input-mode``).

A chip's first synapses receive what the input is sent as, and that decides what a step costs
(``../shared/research/SILICON.md`` section 4):

* ``bias`` -- an **on-chip input layer** whose neurons take the input value as bias (Intel's PilotNet LIF
  on Loihi 2, NxTF on Loihi 1): placed on cores like any layer (one neuron per input value), its neurons
  updated every step, binary spikes out, so the first synapses only accumulate (synops, no multiply). A
  network without such a layer (a neurokd student fed graded input) gets one: a non-leaky
  integrate-and-fire neuron per value (:func:`neurokd.hardware.engines.encoding.bias_layer`: Lava's
  fixed-point LIF, reset to zero, threshold one below the full scale), run before the network in the
  fast engine so the downstream spikes and the cost are those of the real spikes. A student trained on
  graded input computes something else under it (its accuracy is reported).
* ``spikes`` -- binary spikes from the host (rate coding,
  :func:`neurokd.hardware.engines.encoding.rate_spikes`: deterministic by default, or Bernoulli with a seed);
  the first synapses accumulate; every spike is a host-to-chip message per destination core (counted in
  the ``host`` row; charged ``input.host_message_pj`` / ``_ns`` of the chip file, status ``unknown``
  where nothing is published, plus the mesh's per-message and hop energy). Input data that is already
  0/1 is sent as it is (SANA-FE's cross-check feeds such spikes).
* ``graded`` -- graded spikes from the host straight into the first synapses: every non-zero value times
  its fan-out is a multiply-accumulate (``macs``). Only where the chip file gives
  ``input.graded_payload_bits > 0`` (Loihi 2: 8/16/24-bit payloads); refused on Loihi 1.
* ``host`` -- the first synaptic layer computed off chip: the host computes the layers the input feeds
  and sends their binary spikes; those layers are not placed and their work is not charged (the reports
  say so), the chip's pipeline starts one stage later.

Default (:func:`default_input_mode`): a network whose first layer is a bias-driven input layer takes
``bias``; a student trained with ``--input-mode bias`` or ``spikes`` (its graph's metadata ``input_mode``) takes
that mode; input data that is already binary takes ``spikes``; graded data takes ``graded`` where the
chip can receive it, and elsewhere nothing is assumed: the placement is refused in one line naming the
modes the chip takes (a cost of graded input on Loihi 1 would be fiction). Without input data (placing
only) graded input is assumed where the chip takes it, else spikes.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field

import numpy as np

from neurokd.errors import NeurokdError
from neurokd.hardware.cost.counting import Geometry, Population

INPUT_MODES = ("bias", "spikes", "graded", "host")


def takes_graded(chip) -> bool:
    """Whether ``chip`` receives graded spikes: its ``input.graded_payload_bits`` is above 0 (absent: the chip
    file does not say, and graded input is allowed, as before the ``[input]`` table existed)."""
    return chip.get("input.graded_payload_bits", 1) > 0


def chip_modes(chip) -> tuple[str, ...]:
    """The input modes ``chip`` can take, in :data:`INPUT_MODES` order."""
    return tuple(m for m in INPUT_MODES if m != "graded" or takes_graded(chip))


def has_bias_input_layer(network) -> bool:
    """Whether ``network``'s first layer is a bias-driven input layer (a spiking layer with no incoming synapses,
    driven by its bias, as lava-dl netx's PilotNet LIF input layer), or its metadata says so
    (``metadata["input_layer"] == "bias"``, set by a reader of such a file)."""
    if network is None:
        return False
    if (getattr(network, "metadata", None) or {}).get("input_layer") == "bias":
        return True
    layers = getattr(network, "layers", None) or []
    return bool(layers) and not layers[0].synapses and layers[0].neuron.spiking


def default_input_mode(network=None, chip=None, inputs=None) -> str:
    """The mode used when none is given (module docstring). ``inputs``: the input data (None: placing only).
    Raises :class:`NeurokdError` for graded input data on a chip that cannot receive it."""
    if has_bias_input_layer(network):
        return "bias"
    trained = (getattr(network, "metadata", None) or {}).get("input_mode")
    if trained in ("bias", "spikes"):      # a student trained with that input (neurokd.models.encoders)
        return trained
    if inputs is not None:
        from neurokd.hardware.cost.counting import input_is_spiking

        if input_is_spiking(inputs):
            return "spikes"
    if chip is None or takes_graded(chip):
        return "graded"
    if inputs is None:
        return "spikes"
    raise NeurokdError(refusal(chip, default=True))


def refusal(chip, default: bool = False) -> str:
    """The one line that refuses graded input on a chip without graded spikes, naming the modes that work."""
    f = chip.fig("input.graded_payload_bits")
    modes = [m for m in chip_modes(chip)]
    why = f"{chip.name} receives binary spikes only (input.graded_payload_bits = 0, {f.status}, {f.source})"
    what = (f"the input is graded values and {why}, so it cannot be placed as it is" if default else
            f"--input-mode graded cannot run on {chip.name}: {why}")
    return (f"{what}: give --input-mode {', '.join(modes[:-1])} or {modes[-1]} (bias: an on-chip input layer driven by "
            f"the value, spikes: rate coding on the host, host: the first layer computed off chip)")


def resolve_input_mode(mode: str | None, chip, network=None, inputs=None) -> str:
    """``mode`` checked against ``chip`` (one-line :class:`NeurokdError` where the chip cannot take it), or the
    default (:func:`default_input_mode`)."""
    if mode is None:
        return default_input_mode(network, chip, inputs)
    if mode not in INPUT_MODES:
        raise NeurokdError(f"--input-mode must be one of {', '.join(INPUT_MODES)}, got {mode!r}")
    if mode == "graded" and not takes_graded(chip):
        raise NeurokdError(refusal(chip))
    return mode


def host_layers(network, geometry: Geometry) -> list[str]:
    """``host`` mode: the populations the host computes (those fed by the input). Refused where one of them
    also reads a placed layer (the host would need the chip's spikes back)."""
    inp = next(p.name for p in geometry.populations if p.kind == "input")
    first = sorted({c.target for c in geometry.connections if c.source == inp and c.target is not None},
                   key=[p.name for p in geometry.populations].index)
    for pop in first:
        for c in geometry.incoming(pop):
            if c.source not in (inp, pop):
                raise NeurokdError(f"--input-mode host: layer {pop!r} reads {c.source!r} as well as the input, so the "
                                   f"host cannot compute it alone: use --input-mode bias or spikes")
    if not first:
        raise NeurokdError("--input-mode host: no layer reads the input")
    return first


def spike_input_layer(chip, geometry: Geometry, network=None) -> bool:
    """``spikes`` mode: whether the host's spikes enter through on-chip input compartments placed as a layer
    (the chip file's ``input.spike_input_layer``, Loihi 1 as NxSDK places SLAYER networks), which the network does
    not have already (a bias-driven input layer, or a first layer fed through an identity: netx's input layer
    with a neuron)."""
    if chip is None or chip.opt("input.spike_input_layer") < 0.5 or has_bias_input_layer(network):
        return False
    from neurokd.hardware.placement.place import is_identity

    inp = next(p.name for p in geometry.populations if p.kind == "input")
    return not any(c.source == inp and is_identity(c) for c in geometry.connections)


def mode_geometry(mode: str, geometry: Geometry, network=None, chip=None) -> tuple[Geometry, list[str]]:
    """The geometry the placement and cost see under ``mode`` on ``chip``, and the host-computed populations
    (``host``).

    ``bias`` (a network without its own input layer): the input population becomes a placed spiking layer
    (kind ``bias_input``), stateful, without incoming synapses; ``spikes`` on a chip whose host spikes enter
    through input compartments (:func:`spike_input_layer`): likewise, kind ``spike_input`` (its neurons relay the
    host's spikes: one host message and one synaptic op per spike, :mod:`.cost`); ``host``: the input and the
    layers it feeds are not placed (the latter become host-side spiking sources) and the input's synapses go;
    otherwise unchanged (the geometry's input is spiking or graded as the data is)."""
    placed_kind = "bias_input" if mode == "bias" and not has_bias_input_layer(network) else \
        "spike_input" if mode == "spikes" and spike_input_layer(chip, geometry, network) else None
    if placed_kind:
        layers = tuple(dataclasses.replace(p, kind=placed_kind, spiking=True, stateful=True)
                       if isinstance(p, Population) and p.kind == "input" else p for p in geometry.layers)
        return Geometry(layers, teacher=geometry.teacher, footprint_bytes=geometry.footprint_bytes), []
    if mode == "host":
        hosted = host_layers(network, geometry)
        inp = next(p.name for p in geometry.populations if p.kind == "input")
        layers = []
        for x in geometry.layers:
            if isinstance(x, Population):
                if x.name == inp:
                    continue
                if x.name in hosted:
                    x = dataclasses.replace(x, stateful=False, spiking=True)
            elif x.target in hosted:
                continue                                  # the host layers' own synapses run on the host
            layers.append(x)
        return Geometry(tuple(layers), teacher=geometry.teacher, footprint_bytes=geometry.footprint_bytes), hosted
    return geometry, []


def host_network(network):
    """``host`` mode: the network as the chip runs it, every layer's pipeline stage one earlier (the first stage
    is the host's), for the cost's timing."""
    layers = [dataclasses.replace(l, delay=max(int(l.delay) - 1, 0)) for l in network.layers]
    return dataclasses.replace(network, layers=layers)


@dataclass
class InputCharge:
    """What the input mode of a placement is and what it charges (``placement.json``'s ``input``, the reports)."""

    mode: str
    chip: str
    encoding: str | None = None          # spikes: deterministic | bernoulli (seed); bias: the neuron rule
    seed: int | None = None
    full_scale: float | None = None
    payload_bits: int | None = None      # graded: bits per graded spike
    host_layers: list[str] = field(default_factory=list)
    accuracy: float | None = None        # under this mode, when the run has labels
    accuracy_graded: float | None = None  # the same samples fed graded (the network as trained)
    notes: list[str] = field(default_factory=list)

    def describe(self) -> str:
        return {"bias": "an on-chip bias-driven input layer (placed, updated every step, binary spikes into the "
                        "first synapses: accumulates only)",
                "spikes": "binary spikes from the host (host-to-chip messages; the first synapses accumulate only)",
                "graded": "graded spikes from the host into the first synapses (multiply-accumulates)",
                "host": "the first synaptic layer computed on the host (not placed, not charged); its binary "
                        "spikes enter the chip as host messages"}[self.mode]

    def to_dict(self) -> dict:
        out = {k: v for k, v in dataclasses.asdict(self).items() if v not in (None, [])}
        out["description"] = self.describe()
        return out


def charge_figures(charge: InputCharge, report) -> dict:
    """What the mode charged per inference (means over samples), from a :class:`~.cost.CostReport`: the input
    layer's cores, updates and spikes (``bias``), host messages (``spikes``, ``host``), MACs (``graded``)."""
    pl = report.placement
    out = {"host_messages": report.host_total("msgs_sent"),
           "host_message_energy_pj": report.host_routing_pj,
           "first_synapse_macs": float(report.per_core("macs").sum())}
    inp = [pop for pop in pl.layer_cores if pl.geometry.population(pop).kind in ("bias_input", "spike_input")]
    if inp:
        ids = pl.layer_cores[inp[0]]
        comp = report.compute_pj_per_core()[ids].sum() + report.routing_pj_per_core()[ids].sum()
        out.update(input_layer_cores=len(ids),
                   input_layer_updates=float(sum(report.per_core(q)[ids].sum() for q in ("updates_active", "updates_inactive"))),
                   input_layer_updates_active=float(report.per_core("updates_active")[ids].sum()),
                   input_layer_spikes=float(report.per_core("spikes")[ids].sum()),
                   input_layer_energy_pj=float(comp))
    return out


def markdown(charge: InputCharge, report=None) -> list[str]:
    """Lines for cost_report.md / energy_report.md: the mode, what it charges, its accuracy."""
    lines = [f"**Input mode `{charge.mode}`**: {charge.describe()}."]
    if report is not None:
        f = charge_figures(charge, report)
        if charge.mode in ("bias", "spikes") and "input_layer_cores" in f:
            lines.append(f"The input layer: {f['input_layer_cores']} core(s), {f['input_layer_updates']:,.0f} neuron "
                         f"updates ({f['input_layer_updates_active']:,.0f} active) and {f['input_layer_spikes']:,.0f} "
                         f"spikes per inference, {f['input_layer_energy_pj'] / 1e6:.4f} uJ with routing.")
        if charge.mode in ("spikes", "host") or f["host_messages"]:
            lines.append(f"Host-to-chip messages: {f['host_messages']:,.0f} per inference, "
                         f"{f['host_message_energy_pj'] / 1e6:.4f} uJ (the mesh's per-message and hop energy"
                         f" plus input.host_message_pj).")
        if charge.mode == "graded":
            lines.append(f"Multiply-accumulates on graded input: {f['first_synapse_macs']:,.0f} per inference"
                         + (f", {charge.payload_bits}-bit payloads" if charge.payload_bits else "") + ".")
    if charge.host_layers:
        lines.append(f"Computed on the host, not placed and not charged: {', '.join(f'`{h}`' for h in charge.host_layers)}.")
    if charge.accuracy is not None:
        lines.append(f"Accuracy under this mode: {100 * charge.accuracy:.2f} %"
                     + (f" (the same samples fed graded, as trained: {100 * charge.accuracy_graded:.2f} %)"
                        if charge.accuracy_graded is not None else "") + ".")
    lines += [f"- {n}" for n in charge.notes]
    return lines


__all__ = ["INPUT_MODES", "InputCharge", "chip_modes", "takes_graded", "default_input_mode", "resolve_input_mode",
           "has_bias_input_layer", "spike_input_layer", "mode_geometry", "host_layers", "host_network", "charge_figures", "markdown",
           "refusal"]
