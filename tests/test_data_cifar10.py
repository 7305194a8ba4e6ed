"""The CIFAR-10 loader: batches read without executing code, stratified val hold-out, normalisation, augmentation."""

from __future__ import annotations

import os
import pickle

import numpy as np
import pytest
import torch

from neurokd.data import load
from neurokd.data.cifar10 import NORMALISATION, random_crop_flip, read_batch
from neurokd.errors import NeurokdError


def test_cifar10_loads_normalised_images_and_official_test_batch(cifar10_dir):
    splits = load("cifar10", str(cifar10_dir), 0)
    assert splits.input_shape == (3, 32, 32) and splits.num_classes == 10
    assert splits.class_names[:3] == ["airplane", "automobile", "bird"]
    assert (len(splits.train), len(splits.val), len(splits.test)) == (90, 10, 20)
    data, labels = read_batch(cifar10_dir / "cifar-10-batches-py" / "test_batch")  # exact: see the Python 2 test
    x, y = splits.test.tensors
    assert x.dtype == torch.float32 and y.dtype == torch.int64
    assert y.tolist() == labels.tolist()
    # Image layout: 1024 red, 1024 green, 1024 blue values, row by row; x' = (x/255 - mean[c]) / std[c].
    img = data[7].reshape(3, 32, 32) / 255.0
    mean, std = np.array(NORMALISATION["mean"]), np.array(NORMALISATION["std"])
    np.testing.assert_allclose(x[7].numpy(), (img - mean[:, None, None]) / std[:, None, None], rtol=1e-5, atol=1e-5)  # float32 vs float64


def test_cifar10_val_is_a_stratified_holdout_fixed_across_training_seeds(cifar10_dir):
    a = load("cifar10", str(cifar10_dir), 0)
    b = load("cifar10", str(cifar10_dir), 3)
    assert torch.bincount(a.val.tensors[1], minlength=10).tolist() == [1] * 10
    assert torch.bincount(a.train.tensors[1], minlength=10).tolist() == [9] * 10
    torch.testing.assert_close(a.val.tensors[0], b.val.tensors[0])
    c = load("cifar10", str(cifar10_dir), 0, split_seed=1)
    assert not torch.equal(a.val.tensors[0], c.val.tensors[0])
    # Train and val partition the 100 training images: no image in both.
    train_rows = {row.numpy().tobytes() for row in a.train.tensors[0]}
    assert not any(row.numpy().tobytes() in train_rows for row in a.val.tensors[0])


def test_cifar10_accepts_the_batches_folder_itself_as_root(cifar10_dir):
    splits = load("cifar10", str(cifar10_dir / "cifar-10-batches-py"), 0)
    assert len(splits.train) == 90


def test_cifar10_refuses_a_pickle_that_would_run_code(cifar10_dir, tmp_path):
    marker = tmp_path / "pwned"

    class Payload:
        def __reduce__(self):
            return os.system, (f"touch {marker}",)

    batch = cifar10_dir / "cifar-10-batches-py" / "data_batch_2"
    batch.write_bytes(pickle.dumps({b"data": Payload(), b"labels": [0]}, protocol=2))
    with pytest.raises(NeurokdError, match=r"refusing to load .*data_batch_2: it refers to (posix|os)\.system"):
        load("cifar10", str(cifar10_dir), 0)
    assert not marker.exists()


def test_cifar10_truncated_batch_is_reported_by_name(cifar10_dir):
    batch = cifar10_dir / "cifar-10-batches-py" / "data_batch_3"
    batch.write_bytes(batch.read_bytes()[:3000])
    with pytest.raises(NeurokdError, match=r"cannot read CIFAR-10 file .*data_batch_3.*truncated or corrupt"):
        load("cifar10", str(cifar10_dir), 0)


def test_cifar10_batch_of_the_wrong_shape_is_reported(tmp_path):
    path = tmp_path / "data_batch_1"
    path.write_bytes(pickle.dumps({b"data": np.zeros((4, 100), np.uint8), b"labels": [0, 1, 2, 3]}))
    with pytest.raises(NeurokdError, match=r"data_batch_1 is not a CIFAR-10 batch: 'data' must be uint8 \(N, 3072\)"):
        read_batch(path)
    path.write_bytes(pickle.dumps({b"data": np.zeros((4, 3072), np.uint8), b"labels": [0, 1]}))
    with pytest.raises(NeurokdError, match="2 labels for 4 images"):
        read_batch(path)


def test_cifar10_missing_folder_or_batch_is_reported(tmp_path, cifar10_dir):
    with pytest.raises(NeurokdError, match="does not exist.*cifar-10-python.tar.gz"):
        load("cifar10", str(tmp_path / "nowhere"), 0)
    with pytest.raises(NeurokdError, match="no CIFAR-10 batches"):
        load("cifar10", str(tmp_path), 0)
    (cifar10_dir / "cifar-10-batches-py" / "test_batch").unlink()
    with pytest.raises(NeurokdError, match="test_batch is missing"):
        load("cifar10", str(cifar10_dir), 0)


def _all_crops(img, padding, fill):
    """Every image random_crop_flip may produce from ``img`` (C, H, W), by brute force."""
    c, h, w = img.shape
    padded = fill.view(c, 1, 1).expand(c, h + 2 * padding, w + 2 * padding).clone()
    padded[:, padding:padding + h, padding:padding + w] = img
    for dy in range(2 * padding + 1):
        for dx in range(2 * padding + 1):
            crop = padded[:, dy:dy + h, dx:dx + w]
            yield crop
            yield crop.flip(-1)


def test_augment_is_a_padded_random_crop_and_flip_deterministic_in_the_generator(cifar10_dir):
    splits = load("cifar10", str(cifar10_dir), 0)
    batch = splits.train.tensors[0][:12]
    out_a = splits.augment(batch, torch.Generator().manual_seed(0))
    out_b = splits.augment(batch, torch.Generator().manual_seed(0))
    out_c = splits.augment(batch, torch.Generator().manual_seed(1))
    assert out_a.shape == batch.shape and torch.equal(out_a, out_b) and not torch.equal(out_a, out_c)
    fill = -torch.tensor(NORMALISATION["mean"]) / torch.tensor(NORMALISATION["std"])
    for img, aug in zip(batch, out_a):
        assert any(torch.equal(aug, crop) for crop in _all_crops(img, 4, fill))


def test_augment_uses_every_offset_and_flips_about_half():
    img = torch.arange(1, 17, dtype=torch.float32).view(1, 4, 4)  # distinct values, none equal to the fill 0
    out = random_crop_flip(img.expand(1000, 1, 4, 4), torch.Generator().manual_seed(0), padding=1)
    candidates = list(_all_crops(img, 1, torch.zeros(1)))  # index = 2 * (3 * dy + dx) + flip
    seen = [next(i for i, crop in enumerate(candidates) if torch.equal(o, crop)) for o in out]
    counts = np.bincount(seen, minlength=18)
    assert (counts > 0).all()  # every offset, flipped and not
    assert 0.45 < counts[1::2].sum() / len(seen) < 0.55


def test_augment_off_leaves_none(cifar10_dir):
    assert load("cifar10", str(cifar10_dir), 0, augment=False).augment is None


def _python2_batch(images: np.ndarray, labels: list[int]) -> bytes:
    """A batch pickled the way Python 2's cPickle wrote the official archive: protocol 2, str (not bytes)
    keys, the array's raw bytes as a Python 2 str, numpy's ``_reconstruct`` + ``dtype('u1')`` state."""
    import struct

    def py2_str(s: bytes) -> bytes:  # SHORT_BINSTRING / BINSTRING
        return (b"U" + bytes([len(s)]) if len(s) < 256 else b"T" + struct.pack("<i", len(s))) + s

    def int4(i: int) -> bytes:  # BININT
        return b"J" + struct.pack("<i", i)

    array = (b"cnumpy.core.multiarray\n_reconstruct\n" + b"cnumpy\nndarray\n" + b"K\x00\x85" + py2_str(b"b")
             + b"\x87R"                                                              # _reconstruct(ndarray, (0,), 'b')
             + b"(K\x01(" + b"".join(int4(d) for d in images.shape) + b"t"          # (1, shape,
             + b"cnumpy\ndtype\n" + py2_str(b"u1") + b"K\x00K\x01\x87R"             #  dtype('u1', 0, 1)
             + b"(K\x03" + py2_str(b"|") + b"NNN" + int4(-1) + int4(-1) + b"K\x00tb"  #  with its state,
             + b"\x89" + py2_str(images.tobytes()) + b"tb")                         #  False, raw data)
    label_list = b"](" + b"".join(int4(i) for i in labels) + b"e"
    return (b"\x80\x02}(" + py2_str(b"data") + array + py2_str(b"labels") + label_list
            + py2_str(b"batch_label") + py2_str(b"training batch 1 of 5") + b"u.")


def test_cifar10_reads_a_python2_style_batch(tmp_path):
    images = np.random.default_rng(0).integers(0, 256, (3, 3072), dtype=np.uint8)
    path = tmp_path / "data_batch_1"
    path.write_bytes(_python2_batch(images, [4, 0, 9]))
    data, labels = read_batch(path)
    assert np.array_equal(data, images) and labels.tolist() == [4, 0, 9]
