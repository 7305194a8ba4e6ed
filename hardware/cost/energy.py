"""Energy estimates: counted events times a per-event cost, one cost table per hardware model.

For each layer row of :class:`~neurokd.hardware.cost.counting.Counts` (per inference)::

    E = synops * E_synop + macs * E_mac                          # connections
      + active * E_update_active + inactive * E_update_inactive  # populations
      + (spikes + graded_events) * E_spike                       # routing, where a placement is stated

and for the ANN teacher of the same graph ``E_teacher = MACs * E_teacher_mac + adds * E_teacher_add``.
When active updates are unknown (counts without per-step rasters), every update is charged as
active: an upper bound, flagged in the estimate.

Every constant lives in :data:`ENERGY_MODELS` with its source (paper, table, row). Adding a model
is adding one entry there.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from neurokd.errors import NeurokdError
from neurokd.hardware.cost.counting import Counts, TeacherCounts

@dataclass(frozen=True)
class Source:
    """A publication the costs come from: a short name for tables, the full reference for the list."""

    short: str
    full: str


SOURCES = {
    "davies2018": Source(
        "Davies et al. 2018, Table 2",
        "M. Davies et al., \"Loihi: A Neuromorphic Manycore Processor with On-Chip Learning\", "
        "IEEE Micro 38(1):82-99, 2018; Table 2 \"Loihi pre-silicon performance and energy "
        "measurements\", column \"Value at 0.75 V\"",
    ),
    "horowitz2014": Source(
        "Horowitz 2014",
        "M. Horowitz, \"Computing's energy problem (and what we can do about it)\", ISSCC 2014, "
        "doi:10.1109/ISSCC.2014.6757323; table of rough energy costs per operation, 45 nm, 0.9 V",
    ),
}


@dataclass(frozen=True)
class Cost:
    """One per-event energy in pJ, with its source key (:data:`SOURCES`) and the row it comes from."""

    pj: float
    source: str | None
    row: str

    def cite(self) -> str:
        """Short citation: ``Davies et al. 2018, Table 2, row "..."`` (or the row text alone)."""
        if self.source is None:
            return self.row
        return f"{SOURCES[self.source].short}, {self.row}"


NOT_CHARGED = Cost(0.0, None, "not charged")


@dataclass(frozen=True)
class EnergyModel:
    """Per-event costs of one hardware model (pJ).

    ``synop``: one binary spike over one non-zero synapse (an accumulate). ``mac``: one graded
    event over one non-zero synapse (the first layer under direct encoding). ``update_active`` /
    ``update_inactive``: one neuron update at one step. ``spike``: routing of one emitted event.
    ``teacher_mac`` / ``teacher_add``: the ANN teacher's operations on the same technology (None
    where the model does not describe hardware an ANN runs on). ``notes``: caveats the report
    prints under the table.
    """

    name: str
    title: str
    synop: Cost
    mac: Cost
    update_active: Cost
    update_inactive: Cost
    spike: Cost = NOT_CHARGED
    teacher_mac: Cost | None = None
    teacher_add: Cost | None = None
    notes: tuple[str, ...] = field(default_factory=tuple)

    def costs(self) -> dict[str, Cost]:
        named = {
            "synop": self.synop, "mac": self.mac, "update_active": self.update_active,
            "update_inactive": self.update_inactive, "spike": self.spike,
            "teacher_mac": self.teacher_mac, "teacher_add": self.teacher_add,
        }
        return {k: v for k, v in named.items() if v is not None}


_LOIHI_SYNOP = Cost(23.6, "davies2018", "row \"Energy per synaptic spike op (min)\"")
_LOIHI_ACTIVE = Cost(81.0, "davies2018", "row \"Energy per neuron update (active / inactive)\", active")
_LOIHI_INACTIVE = Cost(52.0, "davies2018", "row \"Energy per neuron update (active / inactive)\", inactive")
_LOIHI_GRADED = Cost(
    23.6, "davies2018",
    "row \"Energy per synaptic spike op (min)\", charged per graded input event and synapse "
    "(assumption: Loihi 1 has no graded spikes; no per-event figure for Loihi 2's graded spikes is published)",
)
_LOIHI_NOTES = (
    "Loihi 1 figures (Davies et al. 2018, pre-silicon, 0.75 V); Intel has published no per-event "
    "energies for Loihi 2, so these stand in for it.",
    "23.6 pJ is the table's minimum per synaptic spike op; the table gives no typical value.",
    "Active update: the neuron received a synaptic event or spiked at that step; inactive: neither.",
)
_H_ADD32 = Cost(0.9, "horowitz2014", "entry \"32-bit float add\"")
_H_MAC32 = Cost(4.6, "horowitz2014", "entries \"32-bit float mult\" 3.7 pJ + \"32-bit float add\" 0.9 pJ")
_H_ADD8 = Cost(0.03, "horowitz2014", "entry \"8-bit int add\"")
_H_MAC8 = Cost(0.23, "horowitz2014", "entries \"8-bit int mult\" 0.2 pJ + \"8-bit int add\" 0.03 pJ")
_H_NO_UPDATE = Cost(0.0, None, "not charged (the E = E_AC * ACs + E_MAC * MACs convention of SNN papers)")
_H_NOTES = (
    "45 nm arithmetic only (Horowitz 2014): no memory access, no routing, neuron updates not charged, "
    "as in the AC/MAC estimates of the SNN literature; the ANN teacher is charged the same way.",
)

ENERGY_MODELS: dict[str, EnergyModel] = {
    "loihi-events": EnergyModel(
        name="loihi-events",
        title="Loihi 1 event energies (SynOps, MACs, neuron updates of the network's own steps), no routing, "
              "no placement",
        synop=_LOIHI_SYNOP,
        mac=_LOIHI_GRADED,
        update_active=_LOIHI_ACTIVE,
        update_inactive=_LOIHI_INACTIVE,
        spike=Cost(0.0, None, "routing not charged: tile hops need a placement of neurons on cores"),
        notes=_LOIHI_NOTES,
    ),
    "loihi-tile": EnergyModel(
        name="loihi-tile",
        title="Loihi 1 event energies, every event routed within one tile",
        synop=_LOIHI_SYNOP,
        mac=_LOIHI_GRADED,
        update_active=_LOIHI_ACTIVE,
        update_inactive=_LOIHI_INACTIVE,
        spike=Cost(
            1.7, "davies2018",
            "row \"Within-tile spike energy\", per emitted spike or graded input event "
            "(placement: the whole network in one tile, no E-W 3.0 pJ / N-S 4.0 pJ hops)",
        ),
        notes=_LOIHI_NOTES,
    ),
    "45nm": EnergyModel(
        name="45nm",
        title="45 nm 32-bit float: AC per SynOp, MAC per graded input and per teacher MAC",
        synop=_H_ADD32,
        mac=_H_MAC32,
        update_active=_H_NO_UPDATE,
        update_inactive=_H_NO_UPDATE,
        teacher_mac=_H_MAC32,
        teacher_add=_H_ADD32,
        notes=_H_NOTES,
    ),
    "45nm-int8": EnergyModel(
        name="45nm-int8",
        title="45 nm 8-bit integer: AC per SynOp, MAC per graded input and per teacher MAC",
        synop=_H_ADD8,
        mac=_H_MAC8,
        update_active=_H_NO_UPDATE,
        update_inactive=_H_NO_UPDATE,
        teacher_mac=_H_MAC8,
        teacher_add=_H_ADD8,
        notes=_H_NOTES,
    ),
}

DEFAULT_MODELS = tuple(ENERGY_MODELS)

#: Former names still accepted (``energy_report.csv`` files written before the rename carry them): ``loihi`` is
#: ``loihi-events``, renamed so that it says what it counts beside a run's placed cost on the chip, which is
#: the run's Loihi energy where it has one (``map/cost_report``: the same events plus routing over the mesh, host
#: messages and the pipeline's extra steps).
ALIASES = {"loihi": "loihi-events"}


class _Models(dict):
    """:data:`ENERGY_MODELS`: iterates today's names only; ``ENERGY_MODELS["loihi"]`` still finds the renamed model."""

    def __missing__(self, key):
        if key in ALIASES:
            return self[ALIASES[key]]
        raise KeyError(key)


ENERGY_MODELS = _Models(ENERGY_MODELS)


def canonical_model(name: str) -> str:
    """A model name with a former name (:data:`ALIASES`) replaced by today's."""
    return ALIASES.get(name, name)


def get_model(model: str | EnergyModel) -> EnergyModel:
    """An :class:`EnergyModel` by name, a former name included (:data:`ALIASES`), or passed through."""
    if isinstance(model, EnergyModel):
        return model
    if canonical_model(model) not in ENERGY_MODELS:
        raise NeurokdError(f"unknown energy model {model!r}; choose one of: {', '.join(DEFAULT_MODELS)}")
    return ENERGY_MODELS[canonical_model(model)]


@dataclass(frozen=True)
class LayerEnergy:
    """Energy of one report row per inference, and its parts (pJ)."""

    layer: str
    kind: str
    pj: float
    parts: dict[str, float]


@dataclass(frozen=True)
class EnergyEstimate:
    """Energy of a network per inference under one model: per layer, total, and the teacher's."""

    model: EnergyModel
    steps: int
    layers: tuple[LayerEnergy, ...]
    teacher_pj: float | None
    updates_upper_bound: bool

    @property
    def total_pj(self) -> float:
        return sum(layer.pj for layer in self.layers)

    @property
    def total_pj_per_step(self) -> float:
        return self.total_pj / self.steps if self.steps else float("nan")

    def layer(self, name: str) -> LayerEnergy:
        for row in self.layers:
            if row.layer == name:
                return row
        raise NeurokdError(f"no layer named {name!r} in the estimate")


def energy(counts: Counts, model: str | EnergyModel, teacher: TeacherCounts | None = None) -> EnergyEstimate:
    """Per-layer and total pJ per inference of ``counts`` under ``model`` (formula in the module docstring).

    With ``teacher`` (from :func:`~neurokd.hardware.cost.counting.teacher_ops`), the ANN teacher's
    energy per inference is added where the model prices it.
    """
    m = get_model(model)
    rows = []
    for r in counts.layers:
        active = r.neuron_updates if r.active_updates is None else r.active_updates
        parts = {
            "synops": r.synops * m.synop.pj,
            "macs": r.macs * m.mac.pj,
            "updates_active": active * m.update_active.pj,
            "updates_inactive": (r.neuron_updates - active) * m.update_inactive.pj,
            "spikes": (r.spikes + r.graded_events) * m.spike.pj,
        }
        rows.append(LayerEnergy(r.layer, r.kind, sum(parts.values()), parts))
    teacher_pj = None
    if teacher is not None and m.teacher_mac is not None:
        add = m.teacher_add.pj if m.teacher_add is not None else 0.0
        teacher_pj = teacher.total_macs * m.teacher_mac.pj + teacher.total_adds * add
    return EnergyEstimate(m, counts.steps, tuple(rows), teacher_pj, not counts.active_known)


__all__ = ["Source", "SOURCES", "Cost", "EnergyModel", "ENERGY_MODELS", "DEFAULT_MODELS", "ALIASES", "canonical_model", "get_model",
           "LayerEnergy", "EnergyEstimate", "energy"]
