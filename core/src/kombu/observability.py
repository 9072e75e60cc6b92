"""Observability hooks: calls the ``kombu_*`` event hooks of observer plugins.

kombu's connection, producer, consumer and message code call the functions
here at each event (connection established, lost, failed over; publish;
delivery; ack, reject, requeue; consumer started and cancelled).  The hooks
are specified in :mod:`kombu.hookspecs`; the list with their arguments is in
``docs/observability.md``.

Observers come from two places:

* plugins named by entry points in the ``kombu.plugins`` group (not
  ``kombu.transports``: an observer provides no transport, and it must apply
  to every connection, including one whose transport is given as a class);
  they are read once, on the first event of the process;
* objects registered in this process with :func:`register_plugin` (for
  applications and tests), removed with :func:`unregister_plugin`.

Cost when nobody observes: the publish, delivery and acknowledgement paths
test one attribute of :data:`active` (a bool per event family) and call
nothing.  The flags start true ("not known yet"); the first event loads the
plugins and sets each flag to whether an implementation exists.  The plugin
manager updates them whenever a plugin is registered or unregistered.

An implementation that raises does not break messaging: the error is logged
(with its traceback the first time for that plugin and hook, then at debug
level), counted in :func:`errors`, and the other implementations still run.

Environment: ``KOMBU_DISABLE_PLUGIN_AUTOLOAD`` (shared with transports)
reads no entry points; ``KOMBU_BLOCKED_PLUGINS=name-or-distribution,...``
skips the named observer plugins.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Mapping
from operator import itemgetter
from typing import TYPE_CHECKING, Any

from kombu.log import get_logger
from kombu.utils.entrypoints import ENV_DISABLE_AUTOLOAD as ENV_DISABLE_AUTOLOAD  # re-exported
from kombu.utils.entrypoints import autoload_disabled

if TYPE_CHECKING:  # pragma: no cover
    import pluggy

__all__ = (
    "ENTRY_POINT_GROUP",
    "EVENT_HOOKS",
    "active",
    "errors",
    "plugin_info",
    "plugin_manager",
    "register_plugin",
    "unregister_plugin",
)

logger = get_logger(__name__)

ENTRY_POINT_GROUP = "kombu.plugins"
ENV_BLOCKED = "KOMBU_BLOCKED_PLUGINS"

#: Event hook -> the flag of :data:`active` that says someone observes it.
EVENT_HOOKS: dict[str, str] = {
    "kombu_connection_established": "connection",
    "kombu_connection_lost": "connection",
    "kombu_connection_failover": "connection",
    "kombu_before_publish": "publish",
    "kombu_after_publish": "publish",
    "kombu_message_delivered": "deliver",
    "kombu_message_handled": "deliver",
    "kombu_message_acked": "ack",
    "kombu_message_rejected": "reject",
    "kombu_message_requeued": "reject",
    "kombu_consumer_started": "consumer",
    "kombu_consumer_cancelled": "consumer",
}


class _Active:
    """One flag per event family: whether any implementation may observe it."""

    __slots__ = ("connection", "publish", "deliver", "ack", "reject", "consumer")

    def __init__(self) -> None:
        # True means "not known yet": the first event loads the plugins.
        self.connection = True
        self.publish = True
        self.deliver = True
        self.ack = True
        self.reject = True
        self.consumer = True

    def __repr__(self) -> str:
        on = [flag for flag in self.__slots__ if getattr(self, flag)]
        return f"<observability.active: {', '.join(on) or 'none'}>"


#: The flags the hot paths test (``if active.publish: ...``).
active = _Active()

# (call taking the event's mapping, plugin name) per hook, rebuilt on every change.
_Impl = tuple[Callable[[Mapping[str, Any]], Any], str]
_calls: dict[str, tuple[_Impl, ...]] = dict.fromkeys(EVENT_HOOKS, ())
_errors: dict[tuple[str, str], int] = {}
_failures: list[dict[str, Any]] = []
_loaded: list[dict[str, Any]] = []
_pm: pluggy.PluginManager | None = None
_lock = threading.RLock()


# -- the plugin manager ---------------------------------------------------------
def plugin_manager() -> pluggy.PluginManager:
    """The :class:`pluggy.PluginManager` of the observers (loading the plugins once)."""
    pm = _pm
    if pm is None:
        with _lock:
            pm = _pm if _pm is not None else _setup()
    return pm


def _setup() -> pluggy.PluginManager:
    global _pm
    pm = _new_manager()
    _pm = pm
    if not autoload_disabled():
        _load_entry_points(pm)
    _refresh(pm)
    return pm


def _new_manager() -> pluggy.PluginManager:
    import pluggy

    from kombu import hookspecs

    class ObserverManager(pluggy.PluginManager):
        """A plugin manager that keeps :data:`active` and the call table current."""

        def register(self, plugin: object, name: str | None = None) -> str | None:
            with _lock:
                try:
                    return super().register(plugin, name)
                finally:
                    _refresh(self)

        def unregister(self, plugin: object | None = None,
                       name: str | None = None) -> Any | None:
            with _lock:
                try:
                    return super().unregister(plugin, name)
                finally:
                    _refresh(self)

    pm = ObserverManager(hookspecs.PROJECT_NAME)
    pm.add_hookspecs(hookspecs)
    return pm


def _load_entry_points(pm: pluggy.PluginManager) -> None:
    from kombu.transport.plugins import entry_points

    blocked = {_normalize(b) for b in os.environ.get(ENV_BLOCKED, "").split(",") if b.strip()}
    for ep in sorted(entry_points(ENTRY_POINT_GROUP), key=lambda ep: ep.name):
        dist = getattr(ep, "dist", None)
        dist_name = getattr(dist, "name", None)
        version = getattr(dist, "version", None)
        row = {"plugin": ep.name, "dist": dist_name, "version": version, "error": None}
        if _normalize(ep.name) in blocked or (dist_name and _normalize(dist_name) in blocked):
            continue
        try:
            module = ep.load()
            name = ep.name if pm.get_plugin(ep.name) is None else f"{dist_name}:{ep.name}"
            pm.register(module, name=name)
        except Exception as exc:
            row["error"] = f"{type(exc).__name__}: {exc}"
            _failures.append(row)
            logger.warning("kombu observer plugin %r (%s %s) could not be loaded from %r and "
                           "is ignored: %s", ep.name, dist_name, version or "", ep.value,
                           row["error"], exc_info=True)
            continue
        _loaded.append(row)


def _normalize(name: str) -> str:
    return name.strip().lower().replace("_", "-").replace(".", "-")


def _refresh(pm: pluggy.PluginManager) -> None:
    """Rebuild the call table and the flags from the registered implementations."""
    table: dict[str, tuple[_Impl, ...]] = {}
    for hook in EVENT_HOOKS:
        caller = getattr(pm.hook, hook, None)
        impls = [] if caller is None else caller.get_hookimpls()
        # pluggy calls the last registered first; do the same.  Wrappers
        # have nothing to wrap here, so they are left out.
        table[hook] = tuple(
            (_caller(impl.function, tuple(impl.argnames)), impl.plugin_name)
            for impl in reversed(impls) if not (impl.hookwrapper or impl.wrapper))
    _calls.update(table)
    for flag in _Active.__slots__:
        setattr(active, flag, any(table[h] for h, f in EVENT_HOOKS.items() if f == flag))


def register_plugin(plugin: object, name: str | None = None) -> str:
    """Register an observer (a module, class or instance with ``@kombu.hookimpl`` methods).

    Returns the name it is registered under (``name``, or one pluggy makes
    up).  Takes effect at once, for every connection of the process.

    :raises ValueError: it (or another plugin of that name) is registered already.
    """
    pm = plugin_manager()
    try:
        registered = pm.register(plugin, name)
    except ValueError as exc:
        raise ValueError(f"Cannot register {plugin!r} as a kombu observer: {exc}; "
                         "unregister the other one first, or pass another name=") from None
    if registered is None:
        raise ValueError(f"The kombu observer plugin name {name!r} is blocked")
    return registered


def unregister_plugin(plugin: object) -> None:
    """Unregister an observer, given the object or the name it was registered under.

    :raises ValueError: no such observer is registered.
    """
    pm = plugin_manager()
    if isinstance(plugin, str):
        if pm.get_plugin(plugin) is None:
            raise ValueError(f"No kombu observer plugin is registered as {plugin!r}")
        pm.unregister(name=plugin)
    else:
        if not pm.is_registered(plugin):
            raise ValueError(f"{plugin!r} is not a registered kombu observer plugin")
        pm.unregister(plugin)


def plugin_info() -> list[dict[str, Any]]:
    """Observer plugins from entry points: name, distribution, version, error (or None)."""
    plugin_manager()
    return [dict(row) for row in (*_loaded, *_failures)]


def errors() -> dict[tuple[str, str], int]:
    """How many times each ``(plugin, hook)`` raised since the process started."""
    return dict(_errors)


# -- dispatch --------------------------------------------------------------------
def _caller(function: Callable[..., Any], argnames: tuple[str, ...]
            ) -> Callable[[Mapping[str, Any]], Any]:
    """A call of ``function`` with the arguments it names, taken from an event's mapping.

    pluggy's ``argnames`` are the function's positional parameters in
    order, so they are passed positionally (cheaper than keywords).
    """
    if not argnames:
        return lambda event: function()
    if len(argnames) == 1:
        key = argnames[0]
        return lambda event: function(event[key])
    getter = itemgetter(*argnames)
    return lambda event: function(*getter(event))


def _emit(hook: str, event: Mapping[str, Any]) -> None:
    """Call every implementation of ``hook``; one that raises is logged, not raised."""
    for call, plugin in _calls[hook]:
        try:
            call(event)
        except Exception:
            key = (plugin, hook)
            seen = _errors.get(key, 0)
            _errors[key] = seen + 1
            if seen:
                logger.debug("kombu observer %r raised in %s again (%d times)", plugin, hook,
                             seen + 1, exc_info=True)
            else:
                logger.error("kombu observer %r raised in %s; the error is ignored and "
                             "messaging goes on (further errors are logged at debug level)",
                             plugin, hook, exc_info=True)


def _ready(flag: str) -> bool:
    """Whether any implementation observes ``flag`` (loading the plugins once)."""
    if _pm is None:
        plugin_manager()
    return bool(getattr(active, flag))


def _uri(connection: Any) -> str:
    try:
        return str(connection.as_uri())
    except Exception:  # noqa: BLE001 - a URL for a report must never fail
        return "<unknown>"


def connection_established(connection: Any) -> None:
    """Tell observers ``connection`` connected."""
    if active.connection and _ready("connection") and _calls["kombu_connection_established"]:
        _emit("kombu_connection_established", {"connection": connection,
                                               "url": _uri(connection)})


def connection_lost(connection: Any, exc: BaseException | None) -> None:
    """Tell observers the connection in use failed with ``exc`` (``None``: found dead)."""
    if active.connection and _ready("connection") and _calls["kombu_connection_lost"]:
        _emit("kombu_connection_lost", {"connection": connection, "url": _uri(connection),
                                        "exc": exc})


def maybe_switch_next(connection: Any, reason: BaseException | None) -> None:
    """``connection.maybe_switch_next()``, telling observers when it moved to another URL."""
    if not (active.connection and _ready("connection") and _calls["kombu_connection_failover"]
            and connection.cycle is not None):
        connection.maybe_switch_next()
        return
    from_url = _uri(connection)
    connection.maybe_switch_next()
    _emit("kombu_connection_failover", {"connection": connection, "from_url": from_url,
                                        "to_url": _uri(connection), "reason": reason})


def publish(producer: Any, send: Callable[..., Any], body: Any, priority: int,
            content_type: str | None, content_encoding: str | None,
            headers: dict[str, Any] | None, properties: dict[str, Any], routing_key: str,
            *rest: Any) -> Any:
    """Call ``send(body, ..., *rest)`` (a producer's publish), with the publish hooks around it.

    ``rest`` is ``(mandatory, immediate, exchange, declare, timeout,
    confirm_timeout)``, in the order of ``Producer._publish``.
    """
    if not _ready("publish"):
        return send(body, priority, content_type, content_encoding, headers, properties,
                    routing_key, *rest)
    headers = dict(headers) if headers else {}  # hooks may add to it; not the caller's dict
    connection = producer.__connection__
    if connection is None:
        try:
            connection = producer.connection
        except Exception:  # noqa: BLE001 - a report must never fail the publish
            connection = None
    event: dict[str, Any] = {
        "producer": producer, "connection": connection, "exchange": rest[2],
        "routing_key": routing_key, "headers": headers, "properties": properties,
        "body_size": len(body) if body is not None else 0, "content_type": content_type,
        "priority": priority, "exc": None,
    }
    if _calls["kombu_before_publish"]:
        _emit("kombu_before_publish", event)
    try:
        result = send(body, priority, content_type, content_encoding, headers, properties,
                      routing_key, *rest)
    except BaseException as exc:
        if _calls["kombu_after_publish"]:
            event["exc"] = exc
            _emit("kombu_after_publish", event)
        raise
    if _calls["kombu_after_publish"]:
        _emit("kombu_after_publish", event)
    return result


def deliver(consumer: Any, message: Any) -> Any:
    """Let ``consumer`` handle ``message`` (``_receive_callback(message, observe=False)``),
    with the delivery hooks around it."""
    if _pm is None:
        plugin_manager()
    if not active.deliver:
        return consumer._receive_callback(message, False)
    if message.__class__ is not _message_class():
        from kombu.message import Message

        to_python = getattr(consumer.channel, "message_to_python", None)
        if to_python is not None and not isinstance(message, Message):
            try:
                message = to_python(message)
            except Exception:  # noqa: BLE001 - the consumer reports it as it always does
                return consumer._receive_callback(message, False)
    event = _delivery(consumer, message, _queue_of(consumer, message))
    if _calls["kombu_message_delivered"]:
        _emit("kombu_message_delivered", event)
    try:
        result = consumer._receive_callback(message, False)
    except BaseException as exc:
        if _calls["kombu_message_handled"]:
            event["exc"] = exc
            _emit("kombu_message_handled", event)
        raise
    if _calls["kombu_message_handled"]:
        _emit("kombu_message_handled", event)
    return result


_Message: list[type] = []


def _message_class() -> type:
    """:class:`kombu.message.Message` (imported on first use: it imports this module)."""
    if not _Message:
        from kombu.message import Message

        _Message.append(Message)
    return _Message[0]


def _queue_of(consumer: Any, message: Any) -> str | None:
    """The name of the queue ``consumer`` received ``message`` from, if it can be told."""
    tag = (message.delivery_info or {}).get("consumer_tag")
    tags = consumer._active_tags
    if tag is not None:
        for name, ctag in tags.items():
            if ctag == tag:
                return str(name)
    source = getattr(message, "_source_queue", None)  # set by virtual transports
    if source is not None:
        return str(source)
    return str(next(iter(tags))) if len(tags) == 1 else None


def fetched(consumer: Any, message: Any, queue: str) -> None:
    """Tell observers ``message`` was fetched from ``queue`` with ``basic_get``.

    ``consumer`` is the :class:`~kombu.Consumer` of a ``SimpleQueue``, or
    ``None`` for :meth:`Queue.get <kombu.Queue.get>`.
    """
    if _ready("deliver") and _calls["kombu_message_delivered"]:
        _emit("kombu_message_delivered", _delivery(consumer, message, queue))


def _delivery(consumer: Any, message: Any, queue: str | None) -> dict[str, Any]:
    info = message.delivery_info or {}
    body = message.body
    headers = message.headers
    return {
        "consumer": consumer, "message": message, "queue": queue,
        "exchange": info.get("exchange", ""), "routing_key": info.get("routing_key", ""),
        "headers": headers if headers is not None else {},
        "delivery_tag": message.delivery_tag,
        "body_size": len(body) if body is not None else 0,
        "redelivered": bool(info.get("redelivered", False)), "exc": None,
    }


def acked(message: Any, multiple: bool) -> None:
    """Tell observers ``message`` was acknowledged."""
    if _pm is None:
        plugin_manager()
    if _calls["kombu_message_acked"]:
        _emit("kombu_message_acked", {"message": message, "delivery_tag": message.delivery_tag,
                                      "multiple": multiple})


def rejected(message: Any, requeue: bool) -> None:
    """Tell observers ``message`` was rejected, or requeued when ``requeue``."""
    if _pm is None:
        plugin_manager()
    hook = "kombu_message_requeued" if requeue else "kombu_message_rejected"
    if _calls[hook]:
        _emit(hook, {"message": message, "delivery_tag": message.delivery_tag})


def consumer_started(consumer: Any, queue: str, consumer_tag: str, no_ack: bool) -> None:
    """Tell observers ``consumer`` started consuming from ``queue``."""
    if active.consumer and _ready("consumer") and _calls["kombu_consumer_started"]:
        _emit("kombu_consumer_started", {"consumer": consumer, "queue": queue,
                                         "consumer_tag": consumer_tag, "no_ack": bool(no_ack)})


def consumer_cancelled(consumer: Any, queue: str, consumer_tag: str) -> None:
    """Tell observers ``consumer`` stopped consuming from ``queue``."""
    if active.consumer and _ready("consumer") and _calls["kombu_consumer_cancelled"]:
        _emit("kombu_consumer_cancelled", {"consumer": consumer, "queue": queue,
                                           "consumer_tag": consumer_tag})
