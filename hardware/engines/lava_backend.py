"""Run a :class:`~neurokd.hardware.network.ir.Network` in Lava on CPU, many samples per Lava run.

``run_lava(network, x, precision="float"|"fixed")`` builds Lava processes from the IR (``Dense``,
``Conv``, ``DelayDense`` for residual shortcuts, ``LIF``/``LIFReset``), compiles once, streams every sample through, and returns a
:class:`LavaResult`: spike counts per layer per sample per neuron, per-step spike trains on
request, readout per step and logits in float units, predictions, timings. Processes are always
stopped in ``finally`` (also on Ctrl-C).

Streaming (feed-forward graphs). Sample ``n`` step ``k`` leaves the source at Lava step
``t = n T + k + 1``; a layer of delay ``d`` (:attr:`Layer.delay`: one step per ``Dense``/``Conv``)
integrates it at ``t + d``; a layer that merges a shallower source (a residual shortcut) receives
that source through a ``DelayDense`` holding it ``d - d_source - 1`` extra steps, so all its inputs
of sample step ``k`` arrive together (:attr:`neurokd.hardware.network.ir.Synapse.delay`). Each layer is a ``LIFReset`` with ``reset_interval = T`` and
``reset_offset = (d + 1) mod T``: Lava zeroes ``u`` and ``v`` before integrating at steps with
``time_step mod T == reset_offset`` (``lava/proc/lif/models.py``, pinned in
``tests/test_lava_backend.py``), i.e. exactly when the layer's first input of each sample arrives.
What a layer did before that (the previous sample, or pipeline filling) is wiped, and its input at
that step is its source's step 0, so samples run back to back with no gap: one run of
``N T + max_delay`` steps, in chunks of samples for the progress bar (one compile).

Recurrent graphs, and graphs with their own synaptic delays (a recurrent Dense or a DelayDense
carries the last spikes of one sample into the next, which no reset phase can cut): one Lava run of ``T + max_delay`` steps per sample, every ``u``, ``v`` and
connection buffer zeroed with ``Var.set`` in between, biases fed through windowed synapses
(:func:`~neurokd.hardware.network.ir.bias_routing`), still one compile.

I/O: Lava's ``io.sink.RingBuffer`` reads back through ``Var.get``, which sends one message per
value (measured ~16 us each, so 300 samples x 8 steps x 200 neurons take ~8 s), and
``io.source.RingBuffer`` needs a ``Var.set`` per chunk. neurokd's :class:`SampleSource` and
:class:`SpikeRecorder` processes (Python ``PyLoihiProcessModel``, like Lava's own) read inputs
from and write per-sample counts into memory-mapped files instead; ``io="ringbuffer"`` uses
Lava's ring buffers for a whole-run check (same spikes: tested). Recorders store neurons in
PyTorch (C, H, W) flat order, converted from Lava's (X, Y, C).

Readout: a layer without neuron (``none``) is the last ``Dense``'s ``a_out``, recorded per step; its
bias is added on the host; logits are the mean over the ``T`` steps (fixed point: divided by the
layer's scale). A spiking output's logits are its spike counts / ``T``. A non-spiking neuron output
(LI, CubaLI, I) is that layer's synaptic input filtered on the host with its ``du``/``dv`` in float64.
"""

from __future__ import annotations

import shutil
import tempfile
import time
from pathlib import Path

import numpy as np

import neurokd.hardware  # noqa: F401  (makes lava importable on Python 3.11)
from neurokd.errors import NeurokdError
from neurokd.hardware.network.ir import Layer, Network, bias_routing, host_readout, lava_order, lava_shape, to_lava
from neurokd.hardware.network.quantize import FORMAT, FixedNetwork, quantize
from neurokd.hardware.engines.result import LavaResult
from neurokd.hardware.lava_compat import require as _require_lava

_require_lava()   # one line (NeurokdError, exit 2) where Lava is not installed: the core on Python >= 3.12

from lava.magma.core.decorator import implements, requires, tag
from lava.magma.core.model.py.model import PyLoihiProcessModel
from lava.magma.core.model.py.ports import PyInPort, PyOutPort, PyRefPort
from lava.magma.core.model.py.type import LavaPyType
from lava.magma.core.process.ports.ports import InPort, OutPort, RefPort
from lava.magma.core.process.process import AbstractProcess
from lava.magma.core.resources import CPU
from lava.magma.core.run_conditions import RunSteps
from lava.magma.core.run_configs import Loihi2SimCfg
from lava.magma.core.sync.protocols.loihi_protocol import LoihiProtocol

PRECISIONS = {"float": "floating_pt", "fixed": "fixed_pt"}


# --------------------------------------------------------------------------------------------------
# neurokd's I/O processes
# --------------------------------------------------------------------------------------------------

def _window(time_step: int, p: dict):
    """Lava time step -> ``(sample, step)`` of the window this process sees, or None outside.

    ``g = time_step - 1 - offset``; sample ``g // period``, step ``g % period`` (valid below ``steps``).
    """
    g = time_step - 1 - p["offset"]
    if g < 0:
        return None
    n, k = divmod(g, p["period"])
    if n >= p["samples"] or k >= p["steps"]:
        return None
    return n, k


class SampleSource(AbstractProcess):
    """Sends sample ``n``'s frame ``k`` (from an ``.npy`` of shape ``(N, T_in, *shape)``, ``T_in`` 1 or T)
    inside each window, zeros outside; ``path=None`` sends ones (an always-on bias source)."""

    def __init__(self, *, shape, path, samples, steps, period, offset, name=None):
        super().__init__(shape=tuple(shape), path=path, samples=samples, steps=steps, period=period,
                         offset=offset, name=name)
        self.s_out = OutPort(shape=tuple(shape))


class _SourceModel(PyLoihiProcessModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._data = None
        self._zero = np.zeros(proc_params["shape"])
        self._one = np.ones(proc_params["shape"])

    def run_spk(self):
        p = self.proc_params
        w = _window(self.time_step, p)
        if w is None:
            self.s_out.send(self._zero)
            return
        if p["path"] is None:
            self.s_out.send(self._one)
            return
        if self._data is None:
            self._data = np.load(p["path"], mmap_mode="r")
        n, k = w
        frames = self._data.shape[1]
        self.s_out.send(np.asarray(self._data[n, k if frames > 1 else 0]))


@implements(proc=SampleSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySampleSourceFloat(_SourceModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, float)


@implements(proc=SampleSource, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySampleSourceFixed(_SourceModel):
    s_out: PyOutPort = LavaPyType(PyOutPort.VEC_DENSE, np.int32)


class SpikeRecorder(AbstractProcess):
    """Adds what arrives inside each window to ``counts[n]`` (``(N, size)`` .npy) and, with
    ``steps_path``, stores it at ``steps[n, k]`` (``(N, T, size)``); flat PyTorch order via ``perm``."""

    def __init__(self, *, shape, counts_path, steps_path, perm, samples, steps, period, offset, name=None):
        super().__init__(shape=tuple(shape), counts_path=counts_path, steps_path=steps_path, perm=perm,
                         samples=samples, steps=steps, period=period, offset=offset, name=name)
        self.a_in = InPort(shape=tuple(shape))


class _RecorderModel(PyLoihiProcessModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._counts = self._steps = None

    def run_spk(self):
        data = self.a_in.recv()
        p = self.proc_params
        w = _window(self.time_step, p)
        if w is None:
            return
        if self._counts is None:
            self._counts = np.load(p["counts_path"], mmap_mode="r+")
            if p["steps_path"] is not None:
                self._steps = np.load(p["steps_path"], mmap_mode="r+")
        n, k = w
        flat = data.reshape(-1)
        if p["perm"] is not None:
            flat = flat[p["perm"]]
        self._counts[n] += flat.astype(self._counts.dtype)
        if self._steps is not None:
            self._steps[n, k] = flat


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PySpikeRecorderFloat(_RecorderModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, float)


@implements(proc=SpikeRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PySpikeRecorderFixed(_RecorderModel):
    a_in: PyInPort = LavaPyType(PyInPort.VEC_DENSE, np.int32)


class VoltageRecorder(AbstractProcess):
    """Reads a LIF's ``v`` after every step (management phase) into ``(N, T, size)`` .npy."""

    def __init__(self, *, var, steps_path, perm, samples, steps, period, offset, name=None):
        shape = tuple(var.shape)
        super().__init__(shape=shape, steps_path=steps_path, perm=perm, samples=samples, steps=steps,
                         period=period, offset=offset, name=name)
        self.ref = RefPort(shape=shape)
        self.ref.connect_var(var)


class _VoltageModel(PyLoihiProcessModel):
    def __init__(self, proc_params):
        super().__init__(proc_params)
        self._steps = None

    def post_guard(self):
        return _window(self.time_step, self.proc_params) is not None

    def run_post_mgmt(self):
        p = self.proc_params
        n, k = _window(self.time_step, p)
        if self._steps is None:
            self._steps = np.load(p["steps_path"], mmap_mode="r+")
        flat = np.asarray(self.ref.read()).reshape(-1)
        self._steps[n, k] = flat[p["perm"]] if p["perm"] is not None else flat

    def run_spk(self):
        pass


@implements(proc=VoltageRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("floating_pt")
class PyVoltageRecorderFloat(_VoltageModel):
    ref: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, float)


@implements(proc=VoltageRecorder, protocol=LoihiProtocol)
@requires(CPU)
@tag("fixed_pt")
class PyVoltageRecorderFixed(_VoltageModel):
    ref: PyRefPort = LavaPyType(PyRefPort.VEC_DENSE, np.int32)


# --------------------------------------------------------------------------------------------------
# Building the Lava network
# --------------------------------------------------------------------------------------------------

class _Builder:
    """Creates and connects the Lava processes for one run configuration (module docstring)."""

    def __init__(self, network: Network, precision: str, fixed: FixedNetwork | None, samples: int, steps: int,
                 period: int, streaming: bool, workdir: Path, record_steps, record_voltage, frames: int,
                 io: str) -> None:
        from lava.proc.conv.models import PyConvModelFixed, PyConvModelFloat
        from lava.proc.dense.models import (PyDelayDenseModelBitAcc, PyDelayDenseModelFloat, PyDenseModelBitAcc,
                                            PyDenseModelFloat)
        from lava.proc.lif.models import (PyLifModelBitAcc, PyLifModelFloat, PyLifResetModelBitAcc,
                                          PyLifResetModelFloat)

        self.net, self.precision, self.fixed = network, precision, fixed
        self.samples, self.steps, self.period, self.streaming = samples, steps, period, streaming
        self.dir, self.io, self.frames = workdir, io, frames
        self.is_fixed = precision == "fixed"
        self.models = {
            "lif": PyLifModelBitAcc if self.is_fixed else PyLifModelFloat,
            "lifreset": PyLifResetModelBitAcc if self.is_fixed else PyLifResetModelFloat,
            "dense": PyDenseModelBitAcc if self.is_fixed else PyDenseModelFloat,
            "delaydense": PyDelayDenseModelBitAcc if self.is_fixed else PyDelayDenseModelFloat,
            "conv": PyConvModelFixed if self.is_fixed else PyConvModelFloat,
            "source": PySampleSourceFixed if self.is_fixed else PySampleSourceFloat,
            "recorder": PySpikeRecorderFixed if self.is_fixed else PySpikeRecorderFloat,
            "voltage": PyVoltageRecorderFixed if self.is_fixed else PyVoltageRecorderFloat,
        }
        self.model_map: dict = {}
        self.state_vars: list = []
        self.files: dict[str, dict[str, Path]] = {}
        self.ring_sinks: dict[str, object] = {}
        self.record_steps = record_steps
        self.record_voltage = record_voltage
        self.out_ports: dict[str, object] = {}
        self.neurons: dict[str, object] = {}
        self.bias_sources: dict[int, object] = {}
        self.root = None

    def _add(self, proc, model_key: str):
        self.model_map[proc] = self.models[model_key]
        return proc

    def _window_params(self, offset: int) -> dict:
        return {"samples": self.samples, "steps": self.steps, "period": self.period, "offset": offset}

    def build(self, x_lava: np.ndarray) -> None:
        net = self.net
        from lava.proc.io.source import RingBuffer as RingSource

        in_shape = lava_shape(net.input_shape)
        if self.io == "ringbuffer":
            timeline = np.zeros((*in_shape, self.period * self.samples + net.max_delay))
            for n in range(self.samples):
                for k in range(self.steps):
                    timeline[..., n * self.period + k] = x_lava[n, k if self.frames > 1 else 0]
            src = RingSource(data=timeline.astype(np.int32) if self.is_fixed else timeline)
        else:
            path = self.dir / "input.npy"
            np.save(path, x_lava)
            src = self._add(SampleSource(shape=in_shape, path=str(path), **self._window_params(0)), "source")
        self.root = src
        self.out_ports[net.input_name] = src.s_out
        for layer in net.layers:
            self._layer(layer)

    def _bias_source(self, offset: int):
        if offset not in self.bias_sources:
            self.bias_sources[offset] = self._add(
                SampleSource(shape=(1,), path=None, **self._window_params(offset)), "source")
        return self.bias_sources[offset]

    def _connection(self, syn, fixed_syn):
        """A Lava Dense, DelayDense (``syn.delay > 1``) or Conv for ``syn`` (float weights, or the
        FixedSynapse's integers)."""
        from lava.proc.conv.process import Conv
        from lava.proc.dense.process import DelayDense, Dense

        graded = syn.source == self.net.input_name
        if self.is_fixed:
            ours = None if fixed_syn.delays is None or not np.any(fixed_syn.delays) else fixed_syn.delays
            if (ours is None) != (syn.delays is None) or (ours is not None and not np.array_equal(ours, syn.delays)):
                raise NeurokdError(
                    f"synapse {syn.name!r}: the fixed-point network's per-synapse delays differ from the network's; "
                    "quantise this network (neurokd.hardware.network.quantize) instead of editing its delays")
            weight, wexp = fixed_syn.lava_weight(syn), fixed_syn.lava_weight_exp
            bits = fixed_syn.num_message_bits
        else:
            weight, wexp, bits = syn.lava_weight(), 0, (24 if graded else 0)
        if syn.kind == "dense":
            kwargs = {"weights": weight, "num_message_bits": bits, "name": f"{syn.target}<-{syn.name}"}
            if self.is_fixed:
                kwargs.update(weight_exp=int(wexp), num_weight_bits=int(fixed_syn.num_weight_bits))
            if syn.delay > 1 or syn.delays is not None:    # a shortcut waits for the deeper path; the graph's delays
                delays = np.full(np.shape(weight), syn.delay - 1, dtype=int)    # lava checks dtype == int
                if syn.delays is not None:
                    delays = delays + syn.lava_weight(syn.delays)                 # in Lava's neuron order
                proc = self._add(DelayDense(delays=delays, **kwargs), "delaydense")
            else:
                proc = self._add(Dense(**kwargs), "dense")
            self.state_vars.append((proc.a_buff, 0))
        else:
            proc = self._add(Conv(weight=weight, weight_exp=0, input_shape=syn.lava_in_shape,
                                  padding=syn.lava_padding, stride=syn.lava_stride, dilation=syn.lava_dilation,
                                  groups=syn.groups, num_message_bits=bits, name=f"{syn.target}<-{syn.name}"),
                             "conv")
            self.state_vars.append((proc.a_buf, 0))
        return proc

    @staticmethod
    def _plug(out_port, in_port) -> None:
        """Connect, reshaping (C-order over Lava's layout) when the shapes differ."""
        if tuple(out_port.shape) != tuple(in_port.shape):
            out_port = out_port.reshape(tuple(in_port.shape))
        out_port.connect(in_port)

    def _stem(self, layer: Layer) -> str:
        return f"{self.net.names.index(layer.name):03d}"           # file names independent of node names

    def wants_steps(self, name: str) -> bool:
        return self.record_steps is True or bool(self.record_steps and name in self.record_steps)

    def _recorder(self, layer: Layer, port) -> None:
        """Spike counts per sample (and per-step trains on request) of a spiking layer."""
        shape = tuple(port.shape)
        perm = np.argsort(lava_order(layer.shape)) if len(layer.shape) > 1 else None   # lava flat -> torch flat
        if self.io == "ringbuffer":
            from lava.proc.io.sink import RingBuffer as RingSink

            sink = RingSink(shape=shape, buffer=self.period * self.samples + self.net.max_delay)
            port.connect(sink.a_in)
            self.ring_sinks[f"{layer.name}:spikes"] = (sink, perm)
            return
        files = {"counts": self.dir / f"{self._stem(layer)}.spikes.counts.npy"}
        np.lib.format.open_memmap(files["counts"], mode="w+", dtype=np.int32, shape=(self.samples, layer.size))
        if self.wants_steps(layer.name):
            files["steps"] = self.dir / f"{self._stem(layer)}.spikes.steps.npy"
            np.lib.format.open_memmap(files["steps"], mode="w+", dtype=np.uint8,
                                      shape=(self.samples, self.steps, layer.size))
        rec = SpikeRecorder(shape=shape, counts_path=str(files["counts"]),
                            steps_path=str(files["steps"]) if "steps" in files else None, perm=perm,
                            name=f"record:{layer.name}", **self._window_params(layer.delay))
        self._add(rec, "recorder")
        port.connect(rec.a_in)
        self.files[f"{layer.name}:spikes"] = files

    def _layer(self, layer: Layer) -> None:
        from lava.proc.lif.process import LIF, LIFReset

        net, n = self.net, layer.neuron
        fl = self.fixed.layers[layer.name] if self.is_fixed else None
        lif_bias, syn_bias = bias_routing(net, layer)
        has_lif = n.spiking
        target_port = None
        if has_lif:
            lshape = layer.lava_shape
            if self.is_fixed:
                params = dict(du=fl.neuron.du, dv=fl.neuron.dv, vth=fl.neuron.vth,
                              bias_mant=to_lava(fl.neuron.bias_mant.reshape(layer.shape), layer.shape).astype(np.int32),
                              bias_exp=np.full(lshape, fl.neuron.bias_exp, dtype=np.int32))
            else:
                params = dict(du=float(n.du), dv=float(n.dv), vth=float(n.vth),
                              bias_mant=to_lava(lif_bias.reshape(layer.shape), layer.shape).astype(np.float64),
                              bias_exp=0)
            if self.streaming:
                lif = LIFReset(shape=lshape, reset_interval=self.steps,
                               reset_offset=(layer.delay + 1) % self.steps, name=layer.name, **params)
                self._add(lif, "lifreset")
            else:
                lif = LIF(shape=lshape, name=layer.name, **params)
                self._add(lif, "lif")
            self.state_vars += [(lif.u, 0), (lif.v, 0)]
            self.neurons[layer.name] = lif
            self.out_ports[layer.name] = lif.s_out
            target_port = lif.a_in
        conns = []
        for syn in layer.synapses:
            proc = self._connection(syn, fl.synapses[syn.name] if fl else None)
            conns.append((syn, proc))
        if np.any(syn_bias != 0):
            from lava.proc.dense.process import Dense

            src = self._bias_source(layer.delay - 1)
            col = syn_bias.reshape(layer.shape)
            col = to_lava(col, layer.shape).reshape(-1, 1)
            if self.is_fixed:
                bs = fl.bias_synapse
                if bs is None:
                    raise NeurokdError(f"layer {layer.name!r}: its bias must enter through a synapse here (a network with "
                                       "recurrence or delays runs one sample at a time) and has no exact 8-bit form")
                w = to_lava(bs.mant.reshape(layer.shape), layer.shape).reshape(-1, 1).astype(np.int32)
                dense = Dense(weights=w, weight_exp=int(bs.weight_exp), num_weight_bits=8, name=f"{layer.name}<-bias")
            else:
                dense = Dense(weights=col.astype(np.float64), name=f"{layer.name}<-bias")
            self._add(dense, "dense")
            self.state_vars.append((dense.a_buff, 0))
            src.s_out.connect(dense.s_in)
            conns.append((None, dense))
        if target_port is None:                     # readout: record the summed synaptic input
            self._readout_port(layer, conns)
        else:
            for _, proc in conns:
                self._plug(proc.a_out, target_port)
        for syn, proc in conns:
            if syn is None:
                continue
            self._plug(self.out_ports[syn.source], proc.s_in)
        if has_lif:
            self._recorder(layer, self.neurons[layer.name].s_out)
            if layer.name in self.record_voltage:
                files = {"steps": self.dir / f"{self._stem(layer)}.v.steps.npy"}
                np.lib.format.open_memmap(files["steps"], mode="w+", dtype=np.float64,
                                          shape=(self.samples, self.steps, layer.size))
                perm = np.argsort(lava_order(layer.shape)) if len(layer.shape) > 1 else None
                vrec = VoltageRecorder(var=self.neurons[layer.name].v, steps_path=str(files["steps"]), perm=perm,
                                       name=f"voltage:{layer.name}", **self._window_params(layer.delay))
                self._add(vrec, "voltage")
                self.files[f"{layer.name}:v"] = files

    def _readout_port(self, layer: Layer, conns) -> None:
        """All connections into a readout feed one recorder (its InPort sums them), shaped like the layer."""
        shape = layer.lava_shape
        perm = np.argsort(lava_order(layer.shape)) if len(layer.shape) > 1 else None
        if self.io == "ringbuffer":
            from lava.proc.io.sink import RingBuffer as RingSink

            sink = RingSink(shape=shape, buffer=self.period * self.samples + self.net.max_delay)
            for _, proc in conns:
                self._plug(proc.a_out, sink.a_in)
            self.ring_sinks[f"{layer.name}:input"] = (sink, perm)
            return
        stem = self._stem(layer)
        files = {"counts": self.dir / f"{stem}.input.counts.npy", "steps": self.dir / f"{stem}.input.steps.npy"}
        np.lib.format.open_memmap(files["counts"], mode="w+", dtype=np.float64, shape=(self.samples, layer.size))
        np.lib.format.open_memmap(files["steps"], mode="w+", dtype=np.float64,
                                  shape=(self.samples, self.steps, layer.size))
        rec = SpikeRecorder(shape=shape, counts_path=str(files["counts"]), steps_path=str(files["steps"]), perm=perm,
                            name=f"record:{layer.name}", **self._window_params(layer.delay))
        self._add(rec, "recorder")
        for _, proc in conns:
            self._plug(proc.a_out, rec.a_in)
        self.files[f"{layer.name}:input"] = files


# --------------------------------------------------------------------------------------------------
# Running
# --------------------------------------------------------------------------------------------------

def run_lava(
    network: Network,
    x: np.ndarray,
    *,
    precision: str = "float",
    timesteps: int | None = None,
    fixed: FixedNetwork | None = None,
    input_bits: int = 8,
    record_steps: bool | list[str] = False,
    record_voltage: tuple[str, ...] | list[str] = (),
    chunk_samples: int = 64,
    progress: bool = False,
    io: str = "memmap",
    on_chunk=None,
) -> LavaResult:
    """Run ``x`` through ``network`` in Lava (module docstring) and return a :class:`LavaResult`.

    ``x``: ``(N, *input_shape)`` (direct encoding over ``timesteps``, default the graph's) or
    ``(N, T, *input_shape)``. ``precision``: ``float`` (Lava ``floating_pt``) or ``fixed``
    (``fixed_pt``; ``fixed`` defaults to :func:`~neurokd.hardware.network.quantize.quantize` of ``network``
    with ``input_bits``, its input range taken from ``x``). ``record_steps``: True or layer names
    whose per-step spikes to keep. ``record_voltage``: layers whose membrane to record.
    ``chunk_samples``: samples per Lava ``run`` call (progress granularity; one compile).
    ``io``: ``memmap`` (neurokd's recorders) or ``ringbuffer`` (Lava's, whole run at once).
    ``on_chunk(done_samples)``: called after each chunk (tests use it to interrupt).
    """
    if precision not in PRECISIONS:
        raise NeurokdError(f"precision must be one of {', '.join(PRECISIONS)}, got {precision!r}")
    if io not in ("memmap", "ringbuffer"):
        raise NeurokdError(f"io must be 'memmap' or 'ringbuffer', got {io!r}")
    network.check_simulated("run")
    seq = np.asarray(x, dtype=np.float64)
    k = len(network.input_shape)
    if seq.ndim == k + 1 and tuple(seq.shape[1:]) == network.input_shape:
        steps = int(timesteps or network.timesteps or 0)
        if steps < 1:
            raise NeurokdError("inputs are one frame per sample: pass timesteps (the graph's metadata states none)")
        frames = seq[:, None]
    else:
        frames = network.input_sequence(seq, timesteps)
        steps = frames.shape[1]
    if not np.all(np.isfinite(frames)):
        raise NeurokdError("the input holds NaN or inf")
    samples = frames.shape[0]
    if samples < 1:
        raise NeurokdError("no samples to run")
    unknown = [v for v in list(record_voltage) + (list(record_steps) if isinstance(record_steps, (list, tuple)) else [])
               if v not in network.names]
    if unknown:
        raise NeurokdError(f"cannot record unknown layer(s) {unknown}; layers: {', '.join(network.names)}")
    if precision == "fixed":
        fixed = fixed or quantize(network, input_sample=frames, input_bits=input_bits)
        data = fixed.quantize_input(frames)
    else:
        fixed = None
        data = frames
    x_lava = to_lava(data, network.input_shape)
    streaming = not network.per_sample
    if io == "ringbuffer" and not streaming:
        raise NeurokdError("io='ringbuffer' runs all samples in one Lava run; recurrent graphs need one run per sample")
    period = steps if streaming else steps + network.max_delay
    chunk_samples = max(1, int(chunk_samples))

    t0 = time.perf_counter()
    workdir = Path(tempfile.mkdtemp(prefix="neurokd-lava-"))
    builder = None
    try:
        try:
            builder = _Builder(network, precision, fixed, samples, steps, period, streaming, workdir, record_steps,
                               tuple(record_voltage), frames.shape[1], io)
            builder.build(x_lava)
            cfg = Loihi2SimCfg(select_tag=PRECISIONS[precision], exception_proc_model_map=builder.model_map)
            builder.root.create_runtime(run_cfg=cfg)
            build_seconds = time.perf_counter() - t0
            t1 = time.perf_counter()
            _run(builder, cfg, network, samples, steps, period, streaming, io, chunk_samples, progress, on_chunk)
            run_seconds = time.perf_counter() - t1
            ring = {k: (sink.data.get(), perm) for k, (sink, perm) in builder.ring_sinks.items()}
        finally:
            if builder is not None and builder.root is not None:
                builder.root.stop()                 # every Lava worker process ends here, also on Ctrl-C
        result = _collect(network, builder, ring, fixed, precision, samples, steps, period, streaming)
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
    result.build_seconds = build_seconds
    result.run_seconds = run_seconds
    result.lava_steps = (samples * steps + network.max_delay) if streaming else samples * period
    return result


def _run(builder: _Builder, cfg, network: Network, samples: int, steps: int, period: int, streaming: bool, io: str,
         chunk_samples: int, progress: bool, on_chunk) -> None:
    """Advance the compiled network over every sample (streamed in chunks, or one run per sample)."""
    root = builder.root
    bar = _progress(samples, progress, f"Lava {builder.precision}")
    try:
        if io == "ringbuffer":
            root.run(condition=RunSteps(num_steps=period * samples + network.max_delay), run_cfg=cfg)
            bar.update(samples)
        elif streaming:
            total = samples * steps + network.max_delay
            done, reported = 0, 0
            while done < total:
                n = min(chunk_samples * steps, total - done)
                if total - done - n <= network.max_delay:
                    n = total - done                # the last chunk also drains the pipeline
                root.run(condition=RunSteps(num_steps=n), run_cfg=cfg)
                done += n
                finished = min(samples, max(0, (done - network.max_delay) // steps))
                bar.update(finished - reported)
                reported = finished
                if on_chunk is not None:
                    on_chunk(finished)
        else:
            for i in range(samples):
                if i:
                    for var, value in builder.state_vars:
                        var.set(np.full(var.shape, value))
                root.run(condition=RunSteps(num_steps=period), run_cfg=cfg)
                bar.update(1)
                if on_chunk is not None:
                    on_chunk(i + 1)
    finally:
        bar.close()


def _progress(total: int, enabled: bool, desc: str):
    from tqdm.auto import tqdm

    return tqdm(total=total, disable=not enabled, desc=desc, unit="sample", leave=False)


def _ring_windows(timeline: np.ndarray, perm, offset: int, samples: int, steps: int, period: int) -> np.ndarray:
    """A ring-buffer sink's ``(*shape, time)`` -> ``(N, T, size)`` in PyTorch order."""
    flat = timeline.reshape(-1, timeline.shape[-1])
    out = np.zeros((samples, steps, flat.shape[0]))
    for n in range(samples):
        for k in range(steps):
            out[n, k] = flat[:, n * period + k + offset]
    return out[..., perm] if perm is not None else out


def _collect(network: Network, builder: _Builder, ring: dict, fixed, precision, samples, steps, period,
             streaming) -> LavaResult:
    counts: dict[str, np.ndarray] = {}
    spikes: dict[str, np.ndarray] = {}
    voltages: dict[str, np.ndarray] = {}
    readout: dict[str, np.ndarray] = {}
    for layer in network.layers:
        if layer.neuron.spiking:
            key = f"{layer.name}:spikes"
            if key in ring:
                trains = _ring_windows(*ring[key], layer.delay, samples, steps, period)
                counts[layer.name] = trains.sum(axis=1).astype(np.int32)
                if builder.wants_steps(layer.name):
                    spikes[layer.name] = trains.astype(np.uint8)
            else:
                files = builder.files[key]
                counts[layer.name] = np.array(np.load(files["counts"]))
                if "steps" in files:
                    spikes[layer.name] = np.array(np.load(files["steps"]))
            if f"{layer.name}:v" in builder.files:
                v = np.array(np.load(builder.files[f"{layer.name}:v"]["steps"]))
                if fixed is not None:
                    v = v / (fixed.layers[layer.name].scale * 2 ** FORMAT["act_shift"])
                voltages[layer.name] = v
            if layer.is_output:
                readout[layer.name] = (spikes[layer.name].astype(np.float64) if layer.name in spikes else None)
        else:
            key = f"{layer.name}:input"
            if key in ring:
                a = _ring_windows(*ring[key], layer.delay, samples, steps, period)
            else:
                a = np.array(np.load(builder.files[key]["steps"]))
            if fixed is not None:
                a = fixed.to_float(layer.name, a)
            readout[layer.name] = host_readout(layer, a)
    first = network.readout
    out_layer = network.layer(first)
    if out_layer.neuron.spiking:
        logits = counts[first] / steps
        readout = {k: v for k, v in readout.items() if v is not None}
    else:
        logits = readout[first].mean(axis=1)
        readout = {k: v for k, v in readout.items() if v is not None}
    return LavaResult(
        precision=precision, samples=samples, timesteps=steps, mode="stream" if streaming else "per-sample",
        counts=counts, readout=readout, logits=logits, predictions=np.argmax(logits, axis=1),
        spikes=spikes or None, voltages=voltages or None, delays={l.name: l.delay for l in network.layers},
        fixed=fixed,
    )
