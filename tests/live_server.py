"""Run the real app under uvicorn on a free loopback port, in a background thread."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

import httpx
import uvicorn

from app.config import Settings
from app.http_server import server_config
from app.main import create_app


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until_healthy(
    base: str,
    running: Callable[[], bool] = lambda: True,
    seconds: float = 120,
    request_timeout: float = 1,
) -> bool:
    """Whether the health check at base answered 200 before the server stopped or time ran out."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and running():
        try:
            if httpx.get(f"{base}/api/v1/health", timeout=request_timeout).status_code == 200:
                return True
        except httpx.HTTPError:
            time.sleep(0.1)
    return False


@contextmanager
def live_server(settings: Settings) -> Iterator[tuple[str, object]]:
    """(base URL, app) of a server that stops when the block ends."""
    app = create_app(settings)
    port = free_port()
    config = server_config(app, settings, host="127.0.0.1", port=port, log_level="warning")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    base = f"http://127.0.0.1:{port}"
    if not wait_until_healthy(base, thread.is_alive):
        raise RuntimeError("the test server did not start")
    try:
        yield base, app
    finally:
        server.should_exit = True
        thread.join(timeout=15)


@contextmanager
def served_process(settings: dict[str, object]) -> Iterator[str]:
    """Base URL of `autograd-explorer serve` run as its own process with AE_* settings."""
    port = free_port()
    env = {**os.environ, **{f"AE_{k.upper()}": str(v) for k, v in settings.items()}}
    command = [sys.executable, "-m", "app.cli", "serve", "--port", str(port)]
    process = subprocess.Popen(command, env=env, stderr=subprocess.PIPE, stdout=subprocess.DEVNULL)
    base = f"http://127.0.0.1:{port}"
    try:
        if not wait_until_healthy(base, lambda: process.poll() is None):
            raise RuntimeError(f"the server did not start: {process.stderr.read()[-2000:]!r}")
        yield base
    finally:
        process.terminate()
        try:
            process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
        process.stderr.close()
