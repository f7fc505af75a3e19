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
from concurrent.futures import Future, ProcessPoolExecutor
from concurrent.futures.process import BrokenProcessPool
from pathlib import Path

STARTUP_S = 120  # how long a fresh worker may take to start (import torch) before it counts as broken


class DecodeTimeout(TimeoutError):
    """Decoding ran past the time limit; the worker was stopped."""


class DecodeBusy(Exception):
    """The worker was being replaced when the file arrived; nothing is known about the file: retry."""


class DecodeCrashed(RuntimeError):
    """The worker died while decoding (out of memory, or the decoder crashed)."""


def _start_worker(memory_mb: float) -> None:
    import av  # noqa: F401
    import pypdfium2  # noqa: F401
    import soundfile  # noqa: F401
    import torch
    from PIL import Image

    from ..modalities.registry import modality_names
    from ..search import detect  # noqa: F401

    # Every reader and Pillow's format plugins loaded now, so that a file's time limit counts decoding only
    modality_names()
    Image.init()
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
        self._pool, self._ready = self._new()

    def _new(self) -> tuple[ProcessPoolExecutor, Future]:
        """A pool whose worker starts now; the second item completes once it has (its first task)."""
        # forkserver: the worker does not inherit the server's threads, sockets or model.
        context = multiprocessing.get_context("forkserver")
        pool = ProcessPoolExecutor(1, mp_context=context, initializer=_start_worker, initargs=(self.memory_mb,))
        return pool, pool.submit(int)

    def warm_up(self) -> None:
        """Wait until the worker has started (rather than on the first upload)."""
        self._ready.result()

    def _restart(self, pool: ProcessPoolExecutor) -> None:
        with self._lock:
            if self._pool is not pool:
                return  # another request restarted it already
            for process in list(getattr(pool, "_processes", {}).values()):
                process.kill()
            pool.shutdown(wait=False, cancel_futures=True)
            self._pool, self._ready = self._new()  # starts while the client reads its 503

    async def decode(self, path: str | Path, timeout_s: float):
        """(modality, input) of the file at ``path``, or :class:`DecodeTimeout` / :class:`DecodeCrashed`;
        a decoder's own error (a bad or oversized file) is raised as it is. ``timeout_s`` counts from
        when the worker is ready: a worker restarted after the last timeout (it imports torch, which
        takes seconds on a busy machine) must not make the next file time out too."""
        pool, ready, future = self._pool, self._ready, None
        try:
            try:
                await asyncio.wait_for(asyncio.wrap_future(ready), STARTUP_S)
            except asyncio.TimeoutError:
                self._restart(pool)
                raise DecodeCrashed(f"the decoder did not start within {STARTUP_S} s") from None
            except BrokenProcessPool:  # the worker died starting up: not this file's doing, so retryable
                self._restart(pool)
                raise DecodeBusy("the decoder was restarting; retry") from None
            try:
                future = pool.submit(_decode, str(path), self.processor, self.allowed)
            except RuntimeError:  # another request restarted the pool since we read it
                raise DecodeBusy("the decoder was restarting; retry") from None
            return await asyncio.wait_for(asyncio.wrap_future(future), timeout_s)
        except asyncio.CancelledError:
            # The request was abandoned (its own time limit, a disconnect): the job must not keep the
            # worker busy for the next upload, so the worker goes.
            if future is not None and not future.done():
                self._restart(pool)
            raise
        except asyncio.TimeoutError:
            self._restart(pool)
            raise DecodeTimeout(f"decoding took longer than {timeout_s:g} s") from None
        except BrokenProcessPool:
            if self._pool is not pool:  # another request's restart killed the worker: not this file's doing
                raise DecodeBusy("the decoder was restarted while decoding this file; retry") from None
            self._restart(pool)
            raise DecodeCrashed("the decoder stopped (the file needs more memory than allowed, "
                                "or crashed the decoder)") from None
        except MemoryError:
            raise DecodeCrashed(f"decoding needs more than the {self.memory_mb:g} MiB allowed") from None

    def close(self) -> None:
        self._pool.shutdown(wait=True, cancel_futures=True)
