"""Teacher ANN and one student time step as ONNX, checked with ``onnx.checker`` and onnxruntime.

The teacher is an ordinary ReLU network: its ONNX graph runs on any accelerator and is the
baseline a student's energy is compared with (MACs from its layers, 45 nm model).

The student is exported as ONE time step with its membrane state as explicit inputs and outputs::

    (x, v_1, ..., v_L) -> (readout_t, v_1', ..., v_L')

Each LIF layer ``k`` computes, as :class:`neurokd.models.neurons.LIF` does,
``v = beta_k * v_k + I``, ``s = (v > theta_k)``, ``v_k' = v * (1 - s)`` (``v - theta_k s`` for a
soft-reset student). A runtime calls it
``T`` times with the same ``x`` (direct encoding), feeding the states back, starting from zeros,
and averages ``readout_t`` over the ``T`` steps to get the logits. This is the meaningful
single-step graph for a stateful SNN on a non-neuromorphic accelerator.
"""

from __future__ import annotations

import warnings
from pathlib import Path

import numpy as np
import torch
from torch import nn

from neurokd.errors import NeurokdError
from neurokd.fileio import atomic_path
from neurokd.models.base import Student, Teacher
from neurokd.models.neurons import LIF

OPSET = 18


class StudentStep(nn.Module):
    """One time step of a :class:`Student`, membrane potentials in and out (see module docstring);
    residual branches are added at their neuron's input, as in ``Student.run``."""

    def __init__(self, student: Student) -> None:
        super().__init__()
        self.student = student
        self.lif_names = student.spiking_layers()

    def forward(self, x: torch.Tensor, *states: torch.Tensor):
        new_states: list[torch.Tensor] = []

        def neuron(_name: str, layer: LIF, current: torch.Tensor) -> torch.Tensor:
            v = layer.effective_beta() * states[len(new_states)] + current
            s = (v > layer.effective_threshold()).to(v.dtype)
            new_states.append(layer.after_spike(v, s, layer.effective_threshold()))
            return s

        h = self.student.walk(x, neuron)
        return (h, *new_states)

    def initial_states(self, x: torch.Tensor) -> list[torch.Tensor]:
        """Zero membranes with the right shapes for a batch ``x``."""
        shapes: list[torch.Size] = []

        def neuron(_name: str, _layer: LIF, current: torch.Tensor) -> torch.Tensor:
            shapes.append(current.shape)
            return torch.zeros_like(current)

        with torch.no_grad():
            self.student.walk(x, neuron)
        return [torch.zeros(s) for s in shapes]


def _export(module: nn.Module, args: tuple, path: Path, input_names, output_names, n_states: int = 0) -> None:
    """Export with a dynamic batch axis; ``n_states`` trailing arguments arrive as ``*states``."""
    batch = torch.export.Dim("batch", min=1)
    n_fixed = len(args) - n_states
    dynamic = tuple({0: batch} for _ in range(n_fixed))
    if n_states:
        dynamic = (*dynamic, tuple({0: batch} for _ in range(n_states)))
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        program = torch.onnx.export(module, args, dynamo=True, input_names=input_names,
                                    output_names=output_names, dynamic_shapes=dynamic,
                                    opset_version=OPSET, verbose=False)
    with atomic_path(path) as tmp:
        program.save(str(tmp))


def check_onnx(path: str | Path) -> None:
    """Run ``onnx.checker`` (full check, with shape inference); raise NeurokdError if it fails."""
    import onnx

    try:
        onnx.checker.check_model(onnx.load(str(path)), full_check=True)
    except Exception as exc:  # onnx raises its own ValidationError types
        raise NeurokdError(f"ONNX check failed for {path}: {str(exc).splitlines()[0]}") from exc


def _onnxruntime_session(path: Path):
    try:
        import onnxruntime
    except ImportError:
        return None
    return onnxruntime.InferenceSession(str(path), providers=["CPUExecutionProvider"])


def export_teacher(teacher: Teacher, path: str | Path, sample: torch.Tensor) -> dict:
    """Write ``teacher`` to ``path`` as ONNX; check it; compare onnxruntime with PyTorch on ``sample``.

    Returns ``{"path", "checker": "passed", "onnxruntime": bool, "max_abs_diff": float | None}``.
    """
    path = Path(path)
    teacher = teacher.eval()
    _export(teacher, (sample,), path, ["x"], ["logits"])
    check_onnx(path)
    report = {"path": path.name, "checker": "passed", "onnxruntime": False, "max_abs_diff": None}
    session = _onnxruntime_session(path)
    if session is not None:
        with torch.no_grad():
            ref = teacher(sample).numpy()
        out = session.run(None, {"x": sample.numpy()})[0]
        report.update(onnxruntime=True, max_abs_diff=float(np.abs(out - ref).max()))
    return report


def export_student_step(student: Student, path: str | Path, sample: torch.Tensor) -> dict:
    """Write one student time step (state in/out) as ONNX; check it; run it ``T`` times in
    onnxruntime and compare logits and spikes-derived readout with the PyTorch student.
    """
    if not isinstance(student, Student):   # e.g. a UserStudent: its neurons' state lives in snnTorch / SpikingJelly
        raise NeurokdError(f"--target onnx writes neurokd's own students only, not a {type(student).__name__} "
                           "(an snnTorch / SpikingJelly student from --model); export it with --target nir, lava or netx")
    path = Path(path)
    student = student.eval()
    step = StudentStep(student).eval()
    states = step.initial_states(sample)
    names_v = [f"v_{n}" for n in step.lif_names]
    _export(step, (sample, *states), path, ["x", *names_v], ["readout", *[f"{n}_next" for n in names_v]],
            n_states=len(states))
    check_onnx(path)
    report = {"path": path.name, "checker": "passed", "onnxruntime": False, "max_abs_diff": None,
              "timesteps": student.timesteps, "state_inputs": names_v}
    session = _onnxruntime_session(path)
    if session is not None:
        with torch.no_grad():
            ref = student(sample).numpy()
        feed_states = [s.numpy() for s in states]
        total = 0.0
        for _ in range(student.timesteps):
            outs = session.run(None, {"x": sample.numpy(), **dict(zip(names_v, feed_states))})
            total = total + outs[0]
            feed_states = outs[1:]
        logits = total / student.timesteps
        report.update(onnxruntime=True, max_abs_diff=float(np.abs(logits - ref).max()))
    return report
