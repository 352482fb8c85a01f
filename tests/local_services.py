"""A real redis-server and a real nginx on loopback for tests: free ports, temporary folders,
stopped and removed when the block ends; tests skip, saying why, where a binary is missing."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import httpx
import pytest

from tests.live_server import free_port, wait_until_healthy

REDIS = shutil.which("redis-server")
NGINX = shutil.which("nginx") or next(
    (p for p in ("/usr/sbin/nginx", "/usr/local/sbin/nginx") if Path(p).exists()), None
)
DEADLINE_SECONDS = 60  # generous: the machine may be busy; nothing here measures speed


def need_redis() -> str:
    """The redis-server binary, or skip the test."""
    if REDIS is None:
        pytest.skip("redis-server is not installed (Debian: apt-get install redis-server)")
    return REDIS


def need_nginx() -> str:
    """The nginx binary, or skip the test."""
    if NGINX is None:
        pytest.skip("nginx is not installed (Debian: apt-get install nginx)")
    return NGINX


def wait_for_port(port: int, up: bool = True, seconds: float = DEADLINE_SECONDS) -> None:
    """Wait until 127.0.0.1:port accepts connections (or, with up=False, refuses them)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        try:
            with socket.create_connection(("127.0.0.1", port), timeout=1):
                if up:
                    return
        except OSError:
            if not up:
                return
        time.sleep(0.05)
    raise RuntimeError(f"port {port} did not {'open' if up else 'close'} in time")


class RedisServer:
    """A redis-server on a loopback port, which a test may stop and start again."""

    def __init__(self, binary: str, folder: Path) -> None:
        self.binary = binary
        self.folder = folder
        self.port = free_port()
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"redis://127.0.0.1:{self.port}/0"

    def start(self) -> None:
        """Start it (no persistence: a restarted Redis is an empty one)."""
        command = [self.binary, "--port", str(self.port), "--bind", "127.0.0.1"]
        command += ["--save", "", "--appendonly", "no", "--dir", str(self.folder)]
        self.process = subprocess.Popen(
            command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        wait_for_port(self.port)

    def stop(self) -> None:
        """Stop it and wait until its port refuses connections."""
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.process = None
        wait_for_port(self.port, up=False)


@contextmanager
def redis_server() -> Iterator[RedisServer]:
    """A running redis-server, stopped when the block ends."""
    binary = need_redis()
    with tempfile.TemporaryDirectory(prefix="ae-redis-") as folder:
        server = RedisServer(binary, Path(folder))
        server.start()
        try:
            yield server
        finally:
            server.stop()


def proxy_site(ports: list[int], balance: str = "", location_extra: str = "") -> str:
    """An nginx site for nginx_proxy: every port an upstream, the client named in
    X-Forwarded-For as the servers trust it; balance ('least_conn;') and location_extra
    are added as given."""
    upstream = f"    {balance}\n" if balance else ""
    upstream += "".join(f"    server 127.0.0.1:{port};\n" for port in ports)
    return (
        f"upstream explorer {{\n{upstream}}}\n"
        "server {\n"
        "    listen 127.0.0.1:{port};\n"
        "    client_max_body_size 256k;\n"
        "    client_body_temp_path {temp}/body;\n"
        "    proxy_temp_path {temp}/proxy;\n"
        "    location / {\n"
        "        proxy_pass http://explorer;\n"
        "        proxy_set_header Host $host;\n"
        "        proxy_set_header X-Forwarded-For $remote_addr;\n"
        "        proxy_read_timeout 120s;\n"
        f"{location_extra}"
        "    }\n"
        "}\n"
    )


@contextmanager
def nginx_proxy(config: str) -> Iterator[int]:
    """nginx run in the foreground with an http{} block (`{port}`, `{temp}` filled in) on a
    free loopback port; the port."""
    binary = need_nginx()
    port = free_port()
    with tempfile.TemporaryDirectory(prefix="ae-nginx-") as folder:
        temp = Path(folder)
        temp.chmod(0o755)  # nginx's workers, not root, write their buffers under it
        body = config.replace("{port}", str(port)).replace("{temp}", folder)
        (temp / "nginx.conf").write_text(
            f"daemon off;\nworker_processes 1;\npid {folder}/nginx.pid;\n"
            f"error_log {folder}/error.log warn;\nevents {{ worker_connections 256; }}\n"
            f"http {{\naccess_log off;\n{body}\n}}\n"
        )
        process = subprocess.Popen(
            [binary, "-p", folder, "-e", f"{folder}/error.log", "-c", f"{folder}/nginx.conf"],
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        try:
            try:
                wait_for_port(port)
            except RuntimeError:
                process.kill()
                raise RuntimeError(
                    f"nginx did not start: {process.communicate()[1][-2000:]!r}"
                ) from None
            yield port
        finally:
            if process.poll() is None:
                process.terminate()
                try:
                    process.wait(timeout=DEADLINE_SECONDS)
                except subprocess.TimeoutExpired:
                    process.kill()
                    process.wait()
            if process.stderr is not None:
                process.stderr.close()


class ExplorerProcess:
    """`autograd-explorer serve` as its own process on a free loopback port."""

    def __init__(self, settings: dict[str, object]) -> None:
        self.port = free_port()
        self.base = f"http://127.0.0.1:{self.port}"
        env = {**os.environ, **{f"AE_{k.upper()}": str(v) for k, v in settings.items()}}
        command = [sys.executable, "-m", "app.cli", "serve", "--port", str(self.port)]
        self.log = tempfile.TemporaryFile()  # what it says, for a failure's message
        self.process = subprocess.Popen(
            command, env=env, stdout=subprocess.DEVNULL, stderr=self.log
        )

    def said(self) -> str:
        """The end of what it wrote to stderr."""
        self.log.seek(0)
        return self.log.read()[-2000:].decode(errors="replace")

    def health(self) -> dict:
        """Its GET /api/v1/health."""
        return httpx.get(f"{self.base}/api/v1/health", timeout=DEADLINE_SECONDS).json()

    def stop(self) -> None:
        """End it (its jail dies with it)."""
        if self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=DEADLINE_SECONDS)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self.log.close()


@contextmanager
def explorer_processes(count: int, settings: dict[str, object]) -> Iterator[list[ExplorerProcess]]:
    """count server processes with the same AE_* settings, healthy, stopped when the block ends."""
    started = [ExplorerProcess(settings) for _ in range(count)]
    try:
        for server in started:
            running = server.process.poll
            if not wait_until_healthy(server.base, lambda r=running: r() is None, seconds=180):
                raise RuntimeError(f"a server did not start: {server.said()!r}")
        yield started
    finally:
        for server in started:
            server.stop()
