"""A user's snnTorch / SpikingJelly student as a NIR graph: every neuron with its library's exact equations, or refused in one line.

``user_student_to_nir(student, dt)`` takes a :class:`neurokd.models.user.UserStudent`, runs one
time step of one sample with forward hooks to find its layers in the order they are called, checks
that they form a chain (each layer's input is the previous layer's output, spikes for a spiking
layer), and writes them with the nodes of :mod:`neurokd.exporters.to_nir` (Linear, Conv, pooling,
Flatten; BatchNorm folded) plus one neuron node per spiking module. Names are the modules'
qualified names in the user's network (``.`` written ``_``).

Each neuron in the discrete form neurokd's readers use (:mod:`neurokd.exporters.from_nir`, forward
Euler at ``dt``; ``I[t]`` the layer's input at step ``t``; Lava's LIF resets ``v`` to 0 in the step
it fires, ``u`` is never reset)::

    snnTorch Leaky(beta, threshold, reset_mechanism="zero")   v[t] = beta (1 - s[t-1]) v[t-1] + I[t]
        -> LIF(tau = dt/(1-beta), r = tau/dt, v_leak = 0, v_threshold = threshold, v_reset = 0);  beta = 1: IF(r = 1)
        Both reset_delay settings are Lava's same-step reset: with reset_delay=True the zeroing of
        v[t-1] at step t (reset = H(v[t-1] - threshold) = s[t-1]) comes before its decay, so v[t] is
        the same; with reset_delay=False v is zeroed in the step itself.
    snnTorch Synaptic(alpha, beta, reset_mechanism="zero", reset_delay=False)
        syn[t] = alpha syn[t-1] + I[t];  v[t] = beta v[t-1] + syn[t]
        -> CubaLIF(tau_syn = dt/(1-alpha), w_in = tau_syn/dt, tau_mem = dt/(1-beta), r = tau_mem/dt)
    snnTorch RLeaky / RSynaptic (reset_delay=False, all_to_all Linear or one-to-one V)
        as Leaky / Synaptic with I[t] + W_rec s[t-1] + b_rec: a Linear/Affine node ``<name>_rec``
        from the neuron back to itself (NIR's recurrent edge is one step late, as RLeaky's spk)
    SpikingJelly LIFNode(tau, decay_input, v_threshold, v_reset=0.0)
        decay_input=True:  v[t] = v[t-1] + (I[t] - v[t-1]) / tau  -> LIF(tau = dt tau, r = 1)
        decay_input=False: v[t] = v[t-1] - v[t-1] / tau + I[t]    -> LIF(tau = dt tau, r = tau)
    SpikingJelly ParametricLIFNode: LIFNode with 1/tau = sigmoid(w) (one learnt value per layer)
    SpikingJelly IFNode(v_threshold, v_reset=0.0)                v[t] = v[t-1] + I[t] -> IF(r = 1)

Refused, each in one :class:`NeurokdError` line naming the module, the setting and what to train
instead (never silently changed): snnTorch ``reset_mechanism="subtract"`` or ``"none"`` (NIR
neurons reset to ``v_reset``; Loihi's LIF to zero), ``Synaptic``/``RLeaky``/``RSynaptic`` with
``reset_delay=True`` (their zero reset then clears the whole next step, its input included, which
Lava's LIF does not), ``Lapicque``, per-neuron ``beta``/``alpha``/``threshold`` (Lava has one value
per layer), graded spikes, ``state_quant``, ``inhibition``; SpikingJelly soft reset
(``v_reset=None``) and ``v_reset != 0``; any other neuron class; a membrane readout of a spiking
output layer (the graph's output is its spikes).

Spike comparison: snnTorch fires on ``v - threshold > 0`` like NIR and Lava; SpikingJelly's
Heaviside fires on ``v - v_threshold >= 0``. For a float32 membrane ``v >= theta`` is ``v > theta'``
with ``theta'`` the float32 just below ``theta``, so SpikingJelly nodes are written with
``v_threshold = theta'`` (``metadata["neurokd_fires_on"]`` says so): a membrane exactly at threshold
(common with binary spikes and weights such as 0.25) fires in the graph as in SpikingJelly.
"""

from __future__ import annotations

import math

import nir
import numpy as np
import torch
from torch import nn

from neurokd.errors import NeurokdError
from neurokd.exporters import to_nir
from neurokd.models import peers


def _name(qualified: str) -> str:
    n = qualified.replace(".", "_")
    return f"{n}_" if n in ("input", "output") else n


def _scalar(module: nn.Module, attr: str, label: str, what: str, instead: str) -> float:
    value = getattr(module, attr)
    t = torch.as_tensor(value).detach().double().reshape(-1)
    if t.numel() == 0:
        raise NeurokdError(f"{label}: {attr} is empty")
    if t.numel() > 1 and not bool(torch.all(t == t[0])):
        raise NeurokdError(f"{label}: one {what} per neuron ({t.numel()} values) but Lava's LIF has one {what} per layer; "
                           f"{instead}")
    return float(t[0])


def _cuba_node(alpha: float, beta: float, theta: float, shape, dt: float, label: str) -> nir.NIRNode:
    """``i = alpha i + I; v = beta v + i`` with a reset of ``v`` to zero, as NIR CubaLIF at step ``dt``."""
    if not (0.0 <= alpha < 1.0 and 0.0 <= beta < 1.0):
        raise NeurokdError(f"{label}: alpha {alpha} and beta {beta} must be in [0, 1) for a NIR CubaLIF "
                           "(a time constant of infinity has no NIR form)")
    if not theta > 0:
        raise NeurokdError(f"{label}: threshold {theta} must be > 0 for Loihi's LIF")
    full = lambda v: np.full(tuple(shape), v, dtype=np.float64)  # noqa: E731
    tau_syn, tau_mem = dt / (1.0 - alpha), dt / (1.0 - beta)
    return nir.CubaLIF(tau_syn=full(tau_syn), tau_mem=full(tau_mem), r=full(tau_mem / dt), v_leak=full(0.0),
                       v_threshold=full(theta), v_reset=full(0.0), w_in=full(tau_syn / dt), metadata={"dt": float(dt)})


def _snntorch_nodes(name: str, m: nn.Module, shape, dt: float) -> dict[str, nir.NIRNode]:
    """``{node name: node}`` of one snnTorch neuron (its ``<name>_rec`` recurrent weight too)."""
    kind = type(m).__name__
    label = f"snnTorch {kind} {name!r}"
    known = ("Leaky", "Synaptic", "RLeaky", "RSynaptic")
    if kind == "Lapicque":
        raise NeurokdError(f"{label}: Lapicque's reset always acts one step late (reset_mechanism='zero' clears the "
                           "whole next step, its input included; 'subtract' has no NIR form), unlike Lava's same-step "
                           "reset to zero; train it with snn.Leaky(reset_mechanism='zero')")
    if kind not in known:
        raise NeurokdError(f"{label}: neurokd exports snnTorch {', '.join(known)} only (no exact NIR/Lava form of "
                           f"{kind} here); train it with snn.Leaky")
    mech = getattr(m, "_reset_mechanism", "subtract")
    if mech != "zero":
        raise NeurokdError(f"{label}: reset_mechanism={mech!r} has no NIR or Lava form (NIR neurons reset to v_reset, "
                           "Loihi's LIF to zero); train it with reset_mechanism='zero'")
    if kind != "Leaky" and getattr(m, "reset_delay", True):
        raise NeurokdError(f"{label}: reset_delay=True makes its zero reset clear the whole step after a spike (that "
                           "step's input included), which Lava's same-step reset does not; train it with reset_delay=False")
    if getattr(m, "state_quant", False):
        raise NeurokdError(f"{label}: state_quant has no NIR form; train without it (quantisation is neurokd's, at export)")
    if getattr(m, "inhibition", False):
        raise NeurokdError(f"{label}: inhibition (winner-take-all) has no NIR or Lava form; train without it")
    if _scalar(m, "graded_spikes_factor", label, "spike value", "train with graded_spikes_factor=1") != 1.0:
        raise NeurokdError(f"{label}: graded_spikes_factor != 1 (graded spikes) has no NIR LIF form; train with 1.0")
    per_layer = "train it with one scalar (learn_beta/learn_threshold keep it scalar)"
    beta = min(max(_scalar(m, "beta", label, "beta", per_layer), 0.0), 1.0)      # snnTorch clamps beta to [0, 1]
    theta = _scalar(m, "threshold", label, "threshold", per_layer)
    if kind in ("Leaky", "RLeaky"):
        nodes = {name: to_nir.lif_node(beta, theta, 1.0, shape, dt, label)}
    else:
        alpha = min(max(_scalar(m, "alpha", label, "alpha", per_layer), 0.0), 1.0)
        nodes = {name: _cuba_node(alpha, beta, theta, shape, dt, label)}
    if kind in ("RLeaky", "RSynaptic"):
        rec = m.recurrent
        if isinstance(rec, nn.Linear):
            weight = to_nir._np32(rec.weight)
            nodes[f"{name}_rec"] = (nir.Affine(weight=weight, bias=to_nir._np32(rec.bias)) if rec.bias is not None
                                    else nir.Linear(weight=weight))
        elif type(rec).__name__ == "RecurrentOneToOne":
            n = int(np.prod(shape))
            v = torch.as_tensor(rec.V).detach().to(torch.float32).reshape(-1).numpy()
            nodes[f"{name}_rec"] = nir.Linear(weight=np.diag(np.broadcast_to(v, (n,))).astype(np.float32))
        else:
            raise NeurokdError(f"{label}: a {type(rec).__name__} recurrence has no NIR export in neurokd; train it "
                               "with all_to_all=True and linear_features (a Linear recurrence)")
    return nodes


def _spikingjelly_nodes(name: str, m: nn.Module, shape, dt: float) -> dict[str, nir.NIRNode]:
    kind = type(m).__name__
    label = f"SpikingJelly {kind} {name!r}"
    known = ("LIFNode", "IFNode", "ParametricLIFNode")
    if kind not in known:
        raise NeurokdError(f"{label}: neurokd exports SpikingJelly {', '.join(known)} only; train it with neuron.LIFNode")
    if m.v_reset is None:
        raise NeurokdError(f"{label}: v_reset=None (soft reset: v - v_threshold after a spike) has no NIR or Lava form; "
                           "train it with v_reset=0.0 (hard reset)")
    if float(m.v_reset) != 0.0:
        raise NeurokdError(f"{label}: v_reset={m.v_reset} but Loihi's LIF resets to 0; train it with v_reset=0.0")
    if torch.as_tensor(m.v_threshold).numel() != 1:
        raise NeurokdError(f"{label}: one v_threshold per neuron; Lava's LIF has one per layer; train a scalar")
    # SpikingJelly fires on v >= v_threshold, NIR and Lava on v > v_threshold: for float32 v, v >= theta is
    # v > (the float32 just below theta), so that value is written and a membrane exactly at threshold fires
    theta32 = np.float32(float(torch.as_tensor(m.v_threshold).reshape(-1)[0]))
    theta = float(np.nextafter(theta32, np.float32(0.0)))
    meta = {"neurokd_fires_on": f"v >= {float(theta32)!r} (SpikingJelly), written as v > the float32 below it"}
    if kind == "IFNode":
        return {name: to_nir.lif_node(1.0, theta, 1.0, shape, dt, label, meta)}
    if kind == "LIFNode":
        tau = float(m.tau)
        if not tau >= 1.0:
            raise NeurokdError(f"{label}: tau={tau} < 1 gives a decay outside [0, 1]")
        k = 1.0 / tau
    else:
        w = m.w.detach().reshape(-1)
        if w.numel() != 1:
            raise NeurokdError(f"{label}: one learnt tau per neuron; Lava's LIF has one per layer; train a scalar w")
        k = float(torch.sigmoid(w.float())[0])            # 1/tau = sigmoid(w), the float32 value its forward uses
    gain = k if m.decay_input else 1.0
    return {name: to_nir.lif_node(1.0 - k, theta, gain, shape, dt, label, meta)}


def neuron_nodes(name: str, module: nn.Module, shape, dt: float) -> dict[str, nir.NIRNode]:
    """The NIR node(s) of one spiking module of a peer library (module docstring), or a one-line refusal."""
    lib = peers.library_of(module)
    if lib == "snntorch":
        return _snntorch_nodes(name, module, shape, dt)
    if lib == "spikingjelly":
        return _spikingjelly_nodes(name, module, shape, dt)
    raise NeurokdError(f"layer {name!r}: {type(module).__name__} is not a snnTorch or SpikingJelly neuron")


# --------------------------------------------------------------------------------------------------
# The chain of layers, found by running one step
# --------------------------------------------------------------------------------------------------

def trace_layers(student) -> list[tuple[str, nn.Module, tuple[int, ...], tuple[int, ...]]]:
    """``[(qualified name, module, input shape, output shape)]`` of the layers one step calls, in order.

    Layers are the spiking modules and the leaf modules outside them. Shapes are one sample's.
    Raises :class:`NeurokdError` when the calls are not a chain (a layer whose input is not the
    previous layer's output: an addition, a concatenation, a functional op in ``forward``).
    """
    net = student.net
    units: dict[nn.Module, str] = {}
    inside: list[str] = []
    for qname, module in net.named_modules():
        if any(qname.startswith(p + ".") for p in inside) or module is net and peers.library_of(module) is None:
            continue
        if peers.is_spiking(module):
            units[module] = qname
            inside.append(qname)
        elif not list(module.children()):
            units[module] = qname
    calls: list[tuple[str, nn.Module, object, object]] = []
    hooks = [m.register_forward_hook(lambda m, args, out: calls.append((units[m], m, args[0] if args else None, out)))
             for m in units]
    lead = 2 if student.sequence else 1
    x = torch.rand(*([1] * lead), *student.input_shape)
    was = net.training
    net.eval()
    try:
        with torch.no_grad():
            peers.reset_states(net)
            out = net(x)
    finally:
        for h in hooks:
            h.remove()
        net.train(was)
        peers.reset_states(net)
    layers = []
    prev = x
    for qname, m, inp, o in calls:
        spiking = peers.is_spiking(m)
        if inp is not prev:
            raise NeurokdError(f"layer {qname!r} ({type(m).__name__}) does not take the output of the layer before it; "
                               "neurokd exports a student whose forward is a chain of layers (no additions, "
                               "concatenations or functional ops between them)")
        first = peers.spikes_of(o) if spiking else o
        if any(q == qname for q, *_ in layers):
            raise NeurokdError(f"layer {qname!r} is called twice in one step; neurokd exports a chain of distinct layers")
        layers.append((qname, m, tuple(int(d) for d in inp.shape[lead:]), tuple(int(d) for d in first.shape[lead:])))
        prev = first
    final = peers.spikes_of(out) if isinstance(out, (tuple, list)) else out
    if not layers or final is not prev:
        raise NeurokdError("the student's output is not its last layer's; neurokd exports a chain of layers")
    return layers


def user_student_to_nir(student, dt: float = 1e-4) -> nir.NIRGraph:
    """The user's student as a type-checked NIR graph (mapping and refusals: module docstring)."""
    if student.resolved_readout == "membrane" or student.readout == "membrane":
        raise NeurokdError("readout membrane: the NIR graph's output is the output layer's spikes (Lava reads spikes, "
                           "not a spiking layer's membrane); train with readout spikes or a non-spiking nn.Linear readout")
    if not (isinstance(dt, (int, float)) and math.isfinite(dt) and dt > 0):
        raise NeurokdError(f"dt must be a finite number > 0 (seconds), got {dt!r}")
    dt = float(dt)
    layers = trace_layers(student)
    nodes: dict[str, nir.NIRNode] = {"input": nir.Input(input_type={"input": np.array(student.input_shape)})}
    edges: list[tuple[str, str]] = []
    last = "input"
    pending = None             # (name, module, in_shape) of a Linear/Conv a BatchNorm may still fold into

    def flush():
        nonlocal pending, last
        if pending is None:
            return
        pname, pmod, pshape = pending
        node = to_nir._layer_node(pname, pmod, pshape, dt)
        pending = None
        if node is not None:
            nodes[pname] = node
            edges.append((last, pname))
            last = pname

    for qname, m, in_shape, out_shape in layers:
        name = _name(qname)
        if isinstance(m, nn.modules.batchnorm._BatchNorm):
            targets = next((t for bn, t in to_nir._FOLD_TARGET.items() if isinstance(m, bn)), ())   # SJ subclasses
            if pending is None or not isinstance(pending[1], targets):
                raise NeurokdError(f"layer {qname!r}: {type(m).__name__} must directly follow a "
                                   f"{' or '.join(t.__name__ for t in targets) or 'Linear/Conv'} to be folded for export")
            pending = (pending[0], to_nir._folded_layer(pending[1], m.eval(), pending[0], qname), pending[2])
            continue
        flush()
        if peers.is_spiking(m):
            group = neuron_nodes(name, m, out_shape, dt)
            nodes.update(group)
            edges.append((last, name))
            if f"{name}_rec" in group:
                edges += [(name, f"{name}_rec"), (f"{name}_rec", name)]
            last = name
        else:
            pending = (name, m, in_shape)
    flush()
    if last == "input":
        raise NeurokdError("the student has no exportable layer")
    out_shape = layers[-1][3]
    nodes["output"] = nir.Output(output_type={"output": np.array(out_shape)})
    edges.append((last, "output"))
    readout = student.resolved_readout or "mean"
    meta = {"dt": dt, "timesteps": int(student.timesteps), "encoding": to_nir.ENCODING,
            "readout": "spike count over time steps" if readout == "spikes" else to_nir.READOUT,
            "neuron_contract": to_nir.NEURON_CONTRACT, "producer": f"neurokd {to_nir._version()}",
            "student_library": student.library, "student_source": student.source}
    try:
        return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta, type_check=True)
    except (ValueError, AssertionError) as exc:
        raise NeurokdError(f"the exported NIR graph fails nir's type check: {exc}") from exc


__all__ = ["neuron_nodes", "trace_layers", "user_student_to_nir"]
