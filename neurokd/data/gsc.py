"""Google Speech Commands v0.02 (and folders in its layout) as normalised MFCC tensors (N, n_mfcc, 49).

Layout read (Warden, "Speech Commands: A Dataset for Limited-Vocabulary Speech Recognition",
arXiv 1804.03209)::

    <root>/<word>/<speaker>_nohash_<n>.wav     16 kHz mono, at most 1 s
    <root>/validation_list.txt                 "<word>/<file>.wav" per line: the val split
    <root>/testing_list.txt                    the test split; train is every other file
    <root>/_background_noise_/*.wav            long noise recordings (the _silence_ class)

Classes: ``words="10"`` keeps the ten command words; ``words="35"`` all 35 words of v0.02;
``words="all"`` every word folder found; or a list / comma-separated string of words. With
``unknown_silence=True`` two classes are added, as in the usual 12-class task (sizes as the
TensorFlow ``speech_commands`` example's defaults, unknown_percentage = silence_percentage = 10):

* ``_unknown_``: files of the other words of the same split, a fixed random subset of
  ``ceil(unknown_fraction * n_known)`` of them, n_known = the split's files of the chosen words;
* ``_silence_``: ``ceil(silence_fraction * n_known)`` 1 s crops of the background-noise files,
  each scaled by a gain drawn uniformly in [0, 1]. Every noise file is cut in time so the splits
  never share noise: train crops come from its first 80 %, val from the next 10 %, test from
  the last 10 %.

Both draws use ``split_seed`` (default 0), never the training ``seed``: every training seed sees
the same val and test sets (the file splits are the official lists anyway).

Audio: :func:`neurokd.data.audio.read_wav`: a file at another sample rate is resampled to 16 kHz
(librosa's soxr resampler), a multi-channel file is averaged to mono, and every clip is padded
with zeros or cut at its end to exactly 1 s. A truncated or unreadable WAV raises NeurokdError.

Features: :func:`neurokd.data.audio.mfcc` (49 frames x 10 coefficients by default, ``n_mfcc``
up to ``n_mels``, e.g. 10..40; formulas and parameters there). Each coefficient is then standardised with the mean and standard deviation
over the TRAIN split (all train clips and frames), stored in ``Splits.info["normalisation"]``:

    x'[c, t] = (x[c, t] - mean_train[c]) / std_train[c].

Cache: the raw MFCCs are stored in ``<root>/.neurokd_cache/gsc-<key>.npz`` (or ``cache_dir``;
``~/.cache/neurokd/features`` when the root is read-only), written atomically. The key hashes the
feature parameters, the class selection and every file used (relative path, size, mtime), so a
changed dataset or option makes a new entry; an unreadable or mismatching entry is rebuilt.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import time
import zipfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable, Sequence

import numpy as np
import torch
from torch.utils.data import TensorDataset

from neurokd.data import Splits
from neurokd.data.audio import MfccParams, fit_clip, mfcc, read_wav
from neurokd.errors import NeurokdError
from neurokd.fileio import atomic_path

COMMAND_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
SPEECH_COMMANDS_V2_WORDS = (
    "backward", "bed", "bird", "cat", "dog", "down", "eight", "five", "follow", "forward", "four",
    "go", "happy", "house", "learn", "left", "marvin", "nine", "no", "off", "on", "one", "right",
    "seven", "sheila", "six", "stop", "three", "tree", "two", "up", "visual", "wow", "yes", "zero",
)
UNKNOWN = "_unknown_"
SILENCE = "_silence_"
NOISE_DIR = "_background_noise_"
CACHE_DIRNAME = ".neurokd_cache"
VAL_LIST = "validation_list.txt"
TEST_LIST = "testing_list.txt"
SPLITS = ("train", "val", "test")
# Fraction of each background-noise file (start, end) that each split's _silence_ crops come from.
NOISE_RANGES = {"train": (0.0, 0.8), "val": (0.8, 0.9), "test": (0.9, 1.0)}
CACHE_VERSION = 1
GSC_HINT = ("download http://download.tensorflow.org/data/speech_commands_v0.02.tar.gz, extract it, and pass "
            "its folder as --data-dir (or generate a stand-in with `neurokd data synth-kws --out DIR`)")
CHUNK = 256  # clips per MFCC batch (~30 MB of STFT at a time)


@dataclass
class SpeechCommandsFolder:
    """What a folder in the Speech Commands layout holds: files per word, the split lists, noise files."""

    root: Path
    files: dict[str, list[str]]  # word -> sorted "word/file.wav"
    val: set[str]
    test: set[str]
    noise: list[str]  # sorted "_background_noise_/file.wav"

    def split_of(self, rel: str) -> str:
        return "val" if rel in self.val else "test" if rel in self.test else "train"


def _read_list(root: Path, name: str) -> set[str]:
    path = root / name
    if not path.is_file():
        raise NeurokdError(f"{path} is missing: a Speech Commands folder needs {VAL_LIST} and {TEST_LIST} "
                           f"(the official split lists); {GSC_HINT}")
    try:
        lines = path.read_text(encoding="utf-8").splitlines()
    except (OSError, UnicodeDecodeError) as exc:
        raise NeurokdError(f"cannot read split list {path}: {exc}") from exc
    return {line.strip().replace("\\", "/") for line in lines if line.strip()}


def scan_speech_commands(root: str | os.PathLike) -> SpeechCommandsFolder:
    """Index a Speech Commands folder; a missing root, no word folders, a missing list or a listed
    file that is not there raises NeurokdError."""
    root = Path(root).expanduser()
    if not root.exists():
        raise NeurokdError(f"dataset folder {root} does not exist; {GSC_HINT}")
    if not root.is_dir():
        raise NeurokdError(f"{root} is not a folder; {GSC_HINT}")
    files: dict[str, list[str]] = {}
    for sub in sorted(root.iterdir()):
        if not sub.is_dir() or sub.name.startswith(("_", ".")):
            continue
        wavs = sorted(f"{sub.name}/{p.name}" for p in sub.iterdir() if p.suffix.lower() == ".wav" and p.is_file())
        if wavs:
            files[sub.name] = wavs
    if not files:
        raise NeurokdError(f"{root} holds no word folders with .wav files (expected <root>/<word>/<speaker>_nohash_<n>.wav); "
                           f"{GSC_HINT}")
    val, test = _read_list(root, VAL_LIST), _read_list(root, TEST_LIST)
    present = {rel for rels in files.values() for rel in rels}
    for list_name, listed in ((VAL_LIST, val), (TEST_LIST, test)):
        missing = sorted(listed - present)
        if missing:
            more = f" and {len(missing) - 1} more" if len(missing) > 1 else ""
            raise NeurokdError(f"{root / missing[0]} is listed in {list_name} but missing{more}; "
                               "the folder is incomplete: re-extract the dataset")
    noise_dir = root / NOISE_DIR
    noise = sorted(f"{NOISE_DIR}/{p.name}" for p in noise_dir.glob("*.wav")) if noise_dir.is_dir() else []
    return SpeechCommandsFolder(root, files, val, test, noise)


def resolve_words(words: str | int | Sequence[str], found: Iterable[str]) -> list[str]:
    """The chosen words: "10" (command words), "35" (all of v0.02), "all" (every folder), or a list."""
    found = sorted(found)
    if isinstance(words, int) or (isinstance(words, str) and words.strip().lower() in ("10", "35", "all")):
        key = str(words).strip().lower()
        if key == "10":
            chosen = list(COMMAND_WORDS)
        elif key == "35":
            chosen = list(SPEECH_COMMANDS_V2_WORDS)
        elif key == "all":
            chosen = found
        else:
            raise NeurokdError(f"words={words!r}: choose \"10\", \"35\", \"all\" or a comma-separated list of words")
    elif isinstance(words, str):
        chosen = [w.strip() for w in words.split(",") if w.strip()]
    else:
        chosen = [str(w) for w in words]
    if len(set(chosen)) != len(chosen):
        raise NeurokdError(f"words lists a word twice: {chosen}")
    missing = [w for w in chosen if w not in found]
    if missing:
        raise NeurokdError(f"no folder for word(s) {', '.join(missing)} in the dataset (found: {', '.join(found)}); "
                           "choose words=\"all\" or words that exist")
    return chosen


def _cache_file(root: Path, cache_dir: str | os.PathLike | None, digest: str) -> Path:
    """Where the cache entry lives: cache_dir, else <root>/.neurokd_cache, else ~/.cache/neurokd/features."""
    name = f"gsc-{digest[:24]}.npz"
    if cache_dir is not None:
        return Path(cache_dir).expanduser() / name
    local = root / CACHE_DIRNAME
    try:
        local.mkdir(exist_ok=True)
        if os.access(local, os.W_OK):
            return local / name
    except OSError:
        pass
    base = Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser()
    return base / "neurokd" / "features" / name


def _load_cache(path: Path, digest: str, shape: tuple[int, ...]) -> np.ndarray | None:
    """The cached features if the entry is readable and matches ``digest`` and ``shape``; else None."""
    if not path.is_file():
        return None
    try:
        with np.load(path, allow_pickle=False) as npz:
            if str(npz["key"]) != digest:
                return None
            feats = npz["features"]
    except (OSError, ValueError, KeyError, EOFError, zipfile.BadZipFile):
        return None
    if feats.shape != shape or feats.dtype != np.float32 or not np.isfinite(feats).all():
        return None
    return feats


def _save_cache(path: Path, digest: str, features: np.ndarray) -> bool:
    try:
        with atomic_path(path) as tmp:
            with open(tmp, "wb") as fh:
                np.savez(fh, key=np.array(digest), features=features)
        return True
    except OSError:
        return False  # a cache that cannot be written only costs time on the next load


def _silence_clips(folder: SpeechCommandsFolder, counts: dict[str, int], split_seed: int,
                   params: MfccParams) -> dict[str, np.ndarray]:
    """``counts[split]`` 1 s crops per split from that split's time range of the noise files, gain ~ U(0, 1)."""
    noises = [read_wav(folder.root / rel, params.sample_rate) for rel in folder.noise]
    clip = params.clip_samples
    out = {}
    for s_idx, split in enumerate(SPLITS):
        rng = np.random.default_rng([split_seed, s_idx, 2])
        start_f, end_f = NOISE_RANGES[split]
        clips = np.zeros((counts[split], clip), dtype=np.float32)
        for i in range(counts[split]):
            noise = noises[int(rng.integers(len(noises)))]
            a, b = int(start_f * len(noise)), int(end_f * len(noise))
            segment = noise[a:b] if b > a else noise
            if len(segment) < clip:  # a short noise file: repeat its range to fill the second
                segment = np.tile(segment, clip // max(len(segment), 1) + 1)
            offset = int(rng.integers(len(segment) - clip + 1))
            clips[i] = segment[offset:offset + clip] * np.float32(rng.uniform(0.0, 1.0))
        out[split] = clips
    return out


def extract_features(root: Path, sources: Sequence[str | np.ndarray], params: MfccParams,
                     progress: bool = True, desc: str = "MFCC") -> np.ndarray:
    """MFCCs (N, n_mfcc, frames) of WAV files (paths relative to ``root``) or ready 1-D clips, in chunks."""
    from tqdm import tqdm

    out = np.empty((len(sources), params.n_mfcc, params.frames), dtype=np.float32)
    with tqdm(total=len(sources), desc=desc, unit="clip", disable=not progress, dynamic_ncols=True) as bar:
        for start in range(0, len(sources), CHUNK):
            chunk = sources[start:start + CHUNK]
            clips = np.stack([fit_clip(s if isinstance(s, np.ndarray) else read_wav(root / s, params.sample_rate),
                                       params.clip_samples) for s in chunk])
            out[start:start + len(chunk)] = mfcc(clips, params)
            bar.update(len(chunk))
    return out


def _as_bool(name: str, value: bool | str | int) -> bool:
    """A flag given as a bool, 0/1, or the strings true/false (options may come from a command line)."""
    if isinstance(value, (bool, int)) and value in (0, 1):
        return bool(value)
    if isinstance(value, str) and value.strip().lower() in ("true", "false", "1", "0"):
        return value.strip().lower() in ("true", "1")
    raise NeurokdError(f"{name}={value!r} must be true or false")


def _as_fraction(name: str, value: float) -> float:
    value = float(value)
    if not 0 < value <= 1:
        raise NeurokdError(f"{name}={value} must be in (0, 1] (a fraction of the known-word utterances per split)")
    return value


def load_gsc(data_dir: str | os.PathLike | None = None, seed: int = 0, *, words: str | int | Sequence[str] = "10",
             unknown_silence: bool = False, n_mfcc: int = 10, n_mels: int = 40, n_fft: int = 1024,
             win_length: int = 640, hop_length: int = 320, fmin: float = 20.0, fmax: float = 4000.0,
             unknown_fraction: float = 0.1, silence_fraction: float = 0.1, split_seed: int = 0,
             cache: bool = True, cache_dir: str | os.PathLike | None = None, progress: bool = True,
             name: str = "gsc") -> Splits:
    """Speech Commands folder -> :class:`Splits` of standardised MFCCs (N, n_mfcc, frames), int64 labels.

    ``seed`` is accepted for the common loader signature and does not change the data (see the
    module doc: official lists, ``split_seed`` for the _unknown_/_silence_ draws).
    """
    if data_dir is None:
        raise NeurokdError(f"the gsc dataset needs --data-dir (the Speech Commands v0.02 folder); {GSC_HINT}")
    params = MfccParams(n_mfcc=int(n_mfcc), n_mels=int(n_mels), n_fft=int(n_fft), win_length=int(win_length),
                        hop_length=int(hop_length), fmin=float(fmin), fmax=float(fmax))
    unknown_silence = _as_bool("unknown_silence", unknown_silence)
    cache, progress = _as_bool("cache", cache), _as_bool("progress", progress)
    folder = scan_speech_commands(data_dir)
    root = folder.root
    chosen = resolve_words(words, folder.files)
    class_names = list(chosen) + ([UNKNOWN, SILENCE] if unknown_silence else [])

    # (split, label, relpath) of every word file used, in a fixed order.
    entries: list[tuple[str, int, str]] = []
    known_counts = {s: 0 for s in SPLITS}
    for label, word in enumerate(chosen):
        for rel in folder.files[word]:
            split = folder.split_of(rel)
            entries.append((split, label, rel))
            known_counts[split] += 1
    for split in SPLITS:
        if known_counts[split] == 0:
            listing = {"val": VAL_LIST, "test": TEST_LIST, "train": "the folders (minus both lists)"}[split]
            raise NeurokdError(f"the {split} split of {root} is empty for words {', '.join(chosen)}: {listing} "
                               "holds none of their files")
    silence_counts = {s: 0 for s in SPLITS}
    if unknown_silence:
        others = [w for w in folder.files if w not in chosen]
        if not others:
            raise NeurokdError(f"unknown_silence needs word folders other than the chosen words in {root} "
                               "(for the _unknown_ class); choose fewer words or unknown_silence=False")
        if not folder.noise:
            raise NeurokdError(f"unknown_silence needs {root / NOISE_DIR} with .wav noise files (for the _silence_ "
                               "class); add them or choose unknown_silence=False")
        frac_u = _as_fraction("unknown_fraction", unknown_fraction)
        frac_s = _as_fraction("silence_fraction", silence_fraction)
        candidates = {s: [] for s in SPLITS}
        for word in others:
            for rel in folder.files[word]:
                candidates[folder.split_of(rel)].append(rel)
        for s_idx, split in enumerate(SPLITS):
            pool = sorted(candidates[split])
            n = min(len(pool), math.ceil(frac_u * known_counts[split]))
            rng = np.random.default_rng([int(split_seed), s_idx, 1])
            picked = sorted(rng.choice(len(pool), size=n, replace=False)) if n else []
            entries.extend((split, len(chosen), pool[i]) for i in picked)
            silence_counts[split] = math.ceil(frac_s * known_counts[split])

    # The cache key: everything the raw features depend on.
    stats = []
    for _, _, rel in entries:
        st = (root / rel).stat()
        stats.append([rel, st.st_size, st.st_mtime_ns])
    key_obj = {"version": CACHE_VERSION, "params": params.as_dict(), "files": stats,
               "silence": silence_counts, "split_seed": int(split_seed) if unknown_silence else None,
               "noise": [[rel, (root / rel).stat().st_size, (root / rel).stat().st_mtime_ns] for rel in folder.noise]
               if unknown_silence else []}
    digest = hashlib.sha256(json.dumps(key_obj, sort_keys=True).encode()).hexdigest()
    n_total = len(entries) + sum(silence_counts.values())
    shape = (n_total, params.n_mfcc, params.frames)
    cache_path = _cache_file(root, cache_dir, digest) if cache else None

    t0 = time.perf_counter()
    feats = _load_cache(cache_path, digest, shape) if cache_path is not None else None
    cache_hit = feats is not None
    if feats is None:
        sources: list = [rel for _, _, rel in entries]
        if unknown_silence:
            silence = _silence_clips(folder, silence_counts, int(split_seed), params)
            for split in SPLITS:
                sources.extend(silence[split])
        feats = extract_features(root, sources, params, progress=progress, desc=f"{name}: MFCC")
        if cache_path is not None:
            _save_cache(cache_path, digest, feats)
    seconds = time.perf_counter() - t0

    splits_of = np.array([s for s, _, _ in entries] + [s for s in SPLITS for _ in range(silence_counts[s])])
    labels = np.array([lab for _, lab, _ in entries] + [len(chosen) + 1] * sum(silence_counts.values()),
                      dtype=np.int64)
    speakers = [rel.split("/", 1)[1].split("_nohash_")[0] for _, _, rel in entries]

    train_mask = splits_of == "train"
    mean = feats[train_mask].mean(axis=(0, 2), dtype=np.float64)
    std = np.maximum(feats[train_mask].std(axis=(0, 2), dtype=np.float64), 1e-6)
    normed = ((feats - mean[None, :, None].astype(np.float32)) / std[None, :, None].astype(np.float32))

    def dataset(split: str) -> TensorDataset:
        mask = splits_of == split
        return TensorDataset(torch.from_numpy(np.ascontiguousarray(normed[mask])), torch.from_numpy(labels[mask]))

    counts = {split: {c: int(((splits_of == split) & (labels == i)).sum()) for i, c in enumerate(class_names)}
              for split in SPLITS}
    n_words = len(entries)
    speaker_counts = {split: len({spk for spk, s in zip(speakers, splits_of[:n_words]) if s == split})
                      for split in SPLITS}
    info = {
        "source": str(root), "layout": "speech-commands-v0.02", "words": chosen,
        "unknown_silence": bool(unknown_silence), "seed": seed, "split_seed": int(split_seed),
        "features": {**params.as_dict(), "frames": params.frames, "layout": "(n_mfcc, frames)",
                     "library": "librosa"},
        "normalisation": {"computed_on": "train", "mean": mean.tolist(), "std": std.tolist()},
        "counts": counts, "speakers": speaker_counts,
        "cache": {"path": str(cache_path) if cache_path else None, "hit": cache_hit},
        "extract_seconds": seconds,
    }
    return Splits(name, dataset("train"), dataset("val"), dataset("test"), len(class_names),
                  (params.n_mfcc, params.frames), class_names, info=info)


def load_synth_kws(data_dir: str | os.PathLike | None = None, seed: int = 0, **options) -> Splits:
    """The espeak-ng keyword set written by ``neurokd data synth-kws``, read by :func:`load_gsc`.

    ``data_dir`` defaults to :func:`neurokd.data.synth_kws.default_dir` (``~/.cache/neurokd/synth-kws``).
    """
    from neurokd.data.synth_kws import default_dir

    root = Path(data_dir).expanduser() if data_dir is not None else default_dir()
    if not root.is_dir():
        raise NeurokdError(f"no synth-kws dataset at {root}: generate it with `neurokd data synth-kws --out {root}` "
                           "(needs espeak-ng), then pass that folder as --data-dir")
    options.setdefault("name", "synth-kws")
    return load_gsc(root, seed, **options)
