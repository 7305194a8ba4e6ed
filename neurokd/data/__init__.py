"""Datasets as train/val/test tensors with a fixed seed: ``load(name, data_dir, seed, **options)``.

Every loader returns :class:`Splits`. Missing or malformed files raise
:class:`neurokd.errors.NeurokdError` with what was expected, where, and how to get it.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from typing import Callable

import torch
from torch.utils.data import TensorDataset

from neurokd.errors import NeurokdError

# name -> "module:function"; each function has the signature of :func:`load` minus ``name``.
LOADERS = {
    "digits": "neurokd.data.digits:load_digits",
    "gsc": "neurokd.data.gsc:load_gsc",
    "synth-kws": "neurokd.data.gsc:load_synth_kws",
    "cifar10": "neurokd.data.cifar10:load_cifar10",
}


@dataclass
class Splits:
    """A dataset ready for training: float inputs, int64 labels, one ``TensorDataset`` per split."""

    name: str
    train: TensorDataset
    val: TensorDataset
    test: TensorDataset
    num_classes: int
    input_shape: tuple[int, ...]
    class_names: list[str]
    # Applied to each training batch (B, ...) on the fly (e.g. CIFAR-10 crop + flip); None = no augmentation.
    augment: Callable[[torch.Tensor, torch.Generator], torch.Tensor] | None = None
    info: dict = field(default_factory=dict)

    def summary(self) -> str:
        sizes = ", ".join(f"{s} {len(getattr(self, s))}" for s in ("train", "val", "test"))
        shape = "x".join(str(d) for d in self.input_shape)
        return f"{self.name}: {sizes} samples; input {shape}; {self.num_classes} classes"


def load(name: str, data_dir: str | None = None, seed: int = 0, **options) -> Splits:
    """Load dataset ``name`` (see :data:`LOADERS`) from ``data_dir`` with a fixed ``seed``."""
    if name not in LOADERS:
        raise NeurokdError(f"unknown dataset {name!r}; choose one of: {', '.join(LOADERS)}")
    module, fn = LOADERS[name].split(":")
    return getattr(importlib.import_module(module), fn)(data_dir=data_dir, seed=seed, **options)
