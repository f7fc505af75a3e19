"""Decoding uploads off the event loop, in a worker process that can be stopped.

A hostile upload can make a decoder spin or allocate (a 96 KB video of 3,000 frames, a PDF of
huge pages). A thread cannot be stopped once started, so decoding runs in a separate process with
an address-space cap (``RLIMIT_AS``); a job that runs past its time limit gets the worker killed
and a fresh one started, and the server's event loop never waits on a decoder.
"""

from __future__ import annotations

import asyncio
import multiprocessing
import os
import resource
import threading
from concurrent.futures import ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path


class DecodeTimeout(TimeoutError):
    """Decoding ran past the time limit; the worker was stopped."""


class DecodeCrashed(RuntimeError):
    """The worker died while decoding (out of memory, or the decoder crashed)."""


def _start_worker(memory_mb: float) -> None:
    import torch

    torch.set_num_threads(1)
    if memory_mb > 0:  # the cap is on top of what the worker already maps (Python, torch, decoders)
        with open("/proc/self/statm") as f:
            mapped = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
        limit = mapped + int(memory_mb * 2**20)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))


def _decode(path: str, processor, allowed: tuple[str, ...]):
    """(modality, the encoder's input) of one file, in the worker."""
    from ..modalities.registry import modality as modality_entry
    from ..search.detect import UnsupportedFile, detect

    kind = detect(path)
    if kind not in allowed:
        raise UnsupportedFile(f"{path}: this model has no encoder for {kind} files")
    return kind, modality_entry(kind).read(Path(path), processor)


class DecodePool:
    """One worker process decoding files with ``processor`` for the modalities in ``allowed``."""

    def __init__(self, processor, allowed: tuple[str, ...], memory_mb: float = 1024):
        self.processor, self.allowed, self.memory_mb = processor, allowed, memory_mb
        self._lock = threading.Lock()
        self._pool = self._new()

    def _new(self) -> ProcessPoolExecutor:
        # forkserver: the worker does not inherit the server's threads, sockets or model.
        context = multiprocessing.get_context("forkserver")
        return ProcessPoolExecutor(1, mp_context=context, initializer=_start_worker, initargs=(self.memory_mb,))

    def warm_up(self) -> None:
        """Start the worker now rather than on the first upload."""
        self._pool.submit(int).result()

    def _restart(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not pool:
                return  # another request restarted it already
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)
            self._pool = self._new()
            self._pool.submit(int)  # start the new worker now, while the client reads its 503

    async def decode(self, path: str | Path, timeout_s: float):
        """(modality, input) of the file at ``path``, or :class:`DecodeTimeout` / :class:`DecodeCrashed`;
        a decoder's own error (a bad or oversized file) is raised as it is."""
        pool = self._pool
        try:
            future = pool.submit(_decode, str(path), self.processor, self.allowed)
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except asyncio.TimeoutError:
            self._restart(pool)
            raise DecodeTimeout(f"decoding took longer than {timeout_s:g} s") from None
        except BrokenProcessPool:
            self._restart(pool)
            raise DecodeCrashed("the decoder stopped (the file needs more memory than allowed, "
                                "or crashed the decoder)") from None
        except MemoryError:
            raise DecodeCrashed(f"decoding needs more than the {self.memory_mb:g} MiB allowed") from None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
