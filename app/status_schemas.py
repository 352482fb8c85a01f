"""Bodies of the server's answers about itself: a session token, its health, its devices."""

from __future__ import annotations

from typing import Literal

from pydantic import Field

from app.schemas import Contract


class SessionResponse(Contract):
    """Body of GET /api/v1/session: a token to send as X-AE-Session (or the cookie it sets)."""

    token: str = Field(description="the session token; per-client caps count per session")


class HealthResponse(Contract):
    """Body of GET /api/v1/health."""

    status: Literal["ok"]
    version: str
    torch: str
    cuda: bool
    layers: dict[str, bool] = Field(default_factory=dict)
    layout: bool = Field(True, description="whether graphviz dot is installed")
    notes: list[str] = Field(default_factory=list)
    workers_ok: bool = Field(
        True, description="whether the worker parent runs and children's answers are being read"
    )
    workers_problem: str | None = Field(
        None, description="why the workers last stopped (then started again), when they did"
    )
    workers_restarts: int = Field(0, description="how often the worker parent was started again")
    shared_state: Literal["memory", "redis", "degraded"] = Field(
        "memory",
        description="where the answer cache, per-session caps and rate limits live: this "
        "process ('memory', no AE_REDIS_URL), the Redis every process shares ('redis'), or this "
        "process for now because that Redis is gone ('degraded')",
    )
    programs_run: int = Field(
        0, description="traces this process ran a program for, not answered from a cache"
    )


class DeviceInfo(Contract):
    """One device a program can run on."""

    id: str = Field(description="'cpu', or 'cuda:0', 'cuda:1', ...")
    kind: Literal["cpu", "cuda"]
    name: str | None = Field(None, description="processor or GPU model, when known")
    total_memory_bytes: int | None = Field(None, description="the device's memory, when known")


class DevicesResponse(Contract):
    """Body of GET /api/v1/devices."""

    devices: list[DeviceInfo]
    cuda: bool = Field(description="whether a trace may ask for device 'cuda'")
