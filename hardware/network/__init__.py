"""The network form the hardware runs: a NIR graph read into layers, and its Loihi fixed-point form.

- :mod:`.nir_semantics`: each NIR node's discrete equations (the discretisation rule, one place);
- :mod:`.ir`: ``from_nir(graph)`` -> :class:`~.ir.Network` (layers, synapses, delays), the one form
  every engine, format and cost model reads;
- :mod:`.quantize`: ``quantize(network)`` -> :class:`~.quantize.FixedNetwork`, Loihi's integers.

Imports NIR and numpy only: no engine, no format, no report.
"""
