"""A channel's connections to a Redis Cluster: one :class:`~kombu_redis.link.Link`
per master, commands routed by the hash slot of their first key.

The slot map is redis-py's (:class:`redis.cluster.RedisCluster`'s nodes
manager): a ``MOVED`` reply updates it and the command runs again on the new
owner; an ``ASK`` reply sends ``ASKING`` and the command to the node the
slot is migrating to; ``TRYAGAIN`` and ``CLUSTERDOWN`` are retried for a
bounded time.  A lost connection refreshes the slot map (so the next
command finds the promoted replica after a failover) and raises, as on one
Redis: callers retry through ``Connection.ensure`` / ``autoretry``.

Writes can wait for replicas (``WAIT numreplicas timeout`` on the same
connection, in the same round trip): see :meth:`ClusterLink.pipe_on`.

Acks written without waiting (:meth:`ClusterLink.send_nowait`) get their
replies later, each master's link owing the acks it carried; a reply that
redirects (the slot moved, or is moving) hands those acks to
``on_redirect`` (after updating the slot map on ``MOVED``), so the ack
pipeline sends them again, following the redirection.
"""

from __future__ import annotations

import threading
from collections.abc import Iterable
from time import monotonic, sleep
from typing import Any, Callable

from redis import exceptions as rexc

from kombu_redis.cluster_keys import slot_of
from kombu_redis.link import NET_ERRORS, Link
from kombu_redis.scripts import Script

__all__ = ("REDIRECT_BUDGET", "ClusterLink", "NodeLink", "command_key")

#: Seconds a command may spend following MOVED/ASK/TRYAGAIN/CLUSTERDOWN.
REDIRECT_BUDGET = 5.0
#: Seconds between slot map refreshes after lost connections.
REFRESH_INTERVAL = 0.1
#: Keys whose slots a link remembers.
SLOT_CACHE_LIMIT = 4096

_KEYLESS = frozenset({"PING", "WAIT", "CLIENT", "SCRIPT", "INFO", "CLUSTER", "ECHO"})
_REDIRECTS = (rexc.MovedError, rexc.AskError, rexc.TryAgainError, rexc.ClusterDownError)


def command_key(command: tuple[Any, ...] | list[Any]) -> Any:
    """The key a command is routed by (None: any node)."""
    name = str(command[0]).upper()
    if name in ("EVALSHA", "EVAL"):
        return command[3] if int(command[2]) > 0 else None
    if name in _KEYLESS or len(command) < 2:
        return None
    return command[1]


class NodeLink(Link):
    """The link to one cluster node: replies owed (acks written without waiting)
    that redirect hand their tokens to ``on_redirect(tokens, error)``."""

    def __init__(self, factory: Callable[..., Any], retry_on_timeout: bool = False,
                 on_lost: Callable[[list[Any]], None] | None = None,
                 on_redirect: Callable[[list[Any], BaseException], None] | None = None) -> None:
        super().__init__(factory, retry_on_timeout, on_lost)
        self.on_redirect = on_redirect
        self._redirect: BaseException | None = None

    def _error_reply(self, exc: rexc.ResponseError) -> None:
        if isinstance(exc, _REDIRECTS):
            self._redirect = exc

    def _settle_redirect(self, tokens: list[Any]) -> None:
        exc, self._redirect = self._redirect, None
        if exc is not None and tokens and self.on_redirect is not None:
            self.on_redirect(tokens, exc)

    def _ready(self, conn: Any) -> None:
        tokens = self._unconfirmed if self._unread and conn._sock is not None else []
        self._redirect = None
        super()._ready(conn)
        self._settle_redirect(tokens)

    def replied(self) -> bool:
        """Whether replies owed have started to arrive (never blocks)."""
        conn = self._conn
        if not self._unread or conn is None or conn._sock is None:
            return False
        try:
            return bool(conn.can_read(0))
        except (*NET_ERRORS, rexc.InvalidResponse):
            return True  # confirm() finds the connection lost and settles

    def confirm(self, deadline: float) -> bool:
        with self.lock:
            tokens = self._unconfirmed
            self._redirect = None
            ok = super().confirm(deadline)
            if ok:
                self._settle_redirect(tokens)
            else:
                self._redirect = None  # the tokens went to on_lost
            return ok


class ClusterLink:
    """The command connections of one channel to a cluster (thread-safe).

    ``cluster`` is the transport's :class:`redis.cluster.RedisCluster` (its
    slot map); ``factory(host, port)`` returns the connection factory of one
    node, as :class:`Link` takes it.
    """

    def __init__(self, cluster: Any, factory: Callable[[str, int], Callable[..., Any]],
                 retry_on_timeout: bool = False,
                 on_lost: Callable[[list[Any]], None] | None = None,
                 on_redirect: Callable[[list[Any]], None] | None = None) -> None:
        self.cluster = cluster
        self.factory = factory
        self.retry_on_timeout = retry_on_timeout
        self.on_lost = on_lost
        #: Called with the tokens of commands written without waiting whose
        #: replies redirected (the slot map is updated first on MOVED).
        self.on_redirect = on_redirect
        self.lock = threading.RLock()
        self.links: dict[str, Link] = {}
        self._refreshed = float("-inf")
        #: key -> its hash slot (the keys of a channel's queues: few; past
        #: SLOT_CACHE_LIMIT the cache starts over).
        self._slots: dict[Any, int] = {}

    # -- nodes ---------------------------------------------------------------
    def node_link(self, host: str, port: int) -> Link:
        """The link to the node at ``host:port`` (made on first use)."""
        name = f"{host}:{port}"
        with self.lock:
            link = self.links.get(name)
            if link is None:
                link = self.links[name] = NodeLink(
                    self.factory(host, port), self.retry_on_timeout, on_lost=self._lost,
                    on_redirect=self._redirected)
            return link

    def slot(self, key: Any) -> int:
        """The hash slot of ``key`` (cached)."""
        slot = self._slots.get(key)
        if slot is None:
            if len(self._slots) >= SLOT_CACHE_LIMIT:
                self._slots.clear()
            slot = self._slots[key] = slot_of(key)
        return slot

    def node_of(self, key: Any) -> tuple[str, int]:
        """``(host, port)`` of the master that serves ``key``'s slot now."""
        node = self.cluster.nodes_manager.get_node_from_slot(self.slot(key))
        return node.host, int(node.port)

    def replicas_of(self, key: Any) -> int:
        """How many live replicas the master of ``key``'s slot has (slot map)."""
        try:
            return max(len(self.cluster.nodes_manager.slots_cache.get(self.slot(key)) or ()) - 1, 0)
        except Exception:  # noqa: BLE001 - unknown: assume none
            return 0

    def link_for(self, key: Any) -> Link:
        """The link to the master of ``key`` (any master for None)."""
        if key is None:
            node = self.cluster.get_default_node()
        else:
            node = self.cluster.nodes_manager.get_node_from_slot(self.slot(key))
        link = self.links.get(node.name)
        return link if link is not None else self.node_link(node.host, int(node.port))

    def _lost(self, tokens: list[Any]) -> None:
        if self.on_lost is not None:
            self.on_lost(tokens)

    def _redirected(self, tokens: list[Any], exc: BaseException) -> None:
        if isinstance(exc, rexc.MovedError):
            try:
                self.cluster.nodes_manager.move_slot(exc)
            except Exception:  # noqa: BLE001 - the next command's MOVED updates it
                pass
        if self.on_redirect is not None:
            self.on_redirect(tokens)
        else:
            self._lost(tokens)

    def refresh(self, force: bool = False) -> None:
        """Reload the slot map (at most every REFRESH_INTERVAL seconds unless ``force``)."""
        now = monotonic()
        if not force and now - self._refreshed < REFRESH_INTERVAL:
            return
        self._refreshed = now
        try:
            self.cluster.nodes_manager.initialize()
        except Exception:  # noqa: BLE001 - the next command tries again
            pass

    # -- the routing loop ----------------------------------------------------
    def routed(self, key: Any, run: Callable[[Link], Any], patient: bool = True) -> Any:
        """``run(link)`` on the master of ``key``, following redirections.

        ``TRYAGAIN`` and ``CLUSTERDOWN`` are retried for up to REDIRECT_BUDGET
        seconds, unless ``patient`` is False (then they are raised at once:
        an event loop must not sleep).
        """
        deadline = monotonic() + REDIRECT_BUDGET
        asking: tuple[str, int] | None = None
        delay = 0.01
        while True:
            if asking is not None:
                link = self.node_link(*asking)
                target = link
                link.call("ASKING")
            else:
                target = self.link_for(key)
            try:
                return run(target)
            except rexc.AskError as exc:
                if isinstance(exc, rexc.MovedError):
                    self.cluster.nodes_manager.move_slot(exc)
                    asking = None
                else:
                    asking = (exc.host, exc.port)
                if monotonic() >= deadline:
                    raise
            except (rexc.TryAgainError, rexc.ClusterDownError):
                asking = None
                if not patient or monotonic() >= deadline:
                    self.refresh()
                    raise
                sleep(delay)
                delay = min(delay * 2, 0.2)
                self.refresh()
            except NET_ERRORS:
                self.refresh(force=True)
                raise

    # -- Link's interface ----------------------------------------------------
    def open(self, handshake_timeout: float | None, socket_timeout: float | None) -> None:
        """Connect to a master and PING it within ``handshake_timeout``."""
        self.link_for(None).open(handshake_timeout, socket_timeout)

    @property
    def sock(self) -> Any:
        """None: there is no single socket (each node link has its own)."""
        return None

    @property
    def connected(self) -> bool:
        return any(link.connected for link in list(self.links.values()))

    @property
    def owed(self) -> int:
        return sum(link.owed for link in list(self.links.values()))

    def call(self, *args: Any) -> Any:
        """Run one command on the master of its key."""
        return self.routed(command_key(args), lambda link: link.call(*args))

    def call_on(self, key: Any, *args: Any) -> Any:
        """Run one command on the master of ``key``, following redirections."""
        try:  # the common case first: no redirection
            return self.link_for(key).call(*args)
        except _REDIRECTS:
            pass  # not run: routed() follows the redirection
        except NET_ERRORS:
            self.refresh(force=True)
            raise
        return self.routed(key, lambda link: link.call(*args))

    def pipe_on(self, key: Any, *commands: tuple[Any, ...]) -> list[Any]:
        """Run ``commands`` in one round trip on the master of ``key`` (all of
        them: keyless ones such as ``WAIT`` too); raise the first error reply.

        Only the commands that were redirected run again (during a slot
        migration the source runs those whose keys it still has).
        """
        results: list[Any] = [None] * len(commands)
        todo = list(range(len(commands)))
        asking: dict[int, tuple[str, int]] = {}
        deadline = monotonic() + REDIRECT_BUDGET
        delay = 0.01
        while todo:
            groups: dict[tuple[str, int] | None, list[int]] = {}
            for i in todo:
                groups.setdefault(asking.get(i), []).append(i)
            todo = []
            asking = {}
            for target, indexes in groups.items():
                link = self.node_link(*target) if target else self.link_for(key)
                packed: list[tuple[Any, ...]] = []
                for i in indexes:
                    if target:
                        packed.append(("ASKING",))
                    packed.append(commands[i])
                try:
                    got = link._run(link._get().pack_commands(packed), len(packed))
                except NET_ERRORS:
                    self.refresh(force=True)
                    raise
                if target:
                    got = got[1::2]
                for i, result in zip(indexes, got):
                    if isinstance(result, rexc.MovedError):
                        self.cluster.nodes_manager.move_slot(result)
                        todo.append(i)
                    elif isinstance(result, rexc.AskError):
                        asking[i] = (result.host, result.port)
                        todo.append(i)
                    elif isinstance(result, (rexc.TryAgainError, rexc.ClusterDownError)):
                        todo.append(i)
                    else:
                        results[i] = result
            if todo:
                if monotonic() >= deadline:
                    raise rexc.TryAgainError(f"commands still redirected after "
                                             f"{REDIRECT_BUDGET:g}s")
                if len(asking) < len(todo):
                    sleep(delay)
                    delay = min(delay * 2, 0.2)
                    self.refresh()
        for result in results:
            if isinstance(result, rexc.ResponseError):
                raise result
        return results

    def pipe(self, *commands: tuple[Any, ...]) -> list[Any]:
        """Run ``commands``, one round trip per slot; results in order."""
        groups: dict[Any, list[int]] = {}
        for i, command in enumerate(commands):
            key = command_key(command)
            groups.setdefault(None if key is None else self.slot(key), []).append(i)
        results: list[Any] = [None] * len(commands)
        for slot, indexes in groups.items():
            key = None if slot is None else command_key(commands[indexes[0]])
            got = self.pipe_on(key, *(commands[i] for i in indexes))
            for i, result in zip(indexes, got):
                results[i] = result
        return results

    def script(self, script: Script, keys: list[Any], argv: list[Any],
               patient: bool = True) -> Any:
        """Run ``script`` on the master of its keys (one slot); see :meth:`routed`."""
        return self.routed(keys[0] if keys else None,
                           lambda link: link.script(script, keys, argv), patient)

    def script_then(self, script: Script, keys: list[Any], argv: list[Any],
                    *after: tuple[Any, ...], patient: bool = True) -> list[Any]:
        """Run ``script`` and then ``after`` (``WAIT``, say) in one round trip on
        the master of its keys; the script's reply first."""
        command = tuple(script.args(keys, argv))

        def run(link: Link) -> list[Any]:
            try:
                return link.pipe(command, *after)
            except rexc.NoScriptError:
                link.call("SCRIPT", "LOAD", script.source)
                return link.pipe(command, *after)

        return self.routed(keys[0] if keys else None, run, patient)  # type: ignore[no-any-return]

    def pipe_scripts(self, script: Script, calls: list[tuple[list[Any], list[Any]]]) -> list[Any]:
        return [self.script(script, keys, argv) for keys, argv in calls]

    def _by_node(self, commands: Iterable[tuple[Any, ...]]) -> dict[tuple[str, int], list[Any]]:
        nodes: dict[tuple[str, int], list[Any]] = {}
        by_slot: dict[int | None, tuple[str, int]] = {}
        for command in commands:
            key = command_key(command)
            slot = None if key is None else self.slot(key)
            where = by_slot.get(slot)
            if where is None:
                node = (self.cluster.get_default_node() if slot is None
                        else self.cluster.nodes_manager.get_node_from_slot(slot))
                where = by_slot[slot] = (node.host, int(node.port))
            nodes.setdefault(where, []).append(command)
        return nodes

    def send_nowait(self, batches: list[tuple[list[tuple[Any, ...]], list[Any]]]) -> list[Any]:
        """Write each batch's commands (one slot per batch) to its master without
        reading the replies; each master's link owes the tokens of its own
        batches, so a reply that redirects, or a connection lost, hands back
        exactly those.  Returns the tokens of the batches that could not be
        written (their master unreachable now, or their slot unserved).
        """
        nodes: dict[tuple[str, int], tuple[list[tuple[Any, ...]], list[Any]]] = {}
        unsent: list[Any] = []
        for commands, tokens in batches:
            if not commands:
                continue
            try:
                node = self.node_of(command_key(commands[0]))
            except rexc.RedisClusterException:
                unsent += tokens
                continue
            group, owed = nodes.setdefault(node, ([], []))
            group += commands
            owed += tokens
        for (host, port), (group, owed) in nodes.items():
            try:
                self.node_link(host, port).send_nowait(group, owed)
            except NET_ERRORS:
                self.refresh(force=True)
                unsent += owed
        return unsent

    def confirm(self, deadline: float) -> bool:
        """Read every reply owed on every node until ``deadline``."""
        ok = True
        for link in list(self.links.values()):
            if link.owed and not link.confirm(deadline):
                ok = False
        return ok

    def confirm_replied(self, deadline: float) -> None:
        """Read the replies owed on the nodes whose replies have arrived (an event
        loop must not wait on a master that hangs)."""
        for link in list(self.links.values()):
            if isinstance(link, NodeLink) and link.replied():
                link.confirm(deadline)

    def send_fresh(self, commands: list[tuple[Any, ...]], timeout: float) -> None:
        """Run ``commands`` on new connections to their masters, then close them,
        following MOVED/ASK within ``timeout``; other error replies are ignored."""
        deadline = monotonic() + timeout
        todo: list[tuple[tuple[str, int] | None, tuple[Any, ...]]] = [(None, c) for c in commands]
        while todo:
            groups: dict[tuple[tuple[str, int], bool], list[tuple[Any, ...]]] = {}
            for asking, command in todo:
                if asking is not None:
                    groups.setdefault((asking, True), []).append(command)
                else:
                    for node, group in self._by_node([command]).items():
                        groups.setdefault((node, False), []).extend(group)
            todo = []
            for (node, asking_node), group in groups.items():
                left = deadline - monotonic()
                if left <= 0:
                    raise rexc.TimeoutError(f"commands still redirected after {timeout:g}s")
                packed = [c for command in group
                          for c in ((("ASKING",), command) if asking_node else (command,))]
                replies = self._fresh(node, packed, left)
                if asking_node:
                    replies = replies[1::2]
                for command, reply in zip(group, replies):
                    if isinstance(reply, rexc.MovedError):
                        self.cluster.nodes_manager.move_slot(reply)
                        todo.append((None, command))
                    elif isinstance(reply, rexc.AskError):
                        todo.append(((reply.host, int(reply.port)), command))
                    elif isinstance(reply, (rexc.TryAgainError, rexc.ClusterDownError)):
                        todo.append((None, command))
            if todo:
                sleep(min(0.05, max(deadline - monotonic(), 0)))

    def _fresh(self, node: tuple[str, int], commands: list[tuple[Any, ...]],
               timeout: float) -> list[Any]:
        """``commands`` on a new connection to ``node``; the replies, errors as values."""
        fresh = self.factory(*node)(socket_timeout=timeout, socket_connect_timeout=timeout,
                                    health_check_interval=0)
        try:
            fresh.connect()
            fresh.send_packed_command(fresh.pack_commands(commands), check_health=False)
            replies: list[Any] = []
            for _ in commands:
                try:
                    replies.append(fresh.read_response())
                except rexc.ResponseError as exc:
                    replies.append(exc)
            return replies
        finally:
            fresh.disconnect()

    def disconnect(self) -> None:
        """Drop every node connection (the next command reconnects)."""
        with self.lock:
            links, self.links = list(self.links.values()), {}
        for link in links:
            link.disconnect()
