"""neurokd.exporters: a trained student to NIR (and back to PyTorch), a teacher to ONNX.

- :mod:`.to_nir`: ``student_to_nir(student, dt)``, ``write_nir(graph, path)``, ``fold_batchnorm``;
- :mod:`.from_nir`: ``read_nir(path)``, ``nir_to_torch(graph, dt, timesteps)`` -> ``NIRModule``,
  which runs any supported NIR graph (third-party ones too) over a sequence;
- :mod:`.conventions`: which time step a NIR graph runs with, per producer and per interop graph;
- :mod:`.nir_inspect`: any NIR graph read, run on a seeded input and summarised node by node;
- :mod:`.onnx`: teacher and one student step as ONNX.

Submodules are imported on first use, so ``import neurokd.exporters`` stays light.
"""

from __future__ import annotations

import importlib

_LAZY = {
    "student_to_nir": "to_nir", "write_nir": "to_nir", "fold_batchnorm": "to_nir",
    "read_nir": "from_nir", "nir_to_torch": "from_nir", "NIRModule": "from_nir",
}


def __getattr__(name: str):
    if name in _LAZY:
        return getattr(importlib.import_module(f"{__name__}.{_LAZY[name]}"), name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
