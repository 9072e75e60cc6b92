"""Retry policies: how often and how long a connection retries, as values.

A :class:`RetryPolicy` holds the limits (``max_retries``, ``timeout``) and
the back-off (``interval_start``, ``interval_step``, ``interval_max``) of
one retrying operation, and how far that operation has got (``retries``
made, the current ``interval``, the ``deadline``).  It never changes:
:meth:`RetryPolicy.start` and :meth:`RetryPolicy.increment` return new
values, so one policy can be shared by every call it governs::

    policy = RetryPolicy(max_retries=3, interval_start=0.5).start()
    while True:
        try:
            return connect()
        except OSError:
            if policy.is_exhausted(policy.next_interval()):
                raise
            time.sleep(policy.next_interval())
            policy = policy.increment()

:class:`~kombu.Connection` builds one from the arguments of
``ensure_connection``, ``ensure`` and ``autoretry`` and from the transport
options that govern ``default_channel``.
"""

from __future__ import annotations

from collections.abc import Mapping
from time import monotonic
from typing import Any

__all__ = ("RetryPolicy",)

#: Transport options that set the policy of ``Connection.default_channel``.
TRANSPORT_OPTION_KEYS = ("max_retries", "interval_start", "interval_step", "interval_max")


def _seconds(name: str, value: Any) -> float:
    try:
        seconds = float(value)
    except (TypeError, ValueError):
        seconds = -1.0
    if isinstance(value, bool) or not seconds >= 0:
        raise ValueError(f"{name} must be a number of seconds >= 0, not {value!r}")
    return seconds


def _count(name: str, value: Any) -> int | None:
    if value is None:
        return None
    if isinstance(value, float) and value.is_integer():
        value = int(value)
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ValueError(f"{name} must be a whole number >= 0 or None, not {value!r}")
    return value


class RetryPolicy:
    """The limits and back-off of one retrying operation, and its progress.

    :param max_retries: retries allowed after the first attempt; ``None``
        for no limit (then ``timeout`` bounds the retries), ``0`` for a
        single attempt.
    :param interval_start: seconds to wait before the first retry that waits.
    :param interval_step: seconds added to the wait each time it is used.
    :param interval_max: the longest wait.
    :param timeout: seconds the whole operation may take from :meth:`start`;
        ``None`` for no limit.

    ``retries`` counts the retries made, ``interval`` is the wait that
    :meth:`next_interval` returns, and ``deadline`` (a :func:`time.monotonic`
    time) is set by :meth:`start` when there is a ``timeout``.  A bad value
    raises :exc:`ValueError` naming it.
    """

    __slots__ = ("max_retries", "interval_start", "interval_step", "interval_max",
                 "timeout", "retries", "interval", "deadline")

    max_retries: int | None
    interval_start: float
    interval_step: float
    interval_max: float
    timeout: float | None
    retries: int
    interval: float
    deadline: float | None

    def __init__(self, max_retries: int | None = None, interval_start: float = 2.0,
                 interval_step: float = 2.0, interval_max: float = 30.0,
                 timeout: float | None = None, *, retries: int = 0,
                 interval: float | None = None, deadline: float | None = None) -> None:
        self.max_retries = _count("max_retries", max_retries)
        self.interval_start = _seconds("interval_start", interval_start)
        self.interval_step = _seconds("interval_step", interval_step)
        self.interval_max = _seconds("interval_max", interval_max)
        self.timeout = None if timeout is None else _seconds("timeout", timeout)
        self.retries = retries
        self.interval = self.interval_start if interval is None else interval
        self.deadline = deadline

    @classmethod
    def from_options(cls, options: Mapping[str, Any], **defaults: Any) -> RetryPolicy:
        """A policy from ``defaults`` overridden by the keys of ``options`` it knows.

        ``options`` may set ``max_retries``, ``interval_start``,
        ``interval_step``, ``interval_max`` and ``connect_retries_timeout``
        (the ``timeout``), as a connection's transport options do; other keys
        are ignored.
        """
        kwargs = dict(defaults)
        for key in TRANSPORT_OPTION_KEYS:
            if key in options:
                kwargs[key] = options[key]
        if "connect_retries_timeout" in options:
            kwargs["timeout"] = options["connect_retries_timeout"]
        return cls(**kwargs)

    def _replace(self, **changes: Any) -> RetryPolicy:
        values = {name: getattr(self, name) for name in self.__slots__}
        values.update(changes)
        return RetryPolicy(values.pop("max_retries"), values.pop("interval_start"),
                           values.pop("interval_step"), values.pop("interval_max"),
                           values.pop("timeout"), **values)

    def start(self, now: float | None = None) -> RetryPolicy:
        """The policy at the start of an operation: no retries made, the
        deadline ``timeout`` seconds from ``now`` (default: the monotonic
        clock).  Without a ``timeout`` an unused policy is its own start."""
        if self.timeout is None:
            if self.retries == 0 and self.interval == self.interval_start:
                return self
            return self._replace(retries=0, interval=self.interval_start, deadline=None)
        begin = monotonic() if now is None else now
        return self._replace(retries=0, interval=self.interval_start,
                             deadline=begin + self.timeout)

    def next_interval(self) -> float:
        """Seconds to wait before the next retry, if it waits."""
        return self.interval

    def remaining(self, now: float | None = None) -> float | None:
        """Seconds left before the deadline (``None`` without one, never negative)."""
        if self.deadline is None:
            return None
        return max(self.deadline - (monotonic() if now is None else now), 0.0)

    def is_exhausted(self, wait: float = 0.0, now: float | None = None) -> bool:
        """Whether another retry is not allowed: ``max_retries`` are made, or
        the retry would start, after waiting ``wait`` seconds, at or after
        the deadline."""
        if self.max_retries is not None and self.retries >= self.max_retries:
            return True
        if self.deadline is None:
            return False
        return (monotonic() if now is None else now) + wait >= self.deadline

    def increment(self, waited: bool = True) -> RetryPolicy:
        """The policy after one more retry; the interval grows (up to
        ``interval_max``) when the retry used it (``waited``)."""
        interval = self.interval
        if waited:
            interval = min(interval + self.interval_step, self.interval_max)
        return self._replace(retries=self.retries + 1, interval=interval)

    def for_reconnect(self, hosts: int, now: float | None = None) -> RetryPolicy:
        """The policy of a reconnect made inside this operation.

        Each retry this policy has left becomes one try of each of ``hosts``
        hosts (the failed one is retried last), and the reconnect must end by
        this policy's deadline.
        """
        hosts = max(hosts, 1)
        max_retries = None
        if self.max_retries is not None:
            max_retries = (max(self.max_retries - self.retries - 1, 0) + 1) * hosts - 1
        return RetryPolicy(max_retries, self.interval_start, self.interval_step,
                           self.interval_max, self.remaining(now))

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, RetryPolicy):
            return NotImplemented
        return all(getattr(self, name) == getattr(other, name) for name in self.__slots__)

    def __hash__(self) -> int:
        return hash(tuple(getattr(self, name) for name in self.__slots__))

    def __repr__(self) -> str:
        fields = ", ".join(f"{name}={getattr(self, name)!r}" for name in self.__slots__)
        return f"RetryPolicy({fields})"
