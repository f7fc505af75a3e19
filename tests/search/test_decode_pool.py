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
