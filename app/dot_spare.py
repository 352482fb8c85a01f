"""Warm graphviz dot processes started ahead of layouts: each lays out one graph, then exits.

A fresh dot spends most of a small layout starting: loading its plugins, then fontconfig and
pango on the first text it measures. A spare is started with the same command (limits and
priority included), given a constant warm-up graph whose answer is read and dropped, and then
waits on its stdin for the one graph of the layout that takes it. It never sees a second one.
"""

from __future__ import annotations

import atexit
import json
import os
import selectors
import shutil
import subprocess
import threading
import time
from collections.abc import Callable, Hashable

WARM_UP_GRAPH = (
    b'digraph warm_up { graph [fontsize=14]; node [shape=box, fixedsize=true, label=""];'
    b' subgraph cluster_w { label="warm"; a } a -> b }\n'
)
WARM_UP_SECONDS = 10.0
MAX_SPARES = 2  # commands (format and limits) with a spare at once


def dot_fingerprint() -> tuple[str, int, int, int] | None:
    """Which dot the PATH names now (path, inode, size, mtime): a spare runs only that one."""
    path = shutil.which("dot")
    if path is None:
        return None
    try:
        info = os.stat(path)
    except OSError:
        return None
    return path, info.st_ino, info.st_size, info.st_mtime_ns


def start_dot(argv: list[str], preexec: Callable[[], None] | None) -> subprocess.Popen[bytes]:
    """A dot process with pipes on stdin, stdout and stderr."""
    return subprocess.Popen(
        argv,
        stdin=subprocess.PIPE,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        preexec_fn=preexec,  # only setrlimit and nice run in the child
    )


def _warm_up(process: subprocess.Popen[bytes], seconds: float) -> bool:
    """Lay out the warm-up graph and read its whole answer; whether that worked in time."""
    assert process.stdin is not None and process.stdout is not None
    try:
        process.stdin.write(WARM_UP_GRAPH)
        process.stdin.flush()
    except OSError:
        return False
    deadline = time.monotonic() + seconds
    decoder = json.JSONDecoder()
    answer = b""
    with selectors.DefaultSelector() as selector:
        selector.register(process.stdout, selectors.EVENT_READ)
        while (left := deadline - time.monotonic()) > 0:
            if not selector.select(left):
                continue
            chunk = os.read(process.stdout.fileno(), 65536)
            if not chunk:
                return False
            answer += chunk
            try:
                _, end = decoder.raw_decode(answer.decode("utf-8", "replace"))
            except ValueError:
                continue
            return not answer[end:].strip()
    return False


def discard(process: subprocess.Popen[bytes]) -> None:
    """Stop a dot process and reap it."""
    if process.poll() is None:
        process.kill()
    for stream in (process.stdin, process.stdout, process.stderr):
        if stream is not None:
            try:
                stream.close()
            except OSError:
                pass
    process.wait()


class SpareDots:
    """At most one warm spare dot per command, kept for the next layout with that command."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._spares: dict[Hashable, subprocess.Popen[bytes]] = {}
        self._starting: set[Hashable] = set()
        self._failed: set[Hashable] = set()  # commands whose dot does not warm up: none kept

    def take(self, key: Hashable) -> subprocess.Popen[bytes] | None:
        """The waiting spare for this command, if one is alive (it is no longer kept)."""
        with self._lock:
            process = self._spares.pop(key, None)
        if process is not None and process.poll() is not None:
            discard(process)
            return None
        return process

    def refill(
        self, key: Hashable, argv: list[str], preexec: Callable[[], None] | None, seconds: float
    ) -> None:
        """Start and warm a spare for this command in the background, unless one is there."""
        with self._lock:
            if key in self._spares or key in self._starting or key in self._failed:
                return
            self._starting.add(key)
        threading.Thread(
            target=self._start, args=(key, argv, preexec, seconds), daemon=True, name="ae-dot"
        ).start()

    def _start(
        self, key: Hashable, argv: list[str], preexec: Callable[[], None] | None, seconds: float
    ) -> None:
        process: subprocess.Popen[bytes] | None = None
        try:
            process = start_dot(argv, preexec)
            warm = _warm_up(process, min(seconds, WARM_UP_SECONDS))
        except OSError:
            warm = False
        evicted: list[subprocess.Popen[bytes]] = []
        with self._lock:
            self._starting.discard(key)
            if warm and process is not None:
                self._spares[key] = process
                while len(self._spares) > MAX_SPARES:
                    evicted.append(self._spares.pop(next(iter(self._spares))))
            else:
                self._failed.add(key)
                if process is not None:
                    evicted.append(process)
        for old in evicted:
            discard(old)

    def settle(self, seconds: float = 30.0) -> None:
        """Wait until no spare is starting (at most seconds)."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            with self._lock:
                if not self._starting:
                    return
            time.sleep(0.005)

    def count(self) -> int:
        """How many spares wait now."""
        with self._lock:
            return len(self._spares)

    def close(self) -> None:
        """Stop every waiting spare."""
        with self._lock:
            spares, self._spares = list(self._spares.values()), {}
        for process in spares:
            discard(process)


SPARES = SpareDots()
atexit.register(SPARES.close)
