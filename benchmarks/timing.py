"""What every benchmark script measures with: wall time alternated between the jobs compared, peak
resident memory growth, and FLOPs counted by torch."""

from __future__ import annotations

import statistics
import threading
import time

from torch.utils.flop_counter import FlopCounterMode


def _timed(fn) -> float:
    start = time.perf_counter()
    fn()
    return time.perf_counter() - start


def alternating_medians(jobs: dict, steps: int) -> dict:
    """name → median seconds of ``jobs`` (name → no-argument function), each warmed up once, then run
    in turn ``steps`` times, so that a slow patch of the machine hits every job alike."""
    for fn in jobs.values():
        fn()
    times = {k: [] for k in jobs}
    for _ in range(steps):
        for k, fn in jobs.items():
            times[k].append(_timed(fn))
    return {k: statistics.median(v) for k, v in times.items()}


def _rss_kib() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * 4  # resident pages × 4 KiB


def peak_rss_growth_mib(fn) -> float:
    """Peak growth of resident memory while ``fn`` runs, sampled every 0.5 ms (MiB)."""
    base, peak, done = _rss_kib(), [0], threading.Event()

    def sample():
        while not done.is_set():
            peak[0] = max(peak[0], _rss_kib())
            time.sleep(0.0005)

    t = threading.Thread(target=sample)
    t.start()
    try:
        fn()
    finally:
        done.set()
        t.join()
    return max(peak[0] - base, 0) / 1024


def flops(fn) -> int:
    with FlopCounterMode(display=False) as counter:
        fn()
    return counter.get_total_flops()
