"""Load test of `polymodal serve` over loopback: N concurrent clients for a fixed time.

    python benchmarks/load.py --index INDEX [--clients 8] [--seconds 30]

Starts the server on a free 127.0.0.1 port, runs polymodal.server.loadtest (text searches, item
lookups and image-upload searches in turn), prints requests/s, errors and p50/p99 latency.
"""

from __future__ import annotations

import argparse
import json
import secrets
import socket
import subprocess
import sys
import time

import httpx

from polymodal.server.loadtest import run_load


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--upload", help="an image to search with (default: text and item requests only)")
    args = parser.parse_args()
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    token = secrets.token_urlsafe(16)
    proc = subprocess.Popen([sys.executable, "-m", "polymodal.cli", "serve", args.index, "--port", str(port),
                             "--token", token], stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        for _ in range(300):
            try:
                if httpx.get(base + "/api/health", headers={"Authorization": f"Bearer {token}"}).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.2)
        report = run_load(base, args.clients, args.seconds, token=token, upload=args.upload)
        print(json.dumps({"clients": args.clients, "seconds": args.seconds, **report.summary()}))
        for e in report.errors[:5]:
            print("error:", e)
    finally:
        proc.terminate()
        proc.wait(10)


if __name__ == "__main__":
    main()
