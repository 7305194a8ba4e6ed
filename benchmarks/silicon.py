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
  Placed twice: with loihi1's rules as they are, and with output axons counted per neuron and connection
  (an override), since NxTF's total is exactly the compartment bound (no output-axon table bound it).

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
from neurokd.hardware.placement import load_chip, place

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


def pilotnet() -> Anchor:
    net = read_netx(gts_folder() / "pilotnet_lif" / "network.net").network
    rows = [("input 3x66x200 (bias-driven)", "0", 13), ("conv 24x32x99", "1", 25), ("conv 36x15x49", "2", 13),
            ("conv 48x7x24", "3", 3), ("conv 64x4x22", "4", 3), ("conv 64x2x20", "5", 2), ("dense 100", "7", 12),
            ("dense 50", "8", 1), ("dense 10", "9", 1), ("dense 1", "10", 1)]
    return Anchor("PilotNet LIF", "loihi2", "SILICON.md 1: lava-dl pilotnet_snn/benchmark.ipynb, compiler's per-core table",
                  rows, 74, net, note="lava-dl gts/pilotnet_lif/network.net as read by read_netx")


def ntidigits() -> Anchor:
    path = gts_folder() / "ntidigits" / "ntidigits.net"
    file_net = read_netx(path, num_layers=5)                  # netx refuses 'average'; NxSDK runs it off chip
    b = NetxBuilder((64,), 0, "ntidigits")
    b.input("input0", LIF)                                     # NxSDK's on-chip input compartments
    fixed = file_net.fixed
    for lay in file_net.network.layers:
        syn = lay.synapses[0]
        fs = fixed.layers[lay.name].synapses[syn.name]
        b.dense(lay.name, np.asarray(fs.mant), LIF, delay=fs.delays, optimize=False,
                num_weight_bits=fs.num_weight_bits, weight_exp=fs.weight_exp)
    rows = [("input 64", "input0", 1), ("dense 256 (delays)", "2", 2), ("dense 256 (delays)", "3", 2),
            ("dense 242", "4", 1), ("average 11", None, 0)]
    return Anchor("N-TIDIGITS", "loihi1", "SILICON.md 2: ntidigitsAuto.ipynb cell 8 (NxSDK automatic partition)", rows, 6,
                  b.build(str(path)).network,
                  note="gts/ntidigits/ntidigits.net read with num_layers=5 (before 'average', which NxSDK computes "
                       "off chip); input layer on chip as NxSDK places it")


def nmnist() -> Anchor:
    rng = np.random.default_rng(0)
    b = NetxBuilder((2, 34, 34), 0, "nmnist")
    b.input("input0", LIF)
    for name, n_out, n_in in (("dense512", 512, 2312), ("dense10", 10, 512)):
        w = rng.integers(1, 128, size=(n_out, n_in)) * rng.choice([-2, 2], size=(n_out, n_in))   # all non-zero
        b.dense(name, w, LIF)
    rows = [("input 34x34x2", "input0", 7), ("dense 512", "dense512", 9), ("dense 10", "dense10", 1)]
    return Anchor("N-MNIST", "loihi1", "SILICON.md 2: NMNISTAuto.ipynb cell 10", rows, 17, b.build("nmnist").network,
                  note="topology only (weights not public): density assumed 100 %, 8-bit weights")


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


def cifar_mobilenet_spatial() -> Anchor:
    """The same network with output axons counted per neuron and connection: NxTF's total is exactly the
    compartment bound (the sum over layers of ceil(2 x neurons / 1,024) = 157), so its partition let no output
    axon table bind; neurokd's channel-major cut of a pointwise layer would send every depthwise neuron to every
    pointwise core, which NxTF's spatial partitions avoid."""
    a = cifar_mobilenet()
    a.name += ", output axons not binding"
    a.overrides = {"core.neurons": 512, "core.fan_out_per_core": 0}
    a.note = "as above, with core.fan_out_per_core = 0 (override): what NxTF's partition achieves"
    return a


def goal_layer(ours: int, theirs: int | None) -> bool | None:
    if theirs is None:
        return None
    return abs(ours - theirs) <= 1 or (theirs > 0 and abs(ours - theirs) <= 0.25 * theirs)


def evaluate(anchor: Anchor) -> dict:
    chip = load_chip(anchor.chip, anchor.overrides or None)
    t0 = time.perf_counter()
    pl = place(anchor.network, chip, max_chips=32)
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


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--out", default=str(Path(__file__).resolve().parents[1] / "docs" / "silicon.md"))
    ap.add_argument("--no-cifar", action="store_true", help="leave out the NxTF CIFAR pseudo-MobileNet")
    args = ap.parse_args(argv)
    if gts_folder() is None:
        raise SystemExit("lava-dl's wheel (its gts networks) is not installed: the anchors need it")
    anchors = [pilotnet, ntidigits, nmnist] + ([] if args.no_cifar or not CIFAR_H5.is_file() else [cifar_mobilenet, cifar_mobilenet_spatial])
    results = [evaluate(make()) for make in anchors]
    table = markdown(results)
    print(table)
    out = Path(args.out)
    text = out.read_text() if out.is_file() else ""
    begin, end = "<!-- silicon-table -->\n", "<!-- /silicon-table -->"
    if begin in text and end in text:
        text = text[:text.index(begin) + len(begin)] + table + text[text.index(end):]
    else:
        text = table
    fileio.write_text(out, text)
    print(f"wrote {out}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
