"""One hostile client with every trick at once, and 20 other sessions behind the same address
that all get their answers."""

from __future__ import annotations

import base64
import socket
from concurrent.futures import ThreadPoolExecutor, as_completed, wait

import httpx

from app.client_identity import SESSION_HEADER
from app.config import Settings
from tests.held_program import HELD_PROGRAM, release_held
from tests.live_server import live_server

HOSTILE_REQUESTS = 12


def session(base: str) -> str:
    return httpx.get(f"{base}/api/v1/session", timeout=30).json()["token"]


def test_a_hostile_client_leaves_twenty_sessions_of_its_address_served() -> None:
    settings = Settings(
        language_layer=False,
        workers=4,
        queue_size=32,
        rate_limit_localhost=True,  # the test client is loopback: hold it to the caps
        rate_limit_per_minute=40,
        client_in_flight=2,
        client_queue=4,
        body_timeout_seconds=1,
        cache_entries=64,
    )
    with live_server(settings) as (base, app):
        host, port = base.removeprefix("http://").split(":")
        hostile = {SESSION_HEADER: session(base)}
        slow_bodies = []
        for _ in range(20):  # bodies that never arrive: cut off with 408, holding nothing
            sock = socket.create_connection((host, int(port)), timeout=30)
            sock.sendall(
                b"POST /api/v1/trace HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                b"Content-Length: 1000\r\n\r\n{"
            )
            slow_bodies.append(sock)
        pool = ThreadPoolExecutor(HOSTILE_REQUESTS + 4)
        held = [
            pool.submit(
                httpx.post,
                f"{base}/api/v1/trace",
                json={"code": HELD_PROGRAM, "seed": i},
                headers=hostile,
                timeout=120,
            )
            for i in range(HOSTILE_REQUESTS)
        ]
        slots = app.state.service.slots  # type: ignore[attr-defined]
        busy = []
        for answered in as_completed(held):  # its 2 running and 4 waiting are held meanwhile
            busy.append(answered.result().status_code)
            if len(busy) == HOSTILE_REQUESTS - 6:
                break
        assert busy == [503] * len(busy)
        code = "import torch\nw = torch.ones(2, requires_grad=True)\n(w * 3).sum().backward()\n"
        link = base64.urlsafe_b64encode(code.encode()).decode().rstrip("=")
        # a render and a layout take a slot too: the hostile session has none left
        render = httpx.get(f"{base}/api/v1/render?code={link}", headers=hostile, timeout=30)
        layout = httpx.post(
            f"{base}/api/v1/layout", json={"code": code}, headers=hostile, timeout=30
        )
        assert render.status_code == layout.status_code == 503
        # another site's page cannot spend anyone's allowance
        cross = httpx.get(
            f"{base}/api/v1/render?code={link}",
            headers={"Sec-Fetch-Site": "cross-site", "Sec-Fetch-Dest": "image"},
            timeout=30,
        )
        assert cross.status_code == 403

        students = [session(base) for _ in range(20)]
        answers = list(
            pool.map(
                lambda pair: httpx.post(
                    f"{base}/api/v1/trace",
                    json={"code": code, "seed": pair[0]},
                    headers={SESSION_HEADER: pair[1]},
                    timeout=120,
                ),
                enumerate(students),
            )
        )
        assert [a.status_code for a in answers] == [200] * 20, [a.text[:200] for a in answers]
        assert all(a.json()["backward"][0]["grads"] for a in answers)
        for sock in slow_bodies:
            sock.settimeout(30)
            assert sock.recv(4096).startswith(b"HTTP/1.1 408")
            sock.close()
        while not all(f.done() for f in held):  # its waiting requests run once others end
            release_held()
            wait(held, timeout=0.2)
        finished = [f.result().status_code for f in held]
        assert finished.count(200) == 6 and finished.count(503) == HOSTILE_REQUESTS - 6
        # cache hits count against its rate limit: the hostile session runs out, students not
        hits = [
            httpx.post(
                f"{base}/api/v1/trace", json={"code": code, "seed": 0}, headers=hostile
            ).status_code
            for _ in range(40)
        ]
        assert 429 in hits
        again = httpx.post(
            f"{base}/api/v1/trace",
            json={"code": code, "seed": 0},
            headers={SESSION_HEADER: students[0]},
            timeout=60,
        )
        assert again.status_code == 200
        assert slots.from_address("127.0.0.1") == 0
        pool.shutdown()
