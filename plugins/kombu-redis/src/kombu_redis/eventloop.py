"""Running a Redis transport under an event loop (:class:`kombu.asynchronous.Hub`).

A :class:`HubDriver` ties one transport to one loop.  Each consuming
channel's waiter socket (tracking wake-ups and fanout messages, see
:mod:`kombu_redis.waiter`) is a reader of the loop.  A readable socket, a
fetch that filled the prefetch window, or a channel that starts consuming
marks the channel *woken*; the driver then runs the pop script (one round
trip, never waiting for messages to arrive) as soon as the channel's QoS
says it can consume, and delivers what it fetched.  Messages are fetched
and recorded by the same script as on the blocking path, so the delivery
guarantees are the same.

On every turn of the loop (``on_tick``) the driver writes the acks given
since the last turn without waiting for their replies, (re)registers the
readers of channels that started consuming or reconnected, and fetches
for woken channels whose QoS allows it again.  Timers (``call_repeatedly``)
run the housekeeping (refresh of bindings, restore of the messages of dead
consumers) and wake channels that have not fetched for a while, as a
safety net and for servers that refuse client-side tracking.  The
refresher that keeps held messages fresh stays a thread
(:mod:`kombu_redis.refresh`): a callback may run for longer than the
visibility timeout (a task in Celery's solo pool), and no timer of the
loop runs meanwhile.

After ``hub.reset()`` or ``hub.close()`` the readers are registered again
on the next turn; registering the transport again replaces the driver (its
timers are cancelled).
"""

from __future__ import annotations

import logging
from threading import get_ident
from time import monotonic
from typing import TYPE_CHECKING, Any

from kombu_redis.acks import ACK_CHUNK
from kombu_redis.fetch import FALLBACK_POLL_INTERVAL

if TYPE_CHECKING:  # pragma: no cover
    from kombu_redis.channel import Channel
    from kombu_redis.transport import Transport
    from kombu_redis.waiter import Waiter

__all__ = ("DELIVER_BATCH", "FETCH_DEFER", "IDLE_FETCH_INTERVAL", "HubDriver")

logger = logging.getLogger("kombu.transport.redis")

#: Messages delivered per channel in one callback before the loop gets a turn.
DELIVER_BATCH = 100
#: Seconds after which a channel that has not fetched fetches anyway (a
#: wake-up lost with a reconnect, say); the blocking path does the same.
IDLE_FETCH_INTERVAL = 1.0
#: Seconds a fetch may wait for more of the prefetch window to open while
#: the channel still holds more than half of it (one round trip then takes
#: several messages instead of one per ack).  Past it the fetch takes what
#: is open, so a worker never idles longer than this (plus a turn of the
#: loop) for want of a fetch.
FETCH_DEFER = 0.005
#: Seconds past its time after which a held-back fetch's timer counts as
#: lost (the loop was reset): acks no longer wait for it.
DEFERRED_GRACE = 0.05


class HubDriver:
    """Drives ``transport``'s consuming channels from ``loop``."""

    def __init__(self, transport: Transport, loop: Any) -> None:
        self.transport = transport
        self.loop = loop
        #: fd -> (channel, socket, waiter) of the readers this driver added.
        self.fds: dict[int, tuple[Channel, Any, Waiter]] = {}
        self.timers: list[Any] = []
        self.active = False
        self._scheduled = False
        #: The timer of a fetch held back for a wider window (see window_open).
        self._deferred: Any = None
        self._deferred_due = 0.0

    # -- registration --------------------------------------------------------
    def attach(self) -> None:
        """Add the tick callback and the timers to the loop."""
        loop = self.loop
        self.active = True
        loop.on_tick.add(self.on_tick)
        loop.on_close.add(self.on_loop_close)
        self.timers = [
            loop.call_repeatedly(self.housekeeping_interval(), self.housekeeping),
            loop.call_repeatedly(FALLBACK_POLL_INTERVAL, self.nudge),
        ]

    def detach(self) -> None:
        """Remove everything this driver added to the loop (bounded, never raises)."""
        self.active = False
        loop = self.loop
        for timer in self.timers:
            try:
                timer.cancel()
            except Exception:  # noqa: BLE001 - cancelling anyway
                pass
        self.timers = []
        if self._deferred is not None:
            try:
                self._deferred.cancel()
            except Exception:  # noqa: BLE001 - cancelling anyway
                pass
            self._deferred = None
        loop.on_tick.discard(self.on_tick)
        loop.on_close.discard(self.on_loop_close)
        for fd in list(self.fds):
            self._remove(fd)
        for channel in list(self.transport.channels):
            acks = getattr(channel, "acks", None)
            if acks is not None and acks.loop_thread is not None:
                acks.loop_thread = None
                if acks.pending:
                    try:
                        acks.send()
                    except Exception:  # noqa: BLE001 - close settles them
                        pass
            waiters = getattr(channel, "waiters", None)
            for waiter in waiters() if waiters is not None else ():
                waiter.on_close = None

    def housekeeping_interval(self) -> float:
        """Seconds between housekeeping passes (as the channels compute it)."""
        from kombu_redis.channel import Channel

        options = self.transport.client.transport_options if self.transport.client else {}
        interval = options.get("unacked_restore_interval", Channel.unacked_restore_interval)
        timeout = options.get("visibility_timeout", Channel.visibility_timeout)
        return max(min(float(interval), float(timeout) / 4), 0.01)

    def on_loop_close(self, loop: Any) -> None:
        """The loop was reset or closed: it dropped every reader (added again
        next turn) and its timers."""
        self.fds.clear()
        self._deferred = None

    # -- readers -------------------------------------------------------------
    def _remove(self, fd: int) -> None:
        self.fds.pop(fd, None)
        try:
            self.loop.remove_reader(fd)
        except Exception:  # noqa: BLE001 - the loop may be closed
            pass

    def forget(self, sock: Any) -> None:
        """``sock`` (a waiter's) is about to be closed: stop watching it."""
        for fd, (_, known, _) in list(self.fds.items()):
            if known is sock:
                self._remove(fd)

    def _watch(self, channel: Channel) -> None:
        """Make sure the loop reads the sockets of ``channel``'s waiters."""
        readers = self.loop.readers
        for waiter in channel.waiters():
            sock = waiter.sock
            if sock is None:
                continue
            fd = sock.fileno()
            known = self.fds.get(fd)
            if known is not None and known[1] is sock and fd in readers:
                continue
            waiter.on_close = self.forget
            self.fds[fd] = (channel, sock, waiter)
            self.loop.add_reader(fd, self.transport.on_readable, fd)

    def on_readable(self, fd: int) -> None:
        """The waiter socket ``fd`` is readable: read it, then fetch and deliver."""
        known = self.fds.get(fd)
        if known is None:
            return
        channel, sock, waiter = known
        if waiter.sock is not sock or channel.closed:
            self._remove(fd)
            return
        waiter.read()  # a lost connection is closed (reader removed) and raised
        if self.pump(channel):
            self.schedule()

    # -- work ----------------------------------------------------------------
    @staticmethod
    def _reconnect_due(channel: Channel) -> bool:
        """Whether a fetch is due to reconnect ``channel``'s fanout subscriptions.

        (Tracking is set up again by the next fetch the QoS allows.)
        """
        waiter = channel.waiter
        return channel.wakeup and bool(waiter.wanted) and not waiter.connected

    def has_work(self, channel: Channel) -> bool:
        """Whether ``channel`` can deliver, fetch or reconnect now."""
        if channel.fetcher.buffer:
            return True
        if not channel.wakeup:
            return False
        if channel.fetcher.queues and self.window_open(channel):
            return True
        return self._reconnect_due(channel)

    def window_open(self, channel: Channel) -> bool:
        """Whether ``channel`` should fetch now: its QoS allows it, and either
        at least half of the prefetch window is open or the last fetch is
        FETCH_DEFER seconds old (a timer fetches then).  Never more than the
        QoS allows."""
        window = channel.fetch_window()
        if window <= 0:
            return False
        qos = channel.qos
        pcount = qos.prefetch_count if channel.ack_emulation else 0
        if not pcount or window * 2 >= pcount or "can_consume" in vars(qos):
            return True
        wait = channel.last_fetch + FETCH_DEFER - monotonic()
        if wait <= 0:
            return True
        self.deferred(wait)
        return False

    def deferred(self, wait: float) -> None:
        """Have a fetch held back for a wider window run in ``wait`` seconds."""
        if not self._deferred_live():
            self._deferred_due = monotonic() + wait
            self._deferred = self.loop.call_later(wait, self._run_deferred)

    def _deferred_live(self) -> bool:
        """Whether a held-back fetch is due (a timer the loop dropped is not)."""
        return (self._deferred is not None
                and monotonic() <= self._deferred_due + DEFERRED_GRACE)

    def _run_deferred(self) -> None:
        self._deferred = None
        if self.active:
            self.run_pending()

    def acks_wait(self, channel: Channel) -> bool:
        """Whether ``channel``'s pending acks can ride on a fetch held back
        for at most FETCH_DEFER (they are written now otherwise)."""
        return (channel.wakeup and not channel.closed and self._deferred_live()
                and len(channel.acks.pending) < ACK_CHUNK and channel in self.transport.consuming)

    def pump(self, channel: Channel) -> bool:
        """Fetch (if woken and the QoS allows) and deliver up to DELIVER_BATCH
        messages of ``channel``; whether it has more work right away."""
        fetcher = channel.fetcher
        if not fetcher.buffer and self.has_work(channel):
            # A fetch that finds the window closed, or fills it, leaves the
            # channel woken (see Channel.fetch); a lost waiter is reconnected.
            channel.wakeup = False
            channel.fetch()
        if fetcher.buffer:
            acks = channel.acks
            try:
                for _ in range(DELIVER_BATCH):
                    if not fetcher.buffer or channel.closed:
                        break
                    channel.deliver_one(send_acks=False)
            finally:
                if acks.pending and not channel.closed and not self.acks_wait(channel):
                    acks.send()
        return not channel.closed and self.has_work(channel)

    @property
    def busy(self) -> bool:
        """Whether work is queued for the next turn (the loop will not wait)."""
        return self._scheduled

    def schedule(self) -> None:
        """Run :meth:`run_pending` at the start of the next turn (the loop does not wait)."""
        if not self._scheduled:
            self._scheduled = True
            self.loop.call_soon(self.run_pending)

    def run_pending(self) -> None:
        self._scheduled = False
        if not self.active:
            return
        more = False
        for channel in list(self.transport.consuming):
            more = self.pump(channel) or more
        self.send_acks()
        if more:
            self.schedule()

    def send_acks(self) -> None:
        """Write the pending acks of every channel, but those riding on a
        fetch held back for a moment (see :meth:`acks_wait`)."""
        for channel in self.transport.channels:
            acks = channel.acks  # type: ignore[attr-defined]
            if acks.pending and not self.acks_wait(channel):  # type: ignore[arg-type]
                acks.send()

    def on_tick(self) -> None:
        """Every turn: send acks, watch sockets, fetch for woken channels."""
        if not self.active or self.transport.hub is not self:
            self.loop.on_tick.discard(self.on_tick)
            return
        ident = get_ident()
        for channel in self.transport.channels:
            channel.acks.loop_thread = ident  # type: ignore[attr-defined]
        more = False
        consuming = list(self.transport.consuming)  # a callback may cancel a consumer
        for channel in consuming:
            self._watch(channel)
            if self.has_work(channel):
                # A fetch carries the acks given so far in its pop script.
                more = self.pump(channel) or more
        self.send_acks()
        for fd, (channel, sock, waiter) in list(self.fds.items()):
            if waiter.sock is not sock or channel not in consuming:
                self._remove(fd)
        if more:
            self.schedule()

    def nudge(self) -> None:
        """Wake channels that Redis cannot wake: no tracking, a waiter that
        lost its connection (reconnected at this pace), or no fetch for
        IDLE_FETCH_INTERVAL.  The fetch runs in the next ``on_tick``."""
        now = monotonic()
        for channel in self.transport.consuming:
            channel.before_nudge()
            if channel.waiters_lost():
                channel.wakeup = True
            elif channel.fetcher.queues and (not channel.fetcher.tracking
                                             or now - channel.last_fetch >= IDLE_FETCH_INTERVAL):
                channel.wakeup = True

    def housekeeping(self) -> None:
        """Refresh held messages and bindings; restore those of dead consumers."""
        if not self.active:
            return
        now = monotonic()
        for channel in list(self.transport.consuming):
            if now >= channel.next_housekeeping:
                channel.housekeeping()
