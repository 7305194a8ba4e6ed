"""neurokd.hardware: NIR -> Lava processes, Loihi fixed-point quantisation, a fast model of the same
hardware, SynOps / neuron-update counting, energy models and reports.

Importing this package makes ``import lava`` work on Python 3.11 (see :mod:`.lava_compat`).
It never imports a torch model: the NIR graph is its only input.
"""

from neurokd.hardware import lava_compat as _lava_compat

_lava_compat.install()
