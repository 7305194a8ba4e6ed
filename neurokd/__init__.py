"""neurokd: spiking neural network students that are accurate and sparse, on a model of Intel's Loihi.

Train a teacher and an SNN student with knowledge distillation and activity/logits regularisation
(Louis et al., ICANN 2024), export it through NIR to Lava's simulation of Loihi (floating and fixed
point) or neurokd's bit-exact fast model of it, and measure spikes, SynOps and energy per layer::

    import neurokd

    run = neurokd.train(dataset="digits", method="kd-lr")         # -> RunResult (run_dir, metrics)
    neurokd.export(run, target="lava", precision="both")          # -> ExportResult (agreements)
    neurokd.simulate("graph.nir", "out/", random_input=True)      # any NIR graph -> SimulationResult
    neurokd.report(["runs/digits-kd-lr-s0"], out="reports")      # -> {file: path}

The calls (each documented, ``help(neurokd.train)``):

- :func:`train`, :func:`evaluate`, :func:`study`: training runs (the ``train``, ``eval``, ``study`` commands);
- :func:`export`, :func:`simulate`: a run or any NIR graph on the hardware model (``export``, ``simulate``);
- :func:`map_network`: placed on a chip's cores, checked to fit, every time step costed (``map``);
- :func:`load_nir`, :func:`import_nir`: any NIR graph as a PyTorch module (``import``);
- :func:`report`: finished runs side by side (``report``).
- :func:`tune`: the front of accuracy vs activity vs energy over the loss weights, workers sharing it (``tune``).

Bad input raises :class:`NeurokdError` (one line: what, where, what to do); a failed check the caller
asked for raises :class:`CheckFailed`. Settings are :class:`TrainConfig` fields. Building blocks for
your own loop are documented modules: :mod:`neurokd.losses` (KD, activation and logits penalties),
:mod:`neurokd.activity` (spike counting), :mod:`neurokd.exporters` and :mod:`neurokd.hardware`.
"""

from neurokd.api import (ExportResult, ImportResult, RunResult, SimulationResult, evaluate, export, import_nir,
                         load_nir, map_network, report, simulate, study, train, tune)
from neurokd.config import TrainConfig
from neurokd.errors import CheckFailed, NeurokdError

__all__ = ["train", "evaluate", "study", "export", "simulate", "map_network", "load_nir", "import_nir", "report", "tune",
           "RunResult", "ExportResult", "SimulationResult", "ImportResult", "TrainConfig", "NeurokdError", "CheckFailed"]
