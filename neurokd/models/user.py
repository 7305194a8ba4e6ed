"""A student from the user's own code (``--model FILE.py:FUNCTION`` or ``package.module:FUNCTION``), stepped as its library expects.

The function is called with keyword arguments ``input_shape`` (one sample's shape), ``num_classes``
and ``timesteps``, plus the run's ``model_options`` (except ``readout``, read here). It returns the
student, an ``nn.Module`` of snnTorch or SpikingJelly neurons (:mod:`neurokd.models.peers`), or
``(student, teacher)``; without a teacher, the run distils from neurokd's teacher of the dataset.

:class:`UserStudent` wraps it with the interface of neurokd's own
:class:`~neurokd.models.base.Student` (``run(x) -> (logits, spikes, readout)``, ``timesteps``,
``input_shape``, ``num_classes``), so the training loop, evaluation, counting and export take it
unchanged. How it is stepped (direct encoding: the input is the same at every step)::

    snnTorch       every neuron's reset_mem(); out[t] = model(x) for t = 0 .. T-1   (init_hidden=True)
    SpikingJelly   functional.reset_net(model); out = model(x repeated (T, B, ...))  multi-step neurons
                   or out[t] = model(x) for t = 0 .. T-1                             single-step neurons

The readout (``model_options`` key ``readout``, default ``auto``):

=============  =============================================================================
``spikes``     the output is a spiking layer's spikes; logits = spike count, ``sum_t s[t]``
``membrane``   the output is snnTorch's ``(spk, mem)`` of ``output=True``; logits = ``mean_t mem[t]``
``mean``       the output is a non-spiking layer's (a final ``nn.Linear``); logits = ``mean_t y[t]``
``auto``       ``spikes`` when the output is a spiking module's (a ``(spk, mem)`` tuple included),
               else ``mean``
=============  =============================================================================

A run folder never runs code by itself: reloading a run whose student came from user code
(:func:`neurokd.training.load_run`) needs the same spec given again (``--model`` on the command
line, ``model=`` in :mod:`neurokd.api`), which :func:`trusted` records for the call. config.toml
records the file's absolute path; a run folder read on another machine is rebuilt from the
caller's ``--model`` when it names a file of the same name and the same function.
"""

from __future__ import annotations

import contextlib
import contextvars
import hashlib
import importlib
import importlib.util
import sys
from pathlib import Path
from typing import Callable

import torch
from torch import nn

from neurokd.errors import NeurokdError
from neurokd.models import peers

READOUTS = ("auto", "spikes", "membrane", "mean")
_TRUSTED: contextvars.ContextVar[tuple[str, ...]] = contextvars.ContextVar("neurokd_trusted_models", default=())


def is_user_model(spec) -> bool:
    """A ``--model`` value naming user code (``FILE.py:FUNCTION`` / ``package.module:FUNCTION``) rather than a zoo name."""
    return isinstance(spec, str) and ":" in spec


def _split(spec: str) -> tuple[str, str]:
    target, _, fn = spec.rpartition(":")
    if not target or not fn or not fn.isidentifier():
        raise NeurokdError(f"--model {spec!r}: give FILE.py:FUNCTION or package.module:FUNCTION")
    return target, fn


def _is_file(target: str) -> bool:
    return target.endswith(".py") or "/" in target or "\\" in target


def canonical(spec: str) -> str:
    """The spec with a file path made absolute (what config.toml records and what reloading compares)."""
    target, fn = _split(spec)
    if _is_file(target):
        target = str(Path(target).expanduser().resolve())
    return f"{target}:{fn}"


def load_builder(spec: str) -> Callable:
    """Import the user's function (the file named by the user is executed: that is what ``--model`` asks)."""
    target, fn = _split(spec)
    if _is_file(target):
        path = Path(target).expanduser().resolve()
        if not path.is_file():
            raise NeurokdError(f"--model {spec}: file {path} not found")
        name = "neurokd_user_model_" + hashlib.sha1(str(path).encode()).hexdigest()[:12]
        module_spec = importlib.util.spec_from_file_location(name, path)
        if module_spec is None or module_spec.loader is None:
            raise NeurokdError(f"--model {spec}: {path} is not a Python file")
        module = importlib.util.module_from_spec(module_spec)
        sys.modules[name] = module
        try:
            module_spec.loader.exec_module(module)
        except Exception as exc:
            sys.modules.pop(name, None)
            raise NeurokdError(f"--model {spec}: importing {path} failed: {type(exc).__name__}: {exc}") from exc
    else:
        try:
            module = importlib.import_module(target)
        except ImportError as exc:
            raise NeurokdError(f"--model {spec}: cannot import module {target!r}: {exc}") from exc
    builder = getattr(module, fn, None)
    if not callable(builder):
        raise NeurokdError(f"--model {spec}: {target} has no function {fn!r}")
    return builder


@contextlib.contextmanager
def trusted(spec: str | None):
    """Within this block, run folders whose student comes from ``spec`` may be rebuilt from it. A zoo name
    (``conv1d``, ``resnet1d``, ...) is no user code: nothing to trust."""
    if not is_user_model(spec):
        yield
        return
    token = _TRUSTED.set(_TRUSTED.get() + (canonical(spec),))
    try:
        yield
    finally:
        _TRUSTED.reset(token)


def check_trusted(spec: str, where) -> str:
    """The spec to build run folder ``where``'s student from: ``spec`` (its config.toml's) when the caller
    named it, else refused in one line. A run folder moved to another machine keeps the old absolute
    path: the caller's own spec is used when it names the same file name and function there."""
    given = _TRUSTED.get()
    if canonical(spec) in given:
        return canonical(spec)
    target, fn = _split(spec)
    moved = [g for g in given if _split(g)[1] == fn and _is_file(target) and _is_file(_split(g)[0])
             and Path(_split(g)[0]).name == Path(target).name]
    if len(moved) == 1:
        return moved[0]
    raise NeurokdError(f"{where}: its student comes from user code ({spec}) and a run folder never runs code by "
                       f"itself; give the same --model {spec} (model= in Python) to load it")


def build_user_models(spec: str, input_shape, num_classes: int, timesteps: int, options: dict | None = None
                      ) -> tuple["UserStudent", nn.Module | None]:
    """``(UserStudent, the user's teacher or None)`` from the function ``spec`` names (module docstring)."""
    options = dict(options or {})
    readout = options.pop("readout", "auto")
    builder = load_builder(spec)
    try:
        made = builder(input_shape=tuple(int(d) for d in input_shape), num_classes=int(num_classes),
                       timesteps=int(timesteps), **options)
    except TypeError as exc:
        raise NeurokdError(f"--model {spec}: calling it with input_shape, num_classes, timesteps"
                           f"{''.join(', ' + k for k in options)} failed: {exc}") from exc
    teacher = None
    if isinstance(made, tuple) and len(made) == 2:
        made, teacher = made
        if not isinstance(teacher, nn.Module):
            raise NeurokdError(f"--model {spec}: the teacher it returned is a {type(teacher).__name__}, not an nn.Module")
    if not isinstance(made, nn.Module):
        raise NeurokdError(f"--model {spec}: returned a {type(made).__name__}; return the student (an nn.Module) "
                           "or (student, teacher)")
    return UserStudent(made, timesteps, input_shape, num_classes, readout=readout, source=spec), teacher


class UserStudent(nn.Module):
    """A user's snnTorch / SpikingJelly network with the interface of neurokd's Student (module docstring).

    ``self.net`` is the user's module (state-dict keys ``net.*``); ``library`` its neurons' library;
    ``readout`` the resolved readout (``spikes``, ``membrane`` or ``mean``) once a batch has run.
    """

    def __init__(self, net: nn.Module, timesteps: int, input_shape, num_classes: int, readout: str = "auto",
                 source: str = "") -> None:
        super().__init__()
        if int(timesteps) < 1:
            raise NeurokdError(f"timesteps must be >= 1, got {timesteps}")
        if readout not in READOUTS:
            raise NeurokdError(f"readout {readout!r} is not one of {', '.join(READOUTS)}")
        self.net = net
        self.timesteps = int(timesteps)
        self.input_shape = tuple(int(d) for d in input_shape)
        self.num_classes = int(num_classes)
        self.source = source
        self.readout = readout
        where = f"--model {source}" if source else type(net).__name__
        layers = peers.spiking_modules(net)
        if not layers:
            raise NeurokdError(f"{where}: the student has no spiking module neurokd knows (snnTorch SpikingNeuron, "
                               "SpikingJelly BaseNode)")
        libs = {peers.library_of(m) for _, m in layers}
        if len(libs) != 1 or libs == {"neurokd"}:
            raise NeurokdError(f"{where}: neurons of {', '.join(sorted(libs))}; a user student uses one of snnTorch "
                               "or SpikingJelly (neurokd's own LIF students come from the model registry)")
        self.library = libs.pop()
        if self.library == "snntorch":
            for name, m in layers:
                if not getattr(m, "init_hidden", False):
                    raise NeurokdError(f"{where}: snnTorch {type(m).__name__} {name!r} has init_hidden=False; neurokd "
                                       "calls the network once per time step, so build its neurons with init_hidden=True")
            self.sequence = False
        else:
            modes = {getattr(m, "step_mode", "s") for _, m in layers}
            if len(modes) != 1:
                raise NeurokdError(f"{where}: SpikingJelly neurons in both single- and multi-step mode; use "
                                   "functional.set_step_mode(net, 'm') (or 's') on the whole network")
            self.sequence = modes == {"m"}

    def spiking_layers(self) -> list[str]:
        return [name for name, _ in peers.spiking_modules(self.net)]

    def describe(self) -> str:
        step = "one call per step" if not self.sequence else "one call with the (T, B, ...) sequence"
        readout = {"auto": "auto (spike count of a spiking output, else the time mean)", "spikes": "spike count",
                   "membrane": "membrane, time mean", "mean": "time mean"}[self.readout]
        return (f"student from {self.source or type(self.net).__name__}: {self.library}, {len(self.spiking_layers())} "
                f"spiking layers, {step}, readout {readout}")

    def _steps(self, x: torch.Tensor):
        peers.reset_states(self.net)
        if self.sequence:
            return self.net(x.unsqueeze(0).repeat(self.timesteps, *([1] * x.dim())))
        return [self.net(x) for _ in range(self.timesteps)]

    def _resolve(self, out, spikes: dict) -> str:
        first = out[0] if isinstance(out, (tuple, list)) else out
        from_neuron = any(first is s for s in spikes)
        mode = self.readout
        if mode == "auto":
            mode = "spikes" if from_neuron else "mean"
        elif mode == "spikes" and not from_neuron:
            raise NeurokdError("readout spikes: the network's output is not a spiking module's output; use readout "
                               "mean for a non-spiking readout layer")
        elif mode == "membrane" and not (isinstance(out, (tuple, list)) and from_neuron):
            raise NeurokdError("readout membrane needs an output spiking layer that returns (spk, mem), e.g. "
                               "snn.Leaky(init_hidden=True, output=True)")
        return mode

    def run(self, x: torch.Tensor) -> tuple[torch.Tensor, dict[str, torch.Tensor], torch.Tensor]:
        """``(logits (B, C), spikes {layer: (T, B, ...)}, readout per step (T, B, C))``."""
        from neurokd.activity import SpikeRecorder

        with SpikeRecorder(self.net) as rec:
            outs = self._steps(x)
            last = [calls[-1][1] for calls in rec._calls.values() if calls]
            spikes = rec.spikes()
        if self.sequence:
            outs = [outs]
        mode = self._resolved = self._resolve(outs[-1], last)
        pick = (lambda o: o[-1]) if mode == "membrane" else (lambda o: o[0] if isinstance(o, (tuple, list)) else o)
        per = [pick(o) for o in outs]
        readout = per[0] if self.sequence else torch.stack(per)
        readout = readout.reshape(self.timesteps, x.shape[0], -1)
        if readout.shape[-1] != self.num_classes:
            raise NeurokdError(f"the student's output has {readout.shape[-1]} values per sample and step, the dataset "
                               f"{self.num_classes} classes; end the network with {self.num_classes} outputs")
        logits = readout.sum(0) if mode == "spikes" else readout.mean(0)
        return logits, spikes, readout

    @property
    def resolved_readout(self) -> str | None:
        return getattr(self, "_resolved", None)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x)[0]


__all__ = ["READOUTS", "UserStudent", "build_user_models", "canonical", "check_trusted", "is_user_model",
           "load_builder", "trusted"]
