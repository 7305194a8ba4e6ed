"""A run's model card: ``MODEL.md`` rendered from the run's own artefacts, written atomically.

``write_model_card(out_dir, config=..., metrics=..., network_summary=..., quant_report=...,
agreement=..., energy_rows=..., command=...)`` writes ``out_dir/MODEL.md``; :func:`model_card`
returns the same text. Every number comes from what is passed (``config.toml`` as a dict,
``metrics.json``, :meth:`Network.to_dict`, :meth:`FixedNetwork.report`, ``agreement*.json``, the
rows of ``energy_report.csv``), none is typed in; a missing piece is said to be missing ("not
run", "not measured") instead of breaking the card. Sections: summary, architecture (layers,
shapes, neuron parameters), quantisation (per-layer weight exponent, bits, clipped fraction),
accuracy and agreement (float / fixed / netx), activity, SynOps and energy per inference per
energy model, the placement on a chip when the run has one (``placement``: ``map/placement.json``'s
content or ``MapResult.summary()``: chip, cores, chips, latency per inference, energy with routing, the
bottleneck core and what bounds it), the command that reproduces the run, settings.

Neuron parameters are shown in the student's terms where they exist: a LIF with ``du = 1`` is
``v = beta v + I`` with ``beta = 1 - dv`` and threshold ``vth`` (neurokd's neuron contract); any
other neuron shows Lava's ``du``, ``dv``, ``vth``.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Iterable, Mapping

from neurokd import fileio

NOT_RUN = "not run"
MISSING = "not available"


# --------------------------------------------------------------------------------------------------
# Formatting
# --------------------------------------------------------------------------------------------------

def _num(v: Any) -> float | None:
    """A number from JSON/CSV (``""``, None, non-numbers -> None)."""
    if v is None or isinstance(v, bool):
        return None
    try:
        x = float(v)
    except (TypeError, ValueError):
        return None
    return None if math.isnan(x) else x


def _fmt(v: Any, digits: int = 4) -> str:
    x = _num(v)
    if x is None:
        return MISSING if v is None or v == "" else str(v)
    if math.isinf(x):
        return "inf"
    if x == int(x) and abs(x) < 1e15:
        return f"{int(x):,}"
    if abs(x) >= 1000:
        return f"{x:,.0f}"
    return f"{x:.{digits}g}"


def _pct(v: Any) -> str:
    x = _num(v)
    return NOT_RUN if x is None else f"{100 * x:.2f} %"


def _energy(pj: Any) -> str:
    x = _num(pj)
    if x is None:
        return MISSING
    for unit, scale in (("mJ", 1e9), ("uJ", 1e6), ("nJ", 1e3)):
        if abs(x) >= scale:
            return f"{x / scale:.3g} {unit}"
    return f"{x:.3g} pJ"


def _numeric(cell: str) -> bool:
    text = str(cell).replace(",", "").replace("%", "").split(" ")[0]
    return _num(text) is not None or cell in ("inf", NOT_RUN, MISSING)


def _table(head: list[str], rows: Iterable[list[str]]) -> list[str]:
    """A Markdown table; columns whose cells are all numbers (or empty) are right-aligned."""
    rows = [[str(c) for c in r] for r in rows]
    right = [bool(rows) and all(_numeric(r[i]) or r[i] == "" for r in rows) and any(r[i] for r in rows)
             for i in range(len(head))]
    out = ["| " + " | ".join(head) + " |", "|" + "|".join("---:" if r else "---" for r in right) + "|"]
    out += ["| " + " | ".join(c.replace("|", "\\|") for c in r) + " |" for r in rows]
    return out


def _get(d: Mapping | None, *keys, default=None):
    for k in keys:
        if not isinstance(d, Mapping) or k not in d:
            return default
        d = d[k]
    return d


# --------------------------------------------------------------------------------------------------
# Sections
# --------------------------------------------------------------------------------------------------

def _agreements(agreement: Any) -> dict[str, dict]:
    """One ``agreement*.json`` dict, or ``{label: dict}`` -> ``{label: dict}`` (label: precision/target)."""
    if not agreement:
        return {}
    if isinstance(agreement, Mapping) and ("precision" in agreement or "spike_agreement" in agreement):
        return {str(agreement.get("target") or agreement.get("precision") or "float"): dict(agreement)}
    if isinstance(agreement, Mapping):
        return {str(k): dict(v) for k, v in agreement.items() if isinstance(v, Mapping)}
    return {}


def _neuron_params(n: Mapping) -> str:
    kind = n.get("kind")
    du, dv, vth = _num(n.get("du")), _num(n.get("dv")), _num(n.get("vth"))
    if kind == "none":
        return "readout: summed input, mean over time"
    if kind in ("lif", "if") and du == 1.0 and dv is not None:
        return f"beta {_fmt(1.0 - dv)}, threshold {_fmt(vth)}"
    text = f"du {_fmt(du)}, dv {_fmt(dv)}"
    return text + (f", vth {_fmt(vth)}" if vth is not None else " (non-spiking)")


def _architecture(summary: Any) -> list[str]:
    lines = ["## Architecture", ""]
    if summary is not None and hasattr(summary, "to_dict"):
        summary = summary.to_dict()
    if not isinstance(summary, Mapping) or not summary.get("layers"):
        return lines + [f"Network summary {MISSING} (export the run to build it).", ""]
    inp = summary.get("input", {})
    lines.append(f"Input `{inp.get('name', 'input')}`, shape {tuple(inp.get('shape', ()))}"
                 + (f"; {summary['timesteps']} time steps" if summary.get("timesteps") else "")
                 + (f"; dt {summary['dt']} s ({summary.get('dt_source', '')})" if summary.get("dt") else "") + ".")
    lines.append("")
    rows = []
    for layer in summary["layers"]:
        n = layer.get("neuron", {})
        syns = "; ".join(
            f"{s.get('kind')} `{s.get('name')}` from `{s.get('source')}`"
            + (f" ({' + '.join(s['stages'])})" if len(s.get("stages") or []) > 1 else "")
            + (" recurrent" if s.get("recurrent") else "")
            + (f" waiting {s['delay'] - 1} step(s) in a DelayDense" if (s.get("delay") or 1) > 1 else "")
            for s in layer.get("synapses", [])
        )
        rows.append([f"`{layer.get('name')}`", n.get("kind", ""), str(tuple(layer.get("shape", ()))), syns or "",
                     _neuron_params(n), _fmt(layer.get("delay"))])
    lines += _table(["layer", "neuron", "shape", "connections", "neuron parameters", "Lava delay"], rows)
    return lines + [""]


def _quantisation(report: Any) -> list[str]:
    lines = ["## Quantisation (Loihi fixed point)", ""]
    if not isinstance(report, Mapping) or not report.get("layers"):
        return lines + [f"Fixed-point quantisation: {NOT_RUN}.", ""]
    inp = report.get("input", {})
    if inp:
        enc = ("graded" if inp.get("graded") else "binary spikes") + (", signed" if inp.get("signed") else "")
        lines.append(f"Input: {enc}, {inp.get('bits')} bits, scale {_fmt(inp.get('scale'))} (x_int = round(x * scale)).")
        lines.append("")
    rows = []
    for name, layer in report["layers"].items():
        neuron = [_fmt(_get(layer, k, "int")) if _get(layer, k) else "" for k in ("du", "dv", "vth")]
        bias_exp = _get(layer, "bias", "bias_exp")
        for sname, s in (layer.get("synapses") or {"": {}}).items():
            used = _num(s.get("mantissa_range_used"))
            rows.append([
                f"`{name}`", f"`{sname}`" if sname else "", _fmt(s.get("weight_exp")), "8",
                s.get("sign_mode", ""), MISSING if used is None else f"{100 * used:.0f} %",
                _pct(s.get("fraction_clipped")), _pct(s.get("fraction_rounded_to_zero")),
                _fmt(s.get("max_abs_error"), 3), *neuron, _fmt(bias_exp) if bias_exp is not None else "",
                _fmt(layer.get("scale")), str(layer.get("limited_by", "")),
            ])
    lines += _table(["layer", "connection", "weight_exp", "weight bits", "sign", "mantissa range used", "clipped",
                     "rounded to 0", "max weight error", "du", "dv", "vth", "bias_exp", "scale", "scale limited by"],
                    rows)
    notes = report.get("notes") or []
    if notes:
        lines += [""] + [f"- {n}" for n in notes]
    return lines + [""]


def _accuracy(metrics: Mapping | None, agreements: dict[str, dict]) -> list[str]:
    lines = ["## Accuracy and agreement", ""]
    rows = [["PyTorch (student, float32)", _pct(_get(metrics, "test_accuracy")), "", "", ""]]
    if _get(metrics, "teacher_test_accuracy") is not None:
        rows.append(["ANN teacher", _pct(_get(metrics, "teacher_test_accuracy")), "", "", ""])
    labels = {"float": "Lava floating_pt", "fixed": "Lava fixed_pt", "netx": "netx file (Lava fixed_pt)"}
    for key in list(labels) + [k for k in agreements if k not in labels]:
        a = agreements.get(key)
        if a is None:
            rows.append([labels.get(key, key), NOT_RUN, "", "", ""])
            continue
        spikes = a.get("spike_agreement")
        worst = min(spikes.values()) if isinstance(spikes, Mapping) and spikes else _num(spikes)
        rows.append([labels.get(key, key), _pct(a.get("accuracy_lava", a.get("accuracy"))), _fmt(a.get("samples")),
                     _pct(a.get("prediction_agreement")), _pct(worst)])
    lines += _table(["run", "test accuracy", "samples", "predictions agree", "identical spikes (worst layer)"], rows)
    ref = next((a.get("reference") for a in agreements.values() if a.get("reference")), None)
    if ref:
        lines += ["", f"Agreement reference: {ref}."]
    return lines + [""]


def _activity(metrics: Mapping | None) -> list[str]:
    lines = ["## Activity", ""]
    act = _get(metrics, "activity")
    if not isinstance(act, Mapping):
        return lines + ["Spiking activity: not measured.", ""]
    lines.append(f"Spikes per neuron per time step, all spiking layers: {_fmt(act.get('total'))}; "
                 f"spikes per sample: {_fmt(_get(metrics, 'spikes_per_sample'))}.")
    per = act.get("per_layer") or {}
    if per:
        lines.append("")
        lines += _table(["layer", "spikes / neuron / step"], [[f"`{k}`", _fmt(v)] for k, v in per.items()])
    return lines + [""]


def _energy_section(rows: Any) -> list[str]:
    lines = ["## SynOps and energy per inference", ""]
    rows = [dict(r) for r in rows] if rows else []
    if not rows:
        return lines + [f"Energy report: {NOT_RUN} (`neurokd export` with a Lava target writes energy_report.csv).", ""]
    models: dict[str, list[dict]] = {}
    for r in rows:
        models.setdefault(str(r.get("energy_model", "")), []).append(r)
    totals = []
    for model, rs in models.items():
        total = next((r for r in rs if r.get("layer") == "total"), None)
        teacher = next((r for r in rs if r.get("layer") == "teacher"), None)
        s_pj = _num(_get(total, "energy_pj_per_sample"))
        t_pj = _num(_get(teacher, "energy_pj_per_sample"))
        ratio = f"{t_pj / s_pj:.2f}" if s_pj and t_pj is not None else MISSING
        label = (f"**placed on {model[len('placed-'):]}** (the run's energy there: map/)" if model.startswith("placed-")
                 else f"`{model}`")
        totals.append([label, _fmt(_get(total, "synops_per_sample")), _fmt(_get(total, "neuron_updates_per_sample")),
                       _fmt(_get(total, "spikes_per_sample")), _energy(s_pj), _energy(t_pj), ratio])
    lines += _table(["energy model", "SynOps", "neuron updates", "spikes", "student energy", "ANN teacher energy",
                     "teacher / student"], totals)
    first = next((rs for m, rs in models.items() if not m.startswith("placed-")), next(iter(models.values())))
    layers = [r for r in first if r.get("layer") not in ("total", "teacher")]
    if layers:
        head = ["layer", "kind", "neurons", "synapses", "spikes", "SynOps"] + [f"{m} energy" for m in models]
        per = []
        for r in layers:
            cells = [f"`{r.get('layer')}`", str(r.get("kind", "")), _fmt(r.get("neurons")), _fmt(r.get("synapses")),
                     _fmt(r.get("spikes_per_sample")), _fmt(r.get("synops_per_sample"))]
            for rs in models.values():
                match = next((x for x in rs if x.get("layer") == r.get("layer")), None)
                cells.append(_energy(_get(match, "energy_pj_per_sample")))
            per.append(cells)
        lines += ["", "Per layer (per inference):", ""] + _table(head, per)
    samples = _num(rows[0].get("samples"))
    steps = _num(rows[0].get("timesteps"))
    if samples is not None or steps is not None:
        lines += ["", f"Averaged over {_fmt(samples)} samples of {_fmt(steps)} time steps; sources and caveats "
                      "in energy_report.md."]
    return lines + [""]


def _placement_figures(placement: Mapping) -> dict:
    """``placement.json``'s content (its figures under ``cost``) or ``MapResult.summary()`` (flat) -> one flat dict."""
    return {**placement, **(placement.get("cost") or {})}


def _placement_line(placement: Mapping) -> str:
    p = _placement_figures(placement)
    text = f"{p.get('chip', MISSING)}: {_fmt(p.get('cores'))} cores, {_fmt(p.get('chips'))} chip(s)"
    lat = _num(p.get("latency_us_per_inference"))
    return text + (f", {lat:.4g} us per inference" if lat is not None else "")


def _placement_section(placement: Mapping | None) -> list[str]:
    if not isinstance(placement, Mapping) or not placement:
        return []
    p = _placement_figures(placement)
    chip = str(p.get("chip", MISSING))
    lines = [f"## Placement on {chip}", ""]
    rows = [["chip", f"{chip}" + (f" ({p['chip_title']})" if p.get("chip_title") else "")],
            ["placer", str(p.get("placer", MISSING))], ["cores", _fmt(p.get("cores"))],
            ["chips", _fmt(p.get("chips"))], ["tiles", _fmt(p.get("tiles"))]]
    inp = p.get("input")
    if isinstance(inp, Mapping) and inp.get("mode"):
        rows.append(["input mode", _input_text(inp)])
    b = p.get("bottleneck")
    if _num(p.get("latency_us_per_inference")) is None:
        lines += _table(["", ""], rows)
        return lines + ["", "Placed only, not costed (no spikes were run on the placement).", ""]
    energy_uj, routing_uj = _num(p.get("energy_uj_per_inference")), _num(p.get("routing_uj_per_inference"))
    rows += [["latency per inference", f"{_num(p['latency_us_per_inference']):.4g} us"],
             ["inferences per second on the chip", _fmt(p.get("inferences_per_s"))],
             ["energy per inference, routing included", _energy(None if energy_uj is None else energy_uj * 1e6)
              + ("" if routing_uj is None else f" (routing {_energy(routing_uj * 1e6)})")]]
    if isinstance(b, Mapping):
        share = _num(_get(b, "shares", b.get("bound")))
        rows.append(["bottleneck core", f"core {b.get('core')} (layer `{b.get('layer')}`, neurons {b.get('neurons')}), "
                                        f"bound by {b.get('bound')}"
                                        + (f" ({100 * share:.0f} % of its time)" if share is not None else "")])
    lines += _table(["", ""], rows)
    return lines + ["", "Per core and per step: `map/cost_report.csv`, `map/cost_steps.csv`; the load on the mesh: "
                        "`map/mesh_load.png`; sources and caveats: the placement section of energy_report.md.", ""]


def _input_text(inp: Mapping) -> str:
    """The placement's input mode, what it charged per inference and its accuracy, in one cell."""
    text = f"`{inp['mode']}`" + (f": {inp['description']}" if inp.get("description") else "")
    c = inp.get("charged") if isinstance(inp.get("charged"), Mapping) else {}
    parts = []
    if _num(c.get("input_layer_cores")) is not None:
        parts.append(f"input layer {_fmt(c['input_layer_cores'])} core(s), {_num(c.get('input_layer_updates')) or 0:,.0f} "
                     f"updates, {_num(c.get('input_layer_spikes')) or 0:,.0f} spikes")
    if _num(c.get("host_messages")):
        parts.append(f"{_num(c['host_messages']):,.0f} host messages")
    if _num(c.get("first_synapse_macs")):
        parts.append(f"{_num(c['first_synapse_macs']):,.0f} MACs on graded input")
    if inp.get("host_layers"):
        parts.append("computed on the host, not charged: " + ", ".join(str(h) for h in inp["host_layers"]))
    if parts:
        text += "; per inference " + "; ".join(parts)
    acc = _num(inp.get("accuracy"))
    if acc is not None:
        text += f"; accuracy under it {100 * acc:.2f} %"
        graded = _num(inp.get("accuracy_graded"))
        if graded is not None:
            text += f" (fed graded, as trained: {100 * graded:.2f} %)"
    return text


def _settings(config: Mapping | None) -> list[str]:
    lines = ["## Settings", ""]
    if not isinstance(config, Mapping) or not config:
        return lines + [f"Configuration {MISSING}.", ""]
    flat: list[list[str]] = []

    def walk(prefix: str, d: Mapping) -> None:
        for k, v in d.items():
            key = f"{prefix}{k}"
            if isinstance(v, Mapping) and v:
                walk(key + ".", v)
            else:
                flat.append([f"`{key}`", "" if v is None else str(v)])

    walk("", config)
    return lines + _table(["setting", "value"], flat) + [""]


def model_card(*, config: Mapping | None = None, metrics: Mapping | None = None, network_summary: Any = None,
               quant_report: Mapping | None = None, agreement: Any = None, energy_rows: Iterable[Mapping] | None = None,
               command: str | None = None, title: str | None = None, files: Iterable[str] | None = None,
               placement: Mapping | None = None) -> str:
    """The text of ``MODEL.md`` (module docstring); every argument may be None."""
    config = config or {}
    agreements = _agreements(agreement)
    energy_list = [dict(r) for r in energy_rows] if energy_rows else []
    name = title or " / ".join(str(config[k]) for k in ("dataset", "model", "method") if config.get(k)) or "neurokd student"
    lines = [f"# Model card: {name}", "",
             "Written by neurokd from the run's own files; every number below comes from the run.", ""]
    summary = [
        ["dataset", str(config.get("dataset", _get(metrics, "dataset") or MISSING))],
        ["model", str(config.get("model", MISSING))],
        ["method", str(config.get("method", _get(metrics, "method") or MISSING))],
        ["time steps", _fmt(config.get("timesteps", _get(metrics, "timesteps")))],
        ["seed", _fmt(config.get("seed", _get(metrics, "seed")))],
        ["test accuracy (PyTorch)", _pct(_get(metrics, "test_accuracy"))],
        ["test accuracy (Lava fixed_pt)", _pct(_get(agreements, "fixed", "accuracy_lava"))],
        ["activity (spikes / neuron / step)", _fmt(_get(metrics, "activity", "total"))],
    ]
    for r in energy_list:
        if r.get("layer") == "total":
            m = str(r.get("energy_model"))
            what = (f"on {m[len('placed-'):]}, placed: cores, routing and host messages included" if m.startswith("placed-")
                    else f"{m}, counted events without a placement" if m.startswith("loihi") else m)
            summary.append([f"energy per inference ({what})", _energy(r.get("energy_pj_per_sample"))])
    if isinstance(placement, Mapping) and placement:
        summary.append(["placement", _placement_line(placement)])
    lines += _table(["", ""], summary) + [""]
    lines += _architecture(network_summary)
    lines += _quantisation(quant_report)
    lines += _accuracy(metrics, agreements)
    lines += _activity(metrics)
    lines += _energy_section(energy_list)
    lines += _placement_section(placement)
    lines += ["## Reproduce", ""]
    lines += (["```", command.strip(), "```", ""] if command else ["Command not recorded.", ""])
    if files:
        lines += ["## Files", ""] + [f"- `{f}`" for f in files] + [""]
    lines += _settings(config)
    return "\n".join(lines).rstrip() + "\n"


def write_model_card(out_dir: str | Path, *, config: Mapping | None = None, metrics: Mapping | None = None,
                     network_summary: Any = None, quant_report: Mapping | None = None, agreement: Any = None,
                     energy_rows: Iterable[Mapping] | None = None, command: str | None = None,
                     title: str | None = None, files: Iterable[str] | None = None,
                     placement: Mapping | None = None) -> Path:
    """Write ``out_dir/MODEL.md`` atomically (:func:`model_card`); returns its path."""
    path = Path(out_dir) / "MODEL.md"
    fileio.write_text(path, model_card(config=config, metrics=metrics, network_summary=network_summary,
                                       quant_report=quant_report, agreement=agreement, energy_rows=energy_rows,
                                       command=command, title=title, files=files, placement=placement))
    return path


__all__ = ["model_card", "write_model_card"]
