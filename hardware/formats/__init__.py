"""Deployment formats: the quantised network as a lava-dl netx file (``.net``), written and read.

- :mod:`.netx`: ``write_netx(fixed, path)``, ``run_netx`` (netx itself in Lava), ``check_netx``;
- :mod:`.netx_reader`: ``read_netx(path)`` -> the IR and fixed-point form, for either engine.
"""
