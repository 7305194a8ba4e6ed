"""Spiking modules of neurokd, snnTorch and SpikingJelly, found by type, and how each library is stepped.

A user's network is an ordinary ``nn.Module``; neurokd finds its spiking modules by class:

==================  ==================================================  ==============================
library             spiking modules (and subclasses)                    one call of the module is
==================  ==================================================  ==============================
neurokd             :class:`neurokd.models.neurons.LIF`                 the whole sequence ``(T, B, ...)``
snnTorch            ``snntorch.SpikingNeuron``: ``Leaky``, ``Synaptic``,  one time step ``(B, ...)``
                    ``RLeaky``, ``RSynaptic``, ``Lapicque``, ...
SpikingJelly        ``spikingjelly.activation_based.neuron.BaseNode``:  one step (``step_mode="s"``) or
                    ``LIFNode``, ``IFNode``, ``ParametricLIFNode``, ...  the sequence (``step_mode="m"``)
==================  ==================================================  ==============================

A spiking module's output is its spikes, or a tuple whose first element is (snnTorch's
``output=True`` / ``init_hidden=False`` return ``(spk, mem)`` or ``(spk, syn, mem)``).

How neurokd runs a whole user network over ``T`` steps (:func:`reset_states`, used by
:class:`neurokd.models.user.UserStudent`): snnTorch networks are called once per step, after
every neuron's ``reset_mem()`` (the state lives in the modules, so they must be built with
``init_hidden=True``); SpikingJelly networks get ``functional.reset_net`` and are called once with
the ``(T, B, ...)`` sequence when their neurons are multi-step, else once per step. The peers are
imported only when present; a library that is not installed contributes no types.
"""

from __future__ import annotations

import importlib

import torch
from torch import nn

from neurokd.models.neurons import LIF

LIBRARIES = ("neurokd", "snntorch", "spikingjelly")


def _snntorch_base():
    try:
        return importlib.import_module("snntorch").SpikingNeuron
    except (ImportError, AttributeError):
        return None


def _spikingjelly_base():
    try:
        return importlib.import_module("spikingjelly.activation_based.neuron").BaseNode
    except (ImportError, AttributeError):
        return None


def library_of(module: nn.Module) -> str | None:
    """``"neurokd"``, ``"snntorch"`` or ``"spikingjelly"`` for a spiking module, else ``None``."""
    if isinstance(module, LIF):
        return "neurokd"
    snn_base = _snntorch_base()
    if snn_base is not None and isinstance(module, snn_base):
        return "snntorch"
    sj_base = _spikingjelly_base()
    if sj_base is not None and isinstance(module, sj_base):
        return "spikingjelly"
    return None


def is_spiking(module: nn.Module) -> bool:
    return library_of(module) is not None


def spiking_modules(model: nn.Module) -> list[tuple[str, nn.Module]]:
    """``[(qualified name, module)]`` of every spiking module of ``model``, in registration order.

    A spiking module inside another spiking module is not listed (the outer one is the layer).
    """
    found: list[tuple[str, nn.Module]] = []
    inside: list[str] = []
    for name, module in model.named_modules():
        if any(name.startswith(p + ".") for p in inside):
            continue
        if is_spiking(module):
            found.append((name or type(module).__name__, module))
            inside.append(name)
    return found


def whole_sequence(module: nn.Module) -> bool:
    """True when one call of this spiking module processes all ``T`` steps (input ``(T, B, ...)``)."""
    lib = library_of(module)
    if lib == "neurokd":
        return True
    if lib == "spikingjelly":
        return getattr(module, "step_mode", "s") == "m"
    return False


def spikes_of(output) -> torch.Tensor:
    """The spikes in a spiking module's output: the tensor itself, or a tuple's first element."""
    return output[0] if isinstance(output, (tuple, list)) else output


def reset_states(model: nn.Module) -> None:
    """Zero the state every snnTorch / SpikingJelly neuron of ``model`` keeps between calls."""
    sj = None
    for _, module in model.named_modules():
        lib = library_of(module)
        if lib == "snntorch" and hasattr(module, "reset_mem"):
            module.reset_mem()
        elif lib == "spikingjelly":
            sj = True
    if sj:
        importlib.import_module("spikingjelly.activation_based.functional").reset_net(model)


__all__ = ["LIBRARIES", "library_of", "is_spiking", "spiking_modules", "whole_sequence", "spikes_of", "reset_states"]
