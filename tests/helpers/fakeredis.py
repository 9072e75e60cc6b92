"""A small in-process stand-in for the few Redis commands the kombu-redis
ack pipeline, restorer and refresher use, for unit tests without a broker.

:class:`FakeStore` holds strings, hashes, sorted sets and lists and runs
commands (``FakeStore.command``), including the RESTORE and UNLOCK scripts
of :mod:`kombu_redis.scripts` (by their SHA, reimplemented here).
:class:`FakeClient` is what redis-py's client offers of them;
:meth:`FakeStore.connection` makes redis-py-like connections (for
:class:`kombu_redis.link.Link`) that can be cut (``store.cut()``) or that
find the server gone (``store.down = True``) to inject the faults a real
server cannot produce on demand.  Real-Redis behaviour is covered by the
integration tests; keep this fake to what those parts call.
"""

from __future__ import annotations

from collections import deque
from typing import Any


def _s(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _b(value: Any) -> bytes:
    return value if isinstance(value, bytes) else str(value).encode()


class FakeStore:
    """The data of one fake Redis database."""

    def __init__(self) -> None:
        self.strings: dict[str, bytes] = {}
        self.hashes: dict[str, dict[str, bytes]] = {}
        self.zsets: dict[str, dict[str, float]] = {}
        self.lists: dict[str, deque[bytes]] = {}
        #: True: new connections are refused and open ones fail.
        self.down = False
        self.commands: list[tuple[str, ...]] = []
        self._connections: list[FakeConnection] = []
        from kombu_redis.scripts import RESTORE, UNLOCK

        self._scripts = {RESTORE.sha: self._restore, UNLOCK.sha: self._unlock}

    # -- commands ------------------------------------------------------------
    def command(self, *args: Any) -> Any:
        """Run one command; returns its reply like redis-py's parser."""
        import redis

        name, rest = _s(args[0]).upper(), list(args[1:])
        self.commands.append((name, *map(_s, rest)))
        if name == "PING":
            return b"PONG"
        if name == "SET":  # SET key value [NX] [PX ms]
            key, value = _s(rest[0]), _b(rest[1])
            if "NX" in map(_s, rest[2:]) and key in self.strings:
                return None
            self.strings[key] = value
            return b"OK"
        if name == "GET":
            return self.strings.get(_s(rest[0]))
        if name == "DEL":
            return sum(d.pop(_s(k), None) is not None for k in rest
                       for d in (self.strings, self.hashes, self.zsets, self.lists))
        if name == "HSET":
            self.hashes.setdefault(_s(rest[0]), {})[_s(rest[1])] = _b(rest[2])
            return 1
        if name == "HMGET":
            table = self.hashes.get(_s(rest[0]), {})
            return [table.get(_s(f)) for f in rest[1:]]
        if name == "HDEL":
            table = self.hashes.get(_s(rest[0]), {})
            return sum(table.pop(_s(f), None) is not None for f in rest[1:])
        if name == "ZADD":  # ZADD key [XX] score member ...
            zset = self.zsets.setdefault(_s(rest[0]), {})
            pairs, xx = rest[1:], False
            if pairs and _s(pairs[0]).upper() == "XX":
                pairs, xx = pairs[1:], True
            added = 0
            for score, member in zip(pairs[::2], pairs[1::2]):
                if xx and _s(member) not in zset:
                    continue
                added += _s(member) not in zset
                zset[_s(member)] = float(score)
            return added
        if name == "ZREM":
            zset = self.zsets.get(_s(rest[0]), {})
            return sum(zset.pop(_s(m), None) is not None for m in rest[1:])
        if name == "ZSCORE":
            score = self.zsets.get(_s(rest[0]), {}).get(_s(rest[1]))
            return None if score is None else _b(repr(score))
        if name in ("LPUSH", "RPUSH"):
            items = self.lists.setdefault(_s(rest[0]), deque())
            for value in rest[1:]:
                (items.appendleft if name == "LPUSH" else items.append)(_b(value))
            return len(items)
        if name == "EVALSHA":
            script = self._scripts.get(_s(rest[0]))
            if script is None:
                raise redis.exceptions.NoScriptError("NOSCRIPT No matching script.")
            nkeys = int(rest[1])
            return script([_s(k) for k in rest[2:2 + nkeys]], rest[2 + nkeys:])
        raise redis.ResponseError(f"the fake does not know {name}")

    def zrangebyscore(self, key: str, ceiling: float, limit: int) -> list[bytes]:
        zset = self.zsets.get(key, {})
        return [_b(m) for m, s in sorted(zset.items(), key=lambda i: i[1]) if s <= ceiling][:limit]

    def _restore(self, keys: list[str], argv: list[Any]) -> int:
        unacked, index = self.hashes.setdefault(keys[0], {}), self.zsets.setdefault(keys[1], {})
        push = "LPUSH" if _s(argv[0]) == "1" else "RPUSH"
        ceiling = float(_s(argv[1])) if _s(argv[1]) else None
        i, moved = 2, 0
        while i < len(argv):
            tag, expected, payload, ndest = _s(argv[i]), argv[i + 1], argv[i + 2], int(argv[i + 3])
            score = index.get(tag)
            if ceiling is None or (score is not None and score <= ceiling):
                current = unacked.get(tag)
                if current is not None and current == _b(expected):
                    del unacked[tag]
                    index.pop(tag, None)
                    for dest in argv[i + 4:i + 4 + ndest]:
                        self.command(push, dest, payload)
                    moved += 1
                elif current is None and _s(expected) == "":
                    index.pop(tag, None)
            i += 4 + ndest
        return moved

    def _unlock(self, keys: list[str], argv: list[Any]) -> int:
        if self.strings.get(keys[0]) == _b(argv[0]):
            del self.strings[keys[0]]
            return 1
        return 0

    # -- connections ---------------------------------------------------------
    def connection(self, **overrides: Any) -> FakeConnection:
        """A new unconnected connection (a :class:`kombu_redis.link.Link` factory)."""
        conn = FakeConnection(self)
        self._connections.append(conn)
        return conn

    def cut(self) -> None:
        """Break every open connection (written commands stay applied or not, as sent)."""
        for conn in self._connections:
            conn.broken = True


class _FakeSocket:
    def settimeout(self, timeout: float | None) -> None:
        pass


class FakeConnection:
    """What :class:`kombu_redis.link.Link` calls on a redis-py connection."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self._sock: Any = None
        self.broken = False
        self.socket_timeout: float | None = None
        self._replies: deque[Any] = deque()

    def _check(self) -> None:
        import redis

        if self.store.down or self.broken or self._sock is None:
            self.disconnect()
            raise redis.ConnectionError("connection lost (fake)")

    def connect(self) -> None:
        import redis

        if self.store.down:
            raise redis.ConnectionError("connection refused (fake)")
        self._sock, self.broken = _FakeSocket(), False

    def disconnect(self) -> None:
        self._sock = None
        self._replies.clear()

    def pack_command(self, *args: Any) -> list[tuple[Any, ...]]:
        return [args]

    def pack_commands(self, commands: Any) -> list[tuple[Any, ...]]:
        return [tuple(c) for c in commands]

    def send_packed_command(self, packed: Any, check_health: bool = True) -> None:
        import redis

        self._check()
        for args in packed:
            try:
                self._replies.append(self.store.command(*args))
            except redis.ResponseError as exc:
                self._replies.append(exc)

    def can_read(self, timeout: float = 0) -> bool:
        self._check()
        return bool(self._replies)

    def read_response(self) -> Any:
        self._check()
        reply = self._replies.popleft()
        if isinstance(reply, Exception):
            raise reply
        return reply


class FakeClient:
    """The redis-py client methods the restorer and the ack pipeline call."""

    def __init__(self, store: FakeStore) -> None:
        self.store = store

    def set(self, key: str, value: Any, nx: bool = False, px: int | None = None) -> bool:
        args = ["SET", key, value] + (["NX"] if nx else []) + (["PX", px] if px else [])
        return self.store.command(*args) is not None

    def hmget(self, key: str, fields: list[Any]) -> list[Any]:
        return list(self.store.command("HMGET", key, *fields))

    def zrangebyscore(self, key: str, low: Any, high: float, start: int = 0,
                      num: int = 0) -> list[bytes]:
        return self.store.zrangebyscore(key, high, num)

    def rpush(self, key: str, *values: Any) -> int:
        return int(self.store.command("RPUSH", key, *values))

    def evalsha(self, sha: str, nkeys: int, *args: Any) -> Any:
        return self.store.command("EVALSHA", sha, nkeys, *args)

    def execute_command(self, *args: Any) -> Any:
        return self.store.command(*args)

    def pipeline(self, transaction: bool = False) -> _FakePipeline:
        return _FakePipeline(self.store)


class _FakePipeline:
    def __init__(self, store: FakeStore) -> None:
        self.store = store
        self.queued: list[tuple[Any, ...]] = []

    def __enter__(self) -> _FakePipeline:
        return self

    def __exit__(self, *exc: Any) -> None:
        self.queued = []

    def zrem(self, key: str, *members: Any) -> None:
        self.queued.append(("ZREM", key, *members))

    def hdel(self, key: str, *fields: Any) -> None:
        self.queued.append(("HDEL", key, *fields))

    def execute(self) -> list[Any]:
        return [self.store.command(*c) for c in self.queued]
