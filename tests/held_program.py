"""A program that holds its worker until the test releases it, so tests wait on events, not time."""

from __future__ import annotations

import os
import signal
from pathlib import Path

# one name per test process (at most 15 characters), so runs side by side release only their own
HELD_NAME = f"ae-held-{os.getpid() % 10**7}"
# It names its process, then waits for SIGUSR1 (found by that name in /proc).
HELD_PROGRAM = (
    "import ctypes, signal\n"
    "signal.pthread_sigmask(signal.SIG_BLOCK, {signal.SIGUSR1})\n"
    f"ctypes.CDLL(None).prctl(15, {HELD_NAME.encode()!r}, 0, 0, 0)\n"
    "signal.sigwait({signal.SIGUSR1})\n"
    "import torch\n"
    "x = torch.ones(1, requires_grad=True)\n"
)


def held_now() -> list[int]:
    """Process ids of the held programs that run now."""
    found = []
    for entry in os.listdir("/proc"):
        try:
            if entry.isdigit() and Path(f"/proc/{entry}/comm").read_text().strip() == HELD_NAME:
                found.append(int(entry))
        except (OSError, ValueError):
            pass
    return found


def release_held() -> None:
    """Signal every held program that runs now."""
    for pid in held_now():
        try:
            os.kill(pid, signal.SIGUSR1)
        except ProcessLookupError:
            pass
