"""Checks and renders of template text a person has just typed, run away from the event loop within a time limit.

Rendering is CPU work. On the event loop, one costly template would hold up every other request the process
is answering, /healthz included. The render budget (rendering.py) makes every render finite and keeps each
single operation short; on top of that, trials run on a small pool of threads, where the renders check the
clock and stop themselves once their time is up (nobody can stop a thread from outside), and the person gets
an answer within the limit whatever the thread is doing.

Threads rather than processes: a render needs the compiled template and plain values, and nothing in it
holds the interpreter lock for long (the budget sees to that), so the event loop keeps its turn; a process
per trial would cost more than most trials take.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from functools import lru_cache
from typing import TypeVar

from domain.templates.model import TemplateError
from domain.templates.rendering import render_time_limit

#: How long a trial may take; renders inside stop themselves at this point.
TRIAL_SECONDS = 2.0
#: Trials one process runs at once: a few people saving or previewing together, without trials taking
#: every core from the requests the process serves.
TRIAL_THREADS = 2
#: How much longer the caller waits than the renders run, for the thread to report back.
_GRACE_SECONDS = 0.5

T = TypeVar("T")


async def run_trial(work: Callable[[], T], *, seconds: float = TRIAL_SECONDS) -> T:
    """Run ``work`` (template checks and renders) on a trial thread; a TemplateError once ``seconds`` pass."""
    loop = asyncio.get_running_loop()
    running = loop.run_in_executor(_trial_threads(), _within, work, seconds)
    try:
        return await asyncio.wait_for(running, seconds + _GRACE_SECONDS)
    except TimeoutError:
        raise TemplateError(
            f"The template could not be tried out within {seconds:g} seconds: it does too much work, or the "
            "server is busy. Simplify its loops and filters, or try again in a moment."
        ) from None


def _within(work: Callable[[], T], seconds: float) -> T:
    with render_time_limit(seconds):
        return work()


@lru_cache(maxsize=1)
def _trial_threads() -> ThreadPoolExecutor:
    return ThreadPoolExecutor(max_workers=TRIAL_THREADS, thread_name_prefix="template-trial")
