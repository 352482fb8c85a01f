"""What the server tells its sandbox: how many programs run, their limits, what recording reads."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from app.sandbox.limits import ChildLimits


@dataclass(frozen=True)
class PoolSettings:
    """The sandbox's share of the server settings, built by `Settings.pool_settings()`."""

    workers: int
    queue_size: int
    jail: bool
    allow_cuda: bool
    language_layer: bool
    wall_seconds: float
    cpu_seconds: int
    max_response_bytes: int
    cuda_memory_fraction: float
    child_limits: ChildLimits  # its work_dir and cuda are set per child
    recording: str  # settings the Recording's functions read, as JSON the sandbox never opens

    def to_json(self) -> dict[str, Any]:
        """The settings as JSON, for the worker parent's start message."""
        return asdict(self)

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> PoolSettings:
        """The settings sent by to_json()."""
        return cls(**{**data, "child_limits": ChildLimits(**data["child_limits"])})
