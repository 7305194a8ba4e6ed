"""The embedded digits dataset and the loader registry."""

from __future__ import annotations

import pytest
import torch

from neurokd.data import LOADERS, load
from neurokd.errors import NeurokdError


def test_digits_are_flat_64_pixel_vectors_in_unit_range():
    splits = load("digits", None, 0)
    x, y = splits.train.tensors
    assert splits.input_shape == (64,) and x.shape[1] == 64 and x.dtype == torch.float32
    assert float(x.min()) >= 0.0 and float(x.max()) <= 1.0
    assert y.dtype == torch.int64 and splits.num_classes == 10 and splits.class_names == [str(d) for d in range(10)]


def test_digits_splits_partition_all_1797_samples_stratified():
    splits = load("digits", None, 0)
    sizes = [len(splits.train), len(splits.val), len(splits.test)]
    assert sum(sizes) == 1797
    assert sizes[2] == pytest.approx(0.2 * 1797, abs=2) and sizes[1] == pytest.approx(0.15 * 1797, abs=2)
    for part in (splits.train, splits.val, splits.test):
        counts = torch.bincount(part.tensors[1], minlength=10).float()
        assert (counts / counts.sum() - 0.1).abs().max() < 0.02  # every class ~10 % of each split
    rows = [{tuple(r.tolist()) for r in part.tensors[0]} for part in (splits.train, splits.val, splits.test)]
    # (The digits hold a few exact duplicate images, so disjointness is checked on sizes, not on content.)
    assert len(rows[0] & rows[2]) < 5


def test_digits_split_depends_on_the_seed_only():
    a, b, c = load("digits", None, 0), load("digits", None, 0), load("digits", None, 1)
    assert torch.equal(a.test.tensors[0], b.test.tensors[0])
    assert not torch.equal(a.test.tensors[0], c.test.tensors[0])


def test_unknown_dataset_names_the_choices():
    with pytest.raises(NeurokdError, match="unknown dataset 'mnist'.*digits.*gsc.*synth-kws.*cifar10"):
        load("mnist")
    assert set(LOADERS) == {"digits", "gsc", "synth-kws", "cifar10"}
