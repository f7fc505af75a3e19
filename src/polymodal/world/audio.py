"""Audio of a scene: 16 kHz mono mixing one sound per object — a timbre that depends on its
shape, louder when the object is larger — over the place's ambience."""

from __future__ import annotations

import numpy as np

from .scene import Scene, sample_rng

SAMPLE_RATE = 16_000
AMPLITUDE = {"small": 0.12, "large": 0.32}
AMBIENCE_LEVEL = 0.04


def _tone(shape: str, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    """A unit-peak waveform whose spectrum identifies the shape."""
    phase = rng.uniform(0, 2 * np.pi)
    if shape == "circle":  # pure sine
        return np.sin(2 * np.pi * 440 * t + phase)
    if shape == "square":  # odd harmonics
        return np.sign(np.sin(2 * np.pi * 220 * t + phase)) * 0.8
    if shape == "triangle":  # triangle wave
        return 2 / np.pi * np.arcsin(np.sin(2 * np.pi * 330 * t + phase))
    if shape == "star":  # bell: decaying high partials, struck 4 times a second
        env = np.exp(-12 * ((t * 4) % 1.0))
        return env * (np.sin(2 * np.pi * 880 * t) + 0.5 * np.sin(2 * np.pi * 2217 * t + phase)) / 1.5
    if shape == "hexagon":  # a two-note chord
        return (np.sin(2 * np.pi * 294 * t + phase) + np.sin(2 * np.pi * 370 * t)) / 2
    if shape == "cross":  # a buzzing pulse train at 110 Hz
        return ((t * 110 + phase / (2 * np.pi)) % 1.0 < 0.1).astype(np.float64) * 2 - 0.2
    raise ValueError(f"unknown shape {shape!r}")


def _smooth(x: np.ndarray, width: int) -> np.ndarray:
    """Moving average over ``width`` samples (via a cumulative sum: O(n) whatever the width)."""
    c = np.concatenate([[0.0], np.cumsum(x)])
    out = (c[width:] - c[:-width]) / width
    return np.concatenate([out, np.full(width - 1, out[-1])])


def _ambience(place: str, t: np.ndarray, rng: np.random.Generator) -> np.ndarray:
    noise = rng.standard_normal(t.shape[0])
    if place == "beach":  # surf: low-passed noise swelling every ~4 s
        return _smooth(noise, 32) * (0.6 + 0.4 * np.sin(2 * np.pi * 0.25 * t))
    if place == "forest":  # birdsong: short high chirps over faint noise
        chirps = np.sin(2 * np.pi * 3 * t + rng.uniform(0, 6)) > 0.95
        return 0.1 * noise + chirps * np.sin(2 * np.pi * (3000 + 800 * np.sin(2 * np.pi * 9 * t)) * t)
    if place == "city":  # traffic rumble (slow random walk) + mains hum
        rumble = _smooth(noise, 400)
        return rumble / (np.abs(rumble).max() + 1e-9) + 0.5 * np.sin(2 * np.pi * 50 * t)
    if place == "kitchen":  # clatter: sparse decaying clicks over faint noise
        out = 0.1 * noise
        decay = np.exp(-np.arange(80) / 10)
        for start in np.flatnonzero(rng.random(t.shape[0] - 80) < 0.002):
            out[start:start + 80] += rng.uniform(-2, 2) * decay
        return out
    if place == "desert":  # wind: band noise with gusts
        return (_smooth(noise, 8) - _smooth(noise, 64)) * (1 + np.sin(2 * np.pi * 0.5 * t))
    raise ValueError(f"unknown place {place!r}")


def render_audio(scene: Scene, seconds: float = 1.0) -> np.ndarray:
    """float32 [round(seconds · 16000)] in [-1, 1]."""
    if seconds <= 0:
        raise ValueError(f"audio duration must be positive, got {seconds}")
    rng = sample_rng(scene.seed, scene.split, scene.index, "audio")
    t = np.arange(int(round(seconds * SAMPLE_RATE))) / SAMPLE_RATE
    ambience = _ambience(scene.place, t, rng)
    mix = AMBIENCE_LEVEL * ambience / (np.sqrt(np.mean(ambience**2)) + 1e-9)
    for obj in scene.objects:
        mix += AMPLITUDE[obj.size] * _tone(obj.shape, t, rng)
    peak = np.abs(mix).max()
    if peak > 0.99:  # several loud objects: scale down rather than clip
        mix *= 0.99 / peak
    return mix.astype(np.float32)
