"""Who runs a network: Lava's CPU simulation of Loihi, and neurokd's fast model of the same processes.

- :mod:`.lava_backend`: ``run_lava(network, x, precision)``: Lava processes, floating or fixed point;
- :mod:`.fastsim`: ``run_fast(network, x, precision)``: the same network batched in torch, bit-exact
  with Lava's ``fixed_pt``; ``check`` re-runs a subset in Lava;
- :mod:`.result`: :class:`~.result.HardwareResult`, what either engine returns.

Engines read :mod:`neurokd.hardware.network` and never import cost or report code.
"""
