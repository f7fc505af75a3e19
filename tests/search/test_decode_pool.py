import pytest
"""The upload decoder's worker process: a restart (after a file ran past its time limit) must not
make the next file time out while the fresh worker is still importing torch."""

import asyncio

from polymodal.server.decode import DecodePool


def test_a_restarted_worker_is_waited_for_before_the_time_limit_starts(tmp_path):
    path = tmp_path / "q.txt"
    path.write_text("a red circle")
    pool = DecodePool(None, ("text",), memory_mb=0)
    try:
        pool.warm_up()
        assert asyncio.run(pool.decode(path, 5.0))[0] == "text"
        pool._restart(pool._pool)  # what a timed-out upload does
        # The fresh worker needs well over 0.2 s to start (it imports torch); only decoding counts.
        kind, text = asyncio.run(pool.decode(path, 0.2))
        assert kind == "text" and "a red circle" in str(text)
    finally:
        pool.close()


@pytest.mark.slow
def test_a_file_whose_worker_another_request_restarted_is_retryable_not_blamed(tmp_path):
    """Two requests: one decoding, another one's time limit restarts the worker. The first file did
    nothing wrong, so it gets DecodeBusy (a 503 to retry), not DecodeCrashed (a 400 blaming the file)."""
    import sys
    from pathlib import Path

    import pytest

    sys.path.insert(0, str(Path(__file__).parent))
    from hostile_files import slow_pdf

    from polymodal.modalities.processor import Processor
    from polymodal.server.decode import DecodeBusy

    pdf = slow_pdf(tmp_path / "slow.pdf", 1_000_000)
    pool = DecodePool(Processor(), ("pdf",), memory_mb=0)
    try:
        pool.warm_up()

        async def both():
            job = asyncio.ensure_future(pool.decode(pdf, 60.0))
            await asyncio.sleep(0.5)  # rendering now
            pool._restart(pool._pool)  # what another request's time limit does
            return await job
        with pytest.raises(DecodeBusy, match="restarted while decoding"):
            asyncio.run(both())
    finally:
        pool.close()
