"""The trace answer cache: least-recently-used in one process's memory, or shared by every
process in Redis (bounded alike) with the process's own memory in front."""

from __future__ import annotations

from collections import OrderedDict
from typing import Any, Generic, Protocol, TypeVar

from app.shared_state import RedisLink, SharedUnavailable

V = TypeVar("V")


class ResultCache(Generic[V]):
    """Least-recently-used values by key, bounded in entries and in bytes."""

    def __init__(self, entries: int, max_bytes: int) -> None:
        self.entries = entries
        self.max_bytes = max_bytes
        self.bytes = 0
        self._items: OrderedDict[Any, tuple[V, int]] = OrderedDict()

    def get(self, key: Any) -> V | None:
        """The cached value, refreshed as most recent."""
        item = self._items.get(key)
        if item is None:
            return None
        self._items.move_to_end(key)
        return item[0]

    def put(self, key: Any, value: V, size: int) -> None:
        """Remember a result of about size bytes, forgetting the oldest past either bound."""
        if self.entries <= 0 or size > self.max_bytes:
            return
        old = self._items.pop(key, None)
        if old is not None:
            self.bytes -= old[1]
        self._items[key] = (value, size)
        self.bytes += size
        while len(self._items) > self.entries or self.bytes > self.max_bytes:
            _, (_, dropped) = self._items.popitem(last=False)
            self.bytes -= dropped

    def __len__(self) -> int:
        return len(self._items)


class AnswerCache(Protocol):
    """Trace answers (graph JSON bytes) by request key."""

    async def get(self, key: str) -> bytes | None:
        """The answer cached under key, if any."""

    async def put(self, key: str, answer: bytes) -> None:
        """Remember an answer."""


class MemoryAnswers:
    """Answers in this process's memory only."""

    def __init__(self, local: ResultCache[bytes]) -> None:
        self.local = local

    async def get(self, key: str) -> bytes | None:
        """The answer cached under key, if any."""
        return self.local.get(key)

    async def put(self, key: str, answer: bytes) -> None:
        """Remember an answer."""
        self.local.put(key, answer, len(answer))


PREFIX = "ae:answer:"
INDEX = "ae:answers:used"  # key -> time of last use, oldest evicted first
SIZES = "ae:answers:sizes"  # key -> bytes
TOTAL = "ae:answers:bytes"

_NOW = "local t = redis.call('TIME') local now = tonumber(t[1]) + tonumber(t[2]) / 1e6 "
GET_SCRIPT = (
    _NOW + "local v = redis.call('GET', ARGV[2] .. ARGV[1]) "
    "if v then redis.call('ZADD', KEYS[1], 'XX', now, ARGV[1]) end return v"
)
PUT_SCRIPT = (
    _NOW + "local old = redis.call('HGET', KEYS[2], ARGV[1]) "
    "if old then redis.call('DECRBY', KEYS[3], old) end "
    "redis.call('SET', ARGV[6] .. ARGV[1], ARGV[2]) "
    "redis.call('HSET', KEYS[2], ARGV[1], ARGV[3]) "
    "redis.call('ZADD', KEYS[1], now, ARGV[1]) "
    "local total = redis.call('INCRBY', KEYS[3], ARGV[3]) "
    "while redis.call('ZCARD', KEYS[1]) > tonumber(ARGV[4]) or total > tonumber(ARGV[5]) do "
    "  local oldest = redis.call('ZPOPMIN', KEYS[1]) "
    "  if #oldest == 0 then break end "
    "  local size = redis.call('HGET', KEYS[2], oldest[1]) "
    "  redis.call('HDEL', KEYS[2], oldest[1]) "
    "  redis.call('DEL', ARGV[6] .. oldest[1]) "
    "  if size then total = redis.call('DECRBY', KEYS[3], size) end "
    "end return total"
)


class RedisAnswers:
    """Answers shared by every process through Redis, bounded there by the same entries and
    bytes as one process's cache (least recently used out first); this process's memory is
    asked first, and alone while Redis is gone."""

    def __init__(self, local: ResultCache[bytes], link: RedisLink) -> None:
        self.local = local
        self.link = link

    async def get(self, key: str) -> bytes | None:
        """The answer cached here or in Redis, if any."""
        answer = self.local.get(key)
        if answer is not None:
            return answer
        try:
            answer = await self.link.call(
                lambda r: r.eval(GET_SCRIPT, 1, INDEX, key, PREFIX)  # type: ignore[no-any-return]
            )
        except SharedUnavailable:
            return None
        if answer is not None:
            self.local.put(key, answer, len(answer))
        return answer

    async def put(self, key: str, answer: bytes) -> None:
        """Remember an answer here and in Redis."""
        self.local.put(key, answer, len(answer))
        if self.local.entries <= 0 or len(answer) > self.local.max_bytes:
            return
        try:
            await self.link.call(
                lambda r: r.eval(
                    PUT_SCRIPT,
                    3,
                    INDEX,
                    SIZES,
                    TOTAL,
                    key,
                    answer,
                    len(answer),
                    self.local.entries,
                    self.local.max_bytes,
                    PREFIX,
                )
            )
        except SharedUnavailable:
            pass  # kept in this process; the next process to need it traces it again
