"""A bounded load test over loopback: 8 concurrent clients for 10 s against the real server, with
zero errors (latencies go to docs/benchmarks.md via benchmarks/load.py, never asserted here)."""

import pytest

from polymodal.server.loadtest import run_load


@pytest.mark.slow
def test_eight_clients_for_ten_seconds_without_errors(server):
    client, folder, base = server
    report = run_load(base, clients=8, seconds=10, token="s3cret", upload=folder / "scene00000.png")
    assert report.errors == []
    assert len(report.latencies_ms) > 8  # every client got answers, not one request each


def test_a_failing_first_request_is_reported_not_lost(server):
    """Each client's first request (the ids it then looks up) failing — here a wrong token — is an
    error in the report, not a thread that dies silently and leaves the report clean."""
    _, _, base = server
    report = run_load(base, clients=2, seconds=0.5, token="wrong")
    assert len(report.errors) == 2 and all("first search" in e and "401" in e for e in report.errors)


def test_only_loopback_is_accepted():
    with pytest.raises(ValueError, match="loopback servers only"):
        run_load("http://example.org", seconds=0.1)
