"""Deployment: a trained run -> NIR -> the hardware model, checked against PyTorch (:func:`export_run`),
and any NIR graph on the hardware model (:func:`simulate_graph`). The work behind ``neurokd export`` and
``neurokd simulate`` and behind :func:`neurokd.export` and :func:`neurokd.simulate`.

``export RUN --target nir`` writes ``RUN/model.nir``. ``--target lava`` then runs the test split (or
``--samples N`` of it) in Lava on CPU and writes::

    RUN/lava/network.json                 the IR: layers, neuron parameters, Lava shapes, delays
    RUN/lava/spike_counts_<p>.npz         per layer (N, neurons) spikes per sample, + labels, predictions
    RUN/lava/predictions_<p>.csv          index, label, PyTorch prediction, Lava prediction
    RUN/lava/run_<p>.json                 timings (build, run, samples/s), Lava steps, delays
    RUN/lava/quantization.json            fixed point only: per-layer scales, exponents, errors
    RUN/agreement.json                    float (DESIGN.md contract); RUN/agreement_fixed.json for fixed
    RUN/energy_report.csv (+ .md)         via neurokd.hardware.reports.energy_report, when it is installed (hook below)

``--hardware PRESET|FILE`` (with ``--placer pack|balance``, ``--chips N``; targets ``lava`` and
``simulate``) then places the network on that chip's cores and costs every step from the run's own
spikes (:mod:`neurokd.hardware.placement`): ``RUN/map/`` (``OUT/map/`` for simulate) gets
``mapping.csv``, ``placement.json``, ``cost_report.csv``, ``cost_steps.csv``, ``cost_report.md`` and
``mesh_load.png``, and ``energy_report.md`` the cost section (cores, latency, energy with routing, the
bottleneck core and what bounds it). A network that does not fit is refused before anything runs.
``--input-mode bias|spikes|graded|host`` says how the chip takes the input
(:mod:`neurokd.hardware.placement.inputs`: graded input is refused on a chip without graded spikes, before
anything runs); ``bias`` and ``spikes`` re-run the split in the fast engine on the spikes the chip receives
(:mod:`neurokd.hardware.engines.encoding`) and report the accuracy under the mode beside the run's.
A placement belongs to the run that made it: ``--target lava`` (and simulate) without ``--hardware``
moves an earlier ``map/`` aside to ``map.stale/``, saying so in one line (:func:`_retire_map`).
When the run is too large to keep per-step spikes (:data:`MAX_STEP_RECORD`), the first samples that fit
are re-run in the fast engine (bit-exact with Lava) and costed, and the cost section says so.

``--engine fast`` runs the split in neurokd's vectorised model of the same hardware
(:mod:`neurokd.hardware.engines.fastsim`, bit-exact in fixed point) and re-runs ``--verify N`` random
samples in Lava; any differing spike fails the command (exit 1) naming layer, sample and step.

``--target netx`` writes ``RUN/model.net`` (lava-dl netx HDF5, from the same quantised IR, with
netx's limits: :func:`neurokd.hardware.formats.netx.quantize_netx`), loads it with netx, runs it in Lava
``fixed_pt`` and checks its spikes against neurokd's own Lava run of the same network
(``agreement_netx.json``; any difference exits 1). ``--target onnx`` writes ``teacher.onnx`` and
``student_step.onnx`` (one time step, membranes in and out), checked with ``onnx.checker`` and
compared with PyTorch in onnxruntime (``onnx_check.json``). Every target writes ``RUN/MODEL.md``,
the model card.

The PyTorch reference is the exported graph replayed by :func:`neurokd.exporters.from_nir.nir_to_torch`
in float64, the arithmetic of Lava's ``floating_pt`` (the student's own float32 forward can differ
from any float64 computation at exact threshold ties); ``accuracy_student`` is the trained
student's own float32 accuracy. ``spike_agreement`` is the fraction of (sample, step, neuron)
with identical spikes after removing Lava's per-layer delay. In float precision anything below
100 % is a failed check (exit 1, files written first); in fixed point it is the measured effect of
quantisation.
"""

from __future__ import annotations

import shutil
import time
import warnings
from pathlib import Path

import numpy as np

from neurokd import fileio
from neurokd.errors import CheckFailed, NeurokdError

#: Above this many (samples x steps x neurons), per-step spike trains are not kept and spike
#: agreement is measured on per-sample spike counts instead (said so in agreement.json).
MAX_STEP_RECORD = 50_000_000


# --------------------------------------------------------------------------------------------------
# Helpers shared by export and simulate
# --------------------------------------------------------------------------------------------------

def _save_npz(path: Path, arrays: dict[str, np.ndarray]) -> None:
    with fileio.atomic_path(path) as tmp:
        with open(tmp, "wb") as fh:
            np.savez_compressed(fh, **arrays)


def energy_report_hook(out_dir: Path, network, result, inputs: np.ndarray, title: str = "",
                       verification=None, sections=(), geometry=None, placed=None) -> list[Path]:
    """ENERGY REPORT HOOK: this run's spikes -> ``energy_report.csv`` + ``.md`` in ``out_dir``.

    Counting and energy belong to :mod:`neurokd.hardware.cost.counting` / :mod:`neurokd.hardware.reports.energy_report`:
    the IR gives the geometry (``geometry_from_ir``, the fixed-point weights for a fixed run; the input
    population is spiking when every input value is in {0, 1} or {-1, 0, 1}, ``input_is_spiking``, so
    the same input counts alike in float and fixed point and from either engine), the
    result the events (``activity_from_lava``). With ``verification`` (a fast-model run's
    :class:`~neurokd.hardware.engines.fastsim.Verification`) the samples Lava re-ran are counted too and written
    beside the whole split's (``energy_subset.csv``, a section of ``energy_report.md``). ``sections``: more
    Markdown sections for ``energy_report.md`` (the placement's cost); ``geometry``: :func:`run_geometry`'s,
    when the caller built it already. ``placed``: the placement's cost, the run's energy on its chip, which leads
    the report. Returns the written paths ([] when those modules are not installed).
    """
    try:
        from neurokd.hardware.cost.counting import activity_from_lava, count
        from neurokd.hardware.reports.energy_report import VerifiedSubset, write_energy_report
    except ImportError:
        return []
    if geometry is None:
        geometry = run_geometry(network, inputs, result.fixed)
    counts = count(geometry, activity_from_lava(geometry, result, inputs))
    subset = None
    if verification is not None:
        idx = verification.indices
        per_sample = sum(np.asarray(c, dtype=np.float64).sum(axis=1) for c in result.counts.values())
        n, total = len(idx), result.samples
        rse = None
        if n and total > 1 and float(np.mean(per_sample)) > 0:
            rse = float(np.std(per_sample, ddof=1) / np.mean(per_sample) / np.sqrt(n) * np.sqrt((total - n) / (total - 1)))
        subset = VerifiedSubset(
            lava=count(geometry, activity_from_lava(geometry, verification.lava, inputs[idx])),
            fast=count(geometry, activity_from_lava(geometry, verification.fast, inputs[idx])),
            indices=tuple(int(i) for i in idx), precision=result.precision, identical=verification.identical,
            spike_rse=rse,
        )
    return [Path(p) for p in write_energy_report(out_dir, geometry, counts, title=title, subset=subset,
                                                 sections=sections, placed=placed)]


# --------------------------------------------------------------------------------------------------
# --hardware: place the run's network on a chip and cost it (export --target lava, simulate)
# --------------------------------------------------------------------------------------------------

def _hardware_chip(hardware, placer: str, chips: int | None, input_mode: str | None = None):
    """Check ``--hardware/--placer/--chips/--input-mode`` before anything runs: the :class:`Chip`, or None without
    ``--hardware``."""
    if hardware is None:
        if placer != "pack" or chips is not None or input_mode is not None:
            raise NeurokdError("--placer, --chips and --input-mode place the network on a chip: give --hardware "
                               "PRESET|FILE too")
        return None
    from neurokd.hardware.placement import PLACERS, load_chip

    if placer not in PLACERS:
        raise NeurokdError(f"--placer must be one of {', '.join(PLACERS)}, got {placer!r}")
    if chips is not None and chips < 1:
        raise NeurokdError(f"--chips must be >= 1, got {chips}")
    return load_chip(hardware)


def _cost_samples(n: int, steps: int, neurons: int) -> int:
    """How many of ``n`` samples keep per-step spikes within MAX_STEP_RECORD; a run too large for even one
    sample is refused (one line) before it starts."""
    k = min(n, MAX_STEP_RECORD // max(steps * neurons, 1))
    if k < 1:
        raise NeurokdError(f"--hardware needs per-step spikes, and one sample ({steps} steps x {neurons:,} neurons) is "
                           f"over the {MAX_STEP_RECORD:,} kept per run: use fewer steps, or `neurokd map` on the graph")
    return k


def run_geometry(network, x: np.ndarray, fixed):
    """The geometry a run is counted with (energy report, placement, tune): the input population spiking or
    graded from the input data itself (``input_is_spiking``, one rule for both precisions and both engines),
    a fixed-point run's weights."""
    from neurokd.hardware.cost.counting import geometry_from_ir, input_is_spiking

    return geometry_from_ir(network, input_spiking=input_is_spiking(x), fixed=fixed)


def _check_fits(network, chip, chips: int | None, geometry, input_mode: str = "graded") -> None:
    """Refuse (one line: layer, limit, figure, excess) before the run a network ``pack`` cannot place; no
    placer fits what ``pack``, the fewest cores, does not. ``input_mode``: placed as that mode places it (``bias``
    adds the input layer's cores, ``host`` leaves the first layer off)."""
    from neurokd.hardware.placement import place
    from neurokd.hardware.placement.inputs import mode_geometry

    place(network, chip, placer="pack", geometry=mode_geometry(input_mode, geometry, network, chip)[0], max_chips=chips or 1)


def trained_input_mode(network) -> str | None:
    """The input mode a student was trained with where it built an input layer or host encoder into itself
    (``bias`` or ``spikes``: the exported graph's metadata, :mod:`neurokd.models.encoders`), else None."""
    mode = (getattr(network, "metadata", None) or {}).get("input_mode")
    return mode if mode in ("bias", "spikes") else None


def _input_mode(mode: str | None, chip, network, x) -> str:
    """``--input-mode`` resolved on ``chip`` for input data ``x`` before anything runs (one-line refusal where the
    chip cannot take it: graded input on Loihi 1). A student trained with ``--input-mode bias|spikes`` is placed
    in that mode (its first synapses learnt on those spikes); another mode given for it is refused in one line."""
    from neurokd.hardware.placement.inputs import refusal, resolve_input_mode, takes_graded

    trained = trained_input_mode(network)
    if trained is not None:
        if mode is not None and mode != trained:
            raise NeurokdError(f"this student was trained with --input-mode {trained} (its first synapses learnt on "
                               f"those spikes), so --input-mode {mode} would run another network: leave --input-mode "
                               f"out or give {trained}")
        return resolve_input_mode(trained, chip, network, x)
    from neurokd.hardware.cost.counting import input_is_spiking

    graded_run = (getattr(network, "metadata", None) or {}).get("input_mode") == "graded"
    graded_data = x is not None and not input_is_spiking(x)      # spikes given as data are sent as they are
    if graded_run and (mode == "graded" or (mode is None and graded_data)) and not takes_graded(chip):
        raise NeurokdError(refusal(chip, default=mode is None).rstrip(")") + "); a student deployable there is "
                           "trained with its input: `neurokd train --input-mode bias` (or spikes)")
    return resolve_input_mode(mode, chip, network, x)


def _encode_input(network, x: np.ndarray, mode: str, chip, timesteps: int | None, spike_encoding: str = "deterministic",
                  seed: int = 0, input_bits: int = 8):
    """The input as ``mode`` sends it to the chip: ``(x the engine runs on, the input layer's run or None,
    InputCharge)``. ``bias``: the bias-driven input layer's spikes (:func:`~neurokd.hardware.engines.encoding.bias_layer`,
    ``input_bits`` bits of bias); ``spikes``: host rate coding (``spike_encoding``, ``seed``); ``graded`` and
    ``host``: the values as they are."""
    from neurokd.hardware.engines.encoding import SPIKE_ENCODINGS, bias_layer, full_scale, rate_spikes
    from neurokd.hardware.placement.inputs import InputCharge, has_bias_input_layer

    if spike_encoding not in SPIKE_ENCODINGS:
        raise NeurokdError(f"--spike-encoding must be one of {', '.join(SPIKE_ENCODINGS)}, got {spike_encoding!r}")
    from neurokd.hardware.cost.counting import input_is_spiking

    charge = InputCharge(mode, chip.name)
    if mode not in ("bias", "spikes") or (mode == "bias" and has_bias_input_layer(network)):
        return x, None, charge
    trained = trained_input_mode(network) == mode
    if mode == "spikes" and input_is_spiking(x) and not trained:
        charge.notes.append("the input data is binary spikes already: sent as it is")
        return x, None, charge
    frames = network.input_sequence(x, timesteps)
    scale = None
    if trained:          # the student's own encoder: its offset, full scale and bits, as it was trained
        meta = network.metadata
        offset, scale = float(meta.get("input_offset", 0.0)), float(meta.get("input_full_scale", 1.0))
        input_bits = int(meta.get("input_bits", input_bits))
        frames = np.clip(frames - offset, 0.0, None)
        charge.notes.append(f"trained with --input-mode {mode}: the student's own input "
                            f"{'layer' if mode == 'bias' else 'encoder'} (offset {offset:g}, full scale {scale:g}"
                            f"{f', {input_bits}-bit bias' if mode == 'bias' else ''}), the spikes it learnt on")
        if mode == "spikes" and spike_encoding != "deterministic":
            charge.notes.append(f"the student learnt on deterministic spikes; these are {spike_encoding}")
    charge.full_scale = full_scale(frames) if scale is None else scale
    if mode == "spikes":
        charge.encoding = spike_encoding
        charge.seed = seed if spike_encoding == "bernoulli" else None
        charge.notes.append(f"rate coding on the host: {spike_encoding}"
                            + (f" (Bernoulli, seed {seed})" if spike_encoding == "bernoulli" else
                               " (error feedback: an accumulator adds x / full scale per step and sends a spike, "
                               "less 1, on reaching 1; no seed, the same spikes every run)")
                            + f"; full scale {charge.full_scale:g} = a spike every step")
        return rate_spikes(frames, spike_encoding, seed, scale=scale), None, charge
    layer = bias_layer(frames, bits=input_bits, scale=scale)
    charge.encoding = (f"non-leaky IF per input value, bias = round(x / {layer.full_scale:g} x {2 ** input_bits - 1}) "
                       f"<< {layer.bias_exp}, threshold {layer.vth} << 6, reset to 0 (Lava's fixed-point LIF)")
    charge.notes.append("bias input layer: rate 1 / ceil(1 / x) of the value x (full scale every step; reset to zero "
                        "makes the rate a staircase that never exceeds the value)" + (
                            "; the student was trained on these spikes" if trained else
                            "; a student trained on graded input computes something else under it (train with "
                            "--input-mode bias to keep its accuracy)"))
    return layer.spikes, layer, charge


def _mode_accuracy(charge, result, labels, graded_predictions=None) -> None:
    """Accuracy under the input mode (and of the same samples fed graded, where the mode changes the function)."""
    if labels is None or result is None or getattr(result, "predictions", None) is None:
        return
    n = len(result.predictions)
    y = np.asarray(labels)[:n]
    charge.accuracy = float(np.mean(np.asarray(result.predictions) == y))
    if graded_predictions is not None and charge.mode in ("bias", "spikes"):
        charge.accuracy_graded = float(np.mean(np.asarray(graded_predictions)[:n] == y))


def report_mapped(mapped, name: str, echo=print, network=None) -> None:
    """Print a placement: cores, chips and tiles, per layer (and ``network``'s host layers, on no core), and with
    a cost its per-inference figures."""
    pl = mapped.placement
    echo(f"neurokd: {name} on {mapped.chip.name}: {pl.n_cores} cores, {pl.n_chips} chip(s), "
         f"{pl.tiles_used} tiles (placer {pl.placer}, {mapped.seconds.get('place', 0):.2f} s)")
    for pop, ids in pl.layer_cores.items():
        cs = [pl.cores[i] for i in ids]
        echo(f"  {cs[0].layer:>16}: {len(ids):4d} core(s), {sum(c.neurons for c in cs):7d} neurons, "
             f"max {max(c.memory_bytes for c in cs):,} B synaptic memory, max fan-in {max(c.fan_in_axons for c in cs):,}")
    for h in getattr(network, "host_layers", ()):
        echo(f"  {h.name:>16}:    0 core(s), {h.size:7d} outputs, {h.kind} of layer {h.source} computed by the host")
    if mapped.input is not None:
        i = mapped.input
        echo(f"neurokd: input mode {i.mode}: {i.describe()}"
             + (f"; accuracy {100 * i.accuracy:.2f} %" if i.accuracy is not None else "")
             + (f" (fed graded, as trained: {100 * i.accuracy_graded:.2f} %)" if i.accuracy_graded is not None else ""))
    if mapped.cost is not None:
        c, b = mapped.cost, mapped.cost.bottleneck()
        echo(f"neurokd: {c.samples} sample(s): {c.latency_ns / 1e3:.3f} us and {c.energy_pj / 1e6:.4f} uJ per inference "
             f"(routing {c.routing_pj / 1e6:.4f} uJ); {c.inferences_per_s:,.0f} inferences/s; bottleneck core "
             f"{b['core']} ({b['layer']}), bound by {b['bound']}")
        ss = c.steady_state()
        echo(f"neurokd: streamed (inferences pipelined, every core busy every step): {ss['step_ns'] / 1e3:.3f} us and "
             f"{ss['energy_pj_per_step'] / 1e6:.4f} uJ per hardware step, {c.timesteps} steps per inference")
    fitted = mapped.chip.fitted()
    if fitted:
        echo(f"neurokd: {mapped.chip.name}'s {', '.join(f.key for f in fitted)} are FITTED to measurements "
             f"({', '.join(sorted({f.source for f in fitted}))}), not published and unvalidated beyond them")


def _place_on_chip(network, geometry, result, x: np.ndarray, chip, placer: str, chips: int | None, out_dir: Path,
                   title: str, timesteps: int | None = None, cost_samples: int | None = None, echo=print,
                   input_mode: str = "graded", labels=None, spike_encoding: str = "deterministic", seed: int = 0,
                   input_bits: int = 8):
    """After a run: place ``network`` on ``chip`` and cost it on the run's spikes; write ``out_dir`` (the
    placement files and ``mesh_load.png``). A run that kept no per-step spikes is costed on its first
    ``cost_samples`` samples, re-run in the fast engine (bit-exact with Lava) with per-step spikes.
    ``input_mode`` ``bias`` or ``spikes``: the network is re-run in the fast engine on the spikes that mode sends
    (:func:`_encode_input`), costed on them, and its accuracy under the mode reported beside the run's (``labels``).
    Returns ``(MapResult, section for energy_report.md)``."""
    from neurokd.hardware.placement import place_and_cost

    n = int(result.samples)
    note = ""
    graded_predictions = getattr(result, "predictions", None) if trained_input_mode(network) is None else None
    x_run, layer, charge = _encode_input(network, x, input_mode, chip, timesteps, spike_encoding, seed, input_bits)
    if x_run is not x:
        from neurokd.hardware.engines.fastsim import run_fast

        k = n if result.spikes else (cost_samples or n)
        x = x_run[:k]
        if layer is not None:
            import dataclasses

            layer = dataclasses.replace(layer, spikes=layer.spikes[:k], state=layer.state[:k], bias_mant=layer.bias_mant[:k])
        result = run_fast(network, x, precision=result.precision, record_steps=True, record_state=True,
                          input_bits=input_bits)
        geometry = run_geometry(network, x, result.fixed)
        if k < n:
            note = (f"Costed on the first {k} of the run's {n} samples (per-step spikes of them all are over "
                    f"MAX_STEP_RECORD), re-run in the fast engine on the spikes input mode {input_mode} sends.")
            echo(f"neurokd: {note}")
    elif not result.spikes or not getattr(result, "states", None):
        from neurokd.hardware.engines.fastsim import run_fast

        k = n if result.spikes else (cost_samples or n)
        x = x[:k]
        # the fast engine (bit-exact with Lava) again, keeping which neurons carry state from one step to the
        # next (the cost model's active rule; Lava's results keep no such trace)
        result = run_fast(network, x, precision=result.precision, timesteps=timesteps, fixed=result.fixed,
                          record_steps=True, record_state=True)
        if k < n:
            note = (f"Costed on the first {k} of the run's {n} samples: keeping every sample's per-step spikes is over "
                    f"MAX_STEP_RECORD, so these were re-run in the fast engine (bit-exact with Lava) with per-step spikes.")
            echo(f"neurokd: {note}")
    _mode_accuracy(charge, result, labels, graded_predictions)
    mapped = place_and_cost(network, chip, result=result, inputs=x, placer=placer, max_chips=chips or 1,
                            geometry=geometry, input_charge=charge, input_layer=layer)
    if note:
        mapped.cost.notes.insert(0, note)
    _retire_map(out_dir, echo, keep=MAP_FILES)
    paths = _write_map(mapped, out_dir, title, title, echo, network)
    echo(f"neurokd: wrote {', '.join(str(p) for p in paths)}")
    return mapped, mapped.cost.markdown(title)


#: What a placement writes into its folder: ``write_outputs``' files and the mesh figure.
MAP_FILES = ("mapping.csv", "placement.json", "cost_report.csv", "cost_steps.csv", "cost_report.md", "mesh_load.png")


def _write_map(mapped, out_dir: Path, title: str, name: str, echo=print, network=None) -> list[Path]:
    """The tail of ``neurokd map`` and of ``--hardware``: the placement files (``write_outputs``, titled
    ``title``), with a cost ``mesh_load.png`` (a placement without one removes an earlier figure), and the
    printed placement of ``name``. Returns the written paths."""
    from neurokd.hardware.placement import write_outputs

    for h in getattr(network, "host_layers", ()):
        note = f"layer {h.name} ({h.kind} of layer {h.source}, {h.size} outputs) is computed by the host: no core"
        if note not in mapped.placement.notes:
            mapped.placement.notes.append(note)
    paths = write_outputs(mapped, out_dir, title=title)
    figure = Path(out_dir) / "mesh_load.png"
    if mapped.cost is not None:
        from neurokd.hardware.reports.figures import mesh_figure

        paths.append(mesh_figure(mapped, figure))
    else:
        figure.unlink(missing_ok=True)          # an earlier cost's load no longer describes this placement
    report_mapped(mapped, name, echo, network)
    return paths


def _retire_map(map_dir: Path, echo=print, keep: tuple[str, ...] = ()) -> None:
    """Move an earlier placement aside, to ``map.stale/`` beside it, so that ``neurokd report`` and MODEL.md never
    show it as this run's; one printed line says so (finished work is not lost silently).

    Without ``keep`` (an export or simulation without ``--hardware``) any ``map_dir`` is moved: it placed an
    earlier run, not this one. With ``keep`` (the files the new placement rewrites) it is moved only when it
    holds other files (``sanafe_comparison.csv`` of ``neurokd map --sanafe``), which the new one would leave
    beside a placement they do not describe."""
    map_dir = Path(map_dir)
    if not map_dir.is_dir():
        return
    others = sorted(p.name for p in map_dir.iterdir() if p.name not in keep)
    if keep and not others:
        return
    stale = map_dir.with_name(map_dir.name + ".stale")
    replaced = stale.exists()
    if replaced:
        shutil.rmtree(stale)
    map_dir.rename(stale)
    why = (f"it holds {', '.join(others)}, which this placement does not rewrite" if keep else
           "it placed an earlier run, not this one (add --hardware PRESET to place this one)")
    echo(f"neurokd: moved {map_dir} to {stale}{' (replacing an older one)' if replaced else ''}: {why}")


def _reference(graph, x: np.ndarray, timesteps: int, keep: list[str], batch: int = 256):
    """The graph replayed by nir_to_torch in float64: ``(spikes {node in keep: (N, T, size)}, logits (N, C))``."""
    import torch

    from neurokd.exporters.from_nir import nir_to_torch

    module = nir_to_torch(graph, timesteps=timesteps).double()
    spikes: dict[str, list[np.ndarray]] = {}
    logits = []
    with torch.no_grad():
        for start in range(0, len(x), batch):
            xb = torch.as_tensor(x[start:start + batch], dtype=torch.float64)
            if xb.dim() == len(module.plan.shapes[module.plan.inputs[0]]) + 2:
                xb = xb.transpose(0, 1)                                        # (N, T, ...) -> (T, N, ...)
            rec = module(xb, record=True)
            for name in keep:
                v = rec[name].numpy().astype(np.uint8)                     # spikes: 0/1
                spikes.setdefault(name, []).append(v.reshape(v.shape[0], v.shape[1], -1).swapaxes(0, 1))
            out = module.plan.outputs[0]
            logits.append(rec[out].numpy().mean(axis=0).reshape(rec[out].shape[1], -1))
    return {k: np.concatenate(v) for k, v in spikes.items()}, np.concatenate(logits)


def _fmt_s(seconds: float) -> str:
    """Seconds readable from milliseconds (the fast model) to minutes (Lava)."""
    return f"{1000 * seconds:.1f} ms" if seconds < 1 else f"{seconds:.1f} s"


def _fmt_pct(v) -> str:
    return "n/a" if v is None else f"{100 * v:.2f} %"


# --------------------------------------------------------------------------------------------------
# export
# --------------------------------------------------------------------------------------------------

def export_run(run_dir: str | Path, target: str = "lava", precision: str = "float", **options) -> dict:
    """Export a trained run (module docstring); returns ``{precision: agreement dict}`` (empty for NIR).
    ``options``: :func:`export_and_place`'s."""
    return export_and_place(run_dir, target=target, precision=precision, **options)[0]


ENGINES = ("auto", "lava", "fast")


def lava_available() -> bool:
    """Whether Lava (lava-nc) can be imported here (it needs Python 3.11 and numpy 1; ``make install``)."""
    from neurokd.hardware.lava_compat import missing

    return missing("lava.magma") is None


def export_and_place(run_dir: str | Path, target: str = "lava", precision: str = "float", samples: int | None = None,
                     dt: float = 1e-4, input_bits: int = 8, chunk_samples: int = 64, progress: bool = True,
                     echo=print, engine: str = "auto", verify: int | None = None, for_peer: str | None = None,
                     hardware=None, placer: str = "pack", chips: int | None = None, input_mode: str | None = None,
                     spike_encoding: str = "deterministic"):
    """Export a trained run (module docstring); returns ``({precision: agreement dict}, placement)``: the
    agreements (empty for NIR) and the :class:`~neurokd.hardware.placement.MapResult` of ``hardware`` (None
    without it).

    ``hardware`` (``loihi1``, ``loihi2``, a chip ``.toml``; target ``lava`` only), ``placer``, ``chips``:
    place the network on that chip after the run and cost it from the last run's spikes (``RUN/map/``,
    a section of ``energy_report.md``). A ``--target lava`` export without ``hardware`` moves an earlier
    ``RUN/map/`` aside to ``RUN/map.stale/`` (one printed line): it does not describe this export's spikes,
    and ``neurokd report`` and MODEL.md show a run's ``map/`` beside its energy report.

    ``for_peer="norse"`` also writes ``RUN/model.norse.nir``, the same network in the units Norse's
    importer assumes (:func:`neurokd.exporters.to_nir.for_norse`). Raises :class:`CheckFailed` after
    writing every file when a float run's spikes are not 100 % identical to PyTorch's.

    ``input_mode`` (with ``hardware``): how the chip takes the input (:mod:`neurokd.hardware.placement.inputs`;
    default per chip, graded input refused on a chip without graded spikes); ``bias`` and ``spikes`` are costed
    on the fast engine's re-run of the split on the spikes the mode sends (``spike_encoding``, the run's seed),
    with the accuracy under the mode.
    """
    from neurokd.exporters.to_nir import student_to_nir, write_nir
    from neurokd.training import load_run

    if for_peer is not None and for_peer not in PEER_VARIANTS:
        raise NeurokdError(f"--for must be one of {', '.join(PEER_VARIANTS)}, got {for_peer!r} (snnTorch and "
                           "SpikingJelly read model.nir as it is: docs/peer_conformance.md)")
    if target not in TARGETS:
        raise NeurokdError(f"--target must be one of {', '.join(TARGETS)}, got {target!r}")
    precisions = {"float": ["float"], "fixed": ["fixed"], "both": ["float", "fixed"]}.get(precision)
    if precisions is None:
        raise NeurokdError(f"--precision must be float, fixed or both, got {precision!r}")
    if samples is not None and samples < 1:
        raise NeurokdError(f"--samples must be >= 1, got {samples}")
    if engine not in ENGINES:
        raise NeurokdError(f"--engine must be one of {', '.join(ENGINES)}, got {engine!r}")
    if engine == "auto":        # Lava where it is installed (Python 3.11, make install); else neurokd's fast model
        engine = "lava" if lava_available() else "fast"
        if engine == "fast" and target in ("lava", "netx"):
            echo("neurokd: Lava (lava-nc) is not installed here: the split runs on neurokd's fast model of it "
                 "(bit-exact with Lava's fixed point, held to recorded Lava runs by the tests), not checked against "
                 "Lava in this run; --engine lava needs Lava (make install, Python 3.11)")
    if verify is None:          # re-run a few samples in Lava when the fast model runs and Lava is here to check it
        verify = 32 if engine == "fast" and lava_available() else 0
    if verify < 0:
        raise NeurokdError(f"--verify must be >= 0, got {verify}")
    chip = _hardware_chip(hardware, placer, chips, input_mode)
    if chip is not None and target != "lava":
        raise NeurokdError(f"--hardware places the network after a run on the hardware model: use --target lava, "
                           f"not {target}")
    run = Path(run_dir)
    t_start = time.perf_counter()
    cfg, student, teacher, splits = load_run(run, with_data=target != "nir")
    graph = student_to_nir(student, dt=dt)
    nir_path = write_nir(graph, run / "model.nir")
    echo(f"neurokd: wrote {nir_path}")
    if for_peer is not None:
        name, variant = PEER_VARIANTS[for_peer]
        echo(f"neurokd: wrote {write_nir(variant()(graph), run / name)} (for {for_peer})")
    command = f"neurokd export {run} --target {target} --precision {precision} --input-bits {input_bits}" + (
        f" --hardware {hardware}" + (f" --input-mode {input_mode}" if input_mode else "") if hardware else "")
    if target == "nir":
        _write_card(run, cfg, graph, command)
        return {}, None
    if target == "onnx":
        report = export_onnx(run, student, teacher, splits, echo=echo)
        _write_card(run, cfg, graph, command)
        return {"onnx": report}, None
    if target == "netx":
        agreement = export_netx(run, graph, splits, int(cfg.timesteps), samples, input_bits, echo=echo)
        _write_card(run, cfg, graph, command, agreements={"netx": agreement})
        _raise_if_netx_differs(agreement, run)
        return {"netx": agreement}, None

    import torch

    from neurokd.hardware.network import ir
    from neurokd.hardware.network.quantize import quantize

    network = ir.from_nir(graph)
    x_test, y_test = (t.numpy() for t in splits.test.tensors)
    if samples is not None:
        x_test, y_test = x_test[:samples], y_test[:samples]
    x_test = x_test.astype(np.float64)
    steps = int(cfg.timesteps)
    n = len(x_test)
    lava_dir = run / "lava"
    fileio.write_json(lava_dir / "network.json", network.to_dict())
    x_raw, trained = x_test, trained_input_mode(network)
    if trained is not None:
        # a student trained with its input layer / host encoder: the engines run the network behind it on the
        # spikes it sends (the student's own numbers), which is what the chip's first synapses receive
        from neurokd.hardware.placement import load_chip as _load_chip

        x_test = _encode_input(network, x_raw, trained, chip or _load_chip("loihi2"), steps)[0]
        echo(f"neurokd: input mode {trained} (trained): the network runs on its input "
             f"{'layer' if trained == 'bias' else 'encoder'}'s spikes, {x_test.mean():.3f} per input and step")

    ref_spikes, ref_logits = _reference(graph, x_test, steps, network.spiking_layers)
    ref_pred = ref_logits.argmax(axis=1)
    with torch.no_grad():
        student_pred = student(torch.as_tensor(x_raw, dtype=torch.float32)).argmax(dim=1).numpy()
    acc_ref = float(np.mean(ref_pred == y_test))
    acc_student = float(np.mean(student_pred == y_test))
    neurons = sum(l.size for l in network.layers if l.neuron.spiking)
    per_step = n * steps * neurons <= MAX_STEP_RECORD
    cost_samples = _cost_samples(n, steps, neurons) if chip is not None else None
    from neurokd.resources import ensure_fits

    # per-step spike trains (uint8) of Lava and of the reference, float64 logits per step
    ensure_fits((2 * n * steps * neurons if per_step else 16 * n * neurons) + 8 * n * steps * network.layers[-1].size,
                f"recording {n} samples x {steps} steps x {neurons} neurons", "use --samples N for a subset")

    fixed_net = None
    if "fixed" in precisions:
        x_train = splits.train.tensors[0].numpy().astype(np.float64)
        sample = x_test if trained is not None else np.concatenate([x_train, x_test])   # spikes: 0/1 whatever the data
        fixed_net = quantize(network, input_sample=sample, input_bits=input_bits)
    mode = None
    if chip is not None:     # refuse a network that does not fit before it runs (weights of the last run)
        mode = _input_mode(input_mode, chip, network, x_test)
        _check_fits(network, chip, chips, run_geometry(network, x_test, fixed_net), mode)

    agreements: dict[str, dict] = {}
    failed = []
    last = last_verification = None
    for p in precisions:
        fixed = None
        if p == "fixed":
            fixed = fixed_net
            fileio.write_json(lava_dir / "quantization.json", fixed.report())
        check = verification = None
        if engine == "fast":
            from neurokd.hardware.engines.fastsim import run_split_fast

            res, verification = run_split_fast(network, x_test, precision=p, timesteps=steps, fixed=fixed,
                                               record_steps=per_step, verify_samples=verify, seed=int(cfg.seed),
                                               progress=progress, strict=False)
            check = verification.report if verification is not None else None
        else:
            from neurokd.hardware.engines.lava_backend import run_lava   # only here: --engine fast --verify 0 runs without Lava

            res = run_lava(network, x_test, precision=p, timesteps=steps, fixed=fixed, record_steps=per_step,
                           chunk_samples=chunk_samples, progress=progress)
        last, last_verification = res, verification
        spike_agree = {}
        for layer in network.spiking_layers:
            ref = ref_spikes[layer]
            if per_step:
                spike_agree[layer] = float(np.mean(res.spikes[layer] == ref))
            else:
                spike_agree[layer] = float(np.mean(res.counts[layer] == ref.sum(axis=1)))
        acc_lava = float(np.mean(res.predictions == y_test))
        agreement = {
            "precision": p, "samples": n, "spike_agreement": spike_agree,
            "prediction_agreement": float(np.mean(res.predictions == ref_pred)),
            "accuracy_torch": acc_ref, "accuracy_lava": acc_lava,
            "accuracy_student": acc_student,
            "spike_agreement_basis": "spikes per step" if per_step else "spike counts per sample",
            "reference": "model.nir replayed by nir_to_torch in float64",
            "timesteps": steps, "lava_delays": res.delays,
        }
        # timings under the engine that produced them (accuracy_lava: the fast model is Lava's arithmetic,
        # checked on the fast_vs_lava subset)
        agreement.update({f"{engine}_samples_per_second": res.samples_per_second,
                          f"{engine}_run_seconds": res.run_seconds, f"{engine}_build_seconds": res.build_seconds})
        if p == "fixed":
            agreement["accuracy_change_vs_torch"] = acc_lava - acc_ref
        agreement["engine"] = engine
        if check is not None:
            agreement["fast_vs_lava"] = check
        agreements[p] = agreement
        fileio.write_json(run / ("agreement.json" if p == "float" else "agreement_fixed.json"), agreement)
        arrays = {k: v for k, v in res.counts.items()}
        arrays.update(labels=y_test, predictions=res.predictions, logits=res.logits)
        _save_npz(lava_dir / f"spike_counts_{p}.npz", arrays)
        fileio.write_csv(lava_dir / f"predictions_{p}.csv", ["index", "label", "torch", "lava"],
                         [[i, int(y_test[i]), int(ref_pred[i]), int(res.predictions[i])] for i in range(n)])
        fileio.write_json(lava_dir / f"run_{p}.json", {
            "precision": p, "samples": n, "timesteps": steps, "mode": res.mode, "lava_steps": res.lava_steps,
            "build_seconds": res.build_seconds, "run_seconds": res.run_seconds,
            "samples_per_second": res.samples_per_second, "delays": res.delays,
            "spikes_per_sample": res.spikes_per_sample(),
        })
        worst = min(spike_agree.values()) if spike_agree else 1.0
        echo(f"neurokd: {'Lava' if engine == 'lava' else 'fast model'} {p:<5} accuracy {_fmt_pct(acc_lava)} (PyTorch {_fmt_pct(acc_ref)}, student float32 "
             f"{_fmt_pct(acc_student)}); predictions agree {_fmt_pct(agreement['prediction_agreement'])}; "
             f"identical spikes {_fmt_pct(worst)} (worst layer); {n} samples in {_fmt_s(res.run_seconds)} "
             f"({res.samples_per_second:,.1f} samples/s, build {_fmt_s(res.build_seconds)})")
        if check is not None:
            echo(f"neurokd: fast model vs Lava {p} on {check.get('samples', verify)} random samples: "
                 + ("identical" if check["identical"] else f"DIFFERENT ({check['problems'][0]})"))
            if not check["identical"]:
                failed.append(check["problems"][0])
        if p == "float" and (worst < 1.0 or agreement["prediction_agreement"] < 1.0):
            failed.append(f"Lava floating_pt differs from PyTorch: identical spikes {spike_agree}")

    # ---- ENERGY REPORT HOOK -------------------------------------------------------------------------
    # energy_report.csv/.md from the spikes of the last run (fixed if it ran, else float); with
    # --engine fast the whole split's counts, and the Lava-verified subset's beside them.
    engine_name = "Lava" if engine == "lava" else "fast model, whole split"
    sections = []
    geometry = run_geometry(network, x_test, last.fixed)      # one geometry for the placement and the report
    mapped = None
    if chip is not None:
        mapped, section = _place_on_chip(network, geometry, last, x_raw, chip, placer, chips, run / "map",
                                         title=f"{run.name} ({engine_name}, {last.precision})", timesteps=steps,
                                         cost_samples=cost_samples, echo=echo, input_mode=mode, labels=y_test,
                                         spike_encoding=spike_encoding, seed=int(cfg.seed), input_bits=input_bits)
        sections.append(section)
    else:
        _retire_map(run / "map", echo)
    written = energy_report_hook(run, network, last, x_test, title=f"{run.name} ({engine_name}, {last.precision})",
                                 verification=last_verification, sections=sections, geometry=geometry,
                                 placed=None if mapped is None else mapped.cost)
    if written:
        echo(f"neurokd: wrote {', '.join(str(p) for p in written)}")
    _write_card(run, cfg, graph, command, agreements=agreements,
                quant_report=last.fixed.report() if last.fixed is not None else None)
    echo(f"neurokd: export done in {time.perf_counter() - t_start:.1f} s; files in {run}")
    if failed:
        raise CheckFailed("; ".join(failed) + f" (files written to {run})")
    return agreements, mapped


def _write_card(run: Path, cfg, graph, command: str, agreements: dict | None = None,
                quant_report: dict | None = None) -> None:
    """Write RUN/MODEL.md from whatever this run folder holds now (missing parts say "not run"); a placement in
    ``RUN/map/`` is this run's (an export without --hardware has moved an earlier one aside)."""
    import csv
    import dataclasses
    import json

    from neurokd.hardware.network import ir
    from neurokd.hardware.reports.model_card import write_model_card

    def read_json(name: str):
        path = run / name
        return json.loads(path.read_text()) if path.is_file() else None

    agreement = {"float": read_json("agreement.json"), "fixed": read_json("agreement_fixed.json"),
                 "netx": read_json("agreement_netx.json")}
    agreement.update(agreements or {})
    if quant_report is None:
        quant_report = read_json("lava/quantization.json")
    energy_rows = None
    if (run / "energy_report.csv").is_file():
        with open(run / "energy_report.csv", newline="", encoding="utf-8") as fh:
            energy_rows = list(csv.DictReader(fh))
    try:
        placement = read_json("map/placement.json")
    except (json.JSONDecodeError, UnicodeDecodeError):
        placement = None            # the card leaves it out; `neurokd report` names the broken file
    write_model_card(run, config=dataclasses.asdict(cfg), metrics=read_json("metrics.json"),
                     network_summary=ir.from_nir(graph).to_dict(), quant_report=quant_report,
                     agreement={k: v for k, v in agreement.items() if v is not None}, energy_rows=energy_rows,
                     command=command, placement=placement if isinstance(placement, dict) else None,
                     files=[p.name for p in (run / "model.nir", run / "model.net", run / "teacher.onnx",
                                             run / "student_step.onnx") if p.exists()])


def export_onnx(run: Path, student, teacher, splits, echo=print) -> dict:
    """Teacher and one student step as ONNX, checked; writes ``RUN/onnx_check.json``."""
    import torch

    from neurokd.exporters.onnx import export_student_step, export_teacher

    sample = splits.test.tensors[0][:16].to(torch.float32)
    report = {"student_step": export_student_step(student, run / "student_step.onnx", sample)}
    if teacher is not None:
        report["teacher"] = export_teacher(teacher, run / "teacher.onnx", sample)
    fileio.write_json(run / "onnx_check.json", report)
    for name, r in report.items():
        diff = "onnxruntime not installed" if not r["onnxruntime"] else f"max |onnxruntime - PyTorch| {r['max_abs_diff']:.3g}"
        echo(f"neurokd: wrote {run / r['path']}: onnx.checker {r['checker']}; {diff}")
    return report


def export_netx(run: Path, graph, splits, steps: int, samples: int | None, input_bits: int, echo=print) -> dict:
    """``RUN/model.net`` for lava-dl netx, run by netx in Lava fixed_pt and checked against neurokd's run."""
    from neurokd.hardware.network import ir
    from neurokd.hardware.formats.netx import check_netx, quantize_netx, write_netx

    network = ir.from_nir(graph)
    x_train = splits.train.tensors[0].numpy().astype(np.float64)
    x_test, y_test = (t.numpy() for t in splits.test.tensors)
    n = min(len(x_test), samples or 100)
    x_test, y_test = x_test[:n].astype(np.float64), y_test[:n]
    sample = np.concatenate([x_train, x_test])
    trained = trained_input_mode(network)
    if trained is not None:    # the file's input is the student's input spikes (netx: binary input, no input layer)
        from neurokd.hardware.placement import load_chip

        x_test = _encode_input(network, x_test, trained, load_chip("loihi2"), steps)[0]
        sample = x_test
        echo(f"neurokd: trained with --input-mode {trained}: model.net takes the student's input spikes "
             f"(encode the values with the graph's input_offset and input_full_scale)")
    fixed = quantize_netx(network, input_sample=sample, input_bits=input_bits, timesteps=steps)
    path = write_netx(fixed, run / "model.net", timesteps=steps)
    fileio.write_json(run / "quantization_netx.json", fixed.report())
    agreement = check_netx(path, fixed, x_test, labels=y_test, timesteps=steps)
    fileio.write_json(run / "agreement_netx.json", agreement)
    worst = min(agreement["spike_agreement"].values(), default=1.0)
    echo(f"neurokd: wrote {path}; netx in Lava fixed_pt on {n} samples: identical spikes {_fmt_pct(worst)} "
         f"(worst layer), readout agreement {_fmt_pct(agreement.get('readout_agreement'))}")
    return agreement


def _raise_if_netx_differs(agreement: dict, run: Path) -> None:
    worst = min(agreement["spike_agreement"].values(), default=1.0)
    if worst < 1.0 or agreement.get("readout_agreement", 1.0) < 1.0:
        raise CheckFailed(f"the netx file differs from neurokd's Lava fixed_pt run: {agreement['spike_agreement']} "
                          f"(files in {run})")


TARGETS = ("lava", "nir", "netx", "onnx")


def _for_norse():
    from neurokd.exporters.to_nir import for_norse

    return for_norse


#: ``--for PEER``: the file written beside model.nir, and the rewrite that makes the peer's importer run it exactly
PEER_VARIANTS = {"norse": ("model.norse.nir", _for_norse)}



# --------------------------------------------------------------------------------------------------
# simulate
# --------------------------------------------------------------------------------------------------

def load_input(source, input_shape: tuple[int, ...]) -> np.ndarray:
    """A ``.npy`` path or an array, ``(T, *input_shape)`` (one sample) or ``(N, T, *input_shape)`` -> ``(N, T, *shape)``."""
    if isinstance(source, (str, Path)):
        from neurokd.fileio import load_npy

        path, x = Path(source), load_npy(source)
    else:
        path, x = "the input array", np.asarray(source)
    if x.dtype.kind not in "biuf":
        raise NeurokdError(f"{path}: holds {x.dtype} values; expected numbers")
    k = len(input_shape)
    if x.ndim == k + 1 and tuple(x.shape[1:]) == tuple(input_shape):
        x = x[None]
    if x.ndim != k + 2 or tuple(x.shape[2:]) != tuple(input_shape):
        dims = ", ".join(str(d) for d in input_shape)
        raise NeurokdError(f"{path}: shape {x.shape}; the graph's input needs (T, {dims}) or (N, T, {dims})")
    if not np.all(np.isfinite(x)):
        raise NeurokdError(f"{path}: holds NaN or inf")
    return x.astype(np.float64)


def random_spikes(network, samples: int, steps: int | None, rate: float, seed: int) -> np.ndarray:
    """``--random-input``: Bernoulli spikes of probability ``rate``, ``(samples, steps, *input_shape)``, seeded;
    ``steps`` defaults to the graph's metadata, else 100."""
    if not 0 <= rate <= 1:
        raise NeurokdError(f"--rate must be in [0, 1], got {rate}")
    if samples < 1:
        raise NeurokdError(f"--samples must be >= 1, got {samples}")
    steps = steps or network.timesteps or 100
    return (np.random.default_rng(seed).random((samples, steps, *network.input_shape)) < rate).astype(np.float64)


def simulate_graph(graph, out: str | Path, inputs=None, random_input: bool = False, steps: int | None = None,
                   samples: int = 1, rate: float = 0.1, seed: int = 0, dt: float | None = None,
                   precision: str = "float", input_bits: int = 8, progress: bool = True, echo=print,
                   hardware=None, placer: str = "pack", chips: int | None = None, input_mode: str | None = None,
                   spike_encoding: str = "deterministic") -> dict:
    """Run a NIR graph (a ``.nir`` path or a ``nir.NIRGraph``) or a lava-dl netx file (``.net``, in fixed point,
    its input as :func:`neurokd.hardware.formats.netx_reader.load_netx` reads it; host layers such as an
    ``average`` go into ``spikes.npz`` too) in Lava; write ``out/spikes.npz``, ``simulation.json`` and the
    energy report, and return ``simulation.json``'s content.

    ``hardware`` / ``placer`` / ``chips``: place the graph on that chip and cost it from the run's spikes
    (``out/map/``, a section of ``energy_report.md``, ``simulation.json``'s ``placement``); ``input_mode`` /
    ``spike_encoding``: how the chip takes the input (as :func:`export_and_place`; ``seed`` seeds Bernoulli spikes).

    ``inputs``: a ``.npy`` path or an array, ``(T, *input_shape)`` or ``(N, T, *input_shape)``;
    or ``random_input=True`` for Bernoulli spikes at ``rate`` (``samples`` x ``steps``, seeded).
    """
    import nir

    from neurokd.exporters.from_nir import read_nir
    from neurokd.hardware.network import ir

    if precision not in ("float", "fixed"):
        raise NeurokdError(f"--precision must be float or fixed, got {precision!r}")
    if (inputs is None) == (not random_input):
        raise NeurokdError("give exactly one of --input X.npy and --random-input")
    chip = _hardware_chip(hardware, placer, chips, input_mode)
    netx = None
    if isinstance(graph, nir.NIRGraph):
        path = Path("graph.nir")
    else:
        path = Path(graph)
        netx = _netx_file(path)
    if netx is not None:          # a lava-dl netx file: Loihi's integers, run as netx gives them to Lava
        from neurokd.hardware.engines.sigma_delta import is_sigma_delta

        if is_sigma_delta(netx.network):
            if chip is not None:
                netx.network.check_simulated("cost")
            if inputs is None:
                raise NeurokdError(f"{path.name} is a sigma-delta network: give --input DATA.npy (graded integers)")
            return _simulate_sigma_delta(path, inputs, steps, Path(out), echo)
        netx.network.check_simulated("simulate")
        if precision != "fixed":
            echo(f"neurokd: {path.name} is a lava-dl netx file (Loihi's integers): it runs in Lava fixed_pt")
            precision = "fixed"
        if inputs is not None:
            netx, x = _netx_input(path, inputs, steps, echo)
        elif netx.input_kind == "bias":
            raise NeurokdError(f"{path.name}'s input layer is driven by its bias: give --input BIAS.npy and --steps")
        network = netx.network
    else:
        if not isinstance(graph, nir.NIRGraph):
            with warnings.catch_warnings(record=True) as caught:
                warnings.simplefilter("always")
                graph = read_nir(path)
            for w in caught:
                echo(f"neurokd: warning: {w.message}")
        with warnings.catch_warnings(record=True) as caught:     # what the graph's producer meant that NIR cannot say
            warnings.simplefilter("always")
            network = ir.from_nir(graph, dt=dt, name=path.name)
        for w in caught:
            echo(f"neurokd: warning: {w.message}")
    if netx is not None and inputs is not None:
        pass                       # x: the file's own input layout (_netx_input)
    elif inputs is not None:
        x = load_input(inputs, network.input_shape)
        if steps is not None and steps != x.shape[1]:
            raise NeurokdError(f"--steps {steps} but the input has {x.shape[1]} steps")
    else:
        x = random_spikes(network, samples, steps, rate, seed)
    trained = trained_input_mode(network) if netx is None else None
    if trained is not None:
        from neurokd.hardware.cost.counting import input_is_spiking

        if not input_is_spiking(x):     # a student's graph with its input layer / encoder: its input is the spikes
            from neurokd.hardware.placement import load_chip

            x = _encode_input(network, x, trained, chip or load_chip("loihi2"), None)[0]
            echo(f"neurokd: {path.name} was trained with --input-mode {trained}: the values are encoded as the "
                 f"student encodes them (its offset and full scale), {x.mean():.3f} spikes per input and step")
    n, t = x.shape[:2]
    per_step = n * t * sum(l.size for l in network.layers) <= MAX_STEP_RECORD
    from neurokd.resources import ensure_fits

    ensure_fits(x.nbytes + (n * t * sum(l.size for l in network.layers) * 9 if per_step else 0),
                f"simulating {n} samples x {t} steps of {path.name}", "use fewer --samples or --steps")
    fixed = None if netx is None else netx.fixed
    cost_samples = mode = None
    if chip is not None:     # refuse a graph that does not fit before it runs, with the weights it will run
        mode = _input_mode(input_mode, chip, network, x)
        if precision == "fixed" and fixed is None:
            from neurokd.hardware.network.quantize import quantize

            fixed = quantize(network, input_sample=x, input_bits=input_bits)   # what run_lava builds itself
        cost_samples = _cost_samples(n, t, sum(l.size for l in network.layers))
        _check_fits(network, chip, chips, run_geometry(network, x, fixed), mode)
    from neurokd.hardware.engines.lava_backend import run_lava   # here: bad input is named first, with or without Lava

    res = run_lava(network, x, precision=precision, input_bits=input_bits, fixed=fixed, record_steps=per_step,
                   progress=progress)
    out = Path(out)
    arrays = {network.input_name: np.swapaxes(x, 0, 1)}
    for layer in network.layers:
        if layer.neuron.spiking and res.spikes is not None and layer.name in res.spikes:
            arrays[layer.name] = np.swapaxes(res.spikes[layer.name], 0, 1).reshape(t, n, *layer.shape)
        elif layer.name in res.readout:
            arrays[layer.name] = np.swapaxes(res.readout[layer.name], 0, 1).reshape(t, n, *layer.shape)
        else:
            arrays[layer.name] = res.counts[layer.name].reshape(n, *layer.shape)
    if netx is not None and per_step:        # host layers (average) from the recorded output, as the host reads it
        for name, values in netx.host_outputs(res).items():
            arrays[name] = np.swapaxes(values, 0, 1)
    _save_npz(out / "spikes.npz", arrays)
    summary = {
        "graph": str(path), "precision": precision, "samples": n, "timesteps": t, "dt": network.dt,
        "dt_rule": network.dt_source, "mode": res.mode, "lava_steps": res.lava_steps,
        "build_seconds": res.build_seconds, "run_seconds": res.run_seconds,
        "samples_per_second": res.samples_per_second, "delays": res.delays,
        "spikes_per_sample": res.spikes_per_sample(), "layers": network.to_dict()["layers"],
        **({"host_layers": network.to_dict()["host_layers"]} if network.host_layers else {}),
        "spikes_npz": ("one array per NIR node: (T, N, *shape); spikes of spiking nodes, per-step values of readouts"
                       if per_step else "too large for per-step trains: spiking nodes hold spike counts (N, *shape)"),
    }
    sections, mapped = [], None
    geometry = run_geometry(network, x, res.fixed)            # one geometry for the placement and the report
    if chip is not None:
        mapped, section = _place_on_chip(network, geometry, res, x, chip, placer, chips, out / "map",
                                         title=f"{path.name} (Lava {precision})", cost_samples=cost_samples, echo=echo,
                                         input_mode=mode, spike_encoding=spike_encoding, seed=seed,
                                         input_bits=input_bits)
        sections.append(section)
        summary["placement"] = {"dir": "map", **mapped.summary()}
    else:
        _retire_map(out / "map", echo)
    fileio.write_json(out / "simulation.json", summary)
    if res.fixed is not None:
        fileio.write_json(out / "quantization.json", res.fixed.report())
    # ---- ENERGY REPORT HOOK (see energy_report_hook) ----
    written = energy_report_hook(out, network, res, x, title=f"{path.name} (Lava {precision})", sections=sections,
                                 geometry=geometry, placed=None if mapped is None else mapped.cost)
    echo(f"neurokd: {path.name}: {n} sample(s) x {t} steps in Lava {precision} ({res.run_seconds:.2f} s run, "
         f"{res.build_seconds:.2f} s build); dt {network.dt} ({network.dt_source})")
    for layer, s in res.spikes_per_sample().items():
        echo(f"  {layer:>16}: {s:10.1f} spikes/sample")
    echo(f"neurokd: wrote {out / 'spikes.npz'}, {out / 'simulation.json'}"
         + (f", {', '.join(p.name for p in written)}" if written else ""))
    return summary


def _simulate_sigma_delta(path: Path, inputs, steps: int | None, out: Path, echo=print) -> dict:
    """``neurokd simulate`` of a netx file of sigma-delta layers: neurokd's model of Lava's fixed-point
    ``lava.proc.sdn`` (:mod:`neurokd.hardware.engines.sigma_delta`), in Lava time; ``spikes.npz`` holds each
    layer's graded messages ``(T, N, *shape)``. No energy report: the cost does not charge sigma-delta yet."""
    from neurokd.hardware.engines.sigma_delta import run_sigma_delta

    netx, x = _netx_input(path, inputs, steps, echo)
    network = netx.network
    res = run_sigma_delta(network, netx.fixed, x)
    n, t = x.shape[:2]
    arrays = {network.input_name: np.swapaxes(x, 0, 1)}
    for layer in network.layers:
        arrays[layer.name] = np.swapaxes(res.messages[layer.name], 0, 1).reshape(t, n, *layer.shape)
    _save_npz(out / "spikes.npz", arrays)
    summary = {
        "graph": str(path), "precision": "fixed", "engine": "sigma-delta (neurokd's model of Lava fixed_pt lava.proc.sdn)",
        "samples": n, "timesteps": t, "run_seconds": res.run_seconds, "time": res.notes[0],
        "messages_per_sample": res.messages_per_sample(), "layers": network.to_dict()["layers"],
        "spikes_npz": "one array per layer: (T, N, *shape) graded messages sent at each Lava step (0: none)",
    }
    _retire_map(out / "map", echo)
    fileio.write_json(out / "simulation.json", summary)
    echo(f"neurokd: {path.name}: {n} sample(s) x {t} steps in neurokd's sigma-delta model of Lava fixed_pt "
         f"({res.run_seconds:.2f} s)")
    for layer, m in res.messages_per_sample().items():
        echo(f"  {layer:>16}: {m:10.1f} messages/sample")
    echo(f"neurokd: wrote {out / 'spikes.npz'}, {out / 'simulation.json'}")
    return summary


# --------------------------------------------------------------------------------------------------
# map: placement on a chip's cores and the per-step cost (hardware/placement)
# --------------------------------------------------------------------------------------------------

def _run_inputs(run: Path, samples: int | None, with_labels: bool = False):
    """A run folder's test inputs and time steps (from its config, as training split them); with ``with_labels``
    also the labels."""
    from neurokd.config import load_config
    from neurokd.training import load_splits

    cfg = load_config(run / "config.toml")
    test = load_splits(cfg).test.tensors
    x = test[0].numpy().astype(np.float64)
    y = test[1].numpy() if len(test) > 1 else None
    if samples is not None:
        x = x[:samples]
        y = None if y is None else y[:samples]
    return (x, int(cfg.timesteps), y) if with_labels else (x, int(cfg.timesteps))


def map_target(target: str | Path, out: str | Path, hardware: str = "loihi1", placer: str = "pack",
               chips: int = 1, precision: str = "fixed", samples: int | None = None,
               input_path=None, random_input: bool = False, steps: int | None = None,
               rate: float = 0.1, seed: int = 0, overrides: dict[str, float] | None = None, no_cost: bool = False,
               sanafe: int = 0, echo=print, input_mode: str | None = None, spike_encoding: str = "deterministic"):
    """Place a run's student (its ``model.nir``) or a NIR file on a chip's cores, check that it fits, and cost
    every time step from the fast engine's spikes; write ``out/mapping.csv``, ``placement.json`` and (with
    spikes) ``cost_report.csv``, ``cost_steps.csv``, ``cost_report.md`` and ``mesh_load.png``. A run
    without ``model.nir`` gets it first, as ``neurokd export RUN --target nir`` writes it (one printed line).

    Spikes: a run folder's test split (``samples`` of it), a NIR file's ``input_path`` (a ``.npy`` path or
    an array) or ``random_input``; ``no_cost`` places only. ``hardware``: ``loihi1``, ``loihi2``,
    ``loihi1-sanafe`` or a chip ``.toml`` file, ``overrides`` single figures of it. ``sanafe=N`` cross-checks
    N samples with SANA-FE (optional package). ``input_mode`` / ``spike_encoding``: how the chip takes the input
    (:mod:`neurokd.hardware.placement.inputs`; the default depends on the chip and the input, and graded input is
    refused on a chip without graded spikes); a run folder's labels give the accuracy under the mode.
    Returns the :class:`~neurokd.hardware.placement.MapResult`;
    a network that does not fit raises NeurokdError naming the layer, the limit, the figure and the excess.
    """
    from neurokd.exporters.from_nir import read_nir
    from neurokd.hardware.network import ir
    from neurokd.hardware.placement import load_chip, place_and_cost
    from neurokd.hardware.placement.inputs import InputCharge

    if precision not in ("fixed", "float"):
        raise NeurokdError(f"--precision must be fixed or float, got {precision!r}")
    if samples is not None and samples < 1:
        raise NeurokdError(f"--samples must be >= 1, got {samples}")
    target = Path(target)
    if target.is_dir():
        graph_path = target / "model.nir"
        if input_path is not None or random_input:
            raise NeurokdError("a run folder is mapped on its own test split: --input and --random-input are for NIR files")
        if not graph_path.is_file():
            graph_path = _export_nir_for_map(target, echo)
    elif target.is_file():
        graph_path = target
    else:
        raise NeurokdError(f"not found: {target} (give a run folder, a .nir file or a lava-dl netx .net file)")
    netx, geometry = _netx_file(graph_path), None
    if netx is not None:
        network = netx.network
        if not no_cost:
            network.check_simulated("cost")
            if precision != "fixed":
                raise NeurokdError("a netx file holds Loihi's integers: it runs in --precision fixed only")
    else:
        network = ir.from_nir(read_nir(graph_path), name=graph_path.name)
    chip = load_chip(hardware, overrides)
    x, timesteps, labels = None, None, None
    if not no_cost:
        if target.is_dir():
            x, timesteps, labels = _run_inputs(target, samples, with_labels=True)
        elif input_path is not None:
            if random_input:
                raise NeurokdError("give at most one of --input and --random-input")
            if netx is not None:       # the file's own input layout; a bias input is built into the network
                netx, x = _netx_input(graph_path, input_path, steps, echo)
                network = netx.network
            else:
                x = load_input(input_path, network.input_shape)
            if samples is not None:
                x = x[:samples]
        elif random_input:
            if netx is not None and netx.input_kind == "bias":
                raise NeurokdError(f"{graph_path.name}'s input layer is driven by its bias: give --input BIAS.npy and "
                                   "--steps, not --random-input")
            x = random_spikes(network, samples or 1, steps, rate, seed)
    mode = _input_mode(input_mode, chip, network, x)
    result, inputs, layer, charge = None, None, None, InputCharge(mode, chip.name)
    if x is not None:
        from neurokd.hardware.engines.fastsim import run_fast

        held = x.ndim == len(network.input_shape) + 1
        fixed = None if netx is None else netx.fixed
        inputs, layer, charge = _encode_input(network, x, mode, chip, timesteps if held else None, spike_encoding, seed)
        if inputs is not x:
            result = run_fast(network, inputs, precision=precision, record_steps=True, record_state=True, fixed=fixed)
            graded = run_fast(network, x, precision=precision, timesteps=timesteps if held else None, fixed=fixed) \
                if labels is not None and trained_input_mode(network) is None else None
            _mode_accuracy(charge, result, labels, None if graded is None else graded.predictions)
        else:
            result = run_fast(network, x, precision=precision, timesteps=timesteps if held else None,
                              record_steps=True, record_state=True, fixed=fixed)
            _mode_accuracy(charge, result, labels)
    elif placer == "balance":
        raise NeurokdError("--placer balance needs spikes: map a run folder, or give --input / --random-input")
    if netx is not None:           # netx's integers define the synapses, with or without a run
        from neurokd.hardware.cost.counting import geometry_from_ir, input_is_spiking

        spiking = input_is_spiking(inputs) if inputs is not None else netx.input_kind != "graded"
        geometry = geometry_from_ir(network, input_spiking=spiking, fixed=netx.fixed)
    mapped = place_and_cost(network, chip, result=result, inputs=inputs, placer=placer, max_chips=chips,
                            input_charge=charge, input_layer=layer, geometry=geometry)
    paths = _write_map(mapped, Path(out), graph_path.parent.name if target.is_dir() else graph_path.name,
                       graph_path.name, echo, network)
    if sanafe:
        paths.append(_sanafe_check(network, x, timesteps, sanafe, seed, Path(out), echo))
    elif (Path(out) / "sanafe_comparison.csv").is_file():   # an earlier placement's: not this one's
        (Path(out) / "sanafe_comparison.csv").unlink()
        echo(f"neurokd: removed {Path(out) / 'sanafe_comparison.csv'}, an earlier placement's SANA-FE comparison")
    echo(f"neurokd: wrote {', '.join(str(p) for p in paths)}")
    return mapped


def _netx_file(path: Path):
    """A lava-dl netx file read into neurokd's form (:func:`neurokd.hardware.formats.netx_reader.read_netx`), or
    None for any other file (a NIR graph)."""
    from neurokd.hardware.formats.netx_reader import is_netx, read_netx

    return read_netx(path) if is_netx(path) else None


def _netx_input(path: Path, inputs, steps: int | None, echo=print):
    """``--input`` for a netx file (:func:`neurokd.hardware.formats.netx_reader.load_netx`): the file's input layer
    says what the array is (``bias``: the input layer's bias held ``steps`` steps; else Lava-layout data).
    ``(NetxNetwork, x)``."""
    from neurokd.hardware.formats.netx_reader import load_netx

    netx, x = load_netx(path, inputs, steps)
    what = {"bias": f"the bias of input layer {netx.network.layers[0].name}, held {x.shape[1]} steps",
            "spikes": "binary spikes", "graded": "graded values"}[netx.input_kind]
    echo(f"neurokd: {path.name}: input {Path(inputs).name if isinstance(inputs, (str, Path)) else 'array'} is "
         f"{what} ({x.shape[0]} sample(s) x {x.shape[1]} steps)")
    return netx, x


def _export_nir_for_map(run: Path, echo) -> Path:
    """A trained run without ``model.nir``: write it (and ``MODEL.md``) as ``neurokd export RUN --target nir``
    does, saying so in one line; refused in one line for a folder that is no run, or whose student comes from
    user code (rebuilding it needs ``--model``, which ``map`` does not take)."""
    from neurokd.config import load_config
    from neurokd.models.user import is_user_model

    if not (run / "config.toml").is_file():
        raise NeurokdError(f"{run} has no model.nir and is not a neurokd run folder (no config.toml): give a run "
                           "folder or a .nir file")
    spec = load_config(run / "config.toml").model
    if is_user_model(spec):
        raise NeurokdError(f"{run} has no model.nir and its student comes from user code ({spec}): run "
                           f"`neurokd export {run} --target nir --model {spec}` first")
    export_and_place(run, target="nir", echo=lambda *_: None)
    echo(f"neurokd: {run} had no model.nir: exported it first, as `neurokd export {run} --target nir` does "
         f"({run / 'model.nir'}, MODEL.md)")
    return run / "model.nir"


def _sanafe_check(network, x, timesteps, samples: int, seed: int, out: Path, echo) -> Path:
    """``--sanafe N``: the first N samples as binary spikes through neurokd and SANA-FE -> sanafe_comparison.csv."""
    from neurokd import fileio
    from neurokd.hardware.engines.fastsim import run_fast
    from neurokd.hardware.placement.sanafe import COMPARISON_COLUMNS, cross_check

    if x is None:
        raise NeurokdError("--sanafe needs spikes to run: map a run folder, or give --input / --random-input")
    x = np.asarray(x[:samples], dtype=np.float64)
    if x.ndim == len(network.input_shape) + 1:
        x = np.repeat(x[:, None], timesteps or network.timesteps or 1, axis=1)
    if not np.all((x == 0) | (x == 1)):       # graded input: Bernoulli spikes of probability x / max|x|
        from neurokd.hardware.engines.encoding import rate_spikes

        x = rate_spikes(np.abs(x), "bernoulli", seed)     # --input-mode spikes --spike-encoding bernoulli, same seed
        echo("neurokd: SANA-FE's inputs are spikes: the graded input is sent as Bernoulli spikes (p = |x| / max|x|) "
             "to both neurokd and SANA-FE, as --input-mode spikes --spike-encoding bernoulli sends it")
    res = run_fast(network, x, precision="fixed", record_steps=True, record_state=True)
    run_, same, cited, rows = cross_check(network, res, x, samples=samples)
    path = out / "sanafe_comparison.csv"
    fileio.write_csv(path, COMPARISON_COLUMNS, rows)
    by = {r["metric"]: r for r in rows}
    echo(f"neurokd: SANA-FE ({run_.samples} sample(s), {run_.seconds:.1f} s): energy {by['energy_uj']['sanafe']:.4f} uJ, "
         f"neurokd {by['energy_uj']['neurokd_same_figures']:.4f} uJ with the same figures "
         f"({by['energy_uj']['diff_same_pct']:+.1f} %), {by['energy_uj']['neurokd_cited_defaults']:.4f} uJ with its cited "
         f"defaults; latency {by['latency_us']['sanafe']:.2f} us vs {by['latency_us']['neurokd_same_figures']:.2f} us "
         f"({by['latency_us']['diff_same_pct']:+.1f} %)")
    echo(f"  synaptic events per inference: SANA-FE {by['synaptic_events']['sanafe']:,.0f} "
         f"({by['synaptic_events_outside_window']['sanafe']:,.0f} outside neurokd's {x.shape[1]}-step window), neurokd "
         f"{by['synaptic_events']['neurokd_same_figures']:,.0f}, neurokd's cost model on SANA-FE's spikes "
         f"{by['synaptic_events']['neurokd_on_sanafe_spikes']:,.0f}")
    for key in (k for k in by if k.startswith("spikes ") and not k.endswith("outside window")):
        echo(f"  {key} per inference: SANA-FE {by[key]['sanafe']:.1f}, neurokd {by[key]['neurokd_same_figures']:.1f} "
             f"({100 + by[key]['diff_cited_pct']:.3f} % of (sample, step, neuron) agree)")
    return path
