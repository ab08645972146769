"""Helpers the benchmarks share: free ports, child processes, waiting for a server, peak memory."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@contextmanager
def child(
    args: list[str], env: dict[str, str] | None = None, log: Path | None = None
) -> Iterator[subprocess.Popen[bytes]]:
    """Runs a Python module or command in its own process for the duration of the block; its output goes
    to `log` when given, else nowhere (a pipe nobody reads would stall a chatty child once it fills)."""
    output = log.open("wb") if log is not None else subprocess.DEVNULL
    process = subprocess.Popen(
        [sys.executable, *args],
        env={**os.environ, **(env or {})},
        cwd=ROOT,
        stdout=output,
        stderr=output if log is not None else subprocess.DEVNULL,
    )
    try:
        yield process
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
        if log is not None:
            output.close()  # type: ignore[union-attr]


def wait_http(url: str, limit: float = 60.0) -> None:
    deadline = time.monotonic() + limit
    while True:
        try:
            with urllib.request.urlopen(url, timeout=2):  # noqa: S310 - our own local server
                return
        except OSError:
            if time.monotonic() > deadline:
                raise RuntimeError(f"{url} did not come up within {limit}s") from None
            time.sleep(0.2)


def percentile(values: list[float], fraction: float) -> float:
    ordered = sorted(values)
    if not ordered:
        return 0.0
    return ordered[min(len(ordered) - 1, round(fraction * (len(ordered) - 1)))]


def peak_rss_mb() -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith("VmHWM:"):
            return int(line.split()[1]) / 1024
    return 0.0


def run(coroutine: object) -> object:
    return asyncio.run(coroutine)  # type: ignore[arg-type]
