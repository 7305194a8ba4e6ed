"""Audio for the keyword datasets: read a WAV as 16 kHz mono, and turn 1 s clips into MFCC frames.

Reading (:func:`read_wav`)
    soundfile decodes the file. A multi-channel file is mixed to mono (mean of the channels); a
    file at another sample rate is resampled to ``sample_rate`` with librosa's default resampler
    (soxr, "HQ" quality). libsndfile silently returns fewer samples when a WAV is cut short, so
    the RIFF header is checked first: a ``data`` chunk declared longer than the bytes present is
    a truncated file, reported as :class:`~neurokd.errors.NeurokdError` naming it.

Clips (:func:`fit_clip`)
    Padded with zeros at the end, or cut at the end, to exactly ``clip_samples`` (1 s at 16 kHz),
    as Speech Commands readers usually do.

Features (:func:`mfcc`). Defaults: the GSC setup of the method's authors (Louis et al., ICANN
2024, arXiv 2406.18350, and their lab's framework Qualia): 16 kHz, 40 mels, window 640,
hop 320, n_fft 1024, 20-4000 Hz, 10 coefficients, 49 frames.

    ============  =======  ==========================================================
    parameter     default  meaning
    ============  =======  ==========================================================
    sample_rate   16000    Hz
    n_mels        40       triangular mel filters (librosa, Slaney scale and norm)
    fmin, fmax    20, 4000 Hz, band covered by the mel filters
    win_length    640      samples (40 ms) of Hann window
    hop_length    320      samples (20 ms) between frames
    n_fft         1024     FFT size; the 640-sample window sits centred in 1024 points
    n_mfcc        10       DCT-II (orthonormal) coefficients kept
    ============  =======  ==========================================================

    Framing: the clip is padded by ``(n_fft - win_length) / 2`` zeros on each side and framed
    without librosa's centring (``center=False``), so frame ``t`` windows exactly the original
    samples ``[t*hop, t*hop + win_length)`` and

        frames = 1 + (clip_samples - win_length) // hop_length = 1 + (16000 - 640) // 320 = 49.

    Per frame:  P[m] = sum_k |X[k]|^2 * M[m, k]                (mel power, m = 0..n_mels-1)
                L[m] = 10 * log10(max(P[m], 1e-10))             (dB, no top_db clipping, so a
                                                                 clip's features never depend on
                                                                 the other clips of its batch)
                c[i] = DCT-II_ortho(L)[i],  i = 0..n_mfcc-1.

    Output layout (N, n_mfcc, frames): channels first, for a 1-D convolution over time.
"""

from __future__ import annotations

import io
import struct
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np

from neurokd.errors import NeurokdError


@dataclass(frozen=True)
class MfccParams:
    """How a 1 s clip becomes an (n_mfcc, frames) array; every field enters the feature cache key."""

    sample_rate: int = 16000
    clip_samples: int = 16000
    n_mfcc: int = 10
    n_mels: int = 40
    n_fft: int = 1024
    win_length: int = 640
    hop_length: int = 320
    fmin: float = 20.0
    fmax: float = 4000.0

    def __post_init__(self) -> None:
        if not 1 <= self.n_mels <= 256:
            raise NeurokdError(f"n_mels={self.n_mels} is out of range: choose 1..256 (default 40)")
        if not 1 <= self.n_mfcc <= self.n_mels:
            raise NeurokdError(f"n_mfcc={self.n_mfcc} is out of range: choose 1..n_mels={self.n_mels} "
                               "(the paper uses 10; 10..40 are usual)")
        if not 0 < self.win_length <= self.n_fft:
            raise NeurokdError(f"win_length={self.win_length} must be in 1..n_fft={self.n_fft}")
        if not 0 < self.hop_length:
            raise NeurokdError(f"hop_length={self.hop_length} must be positive")
        if self.win_length > self.clip_samples:
            raise NeurokdError(f"win_length={self.win_length} is longer than the clip ({self.clip_samples} samples)")
        if not 0 <= self.fmin < self.fmax <= self.sample_rate / 2:
            raise NeurokdError(f"need 0 <= fmin < fmax <= sample_rate/2, got fmin={self.fmin}, fmax={self.fmax}")

    @property
    def frames(self) -> int:
        """frames = 1 + (clip_samples - win_length) // hop_length (49 with the defaults)."""
        return 1 + (self.clip_samples - self.win_length) // self.hop_length

    def as_dict(self) -> dict:
        return asdict(self)


def _riff_truncation(data: bytes) -> str | None:
    """Why a RIFF/WAVE byte string is cut short, or None if its ``data`` chunk is all there.

    Walks the chunks: each is a 4-byte id, a little-endian uint32 size, then ``size`` bytes (padded
    to even). Sizes 0 and >= 0x7FFFF000 are streaming placeholders (e.g. espeak-ng ``--stdout``)
    and are not checked. Non-RIFF files are left to soundfile.
    """
    if len(data) < 12 or data[:4] != b"RIFF" or data[8:12] != b"WAVE":
        return None
    pos = 12
    while pos + 8 <= len(data):
        chunk_id = data[pos:pos + 4]
        (size,) = struct.unpack("<I", data[pos + 4:pos + 8])
        if chunk_id == b"data":
            if size == 0 or size >= 0x7FFFF000:
                return None
            have = len(data) - pos - 8
            if have < size:
                return f"its data chunk declares {size} bytes but only {have} are present"
            return None
        pos += 8 + size + (size & 1)
    return "it has no complete 'data' chunk"


def decode_wav(data: bytes, name: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Decode WAV bytes to float32 mono at ``sample_rate`` (mix channels by mean, resample with soxr)."""
    import soundfile as sf

    why = _riff_truncation(data)
    if why is not None:
        raise NeurokdError(f"WAV file {name} is truncated: {why} (re-extract or regenerate the dataset)")
    try:
        audio, sr = sf.read(io.BytesIO(data), dtype="float32", always_2d=True)
    except (sf.SoundFileError, RuntimeError, ValueError, TypeError) as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise NeurokdError(f"cannot read WAV file {name}: {first} (corrupt or not audio? re-extract the dataset)") from exc
    if audio.shape[0] == 0:
        raise NeurokdError(f"WAV file {name} holds no samples (re-extract or regenerate the dataset)")
    mono = audio.mean(axis=1) if audio.shape[1] > 1 else audio[:, 0]
    if sr != sample_rate:
        import librosa

        mono = librosa.resample(mono, orig_sr=sr, target_sr=sample_rate, res_type="soxr_hq")
    return np.ascontiguousarray(mono, dtype=np.float32)


def read_wav(path: str | Path, sample_rate: int = 16000) -> np.ndarray:
    """Read one WAV file as float32 mono at ``sample_rate``; a truncated or corrupt file raises NeurokdError."""
    path = Path(path)
    try:
        data = path.read_bytes()
    except OSError as exc:
        raise NeurokdError(f"cannot read WAV file {path}: {exc.strerror or exc}") from exc
    return decode_wav(data, path, sample_rate)


def fit_clip(audio: np.ndarray, clip_samples: int = 16000) -> np.ndarray:
    """Pad with zeros at the end, or cut at the end, to exactly ``clip_samples`` samples."""
    if audio.shape[-1] >= clip_samples:
        return audio[..., :clip_samples]
    pad = [(0, 0)] * (audio.ndim - 1) + [(0, clip_samples - audio.shape[-1])]
    return np.pad(audio, pad)


def mfcc(clips: np.ndarray, params: MfccParams = MfccParams()) -> np.ndarray:
    """MFCCs of a batch of clips (N, clip_samples) -> (N, n_mfcc, frames) float32 (formulas in the module doc)."""
    import librosa

    clips = np.asarray(clips, dtype=np.float32)
    if clips.ndim != 2 or clips.shape[1] != params.clip_samples:
        raise ValueError(f"expected clips of shape (N, {params.clip_samples}), got {clips.shape}")
    side = (params.n_fft - params.win_length) // 2
    padded = np.pad(clips, ((0, 0), (side, params.n_fft - params.win_length - side)))
    power = librosa.feature.melspectrogram(
        y=padded, sr=params.sample_rate, n_fft=params.n_fft, win_length=params.win_length,
        hop_length=params.hop_length, center=False, window="hann", power=2.0,
        n_mels=params.n_mels, fmin=params.fmin, fmax=params.fmax)
    log_mel = librosa.power_to_db(power, ref=1.0, amin=1e-10, top_db=None)
    coeffs = librosa.feature.mfcc(S=log_mel, n_mfcc=params.n_mfcc, dct_type=2, norm="ortho")
    # Padded length clip + n_fft - win_length framed by n_fft gives exactly params.frames frames.
    return np.ascontiguousarray(coeffs, dtype=np.float32)
