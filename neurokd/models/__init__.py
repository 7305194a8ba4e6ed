"""Model registry: each entry builds a :class:`Topology` shared by a teacher ANN and an SNN student.

``build_teacher(name, ...)`` / ``build_student(name, ...)`` make the pair; ``MODELS`` lists the
names, ``DEFAULT_MODEL`` gives each dataset's default.
"""

from __future__ import annotations

from typing import Callable

from neurokd.errors import NeurokdError
from neurokd.models.base import INPUT, NEURON, Student, SumPool2d, Teacher, Topology
from neurokd.models.neurons import LIF

MODELS: dict[str, Callable[..., Topology]] = {}
DEFAULT_MODEL = {"digits": "mlp", "gsc": "conv1d", "synth-kws": "conv1d", "cifar10": "vgg"}


def register(name: str):
    def deco(fn: Callable[..., Topology]) -> Callable[..., Topology]:
        MODELS[name] = fn
        return fn

    return deco


def topology(name: str, input_shape: tuple[int, ...], num_classes: int, **sizes) -> Topology:
    if name not in MODELS:
        raise NeurokdError(f"unknown model {name!r}; choose one of: {', '.join(sorted(MODELS))}")
    return MODELS[name](tuple(input_shape), int(num_classes), **sizes)


def build_teacher(name: str, input_shape, num_classes: int, **sizes) -> Teacher:
    return Teacher(topology(name, input_shape, num_classes, **sizes))


def build_student(
    name: str,
    input_shape,
    num_classes: int,
    timesteps: int,
    beta: float = 0.5,
    threshold: float = 1.0,
    learn_beta: bool = False,
    learn_threshold: bool = False,
    reset: str = "zero",
    input_mode: str = "graded",
    **sizes,
) -> Student:
    def neuron() -> LIF:
        return LIF(beta=beta, threshold=threshold, learn_beta=learn_beta, learn_threshold=learn_threshold,
                   reset=reset)

    return Student(topology(name, input_shape, num_classes, **sizes), timesteps, neuron, input_mode=input_mode)


from neurokd.models import zoo as _zoo  # noqa: E402,F401  (registers the built-in models)

__all__ = ["MODELS", "DEFAULT_MODEL", "INPUT", "NEURON", "LIF", "Student", "Teacher", "Topology", "SumPool2d",
           "register", "topology", "build_teacher", "build_student"]
