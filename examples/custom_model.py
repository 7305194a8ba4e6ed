"""Your own student topology, residual branches included, through the whole toolchain.

Registers ``resmlp`` (an MLP with one residual block: ``s3 = lif3(fc3(lif2(fc2(s1))) + s1)``), then
trains a distilled student on digits, exports it, runs the whole test split in the fast hardware
model with 16 samples re-checked in Lava, and prints where the shortcut went. About a minute on 2
CPU cores.

    .venv/bin/python examples/custom_model.py [RUN_FOLDER] [--epochs N]     # default runs/digits-resmlp

A topology is a list of named layers (``NEURON`` marks a spiking layer: LIF in the student, ReLU in
the teacher) plus ``shortcuts = {neuron: (source, branch layers)}``: the branch is applied to the
source's output and added to that neuron's input. On Loihi the shortcut arrives one step early (the
main path has one more layer), so Lava holds it one step in a ``DelayDense``.
"""

from __future__ import annotations

import argparse
import math

from torch import nn

from neurokd.models import NEURON, Topology, register


@register("resmlp")
def resmlp(input_shape: tuple[int, ...], num_classes: int, width: int = 64) -> Topology:
    """Flatten -> fc1 -> lif1 -> [fc2 -> lif2 -> fc3, + lif1 (identity)] -> lif3 -> readout."""
    layers = [
        ("flatten", nn.Flatten()),
        ("fc1", nn.Linear(math.prod(input_shape), width)), ("lif1", NEURON),
        ("fc2", nn.Linear(width, width)), ("lif2", NEURON),
        ("fc3", nn.Linear(width, width)), ("lif3", NEURON),
        ("readout", nn.Linear(width, num_classes)),
    ]
    return Topology(layers, tuple(input_shape), num_classes, {"width": width}, shortcuts={"lif3": ("lif1", [])})


def main(argv=None) -> None:
    from pathlib import Path

    import neurokd
    from neurokd.exporters.from_nir import read_nir
    from neurokd.hardware.network import ir

    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", nargs="?", default="runs/digits-resmlp")
    ap.add_argument("--epochs", type=int, default=60)
    args = ap.parse_args(argv)
    run = Path(args.run)

    trained = neurokd.train(dataset="digits", model="resmlp", method="kd-lr", epochs=args.epochs,
                            teacher_epochs=args.epochs, out=run, overwrite=True, progress=False, echo=None)
    print(f"student test accuracy {trained.test_accuracy:.4f}, activity {trained.activity:.4f}")

    exported = neurokd.export(trained, target="lava", precision="fixed", engine="fast", verify=16, progress=False,
                              echo=None)
    ag = exported.agreements["fixed"]
    print(f"fast model (whole split, fixed point) accuracy {ag['accuracy_lava']:.4f}; "
          f"Lava on 16 samples: {'identical' if ag['fast_vs_lava']['identical'] else 'DIFFERENT'}")
    network = ir.from_nir(read_nir(run / "model.nir"))
    for note in network.notes:
        print(note)


if __name__ == "__main__":
    main()
