"""Server settings from AE_* environment variables: the one source of every limit."""

from __future__ import annotations

import ipaddress
import os
from functools import lru_cache
from typing import TYPE_CHECKING, Annotated, Any

from pydantic import Field, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

if TYPE_CHECKING:
    from app.dot_run import DotLimits
    from app.sandbox.limits import ChildLimits
    from app.sandbox.policy import PolicyLimits
    from app.sandbox.pool_settings import PoolSettings
    from app.sandbox.runner import RunLimits

SECRET_FIELDS = frozenset({"session_key"})  # never sent to the sandbox


class Settings(BaseSettings):
    """Everything an operator can tune; each field is AE_<NAME> in the environment."""

    model_config = SettingsConfigDict(env_prefix="AE_", extra="ignore")

    host: str = "127.0.0.1"
    port: int = Field(8000, ge=1, le=65535)
    max_code_bytes: int = Field(20_000, ge=100)
    max_code_lines: int = Field(5000, ge=10)
    max_ast_nodes: int = Field(20_000, ge=100)
    max_nesting: int = Field(64, ge=8)
    max_nodes: int = Field(20_000, ge=10)
    max_passes: int = Field(8, ge=1)
    inline_limit: int = Field(64, ge=1, le=4096)
    max_response_bytes: int = Field(
        16 * 1024 * 1024,
        ge=1024,
        description="largest answer (graph JSON or export) the server sends; past it 422 "
        "response_bytes",
    )
    max_request_bytes: int = Field(256 * 1024, ge=1024)
    max_deck_pages: int = Field(
        120,
        ge=1,
        le=5000,
        description="most pages, slides or frames of one deck export; past it 422 deck_pages",
    )
    wall_seconds: float = Field(30.0, gt=0, description="wall-clock limit of one program")
    cpu_seconds: int = Field(30, ge=1, description="CPU-time limit of one program")
    memory_margin_mb: int = Field(1536, ge=64)
    cuda_memory_fraction: float = Field(0.05, gt=0, le=1)
    workers: int = Field(
        default_factory=lambda: max(4, 2 * (os.cpu_count() or 1)),
        ge=1,
        le=64,
        description="programs run at once; more than cores, since long runs drop to idle priority",
    )
    idle_after_cpu_seconds: float = Field(
        0.5, ge=0, description="CPU time after which a program runs at idle priority"
    )
    queue_size: int = Field(8, ge=0)
    cache_entries: int = Field(256, ge=0, description="most results each cache keeps")
    cache_mb: int = Field(
        64,
        ge=0,
        description="bytes (MiB) each result cache (traces, parsed graphs, layouts and "
        "exports) may hold; a parsed graph counts ten times its JSON size",
    )
    layout_seconds: float = Field(
        20.0, gt=0, description="wall and CPU time of one graphviz run; past it 422 layout_time"
    )
    layout_memory_mb: int = Field(
        1024, ge=64, description="address space of one graphviz run; past it 422 layout_memory"
    )
    layout_max_edges: int = Field(
        20_000,
        ge=10,
        description="most edges handed to graphviz: past it ops outside modules are grouped "
        "by source line, then 422 edges",
    )
    layout_max_cost: int = Field(
        4_000,
        ge=100,
        description="most boxes plus virtual nodes of long edges (a cheap estimate of dot's "
        "work, made before dot runs) in one layout: past it ops are grouped by source line, "
        "then 422 layout_cost",
    )
    max_connections: int = Field(
        1000,
        ge=1,
        description="open HTTP connections served at once (kept below the open-file limit); "
        "past it new requests get 503",
    )
    header_timeout_seconds: float = Field(
        5.0,
        gt=0,
        description="a connection whose request headers are not complete by then is closed",
    )
    max_connections_per_address: int = Field(
        400,
        ge=1,
        description="open HTTP connections from one address (trusted proxies excepted); past "
        "it new connections are closed at once",
    )
    body_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="a request whose body is not complete this long after its headers gets 408 "
        "and its connection is closed",
    )
    write_timeout_seconds: float = Field(
        30.0,
        gt=0,
        description="a connection whose client has read nothing of its answer for this long is "
        "closed and the answer dropped",
    )
    trusted_proxies: str = Field(
        "",
        description="comma-separated addresses or networks of reverse proxies whose "
        "X-Forwarded-For names the client; none by default",
    )
    rate_limit_per_minute: int = Field(
        60,
        ge=0,
        description="traces, layouts and exports one client (session) may ask for a minute, "
        "answers from the cache included (0: no limit)",
    )
    rate_limit_localhost: bool = False
    client_in_flight: int = Field(
        2,
        ge=0,
        description="traces, layouts and exports one client (session) may have running at once "
        "(0: no cap)",
    )
    client_queue: int = Field(
        4, ge=0, description="further requests of one client that wait; past them, 503"
    )
    address_requests: int = Field(
        200,
        ge=0,
        description="requests running or waiting at once from one address over all its "
        "sessions (a class behind one NAT shares an address); past it, 503 (0: no ceiling)",
    )
    address_rate_limit_per_minute: int = Field(
        3000,
        ge=0,
        description="requests a minute from one address over all its sessions (0: no ceiling)",
    )
    session_key: str = Field(
        "",
        repr=False,
        description="the key that signs session cookies and tokens; empty: a random key at "
        "each start (sessions then end with a restart)",
    )
    # Shared state of several server processes (docs/deploy.md).
    redis_url: str = Field(
        "",
        repr=False,
        description="Redis that every server process shares for the answer cache, per-session "
        "caps, rate limits and the session signing keys (redis://host:6379/0); empty: each "
        "process keeps them in its own memory",
    )
    session_key_hours: float = Field(
        24.0,
        gt=0,
        description="with AE_REDIS_URL and no AE_SESSION_KEY: hours each shared signing key "
        "signs new sessions; a token stays valid for the next period too",
    )
    allow_cuda: bool = True
    isolation: bool = True
    jail: bool = Field(True, description="run the worker parent inside bubblewrap when possible")
    allow_root: bool = Field(
        False,
        description="let `serve` run as root where no cgroup pids.max can bound the jail's "
        "threads (the kernel ignores RLIMIT_NPROC for root)",
    )
    language_layer: bool = Field(
        True,
        description="the courtesy policy check; switched off only by tests that prove the "
        "operating-system walls hold on their own",
    )
    # Sites whose pages may call the API from a browser (CORS), comma-separated; "*" for any.
    cors_origins: Annotated[list[str], NoDecode] = Field(default_factory=list)

    @field_validator("cors_origins", mode="before")
    @classmethod
    def _split_origins(cls, value: Any) -> Any:
        if isinstance(value, str):
            return [o.strip().rstrip("/") for o in value.split(",") if o.strip()]
        return value

    @model_validator(mode="after")
    def _check(self) -> Settings:
        if self.max_code_bytes > self.max_request_bytes:
            raise ValueError("max_code_bytes must not exceed max_request_bytes")
        self.proxy_networks()  # a malformed entry fails at start-up, not per request
        return self

    def policy_limits(self) -> PolicyLimits:
        """Size bounds of a program's source, for the courtesy check."""
        from app.sandbox.policy import PolicyLimits

        return PolicyLimits(
            max_bytes=self.max_code_bytes,
            max_lines=self.max_code_lines,
            max_nodes=self.max_ast_nodes,
            max_nesting=self.max_nesting,
        )

    def run_limits(self) -> RunLimits:
        """Bounds of a program run in this process."""
        from app.sandbox.runner import RunLimits

        return RunLimits(self.wall_seconds)

    def dot_limits(self) -> DotLimits:
        """Bounds of one graphviz run."""
        from app.dot_run import DotLimits

        return DotLimits(
            seconds=self.layout_seconds,
            memory_mb=self.layout_memory_mb,
            max_edges=self.layout_max_edges,
            max_cost=self.layout_max_cost,
        )

    def child_limits(self) -> ChildLimits:
        """The limits of every worker child (its work dir and CUDA use are set per child)."""
        from app.sandbox.limits import ChildLimits

        return ChildLimits(
            cpu_seconds=self.cpu_seconds,
            memory_margin_bytes=self.memory_margin_mb * 1024 * 1024,
            work_dir="",
            idle_after_cpu_seconds=self.idle_after_cpu_seconds,
        )

    def pool_settings(self) -> PoolSettings:
        """What the sandbox is told: its size, its limits and the recording's settings."""
        from app.sandbox.pool_settings import PoolSettings

        return PoolSettings(
            workers=self.workers,
            queue_size=self.queue_size,
            jail=self.jail,
            allow_cuda=self.allow_cuda,
            language_layer=self.language_layer,
            wall_seconds=self.wall_seconds,
            cpu_seconds=self.cpu_seconds,
            max_response_bytes=self.max_response_bytes,
            cuda_memory_fraction=self.cuda_memory_fraction,
            child_limits=self.child_limits(),
            recording=self.model_dump_json(exclude=set(SECRET_FIELDS)),
        )

    def proxy_networks(self) -> list[ipaddress.IPv4Network | ipaddress.IPv6Network]:
        """The networks named by trusted_proxies."""
        return [
            ipaddress.ip_network(item.strip(), strict=False)
            for item in self.trusted_proxies.split(",")
            if item.strip()
        ]


@lru_cache
def get_settings() -> Settings:
    """The process-wide settings (cached; override with app.dependency_overrides in tests)."""
    return Settings()
