"""Audio: file → 16 kHz mono waveform → Kaldi log-mel filterbank clips → ImageBind's patch stem.

The filterbank reproduces ``torchaudio.compliance.kaldi.fbank`` as ImageBind calls it (128 mel
bins, 25 ms Hanning frames every 10 ms, pre-emphasis 0.97, per-frame DC removal, power spectrum,
HTK mel scale, natural log with a float-epsilon floor, no dither) in plain torch. Frames are cut
with ``unfold`` and transformed with ``torch.fft.rfft`` rather than ``torch.stft``: Kaldi removes
each frame's mean and pre-emphasises *inside* the frame before windowing, which a windowed STFT
cannot express. Tested against ``kaldi-native-fbank``.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn

from .registry import Modality, register_modality

SAMPLE_RATE = 16_000
AUDIO_EXTENSIONS = (".wav", ".flac", ".ogg", ".oga", ".opus", ".mp3", ".m4a", ".aac", ".webm")  # read by content
# Checked from the header before decoding: a 237 KB FLAC of silence decodes to 1.45 GB.
MAX_SECONDS = 4 * 3600
MAX_WHOLE_SAMPLES = 16_000 * 600  # read whole up to this (64 MB of float32); longer files by windows
MAX_DECODED_SECONDS = 1200  # formats only PyAV reads are decoded whole, up to this
# ImageBind's dataset statistics for the normalised filterbank: (fbank - MEAN) / STD.
FBANK_MEAN, FBANK_STD = -4.268, 9.138


class AudioReadError(ValueError):
    """An audio file could not be read or has the wrong form; the message names the file."""


@dataclass(frozen=True)
class FbankOptions:
    sample_rate: int = SAMPLE_RATE
    num_mel_bins: int = 128
    frame_length_ms: float = 25.0
    frame_shift_ms: float = 10.0
    preemphasis: float = 0.97
    low_freq: float = 20.0
    high_freq: float = 0.0  # ≤ 0: offset from the Nyquist frequency (Kaldi's convention)

    @property
    def window_size(self) -> int:
        return int(self.sample_rate * self.frame_length_ms / 1000)

    @property
    def window_shift(self) -> int:
        return int(self.sample_rate * self.frame_shift_ms / 1000)

    @property
    def fft_size(self) -> int:
        return 1 << (self.window_size - 1).bit_length()  # next power of two


def _mel(freq: torch.Tensor | float):
    return 1127.0 * (torch.log1p(freq / 700.0) if isinstance(freq, torch.Tensor) else math.log1p(freq / 700.0))


def mel_banks(opts: FbankOptions, dtype: torch.dtype = torch.float64) -> torch.Tensor:
    """Kaldi's triangular filters, equally spaced on the HTK mel scale: [num_mel_bins, fft_size/2 + 1]."""
    nyquist = opts.sample_rate / 2
    high = opts.high_freq if opts.high_freq > 0 else nyquist + opts.high_freq
    if not 0 <= opts.low_freq < high <= nyquist:
        raise ValueError(f"mel range {opts.low_freq}–{high} Hz is invalid for {opts.sample_rate} Hz audio")
    mel_low, mel_high = _mel(opts.low_freq), _mel(high)
    delta = (mel_high - mel_low) / (opts.num_mel_bins + 1)
    left = mel_low + delta * torch.arange(opts.num_mel_bins, dtype=dtype)[:, None]
    centre, right = left + delta, left + 2 * delta
    fft_mel = _mel(opts.sample_rate / opts.fft_size * torch.arange(opts.fft_size // 2, dtype=dtype))[None]
    up, down = (fft_mel - left) / (centre - left), (right - fft_mel) / (right - centre)
    banks = torch.clamp(torch.minimum(up, down), min=0.0)
    return torch.nn.functional.pad(banks, (0, 1))  # Kaldi leaves the Nyquist bin out


def kaldi_fbank(waveform: torch.Tensor, opts: FbankOptions = FbankOptions()) -> torch.Tensor:
    """Log-mel filterbank of a mono waveform [N] (float, any scale) → [frames, num_mel_bins].

    ``frames = 1 + (N - window) // shift`` (Kaldi's ``snip_edges``); computed in float64 and
    returned as float32.
    """
    if waveform.dim() != 1:
        raise ValueError(f"expected a mono waveform [N], got shape {tuple(waveform.shape)}")
    win, shift = opts.window_size, opts.window_shift
    if waveform.shape[0] < win:
        raise ValueError(f"waveform of {waveform.shape[0]} samples is shorter than one {win}-sample frame")
    x = waveform.to(torch.float64)
    frames = x.unfold(0, win, shift)  # [F, win]
    frames = frames - frames.mean(dim=1, keepdim=True)
    previous = torch.cat([frames[:, :1], frames[:, :-1]], dim=1)
    frames = frames - opts.preemphasis * previous
    frames = frames * torch.hann_window(win, periodic=False, dtype=torch.float64)
    power = torch.fft.rfft(frames, n=opts.fft_size).abs().pow(2)  # [F, fft/2 + 1]
    energies = power @ mel_banks(opts).T
    return energies.clamp(min=torch.finfo(torch.float32).eps).log().float()


def fbank_clip(waveform: torch.Tensor, target_frames: int = 204, opts: FbankOptions = FbankOptions()) -> torch.Tensor:
    """One clip as ImageBind feeds it: mean-removed waveform → fbank → [1, mel, target_frames]
    (zero-padded on the right or cropped) → normalised with ImageBind's statistics."""
    fb = kaldi_fbank(waveform - waveform.mean(), opts).T  # [mel, F]
    n = fb.shape[1]
    fb = torch.nn.functional.pad(fb, (0, target_frames - n)) if n < target_frames else fb[:, :target_frames]
    return ((fb - FBANK_MEAN) / FBANK_STD).unsqueeze(0)


def clip_starts(num_samples: int, clip_samples: int, clips: int) -> list[int]:
    """Start samples of ``clips`` equally spaced windows covering the waveform (ImageBind's
    ``ConstantClipsPerVideoSampler``); a waveform shorter than one clip gives ``clips`` starts at 0."""
    room = max(num_samples - clip_samples, 0)
    if clips == 1:
        return [room // 2]
    return [round(i * room / (clips - 1)) for i in range(clips)]


def audio_clips(waveform: torch.Tensor, clip_seconds: float = 2.0, clips: int = 3, target_frames: int = 204,
                opts: FbankOptions = FbankOptions()) -> torch.Tensor:
    """Waveform [N] at ``opts.sample_rate`` → model input [clips, 1, mel, target_frames]."""
    clip_samples = int(round(clip_seconds * opts.sample_rate))
    starts = clip_starts(waveform.shape[0], clip_samples, clips)
    return torch.stack([fbank_clip(waveform[s:s + clip_samples], target_frames, opts) for s in starts])


def _mono(block: np.ndarray) -> np.ndarray:
    return block.mean(axis=1).astype(np.float32) if block.ndim == 2 else block.astype(np.float32)


def _resample(mono: np.ndarray, rate: int, sample_rate: int) -> np.ndarray:
    if rate == sample_rate:
        return mono
    from scipy.signal import resample_poly

    g = math.gcd(rate, sample_rate)
    return resample_poly(mono, sample_rate // g, rate // g).astype(np.float32)


def _soundfile(path: Path):
    """An open ``soundfile.SoundFile``, or None when libsndfile cannot read the container."""
    import soundfile as sf

    try:
        return sf.SoundFile(str(path))
    except Exception:  # LibsndfileError (a RuntimeError) and friends: try PyAV
        return None


def _check_duration(path: Path, seconds: float) -> None:
    if seconds > MAX_SECONDS:
        raise AudioReadError(f"{path}: {seconds:.0f} s of audio is longer than the {MAX_SECONDS} s limit")


def _read_pyav(path: Path, sample_rate: int, max_seconds: float) -> np.ndarray:
    """Decode the first audio stream of any container PyAV reads (m4a, opus, webm, aac …) to mono
    float32 at ``sample_rate``, streaming, refusing past ``max_seconds``."""
    import av

    try:
        with av.open(str(path)) as container:
            if not container.streams.audio:
                raise AudioReadError(f"{path}: not a readable audio file (no audio stream)")
            _check_duration(path, (container.duration or 0) / 1e6)
            resampler = av.AudioResampler(format="flt", layout="mono", rate=sample_rate)
            chunks, total = [], 0
            for frame in container.decode(container.streams.audio[0]):
                for out in resampler.resample(frame):
                    chunks.append(out.to_ndarray().reshape(-1))
                    total += chunks[-1].shape[0]
                if total > max_seconds * sample_rate:
                    raise AudioReadError(f"{path}: more than {max_seconds:g} s of audio decoded (the limit "
                                         "for formats read whole)")
            chunks += [out.to_ndarray().reshape(-1) for out in resampler.resample(None)]
    except AudioReadError:
        raise
    except Exception as e:  # av.error.*
        raise AudioReadError(f"{path}: not a readable audio file ({e})") from e
    return np.concatenate(chunks) if chunks else np.zeros(0, np.float32)


def load_audio(path: str | Path, sample_rate: int = SAMPLE_RATE) -> torch.Tensor:
    """Read an audio file, whatever its name, → mono float32 [N] at ``sample_rate``.

    libsndfile (WAV, FLAC, Ogg Vorbis/Opus, MP3 …) first, then PyAV for what it cannot read
    (AAC/M4A, WebM …). Stereo is averaged; another rate is resampled with a polyphase filter
    (scipy). The length is checked from the header first (:data:`MAX_SECONDS`), and a file read
    whole by PyAV stops at :data:`MAX_DECODED_SECONDS`.
    """
    path = Path(path)
    f = _soundfile(path)
    if f is None:
        mono = _read_pyav(path, sample_rate, MAX_DECODED_SECONDS)
    else:
        with f:
            _check_duration(path, f.frames / f.samplerate)
            if f.frames * f.channels > MAX_WHOLE_SAMPLES:
                raise AudioReadError(f"{path}: {f.frames / f.samplerate:.0f} s is too long to read whole; "
                                     "use audio_clips_from_file")
            try:
                mono = _resample(_mono(f.read(dtype="float32", always_2d=True)), f.samplerate, sample_rate)
            except Exception as e:
                raise AudioReadError(f"{path}: not a readable audio file ({e})") from e
    if mono.shape[0] == 0:
        raise AudioReadError(f"{path}: the audio file has no samples")
    return torch.from_numpy(np.ascontiguousarray(mono))


def audio_clips_from_file(path: str | Path, clip_seconds: float = 2.0, clips: int = 3, target_frames: int = 204,
                          opts: FbankOptions = FbankOptions()) -> torch.Tensor:
    """An audio file → [clips, 1, mel, target_frames], as ``audio_clips(load_audio(path))`` gives.

    A long file that libsndfile can seek is not read whole: only the ``clips`` windows are read
    (each with a margin for the resampling filter), so an hour of audio costs what 6 s cost.
    """
    path = Path(path)
    f = _soundfile(path)
    if f is None or f.frames * f.channels <= MAX_WHOLE_SAMPLES:
        if f is not None:
            f.close()
        return audio_clips(load_audio(path, opts.sample_rate), clip_seconds, clips, target_frames, opts)
    with f:
        _check_duration(path, f.frames / f.samplerate)
        rate, target = f.samplerate, opts.sample_rate
        clip_samples = int(round(clip_seconds * target))
        margin = rate // 10  # 100 ms either side: the polyphase filter's edge effects stay outside
        out = []
        try:
            for start in clip_starts(int(f.frames * target / rate), clip_samples, clips):
                first = max(int(start * rate / target) - margin, 0)
                f.seek(first)
                block = _mono(f.read(int(clip_samples * rate / target) + 2 * margin, dtype="float32",
                                     always_2d=True))
                wave = _resample(block, rate, target)
                skip = int(round((start * rate / target - first) * target / rate))
                out.append(fbank_clip(torch.from_numpy(np.ascontiguousarray(wave[skip:skip + clip_samples])),
                                      target_frames, opts))
        except AudioReadError:
            raise
        except Exception as e:
            raise AudioReadError(f"{path}: not a readable audio file ({e})") from e
    return torch.stack(out)


class AudioStem(nn.Module):
    """Overlapping spectrogram patches: Conv2d(1 → D, kernel k, stride s, no bias) → LayerNorm.

    [B, 1, mel, frames] → [B, ((mel − k)/s + 1)·((frames − k)/s + 1), D].
    """

    def __init__(self, dim: int, kernel: int = 16, stride: int = 10, eps: float = 1e-5):
        super().__init__()
        self.proj = nn.Conv2d(1, dim, kernel_size=kernel, stride=stride, bias=False)
        self.norm = nn.LayerNorm(dim, eps=eps)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        if x.dim() != 4 or x.shape[1] != 1:
            raise ValueError(f"expected filterbank clips [B, 1, mel, frames], got {tuple(x.shape)}")
        return self.norm(self.proj(x).flatten(2).transpose(1, 2))

    @staticmethod
    def num_tokens(mel: int, frames: int, kernel: int, stride: int) -> int:
        return ((mel - kernel) // stride + 1) * ((frames - kernel) // stride + 1)


def _read(path: Path, processor) -> torch.Tensor:
    a = processor.audio
    return audio_clips_from_file(path, a.clip_seconds, a.clips, a.frames,
                                 FbankOptions(sample_rate=a.sample_rate, num_mel_bins=a.mel_bins))  # [clips, 1, mel, frames]


def _stem(c, width: int) -> tuple[nn.Module, int]:
    return (AudioStem(width, c.audio_patch, c.audio_stride),
            AudioStem.num_tokens(c.audio_mel_bins, c.audio_frames, c.audio_patch, c.audio_stride))


register_modality(Modality("audio", encoder="audio", sample_dims=3, read=_read, clips=True, stem=_stem))
