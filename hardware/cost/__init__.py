"""What a run costs: events counted from the spikes an engine produced, and energy per event.

- :mod:`.counting`: :class:`~.counting.Geometry` (populations, connections), spikes, SynOps, MACs,
  neuron updates per layer and inference, NeuroBench's metrics;
- :mod:`.energy`: per-event cost tables (Loihi, 45 nm) with their sources, and the estimate.

Plain numpy: reads the network form, never an engine.
"""
