"""Chips as data: one TOML file per chip, every figure with its source and status.

``load_chip("loihi1" | "loihi2" | path, overrides=None)`` -> :class:`Chip`. The presets live in
``chips/<name>.toml`` next to this module; a user's file has the same layout (see ``loihi1.toml``'s
header) or starts with ``base = "loihi1"`` and changes only the tables it names. Each figure is
``{ value, source, status, note }``; ``status`` is one of :data:`STATUSES`:

* ``published``: printed in the source; ``derived``: arithmetic on published figures (the note shows it);
* ``secondary``: a tool or thread that mirrors the vendor's software (e.g. nengo-loihi's limits);
* ``inferred``: a rule reconstructed from what a vendor's compiler printed (the note names the rows it reproduces);
* ``assumed``: a modelling choice of neurokd; ``unknown``: not published, the value stands in;
* ``fitted``: not published; fitted to named measurements (the note names them and the fit's residuals), not
  validated beyond them (e.g. ``loihi2-fitted.toml``: Loihi 2's time and energy scaled to Intel's six PilotNet
  LIF runs);
* ``user``: set by ``overrides`` (the chip's ``figures`` keep the replaced figure's note).

An optional ``[barrier]`` table (``tiles_<n> = { value, ... }``, ns) gives the barrier as a step table
(:meth:`Chip.barrier_ns`); without it the barrier is linear between the ``time.barrier_*`` figures.

Any malformed file -> :class:`~neurokd.errors.NeurokdError`, one line naming the file and the key.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path

from neurokd.errors import NeurokdError

try:
    import tomllib
except ImportError:  # Python 3.10
    try:
        import tomli as tomllib  # type: ignore[no-redef]
    except ImportError:  # pragma: no cover
        tomllib = None  # type: ignore[assignment]

CHIP_DIR = Path(__file__).with_name("chips")
STATUSES = ("published", "derived", "secondary", "inferred", "assumed", "unknown", "fitted", "user")

#: section -> figures every chip file must give. Optional (:data:`OPTIONAL`, 0 when absent):
#: ``core.synapses`` (a count limit), ``energy.spike_out_pj`` / ``time.spike_out_ns`` (a neuron emitting
#: a spike, apart from its update: SANA-FE's Loihi model has it, Davies' Table 2 does not) and
#: ``time.message_in_ns`` (a core taking in one spike message), ``time.phases_overlap`` (1: a core's receiving
#: phase and its neuron phase overlap, a step takes the longer of the two; 0 or absent: one after the other),
#: and the ``[input]`` table, how the chip takes input from the host (:mod:`.inputs`):
#: ``input.graded_payload_bits`` (the widest graded spike payload; 0: binary spikes only, absent: not stated,
#: graded input refused), ``input.graded_payload_bits_default`` (the payload a graded input is sent with),
#: ``input.host_message_pj`` / ``input.host_message_ns`` (one host-to-chip message over the host link),
#: ``input.spike_input_layer`` (1: under ``--input-mode spikes`` the host's spikes enter through on-chip input
#: compartments, one per input value, placed as a layer of their own, as NxSDK does; 0 or absent: straight into
#: the first layer's synapses).
REQUIRED = {
    "mesh": ("cores_per_chip", "cores_per_tile", "tiles_x", "tiles_y"),
    "core": ("neurons", "synaptic_memory_bytes", "fan_in_axons", "fan_out_axons"),
    "synapse": ("weight_bits", "index_bits_min", "index_bits_max", "list_header_bits", "list_max_entries",
                "word_bits", "delay_bits"),
    "energy": ("synop_pj", "update_active_pj", "update_inactive_pj", "spike_pj", "hop_ew_pj", "hop_ns_pj",
               "chip_crossing_pj"),
    "time": ("synop_ns", "update_active_ns", "update_inactive_ns", "spike_ns", "hop_ew_ns", "hop_ns_ns",
             "barrier_min_ns", "barrier_max_ns", "barrier_max_tiles", "tile_bandwidth_spikes_per_s"),
}
#: The compiler rules (optional; absent = neurokd's generic placement, the SANA-FE cross-check's):
#: ``core.synmem_units`` (a per-core synaptic memory budget in the vendor compiler's units, which then replaces
#: ``synaptic_memory_bytes`` as the bound), ``synapse.dense_per_unit`` (dense synapses per such unit),
#: ``synapse.kernel_unit_bits`` (bits of shared kernel weights per unit), ``synapse.conv_storage`` (0 per connection,
#: 1 one shared kernel per core, 2 population axons as nengo-loihi builds a convolution), ``core.delay_slots``
#: (neurons x delay slots per core when synapses carry delays), ``core.conv_cut_w`` (1: a conv layer is cut along
#: W into power-of-two column tiles, all channels and rows of a column on one core), ``core.ratio_split`` (1: a
#: dense layer is cut into ceil(use / budget) equal parts, parts still over cut again by their own ratio),
#: ``core.conv_cut_tiles`` (1: a conv layer is cut into (channel, row, column) boxes, the fewest that fit, in
#: NxTF's candidate order),
#: ``core.fan_out_per_core`` (1 or absent: one output axon per neuron and destination core; 0: per neuron and
#: outgoing connection).
OPTIONAL = {"core": ("synapses", "synmem_units", "delay_slots", "conv_cut_w", "ratio_split", "fan_out_per_core",
                     "conv_cut_tiles"),
            "synapse": ("dense_per_unit", "kernel_unit_bits", "conv_storage"),
            "energy": ("spike_out_pj",),
            "time": ("spike_out_ns", "message_in_ns", "phases_overlap"),
            "input": ("graded_payload_bits", "graded_payload_bits_default", "host_message_pj", "host_message_ns",
                      "spike_input_layer")}
INTEGER = {"mesh.cores_per_chip", "mesh.cores_per_tile", "mesh.tiles_x", "mesh.tiles_y", "core.neurons",
           "core.synaptic_memory_bytes", "core.fan_in_axons", "core.fan_out_axons", "core.synapses",
           "synapse.weight_bits", "synapse.index_bits_min", "synapse.index_bits_max", "synapse.list_header_bits",
           "synapse.list_max_entries", "synapse.word_bits", "synapse.delay_bits", "time.barrier_max_tiles",
           "core.synmem_units", "core.delay_slots", "core.conv_cut_w", "core.ratio_split", "core.fan_out_per_core",
           "core.conv_cut_tiles",
           "synapse.dense_per_unit", "synapse.kernel_unit_bits", "synapse.conv_storage",
           "input.graded_payload_bits", "input.graded_payload_bits_default", "input.spike_input_layer"}
ZERO_OK = {"core.conv_cut_w", "core.ratio_split", "core.fan_out_per_core", "core.conv_cut_tiles"}   # switches: 0 is a value


@dataclass(frozen=True)
class Figure:
    """One number of a chip description and where it comes from."""

    key: str          # "section.name"
    value: float
    source: str       # key of Chip.sources
    status: str
    note: str = ""

    def cite(self, sources: dict[str, str]) -> str:
        return f"{self.value:g} ({self.status}; {self.source}: {self.note})" if self.note else \
            f"{self.value:g} ({self.status}; {self.source})"


@dataclass(frozen=True)
class Chip:
    """A chip description (see the module docstring); ``fig("core.neurons")`` -> :class:`Figure`,
    ``chip["core.neurons"]`` -> its value."""

    name: str
    title: str
    path: str
    sources: dict[str, str]
    figures: dict[str, Figure] = field(default_factory=dict)

    def fig(self, key: str) -> Figure:
        if key not in self.figures:
            raise NeurokdError(f"chip {self.name!r} has no figure {key!r}")
        return self.figures[key]

    def __getitem__(self, key: str):
        f = self.fig(key)
        return int(f.value) if key in INTEGER else float(f.value)

    def get(self, key: str, default=None):
        return self[key] if key in self.figures else default

    def opt(self, key: str) -> float:
        """An optional figure's value, 0 where the chip file leaves it out."""
        return float(self[key]) if key in self.figures else 0.0

    # -- derived geometry ---------------------------------------------------------------------
    @property
    def cores_per_chip(self) -> int:
        return self["mesh.cores_per_chip"]

    @property
    def tiles_per_chip(self) -> int:
        return math.ceil(self.cores_per_chip / self["mesh.cores_per_tile"])

    def barrier_ns(self, tiles: int) -> float:
        """Barrier time of a step on ``tiles`` tiles: from the ``[barrier]`` table where the file has one (the
        entry of the most tiles not above ``tiles``, as SANA-FE reads its ``latency_sync`` table), else linear
        between ``time.barrier_min_ns`` (1 tile) and ``time.barrier_max_ns`` (``time.barrier_max_tiles``)."""
        table = sorted((int(k.split("_", 1)[1]), f.value) for k, f in self.figures.items() if k.startswith("barrier.tiles_"))
        tiles = max(int(tiles), 1)
        if table:
            below = [v for n, v in table if n <= tiles]
            return float(below[-1] if below else table[0][1])
        lo, hi, n = self["time.barrier_min_ns"], self["time.barrier_max_ns"], self["time.barrier_max_tiles"]
        return lo if n <= 1 else lo + (hi - lo) * (tiles - 1) / (n - 1)

    def limit_text(self, key: str) -> str:
        """``loihi1's 1024 neurons per core (published, davies2018)`` for error messages."""
        f = self.fig(key)
        what = key.split(".", 1)[1].replace("_", " ")
        return f"{self.name}'s {self[key]:,} {what} per core ({f.status}, {f.source})"

    def stand_ins(self) -> list[Figure]:
        """Figures that are not published for this chip (status unknown, assumed, inferred or fitted)."""
        return [f for f in self.figures.values() if f.status in ("unknown", "assumed", "inferred", "fitted")]

    def fitted(self) -> list[Figure]:
        """Figures fitted to measurements (status ``fitted``): reports name them apart, as unvalidated."""
        return [f for f in self.figures.values() if f.status == "fitted"]

    def to_dict(self) -> dict:
        return {
            "name": self.name, "title": self.title, "path": self.path, "sources": dict(self.sources),
            "figures": {k: {"value": f.value, "source": f.source, "status": f.status, "note": f.note}
                        for k, f in self.figures.items()},
        }


def preset_names() -> list[str]:
    return sorted(p.stem for p in CHIP_DIR.glob("*.toml"))


def _read_toml(path: Path) -> dict:
    if tomllib is None:  # pragma: no cover
        raise NeurokdError("reading chip files needs Python >= 3.11 (tomllib) or the tomli package")
    try:
        with open(path, "rb") as fh:
            return tomllib.load(fh)
    except OSError as exc:
        raise NeurokdError(f"chip file {path}: cannot read it ({exc.strerror})") from exc
    except tomllib.TOMLDecodeError as exc:
        raise NeurokdError(f"chip file {path}: not valid TOML ({exc})") from exc


def _resolve(spec: str | Path) -> Path:
    text = str(spec)
    if text in preset_names():
        return CHIP_DIR / f"{text}.toml"
    path = Path(text)
    if path.suffix == ".toml" or path.exists():
        if not path.is_file():
            raise NeurokdError(f"chip file not found: {path}")
        return path
    raise NeurokdError(f"unknown hardware {text!r}: give a preset ({', '.join(preset_names())}) or a chip .toml file")


def _merge(base: dict, over: dict) -> dict:
    out = {k: (dict(v) if isinstance(v, dict) else v) for k, v in base.items()}
    for k, v in over.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict) and k in (*REQUIRED, *OPTIONAL, "sources"):
            out[k] = {**out[k], **v}
        else:
            out[k] = v
    return out


def _raw(path: Path, seen: tuple[Path, ...] = ()) -> dict:
    data = _read_toml(path)
    if "base" in data:
        if not isinstance(data["base"], str):
            raise NeurokdError(f"chip file {path}: 'base' must be a preset name or a file path")
        base_path = _resolve(data["base"] if data["base"] in preset_names() else path.parent / data["base"])
        if base_path.resolve() in seen or base_path.resolve() == path.resolve():
            raise NeurokdError(f"chip file {path}: 'base' chain loops back to {base_path}")
        data = _merge(_raw(base_path, (*seen, path.resolve())), {k: v for k, v in data.items() if k != "base"})
    return data


def _figure(where: str, key: str, entry, sources: dict) -> Figure:
    if not isinstance(entry, dict):
        raise NeurokdError(f"{where}: {key} must be a table {{ value, source, status, note }}, got {entry!r}")
    unknown = set(entry) - {"value", "source", "status", "note"}
    if unknown:
        raise NeurokdError(f"{where}: {key} has unknown field(s) {', '.join(sorted(unknown))}")
    value = entry.get("value")
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise NeurokdError(f"{where}: {key}.value must be a finite number, got {value!r}")
    if value < 0:
        raise NeurokdError(f"{where}: {key}.value must be >= 0, got {value}")
    if key in INTEGER and value != int(value):
        raise NeurokdError(f"{where}: {key}.value must be a whole number, got {value}")
    if key.split(".")[0] in ("mesh", "core") and value < 1 and key not in ZERO_OK:
        raise NeurokdError(f"{where}: {key}.value must be >= 1, got {value}")
    src = entry.get("source")
    if src not in sources:
        raise NeurokdError(f"{where}: {key}.source {src!r} is not a key of [sources] ({', '.join(sources)})")
    status = entry.get("status")
    if status not in STATUSES:
        raise NeurokdError(f"{where}: {key}.status must be one of {', '.join(STATUSES)}, got {status!r}")
    return Figure(key, float(value), src, status, str(entry.get("note", "")))


def load_chip(spec: "str | Path | Chip", overrides: dict[str, float] | None = None) -> Chip:
    """A preset name (``loihi1``, ``loihi2``) or a chip ``.toml`` path -> :class:`Chip`.

    ``overrides``: ``{"section.name": value}``; each replaces that figure's value (status ``user``).
    """
    if isinstance(spec, Chip):
        chip = spec
    else:
        path = _resolve(spec)
        where = f"chip file {path}"
        data = _raw(path)
        sources = data.get("sources")
        if not isinstance(sources, dict) or not sources or not all(isinstance(v, str) for v in sources.values()):
            raise NeurokdError(f"{where}: needs a [sources] table of name = \"reference\" strings")
        figures: dict[str, Figure] = {}
        for section, names in {**REQUIRED, **{k: () for k in OPTIONAL if k not in REQUIRED}}.items():
            table = data.get(section, {} if not names else None)
            if not isinstance(table, dict):
                raise NeurokdError(f"{where}: missing table [{section}]")
            allowed = set(names) | set(OPTIONAL.get(section, ()))
            extra = set(table) - allowed
            if extra:
                raise NeurokdError(f"{where}: [{section}] has unknown figure(s) {', '.join(sorted(extra))}")
            for name in (*names, *OPTIONAL.get(section, ())):
                if name not in table:
                    if name in names:
                        raise NeurokdError(f"{where}: [{section}] is missing {name}")
                    continue
                key = f"{section}.{name}"
                figures[key] = _figure(where, key, table[name], sources)
        table = data.get("barrier", {})
        if not isinstance(table, dict):
            raise NeurokdError(f"{where}: [barrier] must be a table of tiles_<n> = {{ value, source, status, note }}")
        for tname, entry in table.items():
            if not (tname.startswith("tiles_") and tname[6:].isdigit() and int(tname[6:]) >= 1):
                raise NeurokdError(f"{where}: [barrier] key {tname!r} must be tiles_<n> (n >= 1 tiles)")
            figures[f"barrier.{tname}"] = _figure(where, f"barrier.{tname}", entry, sources)
        name = data.get("name", path.stem)
        chip = Chip(str(name), str(data.get("title", name)), str(path), dict(sources), figures)
        _check_consistent(chip, where)
    if overrides:
        figures = dict(chip.figures)
        for key, value in overrides.items():
            if key not in figures:
                raise NeurokdError(f"override {key!r}: chip {chip.name!r} has no such figure "
                                   f"(figures: {', '.join(figures)})")
            old = figures[key]
            new = _figure(f"override of chip {chip.name!r}", key,
                          {"value": value, "source": old.source, "status": "user", "note": f"set by the user (was {old.value:g})"},
                          chip.sources)
            figures[key] = new
        chip = Chip(chip.name, chip.title, chip.path, chip.sources, figures)
        _check_consistent(chip, f"chip {chip.name!r} with overrides")
    return chip


def _check_consistent(chip: Chip, where: str) -> None:
    tiles = chip["mesh.tiles_x"] * chip["mesh.tiles_y"]
    if tiles * chip["mesh.cores_per_tile"] < chip.cores_per_chip:
        raise NeurokdError(f"{where}: mesh of {chip['mesh.tiles_x']} x {chip['mesh.tiles_y']} tiles x "
                           f"{chip['mesh.cores_per_tile']} cores holds fewer than the {chip.cores_per_chip} cores per chip")
    if chip["synapse.index_bits_min"] > chip["synapse.index_bits_max"]:
        raise NeurokdError(f"{where}: synapse.index_bits_min is above synapse.index_bits_max")


__all__ = ["Figure", "Chip", "load_chip", "preset_names", "CHIP_DIR", "STATUSES"]
