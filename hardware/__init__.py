"""neurokd.hardware: a NIR graph on a model of Loihi, and what it costs.

One folder per stage, one file per step:

- :mod:`.network`: the network form the hardware runs (NIR semantics, the IR, fixed-point quantisation);
- :mod:`.engines`: who runs it (Lava's CPU simulation, neurokd's bit-exact fast model, their result);
- :mod:`.formats`: deployment files (lava-dl netx, written and read);
- :mod:`.cost`: counting (spikes, SynOps, neuron updates) and energy models;
- :mod:`.reports`: one run's energy report and model card, and the comparison of finished runs;
- :mod:`.placement`: chips as data, neurons placed on cores within the chip's limits, per-core and
  per-step cost (latency, energy with routing), the optional SANA-FE cross-check.

Dependency direction (checked by ``tests/test_layout.py``): network imports no engine; engines
import no cost or report code; placement imports network and cost code, never an engine or a
report; nothing here imports the training side's models.

Importing this package makes ``import lava`` work on Python 3.11 (see :mod:`.lava_compat`); it does
not import Lava itself.
"""

from neurokd.hardware import lava_compat as _lava_compat

_lava_compat.install()
