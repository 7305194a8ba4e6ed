"""CIFAR-10 from its python batches on disk, read by a restricted unpickler, as normalised (N, 3, 32, 32) tensors.

Layout read (Krizhevsky, "Learning Multiple Layers of Features from Tiny Images", 2009;
https://www.cs.toronto.edu/~kriz/cifar.html, ``cifar-10-python.tar.gz``)::

    <root>/cifar-10-batches-py/data_batch_1 .. data_batch_5   10,000 images each (train)
    <root>/cifar-10-batches-py/test_batch                      10,000 images (test)
    <root>/cifar-10-batches-py/batches.meta                    label_names (optional here)

``root`` may be the parent folder or ``cifar-10-batches-py`` itself. Each batch is a pickled dict:
``data`` uint8 (N, 3072), the 1024 red, 1024 green, 1024 blue pixels of a 32x32 image row by
row, and ``labels``, N ints in 0..9.

Safety: unpickling may call any importable function named in the file, so a downloaded batch
could run code. :class:`BatchUnpickler` resolves only the few names a batch of numpy arrays
needs (:data:`ALLOWED_GLOBALS`) and refuses every other one with NeurokdError.

Splits: val is a stratified hold-out of ``val_fraction`` of the training images (5,000 of the
50,000, 500 per class) drawn with ``split_seed`` (default 0, independent of the training seed so
every run validates on the same images); train is the other 45,000; test is ``test_batch``.

Normalisation, per channel c:  x' = (x / 255 - mean[c]) / std[c]   (:data:`NORMALISATION`).

Augmentation (``Splits.augment``, training batches only): :func:`random_crop_flip`.
"""

from __future__ import annotations

import functools
import io
import os
import pickle
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import TensorDataset

from neurokd.data import Splits
from neurokd.errors import NeurokdError

CLASSES = ("airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck")
BATCHES_DIR = "cifar-10-batches-py"
TRAIN_BATCHES = tuple(f"data_batch_{i}" for i in range(1, 6))
TEST_BATCH = "test_batch"
META = "batches.meta"
IMAGE_SHAPE = (3, 32, 32)
HINT = ("download https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz, extract it, and pass the folder "
        "holding cifar-10-batches-py as --data-dir")

# Per-channel mean and standard deviation of the 50,000 CIFAR-10 training images, pixels in [0, 1]
# (the statistics of the training set itself; the usual values of CIFAR-10 training recipes).
NORMALISATION = {
    "mean": (0.4914, 0.4822, 0.4465),
    "std": (0.2470, 0.2435, 0.2616),
    "source": "per-channel pixel mean and std of the CIFAR-10 training set (Krizhevsky 2009)",
}

# (module, name) pairs a pickled dict of numpy arrays refers to, across pickle protocols and numpy
# versions: ndarray reconstruction (protocols 0-4), buffer reconstruction (protocol 5), dtypes,
# and the latin-1 bytes encoder Python 3 uses for bytes under protocols 0-2.
ALLOWED_GLOBALS = frozenset({
    ("numpy.core.multiarray", "_reconstruct"),
    ("numpy._core.multiarray", "_reconstruct"),
    ("numpy", "ndarray"),
    ("numpy", "dtype"),
    ("numpy.core.numeric", "_frombuffer"),
    ("numpy._core.numeric", "_frombuffer"),
    ("_codecs", "encode"),
})


class RefusedGlobal(pickle.UnpicklingError):
    """A pickle referred to a global outside :data:`ALLOWED_GLOBALS`."""


class BatchUnpickler(pickle.Unpickler):
    """An unpickler that resolves only :data:`ALLOWED_GLOBALS`: plain containers and numpy arrays, no code."""

    def find_class(self, module: str, name: str):
        if (module, name) not in ALLOWED_GLOBALS:
            raise RefusedGlobal(f"{module}.{name}")
        return super().find_class(module, name)

    def persistent_load(self, pid):
        raise RefusedGlobal(f"persistent id {pid!r}")


def safe_unpickle(path: str | os.PathLike) -> object:
    """Unpickle ``path`` with :class:`BatchUnpickler` (latin-1 strings, as Python 2 wrote the batches)."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NeurokdError(f"cannot read CIFAR-10 file {path}: {exc.strerror or exc}") from exc
    try:
        return BatchUnpickler(io.BytesIO(data), encoding="latin1").load()
    except RefusedGlobal as exc:
        raise NeurokdError(f"refusing to load {path}: it refers to {exc}, which a CIFAR-10 batch never holds "
                           "(unpickling it could run code; the file may be malicious): delete it and re-download") from exc
    except Exception as exc:  # a damaged pickle raises many types (EOFError, UnpicklingError, ValueError, ...)
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NeurokdError(f"cannot read CIFAR-10 file {path}: {first} (truncated or corrupt? re-extract "
                           "cifar-10-python.tar.gz)") from exc


def _key(d: dict, name: str):
    """``d[name]`` whether the pickle stored the key as str or bytes."""
    if name in d:
        return d[name]
    return d.get(name.encode())


def read_batch(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """One batch file -> (uint8 images (N, 3072), int64 labels (N,)); anything malformed raises NeurokdError."""
    path = Path(path)
    obj = safe_unpickle(path)
    bad = f"{path} is not a CIFAR-10 batch"
    if not isinstance(obj, dict):
        raise NeurokdError(f"{bad}: it holds a {type(obj).__name__}, not a dict (re-extract the archive)")
    data, labels = _key(obj, "data"), _key(obj, "labels")
    if not isinstance(data, np.ndarray) or data.dtype != np.uint8 or data.ndim != 2 or data.shape[1] != 3072:
        desc = f"{data.dtype} {data.shape}" if isinstance(data, np.ndarray) else type(data).__name__
        raise NeurokdError(f"{bad}: 'data' must be uint8 (N, 3072), got {desc} (re-extract the archive)")
    try:
        labels = np.asarray(labels, dtype=np.int64)
    except (TypeError, ValueError) as exc:
        raise NeurokdError(f"{bad}: 'labels' is not a list of ints (re-extract the archive)") from exc
    if labels.shape != (data.shape[0],):
        raise NeurokdError(f"{bad}: {labels.size} labels for {data.shape[0]} images (truncated? re-extract the archive)")
    if labels.size and (labels.min() < 0 or labels.max() >= len(CLASSES)):
        raise NeurokdError(f"{bad}: labels outside 0..9 (re-extract the archive)")
    return data, labels


def find_batches(data_dir: str | os.PathLike | None) -> Path:
    """The folder holding the batch files: ``data_dir/cifar-10-batches-py`` or ``data_dir`` itself."""
    if data_dir is None:
        raise NeurokdError(f"the cifar10 dataset needs --data-dir; {HINT}")
    root = Path(data_dir).expanduser()
    if not root.is_dir():
        raise NeurokdError(f"dataset folder {root} does not exist; {HINT}")
    if (root / BATCHES_DIR).is_dir():
        folder = root / BATCHES_DIR
    elif any((root / name).is_file() for name in TRAIN_BATCHES + (TEST_BATCH,)):
        folder = root
    else:
        raise NeurokdError(f"no CIFAR-10 batches in {root} (expected {root / BATCHES_DIR}/data_batch_1..5 and "
                           f"test_batch); {HINT}")
    for name in TRAIN_BATCHES + (TEST_BATCH,):
        if not (folder / name).is_file():
            raise NeurokdError(f"CIFAR-10 batch {folder / name} is missing (expected data_batch_1..5 and test_batch); "
                               f"{HINT}")
    return folder


def class_names(folder: Path) -> list[str]:
    """``label_names`` from batches.meta when present and well-formed, else the standard ten names."""
    path = folder / META
    if not path.is_file():
        return list(CLASSES)
    meta = safe_unpickle(path)
    names = _key(meta, "label_names") if isinstance(meta, dict) else None
    if not isinstance(names, list) or len(names) != len(CLASSES):
        raise NeurokdError(f"{path} has no list of 10 label_names (re-extract the archive)")
    return [n.decode() if isinstance(n, bytes) else str(n) for n in names]


def random_crop_flip(batch: torch.Tensor, generator: torch.Generator, padding: int = 4,
                     fill: torch.Tensor | None = None) -> torch.Tensor:
    """Random crop of the original size from the batch padded by ``padding``, then a horizontal flip
    with probability 1/2, per image, in one gather over the whole (B, C, H, W) batch.

    Offsets (dy, dx) ~ U{0..2*padding} and flips come from ``generator`` alone, so the result is
    deterministic given its state. ``fill`` (C,) is the padding value per channel (default 0);
    :func:`load_cifar10` passes the normalised value of a black pixel, -mean/std, as padding a
    raw image with zeros and then normalising would.
    """
    b, c, h, w = batch.shape
    gdev = generator.device
    offsets = torch.randint(0, 2 * padding + 1, (2, b), generator=generator, device=gdev).to(batch.device)
    flip = (torch.rand(b, generator=generator, device=gdev) < 0.5).to(batch.device)
    padded = batch.new_zeros(b, c, h + 2 * padding, w + 2 * padding)
    if fill is not None:
        padded += fill.to(batch.device, batch.dtype).view(1, c, 1, 1)
    padded[:, :, padding:padding + h, padding:padding + w] = batch
    rows = offsets[0, :, None] + torch.arange(h, device=batch.device)            # (B, H)
    cols = offsets[1, :, None] + torch.arange(w, device=batch.device)            # (B, W)
    cols = torch.where(flip[:, None], cols.flip(1), cols)                        # flip = read columns backwards
    bi = torch.arange(b, device=batch.device)[:, None, None, None]
    ci = torch.arange(c, device=batch.device)[None, :, None, None]
    return padded[bi, ci, rows[:, None, :, None], cols[:, None, None, :]]


def _to_float(images: np.ndarray, mean: torch.Tensor, std: torch.Tensor) -> torch.Tensor:
    """uint8 (N, 3072) -> float32 (N, 3, 32, 32), x' = (x / 255 - mean) / std per channel, in place."""
    x = torch.from_numpy(images).view(-1, *IMAGE_SHAPE).to(torch.float32)
    x.div_(255.0).sub_(mean.view(1, 3, 1, 1)).div_(std.view(1, 3, 1, 1))
    return x


def load_cifar10(data_dir: str | os.PathLike | None = None, seed: int = 0, *, val_fraction: float = 0.1,
                 split_seed: int = 0, augment: bool = True) -> Splits:
    """CIFAR-10 python batches -> :class:`Splits` (train 45,000 / val 5,000 / test 10,000 of (3, 32, 32)).

    ``seed`` is accepted for the common loader signature and does not change the data (the val
    hold-out uses ``split_seed``). ``augment=False`` leaves ``Splits.augment`` as None.
    """
    from sklearn.model_selection import train_test_split

    if not isinstance(augment, bool):  # an option from a command line: true/false
        if str(augment).strip().lower() not in ("true", "false", "1", "0"):
            raise NeurokdError(f"augment={augment!r} must be true or false")
        augment = str(augment).strip().lower() in ("true", "1")
    folder = find_batches(data_dir)
    names = class_names(folder)
    parts = [read_batch(folder / name) for name in TRAIN_BATCHES]
    train_x = np.concatenate([p[0] for p in parts])
    train_y = np.concatenate([p[1] for p in parts])
    del parts
    test_x, test_y = read_batch(folder / TEST_BATCH)

    val_fraction = float(val_fraction)
    n_val = round(val_fraction * len(train_y))
    n_classes_present = len(np.unique(train_y))
    if not 0 < val_fraction < 1 or n_val < n_classes_present or len(train_y) - n_val < n_classes_present:
        raise NeurokdError(f"val_fraction={val_fraction} of {len(train_y)} training images gives {n_val} val images: "
                           f"need at least one per class in val and train (choose 0 < val_fraction < 1)")
    try:
        train_idx, val_idx = train_test_split(np.arange(len(train_y)), test_size=n_val, stratify=train_y,
                                              random_state=int(split_seed))
    except ValueError as exc:
        raise NeurokdError(f"cannot hold out a stratified val split from {folder}: {exc}") from exc
    train_idx, val_idx = np.sort(train_idx), np.sort(val_idx)

    from neurokd.resources import ensure_fits

    ensure_fits((train_x.size + test_x.size) * 4, f"CIFAR-10 from {folder} as float32 tensors",
                "free memory or run on a machine with more")
    mean = torch.tensor(NORMALISATION["mean"], dtype=torch.float32)
    std = torch.tensor(NORMALISATION["std"], dtype=torch.float32)

    def dataset(x: np.ndarray, y: np.ndarray) -> TensorDataset:
        return TensorDataset(_to_float(np.ascontiguousarray(x), mean, std), torch.from_numpy(np.ascontiguousarray(y)))

    train = dataset(train_x[train_idx], train_y[train_idx])
    val = dataset(train_x[val_idx], train_y[val_idx])
    del train_x
    test = dataset(test_x, test_y)
    fill = -mean / std
    counts = {s: np.bincount(d.tensors[1].numpy(), minlength=len(CLASSES)).tolist()
              for s, d in (("train", train), ("val", val), ("test", test))}
    info = {
        "source": str(folder), "layout": "cifar-10-python", "seed": seed, "split_seed": int(split_seed),
        "val_fraction": val_fraction,
        "normalisation": {"mean": list(NORMALISATION["mean"]), "std": list(NORMALISATION["std"]),
                          "source": NORMALISATION["source"]},
        "augment": "random crop 32x32 from 4-pixel padding (black) + horizontal flip p=0.5" if augment else None,
        "counts": {s: dict(zip(names, c)) for s, c in counts.items()},
    }
    return Splits("cifar10", train, val, test, len(CLASSES), IMAGE_SHAPE, names,
                  augment=functools.partial(random_crop_flip, padding=4, fill=fill) if augment else None, info=info)
