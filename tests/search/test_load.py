"""A bounded load test over loopback: 8 concurrent clients for 30 s against the real server, with
zero errors (latencies go to docs/benchmarks.md via benchmarks/load.py, never asserted here)."""

import pytest

from polymodal.server.loadtest import run_load


def test_eight_clients_for_thirty_seconds_without_errors(server):
    client, folder, base = server
    report = run_load(base, clients=8, seconds=30, token="s3cret", upload=folder / "scene00000.png")
    assert report.errors == []
    assert len(report.latencies_ms) > 8  # every client got answers, not one request each


def test_only_loopback_is_accepted():
    with pytest.raises(ValueError, match="loopback servers only"):
        run_load("http://example.org", seconds=0.1)
