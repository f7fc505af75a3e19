"""Audio preprocessing: the Kaldi filterbank against kaldi-native-fbank, clips, file readers."""

import math

import numpy as np
import pytest
import soundfile as sf
import torch

from polymodal.modalities.audio import (AudioReadError, FbankOptions, audio_clips, clip_starts, kaldi_fbank,
                                        load_audio, mel_banks)


def _signal(seconds=2.0, sr=16000):
    g = torch.Generator().manual_seed(0)
    t = torch.arange(int(seconds * sr)) / sr
    return (0.1 * torch.randn(t.shape[0], generator=g) + 0.3 * torch.sin(2 * math.pi * 440 * t)).float()


def _reference(wave, bins, frame_ms=25.0):
    knf = pytest.importorskip("kaldi_native_fbank")
    o = knf.FbankOptions()
    o.frame_opts.dither = 0.0
    o.frame_opts.window_type = "hanning"
    o.frame_opts.frame_length_ms = frame_ms
    o.mel_opts.num_bins = bins
    o.htk_compat, o.use_energy = True, False
    f = knf.OnlineFbank(o)
    f.accept_waveform(16000, wave.tolist())
    f.input_finished()
    return torch.tensor(np.stack([f.get_frame(i) for i in range(f.num_frames_ready)]))


# kaldi-native-fbank refuses 128 bins on a 512-point FFT (ImageBind's setting leaves one filter
# empty, where torchaudio and we give log(eps)), so 128 bins are checked with 50 ms frames.
@pytest.mark.parametrize("bins,frame_ms", [(64, 25.0), (80, 25.0), (128, 50.0)])
def test_fbank_matches_kaldi_native_fbank(bins, frame_ms):
    wave = _signal()
    ref = _reference(wave, bins, frame_ms)
    ours = kaldi_fbank(wave, FbankOptions(num_mel_bins=bins, frame_length_ms=frame_ms))
    assert ours.shape == ref.shape
    max_db = 10 / math.log(10) * (ours - ref).abs().max().item()  # natural-log energies → dB
    assert max_db <= 1e-3, f"max |Δ| {max_db:.2e} dB"


def test_imagebind_settings_frame_count_and_empty_filter():
    fb = kaldi_fbank(_signal())
    assert fb.shape == (1 + (32000 - 400) // 160, 128)
    empty = mel_banks(FbankOptions()).sum(1) == 0
    assert empty.sum() == 1 and torch.allclose(fb[:, empty], torch.tensor(math.log(torch.finfo(torch.float32).eps)))


def test_audio_clips_pad_crop_and_spread():
    clips = audio_clips(_signal(5.0), clip_seconds=2.0, clips=3)
    assert clips.shape == (3, 1, 128, 204)
    # 198 real frames then zero padding, normalised: the padded columns equal (0 + 4.268) / 9.138
    assert torch.allclose(clips[0, 0, :, 198:], torch.tensor(4.268 / 9.138))
    assert clip_starts(80000, 32000, 3) == [0, 24000, 48000]
    assert clip_starts(1000, 32000, 2) == [0, 0]
    with pytest.raises(ValueError, match="shorter than one 400-sample frame"):
        kaldi_fbank(torch.zeros(100))


@pytest.mark.parametrize("ext,subtype", [(".wav", "PCM_16"), (".flac", "PCM_16"), (".ogg", "VORBIS"),
                                         (".mp3", "MPEG_LAYER_III")])
def test_load_audio_formats(tmp_path, ext, subtype):
    wave = _signal(1.0).numpy()
    stereo = np.stack([wave, wave], axis=1) * 0.5
    path = tmp_path / f"a{ext}"
    sf.write(path, stereo, 16000, subtype=subtype)
    got = load_audio(path)
    assert got.shape == (16000,) and got.dtype == torch.float32
    if ext not in (".ogg", ".mp3"):  # lossless: the mono mix equals the signal to 16-bit precision
        assert np.abs(got.numpy() - 0.5 * wave).max() < 1e-3


def test_load_audio_resamples(tmp_path):
    t = np.arange(8000) / 8000
    sf.write(tmp_path / "a.wav", 0.5 * np.sin(2 * np.pi * 440 * t), 8000)
    got = load_audio(tmp_path / "a.wav").numpy()
    assert got.shape == (16000,)
    peak = np.argmax(np.abs(np.fft.rfft(got)))  # 1 s at 16 kHz: bin = frequency in Hz
    assert peak == 440


def test_bad_audio_files_name_the_file(tmp_path):
    (tmp_path / "bad.wav").write_bytes(b"RIFF not really")
    with pytest.raises(AudioReadError, match="bad.wav: not a readable audio file"):
        load_audio(tmp_path / "bad.wav")
    (tmp_path / "x.mp4").write_bytes(b"\x00\x00\x00\x18ftypisom but nothing else")
    with pytest.raises(AudioReadError, match=r"x.mp4: not a readable audio file"):
        load_audio(tmp_path / "x.mp4")
    sf.write(tmp_path / "empty.wav", np.zeros((0, 1)), 16000)
    with pytest.raises(AudioReadError, match="empty.wav: the audio file has no samples"):
        load_audio(tmp_path / "empty.wav")
