"""Ctrl-C and SIGTERM stop a run the same way, whatever disposition the process inherited.

A process started in the background by a non-interactive shell inherits SIGINT as *ignored*; Python then
never raises KeyboardInterrupt and the run cannot be stopped cleanly. The handlers are installed explicitly.
"""

from __future__ import annotations

import signal
import threading

EXIT_INTERRUPTED = 130
EXIT_TERMINATED = 143


class Terminated(KeyboardInterrupt):
    """SIGTERM, turned into an exception so that cleanup code (checkpoint flushes, lock release) runs."""


def _raise_terminated(signum: int, frame: object) -> None:
    raise Terminated()


def install_stop_handlers() -> bool:
    """SIGINT raises KeyboardInterrupt and SIGTERM raises :class:`Terminated`, even when inherited as ignored.

    Returns False (and changes nothing) outside the main thread, where Python cannot set handlers.
    """
    if threading.current_thread() is not threading.main_thread():
        return False
    signal.signal(signal.SIGINT, signal.default_int_handler)
    signal.signal(signal.SIGTERM, _raise_terminated)
    return True


def exit_code(exc: KeyboardInterrupt) -> int:
    """130 for Ctrl-C, 143 for SIGTERM (the shell's conventions)."""
    return EXIT_TERMINATED if isinstance(exc, Terminated) else EXIT_INTERRUPTED
