"""scikit-learn's 8x8 handwritten digits (1,797 real samples): the embedded default dataset."""

from __future__ import annotations

import numpy as np
import torch
from sklearn.datasets import load_digits as _sk_digits
from sklearn.model_selection import train_test_split
from torch.utils.data import TensorDataset

from neurokd.data import Splits


def load_digits(data_dir: str | None = None, seed: int = 0, val_fraction: float = 0.15,
                test_fraction: float = 0.2) -> Splits:
    """Stratified train/val/test split of the digits, pixels scaled from 0..16 to [0, 1], flat 64 inputs.

    ``data_dir`` is ignored: the data ships with scikit-learn.
    """
    bunch = _sk_digits()
    x = (bunch.data / 16.0).astype(np.float32)
    y = bunch.target.astype(np.int64)
    idx = np.arange(len(y))
    rest, test = train_test_split(idx, test_size=test_fraction, stratify=y, random_state=seed)
    train, val = train_test_split(rest, test_size=val_fraction / (1 - test_fraction), stratify=y[rest],
                                  random_state=seed)

    def ds(i):
        return TensorDataset(torch.from_numpy(x[i]), torch.from_numpy(y[i]))

    return Splits("digits", ds(train), ds(val), ds(test), 10, (64,), [str(d) for d in range(10)],
                  info={"source": "sklearn.datasets.load_digits", "seed": seed})
