"""The session signing keys that every process shares through Redis, rotated every period: the
first process to need a period's key makes it, the others read it."""

from __future__ import annotations

import secrets
import time

from app.client_identity import SessionSigner
from app.shared_state import RedisLink

KEY_BYTES = 32


def key_name(period: int) -> str:
    """The Redis key holding the signing key of one period."""
    return f"ae:session-key:{period}"


class SharedSessionKeys:
    """Keeps a signer on the shared keys: it signs with this period's key and accepts the last
    period's (a token lives through the next period too) and the next one's (a process whose
    clock is ahead may sign with it already), plus its own random key, so that tokens it
    issued while Redis was away stay genuine here."""

    def __init__(self, signer: SessionSigner, link: RedisLink, hours: float) -> None:
        self.signer = signer
        self.link = link
        self.seconds = hours * 3600
        link.every_round(self.refresh)

    async def refresh(self, now: float | None = None) -> None:
        """Read (or make) the keys of the last, this and the next period; SharedUnavailable
        when Redis is gone (the signer keeps the keys it has)."""
        current = int((time.time() if now is None else now) // self.seconds)
        periods = [current, current - 1, current + 1]
        keep = max(1, int(self.seconds * 3) + 60)  # a key lives while tokens signed with it do

        async def read(client: object) -> list[bytes | None]:
            pipe = client.pipeline(transaction=False)  # type: ignore[attr-defined]
            for period in periods:
                pipe.set(key_name(period), secrets.token_bytes(KEY_BYTES), nx=True, ex=keep)
                pipe.get(key_name(period))
            return (await pipe.execute())[1::2]

        keys = await self.link.call(read)
        shared = [key for key in keys if key]
        self.signer.use_keys([*shared, self.signer.own_key])
