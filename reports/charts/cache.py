"""Rendered-chart cache: the same spec over the same data is drawn once, then served from memory."""

from __future__ import annotations

import asyncio
import threading
from collections import OrderedDict
from typing import Literal, overload

from reports.charts.render import render_png, render_svg
from reports.charts.spec import ChartSpec

ChartFormat = Literal["png", "svg"]
CacheKey = tuple[str, str, ChartFormat]

DEFAULT_MAX_BYTES = 64 * 1024 * 1024


class ChartCache:
    """Thread-safe LRU of rendered charts, bounded by total bytes rather than entry count.

    Concurrent requests for the same missing chart render it once: after a data refresh every
    dashboard viewer asks for the same charts at the same moment.
    """

    def __init__(self, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        if max_bytes <= 0:
            raise ValueError("max_bytes must be positive")
        self.max_bytes = max_bytes
        self._entries: OrderedDict[CacheKey, bytes | str] = OrderedDict()
        self._sizes: dict[CacheKey, int] = {}
        self._size_bytes = 0
        self._lock = threading.Lock()
        self._render_locks: dict[CacheKey, threading.Lock] = {}
        self.renders = 0
        self.hits = 0

    def get(self, key: CacheKey) -> bytes | str | None:
        with self._lock:
            rendered = self._entries.get(key)
            if rendered is not None:
                self._entries.move_to_end(key)
                self.hits += 1
            return rendered

    def put(self, key: CacheKey, rendered: bytes | str) -> None:
        size = len(rendered) if isinstance(rendered, bytes) else len(rendered.encode("utf-8"))
        if size > self.max_bytes:
            return  # caching it would evict everything else for one oversized chart
        with self._lock:
            if key in self._entries:
                self._size_bytes -= self._sizes[key]
            self._entries[key] = rendered
            self._entries.move_to_end(key)
            self._sizes[key] = size
            self._size_bytes += size
            while self._size_bytes > self.max_bytes:
                evicted, _ = self._entries.popitem(last=False)
                self._size_bytes -= self._sizes.pop(evicted)

    @property
    def size_bytes(self) -> int:
        return self._size_bytes

    def __len__(self) -> int:
        return len(self._entries)

    def render_missing(self, key: CacheKey, spec: ChartSpec, fmt: ChartFormat) -> bytes | str:
        with self._lock:
            render_lock = self._render_locks.setdefault(key, threading.Lock())
        with render_lock:
            rendered = self.get(key)  # another thread may have drawn it while we waited
            if rendered is None:
                rendered = render_png(spec) if fmt == "png" else render_svg(spec)
                with self._lock:
                    self.renders += 1
                self.put(key, rendered)
        with self._lock:
            self._render_locks.pop(key, None)
        return rendered


@overload
def render_cached(
    spec: ChartSpec, fmt: Literal["png"], data_version: str | int, cache: ChartCache
) -> bytes: ...
@overload
def render_cached(
    spec: ChartSpec, fmt: Literal["svg"], data_version: str | int, cache: ChartCache
) -> str: ...
def render_cached(
    spec: ChartSpec, fmt: ChartFormat, data_version: str | int, cache: ChartCache
) -> bytes | str:
    """The chart from the cache, drawing it on a miss.

    data_version is the caller's marker for the underlying data (e.g. the rollup's last refresh),
    so a chart whose spec looks the same but was drawn from stale data is never served.
    """
    if fmt not in ("png", "svg"):
        raise ValueError(f"chart format must be 'png' or 'svg', got {fmt!r}")
    key: CacheKey = (spec.fingerprint(), str(data_version), fmt)
    rendered = cache.get(key)
    if rendered is None:
        rendered = cache.render_missing(key, spec, fmt)
    return rendered


@overload
async def draw(spec: ChartSpec, fmt: Literal["png"], data_version: str | int, cache: ChartCache) -> bytes: ...
@overload
async def draw(spec: ChartSpec, fmt: Literal["svg"], data_version: str | int, cache: ChartCache) -> str: ...
async def draw(spec: ChartSpec, fmt: ChartFormat, data_version: str | int, cache: ChartCache) -> bytes | str:
    """The chart from the cache, drawn off the event loop on a miss (about 100 ms of CPU), so other
    requests, and Slack's 3-second acknowledgement, never wait for matplotlib. Bots, pages and saved
    reports all draw through here."""
    if fmt == "png":
        return await asyncio.to_thread(render_cached, spec, "png", data_version, cache)
    return await asyncio.to_thread(render_cached, spec, "svg", data_version, cache)
