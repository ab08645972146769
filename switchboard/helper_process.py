"""What a helper process the app starts (the customer import's phone-number reader) does first: it leaves
Ctrl-C to the process that started it, which stops it in order, and it ends when that process ends, even
one killed outright (out of memory, say), instead of waiting for work forever."""

from __future__ import annotations

import multiprocessing
import multiprocessing.connection
import os
import signal
import threading


def started() -> None:
    """The initializer of a helper process (ProcessPoolExecutor(initializer=started))."""
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    parent = multiprocessing.parent_process()
    if parent is not None:
        threading.Thread(
            target=_end_with, args=(parent.sentinel,), name="ends-with-parent", daemon=True
        ).start()


def _end_with(sentinel: int) -> None:
    multiprocessing.connection.wait([sentinel])
    os._exit(0)
