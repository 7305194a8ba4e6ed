"""Digits end to end: train a distilled SNN student, export it to NIR, run it in Lava (float and fixed
point), and read the agreement and energy report. About a minute on 2 CPU cores.

    .venv/bin/python examples/digits_end_to_end.py [RUN_FOLDER]      # default runs/digits-example

The same as ``neurokd train --out RUN`` then ``neurokd export RUN --target lava --precision both``,
written with the library calls a notebook would use.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import neurokd
from neurokd.exporters.from_nir import read_nir
from neurokd.hardware.network import ir

run_dir = Path(sys.argv[1] if len(sys.argv) > 1 else "runs/digits-example")

run = neurokd.train(out=run_dir, overwrite=True, echo=None)                  # teacher + kd-lr student on digits
print(f"student test accuracy {run.test_accuracy:.4f}, activity {run.activity:.4f}")

exported = neurokd.export(run, target="lava", precision="both")              # model.nir, lava/, agreement*.json
for precision, ag in exported.agreements.items():
    print(f"{precision:>5}: Lava accuracy {ag['accuracy_lava']:.4f} vs PyTorch {ag['accuracy_torch']:.4f}, "
          f"identical spikes {ag['spike_agreement']}, {ag['lava_samples_per_second']:.0f} samples/s")

network = ir.from_nir(read_nir(run_dir / "model.nir"))                     # what Lava ran, layer by layer
print(network.summary())
quant = json.loads((run_dir / "lava" / "quantization.json").read_text())
for layer, q in quant["layers"].items():
    print(f"{layer:>8}: scale {q['scale']:.1f} ({q['limited_by']})")
print((run_dir / "energy_report.md").read_text() if (run_dir / "energy_report.md").is_file() else "no energy report")
