"""Generate a keyword-spotting set spoken by espeak-ng, written in the exact Speech Commands layout.

Real audio that any machine can make: each of the ten command words is spoken by many synthetic
"speakers" (an English accent of espeak-ng combined with a voice variant, e.g. ``en-gb-scotland``
+ ``f3``), at random speed and pitch, then resampled to 16 kHz, trimmed, scaled to a random level,
shifted to a random place inside the 1 s clip, and mixed with background noise at a random SNR::

    <out>/<word>/<speaker>_nohash_<n>.wav     16 kHz mono 16-bit PCM, exactly 16,000 samples
    <out>/validation_list.txt, testing_list.txt
    <out>/_background_noise_/<kind>_noise.wav  60 s each: white, pink, brown, hum, fan
    <out>/synth_kws.json                       the settings, the speakers of each split

The split is by speaker: val and test hold whole speakers (10 % each), so test voices are never
heard in training. Every utterance draws its parameters from its own generator seeded by
(seed, word, speaker, n), so a run is reproducible whatever the worker count, and resumable: a
complete WAV already on disk is kept, each new one is written atomically.

Random ranges of one utterance (``RANGES``; uniform draws):

    ===========  ===========  ==========================================================
    name         range        meaning
    ===========  ===========  ==========================================================
    speed_wpm    120 .. 200   espeak-ng ``-s`` (words per minute; its default is 175)
    pitch        20 .. 80     espeak-ng ``-p`` (0..99; its default is 50)
    peak_dbfs    -26 .. -3    peak level of the spoken word, dB re full scale
    snr_db       5 .. 35      speech power / noise power over the word, in dB
    ===========  ===========  ==========================================================

Mixing: with s the placed word (power P_s over its samples) and n a noise segment (power P_n),
clip = s + n * sqrt(P_s / (P_n * 10^(snr_db / 10))), clipped to [-1, 1].
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import time
import zlib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Sequence

import numpy as np

from neurokd.data.audio import _riff_truncation, decode_wav
from neurokd.errors import NeurokdError
from neurokd.fileio import atomic_path, write_json, write_text

COMMAND_WORDS = ("yes", "no", "up", "down", "left", "right", "on", "off", "stop", "go")
DEFAULT_ACCENTS = ("en-us", "en-gb", "en-gb-scotland", "en-gb-x-rp", "en-gb-x-gbclan", "en-gb-x-gbcwmd",
                   "en-029", "en-us-nyc")
DEFAULT_VARIANTS = ("m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
                    "croak", "whisper", "klatt")
RANGES = {"speed_wpm": (120, 200), "pitch": (20, 80), "peak_dbfs": (-26.0, -3.0), "snr_db": (5.0, 35.0)}
NOISE_KINDS = ("white", "pink", "brown", "hum", "fan")
NOISE_SECONDS = 60
NOISE_RMS = 0.1
VAL_FRACTION = 0.1
TEST_FRACTION = 0.1
SAMPLE_RATE = 16000
CLIP_SAMPLES = 16000
DEFAULT_PER_WORD = 300
FORMAT_VERSION = 1
METADATA = "synth_kws.json"
INSTALL_HINT = "install it with `apt-get install espeak-ng` (as root, or with sudo), then rerun"


def default_dir() -> Path:
    """Where ``neurokd data synth-kws`` writes by default and the synth-kws loader looks: ~/.cache/neurokd/synth-kws."""
    return Path(os.environ.get("XDG_CACHE_HOME", "~/.cache")).expanduser() / "neurokd" / "synth-kws"


def find_espeak() -> str:
    """Path of the espeak-ng executable, or NeurokdError naming the package to install."""
    exe = shutil.which("espeak-ng")
    if exe is None:
        raise NeurokdError(f"espeak-ng is not installed (not found on PATH): the synth-kws generator needs it; {INSTALL_HINT}")
    return exe


def _espeak_languages(exe: str) -> set[str]:
    """Language codes espeak-ng lists for English (``espeak-ng --voices=en``, second column)."""
    out = subprocess.run([exe, "--voices=en"], capture_output=True, text=True, timeout=60)
    langs = set()
    for line in out.stdout.splitlines()[1:]:
        cols = line.split()
        if len(cols) >= 2:
            langs.add(cols[1])
    return langs


def speaker_id(accent: str, variant: str) -> str:
    """The file-name speaker of a voice: ``<accent>-<variant>`` (no underscore, so ``_nohash_`` parses)."""
    return f"{accent}-{variant}".replace("_", "-")


def split_speakers(speakers: Sequence[str], seed: int) -> dict[str, list[str]]:
    """Whole speakers per split: a seeded shuffle, 10 % val and 10 % test (at least one each)."""
    if len(speakers) < 3:
        raise NeurokdError(f"synth-kws needs at least 3 voices (one per split), got {len(speakers)}")
    order = [speakers[i] for i in np.random.default_rng([seed, 7]).permutation(len(speakers))]
    n_val = max(1, round(VAL_FRACTION * len(order)))
    n_test = max(1, round(TEST_FRACTION * len(order)))
    return {"train": sorted(order[n_val + n_test:]), "val": sorted(order[:n_val]),
            "test": sorted(order[n_val:n_val + n_test])}


def interleave(split: dict[str, list[str]]) -> list[str]:
    """Speakers in the order utterances are dealt to them: splits interleaved in proportion to their size,
    so even a few utterances per word reach every split (speaker j of a split of n sorts at (j + 0.5) / n)."""
    keyed = [((j + 0.5) / len(names), s_idx, name)
             for s_idx, names in enumerate(split.values()) for j, name in enumerate(names)]
    return [name for _, _, name in sorted(keyed)]


def make_noise(kind: str, seconds: float, rng: np.random.Generator, sample_rate: int = SAMPLE_RATE) -> np.ndarray:
    """A background-noise recording of ``kind``, RMS ``NOISE_RMS``.

    white: N(0, 1) samples; pink / brown: white noise with spectrum shaped by 1/sqrt(f) / 1/f
    (power 1/f, 1/f^2); hum: 50 Hz mains with harmonics 100, 150, 200 Hz (amplitudes 1, 1/2, 1/3,
    1/4), slowly drifting level, plus a little white noise; fan: noise band-passed to 100-2000 Hz,
    amplitude-modulated at 3-6 Hz.
    """
    n = int(seconds * sample_rate)
    t = np.arange(n) / sample_rate
    white = rng.standard_normal(n)
    freqs = np.fft.rfftfreq(n, 1.0 / sample_rate)
    if kind == "white":
        x = white
    elif kind in ("pink", "brown", "fan"):
        spec = np.fft.rfft(white)
        shape = np.zeros_like(freqs)
        nz = freqs > 0
        if kind == "pink":
            shape[nz] = 1.0 / np.sqrt(freqs[nz])
        elif kind == "brown":
            shape[nz] = 1.0 / freqs[nz]
        else:
            shape[(freqs >= 100) & (freqs <= 2000)] = 1.0
        x = np.fft.irfft(spec * shape, n)
        if kind == "fan":
            x *= 1.0 + 0.5 * np.sin(2 * np.pi * rng.uniform(3, 6) * t)
    elif kind == "hum":
        drift = 1.0 + 0.2 * np.sin(2 * np.pi * 0.1 * t + rng.uniform(0, 2 * np.pi))
        x = drift * sum(np.sin(2 * np.pi * 50 * h * t + rng.uniform(0, 2 * np.pi)) / h for h in (1, 2, 3, 4))
        x = x + 0.05 * white
    else:
        raise NeurokdError(f"unknown noise kind {kind!r}: choose one of {', '.join(NOISE_KINDS)}")
    x = x - x.mean()
    x = x * (NOISE_RMS / np.sqrt(np.mean(x ** 2)))
    return np.clip(x, -1.0, 1.0).astype(np.float32)


def _wav_complete(path: Path, samples: int) -> bool:
    """True if ``path`` is a 16 kHz mono WAV of exactly ``samples`` samples with all its data present."""
    import soundfile as sf

    try:
        if _riff_truncation(path.read_bytes()) is not None:
            return False
        info = sf.info(str(path))
    except (OSError, RuntimeError, sf.SoundFileError):
        return False
    return info.samplerate == SAMPLE_RATE and info.channels == 1 and info.frames == samples


def _write_wav(path: Path, audio: np.ndarray) -> None:
    import soundfile as sf

    with atomic_path(path) as tmp:
        sf.write(str(tmp), audio, SAMPLE_RATE, subtype="PCM_16", format="WAV")


def _trim(audio: np.ndarray, top_db: float = 40.0) -> np.ndarray:
    """The span of ``audio`` whose 10 ms frame energy is within ``top_db`` of its loudest frame."""
    import librosa

    trimmed, _ = librosa.effects.trim(audio, top_db=top_db, frame_length=320, hop_length=80)
    return trimmed if trimmed.size else audio


def synthesise(exe: str, word: str, accent: str, variant: str, rng: np.random.Generator,
               noises: Sequence[np.ndarray]) -> tuple[np.ndarray, dict]:
    """One utterance: espeak-ng speaks ``word``; resample, trim, level, shift, add noise (ranges: ``RANGES``)."""
    speed = int(rng.integers(RANGES["speed_wpm"][0], RANGES["speed_wpm"][1] + 1))
    pitch = int(rng.integers(RANGES["pitch"][0], RANGES["pitch"][1] + 1))
    peak_dbfs = float(rng.uniform(*RANGES["peak_dbfs"]))
    snr_db = float(rng.uniform(*RANGES["snr_db"]))
    cmd = [exe, "-v", f"{accent}+{variant}", "-s", str(speed), "-p", str(pitch), "-a", "100", "--stdout", word]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=120)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise NeurokdError(f"espeak-ng failed ({' '.join(cmd)}): {exc}") from exc
    if proc.returncode != 0 or not proc.stdout:
        msg = proc.stderr.decode(errors="replace").strip().splitlines()
        raise NeurokdError(f"espeak-ng failed ({' '.join(cmd)}): {msg[0] if msg else f'exit code {proc.returncode}'}")
    speech = _trim(decode_wav(proc.stdout, f"espeak-ng output for {word!r}", SAMPLE_RATE))
    if speech.size > CLIP_SAMPLES:  # a slow long word: keep its middle second
        start = (speech.size - CLIP_SAMPLES) // 2
        speech = speech[start:start + CLIP_SAMPLES]
    peak = float(np.max(np.abs(speech)))
    if peak > 0:
        speech = speech * np.float32(10 ** (peak_dbfs / 20) / peak)
    offset = int(rng.integers(0, CLIP_SAMPLES - speech.size + 1))
    clip = np.zeros(CLIP_SAMPLES, dtype=np.float32)
    clip[offset:offset + speech.size] = speech
    noise_idx = int(rng.integers(len(noises)))
    noise = noises[noise_idx]
    start = int(rng.integers(0, noise.size - CLIP_SAMPLES + 1))
    segment = noise[start:start + CLIP_SAMPLES]
    p_speech = float(np.mean(speech.astype(np.float64) ** 2))
    p_noise = float(np.mean(segment.astype(np.float64) ** 2))
    if p_speech > 0 and p_noise > 0:
        clip += segment * np.float32(np.sqrt(p_speech / (p_noise * 10 ** (snr_db / 10))))
    params = {"speed_wpm": speed, "pitch": pitch, "peak_dbfs": peak_dbfs, "snr_db": snr_db,
              "offset": offset, "noise": NOISE_KINDS[noise_idx] if len(noises) == len(NOISE_KINDS) else noise_idx}
    return np.clip(clip, -1.0, 1.0), params


def _check_metadata(out: Path, meta: dict) -> None:
    """A folder generated earlier with other settings is refused (mixing two sets would be silent corruption)."""
    import json

    path = out / METADATA
    if not path.is_file():
        return
    try:
        old = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise NeurokdError(f"{path} is unreadable ({exc}); delete it or choose another --out") from exc
    for key in ("format_version", "seed", "words", "speakers"):
        if old.get(key) != meta[key]:
            raise NeurokdError(f"{out} holds a synth-kws set generated with other settings ({key} differs); "
                               "choose another --out, or delete that folder")


def generate_synth_kws(out: str | os.PathLike | None = None, per_word: int = DEFAULT_PER_WORD, seed: int = 0, *,
                       words: Sequence[str] = COMMAND_WORDS, accents: Sequence[str] = DEFAULT_ACCENTS,
                       variants: Sequence[str] = DEFAULT_VARIANTS, workers: int = 2,
                       noise_seconds: float = NOISE_SECONDS, progress: bool = True) -> dict:
    """Write (or complete) a synth-kws dataset in ``out``; return a summary (counts, seconds, speakers).

    ``per_word`` utterances per word; utterance k of word number w goes to speaker
    ``order[(k + w) % S]`` with file number n = k // S (order: :func:`interleave`, S speakers),
    so a larger ``per_word`` later only adds files.
    """
    from tqdm import tqdm

    t0 = time.perf_counter()
    exe = find_espeak()
    out = Path(out).expanduser() if out is not None else default_dir()
    per_word, workers = int(per_word), max(1, int(workers))
    if per_word < 1:
        raise NeurokdError(f"--per-word must be at least 1, got {per_word}")
    words = [str(w).strip().lower() for w in words]
    bad = [w for w in words if not re.fullmatch(r"[a-z]+(?:[-'][a-z]+)*", w)]
    if bad or len(set(words)) != len(words):
        raise NeurokdError(f"words must be distinct single words of letters a-z, got {words}")
    if noise_seconds < 10:
        raise NeurokdError(f"noise_seconds={noise_seconds} is too short: at least 10 s per noise file")
    available = _espeak_languages(exe)
    missing = [a for a in accents if a not in available]
    kept_accents = [a for a in accents if a in available]
    if not kept_accents:
        raise NeurokdError(f"espeak-ng knows none of the accents {', '.join(accents)} "
                           f"(`espeak-ng --voices=en` lists: {', '.join(sorted(available))})")
    voices = {speaker_id(a, v): (a, v) for a in kept_accents for v in variants}
    split = split_speakers(sorted(voices), seed)
    order = interleave(split)
    meta = {"format_version": FORMAT_VERSION, "generator": "neurokd data synth-kws", "seed": int(seed),
            "words": words, "per_word": per_word, "sample_rate": SAMPLE_RATE, "clip_samples": CLIP_SAMPLES,
            "speakers": split, "voices": {s: f"{a}+{v}" for s, (a, v) in sorted(voices.items())},
            "accents_missing_here": missing, "ranges": {k: list(v) for k, v in RANGES.items()},
            "noise": {"kinds": list(NOISE_KINDS), "seconds": noise_seconds, "rms": NOISE_RMS},
            "espeak_ng": subprocess.run([exe, "--version"], capture_output=True, text=True).stdout.strip()}
    out.mkdir(parents=True, exist_ok=True)
    _check_metadata(out, meta)
    write_json(out / METADATA, meta)  # first, so an interrupted folder is still recognised on resume

    noises = []
    for k_idx, kind in enumerate(NOISE_KINDS):
        noise = make_noise(kind, noise_seconds, np.random.default_rng([seed, 11, k_idx]))
        noises.append(noise)
        path = out / "_background_noise_" / f"{kind}_noise.wav"
        if not _wav_complete(path, noise.size):
            _write_wav(path, noise)

    jobs = []
    for w_idx, word in enumerate(words):
        for k in range(per_word):
            spk = order[(k + w_idx) % len(order)]
            jobs.append((word, spk, k // len(order)))

    def run(job):
        word, spk, n = job
        path = out / word / f"{spk}_nohash_{n}.wav"
        if _wav_complete(path, CLIP_SAMPLES):
            return False
        rng = np.random.default_rng([int(seed), zlib.crc32(word.encode()), zlib.crc32(spk.encode()), n])
        audio, _ = synthesise(exe, word, *voices[spk], rng, noises)
        _write_wav(path, audio)
        return True

    created = 0
    with ThreadPoolExecutor(max_workers=workers) as pool, \
            tqdm(total=len(jobs), desc="synth-kws: espeak-ng", unit="wav", disable=not progress,
                 dynamic_ncols=True) as bar:
        for made in pool.map(run, jobs):
            created += int(made)
            bar.update(1)

    # Split lists from the files on disk (a folder extended or resumed lists everything it holds).
    speaker_split = {s: name for name, spks in split.items() for s in spks}
    lists: dict[str, list[str]] = {"train": [], "val": [], "test": []}
    for word in words:
        for p in sorted((out / word).glob("*.wav")):
            lists[speaker_split.get(p.name.split("_nohash_")[0], "train")].append(f"{word}/{p.name}")
    write_text(out / "validation_list.txt", "".join(f"{rel}\n" for rel in lists["val"]))
    write_text(out / "testing_list.txt", "".join(f"{rel}\n" for rel in lists["test"]))
    write_json(out / METADATA, meta)
    return {"out": str(out), "created": created, "skipped": len(jobs) - created,
            "utterances": {s: len(v) for s, v in lists.items()},
            "speakers": {s: len(v) for s, v in split.items()}, "accents_missing_here": missing,
            "seconds": time.perf_counter() - t0}
