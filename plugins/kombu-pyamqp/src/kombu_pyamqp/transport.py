"""AMQP 0-9-1 transport through the ``amqp`` (py-amqp) library.

URLs: ``amqp://``, ``pyamqp://`` and ``amqps://`` (TLS), as
``amqp://user:password@host:port/virtual_host`` (``//`` is the virtual host
``/``).  ``transport_options`` are passed on to :class:`amqp.Connection`:
``confirm_publish``, ``read_timeout``, ``write_timeout``,
``socket_settings``, ``client_properties``, ``channel_max``, ``frame_max``,
``locale``, ...

* Wrong credentials, a login method the broker does not offer and an unknown
  (or forbidden) virtual host raise :exc:`kombu.exceptions.AccessRefused` with
  a message that says what to fix; a broker connection limit that is reached
  raises :exc:`kombu.exceptions.RecoverableConnectionError`, which
  ``ensure_connection`` retries.
* A message published without headers carries an empty header table.
* TLS checks the broker's host name by default (``server_hostname`` is the
  connection's host name unless given, or verification is turned off with
  ``cert_reqs=ssl.CERT_NONE``).
* Closing a connection whose broker stopped answering gives up after
  :attr:`Connection.close_timeout` seconds.
* An empty message body is ``b""``.
* Reads are buffered (one ``recv`` for many frames) and publish/ack bypass the
  driver's per-call promise objects; the wire protocol is unchanged.
* A publish whose write times out (``timeout=``, ``write_timeout`` or the
  kernel's ``TCP_USER_TIMEOUT``) raises the driver's
  :exc:`~amqp.exceptions.RecoverableConnectionError`, also when the driver
  let a bare ``BlockingIOError`` through, and the connection is marked
  disconnected (a frame may be half written): closing it (or one of its
  channels) then closes the socket without a word to the broker.
* ``drain_events`` ignores keyword arguments other than ``timeout``.
* ``Connection.get_manager()`` is kombu-core's base management object, and
  the host name ``localhost`` is dialled as ``127.0.0.1`` without being
  rewritten in the :class:`kombu.Connection`.

Importing this module makes the driver's ``ChannelError``, ``ConnectionError``
and ``ResourceError`` subclasses of kombu-core's classes of the same names (in
kombu 5.x those *are* the driver's classes): see :func:`adopt_kombu_exceptions`.
"""

from __future__ import annotations

import re
import socket
import ssl as _ssl
from collections.abc import Mapping
from select import select
from struct import Struct
from typing import TYPE_CHECKING, Any, Callable

import amqp
from amqp import exceptions as _amqp_exceptions
from amqp import spec
from amqp.exceptions import AccessRefused as _AMQPAccessRefused
from amqp.exceptions import ConnectionError as _AMQPConnectionError
from amqp.exceptions import NotAllowed as _AMQPNotAllowed
from amqp.exceptions import RecoverableConnectionError, UnexpectedFrame
from amqp.serialization import dumps
from amqp.transport import SSLTransport as _SSLTransport
from amqp.transport import TCPTransport as _TCPTransport
from kombu.exceptions import AccessRefused
from kombu.exceptions import ChannelError as KombuChannelError
from kombu.exceptions import ConnectionError as KombuConnectionError
from kombu.exceptions import RecoverableConnectionError as KombuRecoverableConnectionError
from kombu.exceptions import ResourceError as KombuResourceError
from kombu.message import Message as _BaseMessage
from kombu.resource import exit_pooled
from kombu.transport import base
from kombu.utils.text import version_string_as_tuple
from kombu.utils.time import maybe_s_to_ms

from kombu_pyamqp.errors import refused_as

try:
    from select import POLLIN, poll
except ImportError:  # pragma: no cover - Windows
    poll = None  # type: ignore[assignment,misc]

__all__ = ("Channel", "Connection", "Message", "SSLTransport", "Transport",
           "adopt_kombu_exceptions")

DEFAULT_PORT = 5672

#: TLS options of a URL's query (``?ssl_ca_certs=...``), by the driver's name.
_URL_SSL_KEYS = {"ssl_ca_certs": "ca_certs", "ssl_certfile": "certfile",
                 "ssl_keyfile": "keyfile", "ssl_cert_reqs": "cert_reqs",
                 "ssl_ciphers": "ciphers", "ssl_server_hostname": "server_hostname"}
DEFAULT_SSL_PORT = 5671

#: RabbitMQ's reply text when a vhost's or user's connection limit is reached,
#: e.g. "access to vhost 'v' refused for user 'u': connection limit (1) is reached".
_LIMIT_REACHED = re.compile(r"\blimit \(\d+\) is reached")

#: Bytes asked of ``recv`` at a time by the buffered transports.
READ_SIZE = 65536

_EMPTY = b""
_FRAME_END = 0xCE
_BASIC_PUBLISH = spec.Basic.Publish
_BASIC_ACK = spec.Basic.Ack
_BASIC_REJECT = spec.Basic.Reject
_pack_tag = Struct(">QB").pack
_frame_header = Struct(">BHI")
_unpack_header = _frame_header.unpack_from

# Encoded basic.publish arguments, keyed by (exchange, routing_key,
# mandatory, immediate): most applications publish to a handful of targets.
_publish_args: dict[tuple[Any, ...], bytes] = {}
_PUBLISH_ARGS_MAX = 4096

#: The driver's exception classes and the kombu-core classes they also are.
_ADOPTED: tuple[tuple[type[BaseException], type[BaseException]], ...] = (
    (_amqp_exceptions.ConnectionError, KombuConnectionError),
    (_amqp_exceptions.ChannelError, KombuChannelError),
    (_amqp_exceptions.ResourceError, KombuResourceError),
)


def adopt_kombu_exceptions() -> None:
    """Make the driver's exception classes subclasses of kombu-core's.

    In kombu 5.x ``kombu.exceptions.ChannelError``, ``ConnectionError`` and
    ``ResourceError`` are the ``amqp`` library's classes, so
    ``except kombu.exceptions.ChannelError`` catches the driver's
    ``PreconditionFailed``.  kombu-core has classes of its own (``import
    kombu`` does not import ``amqp``); this adds each one as an extra base of
    the driver's class of the same name, so ``except`` clauses and
    ``isinstance`` see the driver's exceptions (and every subclass) as
    kombu's.  The driver's own bases come first in the method resolution
    order, so its ``__init__`` and ``__str__`` are unchanged.  Idempotent;
    called when this module is imported.
    """
    for driver_cls, kombu_cls in _ADOPTED:
        if not issubclass(driver_cls, kombu_cls):
            driver_cls.__bases__ = (*driver_cls.__bases__, kombu_cls)


adopt_kombu_exceptions()

_RABBITMQ_QUEUE_ARGUMENTS: Mapping[str, tuple[str, Callable[[Any], Any]]] = {
    "expires": ("x-expires", maybe_s_to_ms),
    "message_ttl": ("x-message-ttl", maybe_s_to_ms),
    "max_length": ("x-max-length", int),
    "max_length_bytes": ("x-max-length-bytes", int),
    "max_priority": ("x-max-priority", int),
}


def to_rabbitmq_queue_arguments(arguments: Mapping[str, Any] | None,
                                **options: Any) -> Mapping[str, Any] | None:
    """Merge kombu's queue options into RabbitMQ ``x-`` queue arguments.

    ``expires`` and ``message_ttl`` are seconds (sent as integer
    milliseconds); ``max_length``, ``max_length_bytes`` and ``max_priority``
    are integers.  Options that are ``None`` are left out.
    """
    prepared = {}
    for key, value in options.items():
        if value is None:
            continue
        name, convert = _RABBITMQ_QUEUE_ARGUMENTS[key]
        prepared[name] = convert(value)
    if not prepared:
        return arguments
    return dict(arguments or {}, **prepared)


class Message(_BaseMessage):
    """A message received over AMQP, built from the driver's message.

    An empty body is ``b""`` (the driver, and so kombu, gave ``""``).
    """

    def __init__(self, msg: amqp.Message, channel: Any = None, **kwargs: Any) -> None:
        props = msg.properties
        info = msg.delivery_info or {}
        body = msg.body
        if body.__class__ is str and not body:
            body = b""
        super().__init__(
            body=body,
            channel=channel,
            delivery_tag=info.get("delivery_tag"),
            content_type=props.get("content_type"),
            content_encoding=props.get("content_encoding"),
            delivery_info=info,
            properties=props,
            headers=props.get("application_headers") or {},
            **kwargs,
        )


_Msg = Message


class Channel(amqp.Channel, base.StdChannel):  # type: ignore[misc]
    """An AMQP channel with kombu's channel interface."""

    Message = Message

    def __init__(self, connection: Any, channel_id: int | None = None,
                 auto_decode: bool = True, on_open: Any = None) -> None:
        super().__init__(connection, channel_id, auto_decode, on_open)
        # kombu's Producer looks for this key before adding its on_return.
        self.events.setdefault("basic_return", set())

    def __exit__(self, exc_type: type[BaseException] | None, *exc_info: Any) -> None:
        """Close the channel; one lent by a ChannelPool goes back to it instead
        (closed and replaced when the block raised)."""
        pool = self.__dict__.get("_channel_pool")
        if pool is None or not exit_pooled(self, pool, exc_type is not None):
            self.close()

    def close(self, reply_code: int = 0, reply_text: str = "",
              method_sig: tuple[int, int] = (0, 0), argsig: str = "BsBB") -> Any:
        """Close the channel; only locally once the connection's socket failed."""
        conn = self.connection
        transport = conn._transport if conn is not None else None
        if transport is not None and not transport.connected:
            self.collect()  # a half-written frame may be on the wire: say nothing
            return None
        return amqp.Channel.close(self, reply_code, reply_text, method_sig, argsig)

    def prepare_message(self, body: Any, priority: int | None = None,
                        content_type: str | None = None,
                        content_encoding: str | None = None,
                        headers: dict[str, Any] | None = None,
                        properties: dict[str, Any] | None = None,
                        _Message: type[amqp.Message] = amqp.Message) -> amqp.Message:
        """Build the driver's message for :meth:`basic_publish`.

        No ``headers`` are sent as an empty table (kombu 5.x sent none here).
        """
        if headers is None:
            headers = {}  # an empty table on the wire, as kombu's Producer.publish sends
        if properties:
            return _Message(body, priority=priority, content_type=content_type,
                            content_encoding=content_encoding,
                            application_headers=headers, **properties)
        return _Message(body, priority=priority, content_type=content_type,
                        content_encoding=content_encoding, application_headers=headers)

    def prepare_queue_arguments(self, arguments: dict[str, Any] | None,
                                **kwargs: Any) -> Any:
        return to_rabbitmq_queue_arguments(arguments, **kwargs)

    def message_to_python(self, raw_message: amqp.Message) -> _Msg:
        """Wrap a delivered driver message in a kombu :class:`Message`."""
        return self.Message(raw_message, channel=self)

    def _basic_publish(self, msg: amqp.Message, exchange: str = "", routing_key: str = "",
                       mandatory: bool = False, immediate: bool = False,
                       timeout: float | None = None, confirm_timeout: float | None = None,
                       argsig: str = "Bssbb") -> None:
        """Publish ``msg`` (the driver's wire format, without a promise per call).

        Pending inbound frames (``connection.blocked``, returned messages,
        heartbeats) are processed first, as the driver does, but only when
        the socket has something to read.
        """
        conn = self.connection
        if conn is None:
            raise RecoverableConnectionError("basic_publish: connection closed")
        if conn._watch_inbound and conn._transport is not None and \
                conn._transport.inbound_pending():
            try:
                conn.drain_events(timeout=0)
            except socket.timeout:
                pass
        key = (exchange, routing_key, mandatory, immediate)
        args = _publish_args.get(key)
        if args is None:
            if len(_publish_args) >= _PUBLISH_ARGS_MAX:
                _publish_args.clear()
            args = _publish_args[key] = dumps(argsig, (0, exchange, routing_key,
                                                       mandatory, immediate))
        write = conn._frame_writer
        if write is None:
            raise RecoverableConnectionError("basic_publish: connection closed")
        try:
            if timeout is None:
                write(1, self.channel_id, _BASIC_PUBLISH, args, msg)
            else:
                with conn.transport.having_timeout(timeout):
                    write(1, self.channel_id, _BASIC_PUBLISH, args, msg)
        except (socket.timeout, BlockingIOError) as exc:
            # ``timeout=`` or TCP_USER_TIMEOUT (socket.timeout), or the
            # ``write_timeout`` socket option (SO_SNDTIMEO: EAGAIN).  A frame may
            # be half written: the socket cannot be used any more.
            transport = conn._transport
            if transport is not None:
                transport.connected = False
            raise RecoverableConnectionError("basic_publish: timed out") from exc

    basic_publish = _basic_publish

    def basic_ack(self, delivery_tag: int, multiple: bool = False,
                  argsig: str = "Lb") -> None:
        """Acknowledge one message (or all up to ``delivery_tag`` if ``multiple``)."""
        conn = self.connection
        write = conn._frame_writer if conn is not None else None
        if write is None:
            raise RecoverableConnectionError("basic_ack: connection already closed")
        write(1, self.channel_id, _BASIC_ACK, _pack_tag(delivery_tag, 1 if multiple else 0), None)

    def basic_reject(self, delivery_tag: int, requeue: bool, argsig: str = "Lb") -> None:
        """Reject one message: requeued if ``requeue``, else dropped or dead-lettered."""
        conn = self.connection
        write = conn._frame_writer if conn is not None else None
        if write is None:
            raise RecoverableConnectionError("basic_reject: connection already closed")
        write(1, self.channel_id, _BASIC_REJECT, _pack_tag(delivery_tag, 1 if requeue else 0),
              None)


class _PendingMixin:
    """Readiness checks shared by the buffered transports."""

    sock: Any
    _poller: Any = None

    def _socket_readable(self) -> bool:
        poller = self._poller
        if poller is None:
            sock = self.sock
            if sock is None:
                return False
            if poll is None:  # pragma: no cover - Windows
                return bool(select((sock,), (), (), 0)[0])
            poller = self._poller = poll()
            poller.register(sock, POLLIN)
        return bool(poller.poll(0))


class BufferedTCPTransport(_PendingMixin, _TCPTransport):  # type: ignore[misc]
    """The driver's TCP transport, reading many frames per ``recv`` call.

    Unread bytes live in ``_read_buffer`` from offset ``_read_pos``; a frame
    is consumed only once it is complete, so a timeout never loses data.
    """

    _read_pos = 0

    def _setup_transport(self) -> None:
        super()._setup_transport()
        self._read_pos = 0
        self._poller = None

    def close(self) -> None:
        super().close()
        self._read_buffer = _EMPTY
        self._read_pos = 0
        self._poller = None

    def _fill(self, need: int) -> None:
        """Read until ``need`` unread bytes are buffered."""
        rbuf = self._read_buffer
        pos = self._read_pos
        if pos:
            rbuf = rbuf[pos:]
            self._read_buffer, self._read_pos = rbuf, 0
        recv = self._quick_recv
        while len(rbuf) < need:
            try:
                chunk = recv(max(READ_SIZE, need - len(rbuf)))
            except BlockingIOError:
                # Non-blocking read with nothing there: the same as a timeout.
                raise socket.timeout() from None
            except socket.timeout:
                raise
            except OSError:
                self.connected = False
                raise
            if not chunk:
                self.connected = False
                raise OSError("Server unexpectedly closed connection")
            rbuf = self._read_buffer = rbuf + chunk

    def read_frame(self, unpack: Any = None) -> tuple[int, int, bytes]:
        rbuf = self._read_buffer
        pos = self._read_pos
        if len(rbuf) - pos < 7:
            self._fill(7)
            rbuf, pos = self._read_buffer, 0
        frame_type, channel, size = _unpack_header(rbuf, pos)
        end = pos + 7 + size
        if len(rbuf) <= end:
            self._fill(8 + size)
            rbuf, pos = self._read_buffer, 0
            end = 7 + size
        if rbuf[end] != _FRAME_END:
            self.connected = False
            raise UnexpectedFrame(f"Received frame_end {rbuf[end]:#04x} while expecting 0xce")
        payload = rbuf[pos + 7:end]
        end += 1
        if end == len(rbuf):
            self._read_buffer, self._read_pos = _EMPTY, 0
        else:
            self._read_pos = end
        return frame_type, channel, payload

    def frame_ready(self) -> bool:
        """Whether a complete frame is already buffered."""
        rbuf = self._read_buffer
        pos = self._read_pos
        if len(rbuf) - pos < 7:
            return False
        return len(rbuf) > pos + 7 + int(_unpack_header(rbuf, pos)[2])

    def inbound_pending(self) -> bool:
        """Whether there is something to read (buffered or on the socket)."""
        return len(self._read_buffer) > self._read_pos or self._socket_readable()


class BufferedSSLTransport(_PendingMixin, _SSLTransport):  # type: ignore[misc]
    """The driver's TLS transport with the readiness checks of this module."""

    def _setup_transport(self) -> None:
        super()._setup_transport()
        self._poller = None

    def close(self) -> None:
        super().close()
        self._poller = None

    def _shutdown_transport(self) -> None:
        # No TLS close_notify over a socket that failed (or that holds a half
        # written frame): the write could block until it times out.
        if self.connected:
            super()._shutdown_transport()

    def frame_ready(self) -> bool:
        rbuf = self._read_buffer
        if len(rbuf) < 7:
            return False
        return len(rbuf) > 7 + int(_unpack_header(rbuf, 0)[2])

    def inbound_pending(self) -> bool:
        if self._read_buffer:
            return True
        sock = self.sock
        if sock is not None and sock.pending():
            return True
        return self._socket_readable()


class Connection(amqp.Connection):  # type: ignore[misc]
    """An AMQP connection that makes kombu channels."""

    Channel = Channel

    #: The :class:`kombu.Connection` this connection belongs to.
    client: Any = None
    #: Seconds :meth:`close` waits for the broker's ``close-ok``.
    close_timeout: float = 5.0
    _tuned = False
    _watch_inbound = False

    def Transport(self, host: str, connect_timeout: float | None, ssl: Any = False,
                  read_timeout: float | None = None, write_timeout: float | None = None,
                  socket_settings: Any = None, **kwargs: Any) -> Any:
        cls = BufferedSSLTransport if ssl else BufferedTCPTransport
        return cls(host, connect_timeout=connect_timeout, ssl=ssl,
                   read_timeout=read_timeout, write_timeout=write_timeout,
                   socket_settings=socket_settings, **kwargs)

    def connect(self, callback: Callable[[], Any] | None = None) -> Any:
        self._tuned = False
        result = super().connect(callback)
        caps = self.client_properties.get("capabilities") or {}
        self._watch_inbound = bool(caps.get("connection.blocked"))
        return result

    def _on_tune(self, channel_max: int, frame_max: int, server_heartbeat: int,
                 argsig: str = "BlB") -> None:
        self._tuned = True
        super()._on_tune(channel_max, frame_max, server_heartbeat, argsig)

    def blocking_read(self, timeout: float | None = None) -> Any:
        transport = self.transport
        if timeout is not None and transport.frame_ready():
            frame = transport.read_frame()
        else:
            with transport.having_timeout(timeout):
                frame = transport.read_frame()
        return self.on_inbound_frame(frame)

    def close(self, reply_code: int = 0, reply_text: str = "",
              method_sig: tuple[int, int] = (0, 0), argsig: str = "BsBB") -> Any:
        transport = self._transport
        if transport is None:
            return None
        if not transport.connected:
            # The socket failed (or a frame was half written): nothing can be
            # said to the broker any more.
            self.collect()
            return None
        sock = transport.sock
        if sock is not None:
            try:
                if sock.gettimeout() is None:
                    sock.settimeout(self.close_timeout)
            except OSError:
                pass
        try:
            return super().close(reply_code, reply_text, method_sig, argsig)
        except socket.timeout:
            # The driver already dropped the socket; nothing more to wait for.
            return None


_Conn = Connection


class Transport(base.Transport):
    """AMQP transport (``pyamqp``, ``amqp``)."""

    Connection = Connection

    default_port = DEFAULT_PORT
    default_ssl_port = DEFAULT_SSL_PORT

    # The driver's errors, plus kombu's own: the core raises them too, and
    # AccessRefused (raised here) is a connection error that is never recoverable.
    connection_errors = (KombuConnectionError, *amqp.Connection.connection_errors)
    channel_errors = (KombuChannelError, *amqp.Connection.channel_errors)
    recoverable_connection_errors = (KombuRecoverableConnectionError,
                                     *amqp.Connection.recoverable_connection_errors)
    recoverable_channel_errors = amqp.Connection.recoverable_channel_errors

    driver_name = "py-amqp"
    driver_type = "amqp"

    implements = base.Transport.implements.extend(asynchronous=True, heartbeats=True)

    def __init__(self, client: Any, default_port: int | None = None,
                 default_ssl_port: int | None = None, **kwargs: Any) -> None:
        self.client = client
        self.default_port = default_port or self.default_port
        self.default_ssl_port = default_ssl_port or self.default_ssl_port

    def driver_version(self) -> str:
        return amqp.__version__  # type: ignore[no-any-return]

    # -- connections -----------------------------------------------------------
    def connection_options(self) -> dict[str, Any]:
        """The keyword arguments of the driver's :class:`amqp.Connection` for
        this transport's :class:`kombu.Connection`.

        Settings the connection leaves empty get the transport's defaults
        (written back to the connection); ``localhost`` is dialled as
        ``127.0.0.1``, an IPv6 literal is bracketed, a callable password is
        called, TLS options get the driver's names, and the transport options
        are passed on as they are.
        """
        conninfo: Any = self.client
        for name, default in self.default_connection_params.items():
            if name != "hostname" and not getattr(conninfo, name, None):
                setattr(conninfo, name, default)
        hostname = conninfo.hostname or "localhost"
        address = "127.0.0.1" if hostname == "localhost" else hostname
        if ":" in address and not address.startswith("["):
            address = f"[{address}]"  # an IPv6 literal
        host = f"{address}:{conninfo.port}"
        password = conninfo.password
        if callable(password):
            password = password()
        opts: dict[str, Any] = {
            "host": host,
            "userid": conninfo.userid,
            "password": password,
            "login_method": conninfo.login_method,
            "virtual_host": conninfo.virtual_host,
            "insist": conninfo.insist,
            "ssl": self._ssl_options(conninfo.ssl, hostname),
            "connect_timeout": conninfo.connect_timeout,
            "heartbeat": conninfo.heartbeat,
        }
        opts.update(conninfo.transport_options or {})
        return opts

    def establish_connection(self) -> _Conn:
        """Connect to the broker; raise AccessRefused for bad credentials or vhost."""
        opts = self.connection_options()
        host = opts["host"]
        conn = self.Connection(**opts)
        conn.client = self.client
        try:
            conn.connect()
        except BaseException as exc:
            conn.collect()  # the driver leaves the socket open on protocol errors
            error = self._login_error(conn, exc, host, opts)
            if error is not None:
                raise error from exc
            raise
        return conn

    def _login_error(self, conn: _Conn, exc: BaseException, host: str,
                     opts: Mapping[str, Any]) -> KombuConnectionError | None:
        """The error to raise instead of ``exc``, a failed login, or None to re-raise it.

        AccessRefused if the login can never succeed; a recoverable error if
        the broker's connection limit is reached.
        """
        user = opts["userid"]
        if isinstance(exc, _AMQPAccessRefused) and opts["login_method"] == "EXTERNAL":
            # The identity is the TLS client certificate's, not user/password.
            return refused_as(exc,
                f"The broker at {host} refused the EXTERNAL login: check that a client "
                f"certificate is sent (ssl= with certfile and keyfile) and that the broker "
                f"maps it to one of its users. The broker said: {exc.reply_text}")
        if isinstance(exc, _AMQPAccessRefused):
            return refused_as(exc,
                f"The broker at {host} refused the login of user {user!r} (login method "
                f"{opts['login_method']}): check the user name and password. "
                f"The broker said: {exc.reply_text}")
        if isinstance(exc, _AMQPNotAllowed):
            return self._vhost_error(host, opts, exc)
        if isinstance(exc, _AMQPConnectionError) and "auth mechanism" in str(exc):
            return AccessRefused(
                f"The broker at {host} does not accept login method "
                f"{opts['login_method']!r}: {exc}. Pass login_method= one of the "
                f"methods it offers.")
        if isinstance(exc, OSError) and self._closed_during_login(conn, exc):
            return AccessRefused(
                f"The broker at {host} closed the connection during the login of user "
                f"{user!r}, which is how brokers without 'authentication_failure_close' "
                f"refuse a login: check the user name and password.")
        return None

    @staticmethod
    def _ssl_options(ssl: Any, hostname: str) -> Any:
        """TLS options for the driver, checking the broker's host name by default."""
        if not ssl:
            return ssl
        opts = dict(ssl) if isinstance(ssl, dict) else {}
        # A URL's ?ssl_ca_certs=...&ssl_cert_reqs=none arrive with kombu's
        # "ssl_" prefix (redis-py's names); the driver takes the bare ones.
        check_hostname = opts.pop("ssl_check_hostname", True)
        for key in [key for key in opts if key in _URL_SSL_KEYS]:
            opts.setdefault(_URL_SSL_KEYS[key], opts.pop(key))
        if (check_hostname and opts.get("server_hostname") is None
                and opts.get("cert_reqs") != _ssl.CERT_NONE):
            opts["server_hostname"] = hostname
        return opts or True

    @staticmethod
    def _vhost_error(host: str, opts: Mapping[str, Any],
                     exc: Exception) -> KombuConnectionError:
        """The error for a connection the broker did not let into the virtual host.

        A connection limit that is reached is recoverable (other connections
        may close); an unknown virtual host or missing permissions are not.
        """
        vhost = opts["virtual_host"]
        text = getattr(exc, "reply_text", "") or str(exc)
        if _LIMIT_REACHED.search(text):
            return KombuRecoverableConnectionError(
                f"The broker at {host} refused a connection of user {opts['userid']!r} to the "
                f"virtual host {vhost!r} because a limit is reached: retry once other "
                f"connections closed, or raise the limit (rabbitmqctl set_vhost_limits or "
                f"set_user_limits). The broker said: {text}")
        if "not found" in text:
            return refused_as(exc,
                f"The virtual host {vhost!r} does not exist on the broker at {host}: "
                f"create it (rabbitmqctl add_vhost) or fix the URL (the default "
                f"virtual host '/' is written '//' in a URL). The broker said: {text}")
        return refused_as(exc,
            f"The broker at {host} does not allow user {opts['userid']!r} into the "
            f"virtual host {vhost!r}: grant permissions (rabbitmqctl set_permissions) "
            f"or use another virtual host. The broker said: {text}")

    @staticmethod
    def _closed_during_login(conn: _Conn, exc: OSError) -> bool:
        """Whether the socket closed after connection.start but before tune."""
        if isinstance(exc, socket.timeout) or not conn.server_properties or conn._tuned:
            return False
        caps = conn.server_properties.get("capabilities") or {}
        return not caps.get("authentication_failure_close")

    def close_connection(self, connection: _Conn) -> None:
        connection.client = None
        connection.close()

    def _collect(self, connection: _Conn | None) -> None:
        if connection is not None:
            connection.collect()

    def verify_connection(self, connection: _Conn) -> bool:
        return bool(connection.connected)

    # -- channels and events ---------------------------------------------------
    def create_channel(self, connection: _Conn) -> Channel:
        return connection.channel()  # type: ignore[no-any-return]

    def close_channel(self, channel: Channel) -> None:
        channel.close()

    def drain_events(self, connection: _Conn, timeout: float | None = None,
                     **kwargs: Any) -> Any:
        """Process one event; raise :exc:`socket.timeout` after ``timeout`` seconds.

        Other keyword arguments are accepted and ignored.
        """
        return connection.drain_events(timeout=timeout)

    def register_with_event_loop(self, connection: _Conn, loop: Any) -> None:
        """Read ``connection`` whenever its socket is readable, and whenever frames wait in its buffer.

        Frames read ahead (several per ``recv``, or held by TLS) are
        invisible to ``poll``: an ``on_tick`` check of the hub (kombu's Hub
        runs it before every poll) reads them; it removes itself once the
        connection is closed or replaced.
        """
        transport = connection.transport
        transport.raise_on_initial_eintr = True
        loop.add_reader(connection.sock, self.on_readable, connection, loop)
        on_tick = getattr(loop, "on_tick", None)
        if on_tick is None:
            return

        def read_buffered() -> None:
            if connection._transport is not transport or not transport.connected:
                on_tick.discard(read_buffered)
                return
            pending = getattr(transport.sock, "pending", None)
            if transport.frame_ready() or (pending is not None and pending()):
                self.on_readable(connection, loop)

        on_tick.add(read_buffered)

    # -- heartbeats ------------------------------------------------------------
    def heartbeat_check(self, connection: _Conn, rate: float = 2) -> Any:
        """Send a heartbeat when due; raise ConnectionForced if the broker went quiet.

        Returns what the driver's ``heartbeat_tick`` returns, as kombu does.
        """
        return connection.heartbeat_tick(rate=rate)

    def get_heartbeat_interval(self, connection: _Conn) -> float:
        return connection.heartbeat  # type: ignore[no-any-return]

    # -- information -----------------------------------------------------------
    def qos_semantics_matches_spec(self, connection: _Conn) -> bool:
        """Whether ``basic.qos`` means what the AMQP specification says.

        False for RabbitMQ 3.3 up to 3.x, where ``prefetch_count`` applies per
        consumer instead of per channel; True before 3.3 and from 4.0 on (global
        QoS is gone from classic queues), and for other brokers, as in kombu.
        """
        props = connection.server_properties
        if props.get("product") == "RabbitMQ":
            version_str = props.get("version")
            if not version_str:
                return True
            version = version_string_as_tuple(version_str)
            return version < (3, 3) or version >= (4, 0)
        return True

    @property
    def default_connection_params(self) -> dict[str, Any]:
        return {
            "userid": "guest",
            "password": "guest",
            "port": self.default_ssl_port if self.client and self.client.ssl
            else self.default_port,
            "hostname": "localhost",
            "login_method": "PLAIN",
        }


class SSLTransport(Transport):
    """AMQP over TLS (``amqps``): ``ssl=True`` unless TLS options were given."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        client: Any = self.client
        if not client.ssl:
            client.ssl = True


if TYPE_CHECKING:  # pragma: no cover - mypy checks these; they never run
    from kombu.transport.protocols import ChannelProtocol, TransportErrors

    def _keeps_the_channel_contract(channel: Channel) -> ChannelProtocol:
        return channel

    def _declares_its_errors(transport: Transport) -> TransportErrors:
        return transport
