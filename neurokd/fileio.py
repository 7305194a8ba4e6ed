"""Atomic writes: finished work is written to a temporary file beside the target, then renamed.

A crash or Ctrl-C mid-write leaves the previous file (or none), never a truncated one.
"""

from __future__ import annotations

import contextlib
import csv
import json
import os
import tempfile
import warnings
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

_UMASK = os.umask(0)
os.umask(_UMASK)


@contextlib.contextmanager
def atomic_path(path: str | os.PathLike) -> Iterator[Path]:
    """Yield a temporary path in the target's folder; rename it onto ``path`` if the block succeeds."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    os.chmod(tmp, 0o666 & ~_UMASK)  # mkstemp makes 0600; artefacts get ordinary permissions
    tmp_path = Path(tmp)
    try:
        yield tmp_path
        with open(tmp_path, "rb") as fh:
            os.fsync(fh.fileno())
        os.replace(tmp_path, path)
    finally:
        if tmp_path.exists():
            tmp_path.unlink()


def write_text(path: str | os.PathLike, text: str) -> None:
    with atomic_path(path) as tmp:
        tmp.write_text(text, encoding="utf-8")


def write_bytes(path: str | os.PathLike, data: bytes) -> None:
    with atomic_path(path) as tmp:
        tmp.write_bytes(data)


def write_json(path: str | os.PathLike, obj: Any) -> None:
    write_text(path, json.dumps(obj, indent=2, sort_keys=False) + "\n")


def write_csv(path: str | os.PathLike, header: Sequence[str], rows: Iterable[Sequence[Any] | Mapping[str, Any]]) -> None:
    """Write rows (sequences, or dicts keyed by ``header``) as CSV, atomically."""
    with atomic_path(path) as tmp:
        with open(tmp, "w", newline="", encoding="utf-8") as fh:
            writer = csv.writer(fh)
            writer.writerow(header)
            for row in rows:
                if isinstance(row, Mapping):
                    row = [row.get(k, "") for k in header]
                writer.writerow(row)


def save_torch(path: str | os.PathLike, obj: Any) -> None:
    """``torch.save`` through a temporary file (plain tensors/dicts only, loadable with weights_only=True)."""
    import torch

    with atomic_path(path) as tmp:
        torch.save(obj, tmp)


def load_torch(path: str | os.PathLike, map_location: str = "cpu") -> Any:
    """Load a checkpoint without executing anything in it (``weights_only=True``)."""
    import pickle

    import torch

    from neurokd.errors import NeurokdError

    path = Path(path)
    if not path.is_file():
        raise NeurokdError(f"checkpoint not found: {path} (train a run first, or check the run folder)")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on foreign pickle protocols
            return torch.load(path, map_location=map_location, weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch's own message suggests weights_only=False: never the advice for a file of unknown origin
        raise NeurokdError(
            f"refusing to load {path}: it holds Python objects other than tensors and plain data, which "
            "could run code when loaded; neurokd only loads weights-only checkpoints (re-export it as a state_dict)"
        ) from exc
    except (RuntimeError, EOFError, OSError, ValueError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NeurokdError(f"cannot read checkpoint {path}: {first} (is it a truncated or foreign file?)") from exc


def load_npy(path: str | os.PathLike):
    """A ``.npy`` array read without unpickling anything (``allow_pickle=False``); a missing or foreign file is
    refused in one line."""
    import numpy as np

    from neurokd.errors import NeurokdError

    path = Path(path)
    if not path.is_file():
        raise NeurokdError(f"input file not found: {path}")
    try:
        return np.load(path, allow_pickle=False)
    except (ValueError, OSError) as exc:
        raise NeurokdError(f"{path}: not a numpy .npy array ({exc})") from None
