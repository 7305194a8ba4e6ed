"""neurokd's placement against what Intel's compilers did with public networks (the silicon table).

For every anchor of ``../shared/research/SILICON.md`` with a printed core allocation, prints the cores per
layer, the vendor's and neurokd's (``place`` with the ``pack`` placer on the chip Intel compiled for), their
ratio and whether the goal is met: the network's total within 0.8-1.25 of the vendor's, every layer within
one core or 25 %. Writes the table as markdown into ``--out`` (default ``docs/silicon.md``, between its
``<!-- silicon-table -->`` and ``<!-- /silicon-table -->`` lines; a file without them gets the table alone).

    .venv/bin/python benchmarks/silicon.py [--out docs/silicon.md] [--no-cifar]

The anchors:

* PilotNet LIF on Loihi 2 (74 cores): lava-dl's ``gts/pilotnet_lif/network.net``, read with ``read_netx``.
* N-TIDIGITS on Loihi 1 (6 cores): lava-dl's ``gts/ntidigits/ntidigits.net`` up to its ``average`` layer
  (``num_layers=5``: NxSDK computes the average off chip, 0 cores), with the input layer as NxSDK places it:
  64 input compartments on chip that the injected spikes enter (built here as an on-chip input layer fed
  through an identity synapse, which the placement takes as input without synapses).
* N-MNIST on Loihi 1 (17 cores): trained weights not public, so the topology of ``NMNISTAuto.ipynb``
  (input 34 x 34 x 2 on chip -> dense 512 -> dense 10) with an assumed density: every weight non-zero
  (SLAYER's dense layers train no zeros: N-TIDIGITS' are 96-97 % non-zero) at 8 bits.
* NxTF's CIFAR-10 pseudo-MobileNet on Loihi 1 (157 cores, total only): rebuilt from
  ``../shared/silicon/nxtf_cifar_pseudo_mobilenet.h5`` (h5py); NxTF's subtractive reset takes two
  compartments per neuron, so the chip's 1,024 compartments hold 512 neurons (``core.neurons`` 512 for this
  network); the input layer takes the image as bias, the average pool is a depthwise convolution of ones.
  NxTF's total is exactly the compartment bound; loihi1 cuts the conv layers into NxTF's boxes
  (``core.conv_cut_tiles``), so no output-axon table binds.

Measured, not asserted; the PilotNet figures are also checked by ``tests/test_silicon.py``.
"""

from __future__ import annotations

import argparse
import math
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from neurokd import fileio
from neurokd.hardware.formats.netx_reader import NetxBuilder, gts_folder, read_netx
from neurokd.hardware.placement import load_chip, place_and_cost

CIFAR_H5 = Path("/work/shared/silicon/nxtf_cifar_pseudo_mobilenet.h5")
LIF = {"type": "CUBA", "iDecay": 1024, "vDecay": 128, "vThMant": 80}    # neuron parameters do not enter placement


@dataclass
class Anchor:
    name: str
    chip: str
    source: str
    rows: list[tuple[str, str | None, int | None]]     # (vendor's layer, neurokd layer or None, vendor's cores)
    vendor_total: int
    network: object = None
    overrides: dict = field(default_factory=dict)
    note: str = ""
    input_mode: str | None = None        # None: the network's default (a bias-driven input layer: bias)


def pilotnet() -> Anchor:
    net = read_netx(gts_folder() / "pilotnet_lif" / "network.net").network
    rows = [("input 3x66x200 (bias-driven)", "0", 13), ("conv 24x32x99", "1", 25), ("conv 36x15x49", "2", 13),
            ("conv 48x7x24", "3", 3), ("conv 64x4x22", "4", 3), ("conv 64x2x20", "5", 2), ("dense 100", "7", 12),
            ("dense 50", "8", 1), ("dense 10", "9", 1), ("dense 1", "10", 1)]
    return Anchor("PilotNet LIF", "loihi2", "SILICON.md 1: lava-dl pilotnet_snn/benchmark.ipynb, compiler's per-core table",
                  rows, 74, net, note="lava-dl gts/pilotnet_lif/network.net as read by read_netx")


def ntidigits() -> Anchor:
    path = gts_folder() / "ntidigits" / "ntidigits.net"
    rows = [("input 64", "input", 1), ("dense 256 (delays)", "2", 2), ("dense 256 (delays)", "3", 2),
            ("dense 242", "4", 1), ("average 11", "5", 0)]
    return Anchor("N-TIDIGITS", "loihi1", "SILICON.md 2: ntidigitsAuto.ipynb cell 8 (NxSDK automatic partition)", rows, 6,
                  read_netx(path).network, input_mode="spikes",
                  note="gts/ntidigits/ntidigits.net read whole, as `neurokd map` reads it (the 'average' layer on the "
                       "host, 0 cores); input mode spikes, which loihi1 takes through on-chip input compartments "
                       "(input.spike_input_layer)")


def nmnist() -> Anchor:
    rng = np.random.default_rng(0)
    b = NetxBuilder((2, 34, 34), 0, "nmnist")
    for name, n_out, n_in in (("dense512", 512, 2312), ("dense10", 10, 512)):
        w = rng.integers(1, 128, size=(n_out, n_in)) * rng.choice([-2, 2], size=(n_out, n_in))   # all non-zero
        b.dense(name, w, LIF)
    rows = [("input 34x34x2", "input", 7), ("dense 512", "dense512", 9), ("dense 10", "dense10", 1)]
    return Anchor("N-MNIST", "loihi1", "SILICON.md 2: NMNISTAuto.ipynb cell 10", rows, 17, b.build("nmnist").network,
                  input_mode="spikes",
                  note="topology only (weights not public): density assumed 100 %, 8-bit weights; input mode spikes "
                       "(input compartments on chip)")


def cifar_mobilenet(path: Path = CIFAR_H5) -> Anchor:
    """NxTF's pseudo-MobileNet from its Keras file: conv / depthwise / pointwise / average pool / dense."""
    import h5py
    import json

    with h5py.File(path, "r") as f:
        raw = f.attrs["model_config"]
        layers = json.loads(raw if isinstance(raw, str) else raw.decode())["config"]["layers"]
        weights = f["model_weights"]

        def kernel(name):
            g = weights[name][name]
            return np.asarray(g[[k for k in g.keys() if k.startswith("kernel") or k.startswith("depthwise_kernel")][0]])

        shape = tuple(layers[0]["config"]["batch_input_shape"][1:])             # (H, W, C)
        b = NetxBuilder((shape[2], shape[0], shape[1]), 0, "cifar_pseudo_mobilenet")
        b.input("input0", LIF)
        c, h, w = shape[2], shape[0], shape[1]
        for lay in layers[1:]:
            cls, cfg = lay["class_name"], lay["config"]
            if cls in ("Conv2D", "DepthwiseConv2D"):
                k = kernel(cfg["name"])                                         # (kh, kw, C_in, C_out or mult)
                kh, kw = cfg["kernel_size"]
                sh, sw = cfg["strides"]
                if cls == "Conv2D":
                    wt, groups, c_out = np.transpose(k, (3, 2, 0, 1)), 1, k.shape[3]
                else:
                    wt, groups, c_out = np.transpose(k, (2, 3, 0, 1)), c, c
                oh, ow = (-(-h // sh), -(-w // sw)) if cfg["padding"] == "same" else ((h - kh) // sh + 1, (w - kw) // sw + 1)
                # Keras 'same' pads (total // 2, the rest) per axis; netx pads alike on both sides: the larger
                # half both sides gives the same output size (the taps shift by one row at most: no matter here)
                ph = -(-max((oh - 1) * sh + kh - h, 0) // 2) if cfg["padding"] == "same" else 0
                pw = -(-max((ow - 1) * sw + kw - w, 0) // 2) if cfg["padding"] == "same" else 0
                b.conv(cfg["name"], np.round(wt * 64), LIF, (c_out, oh, ow), (sh, sw), (ph, pw), groups=groups)
                c, h, w = c_out, oh, ow
            elif cls == "AveragePooling2D":
                (kh, kw), (sh, sw) = cfg["pool_size"], cfg["strides"]
                oh, ow = (h - kh) // sh + 1, (w - kw) // sw + 1
                b.conv(cfg["name"], np.ones((c, 1, kh, kw)), LIF, (c, oh, ow), (sh, sw), (0, 0), groups=c)
                h, w = oh, ow
            elif cls == "Dense":
                k = kernel(cfg["name"])                                         # (n_in, n_out), Keras (H, W, C) order
                k = k.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(c * h * w, -1)
                b.dense(cfg["name"], np.round(k.T * 64).astype(np.int64) | 1, LIF)
    return Anchor("CIFAR-10 pseudo-MobileNet (NxTF)", "loihi1",
                  "SILICON.md 3: b_image_classification_cifar.ipynb cell 32 (numChips 2, cores [128, 29])",
                  [("whole network (per layer not printed)", "*", 157)], 157, b.build(str(path)).network,
                  overrides={"core.neurons": 512},
                  note="rebuilt from the Keras file; 2 compartments per neuron (subtractive reset): 512 neurons per core")


def goal_layer(ours: int, theirs: int | None) -> bool | None:
    if theirs is None:
        return None
    return abs(ours - theirs) <= 1 or (theirs > 0 and abs(ours - theirs) <= 0.25 * theirs)


def evaluate(anchor: Anchor) -> dict:
    chip = load_chip(anchor.chip, anchor.overrides or None)
    t0 = time.perf_counter()
    pl = place_and_cost(anchor.network, chip, max_chips=32, input_mode=anchor.input_mode).placement
    seconds = time.perf_counter() - t0
    per_layer = {}
    for pop, ids in pl.layer_cores.items():
        per_layer[pl.cores[ids[0]].layer] = len(ids)
    rows = []
    for vendor_name, ours_name, theirs in anchor.rows:
        ours = pl.n_cores if ours_name == "*" else (per_layer.get(ours_name, 0) if ours_name else 0)
        ratio = ours / theirs if theirs else (1.0 if ours == 0 else math.inf)
        rows.append({"layer": vendor_name, "vendor": theirs, "neurokd": ours, "ratio": ratio,
                     "met": goal_layer(ours, theirs) if ours_name != "*" else 0.8 <= ratio <= 1.25})
    total = pl.n_cores
    return {"anchor": anchor, "rows": rows, "total": total, "ratio": total / anchor.vendor_total,
            "met": 0.8 <= total / anchor.vendor_total <= 1.25 and all(r["met"] in (True, None) for r in rows),
            "seconds": seconds}


def markdown(results: list[dict]) -> str:
    out = ["| network (chip) | layer | vendor cores | neurokd cores | neurokd / vendor | goal met |",
           "|---|---|---:|---:|---:|---|"]
    for res in results:
        a = res["anchor"]
        for r in res["rows"]:
            ratio = "-" if not r["vendor"] and not r["neurokd"] else (f"{r['ratio']:.2f}" if math.isfinite(r["ratio"]) else "inf")
            out.append(f"| {a.name} ({a.chip}) | {r['layer']} | {r['vendor']} | {r['neurokd']} | {ratio} | "
                       f"{'yes' if r['met'] else 'no'} |")
        out.append(f"| **{a.name} ({a.chip})** | **total** | **{a.vendor_total}** | **{res['total']}** | "
                   f"**{res['ratio']:.2f}** | **{'yes' if res['met'] else 'no'}** |")
    out.append("")
    for res in results:
        a = res["anchor"]
        out.append(f"- {a.name}: {a.source}; {a.note}; placed in {res['seconds']:.2f} s.")
    return "\n".join(out) + "\n"


# ------------------------------------------------------------------------------------------------
# Time and energy per step against the measured boards
# ------------------------------------------------------------------------------------------------

#: Intel's six PilotNet LIF runs on Loihi 2 (SILICON.md section 1): commit, frames per second, dynamic energy per
#: inference (mJ); 16 steps per inference
PILOTNET_RUNS = (("12f0402", 342.29, 1.386), ("f49e18b", 343.34, 1.199), ("211bec8", 415.51, 0.562),
                 ("b5200e2", 414.72, 0.981), ("baa23ad", 413.76, 1.071), ("b9e3691", 408.91, 1.094))
PILOTNET_STEPS = 16
#: N-TIDIGITS on Loihi 1 (SILICON.md section 2): per copy, 20 copies per chip on the 32-chip Nahuku board
NTIDIGITS_TICK_US, NTIDIGITS_DYNAMIC_UJ, NTIDIGITS_STEPS = 17.625, 575.96, 3000
NTIDIGITS_COPIES_PER_CHIP = 20
GOAL_STEP_US, GOAL_STEP_UJ, GOAL_NT_RATIO = (113, 228), (26, 108), (0.75, 1.33)


def relay_cores_per_chip(copies: int) -> int:
    """Relay ("repeater") cores on a chip that holds ``copies`` copies of a SLAYER network, as the benchmark that
    measured N-TIDIGITS builds them (intel-nrc-ecosystem/models, nxsdk_modules_contrib/spytorch2loihi/slayer_rec/
    src/benchmarking.py, ``MultiChipNetwork.create``): the input source is a relay core (``RelayInput``: one
    compartment per input value, identity synapses of weight 2 to each copy's input layer), and a new relay core,
    fed by the previous one, is added before every third copy (copy i, i % 3 == 0); a single copy uses none.
    20 copies: the source plus copies 3, 6, ..., 18, so 7 relay cores and 20 x 6 + 7 = 127 of 128 cores
    (``ntidigitsEnergy.ipynb``'s log: "# cores per repeater: 1.0", "Repeater added at core 19", 38, 57, ...)."""
    return 0 if copies < 2 else 1 + (copies - 1) // 3


def geomean(values) -> float:
    return float(np.exp(np.mean(np.log(values))))


def pilotnet_measured() -> list[dict]:
    """Per run: step time (us: 1e6 / (fps x 16)) and dynamic energy per step (uJ: mJ per inference / 16)."""
    return [{"run": c, "step_us": 1e6 / (fps * PILOTNET_STEPS), "step_uj": mj * 1e3 / PILOTNET_STEPS}
            for c, fps, mj in PILOTNET_RUNS]


def map_gts(name: str, file: str, data: str, chip: str, steps: int | None, folder: Path):
    """The network mapped and costed as `neurokd map FILE --hardware CHIP --input DATA [--steps N]` does it."""
    from neurokd.deploy import map_target

    g = gts_folder() / name
    t0 = time.perf_counter()
    mapped = map_target(g / file, folder / f"{name}-{chip}", hardware=chip, input_path=g / data, steps=steps,
                        echo=lambda *a: None)
    return mapped, mapped.cost.steady_state(), time.perf_counter() - t0


def per_layer(mapped, ss) -> list[dict]:
    """Steady state, per placed layer: cores, the busiest core's time per step (and its synaptic-op share), the
    layer's dynamic energy per step."""
    pl = mapped.placement
    rows = []
    for pop, ids in pl.layer_cores.items():
        busy = ss["core_ns_per_step"][ids]
        k = ids[int(busy.argmax())]
        rows.append({"layer": pl.cores[ids[0]].layer, "cores": len(ids), "busiest_us": float(busy.max()) / 1e3,
                     "synop_share": float(ss["synop_ns_per_core_step"][k] / busy.max()) if busy.max() else 0.0,
                     "uj": float(ss["energy_pj_per_core_step"][ids].sum()) / 1e6})
    return rows


def fit_scales(ss) -> tuple[float, float]:
    """Two scales against the six PilotNet runs, each the least-squares fit in log (the geometric mean of the
    measurements over the model): time on the cores' figures (the slowest core scales, the barrier and routes
    stay), energy on every per-event figure."""
    meas = pilotnet_measured()
    t = (geomean([m["step_us"] for m in meas]) * 1e3 - ss["barrier_ns"] - ss["route_ns"]) / ss["slowest_core_ns"]
    e = geomean([m["step_uj"] for m in meas]) * 1e6 / ss["energy_pj_per_step"]
    return float(t), float(e)


def time_energy(folder: Path) -> dict:
    out = {"pilotnet": {}, "measured": pilotnet_measured()}
    for chip in ("loihi2", "loihi2-fitted"):
        mapped, ss, seconds = map_gts("pilotnet_lif", "network.net", "image.npy", chip, PILOTNET_STEPS, folder)
        out["pilotnet"][chip] = {"mapped": mapped, "ss": ss, "seconds": seconds, "layers": per_layer(mapped, ss)}
    out["fit"] = fit_scales(out["pilotnet"]["loihi2"]["ss"])
    fitted = load_chip("loihi2-fitted")
    base = load_chip("loihi2")
    out["file_scales"] = (fitted["time.synop_ns"] / base["time.synop_ns"], fitted["energy.synop_pj"] / base["energy.synop_pj"])
    mapped, ss, seconds = map_gts("ntidigits", "ntidigits.net", "input.npy", "loihi1", None, folder)
    out["ntidigits"] = {"mapped": mapped, "ss": ss, "seconds": seconds, "layers": per_layer(mapped, ss)}
    mapped, ss, seconds = map_gts("ntidigits", "ntidigits.net", "input.npy", "loihi1-sanafe", None, folder)
    out["ntidigits_sanafe"] = {"ss": ss, "seconds": seconds}
    return out


def time_markdown(res: dict) -> str:
    meas = res["measured"]
    lo_t, hi_t = min(m["step_us"] for m in meas), max(m["step_us"] for m in meas)
    lo_e, hi_e = min(m["step_uj"] for m in meas), max(m["step_uj"] for m in meas)
    out = ["| network (chip figures) | per step, steady state | measured | neurokd | neurokd / measured | goal | met |",
           "|---|---|---:|---:|---:|---|---|"]
    for chip, label in (("loihi2", "loihi2, Loihi 1 stand-ins"), ("loihi2-fitted", "loihi2-fitted, fitted, unvalidated")):
        ss = res["pilotnet"][chip]["ss"]
        t, e = ss["step_ns"] / 1e3, ss["energy_pj_per_step"] / 1e6
        out.append(f"| PilotNet LIF ({label}) | time (us) | {lo_t:.1f}-{hi_t:.1f} | {t:.1f} | {t / hi_t:.2f}-{t / lo_t:.2f} | "
                   f"{GOAL_STEP_US[0]}-{GOAL_STEP_US[1]} | {'yes' if GOAL_STEP_US[0] <= t <= GOAL_STEP_US[1] else 'no'} |")
        out.append(f"| PilotNet LIF ({label}) | dynamic energy (uJ) | {lo_e:.1f}-{hi_e:.1f} | {e:.1f} | {e / hi_e:.2f}-{e / lo_e:.2f} | "
                   f"{GOAL_STEP_UJ[0]}-{GOAL_STEP_UJ[1]} | {'yes' if GOAL_STEP_UJ[0] <= e <= GOAL_STEP_UJ[1] else 'no'} |")
    nt = res["ntidigits"]["ss"]
    measured_nj = NTIDIGITS_DYNAMIC_UJ * 1e3 / NTIDIGITS_STEPS
    e_nj, t_us = nt["energy_pj_per_step"] / 1e3, nt["step_ns"] / 1e3
    r = e_nj / measured_nj
    out.append(f"| N-TIDIGITS (loihi1, Davies 2018 published) | dynamic energy per copy (nJ) | {measured_nj:.0f} | {e_nj:.0f} | "
               f"{r:.2f} | {GOAL_NT_RATIO[0]}-{GOAL_NT_RATIO[1]} x | {'yes' if GOAL_NT_RATIO[0] <= r <= GOAL_NT_RATIO[1] else 'no'} |")
    # the relay cores of the measured board: each takes the spikes the copy's input layer takes (the same
    # compartments, updates, synaptic ops; it sends each spike to up to 4 cores instead of 2, under 2 pJ a step
    # more at Table 2's within-tile spike energy), so a copy's share is (relay cores / copies) x its input layer
    relays = relay_cores_per_chip(NTIDIGITS_COPIES_PER_CHIP)
    input_nj = sum(r["uj"] for r in res["ntidigits"]["layers"] if r["layer"] == "input") * 1e3
    e_relay = e_nj + relays / NTIDIGITS_COPIES_PER_CHIP * input_nj
    r = e_relay / measured_nj
    out.append(f"| N-TIDIGITS (loihi1 + {relays}/{NTIDIGITS_COPIES_PER_CHIP} relay core per copy, derived) | dynamic energy "
               f"per copy (nJ) | {measured_nj:.0f} | {e_relay:.0f} | {r:.2f} | {GOAL_NT_RATIO[0]}-{GOAL_NT_RATIO[1]} x | "
               f"{'yes' if GOAL_NT_RATIO[0] <= r <= GOAL_NT_RATIO[1] else 'no'} |")
    e_sf = res["ntidigits_sanafe"]["ss"]["energy_pj_per_step"] / 1e3
    r = e_sf / measured_nj
    out.append(f"| N-TIDIGITS (loihi1-sanafe, SANA-FE's per-event figures: a second opinion, not the goal's) | dynamic "
               f"energy per copy (nJ) | {measured_nj:.0f} | {e_sf:.0f} | {r:.2f} | - | "
               f"- ({'inside' if GOAL_NT_RATIO[0] <= r <= GOAL_NT_RATIO[1] else 'outside'} 0.75-1.33) |")
    out.append(f"| N-TIDIGITS (loihi1, Davies 2018 published) | time (us) | {NTIDIGITS_TICK_US} (32-chip board, 640 copies) | "
               f"{t_us:.2f} (one copy, one chip) | {t_us / NTIDIGITS_TICK_US:.2f} | none (not comparable) | - |")
    out.append("")
    single = res["pilotnet"]["loihi2"]["mapped"].cost
    out.append(f"Per step, steady state: inferences streamed back to back, every core working in every step on the "
               f"inference of its own window (`CostReport.steady_state`), which is what a throughput measures: Intel's "
               f"step time is 1 / (frames per second x 16), its dynamic energy per step the dynamic energy per inference / 16. "
               f"`neurokd map` prints one inference on its own: PilotNet LIF on loihi2 {single.latency_ns / 1e3:,.1f} us and "
               f"{single.energy_pj / 1e6:,.1f} uJ over {single.hardware_steps} hardware steps (T + the pipeline), "
               f"{single.latency_ns_per_step / 1e3:.1f} us per step, the fill and drain steps lighter and every neuron "
               f"updated in all {single.hardware_steps} steps.")
    out.append("")
    t_fit, e_fit = res["fit"]
    t_file, e_file = res["file_scales"]
    out.append(f"**The fit** (two parameters, least squares in log over the six runs): time scale {t_fit:.3f}, energy scale "
               f"{e_fit:.3f}; `chips/loihi2-fitted.toml` holds {t_file:.3f} and {e_file:.3f}"
               + ("" if abs(t_fit / t_file - 1) < 0.01 and abs(e_fit / e_file - 1) < 0.01 else
                  " (**differs from this refit by more than 1 %: update the file**)") + ". Residuals of the fitted figures:")
    out.append("")
    out.append("| run (commit) | step measured (us) | fitted (us) | residual | energy measured (uJ/step) | fitted (uJ/step) | residual |")
    out.append("|---|---:|---:|---:|---:|---:|---:|")
    ss = res["pilotnet"]["loihi2-fitted"]["ss"]
    t, e = ss["step_ns"] / 1e3, ss["energy_pj_per_step"] / 1e6
    for m in meas:
        out.append(f"| {m['run']} | {m['step_us']:.1f} | {t:.1f} | {t / m['step_us'] - 1:+.1%} | {m['step_uj']:.1f} | {e:.1f} | "
                   f"{e / m['step_uj'] - 1:+.1%} |")
    out.append("")
    out.append("Unvalidated: one network, one frame, one chip; the scales absorb whatever the stand-in model misses, "
               "so they say nothing about a network whose cost is made of other events.")
    out.append("")
    out.append("Per layer, steady state (stand-in figures; PilotNet on loihi2, N-TIDIGITS on loihi1):")
    out.append("")
    out.append("| network | layer | cores | busiest core, mean busy time per step (us) | of it synaptic ops | dynamic energy per step |")
    out.append("|---|---|---:|---:|---:|---:|")
    for key, name, scale in (("pilotnet", "PilotNet LIF", 1.0), ("ntidigits", "N-TIDIGITS", 1e3)):
        part = res[key]["loihi2"] if key == "pilotnet" else res[key]
        unit = "uJ" if scale == 1.0 else "nJ"
        for r in part["layers"]:
            out.append(f"| {name} | {r['layer']} | {r['cores']} | {r['busiest_us']:.1f} | {r['synop_share']:.0%} | "
                       f"{r['uj'] * scale:.2f} {unit} |")
    out.append("")
    out.append(f"(mapped and costed in {res['pilotnet']['loihi2']['seconds']:.0f} s and {res['ntidigits']['seconds']:.0f} s, "
               f"as `neurokd map` does it: the fast model's bit-exact activity of the real frame / sample.)")
    return "\n".join(out) + "\n"


def splice(text: str, table: str, tag: str) -> str:
    begin, end = f"<!-- {tag} -->\n", f"<!-- /{tag} -->"
    if begin in text and end in text:
        return text[:text.index(begin) + len(begin)] + table + text[text.index(end):]
    return text + f"\n{begin}{table}{end}\n"


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "silicon.md"))
    ap.add_argument("--no-cifar", action="store_true", help="leave out the NxTF CIFAR pseudo-MobileNet")
    ap.add_argument("--no-time", action="store_true", help="leave out time and energy per step (about 40 s)")
    args = ap.parse_args(argv)
    if gts_folder() is None:
        raise SystemExit("lava-dl's wheel (its gts networks) is not installed: the anchors need it")
    anchors = [pilotnet, ntidigits, nmnist] + ([] if args.no_cifar or not CIFAR_H5.is_file() else [cifar_mobilenet])
    results = [evaluate(make()) for make in anchors]
    table = markdown(results)
    print(table)
    out = Path(args.out)
    text = splice(out.read_text() if out.is_file() else "", table, "silicon-table")
    if not args.no_time:
        import tempfile

        with tempfile.TemporaryDirectory() as tmp:
            timing = time_markdown(time_energy(Path(tmp)))
        print(timing)
        text = splice(text, timing, "silicon-time")
    fileio.write_text(out, text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
